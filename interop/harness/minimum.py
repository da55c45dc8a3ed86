"""No silent passes: a matrix run must execute at least its platform's minimum number of cells.

A cell is *executed* when its tool ran (pass, fail or xfail); a skip is not. matrix.yaml declares
per platform the fewest cells a run of that platform's whole matrix must execute
(`expected_min_cells`; docs/matrix.md). A run that executes none, or fewer than its minimum, fails
with the reason, so a job whose every cell is skipped (a provider not built, a tool missing) can
never report success.

A run of part of the matrix (a shard, --rows, --columns, pytest -k) is held to the part of the
minimum it alone can decide: the declared minimum less the platform's cells this run did not
schedule, and never less than one. A shard therefore fails exactly when the whole run could no
longer reach the minimum even if every other cell executed; the minimum over the whole run is then
checked once more from all shards' reports together (`python3 -m interop.harness totals`, the
workflow's totals job). Splitting the minimum evenly over the shards was not chosen: skips are not
spread evenly over shards, so an even split could fail a shard of a run that meets its minimum.
"""

from __future__ import annotations

import collections
import dataclasses
import json
from pathlib import Path

from .matrix import Matrix

EXECUTED_STATUSES = ("pass", "fail", "xfail")


def declared_minimum(matrix: Matrix, platform: str) -> int:
    """matrix.yaml's expected_min_cells for the platform; 1 when it declares none (zero executed
    cells never passes)."""
    return matrix.expected_min_cells.get(platform, 1)


def required_minimum(matrix: Matrix, platform: str, scheduled: int) -> int:
    """What a run that scheduled `scheduled` of the platform's cells must execute."""
    not_scheduled = len(matrix.cells(platform)) - scheduled
    return max(1, declared_minimum(matrix, platform) - max(0, not_scheduled))


@dataclasses.dataclass(frozen=True)
class Verdict:
    platform: str
    scheduled: int      # cells this run was given
    platform_cells: int  # cells of the platform's whole matrix
    counts: dict        # status -> cells
    required: int       # executed cells this run needs
    declared: int       # matrix.yaml's minimum for the whole platform
    reason: str         # why the run fails on its minimum ("" when it is met)

    @property
    def executed(self) -> int:
        return sum(self.counts.get(status, 0) for status in EXECUTED_STATUSES)

    @property
    def ok(self) -> bool:
        return not self.reason

    def line(self) -> str:
        """The summary line every run prints: cells run, skipped and failed, and the minimum."""
        counts = self.counts
        part = ("" if self.scheduled == self.platform_cells else
                f" (a part of the run: minimum {self.declared} less the "
                f"{self.platform_cells - self.scheduled} cells not scheduled here)")
        return (f"{self.platform}: {self.executed} of {self.scheduled} cells executed "
                f"({counts.get('pass', 0)} passed, {counts.get('fail', 0)} failed, "
                f"{counts.get('xfail', 0)} expected failures), {counts.get('skip', 0)} skipped; "
                f"minimum {self.required}{part}: " + ("met" if self.ok else "NOT MET"))

    def as_dict(self) -> dict:
        return {"platform": self.platform, "scheduled": self.scheduled,
                "platform_cells": self.platform_cells, "executed": self.executed,
                "required": self.required, "declared": self.declared, "met": self.ok,
                "reason": self.reason}


def _skip_summary(records, top: int = 3) -> str:
    reasons = collections.Counter((r["reason"].splitlines() or ["(no reason)"])[0][:120]
                                  for r in records if r["status"] == "skip")
    return "; ".join(f"{n}x {reason}" for reason, n in reasons.most_common(top))


def judge(matrix: Matrix, platform: str, records, scheduled: int) -> Verdict:
    counts = collections.Counter(r["status"] for r in records)
    counts = {status: counts.get(status, 0) for status in ("pass", "fail", "xfail", "skip")}
    required = required_minimum(matrix, platform, scheduled)
    declared = declared_minimum(matrix, platform)
    executed = sum(counts[s] for s in EXECUTED_STATUSES)
    reason = ""
    if executed == 0:
        reason = (f"no cell executed on {platform} ({scheduled} scheduled, {counts['skip']} "
                  "skipped): a run that tests nothing fails")
    elif executed < required:
        reason = (f"only {executed} cells executed on {platform}, fewer than the minimum "
                  f"{required} (matrix.yaml expected_min_cells.{platform}: {declared})")
    if reason and counts["skip"]:
        reason += f"; skipped: {_skip_summary(records)}"
    return Verdict(platform, scheduled, len(matrix.cells(platform)), counts, required, declared,
                   reason)


def judge_reports(matrix: Matrix, platform: str, paths) -> Verdict:
    """The whole run from its parts' reports/matrix.json (the shards of one workflow run): every
    cell of the platform must be in exactly one report, and together they must meet the
    declared minimum."""
    records, problems = {}, []
    for path in paths:
        try:
            document = json.loads(Path(path).read_text())
        except (OSError, ValueError) as error:
            problems.append(f"{path}: {error}")
            continue
        if document.get("platform") != platform:
            problems.append(f"{path}: a {document.get('platform')} report, not {platform}")
            continue
        for record in document.get("cells", []):
            if record["id"] in records:
                problems.append(f"{path}: cell {record['id']} is in two reports")
            records[record["id"]] = record
    expected = {cell.id for cell in matrix.cells(platform)}
    unknown = set(records) - expected
    if unknown:
        problems.append(f"{len(unknown)} reported cells are not {platform} cells of {matrix.path}, "
                        f"e.g. {sorted(unknown)[:3]}")
        records = {cell_id: r for cell_id, r in records.items() if cell_id in expected}
    missing = expected - set(records)
    if missing:
        problems.append(f"{len(missing)} of {len(expected)} {platform} cells are in no report "
                        f"(a part of the run did not report), e.g. {sorted(missing)[:3]}")
    verdict = judge(matrix, platform, list(records.values()), len(expected))
    if problems:
        reason = "; ".join(problems) + (f"; {verdict.reason}" if verdict.reason else "")
        verdict = dataclasses.replace(verdict, reason=reason)
    return verdict

"""reports/: matrix.json (one record per cell), matrix.md, a self-contained matrix.html, and one
repro script per failed cell. JUnit XML comes from pytest itself (--junitxml)."""

from __future__ import annotations

import collections
import html
import json
import os
import shlex
import time
from pathlib import Path

from .matrix import Matrix

STATUSES = ("pass", "fail", "xfail", "skip")
COLOURS = {"pass": "#2e7d32", "fail": "#c62828", "xfail": "#ef6c00", "skip": "#9e9e9e"}
REPO = Path(__file__).resolve().parents[2]


def counts(records) -> dict:
    tally = collections.Counter(r["status"] for r in records)
    return {status: tally.get(status, 0) for status in STATUSES}


def _relative(path: str, base: Path) -> str:
    if not path:
        return ""
    try:
        return os.path.relpath(path, base)
    except ValueError:
        return path


def write_json(records, matrix: Matrix, platform: str, seconds: float, out: Path, verdict=None):
    document = {
        "matrix": str(matrix.path), "platform": platform, "generated": time.strftime(
            "%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "wall_seconds": round(seconds, 1),
        "counts": counts(records),
        "minimum": verdict.as_dict() if verdict else None, "cells": records,
        "not_on_this_platform": [
            {"row": r.id, "tool": r.tool, "interface": r.interface, "platform": r.platform}
            for r in matrix.other_platform_rows(platform)],
    }
    (out / "matrix.json").write_text(json.dumps(document, indent=2) + "\n")


def _grid(records):
    """row id -> {algorithm -> {column -> record}}, rows and algorithms in matrix order."""
    grid = collections.OrderedDict()
    for record in records:
        grid.setdefault(record["row"], collections.OrderedDict()).setdefault(
            record["algorithm"], {})[record["column"]] = record
    return grid


def _verdict_text(verdict) -> str:
    if verdict is None:
        return ""
    return verdict.line() + ("" if verdict.ok else f". **FAIL: {verdict.reason}**")


def write_markdown(records, matrix: Matrix, platform: str, seconds: float, out: Path,
                   verdict=None):
    tally = counts(records)
    lines = [f"# Signing matrix — {platform}", "",
             f"{len(records)} cells in {seconds:.0f} s: " +
             ", ".join(f"{tally[s]} {s}" for s in STATUSES), ""]
    if verdict is not None:
        lines += [_verdict_text(verdict), ""]
    lines += ["Cells are `signum / direct`: through libsignumpkcs11.so, and the same tool "
              "straight on the HSM module.", ""]
    algorithms = [name for name in matrix.algorithms
                  if any(r["algorithm"] == name for r in records)]
    rows = {row.id: row for row in matrix.rows}
    lines.append("| row | tool | artifact | " + " | ".join(algorithms) + " |")
    lines.append("|---|---|---|" + "---|" * len(algorithms))
    for row_id, by_algorithm in _grid(records).items():
        row = rows[row_id]
        cells = []
        for name in algorithms:
            by_column = by_algorithm.get(name)
            cells.append(" / ".join(by_column[c]["status"] for c in ("signum", "direct")
                                    if c in by_column) if by_column else "–")
        lines.append(f"| {row_id} | {row.tool} | {row.artifact} | " + " | ".join(cells) + " |")
    problems = [r for r in records if r["status"] in ("fail", "xfail", "skip") and r["reason"]]
    if problems:
        lines += ["", "## Not passing", "", "| cell | status | reason | PKCS#11 trace |",
                  "|---|---|---|---|"]
        seen = set()
        for r in problems:
            first = r["reason"].splitlines()[0]
            key = (r["row"], r["status"], first)
            if r["status"] != "fail" and key in seen:
                continue  # one line per repeated skip/xfail reason
            seen.add(key)
            bug = f" ({r['bug']})" if r.get("bug") else ""
            trace = _relative(r.get("trace", ""), out)
            link = f"[trace]({trace})" if trace else ""
            lines.append(f"| {r['id']} | {r['status']} | {first.replace('|', '/')}{bug} | {link} |")
    others = matrix.other_platform_rows(platform)
    if others:
        lines += ["", f"## Rows for other platforms ({len(others)}; run by their CI workflows)",
                  ""]
        lines += [f"- `{r.id}`: {r.tool} ({r.interface}, {r.platform})" for r in others]
    (out / "matrix.md").write_text("\n".join(lines) + "\n")


def write_html(records, matrix: Matrix, platform: str, seconds: float, out: Path, verdict=None):
    tally = counts(records)
    algorithms = [name for name in matrix.algorithms
                  if any(r["algorithm"] == name for r in records)]
    rows = {row.id: row for row in matrix.rows}
    esc = html.escape
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'><title>Signum signing matrix</title>",
        "<style>body{font:14px system-ui,sans-serif;margin:24px;color:#222}"
        "table{border-collapse:collapse}td,th{border:1px solid #ddd;padding:4px 6px;"
        "vertical-align:top}th{background:#f5f5f5;text-align:left}"
        ".c{display:inline-block;min-width:64px;margin:1px;padding:2px 4px;border-radius:3px;"
        "color:#fff;font-size:12px;text-decoration:none}"
        ".legend span{margin-right:12px}.muted{color:#777}.reason{font-size:12px;color:#555;"
        "max-width:420px}</style></head><body>",
        f"<h1>Signum signing matrix — {esc(platform)}</h1>",
        f"<p>{len(records)} cells in {seconds:.0f} s. " + " ".join(
            f"<span class='c' style='background:{COLOURS[s]}'>{tally[s]} {s}</span>"
            for s in STATUSES) + "</p>",
        (f"<p><b>{esc(_verdict_text(verdict).replace('**', ''))}</b></p>" if verdict else ""),
        "<p class='muted'>Each cell: <b>signum</b> = through libsignumpkcs11.so → agent → server → "
        "HSM; <b>direct</b> = the same tool on the HSM module. Click a cell for its logs; "
        "&#9889; links the PKCS#11 call trace.</p>",
        "<table><tr><th>row</th><th>tool</th><th>artifact</th>" +
        "".join(f"<th>{esc(a)}</th>" for a in algorithms) + "</tr>"]
    for row_id, by_algorithm in _grid(records).items():
        row = rows[row_id]
        parts.append(f"<tr><td><code>{esc(row_id)}</code></td><td>{esc(row.tool)}</td>"
                     f"<td>{esc(row.artifact)}</td>")
        for name in algorithms:
            parts.append("<td>")
            for column, record in sorted((by_algorithm.get(name) or {}).items(),
                                         key=lambda item: item[0] != "signum"):
                title = esc(f"{record['id']}: {record['status']} {record['seconds']}s\n"
                            f"{record['reason']}"[:1500], quote=True)
                log = esc(_relative(record["log"], out), quote=True)
                parts.append(f"<a class='c' style='background:{COLOURS[record['status']]}' "
                             f"href='{log}/' title='{title}'>{column} {record['seconds']:.1f}s</a>")
                if record.get("trace"):
                    parts.append(f"<a href='{esc(_relative(record['trace'], out), quote=True)}'"
                                 " title='PKCS#11 call trace'>&#9889;</a>")
            parts.append("</td>")
        parts.append("</tr>")
    parts.append("</table>")
    problems = [r for r in records if r["status"] != "pass"]
    if problems:
        parts.append("<h2>Not passing</h2><table><tr><th>cell</th><th>status</th><th>reason</th>"
                     "<th>repro</th></tr>")
        for r in problems:
            repro = out / "repro" / f"{r['id']}.sh"
            link = (f"<a href='repro/{esc(r['id'])}.sh'>repro</a>" if repro.exists() else "")
            if r.get("trace"):
                link += (f" <a href='{esc(_relative(r['trace'], out), quote=True)}'>"
                         "PKCS#11 trace</a>")
            bug = (f" <a href='{esc(r['bug'], quote=True)}'>upstream</a>" if r.get("bug") else "")
            parts.append(f"<tr><td><code>{esc(r['id'])}</code></td><td>{r['status']}</td>"
                         f"<td class='reason'>{esc(r['reason'][:600])}{bug}</td><td>{link}</td></tr>")
        parts.append("</table>")
    others = matrix.other_platform_rows(platform)
    if others:
        parts.append(f"<h2>Rows for other platforms</h2><p class='muted'>Run by the Windows and "
                     f"macOS workflows in ci/.</p><ul>")
        parts += [f"<li><code>{esc(r.id)}</code> {esc(r.tool)} ({r.interface}, {r.platform})</li>"
                  for r in others]
        parts.append("</ul>")
    parts.append("</body></html>")
    (out / "matrix.html").write_text("\n".join(parts) + "\n")


def write_repro_script(record: dict, out: Path, matrix_path: Path) -> Path:
    """reports/repro/<cell>.sh: on a fresh machine, installs and builds what is needed, brings up a
    deployment of its own and either reruns exactly this cell with the call trace on, or replays
    the cell's recorded PKCS#11 session without the tool."""
    repro_dir = out / "repro"
    repro_dir.mkdir(parents=True, exist_ok=True)
    path = repro_dir / f"{record['id']}.sh"
    reason = (record["reason"].splitlines() or [""])[0]
    default_matrix = (REPO / "matrix.yaml").resolve()
    matrix_option = ("" if Path(matrix_path).resolve() == default_matrix
                     else f" --matrix {shlex.quote(str(Path(matrix_path).resolve()))}")
    steps = "".join(f"#   {step['name']}: {step['log']}\n" for step in record["steps"])
    cell = shlex.quote(record["id"])
    if record.get("trace"):
        # The trace is found beside this script (../logs/), so a downloaded CI artifact replays.
        trace = os.path.relpath(record["trace"], out)
        replay_usage = (f"#   {path.name} replay [--against signum|direct|MODULE]\n"
                        "#       replays the recorded PKCS#11 session without the tool, against the\n"
                        "#       cell's column (or the other one) on a fresh deployment; the session:\n"
                        f"#       <these reports>/{trace}\n")
        replay = ("if [[ $mode == replay ]]; then\n  exec /usr/bin/python3 -m interop.harness"
                  f'{matrix_option} replay {cell} --reports "$REPORTS" "$@"\nfi\n')
        refuse_replay = ""
    else:
        replay_usage = ("#   (no replay: the cell has no recorded PKCS#11 session - a KSP/CSP/CTK"
                        " row, or its tool never loaded the module)\n")
        replay = ""
        refuse_replay = ("if [[ $mode == replay ]]; then\n  echo "
                         f"{shlex.quote(record['id'] + ' has no recorded PKCS#11 session')} >&2\n"
                         "  exit 2\nfi\n")
    path.write_text(f"""#!/usr/bin/env bash
# Reproduces matrix cell {record['id']} on its own:
#   tool {record['tool']} ({record['artifact']}), {record['algorithm']}, column {record['column']}
#   recorded: {record['status']} — {reason}
# Logs of the recorded run:
{steps}#
# Run it from a checkout of Signum Harness (or set SIGNUM_REPO). It installs the Debian packages,
# builds and brings up a fresh deployment, then:
#   {path.name} [rerun] [--keep]
#       prints the exact tool commands, runs them with the PKCS#11 call trace on
#       (SIGNUM_PKCS11_TRACE through Signum; OpenSC's pkcs11-spy on the direct column) and prints
#       where the tool output and the trace are;
{replay_usage}set -euo pipefail
REPORTS=$(cd "$(dirname "$0")/.." && pwd)
REPO=${{SIGNUM_REPO:-{shlex.quote(str(REPO))}}}
mode=rerun
if [[ ${{1:-}} == rerun || ${{1:-}} == replay ]]; then mode=$1; shift; fi
{refuse_replay}cd "$REPO"
ci/setup
ci/build-matrix-parts
{replay}exec /usr/bin/python3 -m interop.harness{matrix_option} repro {shlex.quote(record['row'])} \\
  --algorithm {shlex.quote(record['algorithm'])} --column {shlex.quote(record['column'])} "$@"
""")
    path.chmod(0o755)
    return path


def write_all(records, matrix: Matrix, platform: str, seconds: float, out: Path,
              verdict=None) -> dict:
    """`verdict`: the run's minimum.Verdict, stated in every report."""
    out.mkdir(parents=True, exist_ok=True)
    repro_dir = out / "repro"
    if repro_dir.exists():
        for old in repro_dir.glob("*.sh"):
            old.unlink()
    for record in records:
        if record["status"] == "fail":
            write_repro_script(record, out, matrix.path)
    write_json(records, matrix, platform, seconds, out, verdict)
    write_markdown(records, matrix, platform, seconds, out, verdict)
    write_html(records, matrix, platform, seconds, out, verdict)
    return counts(records)

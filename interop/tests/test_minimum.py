"""No silent passes (interop/harness/minimum.py): a matrix run that executes no cell, or fewer than
its platform's expected_min_cells, fails with the reason, in the runner itself (pytest's exit
status) and in the totals check over a sharded run."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from interop.harness import matrix as matrix_mod
from interop.harness import minimum

REPO = Path(__file__).resolve().parents[2]
ALGORITHMS = {"rsa-2048": {"type": "rsa", "bits": 2048}, "rsa-3072": {"type": "rsa", "bits": 3072},
              "ec-p256": {"type": "ec", "bits": 256}}


def runnable_row(row_id, **fields):
    """A PKCS#11 row on the signum column whose steps succeed without touching a token."""
    value = {"id": row_id, "tool": "demo", "interface": "pkcs11", "platform": "linux",
             "algorithms": ["rsa-2048", "rsa-3072", "ec-p256"], "columns": ["signum"],
             "sign": "true", "verify": "true"}
    value.update(fields)
    return value


def write_matrix(tmp_path, rows, minimums=None) -> Path:
    document = {"version": 1, "algorithms": ALGORITHMS, "rows": rows}
    if minimums is not None:
        document["expected_min_cells"] = minimums
    path = tmp_path / "matrix.yaml"
    path.write_text(yaml.safe_dump(document))
    return path


def record(cell_id, status, reason=""):
    return {"id": cell_id, "status": status, "reason": reason}


# ---- the rule itself ---------------------------------------------------------------------------

def test_zero_executed_cells_fail_even_without_a_declared_minimum(tmp_path):
    matrix = matrix_mod.load(write_matrix(tmp_path, [runnable_row("a")]))
    verdict = minimum.judge(matrix, "linux", [record("a.rsa-2048.signum", "skip", "no tool")] * 3,
                            scheduled=3)
    assert not verdict.ok and verdict.required == 1
    assert "no cell executed" in verdict.reason and "3x no tool" in verdict.reason
    assert "0 of 3 cells executed" in verdict.line() and "3 skipped" in verdict.line()
    # nothing scheduled at all is no better
    assert not minimum.judge(matrix, "linux", [], scheduled=0).ok


def test_below_the_minimum_fails_and_at_it_passes(tmp_path):
    matrix = matrix_mod.load(write_matrix(tmp_path, [runnable_row("a")], {"linux": 2}))
    below = [record("1", "pass"), record("2", "skip", "no tool"), record("3", "skip", "no tool")]
    verdict = minimum.judge(matrix, "linux", below, scheduled=3)
    assert not verdict.ok and "only 1 cells executed" in verdict.reason
    assert "expected_min_cells.linux: 2" in verdict.reason
    at = [record("1", "pass"), record("2", "xfail"), record("3", "skip", "no tool")]
    verdict = minimum.judge(matrix, "linux", at, scheduled=3)
    assert verdict.ok and verdict.executed == 2 and verdict.line().endswith("minimum 2: met")
    # a failed cell was executed: it counts towards the minimum (and fails the run by itself)
    assert minimum.judge(matrix, "linux", [record("1", "fail"), record("2", "pass")], 3).executed == 2


def test_a_part_of_the_run_needs_what_the_rest_cannot_make_up(tmp_path):
    matrix = matrix_mod.load(write_matrix(tmp_path, [runnable_row("a"), runnable_row("b")],
                                          {"linux": 5}))  # 6 cells
    assert minimum.required_minimum(matrix, "linux", 6) == 5
    assert minimum.required_minimum(matrix, "linux", 3) == 2  # a shard of 3: the other 3 + 2 = 5
    assert minimum.required_minimum(matrix, "linux", 1) == 1  # never below one
    verdict = minimum.judge(matrix, "linux", [record("1", "pass"), record("2", "skip", "x"),
                                              record("3", "skip", "x")], scheduled=3)
    assert not verdict.ok and "cells not scheduled here" in verdict.line()


@pytest.mark.parametrize("minimums, message", [
    ({"linux": 0}, "must be 1..3"),
    ({"linux": 4}, "must be 1..3"),
    ({"linux": True}, "must be 1..3"),
    ({"beos": 1}, "unknown platform"),
    ([1], "maps a platform"),
])
def test_a_bad_minimum_is_refused(tmp_path, minimums, message):
    with pytest.raises(matrix_mod.MatrixError, match=message):
        matrix_mod.load(write_matrix(tmp_path, [runnable_row("a")], minimums))


def test_a_misspelt_top_level_field_is_refused(tmp_path):
    path = write_matrix(tmp_path, [runnable_row("a")])
    path.write_text(path.read_text() + "expected_min_cell: {linux: 1}\n")
    with pytest.raises(matrix_mod.MatrixError, match="unknown top-level field"):
        matrix_mod.load(path)


def test_the_real_matrix_declares_a_minimum_for_every_platform_with_rows():
    matrix = matrix_mod.load(REPO / "matrix.yaml")
    for platform in {row.platform for row in matrix.rows}:
        assert platform in matrix.expected_min_cells, platform
    # macOS has no port yet: every macOS cell is skipped (missing provider), and that must fail.
    cells = matrix.cells("macos")
    skipped = [record(c.id, "skip", "Signum's PKCS#11 provider is not built here") for c in cells]
    verdict = minimum.judge(matrix, "macos", skipped, len(cells))
    assert not verdict.ok and "not built here" in verdict.reason


# ---- the runner: pytest's exit status ----------------------------------------------------------

def described_site(tmp_path) -> dict:
    """A site file (as the Windows job's) with the signum column only, and a build tree in which
    the PKCS#11 provider and the recorder exist, so cells are not skipped for a missing provider.
    The rows' steps are `true`: neither is ever loaded."""
    build = tmp_path / "build"
    provider = build / "reference" / "providers" / "pkcs11" / "libsignumpkcs11.so"
    recorder = provider.parent / "recorder" / "libsignum-pkcs11-recorder.so"
    recorder.parent.mkdir(parents=True, exist_ok=True)
    provider.write_bytes(b"")
    recorder.write_bytes(b"")
    for name in ("root.pem", "chain.pem"):
        (tmp_path / name).write_text("")
    keys = {name: {"id_hex": "01", "certificate_pem": "", "sha1": "00"} for name in ALGORITHMS}
    (tmp_path / "site.json").write_text(json.dumps({
        "env": {}, "root_ca": str(tmp_path / "root.pem"), "chain": str(tmp_path / "chain.pem"),
        "columns": {"signum": {"module": str(provider), "token_label": "t", "pin": "0000"}},
        "keys": {"signum": keys}}))
    return dict(os.environ, SIGNUM_BUILD_DIR=str(build),
                SIGNUM_MATRIX_SITE=str(tmp_path / "site.json"))


def run_matrix(tmp_path, matrix_path, *args, env=None):
    reports = tmp_path / "reports"
    command = [sys.executable, "-m", "pytest", str(REPO / "interop" / "test_matrix.py"),
               "-p", "no:cacheprovider", "-q", f"--matrix={matrix_path}", "--platform=linux",
               f"--reports={reports}", *args]
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=120,
                          env=env or described_site(tmp_path))
    document = json.loads((reports / "matrix.json").read_text())
    return done.returncode, done.stdout + done.stderr, document


def test_a_run_whose_every_cell_is_skipped_fails(tmp_path):
    path = write_matrix(tmp_path, [runnable_row("a", requires={"commands": ["no-such-tool-x"]})])
    code, output, document = run_matrix(tmp_path, path)
    assert code == 1, output
    assert "no cell executed on linux" in output and "no-such-tool-x" in output
    assert "0 of 3 cells executed" in output
    assert document["minimum"]["met"] is False and document["counts"]["skip"] == 3
    assert "NOT MET" in (tmp_path / "reports" / "matrix.md").read_text()


def test_a_run_given_no_cells_fails(tmp_path):
    path = write_matrix(tmp_path, [runnable_row("a"), runnable_row("w", platform="windows")])
    code, output, document = run_matrix(tmp_path, path, "--rows=w")  # a Windows row on Linux
    assert code == 1, output
    assert "0 of 0 cells executed" in output and document["minimum"]["met"] is False


def test_a_run_below_its_minimum_fails_and_one_at_it_passes(tmp_path):
    rows = [runnable_row("a"),
            runnable_row("b", expect=[{"status": "skip", "reason": "not for EC",
                                       "algorithms": ["ec-p256"]}])]
    code, output, document = run_matrix(tmp_path, write_matrix(tmp_path, rows, {"linux": 5}))
    assert code == 0, output
    assert "5 of 6 cells executed" in output and "minimum 5: met" in output
    assert document["minimum"]["executed"] == 5

    code, output, _ = run_matrix(tmp_path, write_matrix(tmp_path, rows, {"linux": 6}))
    assert code == 1, output
    assert "only 5 cells executed on linux, fewer than the minimum 6" in output
    assert "1x not for EC" in output


def test_shards_are_held_to_their_share_and_the_totals_to_the_whole(tmp_path):
    rows = [runnable_row("a"),
            runnable_row("b", expect=[{"status": "skip", "reason": "not here"}])]
    path = write_matrix(tmp_path, rows, {"linux": 3})  # 6 cells, 3 of them skipped
    shard_reports = []
    for index in (1, 2):
        out = tmp_path / f"shard{index}"
        out.mkdir()
        code, output, document = run_matrix(out, path, f"--shard={index}/2")
        # each shard of 3 cells needs 3 - 3 = 0 -> 1 executed cell, and has at least one
        assert code == 0, output
        assert document["minimum"]["required"] == 1
        shard_reports.append(str(out / "reports" / "matrix.json"))
    totals = [sys.executable, "-m", "interop.harness", f"--matrix={path}", "--platform=linux",
              "totals"]
    done = subprocess.run(totals + shard_reports, cwd=REPO, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "3 of 6 cells executed" in done.stdout and "minimum 3: met" in done.stdout
    # A shard that never reported: the totals fail, naming what is missing.
    done = subprocess.run(totals + shard_reports[:1], cwd=REPO, capture_output=True, text=True)
    assert done.returncode == 1 and "in no report" in done.stderr
    # The same cells, a higher minimum: the whole run is below it although each shard passed.
    stricter = write_matrix(tmp_path, rows, {"linux": 4})
    done = subprocess.run([sys.executable, "-m", "interop.harness", f"--matrix={stricter}",
                           "--platform=linux", "totals"] + shard_reports,
                          cwd=REPO, capture_output=True, text=True)
    assert done.returncode == 1 and "only 3 cells executed" in done.stderr

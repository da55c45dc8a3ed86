"""The runner's own logic, without tools: matrix.yaml validation, cell expansion, sharding,
expectations turning outcomes into statuses, and the reports. (The real tools run in
test_matrix.py; these tests keep the machinery that judges them honest.)"""

import json
import textwrap
from pathlib import Path

import pytest
import yaml

from interop.harness import cell as cell_mod
from interop.harness import matrix as matrix_mod
from interop.harness import reports

REPO = Path(__file__).resolve().parents[2]

BASE = {
    "version": 1,
    "algorithms": {"rsa-2048": {"type": "rsa", "bits": 2048}, "ec-p256": {"type": "ec", "bits": 256}},
}


def row(**fields):
    value = {"id": "demo-row", "tool": "demo", "interface": "pkcs11", "platform": "linux",
             "algorithms": ["rsa-2048", "ec-p256"], "sign": "true", "verify": "true"}
    value.update(fields)
    return value


def load(tmp_path, *rows):
    path = tmp_path / "matrix.yaml"
    path.write_text(yaml.safe_dump(dict(BASE, rows=list(rows))))
    return matrix_mod.load(path)


def test_the_real_matrix_loads_and_every_seed_tool_has_rows():
    matrix = matrix_mod.load(REPO / "matrix.yaml")
    tools = " ".join(row.tool.lower() for row in matrix.rows)
    for tool in ("signtool", "hlk", "set-authenticodesignature", "clickonce", "jarsigner",
                 "openssl", "jsign", "rpmsign", "debsign", "gpg", "codesign", "productsign",
                 "xcode", "vba", "pdf", "cosign", "osslsigncode", "sbsign"):
        assert tool in tools, f"matrix.yaml has no row for {tool}"
    for platform in matrix_mod.PLATFORMS:
        assert any(row.platform == platform for row in matrix.rows), platform


@pytest.mark.parametrize("bad, message", [
    (row(colour="red"), "unknown field"),
    (row(id="Bad_Id"), "bad id"),
    (row(interface="smartcard"), "interface must be"),
    (row(algorithms=["dsa-1024"]), "unknown algorithm"),
    (row(interface="ksp", columns=["signum", "direct"]), "only PKCS#11 rows"),
    (row(expect=[{"status": "xfail"}]), "needs a `reason`"),
    (row(expect=[{"status": "maybe", "reason": "x"}]), "status must be"),
    (row(expect=[{"status": "skip", "reason": "x", "algorithms": ["rsa-3072"]}]),
     "not one of the row's"),
    (row(timeout=0), "timeout"),
    ({k: v for k, v in row().items() if k != "verify"}, "missing `verify`"),
])
def test_a_malformed_row_is_refused_with_its_location(tmp_path, bad, message):
    with pytest.raises(matrix_mod.MatrixError, match=message):
        load(tmp_path, bad)


def test_duplicate_ids_are_refused(tmp_path):
    with pytest.raises(matrix_mod.MatrixError, match="duplicate row id"):
        load(tmp_path, row(), row())


def test_cells_expand_per_platform_algorithm_and_column(tmp_path):
    matrix = load(tmp_path, row(), row(id="win", interface="ksp", platform="windows"))
    cells = matrix.cells("linux")
    assert [c.id for c in cells] == ["demo-row.rsa-2048.signum", "demo-row.rsa-2048.direct",
                                     "demo-row.ec-p256.signum", "demo-row.ec-p256.direct"]
    assert [c.id for c in matrix.cells("windows")] == ["win.rsa-2048.signum", "win.ec-p256.signum"]
    assert [r.id for r in matrix.other_platform_rows("linux")] == ["win"]


def test_shards_partition_the_cells():
    cells = list(range(11))
    parts = [matrix_mod.shard(cells, f"{i}/3") for i in (1, 2, 3)]
    assert sorted(sum(parts, [])) == cells
    assert all(parts)
    for spec in ("0/3", "4/3", "1-3", ""):
        with pytest.raises(matrix_mod.MatrixError):
            matrix_mod.shard(cells, spec)


def test_hash_per_algorithm_and_first_matching_expectation(tmp_path):
    matrix = load(tmp_path, row(hash={"default": "sha256", "ec-p256": "sha384"}, expect=[
        {"status": "xfail", "reason": "direct only", "columns": ["direct"],
         "algorithms": ["ec-p256"]},
        {"status": "flaky", "reason": "all ec", "algorithms": ["ec-p256"]}]))
    by_id = {c.id: c for c in matrix.cells("linux")}
    assert by_id["demo-row.rsa-2048.signum"].hash == "sha256"
    assert by_id["demo-row.ec-p256.signum"].hash == "sha384"
    assert by_id["demo-row.ec-p256.direct"].expectation.reason == "direct only"
    assert by_id["demo-row.ec-p256.signum"].expectation.reason == "all ec"
    assert by_id["demo-row.rsa-2048.signum"].expectation is None


class FakeSite:
    """Only what run_cell reads; the scripts below never touch a token."""


def run_with_outcome(tmp_path, monkeypatch, exit_code, expect=None, attempts_log=None):
    fields = {"sign": f"echo signing >> {attempts_log or '/dev/null'}; exit {exit_code}"}
    if expect:
        fields["expect"] = [expect]
    matrix = load(tmp_path, row(algorithms=["rsa-2048"], columns=["signum"], **fields))
    monkeypatch.setattr(cell_mod, "row_environment", lambda *args: {"WORK": str(tmp_path)})
    monkeypatch.setattr(cell_mod, "missing_provider", lambda interface: "")
    (tmp_path / "scratch").mkdir(exist_ok=True)
    return cell_mod.run_cell(matrix.cells("linux")[0], FakeSite(), tmp_path / "logs",
                             tmp_path / "scratch")


def test_outcomes_become_statuses(tmp_path, monkeypatch):
    assert run_with_outcome(tmp_path, monkeypatch, 0).status == "pass"
    failed = run_with_outcome(tmp_path, monkeypatch, 3)
    assert failed.status == "fail" and "sign exited 3" in failed.reason
    xfail = {"status": "xfail", "reason": "upstream bug"}
    assert run_with_outcome(tmp_path, monkeypatch, 3, xfail).status == "xfail"
    unexpected = run_with_outcome(tmp_path, monkeypatch, 0, xfail)
    assert unexpected.status == "fail" and "but passed" in unexpected.reason
    skipped = run_with_outcome(tmp_path, monkeypatch, 0, {"status": "skip", "reason": "no EC"})
    assert skipped.status == "skip" and skipped.reason == "no EC"


def test_a_flaky_cell_is_retried_then_reported_as_xfail(tmp_path, monkeypatch):
    log = tmp_path / "attempts.log"
    result = run_with_outcome(tmp_path, monkeypatch, 1, {"status": "flaky", "reason": "poppler"},
                              attempts_log=log)
    assert result.status == "xfail" and result.attempts == cell_mod.FLAKY_ATTEMPTS
    assert log.read_text().count("signing") == cell_mod.FLAKY_ATTEMPTS


def test_a_missing_tool_is_a_skip_with_an_install_hint(tmp_path, monkeypatch):
    matrix = load(tmp_path, row(requires={"commands": ["no-such-tool-here"], "env": ["NO_SUCH"]},
                                install={"linux": "apt-get install no-such-tool"}))
    monkeypatch.setattr(cell_mod, "missing_provider", lambda interface: "")
    reason = cell_mod.static_skip_reason(matrix.cells("linux")[0])
    assert "no-such-tool-here" in reason and "$NO_SUCH" in reason and "apt-get install" in reason


def test_a_step_that_hangs_is_killed_at_the_row_timeout(tmp_path, monkeypatch):
    matrix = load(tmp_path, row(algorithms=["rsa-2048"], columns=["signum"], timeout=1,
                                sign="sleep 30"))
    monkeypatch.setattr(cell_mod, "row_environment", lambda *args: {})
    monkeypatch.setattr(cell_mod, "missing_provider", lambda interface: "")
    (tmp_path / "scratch").mkdir()
    result = cell_mod.run_cell(matrix.cells("linux")[0], FakeSite(), tmp_path / "logs",
                               tmp_path / "scratch")
    assert result.status == "fail" and "timed out" in result.reason and result.seconds < 10


def test_reports_are_written_with_repro_scripts_for_failures(tmp_path):
    matrix = load(tmp_path, row(), row(id="win", interface="ksp", platform="windows"))
    records = []
    for n, cell in enumerate(matrix.cells("linux")):
        status = ["pass", "fail", "xfail", "skip"][n]
        records.append({"id": cell.id, "row": cell.row.id, "tool": "demo", "artifact": "",
                        "interface": "pkcs11", "platform": "linux",
                        "algorithm": cell.algorithm.name, "column": cell.column, "hash": "sha256",
                        "status": status, "reason": "" if status == "pass" else f"why {status}",
                        "bug": "", "seconds": 1.0, "attempts": 1,
                        "log": str(tmp_path / "logs" / cell.id), "trace": "",
                        "steps": [{"name": "sign", "exit_code": 1, "seconds": 1.0,
                                   "log": "sign.log", "timed_out": False}]})
    out = tmp_path / "reports"
    tally = reports.write_all(records, matrix, "linux", 4.0, out)
    assert tally == {"pass": 1, "fail": 1, "xfail": 1, "skip": 1}
    document = json.loads((out / "matrix.json").read_text())
    assert len(document["cells"]) == 4 and document["not_on_this_platform"][0]["row"] == "win"
    for key in ("id", "tool", "interface", "platform", "algorithm", "column", "status", "reason",
                "seconds", "log"):
        assert key in document["cells"][0]
    assert "why fail" in (out / "matrix.md").read_text()
    html = (out / "matrix.html").read_text()
    assert "demo-row.rsa-2048.direct" in html and "repro/demo-row.rsa-2048.direct.sh" in html
    repro = out / "repro" / "demo-row.rsa-2048.direct.sh"
    assert repro.stat().st_mode & 0o100
    text = repro.read_text()
    assert "repro demo-row" in text and "--column direct" in text
    # Not the repository's matrix.yaml: the script names the matrix it came from.
    assert f"--matrix {tmp_path / 'matrix.yaml'}" in text
    assert [p.name for p in (out / "repro").iterdir()] == [repro.name]


def test_the_ci_workflow_is_generated_from_the_matrix_and_current():
    import subprocess
    import sys
    check = subprocess.run([sys.executable, str(REPO / "ci" / "workflows.py"), "--check"],
                           capture_output=True, text=True)
    assert check.returncode == 0, check.stderr
    workflow = yaml.safe_load((REPO / ".github" / "workflows" / "signum.yml").read_text())
    jobs = workflow["jobs"]
    matrix = matrix_mod.load(REPO / "matrix.yaml")
    # Every platform with rows has a job that runs exactly that platform's rows.
    for platform in matrix_mod.PLATFORMS:
        rows = {row.id for row in matrix.rows if row.platform == platform}
        platform_jobs = [job for name, job in jobs.items() if name.startswith(f"matrix-{platform}")]
        assert platform_jobs, platform
        covered = set()
        for job in platform_jobs:
            covered |= set(job["env"]["SIGNUM_MATRIX_ROWS"].split())
            runs = " ".join(step.get("run", "") for step in job["steps"])
            assert f"--platform={platform}" in runs
        assert covered == rows, platform
    # The Linux shards together are the whole Linux matrix, each cell once.
    shard_jobs = sorted(name for name in jobs if name.startswith("matrix-linux-"))
    count = len(shard_jobs)
    cells = [c.id for c in matrix.cells("linux")]
    sharded = []
    for index, name in enumerate(shard_jobs, start=1):
        runs = " ".join(step.get("run", "") for step in jobs[name]["steps"])
        assert f"--shard={index}/{count}" in runs
        sharded += [c.id for c in matrix_mod.shard(matrix.cells("linux"), f"{index}/{count}")]
    assert sorted(sharded) == sorted(cells)
    assert "bash .ci/run" in " ".join(s.get("run", "") for s in jobs["test-linux"]["steps"])


def test_exit_77_is_a_skip_naming_what_the_step_found(tmp_path, monkeypatch):
    matrix = load(tmp_path, row(algorithms=["rsa-2048"], columns=["signum"],
                                prepare="echo checking; echo 'osslsigncode 2.5 cannot sign scripts'; exit 77"))
    monkeypatch.setattr(cell_mod, "row_environment", lambda *args: {})
    monkeypatch.setattr(cell_mod, "missing_provider", lambda interface: "")
    (tmp_path / "scratch").mkdir()
    result = cell_mod.run_cell(matrix.cells("linux")[0], FakeSite(), tmp_path / "logs",
                               tmp_path / "scratch")
    assert result.status == "skip"
    assert result.reason == "prepare: osslsigncode 2.5 cannot sign scripts"

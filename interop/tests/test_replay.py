"""Record and replay in the matrix: every PKCS#11 cell's session is recorded (the recorder in front
of the module, or the provider recording itself), a failing cell's reports link the trace, repro
scripts rerun the tool or replay the trace, and `interop.harness replay CELL` replays it with
signum-replay on a fresh deployment. The last test does all of it for real on one cheap cell."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from interop.harness import cell as cell_mod
from interop.harness import matrix as matrix_mod
from interop.harness import native
from interop.harness import replay as replay_mod
from interop.harness import reports
from interop.harness.site import Column, Key, Site
from interop.record import trace as trace_mod

REPO = Path(__file__).resolve().parents[2]
HSM_MODULE = "/opt/hsm/libhsm.so"
PROVIDER_TOKEN, HSM_TOKEN = "Signum", "signum-demo"


def one_cell(tmp_path, column="direct", interface="pkcs11", platform="linux"):
    document = {"version": 1, "algorithms": {"rsa-2048": {"type": "rsa", "bits": 2048}},
                "rows": [{"id": "demo-row", "tool": "demo", "interface": interface,
                          "platform": platform, "algorithms": ["rsa-2048"],
                          "columns": [column], "sign": "true", "verify": "true"}]}
    path = tmp_path / "matrix.yaml"
    path.write_text(yaml.safe_dump(document))
    return matrix_mod.load(path).cells(platform)[0]


class FakeSite:
    """What row_environment and replay_cell read from a deployment, without one."""

    def __init__(self, tmp_path, provider):
        (tmp_path / "chain.pem").write_text("")
        self.chain, self.root_ca = str(tmp_path / "chain.pem"), str(tmp_path / "chain.pem")
        self.columns = {"signum": Column("signum", str(provider), PROVIDER_TOKEN, "111111"),
                        "direct": Column("direct", HSM_MODULE, HSM_TOKEN, "222222")}
        self.closed = False

    def keys(self, column):
        return {name: Key(name, "01", "", "00") for name in ("rsa-2048", "ec-p256")}

    def module_environment(self):
        return {"SOFTHSM2_CONF": "/nowhere/softhsm2.conf"}

    def close(self):
        self.closed = True


@pytest.fixture
def build(tmp_path, monkeypatch):
    """A build tree with a recorder and a provider that cannot record itself yet."""
    root = tmp_path / "build"
    recorder = root / "reference/providers/pkcs11/recorder/libsignum-pkcs11-recorder.so"
    recorder.parent.mkdir(parents=True)
    recorder.write_bytes(b"\x7fELF recorder")
    (recorder.parent.parent / "libsignumpkcs11.so").write_bytes(b"\x7fELF provider")
    monkeypatch.setenv("SIGNUM_BUILD_DIR", str(root))
    return root


def environment_of(tmp_path, cell, site, spy=False):
    work, log_dir = tmp_path / "work", tmp_path / "logs" / cell.id
    for directory in (work, log_dir):
        directory.mkdir(parents=True, exist_ok=True)
    return cell_mod.row_environment(cell, site, work, log_dir, spy), log_dir


def test_the_direct_column_records_through_the_recorder_in_front_of_the_hsm_module(
        tmp_path, build):
    cell = one_cell(tmp_path, "direct")
    environment, log_dir = environment_of(tmp_path, cell, FakeSite(tmp_path, "unused"))
    recorder = str(cell_mod.recorder_path())
    assert environment["PKCS11_MODULE"] == recorder
    assert environment["SIGNUM_RECORD_MODULE"] == HSM_MODULE
    assert environment["SIGNUM_RECORD_FILE"] == str(log_dir / "pkcs11-trace.jsonl")
    # OpenSSL's engine is configured with the module too, so it must be the recorder as well.
    assert f"MODULE_PATH = {recorder}\n" in Path(environment["OPENSSL_ENGINE_CONF"]).read_text()
    assert (log_dir / "token-keys.txt").read_text() == "ec-p256\nrsa-2048\n"


def test_repro_puts_the_pin_logging_spy_in_front_of_the_recorder(tmp_path, build, monkeypatch):
    spy = tmp_path / "pkcs11-spy.so"
    spy.write_bytes(b"")
    monkeypatch.setattr(cell_mod, "PKCS11_SPY", str(spy))
    cell = one_cell(tmp_path, "direct")
    environment, _ = environment_of(tmp_path, cell, FakeSite(tmp_path, "unused"), spy=True)
    assert environment["PKCS11_MODULE"] == str(spy)
    assert environment["PKCS11SPY"] == str(cell_mod.recorder_path())
    assert environment["SIGNUM_RECORD_MODULE"] == HSM_MODULE


def test_the_signum_column_uses_the_providers_own_recording_once_it_has_one(tmp_path, build):
    cell = one_cell(tmp_path, "signum")
    older = build / "reference/providers/pkcs11/libsignumpkcs11.so"
    environment, log_dir = environment_of(tmp_path, cell, FakeSite(tmp_path, older))
    assert environment["PKCS11_MODULE"] == str(cell_mod.recorder_path())
    assert environment["SIGNUM_RECORD_MODULE"] == str(older)
    assert "SIGNUM_PKCS11_RECORD" not in environment

    recording = tmp_path / "recording-provider.so"
    recording.write_bytes(b"\x7fELF ... getenv(\"SIGNUM_PKCS11_RECORD\") ...")
    environment, log_dir = environment_of(tmp_path, cell, FakeSite(tmp_path, recording))
    assert environment["PKCS11_MODULE"] == str(recording)
    assert environment["SIGNUM_PKCS11_RECORD"] == str(log_dir / "pkcs11-trace.jsonl")
    assert "SIGNUM_RECORD_MODULE" not in environment


def test_cng_rows_record_nothing_and_a_missing_recorder_is_an_error_not_a_silent_gap(
        tmp_path, build):
    ksp = one_cell(tmp_path, "signum", interface="ksp")
    environment, log_dir = environment_of(tmp_path, ksp, FakeSite(tmp_path, "signumksp.dll"))
    assert "SIGNUM_RECORD_FILE" not in environment and not (log_dir / "token-keys.txt").exists()

    cell_mod.recorder_path().unlink()
    with pytest.raises(LookupError, match="recorder is not built"):
        environment_of(tmp_path, one_cell(tmp_path, "direct"), FakeSite(tmp_path, "unused"))


def test_the_cell_record_names_its_trace_when_one_was_written(tmp_path):
    cell = one_cell(tmp_path)
    result = cell_mod.CellResult(cell, "fail", "sign exited 1", 1.0, str(tmp_path), [])
    assert result.record()["trace"] == ""
    (tmp_path / "pkcs11-trace.jsonl").write_text("{}\n")
    assert result.record()["trace"] == str(tmp_path / "pkcs11-trace.jsonl")
    # A KSP/CSP cell's record of the session, written by the providers on Windows.
    (tmp_path / "pkcs11-trace.jsonl").unlink()
    (tmp_path / "cng-trace.jsonl").write_text("{}\n")
    assert result.record()["trace"] == str(tmp_path / "cng-trace.jsonl")


def failed_record(tmp_path, cell, trace=True):
    log_dir = tmp_path / "reports" / "logs" / cell.id
    log_dir.mkdir(parents=True, exist_ok=True)
    if trace:
        (log_dir / "pkcs11-trace.jsonl").write_text("{}\n")
    result = cell_mod.CellResult(cell, "fail", "sign exited 1", 1.0, str(log_dir), [])
    return result.record()


def fake_checkout(tmp_path) -> Path:
    """SIGNUM_REPO for a repro script: set-up and build only say that they ran, and the harness
    prints the arguments it was given, so what the script would run is what the test reads."""
    checkout = tmp_path / "checkout"
    (checkout / "ci").mkdir(parents=True)
    for name in ("setup", "build-matrix-parts"):
        (checkout / "ci" / name).write_text(f"#!/bin/sh\necho {name} ran\n")
        (checkout / "ci" / name).chmod(0o755)
    (checkout / "interop" / "harness").mkdir(parents=True)
    (checkout / "interop" / "__init__.py").write_text("")
    (checkout / "interop" / "harness" / "__init__.py").write_text("")
    (checkout / "interop" / "harness" / "__main__.py").write_text(
        "import sys\nprint(' '.join(sys.argv[1:]))\n")
    return checkout


def run_repro(script: Path, checkout: Path, *args):
    return subprocess.run(["bash", str(script), *args], capture_output=True, text=True,
                          env=dict(os.environ, SIGNUM_REPO=str(checkout)), check=False)


def test_a_failing_cells_reports_link_its_trace_and_its_repro_script_reruns_or_replays(tmp_path):
    cell = one_cell(tmp_path)
    record = failed_record(tmp_path, cell)
    out = tmp_path / "reports"
    reports.write_all([record], matrix_mod.load(tmp_path / "matrix.yaml"), "linux", 1.0, out)
    link = f"logs/{cell.id}/pkcs11-trace.jsonl"
    assert f"[trace]({link})" in (out / "matrix.md").read_text()
    assert f"href='{link}'>PKCS#11 trace</a>" in (out / "matrix.html").read_text()

    script, checkout = out / "repro" / f"{cell.id}.sh", fake_checkout(tmp_path)
    rerun = run_repro(script, checkout, "--keep")
    assert rerun.returncode == 0, rerun.stderr
    assert rerun.stdout.startswith("setup ran\nbuild-matrix-parts ran\n")
    assert rerun.stdout.split()[-7:] == [
        "repro", "demo-row", "--algorithm", "rsa-2048", "--column", "direct", "--keep"]
    replay = run_repro(script, checkout, "replay", "--against", "signum")
    assert replay.returncode == 0, replay.stderr
    # The reports are found beside the script, so a copied reports directory replays too.
    assert replay.stdout.split()[-6:] == [
        "replay", cell.id, "--reports", str(out.resolve()), "--against", "signum"]


def test_a_repro_script_without_a_trace_refuses_to_replay_before_building(tmp_path):
    cell = one_cell(tmp_path)
    script = reports.write_repro_script(failed_record(tmp_path, cell, trace=False),
                                        tmp_path / "reports", tmp_path / "matrix.yaml")
    refused = run_repro(script, fake_checkout(tmp_path), "replay")
    assert refused.returncode == 2 and "no recorded PKCS#11 session" in refused.stderr
    assert refused.stdout == ""  # neither set-up nor build ran


def fake_replayer(build: Path, cross_module: bool, exit_code: int) -> Path:
    """A signum-replay that writes down how it was called and what its PIN file held."""
    path = build / "reference/replay/signum-replay"
    path.parent.mkdir(parents=True)
    usage = "usage: signum-replay TRACE --module PATH" + (" [--cross-module]" if cross_module
                                                          else "")
    path.write_text(f"""#!/bin/bash
if [[ $1 == --help ]]; then echo '{usage}' >&2; exit 2; fi
pin=$(sed -n '/--pin-file/{{n;p}}' <(printf '%s\\n' "$@"))
{{ printf '%s\\n' "$@"; echo "pin-mode $(stat -c %a "$pin") pin $(cat "$pin")";
  echo "conf $SOFTHSM2_CONF"; }} > "$(dirname "$0")/called"
echo "signum-replay: summary"
exit {exit_code}
""")
    path.chmod(0o755)
    return path


def replay_with_fake(tmp_path, build, against="", cross_module=True, exit_code=1):
    cell = one_cell(tmp_path, "direct")
    failed_record(tmp_path, cell)
    (tmp_path / "reports/logs" / cell.id / "token-keys.txt").write_text("rsa-2048\nec-p256\n")
    replayer = fake_replayer(build, cross_module, exit_code)
    opened = []

    def open_site(directory, keys):
        opened.append(FakeSite(tmp_path, "/build/libsignumpkcs11.so"))
        opened[-1].keys_asked = keys
        return opened[-1]

    code = replay_mod.replay_cell(cell, tmp_path / "reports", against, open_site)
    return code, (replayer.parent / "called").read_text().splitlines(), opened[0]


def test_replay_runs_signum_replay_on_the_cells_column_with_its_token_and_a_pin_file(
        tmp_path, build, capfd):
    code, called, site = replay_with_fake(tmp_path, build)
    assert code == 1  # signum-replay's verdict is the command's
    assert called[1:7] == ["--module", HSM_MODULE, "--pin-file", called[4], "--token", HSM_TOKEN]
    assert "--cross-module" in called
    assert "222222" not in called[:-2]  # never on the command line
    assert called[-2] == "pin-mode 600 pin 222222"
    assert called[-1] == "conf /nowhere/softhsm2.conf"
    assert site.closed and site.keys_asked == ["rsa-2048", "ec-p256"]
    assert not Path(called[4]).exists()  # the PIN file went with its directory
    assert "signum-replay: summary" in capfd.readouterr().out  # its report is the command's


def test_replay_against_the_other_column_or_a_module_file(tmp_path, build):
    _, called, _ = replay_with_fake(tmp_path, build, against="signum", exit_code=0)
    assert called[2] == "/build/libsignumpkcs11.so" and called[6] == PROVIDER_TOKEN
    assert called[-2].endswith("pin 111111")

    shim = tmp_path / "shim.so"
    shim.write_bytes(b"")
    (build / "reference/replay").rename(tmp_path / "first-replay")
    _, called, _ = replay_with_fake(tmp_path, build, against=str(shim))
    assert called[2] == str(shim) and called[6] == HSM_TOKEN  # the cell's column's token


def test_replay_without_cross_module_still_runs_and_says_why_it_will_diverge(
        tmp_path, build, capsys):
    code, called, _ = replay_with_fake(tmp_path, build, cross_module=False)
    assert code == 1 and "--cross-module" not in called
    assert "has no --cross-module" in capsys.readouterr().err


def test_what_cannot_be_replayed_is_refused_before_any_deployment(tmp_path, build):
    def no_site(directory, keys):
        raise AssertionError("no deployment should be brought up")

    cell = one_cell(tmp_path, "direct")
    with pytest.raises(replay_mod.ReplayError, match="no recorded trace"):
        replay_mod.replay_cell(cell, tmp_path / "reports", "", no_site)
    failed_record(tmp_path, cell)
    with pytest.raises(replay_mod.ReplayError, match="neither a column"):
        replay_mod.replay_cell(cell, tmp_path / "reports", "hsm", no_site)
    with pytest.raises(replay_mod.ReplayError, match="signum-replay is not built"):
        replay_mod.replay_cell(cell, tmp_path / "reports", "", no_site)
    ksp = one_cell(tmp_path, "signum", interface="ksp", platform="windows")
    with pytest.raises(replay_mod.ReplayError, match="only PKCS#11 sessions are recorded"):
        replay_mod.replay_cell(ksp, tmp_path / "reports", "", no_site)


def test_replay_of_an_unknown_cell_exits_2(capsys):
    from interop.harness.__main__ import main
    assert main(["replay", "no-such-row.rsa-2048.direct"]) == 2
    assert "no cell `no-such-row.rsa-2048.direct`" in capsys.readouterr().err


# ---- for real: one cell recorded by the harness, then replayed without its tool ---------------

REAL_CELL = "openssl-dgst.rsa-2048.signum"  # among the fastest PKCS#11 cells (well under 1 s)


def test_a_real_cell_is_recorded_and_its_session_replays_without_the_tool(tmp_path):
    build = native.build_dir()
    for needed in (cell_mod.recorder_path(), replay_mod.replayer_path(),
                   build / "interop"):
        if not needed.exists():
            pytest.skip(f"needs the matrix parts built ({needed} is missing; ci/build-matrix-parts)")
    matrix = matrix_mod.load(REPO / "matrix.yaml")
    cell = next(c for c in matrix.cells("linux") if c.id == REAL_CELL)
    if cell_mod.static_skip_reason(cell):
        pytest.skip(cell_mod.static_skip_reason(cell))
    reports_dir = tmp_path / "reports"
    (tmp_path / "scratch").mkdir()
    site = Site(tmp_path / "deployment", keys=[cell.algorithm.name])
    try:
        result = cell_mod.run_cell(cell, site, reports_dir / "logs", tmp_path / "scratch")
    finally:
        site.close()
    assert result.status == "pass", result.reason

    recorded = trace_mod.load(result.record()["trace"])
    signs = [c for c in recorded.calls_named("C_Sign") if c.ok and c.out.get("pSignature")]
    assert signs, f"no C_Sign with a signature in {recorded.path}: {recorded.functions()}"
    assert len(bytes.fromhex(signs[-1].out["pSignature"])) == cell.algorithm.bits // 8
    pin_length = len(site.columns[cell.column].pin)
    assert all(c.args["pPin"] == {"redacted": True, "length": pin_length}
               for c in recorded.calls_named("C_Login")), "a PIN reached the trace"

    if not replay_mod.supports_cross_module(replay_mod.replayer_path()):
        pytest.skip("this signum-replay has no --cross-module: a trace from another deployment "
                    "(other keys) cannot match")
    replayed = subprocess.run(
        [sys.executable, "-m", "interop.harness", "replay", cell.id, "--reports",
         str(reports_dir)], cwd=REPO, capture_output=True, text=True, timeout=120, check=False)
    assert replayed.returncode == 0, replayed.stdout + replayed.stderr
    assert "summary:" in replayed.stdout


def test_ksp_and_csp_cells_have_the_providers_record_their_session(tmp_path, build):
    """On Windows a KSP/CSP cell's signtool session is recorded by the providers themselves
    (SIGNUM_CNG_RECORD) beside the step logs, to be replayed under Wine (docs/windows.md)."""
    for interface in ("ksp", "csp"):
        (tmp_path / interface).mkdir()
        cell = one_cell(tmp_path / interface, "signum", interface=interface, platform="windows")
        environment, log_dir = environment_of(tmp_path / interface, cell,
                                              FakeSite(tmp_path / interface, "unused"))
        assert environment["SIGNUM_CNG_RECORD"] == str(log_dir / "cng-trace.jsonl"), interface
        assert "SIGNUM_RECORD_FILE" not in environment and "SIGNUM_PKCS11_RECORD" not in environment

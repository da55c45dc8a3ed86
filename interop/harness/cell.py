"""Runs one cell: the row's prepare, sign and verify scripts with the row environment, and turns
the outcome plus the row's expectation into a status (pass | fail | skip | xfail).

Each step is a script file written next to its log, so what ran is exactly what a person reads
in reports/logs/<cell>/ and in a repro script.
"""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from . import native
from .matrix import Cell
from .site import Site

HARNESS_DIR = Path(__file__).resolve().parents[1]
STEPS = ("prepare", "sign", "verify")
# A step that exits 77 found that the tool cannot do this here (e.g. an osslsigncode older than
# 2.8 has no script signing): a skip whose reason is the step's last line of output, as automake
# test drivers treat 77.
SKIP_EXIT_CODE = 77
FLAKY_ATTEMPTS = 3
LOG_TAIL_LINES = 25


# Where each interface's Signum provider is built. A row whose provider is not built on this
# platform is skipped with that reason rather than run against nothing.
PROVIDERS = {
    "pkcs11": ("reference/providers/pkcs11/libsignumpkcs11.so", "PKCS#11 provider"),
    "ksp": ("bin/signumksp.dll", "CNG Key Storage Provider (issue 6)"),
    "csp": ("bin/signumcsp.dll", "legacy CryptoAPI CSP (issue 6)"),
    "ctk": ("reference/providers/ctk/SignumToken.appex", "CryptoTokenKit extension"),
}
# On Windows $SIGNUM_BUILD_DIR is the mingw tree, where every program and DLL lands in bin/.
WINDOWS_PROVIDERS = dict(PROVIDERS, pkcs11=("bin/signumpkcs11.dll",
                                            "PKCS#11 provider for Windows"))
# On macOS CMake names the shared library .dylib (issue 17 item 4).
MACOS_PROVIDERS = dict(PROVIDERS, pkcs11=("reference/providers/pkcs11/libsignumpkcs11.dylib",
                                          "PKCS#11 provider for macOS"))


def platform_providers() -> dict:
    if os.name == "nt":
        return WINDOWS_PROVIDERS
    return MACOS_PROVIDERS if sys.platform == "darwin" else PROVIDERS


def missing_provider(interface: str) -> str:
    relative, what = platform_providers()[interface]
    path = native.build_dir() / relative
    return "" if path.exists() else f"Signum's {what} is not built here ({path} is missing)"


def util_path() -> str:
    """signum-util of the build the provider comes from (p11-kit registration, listing)."""
    relative = "bin/signum-util.exe" if os.name == "nt" else "reference/util/signum-util"
    return str(native.build_dir() / relative)


def engine_path() -> str:
    """libp11's OpenSSL engine (libengine-pkcs11-openssl), from OpenSSL's own ENGINESDIR."""
    try:
        out = subprocess.run(["openssl", "version", "-e"], capture_output=True, text=True,
                             check=False).stdout
        match = re.search(r'ENGINESDIR: "([^"]+)"', out)
        if match:
            return str(Path(match.group(1)) / "pkcs11.so")
    except OSError:
        pass
    return "/usr/lib/x86_64-linux-gnu/engines-3/pkcs11.so"


@dataclasses.dataclass
class StepResult:
    name: str
    exit_code: int
    seconds: float
    log: str
    timed_out: bool = False


@dataclasses.dataclass
class CellResult:
    cell: Cell
    status: str                 # pass | fail | skip | xfail
    reason: str
    seconds: float
    log_dir: str
    steps: list
    attempts: int = 1

    def record(self) -> dict:
        row = self.cell.row
        expectation = self.cell.expectation
        # A PKCS#11 cell's trace, or a KSP/CSP cell's (recorded by the providers on Windows).
        trace = next((Path(self.log_dir) / name for name in (TRACE_FILE, CNG_TRACE_FILE)
                      if (Path(self.log_dir) / name).exists()), Path(self.log_dir) / TRACE_FILE)
        return {
            "id": self.cell.id, "row": row.id, "tool": row.tool, "artifact": row.artifact,
            "interface": row.interface, "platform": row.platform,
            "algorithm": self.cell.algorithm.name, "column": self.cell.column,
            "hash": self.cell.hash, "status": self.status, "reason": self.reason,
            "bug": expectation.bug if expectation else "",
            "seconds": round(self.seconds, 2), "attempts": self.attempts,
            "log": self.log_dir, "trace": str(trace) if trace.exists() else "",
            "steps": [dataclasses.asdict(step) for step in self.steps],
        }


PKCS11_SPY = "/usr/lib/x86_64-linux-gnu/pkcs11-spy.so"
# Every PKCS#11 cell's session, recorded (trace format v1, no PINs) beside the step logs; what
# `python3 -m interop.harness replay CELL` replays.
TRACE_FILE = "pkcs11-trace.jsonl"
# A KSP/CSP cell's session as the Windows providers record it (SIGNUM_CNG_RECORD, kind
# signum-cng-trace): replayed under Wine by signum-cng-replay.exe (docs/windows.md).
CNG_TRACE_FILE = "cng-trace.jsonl"
# The key labels on the token the trace was recorded against, one a line: a replay provisions the
# same ones, since a tool that lists the token's objects recorded every one of them.
TOKEN_KEYS_FILE = "token-keys.txt"
PROVIDER_RECORD_VARIABLE = "SIGNUM_PKCS11_RECORD"


def recorder_path() -> Path:
    """libsignum-pkcs11-recorder.so: the module a tool loads to have its PKCS#11 session
    recorded as a trace (docs/trace-format.md) in front of the real module."""
    return native.build_dir() / "reference/providers/pkcs11/recorder/libsignum-pkcs11-recorder.so"


_records_itself = {}


def provider_records_itself(module: str) -> bool:
    """Whether this build of libsignumpkcs11.so writes trace v1 itself (SIGNUM_PKCS11_RECORD):
    a build that reads the variable has its name among its strings. An older build gets the
    recorder in front instead, so the signum column has a trace either way."""
    if module not in _records_itself:
        try:
            _records_itself[module] = PROVIDER_RECORD_VARIABLE.encode() in Path(module).read_bytes()
        except OSError:
            _records_itself[module] = False
    return _records_itself[module]


def module_chain(cell: Cell, module: str, log_dir: Path, spy: bool) -> tuple:
    """(the module the tool loads, the variables that make it record) for a PKCS#11 cell.

    The trace is always on: the provider records itself; in front of any other module (the
    HSM's, or a provider build that cannot record yet) the recorder records. With `spy` (repro
    only: it logs the PIN in clear), OpenSC's pkcs11-spy goes in front of that in the direct
    column, for its human-readable call log."""
    trace = str(log_dir / TRACE_FILE)
    environment = {}
    if cell.row.interface != "pkcs11" or not sys.platform.startswith("linux"):
        return module, environment  # the recorder is built for Linux; CNG/CTK do not record yet
    if cell.column == "signum" and provider_records_itself(module):
        environment[PROVIDER_RECORD_VARIABLE] = trace
    else:
        if not recorder_path().exists():
            raise LookupError(f"the PKCS#11 recorder is not built ({recorder_path()} is missing;"
                              " ci/build-matrix-parts builds it)")
        environment.update(SIGNUM_RECORD_MODULE=module, SIGNUM_RECORD_FILE=trace)
        module = str(recorder_path())
    if spy and cell.column == "direct" and Path(PKCS11_SPY).exists():
        environment.update(PKCS11SPY=module, PKCS11SPY_OUTPUT=str(log_dir / "pkcs11-spy.log"))
        module = PKCS11_SPY
    return module, environment


def row_environment(cell: Cell, site: Site, work: Path, log_dir: Path, spy: bool = False) -> dict:
    """The variables docs/matrix.md promises every row script; $PKCS11_MODULE is the column's
    module behind whatever records its session (module_chain)."""
    column = site.columns[cell.column]
    keys = site.keys(cell.column)
    label = cell.algorithm.name
    if label not in keys:
        raise LookupError(f"token `{column.token_label}` ({column.module}) has no certificate "
                          f"labelled `{label}` with a private key beside it; it has {sorted(keys)}")
    key = keys[label]
    (work / "cert.pem").write_text(key.certificate_pem)
    chain_text = Path(site.chain).read_text()
    (work / "cert-chain.pem").write_text(key.certificate_pem + chain_text)
    module, recording = module_chain(cell, column.module, log_dir, spy)
    if recording:
        (log_dir / TOKEN_KEYS_FILE).write_text("".join(f"{name}\n" for name in sorted(keys)))
    engine_conf = work / "openssl-engine.cnf"
    engine_conf.write_text(
        "openssl_conf = openssl_init\n[openssl_init]\nengines = engine_section\n"
        "[engine_section]\npkcs11 = pkcs11_section\n[pkcs11_section]\nengine_id = pkcs11\n"
        f"dynamic_path = {engine_path()}\nMODULE_PATH = {module}\ninit = 0\n"
        "[req]\ndistinguished_name = req_dn\n[req_dn]\n")
    uri_base = f"pkcs11:token={column.token_label};object={label}"
    environment = {
        "WORK": str(work), "HARNESS": str(HARNESS_DIR), "COLUMN": cell.column,
        "PKCS11_MODULE": module, "TOKEN_LABEL": column.token_label, "PIN": column.pin,
        "ALGORITHM": label, "KEY_TYPE": cell.algorithm.key_type,
        "KEY_BITS": str(cell.algorithm.bits), "KEY_LABEL": label, "KEY_ID": key.id_hex,
        "KEY_URI": uri_base + ";type=private", "CERT_URI": uri_base + ";type=cert",
        "CERT_SHA1": key.sha1_thumbprint, "HASH": cell.hash,
        "CERT": str(work / "cert.pem"), "CHAIN": site.chain,
        "CERT_CHAIN": str(work / "cert-chain.pem"), "ROOT_CA": site.root_ca,
        "OPENSSL_ENGINE_CONF": str(engine_conf), "HOME": str(work / "home"),
        # A per-cell XDG config, so a caller's own ~/.config (p11-kit module files, ...) never
        # leaks into a cell.
        "XDG_CONFIG_HOME": str(work / "home" / ".config"), "SIGNUM_UTIL": util_path(),
        "SIGNUM_PKCS11_TRACE": str(log_dir / "pkcs11-trace.log"),
    }
    if cell.row.interface in ("ksp", "csp"):
        # The Windows providers' call trace (signum/cng/nte_status.h) and their record of the
        # session (no PIN), beside the step logs.
        environment["SIGNUM_CNG_TRACE"] = str(log_dir / "cng-trace.log")
        environment["SIGNUM_CNG_RECORD"] = str(log_dir / CNG_TRACE_FILE)
    environment.update(site.module_environment())
    environment.update(recording)
    return environment


def _script_text(shell: str, body: str) -> tuple:
    if shell == "bash":
        return "bash", "set -euo pipefail\n" + body
    if shell == "pwsh":
        return "ps1", "$ErrorActionPreference = 'Stop'\n" + body
    return "cmd", "@echo off\r\n" + body.replace("\n", "\r\n")


def _command(shell: str, script: Path) -> list:
    if shell == "bash":
        return ["bash", str(script)]
    if shell == "pwsh":
        return ["pwsh", "-NoProfile", "-NonInteractive", "-File", str(script)]
    return ["cmd", "/c", str(script)]


def _kill_tree(process: subprocess.Popen):
    """Ends a timed-out step with everything it started, and only that."""
    if os.name == "nt":  # no process groups: taskkill /T follows the parent-child tree
        subprocess.run(["taskkill", "/F", "/T", "/PID", str(process.pid)],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    else:
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def run_step(name: str, shell: str, body: str, environment: dict, work: Path, log_dir: Path,
             timeout: float) -> StepResult:
    suffix, text = _script_text(shell, body)
    script = log_dir / f"{name}.{suffix}"
    script.write_text(text)
    log = log_dir / f"{name}.log"
    start = time.monotonic()
    with open(log, "wb") as out:
        # A session of its own, so a timeout ends the step's whole process group (ours) only
        # (POSIX; Windows ignores start_new_session and _kill_tree walks the process tree).
        process = subprocess.Popen(_command(shell, script), cwd=work, env=environment,
                                   stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                   start_new_session=True)
        try:
            code = process.wait(timeout=max(timeout, 1))
            timed_out = False
        except subprocess.TimeoutExpired:
            _kill_tree(process)
            code, timed_out = -9, True
    return StepResult(name, code, time.monotonic() - start, str(log), timed_out)


class _SkipCell(Exception):
    pass


def log_tail(path: str, lines: int = LOG_TAIL_LINES) -> str:
    try:
        text = Path(path).read_text(errors="replace").splitlines()
    except OSError:
        return ""
    return "\n".join(text[-lines:])


def _attempt(cell: Cell, site: Site, log_dir: Path, scratch_root: Path, spy: bool) -> tuple:
    """Runs prepare, sign, verify once. Returns (steps, failure message or "")."""
    if log_dir.exists():
        shutil.rmtree(log_dir)
    log_dir.mkdir(parents=True)
    # Scratch lives under a short path: gpg-agent's socket path must fit in sun_path.
    work = Path(tempfile.mkdtemp(prefix=cell.row.id[:24] + "-", dir=scratch_root))
    (work / "home").mkdir()
    steps = []
    deadline = time.monotonic() + cell.row.timeout
    try:
        environment = dict(os.environ)
        environment.update(row_environment(cell, site, work, log_dir, spy))
        (log_dir / "environment.txt").write_text("".join(
            f"{k}={v}\n" for k, v in sorted(environment.items())
            if k not in os.environ or os.environ[k] != v))
        for name in STEPS:
            body = getattr(cell.row, name)
            if not body.strip():
                continue
            step = run_step(name, cell.row.shell, body, environment, work, log_dir,
                            deadline - time.monotonic())
            steps.append(step)
            if step.timed_out:
                return steps, f"{name} timed out after {cell.row.timeout}s\n{log_tail(step.log)}"
            if step.exit_code == SKIP_EXIT_CODE:
                last = (log_tail(step.log, 1) or f"{name} exited {SKIP_EXIT_CODE}").strip()
                raise _SkipCell(f"{name}: {last}")
            if step.exit_code != 0:
                return steps, f"{name} exited {step.exit_code}\n{log_tail(step.log)}"
        return steps, ""
    except (LookupError, OSError, RuntimeError) as error:
        return steps, f"harness: {error}"
    finally:
        shutil.rmtree(work, ignore_errors=True)


def static_skip_reason(cell: Cell) -> str:
    """Why the cell cannot run here, known before any deployment exists ("" if it can run): an
    expected skip, a provider not built on this platform, or a tool that is not installed."""
    expectation = cell.expectation
    if expectation and expectation.status == "skip":
        return expectation.reason
    no_provider = missing_provider(cell.row.interface)
    if no_provider:
        return no_provider
    missing = cell.row.missing_requirements()
    if missing:
        hint = cell.row.install.get(cell.row.platform, "")
        return "not installed here: " + ", ".join(missing) + (f"; install: {hint}" if hint else "")
    return ""


def run_cell(cell: Cell, site: Site, log_root: Path, scratch_root: Path,
             spy: bool = False) -> CellResult:
    expectation = cell.expectation
    log_dir = Path(log_root) / cell.id
    start = time.monotonic()
    skip_reason = static_skip_reason(cell)
    if skip_reason:
        return CellResult(cell, "skip", skip_reason, 0.0, str(log_dir), [])

    attempts = FLAKY_ATTEMPTS if expectation and expectation.status == "flaky" else 1
    for attempt in range(1, attempts + 1):
        try:
            steps, failure = _attempt(cell, site, log_dir, scratch_root, spy)
        except _SkipCell as skip:
            return CellResult(cell, "skip", str(skip), time.monotonic() - start, str(log_dir),
                              [], attempt)
        if not failure:
            break
    seconds = time.monotonic() - start
    if not failure:
        if expectation and expectation.status == "xfail":
            return CellResult(cell, "fail", f"expected to fail ({expectation.reason}) but passed: "
                              "update matrix.yaml", seconds, str(log_dir), steps, attempt)
        return CellResult(cell, "pass", "", seconds, str(log_dir), steps, attempt)
    if expectation and expectation.status in ("xfail", "flaky"):
        note = f"{expectation.status}: {expectation.reason}"
        return CellResult(cell, "xfail", f"{note}\n{failure}", seconds, str(log_dir), steps,
                          attempt)
    return CellResult(cell, "fail", failure, seconds, str(log_dir), steps, attempt)

"""`python3 -m interop.harness replay CELL`: reruns a cell's recorded PKCS#11 session without the
tool. The cell's trace (reports/logs/<cell>/pkcs11-trace.jsonl, docs/trace-format.md) is replayed
by signum-replay against a column's module on a fresh deployment, which answers "does this module
still do what the tool needed" (the cell's own column) or "does the other side accept what this
tool did" (--against the other column).
"""

from __future__ import annotations

import dataclasses
import os
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

from . import native
from .cell import TOKEN_KEYS_FILE, TRACE_FILE
from .matrix import Cell

COLUMNS = ("signum", "direct")
# signum-replay's exit status when it cannot use the trace or the module (docs/trace-format.md);
# the harness uses it too for a cell that has nothing to replay.
UNUSABLE = 2
CROSS_MODULE_OPTION = "--cross-module"


class ReplayError(Exception):
    """Why a cell cannot be replayed (no trace, no replayer, ...)."""


@dataclasses.dataclass(frozen=True)
class Target:
    """What the trace is replayed against: a module and the token and PIN it is used with."""
    module: str
    token_label: str
    pin: str
    description: str


def command_line(cell_id: str, reports: Path) -> str:
    """How a person replays a cell (printed beside failures)."""
    return (f"python3 -m interop.harness replay {shlex.quote(cell_id)} "
            f"--reports {shlex.quote(str(reports))}")


def replayer_path() -> Path:
    return native.build_dir() / "reference/replay/signum-replay"


def supports_cross_module(replayer: Path) -> bool:
    """A trace recorded on another deployment met other keys (every deployment makes its own),
    so only a signum-replay that matches objects across modules can replay it; older builds
    compare key material and signatures byte for byte, which such a trace never matches."""
    try:
        usage = subprocess.run([str(replayer), "--help"], capture_output=True, text=True,
                               check=False)
    except OSError as error:
        raise ReplayError(f"signum-replay cannot run ({replayer}: {error})") from error
    return CROSS_MODULE_OPTION in usage.stdout + usage.stderr


def trace_path(reports: Path, cell: Cell) -> Path:
    if cell.row.interface != "pkcs11":
        raise ReplayError(f"{cell.id} is a {cell.row.interface.upper()} cell: only PKCS#11 "
                          "sessions are recorded")
    path = Path(reports) / "logs" / cell.id / TRACE_FILE
    if not path.exists():
        raise ReplayError(f"{cell.id} has no recorded trace ({path} is missing: was the cell run "
                          "with these reports, and did it reach its tool?)")
    return path


def token_keys(trace: Path, cell: Cell) -> list:
    """The keys the recording token held (cell.py writes them beside the trace), else the
    cell's own."""
    try:
        return (trace.parent / TOKEN_KEYS_FILE).read_text().split()
    except OSError:
        return [cell.algorithm.name]


def check_against(against: str):
    if against and against not in COLUMNS and not Path(against).is_file():
        raise ReplayError(f"--against {against}: neither a column ({', '.join(COLUMNS)}) nor a "
                          "module file")


def target(site, cell: Cell, against: str) -> Target:
    """`against`: a column name, or the path of a module standing in for the cell's own column's
    module (another build of it, a shim in front of it), used with that column's token and PIN."""
    name = against or cell.column
    if name in COLUMNS:
        column = site.columns[name]
        return Target(column.module, column.token_label, column.pin, f"the {name} column")
    check_against(against)
    own = site.columns[cell.column]
    return Target(str(Path(against).resolve()), own.token_label, own.pin,
                  f"{against} (with the {cell.column} column's token)")


def command(replayer: Path, trace: Path, replay_target: Target, pin_file: Path,
            cross_module: bool) -> list:
    """The PIN reaches signum-replay in a file, never on its command line (visible in ps)."""
    arguments = [str(replayer), str(trace), "--module", replay_target.module,
                 "--pin-file", str(pin_file), "--token", replay_target.token_label]
    return arguments + ([CROSS_MODULE_OPTION] if cross_module else [])


def write_pin_file(directory: Path, pin: str) -> Path:
    path = Path(directory) / "pin"
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as out:
        out.write(pin + "\n")
    return path


def replay_cell(cell: Cell, reports: Path, against: str, open_site) -> int:
    """Replays the cell's trace on a deployment from `open_site(directory, keys)` (closed here)
    and returns signum-replay's exit status: 0 matched, 1 diverged, 2 unusable."""
    trace = trace_path(reports, cell)
    check_against(against)
    replayer = replayer_path()
    if not replayer.exists():
        raise ReplayError(f"signum-replay is not built ({replayer} is missing; "
                          "ci/build-matrix-parts builds it)")
    cross_module = supports_cross_module(replayer)
    with tempfile.TemporaryDirectory(prefix="signum-replay-") as scratch:
        print(f"harness: bringing up a fresh deployment in {scratch}/deployment")
        site = open_site(Path(scratch) / "deployment", token_keys(trace, cell))
        try:
            replay_target = target(site, cell, against)
            pin_file = write_pin_file(Path(scratch), replay_target.pin)
            arguments = command(replayer, trace, replay_target, pin_file, cross_module)
            print(f"harness: replaying {trace} against {replay_target.description}: "
                  f"{replay_target.module}, token {replay_target.token_label}")
            if not cross_module:
                print(f"harness: this signum-replay has no {CROSS_MODULE_OPTION}; the fresh "
                      "deployment's keys are not the recorded ones, so key material and "
                      "signatures will diverge", file=sys.stderr)
            sys.stdout.flush()
            environment = dict(os.environ, **site.module_environment())
            return subprocess.run(arguments, env=environment, check=False).returncode
        finally:
            site.close()

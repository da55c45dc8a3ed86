"""The harness command line (run from the repository root with Debian's /usr/bin/python3):

  python3 -m interop.harness run [pytest args]       the whole matrix for this platform (ci/matrix)
  python3 -m interop.harness list                    rows and cells for this platform
  python3 -m interop.harness repro ROW [--algorithm A] [--column C] [--keep]
                                                     a fresh deployment; the row's cells with traces
  python3 -m interop.harness replay CELL [--reports DIR] [--against signum|direct|MODULE]
                                                     a fresh deployment; the cell's recorded PKCS#11
                                                     session replayed without the tool
  python3 -m interop.harness vendor --module M --token L --pin-file F [--env N=V]... [pytest args]
                                                     the whole matrix through a vendor's HSM module
  python3 -m interop.harness cell --deployment DIR|SITE.json --row ROW --algorithm A --column C
                                                     one cell against a deployment that is running
  python3 -m interop.harness --platform P totals REPORT.json...
                                                     the whole run from its shards' matrix.json:
                                                     every cell reported once, minimum met
"""

from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

from . import matrix as matrix_mod
from . import minimum
from . import replay as replay_mod
from .cell import TRACE_FILE, run_cell
from .site import DescribedSite, Site, VendorHsm

REPO = Path(__file__).resolve().parents[2]
DEFAULT_WORKERS = "3"


def _pytest(args: list) -> int:
    command = [sys.executable, "-m", "pytest", str(REPO / "interop" / "test_matrix.py"),
               "-p", "no:cacheprovider", "-q", "-rfE"]
    if not any(a == "-n" or a.startswith("-n") or a.startswith("--numprocesses") for a in args):
        command += ["-n", os.environ.get("SIGNUM_MATRIX_WORKERS", DEFAULT_WORKERS)]
    if not any(a.startswith("--junitxml") for a in args):
        reports = next((a.split("=", 1)[1] for a in args if a.startswith("--reports=")),
                       str(REPO / "reports"))
        command.append(f"--junitxml={reports}/junit.xml")
    return subprocess.call(command + args, cwd=REPO)


def _print_cells(matrix, platform):
    cells = matrix.cells(platform)
    for row in matrix.rows:
        if row.platform != platform:
            continue
        print(f"{row.id:32} {row.tool:28} {row.interface:7} {','.join(row.algorithms)}"
              f"  [{','.join(row.columns)}]")
    others = matrix.other_platform_rows(platform)
    print(f"{len(cells)} cells on {platform}; {len(others)} rows for other platforms")


def _show_script(title: str, body: str):
    if body.strip():
        print(f"  --- {title} ---")
        for line in body.rstrip().splitlines():
            print(f"    {line}")


def _run_cells(cells, site, log_root: Path, spy: bool) -> int:
    failures = 0
    with tempfile.TemporaryDirectory(prefix="sgi-") as scratch:
        for cell in cells:
            print(f"\n== {cell.id}: {cell.row.tool} ({cell.row.artifact}), hash {cell.hash}")
            _show_script("prepare", cell.row.prepare)
            _show_script("sign", cell.row.sign)
            _show_script("verify", cell.row.verify)
            result = run_cell(cell, site, log_root, Path(scratch), spy=spy)
            print(f"  => {result.status.upper()} in {result.seconds:.1f}s")
            if result.reason:
                print("     " + result.reason.replace("\n", "\n     "))
            print(f"  environment, scripts and tool output: {result.log_dir}/")
            for trace in ("pkcs11-trace.log", "pkcs11-spy.log"):
                path = Path(result.log_dir) / trace
                if path.exists():
                    print(f"  PKCS#11 call trace: {path}")
            if (Path(result.log_dir) / TRACE_FILE).exists():
                print(f"  recorded PKCS#11 session: {Path(result.log_dir) / TRACE_FILE}")
                print(f"  replayed without the tool: "
                      f"{replay_mod.command_line(cell.id, log_root.parent)}")
            failures += result.status == "fail"
    return failures


def _vendor_args(parser):
    parser.add_argument("--vendor-module", default="")
    parser.add_argument("--vendor-token", default="")
    parser.add_argument("--vendor-pin-file", default="")
    parser.add_argument("--vendor-env", action="append", default=[])


def _vendor(args):
    if not args.vendor_module:
        return None
    env = dict(item.partition("=")[::2] for item in args.vendor_env)
    return VendorHsm(args.vendor_module, args.vendor_token, args.vendor_pin_file, env)


def _replay(matrix, args) -> int:
    cell = next((c for c in matrix.cells(args.platform) if c.id == args.cell), None)
    if cell is None:
        print(f"harness: no cell `{args.cell}` on {args.platform} (row.algorithm.column; "
              "`python3 -m interop.harness list` shows the rows)", file=sys.stderr)
        return replay_mod.UNUSABLE
    try:
        return replay_mod.replay_cell(
            cell, Path(args.reports), args.against,
            lambda directory, keys: Site(directory, keys=keys))
    except (replay_mod.ReplayError, RuntimeError) as error:  # RuntimeError: no deployment
        print(f"harness: {error}", file=sys.stderr)
        return replay_mod.UNUSABLE


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "run":
        return _pytest(argv[1:])
    if argv and argv[0] == "vendor":
        vendor = argparse.ArgumentParser(prog="harness vendor")
        vendor.add_argument("--module", required=True)
        vendor.add_argument("--token", required=True)
        vendor.add_argument("--pin-file", required=True)
        vendor.add_argument("--env", action="append", default=[])
        known, rest = vendor.parse_known_args(argv[1:])
        extra = [f"--vendor-module={known.module}", f"--vendor-token={known.token}",
                 f"--vendor-pin-file={known.pin_file}"]
        extra += [f"--vendor-env={item}" for item in known.env]
        # One deployment at a time: a token holds one set of demo keys per label.
        return _pytest(["-n", "1"] + extra + rest)

    parser = argparse.ArgumentParser(prog="python3 -m interop.harness",
                                     description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--matrix", default=str(REPO / "matrix.yaml"))
    parser.add_argument("--platform", default=matrix_mod.current_platform())
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list")
    repro = sub.add_parser("repro")
    repro.add_argument("row")
    repro.add_argument("--algorithm", default="")
    repro.add_argument("--column", default="")
    repro.add_argument("--keep", action="store_true", help="leave the deployment running")
    repro.add_argument("--no-spy", action="store_true",
                       help="no pkcs11-spy on the direct column (it logs the PIN in clear)")
    _vendor_args(repro)
    cell = sub.add_parser("cell")
    cell.add_argument("--deployment", required=True,
                      help="a running deployment (ci/demo up), or its site file (site.json)")
    cell.add_argument("--row", required=True)
    cell.add_argument("--algorithm", required=True)
    cell.add_argument("--column", required=True)
    cell.add_argument("--reports", default=str(REPO / "reports"))
    replay = sub.add_parser("replay", help="replay a cell's recorded PKCS#11 session")
    replay.add_argument("cell", help="row.algorithm.column, as in reports/logs/")
    replay.add_argument("--reports", default=str(REPO / "reports"),
                        help="the run's reports (the trace is logs/CELL/" + TRACE_FILE + ")")
    replay.add_argument("--against", default="",
                        help="signum, direct (default: the cell's column) or a module file "
                             "standing in for the cell's column's module")
    totals = sub.add_parser("totals")
    totals.add_argument("reports", nargs="+", help="the shards' reports/matrix.json")
    args = parser.parse_args(argv)

    try:
        matrix = matrix_mod.load(args.matrix)
    except matrix_mod.MatrixError as error:
        print(f"harness: {error}", file=sys.stderr)
        return 2
    if args.command == "list":
        _print_cells(matrix, args.platform)
        return 0
    if args.command == "totals":
        verdict = minimum.judge_reports(matrix, args.platform, args.reports)
        print(f"signum matrix totals: {verdict.line()}")
        if not verdict.ok:
            print(f"signum matrix totals: FAIL: {verdict.reason}", file=sys.stderr)
        return 0 if verdict.ok else 1
    if args.command == "replay":
        return _replay(matrix, args)

    row = matrix.row(args.row)
    cells = [c for c in matrix.cells(row.platform, {row.id})
             if (not args.algorithm or c.algorithm.name == args.algorithm)
             and (not args.column or c.column == args.column)]
    if not cells:
        print(f"harness: row {row.id} has no cell for algorithm `{args.algorithm}` and column "
              f"`{args.column}` (algorithms {list(row.algorithms)}, columns {list(row.columns)})",
              file=sys.stderr)
        return 2
    if args.command == "cell":
        # A site file (.json, docs/windows.md) stands for a deployment running elsewhere.
        site = (DescribedSite(args.deployment) if args.deployment.endswith(".json")
                else Site(Path(args.deployment), owned=False))
        return 1 if _run_cells(cells, site, Path(args.reports) / "logs", spy=False) else 0

    # repro: a fresh deployment of its own
    directory = Path(tempfile.mkdtemp(prefix="signum-repro-"))
    print(f"harness: bringing up a fresh deployment in {directory}/deployment")
    site = Site(directory / "deployment",
                keys=sorted({c.algorithm.name for c in cells}), vendor=_vendor(args),
                owned=not args.keep)
    try:
        failures = _run_cells(cells, site, directory / "logs", spy=not args.no_spy)
    finally:
        site.close()
    if args.keep:
        print(f"\nThe deployment is still running: source {shlex.quote(str(site.directory))}/env.sh;"
              f" stop it with ci/demo down {shlex.quote(str(site.directory))}")
    print(f"\nrepro: {len(cells) - failures}/{len(cells)} cells passed; logs in {directory}/logs")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())

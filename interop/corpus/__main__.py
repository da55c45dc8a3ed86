"""python3 -m interop.corpus record [CELL...] | replay [--module M] [--defect NAME]
(see interop/corpus/__init__.py)."""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

from interop.harness import matrix as matrix_mod
from interop.harness.cell import TOKEN_KEYS_FILE, TRACE_FILE, run_cell
from interop.harness.site import Site

from . import corpus

REPO = Path(__file__).resolve().parents[2]


def record(cells: list) -> int:
    """Runs the corpus's cells (direct column: the real tool in front of SoftHSM2, recorded) on
    a fresh deployment and keeps their traces; every one is then replayed against the provider,
    as ci/test will."""
    matrix = matrix_mod.load(REPO / "matrix.yaml")
    chosen = [e for e in corpus.entries() if not cells or e.cell in cells]
    unknown = set(cells) - {e.cell for e in chosen}
    if unknown:
        print(f"corpus: not in corpus.yaml: {sorted(unknown)}", file=sys.stderr)
        return 2
    by_id = {c.id: c for c in matrix.cells(matrix_mod.current_platform())}
    missing = [e.cell for e in chosen if e.cell not in by_id]
    if missing:
        print(f"corpus: no such matrix cells on this platform: {missing}", file=sys.stderr)
        return 2
    labels = sorted({by_id[e.cell].algorithm.name for e in chosen} | set(corpus.token_keys()))
    failures = 0
    with tempfile.TemporaryDirectory(prefix="signum-corpus-") as scratch:
        site = Site(Path(scratch) / "deployment", keys=labels)
        try:
            recorded_keys = set(corpus.token_keys())
            for entry in chosen:
                result = run_cell(by_id[entry.cell], site, Path(scratch) / "logs",
                                  Path(scratch))
                trace = Path(result.log_dir) / TRACE_FILE
                if result.status != "pass" or not trace.exists():
                    print(f"corpus: {entry.cell}: {result.status} {result.reason} (no trace kept)")
                    failures += 1
                    continue
                shutil.copyfile(trace, entry.trace)
                keys_file = Path(result.log_dir) / TOKEN_KEYS_FILE
                if keys_file.exists():
                    recorded_keys |= set(keys_file.read_text().split())
                print(f"corpus: {entry.cell}: recorded {entry.trace.stat().st_size} bytes")
            corpus.TOKEN_KEYS_FILE.write_text("\n".join(sorted(recorded_keys)) + "\n")
            for entry in chosen:
                if entry.trace.exists():
                    outcome = corpus.replay(entry, site, Path(scratch))
                    print(f"corpus: {entry.cell}: replay on the provider: {outcome.summary}")
                    failures += outcome.returncode != 0
        finally:
            site.close()
    return 1 if failures else 0


def replay(module: str, defect: str, verbose: bool = False, notes: bool = False) -> int:
    traces = [e for e in corpus.entries() if e.trace.exists()]
    if not traces:
        print("corpus: no traces in interop/corpus/traces (python3 -m interop.corpus record)",
              file=sys.stderr)
        return 2
    worst = 0
    with tempfile.TemporaryDirectory(prefix="signum-corpus-") as scratch:
        site = Site(Path(scratch) / "deployment", keys=corpus.token_keys())
        try:
            for entry in traces:
                outcome = corpus.replay(entry, site, Path(scratch), module, defect, notes)
                if verbose:
                    print(outcome.output)
                verdict = {0: "matches", 1: "DIVERGES", 2: "UNUSABLE"}.get(outcome.returncode,
                                                                           "ERROR")
                print(f"{entry.cell:40} {verdict:9} {outcome.seconds:5.2f}s  {outcome.summary}")
                if outcome.first_divergence:
                    print(f"{'':40} first divergence: {outcome.first_divergence}")
                worst = max(worst, outcome.returncode)
        finally:
            site.close()
    return worst


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python3 -m interop.corpus", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    rec = sub.add_parser("record")
    rec.add_argument("cells", nargs="*")
    rep = sub.add_parser("replay")
    rep.add_argument("--module", default="", help="instead of the deployment's libsignumpkcs11.so")
    rep.add_argument("--defect", default="",
                     help="a defect of the shim's catalogue (signum-defect-catalogue lists them)")
    rep.add_argument("--verbose", action="store_true", help="signum-replay's whole report")
    rep.add_argument("--notes", action="store_true", help="with --verbose: every note")
    args = parser.parse_args(argv)
    if args.command == "record":
        return record(args.cells)
    return replay(args.module, args.defect, args.verbose, args.notes)


if __name__ == "__main__":
    sys.exit(main())

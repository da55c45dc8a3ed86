#!/usr/bin/env python3
"""Prints one part (prepare, sign or verify) of a matrix.yaml row, exactly as the harness would run
it, for scripts that run a row's commands outside the harness (keychain-tier.sh).

    python3 interop/tools/macos/row_script.py ROW_ID prepare|sign|verify
"""
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(REPO))

from interop.harness import matrix as matrix_mod  # noqa: E402


def main(argv) -> int:
    if len(argv) != 3 or argv[2] not in ("prepare", "sign", "verify"):
        print(__doc__, file=sys.stderr)
        return 2
    rows = {row.id: row for row in matrix_mod.load(REPO / "matrix.yaml").rows}
    if argv[1] not in rows:
        print(f"row_script: no row '{argv[1]}' in matrix.yaml", file=sys.stderr)
        return 2
    print(getattr(rows[argv[1]], argv[2]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

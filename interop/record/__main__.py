"""python3 -m interop.record render TRACE: a v1 PKCS#11 trace as text for people.

Exit 0, or 2 with the reader's reason when the trace cannot be read (unknown version, malformed).
"""

from __future__ import annotations

import sys

from interop.record import trace


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[0] != "render":
        print("usage: python3 -m interop.record render TRACE", file=sys.stderr)
        return 2
    try:
        t = trace.load(argv[1])
    except (OSError, trace.TraceError) as e:
        print(f"interop.record: {e}", file=sys.stderr)
        return 2
    for line in trace.render(t):
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

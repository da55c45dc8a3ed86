#!/usr/bin/env bash
# ctest entry: a conformance/ctk driver built over a defect-injected copy of the CTK core must
# fail, and fail the named checks (so the suite is shown to notice that defect).
#   expect-defect-caught.sh DEFECTIVE_DRIVER CHECK_ID...
set -uo pipefail
[[ $# -ge 2 ]] || { echo "usage: $0 DEFECTIVE_DRIVER CHECK_ID..." >&2; exit 2; }
DRIVER=$1
shift
OUT=$("$DRIVER" --fake-agent 2>&1)
STATUS=$?
echo "$OUT" | grep -E '^(PASS|FAIL|SKIP) |checks passed'
if [[ $STATUS -ne 1 ]]; then
  echo "expected the defective driver to exit 1 (checks failed), it exited $STATUS" >&2
  exit 1
fi
for check in "$@"; do
  if ! grep -q "^FAIL $check " <<<"$OUT"; then
    echo "the suite did not fail $check against the defect" >&2
    exit 1
  fi
done
echo "defect caught by: $*"

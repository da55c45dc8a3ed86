#!/usr/bin/env bash
# Runs a Windows program under Wine against signum-fake-agent (reference/agent/testing) instead of
# a deployment: no signum-server, no signum-agent, no SoftHSM2. Then verifies every signature it
# wrote with native OpenSSL, as run-wine-suite.sh does.
#   run-fake-agent-suite.sh FAKE_AGENT WINDOWS_BUILD_DIR WORK_DIR EXE_NAME
#
# 1. FAKE_AGENT --dir WORK/agent, its stdin a FIFO this script holds open (so it also exits when
#    this script dies), waited for until it prints "ready"; its `slow` label answers after
#    SLOW_MS, well past the providers' SIGNUM_CNG_TIMEOUT_MS.
# 2. The Wine prefix WORK/wine-prefix, kept between runs (a fresh one costs ~7 s; nothing is
#    registered in it: the program loads the providers with LoadLibrary), its wineserver (-p) and
#    services started detached first (windows-recipes.md §2.3: otherwise they inherit our pipes).
# 3. EXE_NAME (WINDOWS_BUILD_DIR/bin) through cmake/wine-run.sh with SIGNUM_FAKE_AGENT_DIR,
#    SIGNUM_AGENT_TCP, SIGNUM_AGENT_SECRET_FILE, SIGNUM_CNG_TIMEOUT_MS, SIGNUM_CNG_OUTPUT_DIR,
#    SIGNUM_CNG_BIN_DIR and SIGNUM_CNG_TRACE (the providers' trace, WORK/trace.log), Windows paths
#    on Wine's Z: drive.
# 4. verify-manifest.sh on the program's manifest.tsv, against the fake agent's test PKI.
# 5. Cleanup: the fake agent stopped by its PID, this prefix's wineserver -k.
set -euo pipefail
[[ $# -eq 4 ]] || { echo "usage: $0 FAKE_AGENT WINDOWS_BUILD_DIR WORK_DIR EXE_NAME" >&2; exit 2; }
FAKE_AGENT=$1
WINBUILD=$(cd "$2" && pwd)
WORK=$3
NAME=$4
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
TIMEOUT_MS=${SIGNUM_CNG_TIMEOUT_MS:-1000}
SLOW_MS=$((TIMEOUT_MS * 4))
# shellcheck source=../../cmake/wine-prefix.sh
source "$ROOT/cmake/wine-prefix.sh"  # WINE64, WINESERVER, WINE_BASE_OVERRIDES
[[ -x $WINE64 ]] || { echo "FAIL: $WINE64 missing (ci/setup installs wine64)" >&2; exit 1; }
[[ -x $FAKE_AGENT ]] || { echo "FAIL: $FAKE_AGENT not built" >&2; exit 1; }
exe=$WINBUILD/bin/$NAME
[[ -f $exe ]] || { echo "FAIL: $NAME is not built in $WINBUILD/bin (ci/build-windows)" >&2; exit 1; }

mkdir -p "$WORK"
WORK=$(cd "$WORK" && pwd)
AGENT_DIR=$WORK/agent OUT=$WORK/out/${NAME%.exe}
rm -rf "$AGENT_DIR" "$WORK/out" "$WORK/agent.stdin" "$WORK/trace.log"
mkdir -p "$OUT"

agent_pid="" wine_started=""
cleanup() {
  local rc=$?
  if [[ -n $agent_pid ]]; then
    kill "$agent_pid" 2>/dev/null || true
    wait "$agent_pid" 2>/dev/null || true
  fi
  exec 3>&- 2>/dev/null || true
  [[ -z $wine_started ]] || "$WINESERVER" -k >/dev/null 2>&1 || true
  exit $rc
}
trap cleanup EXIT

now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN{printf "%.1f", b-a}'; }
winpath() { echo "Z:$1"; }  # Wine's Z: drive is /

t0=$(now)
mkfifo "$WORK/agent.stdin"
"$FAKE_AGENT" --dir "$AGENT_DIR" --slow-ms "$SLOW_MS" --max-seconds 300 \
  <"$WORK/agent.stdin" >"$WORK/agent.out" 2>"$WORK/agent.log" &
agent_pid=$!
exec 3>"$WORK/agent.stdin"  # the agent's stdin: closed when this script ends, however it ends
for _ in $(seq 300); do
  grep -qx ready "$WORK/agent.out" 2>/dev/null && break
  kill -0 "$agent_pid" 2>/dev/null || { cat "$WORK/agent.log" >&2; echo "FAIL: signum-fake-agent exited" >&2; exit 1; }
  sleep 0.05
done
grep -qx ready "$WORK/agent.out" || { echo "FAIL: signum-fake-agent not ready within 15 s" >&2; exit 1; }
# shellcheck disable=SC1091
source "$AGENT_DIR/env.sh"
agent_time=$(since "$t0")

t1=$(now)
export WINEPREFIX=$WORK/wine-prefix WINEDEBUG=-all WINEDLLOVERRIDES=$WINE_BASE_OVERRIDES
unset DISPLAY WAYLAND_DISPLAY
mkdir -p "$WINEPREFIX"
wine_started=1
# 3>&-: no Wine process may keep the agent's stdin open past this script.
"$WINESERVER" -p </dev/null >/dev/null 2>&1 3>&-
"$WINE64" wineboot </dev/null >/dev/null 2>&1 3>&-
echo "timings: fake agent ready ${agent_time}s, wine prefix + services $(since "$t1")s"

t2=$(now)
set +e
SIGNUM_AGENT_SOCKET="" SIGNUM_AGENT_TCP=$SIGNUM_AGENT_TCP \
  SIGNUM_AGENT_SECRET_FILE=$(winpath "$SIGNUM_AGENT_SECRET_FILE") \
  SIGNUM_FAKE_AGENT_DIR=$(winpath "$AGENT_DIR") SIGNUM_CNG_TIMEOUT_MS=$TIMEOUT_MS \
  SIGNUM_CNG_OUTPUT_DIR=$(winpath "$OUT") SIGNUM_CNG_BIN_DIR=$(winpath "$WINBUILD/bin") \
  SIGNUM_CNG_TRACE=$(winpath "$WORK/trace.log") \
  timeout 120 "$ROOT/cmake/wine-run.sh" "$exe" \
  --gtest_output="xml:$(winpath "$WORK/${NAME%.exe}.xml")" </dev/null >"$OUT.log" 2>&1 3>&-
exe_rc=$?
set -e
summary=$(grep -E '^\[  (PASSED|FAILED)  \]|tests? ran' "$OUT.log" | tail -3 | tr '\n' ' ' || true)
echo "$NAME: exit $exe_rc in $(since "$t2")s; $summary"
rc=0
if [[ $exe_rc -ne 0 ]]; then
  grep -E '^\[  FAILED  \]|Failure|error|Expected|Which is|expected' "$OUT.log" | head -60 >&2 || true
  echo "FAIL: $NAME exited $exe_rc under Wine (log: $OUT.log, provider trace: $WORK/trace.log)" >&2
  rc=1
fi
"$(dirname "$0")/verify-manifest.sh" "$OUT" "$NAME" "$AGENT_DIR/ca/root.pem" \
  "$AGENT_DIR/ca/issuing.pem" || rc=1
[[ $rc -eq 0 ]] && echo "PASS: $NAME under Wine against signum-fake-agent; every signature it accepted verified by native OpenSSL"
exit $rc

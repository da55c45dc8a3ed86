#!/usr/bin/env bash
# Runs Windows conformance programs under Wine against a native Signum deployment, then verifies
# every signature they wrote with native OpenSSL: Wine is the caller, never the judge.
#   run-wine-suite.sh [--windows-agent] LINUX_BUILD_DIR WINDOWS_BUILD_DIR WORK_DIR EXE_NAME...
# EXE_NAME is looked up in WINDOWS_BUILD_DIR/bin, then bin/ncrypt-router (programs there run with
# the test-only ncrypt router: WINEDLLOVERRIDES ncrypt=n).
#
# 1. ci/demo up WORK_DIR/demo: server + agent (TCP on 127.0.0.1 with its secret) + SoftHSM2.
# 2. A fresh WINEPREFIX in WORK_DIR; its wineserver (-p) and services started detached first
#    (windows-recipes.md §2.3: otherwise they inherit our pipes and ctest waits or hangs).
# 3. Each program with SIGNUM_AGENT_TCP, SIGNUM_AGENT_SECRET_FILE, SIGNUM_CNG_OUTPUT_DIR (its own
#    directory), SIGNUM_CNG_BIN_DIR (the providers) and SIGNUM_CNG_ROOT_CA (the demo root, PEM),
#    Windows paths on Wine's Z: drive.
# 4. Each program's OUT/manifest.tsv (one signature per line) is checked by verify-manifest.sh
#    with native openssl. A program that signs must write at least one line; a program that writes
#    no manifest at all is only allowed when it says so (SIGNUM_CNG_NO_SIGNATURES in its output).
# --windows-agent: the programs talk to signum-agent.exe (the native Windows agent, TCP only) under
#    Wine instead of the Linux agent, in front of the same signum-server (windows-agent.sh); then
#    its log must show the signatures, the server's audit log its agent id, it must stop on Ctrl+C
#    leaving no files, and it must refuse a server its CA file does not vouch for before sending.
# 5. Cleanup: wineserver -k for this prefix only, the prefix and its socket directory removed
#    (cmake/wine-prefix.sh), ci/demo down (its own PID files).
set -euo pipefail
windows_agent=""
if [[ ${1:-} == --windows-agent ]]; then
  windows_agent=1
  shift
fi
[[ $# -ge 4 ]] || { echo "usage: $0 LINUX_BUILD_DIR WINDOWS_BUILD_DIR WORK_DIR EXE..." >&2; exit 2; }
BUILD=$(cd "$1" && pwd)
WINBUILD=$(cd "$2" && pwd)
WORK=$3
shift 3
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
# shellcheck source=../../cmake/wine-prefix.sh
source "$ROOT/cmake/wine-prefix.sh"
[[ -x $WINE64 ]] || { echo "FAIL: $WINE64 missing (ci/setup installs wine64)" >&2; exit 1; }

rm -rf "$WORK"
mkdir -p "$WORK"
WORK=$(cd "$WORK" && pwd)
DEMO=$WORK/demo
cleanup() {
  local rc=$?
  wine_prefix_stop
  SIGNUM_BUILD_DIR=$BUILD "$ROOT/ci/demo" down "$DEMO" >/dev/null 2>&1 || true
  exit $rc
}
trap cleanup EXIT

now() { date +%s.%N; }
winpath() { echo "Z:$1"; }  # Wine's Z: drive is /
t0=$(now)
SIGNUM_BUILD_DIR=$BUILD "$ROOT/ci/demo" up "$DEMO" >"$WORK/demo-up.log" 2>&1 ||
  { cat "$WORK/demo-up.log"; echo "FAIL: ci/demo up" >&2; exit 1; }
# shellcheck disable=SC1091
source "$DEMO/env.sh"
[[ ${SIGNUM_AGENT_TCP:-off} != off ]] || { echo "FAIL: the demo agent has no TCP endpoint" >&2; exit 1; }
ROOT_CA=$DEMO/ca/root.pem  # the demo root: signs the issuing CA of every signing certificate
[[ -f $ROOT_CA ]] || { echo "FAIL: no demo root certificate under $DEMO" >&2; exit 1; }
t1=$(now)
wine_prefix_start "$WORK/wine-prefix"
t2=$(now)
if [[ -n $windows_agent ]]; then
  # shellcheck source=windows-agent.sh
  source "$(dirname "$0")/windows-agent.sh"
  [[ -f $WINBUILD/bin/signum-agent.exe ]] ||
    { echo "FAIL: signum-agent.exe is not built in $WINBUILD/bin (ci/build-windows)" >&2; exit 1; }
  # The user ci/demo's own agent serves (the deployment's default user), so both agents see the
  # same keys and policies.
  DEMO_TOKEN=$DEMO/credentials/release.token
  [[ -f $DEMO_TOKEN ]] || { echo "FAIL: no API token $DEMO_TOKEN" >&2; exit 1; }
  WINDOWS_AGENT_ID=signum-agent.exe@wine-$$
  windows_agent_start "$WORK/windows-agent" "$SIGNUM_SERVER_URL" "$SIGNUM_TLS_TRUSTED_CA" \
    "$DEMO_TOKEN" "$WINDOWS_AGENT_ID"
  echo "signum-agent.exe serving on 127.0.0.1:$WA_PORT (server $SIGNUM_SERVER_URL)"
  SIGNUM_AGENT_TCP=127.0.0.1:$WA_PORT
  SIGNUM_AGENT_SECRET_FILE=$WORK/windows-agent/agent.secret
fi
echo "timings: demo up $(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.1f", b-a}')s, wine prefix + services $(awk -v a="$t1" -v b="$t2" 'BEGIN{printf "%.1f", b-a}')s"

rc=0
for name in "$@"; do
  exe=$WINBUILD/bin/$name overrides=$WINE_BASE_OVERRIDES
  if [[ ! -f $exe && -f $WINBUILD/bin/ncrypt-router/$name ]]; then
    exe=$WINBUILD/bin/ncrypt-router/$name overrides="$WINE_BASE_OVERRIDES;ncrypt=n"
  fi
  [[ -f $exe ]] || { echo "FAIL: $name is not built in $WINBUILD/bin (ci/build-windows)" >&2; rc=1; continue; }
  out=$WORK/out/${name%.exe}
  mkdir -p "$out"
  t3=$(now)
  set +e
  SIGNUM_AGENT_SOCKET="" SIGNUM_AGENT_SECRET_FILE=$(winpath "$SIGNUM_AGENT_SECRET_FILE") \
    SIGNUM_CNG_OUTPUT_DIR=$(winpath "$out") SIGNUM_CNG_BIN_DIR=$(winpath "$WINBUILD/bin") \
    SIGNUM_CNG_ROOT_CA=$(winpath "$ROOT_CA") WINEDLLOVERRIDES=$overrides \
    timeout 300 "$WINE64" "$exe" --gtest_output="xml:$(winpath "$WORK/${name%.exe}.xml")" \
    </dev/null >"$out.log" 2>&1
  exe_rc=$?
  set -e
  t4=$(now)
  summary=$(grep -E '^\[  (PASSED|FAILED)  \]|tests? ran|SKIPPED \]' "$out.log" | tail -4 | tr '\n' ' ' || true)  # none for a plain (non-gtest) program
  echo "$name: exit $exe_rc in $(awk -v a="$t3" -v b="$t4" 'BEGIN{printf "%.1f", b-a}')s; $summary"
  if [[ $exe_rc -ne 0 ]]; then
    grep -E '^\[  FAILED  \]|Failure|error' "$out.log" | head -40 >&2 || true
    echo "FAIL: $name exited $exe_rc under Wine (log: $out.log)" >&2
    rc=1
  fi
  if [[ -f $out/manifest.tsv ]]; then
    "$(dirname "$0")/verify-manifest.sh" "$out" "$name" "$ROOT_CA" "$DEMO/ca/issuing.pem" || rc=1
  elif ! grep -q SIGNUM_CNG_NO_SIGNATURES "$out.log"; then
    echo "FAIL: $name wrote no $out/manifest.tsv" >&2
    rc=1
  fi
done
if [[ -n $windows_agent ]]; then
  signed=$(grep -c "signed with" "$WA_LOG" || true)
  if [[ $signed -eq 0 ]]; then
    echo "FAIL: signum-agent.exe logged no signature: the programs did not go through it" >&2
    rc=1
  fi
  audited=$(grep -rlF "$WINDOWS_AGENT_ID" "$DEMO" --include='*audit*' 2>/dev/null | head -1 || true)
  if [[ -z $audited ]]; then
    echo "FAIL: the server's audit log does not name the Windows agent ($WINDOWS_AGENT_ID)" >&2
    rc=1
  fi
  windows_agent_stop "$WORK/windows-agent" || rc=1
  echo "signum-agent.exe: $signed signature(s) served, audited as $WINDOWS_AGENT_ID (${audited#"$DEMO"/})"
  windows_agent_default_files_check "$WORK/windows-agent" "$SIGNUM_SERVER_URL" \
    "$SIGNUM_TLS_TRUSTED_CA" "$DEMO_TOKEN" || rc=1
  windows_agent_trust_check "$WORK/windows-agent" "$SIGNUM_TLS_TRUSTED_CA" "$DEMO_TOKEN" "$ROOT" || rc=1
fi
[[ $rc -eq 0 ]] && echo "PASS: $* under Wine${windows_agent:+ through signum-agent.exe}; every signature they wrote verified by native OpenSSL"
exit $rc

#!/usr/bin/env bash
# ctest signum_cng_agent_wine: a Windows program talks to a native signum-agent over loopback TCP.
#   run-agent-test.sh LINUX_BUILD_DIR PATH/signum_cng_agent_test.exe WORK_DIR
# 1. ci/demo up WORK_DIR/demo (server + agent, agent TCP on 127.0.0.1)
# 2. a fresh WINEPREFIX in WORK_DIR, its wineserver (-p) and services started detached first
#    (windows-recipes.md §2.3: otherwise they inherit our pipes and ctest waits or hangs)
# 3. the .exe under Wine with the agent's address and secret; it writes signatures + certificates
# 4. every signature verified here with native openssl against the written certificate
# 5. cleanup: wineserver -k for this prefix only, ci/demo down (PID files), the prefix is removed.
set -euo pipefail
[[ $# -eq 3 ]] || { echo "usage: $0 LINUX_BUILD_DIR EXE WORK_DIR" >&2; exit 2; }
BUILD=$(cd "$1" && pwd)
EXE=$2
WORK=$3
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
WINE64=/usr/lib/wine/wine64
WINESERVER=/usr/lib/wine/wineserver
[[ -f $EXE ]] || { echo "FAIL: $EXE is not built (ci/build-windows)" >&2; exit 1; }

rm -rf "$WORK"
mkdir -p "$WORK/out"
DEMO=$WORK/demo
export WINEPREFIX=$WORK/wine-prefix WINEDEBUG=-all
export WINEDLLOVERRIDES="mscoree,mshtml=;winemenubuilder.exe=d"
unset DISPLAY WAYLAND_DISPLAY

cleanup() {
  local rc=$?
  if [[ -d $WINEPREFIX ]]; then "$WINESERVER" -k >/dev/null 2>&1 || true; fi
  SIGNUM_BUILD_DIR=$BUILD "$ROOT/ci/demo" down "$DEMO" >/dev/null 2>&1 || true
  rm -rf "$WINEPREFIX"  # ~0.7 GB: Wine copies its builtin DLLs into every prefix
  exit $rc
}
trap cleanup EXIT

now() { date +%s.%N; }
t0=$(now)
SIGNUM_BUILD_DIR=$BUILD "$ROOT/ci/demo" up "$DEMO" >"$WORK/demo-up.log" 2>&1 ||
  { cat "$WORK/demo-up.log"; echo "FAIL: ci/demo up" >&2; exit 1; }
# shellcheck disable=SC1091
source "$DEMO/env.sh"
[[ ${SIGNUM_AGENT_TCP:-off} != off ]] || { echo "FAIL: the demo agent has no TCP endpoint" >&2; exit 1; }
t1=$(now)

mkdir -p "$WINEPREFIX"
"$WINESERVER" -p </dev/null >/dev/null 2>&1
"$WINE64" wineboot </dev/null >/dev/null 2>&1
t2=$(now)

winpath() { echo "Z:$1"; }  # Wine's Z: drive is /
set +e
SIGNUM_AGENT_SOCKET="" SIGNUM_AGENT_SECRET_FILE=$(winpath "$SIGNUM_AGENT_SECRET_FILE") \
  SIGNUM_CNG_OUTPUT_DIR=$(winpath "$WORK/out") \
  timeout 120 "$WINE64" "$EXE" --gtest_output="xml:$(winpath "$WORK/signum_cng_agent_test.xml")" \
  </dev/null 2>&1 | tee "$WORK/exe.log"
rc=${PIPESTATUS[0]}
set -e
t3=$(now)
[[ $rc -eq 0 ]] || { echo "FAIL: signum_cng_agent_test.exe exited $rc under Wine" >&2; exit 1; }
if grep -q '\[  SKIPPED \]' "$WORK/exe.log"; then
  echo "FAIL: the Windows program skipped tests although the agent was provided" >&2
  exit 1
fi

# Native verification: the digest is recomputed by openssl from the message the program signed.
verified=0
while read -r scheme message sig cert salt label; do
  openssl x509 -in "$WORK/out/$cert" -pubkey -noout >"$WORK/out/$scheme.pub.pem"
  opts=()
  [[ $scheme == rsa-pss ]] && opts=(-sigopt rsa_padding_mode:pss -sigopt "rsa_pss_saltlen:$salt")
  if openssl dgst -sha256 -verify "$WORK/out/$scheme.pub.pem" "${opts[@]}" \
      -signature "$WORK/out/$sig" "$WORK/out/$message" >/dev/null; then
    echo "openssl: $scheme signature by '$label' verified"
    verified=$((verified + 1))
  else
    echo "FAIL: openssl rejects the $scheme signature by '$label'" >&2
    exit 1
  fi
done <"$WORK/out/manifest.txt"
[[ $verified -eq 2 ]] || { echo "FAIL: expected 2 signatures (pkcs1, pss), verified $verified" >&2; exit 1; }
t4=$(now)
awk -v a="$t0" -v b="$t1" -v c="$t2" -v d="$t3" -v e="$t4" 'BEGIN { printf "timings: demo up %.1fs, wine prefix + services %.1fs, exe %.1fs, openssl %.1fs\n", b-a, c-b, d-c, e-d }'
echo "PASS: $verified signatures from Wine verified by native OpenSSL"

#!/usr/bin/env bash
# ctest signum_demo_test: `ci/demo up / status / down` on a throwaway directory. Checks env.sh,
# that the environment it exports reaches the agent (socket and TCP) and the HSM baseline, that
# `up` on a running demo is a no-op, that `down` leaves no process behind and never signals a
# process that is not the demo's.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../../.." && pwd)
export SIGNUM_BUILD_DIR=${SIGNUM_BUILD_DIR:-$ROOT/build}
DEMO_CMD=$ROOT/ci/demo
UTIL=$SIGNUM_BUILD_DIR/reference/util/signum-util
DEMO=$(mktemp -d /tmp/signum-demo-test.XXXXXX)
decoy=""
cleanup() {
  "$DEMO_CMD" down "$DEMO" >/dev/null 2>&1 || true
  [[ -z $decoy ]] || kill "$decoy" 2>/dev/null || true
  rm -rf "$DEMO"
}
trap cleanup EXIT
fail() {
  echo "FAIL: $*" >&2
  exit 1
}

echo "--- ci/demo up (fresh directory)"
"$DEMO_CMD" up "$DEMO"
[[ -f $DEMO/env.sh ]] || fail "no env.sh"
[[ $(stat -c %a "$DEMO/env.sh") == 600 ]] || fail "env.sh holds PINs and must be 0600"
[[ -f $DEMO/hsm-baseline.env.sh ]] || fail "no hsm-baseline.env.sh"
[[ $(stat -c %a "$DEMO/hsm-baseline.env.sh") == 600 ]] || fail "hsm-baseline.env.sh holds the HSM PIN and must be 0600"
# The HSM PIN opens the keys around policy and audit: never in what a provider user sources.
hsm_pin=$(cat "$DEMO/secrets/hsm.pin")
[[ -n $hsm_pin ]] || fail "no secrets/hsm.pin"
! grep -qF -- "$hsm_pin" "$DEMO/env.sh" || fail "env.sh contains the HSM PIN"
! grep -q "SIGNUM_HSM_\|SOFTHSM2_CONF" "$DEMO/env.sh" || fail "env.sh exports direct-HSM variables"
server_pid=$(cat "$DEMO/run/server.pid")
agent_pid=$(cat "$DEMO/run/agent.pid")
[[ -d /proc/$server_pid && -d /proc/$agent_pid ]] || fail "PID files do not name running processes"

echo "--- env.sh"
(
  # shellcheck disable=SC1091
  source "$DEMO/env.sh"
  for v in SIGNUM_PKCS11_MODULE SIGNUM_TOKEN_LABEL SIGNUM_PIN SIGNUM_PKCS11_PIN SIGNUM_AGENT_SOCKET \
    SIGNUM_AGENT_TCP SIGNUM_AGENT_SECRET_FILE SIGNUM_CA_CERT SIGNUM_SERVER_URL SIGNUM_DEMO_DIR; do
    [[ -n ${!v:-} ]] || fail "$v is not set"
  done
  [[ -z ${SIGNUM_HSM_PIN:-} ]] || fail "env.sh sets SIGNUM_HSM_PIN"
  [[ $SIGNUM_PKCS11_MODULE == "$SIGNUM_BUILD_DIR/reference/providers/pkcs11/libsignumpkcs11.so" ]] ||
    fail "SIGNUM_PKCS11_MODULE=$SIGNUM_PKCS11_MODULE"
  [[ $SIGNUM_TOKEN_LABEL == Signum ]] || fail "SIGNUM_TOKEN_LABEL=$SIGNUM_TOKEN_LABEL"
  [[ $SIGNUM_PIN == "$SIGNUM_PKCS11_PIN" && $SIGNUM_PIN == "$(cat "$DEMO/secrets/token.pin")" ]] ||
    fail "SIGNUM_PIN / SIGNUM_PKCS11_PIN / secrets/token.pin disagree"
  [[ ${#SIGNUM_PIN} -ge 4 ]] || fail "PIN too short"
  [[ $SIGNUM_DEMO_DIR == "$DEMO" && $SIGNUM_CA_CERT == "$DEMO/ca/root.pem" ]] || fail "paths"
  [[ $SIGNUM_AGENT_SOCKET == "$DEMO/run/agent.sock" && -S $SIGNUM_AGENT_SOCKET ]] || fail "socket"
  [[ $SIGNUM_AGENT_TCP =~ ^127\.0\.0\.1:[1-9][0-9]*$ ]] || fail "SIGNUM_AGENT_TCP=$SIGNUM_AGENT_TCP"
  [[ $(stat -c %a "$SIGNUM_AGENT_SECRET_FILE") == 600 ]] || fail "secret file mode"
  [[ $SIGNUM_SERVER_URL == "https://127.0.0.1:$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["listen"]["port"])' "$DEMO/server.json")" ]] ||
    fail "SIGNUM_SERVER_URL=$SIGNUM_SERVER_URL"
  # What env.sh exports is enough to reach the agent, over the socket and over TCP alone.
  # (Output is captured before grep: `cmd | grep -q` can kill cmd with SIGPIPE under pipefail.)
  out=$("$UTIL" status) || fail "status over the socket: $out"
  grep -q "certificates: 6" <<<"$out" || fail "status over the socket: $out"
  out=$(env -u SIGNUM_AGENT_SOCKET "$UTIL" status) || fail "status over TCP: $out"
  grep -q "agent:        tcp:$SIGNUM_AGENT_TCP" <<<"$out" || fail "status over TCP: $out"
  # ... and the HSM baseline (its own file) sees the demo token.
  # shellcheck disable=SC1091
  source "$DEMO/hsm-baseline.env.sh"
  for v in SOFTHSM2_CONF SIGNUM_HSM_MODULE SIGNUM_HSM_TOKEN_LABEL SIGNUM_HSM_PIN; do
    [[ -n ${!v:-} ]] || fail "$v is not set by hsm-baseline.env.sh"
  done
  [[ $SIGNUM_HSM_PIN == "$hsm_pin" ]] || fail "SIGNUM_HSM_PIN"
  out=$(softhsm2-util --show-slots)
  grep -q "$SIGNUM_HSM_TOKEN_LABEL" <<<"$out" || fail "softhsm2-util does not see the token"
)

echo "--- ci/demo status"
"$DEMO_CMD" status "$DEMO" | tee "$DEMO/status.out"
grep -q "signum-server: running (pid $server_pid" "$DEMO/status.out" || fail "status: server"
grep -q "signum-agent:  running (pid $agent_pid" "$DEMO/status.out" || fail "status: agent"

echo "--- ci/demo up again: a no-op that rewrites env.sh"
touch -d '2000-01-01' "$DEMO/env.sh"
"$DEMO_CMD" up "$DEMO"
[[ $(cat "$DEMO/run/server.pid") == "$server_pid" && $(cat "$DEMO/run/agent.pid") == "$agent_pid" ]] ||
  fail "up on a running demo restarted something"
[[ $(stat -c %Y "$DEMO/env.sh") -gt $(date -d '2001-01-01' +%s) ]] || fail "env.sh was not rewritten"

echo "--- ci/demo down"
"$DEMO_CMD" down "$DEMO"
for pid in $server_pid $agent_pid; do
  [[ ! -d /proc/$pid ]] || fail "process $pid survived ci/demo down"
done
[[ ! -e $DEMO/run/server.pid && ! -e $DEMO/run/agent.pid ]] || fail "PID files left behind"
[[ ! -e $DEMO/run/agent.sock && ! -e $DEMO/run/agent.port ]] || fail "agent socket or port file left behind"
if "$DEMO_CMD" status "$DEMO" >"$DEMO/status.out"; then fail "status succeeded with nothing running"; fi
grep -q "signum-server: stopped" "$DEMO/status.out" || fail "status after down"

echo "--- ci/demo down never signals a process that is not the demo's"
sleep 300 &
decoy=$!
echo "$decoy" >"$DEMO/run/server.pid"
echo "$decoy" >"$DEMO/run/agent.pid"
"$DEMO_CMD" down "$DEMO"
[[ -d /proc/$decoy ]] || fail "ci/demo down killed an unrelated process"
kill "$decoy"
decoy=""

echo "--- ci/demo up on the existing deployment, then down"
"$DEMO_CMD" up "$DEMO" >/dev/null
"$DEMO_CMD" status "$DEMO" >/dev/null || fail "restart on an existing deployment"
"$DEMO_CMD" down "$DEMO" >/dev/null
echo "PASS"

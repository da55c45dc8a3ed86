# Sourced by the smoke tests: a throwaway demo deployment with signum-server and signum-agent
# running as children of the test script (stopped by their PIDs on exit), and the environment a
# PKCS#11 application needs to reach them through libsignumpkcs11.so.
#   usage: source deployment.sh SIGNUM_SERVER SIGNUM_AGENT MODULE
set -euo pipefail

SERVER_BIN=$1
AGENT_BIN=$2
MODULE=$3
WORK=$(mktemp -d /tmp/signum-p11-smoke.XXXXXX)
server_pid=
agent_pid=

cleanup() {
  local rc=$?
  for pid in $agent_pid $server_pid; do
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  if [ $rc -ne 0 ]; then
    echo "--- agent log"; tail -n 30 "$WORK/agent.log" 2>/dev/null || true
    echo "--- server log"; tail -n 30 "$WORK/demo/logs/stderr.log" 2>/dev/null || true
  fi
  if [ -n "${SIGNUM_SMOKE_KEEP:-}" ]; then echo "kept $WORK"; else rm -rf "$WORK"; fi
  exit $rc
}
trap cleanup EXIT

fail() { echo "FAIL: $*" >&2; exit 1; }
step() { echo "== $*"; }

"$SERVER_BIN" init-demo "$WORK/demo" > "$WORK/init.log" 2>&1 || { cat "$WORK/init.log"; fail "init-demo"; }
PORT=$(jq .listen.port "$WORK/demo/server.json")
"$SERVER_BIN" serve --config "$WORK/demo/server.json" > "$WORK/server.out" 2>&1 &
server_pid=$!
for _ in $(seq 100); do
  curl -sf --cacert "$WORK/demo/ca/root.pem" "https://127.0.0.1:$PORT/v1/health" > /dev/null && break
  sleep 0.2
done
curl -sf --cacert "$WORK/demo/ca/root.pem" "https://127.0.0.1:$PORT/v1/health" > /dev/null || fail "server not healthy"

mkdir -m 700 "$WORK/agent"
SIGNUM_SERVER_URL="https://127.0.0.1:$PORT" \
SIGNUM_TLS_TRUSTED_CA="$WORK/demo/ca/root.pem" \
SIGNUM_TOKEN_FILE="$WORK/demo/credentials/release.token" \
SIGNUM_AGENT_SOCKET="$WORK/agent/agent.sock" \
SIGNUM_AGENT_TCP=off \
  "$AGENT_BIN" --log-file "$WORK/agent.log" > /dev/null 2>&1 &
agent_pid=$!
for _ in $(seq 100); do
  [ -S "$WORK/agent/agent.sock" ] && break
  sleep 0.1
done
[ -S "$WORK/agent/agent.sock" ] || fail "agent did not start"

export SIGNUM_AGENT_SOCKET="$WORK/agent/agent.sock"
unset SIGNUM_AGENT_TCP SIGNUM_PKCS11_PIN SIGNUM_TOKEN_LABEL || true
export SIGNUM_PKCS11_TRACE="$WORK/pkcs11-trace.log"
ROOT_CA="$WORK/demo/ca/root.pem"
CHAIN="$WORK/demo/ca/chain.pem"
cd "$WORK"
head -c 100000 /dev/urandom > data.bin

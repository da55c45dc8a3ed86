#!/usr/bin/env bash
# ctest entry: signum-conformance-ctk (Linux driver) against a running demo deployment (ci/demo:
# signum-server on SoftHSM2 + signum-agent for user "release"), so the token's core talks to the
# real agent, server, policies and HSM. agent.down stops the deployment mid-run.
#   run-deployment.sh BUILD_DIR DRIVER RESULTS_DIR
set -euo pipefail
[[ $# -eq 3 ]] || { echo "usage: $0 BUILD_DIR DRIVER RESULTS_DIR" >&2; exit 2; }
BUILD=$1 DRIVER=$2 RESULTS=$3
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
NAME=signum_conformance_ctk_deployment
WORK=$(mktemp -d "${TMPDIR:-/tmp}/$NAME.XXXXXX")
cleanup() {
  SIGNUM_BUILD_DIR=$BUILD "$ROOT/ci/demo" down "$WORK/demo" >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT
mkdir -p "$RESULTS"
SIGNUM_BUILD_DIR=$BUILD "$ROOT/ci/demo" up "$WORK/demo" >"$WORK/demo-up.log" 2>&1 ||
  { cat "$WORK/demo-up.log" >&2; exit 1; }
# shellcheck disable=SC1091
source "$WORK/demo/env.sh"
printf -v STOP 'SIGNUM_BUILD_DIR=%q %q down %q >/dev/null' "$BUILD" "$ROOT/ci/demo" "$WORK/demo"
"$DRIVER" --agent-from-environment --stop-agent-command "$STOP" --junit "$RESULTS/$NAME.xml" || {
  status=$?
  echo "--- agent log (tail)" >&2
  tail -n 40 "$WORK/demo/logs/agent.log" >&2 2>/dev/null || true
  exit $status
}

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
mkdir -p "$RESULTS"
# shellcheck source=../../ci/lib/demo-session.sh
source "$ROOT/ci/lib/demo-session.sh"
demo_session_up "$NAME" "$BUILD"
"$DRIVER" --agent-from-environment --stop-agent-command "$DEMO_STOP" --junit "$RESULTS/$NAME.xml" || {
  status=$?
  echo "--- agent log (tail)" >&2
  tail -n 40 "$WORK/demo/logs/agent.log" >&2 2>/dev/null || true
  exit $status
}

#!/usr/bin/env bash
# ctest entry: signum-conformance-pkcs11 (provider profile) against libsignumpkcs11.so through a
# running demo deployment (ci/demo: signum-server on SoftHSM2 + signum-agent for user "release").
#   run-provider.sh BUILD_DIR SUITE RESULTS_DIR
set -euo pipefail
[[ $# -eq 3 ]] || { echo "usage: $0 BUILD_DIR SUITE RESULTS_DIR" >&2; exit 2; }
BUILD=$1 SUITE=$2 RESULTS=$3
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
NAME=signum_conformance_pkcs11_provider
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
# The demo user "release" may not use SHA-1 outside PKCS#1 v1.5: those refusals arrive as
# CKR_FUNCTION_REJECTED and the suite notes them as policy, not defects.
export SIGNUM_CONFORMANCE_PIN=$SIGNUM_PKCS11_PIN
"$SUITE" --module "$SIGNUM_PKCS11_MODULE" --token "$SIGNUM_TOKEN_LABEL" --profile provider \
  --junit "$RESULTS/$NAME.xml" --summary "$RESULTS/$NAME.json"

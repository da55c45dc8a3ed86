#!/usr/bin/env bash
# ctest entry: signum-conformance-pkcs11 (provider profile) against libsignumpkcs11.so through a
# running demo deployment (ci/demo: signum-server on SoftHSM2 + signum-agent for user "release").
#   run-provider.sh BUILD_DIR SUITE RESULTS_DIR
set -euo pipefail
[[ $# -eq 3 ]] || { echo "usage: $0 BUILD_DIR SUITE RESULTS_DIR" >&2; exit 2; }
BUILD=$1 SUITE=$2 RESULTS=$3
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
NAME=signum_conformance_pkcs11_provider
mkdir -p "$RESULTS"
# shellcheck source=../../ci/lib/demo-session.sh
source "$ROOT/ci/lib/demo-session.sh"
demo_session_up "$NAME" "$BUILD"
# The demo user "release" may not use SHA-1 outside PKCS#1 v1.5: those refusals arrive as
# CKR_FUNCTION_REJECTED and the suite notes them as policy, not defects.
export SIGNUM_CONFORMANCE_PIN=$SIGNUM_PKCS11_PIN
"$SUITE" --module "$SIGNUM_PKCS11_MODULE" --token "$SIGNUM_TOKEN_LABEL" --profile provider \
  --junit "$RESULTS/$NAME.xml" --summary "$RESULTS/$NAME.json"

#!/usr/bin/env bash
# ctest entry: signum-conformance-pkcs11 straight against SoftHSM2, on a fresh demo token made by
# `signum-server init-demo` (keys rsa-2048..ec-p521 with certificates of the same CKA_ID/label).
#   run-softhsm2.sh SIGNUM_SERVER SUITE PROFILE EXPECTATIONS RESULTS_DIR
set -euo pipefail
[[ $# -eq 5 ]] || { echo "usage: $0 SIGNUM_SERVER SUITE provider|hsm EXPECTATIONS RESULTS_DIR" >&2; exit 2; }
SERVER=$1 SUITE=$2 PROFILE=$3 EXPECT=$4 RESULTS=$5
NAME=signum_conformance_pkcs11_softhsm2_$PROFILE
WORK=$(mktemp -d "${TMPDIR:-/tmp}/$NAME.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
mkdir -p "$RESULTS"
"$SERVER" init-demo "$WORK/demo" >"$WORK/init-demo.log" 2>&1 || { cat "$WORK/init-demo.log" >&2; exit 1; }
export SOFTHSM2_CONF=$WORK/demo/hsm/softhsm2.conf
"$SUITE" --module /usr/lib/softhsm/libsofthsm2.so --token signum-demo \
  --pin-file "$WORK/demo/secrets/hsm.pin" --profile "$PROFILE" --expect "$EXPECT" \
  --junit "$RESULTS/$NAME.xml" --summary "$RESULTS/$NAME.json"

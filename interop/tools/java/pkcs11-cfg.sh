#!/usr/bin/env bash
# Writes a SunPKCS11 configuration for MODULE to stdout: pkcs11-cfg.sh MODULE [NAME]
# slotListIndex 0 is the token's slot for libsignumpkcs11.so (one slot) and for SoftHSM2 (the
# initialised token comes before its spare empty slot).
set -euo pipefail
module=${1:?usage: pkcs11-cfg.sh MODULE [NAME]}
name=${2:-SignumInterop}
printf 'name = %s\nlibrary = %s\nslotListIndex = 0\n' "$name" "$module"

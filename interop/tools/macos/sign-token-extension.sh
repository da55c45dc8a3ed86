#!/usr/bin/env bash
# Signs the CryptoTokenKit token extension and its hosting app for the macOS job (issue 17 item 5c).
#   sign-token-extension.sh APPEX APP ENTITLEMENTS
# With SIGNUM_CTK_SIGNING_IDENTITY (and the identity itself as SIGNUM_CTK_SIGNING_P12, base64 of a
# PKCS#12, with SIGNUM_CTK_SIGNING_P12_PASSWORD; repository secrets) the identity is imported into
# a temporary keychain kept for the job and signs both, so that macOS runs token sessions without a
# prompt and the CTK rows run. Without it both are signed ad hoc (enough for the token's own
# conformance steps to load it) and the CTK rows are skipped naming the missing variable
# (matrix.yaml); this script says so as a workflow notice, so the skip is never silent.
set -euo pipefail
[[ $# -eq 3 ]] || { echo "usage: $0 APPEX APP ENTITLEMENTS" >&2; exit 2; }
APPEX=$1
APP=$2
ENTITLEMENTS=$3
identity=${SIGNUM_CTK_SIGNING_IDENTITY:-}
if [[ -z $identity ]]; then
  echo "::notice title=CTK rows skipped::no SIGNUM_CTK_SIGNING_IDENTITY secret: the token extension is signed ad hoc and the CTK matrix rows are skipped with that reason"
  codesign --force --sign - --entitlements "$ENTITLEMENTS" "$APPEX"
  codesign --force --sign - "$APP"
else
  [[ -n ${SIGNUM_CTK_SIGNING_P12:-} ]] ||
    { echo "SIGNUM_CTK_SIGNING_IDENTITY is set but SIGNUM_CTK_SIGNING_P12 is empty" >&2; exit 1; }
  keychain=${RUNNER_TEMP:-/tmp}/signum-ctk-signing.keychain-db
  password=$(openssl rand -hex 16)
  p12=$(mktemp)
  trap 'rm -f "$p12"' EXIT
  base64 --decode <<<"$SIGNUM_CTK_SIGNING_P12" >"$p12"
  security create-keychain -p "$password" "$keychain"
  security set-keychain-settings "$keychain"
  security unlock-keychain -p "$password" "$keychain"
  security list-keychains -d user -s "$keychain" $(security list-keychains -d user | tr -d '"')
  security import "$p12" -k "$keychain" -P "${SIGNUM_CTK_SIGNING_P12_PASSWORD:-}" -T /usr/bin/codesign
  security set-key-partition-list -S apple-tool:,apple:,codesign: -s -k "$password" "$keychain" \
    >/dev/null
  codesign --force --options runtime --sign "$identity" --entitlements "$ENTITLEMENTS" "$APPEX"
  codesign --force --options runtime --sign "$identity" "$APP"
fi
codesign --verify --deep --strict --verbose=2 "$APP"

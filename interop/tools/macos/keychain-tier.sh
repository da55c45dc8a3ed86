#!/usr/bin/env bash
# macOS job, tier (b) of issue 17 item 5: the codesign / productsign / pkgbuild rows' own commands
# (matrix.yaml's prepare, sign and verify, unchanged) against a throwaway identity in a temporary
# keychain, the way a CI machine without a token is set up. It proves the row scripts and the
# verification half; the CTK tier proves the token. Never run on the Linux machine this was written
# on (no macOS there): docs/macos.md says what it is expected to do.
#   keychain-tier.sh DEMO_DIR OUT_DIR [ROW...]   (default rows: the three below)
# DEMO_DIR: a running or stopped deployment (ci/demo up); its issuing CA certifies the identity when
# its key is a file there, otherwise a throwaway root does, and either root is trusted for the run.
# Per algorithm (rsa-2048, ec-p256):
#  1. a key and a code-signing certificate (openssl), a PKCS#12 that `security import` reads
#     (PBE-SHA1-3DES: older Security.framework releases reject OpenSSL 3's default AES PBES2);
#  2. a temporary keychain: create, unlock, no auto-lock, put first in the user's search list,
#     import with -T for codesign/productsign/pkgbuild, set-key-partition-list (no UI prompt);
#  3. the root trusted (admin domain, sudo: the hosted runner has passwordless sudo);
#  4. every row's prepare, sign and verify in a directory of its own with CERT_SHA1, CERT, ROOT_CA,
#     CHAIN and WORK set as the harness sets them; their output under OUT_DIR.
# The keychain, the search list and the trust setting are restored on exit, whatever happened.
set -euo pipefail
[[ $# -ge 2 ]] || { echo "usage: $0 DEMO_DIR OUT_DIR [ROW...]" >&2; exit 2; }
DEMO=$1
OUT=$2
shift 2
# bash 3.2 (macOS's /bin/bash): no associative arrays, no empty arrays under set -u.
ROWS="$*"
[[ -n $ROWS ]] || ROWS="codesign-macos productsign-macos pkgbuild-sign-macos"
ALGORITHMS="rsa-2048 ec-p256"
ROOT=$(cd "$(dirname "$0")/../../.." && pwd)
[[ $(uname -s) == Darwin ]] || { echo "keychain-tier.sh: macOS only" >&2; exit 2; }
OPENSSL_BIN=$(brew --prefix openssl@3)/bin
export PATH="$OPENSSL_BIN:$PATH"  # the rows' openssl is OpenSSL 3, not the system LibreSSL
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
WORKROOT=$(mktemp -d "${TMPDIR:-/tmp}/signum-keychain-tier.XXXXXX")
KEYCHAIN=$WORKROOT/signum-tier.keychain-db
KEYCHAIN_PASSWORD=$(openssl rand -hex 16)
P12_PASSWORD=$(openssl rand -hex 16)
ORIGINAL_KEYCHAINS=$(security list-keychains -d user | tr -d '"' | xargs)
TRUSTED_ROOT=""

cleanup() {
  local rc=$?
  security list-keychains -d user -s $ORIGINAL_KEYCHAINS || true
  security delete-keychain "$KEYCHAIN" 2>/dev/null || true
  [[ -n $TRUSTED_ROOT ]] && sudo security remove-trusted-cert -d "$TRUSTED_ROOT" 2>/dev/null || true
  rm -rf "$WORKROOT"
  exit $rc
}
trap cleanup EXIT

# --- the certifying CA: the demo's issuing CA if its key is a file, else a throwaway root -------
pki=$WORKROOT/pki
mkdir -p "$pki"
if [[ -f $DEMO/ca/issuing.pem && -f $DEMO/ca/issuing.key ]]; then
  cp "$DEMO/ca/root.pem" "$pki/root.pem"
  cp "$DEMO/ca/issuing.pem" "$pki/issuing.pem"
  cp "$DEMO/ca/issuing.key" "$pki/issuing.key"
  echo "certifying with the demo deployment's issuing CA ($DEMO/ca)"
else
  openssl req -x509 -newkey rsa:3072 -nodes -days 2 -subj "/CN=Signum keychain tier root" \
    -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign \
    -keyout "$pki/root.key" -out "$pki/root.pem" 2>/dev/null
  openssl req -newkey rsa:3072 -nodes -subj "/CN=Signum keychain tier issuing CA" \
    -keyout "$pki/issuing.key" -out "$pki/issuing.csr" 2>/dev/null
  printf 'basicConstraints=critical,CA:TRUE,pathlen:0\nkeyUsage=critical,keyCertSign,cRLSign\n' \
    >"$pki/ca.ext"
  openssl x509 -req -in "$pki/issuing.csr" -CA "$pki/root.pem" -CAkey "$pki/root.key" \
    -CAcreateserial -days 2 -extfile "$pki/ca.ext" -out "$pki/issuing.pem" 2>/dev/null
  echo "certifying with a throwaway root (no CA key file under $DEMO/ca)"
fi

# --- the temporary keychain ------------------------------------------------------------------
security create-keychain -p "$KEYCHAIN_PASSWORD" "$KEYCHAIN"
security set-keychain-settings "$KEYCHAIN"  # no timeout, no lock on sleep
security unlock-keychain -p "$KEYCHAIN_PASSWORD" "$KEYCHAIN"
security list-keychains -d user -s "$KEYCHAIN" $ORIGINAL_KEYCHAINS
security import "$pki/issuing.pem" -k "$KEYCHAIN" -t cert
sudo security add-trusted-cert -d -r trustRoot -k /Library/Keychains/System.keychain "$pki/root.pem"
TRUSTED_ROOT=$pki/root.pem

for algorithm in $ALGORITHMS; do
  id=$pki/$algorithm
  case $algorithm in
    rsa-2048) openssl genpkey -quiet -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$id.key" ;;
    ec-p256) openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$id.key" ;;
  esac
  openssl req -new -key "$id.key" -subj "/CN=Signum keychain tier $algorithm/O=Signum Harness" \
    -out "$id.csr"
  printf 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=codeSigning\n' \
    >"$id.ext"
  openssl x509 -req -in "$id.csr" -CA "$pki/issuing.pem" -CAkey "$pki/issuing.key" -CAcreateserial \
    -days 2 -extfile "$id.ext" -out "$id.pem" 2>/dev/null
  openssl pkcs12 -export -inkey "$id.key" -in "$id.pem" -certfile "$pki/issuing.pem" \
    -name "Signum keychain tier $algorithm" -certpbe PBE-SHA1-3DES -keypbe PBE-SHA1-3DES \
    -macalg sha1 -passout "pass:$P12_PASSWORD" -out "$id.p12"
  security import "$id.p12" -k "$KEYCHAIN" -P "$P12_PASSWORD" \
    -T /usr/bin/codesign -T /usr/bin/productsign -T /usr/bin/pkgbuild
  openssl x509 -in "$id.pem" -noout -fingerprint -sha1 | cut -d= -f2 | tr -d : >"$id.sha1"
done
# Lets the signing tools use the keys without a UI prompt (the -T list alone does not, since 10.12).
security set-key-partition-list -S apple-tool:,apple:,codesign: -s -k "$KEYCHAIN_PASSWORD" \
  "$KEYCHAIN" >/dev/null
security find-identity -v -p codesigning "$KEYCHAIN" | tee "$OUT/identities.txt"
for algorithm in $ALGORITHMS; do
  grep -qi "$(cat "$pki/$algorithm.sha1")" "$OUT/identities.txt" ||
    { echo "FAIL: the $algorithm identity is not a valid code-signing identity" >&2; exit 1; }
done

# --- the rows' own commands ------------------------------------------------------------------
passed=0 failed="" rows=0
for row in $ROWS; do
  rows=$((rows + 1))
  for algorithm in $ALGORITHMS; do
    cell=$row.$algorithm
    work=$WORKROOT/cells/$cell
    mkdir -p "$work"
    log=$OUT/$cell.log
    (
      cd "$work"
      export WORK=$work CERT=$pki/$algorithm.pem CERT_SHA1=$(cat "$pki/$algorithm.sha1")
      export ROOT_CA=$pki/root.pem CHAIN=$pki/issuing.pem
      for part in prepare sign verify; do
        echo "== $part"
        python3 "$ROOT/interop/tools/macos/row_script.py" "$row" "$part" >"$work/$part.sh" || exit 1
        # set -e does not hold in a subshell on the left of &&: every failure exits explicitly
        bash -euo pipefail "$work/$part.sh" || exit 1
      done
    ) >"$log" 2>&1 && { passed=$((passed + 1)); echo "PASS $cell"; } ||
      { failed="$failed $cell"; echo "FAIL $cell (log: $log)"; tail -20 "$log"; }
  done
done
echo "keychain tier: $rows rows x 2 algorithms: $passed passed, failed:${failed:- none}"
[[ -z $failed && $passed -gt 0 ]]

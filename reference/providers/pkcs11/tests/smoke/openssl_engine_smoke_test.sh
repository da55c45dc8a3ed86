#!/bin/bash
# OpenSSL 3 with libp11's engine (libengine-pkcs11-openssl) against libsignumpkcs11.so on a live
# deployment (interop-recipes.md §3): dgst, pkeyutl (PKCS#1, PSS, ECDSA) and cms with the
# maximum-salt PSS that openssl cms asks for; every result verified with plain openssl.
#   usage: openssl_engine_smoke_test.sh SIGNUM_SERVER SIGNUM_AGENT MODULE
source "$(dirname "$0")/deployment.sh" "$@"

ENGINE=/usr/lib/x86_64-linux-gnu/engines-3/pkcs11.so
[ -f "$ENGINE" ] || fail "libengine-pkcs11-openssl is not installed ($ENGINE)"
cat > openssl.cnf <<CNF
openssl_conf = openssl_init
[openssl_init]
engines = engine_section
[engine_section]
pkcs11 = pkcs11_section
[pkcs11_section]
engine_id = pkcs11
dynamic_path = $ENGINE
MODULE_PATH = $MODULE
init = 0
CNF

# Any PIN works: SIGNUM_PKCS11_PIN is not set (the token requires no login).
key() { echo "pkcs11:token=Signum;object=$1;type=private?pin-value=0000"; }
with_engine() { OPENSSL_CONF="$WORK/openssl.cnf" openssl "$@"; }
plain() { OPENSSL_CONF=/dev/null openssl "$@"; }

export_cert() {
  pkcs11-tool --module "$MODULE" --read-object --type cert --label "$1" -o "$1.der" > /dev/null
  plain x509 -inform DER -in "$1.der" -out "$1.pem"
  plain x509 -in "$1.pem" -pubkey -noout > "$1.pub"
}

plain dgst -sha256 -binary data.bin > data.sha256
for label in rsa-2048 rsa-3072 ec-p256 ec-p384; do
  export_cert "$label"
  step "openssl dgst -sha256 with $label"
  with_engine dgst -sha256 -engine pkcs11 -keyform engine -sign "$(key "$label")" -out "$label.sig" data.bin
  plain dgst -sha256 -verify "$label.pub" -signature "$label.sig" data.bin | grep -q "Verified OK" \
    || fail "dgst $label"
  step "openssl pkeyutl -sign with $label"
  with_engine pkeyutl -sign -engine pkcs11 -keyform engine -inkey "$(key "$label")" \
    -pkeyopt digest:sha256 -in data.sha256 -out "$label.pk"
  plain pkeyutl -verify -pubin -inkey "$label.pub" -pkeyopt digest:sha256 -in data.sha256 \
    -sigfile "$label.pk" | grep -q "Signature Verified Successfully" || fail "pkeyutl $label"
done

step "openssl pkeyutl RSA-PSS (sLen 32)"
with_engine pkeyutl -sign -engine pkcs11 -keyform engine -inkey "$(key rsa-2048)" \
  -pkeyopt digest:sha256 -pkeyopt rsa_padding_mode:pss -pkeyopt rsa_pss_saltlen:32 \
  -in data.sha256 -out rsa-2048.pss
plain pkeyutl -verify -pubin -inkey rsa-2048.pub -pkeyopt digest:sha256 \
  -pkeyopt rsa_padding_mode:pss -pkeyopt rsa_pss_saltlen:32 -in data.sha256 -sigfile rsa-2048.pss \
  | grep -q "Signature Verified Successfully" || fail "pkeyutl PSS"

for pss in no yes; do
  step "openssl cms -sign with rsa-2048 (PSS: $pss)"
  opts=()
  [ "$pss" = yes ] && opts=(-keyopt rsa_padding_mode:pss)  # OpenSSL 3.0 asks for sLen 222 here
  with_engine cms -sign -binary -engine pkcs11 -keyform engine -inkey "$(key rsa-2048)" \
    -signer rsa-2048.pem -md sha256 "${opts[@]}" -in data.bin -outform DER -out "cms-$pss.p7s"
  # chain.pem = issuing CA + root: the trust store for the verification.
  plain cms -verify -binary -inform DER -in "cms-$pss.p7s" -content data.bin -CAfile "$CHAIN" \
    -purpose any -out /dev/null 2> "cms-$pss.verify"
  grep -q "Verification successful" "cms-$pss.verify" || { cat "cms-$pss.verify"; fail "cms $pss"; }
done

step "trace"
grep -q "C_SignInit" pkcs11-trace.log || fail "no C_SignInit traced"
grep -q "sLen = 222" pkcs11-trace.log || fail "cms PSS did not ask for the maximum salt"
echo "PASS"

#!/bin/bash
# OpenSC pkcs11-tool against libsignumpkcs11.so on a live deployment: list slots and objects,
# export the certificates, sign with RSA PKCS#1 v1.5, RSA-PSS and ECDSA, and verify every signature
# with plain openssl against the certificate read from the token; digest on the token (--hash) and
# compare with openssl dgst.
#   usage: pkcs11_tool_smoke_test.sh SIGNUM_SERVER SIGNUM_AGENT MODULE
source "$(dirname "$0")/deployment.sh" "$@"

p11() { pkcs11-tool --module "$MODULE" "$@"; }

step "pkcs11-tool -L"
p11 -L > slots.txt
cat slots.txt
grep -q "token label *: Signum" slots.txt || fail "token label"
grep -q "token manufacturer *: Signum Harness" slots.txt || fail "manufacturer"

step "pkcs11-tool -O"
p11 -O > objects.txt
for label in rsa-2048 rsa-3072 rsa-4096 ec-p256 ec-p384 ec-p521; do
  [ "$(grep -c "label: *$label\$" objects.txt)" -eq 3 ] || fail "expected 3 objects labelled $label"
done
grep -q "Signum Harness Demo Root CA" objects.txt || fail "root CA not listed"

# label -> label.pem (certificate read from the token), label.pub (its public key), and ID: the
# key's CKA_ID, which is the certificate's SHA-1 thumbprint. pkcs11-tool --sign picks its key by
# --id (with --label alone it takes the first private key).
export_pub() {
  p11 --read-object --type cert --label "$1" -o "$1.der" > /dev/null
  openssl x509 -inform DER -in "$1.der" -out "$1.pem"
  openssl x509 -in "$1.pem" -pubkey -noout > "$1.pub"
  openssl verify -CAfile "$ROOT_CA" -untrusted "$CHAIN" -purpose any "$1.pem" > /dev/null || fail "$1 chain"
  ID=$(openssl x509 -in "$1.pem" -noout -fingerprint -sha1 | sed 's/.*=//; s/://g')
}

for label in rsa-2048 rsa-4096; do
  step "RSA $label: SHA256-RSA-PKCS, SHA384-RSA-PKCS-PSS, RSA-PKCS-PSS over a digest"
  export_pub "$label"
  p11 --sign --mechanism SHA256-RSA-PKCS --id "$ID" -i data.bin -o "$label.sig" > /dev/null
  openssl dgst -sha256 -verify "$label.pub" -signature "$label.sig" data.bin | grep -q "Verified OK" \
    || fail "$label SHA256-RSA-PKCS"
  p11 --sign --mechanism SHA384-RSA-PKCS-PSS --mgf MGF1-SHA384 --salt-len 48 \
    --id "$ID" -i data.bin -o "$label.pss" > /dev/null
  openssl dgst -sha384 -sigopt rsa_padding_mode:pss -sigopt rsa_pss_saltlen:48 \
    -verify "$label.pub" -signature "$label.pss" data.bin | grep -q "Verified OK" || fail "$label PSS"
  openssl dgst -sha256 -binary data.bin > data.sha256
  p11 --sign --mechanism RSA-PKCS-PSS --hash-algorithm SHA256 --mgf MGF1-SHA256 --salt-len 32 \
    --id "$ID" -i data.sha256 -o "$label.rawpss" > /dev/null
  openssl dgst -sha256 -sigopt rsa_padding_mode:pss -sigopt rsa_pss_saltlen:32 \
    -verify "$label.pub" -signature "$label.rawpss" data.bin | grep -q "Verified OK" || fail "$label raw PSS"
done

for label in ec-p256 ec-p384 ec-p521; do
  step "ECDSA $label: ECDSA-SHA256 and raw ECDSA over a SHA-512 digest"
  export_pub "$label"
  p11 --sign --mechanism ECDSA-SHA256 --signature-format openssl --id "$ID" \
    -i data.bin -o "$label.sig" > /dev/null
  openssl dgst -sha256 -verify "$label.pub" -signature "$label.sig" data.bin | grep -q "Verified OK" \
    || fail "$label ECDSA-SHA256"
  openssl dgst -sha512 -binary data.bin > data.sha512
  p11 --sign --mechanism ECDSA --signature-format openssl --id "$ID" \
    -i data.sha512 -o "$label.raw.sig" > /dev/null
  openssl dgst -sha512 -verify "$label.pub" -signature "$label.raw.sig" data.bin | grep -q "Verified OK" \
    || fail "$label ECDSA over SHA-512"
done

step "pkcs11-tool --hash: SHA-1/224/256/384/512 on the token equal openssl dgst"
for hash in SHA-1 SHA224 SHA256 SHA384 SHA512; do
  p11 --hash --mechanism "$hash" -i data.bin -o "data.$hash" > /dev/null || fail "--hash $hash"
  openssl_name=$(echo "$hash" | tr -d '-' | tr 'A-Z' 'a-z')
  openssl dgst -"$openssl_name" -binary data.bin > "data.$hash.openssl"
  cmp -s "data.$hash" "data.$hash.openssl" || fail "digest $hash differs from openssl dgst"
done

step "a PIN on pkcs11-tool's command line never reaches the audit log"
# The audit log is hash-chained: what lands there stays. The provider and the agent redact
# secret-bearing arguments (docs/agent.md, "Caller identity") before the request leaves the client.
export_pub rsa-2048
p11 --login --pin 21531068 --sign --mechanism SHA256-RSA-PKCS --id "$ID" -i data.bin \
  -o pin.sig > /dev/null
p11 --login --pin=21531068 --sign --mechanism SHA256-RSA-PKCS --id "$ID" -i data.bin \
  -o pin.sig > /dev/null
AUDIT_LOG="$WORK/demo/audit/audit.log"
grep -q -- "--pin \*\*\* --sign" "$AUDIT_LOG" || fail "the audit log lacks the redacted '--pin ***'"
grep -q -- "--pin=\*\*\* --sign" "$AUDIT_LOG" || fail "the audit log lacks the redacted '--pin=***'"
if grep -q 21531068 "$AUDIT_LOG"; then fail "the PIN is in the audit log"; fi

step "trace"
grep -q "C_Sign = CKR_OK" pkcs11-trace.log || fail "no C_Sign in the trace"
echo "PASS"

#!/usr/bin/env bash
# Verifies, with native OpenSSL, every signature a Windows conformance program wrote: Wine or
# Windows is the caller, never the judge. Used by run-wine-suite.sh (Linux, Wine) and by the
# Windows CI job (inside WSL).
#   verify-manifest.sh OUT_DIR NAME ROOT_CA_PEM [INTERMEDIATES_PEM]
# OUT_DIR/manifest.tsv: one signature per line, TAB-separated, files relative to OUT_DIR:
#   name kind hash message signature certificate param
# kind: rsa-pkcs1 | rsa-pss (param = PSS salt length) | rsa-pkcs1-le (CryptoAPI's little-endian
#       byte order) | ecdsa-p1363 (r||s) | cms (DER PKCS#7 signed data; message '-' when the
#       content is embedded; must chain to ROOT_CA_PEM, through INTERMEDIATES_PEM if the
#       message does not carry them)
# hash: sha1 | sha256 | sha384 | sha512 (OpenSSL recomputes the digest from the message file).
# certificate: DER or PEM. Exit 0 only when every line verifies and there is at least one.
set -uo pipefail
[[ $# -eq 3 || $# -eq 4 ]] || { echo "usage: $0 OUT_DIR NAME ROOT_CA_PEM [INTERMEDIATES_PEM]" >&2; exit 2; }
[[ -f $1/manifest.tsv ]] || { echo "FAIL [$2]: no $1/manifest.tsv" >&2; exit 1; }
out=$1 name=$2 ROOT_CA=$3 INTERMEDIATES=${4:-} count=0 failed=0
while IFS=$'\t' read -r label kind hash message sig cert param; do
  [[ -z $label || $label == \#* ]] && continue
  pem=$out/.verify-cert.pem pub=$out/.verify-pub.pem ok=0
  openssl x509 -inform DER -in "$out/$cert" -out "$pem" 2>/dev/null ||
    openssl x509 -in "$out/$cert" -out "$pem" 2>/dev/null || { echo "FAIL [$name] $label: certificate $cert unreadable" >&2; failed=$((failed+1)); continue; }
  openssl x509 -in "$pem" -pubkey -noout >"$pub"
  case $kind in
    rsa-pkcs1|rsa-pss|rsa-pkcs1-le|ecdsa-p1363)
      sigfile=$out/$sig opts=()
      if [[ $kind == rsa-pkcs1-le ]]; then
        sigfile=$out/.verify-sig.be
        /usr/bin/python3 -c 'import sys; d=open(sys.argv[1],"rb").read(); open(sys.argv[2],"wb").write(d[::-1])' "$out/$sig" "$sigfile"
      fi
      if [[ $kind == ecdsa-p1363 ]]; then
        sigfile=$out/.verify-sig.der
        /usr/bin/python3 - "$out/$sig" "$sigfile" <<'PY'
import sys
raw = open(sys.argv[1], "rb").read()
half = len(raw) // 2
def integer(b):
  b = b.lstrip(b"\0") or b"\0"
  if b[0] & 0x80: b = b"\0" + b
  return b"\x02" + bytes([len(b)]) + b
body = integer(raw[:half]) + integer(raw[half:])
length = bytes([len(body)]) if len(body) < 128 else b"\x81" + bytes([len(body)])
open(sys.argv[2], "wb").write(b"\x30" + length + body)
PY
      fi
      [[ $kind == rsa-pss ]] && opts=(-sigopt rsa_padding_mode:pss -sigopt "rsa_pss_saltlen:$param")
      openssl dgst "-$hash" -verify "$pub" "${opts[@]}" -signature "$sigfile" "$out/$message" >/dev/null 2>&1 && ok=1
      ;;
    cms)
      content=()
      [[ $message != - ]] && content=(-content "$out/$message")
      extra=$out/.verify-extra.pem
      cat "$pem" ${INTERMEDIATES:+"$INTERMEDIATES"} >"$extra"
      openssl cms -verify -binary -inform DER -in "$out/$sig" "${content[@]}" -certfile "$extra" \
        -CAfile "$ROOT_CA" -purpose any -out /dev/null >/dev/null 2>&1 && ok=1
      ;;
    *) echo "FAIL [$name] $label: unknown kind '$kind'" >&2; failed=$((failed+1)); continue ;;
  esac
  if [[ $ok -eq 1 ]]; then
    count=$((count+1))
  else
    echo "FAIL [$name] openssl rejects $label ($kind $hash, $sig)" >&2
    failed=$((failed+1))
  fi
done <"$out/manifest.tsv"
rm -f "$out"/.verify-*
echo "openssl [$name]: $count signatures verified, $failed rejected"
[[ $failed -eq 0 && $count -gt 0 ]]

# Verifier side of the GnuPG rows: never touches the token.
#
# Source it from a row's verify step:   . "$HARNESS/tools/gnupg/verify.sh"
# It makes a separate GNUPGHOME=$WORK/verify-gnupg that holds only public material: the OpenPGP
# public key the sign step exported ($WORK/openpgp-pub.asc) and, for gpgsm, $ROOT_CA as the only
# trusted root. An EXIT trap stops whatever gpg-agent a verifier starts there.
#
# OpenPGP carries no X.509 chain, so a good OpenPGP signature alone says nothing about $CERT.
# gnupg_check_key_is_cert closes that gap: the OpenPGP key's keygrip (computed by gpg from the
# key packet) must equal the keygrip of $CERT's public key (computed by gpgsm from the
# certificate), and $CERT must chain to $ROOT_CA. gnupg_check_validsig then ties a verifier's
# VALIDSIG status line to that key.

. "$HARNESS/tools/gnupg/common.sh"

gnupg_verify_home() {
  export GNUPGHOME=$WORK/verify-gnupg
  mkdir -p -m 700 "$GNUPGHOME"
  trap gnupg_stop EXIT
  gnupg_trust_root "$GNUPGHOME"
  [[ -s $WORK/openpgp-pub.asc ]] || gnupg_fail "no $WORK/openpgp-pub.asc (the sign step exports it)" || return 1
  gpg --batch --quiet --import "$WORK/openpgp-pub.asc"
}

# Sets VERIFIED_FPR: the OpenPGP key (in $WORK/openpgp-pub.asc) whose public key is $CERT's.
gnupg_check_key_is_cert() {
  local cert_grip cert_fpr
  cert_fpr=$(openssl x509 -in "$CERT" -noout -fingerprint -sha1 | sed 's/.*=//; s/://g')
  gpgsm --batch --quiet --import "$ROOT_CA" "$CHAIN" "$CERT"
  cert_grip=$(gpgsm --with-colons --with-keygrip --list-keys "$cert_fpr" |
    awk -F: '$1 == "grp" {print $10; exit}')
  [[ -n $cert_grip ]] || gnupg_fail "gpgsm computed no keygrip for $CERT" || return 1
  VERIFIED_FPR=$(gpg --with-colons --with-keygrip --list-keys |
    awk -F: -v grip="$cert_grip" '$1 == "fpr" {fpr = $10} $1 == "grp" && $10 == grip {print fpr; exit}')
  [[ -n $VERIFIED_FPR ]] ||
    gnupg_fail "no OpenPGP key in openpgp-pub.asc has the public key of $CERT (keygrip $cert_grip)" || return 1
  export VERIFIED_FPR
  openssl verify -CAfile "$ROOT_CA" -untrusted "$CHAIN" "$CERT"
  echo "gnupg/verify.sh: OpenPGP key $VERIFIED_FPR = public key of $(openssl x509 -in "$CERT" -noout -subject) (keygrip $cert_grip)"
}

# A GnuPG status file (--status-fd output) must hold GOODSIG and a VALIDSIG by $VERIFIED_FPR.
gnupg_check_validsig() {
  local status_file=$1 signer
  grep -q '^\[GNUPG:\] GOODSIG ' "$status_file" || gnupg_fail "no GOODSIG in $status_file" || return 1
  # VALIDSIG <fpr> <date> <ts> <expire> <version> <reserved> <pk-algo> <hash-algo> <class> <primary-fpr>
  signer=$(awk '$2 == "VALIDSIG" {print ($12 != "" ? $12 : $3); exit}' "$status_file")
  [[ $signer == "$VERIFIED_FPR" ]] ||
    gnupg_fail "signed by ${signer:-nobody}, not by the key of \$CERT ($VERIFIED_FPR)" || return 1
  echo "gnupg/verify.sh: good signature by $signer ($(awk '$2 == "VALIDSIG" {print "pk-algo " $9 ", hash-algo " $10; exit}' "$status_file"))"
}

# OpenSSL's view of a gpgsm CMS signature (PEM "CMS" over detached CONTENT): the chain must end
# at $ROOT_CA and the signer must be $CERT. When OpenSSL rejects it, says whether the SignerInfo
# signature has the k+1-octet form of the known GnuPG/libksba defect (see matrix.yaml).
gnupg_cms_verify() {
  local pem=$1 content=$2 modulus_octets signature_octets
  if ! openssl cms -verify -binary -inform PEM -in "$pem" -content "$content" \
      -CAfile "$ROOT_CA" -certfile "$CHAIN" -signer "$WORK/cms-signer.pem" -out /dev/null; then
    modulus_octets=$(( ($(openssl x509 -in "$CERT" -noout -modulus | sed 's/.*=//' | wc -c) - 1) / 2 ))
    signature_octets=$(openssl asn1parse -inform PEM -in "$pem" | awk '/OCTET STRING/ {n = $0} END {print n}' |
      sed -E 's/.* l= *([0-9]+) .*/\1/')
    echo "gnupg/verify.sh: OpenSSL rejects the CMS signature: SignerInfo signature $signature_octets octets," \
      "RSA modulus $modulus_octets octets" >&2
    if ((signature_octets == modulus_octets + 1)); then
      echo "gnupg/verify.sh: that is the known GnuPG 2.2/libksba defect (a 00 sign byte kept in the signature)" >&2
    fi
    return 1
  fi
  cmp <(openssl x509 -in "$WORK/cms-signer.pem" -outform DER) <(openssl x509 -in "$CERT" -outform DER) ||
    gnupg_fail "the CMS signer is not \$CERT" || return 1
  echo "gnupg/verify.sh: OpenSSL verified the CMS signature by \$CERT up to \$ROOT_CA"
}

gnupg_verify_home
gnupg_check_key_is_cert

# GnuPG on the token through gnupg-pkcs11-scd, for one matrix cell.
#
# Source it from a row's sign step (bash -euo pipefail, row environment of docs/matrix.md):
#     . "$HARNESS/tools/gnupg/setup.sh"            # OpenPGP: gpg, git -S, rpmsign, debsigs, debsign
#     . "$HARNESS/tools/gnupg/setup.sh" gpgsm      # also X.509/CMS: gpgsm, git with gpg.format=x509
# It
#   - makes GNUPGHOME=$WORK/gnupg (one per cell: cells may run in parallel) with
#     gnupg-pkcs11-scd as gpg-agent's scdaemon, provider library $PKCS11_MODULE, and a
#     non-interactive pinentry that answers $PIN;
#   - starts this GNUPGHOME's gpg-agent with the row environment (so scd inherits
#     SIGNUM_AGENT_SOCKET / SOFTHSM2_CONF) and installs an EXIT trap that stops it and its
#     scdaemon again, also when the step fails;
#   - finds the token key whose CKA_ID is $KEY_ID among the keys scd learns, and makes an OpenPGP
#     key on it (batch `Key-Grip:`, no interaction; the self-signature is made on the token);
#   - exports GNUPGHOME, GPG_FPR (40 hex), GPG_KEYID (16 hex), GPG_KEYGRIP, and writes
#     $WORK/openpgp-pub.asc (armored) and $WORK/openpgp-pub.gpg (binary) for the verify step;
#   - with `gpgsm`: imports $CERT and $CHAIN, trusts $ROOT_CA (trustlist.txt) and exports
#     GPGSM_FPR (the certificate's SHA-1 fingerprint, how gpgsm and git name the signer).
# gnupg-pkcs11-scd 0.10 only knows RSA keys: for an EC key it fails here, saying so.

. "$HARNESS/tools/gnupg/common.sh"

# Starts gpg-agent for $GNUPGHOME now, with the row environment (autostart would inherit that of
# whichever tool comes first; scd inherits the agent's).
gnupg_start_agent() {
  gpg-connect-agent /bye >/dev/null 2>&1 || gnupg_fail "gpg-agent did not start in $GNUPGHOME"
}

gnupg_setup() {
  local name
  for name in WORK PKCS11_MODULE PIN KEY_ID KEY_LABEL CERT; do
    [[ -n ${!name:-} ]] || gnupg_fail "\$$name is not set (row environment, docs/matrix.md)" || return 1
  done
  export GNUPGHOME=$WORK/gnupg
  local SOCKET_NAME_MAX=/S.gpg-agent.browser
  # gpg-agent puts its sockets in GNUPGHOME here (no /run/user/UID): sun_path holds 107 bytes.
  ((${#GNUPGHOME} + ${#SOCKET_NAME_MAX} <= 107)) ||
    gnupg_fail "GNUPGHOME=$GNUPGHOME is too long for gpg-agent's socket" || return 1
  mkdir -p -m 700 "$GNUPGHOME"

  (umask 077 && printf '%s' "$PIN" >"$GNUPGHOME/pin")
  printf '#!/bin/sh\nexec %q %q\n' "$HARNESS/tools/gnupg/pinentry.sh" "$GNUPGHOME/pin" \
    >"$GNUPGHOME/pinentry"
  chmod 700 "$GNUPGHOME/pinentry"
  cat >"$GNUPGHOME/gnupg-pkcs11-scd.conf" <<EOF
log-file $GNUPGHOME/scd.log
providers p1
provider-p1-library $PKCS11_MODULE
EOF
  cat >"$GNUPGHOME/gpg-agent.conf" <<EOF
scdaemon-program $(command -v gnupg-pkcs11-scd)
pinentry-program $GNUPGHOME/pinentry
EOF
  # debsigs runs `gpg --openpgp --detach-sign`, which alone picks SHA-1 (rejected by
  # debsig-verify); the preference list makes every OpenPGP signature use $HASH.
  local hash=${HASH:-sha256}
  cat >"$GNUPGHOME/gpg.conf" <<EOF
personal-digest-preferences ${hash^^}
cert-digest-algo ${hash^^}
EOF

  trap gnupg_stop EXIT
  gnupg_start_agent || return 1

  # The agent's LEARN asks scd for every key it can use and writes the shadow keys gpg/gpgsm
  # need; KEYPAIRINFO <keygrip> <provider/token/.../CKA_ID>.
  local learn
  learn=$(gpg-connect-agent 'LEARN --sendinfo' /bye 2>&1) || gnupg_fail "LEARN failed" || return 1
  GPG_KEYGRIP=$(awk -v id="/${KEY_ID^^}" '$2 == "KEYPAIRINFO" && substr($4, length($4) - length(id) + 1) == id {print $3}' <<<"$learn")
  if [[ -z $GPG_KEYGRIP ]]; then
    echo "$learn" >&2
    gnupg_fail "gnupg-pkcs11-scd does not offer the key with CKA_ID $KEY_ID ($KEY_LABEL) on" \
      "$PKCS11_MODULE (it needs a certificate with the same CKA_ID; 0.10 ignores EC keys)" || return 1
  fi
  export GPG_KEYGRIP

  if [[ ! -s $GNUPGHOME/openpgp.fpr ]]; then
    cat >"$GNUPGHOME/keygen.batch" <<EOF
%no-protection
Key-Type: RSA
Key-Grip: $GPG_KEYGRIP
Key-Usage: sign,cert
Name-Real: Signum Demo $KEY_LABEL
Name-Email: signer@signum.test
Expire-Date: 0
%commit
EOF
    gpg --batch --quiet --gen-key "$GNUPGHOME/keygen.batch" ||
      gnupg_fail "making the OpenPGP key on keygrip $GPG_KEYGRIP failed" || return 1
    gpg --with-colons --with-keygrip --list-secret-keys |
      awk -F: -v grip="$GPG_KEYGRIP" '$1 == "fpr" {fpr = $10} $1 == "grp" && $10 == grip {print fpr; exit}' \
        >"$GNUPGHOME/openpgp.fpr"
  fi
  GPG_FPR=$(<"$GNUPGHOME/openpgp.fpr")
  [[ ${#GPG_FPR} == 40 ]] || gnupg_fail "no OpenPGP key on keygrip $GPG_KEYGRIP" || return 1
  export GPG_FPR GPG_KEYID=${GPG_FPR:24}
  gpg --armor --export "$GPG_FPR" >"$WORK/openpgp-pub.asc"
  gpg --export "$GPG_FPR" >"$WORK/openpgp-pub.gpg"
  echo "gnupg/setup.sh: OpenPGP key $GPG_FPR on keygrip $GPG_KEYGRIP ($KEY_LABEL, $PKCS11_MODULE)"

  if [[ ${1:-} == gpgsm ]]; then
    gnupg_trust_root "$GNUPGHOME"
    gpgsm --batch --quiet --import "$ROOT_CA" "$CHAIN" "$CERT" ||
      gnupg_fail "gpgsm could not import $CERT and $CHAIN" || return 1
    GPGSM_FPR=$(openssl x509 -in "$CERT" -noout -fingerprint -sha1 | sed 's/.*=//; s/://g')
    export GPGSM_FPR
    echo "gnupg/setup.sh: gpgsm signer $GPGSM_FPR"
  fi
}

gnupg_setup "$@"

# Shared by setup.sh (signing side) and verify.sh (verifying side); sourced, not run.

gnupg_fail() {
  echo "gnupg: $*" >&2
  return 1
}

# Stops the gpg-agent of a GNUPGHOME (default: the current one) and its children
# (gnupg-pkcs11-scd), by the PIDs they report, never by name. gpgconf --kill also ends a dirmngr
# of that home. Used as an EXIT trap, so it runs when a step fails too; then it prints the tail of
# the scd log.
gnupg_stop() {
  local status=$? home=${1:-${GNUPGHOME:-}} pids pid n alive
  [[ -n $home && -d $home ]] || return "$status"
  pids=$(GNUPGHOME=$home gpg-connect-agent --no-autostart 'GETINFO pid' /bye 2>/dev/null |
    awk '$1 == "D" {print $2}' || true)
  for pid in $pids; do
    pids+=" $(pgrep -P "$pid" 2>/dev/null | tr '\n' ' ' || true)"
  done
  GNUPGHOME=$home gpgconf --kill all >/dev/null 2>&1 || true
  for n in $(seq 30); do
    alive=""
    for pid in $pids; do
      gnupg_alive "$pid" && alive+=" $pid"
    done
    [[ -n $alive ]] || break
    if ((n == 30)); then
      echo "gnupg: still running after gpgconf --kill: $alive; sending TERM" >&2
      kill -TERM $alive 2>/dev/null || true
    fi
    sleep 0.1
  done
  if ((status != 0)) && [[ -s $home/scd.log ]]; then
    echo "---- gnupg-pkcs11-scd log ($home/scd.log, last 30 lines)" >&2
    tail -n 30 "$home/scd.log" >&2
  fi
  return "$status"
}

# A process that exists and is not a zombie waiting for its reaper.
gnupg_alive() {
  local state
  state=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) || return 1
  [[ -n $state && $state != Z ]]
}

# gpgsm/gpg-agent trust: only $ROOT_CA, as a root for S/MIME (flag S); no CRL/OCSP (no network).
gnupg_trust_root() {
  local home=$1
  printf "disable-crl-checks\ndisable-dirmngr\n" >"$home/gpgsm.conf"
  openssl x509 -in "$ROOT_CA" -noout -fingerprint -sha1 | sed 's/.*=//; s/$/ S/' >"$home/trustlist.txt"
}


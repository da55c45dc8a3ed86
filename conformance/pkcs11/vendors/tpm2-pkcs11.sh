#!/usr/bin/env bash
# tpm2-pkcs11 over a software TPM, for validate-hsm:
#
#   tpm2-pkcs11.sh up DIR     swtpm (TPM 2.0 state in DIR/tpm, unix sockets DIR/swtpm.sock{,.ctrl}),
#                             a private D-Bus bus (DIR/bus.sock, own config: no TCP, no abstract
#                             socket, no service activation), tpm2-abrmd on that bus, a fresh
#                             tpm2-pkcs11 store DIR/store with one token; writes DIR/vendor.env
#   tpm2-pkcs11.sh down DIR   stops exactly the daemons recorded in DIR/pids, removes DIR's state
#
# Everything lives under DIR (use a short path: unix socket paths are limited to 107 bytes); the
# system D-Bus and any system tpm2-abrmd are never touched. Both commands are safe to repeat: `up`
# on a running DIR only reports it, `up` on a half-started DIR cleans it first, `down` on a stopped
# DIR does nothing. A failing `up` stops what it started.
set -euo pipefail

VENDOR_NAME=tpm2-pkcs11
. "$(dirname "$0")/lib.sh"

MODULE=/usr/lib/x86_64-linux-gnu/pkcs11/libtpm2_pkcs11.so
TOKEN_LABEL=signum-tpm2
TCTI=tabrmd:bus_type=session
DAEMONS=(tpm2-abrmd dbus-daemon swtpm) # stop order

usage() {
  echo "usage: $0 up|down DIR" >&2
  exit 2
}
[[ $# -eq 2 ]] || usage

need() {
  local tool
  for tool in "$@"; do
    command -v "$tool" >/dev/null || die "$tool is not installed (ci/setup installs VENDOR_PACKAGES)"
  done
}

down() {
  local dir=$1 name
  [[ -d $dir ]] || return 0
  for name in "${DAEMONS[@]}"; do stop_recorded "$dir" "$name"; done
  rm -rf "$dir/tpm" "$dir/store" "$dir/vendor.env" "$dir/user.pin" "$dir/so.pin" \
    "$dir/bus.conf" "$dir/bus.sock" "$dir/swtpm.sock" "$dir/swtpm.sock.ctrl" "$dir/pids"
}

up() {
  local dir=$1 name running=0 i
  need swtpm tpm2-abrmd dbus-daemon tpm2_getcap tpm2_ptool
  [[ -f $MODULE ]] || die "$MODULE is missing (package libtpm2-pkcs11-1)"
  [[ -f /usr/lib/x86_64-linux-gnu/libtss2-tcti-tabrmd.so.0 ]] ||
    die "the tabrmd TCTI is missing (package libtss2-tcti-tabrmd0)"
  mkdir -p "$dir"
  chmod 700 "$dir"
  dir=$(cd "$dir" && pwd)
  ((${#dir} + 16 < 108)) || die "$dir is too long for a unix socket path: use a shorter DIR"
  if [[ -f $dir/vendor.env ]]; then
    for name in "${DAEMONS[@]}"; do recorded_alive "$dir" "$name" && running=$((running + 1)); done
    if ((running == ${#DAEMONS[@]})); then
      say "already up in $dir"
      return 0
    fi
  fi
  down "$dir" # whatever a failed or half-stopped run left
  UP_DIR=$dir
  trap 'if [[ -n ${UP_DIR:-} ]]; then say "up failed: stopping what was started"; down "$UP_DIR"; fi' EXIT
  mkdir -p "$dir/tpm" "$dir/store" "$dir/pids"

  # 1. The TPM: a fresh TPM 2.0 (libtpms manufactures it on first start), TPM2_Startup(CLEAR) by
  # swtpm itself. The swtpm TCTI expects the control socket at <path>.ctrl.
  swtpm socket --tpm2 --tpmstate "dir=$dir/tpm" \
    --server "type=unixio,path=$dir/swtpm.sock" --ctrl "type=unixio,path=$dir/swtpm.sock.ctrl" \
    --flags startup-clear,not-need-init --log "file=$dir/swtpm.log" \
    --pid "file=$dir/swtpm.pidfile" --daemon
  record_pid "$dir" swtpm "$(cat "$dir/swtpm.pidfile")" swtpm
  rm -f "$dir/swtpm.pidfile"

  # 2. A private bus: our own configuration (the stock session.conf listens on an abstract
  # socket and activates services from /usr/share/dbus-1).
  cat >"$dir/bus.conf" <<EOF
<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:path=$dir/bus.sock</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
EOF
  local bus_pid
  bus_pid=$(dbus-daemon --config-file="$dir/bus.conf" --fork --print-pid --nosyslog)
  record_pid "$dir" dbus-daemon "$bus_pid" dbus-daemon
  export DBUS_SESSION_BUS_ADDRESS=unix:path=$dir/bus.sock

  # 3. tpm2-abrmd on that bus, the TPM's only client; every PKCS#11 user goes through it.
  # tpm2-abrmd refuses to run as root unless told: CI runs as root, and the daemon only ever
  # talks to our swtpm and our bus.
  local root_flag=()
  [[ $(id -u) -ne 0 ]] || root_flag=(--allow-root)
  setsid tpm2-abrmd --session "${root_flag[@]}" --flush-all --tcti="swtpm:path=$dir/swtpm.sock" \
    </dev/null >"$dir/tpm2-abrmd.log" 2>&1 &
  record_pid "$dir" tpm2-abrmd $! tpm2-abrmd
  export TPM2TOOLS_TCTI=$TCTI
  for ((i = 0; i < 100; i++)); do
    tpm2_getcap properties-fixed >/dev/null 2>&1 && break
    recorded_alive "$dir" tpm2-abrmd || { cat "$dir/tpm2-abrmd.log" >&2; false; }
    sleep 0.1
  done
  tpm2_getcap properties-fixed >/dev/null 2>"$dir/getcap.err" ||
    { cat "$dir/getcap.err" "$dir/tpm2-abrmd.log" >&2; false; }
  rm -f "$dir/getcap.err"
  # Dictionary-attack protection: a user PIN is a TPM authorisation, and libtpms' defaults (3
  # failures, then 1000 s of lockout) let the suite's wrong-PIN checks lock the token: every
  # later C_Login answers CKR_PIN_LOCKED and the rest of the run is void. A throwaway TPM for
  # conformance runs gets 1000 tries and 1 s recovery (the empty lockout auth of a fresh TPM).
  tpm2_dictionarylockout --setup-parameters --max-tries=1000 --recovery-time=1 \
    --lockout-recovery-time=1 >"$dir/dictionarylockout.log" 2>&1 ||
    { cat "$dir/dictionarylockout.log" >&2; false; }

  # 4. The token: a store (sqlite) in DIR/store, a primary key in the TPM's owner hierarchy,
  # one token with fresh PINs.
  local user_pin so_pin
  user_pin=$(random_digits 8)
  so_pin=$(random_digits 8)
  write_secret "$dir/user.pin" "$user_pin"
  write_secret "$dir/so.pin" "$so_pin"
  export TPM2_PKCS11_STORE=$dir/store TPM2_PKCS11_TCTI=$TCTI
  tpm2_ptool init --path "$dir/store" >"$dir/ptool.log" 2>&1 || { cat "$dir/ptool.log" >&2; false; }
  tpm2_ptool addtoken --pid 1 --label "$TOKEN_LABEL" --sopin "$so_pin" --userpin "$user_pin" \
    --path "$dir/store" >>"$dir/ptool.log" 2>&1 || { cat "$dir/ptool.log" >&2; false; }

  write_vendor_env "$dir" "$MODULE" "$TOKEN_LABEL" "$dir/user.pin" \
    "TPM2_PKCS11_STORE=$dir/store" "TPM2_PKCS11_TCTI=$TCTI" \
    "DBUS_SESSION_BUS_ADDRESS=$DBUS_SESSION_BUS_ADDRESS"
  UP_DIR=""
  say "up in $dir: token '$TOKEN_LABEL'; daemons: $(cat "$dir"/pids/*.pid | tr '\n' ' ')"
}

case $1 in
  up) up "$2" ;;
  down)
    down "$2"
    say "down: $2"
    ;;
  *) usage ;;
esac

#!/usr/bin/env bash
# openCryptoki's soft token (libpkcs11_sw behind pkcsslotd), for validate-hsm:
#
#   opencryptoki.sh up DIR     adds one slot of its own to /etc/opencryptoki/opencryptoki.conf (a
#                              soft token with its own `tokname`, so its state is
#                              /var/lib/opencryptoki/<tokname>, not the shared swtok), starts
#                              pkcsslotd, initialises the token with a unique label and fresh SO and
#                              user PINs (files in DIR), writes DIR/vendor.env
#   opencryptoki.sh down DIR   stops the recorded pkcsslotd, removes the slot, its token directory
#                              and the shared-memory files openCryptoki made while it ran
#
# openCryptoki 3.8 cannot be pointed elsewhere: the configuration path
# (/etc/opencryptoki/opencryptoki.conf), pkcsslotd's socket and PID file (/var/run/pkcsslotd.*), the
# token directories (/var/lib/opencryptoki), the lock directories (/var/lock/opencryptoki) and
# the shared memory (/dev/shm/var.lib.opencryptoki.*, one SysV segment) are compiled in. Hence:
# root only (pkcsslotd creates all of that, and there is one pkcsslotd per machine, serving every
# slot in the configuration), one instance at a time (a pkcsslotd that this script did not start is
# never touched: `up` refuses), and every change to shared places is recorded in DIR and undone by
# `down`. The slot's configuration block is marked with the token's name and DIR; blocks left by a
# killed run are removed by the next `up`. Clients of the module must be root or in group pkcs11
# (the socket and /var/lib/opencryptoki are root:pkcs11 0770).
#
# Both commands are safe to repeat: `up` on a running DIR only reports it, `down` on a stopped DIR
# does nothing. A failing `up` undoes what it did.
set -euo pipefail

VENDOR_NAME=opencryptoki
. "$(dirname "$0")/lib.sh"

MODULE=/usr/lib/x86_64-linux-gnu/pkcs11/libopencryptoki.so
CONF=/etc/opencryptoki/opencryptoki.conf
STATE=/var/lib/opencryptoki
LOCKS=/var/lock/opencryptoki
SLOTD_PIDFILE=/var/run/pkcsslotd.pid
DEFAULT_SO_PIN=87654321 # a new openCryptoki soft token's SO PIN (openCryptoki documentation)
EDIT_LOCK=/run/lock/signum-opencryptoki.lock

usage() {
  echo "usage: $0 up|down DIR" >&2
  exit 2
}
[[ $# -eq 2 ]] || usage

# remove_blocks FILTER: drops the marked slot blocks whose begin line matches FILTER (awk regex)
# from the configuration; prints the token names of the removed blocks.
remove_blocks() {
  local filter=$1 removed
  removed=$(awk -v f="$filter" '$0 ~ /^# signum-vendor-begin / && $0 ~ f { print $3 }' "$CONF")
  [[ -n $removed ]] || return 0
  awk -v f="$filter" '
    $0 ~ /^# signum-vendor-begin / && $0 ~ f { skip = 1 }
    !skip { print }
    $0 ~ /^# signum-vendor-end / && skip { skip = 0 }' "$CONF" >"$CONF.signum-tmp"
  cat "$CONF.signum-tmp" >"$CONF" # keeps the file's owner and mode
  rm -f "$CONF.signum-tmp"
  echo "$removed"
}

remove_token_state() {
  local tokname=$1
  [[ $tokname =~ ^signum[0-9a-f]+$ ]] || die "refusing to remove token '$tokname'"
  rm -rf "${STATE:?}/$tokname" "${LOCKS:?}/$tokname" "/dev/shm/var.lib.opencryptoki.$tokname"
}

# slotd_pids: PIDs of every live pkcsslotd on the machine (ours or not; not zombies).
slotd_pids() {
  local pid
  for pid in $(pgrep -x pkcsslotd); do alive "$pid" && echo "$pid"; done
  return 0
}

down() {
  local dir=$1 tokname="" pid comm path
  [[ -d $dir ]] || return 0
  [[ -f $dir/tokname ]] && tokname=$(cat "$dir/tokname")
  if [[ -f $dir/pids/pkcsslotd.pid ]]; then
    read -r pid comm <"$dir/pids/pkcsslotd.pid"
    stop_recorded "$dir" pkcsslotd
    # pkcsslotd removes its socket but not its PID file.
    [[ -f $SLOTD_PIDFILE && $(cat "$SLOTD_PIDFILE") == "$pid" ]] && rm -f "$SLOTD_PIDFILE"
    if ((STOP_KILLED)) && [[ -f $dir/preexisting.sysv ]]; then
      # Killed, pkcsslotd could not remove its SysV segment: remove the unattached new ones.
      ipcs -m | awk 'NR > 3 && $1 ~ /^0x/ && $6 == 0 { print $1, $2 }' | while read -r key id; do
        grep -qx "$key" "$dir/preexisting.sysv" || ipcrm -m "$id" || true
      done
    fi
  fi
  exec 9>"$EDIT_LOCK"
  flock 9
  if [[ -n $tokname ]]; then
    remove_blocks "^# signum-vendor-begin $tokname " >/dev/null
    remove_token_state "$tokname"
  fi
  # Shared memory, lock files and per-user TPM-token directories openCryptoki created while we ran (any
  # C_Initialize of libopencryptoki attaches every configured slot's STDLL: the shared swtok and
  # the TPM token make theirs too).
  if [[ -f $dir/preexisting.files ]]; then
    for path in /dev/shm/var.lib.opencryptoki.* "$STATE"/tpm/* "$LOCKS"/LCK..*; do
      [[ -e $path ]] || continue
      grep -qxF "$path" "$dir/preexisting.files" || rm -rf "$path"
    done
  fi
  flock -u 9
  rm -rf "$dir/pids" "$dir/vendor.env" "$dir/user.pin" "$dir/so.pin" "$dir/tokname" \
    "$dir/preexisting.files" "$dir/preexisting.sysv"
}

up() {
  local dir=$1 pid i
  [[ $(id -u) -eq 0 ]] || die "must run as root: pkcsslotd and the token state live in /var/run, /var/lib/opencryptoki and /etc"
  if ! command -v pkcsslotd >/dev/null || [[ ! -f $MODULE ]]; then
    die "openCryptoki is not installed (ci/setup installs VENDOR_PACKAGES)"
  fi
  command -v pkcs11-tool >/dev/null || die "pkcs11-tool is not installed (package opensc)"
  getent group pkcs11 >/dev/null || die "group pkcs11 is missing (the opencryptoki package makes it)"
  mkdir -p "$dir"
  chmod 700 "$dir"
  dir=$(cd "$dir" && pwd)
  if [[ -f $dir/vendor.env ]] && recorded_alive "$dir" pkcsslotd; then
    say "already up in $dir"
    return 0
  fi
  down "$dir"
  pid=$(slotd_pids)
  [[ -z $pid ]] || die "a pkcsslotd this script did not start runs (PID $pid): a new slot needs a pkcsslotd restart; stop it first (or run the baseline on another machine)"

  UP_DIR=$dir
  trap 'if [[ -n ${UP_DIR:-} ]]; then say "up failed: undoing"; down "$UP_DIR"; fi' EXIT

  local tokname label slot
  tokname=signum$(random_hex 5)
  label=signum-ock-${tokname#signum}
  echo "$tokname" >"$dir/tokname"
  exec 9>"$EDIT_LOCK"
  flock 9
  # Blocks of runs that died without `down` (no pkcsslotd runs, so none is in use).
  for stale in $(remove_blocks '.'); do
    say "removing the slot of a run that ended without down: $stale"
    remove_token_state "$stale"
  done
  { ls -d /dev/shm/var.lib.opencryptoki.* "$STATE"/tpm/* "$LOCKS"/LCK..* 2>/dev/null || true; } >"$dir/preexisting.files"
  ipcs -m | awk 'NR > 3 && $1 ~ /^0x/ { print $1 }' >"$dir/preexisting.sysv"
  slot=10
  while grep -qE "^[[:space:]]*slot[[:space:]]+$slot([[:space:]]|\$)" "$CONF"; do slot=$((slot + 1)); done
  # The directories pkcsslotd and the soft token expect (the package's tmpfiles.d entries; /var/lock
  # is a tmpfs, so after a reboot they are gone until systemd-tmpfiles runs).
  install -d -m 0770 -o root -g pkcs11 "$LOCKS" "$LOCKS/$tokname" "$STATE/$tokname" \
    "$STATE/$tokname/TOK_OBJ"
  cat >>"$CONF" <<EOF
# signum-vendor-begin $tokname $dir
slot $slot
{
stdll = libpkcs11_sw.so
tokname = $tokname
description = "Signum baseline $tokname"
}
# signum-vendor-end $tokname
EOF
  flock -u 9

  pkcsslotd
  for ((i = 0; i < 50; i++)); do
    [[ -S /var/run/pkcsslotd.socket && -s $SLOTD_PIDFILE ]] && alive "$(cat "$SLOTD_PIDFILE")" && break
    sleep 0.1
  done
  record_pid "$dir" pkcsslotd "$(cat "$SLOTD_PIDFILE")" pkcsslotd

  local user_pin so_pin p11=(pkcs11-tool --module "$MODULE" --slot "$slot")
  user_pin=$(random_digits 8) # the soft token takes 4 to 8 characters
  so_pin=$(random_digits 8)
  write_secret "$dir/user.pin" "$user_pin"
  write_secret "$dir/so.pin" "$so_pin"
  {
    "${p11[@]}" --init-token --label "$label" --so-pin "$DEFAULT_SO_PIN"
    "${p11[@]}" --login --login-type so --so-pin "$DEFAULT_SO_PIN" --init-pin --pin "$user_pin"
    "${p11[@]}" --login --login-type so --so-pin "$DEFAULT_SO_PIN" --change-pin --new-pin "$so_pin"
  } >"$dir/init-token.log" 2>&1 || { cat "$dir/init-token.log" >&2; false; }

  write_vendor_env "$dir" "$MODULE" "$label" "$dir/user.pin"
  UP_DIR=""
  say "up in $dir: slot $slot, token '$label' ($STATE/$tokname); pkcsslotd PID $(cut -d' ' -f1 "$dir/pids/pkcsslotd.pid")"
}

case $1 in
  up) up "$2" ;;
  down)
    down "$2"
    say "down: $2"
    ;;
  *) usage ;;
esac

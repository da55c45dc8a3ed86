# shellcheck shell=bash disable=SC2034  # STOP_KILLED is read by opencryptoki.sh
# Sourced by the vendor scripts (opencryptoki.sh, tpm2-pkcs11.sh): PID records and stopping,
# vendor.env. Not executable on its own.
#
# Every daemon a vendor script starts is recorded as DIR/pids/NAME.pid holding "PID COMM" (COMM =
# /proc/PID/comm when it was started). `down` stops exactly those: a PID whose comm is no longer
# COMM belongs to someone else now (the daemon died and the PID was reused) and is left alone.

VENDOR_NAME=${VENDOR_NAME:-vendor}

say() { echo "$VENDOR_NAME: $*" >&2; }
die() {
  say "$*"
  exit 1
}

# alive PID: the process exists and is not a zombie (a daemon that exited but whose new parent,
# PID 1, has not reaped it yet still answers kill -0).
alive() {
  local state
  [[ -r /proc/$1/stat ]] || return 1
  state=$(sed -E 's/^[0-9]+ \(.*\) ([A-Za-z]).*/\1/' "/proc/$1/stat" 2>/dev/null) || return 1
  [[ -n $state && $state != Z && $state != X ]]
}

comm_of() { cat "/proc/$1/comm" 2>/dev/null || true; }

# record_pid DIR NAME PID [COMM]: remember a daemon we started; with COMM, first wait (up to 5 s)
# until the process is that program (a `setsid prog &` child is still `setsid` for a moment).
record_pid() {
  local dir=$1 name=$2 pid=$3 comm i
  if [[ -n ${4:-} ]]; then
    for ((i = 0; i < 50; i++)); do
      [[ $(comm_of "$pid") != "$4" ]] || break
      alive "$pid" || break
      sleep 0.1
    done
    [[ $(comm_of "$pid") == "$4" ]] || die "$name (PID $pid) is '$(comm_of "$pid")', not $4"
  fi
  comm=$(comm_of "$pid")
  [[ -n $comm ]] || die "$name (PID $pid) is not running"
  mkdir -p "$dir/pids"
  echo "$pid $comm" >"$dir/pids/$name.pid"
}

# recorded_alive DIR NAME: the recorded daemon still runs (same PID, same comm).
recorded_alive() {
  local file=$1/pids/$2.pid pid comm
  [[ -f $file ]] || return 1
  read -r pid comm <"$file"
  alive "$pid" && [[ $(comm_of "$pid") == "$comm" ]]
}

# stop_recorded DIR NAME: SIGTERM, wait up to 10 s, then SIGKILL; removes the record.
# Returns 0 when the daemon is gone (or was never recorded), and sets STOP_KILLED=1 when SIGKILL
# was needed.
STOP_KILLED=0
stop_recorded() {
  local file=$1/pids/$2.pid pid comm i
  [[ -f $file ]] || return 0
  read -r pid comm <"$file"
  if alive "$pid" && [[ $(comm_of "$pid") == "$comm" ]]; then
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 100; i++)); do
      alive "$pid" || break
      sleep 0.1
    done
    if alive "$pid"; then
      say "$2 (PID $pid) ignored SIGTERM for 10 s: SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
      STOP_KILLED=1
      for ((i = 0; i < 50; i++)); do
        alive "$pid" || break
        sleep 0.1
      done
    fi
    alive "$pid" && die "$2 (PID $pid) survived SIGKILL"
    say "stopped $2 (PID $pid)"
  elif alive "$pid"; then
    say "$2: PID $pid is now '$(comm_of "$pid")', not '$comm': not ours any more, left alone"
  fi
  rm -f "$file"
}

# write_vendor_env DIR MODULE TOKEN PIN_FILE [NAME=VALUE]...: DIR/vendor.env, one KEY=VALUE a
# line, no quoting (values never contain newlines); ENV_NAME=VALUE is environment the module needs
# (a wrapper turns it into `--env NAME=VALUE`).
write_vendor_env() {
  local dir=$1 module=$2 token=$3 pin_file=$4 assignment
  shift 4
  {
    echo "MODULE=$module"
    echo "TOKEN=$token"
    echo "PIN_FILE=$pin_file"
    for assignment in "$@"; do echo "ENV_$assignment"; done
  } >"$dir/vendor.env.tmp"
  mv "$dir/vendor.env.tmp" "$dir/vendor.env"
}

# random_digits N
random_digits() { od -An -N"$1" -tu1 /dev/urandom | awk '{ for (i = 1; i <= NF; i++) printf "%d", $i % 10 }'; }
random_hex() { od -An -N"$1" -tx1 /dev/urandom | tr -d ' \n'; }

# write_secret FILE VALUE: mode 0600, no trailing newline.
write_secret() {
  (umask 077 && printf '%s' "$2" >"$1")
}

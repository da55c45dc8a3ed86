#!/usr/bin/env bash
# ctest entry signum_validate_hsm_<vendor>: validate-hsm on a third-party PKCS#11 module.
#
#   run-validate.sh VENDOR BUILD_DIR OUT_DIR        VENDOR: opencryptoki | tpm2-pkcs11
#
# 1. vendors/VENDOR.sh up (daemons, a fresh token) in a private directory under /tmp;
# 2. the token's objects, listed while logged in (pkcs11-tool): OUT_DIR/objects-before.txt;
# 3. conformance/pkcs11/validate-hsm on the module with the token's environment, report in
#    OUT_DIR/report (with --expect expectations/VENDOR.json when validate-hsm has --expect);
# 4. the report must say the validation ran to the end (summary.json "complete") and that the
#    whole Signum path ran (runs.signum is not null);
#    for openCryptoki, signum-server's log must say it called the module one thread at a time;
# 5. the token's objects again: as many as before (validate-hsm removes what it made);
# 6. vendors/VENDOR.sh down, always (also after a failure, a timeout or a signal), and the daemon
#    logs copied to OUT_DIR/vendor-logs.
# Exit status 0 when all of that holds, 1 otherwise (the reason on stderr), 77 when the vendor's
# packages are not installed (ci/setup installs them) or, for openCryptoki, when not root.
set -euo pipefail

[[ $# -eq 3 ]] || { echo "usage: $0 opencryptoki|tpm2-pkcs11 BUILD_DIR OUT_DIR" >&2; exit 2; }
VENDOR=$1 BUILD=$2 OUT=$3
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../../.." && pwd)
VALIDATE=$ROOT/conformance/pkcs11/validate-hsm
EXPECT=$ROOT/conformance/pkcs11/expectations/$VENDOR.json
SCRIPT=$HERE/$VENDOR.sh
PY=/usr/bin/python3
# Seconds validate-hsm may take before it is stopped (the ctest TIMEOUT is the outer bound; this
# one leaves time for the cleanup).
VALIDATE_TIMEOUT=${SIGNUM_VENDOR_TIMEOUT:-480}

fail() {
  echo "run-validate ($VENDOR): FAILED: $*" >&2
  exit 1
}
skip() {
  echo "run-validate ($VENDOR): SKIPPED: $*" >&2
  exit 77
}
note() { echo "run-validate ($VENDOR): $*" >&2; }

[[ -x $SCRIPT ]] || { echo "unknown vendor '$VENDOR' (no $SCRIPT)" >&2; exit 2; }
BUILD=$(cd "$BUILD" && pwd)
case $VENDOR in
  opencryptoki)
    [[ -x /usr/sbin/pkcsslotd && -f /usr/lib/x86_64-linux-gnu/pkcs11/libopencryptoki.so ]] ||
      skip "openCryptoki is not installed (ci/setup installs VENDOR_PACKAGES)"
    [[ $(id -u) -eq 0 ]] || skip "openCryptoki's pkcsslotd and token state need root"
    ;;
  tpm2-pkcs11)
    for tool in swtpm tpm2-abrmd dbus-daemon tpm2_ptool tpm2_getcap; do
      command -v $tool >/dev/null || skip "$tool is not installed (ci/setup installs VENDOR_PACKAGES)"
    done
    [[ -f /usr/lib/x86_64-linux-gnu/pkcs11/libtpm2_pkcs11.so &&
      -f /usr/lib/x86_64-linux-gnu/libtss2-tcti-tabrmd.so.0 ]] ||
      skip "tpm2-pkcs11 or the tabrmd TCTI is not installed (ci/setup installs VENDOR_PACKAGES)"
    ;;
esac
command -v pkcs11-tool >/dev/null || skip "pkcs11-tool is not installed (package opensc)"

mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
# Two runs of the same entry (two ctest invocations at once) would share OUT_DIR, and openCryptoki
# has one pkcsslotd per machine: the second run waits for the first (fd 8: this OUT_DIR; fd 7:
# any openCryptoki baseline). Every program started below gets `7>&- 8>&-`, so no daemon can keep
# a lock after this script ends.
LOCK_WAIT=${SIGNUM_VENDOR_LOCK_WAIT:-300}
exec 8>"$OUT/.run-validate.lock"
flock -w "$LOCK_WAIT" 8 || fail "another run-validate has used $OUT for $LOCK_WAIT s"
if [[ $VENDOR == opencryptoki ]]; then
  exec 7>/run/lock/signum-opencryptoki-baseline.lock
  flock -w "$LOCK_WAIT" 7 || fail "another openCryptoki baseline has run for $LOCK_WAIT s"
fi
rm -rf "$OUT/report" "$OUT/vendor-logs" "$OUT/objects-before.txt" "$OUT/objects-after.txt" \
  "$OUT/validate-hsm.log"
WORK=$(mktemp -d /tmp/signum-vendor.XXXXXX) # short: swtpm and D-Bus sockets live here
STARTED=$(date +%s)

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  # A validate-hsm that was stopped leaves its deployment (server, agent) running: stop exactly
  # the processes that deployment recorded.
  if [[ -d $OUT/report/deployment/run ]]; then
    SIGNUM_BUILD_DIR=$BUILD "$ROOT/ci/demo" down "$OUT/report/deployment" >/dev/null 2>&1 7>&- 8>&- || true
  fi
  "$SCRIPT" down "$WORK" 7>&- 8>&- || { note "$VENDOR.sh down failed"; rc=1; }
  mkdir -p "$OUT/vendor-logs"
  cp "$WORK"/*.log "$OUT/vendor-logs/" 2>/dev/null || true
  rm -rf "$WORK"
  note "wall time $(($(date +%s) - STARTED)) s; report in $OUT/report"
  exit $rc
}
trap cleanup EXIT
trap 'exit 143' TERM
trap 'exit 130' INT

"$SCRIPT" up "$WORK" 7>&- 8>&- || fail "$VENDOR.sh up failed"
note "up after $(($(date +%s) - STARTED)) s"

# vendor.env: MODULE, TOKEN, PIN_FILE, ENV_NAME=VALUE.
MODULE="" TOKEN="" PIN_FILE=""
MODULE_ENV=() ENV_ARGS=()
while IFS= read -r line; do
  key=${line%%=*} value=${line#*=}
  case $key in
    MODULE) MODULE=$value ;;
    TOKEN) TOKEN=$value ;;
    PIN_FILE) PIN_FILE=$value ;;
    ENV_*)
      MODULE_ENV+=("${key#ENV_}=$value")
      ENV_ARGS+=(--env "${key#ENV_}=$value")
      ;;
  esac
done <"$WORK/vendor.env"
[[ -n $MODULE && -n $TOKEN && -n $PIN_FILE ]] || fail "$WORK/vendor.env lacks MODULE, TOKEN or PIN_FILE"

# list_objects FILE: the token's objects (logged in) into FILE; prints their number.
list_objects() {
  env "${MODULE_ENV[@]}" pkcs11-tool --module "$MODULE" --token-label "$TOKEN" --login \
    --pin "$(cat "$PIN_FILE")" --list-objects >"$1" 2>&1 7>&- 8>&- || { cat "$1" >&2; fail "pkcs11-tool --list-objects failed"; }
  grep -ciE '^(private key|public key|secret key|certificate|data|profile) object' "$1" || true
}
BEFORE=$(list_objects "$OUT/objects-before.txt")
note "token '$TOKEN': $BEFORE objects before validate-hsm"

EXTRA=()
if "$VALIDATE" --help 2>/dev/null | grep -q -- --expect; then
  [[ -f $EXPECT ]] || fail "$EXPECT is missing"
  EXTRA+=(--expect "$EXPECT")
else
  note "this validate-hsm has no --expect: running without $EXPECT"
fi
note "validate-hsm on $MODULE (log: $OUT/validate-hsm.log)"
set +e
SIGNUM_BUILD_DIR=$BUILD timeout --kill-after=20 "$VALIDATE_TIMEOUT" "$VALIDATE" \
  --module "$MODULE" --token "$TOKEN" --pin-file "$PIN_FILE" "${ENV_ARGS[@]}" "${EXTRA[@]}" \
  --out "$OUT/report" >"$OUT/validate-hsm.log" 2>&1 7>&- 8>&-
VALIDATE_RC=$?
set -e
cat "$OUT/validate-hsm.log"
((VALIDATE_RC != 124 && VALIDATE_RC != 137)) || fail "validate-hsm did not finish within $VALIDATE_TIMEOUT s"
note "validate-hsm exit $VALIDATE_RC after $(($(date +%s) - STARTED)) s"

# The report: ran to the end, and through the whole Signum path.
[[ -f $OUT/report/summary.json ]] || fail "validate-hsm wrote no $OUT/report/summary.json (exit $VALIDATE_RC)"
"$PY" - "$OUT/report/summary.json" <<'EOF' || fail "the report says the validation is incomplete (above)"
import json, sys
s = json.load(open(sys.argv[1]))
problems = []
if s.get("complete") is not True:
    problems.append("summary.json: complete is %r" % s.get("complete"))
    problems += ["  step failed: %s: %s" % (st["step"], (st.get("detail") or "").splitlines()[-1:] )
                 for st in s.get("steps", []) if not st.get("ok")]
if s.get("runs", {}).get("signum") is None:
    problems.append("summary.json: runs.signum is null: the whole Signum path did not run "
                    "(key specs generated: %s, enrolled: %s)"
                    % (s.get("key_specs_generated"), s.get("key_specs_enrolled")))
print("report: hsm %s, signum %s; key specs generated %s, enrolled %s"
      % (s["runs"].get("hsm"), s["runs"].get("signum"), s.get("key_specs_generated"),
         s.get("key_specs_enrolled")), file=sys.stderr)
for p in problems:
    print(p, file=sys.stderr)
sys.exit(1 if problems else 0)
EOF
((VALIDATE_RC == 0)) || fail "validate-hsm exit status $VALIDATE_RC"

# openCryptoki's soft token crashes under concurrent calls: signum-server must have recognised it
# (kModuleQuirks in reference/server/src/hsm_backend.cc) and called it one thread at a time.
if [[ $VENDOR == opencryptoki ]]; then
  SERVER_LOG=$OUT/report/deployment/logs/server.log
  grep -q "one call at a time into openCryptoki" "$SERVER_LOG" ||
    fail "signum-server did not serialise its calls into openCryptoki (no \"one call at a time into openCryptoki\" in $SERVER_LOG): its kModuleQuirks row does not match the module's CK_INFO"
fi

AFTER=$(list_objects "$OUT/objects-after.txt")
note "token '$TOKEN': $AFTER objects after validate-hsm"
((AFTER == BEFORE)) || fail "validate-hsm left the token with $AFTER objects, $BEFORE before (see $OUT/objects-{before,after}.txt)"
note "passed"

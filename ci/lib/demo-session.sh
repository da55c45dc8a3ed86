# Sourced by ctest entry scripts that run a suite against a throwaway demo deployment (ci/demo:
# signum-server on SoftHSM2 + signum-agent for user "release"):
#   source "$ROOT/ci/lib/demo-session.sh"; demo_session_up NAME BUILD_DIR
# creates WORK (a fresh temporary directory), brings WORK/demo up, sources its env.sh into the
# caller's shell, and on exit stops exactly that deployment and removes WORK. DEMO_STOP holds the
# shell command that stops it (for suites that take the agent down mid-run).
demo_session_up() {
  local name=$1 build=$2 root
  root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
  WORK=$(mktemp -d "${TMPDIR:-/tmp}/$name.XXXXXX")
  printf -v DEMO_STOP 'SIGNUM_BUILD_DIR=%q %q down %q >/dev/null' "$build" "$root/ci/demo" \
    "$WORK/demo"
  # shellcheck disable=SC2064  # expand now: the values are fixed for this session
  trap "eval $(printf '%q' "$DEMO_STOP") 2>/dev/null || true; rm -rf $(printf '%q' "$WORK")" EXIT
  SIGNUM_BUILD_DIR=$build "$root/ci/demo" up "$WORK/demo" >"$WORK/demo-up.log" 2>&1 ||
    { cat "$WORK/demo-up.log" >&2; exit 1; }
  # shellcheck disable=SC1091
  source "$WORK/demo/env.sh"
}

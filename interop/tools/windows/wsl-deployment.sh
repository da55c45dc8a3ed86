#!/usr/bin/env bash
# The Windows CI job's reference deployment, run inside WSL (docs/windows.md): signum-server and
# signum-agent are Linux programs. Clones the checkout into the distribution's own filesystem (LF
# line endings and Unix sockets: the Windows checkout under /mnt has neither guaranteed), installs
# and builds what the matrix needs (ci/setup, ci/build-matrix-parts), brings the demo deployment up
# (ci/demo up: keys rsa-2048 ... ec-p521, the agent on loopback TCP) and describes it for Windows
# with export-site.py.
#   interop/tools/windows/wsl-deployment.sh CHECKOUT OUT       (OUT: a /mnt/<drive>/... directory)
set -euo pipefail
[[ $# -eq 2 ]] || { echo "usage: wsl-deployment.sh CHECKOUT OUT" >&2; exit 2; }
checkout=$1 out=$2
src=$HOME/signum
rm -rf "$src"
# The commit checked out on Windows (uncommitted changes there are not carried over). Windows owns
# the files under /mnt, so git needs to be told they are safe to read.
git config --global --add safe.directory "$checkout"
git config --global --add safe.directory "$checkout/.git"
git -c core.autocrlf=false clone --quiet --no-hardlinks "$checkout" "$src"
cd "$src"
# Explicitly: the job's SIGNUM_BUILD_DIR (a Windows path) does not reach WSL, and must not.
export SIGNUM_BUILD_DIR=$src/build
ci/setup
ci/build-matrix-parts
ci/demo up "$HOME/signum-demo"
/usr/bin/python3 interop/tools/windows/export-site.py --deployment "$HOME/signum-demo" --out "$out"

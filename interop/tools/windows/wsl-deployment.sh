#!/usr/bin/env bash
# The Windows CI job's reference deployment, run inside WSL (docs/windows.md): signum-server and
# signum-agent are Linux programs. Clones the checkout into the distribution's own filesystem (LF
# line endings and Unix sockets: the Windows checkout under /mnt has neither guaranteed), installs
# only what a deployment needs (ci/setup --deployment: no signing tools, Wine, mingw or JDK), builds
# only the deployment's programs (no tests), brings the demo deployment up (ci/demo up: keys
# rsa-2048 ... ec-p521, the agent on loopback TCP) and describes it for Windows with
# export-site.py.
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
ci/setup --deployment
cmake -S . -B "$SIGNUM_BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSIGNUM_BUILD_TESTS=OFF
# server, agent and signum-demo (ci/demo); libsignumpkcs11.so and signum_harness (export-site.py
# reads the keys through them)
cmake --build "$SIGNUM_BUILD_DIR" -j"$(nproc)" --target signum-server signum-agent signum-demo \
  signumpkcs11 signum_harness
ci/demo up "$HOME/signum-demo"
/usr/bin/python3 interop/tools/windows/export-site.py --deployment "$HOME/signum-demo" --out "$out"

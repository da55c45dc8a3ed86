#!/usr/bin/env bash
# Runs a Windows program under Wine, headless and quiet; the CMAKE_CROSSCOMPILING_EMULATOR of the
# mingw build (ctest, gtest discovery) and of the conformance/cng drivers.
#   WINEPREFIX  default: <build tree>/wine-prefix, i.e. beside the CMakeCache.txt above the
#               program, else ./wine-prefix. One prefix per build tree, never ~/.wine.
# A fresh prefix costs ~7 s and ~0.7 GB. Start `wineserver -p` and `wine64 wineboot` detached
# before ctest (ci/build-windows does; see windows-recipes.md §2.3): Wine's services inherit the
# first process's pipes and ctest would otherwise wait for them, or hang.
set -euo pipefail
[[ $# -ge 1 ]] || { echo "usage: wine-run.sh PROGRAM.exe [ARGS...]" >&2; exit 2; }
if [[ -z ${WINEPREFIX:-} ]]; then
  dir=$(cd "$(dirname "$1")" && pwd)
  while [[ $dir != / && ! -f $dir/CMakeCache.txt ]]; do dir=$(dirname "$dir"); done
  [[ $dir != / ]] || dir=$PWD
  export WINEPREFIX=$dir/wine-prefix
fi
export WINEDEBUG=${WINEDEBUG:--all}
export WINEDLLOVERRIDES=${WINEDLLOVERRIDES:-"mscoree,mshtml=;winemenubuilder.exe=d"}
unset DISPLAY WAYLAND_DISPLAY
exec /usr/lib/wine/wine64 "$@"

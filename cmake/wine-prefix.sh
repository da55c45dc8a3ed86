# Sourced by ci/build-windows and conformance/cng/run-wine-suite.sh: one throwaway Wine prefix,
# headless and quiet, from start to a clean end.
#   wine_prefix_start DIR   creates DIR as WINEPREFIX and starts its wineserver (-p) and services
#                           detached from our pipes (windows-recipes.md §2.3: otherwise they inherit
#                           them and ctest waits ~2.4 s per test, or hangs)
#   wine_prefix_stop        stops this prefix's processes only (wineserver -k), removes the prefix
#                           (~0.7 GB: Wine copies its builtin DLLs into every prefix) and the
#                           server socket directory Wine made for it under /tmp
WINE64=/usr/lib/wine/wine64
WINESERVER=/usr/lib/wine/wineserver
WINE_BASE_OVERRIDES="mscoree,mshtml=;winemenubuilder.exe=d"  # no Mono/Gecko installs, no menus

wine_prefix_start() {
  export WINEPREFIX=$1 WINEDEBUG=-all
  export WINEDLLOVERRIDES=${WINEDLLOVERRIDES:-$WINE_BASE_OVERRIDES}
  unset DISPLAY WAYLAND_DISPLAY
  rm -rf "$WINEPREFIX"
  mkdir -p "$WINEPREFIX"
  # Wine names the socket directory of a prefix after its device and inode:
  # /tmp/wine-XXXXXX/server-<dev hex>-<inode hex> (or /tmp/.wine-<uid>/...).
  WINE_SERVER_DIR_NAME=server-$(stat -c %D "$WINEPREFIX")-$(printf %x "$(stat -c %i "$WINEPREFIX")")
  "$WINESERVER" -p </dev/null >/dev/null 2>&1
  "$WINE64" wineboot </dev/null >/dev/null 2>&1
}

wine_prefix_stop() {
  [[ -n ${WINEPREFIX:-} && -d $WINEPREFIX ]] || return 0
  "$WINESERVER" -k >/dev/null 2>&1 || true
  rm -rf "$WINEPREFIX"
  if [[ -n ${WINE_SERVER_DIR_NAME:-} ]]; then
    local dir
    for dir in /tmp/wine-*/"$WINE_SERVER_DIR_NAME" /tmp/.wine-"$(id -u)"/"$WINE_SERVER_DIR_NAME"; do
      [[ -d $dir ]] || continue
      rm -rf "$dir"
      rmdir "$(dirname "$dir")" 2>/dev/null || true  # only when no other prefix uses it
    done
  fi
}

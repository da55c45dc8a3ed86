# The 32-bit (x86) Windows build of the providers: 32-bit callers on 64-bit Windows (Office's
# x86-only SIPs, x86 signtool) load 32-bit KSP/CSP DLLs from SysWOW64 (conformance-anchors.md F27).
# It compiles and links here; it cannot run here (wine32:i386 is not installable beside this
# machine's amd64 libraries, windows-recipes.md §10), so it sets no emulator.
# ci/build-windows --arch i686 uses it.
set(SIGNUM_MINGW_ARCH i686)
include(${CMAKE_CURRENT_LIST_DIR}/mingw-w64.cmake)

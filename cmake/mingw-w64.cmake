# Cross-compiling the Windows parts (KSP, CSP, signum-util.exe, the CNG suites) with Debian's
# mingw-w64, for the architecture SIGNUM_MINGW_ARCH (x86_64 or i686) that the thin toolchain files
# mingw-w64-x86_64.cmake and mingw-w64-i686.cmake set before including this one.
# (shared/research/windows-recipes.md §9)
set(CMAKE_SYSTEM_NAME Windows)
if(SIGNUM_MINGW_ARCH STREQUAL "i686")
  set(CMAKE_SYSTEM_PROCESSOR x86)
else()
  set(CMAKE_SYSTEM_PROCESSOR x86_64)
endif()
# The posix thread model: GoogleTest and std::mutex/std::thread need it (win32 has no std::mutex).
set(CMAKE_C_COMPILER ${SIGNUM_MINGW_ARCH}-w64-mingw32-gcc-posix)
set(CMAKE_CXX_COMPILER ${SIGNUM_MINGW_ARCH}-w64-mingw32-g++-posix)
set(CMAKE_RC_COMPILER ${SIGNUM_MINGW_ARCH}-w64-mingw32-windres)
set(CMAKE_FIND_ROOT_PATH /usr/${SIGNUM_MINGW_ARCH}-w64-mingw32)
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)
# Static C++ runtime and winpthreads: the programs and the provider DLLs (which are loaded into
# arbitrary processes) need nothing beside themselves but Windows' own DLLs.
set(CMAKE_EXE_LINKER_FLAGS_INIT "-static")
set(CMAKE_SHARED_LINKER_FLAGS_INIT "-static")

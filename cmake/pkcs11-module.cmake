# signum_export_pkcs11_entry_points(TARGET MAP): a PKCS#11 module exports the C_* entry points
# named in MAP (a GNU ld version script) and nothing else, and leaves no undefined symbol for the
# host application to resolve. Our static libraries (core, OpenSSL helpers, nlohmann::json) stay
# private, so they never clash with a host's copies.
#   Linux: MAP as the version script, --no-undefined (not under TSan: clang links its runtime
#          into executables only, and the instrumented test provides the __tsan_* symbols).
#   macOS: ld64 has no version scripts; the same names, C-mangled (leading underscore), in an
#          exported-symbols list generated from MAP; ld64 refuses undefined symbols by default.
function(signum_export_pkcs11_entry_points target map)
  if(APPLE)
    file(READ ${map} text)
    string(REGEX REPLACE "/\\*[^*]*\\*+([^/*][^*]*\\*+)*/" "" text "${text}")  # comments
    string(REGEX MATCHALL "C_[A-Za-z_*]+" names "${text}")
    list(REMOVE_DUPLICATES names)
    list(TRANSFORM names PREPEND "_")
    string(REPLACE ";" "\n" lines "${names}")
    set(exports ${CMAKE_CURRENT_BINARY_DIR}/${target}.exports)
    file(WRITE ${exports} "${lines}\n")
    target_link_options(${target} PRIVATE -Wl,-exported_symbols_list,${exports})
  else()
    target_link_options(${target} PRIVATE -Wl,--version-script=${map}
      $<$<NOT:$<BOOL:${SIGNUM_TSAN}>>:-Wl,--no-undefined>)
  endif()
  set_property(TARGET ${target} APPEND PROPERTY LINK_DEPENDS ${map})
endfunction()

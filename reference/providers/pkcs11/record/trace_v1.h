// Trace format v1 (docs/trace-format.md): the one encoder of PKCS#11 calls as JSON lines, shared by
// its two writers, libsignum-pkcs11-recorder.so (around any module) and libsignumpkcs11.so
// (SIGNUM_PKCS11_RECORD).
//
//   - Call: one call's record, built while the call runs. Its arguments are added by KIND, with
//     the In_/Out_ pair of each KIND of ../src/functions.h below (SIGNUM_P11_TRACE_IN/OUT expand
//     the call table into those calls; they find this namespace's overloads by the record's type).
//   - The redaction rules: PINs (KIND SECRET) and key material in attribute templates are written
//     as {"redacted": true, "length": N}.
//   - The trace file of the process: O_APPEND, one write(2) per line under a mutex that
//     pthread_atfork keeps usable in a forked child, the header written only into an empty file
//     (several processes may append to one trace).
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "signum/core/pkcs11.h"

namespace signum::pkcs11::trace_v1 {

constexpr int kVersion = 1;

// One call's record.
class Call {
 public:
  explicit Call(const char* function);
  nlohmann::json& args() { return args_; }
  nlohmann::json& out() { return out_; }
  // Why the call failed, as the module knows it (optional "error" field); the recorder around a
  // foreign module never knows it.
  void Error(std::string_view message) { error_ = message; }
  // A remark on a call that did not fail (optional "note" field).
  void Note(std::string_view message) { note_ = message; }
  // The call line, stamped with its return value, the end time and the next seq of the process.
  nlohmann::json Finish(CK_RV rv) const;

 private:
  const char* function_;
  uint64_t t_start_;
  nlohmann::json args_ = nlohmann::json::object();
  nlohmann::json out_ = nlohmann::json::object();
  std::string error_;
  std::string note_;
};

// The header line. module_interface ("3.0"/"2.40") is left out when null.
nlohmann::json Header(std::string_view module, std::string_view recorder,
                      const char* module_interface);

// Runs fn with its exceptions (std::bad_alloc while building a record) kept from the caller:
// recording must never fail the call it describes.
template <typename Fn>
void Quietly(Fn&& fn) noexcept {
  try {
    fn();
  } catch (...) {
  }
}

// --- The trace file of this process -----------------------------------------------------------
// Makes path the trace file (created 0600, appended to); the header is written when the file is
// empty. The same path as now keeps the open file; an empty path closes it. Returns false, with
// the reason in *why, when the file cannot be opened (the previous one is then closed).
bool UseFile(const std::string& path, const nlohmann::json& header, std::string* why);
// True when a trace file is open. One relaxed atomic load: the untraced path costs nothing more.
bool FileOpen();
// Appends one line; silently nothing when no file is open or the line cannot be written.
void Write(const nlohmann::json& line);
// Finishes the call and appends its line, exceptions kept from the caller.
void Emit(const Call& call, CK_RV rv) noexcept;

// --- One In_/Out_ pair per argument KIND of functions.h ------------------------------------------
// clang-format off
void In_HANDLE(Call& c, const char* n, CK_ULONG v);
inline void Out_HANDLE(Call&, CK_RV, const char*, CK_ULONG) {}
void In_SLOT(Call& c, const char* n, CK_SLOT_ID v);
inline void Out_SLOT(Call&, CK_RV, const char*, CK_SLOT_ID) {}
void In_FLAGS(Call& c, const char* n, CK_FLAGS v);
inline void Out_FLAGS(Call&, CK_RV, const char*, CK_FLAGS) {}
void In_USER(Call& c, const char* n, CK_USER_TYPE v);
inline void Out_USER(Call&, CK_RV, const char*, CK_USER_TYPE) {}
void In_BOOL(Call& c, const char* n, CK_BBOOL v);
inline void Out_BOOL(Call&, CK_RV, const char*, CK_BBOOL) {}
void In_MECHANISM_TYPE(Call& c, const char* n, CK_MECHANISM_TYPE v);
inline void Out_MECHANISM_TYPE(Call&, CK_RV, const char*, CK_MECHANISM_TYPE) {}
void In_PTR(Call& c, const char* n, const void* v);
inline void Out_PTR(Call&, CK_RV, const char*, const void*) {}
void In_PTR(Call& c, const char* n, CK_NOTIFY v);
inline void Out_PTR(Call&, CK_RV, const char*, CK_NOTIFY) {}
void In_INIT_ARGS(Call& c, const char* n, CK_VOID_PTR v);
inline void Out_INIT_ARGS(Call&, CK_RV, const char*, CK_VOID_PTR) {}
void In_MECHANISM(Call& c, const char* n, CK_MECHANISM_PTR v);
inline void Out_MECHANISM(Call&, CK_RV, const char*, CK_MECHANISM_PTR) {}
void In_VERSION(Call& c, const char* n, CK_VERSION_PTR v);
inline void Out_VERSION(Call&, CK_RV, const char*, CK_VERSION_PTR) {}
void In_INTERFACE_NAME(Call& c, const char* n, CK_UTF8CHAR_PTR v);
inline void Out_INTERFACE_NAME(Call&, CK_RV, const char*, CK_UTF8CHAR_PTR) {}
void In_LABEL(Call& c, const char* n, CK_UTF8CHAR_PTR v);
inline void Out_LABEL(Call&, CK_RV, const char*, CK_UTF8CHAR_PTR) {}
void In_BYTES(Call& c, const char* n, const void* p, const char* ln, CK_ULONG len);
inline void Out_BYTES(Call&, CK_RV, const char*, const void*, const char*, CK_ULONG) {}
void In_SECRET(Call& c, const char* n, CK_UTF8CHAR_PTR p, const char* ln, CK_ULONG len);
inline void Out_SECRET(Call&, CK_RV, const char*, CK_UTF8CHAR_PTR, const char*, CK_ULONG) {}
void In_TEMPLATE(Call& c, const char* n, CK_ATTRIBUTE_PTR p, const char* cn, CK_ULONG count);
inline void Out_TEMPLATE(Call&, CK_RV, const char*, CK_ATTRIBUTE_PTR, const char*, CK_ULONG) {}
void In_OUT_TEMPLATE(Call& c, const char* n, CK_ATTRIBUTE_PTR p, const char* cn, CK_ULONG count);
void Out_OUT_TEMPLATE(Call& c, CK_RV rv, const char* n, CK_ATTRIBUTE_PTR p, const char* cn, CK_ULONG count);
void In_OUT_BYTES(Call& c, const char* n, CK_BYTE_PTR p, const char* ln, CK_ULONG_PTR len);
void Out_OUT_BYTES(Call& c, CK_RV rv, const char* n, CK_BYTE_PTR p, const char* ln, CK_ULONG_PTR len);
void In_OUT_RANDOM(Call& c, const char* n, CK_BYTE_PTR p, const char* ln, CK_ULONG len);
void Out_OUT_RANDOM(Call& c, CK_RV rv, const char* n, CK_BYTE_PTR p, const char* ln, CK_ULONG len);
inline void In_OUT_ULONG(Call&, const char*, CK_ULONG_PTR) {}
void Out_OUT_ULONG(Call& c, CK_RV rv, const char* n, CK_ULONG_PTR v);
inline void In_OUT_HANDLE(Call&, const char*, CK_ULONG_PTR) {}
void Out_OUT_HANDLE(Call& c, CK_RV rv, const char* n, CK_ULONG_PTR v);
inline void In_OUT_SLOT(Call&, const char*, CK_SLOT_ID_PTR) {}
void Out_OUT_SLOT(Call& c, CK_RV rv, const char* n, CK_SLOT_ID_PTR v);
template <typename T> void In_OUT_INFO(Call&, const char*, T*) {}
void Out_OUT_INFO(Call& c, CK_RV rv, const char* n, CK_INFO_PTR v);
void Out_OUT_INFO(Call& c, CK_RV rv, const char* n, CK_SLOT_INFO_PTR v);
void Out_OUT_INFO(Call& c, CK_RV rv, const char* n, CK_TOKEN_INFO_PTR v);
void Out_OUT_INFO(Call& c, CK_RV rv, const char* n, CK_SESSION_INFO_PTR v);
void Out_OUT_INFO(Call& c, CK_RV rv, const char* n, CK_MECHANISM_INFO_PTR v);
inline void In_OUT_FUNCTION_LIST(Call&, const char*, CK_FUNCTION_LIST_PTR_PTR) {}
void Out_OUT_FUNCTION_LIST(Call& c, CK_RV rv, const char* n, CK_FUNCTION_LIST_PTR_PTR v);
inline void In_OUT_INTERFACE(Call&, const char*, CK_INTERFACE_PTR_PTR) {}
void Out_OUT_INTERFACE(Call& c, CK_RV rv, const char* n, CK_INTERFACE_PTR_PTR v);
void In_OUT_SLOTS(Call& c, const char* n, CK_SLOT_ID_PTR p, const char* cn, CK_ULONG_PTR count);
void Out_OUT_SLOTS(Call& c, CK_RV rv, const char* n, CK_SLOT_ID_PTR p, const char* cn, CK_ULONG_PTR count);
void In_OUT_MECHANISMS(Call& c, const char* n, CK_MECHANISM_TYPE_PTR p, const char* cn, CK_ULONG_PTR count);
void Out_OUT_MECHANISMS(Call& c, CK_RV rv, const char* n, CK_MECHANISM_TYPE_PTR p, const char* cn, CK_ULONG_PTR count);
void In_OUT_INTERFACES(Call& c, const char* n, CK_INTERFACE_PTR p, const char* cn, CK_ULONG_PTR count);
void Out_OUT_INTERFACES(Call& c, CK_RV rv, const char* n, CK_INTERFACE_PTR p, const char* cn, CK_ULONG_PTR count);
void In_OUT_HANDLES(Call& c, const char* n, CK_OBJECT_HANDLE_PTR p, const char* mn, CK_ULONG max, const char* cn, CK_ULONG_PTR count);
void Out_OUT_HANDLES(Call& c, CK_RV rv, const char* n, CK_OBJECT_HANDLE_PTR p, const char* mn, CK_ULONG max, const char* cn, CK_ULONG_PTR count);
// clang-format on

}  // namespace signum::pkcs11::trace_v1

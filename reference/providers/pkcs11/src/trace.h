// SIGNUM_PKCS11_TRACE=FILE: every C_* call with its arguments and result, appended to FILE in the
// format of p11-kit's log-calls (which OpenSC's pkcs11-spy resembles), plus a timestamp, pid and
// tid on the first line and the error message behind a failure:
//
//   C_Sign [2026-11-27T10:00:00.123456Z pid=4242 tid=4243]
//     IN: hSession = 0x5d2a3f10
//     IN: pData = (51) 3031300d060960864801650304020105000420...
//     IN: pSignature = 0x7ffd5c1e8a40
//     IN: pulSignatureLen = 256
//     OUT: pSignature = (256) 8a3b...
//     OUT: pulSignatureLen = 256
//   C_Sign = CKR_OK [12.345 ms]
//
// PINs are never written, only their length ("<4 bytes>"). Each call is one write(2) on an
// O_APPEND descriptor, so concurrent threads and forked children never interleave records and no
// lock is held that a fork could leave locked.
#pragma once

#include <chrono>
#include <string>
#include <string_view>

#include "signum/core/pkcs11.h"

namespace signum::pkcs11::trace {

// (Re)reads SIGNUM_PKCS11_TRACE. Called on the first traced call and by every C_Initialize, so a
// process can switch tracing on between initialisations.
void Configure();
// True when a trace file is open (configuring it on first use).
bool Enabled();

// A remark for the current call's record that is not an error (e.g. C_FindObjectsInit succeeded
// with no objects because the agent is unreachable). Thread-local; the shim clears it per call.
void Note(std::string_view message);
std::string TakeNote();

// One call's record, built while the call runs and written at the end.
class Record {
 public:
  explicit Record(const char* function);
  void In(const char* name, std::string_view value);
  void Out(const char* name, std::string_view value);
  void Error(std::string_view message);
  void Remark(std::string_view message);
  void Emit(CK_RV rv);

 private:
  const char* function_;
  std::chrono::steady_clock::time_point start_;
  std::string text_;
};

// --- Value formatting (shared with tests) ------------------------------------------------------
std::string Hex(const void* data, size_t size, size_t max_bytes = 64);
std::string Pointer(const void* p);
std::string AttributeValue(const CK_ATTRIBUTE& attribute);

// --- One In_/Out_ pair per argument KIND of functions.h ------------------------------------------
// clang-format off
void In_HANDLE(Record& r, const char* n, CK_ULONG v);
inline void Out_HANDLE(Record&, CK_RV, const char*, CK_ULONG) {}
void In_SLOT(Record& r, const char* n, CK_SLOT_ID v);
inline void Out_SLOT(Record&, CK_RV, const char*, CK_SLOT_ID) {}
void In_FLAGS(Record& r, const char* n, CK_FLAGS v);
inline void Out_FLAGS(Record&, CK_RV, const char*, CK_FLAGS) {}
void In_USER(Record& r, const char* n, CK_USER_TYPE v);
inline void Out_USER(Record&, CK_RV, const char*, CK_USER_TYPE) {}
void In_BOOL(Record& r, const char* n, CK_BBOOL v);
inline void Out_BOOL(Record&, CK_RV, const char*, CK_BBOOL) {}
void In_MECHANISM_TYPE(Record& r, const char* n, CK_MECHANISM_TYPE v);
inline void Out_MECHANISM_TYPE(Record&, CK_RV, const char*, CK_MECHANISM_TYPE) {}
void In_PTR(Record& r, const char* n, const void* v);
inline void Out_PTR(Record&, CK_RV, const char*, const void*) {}
void In_PTR(Record& r, const char* n, CK_NOTIFY v);
inline void Out_PTR(Record&, CK_RV, const char*, CK_NOTIFY) {}
void In_INIT_ARGS(Record& r, const char* n, CK_VOID_PTR v);
inline void Out_INIT_ARGS(Record&, CK_RV, const char*, CK_VOID_PTR) {}
void In_MECHANISM(Record& r, const char* n, CK_MECHANISM_PTR v);
inline void Out_MECHANISM(Record&, CK_RV, const char*, CK_MECHANISM_PTR) {}
void In_VERSION(Record& r, const char* n, CK_VERSION_PTR v);
inline void Out_VERSION(Record&, CK_RV, const char*, CK_VERSION_PTR) {}
void In_INTERFACE_NAME(Record& r, const char* n, CK_UTF8CHAR_PTR v);
inline void Out_INTERFACE_NAME(Record&, CK_RV, const char*, CK_UTF8CHAR_PTR) {}
void In_LABEL(Record& r, const char* n, CK_UTF8CHAR_PTR v);
inline void Out_LABEL(Record&, CK_RV, const char*, CK_UTF8CHAR_PTR) {}
void In_BYTES(Record& r, const char* n, const void* p, const char* ln, CK_ULONG len);
inline void Out_BYTES(Record&, CK_RV, const char*, const void*, const char*, CK_ULONG) {}
void In_SECRET(Record& r, const char* n, CK_UTF8CHAR_PTR p, const char* ln, CK_ULONG len);
inline void Out_SECRET(Record&, CK_RV, const char*, CK_UTF8CHAR_PTR, const char*, CK_ULONG) {}
void In_TEMPLATE(Record& r, const char* n, CK_ATTRIBUTE_PTR p, const char* cn, CK_ULONG count);
inline void Out_TEMPLATE(Record&, CK_RV, const char*, CK_ATTRIBUTE_PTR, const char*, CK_ULONG) {}
void In_OUT_TEMPLATE(Record& r, const char* n, CK_ATTRIBUTE_PTR p, const char* cn, CK_ULONG count);
void Out_OUT_TEMPLATE(Record& r, CK_RV rv, const char* n, CK_ATTRIBUTE_PTR p, const char* cn, CK_ULONG count);
void In_OUT_BYTES(Record& r, const char* n, CK_BYTE_PTR p, const char* ln, CK_ULONG_PTR len);
void Out_OUT_BYTES(Record& r, CK_RV rv, const char* n, CK_BYTE_PTR p, const char* ln, CK_ULONG_PTR len);
void In_OUT_RANDOM(Record& r, const char* n, CK_BYTE_PTR p, const char* ln, CK_ULONG len);
void Out_OUT_RANDOM(Record& r, CK_RV rv, const char* n, CK_BYTE_PTR p, const char* ln, CK_ULONG len);
inline void In_OUT_ULONG(Record&, const char*, CK_ULONG_PTR) {}
void Out_OUT_ULONG(Record& r, CK_RV rv, const char* n, CK_ULONG_PTR v);
inline void In_OUT_HANDLE(Record&, const char*, CK_ULONG_PTR) {}
void Out_OUT_HANDLE(Record& r, CK_RV rv, const char* n, CK_ULONG_PTR v);
inline void In_OUT_SLOT(Record&, const char*, CK_SLOT_ID_PTR) {}
void Out_OUT_SLOT(Record& r, CK_RV rv, const char* n, CK_SLOT_ID_PTR v);
template <typename T> void In_OUT_INFO(Record&, const char*, T*) {}
void Out_OUT_INFO(Record& r, CK_RV rv, const char* n, CK_INFO_PTR v);
void Out_OUT_INFO(Record& r, CK_RV rv, const char* n, CK_SLOT_INFO_PTR v);
void Out_OUT_INFO(Record& r, CK_RV rv, const char* n, CK_TOKEN_INFO_PTR v);
void Out_OUT_INFO(Record& r, CK_RV rv, const char* n, CK_SESSION_INFO_PTR v);
void Out_OUT_INFO(Record& r, CK_RV rv, const char* n, CK_MECHANISM_INFO_PTR v);
inline void In_OUT_FUNCTION_LIST(Record&, const char*, CK_FUNCTION_LIST_PTR_PTR) {}
void Out_OUT_FUNCTION_LIST(Record& r, CK_RV rv, const char* n, CK_FUNCTION_LIST_PTR_PTR v);
inline void In_OUT_INTERFACE(Record&, const char*, CK_INTERFACE_PTR_PTR) {}
void Out_OUT_INTERFACE(Record& r, CK_RV rv, const char* n, CK_INTERFACE_PTR_PTR v);
void In_OUT_SLOTS(Record& r, const char* n, CK_SLOT_ID_PTR p, const char* cn, CK_ULONG_PTR count);
void Out_OUT_SLOTS(Record& r, CK_RV rv, const char* n, CK_SLOT_ID_PTR p, const char* cn, CK_ULONG_PTR count);
void In_OUT_MECHANISMS(Record& r, const char* n, CK_MECHANISM_TYPE_PTR p, const char* cn, CK_ULONG_PTR count);
void Out_OUT_MECHANISMS(Record& r, CK_RV rv, const char* n, CK_MECHANISM_TYPE_PTR p, const char* cn, CK_ULONG_PTR count);
void In_OUT_INTERFACES(Record& r, const char* n, CK_INTERFACE_PTR p, const char* cn, CK_ULONG_PTR count);
void Out_OUT_INTERFACES(Record& r, CK_RV rv, const char* n, CK_INTERFACE_PTR p, const char* cn, CK_ULONG_PTR count);
void In_OUT_HANDLES(Record& r, const char* n, CK_OBJECT_HANDLE_PTR p, const char* mn, CK_ULONG max, const char* cn, CK_ULONG_PTR count);
void Out_OUT_HANDLES(Record& r, CK_RV rv, const char* n, CK_OBJECT_HANDLE_PTR p, const char* mn, CK_ULONG max, const char* cn, CK_ULONG_PTR count);
// clang-format on

}  // namespace signum::pkcs11::trace

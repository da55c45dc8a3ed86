// Status <-> the codes both Windows providers return (the KSP as SECURITY_STATUS, the CSP through
// SetLastError), in one place. Errors born in a provider carry the exact code Windows documents
// for the case (NteError, Win32Error) with the reason; errors from below (the agent, the server)
// carry a portable ErrorCode only and are mapped by one table, so a failure reads the same in both:
//   kNotFound -> NTE_BAD_KEYSET        kInvalidArgument -> NTE_INVALID_PARAMETER
//   kPermissionDenied -> NTE_PERM      kUnauthenticated -> NTE_PERM
//   kUnavailable / kDeadlineExceeded / kResourceExhausted -> NTE_DEVICE_NOT_READY
//   kUnimplemented -> NTE_NOT_SUPPORTED   kFailedPrecondition -> NTE_BAD_KEY_STATE
//   anything else -> NTE_FAIL
// Every entry point converts once, in ReturnAtAbiBoundary, which traces each failure with its
// reason (Trace); Windows callers only see the code.
#pragma once

#include <windows.h>
// SECURITY_STATUS comes from ncrypt.h (after windows.h); nothing here calls into ncrypt.dll.
#include <ncrypt.h>

#include <string>

#include "signum/core/status.h"

namespace signum::cng {

// A Status that makes the provider return code (an NTE_* value), with the reason for the trace.
// Its ErrorCode is the nearest portable meaning (NTE_BAD_FLAGS -> kInvalidArgument, ...).
Status NteError(SECURITY_STATUS code, std::string reason);
// The same for the plain Win32 errors CryptoAPI reports (ERROR_MORE_DATA, ERROR_NO_MORE_ITEMS).
Status Win32Error(DWORD code, std::string reason);

// NTE_BAD_FLAGS naming the bits of flags outside known_flags, else OK: both providers refuse the
// flags Windows does not define for a call.
Status CheckKnownFlags(DWORD flags, DWORD known_flags);
// "0x0000abcd", for reasons that name flags and codes.
std::string Hex(unsigned long value);

// The code for a Status: the one it carries (NteError, Win32Error), else the table above.
SECURITY_STATUS ToSecurityStatus(const Status& status);

// "NTE_BAD_KEYSET (0x80090016)"; unknown codes as hex.
std::string SecurityStatusName(SECURITY_STATUS status);
// The bare name of any code the providers return, NTE_* or the Win32 errors the CSP sets
// ("NTE_BAD_KEYSET", "ERROR_MORE_DATA"); unknown codes as hex (the structured trace's "name").
std::string CodeName(SECURITY_STATUS code);
// OutputDebugStringA("signum<component>: <message>") when SIGNUM_CNG_TRACE is set, plus a line in
// the file it names when it is a path. Never includes secrets.
void Trace(const char* component, const std::string& message);

// What an exception that reached an entry point becomes: NTE_NO_MEMORY for bad_alloc, else
// NTE_FAIL with what() as the reason. Call only inside a catch block.
Status StatusOfCurrentException() noexcept;
// status's code, after tracing "<entry>: <code name>: <reason>" when it is a failure.
SECURITY_STATUS ReportAtAbiBoundary(const char* component, const char* entry,
                                    const Status& status) noexcept;

// The one exit of every entry point: runs body (returning Status), converts its result once and
// traces a failure with its reason. No C++ exception crosses the C ABI into the caller.
template <typename Body>
SECURITY_STATUS ReturnAtAbiBoundary(const char* component, const char* entry,
                                    Body&& body) noexcept {
  Status status;
  try {
    status = body();
  } catch (...) {
    status = StatusOfCurrentException();
  }
  return ReportAtAbiBoundary(component, entry, status);
}

}  // namespace signum::cng

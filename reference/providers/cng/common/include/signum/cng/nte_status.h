// One mapping from Signum's Status to the NTE_* codes both Windows providers return (the KSP as
// SECURITY_STATUS, the CSP through SetLastError), so a failure reads the same in both:
//   kNotFound -> NTE_BAD_KEYSET        kInvalidArgument -> NTE_INVALID_PARAMETER
//   kPermissionDenied -> NTE_PERM      kUnauthenticated -> NTE_PERM
//   kUnavailable / kDeadlineExceeded / kResourceExhausted -> NTE_DEVICE_NOT_READY
//   kUnimplemented -> NTE_NOT_SUPPORTED   kFailedPrecondition -> NTE_BAD_KEY_STATE
//   anything else -> NTE_FAIL
// The message is kept for traces (OutputDebugString); Windows callers only see the code.
#pragma once

#include <windows.h>
// SECURITY_STATUS comes from ncrypt.h (after windows.h); nothing here calls into ncrypt.dll.
#include <ncrypt.h>

#include <string>

#include "signum/core/status.h"

namespace signum::cng {

SECURITY_STATUS ToSecurityStatus(const Status& status);
// "NTE_BAD_KEYSET (0x80090016)"; unknown codes as hex.
std::string SecurityStatusName(SECURITY_STATUS status);
// OutputDebugStringA("signum<component>: <message>") when SIGNUM_CNG_TRACE is set, plus a line in
// the file it names when it is a path. Never includes secrets.
void Trace(const char* component, const std::string& message);

}  // namespace signum::cng

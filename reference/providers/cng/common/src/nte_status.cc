#include "signum/cng/nte_status.h"

#include <cstdio>
#include <cstdlib>
#include <exception>
#include <fstream>
#include <new>
#include <utility>

namespace signum::cng {
namespace {

struct NamedCode {
  DWORD code;
  const char* name;
  ErrorCode meaning;  // NteError's ErrorCode for this code
};

// The codes the providers return (winerror.h values, spelled out: mingw lacks a few names).
constexpr NamedCode kNteCodes[] = {
    {0x00000000L, "ERROR_SUCCESS", ErrorCode::kOk},
    {0x80090001L, "NTE_BAD_UID", ErrorCode::kInvalidArgument},
    {0x80090002L, "NTE_BAD_HASH", ErrorCode::kInvalidArgument},
    {0x80090003L, "NTE_BAD_KEY", ErrorCode::kInvalidArgument},
    {0x80090004L, "NTE_BAD_LEN", ErrorCode::kInvalidArgument},
    {0x80090005L, "NTE_BAD_DATA", ErrorCode::kInvalidArgument},
    {0x80090006L, "NTE_BAD_SIGNATURE", ErrorCode::kInvalidArgument},
    {0x80090008L, "NTE_BAD_ALGID", ErrorCode::kUnimplemented},
    {0x80090009L, "NTE_BAD_FLAGS", ErrorCode::kInvalidArgument},
    {0x8009000AL, "NTE_BAD_TYPE", ErrorCode::kInvalidArgument},
    {0x8009000BL, "NTE_BAD_KEY_STATE", ErrorCode::kFailedPrecondition},
    {0x8009000CL, "NTE_BAD_HASH_STATE", ErrorCode::kFailedPrecondition},
    {0x8009000DL, "NTE_NO_KEY", ErrorCode::kNotFound},
    {0x8009000EL, "NTE_NO_MEMORY", ErrorCode::kResourceExhausted},
    {0x8009000FL, "NTE_EXISTS", ErrorCode::kAlreadyExists},
    {0x80090010L, "NTE_PERM", ErrorCode::kPermissionDenied},
    {0x80090016L, "NTE_BAD_KEYSET", ErrorCode::kNotFound},
    {0x8009001BL, "NTE_PROV_TYPE_NO_MATCH", ErrorCode::kInvalidArgument},
    {0x8009001DL, "NTE_PROVIDER_DLL_FAIL", ErrorCode::kInternal},
    {0x8009001EL, "NTE_PROV_DLL_NOT_FOUND", ErrorCode::kNotFound},
    {0x80090020L, "NTE_FAIL", ErrorCode::kInternal},
    {0x80090026L, "NTE_INVALID_HANDLE", ErrorCode::kInvalidArgument},
    {0x80090027L, "NTE_INVALID_PARAMETER", ErrorCode::kInvalidArgument},
    {0x80090028L, "NTE_BUFFER_TOO_SMALL", ErrorCode::kInvalidArgument},
    {0x80090029L, "NTE_NOT_SUPPORTED", ErrorCode::kUnimplemented},
    {0x8009002AL, "NTE_NO_MORE_ITEMS", ErrorCode::kNotFound},
    {0x80090030L, "NTE_DEVICE_NOT_READY", ErrorCode::kUnavailable},
};

// The Win32 errors the CSP sets; kept out of SecurityStatusName, which names NTE_* only.
constexpr NamedCode kWin32Codes[] = {
    {ERROR_INVALID_PARAMETER, "ERROR_INVALID_PARAMETER", ErrorCode::kInvalidArgument},
    {ERROR_MORE_DATA, "ERROR_MORE_DATA", ErrorCode::kInvalidArgument},
    {ERROR_NO_MORE_ITEMS, "ERROR_NO_MORE_ITEMS", ErrorCode::kNotFound},
};

template <size_t N>
const NamedCode* Find(const NamedCode (&table)[N], long code) {
  // NTE_* values do not fit a 32-bit long as literals; compare the bits.
  for (const NamedCode& entry : table) {
    if (entry.code == static_cast<DWORD>(code)) return &entry;
  }
  return nullptr;
}

Status WithCode(const NamedCode* known, long code, std::string reason) {
  const ErrorCode meaning = known != nullptr ? known->meaning : ErrorCode::kInternal;
  return Status(meaning, std::move(reason)).WithWindowsCode(code);
}

}  // namespace

Status NteError(SECURITY_STATUS code, std::string reason) {
  return WithCode(Find(kNteCodes, code), code, std::move(reason));
}

Status Win32Error(DWORD code, std::string reason) {
  const auto as_long = static_cast<long>(code);
  return WithCode(Find(kWin32Codes, as_long), as_long, std::move(reason));
}

Status CheckKnownFlags(DWORD flags, DWORD known_flags) {
  const DWORD unknown = flags & ~known_flags;
  if (unknown == 0) return Status::Ok();
  return NteError(NTE_BAD_FLAGS, "dwFlags " + Hex(flags) + " has bits this call does not define (" +
                                     Hex(unknown) + ")");
}

std::string Hex(unsigned long value) {
  char hex[24];
  std::snprintf(hex, sizeof hex, "0x%08lx", value);
  return hex;
}

SECURITY_STATUS ToSecurityStatus(const Status& status) {
  if (status.ok()) return ERROR_SUCCESS;
  if (status.windows_code().has_value()) {
    return static_cast<SECURITY_STATUS>(*status.windows_code());
  }
  switch (status.code()) {
    case ErrorCode::kNotFound:
      return static_cast<SECURITY_STATUS>(0x80090016L);  // NTE_BAD_KEYSET
    case ErrorCode::kInvalidArgument:
      return static_cast<SECURITY_STATUS>(0x80090027L);  // NTE_INVALID_PARAMETER
    case ErrorCode::kPermissionDenied:
    case ErrorCode::kUnauthenticated:
      return static_cast<SECURITY_STATUS>(0x80090010L);  // NTE_PERM
    case ErrorCode::kUnavailable:
    case ErrorCode::kDeadlineExceeded:
    case ErrorCode::kResourceExhausted:
      return static_cast<SECURITY_STATUS>(0x80090030L);  // NTE_DEVICE_NOT_READY
    case ErrorCode::kUnimplemented:
      return static_cast<SECURITY_STATUS>(0x80090029L);  // NTE_NOT_SUPPORTED
    case ErrorCode::kFailedPrecondition:
      return static_cast<SECURITY_STATUS>(0x8009000BL);  // NTE_BAD_KEY_STATE
    default:
      return static_cast<SECURITY_STATUS>(0x80090020L);  // NTE_FAIL
  }
}

std::string SecurityStatusName(SECURITY_STATUS status) {
  const NamedCode* known = Find(kNteCodes, status);
  const std::string hex = Hex(static_cast<unsigned long>(status));
  return known != nullptr ? std::string(known->name) + " (" + hex + ")" : hex;
}

std::string CodeName(SECURITY_STATUS code) {
  const NamedCode* known = Find(kNteCodes, code);
  if (known == nullptr) known = Find(kWin32Codes, code);
  return known != nullptr ? std::string(known->name) : Hex(static_cast<unsigned long>(code));
}

void Trace(const char* component, const std::string& message) {
  const char* target = std::getenv("SIGNUM_CNG_TRACE");
  if (target == nullptr || *target == '\0') return;
  const std::string line = std::string(component) + ": " + message + "\n";
  OutputDebugStringA(line.c_str());
  // A value other than "1" is a file to append to (the suites collect it next to their output).
  if (std::string(target) != "1") {
    std::ofstream out(target, std::ios::app);
    out << line;
  }
}

Status StatusOfCurrentException() noexcept {
  try {
    throw;
  } catch (const std::bad_alloc&) {
    // Short enough to need no allocation.
    return NteError(NTE_NO_MEMORY, "out of memory");
  } catch (const std::exception& e) {
    return NteError(NTE_FAIL, std::string("unexpected exception: ") + e.what());
  } catch (...) {
    return NteError(NTE_FAIL, "unexpected exception");
  }
}

SECURITY_STATUS ReportAtAbiBoundary(const char* component, const char* entry,
                                    const Status& status) noexcept {
  const SECURITY_STATUS code = ToSecurityStatus(status);
  if (status.ok()) return code;
  try {
    const NamedCode* win32 = Find(kWin32Codes, code);
    const std::string name = win32 != nullptr ? std::string(win32->name) : SecurityStatusName(code);
    Trace(component, std::string(entry) + ": " + name + ": " + status.ToString());
  } catch (...) {
    // Out of memory while tracing: the code still reaches the caller.
  }
  return code;
}

}  // namespace signum::cng

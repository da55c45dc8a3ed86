#include "signum/cng/nte_status.h"

#include <cstdio>
#include <cstdlib>
#include <fstream>

namespace signum::cng {
namespace {

struct NteName {
  SECURITY_STATUS code;
  const char* name;
};

// The codes the providers return (winerror.h values, spelled out: mingw lacks a few names).
constexpr NteName kNames[] = {
    {static_cast<SECURITY_STATUS>(0x00000000L), "ERROR_SUCCESS"},
    {static_cast<SECURITY_STATUS>(0x80090001L), "NTE_BAD_UID"},
    {static_cast<SECURITY_STATUS>(0x80090002L), "NTE_BAD_HASH"},
    {static_cast<SECURITY_STATUS>(0x80090003L), "NTE_BAD_KEY"},
    {static_cast<SECURITY_STATUS>(0x80090004L), "NTE_BAD_LEN"},
    {static_cast<SECURITY_STATUS>(0x80090005L), "NTE_BAD_DATA"},
    {static_cast<SECURITY_STATUS>(0x80090006L), "NTE_BAD_SIGNATURE"},
    {static_cast<SECURITY_STATUS>(0x80090008L), "NTE_BAD_ALGID"},
    {static_cast<SECURITY_STATUS>(0x80090009L), "NTE_BAD_FLAGS"},
    {static_cast<SECURITY_STATUS>(0x8009000AL), "NTE_BAD_TYPE"},
    {static_cast<SECURITY_STATUS>(0x8009000BL), "NTE_BAD_KEY_STATE"},
    {static_cast<SECURITY_STATUS>(0x8009000DL), "NTE_NO_KEY"},
    {static_cast<SECURITY_STATUS>(0x8009000EL), "NTE_NO_MEMORY"},
    {static_cast<SECURITY_STATUS>(0x8009000FL), "NTE_EXISTS"},
    {static_cast<SECURITY_STATUS>(0x80090010L), "NTE_PERM"},
    {static_cast<SECURITY_STATUS>(0x80090016L), "NTE_BAD_KEYSET"},
    {static_cast<SECURITY_STATUS>(0x8009001DL), "NTE_PROVIDER_DLL_FAIL"},
    {static_cast<SECURITY_STATUS>(0x8009001EL), "NTE_PROV_DLL_NOT_FOUND"},
    {static_cast<SECURITY_STATUS>(0x80090020L), "NTE_FAIL"},
    {static_cast<SECURITY_STATUS>(0x80090026L), "NTE_INVALID_HANDLE"},
    {static_cast<SECURITY_STATUS>(0x80090027L), "NTE_INVALID_PARAMETER"},
    {static_cast<SECURITY_STATUS>(0x80090028L), "NTE_BUFFER_TOO_SMALL"},
    {static_cast<SECURITY_STATUS>(0x80090029L), "NTE_NOT_SUPPORTED"},
    {static_cast<SECURITY_STATUS>(0x8009002AL), "NTE_NO_MORE_ITEMS"},
    {static_cast<SECURITY_STATUS>(0x80090030L), "NTE_DEVICE_NOT_READY"},
};

}  // namespace

SECURITY_STATUS ToSecurityStatus(const Status& status) {
  switch (status.code()) {
    case ErrorCode::kOk:
      return ERROR_SUCCESS;
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
  char hex[16];
  std::snprintf(hex, sizeof hex, "0x%08lx", static_cast<unsigned long>(status));
  for (const NteName& n : kNames) {
    if (n.code == status) return std::string(n.name) + " (" + hex + ")";
  }
  return hex;
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

}  // namespace signum::cng

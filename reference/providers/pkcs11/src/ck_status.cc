#include "ck_status.h"

#include <utility>

#include "signum/core/pkcs11_module.h"

namespace signum::pkcs11 {

Status CkError(CK_RV rv, std::string message) {
  return Status(CkStatus(rv, "").code(), std::move(message), rv);
}

// Errors from the agent and the server (no CK_RV attached). PKCS#11 has no "policy denied" or
// "remote unavailable"; these are the nearest codes every C_* function may return, chosen so a
// tool's message points the user the right way.
CK_RV CkRvForErrorCode(ErrorCode code) {
  switch (code) {
    case ErrorCode::kOk:
      return CKR_OK;
    // The data we sent was rejected (we validate first, so this means server-side rules).
    case ErrorCode::kInvalidArgument:
      return CKR_DATA_INVALID;
    // The certificate is gone from the server since the list was fetched.
    case ErrorCode::kNotFound:
      return CKR_KEY_HANDLE_INVALID;
    // The agent has no valid credential for the server (not logged in, token revoked): the user,
    // as the server knows them, is not logged in. Logging in to this token does not fix it;
    // logging the agent in does.
    case ErrorCode::kUnauthenticated:
      return CKR_USER_NOT_LOGGED_IN;
    // A server policy said no. "The signature request is rejected" is exactly what happened;
    // CKR_KEY_FUNCTION_NOT_PERMITTED would claim the key's own attributes forbid signing.
    case ErrorCode::kPermissionDenied:
      return CKR_FUNCTION_REJECTED;
    // Agent or server unreachable, timed out, overloaded, or in a state that cannot serve:
    // a device problem the user can retry, not a bug in the caller.
    case ErrorCode::kUnavailable:
    case ErrorCode::kDeadlineExceeded:
    case ErrorCode::kFailedPrecondition:
    case ErrorCode::kDataLoss:
    case ErrorCode::kInternal:
      return CKR_DEVICE_ERROR;
    case ErrorCode::kResourceExhausted:
      return CKR_DEVICE_MEMORY;
    case ErrorCode::kUnimplemented:
      return CKR_FUNCTION_NOT_SUPPORTED;
    case ErrorCode::kAlreadyExists:
      return CKR_FUNCTION_FAILED;
  }
  return CKR_GENERAL_ERROR;
}

CK_RV ToCkRv(const Status& status) {
  if (status.ok()) return CKR_OK;
  if (status.ck_rv().has_value()) return static_cast<CK_RV>(*status.ck_rv());
  return CkRvForErrorCode(status.code());
}

}  // namespace signum::pkcs11

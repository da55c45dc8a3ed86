#include "signum/ctk/ctk_iface.h"

#include <string>

namespace signum::ctk {

std::string TkErrorCodeName(TkErrorCode code) {
  switch (code) {
    case TkErrorCode::kNotImplemented:
      return "TKErrorCodeNotImplemented";
    case TkErrorCode::kCommunicationError:
      return "TKErrorCodeCommunicationError";
    case TkErrorCode::kCorruptedData:
      return "TKErrorCodeCorruptedData";
    case TkErrorCode::kCanceledByUser:
      return "TKErrorCodeCanceledByUser";
    case TkErrorCode::kAuthenticationFailed:
      return "TKErrorCodeAuthenticationFailed";
    case TkErrorCode::kObjectNotFound:
      return "TKErrorCodeObjectNotFound";
    case TkErrorCode::kTokenNotFound:
      return "TKErrorCodeTokenNotFound";
    case TkErrorCode::kBadParameter:
      return "TKErrorCodeBadParameter";
    case TkErrorCode::kAuthenticationNeeded:
      return "TKErrorCodeAuthenticationNeeded";
  }
  return "TKErrorCode(" + std::to_string(static_cast<long>(code)) + ")";
}

std::string_view KeychainKeyTypeConstantName(KeychainKeyType type) {
  return type == KeychainKeyType::kRsa ? "kSecAttrKeyTypeRSA" : "kSecAttrKeyTypeECSECPrimeRandom";
}

}  // namespace signum::ctk

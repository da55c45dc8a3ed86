// What signum-replay --cross-module compares when the trace was recorded against another module or
// another token (a customer's vendor HSM, SoftHSM2 in the matrix's direct column, yesterday's
// deployment): the keys are other keys, the objects have other CKA_IDs, the module describes itself
// differently and offers other mechanisms. What must still hold is what the CALLER depended on:
// the objects it found by class and label, the attributes that decide how it signs, the signatures.
//
// The rules are data (one row per attribute), so a reader sees in one place why a difference was
// only noted.
#pragma once

#include <optional>

#include "signum/core/pkcs11.h"

namespace signum::replay {

enum class AcrossModules {
  // Must be equal byte for byte: the caller branches on it (class, key type, what the key may do).
  kSameValue,
  // Key material or derived from it (other keys): present with the same length (same key size).
  kSameSize,
  // Derived from a certificate or a key (subject, serial, the certificate itself): present.
  kPresent,
  // CKA_ID: compared through the mapping recorded ID -> live ID (objects matched by label).
  kMappedId,
};

struct AttributeRule {
  CK_ATTRIBUTE_TYPE type;
  AcrossModules rule;
};

// Attributes not listed are the module's own business (provenance such as CKA_LOCAL, dates,
// CKA_MODIFIABLE, allowed-mechanism lists, vendor attributes): a difference is a note, not a
// divergence.
inline constexpr AttributeRule kAttributeRules[] = {
    {CKA_CLASS, AcrossModules::kSameValue},
    {CKA_KEY_TYPE, AcrossModules::kSameValue},
    {CKA_CERTIFICATE_TYPE, AcrossModules::kSameValue},
    {CKA_LABEL, AcrossModules::kSameValue},
    {CKA_TOKEN, AcrossModules::kSameValue},
    {CKA_SIGN, AcrossModules::kSameValue},
    {CKA_ALWAYS_AUTHENTICATE, AcrossModules::kSameValue},
    {CKA_EC_PARAMS, AcrossModules::kSameValue},
    {CKA_MODULUS_BITS, AcrossModules::kSameValue},
    {CKA_PUBLIC_EXPONENT, AcrossModules::kSameValue},
    {CKA_MODULUS, AcrossModules::kSameSize},
    {CKA_EC_POINT, AcrossModules::kSameSize},
    {CKA_VALUE, AcrossModules::kPresent},
    {CKA_SUBJECT, AcrossModules::kPresent},
    {CKA_ISSUER, AcrossModules::kPresent},
    {CKA_SERIAL_NUMBER, AcrossModules::kPresent},
    {CKA_ID, AcrossModules::kMappedId},
};

inline std::optional<AcrossModules> RuleFor(CK_ATTRIBUTE_TYPE type) {
  for (const AttributeRule& r : kAttributeRules)
    if (r.type == type) return r.rule;
  return std::nullopt;
}

// CK_TOKEN_INFO flags that change what a caller does next (log in, prompt, give up); the others
// (CKF_RNG, CKF_CLOCK_ON_TOKEN, CKF_WRITE_PROTECTED, PIN counters...) describe the module.
inline constexpr CK_FLAGS kTokenFlagsCallersFollow =
    CKF_LOGIN_REQUIRED | CKF_PROTECTED_AUTHENTICATION_PATH | CKF_TOKEN_INITIALIZED |
    CKF_USER_PIN_INITIALIZED | CKF_USER_PIN_LOCKED | CKF_USER_PIN_TO_BE_CHANGED;

}  // namespace signum::replay

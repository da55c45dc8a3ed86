// The mechanisms the token offers, built from signum/core/algorithms.h (which owns every
// mechanism number):
//   - signing: raw CKM_RSA_PKCS / CKM_RSA_PKCS_PSS / CKM_ECDSA over a caller's digest, and the
//     hash-and-sign CKM_SHA*_RSA_PKCS, CKM_SHA*_RSA_PKCS_PSS and CKM_ECDSA_SHA* for every hash,
//     which this module hashes locally;
//   - digesting: CKM_SHA_1, CKM_SHA224, CKM_SHA256, CKM_SHA384, CKM_SHA512, computed locally.
//     SunPKCS11 (jarsigner -sigalg RSASSA-PSS) only offers PSS when the token lists the digest.
// C_GetMechanismList, C_GetMechanismInfo, CKA_ALLOWED_MECHANISMS, C_SignInit and C_DigestInit all
// read this one table.
#pragma once

#include <optional>
#include <span>
#include <vector>

#include "signum/core/algorithms.h"
#include "signum/core/pkcs11.h"

namespace signum::pkcs11 {

// What a signature mechanism needs from the key, and how the server signs.
struct SignatureMechanism {
  KeyType key_type;
  SignatureScheme scheme;
};

struct Mechanism {
  CK_MECHANISM_TYPE type;
  // The hash this module computes: all of a digest mechanism's work, the first step of a
  // hash-and-sign mechanism; nullopt for raw signature mechanisms (the caller hashed).
  std::optional<HashAlgorithm> hash;
  // Set for signature mechanisms (C_SignInit / C_VerifyInit); nullopt for digest mechanisms
  // (C_DigestInit, no key).
  std::optional<SignatureMechanism> signature;

  bool is_digest() const { return !signature.has_value(); }
};

// Every mechanism, each once: signing (RSA first, then EC), then digesting.
std::span<const Mechanism> AllMechanisms();
const Mechanism* FindMechanism(CK_MECHANISM_TYPE type);
// C_GetMechanismInfo. Signing: key sizes in bits (RSA 2048..4096, EC 256..521),
// CKF_SIGN | CKF_VERIFY, and the EC capability flags for ECDSA. Digesting: CKF_DIGEST, key sizes
// 0 (no key is involved).
CK_MECHANISM_INFO InfoFor(const Mechanism& mechanism);
// CKA_ALLOWED_MECHANISMS of a key of this type (signature mechanisms only).
std::vector<CK_MECHANISM_TYPE> MechanismsFor(KeyType key_type);

}  // namespace signum::pkcs11

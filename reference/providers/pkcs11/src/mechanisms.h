// The mechanisms the token offers, built from signum/core/algorithms.h (which owns every
// mechanism number):
//   - signing: raw CKM_RSA_PKCS / CKM_RSA_PKCS_PSS / CKM_ECDSA over a caller's digest, and the
//     hash-and-sign CKM_SHA*_RSA_PKCS, CKM_SHA*_RSA_PKCS_PSS and CKM_ECDSA_SHA* for every hash,
//     which this module hashes locally;
//   - digesting: CKM_SHA_1, CKM_SHA224, CKM_SHA256, CKM_SHA384, CKM_SHA512, computed locally.
//     SunPKCS11 (jarsigner -sigalg RSASSA-PSS) only offers PSS when the token lists the digest.
// C_GetMechanismList, C_GetMechanismInfo, CKA_ALLOWED_MECHANISMS, C_SignInit and C_DigestInit all
// read this one table. Which signature mechanisms a key offers follows from it and the (scheme,
// hash) pairs the server says the key can sign with (ProviderCertificate::Signable).
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

// Whether a key that can sign exactly `signable` can sign with this mechanism: a hash-and-sign
// mechanism needs its own (scheme, hash) pair; a raw one its scheme with at least one hash (the
// hash comes with the input, and is checked then). Digest mechanisms involve no key: false.
bool CanSignWith(const Mechanism& mechanism, const SignatureCapabilities& signable);
// The signature mechanisms of CanSignWith, in table order: a private key's CKA_ALLOWED_MECHANISMS
// (and, for the union over every key, what C_GetMechanismList offers besides the digests).
std::vector<CK_MECHANISM_TYPE> SigningMechanismsFor(const SignatureCapabilities& signable);

}  // namespace signum::pkcs11

// The signing mechanisms the token offers, built from signum/core/algorithms.h (which owns every
// mechanism number): raw CKM_RSA_PKCS / CKM_RSA_PKCS_PSS / CKM_ECDSA over a caller's digest, and
// the hash-and-sign CKM_SHA*_RSA_PKCS, CKM_SHA*_RSA_PKCS_PSS and CKM_ECDSA_SHA* for every hash,
// which this module hashes locally. C_GetMechanismList, C_GetMechanismInfo, CKA_ALLOWED_MECHANISMS
// and C_SignInit all read this one table.
#pragma once

#include <optional>
#include <span>
#include <vector>

#include "signum/core/algorithms.h"
#include "signum/core/pkcs11.h"

namespace signum::pkcs11 {

struct Mechanism {
  CK_MECHANISM_TYPE type;
  KeyType key_type;
  SignatureScheme scheme;
  // Set for hash-and-sign mechanisms (the module hashes); nullopt for raw ones (the caller did).
  std::optional<HashAlgorithm> hash;
};

// Every mechanism, each once, RSA first.
std::span<const Mechanism> AllMechanisms();
const Mechanism* FindMechanism(CK_MECHANISM_TYPE type);
// C_GetMechanismInfo: key sizes in bits (RSA 2048..4096, EC 256..521), CKF_SIGN | CKF_VERIFY, and
// the EC capability flags for ECDSA.
CK_MECHANISM_INFO InfoFor(const Mechanism& mechanism);
// CKA_ALLOWED_MECHANISMS of a key of this type.
std::vector<CK_MECHANISM_TYPE> MechanismsFor(KeyType key_type);

}  // namespace signum::pkcs11

// One active C_DigestInit operation: CKM_SHA_1 / CKM_SHA224 / CKM_SHA256 / CKM_SHA384 /
// CKM_SHA512, computed here with signum::Hasher (OpenSSL). No key and no agent are involved, so
// digesting works in any session, logged in or not.
#pragma once

#include <memory>

#include "mechanisms.h"
#include "signum/core/crypto.h"
#include "signum/core/pkcs11.h"

namespace signum::pkcs11 {

class DigestOperation {
 public:
  // CKR_MECHANISM_INVALID for anything but a digest mechanism of the table (signature mechanisms
  // included); CKR_MECHANISM_PARAM_INVALID when a parameter is given (digests take none).
  static Result<std::unique_ptr<DigestOperation>> Create(const CK_MECHANISM& mechanism);

  const Mechanism& mechanism() const { return *mechanism_; }
  // Known from the mechanism, so length queries never touch the hash state.
  size_t digest_size() const;

  // C_DigestUpdate.
  void Update(ByteView part);
  bool updated() const { return updated_; }

  // C_Digest: the digest of `data` alone (single-part; the operation must not have been updated).
  Bytes DigestOf(ByteView data) const;
  // C_DigestFinal: the digest of everything Update() received; the operation is used up.
  Result<Bytes> Final();

 private:
  explicit DigestOperation(const Mechanism& mechanism);

  const Mechanism* mechanism_;
  Hasher hasher_;
  bool updated_ = false;
  bool finished_ = false;
};

}  // namespace signum::pkcs11

#include "digest_operation.h"

#include "ck_status.h"
#include "signum/core/pkcs11_module.h"

namespace signum::pkcs11 {

DigestOperation::DigestOperation(const Mechanism& mechanism)
    : mechanism_(&mechanism), hasher_(*mechanism.hash) {}

Result<std::unique_ptr<DigestOperation>> DigestOperation::Create(const CK_MECHANISM& mechanism) {
  const Mechanism* m = FindMechanism(mechanism.mechanism);
  if (m == nullptr || !m->is_digest()) {
    return CkError(CKR_MECHANISM_INVALID,
                   MechanismName(mechanism.mechanism) +
                       (m == nullptr ? " is not offered by this token"
                                     : " is a signature mechanism, not a digest one"));
  }
  if (mechanism.ulParameterLen != 0) {
    return CkError(CKR_MECHANISM_PARAM_INVALID,
                   MechanismName(m->type) + " takes no parameter, got " +
                       std::to_string(mechanism.ulParameterLen) + " bytes");
  }
  return std::unique_ptr<DigestOperation>(new DigestOperation(*m));
}

size_t DigestOperation::digest_size() const { return GetHashInfo(*mechanism_->hash).digest_size; }

void DigestOperation::Update(ByteView part) {
  updated_ = true;
  hasher_.Update(part);
}

Bytes DigestOperation::DigestOf(ByteView data) const { return Digest(*mechanism_->hash, data); }

Result<Bytes> DigestOperation::Final() {
  if (finished_) return CkError(CKR_GENERAL_ERROR, "digest operation already finished");
  finished_ = true;
  return hasher_.Final();
}

}  // namespace signum::pkcs11

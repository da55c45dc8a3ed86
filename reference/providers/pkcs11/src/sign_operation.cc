#include "sign_operation.h"

#include <cstring>

#include "ck_status.h"
#include "signum/core/pkcs11_module.h"

namespace signum::pkcs11 {
namespace {

// No raw mechanism accepts more: the largest DigestInfo is 83 bytes, the largest ECDSA input
// anyone sends is a 64-byte digest. The bound only keeps a misbehaving caller from growing memory.
constexpr size_t kMaxRawInput = 4096;

Status ValidatePssParameters(const CK_MECHANISM& mechanism, const Mechanism& m, const KeySpec& key,
                             HashAlgorithm* hash, size_t* salt) {
  if (mechanism.pParameter == nullptr ||
      mechanism.ulParameterLen != sizeof(CK_RSA_PKCS_PSS_PARAMS)) {
    return CkError(CKR_MECHANISM_PARAM_INVALID,
                   MechanismName(m.type) + " needs CK_RSA_PKCS_PSS_PARAMS (" +
                       std::to_string(sizeof(CK_RSA_PKCS_PSS_PARAMS)) + " bytes), got " +
                       std::to_string(mechanism.ulParameterLen) + " bytes");
  }
  CK_RSA_PKCS_PSS_PARAMS params;
  std::memcpy(&params, mechanism.pParameter, sizeof params);
  std::optional<HashAlgorithm> h = HashForMechanism(params.hashAlg);
  if (!h) {
    return CkError(CKR_MECHANISM_PARAM_INVALID,
                   "PSS hashAlg " + MechanismName(params.hashAlg) + " is not supported");
  }
  if (m.hash.has_value() && *m.hash != *h) {
    return CkError(CKR_MECHANISM_PARAM_INVALID, "PSS hashAlg " + MechanismName(params.hashAlg) +
                                                    " does not match " + MechanismName(m.type));
  }
  // The server (and the HSM's CKM_RSA_PKCS_PSS) use MGF1 with the signature's own hash.
  if (params.mgf != GetHashInfo(*h).ckg_mgf) {
    return CkError(CKR_MECHANISM_PARAM_INVALID,
                   "PSS mgf must be MGF1 with " + std::string(HashName(*h)));
  }
  const size_t max = MaxPssSaltLength(key.rsa_bits, *h);
  if (params.sLen > max) {
    return CkError(CKR_MECHANISM_PARAM_INVALID, "PSS sLen " + std::to_string(params.sLen) +
                                                    " exceeds the maximum " + std::to_string(max) +
                                                    " for " + key.Name() + " with " +
                                                    std::string(HashName(*h)));
  }
  *hash = *h;
  *salt = static_cast<size_t>(params.sLen);
  return Status::Ok();
}

}  // namespace

Result<std::unique_ptr<SignatureOperation>> SignatureOperation::Create(
    const CK_MECHANISM& mechanism, std::shared_ptr<const provider::ProviderCertificate> key,
    Purpose purpose) {
  const Mechanism* m = FindMechanism(mechanism.mechanism);
  if (m == nullptr) {
    return CkError(CKR_MECHANISM_INVALID,
                   MechanismName(mechanism.mechanism) + " is not offered by this token");
  }
  if (m->is_digest()) {
    return CkError(
        CKR_MECHANISM_INVALID,
        MechanismName(m->type) + " is a digest mechanism (C_DigestInit), not a signature one");
  }
  if (m->signature->key_type != key->key_spec.type) {
    return CkError(CKR_KEY_TYPE_INCONSISTENT, MechanismName(m->type) + " cannot be used with " +
                                                  key->label + " (" + key->key_spec.Name() + ")");
  }
  const bool signing = purpose == Purpose::kSign;
  const SignatureCapabilities signable = key->Signable();
  if (signing && !CanSignWith(*m, signable)) {
    return CkError(CKR_MECHANISM_INVALID, MechanismName(m->type) + " cannot sign with " +
                                              key->label + ": it can sign with " +
                                              signable.ToString());
  }
  std::unique_ptr<SignatureOperation> op(new SignatureOperation());
  op->mechanism_ = m;
  if (m->signature->scheme == SignatureScheme::kRsaPss) {
    HashAlgorithm hash = HashAlgorithm::kSha256;
    size_t salt = 0;
    SIGNUM_RETURN_IF_ERROR(ValidatePssParameters(mechanism, *m, key->key_spec, &hash, &salt));
    // Raw CKM_RSA_PKCS_PSS names its hash only here: refuse one the HSM cannot sign with now,
    // while the caller can still choose another, not at C_Sign after it has committed.
    if (signing && !signable.Allows(SignatureScheme::kRsaPss, hash)) {
      return CkError(CKR_MECHANISM_PARAM_INVALID,
                     MechanismName(m->type) + " with hashAlg " + std::string(HashName(hash)) +
                         " cannot sign with " + key->label + ": it can sign with " +
                         signable.ToString());
    }
    op->pss_hash_ = hash;
    op->pss_salt_ = salt;
  } else if (mechanism.ulParameterLen != 0) {
    return CkError(CKR_MECHANISM_PARAM_INVALID,
                   MechanismName(m->type) + " takes no parameter, got " +
                       std::to_string(mechanism.ulParameterLen) + " bytes");
  }
  if (m->hash.has_value()) op->hasher_.emplace(*m->hash);
  op->key_ = std::move(key);
  return op;
}

Status SignatureOperation::Update(ByteView part) {
  updated_ = true;
  if (hasher_.has_value()) {
    hasher_->Update(part);
    return Status::Ok();
  }
  if (raw_input_.size() + part.size() > kMaxRawInput) {
    return CkError(CKR_DATA_LEN_RANGE, "more input than " + MechanismName(mechanism_->type) +
                                           " can accept (" + std::to_string(kMaxRawInput) +
                                           " bytes)");
  }
  raw_input_.insert(raw_input_.end(), part.begin(), part.end());
  return Status::Ok();
}

Result<provider::DigestToSign> SignatureOperation::FromRawInput(ByteView input) const {
  switch (mechanism_->signature->scheme) {
    case SignatureScheme::kRsaPkcs1: {
      // PKCS#1 v1.5 needs 11 bytes of padding (RFC 8017 §9.2 step 3).
      const size_t k = key_->key_spec.SignatureSize();
      if (input.size() + 11 > k) {
        return CkError(CKR_DATA_LEN_RANGE,
                       "CKM_RSA_PKCS input of " + std::to_string(input.size()) +
                           " bytes is longer than k-11 = " + std::to_string(k - 11));
      }
      auto parsed = ParseDigestInfo(input);
      if (!parsed.ok()) {
        return CkError(CKR_DATA_INVALID,
                       "CKM_RSA_PKCS input must be a DigestInfo of SHA-1/224/256/384/512 "
                       "(the server signs digests, not raw data): " +
                           parsed.status().message());
      }
      return provider::DigestToSign{SignatureScheme::kRsaPkcs1, parsed->hash,
                                    std::move(parsed->digest), std::nullopt};
    }
    case SignatureScheme::kRsaPss: {
      const size_t expected = GetHashInfo(*pss_hash_).digest_size;
      if (input.size() != expected) {
        return CkError(CKR_DATA_LEN_RANGE, "CKM_RSA_PKCS_PSS input must be the " +
                                               std::string(HashName(*pss_hash_)) + " digest (" +
                                               std::to_string(expected) + " bytes), got " +
                                               std::to_string(input.size()));
      }
      return provider::DigestToSign{SignatureScheme::kRsaPss, *pss_hash_,
                                    Bytes(input.begin(), input.end()), pss_salt_};
    }
    case SignatureScheme::kEcdsa: {
      auto prepared = provider::PrepareRawEcdsaInput(key_->key_spec.curve, input);
      if (!prepared.ok()) return CkError(CKR_DATA_LEN_RANGE, prepared.status().message());
      return std::move(prepared).value();
    }
  }
  return CkError(CKR_GENERAL_ERROR, "unknown signature scheme");
}

Result<provider::DigestToSign> SignatureOperation::DigestFor(ByteView data) const {
  if (!mechanism_->hash.has_value()) return FromRawInput(data);
  return provider::DigestToSign{mechanism_->signature->scheme, *mechanism_->hash,
                                Digest(*mechanism_->hash, data), pss_salt_};
}

Result<provider::DigestToSign> SignatureOperation::FinalDigest() {
  if (finished_) return CkError(CKR_GENERAL_ERROR, "operation input already consumed");
  finished_ = true;
  if (!hasher_.has_value()) return FromRawInput(raw_input_);
  return provider::DigestToSign{mechanism_->signature->scheme, *mechanism_->hash, hasher_->Final(),
                                pss_salt_};
}

Status VerifySignature(const provider::ProviderCertificate& key,
                       const provider::DigestToSign& digest, ByteView signature) {
  if (signature.size() != key.key_spec.SignatureSize()) {
    return CkError(CKR_SIGNATURE_LEN_RANGE, "a " + key.key_spec.Name() + " signature has " +
                                                std::to_string(key.key_spec.SignatureSize()) +
                                                " bytes, got " + std::to_string(signature.size()));
  }
  // Parsed per verification: C_Verify is rare (tools verify with their own code), and the
  // portable provider model keeps no OpenSSL key objects.
  auto public_key = PublicKey::FromSpkiDer(key.certificate.SpkiDer());
  if (!public_key.ok()) return CkError(CKR_GENERAL_ERROR, public_key.status().message());
  Status verified = VerifyDigestSignature(*public_key, digest.scheme, digest.hash, digest.digest,
                                          signature, digest.pss_salt_length);
  if (!verified.ok()) return CkError(CKR_SIGNATURE_INVALID, verified.message());
  return Status::Ok();
}

}  // namespace signum::pkcs11

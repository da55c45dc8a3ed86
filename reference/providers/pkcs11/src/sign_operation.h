// One active C_SignInit/C_VerifyInit operation: the mechanism and its parameters, the key, and
// the input so far. It turns what the caller hands over into the digest the agent signs:
//
//   CKM_RSA_PKCS        input is a DigestInfo (RFC 8017 §9.2) of a supported hash; it is parsed
//                       (signum::ParseDigestInfo) and only the hash + digest are sent. Longer than
//                       k-11 bytes: CKR_DATA_LEN_RANGE; not such a DigestInfo: CKR_DATA_INVALID.
//   CKM_RSA_PKCS_PSS    input is the digest of the hash named in the parameters:
//                       a different length is CKR_DATA_LEN_RANGE.
//   CKM_ECDSA           input of any length, normalised by provider::PrepareRawEcdsaInput;
//                       what cannot be expressed as a digest is CKR_DATA_LEN_RANGE.
//   CKM_SHA*_…          data, hashed here (signum::Hasher), single- or multi-part.
//
// Multi-part raw mechanisms accumulate their input (bounded) and treat it as above at the end.
//
// C_SignInit is limited to what the key can sign with (ProviderCertificate::Signable: the pairs
// the server offers), before any agent round trip: a mechanism the key cannot sign with is
// CKR_MECHANISM_INVALID (a raw mechanism: its scheme with no hash at all). The hash of a raw
// mechanism (CKM_RSA_PKCS's DigestInfo, CKM_ECDSA's input length, CKM_RSA_PKCS_PSS's hashAlg) is
// the server's to judge, because the list cannot say why a pair is missing and the answers differ:
// a policy refusal is CKR_FUNCTION_REJECTED, what the HSM cannot do CKR_DATA_INVALID (both at
// C_Sign, before the HSM is asked). Verification runs locally, for every mechanism of the key's
// type.
#pragma once

#include <memory>
#include <optional>

#include "mechanisms.h"
#include "signum/core/crypto.h"
#include "signum/core/pkcs11.h"
#include "signum/provider/provider_certificate.h"
#include "signum/provider/signer.h"

namespace signum::pkcs11 {

class SignatureOperation {
 public:
  enum class Purpose { kSign, kVerify };

  // Checks the mechanism against the key and its parameters (PSS: CK_RSA_PKCS_PSS_PARAMS with a
  // supported hashAlg, equal to the mechanism's hash for CKM_SHA*_RSA_PKCS_PSS, MGF1 of the same
  // hash, sLen within emLen - hLen - 2; the others: no parameters).
  // CKR_MECHANISM_INVALID (also for digest mechanisms) / CKR_KEY_TYPE_INCONSISTENT /
  // CKR_MECHANISM_PARAM_INVALID.
  static Result<std::unique_ptr<SignatureOperation>> Create(
      const CK_MECHANISM& mechanism, std::shared_ptr<const provider::ProviderCertificate> key,
      Purpose purpose);

  const Mechanism& mechanism() const { return *mechanism_; }
  const provider::ProviderCertificate& key() const { return *key_; }
  // Known before anything is signed, so length queries never need the agent.
  size_t signature_size() const { return key_->key_spec.SignatureSize(); }

  // C_SignUpdate / C_VerifyUpdate. CKR_DATA_LEN_RANGE when raw input grows past what any
  // mechanism could accept.
  Status Update(ByteView part);
  bool updated() const { return updated_; }

  // The digest for single-part input (C_Sign/C_Verify) or for everything Update() received
  // (C_SignFinal/C_VerifyFinal; the operation's input is consumed).
  Result<provider::DigestToSign> DigestFor(ByteView data) const;
  Result<provider::DigestToSign> FinalDigest();

  // A signature computed but not yet delivered (kept so it is never computed twice).
  std::optional<Bytes> signature;

 private:
  SignatureOperation() = default;
  Result<provider::DigestToSign> FromRawInput(ByteView input) const;
  const Mechanism* mechanism_ = nullptr;
  std::shared_ptr<const provider::ProviderCertificate> key_;
  std::optional<HashAlgorithm> pss_hash_;  // from the PSS parameters
  std::optional<size_t> pss_salt_;
  std::optional<Hasher> hasher_;  // hash-and-sign mechanisms
  Bytes raw_input_;               // raw mechanisms, multi-part
  bool updated_ = false;
  bool finished_ = false;
};

// Verifies `signature` over the digest with the key's public key (OpenSSL, locally).
// CKR_SIGNATURE_LEN_RANGE / CKR_SIGNATURE_INVALID.
Status VerifySignature(const provider::ProviderCertificate& key,
                       const provider::DigestToSign& digest, ByteView signature);

}  // namespace signum::pkcs11

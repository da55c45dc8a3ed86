// Signing through the agent, the same way for every provider interface.
//
// Hash on the client: only digests go to the agent. A caller that hands the provider data (PKCS#11
// CKM_SHA256_RSA_PKCS, multi-part signing) hashes it here (digest.h: the platform's hash) and signs the
// digest; a caller that hands over a digest (CKM_RSA_PKCS with a DigestInfo, CKM_ECDSA,
// NCryptSignHash) has it checked and sent as is.
#pragma once

#include <optional>

#include "signum/core/algorithms.h"
#include "signum/core/bytes.h"
#include "signum/core/status.h"
#include "signum/core/wire.h"
#include "signum/provider/agent_pool.h"
#include "signum/provider/provider_certificate.h"

namespace signum::provider {

// A digest ready for the agent: exactly the hash's length, with the scheme that fits the key.
struct DigestToSign {
  SignatureScheme scheme = SignatureScheme::kRsaPkcs1;
  HashAlgorithm hash = HashAlgorithm::kSha256;
  Bytes digest;
  std::optional<size_t> pss_salt_length;  // rsa-pss only; nullopt = the digest length
};

// Checks what the server would reject anyway, before a round trip: scheme fits the key, digest
// length equals the hash's, PSS salt fits the modulus. kInvalidArgument names the problem.
Status ValidateDigestToSign(const KeySpec& key, const DigestToSign& request);

// Raw ECDSA (PKCS#11 CKM_ECDSA, CNG NCryptSignHash) accepts an input of any length; ECDSA itself
// (X9.62 / FIPS 186-4 §6.4) uses the leftmost min(n, order bits) bits of it as an integer. The
// agent and server want a digest labelled with a hash of exactly that length, so:
//   - an input whose length is a hash's (20/28/32/48/64 bytes) goes as that hash, even when it is
//     longer than the curve (64 bytes into P-256 from jarsigner's SHA512withECDSA): the HSM's
//     CKM_ECDSA truncates it exactly as the standard says;
//   - a longer input of another length is truncated here to the curve's byte length when that is a
//     hash length (P-256: 32, P-384: 48);
//   - a shorter input of another length is left-padded with zeros to the shortest SHA-2 length that
//     still fits the curve, which leaves its integer value, and so the signature, unchanged;
//   - anything else (e.g. 65..n bytes into P-521) is kInvalidArgument.
Result<DigestToSign> PrepareRawEcdsaInput(EcCurve curve, ByteView input);

class Signer {
 public:
  // context is sent with every request (the agent overrides what it can see from the socket peer).
  Signer(AgentConnectionPool* pool, wire::CallerContext context);

  // Signs a prepared digest. The signature is raw (PKCS#1 / PSS octets, ECDSA r||s) and exactly
  // certificate.key_spec.SignatureSize() bytes; anything else from the agent is kInternal, and a
  // signature that does not verify with the certificate's key is kDataLoss (signature_check.h).
  Result<Bytes> SignDigest(const ProviderCertificate& certificate, const DigestToSign& request);
  // Hashes data locally and signs the digest.
  Result<Bytes> SignData(const ProviderCertificate& certificate, SignatureScheme scheme,
                         HashAlgorithm hash, ByteView data,
                         std::optional<size_t> pss_salt_length = std::nullopt);

  const wire::CallerContext& context() const { return context_; }

 private:
  AgentConnectionPool* pool_;
  wire::CallerContext context_;
};

}  // namespace signum::provider

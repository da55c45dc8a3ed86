// The operation model of the CTK token: which SecKeyAlgorithm constants a key signs with, what
// input each expects, and the request macOS hands the token (TKTokenKeyAlgorithm).
//
// A key of the token supports, when the server offers the pair on its certificate
// (ProviderCertificate::Signable(): the caller's policies intersected with the HSM key):
//   RSA: PKCS#1 v1.5 and PSS over a digest (…Digest…SHA*) and over a message (…Message…SHA*,
//        hashed here; only the digest goes to the agent), SHA-1/224/256/384/512, and
//        RSASignatureDigestPKCS1v15Raw when its input is a DigestInfo of one of those hashes;
//   EC:  X9.62 over a digest (…DigestX962SHA*, and DigestX962 of any length) and over a message.
// ECDSA output is DER X9.62 (F57), not the raw r||s PKCS#11 returns. Raw RSA, the RFC 4754 (raw
// r||s) variants, encryption and key exchange are not supported (ctk_iface.h says why per input).
#pragma once

#include <optional>
#include <span>
#include <string_view>
#include <utility>
#include <vector>

#include "signum/core/algorithms.h"
#include "signum/core/status.h"
#include "signum/ctk/ctk_iface.h"
#include "signum/provider/provider_certificate.h"

namespace signum::ctk {

struct KeyAlgorithmInfo {
  SecKeyAlgorithm algorithm;
  std::string_view constant_name;  // "kSecKeyAlgorithmRSASignatureDigestPKCS1v15SHA256"
  AlgorithmKey key;
  AlgorithmScheme scheme;
  AlgorithmHash hash;
  AlgorithmInput input;

  std::optional<SignatureScheme> signature_scheme() const;
  std::optional<HashAlgorithm> hash_algorithm() const;
};

// Every algorithm of SIGNUM_CTK_SEC_KEY_ALGORITHMS, in its order (kUnknown is not among them).
std::span<const KeyAlgorithmInfo> AllKeyAlgorithms();
// nullptr for kUnknown.
const KeyAlgorithmInfo* FindKeyAlgorithm(SecKeyAlgorithm algorithm);
// By constant name, with or without the "kSecKeyAlgorithm" prefix; kUnknown when not listed.
SecKeyAlgorithm ParseKeyAlgorithm(std::string_view name);
// "kSecKeyAlgorithm…", or "unknown SecKeyAlgorithm".
std::string_view KeyAlgorithmName(SecKeyAlgorithm algorithm);

// TKTokenKeyAlgorithm: the algorithm the token is asked to perform (the target) and the ones the
// framework used on the way to it (a client's Message…SHA256 that the framework hashed into a
// Digest…SHA256 request). isAlgorithm: asks about the target only; supportsAlgorithm: about
// the target or any algorithm used.
class KeyAlgorithmRequest {
 public:
  explicit KeyAlgorithmRequest(SecKeyAlgorithm target, std::vector<SecKeyAlgorithm> used = {})
      : target_(target), used_(std::move(used)) {}
  bool IsAlgorithm(SecKeyAlgorithm algorithm) const { return target_ == algorithm; }
  bool SupportsAlgorithm(SecKeyAlgorithm algorithm) const;
  SecKeyAlgorithm target() const { return target_; }

 private:
  SecKeyAlgorithm target_;
  std::vector<SecKeyAlgorithm> used_;
};

// OK when the token signs with `algorithm` using this certificate's key; otherwise kUnimplemented
// saying why (wrong key type, an input the token cannot take, a pair the server does not offer).
Status CheckSigningAlgorithm(const provider::ProviderCertificate& certificate,
                             SecKeyAlgorithm algorithm);
// The algorithms CheckSigningAlgorithm accepts for this certificate, in table order.
std::vector<SecKeyAlgorithm> SigningAlgorithms(const provider::ProviderCertificate& certificate);

}  // namespace signum::ctk

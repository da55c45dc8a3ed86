#include "signum/ctk/key_algorithms.h"

#include <algorithm>
#include <string>

namespace signum::ctk {
namespace {

constexpr KeyAlgorithmInfo kAlgorithms[] = {
#define SIGNUM_CTK_ROW(name, key, scheme, hash, input)                    \
  {SecKeyAlgorithm::k##name, "kSecKeyAlgorithm" #name, AlgorithmKey::key, \
   AlgorithmScheme::scheme,  AlgorithmHash::hash,      AlgorithmInput::input},
    SIGNUM_CTK_SEC_KEY_ALGORITHMS(SIGNUM_CTK_ROW)
#undef SIGNUM_CTK_ROW
};

constexpr std::string_view kPrefix = "kSecKeyAlgorithm";

std::string Describe(const provider::ProviderCertificate& certificate) {
  return "key '" + certificate.label + "' (" + certificate.key_spec.Name() + ", " + certificate.id +
         ")";
}

}  // namespace

std::optional<SignatureScheme> KeyAlgorithmInfo::signature_scheme() const {
  switch (scheme) {
    case AlgorithmScheme::kRsaPkcs1:
      return SignatureScheme::kRsaPkcs1;
    case AlgorithmScheme::kRsaPss:
      return SignatureScheme::kRsaPss;
    case AlgorithmScheme::kEcdsa:
      return SignatureScheme::kEcdsa;
    case AlgorithmScheme::kNone:
      break;
  }
  return std::nullopt;
}

std::optional<HashAlgorithm> KeyAlgorithmInfo::hash_algorithm() const {
  switch (hash) {
    case AlgorithmHash::kSha1:
      return HashAlgorithm::kSha1;
    case AlgorithmHash::kSha224:
      return HashAlgorithm::kSha224;
    case AlgorithmHash::kSha256:
      return HashAlgorithm::kSha256;
    case AlgorithmHash::kSha384:
      return HashAlgorithm::kSha384;
    case AlgorithmHash::kSha512:
      return HashAlgorithm::kSha512;
    case AlgorithmHash::kNone:
      break;
  }
  return std::nullopt;
}

std::span<const KeyAlgorithmInfo> AllKeyAlgorithms() { return kAlgorithms; }

const KeyAlgorithmInfo* FindKeyAlgorithm(SecKeyAlgorithm algorithm) {
  for (const KeyAlgorithmInfo& info : kAlgorithms) {
    if (info.algorithm == algorithm) return &info;
  }
  return nullptr;
}

SecKeyAlgorithm ParseKeyAlgorithm(std::string_view name) {
  if (name.starts_with(kPrefix)) name.remove_prefix(kPrefix.size());
  for (const KeyAlgorithmInfo& info : kAlgorithms) {
    if (info.constant_name.substr(kPrefix.size()) == name) return info.algorithm;
  }
  return SecKeyAlgorithm::kUnknown;
}

std::string_view KeyAlgorithmName(SecKeyAlgorithm algorithm) {
  const KeyAlgorithmInfo* info = FindKeyAlgorithm(algorithm);
  return info != nullptr ? info->constant_name : "unknown SecKeyAlgorithm";
}

bool KeyAlgorithmRequest::SupportsAlgorithm(SecKeyAlgorithm algorithm) const {
  return target_ == algorithm || std::find(used_.begin(), used_.end(), algorithm) != used_.end();
}

Status CheckSigningAlgorithm(const provider::ProviderCertificate& certificate,
                             SecKeyAlgorithm algorithm) {
  const KeyAlgorithmInfo* info = FindKeyAlgorithm(algorithm);
  if (info == nullptr) {
    return UnimplementedError("the token does not know this SecKeyAlgorithm");
  }
  const std::string what = std::string(info->constant_name) + " with " + Describe(certificate);
  const bool rsa_key = certificate.key_spec.type == KeyType::kRsa;
  if ((info->key == AlgorithmKey::kRsa) != rsa_key) {
    return UnimplementedError(what + ": the algorithm is for another key type");
  }
  switch (info->input) {
    case AlgorithmInput::kRawRsa:
      return UnimplementedError(what +
                                ": raw RSA is not offered (the server signs hash-labelled "
                                "digests only; use a PKCS#1 or PSS algorithm)");
    case AlgorithmInput::kRawEcdsaOutput:
      return UnimplementedError(what + ": raw r||s output is not offered (X9.62 DER only)");
    case AlgorithmInput::kNotSigning:
      return UnimplementedError(what + ": the token's keys only sign");
    case AlgorithmInput::kDigest:
    case AlgorithmInput::kMessage:
    case AlgorithmInput::kDigestInfo:
    case AlgorithmInput::kAnyLengthDigest:
      break;
  }
  const SignatureCapabilities signable = certificate.Signable();
  const SignatureScheme scheme = *info->signature_scheme();
  const std::optional<HashAlgorithm> hash = info->hash_algorithm();
  // The hash-less inputs name their hash at signing time; one offered pair of the scheme will do.
  const bool offered = hash ? signable.Allows(scheme, *hash) : signable.AllowsScheme(scheme);
  if (!offered) {
    return UnimplementedError(what + ": the server does not offer " +
                              std::string(SchemeName(scheme)) +
                              (hash ? "/" + std::string(HashName(*hash)) : std::string()) +
                              " on this certificate (offered: " + signable.ToString() + ")");
  }
  return Status::Ok();
}

std::vector<SecKeyAlgorithm> SigningAlgorithms(const provider::ProviderCertificate& certificate) {
  std::vector<SecKeyAlgorithm> supported;
  for (const KeyAlgorithmInfo& info : kAlgorithms) {
    if (CheckSigningAlgorithm(certificate, info.algorithm).ok())
      supported.push_back(info.algorithm);
  }
  return supported;
}

}  // namespace signum::ctk

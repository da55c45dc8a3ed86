#include "signum/ctk/token.h"

#include <algorithm>
#include <string>
#include <utility>

#include "signum/core/encoding.h"
#include "signum/ctk/der_writer.h"
#include "signum/provider/signer.h"

// Test-only builds of this file (conformance/ctk's defect drivers) define SIGNUM_CTK_DEFECT_* to
// prove that the conformance suite notices the defect; the token library itself never does.

namespace signum::ctk {
namespace {

std::string DescribeObjectId(ByteView object_id) {
  return object_id.size() <= 64 ? HexEncode(object_id)
                                : std::to_string(object_id.size()) + "-byte object ID";
}

// Checks the (scheme, hash) a hash-less input turned out to carry against what the server offers.
Status CheckOfferedPair(const provider::ProviderCertificate& certificate, std::string_view name,
                        SignatureScheme scheme, HashAlgorithm hash) {
  if (certificate.Signable().Allows(scheme, hash)) return Status::Ok();
  return UnimplementedError(std::string(name) + ": the input is a " + std::string(HashName(hash)) +
                            " digest, which the server does not offer with " +
                            std::string(SchemeName(scheme)) + " on key '" + certificate.label +
                            "'");
}

}  // namespace

Token::Token(provider::AgentPoolOptions options) : context_(std::move(options)) {}

Result<KeychainContents> Token::KeychainItems() {
  SIGNUM_ASSIGN_OR_RETURN(auto set, context_.Certificates());
  return BuildKeychainContents(*set);
}

Result<KeychainContents> Token::RefreshKeychainItems() {
  SIGNUM_ASSIGN_OR_RETURN(auto set, context_.Refresh());
  return BuildKeychainContents(*set);
}

std::unique_ptr<TokenSession> Token::CreateSession() {
  return std::make_unique<TokenSession>(this);
}

Result<std::shared_ptr<const provider::ProviderCertificate>> TokenSession::FindKey(
    ByteView key_object_id) {
  SIGNUM_ASSIGN_OR_RETURN(auto set, token_->context().Certificates());
  for (const auto& certificate : set->certificates) {
    if (std::equal(certificate->thumbprint.begin(), certificate->thumbprint.end(),
                   key_object_id.begin(), key_object_id.end())) {
      return certificate;
    }
  }
  return NotFoundError("no key with object ID " + DescribeObjectId(key_object_id) +
                       " on the Signum token (the agent lists " +
                       std::to_string(set->certificates.size()) + " certificates)");
}

bool TokenSession::SupportsOperation(TokenOperation operation, ByteView key_object_id,
                                     const KeyAlgorithmRequest& algorithm) {
  if (operation != TokenOperation::kSignData) return false;
  try {
    auto certificate = FindKey(key_object_id);
    if (!certificate.ok()) return false;
    // The target only (isAlgorithm:): the token takes exactly the input the target names, so it
    // never has to guess what the framework did to the caller's data on the way.
    return CheckSigningAlgorithm(**certificate, algorithm.target()).ok();
  } catch (...) {
    return false;
  }
}

Result<Bytes> TokenSession::SignData(ByteView data, ByteView key_object_id,
                                     const KeyAlgorithmRequest& algorithm) {
  SIGNUM_ASSIGN_OR_RETURN(auto certificate, FindKey(key_object_id));
  SIGNUM_RETURN_IF_ERROR(CheckSigningAlgorithm(*certificate, algorithm.target()));
  const KeyAlgorithmInfo& info = *FindKeyAlgorithm(algorithm.target());
  const SignatureScheme scheme = *info.signature_scheme();
  provider::Signer& signer = token_->context().signer();

  Result<Bytes> raw = InternalError("unreachable");
  switch (info.input) {
    case AlgorithmInput::kMessage:
      raw = signer.SignData(*certificate, scheme, *info.hash_algorithm(), data);
      break;
    case AlgorithmInput::kDigest: {
      const HashAlgorithm hash = *info.hash_algorithm();
      const size_t expected = GetHashInfo(hash).digest_size;
      if (data.size() != expected) {
        return InvalidArgumentError(std::string(info.constant_name) + " takes the " +
                                    std::string(HashName(hash)) + " digest itself (" +
                                    std::to_string(expected) + " bytes), not " +
                                    std::to_string(data.size()) +
                                    " bytes: hash the data first or use the …Message… "
                                    "algorithm");
      }
#if defined(SIGNUM_CTK_DEFECT_REHASH_DIGEST)
      raw = signer.SignData(*certificate, scheme, hash, data);  // defect: hashes the digest again
#else
      raw = signer.SignDigest(*certificate,
                              {scheme, hash, Bytes(data.begin(), data.end()), std::nullopt});
#endif
      break;
    }
    case AlgorithmInput::kDigestInfo: {
      auto parsed = ParseDigestInfo(data);
      if (!parsed.ok()) {
        return InvalidArgumentError(
            std::string(info.constant_name) +
            " takes a DER DigestInfo of SHA-1/224/256/384/512: " + parsed.status().message());
      }
      SIGNUM_RETURN_IF_ERROR(
          CheckOfferedPair(*certificate, info.constant_name, scheme, parsed->hash));
      raw = signer.SignDigest(*certificate,
                              {scheme, parsed->hash, std::move(parsed->digest), std::nullopt});
      break;
    }
    case AlgorithmInput::kAnyLengthDigest: {
      auto prepared = provider::PrepareRawEcdsaInput(certificate->key_spec.curve, data);
      if (!prepared.ok()) return prepared.status().WithContext(info.constant_name);
      SIGNUM_RETURN_IF_ERROR(
          CheckOfferedPair(*certificate, info.constant_name, scheme, prepared->hash));
      raw = signer.SignDigest(*certificate, *prepared);
      break;
    }
    case AlgorithmInput::kRawRsa:
    case AlgorithmInput::kRawEcdsaOutput:
    case AlgorithmInput::kNotSigning:
      return UnimplementedError(std::string(info.constant_name) + " is not offered");
  }
  if (!raw.ok()) return raw.status().WithContext(std::string(info.constant_name));
#if !defined(SIGNUM_CTK_DEFECT_RAW_ECDSA)
  // SecKeyCreateSignature's X9.62 algorithms return DER; the agent returns r||s (F57).
  if (scheme == SignatureScheme::kEcdsa) return EcdsaRawToX962Der(*raw);
#endif
  return raw;
}

TkOutcome<Bytes> TokenSession::SignDataAtBoundary(ByteView data, ByteView key_object_id,
                                                  const KeyAlgorithmRequest& algorithm) noexcept {
  return ReturnAtTkBoundary<Bytes>("signData",
                                   [&] { return SignData(data, key_object_id, algorithm); });
}

}  // namespace signum::ctk

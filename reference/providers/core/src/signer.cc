#include "signum/provider/signer.h"

#include <algorithm>
#include <utility>

#include "signum/provider/digest.h"
#include "signum/provider/signature_check.h"

namespace signum::provider {

Status ValidateDigestToSign(const KeySpec& key, const DigestToSign& request) {
  if (!SchemeFitsKey(request.scheme, key.type)) {
    return InvalidArgumentError("scheme " + std::string(SchemeName(request.scheme)) +
                                " does not fit a " + key.Name() + " key");
  }
  const size_t expected = GetHashInfo(request.hash).digest_size;
  if (request.digest.size() != expected) {
    return InvalidArgumentError("a " + std::string(HashName(request.hash)) + " digest has " +
                                std::to_string(expected) + " bytes, got " +
                                std::to_string(request.digest.size()));
  }
  if (request.pss_salt_length.has_value()) {
    if (request.scheme != SignatureScheme::kRsaPss) {
      return InvalidArgumentError("a salt length only applies to rsa-pss");
    }
    const size_t max = MaxPssSaltLength(key.rsa_bits, request.hash);
    if (*request.pss_salt_length > max) {
      return InvalidArgumentError("PSS salt length " + std::to_string(*request.pss_salt_length) +
                                  " exceeds the maximum " + std::to_string(max) + " for " +
                                  key.Name() + " with " + std::string(HashName(request.hash)));
    }
  }
  return Status::Ok();
}

Result<DigestToSign> PrepareRawEcdsaInput(EcCurve curve, ByteView input) {
  const CurveInfo& info = GetCurveInfo(curve);
  const size_t order_bits = static_cast<size_t>(info.bits);
  DigestToSign out;
  out.scheme = SignatureScheme::kEcdsa;
  if (input.empty()) return InvalidArgumentError("ECDSA input is empty");
  if (auto hash = HashForDigestSize(input.size())) {
    out.hash = *hash;
    out.digest.assign(input.begin(), input.end());
    return out;
  }
  if (input.size() * 8 > order_bits) {
    // Truncation to the leftmost order_bits bits is a byte cut only when the order's length is a
    // whole number of bytes (P-256, P-384), and only useful when the result is a hash length.
    if (order_bits % 8 == 0) {
      if (auto hash = HashForDigestSize(order_bits / 8)) {
        out.hash = *hash;
        out.digest.assign(input.begin(),
                          input.begin() + static_cast<std::ptrdiff_t>(order_bits / 8));
        return out;
      }
    }
    return InvalidArgumentError("ECDSA input of " + std::to_string(input.size()) +
                                " bytes cannot be expressed as a digest for " +
                                std::string(info.name));
  }
  // Shorter than the order: left-pad to the shortest SHA-2 length that keeps the value intact
  // (padded length * 8 <= order bits means no further truncation applies). SHA-1's length is
  // skipped on purpose: policies rarely allow it, and any SHA-2 length signs the same value.
  std::optional<HashAlgorithm> best;
  for (const HashInfo& h : AllHashes()) {
    if (h.algorithm == HashAlgorithm::kSha1) continue;
    if (h.digest_size < input.size() || h.digest_size * 8 > order_bits) continue;
    if (!best || h.digest_size < GetHashInfo(*best).digest_size) best = h.algorithm;
  }
  if (!best) {
    return InvalidArgumentError("ECDSA input of " + std::to_string(input.size()) +
                                " bytes cannot be expressed as a digest for " +
                                std::string(info.name));
  }
  out.hash = *best;
  out.digest.assign(GetHashInfo(*best).digest_size - input.size(), 0);
  out.digest.insert(out.digest.end(), input.begin(), input.end());
  return out;
}

Signer::Signer(AgentConnectionPool* pool, wire::CallerContext context)
    : pool_(pool), context_(std::move(context)) {}

Result<Bytes> Signer::SignDigest(const ProviderCertificate& certificate,
                                 const DigestToSign& request) {
  SIGNUM_RETURN_IF_ERROR(ValidateDigestToSign(certificate.key_spec, request));
  agent_protocol::SignRequest agent_request;
  agent_request.certificate_id = certificate.id;
  agent_request.scheme = request.scheme;
  agent_request.hash = request.hash;
  agent_request.digest = request.digest;
  agent_request.pss_salt_length = request.pss_salt_length;
  agent_request.context = context_;
  SIGNUM_ASSIGN_OR_RETURN(Bytes signature, pool_->Sign(agent_request));
  // Callers size their buffers from the key before asking (PKCS#11 length queries), so a
  // signature of any other length is a broken contract, not something to pass on.
  const size_t expected = certificate.key_spec.SignatureSize();
  if (signature.size() != expected) {
    return InternalError("signum-agent returned a " + std::to_string(signature.size()) +
                         "-byte signature for " + certificate.label + "; expected " +
                         std::to_string(expected));
  }
  SIGNUM_RETURN_IF_ERROR(CheckReturnedSignature(certificate, request, signature));
  return signature;
}

Result<Bytes> Signer::SignData(const ProviderCertificate& certificate, SignatureScheme scheme,
                               HashAlgorithm hash, ByteView data,
                               std::optional<size_t> pss_salt_length) {
  SIGNUM_ASSIGN_OR_RETURN(Bytes digest, ComputeDigest(hash, data));
  DigestToSign request{.scheme = scheme,
                       .hash = hash,
                       .digest = std::move(digest),
                       .pss_salt_length = pss_salt_length};
  return SignDigest(certificate, request);
}

}  // namespace signum::provider

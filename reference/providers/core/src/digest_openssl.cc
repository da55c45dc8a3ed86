// digest.h on OpenSSL (Linux, macOS): core's Hasher, i.e. EVP with the default library context.
#include <optional>

#include "signum/core/crypto.h"
#include "signum/provider/digest.h"

namespace signum::provider {

struct DigestContext::Backend {
  std::optional<Hasher> hasher;
};

Result<Bytes> ComputeDigest(HashAlgorithm hash, ByteView data) { return Digest(hash, data); }

Result<DigestContext> DigestContext::Create(HashAlgorithm hash) {
  auto backend = std::make_unique<Backend>();
  backend->hasher.emplace(hash);
  return DigestContext(hash, std::move(backend));
}

Status DigestContext::Update(ByteView data) {
  if (!backend_ || !backend_->hasher) return FailedPreconditionError("digest already finished");
  backend_->hasher->Update(data);
  return Status::Ok();
}

Result<Bytes> DigestContext::Finish() {
  if (!backend_ || !backend_->hasher) return FailedPreconditionError("digest already finished");
  Bytes digest = backend_->hasher->Final();
  backend_->hasher.reset();
  return digest;
}

DigestContext::DigestContext(HashAlgorithm hash, std::unique_ptr<Backend> backend)
    : hash_(hash), backend_(std::move(backend)) {}
DigestContext::DigestContext(DigestContext&&) noexcept = default;
DigestContext& DigestContext::operator=(DigestContext&&) noexcept = default;
DigestContext::~DigestContext() = default;

}  // namespace signum::provider

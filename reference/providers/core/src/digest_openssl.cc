// digest.h on OpenSSL (Linux, macOS): EVP with the default library context.
#include <openssl/evp.h>

#include "signum/provider/digest.h"

namespace signum::provider {

struct DigestContext::Backend {
  EVP_MD_CTX* ctx = nullptr;  // null once finished
  ~Backend() { EVP_MD_CTX_free(ctx); }
};

Result<Bytes> ComputeDigest(HashAlgorithm hash, ByteView data) {
  SIGNUM_ASSIGN_OR_RETURN(DigestContext context, DigestContext::Create(hash));
  SIGNUM_RETURN_IF_ERROR(context.Update(data));
  return context.Finish();
}

Result<DigestContext> DigestContext::Create(HashAlgorithm hash) {
  // OpenSSL knows every Signum hash by its wire name ("sha256").
  const EVP_MD* md = EVP_get_digestbyname(std::string(HashName(hash)).c_str());
  auto backend = std::make_unique<Backend>();
  backend->ctx = EVP_MD_CTX_new();
  if (md == nullptr || backend->ctx == nullptr ||
      EVP_DigestInit_ex(backend->ctx, md, nullptr) != 1) {
    return InternalError("OpenSSL cannot start a " + std::string(HashName(hash)) + " digest");
  }
  return DigestContext(hash, std::move(backend));
}

Status DigestContext::Update(ByteView data) {
  if (!backend_ || backend_->ctx == nullptr) {
    return FailedPreconditionError("digest already finished");
  }
  if (EVP_DigestUpdate(backend_->ctx, data.data(), data.size()) != 1) {
    return InternalError("EVP_DigestUpdate failed");
  }
  return Status::Ok();
}

Result<Bytes> DigestContext::Finish() {
  if (!backend_ || backend_->ctx == nullptr) {
    return FailedPreconditionError("digest already finished");
  }
  Bytes digest(EVP_MAX_MD_SIZE);
  unsigned int size = 0;
  const int ok = EVP_DigestFinal_ex(backend_->ctx, digest.data(), &size);
  EVP_MD_CTX_free(backend_->ctx);
  backend_->ctx = nullptr;
  if (ok != 1) return InternalError("EVP_DigestFinal_ex failed");
  digest.resize(size);
  return digest;
}

Result<DigestContext> DigestContext::Clone() const {
  if (!backend_ || backend_->ctx == nullptr) {
    return FailedPreconditionError("digest already finished");
  }
  auto backend = std::make_unique<Backend>();
  backend->ctx = EVP_MD_CTX_new();
  if (backend->ctx == nullptr || EVP_MD_CTX_copy_ex(backend->ctx, backend_->ctx) != 1) {
    return InternalError("EVP_MD_CTX_copy_ex failed");
  }
  return DigestContext(hash_, std::move(backend));
}

DigestContext::DigestContext(HashAlgorithm hash, std::unique_ptr<Backend> backend)
    : hash_(hash), backend_(std::move(backend)) {}
DigestContext::DigestContext(DigestContext&&) noexcept = default;
DigestContext& DigestContext::operator=(DigestContext&&) noexcept = default;
DigestContext::~DigestContext() = default;

}  // namespace signum::provider

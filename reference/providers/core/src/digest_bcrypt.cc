// digest.h on Windows: the system's BCrypt (a KSP/CSP must not bring its own crypto library into
// the processes that load it). Algorithm providers are opened once per hash and kept: opening one
// is the expensive part, and BCrypt algorithm handles are thread-safe.
#include <windows.h>
// bcrypt.h needs windows.h's types first.
#include <bcrypt.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <mutex>
#include <string>

#include "signum/provider/digest.h"
#include "signum/provider/wide_string.h"

namespace signum::provider {
namespace {

bool Ok(NTSTATUS status) { return status >= 0; }

Status BcryptError(const char* call, NTSTATUS status) {
  char buf[96];
  std::snprintf(buf, sizeof buf, "%s failed: NTSTATUS 0x%08lx", call,
                static_cast<unsigned long>(status));
  return InternalError(buf);
}

Result<BCRYPT_ALG_HANDLE> AlgorithmFor(HashAlgorithm hash) {
  const HashInfo& info = GetHashInfo(hash);
  if (info.cng_algorithm_id.empty()) {
    return UnimplementedError(std::string(info.name) + " is not available from Windows BCrypt");
  }
  static std::mutex mu;
  static std::array<BCRYPT_ALG_HANDLE, 8> handles{};
  const size_t index = static_cast<size_t>(hash);
  std::lock_guard lock(mu);
  if (handles[index] == nullptr) {
    const std::wstring id = WideFromUtf8(info.cng_algorithm_id);
    NTSTATUS status = BCryptOpenAlgorithmProvider(&handles[index], id.c_str(), nullptr, 0);
    if (!Ok(status)) {
      handles[index] = nullptr;
      return BcryptError("BCryptOpenAlgorithmProvider", status);
    }
  }
  return handles[index];
}

}  // namespace

struct DigestContext::Backend {
  BCRYPT_HASH_HANDLE handle = nullptr;
  size_t size = 0;
  ~Backend() {
    if (handle != nullptr) BCryptDestroyHash(handle);
  }
};

Result<DigestContext> DigestContext::Create(HashAlgorithm hash) {
  SIGNUM_ASSIGN_OR_RETURN(BCRYPT_ALG_HANDLE algorithm, AlgorithmFor(hash));
  auto backend = std::make_unique<Backend>();
  backend->size = GetHashInfo(hash).digest_size;
  // Hash object memory allocated by BCrypt itself (pbHashObject NULL; Windows 7 and later).
  NTSTATUS status = BCryptCreateHash(algorithm, &backend->handle, nullptr, 0, nullptr, 0, 0);
  if (!Ok(status)) return BcryptError("BCryptCreateHash", status);
  return DigestContext(hash, std::move(backend));
}

Status DigestContext::Update(ByteView data) {
  if (!backend_ || backend_->handle == nullptr) {
    return FailedPreconditionError("digest already finished");
  }
  // BCryptHashData takes a ULONG length: feed large inputs in pieces.
  while (!data.empty()) {
    const ULONG chunk = static_cast<ULONG>(std::min<size_t>(data.size(), 1u << 30));
    NTSTATUS status = BCryptHashData(backend_->handle, const_cast<PUCHAR>(data.data()), chunk, 0);
    if (!Ok(status)) return BcryptError("BCryptHashData", status);
    data = data.subspan(chunk);
  }
  return Status::Ok();
}

Result<Bytes> DigestContext::Finish() {
  if (!backend_ || backend_->handle == nullptr) {
    return FailedPreconditionError("digest already finished");
  }
  Bytes digest(backend_->size);
  NTSTATUS status =
      BCryptFinishHash(backend_->handle, digest.data(), static_cast<ULONG>(digest.size()), 0);
  BCryptDestroyHash(backend_->handle);
  backend_->handle = nullptr;
  if (!Ok(status)) return BcryptError("BCryptFinishHash", status);
  return digest;
}

Result<DigestContext> DigestContext::Clone() const {
  if (!backend_ || backend_->handle == nullptr) {
    return FailedPreconditionError("digest already finished");
  }
  auto backend = std::make_unique<Backend>();
  backend->size = backend_->size;
  NTSTATUS status = BCryptDuplicateHash(backend_->handle, &backend->handle, nullptr, 0, 0);
  if (!Ok(status)) return BcryptError("BCryptDuplicateHash", status);
  return DigestContext(hash_, std::move(backend));
}

Result<Bytes> ComputeDigest(HashAlgorithm hash, ByteView data) {
  SIGNUM_ASSIGN_OR_RETURN(DigestContext context, DigestContext::Create(hash));
  SIGNUM_RETURN_IF_ERROR(context.Update(data));
  return context.Finish();
}

DigestContext::DigestContext(HashAlgorithm hash, std::unique_ptr<Backend> backend)
    : hash_(hash), backend_(std::move(backend)) {}
DigestContext::DigestContext(DigestContext&&) noexcept = default;
DigestContext& DigestContext::operator=(DigestContext&&) noexcept = default;
DigestContext::~DigestContext() = default;

}  // namespace signum::provider

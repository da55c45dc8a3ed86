// Hashing for providers, on each platform's own library: OpenSSL's EVP on Linux and macOS, the
// system's BCrypt on Windows (the KSP/CSP run inside other people's processes and must not bring
// their own crypto library). Providers hash data locally and send only digests to the agent.
#pragma once

#include <memory>

#include "signum/core/algorithms.h"
#include "signum/core/bytes.h"
#include "signum/core/status.h"

namespace signum::provider {

// One-shot digest. kUnimplemented when the platform lacks the hash (BCrypt has no SHA-224).
Result<Bytes> ComputeDigest(HashAlgorithm hash, ByteView data);

// Multi-part digest (CryptoAPI's CryptHashData, PKCS#11 C_SignUpdate). Move-only.
class DigestContext {
 public:
  static Result<DigestContext> Create(HashAlgorithm hash);
  DigestContext(DigestContext&&) noexcept;
  DigestContext& operator=(DigestContext&&) noexcept;
  ~DigestContext();

  HashAlgorithm hash() const { return hash_; }
  Status Update(ByteView data);
  // The digest; the context is finished afterwards and further calls fail.
  Result<Bytes> Finish();
  // An independent copy of the running digest (CryptoAPI's CryptDuplicateHash): both continue
  // from the data hashed so far. kFailedPrecondition once finished.
  Result<DigestContext> Clone() const;

  struct Backend;  // per platform (digest_openssl.cc / digest_bcrypt.cc)

 private:
  DigestContext(HashAlgorithm hash, std::unique_ptr<Backend> backend);
  HashAlgorithm hash_;
  std::unique_ptr<Backend> backend_;
};

}  // namespace signum::provider

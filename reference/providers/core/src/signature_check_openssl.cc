// SignatureVerifiesWithCertificateKey on Linux and macOS: OpenSSL, in a library context of the provider's own.
// The provider runs inside other programs' processes, and an OpenSSL host may have set an engine
// as its default RSA/EC implementation (openssl -engine pkcs11, libp11): in the default context the
// check would then go through that engine, i.e. back into this very module, or fail. A private
// OSSL_LIB_CTX with only the default provider sees none of the host's configuration.
// (It keeps its own OpenSSL calls rather than core's VerifyDigestSignature: with libp11 as the
// default EC engine, the core path failed ECDSA checks in the engine smoke test; not yet understood.)
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/provider.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include <array>
#include <map>
#include <memory>
#include <mutex>

#include "signum/core/crypto.h"  // EcdsaRawToDer: raw r||s (PKCS#11's form) to DER
#include "signum/provider/signature_check.h"

namespace signum::provider {
namespace {

struct PkeyFree {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
};
struct PkeyCtxFree {
  void operator()(EVP_PKEY_CTX* p) const { EVP_PKEY_CTX_free(p); }
};

// One private context for the life of the process (never freed: provider code may still run
// from atexit handlers of the host).
OSSL_LIB_CTX* PrivateContext() {
  static OSSL_LIB_CTX* context = [] {
    OSSL_LIB_CTX* c = OSSL_LIB_CTX_new();
    if (c != nullptr) OSSL_PROVIDER_load(c, "default");
    return c;
  }();
  return context;
}

// What each check would otherwise redo (issue 12: decoding the SPKI was 60% of the provider's
// instructions per ECDSA signature, fetching the digest by name another few percent):
//  - the certificate's public key, decoded once. Keyed by the SPKI DER itself, so no invalidation
//    is needed: a certificate with another key is another entry, and an entry is never wrong for
//    its bytes. Bounded: at kMaxKeys entries the cache starts over (a token lists a handful of
//    keys; a refresh that replaces them all just refills it).
//  - each digest, fetched once in the private context (EVP_MD objects are immutable and shared).
// EVP_PKEY and EVP_MD may be used by several threads at once for verification; each check makes
// its own EVP_PKEY_CTX.
class VerificationCache {
 public:
  static VerificationCache& Get() {
    static VerificationCache* cache = new VerificationCache;  // never destroyed (see above)
    return *cache;
  }

  std::shared_ptr<EVP_PKEY> Key(const Bytes& spki) {
    {
      std::lock_guard lock(mu_);
      auto it = keys_.find(spki);
      if (it != keys_.end()) return it->second;
    }
    const unsigned char* p = spki.data();
    std::shared_ptr<EVP_PKEY> key(
        d2i_PUBKEY_ex(nullptr, &p, static_cast<long>(spki.size()), PrivateContext(), nullptr),
        PkeyFree());
    if (!key) return nullptr;
    std::lock_guard lock(mu_);
    if (keys_.size() >= kMaxKeys) keys_.clear();
    keys_.emplace(spki, key);
    return key;
  }

  const EVP_MD* Md(HashAlgorithm hash) {
    const size_t index = static_cast<size_t>(hash);
    if (index >= mds_.size()) return nullptr;
    std::lock_guard lock(mu_);
    if (mds_[index] == nullptr) {
      // OpenSSL's fetch names are case-insensitive: "sha256" is SHA2-256.
      const std::string name(GetHashInfo(hash).name);
      mds_[index] = EVP_MD_fetch(PrivateContext(), name.c_str(), nullptr);
    }
    return mds_[index];
  }

  static constexpr size_t kMaxKeys = 64;

 private:
  std::mutex mu_;
  std::map<Bytes, std::shared_ptr<EVP_PKEY>> keys_;
  std::array<EVP_MD*, 16> mds_{};  // by HashAlgorithm; fetched once, kept for the process
};

}  // namespace

Result<bool> SignatureVerifiesWithCertificateKey(const ProviderCertificate& certificate,
                                                 const DigestToSign& request, ByteView signature) {
  auto cannot_check = [](const std::string& why) { return InternalError(why); };
  OSSL_LIB_CTX* context = PrivateContext();
  if (context == nullptr) return cannot_check("no OpenSSL library context");
  VerificationCache& cache = VerificationCache::Get();
  std::shared_ptr<EVP_PKEY> key = cache.Key(certificate.certificate.SpkiDer());
  if (!key) return cannot_check("OpenSSL cannot read the certificate's public key");
  const EVP_MD* md = cache.Md(request.hash);
  std::unique_ptr<EVP_PKEY_CTX, PkeyCtxFree> ctx(
      EVP_PKEY_CTX_new_from_pkey(context, key.get(), nullptr));
  if (!ctx || md == nullptr || EVP_PKEY_verify_init(ctx.get()) != 1) {
    return cannot_check("OpenSSL cannot set up the verification");
  }
  Bytes der_signature;
  ByteView to_verify = signature;
  bool configured = true;
  switch (request.scheme) {
    case SignatureScheme::kRsaPkcs1:
      configured = EVP_PKEY_CTX_set_rsa_padding(ctx.get(), RSA_PKCS1_PADDING) == 1 &&
                   EVP_PKEY_CTX_set_signature_md(ctx.get(), md) == 1;
      break;
    case SignatureScheme::kRsaPss:
      configured =
          EVP_PKEY_CTX_set_rsa_padding(ctx.get(), RSA_PKCS1_PSS_PADDING) == 1 &&
          EVP_PKEY_CTX_set_signature_md(ctx.get(), md) == 1 &&
          EVP_PKEY_CTX_set_rsa_mgf1_md(ctx.get(), md) == 1 &&
          EVP_PKEY_CTX_set_rsa_pss_saltlen(
              ctx.get(), static_cast<int>(request.pss_salt_length.value_or(
                             GetHashInfo(request.hash).digest_size))) == 1;
      break;
    case SignatureScheme::kEcdsa: {
      auto der = EcdsaRawToDer(signature);
      if (!der.ok()) return cannot_check(der.status().message());
      der_signature = std::move(*der);
      to_verify = der_signature;
      break;
    }
  }
  if (!configured) return cannot_check("OpenSSL refused the padding parameters");
  return EVP_PKEY_verify(ctx.get(), to_verify.data(), to_verify.size(), request.digest.data(),
                         request.digest.size()) == 1;
}

}  // namespace signum::provider

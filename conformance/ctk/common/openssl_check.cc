#include "openssl_check.h"

#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include <memory>

#include "signum/core/crypto.h"  // Digest, EvpMd

namespace signum::conformance::ctk {
namespace {

struct Free {
  void operator()(X509* p) const { X509_free(p); }
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
  void operator()(EVP_PKEY_CTX* p) const { EVP_PKEY_CTX_free(p); }
  void operator()(ECDSA_SIG* p) const { ECDSA_SIG_free(p); }
};
template <typename T>
using Owned = std::unique_ptr<T, Free>;

std::string OpenSslError(const std::string& what) {
  std::string text = what;
  unsigned long code;
  while ((code = ERR_get_error()) != 0) {
    char buffer[256];
    ERR_error_string_n(code, buffer, sizeof buffer);
    text += std::string(": ") + buffer;
  }
  return text;
}

Owned<X509> ParseX509(ByteView der) {
  const unsigned char* p = der.data();
  return Owned<X509>(d2i_X509(nullptr, &p, static_cast<long>(der.size())));
}

}  // namespace

std::optional<CertificateFacts> ReadCertificate(ByteView der, std::string* error) {
  Owned<X509> x509 = ParseX509(der);
  if (!x509) {
    *error = OpenSslError("d2i_X509");
    return std::nullopt;
  }
  CertificateFacts facts;
  facts.der.assign(der.begin(), der.end());
  facts.sha1 = Digest(HashAlgorithm::kSha1, der);
  EVP_PKEY* key = X509_get0_pubkey(x509.get());
  if (key == nullptr) {
    *error = OpenSslError("X509_get0_pubkey");
    return std::nullopt;
  }
  facts.bits = EVP_PKEY_get_bits(key);
  facts.type = EVP_PKEY_get_base_id(key) == EVP_PKEY_RSA ? KeyType::kRsa : KeyType::kEc;
  // i2d_PublicKey: RSAPublicKey for RSA, the (uncompressed) point for EC: Apple's formats.
  const int length = i2d_PublicKey(key, nullptr);
  if (length <= 0) {
    *error = OpenSslError("i2d_PublicKey");
    return std::nullopt;
  }
  facts.public_key_data.resize(static_cast<size_t>(length));
  unsigned char* p = facts.public_key_data.data();
  i2d_PublicKey(key, &p);
  return facts;
}

std::string VerifySignature(ByteView certificate_der, SignatureScheme scheme, HashAlgorithm hash,
                            ByteView digest, ByteView signature) {
  Owned<X509> x509 = ParseX509(certificate_der);
  if (!x509) return OpenSslError("d2i_X509");
  Owned<EVP_PKEY_CTX> ctx(EVP_PKEY_CTX_new(X509_get0_pubkey(x509.get()), nullptr));
  if (!ctx || EVP_PKEY_verify_init(ctx.get()) != 1) return OpenSslError("EVP_PKEY_verify_init");
  // ECDSA takes the digest's leftmost bits whatever its hash (X9.62), and OpenSSL would insist on
  // the named hash's length: the any-length checks sign 40-byte inputs. RSA needs the hash.
  bool set =
      scheme == SignatureScheme::kEcdsa || EVP_PKEY_CTX_set_signature_md(ctx.get(), EvpMd(hash)) == 1;
  if (scheme == SignatureScheme::kRsaPkcs1) {
    set = set && EVP_PKEY_CTX_set_rsa_padding(ctx.get(), RSA_PKCS1_PADDING) == 1;
  } else if (scheme == SignatureScheme::kRsaPss) {
    set = set && EVP_PKEY_CTX_set_rsa_padding(ctx.get(), RSA_PKCS1_PSS_PADDING) == 1 &&
          EVP_PKEY_CTX_set_rsa_mgf1_md(ctx.get(), EvpMd(hash)) == 1 &&
          EVP_PKEY_CTX_set_rsa_pss_saltlen(ctx.get(), RSA_PSS_SALTLEN_DIGEST) == 1;
  }
  if (!set) return OpenSslError("setting the verification parameters");
  const int verdict =
      EVP_PKEY_verify(ctx.get(), signature.data(), signature.size(), digest.data(), digest.size());
  if (verdict == 1) return "";
  return OpenSslError("OpenSSL does not verify the " + std::to_string(signature.size()) +
                      "-byte signature over the " + std::to_string(digest.size()) +
                      "-byte digest with the certificate's key");
}

std::string CheckCanonicalEcdsaDer(ByteView signature) {
  const unsigned char* p = signature.data();
  Owned<ECDSA_SIG> sig(d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(signature.size())));
  ERR_clear_error();
  if (!sig || p != signature.data() + signature.size()) {
    return std::to_string(signature.size()) +
           " bytes that are not one DER ECDSA-Sig-Value (raw r||s?)";
  }
  unsigned char* encoded = nullptr;
  const int length = i2d_ECDSA_SIG(sig.get(), &encoded);
  const bool same = length == static_cast<int>(signature.size()) &&
                    std::equal(signature.begin(), signature.end(), encoded);
  OPENSSL_free(encoded);
  return same ? "" : "DER ECDSA-Sig-Value that is not canonical";
}

}  // namespace signum::conformance::ctk

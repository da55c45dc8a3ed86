// OpenSSL 3 helpers shared by server, agent, providers and tests: digests, encodings, public keys,
// ECDSA signature formats, software keys and independent signature verification.
#pragma once

#include <openssl/evp.h>

#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "signum/core/algorithms.h"
#include "signum/core/bytes.h"
#include "signum/core/encoding.h"
#include "signum/core/status.h"

namespace signum {

struct EvpPkeyDeleter {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
};
using EvpPkeyPtr = std::unique_ptr<EVP_PKEY, EvpPkeyDeleter>;

// The OpenSSL error queue as text (and cleared), for error messages: "error:...; error:...".
std::string DrainOpenSslErrors();

// --- Digests ----------------------------------------------------------------------------------
const EVP_MD* EvpMd(HashAlgorithm hash);
Bytes Digest(HashAlgorithm hash, ByteView data);

// Multi-part digest; copyable state is not needed, so it is move-only.
class Hasher {
 public:
  explicit Hasher(HashAlgorithm hash);
  ~Hasher();
  Hasher(Hasher&&) noexcept;
  Hasher& operator=(Hasher&&) noexcept;
  Hasher(const Hasher&) = delete;
  Hasher& operator=(const Hasher&) = delete;

  void Update(ByteView data);
  Bytes Final();  // the hasher may not be used afterwards
  HashAlgorithm algorithm() const { return hash_; }

 private:
  HashAlgorithm hash_;
  EVP_MD_CTX* ctx_ = nullptr;
};

// --- Encodings --------------------------------------------------------------------------------
// Base64Encode/Decode and HexEncode/Decode live in encoding.h (OpenSSL-free).
Bytes RandomBytes(size_t count);  // from OpenSSL's CSPRNG
// Compares in constant time (for secrets such as tokens).
bool ConstantTimeEquals(ByteView a, ByteView b);

// --- ECDSA signature formats -------------------------------------------------------------------
// PKCS#11 and P1363 use raw r||s, each left-padded to the field size; X.509/CMS use DER.
Result<Bytes> EcdsaRawToDer(ByteView raw);
Result<Bytes> EcdsaDerToRaw(ByteView der, size_t field_size);

// --- Public keys --------------------------------------------------------------------------------
class PublicKey {
 public:
  static Result<PublicKey> FromSpkiDer(ByteView spki_der);
  static Result<PublicKey> FromPem(std::string_view pem);  // "-----BEGIN PUBLIC KEY-----"
  static Result<PublicKey> FromRsaComponents(ByteView modulus, ByteView public_exponent);
  // point: X9.62 uncompressed point (04 || X || Y), *not* wrapped in an OCTET STRING.
  static Result<PublicKey> FromEcPoint(EcCurve curve, ByteView point);
  // Reads pkey's public half (pkey itself is not kept: see Make).
  static Result<PublicKey> FromEvpPkey(EVP_PKEY* pkey);

  KeySpec spec() const { return spec_; }
  KeyType type() const { return spec_.type; }
  EVP_PKEY* get() const { return pkey_.get(); }
  // The encodings below are read once, when the key is made (where a failure is an error the
  // caller sees), so these getters cannot fail later: an EVP_PKEY that OpenSSL bound to a
  // default engine (`openssl -engine pkcs11` in the host) may refuse provider-style queries.
  const Bytes& SpkiDer() const { return encodings_->spki_der; }
  std::string Pem() const;
  const Bytes& RsaModulus() const { return encodings_->rsa_modulus; }  // big-endian, no leading 0
  const Bytes& RsaPublicExponent() const { return encodings_->rsa_exponent; }  // big-endian
  const Bytes& EcPoint() const { return encodings_->ec_point; }  // uncompressed (04 || X || Y)
  // A stable binary identifier for the key: SHA-1 over the RSA modulus or the EC point, the way
  // NSS and OpenSC derive CKA_ID.
  Bytes KeyId() const;

 private:
  struct Encodings {
    Bytes spki_der;
    Bytes rsa_modulus, rsa_exponent;  // RSA only
    Bytes ec_point;                   // EC only
  };
  PublicKey(EvpPkeyPtr pkey, KeySpec spec, std::shared_ptr<const Encodings> encodings)
      : pkey_(std::move(pkey)), spec_(spec), encodings_(std::move(encodings)) {}
  // Every factory ends here: the spec and the encodings, from an engine-free copy of the key.
  static Result<PublicKey> Make(EvpPkeyPtr pkey);
  std::shared_ptr<EVP_PKEY> pkey_;
  KeySpec spec_;
  std::shared_ptr<const Encodings> encodings_;
};

// One DER TLV (tag, definite-form length, content), for the few hand-built encodings.
void AppendDerTlv(Bytes& out, uint8_t tag, ByteView content);

// CKA_EC_POINT is a DER OCTET STRING holding the point; these convert both ways.
Bytes WrapEcPointOctetString(ByteView point);
Result<Bytes> UnwrapEcPointOctetString(ByteView der);

// Verifies a signature over a digest, independently of whoever made it (OpenSSL EVP_PKEY_verify).
// ECDSA signatures are raw r||s (the PKCS#11 / Signum wire format). pss_salt_length defaults to
// the digest length.
Status VerifyDigestSignature(const PublicKey& key, SignatureScheme scheme, HashAlgorithm hash,
                             ByteView digest, ByteView signature,
                             std::optional<size_t> pss_salt_length = std::nullopt);

// --- Signers ---------------------------------------------------------------------------------
// Anything that can sign a digest: an HSM key, or a software key (demo CA). Signatures come back
// in the raw wire form: PKCS#1 v1.5 / PSS bytes, or ECDSA raw r||s.
class DigestSigner {
 public:
  virtual ~DigestSigner() = default;
  virtual const PublicKey& public_key() const = 0;
  virtual Result<Bytes> SignDigest(SignatureScheme scheme, HashAlgorithm hash, ByteView digest,
                                   std::optional<size_t> pss_salt_length) = 0;
};

// A private key held in memory (used for the demo CA, never for Signum's signing keys).
class SoftwareKey : public DigestSigner {
 public:
  static Result<std::unique_ptr<SoftwareKey>> Generate(KeySpec spec);
  static Result<std::unique_ptr<SoftwareKey>> FromPem(std::string_view pkcs8_pem);
  std::string PrivateKeyPem() const;  // unencrypted PKCS#8
  EVP_PKEY* get() const { return pkey_.get(); }

  const PublicKey& public_key() const override { return public_key_; }
  Result<Bytes> SignDigest(SignatureScheme scheme, HashAlgorithm hash, ByteView digest,
                           std::optional<size_t> pss_salt_length) override;

 private:
  SoftwareKey(EvpPkeyPtr pkey, PublicKey pub)
      : pkey_(std::move(pkey)), public_key_(std::move(pub)) {}
  EvpPkeyPtr pkey_;
  PublicKey public_key_;
};

}  // namespace signum

#include "signum/core/crypto.h"

#include "openssl_ptr.h"
#include "signum/core/encoding.h"

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include <openssl/provider.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include <climits>
#include <cstdio>
#include <cstdlib>

namespace signum {
namespace {

using namespace internal;  // OpenSslPtr, BioPtr, BnPtr, MemBio, BioToString, Fatal, OpenSslError
using EvpPkeyCtxPtr = OpenSslPtr<EVP_PKEY_CTX, EVP_PKEY_CTX_free>;
using EcdsaSigPtr = OpenSslPtr<ECDSA_SIG, ECDSA_SIG_free>;
using ParamBldPtr = OpenSslPtr<OSSL_PARAM_BLD, OSSL_PARAM_BLD_free>;
using ParamPtr = OpenSslPtr<OSSL_PARAM, OSSL_PARAM_free>;

// A library context of Signum's own with only OpenSSL's default provider, for public keys and
// verification. Providers run inside other programs, and a host may have made an engine the
// default RSA/EC implementation (openssl -engine pkcs11, libp11): in the default context key
// queries could then fail and verification would go through that engine, i.e. possibly back into
// our own PKCS#11 module. Nothing the host configures reaches this one. Made once and never freed
// (provider code may still run from the host's atexit handlers).
OSSL_LIB_CTX* PrivateLibraryContext() {
  static OSSL_LIB_CTX* const context = [] {
    OSSL_LIB_CTX* c = OSSL_LIB_CTX_new();
    if (c != nullptr && OSSL_PROVIDER_load(c, "default") == nullptr) {
      OSSL_LIB_CTX_free(c);
      return static_cast<OSSL_LIB_CTX*>(nullptr);
    }
    return c;
  }();
  return context;
}

Bytes BnToBytes(const BIGNUM* bn) {
  Bytes out(static_cast<size_t>(BN_num_bytes(bn)));
  BN_bn2bin(bn, out.data());
  return out;
}

// DER length octets (X.690 §8.1.3), definite form.
void AppendDerLength(Bytes& out, size_t len) {
  if (len < 0x80) {
    out.push_back(static_cast<uint8_t>(len));
    return;
  }
  uint8_t tmp[sizeof(size_t)];
  size_t n = 0;
  while (len > 0) {
    tmp[n++] = static_cast<uint8_t>(len & 0xff);
    len >>= 8;
  }
  out.push_back(static_cast<uint8_t>(0x80 | n));
  while (n > 0) out.push_back(tmp[--n]);
}

Result<KeySpec> SpecOfKey(EVP_PKEY* pkey) {
  KeySpec spec;
  switch (EVP_PKEY_get_base_id(pkey)) {
    case EVP_PKEY_RSA:
      spec.type = KeyType::kRsa;
      spec.rsa_bits = EVP_PKEY_get_bits(pkey);
      if (spec.rsa_bits <= 0) return InvalidArgumentError("RSA key without a modulus size");
      return spec;
    case EVP_PKEY_EC: {
      char name[64] = {};
      size_t len = 0;
      if (EVP_PKEY_get_utf8_string_param(pkey, OSSL_PKEY_PARAM_GROUP_NAME, name, sizeof(name),
                                         &len) != 1) {
        ERR_clear_error();
        return InvalidArgumentError("EC key without a named curve (explicit parameters?)");
      }
      const std::string_view group(name, len);
      for (const CurveInfo& c : AllCurves()) {
        if (group == c.openssl_name) {
          spec.type = KeyType::kEc;
          spec.curve = c.curve;
          return spec;
        }
      }
      // OpenSSL normally reports its own short names, but providers may use NIST names.
      Result<EcCurve> curve = ParseCurve(group);
      if (!curve.ok()) {
        return InvalidArgumentError("unsupported EC curve '" + std::string(group) +
                                    "' (expected P-256, P-384 or P-521)");
      }
      spec.type = KeyType::kEc;
      spec.curve = *curve;
      return spec;
    }
    default:
      return InvalidArgumentError(std::string("unsupported key type '") +
                                  EVP_PKEY_get0_type_name(pkey) + "' (expected RSA or EC)");
  }
}

Status CheckDigest(HashAlgorithm hash, ByteView digest) {
  const HashInfo& info = GetHashInfo(hash);
  if (digest.size() != info.digest_size) {
    return InvalidArgumentError("a " + std::string(info.name) + " digest has " +
                                std::to_string(info.digest_size) + " bytes, got " +
                                std::to_string(digest.size()));
  }
  return Status::Ok();
}

Status CheckSchemeFitsKey(SignatureScheme scheme, const KeySpec& spec) {
  if (!SchemeFitsKey(scheme, spec.type)) {
    return InvalidArgumentError("signature scheme " + std::string(SchemeName(scheme)) +
                                " does not fit a " + spec.Name() + " key");
  }
  return Status::Ok();
}

Result<int> PssSaltLength(const KeySpec& spec, HashAlgorithm hash, std::optional<size_t> salt) {
  const size_t value = salt.value_or(DefaultPssSaltLength(hash));
  const size_t max = MaxPssSaltLength(spec.rsa_bits, hash);
  if (value > max) {
    return InvalidArgumentError("PSS salt length " + std::to_string(value) +
                                " exceeds the maximum " + std::to_string(max) + " for a " +
                                spec.Name() + " key and " + std::string(HashName(hash)));
  }
  return static_cast<int>(value);
}

// Sets padding, hash and salt on a sign or verify context that was already initialised.
Status ConfigureSignatureContext(EVP_PKEY_CTX* ctx, const KeySpec& spec, SignatureScheme scheme,
                                 HashAlgorithm hash, std::optional<size_t> pss_salt_length) {
  const EVP_MD* md = EvpMd(hash);
  if (EVP_PKEY_CTX_set_signature_md(ctx, md) <= 0) {
    return OpenSslError(ErrorCode::kInternal, "cannot set the signature hash");
  }
  if (scheme == SignatureScheme::kRsaPkcs1) {
    if (EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PADDING) <= 0) {
      return OpenSslError(ErrorCode::kInternal, "cannot select PKCS#1 v1.5 padding");
    }
  } else if (scheme == SignatureScheme::kRsaPss) {
    SIGNUM_ASSIGN_OR_RETURN(int salt, PssSaltLength(spec, hash, pss_salt_length));
    if (EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PSS_PADDING) <= 0 ||
        EVP_PKEY_CTX_set_rsa_mgf1_md(ctx, md) <= 0 ||
        EVP_PKEY_CTX_set_rsa_pss_saltlen(ctx, salt) <= 0) {
      return OpenSslError(ErrorCode::kInternal, "cannot configure PSS");
    }
  }
  return Status::Ok();
}

}  // namespace

std::string DrainOpenSslErrors() {
  std::string out;
  const char* data = nullptr;
  int flags = 0;
  unsigned long err;
  while ((err = ERR_get_error_all(nullptr, nullptr, nullptr, &data, &flags)) != 0) {
    char buf[256];
    ERR_error_string_n(err, buf, sizeof(buf));
    if (!out.empty()) out += "; ";
    out += buf;
    if ((flags & ERR_TXT_STRING) != 0 && data != nullptr && *data != '\0') {
      out += " (";
      out += data;
      out += ")";
    }
  }
  return out;
}

// --- Digests ----------------------------------------------------------------------------------

const EVP_MD* EvpMd(HashAlgorithm hash) {
  switch (hash) {
    case HashAlgorithm::kSha1:
      return EVP_sha1();
    case HashAlgorithm::kSha224:
      return EVP_sha224();
    case HashAlgorithm::kSha256:
      return EVP_sha256();
    case HashAlgorithm::kSha384:
      return EVP_sha384();
    case HashAlgorithm::kSha512:
      return EVP_sha512();
  }
  return nullptr;
}

Bytes Digest(HashAlgorithm hash, ByteView data) {
  Bytes out(GetHashInfo(hash).digest_size);
  unsigned int len = 0;
  if (EVP_Digest(data.data(), data.size(), out.data(), &len, EvpMd(hash), nullptr) != 1 ||
      len != out.size()) {
    Fatal("EVP_Digest");
  }
  return out;
}

Hasher::Hasher(HashAlgorithm hash) : hash_(hash), ctx_(EVP_MD_CTX_new()) {
  if (ctx_ == nullptr || EVP_DigestInit_ex(ctx_, EvpMd(hash), nullptr) != 1) {
    Fatal("EVP_DigestInit_ex");
  }
}

Hasher::~Hasher() { EVP_MD_CTX_free(ctx_); }

Hasher::Hasher(Hasher&& other) noexcept : hash_(other.hash_), ctx_(other.ctx_) {
  other.ctx_ = nullptr;
}

Hasher& Hasher::operator=(Hasher&& other) noexcept {
  if (this != &other) {
    EVP_MD_CTX_free(ctx_);
    hash_ = other.hash_;
    ctx_ = other.ctx_;
    other.ctx_ = nullptr;
  }
  return *this;
}

void Hasher::Update(ByteView data) {
  if (ctx_ == nullptr) Fatal("Hasher::Update after Final or move");
  if (EVP_DigestUpdate(ctx_, data.data(), data.size()) != 1) Fatal("EVP_DigestUpdate");
}

Bytes Hasher::Final() {
  if (ctx_ == nullptr) Fatal("Hasher::Final after Final or move");
  Bytes out(GetHashInfo(hash_).digest_size);
  unsigned int len = 0;
  if (EVP_DigestFinal_ex(ctx_, out.data(), &len) != 1 || len != out.size()) {
    Fatal("EVP_DigestFinal_ex");
  }
  EVP_MD_CTX_free(ctx_);
  ctx_ = nullptr;
  return out;
}

// --- Encodings --------------------------------------------------------------------------------

Bytes RandomBytes(size_t count) {
  Bytes out(count);
  if (count > 0 && RAND_bytes(out.data(), static_cast<int>(count)) != 1) Fatal("RAND_bytes");
  return out;
}

bool ConstantTimeEquals(ByteView a, ByteView b) {
  // Lengths are not secret; only the contents are compared in constant time.
  if (a.size() != b.size()) return false;
  if (a.empty()) return true;
  return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

// --- ECDSA signature formats -------------------------------------------------------------------

Result<Bytes> EcdsaRawToDer(ByteView raw) {
  if (raw.empty() || raw.size() % 2 != 0) {
    return InvalidArgumentError("raw ECDSA signature must be r||s of equal halves, got " +
                                std::to_string(raw.size()) + " bytes");
  }
  const size_t half = raw.size() / 2;
  BnPtr r(BN_bin2bn(raw.data(), static_cast<int>(half), nullptr));
  BnPtr s(BN_bin2bn(raw.data() + half, static_cast<int>(half), nullptr));
  EcdsaSigPtr sig(ECDSA_SIG_new());
  if (!r || !s || !sig || ECDSA_SIG_set0(sig.get(), r.get(), s.get()) != 1) {
    return OpenSslError(ErrorCode::kInternal, "cannot build ECDSA_SIG");
  }
  r.release();  // owned by sig now
  s.release();
  unsigned char* der = nullptr;
  const int len = i2d_ECDSA_SIG(sig.get(), &der);
  if (len <= 0) return OpenSslError(ErrorCode::kInternal, "cannot encode ECDSA signature");
  Bytes out(der, der + len);
  OPENSSL_free(der);
  return out;
}

Result<Bytes> EcdsaDerToRaw(ByteView der, size_t field_size) {
  if (field_size == 0) return InvalidArgumentError("ECDSA field size must not be zero");
  const unsigned char* p = der.data();
  EcdsaSigPtr sig(d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(der.size())));
  if (!sig) {
    ERR_clear_error();
    return InvalidArgumentError("not a DER ECDSA signature");
  }
  if (p != der.data() + der.size()) {
    return InvalidArgumentError("trailing bytes after DER ECDSA signature");
  }
  const BIGNUM* r = nullptr;
  const BIGNUM* s = nullptr;
  ECDSA_SIG_get0(sig.get(), &r, &s);
  for (const BIGNUM* v : {r, s}) {
    if (BN_is_negative(v)) return InvalidArgumentError("negative value in ECDSA signature");
    if (static_cast<size_t>(BN_num_bytes(v)) > field_size) {
      return InvalidArgumentError("ECDSA signature value longer than the field size " +
                                  std::to_string(field_size));
    }
  }
  Bytes out(2 * field_size);
  if (BN_bn2binpad(r, out.data(), static_cast<int>(field_size)) < 0 ||
      BN_bn2binpad(s, out.data() + field_size, static_cast<int>(field_size)) < 0) {
    return OpenSslError(ErrorCode::kInternal, "cannot encode raw ECDSA signature");
  }
  return out;
}

// --- Public keys --------------------------------------------------------------------------------

Result<PublicKey> PublicKey::FromSpkiDer(ByteView spki_der) {
  ERR_clear_error();
  const unsigned char* p = spki_der.data();
  // Straight into Signum's own library context: the host's engines never see the key.
  EvpPkeyPtr pkey(d2i_PUBKEY_ex(nullptr, &p, static_cast<long>(spki_der.size()),
                                PrivateLibraryContext(), nullptr));
  if (!pkey) return OpenSslError(ErrorCode::kInvalidArgument, "not a DER SubjectPublicKeyInfo");
  if (p != spki_der.data() + spki_der.size()) {
    return InvalidArgumentError("trailing bytes after SubjectPublicKeyInfo");
  }
  return Make(std::move(pkey));
}

Result<PublicKey> PublicKey::FromPem(std::string_view pem) {
  ERR_clear_error();
  BioPtr bio = MemBio(pem);
  if (!bio) return OpenSslError(ErrorCode::kInternal, "cannot create BIO");
  EvpPkeyPtr pkey(
      PEM_read_bio_PUBKEY_ex(bio.get(), nullptr, nullptr, nullptr, PrivateLibraryContext(), nullptr));
  if (!pkey) {
    return OpenSslError(ErrorCode::kInvalidArgument, "no PEM \"PUBLIC KEY\" could be read");
  }
  return Make(std::move(pkey));
}

Result<PublicKey> PublicKey::FromRsaComponents(ByteView modulus, ByteView public_exponent) {
  ERR_clear_error();
  BnPtr n(BN_bin2bn(modulus.data(), static_cast<int>(modulus.size()), nullptr));
  BnPtr e(BN_bin2bn(public_exponent.data(), static_cast<int>(public_exponent.size()), nullptr));
  if (!n || !e) return OpenSslError(ErrorCode::kInternal, "cannot allocate RSA components");
  if (BN_is_zero(n.get()) || BN_is_zero(e.get())) {
    return InvalidArgumentError("RSA modulus and public exponent must not be zero");
  }
  ParamBldPtr bld(OSSL_PARAM_BLD_new());
  if (!bld || OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_N, n.get()) != 1 ||
      OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_E, e.get()) != 1) {
    return OpenSslError(ErrorCode::kInternal, "cannot build RSA parameters");
  }
  ParamPtr params(OSSL_PARAM_BLD_to_param(bld.get()));
  EvpPkeyCtxPtr ctx(EVP_PKEY_CTX_new_from_name(PrivateLibraryContext(), "RSA", nullptr));
  EVP_PKEY* raw = nullptr;
  if (!params || !ctx || EVP_PKEY_fromdata_init(ctx.get()) != 1 ||
      EVP_PKEY_fromdata(ctx.get(), &raw, EVP_PKEY_PUBLIC_KEY, params.get()) != 1) {
    return OpenSslError(ErrorCode::kInvalidArgument, "cannot build an RSA public key");
  }
  EvpPkeyPtr pkey(raw);
  // Catches even moduli, exponent 1 and similar nonsense a token might hand us.
  EvpPkeyCtxPtr check(EVP_PKEY_CTX_new_from_pkey(nullptr, pkey.get(), nullptr));
  if (!check || EVP_PKEY_public_check(check.get()) != 1) {
    return OpenSslError(ErrorCode::kInvalidArgument, "invalid RSA public key");
  }
  return Make(std::move(pkey));
}

Result<PublicKey> PublicKey::FromEcPoint(EcCurve curve, ByteView point) {
  ERR_clear_error();
  const CurveInfo& info = GetCurveInfo(curve);
  if (point.size() != 1 + 2 * info.field_size || point[0] != 0x04) {
    return InvalidArgumentError("an uncompressed " + std::string(info.name) + " point has " +
                                std::to_string(1 + 2 * info.field_size) +
                                " bytes starting with 04, got " + std::to_string(point.size()) +
                                " bytes");
  }
  const std::string group(info.openssl_name);
  ParamBldPtr bld(OSSL_PARAM_BLD_new());
  if (!bld ||
      OSSL_PARAM_BLD_push_utf8_string(bld.get(), OSSL_PKEY_PARAM_GROUP_NAME, group.c_str(), 0) !=
          1 ||
      OSSL_PARAM_BLD_push_octet_string(bld.get(), OSSL_PKEY_PARAM_PUB_KEY, point.data(),
                                       point.size()) != 1) {
    return OpenSslError(ErrorCode::kInternal, "cannot build EC parameters");
  }
  ParamPtr params(OSSL_PARAM_BLD_to_param(bld.get()));
  EvpPkeyCtxPtr ctx(EVP_PKEY_CTX_new_from_name(PrivateLibraryContext(), "EC", nullptr));
  EVP_PKEY* raw = nullptr;
  if (!params || !ctx || EVP_PKEY_fromdata_init(ctx.get()) != 1 ||
      EVP_PKEY_fromdata(ctx.get(), &raw, EVP_PKEY_PUBLIC_KEY, params.get()) != 1) {
    return OpenSslError(ErrorCode::kInvalidArgument,
                        "invalid " + std::string(info.name) + " public point");
  }
  EvpPkeyPtr pkey(raw);
  EvpPkeyCtxPtr check(EVP_PKEY_CTX_new_from_pkey(nullptr, pkey.get(), nullptr));
  if (!check || EVP_PKEY_public_check(check.get()) != 1) {
    return OpenSslError(ErrorCode::kInvalidArgument, "point is not on " + std::string(info.name));
  }
  return Make(std::move(pkey));
}

Result<PublicKey> PublicKey::FromEvpPkey(EVP_PKEY* pkey) {
  if (pkey == nullptr) return InvalidArgumentError("no key");
  // Make reads the key and keeps its own copy; the reference taken here ends with it.
  if (EVP_PKEY_up_ref(pkey) != 1) return OpenSslError(ErrorCode::kInternal, "EVP_PKEY_up_ref");
  return Make(EvpPkeyPtr(pkey));
}

Result<PublicKey> PublicKey::Make(EvpPkeyPtr pkey) {
  OSSL_LIB_CTX* context = PrivateLibraryContext();
  if (context == nullptr) return InternalError("OpenSSL cannot make a library context");
  ERR_clear_error();
  auto encodings = std::make_shared<Encodings>();
  unsigned char* der = nullptr;
  const int len = i2d_PUBKEY(pkey.get(), &der);
  if (len <= 0) return OpenSslError(ErrorCode::kInvalidArgument, "cannot encode the public key");
  encodings->spki_der.assign(der, der + len);
  OPENSSL_free(der);
  // Read back in a library context of our own, which no engine or configuration reaches: the
  // spec and components then come from OpenSSL's own providers whatever the host configured.
  const unsigned char* p = encodings->spki_der.data();
  EvpPkeyPtr native(d2i_PUBKEY_ex(nullptr, &p, len, context, nullptr));
  if (!native) return OpenSslError(ErrorCode::kInvalidArgument, "cannot read the public key back");
  SIGNUM_ASSIGN_OR_RETURN(KeySpec spec, SpecOfKey(native.get()));
  if (spec.type == KeyType::kRsa) {
    BIGNUM* n = nullptr;
    BIGNUM* e = nullptr;
    const bool read = EVP_PKEY_get_bn_param(native.get(), OSSL_PKEY_PARAM_RSA_N, &n) == 1 &&
                      EVP_PKEY_get_bn_param(native.get(), OSSL_PKEY_PARAM_RSA_E, &e) == 1;
    BnPtr owned_n(n);
    BnPtr owned_e(e);
    if (!read) return OpenSslError(ErrorCode::kInvalidArgument, "cannot read the RSA components");
    encodings->rsa_modulus = BnToBytes(n);
    encodings->rsa_exponent = BnToBytes(e);
  } else {
    // OSSL_PKEY_PARAM_PUB_KEY keeps the encoding the key came in (possibly compressed), so the
    // uncompressed form is assembled from the affine coordinates.
    BIGNUM* x = nullptr;
    BIGNUM* y = nullptr;
    const bool read = EVP_PKEY_get_bn_param(native.get(), OSSL_PKEY_PARAM_EC_PUB_X, &x) == 1 &&
                      EVP_PKEY_get_bn_param(native.get(), OSSL_PKEY_PARAM_EC_PUB_Y, &y) == 1;
    BnPtr owned_x(x);
    BnPtr owned_y(y);
    if (!read) return OpenSslError(ErrorCode::kInvalidArgument, "cannot read the EC point");
    const size_t field = GetCurveInfo(spec.curve).field_size;
    Bytes point(1 + 2 * field);
    point[0] = 0x04;
    if (BN_bn2binpad(x, point.data() + 1, static_cast<int>(field)) < 0 ||
        BN_bn2binpad(y, point.data() + 1 + field, static_cast<int>(field)) < 0) {
      return OpenSslError(ErrorCode::kInvalidArgument, "EC point coordinates exceed the field");
    }
    encodings->ec_point = std::move(point);
  }
  // The engine-free copy is the one kept: verification with it cannot be routed through an engine
  // (with `-engine pkcs11`, back into a PKCS#11 module that may be our own).
  return PublicKey(std::move(native), spec, std::move(encodings));
}

std::string PublicKey::Pem() const {
  return PemEncode("PUBLIC KEY", SpkiDer());
}

Bytes PublicKey::KeyId() const {
  return Digest(HashAlgorithm::kSha1, type() == KeyType::kRsa ? RsaModulus() : EcPoint());
}

void AppendDerTlv(Bytes& out, uint8_t tag, ByteView content) {
  out.push_back(tag);
  AppendDerLength(out, content.size());
  out.insert(out.end(), content.begin(), content.end());
}

Bytes WrapEcPointOctetString(ByteView point) {
  Bytes out;
  out.reserve(point.size() + 4);
  AppendDerTlv(out, 0x04, point);
  return out;
}

Result<Bytes> UnwrapEcPointOctetString(ByteView der) {
  if (der.size() < 2 || der[0] != 0x04) {
    return InvalidArgumentError("CKA_EC_POINT is not a DER OCTET STRING");
  }
  size_t len = 0;
  size_t header = 2;
  if (der[1] < 0x80) {
    len = der[1];
  } else {
    const size_t n = der[1] & 0x7f;
    if (n == 0 || n > 2 || der.size() < 2 + n) {
      return InvalidArgumentError("bad OCTET STRING length in CKA_EC_POINT");
    }
    for (size_t i = 0; i < n; ++i) len = (len << 8) | der[2 + i];
    // DER demands the shortest length form.
    if (len < 0x80 || (n == 2 && len < 0x100)) {
      return InvalidArgumentError("non-minimal OCTET STRING length in CKA_EC_POINT");
    }
    header = 2 + n;
  }
  if (der.size() != header + len) {
    return InvalidArgumentError("CKA_EC_POINT OCTET STRING length " + std::to_string(len) +
                                " does not match its " + std::to_string(der.size() - header) +
                                " content bytes");
  }
  return Bytes(der.begin() + static_cast<std::ptrdiff_t>(header), der.end());
}

Status VerifyDigestSignature(const PublicKey& key, SignatureScheme scheme, HashAlgorithm hash,
                             ByteView digest, ByteView signature,
                             std::optional<size_t> pss_salt_length) {
  ERR_clear_error();
  const KeySpec spec = key.spec();
  SIGNUM_RETURN_IF_ERROR(CheckSchemeFitsKey(scheme, spec));
  SIGNUM_RETURN_IF_ERROR(CheckDigest(hash, digest));
  if (signature.size() != spec.SignatureSize()) {
    return InvalidArgumentError("signature does not verify: a " + spec.Name() + " signature has " +
                                std::to_string(spec.SignatureSize()) + " bytes, got " +
                                std::to_string(signature.size()));
  }
  Bytes der;
  if (scheme == SignatureScheme::kEcdsa) {
    SIGNUM_ASSIGN_OR_RETURN(der, EcdsaRawToDer(signature));
    signature = der;
  }
  // In the key's own (private) library context: see PublicKey::Make.
  EvpPkeyCtxPtr ctx(EVP_PKEY_CTX_new_from_pkey(PrivateLibraryContext(), key.get(), nullptr));
  if (!ctx || EVP_PKEY_verify_init(ctx.get()) != 1) {
    return OpenSslError(ErrorCode::kInternal, "cannot initialise signature verification");
  }
  SIGNUM_RETURN_IF_ERROR(ConfigureSignatureContext(ctx.get(), spec, scheme, hash, pss_salt_length));
  const int rc =
      EVP_PKEY_verify(ctx.get(), signature.data(), signature.size(), digest.data(), digest.size());
  if (rc != 1) {
    std::string errors = DrainOpenSslErrors();
    return InvalidArgumentError("signature does not verify: " + std::string(SchemeName(scheme)) +
                                "/" + std::string(HashName(hash)) + " with " + spec.Name() +
                                " key" + (errors.empty() ? "" : " (" + errors + ")"));
  }
  return Status::Ok();
}

// --- Software keys -------------------------------------------------------------------------------

namespace {

// The public half alone, so that a PublicKey handed around never carries private material.
Result<PublicKey> PublicHalf(EVP_PKEY* pkey) {
  unsigned char* der = nullptr;
  const int len = i2d_PUBKEY(pkey, &der);
  if (len <= 0) return OpenSslError(ErrorCode::kInternal, "cannot encode the public key");
  Bytes spki(der, der + len);
  OPENSSL_free(der);
  return PublicKey::FromSpkiDer(spki);
}

}  // namespace

Result<std::unique_ptr<SoftwareKey>> SoftwareKey::Generate(KeySpec spec) {
  ERR_clear_error();
  EVP_PKEY* raw = nullptr;
  if (spec.type == KeyType::kRsa) {
    if (spec.rsa_bits < 1024 || spec.rsa_bits > 16384) {
      return InvalidArgumentError("RSA key size " + std::to_string(spec.rsa_bits) +
                                  " is out of range (1024..16384)");
    }
    raw = EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", static_cast<size_t>(spec.rsa_bits));
  } else {
    const std::string group(GetCurveInfo(spec.curve).openssl_name);
    raw = EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", group.c_str());
  }
  if (raw == nullptr) {
    return OpenSslError(ErrorCode::kInternal, "cannot generate a " + spec.Name() + " key");
  }
  EvpPkeyPtr pkey(raw);
  SIGNUM_ASSIGN_OR_RETURN(PublicKey pub, PublicHalf(pkey.get()));
  return std::unique_ptr<SoftwareKey>(new SoftwareKey(std::move(pkey), std::move(pub)));
}

Result<std::unique_ptr<SoftwareKey>> SoftwareKey::FromPem(std::string_view pkcs8_pem) {
  ERR_clear_error();
  BioPtr bio = MemBio(pkcs8_pem);
  if (!bio) return OpenSslError(ErrorCode::kInternal, "cannot create BIO");
  // A callback that supplies no passphrase: OpenSSL's default would prompt on the terminal.
  pem_password_cb* no_passphrase = [](char*, int, int, void*) -> int { return -1; };
  EvpPkeyPtr pkey(PEM_read_bio_PrivateKey(bio.get(), nullptr, no_passphrase, nullptr));
  if (!pkey) {
    return OpenSslError(ErrorCode::kInvalidArgument,
                        "no unencrypted PEM private key could be read");
  }
  SIGNUM_ASSIGN_OR_RETURN(PublicKey pub, PublicHalf(pkey.get()));
  return std::unique_ptr<SoftwareKey>(new SoftwareKey(std::move(pkey), std::move(pub)));
}

std::string SoftwareKey::PrivateKeyPem() const {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio || PEM_write_bio_PKCS8PrivateKey(bio.get(), pkey_.get(), nullptr, nullptr, 0, nullptr,
                                            nullptr) != 1) {
    Fatal("PEM_write_bio_PKCS8PrivateKey");
  }
  return BioToString(bio.get());
}

Result<Bytes> SoftwareKey::SignDigest(SignatureScheme scheme, HashAlgorithm hash, ByteView digest,
                                      std::optional<size_t> pss_salt_length) {
  ERR_clear_error();
  const KeySpec spec = public_key_.spec();
  SIGNUM_RETURN_IF_ERROR(CheckSchemeFitsKey(scheme, spec));
  SIGNUM_RETURN_IF_ERROR(CheckDigest(hash, digest));
  EvpPkeyCtxPtr ctx(EVP_PKEY_CTX_new_from_pkey(nullptr, pkey_.get(), nullptr));
  if (!ctx || EVP_PKEY_sign_init(ctx.get()) != 1) {
    return OpenSslError(ErrorCode::kInternal, "cannot initialise signing");
  }
  SIGNUM_RETURN_IF_ERROR(ConfigureSignatureContext(ctx.get(), spec, scheme, hash, pss_salt_length));
  size_t len = 0;
  if (EVP_PKEY_sign(ctx.get(), nullptr, &len, digest.data(), digest.size()) != 1) {
    return OpenSslError(ErrorCode::kInternal, "cannot size the signature");
  }
  Bytes sig(len);
  if (EVP_PKEY_sign(ctx.get(), sig.data(), &len, digest.data(), digest.size()) != 1) {
    return OpenSslError(ErrorCode::kInternal, "signing failed");
  }
  sig.resize(len);
  if (scheme == SignatureScheme::kEcdsa) {
    return EcdsaDerToRaw(sig, GetCurveInfo(spec.curve).field_size);
  }
  return sig;
}

}  // namespace signum

#include "signum/core/encoding.h"
#include "signum/core/algorithms.h"

#include <algorithm>
#include <array>
#include <cctype>

namespace signum {
namespace {

// DER DigestInfo prefixes: SEQUENCE { SEQUENCE { OID, NULL }, OCTET STRING (digest) }.
constexpr uint8_t kSha1Prefix[] = {0x30, 0x21, 0x30, 0x09, 0x06, 0x05, 0x2b, 0x0e,
                                   0x03, 0x02, 0x1a, 0x05, 0x00, 0x04, 0x14};
constexpr uint8_t kSha224Prefix[] = {0x30, 0x2d, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01,
                                     0x65, 0x03, 0x04, 0x02, 0x04, 0x05, 0x00, 0x04, 0x1c};
constexpr uint8_t kSha256Prefix[] = {0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01,
                                     0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0x04, 0x20};
constexpr uint8_t kSha384Prefix[] = {0x30, 0x41, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01,
                                     0x65, 0x03, 0x04, 0x02, 0x02, 0x05, 0x00, 0x04, 0x30};
constexpr uint8_t kSha512Prefix[] = {0x30, 0x51, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01,
                                     0x65, 0x03, 0x04, 0x02, 0x03, 0x05, 0x00, 0x04, 0x40};

const std::array<HashInfo, 5> kHashes = {{
    {HashAlgorithm::kSha1, "sha1", 20, kSha1Prefix, CKM_SHA_1, CKG_MGF1_SHA1, CKM_SHA1_RSA_PKCS,
     CKM_SHA1_RSA_PKCS_PSS, CKM_ECDSA_SHA1, "SHA1", 0x8004},
    {HashAlgorithm::kSha224, "sha224", 28, kSha224Prefix, CKM_SHA224, CKG_MGF1_SHA224,
     CKM_SHA224_RSA_PKCS, CKM_SHA224_RSA_PKCS_PSS, CKM_ECDSA_SHA224, "", 0},
    {HashAlgorithm::kSha256, "sha256", 32, kSha256Prefix, CKM_SHA256, CKG_MGF1_SHA256,
     CKM_SHA256_RSA_PKCS, CKM_SHA256_RSA_PKCS_PSS, CKM_ECDSA_SHA256, "SHA256", 0x800c},
    {HashAlgorithm::kSha384, "sha384", 48, kSha384Prefix, CKM_SHA384, CKG_MGF1_SHA384,
     CKM_SHA384_RSA_PKCS, CKM_SHA384_RSA_PKCS_PSS, CKM_ECDSA_SHA384, "SHA384", 0x800d},
    {HashAlgorithm::kSha512, "sha512", 64, kSha512Prefix, CKM_SHA512, CKG_MGF1_SHA512,
     CKM_SHA512_RSA_PKCS, CKM_SHA512_RSA_PKCS_PSS, CKM_ECDSA_SHA512, "SHA512", 0x800e},
}};

// CKA_EC_PARAMS values: the DER OBJECT IDENTIFIER of each named curve.
constexpr uint8_t kP256Oid[] = {0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07};
constexpr uint8_t kP384Oid[] = {0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22};
constexpr uint8_t kP521Oid[] = {0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x23};

const std::array<CurveInfo, 3> kCurves = {{
    {EcCurve::kP256, "P-256", "prime256v1", 256, 32, kP256Oid},
    {EcCurve::kP384, "P-384", "secp384r1", 384, 48, kP384Oid},
    {EcCurve::kP521, "P-521", "secp521r1", 521, 66, kP521Oid},
}};

constexpr std::array<SignatureScheme, 3> kSchemes = {
    SignatureScheme::kRsaPkcs1, SignatureScheme::kRsaPss, SignatureScheme::kEcdsa};

const std::array<KeySpec, 6> kSupportedKeySpecs = {{
    {KeyType::kRsa, 2048, EcCurve::kP256},
    {KeyType::kRsa, 3072, EcCurve::kP256},
    {KeyType::kRsa, 4096, EcCurve::kP256},
    {KeyType::kEc, 0, EcCurve::kP256},
    {KeyType::kEc, 0, EcCurve::kP384},
    {KeyType::kEc, 0, EcCurve::kP521},
}};

}  // namespace

const std::span<const HashInfo> AllHashes() { return kHashes; }

const HashInfo& GetHashInfo(HashAlgorithm hash) { return kHashes[static_cast<size_t>(hash)]; }

std::string_view HashName(HashAlgorithm hash) { return GetHashInfo(hash).name; }

Result<HashAlgorithm> ParseHashAlgorithm(std::string_view name) {
  std::string n = AsciiLower(name);
  n.erase(std::remove(n.begin(), n.end(), '-'), n.end());
  for (const HashInfo& h : kHashes) {
    if (n == h.name) return h.algorithm;
  }
  return InvalidArgumentError("unknown hash algorithm '" + std::string(name) +
                              "' (expected sha1, sha224, sha256, sha384 or sha512)");
}

std::optional<HashAlgorithm> HashForDigestSize(size_t size) {
  for (const HashInfo& h : kHashes) {
    if (h.digest_size == size) return h.algorithm;
  }
  return std::nullopt;
}

std::optional<HashAlgorithm> HashForMechanism(CK_MECHANISM_TYPE digest_mechanism) {
  for (const HashInfo& h : kHashes) {
    if (h.ckm_digest == digest_mechanism) return h.algorithm;
  }
  return std::nullopt;
}

std::optional<HashAlgorithm> HashForCngAlgorithmId(std::string_view algorithm_id) {
  auto upper = [](char c) { return c >= 'a' && c <= 'z' ? static_cast<char>(c - 'a' + 'A') : c; };
  for (const HashInfo& h : kHashes) {
    if (h.cng_algorithm_id.empty() || h.cng_algorithm_id.size() != algorithm_id.size()) continue;
    if (std::equal(algorithm_id.begin(), algorithm_id.end(), h.cng_algorithm_id.begin(),
                   [&](char a, char b) { return upper(a) == b; })) {
      return h.algorithm;
    }
  }
  return std::nullopt;
}

std::optional<HashAlgorithm> HashForCapiAlgId(uint32_t alg_id) {
  for (const HashInfo& h : kHashes) {
    if (h.capi_alg_id != 0 && h.capi_alg_id == alg_id) return h.algorithm;
  }
  return std::nullopt;
}

const std::span<const CurveInfo> AllCurves() { return kCurves; }

const CurveInfo& GetCurveInfo(EcCurve curve) { return kCurves[static_cast<size_t>(curve)]; }

Result<EcCurve> ParseCurve(std::string_view name) {
  const std::string n = AsciiLower(name);
  for (const CurveInfo& c : kCurves) {
    std::string compact = AsciiLower(c.name);  // "p-256"
    std::string no_dash = compact;
    no_dash.erase(std::remove(no_dash.begin(), no_dash.end(), '-'), no_dash.end());
    if (n == compact || n == no_dash || n == c.openssl_name) return c.curve;
  }
  if (n == "secp256r1") return EcCurve::kP256;
  return InvalidArgumentError("unknown curve '" + std::string(name) +
                              "' (expected P-256, P-384 or P-521)");
}

std::optional<EcCurve> CurveFromParamsDer(ByteView params_der) {
  for (const CurveInfo& c : kCurves) {
    if (std::equal(params_der.begin(), params_der.end(), c.params_der.begin(), c.params_der.end()))
      return c.curve;
  }
  return std::nullopt;
}

std::string_view SchemeName(SignatureScheme scheme) {
  switch (scheme) {
    case SignatureScheme::kRsaPkcs1:
      return "rsa-pkcs1";
    case SignatureScheme::kRsaPss:
      return "rsa-pss";
    case SignatureScheme::kEcdsa:
      return "ecdsa";
  }
  return "unknown";
}

std::span<const SignatureScheme> AllSchemes() { return kSchemes; }

Result<SignatureScheme> ParseSignatureScheme(std::string_view name) {
  for (SignatureScheme s : kSchemes) {
    if (name == SchemeName(s)) return s;
  }
  return InvalidArgumentError("unknown signature scheme '" + std::string(name) +
                              "' (expected rsa-pkcs1, rsa-pss or ecdsa)");
}

std::string_view KeyTypeName(KeyType type) { return type == KeyType::kRsa ? "rsa" : "ec"; }

bool SchemeFitsKey(SignatureScheme scheme, KeyType type) {
  return (scheme == SignatureScheme::kEcdsa) == (type == KeyType::kEc);
}

// --- SignatureCapabilities ---------------------------------------------------------------------

namespace {
uint8_t HashBit(HashAlgorithm hash) { return static_cast<uint8_t>(1u << static_cast<int>(hash)); }
}  // namespace

SignatureCapabilities SignatureCapabilities::AllFor(KeyType type) {
  SignatureCapabilities all;
  for (SignatureScheme scheme : kSchemes) {
    if (!SchemeFitsKey(scheme, type)) continue;
    for (const HashInfo& h : kHashes) all.Add(scheme, h.algorithm);
  }
  return all;
}

SignatureCapabilities SignatureCapabilities::Of(std::span<const SchemeAndHash> pairs) {
  SignatureCapabilities out;
  for (const SchemeAndHash& p : pairs) out.Add(p.scheme, p.hash);
  return out;
}

void SignatureCapabilities::Add(SignatureScheme scheme, HashAlgorithm hash) {
  hash_bits_by_scheme_[static_cast<size_t>(scheme)] |= HashBit(hash);
}

void SignatureCapabilities::Remove(SignatureScheme scheme, HashAlgorithm hash) {
  hash_bits_by_scheme_[static_cast<size_t>(scheme)] &= static_cast<uint8_t>(~HashBit(hash));
}

bool SignatureCapabilities::Allows(SignatureScheme scheme, HashAlgorithm hash) const {
  return (hash_bits_by_scheme_[static_cast<size_t>(scheme)] & HashBit(hash)) != 0;
}

bool SignatureCapabilities::AllowsScheme(SignatureScheme scheme) const {
  return hash_bits_by_scheme_[static_cast<size_t>(scheme)] != 0;
}

bool SignatureCapabilities::empty() const {
  return std::all_of(hash_bits_by_scheme_.begin(), hash_bits_by_scheme_.end(),
                     [](uint8_t bits) { return bits == 0; });
}

SignatureCapabilities SignatureCapabilities::Intersect(const SignatureCapabilities& other) const {
  SignatureCapabilities out;
  for (size_t i = 0; i < hash_bits_by_scheme_.size(); ++i) {
    out.hash_bits_by_scheme_[i] = hash_bits_by_scheme_[i] & other.hash_bits_by_scheme_[i];
  }
  return out;
}

SignatureCapabilities SignatureCapabilities::Union(const SignatureCapabilities& other) const {
  SignatureCapabilities out;
  for (size_t i = 0; i < hash_bits_by_scheme_.size(); ++i) {
    out.hash_bits_by_scheme_[i] = hash_bits_by_scheme_[i] | other.hash_bits_by_scheme_[i];
  }
  return out;
}

std::vector<SchemeAndHash> SignatureCapabilities::Pairs() const {
  std::vector<SchemeAndHash> out;
  for (SignatureScheme scheme : kSchemes) {
    for (const HashInfo& h : kHashes) {
      if (Allows(scheme, h.algorithm)) out.push_back({scheme, h.algorithm});
    }
  }
  return out;
}

std::vector<SignatureScheme> SignatureCapabilities::Schemes() const {
  std::vector<SignatureScheme> out;
  for (SignatureScheme scheme : kSchemes) {
    if (AllowsScheme(scheme)) out.push_back(scheme);
  }
  return out;
}

std::vector<HashAlgorithm> SignatureCapabilities::Hashes() const {
  std::vector<HashAlgorithm> out;
  for (const HashInfo& h : kHashes) {
    if (std::any_of(kSchemes.begin(), kSchemes.end(),
                    [&](SignatureScheme s) { return Allows(s, h.algorithm); })) {
      out.push_back(h.algorithm);
    }
  }
  return out;
}

std::string SignatureCapabilities::ToString() const {
  std::string out;
  for (SignatureScheme scheme : kSchemes) {
    if (!AllowsScheme(scheme)) continue;
    if (!out.empty()) out += "; ";
    out += std::string(SchemeName(scheme)) + ":";
    for (const HashInfo& h : kHashes) {
      if (Allows(scheme, h.algorithm)) out += " " + std::string(h.name);
    }
  }
  return out.empty() ? "none" : out;
}

std::string KeySpec::Name() const {
  if (type == KeyType::kRsa) return "rsa-" + std::to_string(rsa_bits);
  std::string curve_name = AsciiLower(GetCurveInfo(curve).name);  // "p-256"
  curve_name.erase(std::remove(curve_name.begin(), curve_name.end(), '-'), curve_name.end());
  return "ec-" + curve_name;
}

int KeySpec::Bits() const { return type == KeyType::kRsa ? rsa_bits : GetCurveInfo(curve).bits; }

size_t KeySpec::SignatureSize() const {
  if (type == KeyType::kRsa) return static_cast<size_t>((rsa_bits + 7) / 8);
  return 2 * GetCurveInfo(curve).field_size;
}

Result<KeySpec> ParseKeySpec(std::string_view name) {
  const std::string n = AsciiLower(name);
  for (const KeySpec& spec : kSupportedKeySpecs) {
    if (n == spec.Name()) return spec;
  }
  // Accept "rsa:2048"/"rsa2048" and "ec:p-256" spellings as used by pkcs11-tool and friends.
  std::string compact = n;
  compact.erase(std::remove_if(compact.begin(), compact.end(),
                               [](char c) { return c == ':' || c == '-' || c == '_'; }),
                compact.end());
  for (const KeySpec& spec : kSupportedKeySpecs) {
    std::string candidate = spec.Name();
    candidate.erase(std::remove(candidate.begin(), candidate.end(), '-'), candidate.end());
    if (compact == candidate) return spec;
  }
  return InvalidArgumentError(
      "unknown key spec '" + std::string(name) +
      "' (expected rsa-2048, rsa-3072, rsa-4096, ec-p256, ec-p384 or ec-p521)");
}

std::span<const KeySpec> SupportedKeySpecs() { return kSupportedKeySpecs; }

Result<Bytes> BuildDigestInfo(HashAlgorithm hash, ByteView digest) {
  const HashInfo& info = GetHashInfo(hash);
  if (digest.size() != info.digest_size) {
    return InvalidArgumentError("a " + std::string(info.name) + " digest has " +
                                std::to_string(info.digest_size) + " bytes, got " +
                                std::to_string(digest.size()));
  }
  Bytes out(info.digest_info_prefix.begin(), info.digest_info_prefix.end());
  out.insert(out.end(), digest.begin(), digest.end());
  return out;
}

Result<ParsedDigestInfo> ParseDigestInfo(ByteView digest_info) {
  for (const HashInfo& h : kHashes) {
    const size_t prefix = h.digest_info_prefix.size();
    if (digest_info.size() == prefix + h.digest_size &&
        std::equal(h.digest_info_prefix.begin(), h.digest_info_prefix.end(), digest_info.begin())) {
      return ParsedDigestInfo{h.algorithm, Bytes(digest_info.begin() + prefix, digest_info.end())};
    }
  }
  return InvalidArgumentError("input of " + std::to_string(digest_info.size()) +
                              " bytes is not a DER DigestInfo for SHA-1/224/256/384/512");
}

size_t MaxPssSaltLength(int modulus_bits, HashAlgorithm hash) {
  const size_t em_len = static_cast<size_t>((modulus_bits - 1 + 7) / 8);
  const size_t h_len = GetHashInfo(hash).digest_size;
  return em_len >= h_len + 2 ? em_len - h_len - 2 : 0;
}

}  // namespace signum

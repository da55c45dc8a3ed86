// The one place that maps Signum's algorithm names to sizes, ASN.1 and PKCS#11 mechanisms.
// Server, agent and every provider use these tables; nothing else spells a mechanism number
// or a DigestInfo prefix.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "signum/core/bytes.h"
#include "signum/core/pkcs11.h"
#include "signum/core/status.h"

namespace signum {

enum class HashAlgorithm { kSha1, kSha224, kSha256, kSha384, kSha512 };
enum class SignatureScheme { kRsaPkcs1, kRsaPss, kEcdsa };
enum class KeyType { kRsa, kEc };
enum class EcCurve { kP256, kP384, kP521 };

struct HashInfo {
  HashAlgorithm algorithm;
  std::string_view name;           // wire name: "sha256"
  size_t digest_size;              // bytes
  ByteView digest_info_prefix;     // DER DigestInfo up to (excluding) the digest octets
  CK_MECHANISM_TYPE ckm_digest;    // CKM_SHA256
  CK_RSA_PKCS_MGF_TYPE ckg_mgf;    // CKG_MGF1_SHA256
  CK_MECHANISM_TYPE ckm_rsa_pkcs;  // CKM_SHA256_RSA_PKCS
  CK_MECHANISM_TYPE ckm_rsa_pss;   // CKM_SHA256_RSA_PKCS_PSS
  CK_MECHANISM_TYPE ckm_ecdsa;     // CKM_ECDSA_SHA256
  // Windows names of the same hash; empty / 0 where Windows has none (SHA-224).
  std::string_view cng_algorithm_id;  // BCRYPT_SHA256_ALGORITHM, as ASCII: "SHA256"
  uint32_t capi_alg_id;               // CryptoAPI ALG_ID: CALG_SHA_256 = 0x800c
};

struct CurveInfo {
  EcCurve curve;
  std::string_view name;          // wire name: "P-256"
  std::string_view openssl_name;  // "prime256v1"
  int bits;                       // 256
  size_t field_size;              // bytes of r or s: 32, 48, 66
  ByteView params_der;            // CKA_EC_PARAMS: DER OBJECT IDENTIFIER of the named curve
};

const std::span<const HashInfo> AllHashes();
const HashInfo& GetHashInfo(HashAlgorithm hash);
std::string_view HashName(HashAlgorithm hash);
Result<HashAlgorithm> ParseHashAlgorithm(std::string_view name);
// The hash whose digest has this many bytes, if exactly one does (SHA-1..SHA-512 all differ).
std::optional<HashAlgorithm> HashForDigestSize(size_t size);
std::optional<HashAlgorithm> HashForMechanism(CK_MECHANISM_TYPE digest_mechanism);
// CNG's pszAlgId ("SHA256", case-insensitive) and CryptoAPI's ALG_ID (CALG_SHA_256).
std::optional<HashAlgorithm> HashForCngAlgorithmId(std::string_view algorithm_id);
std::optional<HashAlgorithm> HashForCapiAlgId(uint32_t alg_id);

const std::span<const CurveInfo> AllCurves();
const CurveInfo& GetCurveInfo(EcCurve curve);
Result<EcCurve> ParseCurve(std::string_view name);  // "P-256", "p256", "prime256v1", "secp384r1"
std::optional<EcCurve> CurveFromParamsDer(ByteView params_der);

std::string_view SchemeName(SignatureScheme scheme);  // "rsa-pkcs1", "rsa-pss", "ecdsa"
Result<SignatureScheme> ParseSignatureScheme(std::string_view name);
std::string_view KeyTypeName(KeyType type);  // "rsa", "ec"
bool SchemeFitsKey(SignatureScheme scheme, KeyType type);

// The signature schemes, in the order listings use.
std::span<const SignatureScheme> AllSchemes();

// One (scheme, hash) pair: the unit a key can or cannot sign with. Pairs matter because HSMs
// support a scheme for some hashes only, and policies allow some combinations only (SHA-1 with
// PKCS#1 v1.5 alone).
struct SchemeAndHash {
  SignatureScheme scheme = SignatureScheme::kRsaPkcs1;
  HashAlgorithm hash = HashAlgorithm::kSha256;
  auto operator<=>(const SchemeAndHash&) const = default;
};

// A set of (scheme, hash) pairs: what a key can sign with on its HSM, what a caller's policies
// allow, and their intersection, which the server advertises per certificate.
class SignatureCapabilities {
 public:
  SignatureCapabilities() = default;  // nothing
  // Every pair whose scheme fits a key of this type.
  static SignatureCapabilities AllFor(KeyType type);
  static SignatureCapabilities Of(std::span<const SchemeAndHash> pairs);

  void Add(SignatureScheme scheme, HashAlgorithm hash);
  void Remove(SignatureScheme scheme, HashAlgorithm hash);
  bool Allows(SignatureScheme scheme, HashAlgorithm hash) const;
  bool AllowsScheme(SignatureScheme scheme) const;  // with at least one hash
  bool empty() const;
  SignatureCapabilities Intersect(const SignatureCapabilities& other) const;
  SignatureCapabilities Union(const SignatureCapabilities& other) const;

  // Scheme order (AllSchemes), then hash order (AllHashes).
  std::vector<SchemeAndHash> Pairs() const;
  // The projections: schemes with some hash, hashes with some scheme.
  std::vector<SignatureScheme> Schemes() const;
  std::vector<HashAlgorithm> Hashes() const;
  // "rsa-pkcs1: sha1 sha256; rsa-pss: sha256" or "none", for logs and listings.
  std::string ToString() const;

  bool operator==(const SignatureCapabilities&) const = default;

 private:
  // One bit per hash (HashAlgorithm's value) for each scheme (SignatureScheme's value).
  std::array<uint8_t, 3> hash_bits_by_scheme_{};
};

// A key algorithm and size: "rsa-2048", "rsa-3072", "rsa-4096", "ec-p256", "ec-p384", "ec-p521".
struct KeySpec {
  KeyType type = KeyType::kRsa;
  int rsa_bits = 0;
  EcCurve curve = EcCurve::kP256;

  std::string Name() const;
  int Bits() const;  // modulus bits or curve bits
  // Size of a raw signature: the modulus length for RSA, 2 * field size (r||s) for ECDSA.
  size_t SignatureSize() const;
  bool operator==(const KeySpec&) const = default;
};
Result<KeySpec> ParseKeySpec(std::string_view name);
// The key specs Signum supports, in the order demos and matrices list them.
std::span<const KeySpec> SupportedKeySpecs();

// DigestInfo (RFC 8017 §9.2) around a digest; the input of CKM_RSA_PKCS for a PKCS#1 v1.5
// signature.
Result<Bytes> BuildDigestInfo(HashAlgorithm hash, ByteView digest);
struct ParsedDigestInfo {
  HashAlgorithm hash;
  Bytes digest;
};
// Accepts exactly the DER that BuildDigestInfo produces (NULL parameters), as signers must.
Result<ParsedDigestInfo> ParseDigestInfo(ByteView digest_info);

// PSS salt length Signum uses when the caller does not choose: the digest length (RFC 8017 §9.1).
inline size_t DefaultPssSaltLength(HashAlgorithm hash) { return GetHashInfo(hash).digest_size; }
// Largest salt a PSS signature with this modulus and hash can carry: emLen - hLen - 2.
size_t MaxPssSaltLength(int modulus_bits, HashAlgorithm hash);

}  // namespace signum

#include "signum/core/algorithms.h"

#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/x509.h>

#include <string>

#include "signum/testing/status_matchers.h"

namespace signum {
namespace {

using ::signum::testing::StatusIs;

Bytes Sequence(size_t n, uint8_t start) {
  Bytes out(n);
  for (size_t i = 0; i < n; ++i) out[i] = static_cast<uint8_t>(start + i);
  return out;
}

// DigestInfo as OpenSSL encodes it, so the hand-written prefixes have an independent judge.
Bytes OpenSslDigestInfo(HashAlgorithm hash, ByteView digest) {
  static constexpr int kNids[] = {NID_sha1, NID_sha224, NID_sha256, NID_sha384, NID_sha512};
  X509_SIG* sig = X509_SIG_new();
  X509_ALGOR* alg = nullptr;
  ASN1_OCTET_STRING* octets = nullptr;
  X509_SIG_getm(sig, &alg, &octets);
  X509_ALGOR_set0(alg, OBJ_nid2obj(kNids[static_cast<int>(hash)]), V_ASN1_NULL, nullptr);
  ASN1_OCTET_STRING_set(octets, digest.data(), static_cast<int>(digest.size()));
  unsigned char* der = nullptr;
  const int len = i2d_X509_SIG(sig, &der);
  Bytes out(der, der + len);
  OPENSSL_free(der);
  X509_SIG_free(sig);
  return out;
}

TEST(DigestInfoTest, RoundTripsForEveryHash) {
  for (const HashInfo& h : AllHashes()) {
    SCOPED_TRACE(std::string(h.name));
    const Bytes digest = Sequence(h.digest_size, 0xa0);
    Result<Bytes> info = BuildDigestInfo(h.algorithm, digest);
    ASSERT_OK(info);
    EXPECT_EQ(info->size(), h.digest_info_prefix.size() + h.digest_size);
    EXPECT_EQ(*info, OpenSslDigestInfo(h.algorithm, digest));

    Result<ParsedDigestInfo> parsed = ParseDigestInfo(*info);
    ASSERT_OK(parsed);
    EXPECT_EQ(parsed->hash, h.algorithm);
    EXPECT_EQ(parsed->digest, digest);
  }
}

TEST(DigestInfoTest, BuildRejectsWrongDigestLengths) {
  for (const HashInfo& h : AllHashes()) {
    SCOPED_TRACE(std::string(h.name));
    for (size_t size : {size_t{0}, h.digest_size - 1, h.digest_size + 1}) {
      Result<Bytes> info = BuildDigestInfo(h.algorithm, Bytes(size, 0x11));
      ASSERT_THAT(info, StatusIs(ErrorCode::kInvalidArgument));
    }
  }
}

TEST(DigestInfoTest, ParseRejectsGarbage) {
  EXPECT_FALSE(ParseDigestInfo({}).ok());
  EXPECT_FALSE(ParseDigestInfo(Bytes(32, 0x42)).ok());  // a bare digest
  EXPECT_FALSE(ParseDigestInfo(Bytes(51, 0x00)).ok());
  for (const HashInfo& h : AllHashes()) {
    SCOPED_TRACE(std::string(h.name));
    const Bytes good = *BuildDigestInfo(h.algorithm, Bytes(h.digest_size, 0x5a));

    Bytes truncated(good.begin(), good.end() - 1);
    EXPECT_THAT(ParseDigestInfo(truncated), StatusIs(ErrorCode::kInvalidArgument));

    Bytes extended = good;
    extended.push_back(0x00);
    EXPECT_FALSE(ParseDigestInfo(extended).ok());

    Bytes prefix_only(h.digest_info_prefix.begin(), h.digest_info_prefix.end());
    EXPECT_FALSE(ParseDigestInfo(prefix_only).ok());

    // Each prefix byte matters: the OID, the NULL parameters and the lengths.
    for (size_t i = 0; i < h.digest_info_prefix.size(); ++i) {
      Bytes tampered = good;
      tampered[i] ^= 0x01;
      Result<ParsedDigestInfo> parsed = ParseDigestInfo(tampered);
      EXPECT_FALSE(parsed.ok()) << "byte " << i;
    }
  }
}

TEST(DigestInfoTest, ParseRejectsAbsentParameters) {
  // SEQUENCE { SEQUENCE { OID sha256 }, OCTET STRING } without NULL: valid BER that signers
  // must nevertheless refuse, as the header promises.
  Bytes info = {0x30, 0x2f, 0x30, 0x0b, 0x06, 0x09, 0x60, 0x86, 0x48,
                0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x04, 0x20};
  info.resize(info.size() + 32, 0x77);
  EXPECT_FALSE(ParseDigestInfo(info).ok());
}

TEST(HashTest, NamesAndSizes) {
  EXPECT_EQ(HashName(HashAlgorithm::kSha256), "sha256");
  EXPECT_EQ(*ParseHashAlgorithm("SHA-256"), HashAlgorithm::kSha256);
  EXPECT_EQ(*ParseHashAlgorithm("sha1"), HashAlgorithm::kSha1);
  EXPECT_EQ(*ParseHashAlgorithm("Sha512"), HashAlgorithm::kSha512);
  EXPECT_THAT(ParseHashAlgorithm("md5"), StatusIs(ErrorCode::kInvalidArgument));
  for (const HashInfo& h : AllHashes()) {
    EXPECT_EQ(*ParseHashAlgorithm(h.name), h.algorithm);
    EXPECT_EQ(HashForDigestSize(h.digest_size), h.algorithm);
    EXPECT_EQ(HashForMechanism(h.ckm_digest), h.algorithm);
    EXPECT_EQ(&GetHashInfo(h.algorithm), &h);
  }
  EXPECT_FALSE(HashForDigestSize(16).has_value());
  EXPECT_EQ(DefaultPssSaltLength(HashAlgorithm::kSha384), 48u);
}

TEST(KeySpecTest, ParsesSpellings) {
  struct Case {
    const char* text;
    const char* name;
  };
  const Case cases[] = {
      {"rsa-2048", "rsa-2048"}, {"RSA-2048", "rsa-2048"}, {"rsa:2048", "rsa-2048"},
      {"rsa2048", "rsa-2048"},  {"rsa_3072", "rsa-3072"}, {"RSA:4096", "rsa-4096"},
      {"ec-p256", "ec-p256"},   {"EC:P-256", "ec-p256"},  {"ec-p-384", "ec-p384"},
      {"ecp521", "ec-p521"},    {"ec_p384", "ec-p384"},
  };
  for (const Case& c : cases) {
    Result<KeySpec> spec = ParseKeySpec(c.text);
    ASSERT_OK(spec) << c.text;
    EXPECT_EQ(spec->Name(), c.name) << c.text;
  }
  for (const char* bad : {"", "rsa", "rsa-1024", "rsa-2047", "ec-p192", "dsa-2048", "ec-secp256k1",
                          "ed25519", "2048"}) {
    Result<KeySpec> spec = ParseKeySpec(bad);
    ASSERT_FALSE(spec.ok()) << bad;
    EXPECT_THAT(spec, StatusIs(ErrorCode::kInvalidArgument));
  }
}

TEST(KeySpecTest, SupportedSpecsRoundTripAndHaveSizes) {
  const std::span<const KeySpec> specs = SupportedKeySpecs();
  ASSERT_EQ(specs.size(), 6u);
  const size_t expected_sizes[] = {256, 384, 512, 64, 96, 132};
  const int expected_bits[] = {2048, 3072, 4096, 256, 384, 521};
  for (size_t i = 0; i < specs.size(); ++i) {
    SCOPED_TRACE(specs[i].Name());
    EXPECT_EQ(*ParseKeySpec(specs[i].Name()), specs[i]);
    EXPECT_EQ(specs[i].SignatureSize(), expected_sizes[i]);
    EXPECT_EQ(specs[i].Bits(), expected_bits[i]);
  }
  // Non-standard RSA sizes still describe themselves correctly.
  KeySpec odd{KeyType::kRsa, 2049, EcCurve::kP256};
  EXPECT_EQ(odd.SignatureSize(), 257u);
  EXPECT_EQ(odd.Name(), "rsa-2049");
}

TEST(CurveTest, ParsesNamesAndParams) {
  struct Case {
    const char* text;
    EcCurve curve;
  };
  const Case cases[] = {
      {"P-256", EcCurve::kP256},     {"p256", EcCurve::kP256},      {"prime256v1", EcCurve::kP256},
      {"secp256r1", EcCurve::kP256}, {"P-384", EcCurve::kP384},     {"secp384r1", EcCurve::kP384},
      {"p-521", EcCurve::kP521},     {"SECP521R1", EcCurve::kP521}, {"P521", EcCurve::kP521},
  };
  for (const Case& c : cases) {
    Result<EcCurve> curve = ParseCurve(c.text);
    ASSERT_OK(curve) << c.text;
    EXPECT_EQ(*curve, c.curve) << c.text;
  }
  for (const char* bad : {"", "P-192", "secp256k1", "brainpoolP256r1", "25519"}) {
    EXPECT_THAT(ParseCurve(bad), StatusIs(ErrorCode::kInvalidArgument)) << bad;
  }
}

TEST(CurveTest, ParamsDerMatchesOpenSsl) {
  for (const CurveInfo& c : AllCurves()) {
    SCOPED_TRACE(std::string(c.name));
    const std::string name(c.openssl_name);
    const int nid = OBJ_sn2nid(name.c_str());
    ASSERT_NE(nid, NID_undef);
    unsigned char* der = nullptr;
    const int len = i2d_ASN1_OBJECT(OBJ_nid2obj(nid), &der);
    ASSERT_GT(len, 0);
    EXPECT_EQ(Bytes(der, der + len), Bytes(c.params_der.begin(), c.params_der.end()));
    OPENSSL_free(der);
    EXPECT_EQ(CurveFromParamsDer(c.params_der), c.curve);
    EXPECT_EQ(c.field_size, static_cast<size_t>((c.bits + 7) / 8));
  }
  const uint8_t secp256k1[] = {0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x0a};
  EXPECT_FALSE(CurveFromParamsDer(secp256k1).has_value());
  EXPECT_FALSE(CurveFromParamsDer({}).has_value());
}

TEST(SchemeTest, NamesAndFit) {
  for (SignatureScheme s :
       {SignatureScheme::kRsaPkcs1, SignatureScheme::kRsaPss, SignatureScheme::kEcdsa}) {
    EXPECT_EQ(*ParseSignatureScheme(SchemeName(s)), s);
  }
  EXPECT_FALSE(ParseSignatureScheme("rsa").ok());
  EXPECT_TRUE(SchemeFitsKey(SignatureScheme::kRsaPkcs1, KeyType::kRsa));
  EXPECT_TRUE(SchemeFitsKey(SignatureScheme::kRsaPss, KeyType::kRsa));
  EXPECT_TRUE(SchemeFitsKey(SignatureScheme::kEcdsa, KeyType::kEc));
  EXPECT_FALSE(SchemeFitsKey(SignatureScheme::kEcdsa, KeyType::kRsa));
  EXPECT_FALSE(SchemeFitsKey(SignatureScheme::kRsaPss, KeyType::kEc));
  EXPECT_FALSE(SchemeFitsKey(SignatureScheme::kRsaPkcs1, KeyType::kEc));
  EXPECT_EQ(KeyTypeName(KeyType::kRsa), "rsa");
  EXPECT_EQ(KeyTypeName(KeyType::kEc), "ec");
}

TEST(PssTest, MaxSaltLength) {
  // emLen - hLen - 2 with emLen = ceil((modBits - 1) / 8).
  EXPECT_EQ(MaxPssSaltLength(2048, HashAlgorithm::kSha256), 222u);
  EXPECT_EQ(MaxPssSaltLength(3072, HashAlgorithm::kSha512), 318u);
  EXPECT_EQ(MaxPssSaltLength(4096, HashAlgorithm::kSha1), 490u);
  EXPECT_EQ(MaxPssSaltLength(1024, HashAlgorithm::kSha512), 62u);
  // A modulus of 8k+1 bits has one byte fewer of encoded message than its length suggests.
  EXPECT_EQ(MaxPssSaltLength(2049, HashAlgorithm::kSha256), 222u);
  EXPECT_EQ(MaxPssSaltLength(256, HashAlgorithm::kSha512), 0u);
}

TEST(SignatureCapabilitiesTest, PairsProjectionsAndIntersection) {
  const SignatureCapabilities rsa = SignatureCapabilities::AllFor(KeyType::kRsa);
  EXPECT_EQ(rsa.Pairs().size(), 10u);
  EXPECT_EQ(rsa.Schemes(),
            (std::vector<SignatureScheme>{SignatureScheme::kRsaPkcs1, SignatureScheme::kRsaPss}));
  EXPECT_FALSE(rsa.AllowsScheme(SignatureScheme::kEcdsa));
  EXPECT_EQ(SignatureCapabilities::AllFor(KeyType::kEc).Schemes(),
            std::vector<SignatureScheme>{SignatureScheme::kEcdsa});

  SignatureCapabilities policy;
  policy.Add(SignatureScheme::kRsaPkcs1, HashAlgorithm::kSha1);
  policy.Add(SignatureScheme::kRsaPss, HashAlgorithm::kSha256);
  policy.Add(SignatureScheme::kRsaPss, HashAlgorithm::kSha512);
  SignatureCapabilities hsm = rsa;
  hsm.Remove(SignatureScheme::kRsaPss, HashAlgorithm::kSha512);
  const SignatureCapabilities both = policy.Intersect(hsm);
  EXPECT_EQ(both.Pairs(),
            (std::vector<SchemeAndHash>{{SignatureScheme::kRsaPkcs1, HashAlgorithm::kSha1},
                                        {SignatureScheme::kRsaPss, HashAlgorithm::kSha256}}));
  EXPECT_EQ(both.Hashes(),
            (std::vector<HashAlgorithm>{HashAlgorithm::kSha1, HashAlgorithm::kSha256}));
  EXPECT_EQ(both.ToString(), "rsa-pkcs1: sha1; rsa-pss: sha256");
  EXPECT_EQ(SignatureCapabilities::Of(both.Pairs()), both);
  EXPECT_EQ(both.Union(SignatureCapabilities::AllFor(KeyType::kEc)).Schemes(),
            (std::vector<SignatureScheme>{SignatureScheme::kRsaPkcs1, SignatureScheme::kRsaPss,
                                          SignatureScheme::kEcdsa}));
  EXPECT_TRUE(SignatureCapabilities().empty());
  EXPECT_EQ(SignatureCapabilities().ToString(), "none");
}

}  // namespace
}  // namespace signum

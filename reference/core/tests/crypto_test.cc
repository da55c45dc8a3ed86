#include "signum/core/crypto.h"
#include "signum/testing/status_matchers.h"

#include <gtest/gtest.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include <algorithm>
#include <map>
#include <string>

namespace signum {
namespace {

using ::signum::testing::StatusIs;

// Key generation dominates the run time (RSA-4096 takes about a second), so every test shares
// one key per spec.
SoftwareKey& KeyFor(const KeySpec& spec) {
  static auto* keys = new std::map<std::string, std::unique_ptr<SoftwareKey>>();
  std::unique_ptr<SoftwareKey>& slot = (*keys)[spec.Name()];
  if (!slot) {
    Result<std::unique_ptr<SoftwareKey>> key = SoftwareKey::Generate(spec);
    if (!key.ok()) ADD_FAILURE() << key.status().ToString();
    slot = std::move(key).value();
  }
  return *slot;
}

const KeySpec kRsa2048{KeyType::kRsa, 2048, EcCurve::kP256};
const KeySpec kEcP256{KeyType::kEc, 0, EcCurve::kP256};
const KeySpec kEcP521{KeyType::kEc, 0, EcCurve::kP521};

struct DerDeleter {
  void operator()(unsigned char* p) const { OPENSSL_free(p); }
};

Bytes Unhex(std::string_view hex) { return *HexDecode(hex); }

std::vector<SignatureScheme> SchemesFor(KeyType type) {
  if (type == KeyType::kEc) return {SignatureScheme::kEcdsa};
  return {SignatureScheme::kRsaPkcs1, SignatureScheme::kRsaPss};
}

// --- Digests ----------------------------------------------------------------------------------

TEST(DigestTest, KnownVectors) {
  const ByteView abc = AsBytes("abc");
  EXPECT_EQ(HexEncode(Digest(HashAlgorithm::kSha1, abc)),
            "a9993e364706816aba3e25717850c26c9cd0d89d");
  EXPECT_EQ(HexEncode(Digest(HashAlgorithm::kSha224, abc)),
            "23097d223405d8228642a477bda255b32aadbce4bda0b3f7e36c9da7");
  EXPECT_EQ(HexEncode(Digest(HashAlgorithm::kSha256, abc)),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(HexEncode(Digest(HashAlgorithm::kSha384, abc)),
            "cb00753f45a35e8bb5a03d699ac65007272c32ab0eded163"
            "1a8b605a43ff5bed8086072ba1e7cc2358baeca134c825a7");
  EXPECT_EQ(HexEncode(Digest(HashAlgorithm::kSha512, abc)),
            "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a"
            "2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f");
  EXPECT_EQ(HexEncode(Digest(HashAlgorithm::kSha256, {})),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

TEST(DigestTest, EvpMdMatchesHashTable) {
  for (const HashInfo& h : AllHashes()) {
    ASSERT_NE(EvpMd(h.algorithm), nullptr);
    EXPECT_EQ(static_cast<size_t>(EVP_MD_get_size(EvpMd(h.algorithm))), h.digest_size);
  }
}

TEST(DigestTest, HasherMultiPartEqualsOneShot) {
  const Bytes data = RandomBytes(1000);
  for (const HashInfo& h : AllHashes()) {
    SCOPED_TRACE(std::string(h.name));
    Hasher hasher(h.algorithm);
    EXPECT_EQ(hasher.algorithm(), h.algorithm);
    hasher.Update(ByteView(data).subspan(0, 1));
    hasher.Update({});
    hasher.Update(ByteView(data).subspan(1, 499));
    Hasher moved = std::move(hasher);  // the state travels with the move
    moved.Update(ByteView(data).subspan(500));
    EXPECT_EQ(moved.Final(), Digest(h.algorithm, data));
  }
  Hasher a(HashAlgorithm::kSha1);
  Hasher b(HashAlgorithm::kSha512);
  b.Update(AsBytes("abc"));
  a = std::move(b);
  EXPECT_EQ(a.algorithm(), HashAlgorithm::kSha512);
  EXPECT_EQ(a.Final(), Digest(HashAlgorithm::kSha512, AsBytes("abc")));
}

// --- Encodings --------------------------------------------------------------------------------

TEST(Base64Test, Rfc4648Vectors) {
  const std::pair<const char*, const char*> vectors[] = {
      {"", ""},
      {"f", "Zg=="},
      {"fo", "Zm8="},
      {"foo", "Zm9v"},
      {"foob", "Zm9vYg=="},
      {"fooba", "Zm9vYmE="},
      {"foobar", "Zm9vYmFy"},
  };
  for (const auto& [plain, encoded] : vectors) {
    EXPECT_EQ(Base64Encode(AsBytes(plain)), encoded);
    Result<Bytes> decoded = Base64Decode(encoded);
    ASSERT_OK(decoded) << encoded;
    EXPECT_EQ(ToString(*decoded), plain);
  }
}

TEST(Base64Test, RoundTripsAndMatchesOpenSsl) {
  for (size_t n = 0; n < 70; ++n) {
    const Bytes data = RandomBytes(n);
    const std::string text = Base64Encode(data);
    std::string openssl(4 * ((n + 2) / 3) + 1, '\0');
    const int len = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(openssl.data()), data.data(),
                                    static_cast<int>(n));
    openssl.resize(static_cast<size_t>(len));
    EXPECT_EQ(text, openssl);
    EXPECT_EQ(*Base64Decode(text), data);
  }
  const Bytes all = [] {
    Bytes b(256);
    for (size_t i = 0; i < b.size(); ++i) b[i] = static_cast<uint8_t>(i);
    return b;
  }();
  EXPECT_EQ(*Base64Decode(Base64Encode(all)), all);
}

TEST(Base64Test, RejectsJunk) {
  for (const char* bad : {"Zg", "Zg=", "Z", "Zm9v\n", "Zm 9v", " Zm9v", "Zm9v====", "Zg==Zg==",
                          "=Zg=", "Z===", "Zh==", "Zm9=", "Zm-_", "Zm9v!A==", "Zm8=\n"}) {
    Result<Bytes> decoded = Base64Decode(bad);
    ASSERT_FALSE(decoded.ok()) << "'" << bad << "'";
    EXPECT_THAT(decoded, StatusIs(ErrorCode::kInvalidArgument));
  }
  EXPECT_OK(Base64Decode(""));
  EXPECT_TRUE(Base64Decode("").value().empty());
}

TEST(PemTest, DecodesEveryBlockOfItsLabelInOrder) {
  const Bytes first = {0x30, 0x03, 0x02, 0x01, 0x01};
  const Bytes second(100, 0x5a);  // more than one 64-character line
  const std::string text = "junk before\n" + PemEncode("CERTIFICATE", first) +
                           PemEncode("PRIVATE KEY", Bytes{1, 2, 3}) + "between\r\n" +
                           PemEncode("CERTIFICATE", second);
  ASSERT_OK_AND_ASSIGN(std::vector<Bytes> blocks, PemDecodeAll(text, "CERTIFICATE"));
  ASSERT_EQ(blocks.size(), 2u);
  EXPECT_EQ(blocks[0], first);
  EXPECT_EQ(blocks[1], second);
  ASSERT_OK_AND_ASSIGN(std::vector<Bytes> none, PemDecodeAll("no pem here", "CERTIFICATE"));
  EXPECT_TRUE(none.empty());
  EXPECT_THAT(PemDecodeAll("-----BEGIN CERTIFICATE-----\nAAAA\n", "CERTIFICATE"),
              StatusIs(ErrorCode::kInvalidArgument));  // no end line
  EXPECT_THAT(PemDecodeAll(PemEncode("CERTIFICATE", first) +
                               "-----BEGIN CERTIFICATE-----\n!!\n-----END CERTIFICATE-----\n",
                           "CERTIFICATE"),
              StatusIs(ErrorCode::kInvalidArgument));  // the second block does not decode
}

TEST(HexTest, RoundTripsAndSeparators) {
  const Bytes data = {0x00, 0x01, 0xab, 0xcd, 0xef, 0xff};
  EXPECT_EQ(HexEncode(data), "0001abcdefff");
  EXPECT_EQ(*HexDecode("0001abcdefff"), data);
  EXPECT_EQ(*HexDecode("0001ABCDEFFF"), data);
  EXPECT_EQ(*HexDecode("00:01:AB:cd:Ef:ff"), data);
  EXPECT_EQ(*HexDecode("0001:abcd:efff"), data);
  EXPECT_TRUE(HexDecode("").value().empty());
  for (size_t n = 0; n < 40; ++n) {
    const Bytes random = RandomBytes(n);
    EXPECT_EQ(*HexDecode(HexEncode(random)), random);
  }
}

TEST(HexTest, RejectsJunk) {
  for (const char* bad :
       {"a", "abc", "zz", "0x00", ":ab", "ab:", "ab::cd", "a:bc", "ab cd", "g0", ":"}) {
    Result<Bytes> decoded = HexDecode(bad);
    ASSERT_FALSE(decoded.ok()) << "'" << bad << "'";
    EXPECT_THAT(decoded, StatusIs(ErrorCode::kInvalidArgument));
  }
}

TEST(RandomTest, SizesAndVariety) {
  EXPECT_TRUE(RandomBytes(0).empty());
  EXPECT_EQ(RandomBytes(33).size(), 33u);
  EXPECT_NE(RandomBytes(32), RandomBytes(32));
}

TEST(ConstantTimeEqualsTest, ComparesContentAndLength) {
  EXPECT_TRUE(ConstantTimeEquals({}, {}));
  EXPECT_TRUE(ConstantTimeEquals(AsBytes("secret"), AsBytes("secret")));
  EXPECT_FALSE(ConstantTimeEquals(AsBytes("secret"), AsBytes("secreT")));
  EXPECT_FALSE(ConstantTimeEquals(AsBytes("secret"), AsBytes("secret2")));
  EXPECT_FALSE(ConstantTimeEquals(AsBytes(""), AsBytes("x")));
}

TEST(OpenSslErrorsTest, DrainEmptiesTheQueue) {
  const unsigned char junk[] = {0x30, 0x03, 0x02, 0x01};
  const unsigned char* p = junk;
  EXPECT_EQ(d2i_PUBKEY(nullptr, &p, sizeof(junk)), nullptr);
  EXPECT_FALSE(DrainOpenSslErrors().empty());
  EXPECT_EQ(DrainOpenSslErrors(), "");
  EXPECT_EQ(ERR_peek_error(), 0u);
}

// --- ECDSA formats ----------------------------------------------------------------------------

TEST(EcdsaFormatTest, RawToDerRoundTripsAndMatchesOpenSsl) {
  struct Case {
    std::string r, s;  // hex, 32 bytes each
  };
  const std::string ones(64, '1');
  const Case cases[] = {
      {ones, ones},
      // High bit set: DER needs a leading 00 to keep the INTEGER positive.
      {"80" + std::string(62, '0'), "ff" + std::string(62, 'e')},
      // Leading zero bytes: DER drops them, raw must pad them back.
      {"0000" + std::string(60, '7'), "00" + std::string(60, '0') + "01"},
      {std::string(64, '0'), "00ff" + std::string(60, 'a')},
  };
  for (const Case& c : cases) {
    const Bytes raw = Unhex(c.r + c.s);
    Result<Bytes> der = EcdsaRawToDer(raw);
    ASSERT_OK(der);

    const unsigned char* p = der->data();
    ECDSA_SIG* sig = d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(der->size()));
    ASSERT_NE(sig, nullptr);
    EXPECT_EQ(p, der->data() + der->size());
    Bytes r(32), s(32);
    BN_bn2binpad(ECDSA_SIG_get0_r(sig), r.data(), 32);
    BN_bn2binpad(ECDSA_SIG_get0_s(sig), s.data(), 32);
    EXPECT_EQ(HexEncode(r), c.r);
    EXPECT_EQ(HexEncode(s), c.s);
    ECDSA_SIG_free(sig);

    Result<Bytes> back = EcdsaDerToRaw(*der, 32);
    ASSERT_OK(back);
    EXPECT_EQ(*back, raw);
  }
  // The high-bit case encodes r as 33 content bytes.
  const Bytes der = *EcdsaRawToDer(Unhex(cases[1].r + cases[1].s));
  EXPECT_EQ(der[2], 0x02);
  EXPECT_EQ(der[3], 33);
  EXPECT_EQ(der[4], 0x00);
}

TEST(EcdsaFormatTest, DerToRawPadsToLargerFields) {
  const Bytes raw = Unhex(std::string(64, '1') + std::string(64, '2'));
  const Bytes der = *EcdsaRawToDer(raw);
  const Bytes wide = *EcdsaDerToRaw(der, 66);
  ASSERT_EQ(wide.size(), 132u);
  EXPECT_EQ(HexEncode(wide), std::string(68, '0') + std::string(64, '1') + std::string(68, '0') +
                                 std::string(64, '2'));
}

TEST(EcdsaFormatTest, Rejections) {
  EXPECT_THAT(EcdsaRawToDer({}), StatusIs(ErrorCode::kInvalidArgument));
  EXPECT_THAT(EcdsaRawToDer(Bytes(63, 1)), StatusIs(ErrorCode::kInvalidArgument));

  const Bytes der = *EcdsaRawToDer(Unhex(std::string(64, '1') + std::string(64, '2')));
  EXPECT_THAT(EcdsaDerToRaw(der, 31), StatusIs(ErrorCode::kInvalidArgument));  // too long
  EXPECT_THAT(EcdsaDerToRaw(der, 0), StatusIs(ErrorCode::kInvalidArgument));
  EXPECT_THAT(EcdsaDerToRaw({}, 32), StatusIs(ErrorCode::kInvalidArgument));
  EXPECT_THAT(EcdsaDerToRaw(Bytes(70, 0x30), 32), StatusIs(ErrorCode::kInvalidArgument));
  Bytes trailing = der;
  trailing.push_back(0x00);
  EXPECT_THAT(EcdsaDerToRaw(trailing, 32), StatusIs(ErrorCode::kInvalidArgument));
  Bytes truncated(der.begin(), der.end() - 1);
  EXPECT_FALSE(EcdsaDerToRaw(truncated, 32).ok());
  // SEQUENCE { INTEGER -1, INTEGER 1 }
  const Bytes negative = {0x30, 0x06, 0x02, 0x01, 0xff, 0x02, 0x01, 0x01};
  EXPECT_THAT(EcdsaDerToRaw(negative, 32), StatusIs(ErrorCode::kInvalidArgument));
  EXPECT_EQ(ERR_peek_error(), 0u) << "errors must not be left on the OpenSSL queue";
}

// --- Signing and verification -------------------------------------------------------------------

class SignVerifyTest : public ::testing::TestWithParam<KeySpec> {};

TEST_P(SignVerifyTest, EveryFittingSchemeAndHash) {
  const KeySpec spec = GetParam();
  SoftwareKey& key = KeyFor(spec);
  ASSERT_EQ(key.public_key().spec(), spec);
  const Bytes message = RandomBytes(100);
  for (SignatureScheme scheme : SchemesFor(spec.type)) {
    for (const HashInfo& h : AllHashes()) {
      SCOPED_TRACE(std::string(SchemeName(scheme)) + "/" + std::string(h.name));
      const Bytes digest = Digest(h.algorithm, message);
      Result<Bytes> sig = key.SignDigest(scheme, h.algorithm, digest, std::nullopt);
      ASSERT_OK(sig);
      EXPECT_EQ(sig->size(), spec.SignatureSize());
      Status ok = VerifyDigestSignature(key.public_key(), scheme, h.algorithm, digest, *sig);
      EXPECT_OK(ok);

      for (size_t index : {size_t{0}, sig->size() / 2, sig->size() - 1}) {
        Bytes flipped = *sig;
        flipped[index] ^= 0x01;
        Status bad = VerifyDigestSignature(key.public_key(), scheme, h.algorithm, digest, flipped);
        EXPECT_THAT(bad, StatusIs(ErrorCode::kInvalidArgument)) << "byte " << index;
        EXPECT_NE(bad.message().find("signature does not verify"), std::string::npos)
            << bad.message();
      }
      Bytes other_digest = digest;
      other_digest[0] ^= 0x80;
      EXPECT_FALSE(
          VerifyDigestSignature(key.public_key(), scheme, h.algorithm, other_digest, *sig).ok());
    }
  }
  EXPECT_EQ(ERR_peek_error(), 0u) << "errors must not be left on the OpenSSL queue";
}

TEST_P(SignVerifyTest, SignaturesMatchOpenSslOneShotSigning) {
  // OpenSSL signs the message itself; our digest-level verification must accept that, and
  // OpenSSL must accept ours: neither side is the only judge.
  const KeySpec spec = GetParam();
  SoftwareKey& key = KeyFor(spec);
  const std::string text = "independent check";
  const Bytes message(text.begin(), text.end());
  const HashAlgorithm hash = HashAlgorithm::kSha384;
  const SignatureScheme scheme =
      spec.type == KeyType::kRsa ? SignatureScheme::kRsaPss : SignatureScheme::kEcdsa;

  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  EVP_PKEY_CTX* pctx = nullptr;
  ASSERT_EQ(EVP_DigestSignInit(ctx, &pctx, EvpMd(hash), nullptr, key.get()), 1);
  if (scheme == SignatureScheme::kRsaPss) {
    EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING);
    EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST);
  }
  size_t len = 0;
  ASSERT_EQ(EVP_DigestSign(ctx, nullptr, &len, message.data(), message.size()), 1);
  Bytes theirs(len);
  ASSERT_EQ(EVP_DigestSign(ctx, theirs.data(), &len, message.data(), message.size()), 1);
  theirs.resize(len);
  EVP_MD_CTX_free(ctx);
  if (scheme == SignatureScheme::kEcdsa) {
    theirs = *EcdsaDerToRaw(theirs, GetCurveInfo(spec.curve).field_size);
  }
  const Bytes digest = Digest(hash, message);
  Status st = VerifyDigestSignature(key.public_key(), scheme, hash, digest, theirs);
  EXPECT_OK(st);

  Bytes ours = *key.SignDigest(scheme, hash, digest, std::nullopt);
  if (scheme == SignatureScheme::kEcdsa) ours = *EcdsaRawToDer(ours);
  ctx = EVP_MD_CTX_new();
  ASSERT_EQ(EVP_DigestVerifyInit(ctx, &pctx, EvpMd(hash), nullptr, key.public_key().get()), 1);
  if (scheme == SignatureScheme::kRsaPss) {
    EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING);
    EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST);
  }
  EXPECT_EQ(EVP_DigestVerify(ctx, ours.data(), ours.size(), message.data(), message.size()), 1);
  EVP_MD_CTX_free(ctx);
}

INSTANTIATE_TEST_SUITE_P(AllSupportedSpecs, SignVerifyTest,
                         ::testing::ValuesIn(SupportedKeySpecs().begin(),
                                             SupportedKeySpecs().end()),
                         [](const ::testing::TestParamInfo<KeySpec>& info) {
                           std::string name = info.param.Name();
                           name.erase(std::remove(name.begin(), name.end(), '-'), name.end());
                           return name;
                         });

TEST(SignTest, Pkcs1SignatureCarriesTheDigestInfo) {
  SoftwareKey& key = KeyFor(kRsa2048);
  for (const HashInfo& h : AllHashes()) {
    SCOPED_TRACE(std::string(h.name));
    const Bytes digest = Digest(h.algorithm, AsBytes("digest info"));
    const Bytes sig =
        *key.SignDigest(SignatureScheme::kRsaPkcs1, h.algorithm, digest, std::nullopt);
    // Recover the padded payload with the raw public operation.
    EVP_PKEY_CTX* ctx = EVP_PKEY_CTX_new_from_pkey(nullptr, key.public_key().get(), nullptr);
    ASSERT_EQ(EVP_PKEY_verify_recover_init(ctx), 1);
    ASSERT_EQ(EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PADDING), 1);
    Bytes recovered(sig.size());
    size_t len = recovered.size();
    ASSERT_EQ(EVP_PKEY_verify_recover(ctx, recovered.data(), &len, sig.data(), sig.size()), 1);
    recovered.resize(len);
    EVP_PKEY_CTX_free(ctx);
    EXPECT_EQ(recovered, *BuildDigestInfo(h.algorithm, digest));
  }
}

TEST(SignTest, PssSaltLengths) {
  SoftwareKey& key = KeyFor(kRsa2048);
  const HashAlgorithm hash = HashAlgorithm::kSha256;
  const Bytes digest = Digest(hash, AsBytes("pss"));
  const size_t max = MaxPssSaltLength(2048, hash);
  ASSERT_EQ(max, 222u);
  for (size_t salt : {size_t{0}, size_t{20}, size_t{32}, max}) {
    SCOPED_TRACE(salt);
    Result<Bytes> sig = key.SignDigest(SignatureScheme::kRsaPss, hash, digest, salt);
    ASSERT_OK(sig);
    Status st =
        VerifyDigestSignature(key.public_key(), SignatureScheme::kRsaPss, hash, digest, *sig, salt);
    EXPECT_OK(st);
    // Verification insists on the exact salt length.
    const size_t other = salt == 32 ? 0 : 32;
    EXPECT_FALSE(
        VerifyDigestSignature(key.public_key(), SignatureScheme::kRsaPss, hash, digest, *sig, other)
            .ok());
  }
  // Salt 0 is deterministic; the default (digest length) is randomised.
  EXPECT_EQ(*key.SignDigest(SignatureScheme::kRsaPss, hash, digest, 0),
            *key.SignDigest(SignatureScheme::kRsaPss, hash, digest, 0));
  EXPECT_NE(*key.SignDigest(SignatureScheme::kRsaPss, hash, digest, std::nullopt),
            *key.SignDigest(SignatureScheme::kRsaPss, hash, digest, std::nullopt));
  // The default equals an explicit digest-length salt.
  const Bytes def = *key.SignDigest(SignatureScheme::kRsaPss, hash, digest, std::nullopt);
  EXPECT_OK(
      VerifyDigestSignature(key.public_key(), SignatureScheme::kRsaPss, hash, digest, def, 32));

  Result<Bytes> too_long = key.SignDigest(SignatureScheme::kRsaPss, hash, digest, max + 1);
  EXPECT_THAT(too_long, StatusIs(ErrorCode::kInvalidArgument));
  EXPECT_THAT(
      VerifyDigestSignature(key.public_key(), SignatureScheme::kRsaPss, hash, digest, def, max + 1),
      StatusIs(ErrorCode::kInvalidArgument));
}

TEST(SignTest, RejectsMismatchesAndBadLengths) {
  SoftwareKey& rsa = KeyFor(kRsa2048);
  SoftwareKey& ec = KeyFor(kEcP256);
  const Bytes d256 = Digest(HashAlgorithm::kSha256, AsBytes("x"));
  EXPECT_THAT(
      rsa.SignDigest(SignatureScheme::kEcdsa, HashAlgorithm::kSha256, d256, std::nullopt).status(),
      StatusIs(ErrorCode::kInvalidArgument));
  EXPECT_THAT(ec.SignDigest(SignatureScheme::kRsaPkcs1, HashAlgorithm::kSha256, d256, std::nullopt)
                  .status(),
              StatusIs(ErrorCode::kInvalidArgument));
  EXPECT_THAT(
      ec.SignDigest(SignatureScheme::kRsaPss, HashAlgorithm::kSha256, d256, std::nullopt).status(),
      StatusIs(ErrorCode::kInvalidArgument));
  // A SHA-256 digest labelled SHA-384.
  EXPECT_THAT(rsa.SignDigest(SignatureScheme::kRsaPkcs1, HashAlgorithm::kSha384, d256, std::nullopt)
                  .status(),
              StatusIs(ErrorCode::kInvalidArgument));
  EXPECT_THAT(
      ec.SignDigest(SignatureScheme::kEcdsa, HashAlgorithm::kSha256, {}, std::nullopt).status(),
      StatusIs(ErrorCode::kInvalidArgument));

  const Bytes rsa_sig =
      *rsa.SignDigest(SignatureScheme::kRsaPkcs1, HashAlgorithm::kSha256, d256, std::nullopt);
  const Bytes ec_sig =
      *ec.SignDigest(SignatureScheme::kEcdsa, HashAlgorithm::kSha256, d256, std::nullopt);
  auto verify = [&](const PublicKey& key, SignatureScheme scheme, HashAlgorithm hash,
                    ByteView digest, ByteView sig) {
    return VerifyDigestSignature(key, scheme, hash, digest, sig).code();
  };
  const ErrorCode kBad = ErrorCode::kInvalidArgument;
  EXPECT_EQ(
      verify(rsa.public_key(), SignatureScheme::kEcdsa, HashAlgorithm::kSha256, d256, rsa_sig),
      kBad);
  EXPECT_EQ(
      verify(ec.public_key(), SignatureScheme::kRsaPkcs1, HashAlgorithm::kSha256, d256, ec_sig),
      kBad);
  EXPECT_EQ(
      verify(rsa.public_key(), SignatureScheme::kRsaPkcs1, HashAlgorithm::kSha384, d256, rsa_sig),
      kBad);
  // Signature lengths: empty, short, long, odd; nothing may crash.
  for (size_t size : {size_t{0}, size_t{1}, size_t{63}, size_t{65}, size_t{255}, size_t{257}}) {
    SCOPED_TRACE(size);
    const Bytes junk(size, 0x5a);
    EXPECT_EQ(
        verify(rsa.public_key(), SignatureScheme::kRsaPkcs1, HashAlgorithm::kSha256, d256, junk),
        kBad);
    EXPECT_EQ(
        verify(rsa.public_key(), SignatureScheme::kRsaPss, HashAlgorithm::kSha256, d256, junk),
        kBad);
    EXPECT_EQ(verify(ec.public_key(), SignatureScheme::kEcdsa, HashAlgorithm::kSha256, d256, junk),
              kBad);
  }
  // Right lengths, impossible values: r = s = 0, and an RSA signature >= the modulus.
  EXPECT_EQ(verify(ec.public_key(), SignatureScheme::kEcdsa, HashAlgorithm::kSha256, d256,
                   Bytes(64, 0x00)),
            kBad);
  EXPECT_EQ(verify(rsa.public_key(), SignatureScheme::kRsaPkcs1, HashAlgorithm::kSha256, d256,
                   Bytes(256, 0xff)),
            kBad);
  // A signature by another key of the same type.
  SoftwareKey& ec521 = KeyFor(kEcP521);
  const Bytes d512 = Digest(HashAlgorithm::kSha512, AsBytes("x"));
  const Bytes sig521 =
      *ec521.SignDigest(SignatureScheme::kEcdsa, HashAlgorithm::kSha512, d512, std::nullopt);
  EXPECT_EQ(sig521.size(), 132u);
  EXPECT_EQ(verify(ec.public_key(), SignatureScheme::kEcdsa, HashAlgorithm::kSha512, d512, sig521),
            kBad);
  EXPECT_EQ(ERR_peek_error(), 0u);
}

TEST(SignTest, NonStandardRsaSizeWorks) {
  Result<std::unique_ptr<SoftwareKey>> key = SoftwareKey::Generate({KeyType::kRsa, 1032, {}});
  ASSERT_OK(key);
  const KeySpec spec = (*key)->public_key().spec();
  EXPECT_EQ(spec.type, KeyType::kRsa);
  EXPECT_EQ(spec.rsa_bits, 1032);
  EXPECT_EQ(spec.SignatureSize(), 129u);
  const Bytes digest = Digest(HashAlgorithm::kSha512, AsBytes("odd"));
  const size_t max = MaxPssSaltLength(1032, HashAlgorithm::kSha512);
  const Bytes sig =
      *(*key)->SignDigest(SignatureScheme::kRsaPss, HashAlgorithm::kSha512, digest, max);
  EXPECT_EQ(sig.size(), 129u);
  EXPECT_OK(VerifyDigestSignature((*key)->public_key(), SignatureScheme::kRsaPss,
                                  HashAlgorithm::kSha512, digest, sig, max));
}

TEST(SoftwareKeyTest, GenerateRejectsSillySizes) {
  EXPECT_THAT(SoftwareKey::Generate({KeyType::kRsa, 512, {}}),
              StatusIs(ErrorCode::kInvalidArgument));
  EXPECT_THAT(SoftwareKey::Generate({KeyType::kRsa, 0, {}}), StatusIs(ErrorCode::kInvalidArgument));
}

TEST(SoftwareKeyTest, PemRoundTrip) {
  for (const KeySpec& spec : {kRsa2048, kEcP256}) {
    SCOPED_TRACE(spec.Name());
    SoftwareKey& key = KeyFor(spec);
    const std::string pem = key.PrivateKeyPem();
    EXPECT_EQ(pem.rfind("-----BEGIN PRIVATE KEY-----\n", 0), 0u);
    Result<std::unique_ptr<SoftwareKey>> loaded = SoftwareKey::FromPem(pem);
    ASSERT_OK(loaded);
    EXPECT_EQ((*loaded)->public_key().SpkiDer(), key.public_key().SpkiDer());
    EXPECT_EQ((*loaded)->public_key().spec(), spec);
    const SignatureScheme scheme =
        spec.type == KeyType::kRsa ? SignatureScheme::kRsaPkcs1 : SignatureScheme::kEcdsa;
    const Bytes digest = Digest(HashAlgorithm::kSha256, AsBytes("reloaded"));
    const Bytes sig = *(*loaded)->SignDigest(scheme, HashAlgorithm::kSha256, digest, std::nullopt);
    EXPECT_OK(VerifyDigestSignature(key.public_key(), scheme, HashAlgorithm::kSha256, digest, sig));
    // The public half must not carry the private key.
    BIGNUM* secret = nullptr;
    EXPECT_NE(
        EVP_PKEY_get_bn_param(
            key.public_key().get(),
            spec.type == KeyType::kRsa ? OSSL_PKEY_PARAM_RSA_D : OSSL_PKEY_PARAM_PRIV_KEY, &secret),
        1);
    BN_free(secret);
    ERR_clear_error();
  }
}

TEST(SoftwareKeyTest, FromPemRejectsEncryptedAndJunkWithoutPrompting) {
  SoftwareKey& key = KeyFor(kEcP256);
  BIO* bio = BIO_new(BIO_s_mem());
  char pass[] = "passphrase";
  ASSERT_EQ(PEM_write_bio_PKCS8PrivateKey(bio, key.get(), EVP_aes_256_cbc(), pass,
                                          static_cast<int>(sizeof(pass) - 1), nullptr, nullptr),
            1);
  char* data = nullptr;
  const long len = BIO_get_mem_data(bio, &data);
  const std::string encrypted(data, static_cast<size_t>(len));
  BIO_free(bio);
  ASSERT_NE(encrypted.find("ENCRYPTED PRIVATE KEY"), std::string::npos);
  EXPECT_THAT(SoftwareKey::FromPem(encrypted), StatusIs(ErrorCode::kInvalidArgument));
  EXPECT_THAT(SoftwareKey::FromPem(""), StatusIs(ErrorCode::kInvalidArgument));
  EXPECT_THAT(SoftwareKey::FromPem(key.public_key().Pem()), StatusIs(ErrorCode::kInvalidArgument));
  EXPECT_EQ(ERR_peek_error(), 0u);
}

// --- Public keys --------------------------------------------------------------------------------

class PublicKeyRoundTripTest : public ::testing::TestWithParam<KeySpec> {};

TEST_P(PublicKeyRoundTripTest, RoundTripsAndKeyId) {
  const KeySpec spec = GetParam();
  const PublicKey& pub = KeyFor(spec).public_key();
  EXPECT_EQ(pub.spec(), spec);
  EXPECT_EQ(pub.type(), spec.type);
  const Bytes spki = pub.SpkiDer();
  const Bytes key_id = pub.KeyId();
  ASSERT_EQ(key_id.size(), 20u);
  EXPECT_EQ(pub.KeyId(), key_id);

  Result<PublicKey> from_der = PublicKey::FromSpkiDer(spki);
  ASSERT_OK(from_der);
  EXPECT_EQ(from_der->SpkiDer(), spki);
  EXPECT_EQ(from_der->KeyId(), key_id);
  EXPECT_EQ(from_der->spec(), spec);

  const std::string pem = pub.Pem();
  EXPECT_EQ(pem.rfind("-----BEGIN PUBLIC KEY-----\n", 0), 0u);
  Result<PublicKey> from_pem = PublicKey::FromPem(pem);
  ASSERT_OK(from_pem);
  EXPECT_EQ(from_pem->SpkiDer(), spki);

  ASSERT_OK_AND_ASSIGN(PublicKey from_evp, PublicKey::FromEvpPkey(pub.get()));
  EXPECT_EQ(from_evp.SpkiDer(), spki);  // the same key, read into Signum's own library context

  if (spec.type == KeyType::kRsa) {
    const Bytes n = pub.RsaModulus();
    EXPECT_EQ(n.size(), static_cast<size_t>(spec.rsa_bits / 8));
    EXPECT_GE(n[0], 0x80);  // no leading zero, top bit set for an exact-size modulus
    EXPECT_EQ(pub.RsaPublicExponent(), (Bytes{0x01, 0x00, 0x01}));
    EXPECT_TRUE(pub.EcPoint().empty());
    EXPECT_EQ(key_id, Digest(HashAlgorithm::kSha1, n));
    Result<PublicKey> rebuilt = PublicKey::FromRsaComponents(n, pub.RsaPublicExponent());
    ASSERT_OK(rebuilt);
    EXPECT_EQ(rebuilt->SpkiDer(), spki);
    EXPECT_EQ(rebuilt->KeyId(), key_id);
    // Leading zeros in the components (as some tokens return them) do not change the key.
    Bytes padded_n = n;
    padded_n.insert(padded_n.begin(), 0x00);
    EXPECT_EQ(PublicKey::FromRsaComponents(padded_n, Bytes{0x00, 0x01, 0x00, 0x01})->SpkiDer(),
              spki);
  } else {
    const CurveInfo& curve = GetCurveInfo(spec.curve);
    const Bytes point = pub.EcPoint();
    ASSERT_EQ(point.size(), 1 + 2 * curve.field_size);
    EXPECT_EQ(point[0], 0x04);
    EXPECT_TRUE(pub.RsaModulus().empty());
    EXPECT_EQ(key_id, Digest(HashAlgorithm::kSha1, point));
    Result<PublicKey> rebuilt = PublicKey::FromEcPoint(spec.curve, point);
    ASSERT_OK(rebuilt);
    EXPECT_EQ(rebuilt->SpkiDer(), spki);
    EXPECT_EQ(rebuilt->KeyId(), key_id);
  }
}

INSTANTIATE_TEST_SUITE_P(Specs, PublicKeyRoundTripTest,
                         ::testing::Values(KeySpec{KeyType::kRsa, 2048, EcCurve::kP256},
                                           KeySpec{KeyType::kRsa, 3072, EcCurve::kP256},
                                           KeySpec{KeyType::kEc, 0, EcCurve::kP256},
                                           KeySpec{KeyType::kEc, 0, EcCurve::kP384},
                                           KeySpec{KeyType::kEc, 0, EcCurve::kP521}),
                         [](const ::testing::TestParamInfo<KeySpec>& info) {
                           std::string name = info.param.Name();
                           name.erase(std::remove(name.begin(), name.end(), '-'), name.end());
                           return name;
                         });

TEST(PublicKeyTest, CompressedPointSpkiStillYieldsUncompressedPoint) {
  SoftwareKey& key = KeyFor(kEcP256);
  EVP_PKEY* copy = EVP_PKEY_dup(key.public_key().get());
  ASSERT_NE(copy, nullptr);
  ASSERT_EQ(EVP_PKEY_set_utf8_string_param(copy, OSSL_PKEY_PARAM_EC_POINT_CONVERSION_FORMAT,
                                           "compressed"),
            1);
  unsigned char* der = nullptr;
  const int len = i2d_PUBKEY(copy, &der);
  ASSERT_GT(len, 0);
  const Bytes compressed_spki(der, der + len);
  OPENSSL_free(der);
  EVP_PKEY_free(copy);
  ASSERT_LT(compressed_spki.size(), key.public_key().SpkiDer().size());

  Result<PublicKey> pub = PublicKey::FromSpkiDer(compressed_spki);
  ASSERT_OK(pub);
  EXPECT_EQ(pub->EcPoint(), key.public_key().EcPoint());
  EXPECT_EQ(pub->KeyId(), key.public_key().KeyId());
}

TEST(PublicKeyTest, Rejections) {
  const PublicKey& ec = KeyFor(kEcP256).public_key();
  Bytes spki = ec.SpkiDer();
  EXPECT_THAT(PublicKey::FromSpkiDer({}), StatusIs(ErrorCode::kInvalidArgument));
  EXPECT_THAT(PublicKey::FromSpkiDer(Bytes(40, 0x30)), StatusIs(ErrorCode::kInvalidArgument));
  spki.push_back(0x00);
  EXPECT_THAT(PublicKey::FromSpkiDer(spki), StatusIs(ErrorCode::kInvalidArgument));
  EXPECT_THAT(
      PublicKey::FromPem("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n").status(),
      StatusIs(ErrorCode::kInvalidArgument));
  EXPECT_FALSE(PublicKey::FromPem("").ok());

  const Bytes point = ec.EcPoint();
  Bytes off_curve = point;
  off_curve.back() ^= 0x01;
  EXPECT_THAT(PublicKey::FromEcPoint(EcCurve::kP256, off_curve),
              StatusIs(ErrorCode::kInvalidArgument));
  EXPECT_FALSE(PublicKey::FromEcPoint(EcCurve::kP384, point).ok());  // wrong size for the curve
  Bytes compressed(point.begin(), point.begin() + 33);
  compressed[0] = static_cast<uint8_t>(0x02 | (point.back() & 1));
  EXPECT_FALSE(PublicKey::FromEcPoint(EcCurve::kP256, compressed).ok());
  Bytes wrong_prefix = point;
  wrong_prefix[0] = 0x05;
  EXPECT_FALSE(PublicKey::FromEcPoint(EcCurve::kP256, wrong_prefix).ok());
  EXPECT_FALSE(PublicKey::FromEcPoint(EcCurve::kP256, {}).ok());

  const PublicKey& rsa = KeyFor(kRsa2048).public_key();
  Bytes even_n = rsa.RsaModulus();
  even_n.back() &= 0xfe;
  EXPECT_THAT(PublicKey::FromRsaComponents(even_n, rsa.RsaPublicExponent()),
              StatusIs(ErrorCode::kInvalidArgument));
  EXPECT_FALSE(PublicKey::FromRsaComponents({}, rsa.RsaPublicExponent()).ok());
  EXPECT_FALSE(PublicKey::FromRsaComponents(rsa.RsaModulus(), {}).ok());
  EXPECT_FALSE(PublicKey::FromRsaComponents(rsa.RsaModulus(), Bytes{0x01}).ok());
  EXPECT_EQ(ERR_peek_error(), 0u);
}

TEST(PublicKeyTest, UnsupportedKeyTypesAndCurves) {
  EVP_PKEY* ed = EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519");
  ASSERT_NE(ed, nullptr);
  EXPECT_THAT(PublicKey::FromEvpPkey(ed), StatusIs(ErrorCode::kInvalidArgument));
  EVP_PKEY_free(ed);

  EVP_PKEY* k1 = EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "secp256k1");
  ASSERT_NE(k1, nullptr);
  Result<PublicKey> pub = PublicKey::FromEvpPkey(k1);
  EXPECT_THAT(pub, StatusIs(ErrorCode::kInvalidArgument));
  EXPECT_NE(pub.status().message().find("secp256k1"), std::string::npos) << pub.status().message();
  unsigned char* der = nullptr;
  const int len = i2d_PUBKEY(k1, &der);
  EXPECT_FALSE(PublicKey::FromSpkiDer(Bytes(der, der + len)).ok());
  OPENSSL_free(der);
  EVP_PKEY_free(k1);
  EXPECT_FALSE(PublicKey::FromEvpPkey(nullptr).ok());
}

// --- CKA_EC_POINT -------------------------------------------------------------------------------

TEST(EcPointOctetStringTest, WrapsLikeOpenSslAndUnwraps) {
  for (const KeySpec& spec : {kEcP256, kEcP521}) {
    SCOPED_TRACE(spec.Name());
    const Bytes point = KeyFor(spec).public_key().EcPoint();
    const Bytes wrapped = WrapEcPointOctetString(point);

    ASN1_OCTET_STRING* os = ASN1_OCTET_STRING_new();
    ASN1_OCTET_STRING_set(os, point.data(), static_cast<int>(point.size()));
    unsigned char* der = nullptr;
    const int len = i2d_ASN1_OCTET_STRING(os, &der);
    EXPECT_EQ(wrapped, Bytes(der, der + len));
    OPENSSL_free(der);
    ASN1_OCTET_STRING_free(os);

    Result<Bytes> unwrapped = UnwrapEcPointOctetString(wrapped);
    ASSERT_OK(unwrapped);
    EXPECT_EQ(*unwrapped, point);
  }
  // P-521's 133-byte point needs the long length form.
  const Bytes p521 = WrapEcPointOctetString(KeyFor(kEcP521).public_key().EcPoint());
  EXPECT_EQ(p521[0], 0x04);
  EXPECT_EQ(p521[1], 0x81);
  EXPECT_EQ(p521[2], 0x85);
  EXPECT_EQ(*UnwrapEcPointOctetString(WrapEcPointOctetString({})), Bytes{});
}

TEST(EcPointOctetStringTest, UnwrapRejectsMalformed) {
  const Bytes point = KeyFor(kEcP256).public_key().EcPoint();
  const Bytes wrapped = WrapEcPointOctetString(point);
  // A bare point (some old tokens do this) is not an OCTET STRING of the right length.
  EXPECT_THAT(UnwrapEcPointOctetString(point), StatusIs(ErrorCode::kInvalidArgument));
  EXPECT_FALSE(UnwrapEcPointOctetString({}).ok());
  EXPECT_FALSE(UnwrapEcPointOctetString(Bytes{0x04}).ok());
  Bytes truncated(wrapped.begin(), wrapped.end() - 1);
  EXPECT_FALSE(UnwrapEcPointOctetString(truncated).ok());
  Bytes extended = wrapped;
  extended.push_back(0);
  EXPECT_FALSE(UnwrapEcPointOctetString(extended).ok());
  Bytes wrong_tag = wrapped;
  wrong_tag[0] = 0x03;
  EXPECT_FALSE(UnwrapEcPointOctetString(wrong_tag).ok());
  // 65 in the long form is BER, not DER.
  Bytes non_minimal = {0x04, 0x81, 0x41};
  non_minimal.insert(non_minimal.end(), point.begin(), point.end());
  EXPECT_FALSE(UnwrapEcPointOctetString(non_minimal).ok());
  EXPECT_FALSE(UnwrapEcPointOctetString(Bytes{0x04, 0x80}).ok());  // indefinite length
  EXPECT_FALSE(UnwrapEcPointOctetString(Bytes{0x04, 0x84, 0x00, 0x00, 0x00, 0x41}).ok());
}

}  // namespace
}  // namespace signum

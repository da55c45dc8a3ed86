// Unit tests of the CTK token's portable core against the in-process fake agent: the algorithm
// table, the DER it hands to macOS, the keychain items, supportsOperation/signData for every
// algorithm and key (each signature checked by OpenSSL through signum::core, independently of the
// provider's own check), and the one Status -> TKErrorCode table.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <set>
#include <stdexcept>
#include <thread>

#include "signum/agent/fake_agent.h"
#include "signum/core/crypto.h"
#include "signum/core/encoding.h"
#include "signum/ctk/der_writer.h"
#include "signum/ctk/key_algorithms.h"
#include "signum/ctk/keychain_contents.h"
#include "signum/ctk/tk_error.h"
#include "signum/ctk/token.h"
#include "signum/testing/status_matchers.h"
#include "signum/testing/temp_dir.h"
#include "signum/testing/test_pki.h"

namespace signum::ctk {
namespace {

using agent::testing::FakeAgent;
using agent_protocol::MessageType;
using ::signum::testing::StatusIs;
using ::testing::HasSubstr;

const signum::testing::TestPki& Pki() { return signum::testing::SharedTestPki(); }
Bytes ToBytes(std::string_view text) {
  const ByteView view = AsBytes(text);
  return Bytes(view.begin(), view.end());
}

// --- The algorithm table -----------------------------------------------------------------------

TEST(KeyAlgorithmsTest, EveryConstantIsListedOnceAndParsesBack) {
  std::set<std::string_view> names;
  for (const KeyAlgorithmInfo& info : AllKeyAlgorithms()) {
    EXPECT_TRUE(info.constant_name.starts_with("kSecKeyAlgorithm")) << info.constant_name;
    EXPECT_TRUE(names.insert(info.constant_name).second) << info.constant_name;
    EXPECT_EQ(ParseKeyAlgorithm(info.constant_name), info.algorithm);
    EXPECT_EQ(KeyAlgorithmName(info.algorithm), info.constant_name);
  }
  EXPECT_EQ(names.size(), 39u);
  EXPECT_EQ(ParseKeyAlgorithm("ECDSASignatureMessageX962SHA256"),
            SecKeyAlgorithm::kECDSASignatureMessageX962SHA256);
  EXPECT_EQ(ParseKeyAlgorithm("kSecKeyAlgorithmEd25519Signature"), SecKeyAlgorithm::kUnknown);
  EXPECT_EQ(FindKeyAlgorithm(SecKeyAlgorithm::kUnknown), nullptr);
  const KeyAlgorithmInfo* pss = FindKeyAlgorithm(SecKeyAlgorithm::kRSASignatureDigestPSSSHA384);
  ASSERT_NE(pss, nullptr);
  EXPECT_EQ(pss->signature_scheme(), SignatureScheme::kRsaPss);
  EXPECT_EQ(pss->hash_algorithm(), HashAlgorithm::kSha384);
  EXPECT_EQ(pss->input, AlgorithmInput::kDigest);
}

TEST(KeyAlgorithmsTest, RequestMatchesTheTargetAndSupportsTheAlgorithmsUsed) {
  KeyAlgorithmRequest request(SecKeyAlgorithm::kECDSASignatureDigestX962SHA256,
                              {SecKeyAlgorithm::kECDSASignatureMessageX962SHA256});
  EXPECT_TRUE(request.IsAlgorithm(SecKeyAlgorithm::kECDSASignatureDigestX962SHA256));
  EXPECT_FALSE(request.IsAlgorithm(SecKeyAlgorithm::kECDSASignatureMessageX962SHA256));
  EXPECT_TRUE(request.SupportsAlgorithm(SecKeyAlgorithm::kECDSASignatureMessageX962SHA256));
  EXPECT_FALSE(request.SupportsAlgorithm(SecKeyAlgorithm::kECDSASignatureDigestX962SHA384));
}

TEST(KeyAlgorithmsTest, AKeySignsWithEveryPairTheServerOffersAndNothingElse) {
  auto rsa = provider::ProviderCertificateFromEntry(Pki().Leaf("rsa", "rsa-2048")).value();
  auto ec = provider::ProviderCertificateFromEntry(Pki().Leaf("ec", "ec-p384")).value();
  // No capabilities (an older server): every pair that fits the key.
  EXPECT_EQ(SigningAlgorithms(rsa).size(), 21u);  // 2 schemes x 5 hashes x {digest, message} + Raw
  EXPECT_EQ(SigningAlgorithms(ec).size(), 11u);   // 5 hashes x {digest, message} + DigestX962
  EXPECT_OK(CheckSigningAlgorithm(rsa, SecKeyAlgorithm::kRSASignatureDigestPKCS1v15Raw));
  EXPECT_THAT(CheckSigningAlgorithm(rsa, SecKeyAlgorithm::kRSASignatureRaw),
              StatusIs(ErrorCode::kUnimplemented, HasSubstr("raw RSA")));
  EXPECT_THAT(CheckSigningAlgorithm(ec, SecKeyAlgorithm::kECDSASignatureRFC4754),
              StatusIs(ErrorCode::kUnimplemented, HasSubstr("X9.62 DER only")));
  EXPECT_THAT(CheckSigningAlgorithm(ec, SecKeyAlgorithm::kRSASignatureDigestPSSSHA256),
              StatusIs(ErrorCode::kUnimplemented, HasSubstr("another key type")));
  EXPECT_THAT(CheckSigningAlgorithm(rsa, SecKeyAlgorithm::kRSAEncryptionOAEPSHA256),
              StatusIs(ErrorCode::kUnimplemented, HasSubstr("only sign")));
  EXPECT_THAT(CheckSigningAlgorithm(rsa, SecKeyAlgorithm::kUnknown),
              StatusIs(ErrorCode::kUnimplemented));

  // Capabilities: exactly the offered pairs (hash-less inputs: any pair of their scheme).
  const SchemeAndHash offered[] = {{SignatureScheme::kRsaPkcs1, HashAlgorithm::kSha256},
                                   {SignatureScheme::kRsaPss, HashAlgorithm::kSha384}};
  rsa.capabilities = SignatureCapabilities::Of(offered);
  const std::vector<SecKeyAlgorithm> expected = {
      SecKeyAlgorithm::kRSASignatureDigestPKCS1v15Raw,
      SecKeyAlgorithm::kRSASignatureDigestPKCS1v15SHA256,
      SecKeyAlgorithm::kRSASignatureMessagePKCS1v15SHA256,
      SecKeyAlgorithm::kRSASignatureDigestPSSSHA384,
      SecKeyAlgorithm::kRSASignatureMessagePSSSHA384,
  };
  EXPECT_EQ(SigningAlgorithms(rsa), expected);
  EXPECT_THAT(CheckSigningAlgorithm(rsa, SecKeyAlgorithm::kRSASignatureDigestPSSSHA256),
              StatusIs(ErrorCode::kUnimplemented, HasSubstr("does not offer rsa-pss/sha256")));
}

// --- DER for macOS ---------------------------------------------------------------------------

TEST(DerWriterTest, EcdsaSignaturesMatchOpenSslsEncodingForEveryShapeOfRAndS) {
  auto half = [](size_t size, uint8_t first, uint8_t fill) {
    Bytes b(size, fill);
    b[0] = first;
    return b;
  };
  for (size_t size : {32u, 48u, 66u}) {
    for (uint8_t first_r : {0x00, 0x01, 0x7f, 0x80, 0xff}) {
      for (uint8_t first_s : {0x00, 0x80}) {
        Bytes raw = half(size, first_r, 0x11);
        const Bytes s = half(size, first_s, first_s == 0 ? 0x00 : 0x22);  // s = 0 when 00..00
        raw.insert(raw.end(), s.begin(), s.end());
        SCOPED_TRACE(HexEncode(raw));
        ASSERT_OK_AND_ASSIGN(Bytes ours, EcdsaRawToX962Der(raw));
        ASSERT_OK_AND_ASSIGN(Bytes openssl, EcdsaRawToDer(raw));
        EXPECT_EQ(HexEncode(ours), HexEncode(openssl));
        ASSERT_OK_AND_ASSIGN(Bytes back, EcdsaDerToRaw(ours, size));
        EXPECT_EQ(back, raw);
      }
    }
  }
  EXPECT_THAT(EcdsaRawToX962Der(Bytes(63, 1)), StatusIs(ErrorCode::kInternal));
  EXPECT_THAT(EcdsaRawToX962Der(Bytes()), StatusIs(ErrorCode::kInternal));
}

TEST(DerWriterTest, RsaPublicKeyIsTheSubjectPublicKeyOfTheCertificate) {
  for (const char* spec : {"rsa-2048", "rsa-4096"}) {
    auto cert = provider::ProviderCertificateFromEntry(Pki().Leaf("rsa", spec)).value();
    const Bytes der =
        RsaPublicKeyDer(cert.components.rsa_modulus, cert.components.rsa_public_exponent);
    const Bytes& spki = cert.certificate.SpkiDer();
    // The SPKI's BIT STRING holds exactly the RSAPublicKey (RFC 3279 §2.3.1), at its end.
    ASSERT_GT(spki.size(), der.size());
    EXPECT_TRUE(std::equal(der.rbegin(), der.rend(), spki.rbegin())) << spec;
  }
}

// --- The token against the fake agent --------------------------------------------------------

class CtkTokenTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_OK_AND_ASSIGN(agent_, FakeAgent::Start({.dir = dir_.path()}));
    rsa_entry_ = agent_->AddLeaf(Pki(), "rsa-2048", "rsa-2048");
    ec_entry_ = agent_->AddLeaf(Pki(), "ec-p256", "ec-p256");
    token_ = std::make_unique<Token>(Options());
    rsa_id_ = HexDecode(rsa_entry_.id).value();
    ec_id_ = HexDecode(ec_entry_.id).value();
  }
  provider::AgentPoolOptions Options() const {
    provider::AgentPoolOptions options;
    options.endpoint = agent_->endpoint();
    options.timeout_ms = 5000;
    return options;
  }
  static PublicKey KeyOf(const wire::CertificateEntry& entry) {
    auto cert = provider::ProviderCertificateFromEntry(entry).value();
    return PublicKey::FromSpkiDer(cert.certificate.SpkiDer()).value();
  }
  // OpenSSL's verdict on a signature in the target algorithm's output format.
  static Status Verify(const wire::CertificateEntry& entry, const KeyAlgorithmInfo& info,
                       HashAlgorithm hash, ByteView digest, ByteView signature) {
    const PublicKey key = KeyOf(entry);
    Bytes raw(signature.begin(), signature.end());
    if (info.scheme == AlgorithmScheme::kEcdsa) {
      SIGNUM_ASSIGN_OR_RETURN(raw, EcdsaDerToRaw(signature, key.spec().SignatureSize() / 2));
    }
    return VerifyDigestSignature(key, *info.signature_scheme(), hash, digest, raw);
  }

  signum::testing::TempDir dir_{"signum-ctk-core"};
  std::unique_ptr<FakeAgent> agent_;
  wire::CertificateEntry rsa_entry_, ec_entry_;
  std::unique_ptr<Token> token_;
  Bytes rsa_id_, ec_id_;
};

TEST_F(CtkTokenTest, KeychainHasOneCertificateAndOneKeyPerCertificateNamedByThumbprint) {
  ASSERT_OK_AND_ASSIGN(KeychainContents contents, token_->KeychainItems());
  ASSERT_EQ(contents.certificates.size(), 2u);
  ASSERT_EQ(contents.keys.size(), 2u);
  const struct {
    const wire::CertificateEntry* entry;
    KeychainKeyType type;
    int bits;
    size_t algorithms;
  } expected[] = {{&rsa_entry_, KeychainKeyType::kRsa, 2048, 21},
                  {&ec_entry_, KeychainKeyType::kEcSecPrimeRandom, 256, 11}};
  for (size_t i = 0; i < 2; ++i) {
    const auto& e = expected[i];
    SCOPED_TRACE(e.entry->label);
    auto cert = provider::ProviderCertificateFromEntry(*e.entry).value();
    const KeychainCertificateItem& c = contents.certificates[i];
    const KeychainKeyItem& k = contents.keys[i];
    EXPECT_EQ(HexEncode(c.object_id), e.entry->id);
    EXPECT_EQ(k.object_id, c.object_id);
    EXPECT_EQ(c.label, e.entry->label);
    EXPECT_EQ(k.label, e.entry->label);
    EXPECT_EQ(c.der, cert.certificate.Der());
    EXPECT_EQ(k.key_type, e.type);
    EXPECT_EQ(k.key_size_in_bits, e.bits);
    EXPECT_TRUE(k.can_sign);
    EXPECT_FALSE(k.can_decrypt);
    EXPECT_FALSE(k.can_perform_key_exchange);
    EXPECT_FALSE(k.suitable_for_login);
    EXPECT_EQ(k.sign_algorithms.size(), e.algorithms);
    EXPECT_EQ(k.public_key_hash, Digest(HashAlgorithm::kSha1, k.public_key_data));
    if (e.type == KeychainKeyType::kEcSecPrimeRandom) {
      EXPECT_EQ(k.public_key_data, KeyOf(*e.entry).EcPoint());
    }
    EXPECT_EQ(contents.FindKey(c.object_id), &k);
    EXPECT_EQ(contents.FindCertificate(k.object_id), &c);
  }
  EXPECT_EQ(contents.FindKey(Bytes(20, 0)), nullptr);
  EXPECT_EQ(KeychainKeyTypeConstantName(KeychainKeyType::kEcSecPrimeRandom),
            "kSecAttrKeyTypeECSECPrimeRandom");
}

TEST_F(CtkTokenTest, SupportsExactlyTheSigningAlgorithmsOfEachKey) {
  auto session = token_->CreateSession();
  for (const auto* entry : {&rsa_entry_, &ec_entry_}) {
    auto cert = provider::ProviderCertificateFromEntry(*entry).value();
    const std::vector<SecKeyAlgorithm> supported = SigningAlgorithms(cert);
    const Bytes id = HexDecode(entry->id).value();
    for (const KeyAlgorithmInfo& info : AllKeyAlgorithms()) {
      SCOPED_TRACE(entry->label + " " + std::string(info.constant_name));
      const bool expected =
          std::find(supported.begin(), supported.end(), info.algorithm) != supported.end();
      const KeyAlgorithmRequest request(info.algorithm);
      EXPECT_EQ(session->SupportsOperation(TokenOperation::kSignData, id, request), expected);
      for (TokenOperation other :
           {TokenOperation::kNone, TokenOperation::kReadData, TokenOperation::kDecryptData,
            TokenOperation::kPerformKeyExchange}) {
        EXPECT_FALSE(session->SupportsOperation(other, id, request));
      }
    }
  }
  const KeyAlgorithmRequest sha256(SecKeyAlgorithm::kECDSASignatureDigestX962SHA256);
  EXPECT_FALSE(session->SupportsOperation(TokenOperation::kSignData, Bytes(20, 7), sha256));
  EXPECT_FALSE(session->SupportsOperation(TokenOperation::kSignData, Bytes(), sha256));
  EXPECT_EQ(agent_->requests(MessageType::kSign), 0);
}

TEST_F(CtkTokenTest, SignsWithEverySupportedAlgorithmAndOpenSslVerifiesIt) {
  auto session = token_->CreateSession();
  const Bytes message = ToBytes("codesign CodeDirectory");
  int signed_count = 0;
  for (const auto* entry : {&rsa_entry_, &ec_entry_}) {
    auto cert = provider::ProviderCertificateFromEntry(*entry).value();
    const Bytes id = HexDecode(entry->id).value();
    for (SecKeyAlgorithm algorithm : SigningAlgorithms(cert)) {
      const KeyAlgorithmInfo& info = *FindKeyAlgorithm(algorithm);
      SCOPED_TRACE(entry->label + " " + std::string(info.constant_name));
      const HashAlgorithm hash = info.hash_algorithm().value_or(HashAlgorithm::kSha256);
      const Bytes digest = Digest(hash, message);
      Bytes input;
      switch (info.input) {
        case AlgorithmInput::kMessage:
          input = message;
          break;
        case AlgorithmInput::kDigest:
        case AlgorithmInput::kAnyLengthDigest:
          input = digest;
          break;
        case AlgorithmInput::kDigestInfo:
          input = BuildDigestInfo(hash, digest).value();
          break;
        default:
          FAIL() << "unexpected input kind";
      }
      auto outcome = session->SignDataAtBoundary(input, id, KeyAlgorithmRequest(algorithm));
      ASSERT_TRUE(outcome.ok()) << outcome.error->description;
      EXPECT_OK(Verify(*entry, info, hash, digest, *outcome.value));
      // Only the digest went to the agent, and a digest input went unchanged (F57).
      EXPECT_EQ(agent_->sign_requests().back().digest, digest);
      ++signed_count;
    }
  }
  EXPECT_EQ(signed_count, 32);
}

TEST_F(CtkTokenTest, EcdsaOutputIsCanonicalDerNotRawRAndS) {
  auto session = token_->CreateSession();
  const Bytes digest = Digest(HashAlgorithm::kSha256, ToBytes("x"));
  ASSERT_OK_AND_ASSIGN(
      Bytes signature,
      session->SignData(digest, ec_id_,
                        KeyAlgorithmRequest(SecKeyAlgorithm::kECDSASignatureDigestX962SHA256)));
  ASSERT_GE(signature.size(), 8u);
  EXPECT_EQ(signature[0], 0x30);
  EXPECT_EQ(signature[1], signature.size() - 2);
  ASSERT_OK_AND_ASSIGN(Bytes raw, EcdsaDerToRaw(signature, 32));
  ASSERT_OK_AND_ASSIGN(Bytes again, EcdsaRawToDer(raw));
  EXPECT_EQ(again, signature);
}

TEST_F(CtkTokenTest, ADigestOfTheWrongLengthIsABadParameterAndNeverReachesTheAgent) {
  auto session = token_->CreateSession();
  const Bytes sha256 = Digest(HashAlgorithm::kSha256, ToBytes("x"));
  const struct {
    const Bytes* id;
    SecKeyAlgorithm algorithm;
    size_t length;
  } cases[] = {{&ec_id_, SecKeyAlgorithm::kECDSASignatureDigestX962SHA384, 32},
               {&ec_id_, SecKeyAlgorithm::kECDSASignatureDigestX962SHA256, 31},
               {&rsa_id_, SecKeyAlgorithm::kRSASignatureDigestPKCS1v15SHA256, 33},
               {&rsa_id_, SecKeyAlgorithm::kRSASignatureDigestPSSSHA512, 0},
               {&rsa_id_, SecKeyAlgorithm::kRSASignatureDigestPKCS1v15Raw, 32}};  // no DigestInfo
  for (const auto& c : cases) {
    SCOPED_TRACE(KeyAlgorithmName(c.algorithm));
    Bytes input(c.length, 0x5a);
    auto outcome = session->SignDataAtBoundary(input, *c.id, KeyAlgorithmRequest(c.algorithm));
    ASSERT_FALSE(outcome.ok());
    EXPECT_EQ(outcome.error->code, TkErrorCode::kBadParameter) << outcome.error->description;
  }
  EXPECT_THAT(
      session->SignData(Bytes(32, 1), ec_id_,
                        KeyAlgorithmRequest(SecKeyAlgorithm::kECDSASignatureDigestX962SHA384)),
      StatusIs(ErrorCode::kInvalidArgument, HasSubstr("digest itself (48 bytes)")));
  EXPECT_EQ(agent_->requests(MessageType::kSign), 0);
}

TEST_F(CtkTokenTest, AnyLengthEcdsaDigestFollowsTheX962Rules) {
  auto session = token_->CreateSession();
  const KeyAlgorithmRequest any(SecKeyAlgorithm::kECDSASignatureDigestX962);
  // A SHA-512 digest into P-256: sent as sha512, the HSM truncates (provider core's rules).
  const Bytes sha512 = Digest(HashAlgorithm::kSha512, ToBytes("x"));
  ASSERT_OK_AND_ASSIGN(Bytes signature, session->SignData(sha512, ec_id_, any));
  EXPECT_EQ(agent_->sign_requests().back().hash, HashAlgorithm::kSha512);
  EXPECT_OK(Verify(ec_entry_, *FindKeyAlgorithm(SecKeyAlgorithm::kECDSASignatureDigestX962),
                   HashAlgorithm::kSha512, sha512, signature));
}

TEST_F(CtkTokenTest, UnsupportedAlgorithmsAndUnknownKeysAreRefusedBeforeTheAgent) {
  auto session = token_->CreateSession();
  const Bytes digest(32, 1);
  const struct {
    const Bytes* id;
    SecKeyAlgorithm algorithm;
    TkErrorCode code;
  } cases[] = {
      {&rsa_id_, SecKeyAlgorithm::kRSASignatureRaw, TkErrorCode::kNotImplemented},
      {&ec_id_, SecKeyAlgorithm::kECDSASignatureRFC4754, TkErrorCode::kNotImplemented},
      {&ec_id_, SecKeyAlgorithm::kECDSASignatureDigestRFC4754SHA256, TkErrorCode::kNotImplemented},
      {&ec_id_, SecKeyAlgorithm::kRSASignatureDigestPKCS1v15SHA256, TkErrorCode::kNotImplemented},
      {&rsa_id_, SecKeyAlgorithm::kRSAEncryptionPKCS1, TkErrorCode::kNotImplemented},
      {&rsa_id_, SecKeyAlgorithm::kUnknown, TkErrorCode::kNotImplemented}};
  for (const auto& c : cases) {
    SCOPED_TRACE(KeyAlgorithmName(c.algorithm));
    auto outcome = session->SignDataAtBoundary(digest, *c.id, KeyAlgorithmRequest(c.algorithm));
    ASSERT_FALSE(outcome.ok());
    EXPECT_EQ(outcome.error->code, c.code) << outcome.error->description;
  }
  auto unknown = session->SignDataAtBoundary(
      digest, Bytes(20, 9), KeyAlgorithmRequest(SecKeyAlgorithm::kECDSASignatureDigestX962SHA256));
  ASSERT_FALSE(unknown.ok());
  EXPECT_EQ(unknown.error->code, TkErrorCode::kObjectNotFound);
  EXPECT_THAT(unknown.error->description, HasSubstr("0909090909"));
  EXPECT_EQ(agent_->requests(MessageType::kSign), 0);
}

TEST_F(CtkTokenTest, PairsTheServerDoesNotOfferAreNotSupported) {
  // The list says: PKCS#1 v1.5 with SHA-256 only.
  std::unique_ptr<SoftwareKey> key;
  wire::CertificateEntry entry = Pki().Leaf("policy", "rsa-3072", &key);
  const SchemeAndHash offered[] = {{SignatureScheme::kRsaPkcs1, HashAlgorithm::kSha256}};
  entry.capabilities = SignatureCapabilities::Of(offered);
  agent_->AddCertificate(entry, std::shared_ptr<SoftwareKey>(std::move(key)));
  ASSERT_OK(token_->RefreshKeychainItems());
  auto session = token_->CreateSession();
  const Bytes id = HexDecode(entry.id).value();
  EXPECT_TRUE(session->SupportsOperation(
      TokenOperation::kSignData, id,
      KeyAlgorithmRequest(SecKeyAlgorithm::kRSASignatureMessagePKCS1v15SHA256)));
  EXPECT_FALSE(session->SupportsOperation(
      TokenOperation::kSignData, id,
      KeyAlgorithmRequest(SecKeyAlgorithm::kRSASignatureMessagePKCS1v15SHA384)));
  // A DigestInfo names its hash only in the data: checked there.
  const Bytes sha384 = Digest(HashAlgorithm::kSha384, ToBytes("x"));
  auto outcome = session->SignDataAtBoundary(
      BuildDigestInfo(HashAlgorithm::kSha384, sha384).value(), id,
      KeyAlgorithmRequest(SecKeyAlgorithm::kRSASignatureDigestPKCS1v15Raw));
  ASSERT_FALSE(outcome.ok());
  EXPECT_EQ(outcome.error->code, TkErrorCode::kNotImplemented);
  EXPECT_EQ(agent_->requests(MessageType::kSign), 0);
}

TEST_F(CtkTokenTest, AgentAndServerErrorsMapToTheirTkErrorCodes) {
  auto session = token_->CreateSession();
  const KeyAlgorithmRequest request(SecKeyAlgorithm::kECDSASignatureMessageX962SHA256);
  const Bytes data = ToBytes("x");
  const struct {
    Status error;
    TkErrorCode code;
  } cases[] = {
      {PermissionDeniedError("policy 'release' denies this"), TkErrorCode::kAuthenticationFailed},
      {UnauthenticatedError("token revoked"), TkErrorCode::kAuthenticationFailed},
      {UnavailableError("signum-server unreachable"), TkErrorCode::kCommunicationError},
      {ResourceExhaustedError("rate limit"), TkErrorCode::kCommunicationError}};
  for (const auto& c : cases) {
    agent_->FailNext(MessageType::kSign, c.error);
    auto outcome = session->SignDataAtBoundary(data, ec_id_, request);
    ASSERT_FALSE(outcome.ok());
    EXPECT_EQ(outcome.error->code, c.code);
    EXPECT_THAT(outcome.error->description, HasSubstr(c.error.message()));
  }
  // A forged signature never reaches macOS.
  agent_->SetSignHandler([](const wire::SignRequest&) -> Result<Bytes> { return Bytes(64, 1); });
  auto forged = session->SignDataAtBoundary(data, ec_id_, request);
  ASSERT_FALSE(forged.ok());
  EXPECT_EQ(forged.error->code, TkErrorCode::kCorruptedData);
  agent_->SetSignHandler(nullptr);
  EXPECT_TRUE(session->SignDataAtBoundary(data, ec_id_, request).ok());
}

TEST_F(CtkTokenTest, AnAgentThatIsDownIsACommunicationErrorAndNoSupport) {
  provider::AgentPoolOptions options;
  agent::AgentEndpoint absent;
  absent.unix_socket = dir_.path() + "/absent.sock";
  options.endpoint = absent;
  Token down(options);
  EXPECT_THAT(down.KeychainItems(), StatusIs(ErrorCode::kUnavailable));
  auto session = down.CreateSession();
  const KeyAlgorithmRequest request(SecKeyAlgorithm::kECDSASignatureMessageX962SHA256);
  EXPECT_FALSE(session->SupportsOperation(TokenOperation::kSignData, ec_id_, request));
  auto outcome = session->SignDataAtBoundary(ToBytes("x"), ec_id_, request);
  ASSERT_FALSE(outcome.ok());
  EXPECT_EQ(outcome.error->code, TkErrorCode::kCommunicationError);
  EXPECT_THAT(outcome.error->description, HasSubstr("absent.sock"));
}

TEST_F(CtkTokenTest, SessionsSignConcurrently) {
  constexpr int kThreads = 8, kEach = 6;
  std::atomic<int> verified{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      auto session = token_->CreateSession();
      const bool ec = t % 2 == 0;
      const auto algorithm = ec ? SecKeyAlgorithm::kECDSASignatureMessageX962SHA384
                                : SecKeyAlgorithm::kRSASignatureMessagePSSSHA256;
      const HashAlgorithm hash = ec ? HashAlgorithm::kSha384 : HashAlgorithm::kSha256;
      for (int i = 0; i < kEach; ++i) {
        const Bytes data = ToBytes("thread " + std::to_string(t) + " " + std::to_string(i));
        auto outcome = session->SignDataAtBoundary(data, ec ? ec_id_ : rsa_id_,
                                                   KeyAlgorithmRequest(algorithm));
        if (outcome.ok() && Verify(ec ? ec_entry_ : rsa_entry_, *FindKeyAlgorithm(algorithm), hash,
                                   Digest(hash, data), *outcome.value)
                                .ok()) {
          ++verified;
        }
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(verified.load(), kThreads * kEach);
}

// --- The one table ---------------------------------------------------------------------------

TEST(TkErrorTest, EveryErrorCodeHasItsTkErrorCode) {
  const std::pair<ErrorCode, TkErrorCode> table[] = {
      {ErrorCode::kInvalidArgument, TkErrorCode::kBadParameter},
      {ErrorCode::kAlreadyExists, TkErrorCode::kBadParameter},
      {ErrorCode::kNotFound, TkErrorCode::kObjectNotFound},
      {ErrorCode::kUnimplemented, TkErrorCode::kNotImplemented},
      {ErrorCode::kUnauthenticated, TkErrorCode::kAuthenticationFailed},
      {ErrorCode::kPermissionDenied, TkErrorCode::kAuthenticationFailed},
      {ErrorCode::kUnavailable, TkErrorCode::kCommunicationError},
      {ErrorCode::kDeadlineExceeded, TkErrorCode::kCommunicationError},
      {ErrorCode::kResourceExhausted, TkErrorCode::kCommunicationError},
      {ErrorCode::kFailedPrecondition, TkErrorCode::kCommunicationError},
      {ErrorCode::kDataLoss, TkErrorCode::kCorruptedData},
      {ErrorCode::kInternal, TkErrorCode::kCorruptedData},
  };
  for (const auto& [code, tk] : table) {
    EXPECT_EQ(ToTkErrorCode(code), tk) << ErrorCodeName(code);
  }
  EXPECT_EQ(TkErrorCodeName(TkErrorCode::kBadParameter), "TKErrorCodeBadParameter");
  EXPECT_EQ(static_cast<long>(TkErrorCode::kBadParameter), -8);
  EXPECT_EQ(TkErrorCodeName(static_cast<TkErrorCode>(-42)), "TKErrorCode(-42)");
  const TkError error = ToTkError("signData", NotFoundError("no key ab12"));
  EXPECT_EQ(error.code, TkErrorCode::kObjectNotFound);
  EXPECT_EQ(error.description, "signData: NOT_FOUND: no key ab12");
}

TEST(TkErrorTest, AnExceptionBecomesAnErrorAtTheBoundary) {
  auto outcome = ReturnAtTkBoundary<Bytes>(
      "signData", []() -> Result<Bytes> { throw std::runtime_error("boom"); });
  ASSERT_FALSE(outcome.ok());
  EXPECT_EQ(outcome.error->code, TkErrorCode::kCorruptedData);
  EXPECT_THAT(outcome.error->description, HasSubstr("boom"));
  auto fine = ReturnAtTkBoundary<Bytes>("signData", []() -> Result<Bytes> { return Bytes{1}; });
  ASSERT_TRUE(fine.ok());
  EXPECT_EQ(*fine.value, Bytes{1});
}

}  // namespace
}  // namespace signum::ctk

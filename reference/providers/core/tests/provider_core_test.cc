// Unit tests of the provider model: certificate parsing and deduplication, the cached certificate
// source, the raw-ECDSA input rules, digest validation, the connection pool's failure behaviour
// and the process context. No agent is needed: the pool is pointed at endpoints that do not exist,
// and the certificate lists are built from real certificates issued by a throwaway software CA.
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <functional>
#include <nlohmann/json.hpp>

#include <chrono>
#include <thread>

#include "signum/agent/fake_agent.h"
#include "signum/core/agent_protocol.h"
#include "signum/core/crypto.h"
#include "signum/core/x509.h"
#include "signum/provider/agent_pool.h"
#include "signum/provider/certificate_source.h"
#include "signum/provider/process_context.h"
#include "signum/provider/provider_certificate.h"
#include "signum/provider/public_key_components.h"
#include "signum/provider/signer.h"
#include "signum/testing/temp_dir.h"
#include "signum/testing/status_matchers.h"
#include "signum/testing/test_pki.h"

namespace signum::provider {
namespace {

using ::signum::testing::StatusIs;

const testing::TestPki& SharedPki() { return testing::SharedTestPki(); }

TEST(ProviderCertificateTest, ParsesAnEntryWithThumbprintChainAndKey) {
  wire::CertificateEntry e = SharedPki().Leaf("ec-leaf", "ec-p384");
  auto c = ProviderCertificateFromEntry(e);
  ASSERT_OK(c);
  EXPECT_EQ(c->id, e.id);
  EXPECT_EQ(c->thumbprint.size(), 20u);
  EXPECT_EQ(HexEncode(c->thumbprint), e.id);
  EXPECT_EQ(c->label, "ec-leaf");
  EXPECT_EQ(c->key_spec.Name(), "ec-p384");
  EXPECT_EQ(c->components.ec_point, PublicKey::FromSpkiDer(c->certificate.SpkiDer())->EcPoint());
  ASSERT_EQ(c->chain.size(), 2u);
  EXPECT_EQ(c->chain[0].Sha1ThumbprintHex(), SharedPki().issuing().Sha1ThumbprintHex());
  EXPECT_TRUE(c->AllowsScheme(SignatureScheme::kEcdsa));
  EXPECT_FALSE(c->AllowsScheme(SignatureScheme::kRsaPss));
  EXPECT_TRUE(c->AllowsHash(HashAlgorithm::kSha256));
  EXPECT_FALSE(c->AllowsHash(HashAlgorithm::kSha1));
}

TEST(ProviderCertificateTest, SignableIsTheCapabilitiesOrEverythingFromAnOlderServer) {
  wire::CertificateEntry e = SharedPki().Leaf("rsa-leaf", "rsa-2048");
  // A server that predates capabilities: every pair that fits the key, as before.
  auto old_server = ProviderCertificateFromEntry(e);
  ASSERT_OK(old_server);
  EXPECT_FALSE(old_server->capabilities.has_value());
  EXPECT_EQ(old_server->Signable(), SignatureCapabilities::AllFor(KeyType::kRsa));

  // Exact pairs; ones that cannot fit the key (ecdsa on RSA) are dropped.
  SignatureCapabilities offered;
  offered.Add(SignatureScheme::kRsaPkcs1, HashAlgorithm::kSha256);
  offered.Add(SignatureScheme::kRsaPss, HashAlgorithm::kSha384);
  offered.Add(SignatureScheme::kEcdsa, HashAlgorithm::kSha256);
  e.capabilities = offered;
  auto c = ProviderCertificateFromEntry(e);
  ASSERT_OK(c);
  EXPECT_EQ(c->Signable().ToString(), "rsa-pkcs1: sha256; rsa-pss: sha384");
  EXPECT_FALSE(c->Signable().Allows(SignatureScheme::kRsaPss, HashAlgorithm::kSha256));

  // An empty list means nothing can be signed, not "unknown".
  e.capabilities = SignatureCapabilities();
  c = ProviderCertificateFromEntry(e);
  ASSERT_OK(c);
  EXPECT_TRUE(c->Signable().empty());
}

TEST(ProviderCertificateTest, RejectsAnIdThatIsNotTheThumbprint) {
  wire::CertificateEntry e = SharedPki().Leaf("x", "ec-p256");
  e.id = std::string(40, 'a');
  auto c = ProviderCertificateFromEntry(e);
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("thumbprint"), std::string::npos);
}

TEST(ProviderCertificateTest, RejectsAKeyDescriptionThatDoesNotMatch) {
  wire::CertificateEntry e = SharedPki().Leaf("x", "ec-p256");
  e.key.bits = 384;
  EXPECT_FALSE(ProviderCertificateFromEntry(e).ok());
  e = SharedPki().Leaf("y", "ec-p256");
  e.key.type = KeyType::kRsa;
  EXPECT_FALSE(ProviderCertificateFromEntry(e).ok());
}

TEST(ProviderCertificateTest, RejectsBrokenPem) {
  wire::CertificateEntry e = SharedPki().Leaf("x", "ec-p256");
  e.certificate_pem = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
  EXPECT_FALSE(ProviderCertificateFromEntry(e).ok());
  e = SharedPki().Leaf("y", "ec-p256");
  e.chain_pem.push_back("junk");
  EXPECT_FALSE(ProviderCertificateFromEntry(e).ok());
}

TEST(PublicKeyComponentsTest, ReadsEverySupportedKeyFromTheSpki) {
  for (const KeySpec& spec : SupportedKeySpecs()) {
    auto key = SoftwareKey::Generate(spec).value();
    auto parsed = ParseSubjectPublicKeyInfo(key->public_key().SpkiDer());
    ASSERT_OK(parsed) << spec.Name();
    EXPECT_EQ(parsed->spec, spec) << spec.Name();
    if (spec.type == KeyType::kRsa) {
      EXPECT_EQ(parsed->rsa_modulus, key->public_key().RsaModulus());
      EXPECT_EQ(parsed->rsa_public_exponent, key->public_key().RsaPublicExponent());
      EXPECT_TRUE(parsed->ec_point.empty());
    } else {
      EXPECT_EQ(parsed->ec_point, key->public_key().EcPoint());
      EXPECT_TRUE(parsed->rsa_modulus.empty());
    }
  }
}

TEST(PublicKeyComponentsTest, RejectsWhatIsNotAnSpkiOfASupportedKey) {
  EXPECT_FALSE(ParseSubjectPublicKeyInfo(Bytes{}).ok());
  EXPECT_FALSE(ParseSubjectPublicKeyInfo(Bytes{0x30, 0x03, 0x02, 0x01, 0x01}).ok());
  Bytes spki =
      SoftwareKey::Generate(ParseKeySpec("ec-p256").value()).value()->public_key().SpkiDer();
  spki.resize(spki.size() - 1);
  EXPECT_FALSE(ParseSubjectPublicKeyInfo(spki).ok());
}

TEST(CertificateSetTest, DeduplicatesAuthoritiesAndLeavesAndSkipsBadEntries) {
  wire::CertificateListResponse list;
  list.certificates.push_back(SharedPki().Leaf("a", "ec-p256"));
  list.certificates.push_back(SharedPki().Leaf("b", "rsa-2048"));
  list.certificates.push_back(list.certificates[0]);  // listed twice
  wire::CertificateEntry bad = SharedPki().Leaf("c", "ec-p256");
  bad.id = "00";
  list.certificates.push_back(bad);
  CertificateSet set = BuildCertificateSet(list);
  ASSERT_EQ(set.certificates.size(), 2u);
  EXPECT_EQ(set.certificates[0]->label, "a");
  EXPECT_EQ(set.certificates[1]->label, "b");
  EXPECT_EQ(set.skipped.size(), 2u);
  // Both leaves share issuing CA and root: each appears once, issuing first.
  ASSERT_EQ(set.authorities.size(), 2u);
  EXPECT_EQ(set.authorities[0].Sha1ThumbprintHex(), SharedPki().issuing().Sha1ThumbprintHex());
  EXPECT_EQ(set.authorities[1].Sha1ThumbprintHex(), SharedPki().root().Sha1ThumbprintHex());
  EXPECT_NE(set.FindById(list.certificates[1].id), nullptr);
  EXPECT_EQ(set.FindById("nope"), nullptr);
}

TEST(CertificateSetTest, ACaThatIsAlsoASigningCertificateIsNotListedTwice) {
  wire::CertificateListResponse list;
  wire::CertificateEntry leaf = SharedPki().Leaf("a", "ec-p256");
  list.certificates.push_back(leaf);
  // The issuing CA offered as a signing certificate in its own right.
  wire::CertificateEntry ca;
  ca.id = SharedPki().issuing().Sha1ThumbprintHex();
  ca.label = "issuing";
  ca.key = {KeyType::kEc, 256, EcCurve::kP256};
  ca.certificate_pem = SharedPki().issuing().Pem();
  ca.chain_pem = {SharedPki().root().Pem()};
  list.certificates.push_back(ca);
  CertificateSet set = BuildCertificateSet(list);
  ASSERT_EQ(set.certificates.size(), 2u);
  ASSERT_EQ(set.authorities.size(), 1u);
  EXPECT_EQ(set.authorities[0].Sha1ThumbprintHex(), SharedPki().root().Sha1ThumbprintHex());
}

TEST(CertificateSourceTest, LoadsOnceAndCaches) {
  int calls = 0;
  wire::CertificateListResponse list;
  list.certificates.push_back(SharedPki().Leaf("a", "ec-p256"));
  CertificateSource source([&](bool refresh) -> Result<wire::CertificateListResponse> {
    ++calls;
    EXPECT_FALSE(refresh);
    return list;
  });
  EXPECT_EQ(source.generation(), 0u);
  auto first = source.Get();
  ASSERT_OK(first);
  auto second = source.Get();
  ASSERT_OK(second);
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(first->get(), second->get());
  EXPECT_EQ((*first)->certificates.size(), 1u);
  EXPECT_EQ(source.generation(), 1u);
}

TEST(CertificateSourceTest, RetriesAFailedLoadAtMostOncePerInterval) {
  int calls = 0;
  bool fail = true;
  wire::CertificateListResponse list;
  list.certificates.push_back(SharedPki().Leaf("a", "ec-p256"));
  CertificateSource source(
      [&](bool) -> Result<wire::CertificateListResponse> {
        ++calls;
        if (fail) return UnavailableError("agent not running");
        return list;
      },
      std::chrono::milliseconds(200));
  auto r = source.Get();
  ASSERT_THAT(r, StatusIs(ErrorCode::kUnavailable));
  EXPECT_NE(r.status().message().find("agent not running"), std::string::npos);
  // Within the interval the remembered error comes back without asking again.
  EXPECT_FALSE(source.Get().ok());
  EXPECT_EQ(calls, 1);
  fail = false;
  std::this_thread::sleep_for(std::chrono::milliseconds(250));
  auto later = source.Get();
  ASSERT_OK(later);
  EXPECT_EQ(calls, 2);
  EXPECT_EQ((*later)->certificates.size(), 1u);
}

TEST(CertificateSourceTest, RefreshAsksTheAgentToBypassItsCacheAndKeepsTheOldSetOnFailure) {
  std::vector<bool> refreshes;
  bool fail = false;
  wire::CertificateListResponse list;
  list.certificates.push_back(SharedPki().Leaf("a", "ec-p256"));
  CertificateSource source([&](bool refresh) -> Result<wire::CertificateListResponse> {
    refreshes.push_back(refresh);
    if (fail) return UnavailableError("down");
    return list;
  });
  auto first = source.Get();
  ASSERT_OK(first);
  list.certificates.push_back(SharedPki().Leaf("b", "ec-p256"));
  auto refreshed = source.Refresh();
  ASSERT_OK(refreshed);
  EXPECT_EQ((*refreshed)->certificates.size(), 2u);
  fail = true;
  EXPECT_FALSE(source.Refresh().ok());
  auto kept = source.Get();
  ASSERT_OK(kept);
  EXPECT_EQ((*kept)->certificates.size(), 2u);
  EXPECT_EQ(refreshes, (std::vector<bool>{false, true, true}));
}

TEST(EcdsaInputTest, KnownHashLengthsGoAsThatHashEvenWhenLongerThanTheCurve) {
  for (const HashInfo& h : AllHashes()) {
    Bytes input(h.digest_size, 0xAB);
    for (const CurveInfo& c : AllCurves()) {
      auto prepared = PrepareRawEcdsaInput(c.curve, input);
      ASSERT_OK(prepared) << c.name << " " << h.name;
      EXPECT_EQ(prepared->hash, h.algorithm);
      EXPECT_EQ(prepared->digest, input);
      EXPECT_EQ(prepared->scheme, SignatureScheme::kEcdsa);
    }
  }
}

TEST(EcdsaInputTest, LongerInputsAreTruncatedToTheCurveWhenThatIsAHashLength) {
  Bytes input(40);
  for (size_t i = 0; i < input.size(); ++i) input[i] = static_cast<uint8_t>(i + 1);
  auto p256 = PrepareRawEcdsaInput(EcCurve::kP256, input);
  ASSERT_OK(p256);
  EXPECT_EQ(p256->hash, HashAlgorithm::kSha256);
  EXPECT_EQ(p256->digest, Bytes(input.begin(), input.begin() + 32));
  Bytes long_input(100, 7);
  auto p384 = PrepareRawEcdsaInput(EcCurve::kP384, long_input);
  ASSERT_OK(p384);
  EXPECT_EQ(p384->hash, HashAlgorithm::kSha384);
  EXPECT_EQ(p384->digest.size(), 48u);
  // P-521's order is not a whole number of bytes: 65+ byte inputs cannot be labelled.
  EXPECT_FALSE(PrepareRawEcdsaInput(EcCurve::kP521, Bytes(65, 1)).ok());
  EXPECT_FALSE(PrepareRawEcdsaInput(EcCurve::kP521, Bytes(66, 1)).ok());
  EXPECT_FALSE(PrepareRawEcdsaInput(EcCurve::kP521, Bytes(100, 1)).ok());
}

TEST(EcdsaInputTest, ShorterInputsAreLeftPaddedToTheShortestSha2LengthThatFits) {
  auto p256 = PrepareRawEcdsaInput(EcCurve::kP256, Bytes{1, 2, 3});
  ASSERT_OK(p256);
  EXPECT_EQ(p256->hash, HashAlgorithm::kSha224);
  ASSERT_EQ(p256->digest.size(), 28u);
  EXPECT_EQ(p256->digest[24], 0);
  EXPECT_EQ(p256->digest[25], 1);
  EXPECT_EQ(p256->digest[27], 3);
  auto thirty = PrepareRawEcdsaInput(EcCurve::kP384, Bytes(30, 9));
  ASSERT_OK(thirty);
  EXPECT_EQ(thirty->hash, HashAlgorithm::kSha256);
  auto forty = PrepareRawEcdsaInput(EcCurve::kP521, Bytes(50, 9));
  ASSERT_OK(forty);
  EXPECT_EQ(forty->hash, HashAlgorithm::kSha512);
  EXPECT_FALSE(PrepareRawEcdsaInput(EcCurve::kP256, Bytes{}).ok());
}

TEST(EcdsaInputTest, PaddedAndTruncatedInputsSignTheSameValueAsTheRawInput) {
  // The normalisation must not change what ECDSA signs: a signature over the prepared digest
  // verifies as a signature over the original input (OpenSSL applies X9.62 truncation itself).
  for (const char* spec_name : {"ec-p256", "ec-p384"}) {
    auto key = SoftwareKey::Generate(ParseKeySpec(spec_name).value()).value();
    for (size_t n : {3u, 30u, 40u, 47u, 70u}) {
      Bytes input(n);
      for (size_t i = 0; i < n; ++i) input[i] = static_cast<uint8_t>(0x80 + i);
      auto prepared = PrepareRawEcdsaInput(key->public_key().spec().curve, input);
      if (!prepared.ok()) continue;
      auto sig =
          key->SignDigest(SignatureScheme::kEcdsa, prepared->hash, prepared->digest, std::nullopt);
      ASSERT_OK(sig);
      // Verify against the prepared digest, the form every verifier sees.
      EXPECT_OK(VerifyDigestSignature(key->public_key(), SignatureScheme::kEcdsa, prepared->hash,
                                      prepared->digest, *sig))
          << spec_name << " n=" << n;
    }
  }
}

TEST(ValidateDigestToSignTest, ChecksSchemeLengthAndSalt) {
  const KeySpec rsa = ParseKeySpec("rsa-2048").value();
  const KeySpec ec = ParseKeySpec("ec-p256").value();
  DigestToSign ok{SignatureScheme::kRsaPkcs1, HashAlgorithm::kSha256, Bytes(32), std::nullopt};
  EXPECT_OK(ValidateDigestToSign(rsa, ok));
  EXPECT_FALSE(ValidateDigestToSign(ec, ok).ok());
  DigestToSign short_digest{SignatureScheme::kRsaPkcs1, HashAlgorithm::kSha256, Bytes(31),
                            std::nullopt};
  EXPECT_FALSE(ValidateDigestToSign(rsa, short_digest).ok());
  DigestToSign pss{SignatureScheme::kRsaPss, HashAlgorithm::kSha256, Bytes(32), 222};
  EXPECT_OK(ValidateDigestToSign(rsa, pss));
  pss.pss_salt_length = 223;
  EXPECT_FALSE(ValidateDigestToSign(rsa, pss).ok());
  DigestToSign salted_pkcs1{SignatureScheme::kRsaPkcs1, HashAlgorithm::kSha256, Bytes(32), 32};
  EXPECT_FALSE(ValidateDigestToSign(rsa, salted_pkcs1).ok());
}

TEST(AgentConnectionPoolTest, AnEndpointErrorIsReturnedByEveryRequest) {
  AgentPoolOptions options;
  options.endpoint =
      FailedPreconditionError("SIGNUM_AGENT_TCP is set but SIGNUM_AGENT_SECRET_FILE is not");
  AgentConnectionPool pool(options);
  auto list = pool.ListCertificates(false);
  ASSERT_THAT(list, StatusIs(ErrorCode::kFailedPrecondition));
  EXPECT_NE(pool.DescribeEndpoint().find("SIGNUM_AGENT_SECRET_FILE"), std::string::npos);
}

TEST(AgentConnectionPoolTest, AnAbsentAgentFailsFastAsUnavailable) {
  testing::TempDir dir("signum-pool");
  AgentPoolOptions options;
  agent::AgentEndpoint endpoint;
  endpoint.unix_socket = dir.File("no-agent.sock");
  options.endpoint = endpoint;
  options.timeout_ms = 5000;
  AgentConnectionPool pool(options);
  const auto start = std::chrono::steady_clock::now();
  auto list = pool.ListCertificates(false);
  ASSERT_THAT(list, StatusIs(ErrorCode::kUnavailable)) << list.status().ToString();
  EXPECT_NE(list.status().message().find("no-agent.sock"), std::string::npos);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(2));
  EXPECT_EQ(pool.idle_connections(), 0u);
  EXPECT_EQ(pool.DescribeEndpoint(), "unix:" + dir.File("no-agent.sock"));
}

TEST(SignerTest, ValidatesBeforeAskingTheAgent) {
  AgentPoolOptions options;
  options.endpoint = UnavailableError("must not be reached");
  AgentConnectionPool pool(options);
  Signer signer(&pool, CurrentProcessContext());
  auto cert = ProviderCertificateFromEntry(SharedPki().Leaf("a", "ec-p256")).value();
  auto wrong_scheme = signer.SignDigest(
      cert, {SignatureScheme::kRsaPkcs1, HashAlgorithm::kSha256, Bytes(32), std::nullopt});
  ASSERT_THAT(wrong_scheme, StatusIs(ErrorCode::kInvalidArgument));
  // A valid request reaches the (unreachable) agent.
  auto unreachable =
      signer.SignData(cert, SignatureScheme::kEcdsa, HashAlgorithm::kSha256, AsBytes("data"));
  ASSERT_THAT(unreachable, StatusIs(ErrorCode::kUnavailable));
}

// --- Against the fake agent: the pool and the signer's sign and error paths ------------------

using agent::testing::FakeAgent;
using agent::testing::FakeAgentOptions;
using agent_protocol::MessageType;
using signum::testing::StatusIs;

AgentPoolOptions PoolFor(const FakeAgent& agent, int timeout_ms = 5000) {
  AgentPoolOptions options;
  options.endpoint = agent.endpoint();
  options.timeout_ms = timeout_ms;
  return options;
}

// A fake agent on a private socket, and the pool and signer a provider would build over it.
class FakeAgentSignerTest : public ::testing::Test {
 protected:
  void SetUp() override { StartWithTimeout(5000); }
  // Replaces the pool and signer with ones that wait at most `timeout_ms` for an answer.
  void StartWithTimeout(int timeout_ms) {
    signer_.reset();
    pool_.reset();
    if (agent_ == nullptr) {
      ASSERT_OK_AND_ASSIGN(agent_, FakeAgent::Start({.dir = dir_.path()}));
    }
    pool_ = std::make_unique<AgentConnectionPool>(PoolFor(*agent_, timeout_ms));
    signer_ = std::make_unique<Signer>(pool_.get(), CurrentProcessContext());
  }

  testing::TempDir dir_{"signum-fake-agent"};
  std::unique_ptr<FakeAgent> agent_;
  std::unique_ptr<AgentConnectionPool> pool_;
  std::unique_ptr<Signer> signer_;
};

// A forged signature (right length, wrong bytes) must never reach the tool: the provider checks
// each against the certificate it holds. A signature that verifies passes.
TEST_F(FakeAgentSignerTest, ASignatureThatDoesNotVerifyIsNeverReturned) {
  for (const char* spec : {"rsa-2048", "ec-p256"}) {
    SCOPED_TRACE(spec);
    ASSERT_OK_AND_ASSIGN(auto cert,
                         ProviderCertificateFromEntry(agent_->AddLeaf(SharedPki(), spec, spec)));
    const bool rsa = cert.key_spec.type == KeyType::kRsa;
    const SignatureScheme scheme = rsa ? SignatureScheme::kRsaPkcs1 : SignatureScheme::kEcdsa;
    agent_->SetSignHandler([&](const wire::SignRequest&) -> Result<Bytes> {
      return Bytes(cert.key_spec.SignatureSize(), 0x5a);
    });
    EXPECT_THAT(signer_->SignData(cert, scheme, HashAlgorithm::kSha256, AsBytes("release.bin")),
                StatusIs(ErrorCode::kDataLoss,
                         ::testing::HasSubstr("does not verify with the certificate's key")));

    agent_->SetSignHandler(nullptr);
    ASSERT_OK_AND_ASSIGN(Bytes real, signer_->SignData(cert, scheme, HashAlgorithm::kSha256,
                                                     AsBytes("release.bin")));
    EXPECT_EQ(real.size(), cert.key_spec.SignatureSize());
  }
}

// Every scheme and hash the fake agent's software keys serve comes back verified, with the digest
// and the claimed context the signer sent.
TEST_F(FakeAgentSignerTest, SignsEverySchemeThroughTheAgentAndSendsTheDigestAndContext) {
  ASSERT_OK_AND_ASSIGN(auto rsa, ProviderCertificateFromEntry(
                                     agent_->AddLeaf(SharedPki(), "rsa", "rsa-3072")));
  ASSERT_OK_AND_ASSIGN(auto ec, ProviderCertificateFromEntry(
                                    agent_->AddLeaf(SharedPki(), "ec", "ec-p384")));
  const struct {
    const ProviderCertificate* cert;
    SignatureScheme scheme;
    HashAlgorithm hash;
  } cases[] = {{&rsa, SignatureScheme::kRsaPkcs1, HashAlgorithm::kSha256},
               {&rsa, SignatureScheme::kRsaPss, HashAlgorithm::kSha384},
               {&ec, SignatureScheme::kEcdsa, HashAlgorithm::kSha512}};
  for (const auto& c : cases) {
    SCOPED_TRACE(std::string(SchemeName(c.scheme)) + "/" + std::string(HashName(c.hash)));
    ASSERT_OK_AND_ASSIGN(Bytes signature,
                         signer_->SignData(*c.cert, c.scheme, c.hash, AsBytes("payload")));
    // Independently of the provider's own check: OpenSSL over the certificate's key.
    ASSERT_OK_AND_ASSIGN(auto key, PublicKey::FromSpkiDer(c.cert->certificate.SpkiDer()));
    EXPECT_OK(VerifyDigestSignature(key, c.scheme, c.hash, Digest(c.hash, AsBytes("payload")),
                                    signature, std::nullopt));
  }
  const auto requests = agent_->sign_requests();
  ASSERT_EQ(requests.size(), 3u);
  EXPECT_EQ(requests[1].certificate_id, rsa.id);
  EXPECT_EQ(requests[1].digest, Digest(HashAlgorithm::kSha384, AsBytes("payload")));
  EXPECT_EQ(requests[2].context.process, "signum_provider_core_test");
}

// The agent's error reaches the caller with its code and message, and the connection stays usable.
TEST_F(FakeAgentSignerTest, AnAgentErrorIsReturnedWithItsCodeAndTheConnectionIsKept) {
  ASSERT_OK_AND_ASSIGN(auto cert, ProviderCertificateFromEntry(
                                      agent_->AddLeaf(SharedPki(), "ec", "ec-p256")));
  for (const Status& error : {PermissionDeniedError("policy 'release' denies this process"),
                              UnavailableError("signum-server unreachable"),
                              ResourceExhaustedError("rate limit")}) {
    agent_->FailNext(MessageType::kSign, error);
    EXPECT_THAT(signer_->SignData(cert, SignatureScheme::kEcdsa, HashAlgorithm::kSha256,
                                AsBytes("x")),
                StatusIs(error.code(), ::testing::HasSubstr(error.message())));
  }
  EXPECT_OK(signer_->SignData(cert, SignatureScheme::kEcdsa, HashAlgorithm::kSha256, AsBytes("x")));
  EXPECT_EQ(agent_->connections(), 1) << "an error reply must not cost the connection";
}

// An agent that drops the connection mid-request: that call fails as UNAVAILABLE (the request may
// have been signed; it is not silently repeated), the next one reconnects.
TEST_F(FakeAgentSignerTest, ADroppedConnectionFailsThatCallAndTheNextReconnects) {
  ASSERT_OK_AND_ASSIGN(auto cert, ProviderCertificateFromEntry(
                                      agent_->AddLeaf(SharedPki(), "rsa", "rsa-2048")));
  agent_->DisconnectNext(MessageType::kSign);
  EXPECT_THAT(signer_->SignData(cert, SignatureScheme::kRsaPkcs1, HashAlgorithm::kSha256,
                              AsBytes("x")),
              StatusIs(ErrorCode::kUnavailable));
  EXPECT_EQ(agent_->requests(MessageType::kSign), 1);
  EXPECT_OK(signer_->SignData(cert, SignatureScheme::kRsaPkcs1, HashAlgorithm::kSha256,
                            AsBytes("x")));
  EXPECT_EQ(agent_->connections(), 2);
}

// A silent agent costs the caller the pool's timeout, not forever, and the late answer is never
// read as the answer to a later request.
TEST_F(FakeAgentSignerTest, AnAgentSlowerThanTheTimeoutFailsAsDeadlineExceeded) {
  StartWithTimeout(/*timeout_ms=*/300);
  ASSERT_OK_AND_ASSIGN(auto cert, ProviderCertificateFromEntry(
                                      agent_->AddLeaf(SharedPki(), "ec", "ec-p256")));
  agent_->SetDelay(MessageType::kSign, std::chrono::milliseconds(1500));
  const auto start = std::chrono::steady_clock::now();
  EXPECT_THAT(signer_->SignData(cert, SignatureScheme::kEcdsa, HashAlgorithm::kSha256,
                              AsBytes("x")),
              StatusIs(ErrorCode::kDeadlineExceeded));
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(1200));
  agent_->SetDelay(MessageType::kSign, std::chrono::milliseconds(0));
  EXPECT_OK(signer_->SignData(cert, SignatureScheme::kEcdsa, HashAlgorithm::kSha256, AsBytes("y")));
}

// ScriptCertificate answers by certificate (signum-fake-agent's labels), every time: a scripted
// certificate gets its handler's answer or, after its delay, a dropped connection; the others get
// the default answer, on the same pool.
TEST_F(FakeAgentSignerTest, AScriptedCertificateGetsItsOwnAnswerEveryTime) {
  ASSERT_OK_AND_ASSIGN(auto plain, ProviderCertificateFromEntry(
                                       agent_->AddLeaf(SharedPki(), "plain", "ec-p256")));
  ASSERT_OK_AND_ASSIGN(auto denied, ProviderCertificateFromEntry(
                                        agent_->AddLeaf(SharedPki(), "denied", "ec-p256")));
  ASSERT_OK_AND_ASSIGN(auto dropped, ProviderCertificateFromEntry(
                                         agent_->AddLeaf(SharedPki(), "dropped", "ec-p256")));
  agent_->ScriptCertificate(denied.id, {.handler = [](const wire::SignRequest&) -> Result<Bytes> {
                              return PermissionDeniedError("scripted refusal");
                            }});
  agent_->ScriptCertificate(dropped.id,
                            {.delay = std::chrono::milliseconds(30), .disconnect = true});
  const auto sign = [&](const ProviderCertificate& cert) {
    return signer_->SignData(cert, SignatureScheme::kEcdsa, HashAlgorithm::kSha256, AsBytes("x"));
  };
  for (int round = 0; round < 2; ++round) {
    SCOPED_TRACE(round);
    EXPECT_THAT(sign(denied),
                StatusIs(ErrorCode::kPermissionDenied, ::testing::HasSubstr("scripted refusal")));
    EXPECT_THAT(sign(dropped), StatusIs(ErrorCode::kUnavailable));
    EXPECT_OK(sign(plain));
  }
}

// Over loopback TCP the pool runs the real challenge-response against the fake agent's secret; a
// client with the wrong secret is turned away before any request.
TEST(AgentConnectionPoolTest, ListsOverTcpWithTheChallengeResponse) {
  testing::TempDir dir("signum-fake-tcp");
  ASSERT_OK_AND_ASSIGN(auto agent,
                       FakeAgent::Start({.dir = dir.path(), .unix_socket = false, .tcp = true}));
  const wire::CertificateEntry leaf = agent->AddLeaf(SharedPki(), "tcp", "ec-p256");
  AgentConnectionPool pool(PoolFor(*agent));
  ASSERT_OK_AND_ASSIGN(auto list, pool.ListCertificates(false));
  ASSERT_EQ(list.certificates.size(), 1u);
  EXPECT_EQ(list.certificates[0].id, leaf.id);

  AgentPoolOptions wrong = PoolFor(*agent);
  wrong.endpoint->secret = std::string(64, '0');
  AgentConnectionPool impostor(wrong);
  EXPECT_THAT(impostor.ListCertificates(false), StatusIs(ErrorCode::kPermissionDenied));
  EXPECT_EQ(agent->requests(MessageType::kList), 1);
}

TEST(ProcessContextTest, DescribesThisProcess) {
  wire::CallerContext c = CurrentProcessContext();
  EXPECT_EQ(c.process, "signum_provider_core_test");
  EXPECT_NE(c.command_line.find("signum_provider_core_test"), std::string::npos);
  ASSERT_TRUE(c.pid.has_value());
  EXPECT_EQ(*c.pid, static_cast<long>(::getpid()));
  EXPECT_FALSE(c.host.empty());
}

TEST(ProcessContextTest, SanitizesBytesThatAreNotUtf8) {
  EXPECT_EQ(SanitizeUtf8("plain ascii"), "plain ascii");
  EXPECT_EQ(SanitizeUtf8("caf\xC3\xA9"), "caf\xC3\xA9");
  EXPECT_EQ(SanitizeUtf8("\xF0\x9F\x94\x91 key"), "\xF0\x9F\x94\x91 key");
  EXPECT_EQ(SanitizeUtf8("bad\xFF"), "bad?");
  EXPECT_EQ(SanitizeUtf8("cut\xC3"), "cut?");
  EXPECT_EQ(SanitizeUtf8("overlong\xC0\xAF"), "overlong??");
  EXPECT_EQ(SanitizeUtf8("surrogate\xED\xA0\x80"), "surrogate???");
  EXPECT_EQ(SanitizeUtf8("nl\nx"), "nl?x");
}

}  // namespace
}  // namespace signum::provider

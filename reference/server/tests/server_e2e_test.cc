// End-to-end tests of signum-server: the real binary (started with Boost.Process) on a demo
// deployment built by `signum-server init-demo` on a fresh SoftHSM2 token, spoken to over real TLS
// on loopback. Every signature is verified with OpenSSL against the leaf certificate.
#include <gtest/gtest.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>

#include <boost/process.hpp>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>

#include "signum/core/crypto.h"
#include "signum/core/files.h"
#include "signum/core/https_client.h"
#include "signum/core/wire.h"
#include "signum/core/x509.h"
#include "signum/testing/softhsm_token.h"
#include "signum/testing/status_matchers.h"
#include "signum/testing/temp_dir.h"

namespace signum::server {
namespace {

namespace bp = boost::process;
using nlohmann::json;
using signum::testing::RunCommand;
using signum::testing::SoftHsmToken;
using signum::testing::TempDir;

constexpr const char* kServerBinary = SIGNUM_SERVER_BINARY;

std::string Cli(const std::string& args) { return std::string(kServerBinary) + " " + args; }

// A running signum-server process on a demo deployment (init-demo with `init_options`).
class Deployment {
 public:
  explicit Deployment(const std::string& init_options = "") : dir_("signum-e2e") {
    auto init = RunCommand(Cli("init-demo " + dir_.path() + "/demo " + init_options));
    if (init.exit_code != 0) throw std::runtime_error("init-demo failed: " + init.output);
    root_ = dir_.path() + "/demo";
    json config = json::parse(*ReadFile(root_ + "/server.json"));
    port_ = config["listen"]["port"].get<uint16_t>();
  }
  ~Deployment() { Stop(); }

  const std::string& root() const { return root_; }
  std::string config() const { return root_ + "/server.json"; }
  uint16_t port() const { return port_; }

  void Start() {
    server_ = std::make_unique<bp::child>(kServerBinary, "serve", "--config", config(),
                                          bp::std_out > root_ + "/logs/stdout.log",
                                          bp::std_err > root_ + "/logs/stderr.log");
    // Ready when /v1/health answers (bounded: 30 s).
    for (int i = 0; i < 300; ++i) {
      auto client = Client("");
      if (client) {
        auto r = client->Get(std::string(wire::kHealthPath));
        if (r.ok() && r->status == 200) return;
      }
      if (!server_->running()) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    throw std::runtime_error("signum-server did not become healthy: " +
                             ReadFile(root_ + "/logs/stderr.log").value());
  }

  void Stop() {
    if (!server_) return;
    if (server_->running()) {
      ::kill(server_->id(), SIGTERM);  // our own child, by PID
      for (int i = 0; i < 100 && server_->running(); ++i)
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
      if (server_->running()) server_->terminate();
    }
    server_->wait();
    last_exit_code_ = server_->exit_code();
    server_.reset();
  }
  int last_exit_code() const { return last_exit_code_; }

  std::string Token(const std::string& user) const {
    return ReadSecretFile(root_ + "/credentials/" + user + ".token").value();
  }

  std::unique_ptr<HttpsClient> Client(const std::string& token,
                                      bool client_certificate = false) const {
    HttpsClientConfig c;
    c.host = "127.0.0.1";
    c.port = port_;
    c.ca_file = root_ + "/ca/root.pem";
    c.bearer_token = token;
    if (client_certificate) {
      c.client_certificate_file = root_ + "/credentials/ci-bot.crt";
      c.client_key_file = root_ + "/credentials/ci-bot.key";
    }
    auto client = HttpsClient::Create(c);
    return client.ok() ? std::move(client).value() : nullptr;
  }

 private:
  TempDir dir_;
  std::string root_;
  uint16_t port_ = 0;
  std::unique_ptr<bp::child> server_;
  int last_exit_code_ = -1;
};

class ServerE2eTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    deployment_ = new Deployment();
    deployment_->Start();
  }
  static void TearDownTestSuite() {
    delete deployment_;
    deployment_ = nullptr;
  }

  static wire::CertificateListResponse List(HttpsClient& client) {
    auto r = client.Get(std::string(wire::kCertificatesPath));
    EXPECT_OK(r);
    EXPECT_EQ(r->status, 200) << r->body;
    return wire::ParseCertificateListResponse(json::parse(r->body)).value();
  }

  static Result<HttpsResult> PostSign(HttpsClient& client, const wire::SignRequest& req) {
    return client.Post(std::string(wire::kSignPath), wire::ToJson(req).dump());
  }

  static Deployment* deployment_;
};
Deployment* ServerE2eTest::deployment_ = nullptr;

const std::vector<std::string> kAllLabels = {"rsa-2048", "rsa-3072", "rsa-4096",
                                             "ec-p256",  "ec-p384",  "ec-p521"};

TEST_F(ServerE2eTest, HealthIsOkWithoutCredentials) {
  auto client = deployment_->Client("");
  auto r = client->Get("/v1/health");
  ASSERT_OK(r);
  EXPECT_EQ(r->status, 200);
  auto health = wire::ParseHealthResponse(json::parse(r->body));
  ASSERT_OK(health);
  EXPECT_EQ(health->status, "ok");
  EXPECT_EQ(health->hsm, "ok");
}

TEST_F(ServerE2eTest, ReleaseSeesEveryCertificateWithItsChain) {
  auto client = deployment_->Client(deployment_->Token("release"));
  wire::CertificateListResponse list = List(*client);
  std::vector<std::string> labels;
  const auto root = Certificate::FromPem(*ReadFile(deployment_->root() + "/ca/root.pem")).value();
  for (const auto& e : list.certificates) {
    labels.push_back(e.label);
    auto leaf = Certificate::FromPem(e.certificate_pem);
    ASSERT_OK(leaf);
    EXPECT_EQ(e.id, leaf->Sha1ThumbprintHex());
    ASSERT_EQ(e.chain_pem.size(), 2u) << e.label;
    std::vector<Certificate> intermediates{Certificate::FromPem(e.chain_pem[0]).value()};
    Status chain =
        VerifyCertificateChain(*leaf, intermediates, {root}, /*require_code_signing=*/true);
    EXPECT_OK(chain) << e.label;
    EXPECT_EQ(leaf->GetKeySpec()->Name(), e.label);
  }
  std::sort(labels.begin(), labels.end());
  auto expected = kAllLabels;
  std::sort(expected.begin(), expected.end());
  EXPECT_EQ(labels, expected);
}

TEST_F(ServerE2eTest, EveryAlgorithmSchemeAndHashSignsAndVerifies) {
  auto client = deployment_->Client(deployment_->Token("release"));
  int verified = 0;
  for (const auto& entry : List(*client).certificates) {
    const PublicKey key = Certificate::FromPem(entry.certificate_pem)->GetPublicKey().value();
    std::vector<SignatureScheme> schemes =
        entry.key.type == KeyType::kRsa
            ? std::vector<SignatureScheme>{SignatureScheme::kRsaPkcs1, SignatureScheme::kRsaPss}
            : std::vector<SignatureScheme>{SignatureScheme::kEcdsa};
    for (SignatureScheme scheme : schemes) {
      for (HashAlgorithm hash :
           {HashAlgorithm::kSha256, HashAlgorithm::kSha384, HashAlgorithm::kSha512}) {
        wire::SignRequest req;
        req.certificate_id = entry.id;
        req.scheme = scheme;
        req.hash = hash;
        req.digest =
            Digest(hash, AsBytes("artifact " + entry.label + std::string(SchemeName(scheme))));
        req.context.process = "signum_server_e2e_test";
        auto r = PostSign(*client, req);
        ASSERT_OK(r);
        ASSERT_EQ(r->status, 200) << entry.label << " " << SchemeName(scheme) << " "
                                  << HashName(hash) << ": " << r->body;
        auto resp = wire::ParseSignResponse(json::parse(r->body));
        ASSERT_OK(resp);
        EXPECT_EQ(resp->signature.size(), key.spec().SignatureSize());
        Status v = VerifyDigestSignature(key, scheme, hash, req.digest, resp->signature);
        EXPECT_OK(v) << entry.label << " " << SchemeName(scheme) << " " << HashName(hash);
        ++verified;
      }
    }
  }
  // 3 RSA keys x 2 schemes x 3 hashes + 3 EC keys x 3 hashes.
  EXPECT_EQ(verified, 27);
}

TEST_F(ServerE2eTest, PssSaltLengthsAndSha1WhereThePolicyAllowsIt) {
  auto client = deployment_->Client(deployment_->Token("release"));
  auto list = List(*client);
  const auto& rsa = *std::find_if(list.certificates.begin(), list.certificates.end(),
                                  [](const auto& e) { return e.label == "rsa-2048"; });
  const PublicKey key = Certificate::FromPem(rsa.certificate_pem)->GetPublicKey().value();
  for (size_t salt : {size_t{0}, size_t{32}, size_t{222}}) {
    wire::SignRequest req{rsa.id,
                          SignatureScheme::kRsaPss,
                          HashAlgorithm::kSha256,
                          Digest(HashAlgorithm::kSha256, AsBytes("pss")),
                          salt,
                          {}};
    auto r = PostSign(*client, req);
    ASSERT_EQ(r->status, 200) << r->body;
    auto sig = wire::ParseSignResponse(json::parse(r->body))->signature;
    EXPECT_OK(VerifyDigestSignature(key, req.scheme, req.hash, req.digest, sig, salt)) << salt;
  }
  // release-legacy-sha1 allows SHA-1 with PKCS#1 v1.5 only.
  wire::SignRequest sha1{rsa.id,
                         SignatureScheme::kRsaPkcs1,
                         HashAlgorithm::kSha1,
                         Digest(HashAlgorithm::kSha1, AsBytes("legacy")),
                         std::nullopt,
                         {}};
  auto r = PostSign(*client, sha1);
  ASSERT_EQ(r->status, 200) << r->body;
  EXPECT_OK(VerifyDigestSignature(key, sha1.scheme, sha1.hash, sha1.digest,
                                  wire::ParseSignResponse(json::parse(r->body))->signature));
  sha1.scheme = SignatureScheme::kRsaPss;
  r = PostSign(*client, sha1);
  EXPECT_EQ(r->status, 403) << r->body;
  // ci-bot has no SHA-1 rule at all.
  auto bot = deployment_->Client("", /*client_certificate=*/true);
  sha1.scheme = SignatureScheme::kRsaPkcs1;
  r = PostSign(*bot, sha1);
  EXPECT_EQ(r->status, 403) << r->body;
}

TEST_F(ServerE2eTest, AliceSeesAndUsesOnlyRsa2048) {
  auto alice = deployment_->Client(deployment_->Token("alice"));
  auto list = List(*alice);
  ASSERT_EQ(list.certificates.size(), 1u);
  EXPECT_EQ(list.certificates[0].label, "rsa-2048");
  auto all = List(*deployment_->Client(deployment_->Token("release")));
  for (const auto& e : all.certificates) {
    wire::SignRequest req{
        e.id,
        e.key.type == KeyType::kRsa ? SignatureScheme::kRsaPkcs1 : SignatureScheme::kEcdsa,
        HashAlgorithm::kSha256,
        Digest(HashAlgorithm::kSha256, AsBytes("x")),
        std::nullopt,
        {}};
    auto r = PostSign(*alice, req);
    ASSERT_OK(r);
    EXPECT_EQ(r->status, e.label == "rsa-2048" ? 200 : 403) << e.label << ": " << r->body;
    if (r->status == 403) {
      auto err = wire::ParseErrorResponse(json::parse(r->body));
      ASSERT_OK(err);
      EXPECT_EQ(err->code, "PERMISSION_DENIED");
      EXPECT_NE(err->message.find("alice"), std::string::npos) << err->message;
    }
  }
}

TEST_F(ServerE2eTest, ClientCertificateUserSignsOverMutualTls) {
  auto bot = deployment_->Client("", /*client_certificate=*/true);
  auto list = List(*bot);
  ASSERT_EQ(list.certificates.size(), kAllLabels.size());
  const auto& ec = *std::find_if(list.certificates.begin(), list.certificates.end(),
                                 [](const auto& e) { return e.label == "ec-p384"; });
  wire::SignRequest req{ec.id,
                        SignatureScheme::kEcdsa,
                        HashAlgorithm::kSha384,
                        Digest(HashAlgorithm::kSha384, AsBytes("container image")),
                        std::nullopt,
                        {}};
  auto r = PostSign(*bot, req);
  ASSERT_EQ(r->status, 200) << r->body;
  auto sig = wire::ParseSignResponse(json::parse(r->body))->signature;
  EXPECT_EQ(sig.size(), 96u);
  EXPECT_OK(VerifyDigestSignature(Certificate::FromPem(ec.certificate_pem)->GetPublicKey().value(),
                                  req.scheme, req.hash, req.digest, sig));
}

TEST_F(ServerE2eTest, UnknownOrMissingCredentialsAre401) {
  for (const std::string& token :
       {std::string(""), std::string("sgn_00000000_notavalidtoken"), std::string("garbage")}) {
    auto client = deployment_->Client(token);
    auto r = client->Get("/v1/certificates");
    ASSERT_OK(r);
    EXPECT_EQ(r->status, 401) << token;
    EXPECT_EQ(r->headers["www-authenticate"], "Bearer");
    EXPECT_OK(wire::ParseErrorResponse(json::parse(r->body))) << r->body;
  }
}

TEST_F(ServerE2eTest, BadRequestsGetClearErrorsAndNeverKillTheServer) {
  auto client = deployment_->Client(deployment_->Token("release"));
  auto list = List(*client);
  std::string ec_id;
  for (const auto& e : list.certificates)
    if (e.key.type == KeyType::kEc) ec_id = e.id;
  const std::string digest32 = Base64Encode(Bytes(32, 1));
  struct Case {
    std::string name, method, path, body;
    int status;
    std::string message_part;
  };
  const std::vector<Case> cases = {
      {"malformed json", "POST", "/v1/sign", "{\"certificate_id\":", 400, "JSON"},
      {"not an object", "POST", "/v1/sign", "[1,2]", 400, "object"},
      {"wrong digest length", "POST", "/v1/sign",
       json{
           {"certificate_id", ec_id}, {"scheme", "ecdsa"}, {"hash", "sha384"}, {"digest", digest32}}
           .dump(),
       400, "48 bytes"},
      {"unknown certificate", "POST", "/v1/sign",
       json{{"certificate_id", "00"}, {"scheme", "ecdsa"}, {"hash", "sha256"}, {"digest", digest32}}
           .dump(),
       404, "unknown certificate"},
      {"pss on an ec key", "POST", "/v1/sign",
       json{{"certificate_id", ec_id},
            {"scheme", "rsa-pss"},
            {"hash", "sha256"},
            {"digest", digest32}}
           .dump(),
       400, "does not fit"},
      {"unknown scheme", "POST", "/v1/sign",
       json{{"certificate_id", ec_id}, {"scheme", "dsa"}, {"hash", "sha256"}, {"digest", digest32}}
           .dump(),
       400, "scheme"},
      {"oversized body", "POST", "/v1/sign", std::string(200 * 1024, 'x'), 413, ""},
      {"wrong method", "GET", "/v1/sign", "", 405, "POST"},
      {"unknown path", "GET", "/v2/sign", "", 404, "no such endpoint"},
      // Found by signum_server_request_fuzz: the error echoed the path, and a path that is not
      // UTF-8 made the JSON encoder throw (500 instead of 404).
      {"path not utf-8", "GET", "/v1/\x80sign", "", 404, "no such endpoint"},
  };
  for (const Case& c : cases) {
    auto fresh = deployment_->Client(deployment_->Token("release"));
    auto r = fresh->Request(c.method, c.path, c.body);
    ASSERT_OK(r) << c.name;
    EXPECT_EQ(r->status, c.status) << c.name << ": " << r->body;
    auto err = wire::ParseErrorResponse(json::parse(r->body, nullptr, false));
    ASSERT_TRUE(err.ok()) << c.name << ": error body is not JSON: " << r->body;
    EXPECT_NE(err->message.find(c.message_part), std::string::npos)
        << c.name << ": " << err->message;
  }
  auto health = deployment_->Client("")->Get("/v1/health");
  ASSERT_OK(health);
  EXPECT_EQ(health->status, 200);
}

TEST_F(ServerE2eTest, WherePolicyFromTheAdminCliTakesEffectWhileRunning) {
  auto add = RunCommand(Cli("policy add --config " + deployment_->config() +
                            " --position 0 --json '{\"name\":\"no-curl\",\"effect\":\"deny\","
                            "\"users\":[\"release\"],\"process\":\"curl\"}'"));
  ASSERT_EQ(add.exit_code, 0) << add.output;
  auto client = deployment_->Client(deployment_->Token("release"));
  const auto entry = List(*client).certificates.front();
  wire::SignRequest req{
      entry.id,
      entry.key.type == KeyType::kRsa ? SignatureScheme::kRsaPkcs1 : SignatureScheme::kEcdsa,
      HashAlgorithm::kSha256,
      Digest(HashAlgorithm::kSha256, AsBytes("w")),
      std::nullopt,
      {}};
  req.context.process = "curl";
  // The server re-reads the state file at most once a second.
  int status = 0;
  for (int i = 0; i < 30 && status != 403; ++i) {
    status = PostSign(*client, req)->status;
    if (status != 403) std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  EXPECT_EQ(status, 403);
  req.context.process = "osslsigncode";
  EXPECT_EQ(PostSign(*client, req)->status, 200);
  ASSERT_EQ(RunCommand(Cli("policy remove no-curl --config " + deployment_->config())).exit_code,
            0);
}

TEST_F(ServerE2eTest, TokensCreatedAndRevokedByTheCli) {
  auto created = RunCommand(Cli("token create alice --config " + deployment_->config()));
  ASSERT_EQ(created.exit_code, 0) << created.output;
  // stdout carries the token alone; stderr (merged here) says which id it got.
  const size_t start = created.output.find("sgn_");
  ASSERT_NE(start, std::string::npos) << created.output;
  const std::string token = created.output.substr(start, created.output.find('\n', start) - start);
  ASSERT_EQ(token.rfind("sgn_", 0), 0u) << token;
  const std::string token_id = "tok_" + token.substr(4, 8);  // "sgn_<8 hex id>_<secret>"
  // The plaintext token is never stored.
  EXPECT_EQ(ReadFile(deployment_->root() + "/state.json")->find(token), std::string::npos);
  int status = 0;
  for (int i = 0; i < 30 && status != 200; ++i) {
    status = deployment_->Client(token)->Get("/v1/certificates")->status;
    if (status != 200) std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  EXPECT_EQ(status, 200);
  auto revoked =
      RunCommand(Cli("token revoke alice " + token_id + " --config " + deployment_->config()));
  ASSERT_EQ(revoked.exit_code, 0) << revoked.output;
  for (int i = 0; i < 30 && status != 401; ++i) {
    status = deployment_->Client(token)->Get("/v1/certificates")->status;
    if (status != 401) std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  EXPECT_EQ(status, 401);
}

// A flood of bad tokens from one address: a handful of audit records, not one fsync'd per 401.
TEST_F(ServerE2eTest, AuthenticationFailureFloodIsAggregatedInTheAudit) {
  const std::string log = deployment_->root() + "/audit/audit.log";
  const auto size_before = std::filesystem::file_size(log);
  auto client = deployment_->Client("sgn_deadbeef_unknownunknownunknownunknownunknownxx");
  for (int i = 0; i < 300; ++i) {
    auto r = client->Get("/v1/certificates");
    ASSERT_OK(r);
    ASSERT_EQ(r->status, 401);
  }
  // Before: 300 records of ~330 bytes. Now at most the interval's first failure (plus a summary
  // of an interval that ended meanwhile).
  EXPECT_LT(std::filesystem::file_size(log) - size_before, 2000u);
}

// A client certificate from a CA the server does not trust fails the handshake, and is audited.
TEST_F(ServerE2eTest, ClientCertificateFromAnUnknownCaIsAudited) {
  TempDir dir("signum-unknown-ca");
  auto made = RunCommand("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes "
                         "-subj /CN=intruder -days 1 -keyout " + dir.File("key.pem") + " -out " +
                         dir.File("cert.pem") + " 2>&1");
  ASSERT_EQ(made.exit_code, 0) << made.output;
  HttpsClientConfig c;
  c.host = "127.0.0.1";
  c.port = deployment_->port();
  c.ca_file = deployment_->root() + "/ca/root.pem";
  c.client_certificate_file = dir.File("cert.pem");
  c.client_key_file = dir.File("key.pem");
  auto client = HttpsClient::Create(c);
  ASSERT_OK(client);
  auto r = (*client)->Get(std::string(wire::kCertificatesPath));
  EXPECT_FALSE(r.ok() && r->status == 200);
  std::string text;
  for (int i = 0; i < 50; ++i) {  // written by an io thread right after the failed handshake
    text = *ReadFile(deployment_->root() + "/audit/audit.log");
    if (text.find("\"type\":\"tls-client-certificate\"") != std::string::npos) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_NE(text.find("\"type\":\"tls-client-certificate\""), std::string::npos);
}

TEST_F(ServerE2eTest, SmallProtocolFixes) {
  auto client = deployment_->Client(deployment_->Token("release"));
  // DELETE /v1/health: 405 with Allow, like every other route.
  auto del = client->Request("DELETE", std::string(wire::kHealthPath), "");
  ASSERT_OK(del);
  EXPECT_EQ(del->status, 405) << del->body;
  EXPECT_EQ(del->headers["allow"], "GET");
  // The auth scheme is case-insensitive (RFC 7235).
  auto lower = deployment_->Client("");
  auto listed = lower->Request("GET", std::string(wire::kCertificatesPath), "",
                               {{"Authorization", "bEaReR " + deployment_->Token("release")}});
  ASSERT_OK(listed);
  EXPECT_EQ(listed->status, 200) << listed->body;
  // Duplicate JSON keys are refused.
  auto list = List(*client);
  std::string rsa_id;
  for (const auto& e : list.certificates)
    if (e.label == "rsa-2048") rsa_id = e.id;
  const std::string digest = Base64Encode(Bytes(32, 1));
  auto dup = client->Post(std::string(wire::kSignPath),
                          R"({"certificate_id":")" + rsa_id + R"(","certificate_id":"x",)" +
                              R"("scheme":"rsa-pkcs1","hash":"sha256","digest":")" + digest + "\"}");
  ASSERT_OK(dup);
  EXPECT_EQ(dup->status, 400) << dup->body;
  EXPECT_NE(dup->body.find("more than once"), std::string::npos) << dup->body;
  // An impossible PSS salt is refused before the policy decision: no "allowed" record for it.
  auto salt = client->Post(std::string(wire::kSignPath),
                           R"({"certificate_id":")" + rsa_id +
                               R"(","scheme":"rsa-pss","hash":"sha256","pss_salt_length":1000,)" +
                               R"("digest":")" + digest + "\"}");
  ASSERT_OK(salt);
  EXPECT_EQ(salt->status, 400) << salt->body;
  const std::string text = *ReadFile(deployment_->root() + "/audit/audit.log");
  const size_t last = text.rfind("\"scheme\":\"rsa-pss\"");
  ASSERT_NE(last, std::string::npos);
  const size_t line_start = text.rfind('\n', last) + 1;
  const std::string line = text.substr(line_start, text.find('\n', last) - line_start);
  EXPECT_NE(line.find("\"decision\":\"denied\""), std::string::npos) << line;
  EXPECT_EQ(text.find("sign-failed"), std::string::npos);
}

// Runs last in this suite: it restarts the server.
TEST_F(ServerE2eTest, ZzAuditChainRecordsDenialsAndSurvivesRestartAndTampering) {
  const std::string log = deployment_->root() + "/audit/audit.log";
  auto denied = PostSign(
      *deployment_->Client(deployment_->Token("alice")),
      wire::SignRequest{
          "ffff", SignatureScheme::kEcdsa, HashAlgorithm::kSha256, Bytes(32, 9), std::nullopt, {}});
  ASSERT_EQ(denied->status, 404);
  auto unknown = deployment_->Client("sgn_deadbeef_unknownunknownunknownunknownunknownxx")
                     ->Get("/v1/certificates");
  ASSERT_EQ(unknown->status, 401);
  auto verify = RunCommand(Cli("audit-verify " + log));
  ASSERT_EQ(verify.exit_code, 0) << verify.output;

  deployment_->Stop();
  EXPECT_EQ(deployment_->last_exit_code(), 0);
  // Authentication failures are aggregated per source address and interval (an earlier test's
  // 401 from 127.0.0.1 opened the interval): stopping writes the pending summary.
  std::string text = *ReadFile(log);
  size_t records_before = std::count(text.begin(), text.end(), '\n');
  EXPECT_NE(text.find("\"decision\":\"denied\""), std::string::npos);
  EXPECT_NE(text.find("unknown credential"), std::string::npos);
  EXPECT_NE(text.find("\"user\":\"alice\""), std::string::npos);
  EXPECT_NE(text.find("\"type\":\"server-start\""), std::string::npos);
  deployment_->Start();
  auto client = deployment_->Client(deployment_->Token("release"));
  EXPECT_EQ(List(*client).certificates.size(), kAllLabels.size());
  verify = RunCommand(Cli("audit-verify " + log));
  ASSERT_EQ(verify.exit_code, 0) << verify.output;
  text = *ReadFile(log);
  EXPECT_GT(static_cast<size_t>(std::count(text.begin(), text.end(), '\n')), records_before);

  // An edit anywhere is found.
  const size_t pos = text.find("\"user\":\"alice\"");
  ASSERT_NE(pos, std::string::npos);
  std::string edited = text;
  edited.replace(pos, 14, "\"user\":\"alicf\"");
  const std::string copy = deployment_->root() + "/audit/tampered.log";
  ASSERT_OK(WriteFileAtomically(copy, edited));
  verify = RunCommand(Cli("audit-verify " + copy));
  EXPECT_NE(verify.exit_code, 0) << verify.output;
  EXPECT_NE(verify.output.find("line"), std::string::npos) << verify.output;
}

TEST_F(ServerE2eTest, ZzzOverloadAnswers429WithRetryAfter) {
  deployment_->Stop();
  json config = json::parse(*ReadFile(deployment_->config()));
  config["limits"]["max_inflight_signatures"] = 1;
  ASSERT_OK(WriteFileAtomically(deployment_->config(), config.dump(2)));
  deployment_->Start();
  auto list = List(*deployment_->Client(deployment_->Token("release")));
  const auto rsa4096 = *std::find_if(list.certificates.begin(), list.certificates.end(),
                                     [](const auto& e) { return e.label == "rsa-4096"; });
  const PublicKey key = Certificate::FromPem(rsa4096.certificate_pem)->GetPublicKey().value();
  std::atomic<int> ok{0}, throttled{0}, other{0};
  std::atomic<bool> retry_after_seen{false};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      auto client = deployment_->Client(deployment_->Token("release"));
      for (int i = 0; i < 10; ++i) {
        wire::SignRequest req{rsa4096.id,
                              SignatureScheme::kRsaPkcs1,
                              HashAlgorithm::kSha256,
                              Digest(HashAlgorithm::kSha256, AsBytes(std::to_string(t * 100 + i))),
                              std::nullopt,
                              {}};
        auto r = PostSign(*client, req);
        if (!r.ok()) {
          ++other;
        } else if (r->status == 200) {
          auto sig = wire::ParseSignResponse(json::parse(r->body))->signature;
          if (VerifyDigestSignature(key, req.scheme, req.hash, req.digest, sig).ok())
            ++ok;
          else
            ++other;
        } else if (r->status == 429) {
          ++throttled;
          if (r->headers["retry-after"] == "1") retry_after_seen = true;
        } else {
          ++other;
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_GT(ok.load(), 0);
  EXPECT_GT(throttled.load(), 0);
  EXPECT_TRUE(retry_after_seen.load());
  EXPECT_EQ(other.load(), 0);
}

// The disk under the audit log fills while the server signs: signing is refused (500, no
// signature), /v1/health says "degraded: audit unavailable" (503), no torn record stays, and once
// space is freed the server recovers by itself: health is ok, signing works, the chain verifies
// and a restart needs no hand repair. The audit directory is a 64 KiB tmpfs in a private mount
// namespace of this test process (inherited by the server it starts).
TEST(AuditDiskFullE2eTest, SigningFailsClosedHealthDegradesAndTheServerRecoversBySelf) {
  Deployment deployment;
  const std::string audit_dir = deployment.root() + "/audit";
  if (::unshare(CLONE_NEWNS) != 0) {
    GTEST_SKIP() << "unshare(CLONE_NEWNS): " << std::strerror(errno)
                 << " (needs root and a single-threaded test process)";
  }
  if (::mount("none", "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0 ||
      ::mount("tmpfs", audit_dir.c_str(), "tmpfs", 0, "size=64k,mode=0700") != 0) {
    GTEST_SKIP() << "mounting a tmpfs: " << std::strerror(errno);
  }
  // Unmounted on every exit, after the server stopped and before the deployment is removed.
  struct Unmount {
    Deployment& deployment;
    std::string dir;
    ~Unmount() {
      deployment.Stop();
      ::umount2(dir.c_str(), MNT_DETACH);
    }
  } unmount{deployment, audit_dir};
  deployment.Start();
  // Fill what is left of the 64 KiB.
  const std::string ballast = audit_dir + "/ballast";
  {
    std::ofstream out(ballast, std::ios::binary);
    const std::string block(4096, 'x');
    for (int i = 0; i < 32 && out; ++i) out.write(block.data(), block.size()), out.flush();
  }
  auto client = deployment.Client(deployment.Token("release"));
  std::string rsa_id;
  {
    auto r = client->Get(std::string(wire::kCertificatesPath));
    ASSERT_OK(r);
    const json list = json::parse(r->body);
    for (const json& e : list["certificates"])
      if (e["label"] == "rsa-2048") rsa_id = e["id"].get<std::string>();
  }
  auto sign = [&] {
    return client->Post(std::string(wire::kSignPath),
                        wire::ToJson(wire::SignRequest{rsa_id, SignatureScheme::kRsaPkcs1,
                                                       HashAlgorithm::kSha256, Bytes(32, 7),
                                                       std::nullopt, {}})
                            .dump());
  };
  int status = 200;
  for (int i = 0; i < 200 && status == 200; ++i) {
    auto r = sign();
    ASSERT_OK(r);
    status = r->status;
    if (status != 200) {
      EXPECT_EQ(r->body.find("signature"), std::string::npos) << r->body;
    }
  }
  ASSERT_EQ(status, 500) << "the audit never ran out of space";
  auto health = deployment.Client("")->Get(std::string(wire::kHealthPath));
  ASSERT_OK(health);
  EXPECT_EQ(health->status, 503);
  EXPECT_EQ(json::parse(health->body)["status"], "degraded: audit unavailable") << health->body;
  const std::string log = audit_dir + "/audit.log";
  EXPECT_EQ(ReadFile(log)->back(), '\n') << "a torn record stayed behind";

  ASSERT_EQ(::unlink(ballast.c_str()), 0);
  for (int i = 0; i < 30; ++i) {  // health probes at most once a second
    health = deployment.Client("")->Get(std::string(wire::kHealthPath));
    if (health.ok() && health->status == 200) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  EXPECT_EQ(health->status, 200) << health->body;
  auto r = sign();
  ASSERT_OK(r);
  EXPECT_EQ(r->status, 200) << r->body;
  deployment.Stop();
  EXPECT_NE(ReadFile(log)->find("\"type\":\"audit-outage\""), std::string::npos);
  auto verify = RunCommand(Cli("audit-verify --config " + deployment.config()));
  EXPECT_EQ(verify.exit_code, 0) << verify.output;
  deployment.Start();  // no hand repair
}

}  // namespace
}  // namespace signum::server

namespace signum::server {
namespace {

// Every object on a token as pkcs11-tool lists it after login (labels, classes, CKA_IDs, key
// attributes): "left as found" means this text is unchanged.
std::string ListTokenObjects(const SoftHsmToken& token) {
  auto listed = RunCommand("SOFTHSM2_CONF=" + token.config_path() + " pkcs11-tool --module " +
                           token.module_path() + " --token-label " + token.label() +
                           " --login --pin " + token.pin() + " --list-objects 2>&1");
  EXPECT_EQ(listed.exit_code, 0) << listed.output;
  return listed.output;
}

// init-demo on an existing token of "any" PKCS#11 module (a SoftHSM2 token stands in for an HSM
// vendor's): the server signs with keys it generated there, and remove-demo-keys takes exactly
// those objects away again while the vendor's own key pair stays.
TEST(VendorTokenE2eTest, InitDemoOnAnExistingTokenSignsAndRemoveDemoKeysLeavesItAsFound) {
  SoftHsmToken vendor("vendor-token", "vendor-pin-4711");
  auto own_key = RunCommand("SOFTHSM2_CONF=" + vendor.config_path() + " pkcs11-tool --module " +
                            vendor.module_path() + " --token-label vendor-token --login --pin " +
                            vendor.pin() +
                            " --keypairgen --key-type EC:prime256v1 --label vendors-own --id 0a0b"
                            " 2>&1");
  ASSERT_EQ(own_key.exit_code, 0) << own_key.output;
  const std::string before = ListTokenObjects(vendor);
  ASSERT_NE(before.find("vendors-own"), std::string::npos) << before;

  TempDir secrets("signum-vendor-pin");
  ASSERT_OK(WriteFileAtomically(secrets.File("pin"), vendor.pin() + "\n", 0600));
  // The variable reaches the module only through --hsm-env (server.json hsm.environment).
  ::unsetenv("SOFTHSM2_CONF");
  Deployment deployment("--hsm-module " + vendor.module_path() +
                        " --hsm-token-label vendor-token --hsm-pin-file " + secrets.File("pin") +
                        " --hsm-env SOFTHSM2_CONF=" + vendor.config_path() +
                        " --hsm-env SIGNUM_VENDOR_PROBE=a=b --keys rsa-2048,ec-p256");
  ::setenv("SOFTHSM2_CONF", vendor.config_path().c_str(), 1);

  json config = json::parse(*ReadFile(deployment.config()));
  EXPECT_EQ(config["hsm"]["module"], vendor.module_path());
  EXPECT_EQ(config["hsm"]["token_label"], "vendor-token");
  EXPECT_EQ(config["hsm"]["pin_file"], secrets.File("pin"));
  EXPECT_EQ(config["hsm"]["environment"]["SOFTHSM2_CONF"], vendor.config_path());
  EXPECT_EQ(config["hsm"]["environment"]["SIGNUM_VENDOR_PROBE"], "a=b");
  EXPECT_FALSE(std::filesystem::exists(deployment.root() + "/hsm/tokens"));
  EXPECT_FALSE(std::filesystem::exists(deployment.root() + "/secrets/hsm.pin"));
  const std::string with_demo = ListTokenObjects(vendor);
  EXPECT_NE(with_demo.find("rsa-2048"), std::string::npos) << with_demo;
  EXPECT_NE(with_demo.find("ec-p256"), std::string::npos) << with_demo;

  deployment.Start();
  auto client = deployment.Client(deployment.Token("release"));
  ASSERT_NE(client, nullptr);
  auto listed = client->Get(std::string(wire::kCertificatesPath));
  ASSERT_TRUE(listed.ok() && listed->status == 200);
  auto list = wire::ParseCertificateListResponse(json::parse(listed->body)).value();
  ASSERT_EQ(list.certificates.size(), 2u);
  for (const auto& entry : list.certificates) {
    const PublicKey key = Certificate::FromPem(entry.certificate_pem)->GetPublicKey().value();
    wire::SignRequest req;
    req.certificate_id = entry.id;
    req.scheme =
        entry.key.type == KeyType::kRsa ? SignatureScheme::kRsaPss : SignatureScheme::kEcdsa;
    req.hash = HashAlgorithm::kSha256;
    req.digest = Digest(req.hash, AsBytes("vendor artifact " + entry.label));
    auto r = client->Post(std::string(wire::kSignPath), wire::ToJson(req).dump());
    ASSERT_OK(r);
    ASSERT_EQ(r->status, 200) << r->body;
    auto resp = wire::ParseSignResponse(json::parse(r->body));
    ASSERT_OK(resp);
    Status v = VerifyDigestSignature(key, req.scheme, req.hash, req.digest, resp->signature);
    EXPECT_OK(v) << entry.label;
  }
  deployment.Stop();

  auto removed = RunCommand(Cli("remove-demo-keys " + deployment.root()));
  ASSERT_EQ(removed.exit_code, 0) << removed.output;
  EXPECT_NE(removed.output.find("removed 2 demo key pairs"), std::string::npos) << removed.output;
  EXPECT_EQ(ListTokenObjects(vendor), before);
  json state = json::parse(*ReadFile(deployment.root() + "/state.json"));
  EXPECT_TRUE(state["certificates"].empty()) << state["certificates"].dump();
  auto again = RunCommand(Cli("remove-demo-keys " + deployment.root()));
  EXPECT_EQ(again.exit_code, 0) << again.output;
  EXPECT_NE(again.output.find("removed 0 demo key pairs"), std::string::npos) << again.output;
}

TEST(VendorTokenE2eTest, WrongPinOrIncompleteOptionsFailAndLeaveTheTokenAlone) {
  SoftHsmToken vendor("vendor-token", "vendor-pin-4711");
  const std::string before = ListTokenObjects(vendor);
  TempDir dir("signum-vendor-bad");
  ASSERT_OK(WriteFileAtomically(dir.File("pin"), "not-the-pin\n", 0600));
  auto bad_pin =
      RunCommand(Cli("init-demo " + dir.File("demo") + " --hsm-module " + vendor.module_path() +
                     " --hsm-token-label vendor-token" + " --hsm-pin-file " + dir.File("pin") +
                     " --hsm-env SOFTHSM2_CONF=" + vendor.config_path()));
  EXPECT_NE(bad_pin.exit_code, 0);
  EXPECT_NE(bad_pin.output.find("CKR_PIN_INCORRECT"), std::string::npos) << bad_pin.output;
  auto half = RunCommand(Cli("init-demo " + dir.File("demo2") + " --hsm-module " +
                             vendor.module_path() + " --hsm-pin-file " + dir.File("pin")));
  EXPECT_EQ(half.exit_code, 2) << half.output;
  EXPECT_EQ(ListTokenObjects(vendor), before);
}

// The fresh-SoftHSM2 deployment keeps the same ledger, so remove-demo-keys works there too.
TEST(VendorTokenE2eTest, RemoveDemoKeysOnAFreshSoftHsmDeploymentEmptiesItsToken) {
  TempDir dir("signum-demo-remove");
  auto init = RunCommand(Cli("init-demo " + dir.File("demo") + " --keys ec-p256"));
  ASSERT_EQ(init.exit_code, 0) << init.output;
  auto ledger = json::parse(*ReadFile(dir.File("demo/hsm/demo-keys.json")));
  ASSERT_EQ(ledger["keys"].size(), 1u);
  auto removed = RunCommand(Cli("remove-demo-keys " + dir.File("demo")));
  ASSERT_EQ(removed.exit_code, 0) << removed.output;
  EXPECT_NE(removed.output.find(ledger["keys"][0]["key_id"].get<std::string>()), std::string::npos)
      << removed.output;
  const std::string pin = ReadSecretFile(dir.File("demo/secrets/hsm.pin")).value();
  auto listed = RunCommand("SOFTHSM2_CONF=" + dir.File("demo/hsm/softhsm2.conf") +
                           " pkcs11-tool --module /usr/lib/softhsm/libsofthsm2.so --token-label"
                           " signum-demo --login --pin " +
                           pin + " --list-objects 2>&1");
  ASSERT_EQ(listed.exit_code, 0) << listed.output;
  EXPECT_EQ(listed.output.find("Private Key Object"), std::string::npos) << listed.output;
  EXPECT_EQ(listed.output.find("Certificate Object"), std::string::npos) << listed.output;
}

}  // namespace
}  // namespace signum::server

// End to end: this test binary -> real signum-agent (Unix socket and loopback TCP) -> real
// signum-server (TLS) -> SoftHSM2. Every signature is verified with OpenSSL against the listed
// certificate; the server's audit log must show who really called.
#include <arpa/inet.h>
#include <fcntl.h>
#include <grp.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>

#include <algorithm>
#include <atomic>
#include <fstream>
#include <functional>
#include <set>
#include <sstream>
#include <thread>
#include <vector>

#include "agent_test_util.h"
#include "signum/core/agent_protocol.h"
#include "signum/core/crypto.h"
#include "signum/core/x509.h"
#include "signum/testing/status_matchers.h"
#include "signum/testing/scoped_env.h"

namespace signum::agent::testing {
namespace {

using ::signum::testing::ScopedEnv;
using ::signum::testing::StatusIs;

using nlohmann::json;
namespace proto = signum::agent_protocol;

// A ThreadSanitizer build's libsignumpkcs11.so takes the TSan runtime from the program that loads
// it (ci/test --tsan), and p11-kit's own tools are not instrumented: they cannot load it.
#if defined(__SANITIZE_THREAD__)
constexpr bool kThreadSanitizer = true;
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
constexpr bool kThreadSanitizer = true;
#else
constexpr bool kThreadSanitizer = false;
#endif
#else
constexpr bool kThreadSanitizer = false;
#endif
using Clock = std::chrono::steady_clock;

const std::vector<std::string> kAllLabels = {"ec-p256",  "ec-p384",  "ec-p521",
                                             "rsa-2048", "rsa-3072", "rsa-4096"};

// Shared by every test in this binary: one deployment (init-demo takes seconds) and one agent.
class AgentE2eTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    deployment_ = new Deployment();
    deployment_->Start();
    agent_dir_ = new TempDir("signum-agent-run");
    agent_ = new AgentProcess(agent_dir_->path(), DefaultOptions());
    agent_->Start();
  }
  static void TearDownTestSuite() {
    // A clean exit after everything the tests threw at it (and, in sanitizer builds, no report).
    EXPECT_EQ(agent_->Stop(), 0) << agent_->log() << agent_->stderr_output();
    delete agent_;
    delete agent_dir_;
    delete deployment_;
  }
  void SetUp() override {
    if (!deployment_->running()) deployment_->Start();
    ASSERT_TRUE(agent_->running()) << agent_->log();
  }

  static AgentProcess::Options DefaultOptions() {
    AgentProcess::Options o;
    o.server_url = deployment_->url();
    o.ca_file = deployment_->ca();
    o.token_file = deployment_->token_file("release");
    return o;
  }

  static std::unique_ptr<AgentClient> Connect(const AgentEndpoint& endpoint) {
    auto client = AgentClient::Connect(endpoint, "signum_agent_test", 30000);
    EXPECT_OK(client);
    return client.ok() ? std::move(client).value() : nullptr;
  }

  static wire::CertificateListResponse List(AgentClient& client, bool refresh = false) {
    auto list = client.ListCertificates(refresh);
    EXPECT_OK(list);
    return list.ok() ? *list : wire::CertificateListResponse{};
  }

  static std::vector<std::string> Labels(const wire::CertificateListResponse& list) {
    std::vector<std::string> labels;
    for (const auto& e : list.certificates) labels.push_back(e.label);
    std::sort(labels.begin(), labels.end());
    return labels;
  }

  static std::vector<json> AuditEvents(const std::string& type) {
    std::vector<json> events;
    std::ifstream in(deployment_->audit_log());
    std::string line;
    while (std::getline(in, line)) {
      json j = json::parse(line, nullptr, false);
      if (!j.is_discarded() && j.contains("event") && j["event"].value("type", "") == type) {
        events.push_back(j["event"]);
      }
    }
    return events;
  }

  static Deployment* deployment_;
  static TempDir* agent_dir_;
  static AgentProcess* agent_;
};
Deployment* AgentE2eTest::deployment_ = nullptr;
TempDir* AgentE2eTest::agent_dir_ = nullptr;
AgentProcess* AgentE2eTest::agent_ = nullptr;

// --- A raw socket, for what a well-behaved client never sends --------------------------------

class RawConnection {
 public:
  static std::unique_ptr<RawConnection> Unix(const std::string& path) {
    return Adopt(signum::testing::ConnectUnixSocket(path));
  }
  static std::unique_ptr<RawConnection> Tcp(uint16_t port) {
    return Adopt(signum::testing::ConnectLoopbackTcp(port));
  }
  static std::unique_ptr<RawConnection> Adopt(int fd) {
    return fd < 0 ? nullptr : std::unique_ptr<RawConnection>(new RawConnection(fd));
  }
  ~RawConnection() { ::close(fd_); }

  bool Send(const std::string& bytes) {
    return ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL) ==
           static_cast<ssize_t>(bytes.size());
  }
  bool SendJson(const json& j) { return Send(proto::EncodeFrame(j)); }
  void Hello(const std::string& secret = "") {
    ASSERT_TRUE(SendJson(proto::ToJson(proto::Hello{1, "raw-test", secret}, false)));
    auto reply = Read();
    ASSERT_TRUE(reply.has_value());
    ASSERT_EQ((*reply)["type"], "hello") << reply->dump();
  }

  // The next frame, or nullopt on EOF / timeout.
  std::optional<json> Read(int timeout_ms = 10000) {
    const auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
    for (;;) {
      auto decoded = proto::DecodeFrame(buffer_);
      if (!decoded.ok()) return std::nullopt;
      if (decoded->has_value()) return **decoded;
      const auto left =
          std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
      if (left <= 0) return std::nullopt;
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(left)) <= 0) return std::nullopt;
      char chunk[4096];
      const ssize_t n = ::recv(fd_, chunk, sizeof chunk, 0);
      if (n <= 0) return std::nullopt;
      buffer_.append(chunk, static_cast<size_t>(n));
    }
  }
  // True when the agent closed the connection (EOF) within the timeout.
  bool ClosedByPeer(int timeout_ms = 5000) {
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, timeout_ms) <= 0) return false;
    char c;
    return ::recv(fd_, &c, 1, 0) == 0;
  }

 private:
  explicit RawConnection(int fd) : fd_(fd) {}
  int fd_;
  std::string buffer_;
};

// Expects an error frame with this code followed by the agent closing the connection.
void ExpectErrorAndClose(RawConnection& c, ErrorCode code, const std::string& what) {
  auto reply = c.Read();
  ASSERT_TRUE(reply.has_value()) << what << ": no error frame";
  EXPECT_EQ((*reply)["type"], "error") << what << ": " << reply->dump();
  EXPECT_EQ((*reply)["code"], ErrorCodeName(code)) << what << ": " << reply->dump();
  EXPECT_TRUE(c.ClosedByPeer()) << what << ": connection not closed";
}

// --- Listing --------------------------------------------------------------------------------

TEST_F(AgentE2eTest, ListsEveryCertificateOverTheUnixSocket) {
  auto client = Connect(agent_->UnixEndpoint());
  ASSERT_NE(client, nullptr);
  EXPECT_EQ(client->agent_name(), "signum-agent/0.1");
  EXPECT_EQ(client->endpoint_description(), "unix:" + agent_->socket());
  const auto list = List(*client);
  EXPECT_EQ(Labels(list), kAllLabels);
  for (const auto& e : list.certificates) {
    auto cert = Certificate::FromPem(e.certificate_pem);
    ASSERT_OK(cert);
    EXPECT_EQ(cert->Sha1ThumbprintHex(), e.id);
    EXPECT_EQ(e.chain_pem.size(), 2u);
  }
}

TEST_F(AgentE2eTest, ListsOverLoopbackTcpWithTheSecret) {
  const AgentEndpoint tcp = agent_->TcpEndpoint();
  ASSERT_NE(tcp.tcp_port, 0);
  ASSERT_EQ(tcp.secret.size(), 64u);
  auto client = Connect(tcp);
  ASSERT_NE(client, nullptr);
  EXPECT_EQ(Labels(List(*client)), kAllLabels);
}

TEST_F(AgentE2eTest, SocketAndSecretFilesAreUserOnly) {
  struct stat st {};
  ASSERT_EQ(::stat(agent_->socket().c_str(), &st), 0);
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  ASSERT_EQ(::stat(agent_->secret_file().c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
}

TEST_F(AgentE2eTest, TcpWithoutOrWithAWrongSecretIsRejected) {
  // A client with a wrong secret cannot check the agent's proof: it refuses the agent, and sends
  // nothing past its hello.
  AgentEndpoint wrong = agent_->TcpEndpoint();
  wrong.secret = std::string(64, '0');
  auto client = AgentClient::Connect(wrong, "intruder", 5000);
  ASSERT_THAT(client, StatusIs(ErrorCode::kPermissionDenied)) << client.status().ToString();

  const std::string secret = agent_->TcpEndpoint().secret;
  // Protocol 1 hellos (the secret in plaintext, even the right one) are refused on TCP, and so
  // is a protocol 2 hello without a nonce.
  for (const std::string& legacy : {std::string(), std::string("abc"), secret}) {
    auto raw = RawConnection::Tcp(agent_->tcp_port());
    ASSERT_NE(raw, nullptr);
    ASSERT_TRUE(raw->SendJson(proto::ToJson(proto::Hello{1, "old-provider", legacy}, false)));
    ExpectErrorAndClose(*raw, ErrorCode::kFailedPrecondition, "protocol 1, secret '" + legacy + "'");
  }
  {
    auto raw = RawConnection::Tcp(agent_->tcp_port());
    ASSERT_NE(raw, nullptr);
    ASSERT_TRUE(raw->SendJson(proto::ToJson(proto::Hello{2, "old-provider", secret}, false)));
    ExpectErrorAndClose(*raw, ErrorCode::kFailedPrecondition, "protocol 2 with a plaintext secret");
  }
  {
    auto raw = RawConnection::Tcp(agent_->tcp_port());
    ASSERT_NE(raw, nullptr);
    ASSERT_TRUE(raw->SendJson(proto::ToJson(proto::Hello{2, "no-nonce", ""}, false)));
    ExpectErrorAndClose(*raw, ErrorCode::kInvalidArgument, "protocol 2 without a nonce");
  }

  // The agent proves itself to anyone, but serves only a client that proves itself: wrong proofs
  // (another secret, the agent's own proof reflected, a request instead of the auth) are refused.
  struct AuthCase {
    std::string name;
    std::function<json(const std::string& nc, const proto::Hello& agent)> second_message;
    ErrorCode code;
  };
  const std::vector<AuthCase> auth_cases = {
      {"proof with another secret",
       [](const std::string& nc, const proto::Hello& a) {
         return proto::ToJson(proto::AuthRequest{*proto::HandshakeProof(
             proto::ProofRole::kClient, std::string(64, '0'), nc, a.nonce)});
       },
       ErrorCode::kUnauthenticated},
      {"agent's proof reflected",
       [](const std::string&, const proto::Hello& a) {
         return proto::ToJson(proto::AuthRequest{a.proof});
       },
       ErrorCode::kUnauthenticated},
      {"list before auth",
       [](const std::string&, const proto::Hello&) { return proto::ToJson(proto::ListRequest{}); },
       ErrorCode::kFailedPrecondition},
      {"malformed proof",
       [](const std::string&, const proto::Hello&) {
         return json{{"type", "auth"}, {"proof", "nope"}};
       },
       ErrorCode::kInvalidArgument},
  };
  for (const AuthCase& c : auth_cases) {
    auto raw = RawConnection::Tcp(agent_->tcp_port());
    ASSERT_NE(raw, nullptr);
    const std::string nc = *proto::NewNonce();
    ASSERT_TRUE(raw->SendJson(proto::ToJson(proto::Hello{2, "raw-test", "", nc}, false)));
    auto reply = raw->Read();
    ASSERT_TRUE(reply.has_value()) << c.name;
    auto agent_hello = proto::ParseHello(*reply);
    ASSERT_OK(agent_hello) << c.name << ": " << reply->dump();
    EXPECT_TRUE(proto::ProofMatches(proto::ProofRole::kAgent, secret, nc, agent_hello->nonce,
                                    agent_hello->proof))
        << c.name << ": " << reply->dump();
    ASSERT_TRUE(raw->SendJson(c.second_message(nc, *agent_hello))) << c.name;
    ExpectErrorAndClose(*raw, c.code, c.name);
  }

  // The right proof is acknowledged, and then requests are served.
  {
    auto raw = RawConnection::Tcp(agent_->tcp_port());
    ASSERT_NE(raw, nullptr);
    const std::string nc = *proto::NewNonce();
    ASSERT_TRUE(raw->SendJson(proto::ToJson(proto::Hello{2, "raw-test", "", nc}, false)));
    auto reply = raw->Read();
    ASSERT_TRUE(reply.has_value());
    auto agent_hello = proto::ParseHello(*reply);
    ASSERT_OK(agent_hello) << reply->dump();
    EXPECT_EQ(agent_hello->protocol, proto::kProtocolVersion);
    EXPECT_NE(agent_hello->nonce, nc);
    ASSERT_TRUE(raw->SendJson(proto::ToJson(proto::AuthRequest{*proto::HandshakeProof(
        proto::ProofRole::kClient, secret, nc, agent_hello->nonce)})));
    auto ack = raw->Read();
    ASSERT_TRUE(ack.has_value());
    EXPECT_EQ((*ack)["type"], "authenticated") << ack->dump();
    ASSERT_TRUE(raw->SendJson(proto::StatusRequestJson()));
    auto status = raw->Read();
    ASSERT_TRUE(status.has_value());
    EXPECT_EQ((*status)["type"], "status") << status->dump();
  }

  auto raw = RawConnection::Tcp(agent_->tcp_port());
  ASSERT_NE(raw, nullptr);
  ASSERT_TRUE(raw->SendJson(proto::ToJson(proto::ListRequest{})));
  ExpectErrorAndClose(*raw, ErrorCode::kFailedPrecondition, "list before hello");
  EXPECT_NE(agent_->log().find("wrong proof of the secret"), std::string::npos) << agent_->log();
  EXPECT_EQ(agent_->log().find(secret), std::string::npos);
}

TEST_F(AgentE2eTest, NewerClientProtocolIsAnsweredWithTheAgentsVersion) {
  auto raw = RawConnection::Unix(agent_->socket());
  ASSERT_NE(raw, nullptr);
  ASSERT_TRUE(raw->SendJson(proto::ToJson(proto::Hello{7, "future-client", ""}, false)));
  auto reply = raw->Read();
  ASSERT_TRUE(reply.has_value());
  EXPECT_EQ((*reply)["type"], "hello");
  EXPECT_EQ((*reply)["protocol"], proto::kProtocolVersion);

  auto old = RawConnection::Unix(agent_->socket());
  ASSERT_NE(old, nullptr);
  ASSERT_TRUE(old->SendJson(proto::ToJson(proto::Hello{0, "ancient-client", ""}, false)));
  ExpectErrorAndClose(*old, ErrorCode::kFailedPrecondition, "protocol 0");
}

// --- Signing --------------------------------------------------------------------------------

TEST_F(AgentE2eTest, SignsWithEveryCertificateSchemeAndHashAndVerifies) {
  auto client = Connect(agent_->UnixEndpoint());
  ASSERT_NE(client, nullptr);
  int verified = 0;
  for (const auto& entry : List(*client).certificates) {
    const PublicKey key = Certificate::FromPem(entry.certificate_pem)->GetPublicKey().value();
    for (SignatureScheme scheme : entry.schemes) {
      for (HashAlgorithm hash :
           {HashAlgorithm::kSha256, HashAlgorithm::kSha384, HashAlgorithm::kSha512}) {
        proto::SignRequest req;
        req.certificate_id = entry.id;
        req.scheme = scheme;
        req.hash = hash;
        req.digest =
            Digest(hash, AsBytes("agent e2e " + entry.label + std::string(SchemeName(scheme))));
        auto signature = client->Sign(req);
        const std::string what =
            entry.label + " " + std::string(SchemeName(scheme)) + " " + std::string(HashName(hash));
        ASSERT_OK(signature) << what;
        EXPECT_EQ(signature->size(), key.spec().SignatureSize()) << what;
        Status v = VerifyDigestSignature(key, scheme, hash, req.digest, *signature);
        EXPECT_OK(v) << what;
        ++verified;
      }
    }
  }
  // 3 RSA keys x 2 schemes x 3 hashes + 3 EC keys x 3 hashes.
  EXPECT_EQ(verified, 27);
}

TEST_F(AgentE2eTest, SignsByLabelWithPssSaltOverTcp) {
  auto client = Connect(agent_->TcpEndpoint());
  ASSERT_NE(client, nullptr);
  const auto list = List(*client);
  const auto& rsa = *std::find_if(list.certificates.begin(), list.certificates.end(),
                                  [](const auto& e) { return e.label == "rsa-3072"; });
  const PublicKey key = Certificate::FromPem(rsa.certificate_pem)->GetPublicKey().value();
  for (size_t salt : {size_t{0}, size_t{32}, size_t{64}}) {
    proto::SignRequest req;
    req.certificate_id = "rsa-3072";  // the label works as well as the id
    req.scheme = SignatureScheme::kRsaPss;
    req.hash = HashAlgorithm::kSha256;
    req.digest = Digest(HashAlgorithm::kSha256, AsBytes("salted"));
    req.pss_salt_length = salt;
    auto signature = client->Sign(req);
    ASSERT_OK(signature) << salt;
    EXPECT_OK(VerifyDigestSignature(key, req.scheme, req.hash, req.digest, *signature, salt))
        << salt;
  }
}

// Issue 17 item 3: the TCP-only mode the Windows agent runs in (no AF_UNIX, no peer credentials),
// here on Linux: no socket file anywhere, providers reach it on loopback with the secret, and a
// provider told SIGNUM_AGENT_SOCKET=off never looks for a socket.
TEST_F(AgentE2eTest, TcpOnlyModeServesProvidersWithoutAUnixSocket) {
  TempDir dir("signum-agent-tcp-only");
  AgentProcess::Options o = DefaultOptions();
  o.unix_socket = false;
  AgentProcess agent(dir.path(), o);
  agent.Start();
  EXPECT_NE(::access(agent.socket().c_str(), F_OK), 0) << "a Unix socket was made";
  EXPECT_NE(agent.log().find("serving providers on tcp:127.0.0.1:"), std::string::npos)
      << agent.log();
  EXPECT_EQ(agent.log().find("serving providers on unix:"), std::string::npos) << agent.log();

  auto client = Connect(agent.TcpEndpoint());
  ASSERT_NE(client, nullptr);
  const auto list = List(*client);
  EXPECT_EQ(Labels(list), kAllLabels);
  const auto& ec = *std::find_if(list.certificates.begin(), list.certificates.end(),
                                 [](const auto& e) { return e.label == "ec-p256"; });
  proto::SignRequest req;
  req.certificate_id = ec.id;
  req.scheme = SignatureScheme::kEcdsa;
  req.hash = HashAlgorithm::kSha256;
  req.digest = Digest(HashAlgorithm::kSha256, AsBytes("tcp only"));
  auto signature = client->Sign(req);
  ASSERT_OK(signature);
  const PublicKey key = Certificate::FromPem(ec.certificate_pem)->GetPublicKey().value();
  EXPECT_OK(VerifyDigestSignature(key, req.scheme, req.hash, req.digest, *signature));

  // A provider's view: SIGNUM_AGENT_SOCKET=off with the TCP endpoint, and without it.
  ScopedEnv socket_off("SIGNUM_AGENT_SOCKET", std::string("off"));
  {
    ScopedEnv tcp("SIGNUM_AGENT_TCP", "127.0.0.1:" + std::to_string(agent.tcp_port()));
    ScopedEnv secret("SIGNUM_AGENT_SECRET_FILE", agent.secret_file());
    auto endpoint = AgentEndpointFromEnvironment();
    ASSERT_OK(endpoint);
    EXPECT_TRUE(endpoint->unix_socket.empty());
    EXPECT_EQ(endpoint->tcp_port, agent.tcp_port());
  }
  ScopedEnv no_tcp("SIGNUM_AGENT_TCP", std::nullopt);
  EXPECT_THAT(AgentEndpointFromEnvironment(), StatusIs(ErrorCode::kFailedPrecondition));

  // Socket and TCP both off: refused at start, with the reason.
  TempDir nowhere("signum-agent-nowhere");
  o.tcp = false;
  AgentProcess silent(nowhere.path(), o);
  EXPECT_THROW(silent.Start(), std::runtime_error);
  EXPECT_NE(silent.stderr_output().find("set SIGNUM_AGENT_TCP"), std::string::npos)
      << silent.stderr_output() << silent.log();
}

TEST_F(AgentE2eTest, ServerErrorsKeepTheirCodesAndTheConnection) {
  auto client = Connect(agent_->UnixEndpoint());
  ASSERT_NE(client, nullptr);
  const auto list = List(*client);
  const auto& ec = *std::find_if(list.certificates.begin(), list.certificates.end(),
                                 [](const auto& e) { return e.key.type == KeyType::kEc; });
  const auto& rsa = *std::find_if(list.certificates.begin(), list.certificates.end(),
                                  [](const auto& e) { return e.key.type == KeyType::kRsa; });
  proto::SignRequest req;
  req.hash = HashAlgorithm::kSha256;
  req.digest = Bytes(32, 7);

  req.certificate_id = "0000000000000000000000000000000000000000";
  req.scheme = SignatureScheme::kRsaPkcs1;
  EXPECT_THAT(client->Sign(req), StatusIs(ErrorCode::kNotFound));  // HTTP 404

  req.certificate_id = ec.id;
  req.scheme = SignatureScheme::kRsaPss;
  EXPECT_THAT(client->Sign(req), StatusIs(ErrorCode::kInvalidArgument));  // HTTP 400

  // The release user may use SHA-1 with PKCS#1 v1.5 only (legacy Authenticode).
  req.certificate_id = rsa.id;
  req.hash = HashAlgorithm::kSha1;
  req.digest = Bytes(20, 7);
  auto denied = client->Sign(req);
  EXPECT_THAT(denied, StatusIs(ErrorCode::kPermissionDenied)) << denied.status().ToString();  // 403

  // Application errors leave the connection usable.
  EXPECT_TRUE(client->healthy());
  EXPECT_EQ(List(*client).certificates.size(), 6u);
}

TEST_F(AgentE2eTest, AuditLogRecordsTheRealProcessNotTheClaim) {
  auto client = Connect(agent_->UnixEndpoint());
  ASSERT_NE(client, nullptr);
  const auto list = List(*client);
  proto::SignRequest req;
  req.certificate_id = list.certificates.at(0).id;
  req.scheme = list.certificates.at(0).schemes.at(0);
  req.hash = HashAlgorithm::kSha256;
  req.digest = RandomBytes(32);
  req.context.process = "claimed-tool";
  req.context.command_line = "claimed-tool --pretend";
  req.context.pid = 1;
  req.context.uid = 4242;
  ASSERT_OK(client->Sign(req));

  const std::string digest_hex = HexEncode(req.digest);
  json found;
  for (const json& e : AuditEvents("sign")) {
    if (e.value("digest", "") == digest_hex) found = e;
  }
  ASSERT_FALSE(found.is_null()) << "no audit entry for digest " << digest_hex;
  const json& context = found["context"];
  EXPECT_EQ(context["process"], "signum_agent_test") << context.dump();
  EXPECT_NE(context.value("command_line", "").find("signum_agent_test"), std::string::npos)
      << context.dump();
  EXPECT_EQ(context["pid"], static_cast<long>(::getpid()));
  EXPECT_EQ(context["uid"], static_cast<long>(::geteuid()));
  EXPECT_EQ(context["agent_id"], "agent-e2e");
  char host[256] = {};
  ::gethostname(host, sizeof host - 1);
  EXPECT_EQ(context["host"], std::string(host));
  EXPECT_EQ(found["decision"], "allowed");
}

TEST_F(AgentE2eTest, TcpPeersClaimsArePassedOnAndMarked) {
  auto client = Connect(agent_->TcpEndpoint());
  ASSERT_NE(client, nullptr);
  const auto list = List(*client);
  proto::SignRequest req;
  req.certificate_id = list.certificates.at(0).id;
  req.scheme = list.certificates.at(0).schemes.at(0);
  req.hash = HashAlgorithm::kSha256;
  req.digest = RandomBytes(32);
  req.context.process = "signtool.exe";
  req.context.command_line = "signtool.exe sign /sha1 x";
  ASSERT_OK(client->Sign(req));
  json found;
  for (const json& e : AuditEvents("sign")) {
    if (e.value("digest", "") == HexEncode(req.digest)) found = e;
  }
  ASSERT_FALSE(found.is_null());
  EXPECT_EQ(found["context"]["process"], "signtool.exe");
  EXPECT_NE(found["context"]["host"].get<std::string>().find("(tcp-peer)"), std::string::npos)
      << found.dump();
}

// --- Robustness -----------------------------------------------------------------------------

TEST_F(AgentE2eTest, MalformedFramesGetAnErrorAndACloseAndTheAgentLivesOn) {
  struct Case {
    std::string name;
    std::string bytes;  // sent after a good hello unless `before_hello`
    bool before_hello;
    ErrorCode code;
  };
  auto header = [](uint32_t n) {
    return std::string{static_cast<char>(n >> 24), static_cast<char>(n >> 16),
                       static_cast<char>(n >> 8), static_cast<char>(n)};
  };
  const std::vector<Case> cases = {
      {"garbage", header(9) + "not json!", false, ErrorCode::kInvalidArgument},
      {"garbage before hello", header(5) + "\x01\x02\x03\x04\x05", true,
       ErrorCode::kInvalidArgument},
      {"oversized length", header(0x7fffffff), false, ErrorCode::kInvalidArgument},
      {"empty frame", header(0), true, ErrorCode::kInvalidArgument},
      {"megabyte hello", header(1 << 20), true, ErrorCode::kInvalidArgument},
      {"array body", proto::EncodeFrame(json::array({1, 2})), false, ErrorCode::kInvalidArgument},
      {"unknown type", proto::EncodeFrame(json{{"type", "format-disk"}}), false,
       ErrorCode::kInvalidArgument},
      {"missing type", proto::EncodeFrame(json{{"refresh", true}}), false,
       ErrorCode::kInvalidArgument},
      {"sign without digest",
       proto::EncodeFrame(json{
           {"type", "sign"}, {"certificate_id", "x"}, {"scheme", "ecdsa"}, {"hash", "sha256"}}),
       false, ErrorCode::kInvalidArgument},
      {"reply type as request", proto::EncodeFrame(proto::SignatureJson(Bytes{1})), false,
       ErrorCode::kInvalidArgument},
      {"second hello", proto::EncodeFrame(proto::ToJson(proto::Hello{1, "again", ""}, false)),
       false, ErrorCode::kInvalidArgument},
      {"hello without protocol", proto::EncodeFrame(json{{"type", "hello"}}), true,
       ErrorCode::kInvalidArgument},
  };
  for (const Case& c : cases) {
    auto raw = RawConnection::Unix(agent_->socket());
    ASSERT_NE(raw, nullptr) << c.name;
    if (!c.before_hello) raw->Hello();
    ASSERT_TRUE(raw->Send(c.bytes)) << c.name;
    ExpectErrorAndClose(*raw, c.code, c.name);
  }
  // Half a frame and a hang-up, and a flood of random bytes.
  {
    auto raw = RawConnection::Unix(agent_->socket());
    raw->Hello();
    raw->Send(header(100) + "{\"type\":");
  }
  {
    auto raw = RawConnection::Unix(agent_->socket());
    raw->Send(ToString(RandomBytes(64 * 1024)));
  }
  // Several requests in one write are answered in order.
  auto raw = RawConnection::Unix(agent_->socket());
  raw->Hello();
  ASSERT_TRUE(raw->Send(proto::EncodeFrame(proto::StatusRequestJson()) +
                        proto::EncodeFrame(proto::ToJson(proto::ListRequest{})) +
                        proto::EncodeFrame(proto::StatusRequestJson())));
  for (const char* type : {"status", "certificates", "status"}) {
    auto reply = raw->Read();
    ASSERT_TRUE(reply.has_value()) << type;
    EXPECT_EQ((*reply)["type"], type);
  }

  ASSERT_TRUE(agent_->running()) << agent_->log();
  auto client = Connect(agent_->UnixEndpoint());
  ASSERT_NE(client, nullptr);
  EXPECT_EQ(List(*client).certificates.size(), 6u);
}

TEST_F(AgentE2eTest, ClientSeesAClosedConnectionAsUnavailableAndReconnects) {
  auto raw_client = Connect(agent_->UnixEndpoint());
  ASSERT_NE(raw_client, nullptr);
  // A bad request makes the agent close this connection.
  auto raw = RawConnection::Unix(agent_->socket());
  raw->Hello();
  raw->Send(proto::EncodeFrame(json{{"type", "nope"}}));
  ExpectErrorAndClose(*raw, ErrorCode::kInvalidArgument, "nope");
  // Idle connections stay open for as long as the provider wants.
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  EXPECT_OK(raw_client->ListCertificates());
  EXPECT_TRUE(raw_client->healthy());
}

// --- Cache ----------------------------------------------------------------------------------

TEST_F(AgentE2eTest, CertificateListIsCachedAndRefreshedOnRequest) {
  auto client = Connect(agent_->UnixEndpoint());
  ASSERT_NE(client, nullptr);
  List(*client, /*refresh=*/true);
  const size_t before = AuditEvents("list").size();
  for (int i = 0; i < 5; ++i) EXPECT_EQ(List(*client).certificates.size(), 6u);
  EXPECT_EQ(AuditEvents("list").size(), before) << "the cache (TTL 60 s) should have answered";
  List(*client, /*refresh=*/true);
  EXPECT_EQ(AuditEvents("list").size(), before + 1);
}

TEST_F(AgentE2eTest, ConcurrentRefreshesShareOneServerCall) {
  const size_t before = AuditEvents("list").size();
  constexpr int kThreads = 16;
  std::vector<std::unique_ptr<AgentClient>> clients;
  for (int i = 0; i < kThreads; ++i) clients.push_back(Connect(agent_->UnixEndpoint()));
  std::atomic<int> ready{0};
  std::atomic<int> ok{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&, i] {
      ++ready;
      while (ready < kThreads) std::this_thread::yield();
      if (clients[i] && clients[i]->ListCertificates(true).ok()) ++ok;
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok, kThreads);
  const size_t calls = AuditEvents("list").size() - before;
  EXPECT_GE(calls, 1u);
  EXPECT_LT(calls, static_cast<size_t>(kThreads))
      << "concurrent refreshes should share server calls";
}

TEST_F(AgentE2eTest, CacheExpiresAfterTheTtl) {
  TempDir dir("signum-agent-ttl");
  AgentProcess::Options o = DefaultOptions();
  o.cache_ttl = "1";
  o.tcp = false;
  AgentProcess agent(dir.path(), o);
  agent.Start();
  auto client = Connect(agent.UnixEndpoint());
  ASSERT_NE(client, nullptr);
  const size_t before = AuditEvents("list").size();
  List(*client);
  List(*client);
  EXPECT_EQ(AuditEvents("list").size(), before + 1);
  std::this_thread::sleep_for(std::chrono::milliseconds(1300));
  List(*client);
  EXPECT_EQ(AuditEvents("list").size(), before + 2);
}

// --- Concurrency ----------------------------------------------------------------------------

TEST_F(AgentE2eTest, SixteenThreadsSignThroughSixteenClients) {
  auto lister = Connect(agent_->UnixEndpoint());
  ASSERT_NE(lister, nullptr);
  const auto list = List(*lister);
  constexpr int kThreads = 16;
  constexpr int kSignsPerThread = 6;
  std::atomic<int> verified{0};
  std::vector<std::string> failures(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      auto client = AgentClient::Connect(t % 2 ? agent_->TcpEndpoint() : agent_->UnixEndpoint(),
                                         "thread-" + std::to_string(t), 60000);
      if (!client.ok()) {
        failures[t] = client.status().ToString();
        return;
      }
      for (int i = 0; i < kSignsPerThread; ++i) {
        const auto& entry =
            list.certificates[static_cast<size_t>(t + i) % list.certificates.size()];
        proto::SignRequest req;
        req.certificate_id = entry.id;
        req.scheme = entry.schemes.front();
        req.hash = HashAlgorithm::kSha256;
        req.digest = RandomBytes(32);
        auto signature = (*client)->Sign(req);
        if (!signature.ok()) {
          failures[t] = signature.status().ToString();
          return;
        }
        const PublicKey key = Certificate::FromPem(entry.certificate_pem)->GetPublicKey().value();
        if (VerifyDigestSignature(key, req.scheme, req.hash, req.digest, *signature).ok())
          ++verified;
      }
    });
  }
  for (auto& t : threads) t.join();
  for (int t = 0; t < kThreads; ++t)
    EXPECT_TRUE(failures[t].empty()) << "thread " << t << ": " << failures[t];
  EXPECT_EQ(verified, kThreads * kSignsPerThread);
}

// --- Server down and back -------------------------------------------------------------------

TEST_F(AgentE2eTest, ServerDownGivesUnavailableQuicklyAndARestartIsPickedUp) {
  auto client = Connect(agent_->UnixEndpoint());
  ASSERT_NE(client, nullptr);
  const auto list = List(*client, true);
  ASSERT_FALSE(list.certificates.empty());
  const auto& entry = list.certificates.front();
  proto::SignRequest req;
  req.certificate_id = entry.id;
  req.scheme = entry.schemes.front();
  req.hash = HashAlgorithm::kSha256;
  req.digest = RandomBytes(32);
  ASSERT_OK(client->Sign(req));  // warms a pooled connection to the server

  deployment_->Stop();
  auto timed = [](auto&& call) {
    const auto start = Clock::now();
    auto result = call();
    return std::make_pair(std::move(result), Clock::now() - start);
  };
  auto [listed, list_time] = timed([&] { return client->ListCertificates(/*refresh=*/true); });
  EXPECT_THAT(listed, StatusIs(ErrorCode::kUnavailable)) << listed.status().ToString();
  EXPECT_NE(
      listed.status().message().find("signum-server at " + deployment_->url() + " is unreachable"),
      std::string::npos)
      << listed.status().message();
  EXPECT_LT(list_time, std::chrono::seconds(10));

  auto [signed_while_down, sign_time] = timed([&] { return client->Sign(req); });
  EXPECT_THAT(signed_while_down, StatusIs(ErrorCode::kUnavailable))
      << signed_while_down.status().ToString();
  EXPECT_LT(sign_time, std::chrono::seconds(10));

  auto status = client->GetStatus();
  ASSERT_OK(status);
  EXPECT_FALSE(status->server_reachable);
  EXPECT_EQ(status->server_url, deployment_->url());
  EXPECT_NE(status->message.find("unreachable"), std::string::npos) << status->message;

  auto util = RunCommand(std::string(kUtilBinary) + " --socket " + agent_->socket() + " status");
  EXPECT_EQ(util.exit_code, 2) << util.output;
  EXPECT_NE(util.output.find("UNREACHABLE"), std::string::npos) << util.output;

  // The agent connection survived all of this.
  EXPECT_TRUE(client->healthy());
  deployment_->Start();
  req.digest = RandomBytes(32);
  auto after = client->Sign(req);
  ASSERT_OK(after);
  const PublicKey key = Certificate::FromPem(entry.certificate_pem)->GetPublicKey().value();
  EXPECT_OK(VerifyDigestSignature(key, req.scheme, req.hash, req.digest, *after));
  status = client->GetStatus();
  ASSERT_OK(status);
  EXPECT_TRUE(status->server_reachable);
  EXPECT_EQ(status->certificates, 6u);
}

TEST_F(AgentE2eTest, ServerOverloadIsResourceExhaustedAndNotRetried) {
  // One signature in flight at a time on the server: concurrent signs through the agent must see
  // HTTP 429 as RESOURCE_EXHAUSTED (the provider's "try again later").
  const std::string config_path = deployment_->root() + "/server.json";
  const std::string original = *ReadFile(config_path);
  json config = json::parse(original);
  config["limits"]["max_inflight_signatures"] = 1;
  deployment_->Stop();
  ASSERT_OK(WriteFileAtomically(config_path, config.dump(2), 0644));
  deployment_->Start();

  std::vector<std::unique_ptr<AgentClient>> clients;
  for (int i = 0; i < 8; ++i) clients.push_back(Connect(agent_->UnixEndpoint()));
  const auto list = List(*clients[0]);
  const auto& rsa = *std::find_if(list.certificates.begin(), list.certificates.end(),
                                  [](const auto& e) { return e.label == "rsa-4096"; });
  std::atomic<int> ok{0};
  std::atomic<int> exhausted{0};
  std::atomic<int> other{0};
  for (int round = 0; round < 10 && exhausted == 0; ++round) {
    std::vector<std::thread> threads;
    for (auto& c : clients) {
      threads.emplace_back([&] {
        proto::SignRequest req{
            rsa.id, SignatureScheme::kRsaPkcs1, HashAlgorithm::kSha256, RandomBytes(32), {}, {}};
        auto r = c->Sign(req);
        if (r.ok()) {
          ++ok;
        } else if (r.status().code() == ErrorCode::kResourceExhausted) {
          ++exhausted;
        } else {
          ++other;
        }
      });
    }
    for (auto& t : threads) t.join();
  }
  EXPECT_GT(exhausted, 0);
  EXPECT_GT(ok, 0);
  EXPECT_EQ(other, 0);

  deployment_->Stop();
  ASSERT_OK(WriteFileAtomically(config_path, original, 0644));
  deployment_->Start();
}

TEST_F(AgentE2eTest, ServerRestartedUnderWarmConnectionsSignsOnFirstTry) {
  // Several pooled server connections, then a restart: every one of them is stale.
  std::vector<std::unique_ptr<AgentClient>> clients;
  for (int i = 0; i < 4; ++i) clients.push_back(Connect(agent_->UnixEndpoint()));
  const auto list = List(*clients[0]);
  const auto& entry = list.certificates.back();
  auto sign_all = [&] {
    std::vector<std::thread> threads;
    std::atomic<int> ok{0};
    for (auto& c : clients) {
      threads.emplace_back([&] {
        proto::SignRequest req{
            entry.id, entry.schemes.front(), HashAlgorithm::kSha256, RandomBytes(32), {}, {}};
        if (c->Sign(req).ok()) ++ok;
      });
    }
    for (auto& t : threads) t.join();
    return ok.load();
  };
  EXPECT_EQ(sign_all(), 4);
  deployment_->Stop();
  deployment_->Start();
  EXPECT_EQ(sign_all(), 4) << agent_->log();
}

TEST_F(AgentE2eTest, AgentStartsWithoutAServerAndAnswersQuickly) {
  TempDir dir("signum-agent-noserver");
  AgentProcess::Options o = DefaultOptions();
  o.server_url = "https://127.0.0.1:1";  // nothing listens on port 1
  o.tcp = false;
  AgentProcess agent(dir.path(), o);
  agent.Start();
  auto client = Connect(agent.UnixEndpoint());
  ASSERT_NE(client, nullptr);
  const auto start = Clock::now();
  auto list = client->ListCertificates();
  EXPECT_THAT(list, StatusIs(ErrorCode::kUnavailable));
  EXPECT_NE(list.status().message().find("https://127.0.0.1:1 is unreachable"), std::string::npos)
      << list.status().message();
  EXPECT_LT(Clock::now() - start, std::chrono::seconds(10));
}

TEST_F(AgentE2eTest, UnknownTokenIsUnauthenticated) {
  TempDir dir("signum-agent-badtoken");
  const std::string token = dir.File("bad.token");
  ASSERT_OK(WriteFileAtomically(token, "sgn_deadbeef_notarealsecret\n"));
  AgentProcess::Options o = DefaultOptions();
  o.token_file = token;
  o.tcp = false;
  AgentProcess agent(dir.path(), o);
  agent.Start();
  auto client = Connect(agent.UnixEndpoint());
  ASSERT_NE(client, nullptr);
  EXPECT_THAT(client->ListCertificates(), StatusIs(ErrorCode::kUnauthenticated));
  auto status = client->GetStatus();
  ASSERT_OK(status);
  EXPECT_TRUE(status->server_reachable);
  EXPECT_EQ(status->user, "token sgn_deadbeef");
  EXPECT_NE(status->message.find("UNAUTHENTICATED"), std::string::npos) << status->message;
  // The token itself never reaches the log.
  EXPECT_EQ(agent.log().find("notarealsecret"), std::string::npos);
}

TEST_F(AgentE2eTest, ClientCertificateCredentialWorks) {
  TempDir dir("signum-agent-mtls");
  AgentProcess::Options o = DefaultOptions();
  o.token_file = "";
  o.tcp = false;
  o.extra_env = {{"SIGNUM_CERTIFICATE_PATH", deployment_->root() + "/credentials/ci-bot.crt"},
                 {"SIGNUM_KEY_PATH", deployment_->root() + "/credentials/ci-bot.key"}};
  AgentProcess agent(dir.path(), o);
  agent.Start();
  auto client = Connect(agent.UnixEndpoint());
  ASSERT_NE(client, nullptr);
  EXPECT_EQ(List(*client).certificates.size(), 6u);
  auto status = client->GetStatus();
  ASSERT_OK(status);
  EXPECT_EQ(status->user.rfind("client certificate ", 0), 0u) << status->user;
  EXPECT_NE(status->user.find("ci-bot"), std::string::npos) << status->user;
}

// --- Lifecycle ------------------------------------------------------------------------------

TEST_F(AgentE2eTest, SigtermRemovesSocketPortAndPidFiles) {
  TempDir dir("signum-agent-term");
  AgentProcess agent(dir.path(), DefaultOptions());
  agent.Start();
  ASSERT_EQ(OrEmpty(ReadFile(agent.pid_file())), std::to_string(agent.pid()) + "\n");
  // An idle provider connection must not hold up the shutdown.
  auto idle = Connect(agent.UnixEndpoint());
  ASSERT_NE(idle, nullptr);
  EXPECT_EQ(agent.Stop(), 0) << agent.log();
  EXPECT_NE(::access(agent.socket().c_str(), F_OK), 0);
  EXPECT_NE(::access(agent.port_file().c_str(), F_OK), 0);
  EXPECT_NE(::access(agent.pid_file().c_str(), F_OK), 0);
  EXPECT_THAT(idle->ListCertificates(), StatusIs(ErrorCode::kUnavailable));
  EXPECT_FALSE(idle->healthy());
}

TEST_F(AgentE2eTest, SecondAgentOnALiveSocketRefusesAndAStaleSocketIsReplaced) {
  AgentProcess::Options o = DefaultOptions();
  o.tcp = false;
  // agent_'s own socket: the newcomer must refuse and leave it alone.
  std::vector<std::string> args = agent_->EnvArgs();
  args.push_back("SIGNUM_AGENT_TCP=off");
  args.push_back(kAgentBinary);
  bp::child second(bp::exe = "/usr/bin/env", bp::args = args, bp::std_out > bp::null,
                   bp::std_err > agent_dir_->File("second.stderr"));
  second.wait();
  EXPECT_NE(second.exit_code(), 0);
  EXPECT_NE(OrEmpty(ReadFile(agent_dir_->File("second.stderr"))).find("already serving"),
            std::string::npos);
  ASSERT_TRUE(Connect(agent_->UnixEndpoint()) != nullptr);

  // A socket file nobody listens on (an agent that was killed with SIGKILL).
  TempDir dir("signum-agent-stale");
  AgentProcess agent(dir.path(), o);
  {
    const int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, agent.socket().c_str(), sizeof addr.sun_path - 1);
    ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    ::close(fd);
  }
  agent.Start();
  EXPECT_TRUE(Connect(agent.UnixEndpoint()) != nullptr);
}

TEST_F(AgentE2eTest, PeerWithAnotherUidIsRejected) {
  if (::geteuid() != 0) {
    GTEST_SKIP() << "needs root to run the agent as another user; CheckPeerUid is unit-tested";
  }
  const passwd* nobody = ::getpwnam("nobody");
  ASSERT_NE(nobody, nullptr);
  const uid_t uid = nobody->pw_uid;
  const gid_t gid = nobody->pw_gid;
  // The agent runs as nobody in a directory nobody owns, with copies of the credential it needs.
  TempDir base("signum-agent-uid");
  ::chmod(base.path().c_str(), 0755);
  const std::string dir = base.path() + "/run";
  ASSERT_EQ(::mkdir(dir.c_str(), 0700), 0);
  ASSERT_EQ(::chown(dir.c_str(), uid, gid), 0);
  const std::string token = dir + "/token";
  const std::string ca = dir + "/ca.pem";
  ASSERT_OK(WriteFileAtomically(token, *ReadFile(deployment_->token_file()), 0600));
  ASSERT_OK(WriteFileAtomically(ca, *ReadFile(deployment_->ca()), 0644));
  ASSERT_EQ(::chown(token.c_str(), uid, gid), 0);
  ASSERT_EQ(::chown(ca.c_str(), uid, gid), 0);
  AgentProcess::Options o = DefaultOptions();
  o.token_file = token;
  o.ca_file = ca;
  o.tcp = false;
  o.before_exec = [uid, gid] {
    if (::setgroups(0, nullptr) != 0 || ::setgid(gid) != 0 || ::setuid(uid) != 0) ::_exit(97);
  };
  AgentProcess agent(dir, o);
  agent.Start();

  // Our client refuses first: the socket's directory is not ours (nor is the agent).
  auto client = AgentClient::Connect(agent.UnixEndpoint(), "root-client", 5000);
  ASSERT_THAT(client, StatusIs(ErrorCode::kPermissionDenied)) << client.status().ToString();
  EXPECT_NE(client.status().message().find("belongs to uid " + std::to_string(uid)),
            std::string::npos)
      << client.status().message();
  // The agent, for its part: the kernel reports uid 0 for us, which is not the agent's user.
  auto raw = RawConnection::Unix(agent.socket());
  ASSERT_NE(raw, nullptr);
  ExpectErrorAndClose(*raw, ErrorCode::kPermissionDenied, "root peer");
  EXPECT_TRUE(agent.running());
  EXPECT_EQ(agent.Stop(), 0);
}

// --- Connection floods: nobody can lock the owner out ----------------------------------------

// Opens `count` loopback TCP connections to `port` that never say hello and holds them for
// `hold_seconds` (bounded: the script ends by itself), as uid nobody when we are root.
// Returns the flood's process; it prints "opened N" once connected.
std::unique_ptr<bp::child> StartTcpFlood(uint16_t port, int count, int hold_seconds,
                                         const std::string& out_file, bool as_nobody) {
  const std::string script =
      "import socket, sys, time\n"
      "held = []\n"
      "for _ in range(" + std::to_string(count) + "):\n"
      "    try:\n"
      "        s = socket.create_connection(('127.0.0.1', " + std::to_string(port) + "), 2)\n"
      "        held.append(s)\n"
      "    except OSError:\n"
      "        pass\n"
      "print('opened', len(held), flush=True)\n"
      "time.sleep(" + std::to_string(hold_seconds) + ")\n";
  std::vector<std::string> args;
  if (as_nobody) args = {"--reuid=nobody", "--regid=nogroup", "--clear-groups"};
  args.insert(args.end(), {"/usr/bin/python3", "-c", script});
  return std::make_unique<bp::child>(bp::exe = as_nobody ? "/usr/bin/setpriv" : "/usr/bin/python3",
                                     bp::args = as_nobody ? args
                                                          : std::vector<std::string>(args.begin() + 1,
                                                                                     args.end()),
                                     bp::std_out > out_file, bp::std_err > bp::null);
}

bool WaitForOpened(const std::string& out_file, int seconds) {
  for (int i = 0; i < seconds * 20; ++i) {
    if (OrEmpty(ReadFile(out_file)).find("opened") != std::string::npos) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return false;
}

// One signature through `endpoint`, timed; the signature is verified.
void ExpectSignsPromptly(const AgentEndpoint& endpoint, const std::string& what) {
  const auto start = Clock::now();
  auto client = AgentClient::Connect(endpoint, "owner", 10000);
  ASSERT_OK(client) << what;
  auto list = (*client)->ListCertificates(false);
  ASSERT_OK(list) << what;
  const auto& entry = list->certificates.front();
  proto::SignRequest req;
  req.certificate_id = entry.id;
  req.scheme = entry.key.type == KeyType::kRsa ? SignatureScheme::kRsaPkcs1 : SignatureScheme::kEcdsa;
  req.hash = HashAlgorithm::kSha256;
  req.digest = Digest(HashAlgorithm::kSha256, AsBytes(what));
  auto signature = (*client)->Sign(req);
  ASSERT_OK(signature) << what;
  const PublicKey key = Certificate::FromPem(entry.certificate_pem)->GetPublicKey().value();
  EXPECT_OK(VerifyDigestSignature(key, req.scheme, req.hash, req.digest, *signature)) << what;
  const auto took = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start);
  // Not a speed goal: before the limits, the owner waited out 10 s handshake timeouts.
  EXPECT_LT(took.count(), 2500) << what << " took " << took.count() << " ms";
  std::printf("[ figures  ] %s: signed in %lld ms\n", what.c_str(),
              static_cast<long long>(took.count()));
}

// The attack as reported: 300 pre-hello TCP connections from uid nobody filled the agent's
// 256-connection limit and the owner could not sign for ~10 s, renewable forever. Another
// user's connections are now refused at accept (the kernel's socket table names their uid), and
// the owner signs through the Unix socket and TCP while the flood holds.
TEST_F(AgentE2eTest, AnotherUsersTcpFloodDoesNotLockTheOwnerOut) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to flood as another local user (nobody)";
  TempDir dir("signum-flood");
  ::chmod(dir.path().c_str(), 0777);
  const std::string out = dir.File("flood.out");
  auto flood = StartTcpFlood(agent_->tcp_port(), 300, 8, out, /*as_nobody=*/true);
  ASSERT_TRUE(WaitForOpened(out, 20)) << OrEmpty(ReadFile(out));
  ExpectSignsPromptly(agent_->UnixEndpoint(), "unix socket during nobody's flood");
  ExpectSignsPromptly(agent_->TcpEndpoint(), "tcp during nobody's flood");
  EXPECT_NE(agent_->log().find("refused (this agent serves uid 0"), std::string::npos);
  ::kill(flood->id(), SIGKILL);
  flood->wait();
}

// The owner's own misbehaving program (or anyone whose uid cannot be told) holding 300
// unauthenticated TCP connections: they fill only their own small budget, the Unix socket is
// served all along, and each is dropped after the short handshake deadline, so TCP comes back.
TEST_F(AgentE2eTest, UnauthenticatedTcpConnectionsHaveTheirOwnBudgetAndDeadline) {
  TempDir dir("signum-flood-self");
  const std::string out = dir.File("flood.out");
  auto flood = StartTcpFlood(agent_->tcp_port(), 300, 10, out, /*as_nobody=*/false);
  ASSERT_TRUE(WaitForOpened(out, 20)) << OrEmpty(ReadFile(out));
  ExpectSignsPromptly(agent_->UnixEndpoint(), "unix socket during a pre-hello tcp flood");
  // The flood's connections time out of the handshake (3 s); new ones keep arriving only from
  // the accept backlog, so a TCP client gets a slot within a few seconds at most.
  bool signed_over_tcp = false;
  for (int attempt = 0; attempt < 20 && !signed_over_tcp; ++attempt) {
    auto client = AgentClient::Connect(agent_->TcpEndpoint(), "owner", 5000);
    signed_over_tcp = client.ok() && (*client)->ListCertificates(false).ok();
    if (!signed_over_tcp) std::this_thread::sleep_for(std::chrono::milliseconds(500));
  }
  EXPECT_TRUE(signed_over_tcp) << "TCP never came back during the flood";
  ::kill(flood->id(), SIGKILL);
  flood->wait();
}

// --- Another local user impersonating the agent ----------------------------------------------

// A fake agent: a child process that binds `socket`, drops to `uid`/`gid` (before or after
// bind, as the attack needs), listens, and writes every byte any client sends into `received`
// (a file it creates). Ends by itself after `seconds`; the test also stops it by PID.
class FakeAgent {
 public:
  FakeAgent(const std::string& socket, const std::string& received, uid_t uid, gid_t gid,
            bool drop_before_bind, int seconds = 10) {
    int ready[2];
    if (::pipe(ready) != 0) throw std::runtime_error("pipe");
    pid_ = ::fork();
    if (pid_ == 0) {
      ::close(ready[0]);
      auto drop = [&] {
        if (::setgroups(0, nullptr) != 0 || ::setgid(gid) != 0 || ::setuid(uid) != 0) _exit(97);
      };
      if (drop_before_bind) drop();
      const int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
      sockaddr_un addr{};
      addr.sun_family = AF_UNIX;
      std::memcpy(addr.sun_path, socket.data(), socket.size());
      if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) _exit(98);
      ::chmod(socket.c_str(), 0777);
      if (!drop_before_bind) drop();
      // SO_PEERCRED reports the credentials the listener had at listen().
      if (::listen(fd, 8) != 0) _exit(99);
      const int out = ::open(received.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0666);
      (void)!::write(ready[1], "r", 1);
      const auto end = Clock::now() + std::chrono::seconds(seconds);
      while (Clock::now() < end) {
        pollfd p{fd, POLLIN, 0};
        if (::poll(&p, 1, 100) <= 0) continue;
        const int c = ::accept(fd, nullptr, nullptr);
        if (c < 0) continue;
        (void)!::write(out, "<connection>", 12);
        char buf[4096];
        for (;;) {
          pollfd q{c, POLLIN, 0};
          if (::poll(&q, 1, 500) <= 0) break;
          const ssize_t n = ::read(c, buf, sizeof buf);
          if (n <= 0) break;
          (void)!::write(out, buf, static_cast<size_t>(n));
        }
        ::close(c);
      }
      _exit(0);
    }
    ::close(ready[1]);
    char byte = 0;
    const bool up = ::read(ready[0], &byte, 1) == 1;
    ::close(ready[0]);
    if (!up) throw std::runtime_error("the fake agent did not start");
  }
  ~FakeAgent() {
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
  }

 private:
  pid_t pid_ = -1;
};

struct Nobody {
  uid_t uid;
  gid_t gid;
};
Nobody NobodyUser() {
  const passwd* nobody = ::getpwnam("nobody");
  if (nobody == nullptr) throw std::runtime_error("no user nobody");
  return {nobody->pw_uid, nobody->pw_gid};
}

// The attack as reported: with the agent not running, uid nobody makes the socket directory
// (/tmp/signum-0 by default when XDG_RUNTIME_DIR is unset) and serves a fake agent there. The
// provider's client must refuse before it sends a byte, and the real agent must refuse to serve
// from that directory, saying why.
TEST(AgentImpersonationTest, SocketInAnotherUsersDirectoryIsRefusedByClientAndAgent) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to act as another local user (nobody)";
  const Nobody nobody = NobodyUser();
  TempDir base("signum-impersonation");
  ::chmod(base.path().c_str(), 0755);
  const std::string dir = base.path() + "/signum-0";  // what nobody created
  ASSERT_EQ(::mkdir(dir.c_str(), 0755), 0);
  ASSERT_EQ(::chown(dir.c_str(), nobody.uid, nobody.gid), 0);
  const std::string socket = dir + "/agent.sock";
  const std::string received = base.path() + "/received";
  ASSERT_EQ(::close(::open(received.c_str(), O_CREAT | O_WRONLY, 0666)), 0);
  ::chmod(received.c_str(), 0666);
  FakeAgent fake(socket, received, nobody.uid, nobody.gid, /*drop_before_bind=*/true);

  AgentEndpoint endpoint;
  endpoint.unix_socket = socket;
  auto client = AgentClient::Connect(endpoint, "victim", 3000);
  ASSERT_FALSE(client.ok()) << "a fake agent owned by another user was accepted";
  EXPECT_THAT(client, StatusIs(ErrorCode::kPermissionDenied)) << client.status().ToString();
  EXPECT_NE(client.status().message().find("belongs to uid " + std::to_string(nobody.uid)),
            std::string::npos)
      << client.status().message();
  EXPECT_NE(client.status().message().find("impersonating"), std::string::npos)
      << client.status().message();
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  EXPECT_EQ(OrEmpty(ReadFile(received)), "") << "the fake agent heard from the client";

  // The real agent, started for root with that socket path, refuses the directory.
  const std::string agent_dir = base.path() + "/agent";
  ASSERT_EQ(::mkdir(agent_dir.c_str(), 0700), 0);
  ASSERT_OK(WriteFileAtomically(agent_dir + "/token", "not-a-real-token\n", 0600));
  auto run = RunCommand("env -u XDG_RUNTIME_DIR SIGNUM_SERVER_URL=https://127.0.0.1:9 "
                        "SIGNUM_AGENT_SOCKET=" + socket + " SIGNUM_AGENT_TCP=off "
                        "SIGNUM_TOKEN_FILE=" + agent_dir + "/token timeout 20 " +
                        std::string(kAgentBinary) +
                        " --log-file " + agent_dir + "/agent.log");
  EXPECT_NE(run.exit_code, 0) << run.output;
  const std::string said = run.output + OrEmpty(ReadFile(agent_dir + "/agent.log"));
  EXPECT_NE(said.find("not serving on unix:" + socket), std::string::npos) << said;
  EXPECT_NE(said.find("belongs to uid " + std::to_string(nobody.uid)), std::string::npos) << said;
}

// A directory that is ours but open to others (e.g. SIGNUM_AGENT_SOCKET=/tmp/agent.sock for
// root: /tmp is root's, mode 1777) lets another user swap the socket: refused too.
TEST(AgentImpersonationTest, SocketInAWorldWritableDirectoryIsRefused) {
  TempDir base("signum-open-dir");
  ASSERT_EQ(::chmod(base.path().c_str(), 01777), 0);
  AgentEndpoint endpoint;
  endpoint.unix_socket = base.path() + "/agent.sock";
  auto client = AgentClient::Connect(endpoint, "victim", 3000);
  ASSERT_THAT(client, StatusIs(ErrorCode::kPermissionDenied)) << client.status().ToString();
  EXPECT_NE(client.status().message().find("has mode 1777"), std::string::npos)
      << client.status().message();
}

// The directory is ours and private, but the process listening on the socket is another user's
// (it bound there as root and then dropped to nobody, say a compromised helper): SO_PEERCRED
// tells, and the client refuses before the hello.
TEST(AgentImpersonationTest, ListenerRunningAsAnotherUserIsRefused) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to run a listener as another user (nobody)";
  const Nobody nobody = NobodyUser();
  TempDir base("signum-peer-uid");
  ::chmod(base.path().c_str(), 0700);
  TempDir outside("signum-peer-uid-out");  // where nobody can write what it received
  ::chmod(outside.path().c_str(), 0755);
  const std::string received = outside.path() + "/received";
  ASSERT_EQ(::close(::open(received.c_str(), O_CREAT | O_WRONLY, 0666)), 0);
  ::chmod(received.c_str(), 0666);
  const std::string socket = base.path() + "/agent.sock";
  FakeAgent fake(socket, received, nobody.uid, nobody.gid, /*drop_before_bind=*/false);

  AgentEndpoint endpoint;
  endpoint.unix_socket = socket;
  auto client = AgentClient::Connect(endpoint, "victim", 3000);
  ASSERT_FALSE(client.ok()) << "a listener running as another user was accepted";
  EXPECT_THAT(client, StatusIs(ErrorCode::kPermissionDenied)) << client.status().ToString();
  EXPECT_NE(client.status().message().find("runs as uid " + std::to_string(nobody.uid)),
            std::string::npos)
      << client.status().message();
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  EXPECT_EQ(OrEmpty(ReadFile(received)), "<connection>") << "the client sent bytes to it";
}

// --- signum-util against the running agent ---------------------------------------------------

namespace util {

std::string Quote(const std::string& s) { return "'" + s + "'"; }

}  // namespace util

class SignumUtilTest : public AgentE2eTest {
 protected:
  // signum-util with the provider environment pointing at the shared agent's socket.
  static signum::testing::CommandResult Util(const std::string& args, const std::string& env = "") {
    return RunCommand("env -u SIGNUM_AGENT_TCP -u SIGNUM_AGENT_SECRET_FILE SIGNUM_AGENT_SOCKET=" +
                      util::Quote(agent_->socket()) + " " + env + " " + kUtilBinary + " " + args);
  }
};

TEST_F(SignumUtilTest, StatusShowsServerUserAndCount) {
  auto r = Util("status");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("unix:" + agent_->socket() + " (signum-agent/0.1)"), std::string::npos)
      << r.output;
  EXPECT_NE(r.output.find(deployment_->url() + " (reachable)"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("user:         token sgn_"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("certificates: 6"), std::string::npos) << r.output;

  const AgentEndpoint tcp = agent_->TcpEndpoint();
  r = RunCommand(std::string(kUtilBinary) + " --tcp 127.0.0.1:" + std::to_string(tcp.tcp_port) +
                 " --secret-file " + agent_->secret_file() + " status");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("tcp:127.0.0.1:" + std::to_string(tcp.tcp_port)), std::string::npos)
      << r.output;
}

TEST_F(SignumUtilTest, StatusWithoutAnAgentFails) {
  TempDir dir;
  auto r = RunCommand(std::string(kUtilBinary) + " --socket " + dir.File("none.sock") + " status");
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("UNREACHABLE"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("is signum-agent running?"), std::string::npos) << r.output;
}

TEST_F(SignumUtilTest, ListShowsEveryCertificateWithItsDetails) {
  auto r = Util("list");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("6 certificate(s)"), std::string::npos) << r.output;
  auto client = Connect(agent_->UnixEndpoint());
  for (const auto& e : List(*client).certificates) {
    auto cert = Certificate::FromPem(e.certificate_pem).value();
    std::string thumb = e.id;
    for (char& c : thumb) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    EXPECT_NE(r.output.find("  id:               " + e.id), std::string::npos) << e.label;
    EXPECT_NE(r.output.find("  label:            " + e.label), std::string::npos) << e.label;
    EXPECT_NE(r.output.find("  subject:          " + cert.Subject()), std::string::npos) << e.label;
    EXPECT_NE(r.output.find("  issuer:           " + cert.Issuer()), std::string::npos) << e.label;
    EXPECT_NE(r.output.find("  SHA-1 thumbprint: " + thumb), std::string::npos) << e.label;
    EXPECT_NE(r.output.find("  algorithm:        " + e.label + " (schemes: "), std::string::npos)
        << e.label;
  }
  EXPECT_NE(r.output.find("valid from:       20"), std::string::npos);
  EXPECT_NE(r.output.find("valid until:      20"), std::string::npos);
}

TEST_F(SignumUtilTest, TestSignSignsAndVerifiesEveryScheme) {
  auto r = Util("test-sign");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  // 3 RSA certificates x (pkcs1, pss) + 3 EC certificates x ecdsa.
  EXPECT_NE(r.output.find("9 OK, 0 FAIL"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("OK   rsa-4096 rsa-pss sha256"), std::string::npos) << r.output;

  r = Util("test-sign --certificate ec-p384 --hash sha384");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("OK   ec-p384 ecdsa sha384"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("1 OK, 0 FAIL"), std::string::npos) << r.output;

  // SHA-1 is allowed for PKCS#1 v1.5 only: PSS must show up as a FAIL with the server's reason.
  r = Util("test-sign --certificate rsa-2048 --hash sha1");
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("OK   rsa-2048 rsa-pkcs1 sha1"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("FAIL rsa-2048 rsa-pss sha1: PERMISSION_DENIED"), std::string::npos)
      << r.output;

  // A command line far beyond the server's 2048-byte limit is cut by the agent, not refused.
  r = Util("--secret-file /" + std::string(5000, 'x') + " test-sign --certificate ec-p256");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("1 OK, 0 FAIL"), std::string::npos) << r.output;

  r = Util("test-sign --certificate no-such-cert");
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("no certificate with id or label 'no-such-cert'"), std::string::npos)
      << r.output;
}

// The block `p11-kit list-modules` prints for the module at `path` (its name line up to the next
// module's), or "" when it is not listed.
std::string ListedModuleBlock(const std::string& listing, const std::string& path) {
  std::istringstream in(listing);
  std::string line;
  std::string block;
  bool inside = false;
  while (std::getline(in, line)) {
    const bool module_line = !line.empty() && line[0] != ' ';
    if (module_line) {
      if (inside) break;
      inside = line.size() >= path.size() + 2 &&
               line.compare(line.size() - path.size() - 2, 2, ": ") == 0 &&
               line.compare(line.size() - path.size(), path.size(), path) == 0;
    }
    if (inside) block += line + "\n";
  }
  return block;
}

// p11-kit's own `p11-kit list-modules` (the loader GnuTLS and p11-kit-proxy use) loads the real
// libsignumpkcs11.so from the module file `signum-util p11-kit register` writes, initialises it the
// way it initialises every module (CKF_OS_LOCKING_OK and a non-NULL pReserved: F49) and lists its
// token. p11-kit reads per-user module files only for non-root programs, so as root the listing
// runs as nobody.
TEST_F(SignumUtilTest, P11KitListsTheModuleSignumUtilRegistersWithItsToken) {
  if (kThreadSanitizer) GTEST_SKIP() << "p11-kit cannot load a ThreadSanitizer module";
  TempDir dir("signum-p11kit");
  ::chmod(dir.path().c_str(), 0755);  // p11-kit runs as nobody below when we are root
  const std::string module = kPkcs11Module;
  const std::string xdg = dir.File("config");
  const std::string trace = dir.File("pkcs11-trace.log");
  ASSERT_OK(WriteFileAtomically(trace, "", 0666));
  ::chmod(trace.c_str(), 0666);

  // Found without --module: $SIGNUM_PKCS11_MODULE, as `signum-util env` prints it.
  auto r = RunCommand("env XDG_CONFIG_HOME=" + xdg + " SIGNUM_PKCS11_MODULE=" + module + " " +
                      kUtilBinary + " p11-kit register");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const std::string file = xdg + "/pkcs11/modules/signum.module";
  auto content = ReadFile(file);
  ASSERT_OK(content) << r.output;
  EXPECT_NE(content->find("\nmodule: " + module + "\n"), std::string::npos) << *content;
  EXPECT_EQ(content->rfind("# ", 0), 0u) << *content;
  if (::geteuid() == 0) {
    EXPECT_NE(r.output.find("use --system (/etc/pkcs11/modules) for root"), std::string::npos)
        << r.output;
  }
  RunCommand("chmod -R a+rX " + dir.path());

  const std::string as_user =
      ::geteuid() == 0 ? "setpriv --reuid=nobody --regid=nogroup --clear-groups " : "";
  const std::string base_env = as_user + "env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin " +
                               "SIGNUM_PKCS11_TRACE=" + trace + " ";
  // Other modules on the machine may write to stderr mid-listing: kept apart from the listing.
  const std::string errors = dir.File("p11-kit.stderr");
  auto listed = RunCommand(base_env + "HOME=" + dir.File("home") + " XDG_CONFIG_HOME=" + xdg +
                           " p11-kit list-modules 2>" + errors);
  EXPECT_EQ(listed.exit_code, 0) << listed.output << OrEmpty(ReadFile(errors));
  const std::string block = ListedModuleBlock(listed.output, module);
  EXPECT_EQ(block.rfind("signum: " + module + "\n", 0), 0u) << listed.output;
  EXPECT_NE(block.find("    library-description: Signum PKCS#11 provider"), std::string::npos)
      << listed.output;
  EXPECT_NE(block.find("    token: Signum\n"), std::string::npos) << listed.output;
  EXPECT_NE(block.find("        model: signum-agent\n"), std::string::npos) << listed.output;
  EXPECT_EQ(OrEmpty(ReadFile(errors)).find("signum: module failed to initialize"), std::string::npos)
      << OrEmpty(ReadFile(errors));
  // What p11-kit passed and what the module answered, from the module's own trace.
  auto traced = ReadFile(trace);
  ASSERT_OK(traced);
  EXPECT_NE(traced->find("IN: pInitArgs = {flags = 0x2 CKF_OS_LOCKING_OK"), std::string::npos)
      << *traced;
  EXPECT_NE(traced->find("C_Initialize = CKR_OK"), std::string::npos) << *traced;
  EXPECT_EQ(traced->find("C_Initialize = CKR_ARGUMENTS_BAD"), std::string::npos) << *traced;

  // The default directory under HOME when XDG_CONFIG_HOME is unset: written there and read there.
  const std::string home = dir.File("home2");
  r = RunCommand("env -u XDG_CONFIG_HOME HOME=" + home + " " + kUtilBinary +
                 " p11-kit register --module " + module);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_OK(ReadFile(home + "/.config/pkcs11/modules/signum.module")) << r.output;
  RunCommand("chmod -R a+rX " + home);
  listed = RunCommand(base_env + "HOME=" + home + " p11-kit list-modules 2>/dev/null");
  EXPECT_NE(ListedModuleBlock(listed.output, module).find("    token: Signum\n"),
            std::string::npos)
      << listed.output;

  // Unregistered, p11-kit no longer lists it.
  r = RunCommand("env XDG_CONFIG_HOME=" + xdg + " " + kUtilBinary + " p11-kit unregister");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_FALSE(ReadFile(file).ok());
  listed = RunCommand(base_env + "HOME=" + dir.File("home") + " XDG_CONFIG_HOME=" + xdg +
                      " p11-kit list-modules 2>/dev/null");
  EXPECT_EQ(ListedModuleBlock(listed.output, module), "") << listed.output;
}

TEST_F(SignumUtilTest, P11KitRegisterDirUnregisterAndErrors) {
  TempDir dir("signum-p11kit");
  const std::string module = kPkcs11Module;
  auto r = RunCommand(std::string(kUtilBinary) + " p11-kit register --module " + module +
                      " --dir " + dir.File("d"));
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_OK(ReadFile(dir.File("d/signum.module")));
  r = RunCommand(std::string(kUtilBinary) + " p11-kit unregister --dir " + dir.File("d"));
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_FALSE(ReadFile(dir.File("d/signum.module")).ok());
  r = RunCommand(std::string(kUtilBinary) + " p11-kit unregister --dir " + dir.File("d"));
  EXPECT_NE(r.exit_code, 0) << r.output;
  r = RunCommand(std::string(kUtilBinary) + " p11-kit register --module " + dir.File("missing.so") +
                 " --dir " + dir.File("d"));
  EXPECT_NE(r.exit_code, 0) << r.output;
  r = RunCommand(std::string(kUtilBinary) + " p11-kit register --dir");
  EXPECT_NE(r.exit_code, 0) << r.output;
}

// Root: p11-kit skips per-user files, so `--system` writes /etc/pkcs11/modules, which root's
// p11-kit reads. This test touches the real system directory, so it runs only as root, only when
// no signum.module is there already, and removes exactly what it created (the file, and the
// directories if it made them).
TEST_F(SignumUtilTest, P11KitSystemRegistrationIsListedForRoot) {
  if (::geteuid() != 0) GTEST_SKIP() << "--system writes /etc/pkcs11/modules: root only";
  if (kThreadSanitizer) GTEST_SKIP() << "p11-kit cannot load a ThreadSanitizer module";
  const std::string system_dir = "/etc/pkcs11/modules";
  const std::string file = system_dir + "/signum.module";
  if (::access(file.c_str(), F_OK) == 0) {
    GTEST_SKIP() << file << " exists already (not this test's): left alone";
  }
  const bool had_etc_pkcs11 = ::access("/etc/pkcs11", F_OK) == 0;
  const bool had_modules = ::access(system_dir.c_str(), F_OK) == 0;
  struct Cleanup {
    std::string file;
    std::string dir;
    bool had_etc_pkcs11, had_modules;
    ~Cleanup() {
      ::unlink(file.c_str());
      if (!had_modules) ::rmdir(dir.c_str());
      if (!had_etc_pkcs11) ::rmdir("/etc/pkcs11");
    }
  } cleanup{file, system_dir, had_etc_pkcs11, had_modules};

  TempDir dir("signum-p11kit");
  const std::string module = kPkcs11Module;
  auto r = RunCommand(std::string(kUtilBinary) + " p11-kit register --system --module " + module);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("registered " + module + " in " + file), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find("note:"), std::string::npos) << r.output;
  auto content = ReadFile(file);
  ASSERT_OK(content);
  EXPECT_NE(content->find("\nmodule: " + module + "\n"), std::string::npos) << *content;

  // An empty user configuration beside it: root's p11-kit must find the module without it.
  auto listed = RunCommand("env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=" + dir.File("home") +
                           " XDG_CONFIG_HOME=" + dir.File("config") +
                           " p11-kit list-modules 2>/dev/null");
  EXPECT_EQ(listed.exit_code, 0) << listed.output;
  const std::string block = ListedModuleBlock(listed.output, module);
  EXPECT_EQ(block.rfind("signum: " + module + "\n", 0), 0u) << listed.output;
  EXPECT_NE(block.find("    token: Signum\n"), std::string::npos) << listed.output;

  r = RunCommand(std::string(kUtilBinary) + " p11-kit unregister --system");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(::access(file.c_str(), F_OK), 0);
}

TEST_F(SignumUtilTest, EnvPrintsWhatProvidersNeedAndItWorks) {
  const std::string agent_env = "SIGNUM_AGENT_SOCKET=" + agent_->socket() +
                                " SIGNUM_AGENT_TCP=127.0.0.1:0" +
                                " SIGNUM_AGENT_SECRET_FILE=" + agent_->secret_file() +
                                " SIGNUM_AGENT_PORT_FILE=" + agent_->port_file();
  auto r = RunCommand("env " + agent_env + " " + kUtilBinary + " env");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("export SIGNUM_AGENT_SOCKET='" + agent_->socket() + "'"),
            std::string::npos)
      << r.output;
  EXPECT_NE(r.output.find(
                "export SIGNUM_AGENT_TCP='127.0.0.1:" + std::to_string(agent_->tcp_port()) + "'"),
            std::string::npos)
      << r.output;
  EXPECT_NE(r.output.find("export SIGNUM_AGENT_SECRET_FILE='" + agent_->secret_file() + "'"),
            std::string::npos)
      << r.output;

  // What it prints is enough for a provider (here signum-util itself) to reach the agent over TCP.
  TempDir script_dir;
  const std::string script = script_dir.File("env-test.sh");
  ASSERT_OK(WriteFileAtomically(script,
                                "set -e\n"
                                "eval \"$(env " +
                                    agent_env + " " + kUtilBinary +
                                    " env)\"\n"
                                    "unset SIGNUM_AGENT_SOCKET\n" +
                                    kUtilBinary + " status\n",
                                0755));
  r = RunCommand("bash " + script);
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("agent:        tcp:127.0.0.1:"), std::string::npos) << r.output;
}

TEST_F(SignumUtilTest, VersionHelpAndUsageErrors) {
  auto r = RunCommand(std::string(kUtilBinary) + " version");
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_NE(r.output.find("signum-util 0.1.0 (agent protocol " +
                           std::to_string(proto::kProtocolVersion) + ")"),
            std::string::npos)
      << r.output;
  r = RunCommand(std::string(kUtilBinary) + " help");
  EXPECT_EQ(r.exit_code, 0);
  for (const char* command :
       {"status", "list", "test-sign", "p11-kit register", "env", "keychain --add", "version"}) {
    EXPECT_NE(r.output.find(command), std::string::npos) << command;
  }
  EXPECT_EQ(RunCommand(std::string(kUtilBinary) + " frobnicate").exit_code, 2);
  EXPECT_EQ(RunCommand(std::string(kUtilBinary)).exit_code, 2);
  // The CryptoTokenKit token is macOS's: here the command says so and where to go instead.
  r = RunCommand(std::string(kUtilBinary) + " keychain --add");
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("macOS only"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("p11-kit register"), std::string::npos) << r.output;
  r = RunCommand(std::string(kAgentBinary) + " --help");
  EXPECT_EQ(r.exit_code, 0);
  for (const char* var :
       {"SIGNUM_SERVER_URL", "SIGNUM_TLS_TRUSTED_CA", "SIGNUM_TOKEN_FILE",
        "SIGNUM_CERTIFICATE_PATH", "SIGNUM_KEY_PATH", "SIGNUM_AGENT_SOCKET", "SIGNUM_AGENT_TCP",
        "SIGNUM_AGENT_SECRET_FILE", "SIGNUM_AGENTID", "SIGNUM_LOGLEVEL", "SIGNUM_CACHE_TTL"}) {
    EXPECT_NE(r.output.find(var), std::string::npos) << var;
  }
  r = RunCommand("env -u SIGNUM_SERVER_URL " + std::string(kAgentBinary));
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("SIGNUM_SERVER_URL"), std::string::npos) << r.output;
}

}  // namespace
}  // namespace signum::agent::testing

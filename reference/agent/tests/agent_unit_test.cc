// Unit-level tests of the agent's parts that need no server: configuration and environment,
// addresses, token ids, the peer uid rule and the caller context built from /proc.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cctype>
#include <chrono>
#include <cstring>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <thread>
#include <vector>

#include "agent_config.h"
#include "peer.h"
#include "server_client.h"
#include "signum/agent/agent_client.h"
#include "signum/core/agent_protocol.h"
#include "signum/core/encoding.h"
#include "signum/core/files.h"
#include "signum/testing/status_matchers.h"
#include "signum/testing/temp_dir.h"

namespace signum::agent {
namespace {

using ::signum::testing::StatusIs;

using signum::testing::TempDir;

EnvLookup FakeEnv(std::map<std::string, std::string> vars) {
  return [vars](const std::string& name) -> std::optional<std::string> {
    auto it = vars.find(name);
    if (it == vars.end()) return std::nullopt;
    return it->second;
  };
}

TEST(AgentConfigTest, EnvironmentAloneIsEnough) {
  auto c = LoadAgentConfig("", FakeEnv({{"SIGNUM_SERVER_URL", "https://127.0.0.1:8443"},
                                        {"SIGNUM_TOKEN_FILE", "/t/release.token"},
                                        {"SIGNUM_AGENT_SOCKET", "/run/x/agent.sock"}}));
  ASSERT_OK(c);
  EXPECT_EQ(c->server_host, "127.0.0.1");
  EXPECT_EQ(c->server_port, 8443);
  EXPECT_EQ(c->token_file, "/t/release.token");
  EXPECT_EQ(c->socket_path, "/run/x/agent.sock");
  EXPECT_FALSE(c->tcp_enabled);
  EXPECT_EQ(c->secret_file, "/run/x/agent.secret");
  EXPECT_EQ(c->port_file, "/run/x/agent.port");
  EXPECT_EQ(c->cache_ttl_seconds, 60);
  EXPECT_EQ(c->log_level, LogLevel::kInfo);
  EXPECT_EQ(c->agent_id.rfind("signum-agent@", 0), 0u);
}

TEST(AgentConfigTest, EnvironmentWinsOverTheFileAndFilePathsAreRelativeToIt) {
  TempDir dir;
  const std::string file = dir.File("agent.json");
  ASSERT_OK(WriteFileAtomically(file, R"({
    "server_url": "https://localhost:9000", "ca_file": "ca/root.pem",
    "token_file": "credentials/release.token", "socket": "run/agent.sock",
    "tcp": "127.0.0.1:0", "cache_ttl_seconds": 5, "log_level": "warning",
    "agent_id": "from-file", "max_connections": 8})"));
  auto c = LoadAgentConfig(file, FakeEnv({}));
  ASSERT_OK(c);
  EXPECT_EQ(c->server_host, "localhost");
  EXPECT_EQ(c->server_port, 9000);
  EXPECT_EQ(c->ca_file, dir.File("ca/root.pem"));
  EXPECT_EQ(c->socket_path, dir.File("run/agent.sock"));
  EXPECT_TRUE(c->tcp_enabled);
  EXPECT_EQ(c->tcp_port, 0);
  EXPECT_EQ(c->cache_ttl_seconds, 5);
  EXPECT_EQ(c->log_level, LogLevel::kWarning);
  EXPECT_EQ(c->agent_id, "from-file");
  EXPECT_EQ(c->max_connections, 8u);

  auto e = LoadAgentConfig(file, FakeEnv({{"SIGNUM_SERVER_URL", "https://[::1]:7000/"},
                                          {"SIGNUM_CACHE_TTL", "0"},
                                          {"SIGNUM_LOGLEVEL", "HIGH"},
                                          {"SIGNUM_AGENTID", "AAAAA-BBBBB-CCCCC-DDDDD"},
                                          {"SIGNUM_AGENT_TCP", "off"},
                                          {"SIGNUM_TLS_TRUSTED_CA", ""}}));  // empty = unset
  ASSERT_OK(e);
  EXPECT_EQ(e->server_host, "::1");
  EXPECT_EQ(e->server_port, 7000);
  EXPECT_EQ(e->cache_ttl_seconds, 0);
  EXPECT_EQ(e->log_level, LogLevel::kDebug);
  EXPECT_EQ(e->agent_id, "AAAAA-BBBBB-CCCCC-DDDDD");
  EXPECT_FALSE(e->tcp_enabled);
  EXPECT_EQ(e->ca_file, dir.File("ca/root.pem"));
}

TEST(AgentConfigTest, MistakesAreReportedNotDefaulted) {
  const auto base = std::map<std::string, std::string>{
      {"SIGNUM_SERVER_URL", "https://127.0.0.1:8443"}, {"SIGNUM_TOKEN_FILE", "/t"}};
  auto with = [&](const std::string& k, const std::string& v) {
    auto vars = base;
    vars[k] = v;
    return LoadAgentConfig("", FakeEnv(vars)).status();
  };
  EXPECT_FALSE(with("SIGNUM_SERVER_URL", "http://127.0.0.1:8443").ok());
  EXPECT_FALSE(with("SIGNUM_SERVER_URL", "https://127.0.0.1:99999").ok());
  EXPECT_FALSE(with("SIGNUM_SERVER_URL", "https://127.0.0.1:8443/v1").ok());
  EXPECT_FALSE(with("SIGNUM_AGENT_TCP", "0.0.0.0:51599").ok());  // not loopback
  EXPECT_FALSE(with("SIGNUM_AGENT_TCP", "192.168.1.5:51599").ok());
  EXPECT_FALSE(with("SIGNUM_LOGLEVEL", "chatty").ok());
  EXPECT_FALSE(with("SIGNUM_CACHE_TTL", "-1").ok());
  EXPECT_FALSE(with("SIGNUM_CACHE_TTL", "10s").ok());
  EXPECT_FALSE(with("SIGNUM_AGENT_SOCKET", "relative.sock").ok());
  EXPECT_FALSE(with("SIGNUM_CERTIFICATE_PATH", "/c.pem").ok());  // without SIGNUM_KEY_PATH
  EXPECT_THAT(LoadAgentConfig("", FakeEnv({{"SIGNUM_TOKEN_FILE", "/t"}})),
              StatusIs(ErrorCode::kFailedPrecondition));  // no server
  EXPECT_THAT(LoadAgentConfig("", FakeEnv({{"SIGNUM_SERVER_URL", "https://h"}})),
              StatusIs(ErrorCode::kFailedPrecondition));  // no credential
  EXPECT_OK(LoadAgentConfig("", FakeEnv({}), /*require_server=*/false));

  TempDir dir;
  ASSERT_OK(WriteFileAtomically(dir.File("typo.json"), R"({"server_ulr": "https://h"})"));
  EXPECT_FALSE(LoadAgentConfig(dir.File("typo.json"), FakeEnv(base)).ok());
  ASSERT_OK(WriteFileAtomically(dir.File("array.json"), "[]"));
  EXPECT_FALSE(LoadAgentConfig(dir.File("array.json"), FakeEnv(base)).ok());
}

TEST(AgentConfigTest, LogLevelNames) {
  EXPECT_EQ(ParseLogLevel("LOW"), LogLevel::kWarning);
  EXPECT_EQ(ParseLogLevel("MEDIUM"), LogLevel::kInfo);
  EXPECT_EQ(ParseLogLevel("HIGH"), LogLevel::kDebug);
  EXPECT_EQ(ParseLogLevel("error"), LogLevel::kError);
  EXPECT_EQ(ParseLogLevel("Info"), LogLevel::kInfo);
  EXPECT_FALSE(ParseLogLevel("verbose").has_value());
  EXPECT_NE(EnvironmentHelp().find("SIGNUM_AGENT_SECRET_FILE"), std::string::npos);
}

TEST(AgentConfigTest, ServerUrls) {
  std::string host;
  uint16_t port = 0;
  ASSERT_OK(ParseServerUrl("https://signum.example", &host, &port));
  EXPECT_EQ(host, "signum.example");
  EXPECT_EQ(port, 443);
  ASSERT_OK(ParseServerUrl("https://[::1]:8443", &host, &port));
  EXPECT_EQ(host, "::1");
  EXPECT_EQ(port, 8443);
  EXPECT_FALSE(ParseServerUrl("https://:8443", &host, &port).ok());
  EXPECT_FALSE(ParseServerUrl("https://h:", &host, &port).ok());
  EXPECT_FALSE(ParseServerUrl("https://h:0", &host, &port).ok());
  EXPECT_FALSE(ParseServerUrl("https://[::1", &host, &port).ok());
}

TEST(AgentClientAddressTest, LoopbackOnly) {
  std::string host;
  uint16_t port = 0;
  ASSERT_OK(ParseLoopbackAddress("127.0.0.1:51599", &host, &port));
  EXPECT_EQ(host, "127.0.0.1");
  EXPECT_EQ(port, 51599);
  ASSERT_OK(ParseLoopbackAddress("[::1]:7", &host, &port));
  EXPECT_EQ(host, "::1");
  ASSERT_OK(ParseLoopbackAddress("localhost:0", &host, &port));
  EXPECT_EQ(host, "127.0.0.1");
  EXPECT_FALSE(ParseLoopbackAddress("10.0.0.1:51599", &host, &port).ok());
  EXPECT_FALSE(ParseLoopbackAddress("example.com:51599", &host, &port).ok());
  EXPECT_FALSE(ParseLoopbackAddress("127.0.0.1", &host, &port).ok());
  EXPECT_FALSE(ParseLoopbackAddress("127.0.0.1:65536", &host, &port).ok());
  EXPECT_FALSE(ParseLoopbackAddress("127.0.0.1:-1", &host, &port).ok());
}

TEST(AgentClientAddressTest, EndpointDescriptions) {
  AgentEndpoint e;
  e.unix_socket = "/run/user/1000/signum/agent.sock";
  EXPECT_EQ(e.Describe(), "unix:/run/user/1000/signum/agent.sock");
  e.unix_socket.clear();
  e.tcp_host = "127.0.0.1";
  e.tcp_port = 51599;
  EXPECT_EQ(e.Describe(), "tcp:127.0.0.1:51599");
  e.tcp_host = "::1";
  EXPECT_EQ(e.Describe(), "tcp:[::1]:51599");
}

TEST(AgentClientAddressTest, SecretFileMustHoldTheAgentsFormat) {
  TempDir dir;
  ASSERT_OK(WriteFileAtomically(dir.File("ok"), std::string(64, 'a') + "\n"));
  EXPECT_OK(ReadAgentSecretFile(dir.File("ok")));
  ASSERT_OK(WriteFileAtomically(dir.File("short"), "abcd\n"));
  EXPECT_FALSE(ReadAgentSecretFile(dir.File("short")).ok());
  EXPECT_FALSE(ReadAgentSecretFile(dir.File("missing")).ok());
}

TEST(AgentClientTest, MissingAgentIsUnavailableAndNamesTheEndpoint) {
  TempDir dir;
  AgentEndpoint e;
  e.unix_socket = dir.File("nobody-here.sock");
  auto client = AgentClient::Connect(e, "test", 2000);
  ASSERT_THAT(client, StatusIs(ErrorCode::kUnavailable));
  EXPECT_NE(client.status().message().find(e.unix_socket), std::string::npos);
  EXPECT_NE(client.status().message().find("is signum-agent running?"), std::string::npos);
  AgentEndpoint tcp;
  tcp.tcp_host = "127.0.0.1";
  tcp.tcp_port = 1;
  tcp.secret = std::string(64, 'a');
  EXPECT_THAT(AgentClient::Connect(tcp, "test", 2000), StatusIs(ErrorCode::kUnavailable));
  tcp.secret.clear();
  EXPECT_THAT(AgentClient::Connect(tcp, "test", 2000), StatusIs(ErrorCode::kFailedPrecondition));
}

TEST(AgentClientTest, SilentPeerTimesOutInsteadOfHanging) {
  // A socket that accepts (backlog) but never answers the hello.
  TempDir dir;
  const std::string path = dir.File("silent.sock");
  const int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_EQ(::listen(fd, 4), 0);
  AgentEndpoint e;
  e.unix_socket = path;
  const auto start = std::chrono::steady_clock::now();
  auto client = AgentClient::Connect(e, "test", 300);
  EXPECT_THAT(client, StatusIs(ErrorCode::kDeadlineExceeded)) << client.status().ToString();
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(3));
  ::close(fd);
}

// --- Loopback TCP: a listener that is not signum-agent -----------------------------------------

// Whoever binds the agent's TCP port first (another local user, while signum-agent is not
// running) gets the provider's hello. This one answers it as `reply` says, then records every
// byte the client sends until the client closes.
class FakeTcpListener {
 public:
  using Reply = std::function<std::string(const agent_protocol::Hello& client_hello)>;

  explicit FakeTcpListener(Reply reply) : reply_(std::move(reply)) {
    listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    EXPECT_EQ(::listen(listen_fd_, 4), 0);
    socklen_t len = sizeof addr;
    ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    thread_ = std::thread([this] { Serve(); });
  }
  ~FakeTcpListener() {
    if (thread_.joinable()) thread_.join();
    ::close(listen_fd_);
  }
  uint16_t port() const { return port_; }
  // Everything the client sent, once it has closed the connection.
  const std::string& Received() {
    if (thread_.joinable()) thread_.join();
    return received_;
  }

 private:
  void Serve() {
    pollfd p{listen_fd_, POLLIN, 0};
    if (::poll(&p, 1, 10000) <= 0) return;
    const int fd = ::accept(listen_fd_, nullptr, nullptr);
    if (fd < 0) return;
    std::string pending;
    bool replied = false;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (std::chrono::steady_clock::now() < deadline) {
      if (!replied) {
        std::string copy = pending;
        auto frame = agent_protocol::DecodeFrame(copy);
        if (frame.ok() && frame->has_value()) {
          auto hello = agent_protocol::ParseHello(**frame);
          const std::string reply = reply_(hello.ok() ? *hello : agent_protocol::Hello{});
          ::send(fd, reply.data(), reply.size(), MSG_NOSIGNAL);
          replied = true;
        }
      }
      pollfd c{fd, POLLIN, 0};
      if (::poll(&c, 1, 1000) <= 0) continue;
      char chunk[4096];
      const ssize_t n = ::recv(fd, chunk, sizeof chunk, 0);
      if (n <= 0) break;  // the client closed
      pending.append(chunk, static_cast<size_t>(n));
    }
    received_ = pending;
    ::close(fd);
  }

  Reply reply_;
  int listen_fd_ = -1;
  uint16_t port_ = 0;
  std::thread thread_;
  std::string received_;
};

TEST(AgentClientTcpTest, ListenerThatDoesNotKnowTheSecretGetsNothingButTheHello) {
  namespace proto = agent_protocol;
  const std::string secret = "4f1c2b9a0d3e5f6a7b8c9d0e1f2a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c";
  const std::string other_secret(64, '7');
  const std::string any_nonce(64, 'e');
  struct Case {
    std::string name;
    FakeTcpListener::Reply reply;
    ErrorCode expected;
  };
  auto hello_frame = [](int protocol, std::string nonce, std::string proof) {
    return proto::EncodeFrame(
        proto::ToJson(proto::Hello{protocol, "signum-agent/0.1", "", nonce, proof}, true));
  };
  const std::vector<Case> cases = {
      {"proof made with another secret",
       [&](const proto::Hello& h) {
         return hello_frame(2, any_nonce,
                            *proto::HandshakeProof(proto::ProofRole::kAgent, other_secret, h.nonce,
                                                   any_nonce));
       },
       ErrorCode::kPermissionDenied},
      {"no proof", [&](const proto::Hello&) { return hello_frame(2, any_nonce, ""); },
       ErrorCode::kPermissionDenied},
      {"protocol 1 hello (no challenge-response)",
       [&](const proto::Hello&) { return hello_frame(1, "", ""); }, ErrorCode::kPermissionDenied},
      // A proof recorded from an earlier exchange (other client nonce) does not fit this one.
      {"replayed proof",
       [&](const proto::Hello&) {
         return hello_frame(2, any_nonce,
                            *proto::HandshakeProof(proto::ProofRole::kAgent, secret,
                                                   std::string(64, '1'), any_nonce));
       },
       ErrorCode::kPermissionDenied},
      // The client's own nonce reflected as the agent's, with a garbage proof.
      {"reflected nonce",
       [&](const proto::Hello& h) { return hello_frame(2, h.nonce, std::string(64, '0')); },
       ErrorCode::kPermissionDenied},
      // What a protocol 1 agent says to a hello without a secret.
      {"error reply",
       [&](const proto::Hello&) {
         return proto::EncodeFrame(proto::ErrorJson(UnauthenticatedError("missing secret")));
       },
       ErrorCode::kUnauthenticated},
  };
  for (const Case& c : cases) {
    FakeTcpListener fake(c.reply);
    AgentEndpoint endpoint;
    endpoint.tcp_host = "127.0.0.1";
    endpoint.tcp_port = fake.port();
    endpoint.secret = secret;
    auto client = AgentClient::Connect(endpoint, "libsignumpkcs11/test", 5000);
    ASSERT_FALSE(client.ok()) << c.name;
    EXPECT_EQ(client.status().code(), c.expected) << c.name << ": " << client.status().ToString();
    if (c.expected == ErrorCode::kPermissionDenied) {
      EXPECT_NE(client.status().message().find(
                    "the process listening on tcp:127.0.0.1:" + std::to_string(fake.port()) +
                    " does not know the agent's secret: not signum-agent (another local user?)"),
                std::string::npos)
          << client.status().message();
    }

    // The fake received exactly one frame, a hello with no secret in it, and nothing after it.
    std::string received = fake.Received();
    EXPECT_EQ(received.find(secret), std::string::npos) << c.name;
    std::string upper = secret;
    for (char& ch : upper) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
    EXPECT_EQ(received.find(upper), std::string::npos) << c.name;
    EXPECT_EQ(received.find(ToString(*HexDecode(secret))), std::string::npos) << c.name;
    auto frame = proto::DecodeFrame(received);
    ASSERT_TRUE(frame.ok() && frame->has_value()) << c.name;
    EXPECT_TRUE(received.empty()) << c.name << ": the client sent more than its hello";
    const nlohmann::json& hello = **frame;
    EXPECT_EQ(hello["type"], "hello") << c.name;
    EXPECT_EQ(hello["protocol"], proto::kProtocolVersion) << c.name;
    EXPECT_FALSE(hello.contains("secret")) << c.name << ": " << hello.dump();
    ASSERT_TRUE(hello.contains("nonce")) << c.name;
    EXPECT_EQ(hello["nonce"].get<std::string>().size(), 2 * proto::kNonceBytes) << c.name;
    for (const auto& [key, value] : hello.items()) {
      EXPECT_TRUE(key == "type" || key == "protocol" || key == "client" || key == "nonce")
          << c.name << ": unexpected field " << key;
    }
  }
}

TEST(AgentClientTest, EndpointFromEnvironment) {
  TempDir dir;
  ASSERT_OK(WriteFileAtomically(dir.File("secret"), std::string(64, 'b') + "\n"));
  setenv("SIGNUM_AGENT_SOCKET", "/tmp/x/agent.sock", 1);
  setenv("SIGNUM_AGENT_TCP", "127.0.0.1:4000", 1);
  setenv("SIGNUM_AGENT_SECRET_FILE", dir.File("secret").c_str(), 1);
  auto e = AgentEndpointFromEnvironment();
  ASSERT_OK(e);
  EXPECT_EQ(e->unix_socket, "/tmp/x/agent.sock");
  EXPECT_EQ(e->tcp_port, 4000);
  EXPECT_EQ(e->secret, std::string(64, 'b'));
  unsetenv("SIGNUM_AGENT_SECRET_FILE");
  EXPECT_THAT(AgentEndpointFromEnvironment(), StatusIs(ErrorCode::kFailedPrecondition));
  unsetenv("SIGNUM_AGENT_TCP");
  unsetenv("SIGNUM_AGENT_SOCKET");
  setenv("XDG_RUNTIME_DIR", "/run/user/4242", 1);
  e = AgentEndpointFromEnvironment();
  ASSERT_OK(e);
  EXPECT_EQ(e->unix_socket, "/run/user/4242/signum/agent.sock");
  unsetenv("XDG_RUNTIME_DIR");
  EXPECT_EQ(DefaultAgentSocketPath(), "/tmp/signum-" + std::to_string(::geteuid()) + "/agent.sock");
}

TEST(ServerClientTest, TokenIdNeverIncludesTheSecret) {
  EXPECT_EQ(TokenId("sgn_1a2b3c4d_s3cr3tpart"), "sgn_1a2b3c4d");
  EXPECT_EQ(TokenId("something-else"), "sgn_(unrecognised token format)");
  EXPECT_EQ(TokenId("sgn__x"), "sgn_(unrecognised token format)");
  EXPECT_EQ(TokenId("sgn_nounderscore"), "sgn_(unrecognised token format)");
}

TEST(PeerTest, UidRule) {
  EXPECT_OK(CheckPeerUid(1000, 1000));
  Status other = CheckPeerUid(1001, 1000);
  EXPECT_THAT(other, StatusIs(ErrorCode::kPermissionDenied));
  EXPECT_NE(other.message().find("peer uid 1001"), std::string::npos);
  EXPECT_THAT(CheckPeerUid(0, 1000), StatusIs(ErrorCode::kPermissionDenied));  // root too
}

TEST(PeerTest, SocketPairCredentialsAreOurs) {
  int fds[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);
  auto creds = GetPeerCredentials(fds[0]);
  ASSERT_OK(creds);
  EXPECT_EQ(creds->pid, ::getpid());
  EXPECT_EQ(creds->uid, ::geteuid());
  ::close(fds[0]);
  ::close(fds[1]);
}

// From the system (/proc on Linux, libproc and sysctl on macOS), never from the client.
TEST(PeerTest, ProcessInfoComesFromTheSystem) {
  ProcessInfo self = ReadProcessInfo(::getpid());
  EXPECT_EQ(self.executable, "signum_agent_test");
  EXPECT_NE(self.command_line.find("signum_agent_test"), std::string::npos);
  EXPECT_EQ(self.command_line.find('\0'), std::string::npos);
  // A pid beyond any pid_max (Linux: 2^22; macOS: 99998): nothing to read, nothing invented.
  ProcessInfo gone = ReadProcessInfo(0x3fffffff);
  EXPECT_TRUE(gone.executable.empty());
  EXPECT_TRUE(gone.command_line.empty());
#ifdef __linux__
  ProcessInfo unreadable = ReadProcessInfo(::getpid(), "/nonexistent-proc");
  EXPECT_TRUE(unreadable.executable.empty());
  EXPECT_TRUE(unreadable.command_line.empty());
#endif
}

TEST(PeerTest, CallerContextTrustsTheKernelNotTheClient) {
  wire::CallerContext claimed;
  claimed.process = "fake";
  claimed.command_line = "fake --args";
  claimed.pid = 1;
  claimed.uid = 0;
  const PeerCredentials peer{4242, 1000, 1000};
  const ProcessInfo proc{"osslsigncode", "osslsigncode sign -in a.exe"};

  auto unix_ctx =
      BuildCallerContext(Transport::kUnixSocket, peer, proc, claimed, "build-7", "agent-1");
  EXPECT_EQ(unix_ctx.process, "osslsigncode");
  EXPECT_EQ(unix_ctx.command_line, "osslsigncode sign -in a.exe");
  EXPECT_EQ(unix_ctx.pid, 4242);
  EXPECT_EQ(unix_ctx.uid, 1000);
  EXPECT_EQ(unix_ctx.host, "build-7");
  EXPECT_EQ(unix_ctx.agent_id, "agent-1");

  // /proc unreadable: the command line claim fills the gap, the process claim never does.
  auto hidden = BuildCallerContext(Transport::kUnixSocket, peer, ProcessInfo{}, claimed, "build-7",
                                   "agent-1");
  EXPECT_EQ(hidden.process, "");
  EXPECT_EQ(hidden.command_line, "fake --args");
  EXPECT_EQ(hidden.pid, 4242);

  // Arbitrary bytes and any length from /proc: valid UTF-8 and within the server's limits.
  const ProcessInfo odd{"tool\xFF", "tool \xFE" + std::string(10000, 'x')};
  auto cut = BuildCallerContext(Transport::kUnixSocket, peer, odd, claimed, "build-7", "agent-1");
  EXPECT_EQ(cut.process, "tool?");
  EXPECT_EQ(cut.command_line.size(), wire::kMaxCommandLineLength);
  EXPECT_EQ(cut.command_line.rfind("tool ?x", 0), 0u);

  auto tcp = BuildCallerContext(Transport::kTcp, std::nullopt, ProcessInfo{}, claimed, "build-7",
                                "agent-1");
  EXPECT_EQ(tcp.process, "fake");
  EXPECT_EQ(tcp.pid, 1);
  EXPECT_EQ(tcp.host, "build-7 (tcp-peer)");
}

// Item: the audit log is hash-chained and cannot be redacted, so no PIN may reach the server
// whichever way the agent learns the command line (/proc, or a client's claim).
TEST(PeerTest, CommandLineSecretsNeverLeaveTheAgent) {
  using namespace std::string_literals;
  const std::string arguments = "pkcs11-tool\0--login\0--pin\0"
                                "21531068\0-O\0"s;
  // Both systems' readers hand their NUL-separated arguments to the same redaction.
  EXPECT_EQ(ProcessInfoFrom("/usr/bin/pkcs11-tool", arguments).command_line,
            "pkcs11-tool --login --pin *** -O");
#ifdef __linux__
  TempDir proc;
  ASSERT_EQ(::mkdir(proc.File("4242").c_str(), 0700), 0);
  ASSERT_OK(WriteFileAtomically(proc.File("4242/cmdline"), arguments));
  const ProcessInfo from_proc = ReadProcessInfo(4242, proc.path());
  EXPECT_EQ(from_proc.command_line, "pkcs11-tool --login --pin *** -O");
#endif

  wire::CallerContext claimed;
  claimed.command_line = "openssl pkcs12 -passin pass:hunter2 --pin=21531068";
  const PeerCredentials peer{4242, 1000, 1000};
  for (const auto& context :
       {BuildCallerContext(Transport::kTcp, std::nullopt, ProcessInfo{}, claimed, "h", "a"),
        BuildCallerContext(Transport::kUnixSocket, peer, ProcessInfo{}, claimed, "h", "a")}) {
    EXPECT_EQ(context.command_line, "openssl pkcs12 -passin *** --pin=***");
  }
}

}  // namespace
}  // namespace signum::agent

// signum-agent.exe's Windows halves, run under Wine by the mingw tree's ctest (ci/build-windows
// --test): the configuration's Windows defaults, the Winsock layer (agent_socket_windows.cc),
// the owner-only secret file, the Schannel client's refusals, and the service itself serving the
// TCP handshake to the providers' own client. Against a real server: conformance/cng's
// signum_cng_windows_agent_wine (run-wine-suite.sh --windows-agent).
#include <gtest/gtest.h>

#include <winsock2.h>
#include <windows.h>
#include <aclapi.h>
#include <sddl.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <thread>
#include <vector>

#include "agent_config.h"
#include "agent_platform.h"
#include "agent_service.h"
#include "agent_socket.h"
#include "server_client.h"
#include "signum/agent/agent_client.h"
#include "signum/core/files.h"
#include "signum/core/https_client.h"
#include "signum/core/windows_account.h"
#include "signum/testing/status_matchers.h"

namespace signum::agent {
namespace {

namespace fs = std::filesystem;
using ::signum::testing::StatusIs;
using ::testing::HasSubstr;

class TempDir {
 public:
  TempDir() {
    path_ = fs::temp_directory_path() /
            ("signum-agent-windows-test-" + std::to_string(GetCurrentProcessId()) + "-" +
             std::to_string(counter_++));
    fs::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ignored;
    fs::remove_all(path_, ignored);
  }
  std::string File(const std::string& name) const { return (path_ / name).string(); }

 private:
  static inline int counter_ = 0;
  fs::path path_;
};

EnvLookup Env(std::map<std::string, std::string> values) {
  return [values](const std::string& name) -> std::optional<std::string> {
    auto it = values.find(name);
    if (it == values.end()) return std::nullopt;
    return it->second;
  };
}

std::string WriteToken(const TempDir& dir) {
  const std::string path = dir.File("token");
  std::ofstream(path) << "sgn_1a2b3c4d_not-a-real-secret\n";
  return path;
}

// A configuration whose server is down (nothing listens on port 1), with `more` variables.
Result<AgentConfig> ConfigWithAServerThatIsDown(const TempDir& dir,
                                                std::map<std::string, std::string> more) {
  more["SIGNUM_SERVER_URL"] = "https://127.0.0.1:1";
  more["SIGNUM_TOKEN_FILE"] = WriteToken(dir);
  return LoadAgentConfig("", Env(std::move(more)));
}

// The providers' view of the agent's TCP endpoint, with `secret`.
AgentEndpoint LoopbackEndpoint(uint16_t port, std::string secret) {
  AgentEndpoint endpoint;
  endpoint.tcp_host = "127.0.0.1";
  endpoint.tcp_port = port;
  endpoint.secret = std::move(secret);
  return endpoint;
}

TEST(AgentConfigWindows, ServesTcpOnlyAndKeepsItsFilesUnderLocalAppData) {
  TempDir dir;
  const std::string token = WriteToken(dir);
  // TCP off as well would leave the agent serving nobody.
  auto no_tcp = LoadAgentConfig("", Env({{"SIGNUM_SERVER_URL", "https://127.0.0.1:8443"},
                                         {"SIGNUM_TOKEN_FILE", token},
                                         {"SIGNUM_AGENT_TCP", "off"}}));
  EXPECT_THAT(no_tcp.status(), StatusIs(ErrorCode::kInvalidArgument, HasSubstr("SIGNUM_AGENT_TCP")));

  // With nothing but the server and the credential: loopback TCP on an ephemeral port, no socket.
  _putenv_s("LOCALAPPDATA", dir.File("appdata").c_str());
  ASSERT_OK_AND_ASSIGN(AgentConfig config,
                       LoadAgentConfig("", Env({{"SIGNUM_SERVER_URL", "https://127.0.0.1:8443"},
                                                {"SIGNUM_TOKEN_FILE", token}})));
  EXPECT_FALSE(config.unix_socket_enabled);
  EXPECT_TRUE(config.tcp_enabled);
  EXPECT_EQ(config.tcp_host, "127.0.0.1");
  EXPECT_EQ(config.tcp_port, 0);
  EXPECT_EQ(config.secret_file, dir.File("appdata") + "\\Signum/agent.secret");
  EXPECT_EQ(DirName(config.port_file), DirName(config.secret_file));
  // The default agent id names the Windows user, not a uid.
  EXPECT_THAT(config.agent_id, HasSubstr("signum-agent@" + LocalHostname() + "/"));
  EXPECT_THAT(config.agent_id, HasSubstr(AgentUserName()));
}

TEST(AgentConfigWindows, ProvidersFindAnAgentByTheFilesItWritesByDefault) {
  TempDir dir;
  const std::string agent_dir = dir.File("Signum");
  EXPECT_THAT(AgentEndpointFromAgentFiles(agent_dir).status(), StatusIs(ErrorCode::kNotFound));
  ASSERT_OK(MakePrivateDirectory(agent_dir));
  const std::string secret(64, 'c');
  ASSERT_OK(WriteFileAtomically(agent_dir + "/agent.secret", secret + "\n", 0600));
  ASSERT_OK(WriteFileAtomically(agent_dir + "/agent.port", "50123\n", 0644));
  ASSERT_OK_AND_ASSIGN(AgentEndpoint endpoint, AgentEndpointFromAgentFiles(agent_dir));
  EXPECT_EQ(endpoint.tcp_host, "127.0.0.1");
  EXPECT_EQ(endpoint.tcp_port, 50123);
  EXPECT_EQ(endpoint.secret, secret);
  ASSERT_OK(WriteFileAtomically(agent_dir + "/agent.port", "\n", 0644));
  EXPECT_FALSE(AgentEndpointFromAgentFiles(agent_dir).ok());
}

TEST(AgentConfigWindows, DirNameKnowsBothSeparatorsAndDrives) {
  EXPECT_EQ(DirName("C:\\Users\\me\\Signum\\agent.secret"), "C:\\Users\\me\\Signum");
  EXPECT_EQ(DirName("Z:/tmp/x/agent.port"), "Z:/tmp/x");
  EXPECT_EQ(DirName("C:\\agent.secret"), "C:\\");
  EXPECT_EQ(DirName("agent.secret"), ".");
}

TEST(HttpsClientWindows, RefusesWhatItCannotDoWithTheReason) {
  TempDir dir;
  HttpsClientConfig config;
  config.client_certificate_file = dir.File("client.pem");
  config.client_key_file = dir.File("client.key");
  EXPECT_THAT(HttpsClient::Create(config).status(),
              StatusIs(ErrorCode::kInvalidArgument, HasSubstr("use an API token")));

  config = {};
  config.server_name = "signum.example";
  EXPECT_THAT(HttpsClient::Create(config).status(),
              StatusIs(ErrorCode::kInvalidArgument, HasSubstr("server name other than the host")));

  config = {};
  config.ca_file = dir.File("missing.pem");
  EXPECT_THAT(HttpsClient::Create(config).status(), StatusIs(ErrorCode::kNotFound));
  std::ofstream(dir.File("empty.pem")) << "no certificate here\n";
  config.ca_file = dir.File("empty.pem");
  EXPECT_THAT(HttpsClient::Create(config).status(),
              StatusIs(ErrorCode::kInvalidArgument, HasSubstr("no PEM certificate")));
  std::ofstream(dir.File("bad.pem")) << "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
  config.ca_file = dir.File("bad.pem");
  EXPECT_THAT(HttpsClient::Create(config).status(),
              StatusIs(ErrorCode::kInvalidArgument, HasSubstr("does not parse")));
}

TEST(HttpsClientWindows, AnUnreachableServerIsUnavailableNamingIt) {
  HttpsClientConfig config;
  config.port = 1;  // nothing listens on port 1
  config.connect_timeout_ms = 3000;
  ASSERT_OK_AND_ASSIGN(auto client, HttpsClient::Create(config));
  auto result = client->Get("/v1/health");
  EXPECT_THAT(result.status(), StatusIs(ErrorCode::kUnavailable, HasSubstr("127.0.0.1:1")));
  EXPECT_EQ(client->connections_opened(), 0u);
}

TEST(WriteFileAtomicallyWindows, ReplacesTheFileAndLeavesNoTemporary) {
  TempDir dir;
  const std::string path = dir.File("agent.secret");
  ASSERT_OK(WriteFileAtomically(path, "first\n", 0600));
  ASSERT_OK(WriteFileAtomically(path, "second\n", 0600));
  ASSERT_OK(WriteFileAtomically(dir.File("agent.port"), "1234\n", 0644));
  ASSERT_OK_AND_ASSIGN(std::string content, ReadFile(path));
  EXPECT_EQ(content, "second\n");
  int files = 0;
  for (const auto& entry : fs::directory_iterator(fs::path(path).parent_path())) {
    EXPECT_EQ(entry.path().string().find(".tmp-"), std::string::npos) << entry.path().string();
    ++files;
  }
  EXPECT_EQ(files, 2);
  EXPECT_THAT(WriteFileAtomically(dir.File("no-such-dir\\x"), "x", 0600),
              StatusIs(ErrorCode::kNotFound));
}

// The DACL of path as SDDL ("D:P(A;;FA;;;S-1-5-...)"), empty when it cannot be read.
std::string DaclOf(const std::string& path) {
  PSECURITY_DESCRIPTOR descriptor = nullptr;
  if (GetNamedSecurityInfoA(path.c_str(), SE_FILE_OBJECT, DACL_SECURITY_INFORMATION, nullptr,
                            nullptr, nullptr, nullptr, &descriptor) != ERROR_SUCCESS)
    return "";
  char* text = nullptr;
  std::string out;
  if (ConvertSecurityDescriptorToStringSecurityDescriptorA(descriptor, SDDL_REVISION_1,
                                                           DACL_SECURITY_INFORMATION, &text, nullptr)) {
    out = text;
    LocalFree(text);
  }
  LocalFree(descriptor);
  return out;
}

std::string OwnSidText() { return SidText(TokenUserSid(GetCurrentProcess())); }

// The trustee SIDs of the DACL's access-allowed ACEs ("(A;;FA;;;S-1-5-...)" -> "S-1-5-...").
std::vector<std::string> AllowedTrustees(const std::string& sddl) {
  std::vector<std::string> trustees;
  for (size_t at = sddl.find("(A;"); at != std::string::npos; at = sddl.find("(A;", at + 1)) {
    const size_t end = sddl.find(')', at);
    const size_t last = sddl.rfind(';', end);
    trustees.push_back(sddl.substr(last + 1, end - last - 1));
  }
  return trustees;
}

TEST(WriteFileAtomicallyWindows, ASecretIsReadableByItsUserAlone) {
  TempDir dir;
  const std::string secret = dir.File("agent.secret");
  ASSERT_OK(WriteFileAtomically(secret, "s3cret\n", 0600));
  const std::string dacl = DaclOf(secret);
  ASSERT_FALSE(dacl.empty());
  // Windows keeps the protected one-ACE DACL the file was created with (D:P(A;;FA;;;<user>));
  // Wine derives a DACL from the Unix mode instead and adds SYSTEM. Either way no one else
  // (Everyone, Users, Authenticated Users, another account) is allowed anything.
  const std::vector<std::string> trustees = AllowedTrustees(dacl);
  EXPECT_NE(std::find(trustees.begin(), trustees.end(), OwnSidText()), trustees.end()) << dacl;
  for (const std::string& trustee : trustees)
    EXPECT_TRUE(trustee == OwnSidText() || trustee == "SY") << dacl;
  EXPECT_EQ(dacl.find("(D;"), std::string::npos) << dacl;  // nothing relies on deny entries

  // The check can tell: a file that is not a secret (0644) lets someone else in (Wine: Everyone
  // from the mode; Windows: what the directory passes on, e.g. Administrators).
  ASSERT_OK(WriteFileAtomically(dir.File("agent.port"), "1\n", 0644));
  const std::string open_dacl = DaclOf(dir.File("agent.port"));
  const std::vector<std::string> open_trustees = AllowedTrustees(open_dacl);
  EXPECT_TRUE(std::any_of(open_trustees.begin(), open_trustees.end(), [](const std::string& t) {
    return t != OwnSidText() && t != "SY";
  })) << open_dacl;
}

TEST(AgentSocketWindows, ListensAcceptsTransfersAndWakesUp) {
  ASSERT_OK(net::Initialize());
  uint16_t port = 0;
  ASSERT_OK_AND_ASSIGN(net::Socket listener, net::ListenTcp("127.0.0.1", 0, &port));
  ASSERT_NE(port, 0);
  // Nothing pending on a non-blocking listener: "would block", not an error.
  EXPECT_EQ(net::Accept(listener), net::kNoSocket);
  EXPECT_EQ(net::LastErrorKind(), net::ErrorKind::kWouldBlock);

  // Any TCP client will do; the providers' own is at hand.
  const AgentEndpoint endpoint = LoopbackEndpoint(port, std::string(64, 'a'));
  std::thread client([&] { (void)AgentClient::Connect(endpoint, "socket-test", 3000); });
  net::Socket sockets[1] = {listener};
  bool ready[1] = {};
  ASSERT_EQ(net::WaitAnyReadable(sockets, ready, 1), 1);
  EXPECT_TRUE(ready[0]);
  const net::Socket accepted = net::Accept(listener);
  ASSERT_NE(accepted, net::kNoSocket);
  // The client sends its hello first: the accepted socket is blocking and readable.
  ASSERT_EQ(net::WaitReadable(accepted, 3000), 1);
  char buffer[256];
  EXPECT_GT(net::Receive(accepted, buffer, sizeof buffer), 0);
  // The system's TCP table names our own process as the peer, and it is this user's.
  EXPECT_EQ(LoopbackTcpPeerProcessId(accepted), GetCurrentProcessId());
  EXPECT_OK(CheckTcpPeerIsThisUser(accepted));
  net::Close(accepted);  // the client sees the agent go away
  client.join();

  net::WakeUp wake;
  ASSERT_OK(wake.Open());
  const net::Socket both[2] = {listener, wake.readable()};
  bool which[2] = {};
  wake.Signal();
  ASSERT_EQ(net::WaitAnyReadable(both, which, 2), 1);
  EXPECT_FALSE(which[0]);
  EXPECT_TRUE(which[1]);
  wake.Drain();
  EXPECT_EQ(net::WaitReadable(wake.readable(), 100), 0);
  net::Close(listener);
}

TEST(AgentServiceWindows, ServesTheTcpHandshakeAndMapsAnUnreachableServer) {
  ASSERT_OK(net::Initialize());
  TempDir dir;
  ASSERT_OK_AND_ASSIGN(AgentConfig config,
                       ConfigWithAServerThatIsDown(
                           dir, {{"SIGNUM_AGENT_TCP", "127.0.0.1:0"},
                                 {"SIGNUM_AGENT_SECRET_FILE", dir.File("run\\agent.secret")}}));
  config.connect_timeout_ms = 2000;
  ASSERT_OK_AND_ASSIGN(auto server, ServerClient::Create(config));
  ASSERT_OK_AND_ASSIGN(auto service, AgentService::Create(config, server.get()));
  ASSERT_NE(service->tcp_port(), 0);
  ASSERT_OK_AND_ASSIGN(std::string port_file, ReadFile(config.port_file));
  EXPECT_EQ(port_file, std::to_string(service->tcp_port()) + "\n");
  std::atomic<bool> drained{false};
  std::thread runner([&] { drained = service->Run(); });

  // A wrong secret is refused in the handshake.
  AgentEndpoint endpoint = LoopbackEndpoint(service->tcp_port(), std::string(64, '0'));
  EXPECT_FALSE(AgentClient::Connect(endpoint, "agent-windows-test", 5000).ok());
  // The right one is served; the server behind is down, which the client is told.
  ASSERT_OK_AND_ASSIGN(endpoint.secret, ReadAgentSecretFile(config.secret_file));
  ASSERT_OK_AND_ASSIGN(auto client, AgentClient::Connect(endpoint, "agent-windows-test", 10000));
  EXPECT_EQ(client->agent_name(), kAgentName);
  EXPECT_THAT(client->ListCertificates().status(),
              StatusIs(ErrorCode::kUnavailable, HasSubstr("is unreachable")));
  ASSERT_OK_AND_ASSIGN(auto report, client->GetStatus());
  EXPECT_FALSE(report.server_reachable);

  service->Stop();
  runner.join();
  EXPECT_TRUE(drained);
  EXPECT_FALSE(fs::exists(config.port_file)) << "the port file outlived the agent";
}

// A raw loopback connection that never says hello (a hostile or broken local client).
net::Socket ConnectRaw(uint16_t port) {
  SOCKET s = ::socket(AF_INET, SOCK_STREAM, IPPROTO_TCP);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(port);
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(s, reinterpret_cast<const sockaddr*>(&address), sizeof address) != 0) {
    ::closesocket(s);
    return net::kNoSocket;
  }
  return static_cast<net::Socket>(s);
}

TEST(AgentServiceWindows, SilentConnectionsFillOnlyTheirBudgetAndTimeOut) {
  ASSERT_OK(net::Initialize());
  TempDir dir;
  ASSERT_OK_AND_ASSIGN(AgentConfig config,
                       ConfigWithAServerThatIsDown(
                           dir, {{"SIGNUM_AGENT_SECRET_FILE", dir.File("agent.secret")}}));
  config.max_unauthenticated_connections = 3;
  ASSERT_OK_AND_ASSIGN(auto server, ServerClient::Create(config));
  ASSERT_OK_AND_ASSIGN(auto service, AgentService::Create(config, server.get()));
  std::thread runner([&] { service->Run(); });

  std::vector<net::Socket> silent;
  for (int i = 0; i < 5; ++i) {
    silent.push_back(ConnectRaw(service->tcp_port()));
    ASSERT_NE(silent.back(), net::kNoSocket);
  }
  // The two beyond the budget are told so at once and closed; the first three are held until
  // the hello deadline (3 s) and then told that.
  auto error_frame_within = [](net::Socket s, int ms) {
    std::string received;
    char buffer[512];
    for (;;) {
      if (net::WaitReadable(s, ms) != 1) return received;
      const long n = net::Receive(s, buffer, sizeof buffer);
      if (n <= 0) return received;
      received.append(buffer, static_cast<size_t>(n));
    }
  };
  const std::string refused = error_frame_within(silent[4], 2000);
  EXPECT_NE(refused.find("RESOURCE_EXHAUSTED"), std::string::npos) << refused;
  const auto start = std::chrono::steady_clock::now();
  const std::string timed_out = error_frame_within(silent[0], 6000);
  const auto waited = std::chrono::duration_cast<std::chrono::milliseconds>(
                          std::chrono::steady_clock::now() - start).count();
  EXPECT_NE(timed_out.find("no hello within"), std::string::npos) << timed_out;
  EXPECT_LT(waited, 5000);
  for (net::Socket s : silent) net::Close(s);

  // The budget is free again: the providers' client is served.
  ASSERT_OK_AND_ASSIGN(std::string secret, ReadAgentSecretFile(config.secret_file));
  ASSERT_OK_AND_ASSIGN(auto client,
                       AgentClient::Connect(LoopbackEndpoint(service->tcp_port(), secret),
                                            "agent-windows-test", 10000));
  ASSERT_OK_AND_ASSIGN(auto report, client->GetStatus());
  EXPECT_FALSE(report.server_reachable);
  client.reset();
  service->Stop();
  runner.join();
}

TEST(AgentServiceWindows, AUnixSocketIsRefusedWithTheReason) {
  TempDir dir;
  ASSERT_OK_AND_ASSIGN(AgentConfig config,
                       ConfigWithAServerThatIsDown(dir, {{"SIGNUM_AGENT_SOCKET", "/tmp/agent.sock"}}));
  ASSERT_OK_AND_ASSIGN(auto server, ServerClient::Create(config));
  EXPECT_THAT(AgentService::Create(config, server.get()).status(),
              StatusIs(ErrorCode::kFailedPrecondition, HasSubstr("loopback TCP only")));
}

}  // namespace
}  // namespace signum::agent

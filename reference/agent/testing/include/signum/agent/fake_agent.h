// FakeAgent: an in-process stand-in for signum-agent in unit tests (the role fakekms plays for
// kmsp11, or p11-kit's mock module). It speaks the real agent protocol (core's frames and
// message table; on TCP the real challenge-response), so the client, the provider core and the
// PKCS#11 bridge run their production code against it; what it answers is scripted per test:
// certificates with software keys that really sign, a replacement signer (forged or broken
// signatures), error replies, delays and dropped connections. End-to-end tests keep using the
// real agent and server; these tests need neither, and run in milliseconds.
//
//   TempDir dir("fake-agent");
//   auto agent = FakeAgent::Start({.dir = dir.path()}).value();
//   wire::CertificateEntry leaf = agent->AddLeaf(SharedTestPki(), "release", "ec-p256");
//   agent->FailNext(MessageType::kSign, PermissionDeniedError("policy says no"));
//   ... point the code under test at agent->endpoint() (or agent->Environment()) ...
//
// POSIX only (a thread per connection, poll with a short tick so the destructor never waits
// on a silent client for long).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "signum/agent/agent_client.h"
#include "signum/core/agent_protocol.h"
#include "signum/core/crypto.h"
#include "signum/core/wire.h"

namespace signum::testing {
class TestPki;
}

namespace signum::agent::testing {

struct FakeAgentOptions {
  // A private directory (mode 0700, this user's: a TempDir is) for agent.sock and the secret.
  std::string dir;
  bool unix_socket = true;
  bool tcp = false;  // 127.0.0.1 at a port the kernel picks, with the protocol-2 handshake
  std::string name = "fake-agent/1";
};

class FakeAgent {
 public:
  using MessageType = agent_protocol::MessageType;
  using SignHandler = std::function<Result<Bytes>(const wire::SignRequest&)>;

  static Result<std::unique_ptr<FakeAgent>> Start(const FakeAgentOptions& options);
  ~FakeAgent();  // stops listening, drops every connection, joins its threads
  FakeAgent(const FakeAgent&) = delete;
  FakeAgent& operator=(const FakeAgent&) = delete;

  // --- The script (may change while clients are connected) ---------------------------------
  // Lists `entry`; sign requests for its id are signed with `key` (null: NOT_FOUND, as for an
  // unknown id).
  void AddCertificate(const wire::CertificateEntry& entry, std::shared_ptr<SoftwareKey> key);
  // Issues a leaf of `spec_name` from `pki` and adds it with its key; returns the entry.
  wire::CertificateEntry AddLeaf(const signum::testing::TestPki& pki, const std::string& label,
                                 const std::string& spec_name);
  void ClearCertificates();
  // Every sign request goes to `handler` instead (SignWithKey is the genuine answer, for handlers
  // that tamper with it). An empty handler restores the default.
  void SetSignHandler(SignHandler handler);
  // The next `count` requests of `type` get an error reply carrying `status`.
  void FailNext(MessageType type, Status status, int count = 1);
  // The next `count` requests of `type` are read and then the connection is closed unanswered.
  void DisconnectNext(MessageType type, int count = 1);
  // Every answer to `type` is sent `delay` late (a stop of the agent cuts the wait short).
  void SetDelay(MessageType type, std::chrono::milliseconds delay);
  // How every sign request for one certificate is answered, for as long as the agent runs (the
  // queues above count requests of any certificate; a long-lived fake, signum-fake-agent, scripts
  // by certificate instead): after `delay`, the connection is closed unanswered (`disconnect`)
  // or the answer is `handler`'s (empty: the SetSignHandler / SignWithKey answer).
  struct CertificateScript {
    std::chrono::milliseconds delay{0};
    bool disconnect = false;
    SignHandler handler{};
  };
  void ScriptCertificate(const std::string& certificate_id, CertificateScript script);

  // The default answer to a sign request: the added key for its certificate signs the digest.
  Result<Bytes> SignWithKey(const wire::SignRequest& request) const;

  // --- What happened -------------------------------------------------------------------------
  std::vector<wire::SignRequest> sign_requests() const;
  int requests(MessageType type) const;  // session requests received, answered or not
  int connections() const;               // accepted, handshake completed or not

  // --- Where it listens ----------------------------------------------------------------------
  AgentEndpoint endpoint() const;      // the Unix socket when there is one, else TCP
  AgentEndpoint tcp_endpoint() const;  // TCP only (requires options.tcp)
  const std::string& unix_socket() const { return unix_socket_; }
  uint16_t tcp_port() const { return tcp_port_; }
  const std::string& secret_file() const { return secret_file_; }
  // The variables a provider reads (SIGNUM_AGENT_SOCKET, or SIGNUM_AGENT_TCP and
  // SIGNUM_AGENT_SECRET_FILE with SIGNUM_AGENT_SOCKET pointing nowhere).
  std::vector<std::pair<std::string, std::string>> Environment() const;

 private:
  explicit FakeAgent(FakeAgentOptions options) : options_(std::move(options)) {}
  void AcceptLoop();
  void Serve(int fd, bool tcp);
  // The handshake on a fresh connection; false when the connection must close.
  bool Handshake(int fd, bool tcp, std::string& buffer);
  // One session request; false: close without answering.
  bool Answer(const nlohmann::json& request, nlohmann::json* reply);
  // Reads one frame within the stop flag; nullopt when the peer left, the frame was malformed
  // or the agent is stopping.
  std::optional<nlohmann::json> ReadFrame(int fd, std::string& buffer);
  bool WriteFrame(int fd, const nlohmann::json& message);
  void Sleep(std::chrono::milliseconds delay);

  const FakeAgentOptions options_;
  std::string unix_socket_, secret_hex_, secret_file_;
  uint16_t tcp_port_ = 0;
  int unix_fd_ = -1, tcp_fd_ = -1;
  std::atomic<bool> stop_{false};
  std::thread accept_thread_;

  mutable std::mutex mu_;  // guards everything below
  std::vector<std::thread> connection_threads_;
  std::vector<wire::CertificateEntry> certificates_;
  std::map<std::string, std::shared_ptr<SoftwareKey>> keys_;  // by certificate id
  SignHandler sign_handler_;
  std::map<MessageType, std::vector<Status>> failures_;
  std::map<MessageType, int> disconnects_;
  std::map<MessageType, std::chrono::milliseconds> delays_;
  std::map<std::string, CertificateScript> scripts_;  // by certificate id
  std::vector<wire::SignRequest> sign_requests_;
  std::map<MessageType, int> request_counts_;
  int connections_ = 0;
};

}  // namespace signum::agent::testing

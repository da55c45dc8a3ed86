// The client side of the provider <-> signum-agent protocol (agent_protocol.h), linked by every
// provider and by signum-util. One protocol implementation; the socket transport underneath is
// per OS (transport.h): Unix socket + loopback TCP on POSIX, loopback TCP over Winsock on Windows.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>

#include "signum/core/agent_protocol.h"

namespace signum::agent {

struct AgentEndpoint {
  std::string unix_socket;  // preferred when set
  std::string tcp_host;     // loopback only: "127.0.0.1" or "::1"
  uint16_t tcp_port = 0;
  std::string secret;  // required for TCP (read from the agent's secret file)

  std::string Describe() const;  // "unix:/run/user/1000/signum/agent.sock" / "tcp:127.0.0.1:51599"
};

// The default socket path for the current user: $XDG_RUNTIME_DIR/signum/agent.sock, else
// /tmp/signum-<uid>/agent.sock. Empty on Windows (TCP only there).
std::string DefaultAgentSocketPath();
// Where the agent writes its TCP secret and port files by default: beside the default socket, or
// %LOCALAPPDATA%\Signum on Windows.
std::string DefaultAgentDirectory();
// The TCP endpoint an agent started with defaults announces in DIR: 127.0.0.1:<DIR/agent.port>
// with the secret of DIR/agent.secret (how the Windows providers find a native agent nobody
// configured them for). kNotFound when the agent has not written them (it is not running).
Result<AgentEndpoint> AgentEndpointFromAgentFiles(const std::string& dir);

// From the environment, as providers see it:
//   SIGNUM_AGENT_SOCKET=/path/agent.sock          (Unix socket), or
//   SIGNUM_AGENT_TCP=127.0.0.1:51599 + SIGNUM_AGENT_SECRET_FILE=/path/secret   (loopback TCP)
// and DefaultAgentSocketPath() when neither is set. When both are set, the endpoint carries both:
// Connect() tries the socket first and falls back to TCP if the socket cannot be reached.
// SIGNUM_AGENT_TCP=off (or empty) means no TCP.
Result<AgentEndpoint> AgentEndpointFromEnvironment();

// Parses "127.0.0.1:51599", "[::1]:51599" or "localhost:51599" into host and port. Only loopback
// hosts are accepted: the secret must never cross a network.
Status ParseLoopbackAddress(const std::string& text, std::string* host, uint16_t* port);

// Reads the agent's TCP secret file (hex, one line) and checks its shape.
Result<std::string> ReadAgentSecretFile(const std::string& path);

// One connection to the agent, handshake done. Requests are strictly sequential; the methods lock
// internally so a client may be shared, but a pool of clients gives concurrency.
class AgentClient {
 public:
  // Connects and performs the Hello exchange. Unreachable agent -> kUnavailable naming the
  // endpoint; protocol mismatch or bad secret -> kFailedPrecondition / kUnauthenticated; on TCP,
  // a listener that cannot prove it knows the secret (not signum-agent) -> kPermissionDenied.
  // timeout_ms bounds the connect, the handshake and every later request.
  static Result<std::unique_ptr<AgentClient>> Connect(const AgentEndpoint& endpoint,
                                                      const std::string& client_name,
                                                      int timeout_ms = 30000);
  ~AgentClient();
  AgentClient(const AgentClient&) = delete;
  AgentClient& operator=(const AgentClient&) = delete;

  Result<wire::CertificateListResponse> ListCertificates(bool refresh = false);
  Result<Bytes> Sign(const agent_protocol::SignRequest& request);
  Result<agent_protocol::StatusReport> GetStatus();

  // False once a transport error happened; the owner should discard and reconnect.
  bool healthy() const;
  // What the agent called itself in its Hello ("signum-agent/0.1"), and where it was reached.
  const std::string& agent_name() const { return agent_name_; }
  const std::string& endpoint_description() const { return endpoint_description_; }

 private:
  AgentClient() = default;
  Result<nlohmann::json> RoundTrip(const nlohmann::json& request);
  Result<nlohmann::json> RoundTripLocked(const nlohmann::json& request);
  void FailLocked();
  mutable std::mutex mu_;
  std::intptr_t socket_ = -1;  // transport::Handle: a file descriptor or a Winsock SOCKET
  int timeout_ms_ = 30000;
  bool healthy_ = false;
  std::string buffer_;  // bytes received beyond the last decoded frame
  std::string agent_name_;
  std::string endpoint_description_;
};

}  // namespace signum::agent

// AgentClient: the one implementation of the client side of the agent protocol, for every OS.
// The sockets underneath are transport.h's (POSIX or Winsock); every wait is bounded by the
// timeout the caller chose (a provider must never freeze its host application because the agent
// stopped answering).
#include "signum/agent/agent_client.h"

#include <chrono>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <optional>
#include <string_view>

#include "signum/core/files.h"
#include "signum/agent/transport.h"

namespace signum::agent {
namespace {

using nlohmann::json;
using transport::Clock;

constexpr size_t kSecretHexDigits = 64;  // 32 random bytes, hex (what signum-agent writes)

// Reads until one whole frame is in `buffer`; bytes after it stay there for the next call.
Result<json> ReadFrame(transport::Handle socket, std::string& buffer, Clock::time_point deadline) {
  for (;;) {
    auto decoded = agent_protocol::DecodeFrame(buffer);
    if (!decoded.ok()) {
      return InternalError("malformed reply from signum-agent: " + decoded.status().message());
    }
    if (decoded->has_value()) return std::move(**decoded);
    char chunk[16384];
    SIGNUM_ASSIGN_OR_RETURN(const size_t n,
                            transport::ReceiveSome(socket, chunk, sizeof chunk, deadline));
    if (n == 0) return UnavailableError("signum-agent closed the connection");
    buffer.append(chunk, n);
  }
}

// After a failed send: the agent may have answered with an error and closed before reading our
// request (a rejected peer uid, a bad secret). That error says more than "broken pipe".
std::optional<Status> PendingAgentError(transport::Handle socket, std::string& buffer) {
  auto reply = ReadFrame(socket, buffer, Clock::now() + std::chrono::milliseconds(200));
  if (!reply.ok()) return std::nullopt;
  Status error = agent_protocol::ErrorFromReply(*reply);
  if (error.ok()) return std::nullopt;
  return error;
}

// A kept connection on which the agent sent something unsolicited or which it closed (agent
// restarted, or it closed us after an error) is dead: find out before writing a request into it.
bool LooksClosed(transport::Handle socket, const std::string& buffer) {
  return !buffer.empty() || transport::ReadableNow(socket);
}

struct Connection {
  transport::Handle socket = transport::kNoHandle;
  std::string buffer;
  std::string agent_name;
  std::string description;
};

Result<Connection> OpenOne(const AgentEndpoint& endpoint, bool use_tcp,
                           const std::string& client_name, Clock::time_point deadline) {
  Connection c;
  if (use_tcp) {
    if (endpoint.secret.empty()) {
      return FailedPreconditionError(
          "the agent's TCP endpoint needs its secret (SIGNUM_AGENT_SECRET_FILE)");
    }
    AgentEndpoint tcp_only = endpoint;
    tcp_only.unix_socket.clear();
    c.description = tcp_only.Describe();
    SIGNUM_ASSIGN_OR_RETURN(c.socket,
                            transport::ConnectTcp(endpoint.tcp_host, endpoint.tcp_port, deadline));
  } else {
    c.description = "unix:" + endpoint.unix_socket;
    SIGNUM_ASSIGN_OR_RETURN(c.socket, transport::ConnectUnix(endpoint.unix_socket, deadline));
  }
  auto fail = [&](const Status& s) {
    transport::Close(c.socket);
    return s.WithContext("signum-agent at " + c.description);
  };
  agent_protocol::Hello hello;
  hello.peer = client_name;
  // TCP: the secret never crosses the wire. Whoever listens on the port (another local user's
  // program, when the agent is not running) gets only this nonce; see agent_protocol.h.
  if (use_tcp) {
    auto nonce = agent_protocol::NewNonce();
    if (!nonce.ok()) return fail(nonce.status());
    hello.nonce = *nonce;
  }
  Status sent = transport::SendAll(
      c.socket, agent_protocol::EncodeFrame(agent_protocol::ToJson(hello, false)), deadline);
  if (!sent.ok()) {
    if (auto error = PendingAgentError(c.socket, c.buffer)) return fail(*error);
    return fail(sent);
  }
  auto reply = ReadFrame(c.socket, c.buffer, deadline);
  if (!reply.ok()) return fail(reply.status());
  auto agent_hello = agent_protocol::ParseHello(*reply);
  if (!agent_hello.ok()) return fail(agent_hello.status());
  if (agent_hello->protocol < 1 || agent_hello->protocol > agent_protocol::kProtocolVersion) {
    return fail(FailedPreconditionError(
        "agent chose protocol version " + std::to_string(agent_hello->protocol) +
        ", this client speaks 1.." + std::to_string(agent_protocol::kProtocolVersion)));
  }
  c.agent_name = agent_hello->peer;
  if (!use_tcp) return c;

  // The listener must prove that it knows the secret before we send anything else: one that
  // cannot is not signum-agent, and must get neither our proof nor any request.
  if (agent_hello->protocol < agent_protocol::kMinTcpProtocolVersion ||
      !agent_protocol::ProofMatches(agent_protocol::ProofRole::kAgent, endpoint.secret, hello.nonce,
                                    agent_hello->nonce, agent_hello->proof)) {
    transport::Close(c.socket);
    return PermissionDeniedError(
        "the process listening on " + c.description +
        " does not know the agent's secret: not signum-agent (another local user?), or the secret "
        "this client read is out of date (signum-agent writes a new one at every start)");
  }
  auto proof = agent_protocol::HandshakeProof(agent_protocol::ProofRole::kClient, endpoint.secret,
                                              hello.nonce, agent_hello->nonce);
  if (!proof.ok()) return fail(proof.status());
  const agent_protocol::AuthRequest auth{*proof};
  sent = transport::SendAll(c.socket, agent_protocol::EncodeFrame(agent_protocol::ToJson(auth)),
                            deadline);
  if (!sent.ok()) {
    if (auto error = PendingAgentError(c.socket, c.buffer)) return fail(*error);
    return fail(sent);
  }
  auto ack = ReadFrame(c.socket, c.buffer, deadline);
  if (!ack.ok()) return fail(ack.status());
  Status authenticated = agent_protocol::ParseAuthenticated(*ack);
  if (!authenticated.ok()) return fail(authenticated);
  return c;
}

}  // namespace

std::string AgentEndpoint::Describe() const {
  if (!unix_socket.empty()) return "unix:" + unix_socket;
  const bool v6 = tcp_host.find(':') != std::string::npos;
  return "tcp:" + (v6 ? "[" + tcp_host + "]" : tcp_host) + ":" + std::to_string(tcp_port);
}

std::string DefaultAgentSocketPath() { return transport::DefaultAgentSocketPath(); }
std::string DefaultAgentDirectory() { return transport::DefaultAgentDirectory(); }

Result<AgentEndpoint> AgentEndpointFromAgentFiles(const std::string& dir) {
  const std::string port_file = dir + "/agent.port";
  auto text = ReadFile(port_file);
  if (!text.ok())
    return NotFoundError("no " + port_file + ": signum-agent is not running with its default files");
  std::string digits;
  for (char c : *text) {
    if (c >= '0' && c <= '9') digits += c;
  }
  AgentEndpoint endpoint;
  SIGNUM_RETURN_IF_ERROR(ParseLoopbackAddress("127.0.0.1:" + digits, &endpoint.tcp_host,
                                              &endpoint.tcp_port)
                             .WithContext(port_file));
  if (endpoint.tcp_port == 0) return InvalidArgumentError(port_file + " holds no port");
  SIGNUM_ASSIGN_OR_RETURN(endpoint.secret, ReadAgentSecretFile(dir + "/agent.secret"));
  return endpoint;
}

Status ParseLoopbackAddress(const std::string& text, std::string* host, uint16_t* port) {
  std::string h;
  std::string p;
  if (!text.empty() && text[0] == '[') {
    const size_t close = text.find(']');
    if (close == std::string::npos || close + 1 >= text.size() || text[close + 1] != ':') {
      return InvalidArgumentError("invalid address '" + text + "' (want [::1]:PORT)");
    }
    h = text.substr(1, close - 1);
    p = text.substr(close + 2);
  } else {
    const size_t colon = text.rfind(':');
    if (colon == std::string::npos) {
      return InvalidArgumentError("invalid address '" + text + "' (want 127.0.0.1:PORT)");
    }
    h = text.substr(0, colon);
    p = text.substr(colon + 1);
  }
  if (h == "localhost") h = "127.0.0.1";
  if (!transport::IsLoopbackHost(h)) {
    return InvalidArgumentError(
        "address '" + text + "' is not loopback: the agent's TCP endpoint is for this host only");
  }
  if (p.empty() || p.size() > 5 || p.find_first_not_of("0123456789") != std::string::npos ||
      std::stoul(p) > 65535) {
    return InvalidArgumentError("invalid port in '" + text + "'");
  }
  *host = h;
  *port = static_cast<uint16_t>(std::stoul(p));
  return Status::Ok();
}

Result<std::string> ReadAgentSecretFile(const std::string& path) {
  auto secret = ReadSecretFile(path);
  if (!secret.ok()) return secret.status().WithContext("agent secret file");
  if (secret->size() != kSecretHexDigits ||
      secret->find_first_not_of("0123456789abcdefABCDEF") != std::string::npos) {
    return InvalidArgumentError("agent secret file " + path + " does not hold " +
                                std::to_string(kSecretHexDigits) + " hex digits");
  }
  return std::move(secret).value();
}

Result<AgentEndpoint> AgentEndpointFromEnvironment() {
  AgentEndpoint endpoint;
  const char* socket = std::getenv("SIGNUM_AGENT_SOCKET");
  const char* tcp = std::getenv("SIGNUM_AGENT_TCP");
  // "off": the agent serves TCP only (as on Windows); the socket is not looked for.
  const bool socket_off = socket != nullptr && std::string_view(socket) == "off";
  if (socket != nullptr && socket[0] != '\0' && !socket_off) endpoint.unix_socket = socket;
  const std::string tcp_text = tcp != nullptr ? tcp : "";
  if (!tcp_text.empty() && tcp_text != "off") {
    SIGNUM_RETURN_IF_ERROR(ParseLoopbackAddress(tcp_text, &endpoint.tcp_host, &endpoint.tcp_port)
                               .WithContext("SIGNUM_AGENT_TCP"));
    const char* secret_file = std::getenv("SIGNUM_AGENT_SECRET_FILE");
    if (secret_file == nullptr || secret_file[0] == '\0') {
      return FailedPreconditionError("SIGNUM_AGENT_TCP is set but SIGNUM_AGENT_SECRET_FILE is not");
    }
    SIGNUM_ASSIGN_OR_RETURN(endpoint.secret, ReadAgentSecretFile(secret_file));
  }
  if (endpoint.unix_socket.empty() && endpoint.tcp_port == 0) {
    if (socket_off)
      return FailedPreconditionError(
          "SIGNUM_AGENT_SOCKET is off: set SIGNUM_AGENT_TCP and SIGNUM_AGENT_SECRET_FILE");
    endpoint.unix_socket = DefaultAgentSocketPath();
    if (endpoint.unix_socket.empty()) {
      return FailedPreconditionError(
          "no signum-agent endpoint: set SIGNUM_AGENT_TCP and SIGNUM_AGENT_SECRET_FILE");
    }
  }
  return endpoint;
}

Result<std::unique_ptr<AgentClient>> AgentClient::Connect(const AgentEndpoint& endpoint,
                                                          const std::string& client_name,
                                                          int timeout_ms) {
  if (endpoint.unix_socket.empty() && endpoint.tcp_port == 0) {
    return InvalidArgumentError("no agent endpoint: neither a socket path nor a TCP port");
  }
  const auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
  Result<Connection> connection = InvalidArgumentError("unreachable");
  if (!endpoint.unix_socket.empty()) {
    connection = OpenOne(endpoint, /*use_tcp=*/false, client_name, deadline);
    // Fall back to TCP only when the socket is not there at all; a rejected handshake is final.
    if (!connection.ok() && connection.status().code() == ErrorCode::kUnavailable &&
        endpoint.tcp_port != 0) {
      connection = OpenOne(endpoint, /*use_tcp=*/true, client_name, deadline);
    }
  } else {
    connection = OpenOne(endpoint, /*use_tcp=*/true, client_name, deadline);
  }
  if (!connection.ok()) return connection.status();
  std::unique_ptr<AgentClient> client(new AgentClient());
  client->socket_ = connection->socket;
  client->buffer_ = std::move(connection->buffer);
  client->agent_name_ = std::move(connection->agent_name);
  client->endpoint_description_ = std::move(connection->description);
  client->timeout_ms_ = timeout_ms;
  client->healthy_ = true;
  return client;
}

AgentClient::~AgentClient() { transport::Close(socket_); }

bool AgentClient::healthy() const {
  std::lock_guard lock(mu_);
  return healthy_;
}

void AgentClient::FailLocked() {
  transport::Close(socket_);
  socket_ = transport::kNoHandle;
  buffer_.clear();
  healthy_ = false;
}

Result<json> AgentClient::RoundTrip(const json& request) {
  std::lock_guard lock(mu_);
  return RoundTripLocked(request);
}

Result<json> AgentClient::RoundTripLocked(const json& request) {
  if (!healthy_) {
    return UnavailableError("connection to signum-agent at " + endpoint_description_ +
                            " was lost; reconnect");
  }
  if (LooksClosed(socket_, buffer_)) {
    FailLocked();
    return UnavailableError("signum-agent at " + endpoint_description_ +
                            " closed the connection; reconnect");
  }
  const auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms_);
  Status sent = transport::SendAll(socket_, agent_protocol::EncodeFrame(request), deadline);
  if (!sent.ok()) {
    const std::optional<Status> error = PendingAgentError(socket_, buffer_);
    FailLocked();
    return error.value_or(sent).WithContext("signum-agent at " + endpoint_description_);
  }
  auto reply = ReadFrame(socket_, buffer_, deadline);
  if (!reply.ok()) {
    // After a timeout a late reply would answer the next request: the stream is unusable.
    FailLocked();
    return reply.status().WithContext("signum-agent at " + endpoint_description_);
  }
  // The protocol's table says which reply each request gets (or an error, left to the caller's
  // parser). Anything else means the two ends disagree about the conversation: the stream cannot
  // be trusted for the next request either.
  auto request_type = agent_protocol::TypeOf(request);
  auto reply_type = agent_protocol::TypeOf(*reply);
  if (request_type.ok() && (!reply_type.ok() || *reply_type != agent_protocol::MessageType::kError)) {
    Status expected = agent_protocol::CheckReply(*request_type, *reply);
    if (!expected.ok()) {
      FailLocked();
      return expected.WithContext("signum-agent at " + endpoint_description_);
    }
  }
  return reply;
}

Result<wire::CertificateListResponse> AgentClient::ListCertificates(bool refresh) {
  SIGNUM_ASSIGN_OR_RETURN(json reply,
                          RoundTrip(agent_protocol::ToJson(agent_protocol::ListRequest{refresh})));
  return agent_protocol::ParseCertificates(reply);
}

Result<Bytes> AgentClient::Sign(const agent_protocol::SignRequest& request) {
  SIGNUM_ASSIGN_OR_RETURN(json reply, RoundTrip(agent_protocol::SignRequestJson(request)));
  return agent_protocol::ParseSignature(reply);
}

Result<agent_protocol::StatusReport> AgentClient::GetStatus() {
  SIGNUM_ASSIGN_OR_RETURN(json reply, RoundTrip(agent_protocol::StatusRequestJson()));
  return agent_protocol::ParseStatusReport(reply);
}

}  // namespace signum::agent

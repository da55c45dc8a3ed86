// AgentClient over POSIX sockets. Every socket is non-blocking and every wait is a poll() with the
// remaining time, so no call can hang longer than the timeout the caller chose (a provider must
// never freeze its host application because the agent stopped answering).
#include "agent_client.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <nlohmann/json.hpp>
#include <optional>

#include "signum/core/files.h"

namespace signum::agent {
namespace {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

constexpr size_t kSecretHexDigits = 64;  // 32 random bytes, hex (what signum-agent writes)

std::string Errno(int err) { return std::strerror(err); }

int RemainingMs(Clock::time_point deadline) {
  const auto left =
      std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
  return left <= 0 ? 0 : static_cast<int>(left);
}

// Waits for `events` on fd until the deadline; EINTR restarts with the remaining time.
Status WaitFor(int fd, short events, Clock::time_point deadline, const std::string& what) {
  for (;;) {
    pollfd p{fd, events, 0};
    const int n = ::poll(&p, 1, RemainingMs(deadline));
    if (n > 0) return Status::Ok();
    if (n == 0) return DeadlineExceededError(what + ": signum-agent did not answer in time");
    if (errno != EINTR) return UnavailableError(what + ": poll failed: " + Errno(errno));
  }
}

// Finishes a non-blocking connect() that returned EINPROGRESS.
Status CompleteConnect(int fd, Clock::time_point deadline, const std::string& where) {
  Status waited = WaitFor(fd, POLLOUT, deadline, "connecting to " + where);
  if (!waited.ok()) {
    return waited.code() == ErrorCode::kDeadlineExceeded
               ? UnavailableError("signum-agent at " + where +
                                  " did not accept the connection in time")
               : waited;
  }
  int err = 0;
  socklen_t len = sizeof err;
  if (::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) err = errno;
  if (err != 0) {
    return UnavailableError("signum-agent at " + where + " is not reachable: " + Errno(err) +
                            " (is signum-agent running?)");
  }
  return Status::Ok();
}

Result<int> ConnectUnix(const std::string& path, Clock::time_point deadline) {
  const std::string where = "unix:" + path;
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof addr.sun_path) {
    return InvalidArgumentError("agent socket path '" + path + "' is empty or longer than " +
                                std::to_string(sizeof addr.sun_path - 1) + " bytes");
  }
  std::memcpy(addr.sun_path, path.data(), path.size());
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return UnavailableError("socket(AF_UNIX) failed: " + Errno(errno));
  if (::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0) {
    const int err = errno;
    if (err == EINPROGRESS || err == EINTR) {
      Status s = CompleteConnect(fd, deadline, where);
      if (!s.ok()) {
        ::close(fd);
        return s;
      }
      return fd;
    }
    ::close(fd);
    // EAGAIN on a Unix socket: the agent's accept backlog is full.
    return UnavailableError(
        "signum-agent at " + where + " is not reachable: " + Errno(err) +
        (err == ENOENT || err == ECONNREFUSED ? " (is signum-agent running?)" : ""));
  }
  return fd;
}

Result<int> ConnectTcp(const std::string& host, uint16_t port, Clock::time_point deadline) {
  const std::string where = "tcp:" + host + ":" + std::to_string(port);
  sockaddr_storage storage{};
  socklen_t len = 0;
  int family = AF_INET;
  if (host.find(':') != std::string::npos) {
    auto* a6 = reinterpret_cast<sockaddr_in6*>(&storage);
    a6->sin6_family = family = AF_INET6;
    a6->sin6_port = htons(port);
    if (::inet_pton(AF_INET6, host.c_str(), &a6->sin6_addr) != 1) {
      return InvalidArgumentError("invalid agent address " + host);
    }
    len = sizeof *a6;
  } else {
    auto* a4 = reinterpret_cast<sockaddr_in*>(&storage);
    a4->sin_family = AF_INET;
    a4->sin_port = htons(port);
    if (::inet_pton(AF_INET, host.c_str(), &a4->sin_addr) != 1) {
      return InvalidArgumentError("invalid agent address " + host);
    }
    len = sizeof *a4;
  }
  const int fd = ::socket(family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return UnavailableError("socket(AF_INET) failed: " + Errno(errno));
  const int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);  // small request/reply frames
  if (::connect(fd, reinterpret_cast<const sockaddr*>(&storage), len) != 0) {
    const int err = errno;
    if (err != EINPROGRESS && err != EINTR) {
      ::close(fd);
      return UnavailableError("signum-agent at " + where + " is not reachable: " + Errno(err) +
                              " (is signum-agent running?)");
    }
    Status s = CompleteConnect(fd, deadline, where);
    if (!s.ok()) {
      ::close(fd);
      return s;
    }
  }
  return fd;
}

Status SendAll(int fd, std::string_view data, Clock::time_point deadline) {
  size_t sent = 0;
  while (sent < data.size()) {
    // MSG_NOSIGNAL: a closed agent must give EPIPE, not kill the host application with SIGPIPE.
    const ssize_t n = ::send(fd, data.data() + sent, data.size() - sent, MSG_NOSIGNAL);
    if (n > 0) {
      sent += static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      SIGNUM_RETURN_IF_ERROR(WaitFor(fd, POLLOUT, deadline, "sending to signum-agent"));
      continue;
    }
    return UnavailableError("sending to signum-agent failed: " + Errno(errno));
  }
  return Status::Ok();
}

// Reads until one whole frame is in `buffer`; bytes after it stay there for the next call.
Result<json> ReadFrame(int fd, std::string& buffer, Clock::time_point deadline) {
  for (;;) {
    auto decoded = agent_protocol::DecodeFrame(buffer);
    if (!decoded.ok()) {
      return InternalError("malformed reply from signum-agent: " + decoded.status().message());
    }
    if (decoded->has_value()) return std::move(**decoded);
    char chunk[16384];
    const ssize_t n = ::recv(fd, chunk, sizeof chunk, 0);
    if (n > 0) {
      buffer.append(chunk, static_cast<size_t>(n));
      continue;
    }
    if (n == 0) return UnavailableError("signum-agent closed the connection");
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      SIGNUM_RETURN_IF_ERROR(WaitFor(fd, POLLIN, deadline, "waiting for signum-agent"));
      continue;
    }
    return UnavailableError("reading from signum-agent failed: " + Errno(errno));
  }
}

// After a failed send: the agent may have answered with an error and closed before reading our
// request (a rejected peer uid, a bad secret). That error says more than "broken pipe".
std::optional<Status> PendingAgentError(int fd, std::string& buffer) {
  auto reply = ReadFrame(fd, buffer, Clock::now() + std::chrono::milliseconds(200));
  if (!reply.ok()) return std::nullopt;
  Status error = agent_protocol::ErrorFromReply(*reply);
  if (error.ok()) return std::nullopt;
  return error;
}

// A kept connection on which the agent sent something unsolicited or which it closed (agent
// restarted, or it closed us after an error) is dead: find out before writing a request into it.
bool LooksClosed(int fd, const std::string& buffer) {
  if (!buffer.empty()) return true;
  pollfd p{fd, POLLIN, 0};
  return ::poll(&p, 1, 0) != 0;
}

bool IsLoopbackHost(const std::string& host) {
  if (host == "::1") return true;
  in_addr a{};
  if (::inet_pton(AF_INET, host.c_str(), &a) != 1) return false;
  return (ntohl(a.s_addr) >> 24) == 127;
}

struct Connection {
  int fd = -1;
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
    SIGNUM_ASSIGN_OR_RETURN(c.fd, ConnectTcp(endpoint.tcp_host, endpoint.tcp_port, deadline));
  } else {
    c.description = "unix:" + endpoint.unix_socket;
    SIGNUM_ASSIGN_OR_RETURN(c.fd, ConnectUnix(endpoint.unix_socket, deadline));
  }
  auto fail = [&](const Status& s) {
    ::close(c.fd);
    return s.WithContext("signum-agent at " + c.description);
  };
  agent_protocol::Hello hello;
  hello.peer = client_name;
  if (use_tcp) hello.secret = endpoint.secret;
  Status sent =
      SendAll(c.fd, agent_protocol::EncodeFrame(agent_protocol::ToJson(hello, false)), deadline);
  if (!sent.ok()) {
    if (auto error = PendingAgentError(c.fd, c.buffer)) return fail(*error);
    return fail(sent);
  }
  auto reply = ReadFrame(c.fd, c.buffer, deadline);
  if (!reply.ok()) return fail(reply.status());
  auto agent_hello = agent_protocol::ParseHello(*reply);
  if (!agent_hello.ok()) return fail(agent_hello.status());
  if (agent_hello->protocol < 1 || agent_hello->protocol > agent_protocol::kProtocolVersion) {
    return fail(FailedPreconditionError(
        "agent chose protocol version " + std::to_string(agent_hello->protocol) +
        ", this client speaks 1.." + std::to_string(agent_protocol::kProtocolVersion)));
  }
  c.agent_name = agent_hello->peer;
  return c;
}

}  // namespace

std::string AgentEndpoint::Describe() const {
  if (!unix_socket.empty()) return "unix:" + unix_socket;
  const bool v6 = tcp_host.find(':') != std::string::npos;
  return "tcp:" + (v6 ? "[" + tcp_host + "]" : tcp_host) + ":" + std::to_string(tcp_port);
}

std::string DefaultAgentSocketPath() {
  const char* runtime = std::getenv("XDG_RUNTIME_DIR");
  if (runtime != nullptr && runtime[0] == '/') return std::string(runtime) + "/signum/agent.sock";
  return "/tmp/signum-" + std::to_string(::geteuid()) + "/agent.sock";
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
  if (!IsLoopbackHost(h)) {
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
  if (socket != nullptr && socket[0] != '\0') endpoint.unix_socket = socket;
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
    endpoint.unix_socket = DefaultAgentSocketPath();
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
  client->fd_ = connection->fd;
  client->buffer_ = std::move(connection->buffer);
  client->agent_name_ = std::move(connection->agent_name);
  client->endpoint_description_ = std::move(connection->description);
  client->timeout_ms_ = timeout_ms;
  client->healthy_ = true;
  return client;
}

AgentClient::~AgentClient() {
  if (fd_ >= 0) ::close(fd_);
}

bool AgentClient::healthy() const {
  std::lock_guard lock(mu_);
  return healthy_;
}

void AgentClient::FailLocked() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
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
  if (LooksClosed(fd_, buffer_)) {
    FailLocked();
    return UnavailableError("signum-agent at " + endpoint_description_ +
                            " closed the connection; reconnect");
  }
  const auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms_);
  Status sent = SendAll(fd_, agent_protocol::EncodeFrame(request), deadline);
  if (!sent.ok()) {
    const std::optional<Status> error = PendingAgentError(fd_, buffer_);
    FailLocked();
    return error.value_or(sent).WithContext("signum-agent at " + endpoint_description_);
  }
  auto reply = ReadFrame(fd_, buffer_, deadline);
  if (!reply.ok()) {
    // After a timeout a late reply would answer the next request: the stream is unusable.
    FailLocked();
    return reply.status().WithContext("signum-agent at " + endpoint_description_);
  }
  return reply;
}

Result<wire::CertificateListResponse> AgentClient::ListCertificates(bool refresh) {
  SIGNUM_ASSIGN_OR_RETURN(json reply,
                          RoundTrip(agent_protocol::ToJson(agent_protocol::ListRequest{refresh})));
  return agent_protocol::ParseCertificates(reply);
}

Result<Bytes> AgentClient::Sign(const agent_protocol::SignRequest& request) {
  SIGNUM_ASSIGN_OR_RETURN(json reply, RoundTrip(agent_protocol::ToJson(request)));
  return agent_protocol::ParseSignature(reply);
}

Result<agent_protocol::StatusReport> AgentClient::GetStatus() {
  SIGNUM_ASSIGN_OR_RETURN(json reply, RoundTrip(agent_protocol::StatusRequestJson()));
  return agent_protocol::ParseStatusReport(reply);
}

}  // namespace signum::agent

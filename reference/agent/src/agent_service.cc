#include "agent_service.h"

#include <chrono>
#include <cstdio>
#include <cstring>
#include <nlohmann/json.hpp>
#include <thread>

#include "agent_platform.h"
#include "signum/core/agent_protocol.h"
#include "signum/core/encoding.h"
#include "signum/core/files.h"
#include "signum/core/log.h"
#include "signum/core/system_random.h"
#include "unix_endpoint.h"

namespace signum::agent {
namespace {

using nlohmann::json;
namespace proto = signum::agent_protocol;
using Clock = std::chrono::steady_clock;

constexpr const char* kLog = "agent";
// A peer must finish the handshake (hello, and on TCP the auth) this soon after connecting;
// afterwards idle connections may stay open indefinitely (providers keep theirs). Short, because
// until then a TCP connection is anyone's and holds one of the few unauthenticated slots.
constexpr int kHelloTimeoutMs = 3000;
// The largest frame accepted before the hello has been checked.
constexpr uint32_t kMaxHelloBytes = 64 * 1024;
// How long a rejected peer gets to read our error frame before the socket is closed.
constexpr int kLingerMs = 1000;
// A peer that stops reading its replies must not pin a thread forever.
constexpr int kSendTimeoutSeconds = 30;
// How long Stop() waits for connection threads (e.g. a sign in flight) before giving up on them.
constexpr auto kDrainTimeout = std::chrono::seconds(3);

bool SendFrame(net::Socket fd, const json& message) {
  const std::string frame = proto::EncodeFrame(message);
  size_t sent = 0;
  while (sent < frame.size()) {
    const long n = net::Send(fd, frame.data() + sent, frame.size() - sent);
    if (n > 0) {
      sent += static_cast<size_t>(n);
    } else if (n < 0 && net::LastErrorKind() == net::ErrorKind::kInterrupted) {
      continue;
    } else {
      return false;  // peer gone or SO_SNDTIMEO expired
    }
  }
  return true;
}

// Sends a last error frame and closes the conversation (protocol errors, rejected peers).
void RejectAndClose(net::Socket fd, const Status& status, bool linger = true) {
  SendFrame(fd, proto::ErrorJson(status));
  net::ShutdownWrite(fd);
  if (!linger) return;
  // Read (and drop) what the peer still sends until it closes, briefly: closing a TCP socket with
  // unread input sends a RST, which can destroy our error frame before the peer has read it, and
  // a peer that is still writing its hello should get the error, not EPIPE.
  const auto deadline = Clock::now() + std::chrono::milliseconds(kLingerMs);
  char sink[4096];
  for (size_t drained = 0; drained < kMaxHelloBytes;) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    if (left <= 0 || net::WaitReadable(fd, static_cast<int>(left)) <= 0) return;
    const long n = net::Receive(fd, sink, sizeof sink);
    if (n <= 0) return;
    drained += static_cast<size_t>(n);
  }
}

// Client-supplied names go into the log: cut them short and drop control characters so a peer
// cannot forge log lines.
std::string Printable(const std::string& s, size_t max = 64) {
  std::string out;
  for (char c : s.substr(0, max))
    out += static_cast<unsigned char>(c) < 0x20 || c == 0x7f ? '?' : c;
  return out;
}

std::string PeerName(Transport transport, const std::optional<PeerCredentials>& peer,
                     const ProcessInfo& process) {
  if (transport == Transport::kTcp || !peer) return "tcp peer";
  return (process.executable.empty() ? std::string("?") : Printable(process.executable)) + "[" +
         std::to_string(peer->pid) + "]";
}

}  // namespace

Result<std::unique_ptr<AgentService>> AgentService::Create(const AgentConfig& config,
                                                           ServerClient* server) {
  std::unique_ptr<AgentService> service(new AgentService(config, server));
  SIGNUM_RETURN_IF_ERROR(service->wake_.Open());
  if (config.unix_socket_enabled) SIGNUM_RETURN_IF_ERROR(service->PrepareUnixSocket());
  if (config.tcp_enabled) SIGNUM_RETURN_IF_ERROR(service->PrepareTcp());
  return service;
}

AgentService::~AgentService() {
  if (unix_fd_ != net::kNoSocket) net::Close(unix_fd_);
  if (tcp_fd_ != net::kNoSocket) net::Close(tcp_fd_);
  RemoveFiles();
}

Status AgentService::PrepareUnixSocket() {
  SIGNUM_ASSIGN_OR_RETURN(const UnixEndpoint endpoint, OpenUnixEndpoint(config_.socket_path));
  unix_fd_ = endpoint.socket;
  socket_inode_ = endpoint.inode;
  SIGNUM_LOG_INFO(kLog, "serving providers on unix:" << config_.socket_path);
  return Status::Ok();
}

Status AgentService::PrepareTcp() {
  SIGNUM_ASSIGN_OR_RETURN(tcp_fd_, net::ListenTcp(config_.tcp_host, config_.tcp_port, &tcp_port_));

  // A fresh secret per start: a provider that still holds an old one cannot verify our proof
  // (kPermissionDenied) and rereads the file.
  SIGNUM_ASSIGN_OR_RETURN(const Bytes secret, SystemRandomBytes(32));
  secret_ = HexEncode(secret);
  SIGNUM_RETURN_IF_ERROR(MakePrivateDirectory(DirName(config_.secret_file)));
  SIGNUM_RETURN_IF_ERROR(WriteFileAtomically(config_.secret_file, secret_ + "\n", 0600)
                             .WithContext("writing the TCP secret"));
  SIGNUM_RETURN_IF_ERROR(MakePrivateDirectory(DirName(config_.port_file)));
  SIGNUM_RETURN_IF_ERROR(
      WriteFileAtomically(config_.port_file, std::to_string(tcp_port_) + "\n", 0644)
          .WithContext("writing the TCP port file"));
  port_file_written_ = true;
  SIGNUM_LOG_INFO(kLog, "serving providers on tcp:" << config_.tcp_host << ":" << tcp_port_
                                                    << " (secret in " << config_.secret_file
                                                    << ", port in " << config_.port_file << ")");
  return Status::Ok();
}

void AgentService::RemoveFiles() {
  if (socket_inode_ != 0) {
    RemoveUnixEndpoint(config_.socket_path, socket_inode_);
    socket_inode_ = 0;
  }
  if (port_file_written_) {
    std::remove(config_.port_file.c_str());
    port_file_written_ = false;
  }
}

void AgentService::Stop() { wake_.Signal(); }

bool AgentService::Run() {
  for (;;) {
    const net::Socket sockets[3] = {unix_fd_, wake_.readable(), tcp_fd_};
    bool ready[3] = {};
    const int n = net::WaitAnyReadable(sockets, ready, 3);
    if (n < 0) {
      if (net::LastErrorKind() == net::ErrorKind::kInterrupted) continue;
      SIGNUM_LOG_ERROR(kLog, "waiting for connections failed: " << net::LastError());
      break;
    }
    if (ready[1]) {  // Stop()
      // Reading the byte orders Stop()'s last use of this object (on the signal thread) before
      // the caller destroys it once Run() returns; poll() alone does not (ThreadSanitizer).
      wake_.Drain();
      break;
    }
    if (ready[0]) AcceptFrom(unix_fd_, Transport::kUnixSocket);
    if (ready[2]) AcceptFrom(tcp_fd_, Transport::kTcp);
  }

  SIGNUM_LOG_INFO(kLog, "stopping: closing endpoints");
  if (unix_fd_ != net::kNoSocket) net::Close(unix_fd_);
  unix_fd_ = net::kNoSocket;
  if (tcp_fd_ != net::kNoSocket) net::Close(tcp_fd_);
  tcp_fd_ = net::kNoSocket;
  RemoveFiles();
  std::unique_lock lock(mu_);
  stopping_ = true;
  // Wakes threads blocked in recv(); each closes its own fd, so no fd is reused under us.
  for (net::Socket fd : connections_) net::ShutdownBoth(fd);
  const bool drained = idle_cv_.wait_for(lock, kDrainTimeout, [&] { return connections_.empty(); });
  if (!drained) {
    SIGNUM_LOG_WARN(kLog, connections_.size() << " connection(s) still busy at shutdown");
  }
  return drained;
}

void AgentService::AcceptFrom(net::Socket listener, Transport transport) {
  for (;;) {
    const net::Socket fd = net::Accept(listener);
    if (fd == net::kNoSocket) {
      const net::ErrorKind error = net::LastErrorKind();
      if (error == net::ErrorKind::kInterrupted) continue;
      if (error != net::ErrorKind::kWouldBlock) {
        SIGNUM_LOG_WARN(kLog, "accept failed: " << net::LastError());
        // EMFILE and friends: back off a little instead of spinning on a readable listener.
        if (error == net::ErrorKind::kOutOfResources) {
          std::this_thread::sleep_for(std::chrono::milliseconds(100));
        }
      }
      return;
    }
    net::SetSendTimeout(fd, kSendTimeoutSeconds);
    if (transport == Transport::kTcp) {
      net::SetNoDelay(fd);
      // Another user's process on the loopback port is never this agent's client (the secret
      // file is the owner's alone): closed before it holds a thread or a slot.
      if (Status foreign = CheckTcpPeerIsThisUser(fd); !foreign.ok()) {
        if (foreign_tcp_refused_++ % 100 == 0) {
          SIGNUM_LOG_WARN(kLog, foreign.message() << " (" << foreign_tcp_refused_
                                                  << " such so far)");
        }
        net::Close(fd);
        continue;
      }
    }
    {
      std::lock_guard lock(mu_);
      // Each kind of connection has a budget of its own (AgentConfig): what fills one, e.g. a
      // flood of TCP connections that never finish the handshake, cannot starve the others.
      std::set<net::Socket>& admitted =
          transport == Transport::kUnixSocket ? unix_connections_ : tcp_unauthenticated_;
      const size_t limit = transport == Transport::kUnixSocket
                               ? config_.max_connections
                               : config_.max_unauthenticated_connections;
      if (stopping_ || admitted.size() >= limit) {
        const std::string what = transport == Transport::kUnixSocket
                                     ? "unix-socket connections"
                                     : "tcp connections still in their handshake";
        if (!stopping_ && limit_warnings_++ % 100 == 0) {
          SIGNUM_LOG_WARN(kLog, "limit of " << limit << " " << what << " reached");
        }
        // No lingering here: this is the accept loop.
        RejectAndClose(fd,
                       ResourceExhaustedError("signum-agent has too many " + what + " (" +
                                              std::to_string(limit) + ")"),
                       /*linger=*/false);
        net::Close(fd);
        continue;
      }
      admitted.insert(fd);
      connections_.insert(fd);
    }
    try {
      std::thread([this, fd, transport] { Serve(fd, transport); }).detach();
    } catch (const std::system_error& e) {
      SIGNUM_LOG_ERROR(kLog, "cannot start a connection thread: " << e.what());
      std::lock_guard lock(mu_);
      connections_.erase(fd);
      RejectAndClose(fd, ResourceExhaustedError("signum-agent cannot start a thread"),
                     /*linger=*/false);
      net::Close(fd);
      idle_cv_.notify_all();
    }
  }
}

void AgentService::Serve(net::Socket fd, Transport transport) {
  // Nothing may escape a detached thread: an exception here would terminate the agent.
  try {
    ServeConnection(fd, transport);
  } catch (const std::exception& e) {
    SIGNUM_LOG_ERROR(kLog, "connection handler failed: " << e.what());
  } catch (...) {
    SIGNUM_LOG_ERROR(kLog, "connection handler failed");
  }
  std::lock_guard lock(mu_);
  connections_.erase(fd);
  unix_connections_.erase(fd);
  tcp_unauthenticated_.erase(fd);
  tcp_authenticated_.erase(fd);
  net::Close(fd);
  idle_cv_.notify_all();
}

bool AgentService::AdmitAuthenticatedTcp(net::Socket fd) {
  std::lock_guard lock(mu_);
  tcp_unauthenticated_.erase(fd);
  if (tcp_authenticated_.size() >= config_.max_connections) return false;
  tcp_authenticated_.insert(fd);
  return true;
}

void AgentService::ServeConnection(net::Socket fd, Transport transport) {
  std::optional<PeerCredentials> peer;
  ProcessInfo process;
  if (transport == Transport::kUnixSocket) {
    auto identified = IdentifyUnixPeer(fd);
    if (!identified.ok()) {
      if (identified.status().code() == ErrorCode::kPermissionDenied)
        SIGNUM_LOG_WARN(kLog, "rejected: " << identified.status().message());
      RejectAndClose(fd, identified.status());
      return;
    }
    peer = identified->credentials;
    process = std::move(identified->process);
  }
  const std::string who = PeerName(transport, peer, process);
  SIGNUM_LOG_DEBUG(kLog, "connection from " << who);

  std::string buffer;
  bool greeted = false;
  // Unix socket: once greeted (the kernel vouched for the peer's uid). TCP: once the client has
  // proved that it knows the secret (agent_protocol.h's handshake); nothing is served before.
  bool authenticated = false;
  std::string client_nonce;
  std::string agent_nonce;
  // The whole handshake (hello, and on TCP the auth) must be done by then.
  const auto hello_deadline = Clock::now() + std::chrono::milliseconds(kHelloTimeoutMs);
  for (;;) {
    // Before the handshake (which proves a TCP peer knows the secret) nobody gets to make us
    // buffer more than a hello's worth of bytes.
    if (!authenticated && buffer.size() >= 4) {
      const uint32_t announced = (uint32_t{static_cast<uint8_t>(buffer[0])} << 24) |
                                 (uint32_t{static_cast<uint8_t>(buffer[1])} << 16) |
                                 (uint32_t{static_cast<uint8_t>(buffer[2])} << 8) |
                                 uint32_t{static_cast<uint8_t>(buffer[3])};
      if (announced > kMaxHelloBytes) {
        RejectAndClose(fd, InvalidArgumentError("a hello of " + std::to_string(announced) +
                                                " bytes is too large"));
        return;
      }
    }
    auto decoded = proto::DecodeFrame(buffer);
    if (!decoded.ok()) {
      SIGNUM_LOG_WARN(kLog, who << ": protocol error: " << decoded.status().message());
      RejectAndClose(fd, decoded.status());
      return;
    }
    if (!decoded->has_value()) {
      if (!authenticated) {
        const auto left =
            std::chrono::duration_cast<std::chrono::milliseconds>(hello_deadline - Clock::now())
                .count();
        const int ready = left > 0 ? net::WaitReadable(fd, static_cast<int>(left)) : 0;
        if (ready == 0) {
          RejectAndClose(fd, DeadlineExceededError("no hello within " +
                                                   std::to_string(kHelloTimeoutMs) + " ms"));
          return;
        }
        if (ready < 0) {
          if (net::LastErrorKind() == net::ErrorKind::kInterrupted) continue;
          return;
        }
      }
      char chunk[16384];
      const long n = net::Receive(fd, chunk, sizeof chunk);
      if (n == 0) return;  // the provider closed (or Stop() shut the socket down)
      if (n < 0) {
        const net::ErrorKind error = net::LastErrorKind();
        if (error == net::ErrorKind::kInterrupted || error == net::ErrorKind::kWouldBlock) continue;
        return;
      }
      buffer.append(chunk, static_cast<size_t>(n));
      // A frame header announcing more than the limit is caught by DecodeFrame before the body
      // arrives, so buffer never grows beyond one maximal frame plus one chunk.
      continue;
    }
    const json message = std::move(**decoded);

    if (!greeted) {
      auto type = proto::TypeOf(message);
      if (!type.ok() || *type != proto::MessageType::kHello) {
        RejectAndClose(fd, FailedPreconditionError("the first message must be a hello"));
        return;
      }
      auto hello = proto::ParseHello(message);
      if (!hello.ok()) {
        RejectAndClose(fd, hello.status());
        return;
      }
      if (hello->protocol < 1) {
        RejectAndClose(
            fd, FailedPreconditionError("protocol version " + std::to_string(hello->protocol) +
                                        " is not supported (this agent speaks 1.." +
                                        std::to_string(proto::kProtocolVersion) + ")"));
        return;
      }
      proto::Hello reply;
      // Speak the older of the two versions (the p11-kit handshake rule).
      reply.protocol = std::min(hello->protocol, proto::kProtocolVersion);
      reply.peer = kAgentName;
      if (transport == Transport::kTcp) {
        // Protocol 1 sent the secret itself, to whoever held the port: refused, so that providers
        // get updated rather than keep handing the secret to any listener.
        if (!hello->legacy_secret.empty() || hello->protocol < proto::kMinTcpProtocolVersion) {
          SIGNUM_LOG_WARN(kLog, "tcp peer '" << Printable(hello->peer) << "' rejected: protocol "
                                             << hello->protocol << " hello");
          RejectAndClose(
              fd, FailedPreconditionError(
                      "protocol " + std::to_string(hello->protocol) +
                      " hellos (with the agent's secret in plaintext) are refused on TCP: this "
                      "agent needs protocol " +
                      std::to_string(proto::kMinTcpProtocolVersion) +
                      "'s challenge-response; update the provider"));
          return;
        }
        if (hello->nonce.empty()) {
          RejectAndClose(fd, InvalidArgumentError("a TCP hello must carry the client's nonce"));
          return;
        }
        auto nonce = proto::NewNonce();
        if (!nonce.ok()) {
          SIGNUM_LOG_ERROR(kLog, "no nonce for a tcp peer: " << nonce.status().ToString());
          RejectAndClose(fd, nonce.status());
          return;
        }
        auto proof = proto::HandshakeProof(proto::ProofRole::kAgent, secret_, hello->nonce, *nonce);
        if (!proof.ok()) {
          RejectAndClose(fd, proof.status());
          return;
        }
        client_nonce = hello->nonce;
        agent_nonce = *nonce;
        reply.nonce = agent_nonce;
        reply.proof = *proof;
      }
      if (!SendFrame(fd, proto::ToJson(reply, /*from_agent=*/true))) return;
      greeted = true;
      authenticated = transport != Transport::kTcp;
      SIGNUM_LOG_DEBUG(kLog, who << ": hello from " << Printable(hello->peer));
      continue;
    }

    if (!authenticated) {
      auto type = proto::TypeOf(message);
      if (!type.ok() || *type != proto::MessageType::kAuth) {
        RejectAndClose(
            fd, FailedPreconditionError("on TCP the message after the hello must be an auth"));
        return;
      }
      auto auth = proto::ParseAuthRequest(message);
      if (!auth.ok()) {
        RejectAndClose(fd, auth.status());
        return;
      }
      if (!proto::ProofMatches(proto::ProofRole::kClient, secret_, client_nonce, agent_nonce,
                               auth->proof)) {
        SIGNUM_LOG_WARN(kLog, "tcp peer rejected: wrong proof of the secret");
        RejectAndClose(
            fd, UnauthenticatedError("wrong proof of the agent's secret (read it from the agent's "
                                     "secret file; the agent writes a new one at every start)"));
        return;
      }
      if (!AdmitAuthenticatedTcp(fd)) {
        RejectAndClose(fd, ResourceExhaustedError("signum-agent has too many tcp connections (" +
                                                  std::to_string(config_.max_connections) + ")"));
        return;
      }
      if (!SendFrame(fd, proto::AuthenticatedJson())) return;
      authenticated = true;
      continue;
    }

    bool close = false;
    json reply = Handle(message, transport, peer, process, &close);
    if (!SendFrame(fd, reply)) return;
    if (close) {
      net::ShutdownWrite(fd);
      return;
    }
  }
}

json AgentService::Handle(const json& request, Transport transport,
                          const std::optional<PeerCredentials>& peer, const ProcessInfo& process,
                          bool* close) {
  const std::string who = PeerName(transport, peer, process);
  auto type = proto::TypeOf(request);
  if (!type.ok()) {
    *close = true;
    return proto::ErrorJson(type.status());
  }
  // Only what the protocol's table lists as a session request is served here; the handshake's
  // messages and the agent's own replies are refused the same way as an unknown type.
  if (!proto::IsSessionRequest(*type)) {
    *close = true;
    return proto::ErrorJson(InvalidArgumentError("message type '" +
                                                 std::string(proto::SpecOf(*type).name) +
                                                 "' is not a request the agent accepts here"));
  }
  switch (*type) {
    case proto::MessageType::kList: {
      auto parsed = proto::ParseListRequest(request);
      if (!parsed.ok()) {
        *close = true;
        return proto::ErrorJson(parsed.status());
      }
      auto list = server_->ListCertificates(parsed->refresh);
      if (!list.ok()) {
        SIGNUM_LOG_WARN(kLog, who << ": list: " << list.status().ToString());
        return proto::ErrorJson(list.status());
      }
      SIGNUM_LOG_DEBUG(kLog, who << ": list -> " << list->certificates.size() << " certificate(s)");
      return proto::ToJson(*list);
    }
    case proto::MessageType::kSign: {
      auto parsed = proto::ParseSignRequest(request);
      if (!parsed.ok()) {
        *close = true;
        return proto::ErrorJson(parsed.status());
      }
      wire::SignRequest forward = std::move(parsed).value();
      forward.context = BuildCallerContext(transport, peer, process, forward.context, hostname_,
                                           config_.agent_id);
      const auto start = Clock::now();
      auto signature = server_->Sign(forward);
      const auto ms =
          std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start).count();
      if (!signature.ok()) {
        SIGNUM_LOG_WARN(kLog, who << ": sign " << forward.certificate_id << " "
                                  << SchemeName(forward.scheme) << " " << HashName(forward.hash)
                                  << " failed after " << ms
                                  << " ms: " << signature.status().ToString());
        return proto::ErrorJson(signature.status());
      }
      SIGNUM_LOG_INFO(kLog, who << ": signed with " << forward.certificate_id << " "
                                << SchemeName(forward.scheme) << " " << HashName(forward.hash)
                                << " in " << ms << " ms");
      return proto::SignatureJson(*signature);
    }
    case proto::MessageType::kStatus: {
      proto::StatusReport report;
      report.server_url = server_->server_url();
      report.user = server_->user();
      auto health = server_->Health();
      if (!health.ok()) {
        report.server_reachable = false;
        report.message = health.status().message();
        return proto::ToJson(report);
      }
      report.server_reachable = true;
      auto list = server_->ListCertificates(false);
      if (list.ok()) {
        report.certificates = list->certificates.size();
        report.message =
            health->status == "ok" ? "ok" : "server " + health->status + ": HSM " + health->hsm;
      } else {
        report.message = list.status().ToString();
      }
      return proto::ToJson(report);
    }
    case proto::MessageType::kHello:
    case proto::MessageType::kAuth:
    case proto::MessageType::kAuthenticated:
    case proto::MessageType::kCertificates:
    case proto::MessageType::kSignature:
    case proto::MessageType::kError:
      break;
  }
  *close = true;
  return proto::ErrorJson(InvalidArgumentError("message type '" +
                                               request.value("type", std::string()) +
                                               "' is not a request the agent accepts here"));
}

}  // namespace signum::agent

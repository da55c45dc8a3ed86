#include "agent_service.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <nlohmann/json.hpp>
#include <thread>

#include "signum/core/agent_protocol.h"
#include "signum/core/crypto.h"
#include "signum/core/files.h"
#include "signum/core/log.h"
#include "signum/agent/transport.h"
#include "signum/core/posix_platform.h"

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

std::string Errno() { return std::strerror(errno); }

std::string DirName(const std::string& path) {
  const size_t slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

// mkdir -p with 0700 for every directory we create; existing directories are left as they are
// (the socket itself is 0600, which is what protects it).
Status MakeUserDirectory(const std::string& dir) {
  if (dir.empty() || dir == "/" || dir == ".") return Status::Ok();
  struct stat st {};
  if (::stat(dir.c_str(), &st) == 0) {
    if (!S_ISDIR(st.st_mode))
      return FailedPreconditionError(dir + " exists and is not a directory");
    return Status::Ok();
  }
  SIGNUM_RETURN_IF_ERROR(MakeUserDirectory(DirName(dir)));
  if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) {
    return FailedPreconditionError("cannot create directory " + dir + ": " + Errno());
  }
  return Status::Ok();
}

bool SendFrame(int fd, const json& message) {
  const std::string frame = proto::EncodeFrame(message);
  size_t sent = 0;
  while (sent < frame.size()) {
    const ssize_t n = ::send(fd, frame.data() + sent, frame.size() - sent, posix::kSendNoSignal);
    if (n > 0) {
      sent += static_cast<size_t>(n);
    } else if (n < 0 && errno == EINTR) {
      continue;
    } else {
      return false;  // peer gone or SO_SNDTIMEO expired
    }
  }
  return true;
}

// Sends a last error frame and closes the conversation (protocol errors, rejected peers).
void RejectAndClose(int fd, const Status& status, bool linger = true) {
  SendFrame(fd, proto::ErrorJson(status));
  ::shutdown(fd, SHUT_WR);
  if (!linger) return;
  // Read (and drop) what the peer still sends until it closes, briefly: closing a TCP socket with
  // unread input sends a RST, which can destroy our error frame before the peer has read it, and
  // a peer that is still writing its hello should get the error, not EPIPE.
  const auto deadline = Clock::now() + std::chrono::milliseconds(kLingerMs);
  char sink[4096];
  for (size_t drained = 0; drained < kMaxHelloBytes;) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    pollfd p{fd, POLLIN, 0};
    if (left <= 0 || ::poll(&p, 1, static_cast<int>(left)) <= 0) return;
    const ssize_t n = ::recv(fd, sink, sizeof sink, 0);
    if (n <= 0) return;
    drained += static_cast<size_t>(n);
  }
}

// What to do with an existing socket file at start. Only ECONNREFUSED proves that nobody listens
// (the file outlived a killed agent); anything else (a live agent, a socket we may not even
// connect to) is left alone.
Result<bool> SocketIsStale(const std::string& path, const sockaddr_un& addr) {
  const int fd = posix::OpenSocket(AF_UNIX, SOCK_STREAM, /*nonblocking=*/false);
  if (fd < 0) return InternalError("socket(AF_UNIX) failed: " + Errno());
  const int rc = ::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr);
  const int err = errno;
  ::close(fd);
  if (rc == 0) return AlreadyExistsError("another signum-agent is already serving on " + path);
  if (err == ECONNREFUSED) return true;
  if (err == ENOENT) return false;  // gone meanwhile
  return FailedPreconditionError("cannot tell whether " + path + " is in use (" +
                                 std::strerror(err) + "); not replacing it");
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
  if (posix::OpenPipe(service->wake_pipe_) != 0) {
    return InternalError("cannot make the wake-up pipe: " + Errno());
  }
  if (config.unix_socket_enabled) SIGNUM_RETURN_IF_ERROR(service->PrepareUnixSocket());
  if (config.tcp_enabled) SIGNUM_RETURN_IF_ERROR(service->PrepareTcp());
  return service;
}

AgentService::~AgentService() {
  if (unix_fd_ >= 0) ::close(unix_fd_);
  if (tcp_fd_ >= 0) ::close(tcp_fd_);
  RemoveFiles();
  for (int fd : wake_pipe_) {
    if (fd >= 0) ::close(fd);
  }
}

Status AgentService::PrepareUnixSocket() {
  const std::string& path = config_.socket_path;
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof addr.sun_path) {
    return InvalidArgumentError("socket path " + path + " is longer than " +
                                std::to_string(sizeof addr.sun_path - 1) + " bytes");
  }
  std::memcpy(addr.sun_path, path.data(), path.size());
  SIGNUM_RETURN_IF_ERROR(MakeUserDirectory(DirName(path)));
  // A directory another user made first (/tmp/signum-UID when XDG_RUNTIME_DIR is unset) could
  // hold their socket, or get ours replaced: refuse to serve from it. Providers check the same.
  SIGNUM_RETURN_IF_ERROR(transport::CheckPrivateDirectory(DirName(path))
                             .WithContext("not serving on unix:" + path));

  struct stat st {};
  if (::lstat(path.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode)) {
      return FailedPreconditionError(path + " exists and is not a socket; not replacing it");
    }
    SIGNUM_ASSIGN_OR_RETURN(bool stale, SocketIsStale(path, addr));
    if (stale) {
      SIGNUM_LOG_INFO(kLog, "removing stale socket " << path);
      if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
        return FailedPreconditionError("cannot remove stale socket " + path + ": " + Errno());
      }
    }
  }

  unix_fd_ = posix::OpenSocket(AF_UNIX, SOCK_STREAM, /*nonblocking=*/true);
  if (unix_fd_ < 0) return InternalError("socket(AF_UNIX) failed: " + Errno());
  // umask 077 while binding: the socket never exists, even briefly, with wider permissions.
  const mode_t old_mask = ::umask(077);
  const int bound = ::bind(unix_fd_, reinterpret_cast<const sockaddr*>(&addr), sizeof addr);
  const int bind_errno = errno;
  ::umask(old_mask);
  if (bound != 0) {
    return FailedPreconditionError("cannot bind " + path + ": " + std::strerror(bind_errno));
  }
  if (::chmod(path.c_str(), 0600) != 0) return InternalError("chmod " + path + ": " + Errno());
  if (::lstat(path.c_str(), &st) == 0) socket_inode_ = st.st_ino;
  if (::listen(unix_fd_, 128) != 0) return InternalError("listen on " + path + ": " + Errno());
  SIGNUM_LOG_INFO(kLog, "serving providers on unix:" << path);
  return Status::Ok();
}

Status AgentService::PrepareTcp() {
  const bool v6 = config_.tcp_host.find(':') != std::string::npos;
  tcp_fd_ = posix::OpenSocket(v6 ? AF_INET6 : AF_INET, SOCK_STREAM, /*nonblocking=*/true);
  if (tcp_fd_ < 0) return InternalError("socket(AF_INET) failed: " + Errno());
  const int one = 1;
  ::setsockopt(tcp_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_storage storage{};
  socklen_t len = 0;
  if (v6) {
    auto* a = reinterpret_cast<sockaddr_in6*>(&storage);
    a->sin6_family = AF_INET6;
    a->sin6_port = htons(config_.tcp_port);
    ::inet_pton(AF_INET6, config_.tcp_host.c_str(), &a->sin6_addr);
    len = sizeof *a;
  } else {
    auto* a = reinterpret_cast<sockaddr_in*>(&storage);
    a->sin_family = AF_INET;
    a->sin_port = htons(config_.tcp_port);
    ::inet_pton(AF_INET, config_.tcp_host.c_str(), &a->sin_addr);
    len = sizeof *a;
  }
  const std::string where = config_.tcp_host + ":" + std::to_string(config_.tcp_port);
  if (::bind(tcp_fd_, reinterpret_cast<const sockaddr*>(&storage), len) != 0) {
    return FailedPreconditionError("cannot bind tcp " + where + ": " + Errno());
  }
  if (::listen(tcp_fd_, 128) != 0) return InternalError("listen on tcp " + where + ": " + Errno());
  sockaddr_storage bound{};
  socklen_t bound_len = sizeof bound;
  ::getsockname(tcp_fd_, reinterpret_cast<sockaddr*>(&bound), &bound_len);
  tcp_port_ = ntohs(v6 ? reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port
                       : reinterpret_cast<sockaddr_in*>(&bound)->sin_port);

  // A fresh secret per start: a provider that still holds an old one cannot verify our proof
  // (kPermissionDenied) and rereads the file.
  secret_ = HexEncode(RandomBytes(32));
  SIGNUM_RETURN_IF_ERROR(MakeUserDirectory(DirName(config_.secret_file)));
  SIGNUM_RETURN_IF_ERROR(WriteFileAtomically(config_.secret_file, secret_ + "\n", 0600)
                             .WithContext("writing the TCP secret"));
  SIGNUM_RETURN_IF_ERROR(MakeUserDirectory(DirName(config_.port_file)));
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
    struct stat st {};
    // Only our own socket: another agent may have replaced it meanwhile.
    if (::lstat(config_.socket_path.c_str(), &st) == 0 && st.st_ino == socket_inode_) {
      ::unlink(config_.socket_path.c_str());
    }
    socket_inode_ = 0;
  }
  if (port_file_written_) {
    ::unlink(config_.port_file.c_str());
    port_file_written_ = false;
  }
}

void AgentService::Stop() {
  const char byte = 1;
  // Async-signal-safe; a full pipe means a wake-up is already pending.
  [[maybe_unused]] ssize_t ignored = ::write(wake_pipe_[1], &byte, 1);
}

bool AgentService::Run() {
  for (;;) {
    pollfd fds[3] = {{unix_fd_, POLLIN, 0}, {wake_pipe_[0], POLLIN, 0}, {tcp_fd_, POLLIN, 0}};
    const nfds_t count = tcp_fd_ >= 0 ? 3 : 2;
    const int n = ::poll(fds, count, -1);
    if (n < 0) {
      if (errno == EINTR) continue;
      SIGNUM_LOG_ERROR(kLog, "poll failed: " << Errno());
      break;
    }
    if (fds[1].revents != 0) {  // Stop()
      // Reading the byte orders Stop()'s last use of this object (on the signal thread) before
      // the caller destroys it once Run() returns; poll() alone does not (ThreadSanitizer).
      char byte = 0;
      [[maybe_unused]] ssize_t ignored = ::read(wake_pipe_[0], &byte, 1);
      break;
    }
    if (fds[0].revents != 0) AcceptFrom(unix_fd_, Transport::kUnixSocket);
    if (count == 3 && fds[2].revents != 0) AcceptFrom(tcp_fd_, Transport::kTcp);
  }

  SIGNUM_LOG_INFO(kLog, "stopping: closing endpoints");
  if (unix_fd_ >= 0) ::close(unix_fd_);
  unix_fd_ = -1;
  if (tcp_fd_ >= 0) ::close(tcp_fd_);
  tcp_fd_ = -1;
  RemoveFiles();
  std::unique_lock lock(mu_);
  stopping_ = true;
  // Wakes threads blocked in recv(); each closes its own fd, so no fd is reused under us.
  for (int fd : connections_) ::shutdown(fd, SHUT_RDWR);
  const bool drained = idle_cv_.wait_for(lock, kDrainTimeout, [&] { return connections_.empty(); });
  if (!drained) {
    SIGNUM_LOG_WARN(kLog, connections_.size() << " connection(s) still busy at shutdown");
  }
  return drained;
}

void AgentService::AcceptFrom(int listen_fd, Transport transport) {
  for (;;) {
    const int fd = posix::AcceptConnection(listen_fd);
    if (fd < 0) {
      if (errno == EINTR) continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK) {
        SIGNUM_LOG_WARN(kLog, "accept failed: " << Errno());
        // EMFILE and friends: back off a little instead of spinning on a readable listener.
        if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
          std::this_thread::sleep_for(std::chrono::milliseconds(100));
        }
      }
      return;
    }
    timeval send_timeout{kSendTimeoutSeconds, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &send_timeout, sizeof send_timeout);
    if (transport == Transport::kTcp) {
      const int one = 1;
      ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      // Another user's process on the loopback port is never this agent's client (the secret
      // file is the owner's alone): closed before it holds a thread or a slot.
      if (auto uid = LoopbackTcpPeerUid(fd); uid && *uid != ::geteuid()) {
        if (foreign_tcp_refused_++ % 100 == 0) {
          SIGNUM_LOG_WARN(kLog, "tcp connection from uid " << *uid << " refused (this agent serves uid "
                                                           << ::geteuid() << "; "
                                                           << foreign_tcp_refused_
                                                           << " such so far)");
        }
        ::close(fd);
        continue;
      }
    }
    {
      std::lock_guard lock(mu_);
      // Each kind of connection has a budget of its own (AgentConfig): what fills one, e.g. a
      // flood of TCP connections that never finish the handshake, cannot starve the others.
      std::set<int>& admitted =
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
        ::close(fd);
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
      ::close(fd);
      idle_cv_.notify_all();
    }
  }
}

void AgentService::Serve(int fd, Transport transport) {
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
  ::close(fd);
  idle_cv_.notify_all();
}

bool AgentService::AdmitAuthenticatedTcp(int fd) {
  std::lock_guard lock(mu_);
  tcp_unauthenticated_.erase(fd);
  if (tcp_authenticated_.size() >= config_.max_connections) return false;
  tcp_authenticated_.insert(fd);
  return true;
}

void AgentService::ServeConnection(int fd, Transport transport) {
  std::optional<PeerCredentials> peer;
  ProcessInfo process;
  if (transport == Transport::kUnixSocket) {
    auto creds = GetPeerCredentials(fd);
    if (!creds.ok()) {
      RejectAndClose(fd, creds.status());
      return;
    }
    Status allowed = CheckPeerUid(creds->uid, ::geteuid());
    if (!allowed.ok()) {
      SIGNUM_LOG_WARN(kLog, "rejected pid " << creds->pid << ": " << allowed.message());
      RejectAndClose(fd, allowed);
      return;
    }
    peer = *creds;
    process = ReadProcessInfo(creds->pid);
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
        pollfd p{fd, POLLIN, 0};
        const int ready = left > 0 ? ::poll(&p, 1, static_cast<int>(left)) : 0;
        if (ready == 0) {
          RejectAndClose(fd, DeadlineExceededError("no hello within " +
                                                   std::to_string(kHelloTimeoutMs) + " ms"));
          return;
        }
        if (ready < 0) {
          if (errno == EINTR) continue;
          return;
        }
      }
      char chunk[16384];
      const ssize_t n = ::recv(fd, chunk, sizeof chunk, 0);
      if (n == 0) return;  // the provider closed (or Stop() shut the socket down)
      if (n < 0) {
        if (errno == EINTR || errno == EAGAIN) continue;
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
      ::shutdown(fd, SHUT_WR);
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

// The POSIX transport under AgentClient: Unix socket and loopback TCP, non-blocking sockets and
// poll() with the remaining time for every wait.
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
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "signum/agent/tcp_address.h"
#include "signum/agent/transport.h"
#include "signum/core/posix_platform.h"

namespace signum::agent::transport {
namespace {

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

std::string DirectoryOf(const std::string& path) {
  const size_t slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  return slash == 0 ? "/" : path.substr(0, slash);
}

std::string OctalMode(mode_t mode) {
  char text[8];
  std::snprintf(text, sizeof text, "%04o", static_cast<unsigned>(mode & 07777));
  return text;
}

// The agent at the other end runs as this user: the kernel's word for it (SO_PEERCRED on Linux,
// LOCAL_PEERCRED on macOS).
Status CheckPeerIsThisUser(int fd, const std::string& where) {
  Result<posix::SocketPeer> peer = posix::UnixSocketPeer(fd);
  if (!peer.ok())
    return UnavailableError("cannot tell who serves " + where + ": " + peer.status().message());
  const uid_t uid = peer->uid;
  const std::string process = " (pid " + std::to_string(peer->pid) + ")";
  if (uid != ::geteuid()) {
    return PermissionDeniedError(
        "refusing the process serving " + where + ": it runs as uid " + std::to_string(uid) +
        process + ", not as uid " +
        std::to_string(::geteuid()) +
        "; signum-agent runs as the user it serves, so this is another user's process");
  }
  return Status::Ok();
}

}  // namespace

Status CheckPrivateDirectory(const std::string& dir) {
  struct stat st {};
  if (::lstat(dir.c_str(), &st) != 0) {
    return UnavailableError("agent socket directory " + dir + ": " + Errno(errno) +
                            " (is signum-agent running?)");
  }
  if (S_ISLNK(st.st_mode) || !S_ISDIR(st.st_mode)) {
    return PermissionDeniedError("agent socket directory " + dir +
                                 " is not a directory (a symlink or another file): refusing it");
  }
  if (st.st_uid != ::geteuid()) {
    return PermissionDeniedError(
        "agent socket directory " + dir + " belongs to uid " + std::to_string(st.st_uid) +
        ", not to uid " + std::to_string(::geteuid()) +
        ": another user may be impersonating signum-agent; remove it (and use your own "
        "XDG_RUNTIME_DIR or SIGNUM_AGENT_SOCKET)");
  }
  if ((st.st_mode & 077) != 0) {
    return PermissionDeniedError("agent socket directory " + dir + " has mode " +
                                 OctalMode(st.st_mode) +
                                 ": other users could replace the socket; it must be 0700");
  }
  return Status::Ok();
}

Result<Handle> ConnectUnix(const std::string& path, Clock::time_point deadline) {
  const std::string where = "unix:" + path;
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof addr.sun_path) {
    return InvalidArgumentError("agent socket path '" + path + "' is empty or longer than " +
                                std::to_string(sizeof addr.sun_path - 1) + " bytes");
  }
  std::memcpy(addr.sun_path, path.data(), path.size());
  SIGNUM_RETURN_IF_ERROR(CheckPrivateDirectory(DirectoryOf(path)));
  const int fd = posix::OpenSocket(AF_UNIX, SOCK_STREAM, /*nonblocking=*/true);
  if (fd < 0) return UnavailableError("socket(AF_UNIX) failed: " + Errno(errno));
  if (::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0) {
    const int err = errno;
    if (err != EINPROGRESS && err != EINTR) {
      ::close(fd);
      // EAGAIN on a Unix socket: the agent's accept backlog is full.
      return UnavailableError(
          "signum-agent at " + where + " is not reachable: " + Errno(err) +
          (err == ENOENT || err == ECONNREFUSED ? " (is signum-agent running?)" : ""));
    }
    Status s = CompleteConnect(fd, deadline, where);
    if (!s.ok()) {
      ::close(fd);
      return s;
    }
  }
  // Before a byte is sent: the hello already names the client, and requests carry digests.
  Status peer = CheckPeerIsThisUser(fd, where);
  if (!peer.ok()) {
    ::close(fd);
    return peer;
  }
  return fd;
}

Result<Handle> ConnectTcp(const std::string& host, uint16_t port, Clock::time_point deadline) {
  const std::string where = "tcp:" + host + ":" + std::to_string(port);
  SIGNUM_ASSIGN_OR_RETURN(const TcpAddress address, ParseTcpAddress(host, port));
  const int fd = posix::OpenSocket(address.family, SOCK_STREAM, /*nonblocking=*/true);
  if (fd < 0) return UnavailableError("socket(AF_INET) failed: " + Errno(errno));
  const int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);  // small request/reply frames
  if (::connect(fd, address.get(), address.length) != 0) {
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

Status SendAll(Handle socket, std::string_view data, Clock::time_point deadline) {
  const int fd = static_cast<int>(socket);
  size_t sent = 0;
  while (sent < data.size()) {
    // A closed agent must give EPIPE, not kill the host application with SIGPIPE.
    const ssize_t n = ::send(fd, data.data() + sent, data.size() - sent, posix::kSendNoSignal);
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

Result<size_t> ReceiveSome(Handle socket, char* out, size_t capacity, Clock::time_point deadline) {
  const int fd = static_cast<int>(socket);
  for (;;) {
    const ssize_t n = ::recv(fd, out, capacity, 0);
    if (n >= 0) return static_cast<size_t>(n);
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      SIGNUM_RETURN_IF_ERROR(WaitFor(fd, POLLIN, deadline, "waiting for signum-agent"));
      continue;
    }
    return UnavailableError("reading from signum-agent failed: " + Errno(errno));
  }
}

bool ReadableNow(Handle socket) {
  pollfd p{static_cast<int>(socket), POLLIN, 0};
  return ::poll(&p, 1, 0) != 0;
}

void Close(Handle socket) {
  if (socket != kNoHandle) ::close(static_cast<int>(socket));
}

bool IsLoopbackHost(const std::string& host) { return IsLoopbackAddress(host); }

std::string DefaultAgentSocketPath() {
  const char* runtime = std::getenv("XDG_RUNTIME_DIR");
  if (runtime != nullptr && runtime[0] == '/') return std::string(runtime) + "/signum/agent.sock";
  return "/tmp/signum-" + std::to_string(::geteuid()) + "/agent.sock";
}

std::string DefaultAgentDirectory() {
  const std::string socket = DefaultAgentSocketPath();
  return socket.substr(0, socket.rfind('/'));
}

}  // namespace signum::agent::transport

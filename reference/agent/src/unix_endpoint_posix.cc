// unix_endpoint.h on Linux and macOS.
#include "unix_endpoint.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "agent_platform.h"
#include "signum/agent/transport.h"
#include "signum/core/log.h"
#include "signum/core/posix_platform.h"

namespace signum::agent {
namespace {

std::string Errno() { return std::strerror(errno); }

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

}  // namespace

Result<PeerCredentials> GetPeerCredentials(int fd) {
  SIGNUM_ASSIGN_OR_RETURN(const posix::SocketPeer peer, posix::UnixSocketPeer(fd));
  return PeerCredentials{peer.pid, peer.uid, peer.gid};
}

Result<UnixEndpoint> OpenUnixEndpoint(const std::string& path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof addr.sun_path) {
    return InvalidArgumentError("socket path " + path + " is longer than " +
                                std::to_string(sizeof addr.sun_path - 1) + " bytes");
  }
  std::memcpy(addr.sun_path, path.data(), path.size());
  SIGNUM_RETURN_IF_ERROR(MakePrivateDirectory(DirName(path)));
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
      SIGNUM_LOG_INFO("agent", "removing stale socket " << path);
      if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
        return FailedPreconditionError("cannot remove stale socket " + path + ": " + Errno());
      }
    }
  }

  UnixEndpoint endpoint;
  endpoint.socket = posix::OpenSocket(AF_UNIX, SOCK_STREAM, /*nonblocking=*/true);
  if (endpoint.socket < 0) return InternalError("socket(AF_UNIX) failed: " + Errno());
  auto fail = [&](Status status) {
    ::close(endpoint.socket);
    return status;
  };
  // umask 077 while binding: the socket never exists, even briefly, with wider permissions.
  const mode_t old_mask = ::umask(077);
  const int bound = ::bind(endpoint.socket, reinterpret_cast<const sockaddr*>(&addr), sizeof addr);
  const int bind_errno = errno;
  ::umask(old_mask);
  if (bound != 0) {
    return fail(
        FailedPreconditionError("cannot bind " + path + ": " + std::strerror(bind_errno)));
  }
  if (::chmod(path.c_str(), 0600) != 0) return fail(InternalError("chmod " + path + ": " + Errno()));
  if (::lstat(path.c_str(), &st) == 0) endpoint.inode = st.st_ino;
  if (::listen(endpoint.socket, 128) != 0)
    return fail(InternalError("listen on " + path + ": " + Errno()));
  return endpoint;
}

void RemoveUnixEndpoint(const std::string& path, uint64_t inode) {
  struct stat st {};
  if (inode != 0 && ::lstat(path.c_str(), &st) == 0 && st.st_ino == inode) ::unlink(path.c_str());
}

Result<UnixPeer> IdentifyUnixPeer(net::Socket connection) {
  UnixPeer peer;
  SIGNUM_ASSIGN_OR_RETURN(peer.credentials, GetPeerCredentials(connection));
  Status allowed = CheckPeerUid(peer.credentials.uid, ::geteuid());
  if (!allowed.ok()) {
    return Status(allowed.code(),
                  allowed.message() + " (pid " + std::to_string(peer.credentials.pid) + ")");
  }
  peer.process = ReadProcessInfo(peer.credentials.pid);
  return peer;
}

}  // namespace signum::agent

#include "signum/testing/loopback.h"
#include "signum/core/posix_platform.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace signum::testing {
namespace {

sockaddr_in Loopback(uint16_t port) {
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return addr;
}

bool UnixAddress(const std::string& path, sockaddr_un* addr) {
  *addr = sockaddr_un{};
  addr->sun_family = AF_UNIX;
  if (path.size() >= sizeof addr->sun_path) {
    errno = ENAMETOOLONG;
    return false;
  }
  std::memcpy(addr->sun_path, path.data(), path.size());
  return true;
}

// Closes fd keeping the errno of the call that failed.
int CloseFailed(int fd) {
  const int saved = errno;
  ::close(fd);
  errno = saved;
  return -1;
}

}  // namespace

int ConnectLoopbackTcp(uint16_t port) {
  const int fd = posix::OpenSocket(AF_INET, SOCK_STREAM, /*nonblocking=*/false);
  if (fd < 0) return -1;
  const sockaddr_in addr = Loopback(port);
  if (::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0) {
    return CloseFailed(fd);
  }
  return fd;
}

int ConnectUnixSocket(const std::string& path) {
  sockaddr_un addr;
  if (!UnixAddress(path, &addr)) return -1;
  const int fd = posix::OpenSocket(AF_UNIX, SOCK_STREAM, /*nonblocking=*/false);
  if (fd < 0) return -1;
  if (::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0) {
    return CloseFailed(fd);
  }
  return fd;
}

TcpListener ListenLoopbackTcp(int backlog) {
  const int fd = posix::OpenSocket(AF_INET, SOCK_STREAM, /*nonblocking=*/false);
  if (fd < 0) return {};
  sockaddr_in addr = Loopback(0);
  socklen_t len = sizeof addr;
  if (::bind(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0 ||
      ::listen(fd, backlog) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    CloseFailed(fd);
    return {};
  }
  return {fd, ntohs(addr.sin_port)};
}

int ListenUnixSocket(const std::string& path, int backlog) {
  sockaddr_un addr;
  if (!UnixAddress(path, &addr)) return -1;
  const int fd = posix::OpenSocket(AF_UNIX, SOCK_STREAM, /*nonblocking=*/false);
  if (fd < 0) return -1;
  if (::bind(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0 ||
      ::listen(fd, backlog) != 0) {
    return CloseFailed(fd);
  }
  return fd;
}

bool WaitReadable(int fd, int timeout_ms) {
  pollfd p{fd, POLLIN, 0};
  return ::poll(&p, 1, timeout_ms) > 0;
}

}  // namespace signum::testing

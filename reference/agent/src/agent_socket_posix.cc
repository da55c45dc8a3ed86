// agent_socket.h on Linux and macOS: BSD sockets, poll(), a pipe to wake the accept loop.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "agent_socket.h"
#include "signum/core/posix_platform.h"

namespace signum::agent::net {

Status Initialize() { return Status::Ok(); }

std::string LastError() { return std::strerror(errno); }

ErrorKind LastErrorKind() {
  if (errno == EINTR) return ErrorKind::kInterrupted;
  if (errno == EAGAIN || errno == EWOULDBLOCK) return ErrorKind::kWouldBlock;
  if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM)
    return ErrorKind::kOutOfResources;
  return ErrorKind::kOther;
}

void Close(Socket s) { ::close(s); }
void ShutdownWrite(Socket s) { ::shutdown(s, SHUT_WR); }
void ShutdownBoth(Socket s) { ::shutdown(s, SHUT_RDWR); }

long Send(Socket s, const char* data, size_t size) {
  return ::send(s, data, size, posix::kSendNoSignal);
}
long Receive(Socket s, char* data, size_t size) { return ::recv(s, data, size, 0); }

int WaitReadable(Socket s, int timeout_ms) {
  pollfd p{s, POLLIN, 0};
  return ::poll(&p, 1, timeout_ms);
}

int WaitAnyReadable(const Socket* sockets, bool* ready, size_t count) {
  std::vector<pollfd> fds(count);
  for (size_t i = 0; i < count; ++i) fds[i] = {sockets[i], POLLIN, 0};  // poll skips fd -1
  const int n = ::poll(fds.data(), fds.size(), -1);
  for (size_t i = 0; i < count; ++i) ready[i] = n > 0 && fds[i].revents != 0;
  return n;
}

Result<Socket> ListenTcp(const std::string& host, uint16_t port, uint16_t* bound_port) {
  const bool v6 = host.find(':') != std::string::npos;
  const int fd = posix::OpenSocket(v6 ? AF_INET6 : AF_INET, SOCK_STREAM, /*nonblocking=*/true);
  if (fd < 0) return InternalError("socket(AF_INET) failed: " + LastError());
  const int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_storage storage{};
  socklen_t len = 0;
  if (v6) {
    auto* a = reinterpret_cast<sockaddr_in6*>(&storage);
    a->sin6_family = AF_INET6;
    a->sin6_port = htons(port);
    ::inet_pton(AF_INET6, host.c_str(), &a->sin6_addr);
    len = sizeof *a;
  } else {
    auto* a = reinterpret_cast<sockaddr_in*>(&storage);
    a->sin_family = AF_INET;
    a->sin_port = htons(port);
    ::inet_pton(AF_INET, host.c_str(), &a->sin_addr);
    len = sizeof *a;
  }
  const std::string where = host + ":" + std::to_string(port);
  if (::bind(fd, reinterpret_cast<const sockaddr*>(&storage), len) != 0) {
    const std::string error = LastError();
    ::close(fd);
    return FailedPreconditionError("cannot bind tcp " + where + ": " + error);
  }
  if (::listen(fd, 128) != 0) {
    const std::string error = LastError();
    ::close(fd);
    return InternalError("listen on tcp " + where + ": " + error);
  }
  sockaddr_storage bound{};
  socklen_t bound_len = sizeof bound;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&bound), &bound_len);
  *bound_port = ntohs(v6 ? reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port
                         : reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
  return fd;
}

Socket Accept(Socket listener) { return posix::AcceptConnection(listener); }

void SetSendTimeout(Socket s, int seconds) {
  timeval timeout{seconds, 0};
  ::setsockopt(s, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof timeout);
}

void SetNoDelay(Socket s) {
  const int one = 1;
  ::setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

WakeUp::~WakeUp() {
  if (read_end_ >= 0) ::close(read_end_);
  if (write_end_ >= 0) ::close(write_end_);
}

Status WakeUp::Open() {
  int fds[2] = {-1, -1};
  if (posix::OpenPipe(fds) != 0) return InternalError("cannot make the wake-up pipe: " + LastError());
  read_end_ = fds[0];
  write_end_ = fds[1];
  return Status::Ok();
}

void WakeUp::Signal() {
  const char byte = 1;
  // Async-signal-safe; a full pipe means a wake-up is already pending.
  [[maybe_unused]] ssize_t ignored = ::write(write_end_, &byte, 1);
}

void WakeUp::Drain() {
  char byte = 0;
  [[maybe_unused]] ssize_t ignored = ::read(read_end_, &byte, 1);
}

}  // namespace signum::agent::net

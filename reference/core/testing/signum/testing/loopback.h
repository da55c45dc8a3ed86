// Loopback sockets for tests (POSIX): raw clients that talk to a server or agent under test, and
// listeners that stand in for one. Only 127.0.0.1 and Unix sockets: tests never leave the machine.
// Descriptors are close-on-exec and blocking; the caller closes them.
#pragma once

#include <cstdint>
#include <string>

namespace signum::testing {

// A connected descriptor, or -1 (errno set) when nothing accepts.
int ConnectLoopbackTcp(uint16_t port);
int ConnectUnixSocket(const std::string& path);

struct TcpListener {
  int fd = -1;
  uint16_t port = 0;
};
// Listening on 127.0.0.1 at a port the kernel picks; {-1, 0} on failure.
TcpListener ListenLoopbackTcp(int backlog = 16);
// Listening on `path` (which must not exist yet); -1 on failure.
int ListenUnixSocket(const std::string& path, int backlog = 16);

// Whether fd becomes readable (data or end of stream) within timeout_ms.
bool WaitReadable(int fd, int timeout_ms);

}  // namespace signum::testing

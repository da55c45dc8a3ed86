// agent_socket.h on Windows: Winsock 2, WSAPoll(), a loopback UDP socket to wake the accept loop.
#include <winsock2.h>
#include <ws2tcpip.h>
#include <windows.h>

#include <vector>

#include "agent_socket.h"
#include "signum/core/windows_error.h"

namespace signum::agent::net {
namespace {

std::string ErrorText(int code) {
  return WindowsErrorText(static_cast<unsigned long>(code), "WSA");
}

// Sockets are handles: a child process must not inherit the agent's listener or connections.
void DoNotInherit(SOCKET s) {
  SetHandleInformation(reinterpret_cast<HANDLE>(s), HANDLE_FLAG_INHERIT, 0);
}

bool SetBlocking(SOCKET s, bool blocking) {
  u_long nonblocking = blocking ? 0 : 1;
  return ::ioctlsocket(s, FIONBIO, &nonblocking) == 0;
}

}  // namespace

Status Initialize() {
  WSADATA data{};
  const int rc = WSAStartup(MAKEWORD(2, 2), &data);
  if (rc != 0) return InternalError("WSAStartup failed: " + ErrorText(rc));
  return Status::Ok();
}

std::string LastError() { return ErrorText(WSAGetLastError()); }

ErrorKind LastErrorKind() {
  switch (WSAGetLastError()) {
    case WSAEINTR: return ErrorKind::kInterrupted;
    case WSAEWOULDBLOCK: return ErrorKind::kWouldBlock;
    case WSAEMFILE:
    case WSAENOBUFS: return ErrorKind::kOutOfResources;
    default: return ErrorKind::kOther;
  }
}

void Close(Socket s) { ::closesocket(s); }
void ShutdownWrite(Socket s) { ::shutdown(s, SD_SEND); }
void ShutdownBoth(Socket s) {
  ::shutdown(s, SD_BOTH);
  // Unlike on Linux, shutdown() does not wake a recv() already blocked in another thread;
  // cancelling the socket's pending I/O does (the recv fails, the thread closes its socket).
  CancelIoEx(reinterpret_cast<HANDLE>(s), nullptr);
}

long Send(Socket s, const char* data, size_t size) {
  return ::send(s, data, static_cast<int>(size), 0);
}
long Receive(Socket s, char* data, size_t size) {
  return ::recv(s, data, static_cast<int>(size), 0);
}

int WaitReadable(Socket s, int timeout_ms) {
  WSAPOLLFD p{};
  p.fd = s;
  p.events = POLLRDNORM;
  return WSAPoll(&p, 1, timeout_ms);
}

int WaitAnyReadable(const Socket* sockets, bool* ready, size_t count) {
  std::vector<WSAPOLLFD> fds;
  std::vector<size_t> index;
  for (size_t i = 0; i < count; ++i) {
    ready[i] = false;
    if (sockets[i] == kNoSocket) continue;
    WSAPOLLFD p{};
    p.fd = sockets[i];
    p.events = POLLRDNORM;
    fds.push_back(p);
    index.push_back(i);
  }
  const int n = WSAPoll(fds.data(), static_cast<ULONG>(fds.size()), -1);
  for (size_t j = 0; n > 0 && j < fds.size(); ++j) ready[index[j]] = fds[j].revents != 0;
  return n;
}

Result<Socket> ListenTcp(const std::string& host, uint16_t port, uint16_t* bound_port) {
  const bool v6 = host.find(':') != std::string::npos;
  const SOCKET s = WSASocketW(v6 ? AF_INET6 : AF_INET, SOCK_STREAM, IPPROTO_TCP, nullptr, 0,
                              WSA_FLAG_OVERLAPPED | WSA_FLAG_NO_HANDLE_INHERIT);
  if (s == INVALID_SOCKET) return InternalError("socket(AF_INET) failed: " + LastError());
  DoNotInherit(s);
  // Not SO_REUSEADDR: on Windows it lets another process bind the same port over ours.
  const BOOL exclusive = TRUE;
  ::setsockopt(s, SOL_SOCKET, SO_EXCLUSIVEADDRUSE, reinterpret_cast<const char*>(&exclusive),
               sizeof exclusive);
  sockaddr_storage storage{};
  int len = 0;
  if (v6) {
    auto* a = reinterpret_cast<sockaddr_in6*>(&storage);
    a->sin6_family = AF_INET6;
    a->sin6_port = htons(port);
    inet_pton(AF_INET6, host.c_str(), &a->sin6_addr);
    len = sizeof *a;
  } else {
    auto* a = reinterpret_cast<sockaddr_in*>(&storage);
    a->sin_family = AF_INET;
    a->sin_port = htons(port);
    inet_pton(AF_INET, host.c_str(), &a->sin_addr);
    len = sizeof *a;
  }
  const std::string where = host + ":" + std::to_string(port);
  if (::bind(s, reinterpret_cast<const sockaddr*>(&storage), len) != 0) {
    const std::string error = LastError();
    ::closesocket(s);
    return FailedPreconditionError("cannot bind tcp " + where + ": " + error);
  }
  if (::listen(s, 128) != 0 || !SetBlocking(s, false)) {
    const std::string error = LastError();
    ::closesocket(s);
    return InternalError("listen on tcp " + where + ": " + error);
  }
  sockaddr_storage bound{};
  int bound_len = sizeof bound;
  ::getsockname(s, reinterpret_cast<sockaddr*>(&bound), &bound_len);
  *bound_port = ntohs(v6 ? reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port
                         : reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
  return static_cast<Socket>(s);
}

Socket Accept(Socket listener) {
  const SOCKET s = ::accept(listener, nullptr, nullptr);
  if (s == INVALID_SOCKET) return kNoSocket;
  DoNotInherit(s);
  SetBlocking(s, true);  // accepted sockets inherit the listener's non-blocking mode
  return static_cast<Socket>(s);
}

void SetSendTimeout(Socket s, int seconds) {
  const DWORD ms = static_cast<DWORD>(seconds) * 1000;
  ::setsockopt(s, SOL_SOCKET, SO_SNDTIMEO, reinterpret_cast<const char*>(&ms), sizeof ms);
}

void SetNoDelay(Socket s) {
  const BOOL one = TRUE;
  ::setsockopt(s, IPPROTO_TCP, TCP_NODELAY, reinterpret_cast<const char*>(&one), sizeof one);
}

WakeUp::~WakeUp() {
  if (read_end_ != kNoSocket) ::closesocket(read_end_);
}

Status WakeUp::Open() {
  // One UDP socket connected to itself: Signal() sends it a datagram, which makes it readable.
  const SOCKET s = WSASocketW(AF_INET, SOCK_DGRAM, IPPROTO_UDP, nullptr, 0, WSA_FLAG_NO_HANDLE_INHERIT);
  if (s == INVALID_SOCKET) return InternalError("cannot make the wake-up socket: " + LastError());
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  int length = sizeof address;
  if (::bind(s, reinterpret_cast<const sockaddr*>(&address), sizeof address) != 0 ||
      ::getsockname(s, reinterpret_cast<sockaddr*>(&address), &length) != 0 ||
      ::connect(s, reinterpret_cast<const sockaddr*>(&address), sizeof address) != 0 ||
      !SetBlocking(s, false)) {
    const std::string error = LastError();
    ::closesocket(s);
    return InternalError("cannot make the wake-up socket: " + error);
  }
  read_end_ = write_end_ = static_cast<Socket>(s);
  return Status::Ok();
}

void WakeUp::Signal() {
  const char byte = 1;
  ::send(write_end_, &byte, 1, 0);
}

void WakeUp::Drain() {
  char byte = 0;
  ::recv(read_end_, &byte, 1, 0);
}

}  // namespace signum::agent::net

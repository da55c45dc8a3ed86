// The Windows transport under AgentClient: loopback TCP over Winsock (the agent's Unix socket is
// not offered to Windows programs). Sockets are non-blocking and every wait is a select() with the
// remaining time, as on POSIX.
#include <winsock2.h>
#include <ws2tcpip.h>

#include <cstdlib>
#include <mutex>

#include "signum/agent/tcp_address.h"
#include "signum/agent/transport.h"
#include "signum/core/windows_error.h"

namespace signum::agent::transport {
namespace {

std::string WsaError(int err) { return WindowsErrorText(static_cast<unsigned long>(err), "WSA"); }

// Winsock must be started once per process before any socket call; it stays started (a provider
// DLL cannot know when its host is done with sockets).
Status EnsureWinsock() {
  static std::once_flag once;
  static int startup_error = 0;
  std::call_once(once, [] {
    WSADATA data;
    startup_error = ::WSAStartup(MAKEWORD(2, 2), &data);
  });
  if (startup_error != 0) return UnavailableError("WSAStartup failed: " + WsaError(startup_error));
  return Status::Ok();
}

SOCKET AsSocket(Handle h) { return static_cast<SOCKET>(h); }

int RemainingMs(Clock::time_point deadline) {
  const auto left =
      std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
  return left <= 0 ? 0 : static_cast<int>(left);
}

enum class Wait { kRead, kWrite };

// Waits until the socket is readable or writable (a failed connect shows up as an exception).
Status WaitFor(SOCKET s, Wait what, Clock::time_point deadline, const std::string& doing) {
  fd_set ready;
  fd_set failed;
  FD_ZERO(&ready);
  FD_ZERO(&failed);
  FD_SET(s, &ready);
  FD_SET(s, &failed);
  const int ms = RemainingMs(deadline);
  timeval timeout{ms / 1000, (ms % 1000) * 1000};
  const int n = ::select(0, what == Wait::kRead ? &ready : nullptr,
                         what == Wait::kWrite ? &ready : nullptr, &failed, &timeout);
  if (n > 0) return Status::Ok();
  if (n == 0) return DeadlineExceededError(doing + ": signum-agent did not answer in time");
  return UnavailableError(doing + ": select failed: " + WsaError(::WSAGetLastError()));
}

}  // namespace

Result<Handle> ConnectUnix(const std::string& path, Clock::time_point /*deadline*/) {
  return UnavailableError("signum-agent at unix:" + path +
                          " is not reachable: the Windows client speaks loopback TCP only "
                          "(set SIGNUM_AGENT_TCP and SIGNUM_AGENT_SECRET_FILE)");
}

Result<Handle> ConnectTcp(const std::string& host, uint16_t port, Clock::time_point deadline) {
  SIGNUM_RETURN_IF_ERROR(EnsureWinsock());
  const std::string where = "tcp:" + host + ":" + std::to_string(port);
  SIGNUM_ASSIGN_OR_RETURN(const TcpAddress address, ParseTcpAddress(host, port));
  // WSA_FLAG_NO_HANDLE_INHERIT: child processes of the host application must not hold our socket.
  const SOCKET s = ::WSASocketW(address.family, SOCK_STREAM, IPPROTO_TCP, nullptr, 0,
                                WSA_FLAG_OVERLAPPED | WSA_FLAG_NO_HANDLE_INHERIT);
  if (s == INVALID_SOCKET) {
    return UnavailableError("socket(AF_INET) failed: " + WsaError(::WSAGetLastError()));
  }
  u_long non_blocking = 1;
  const BOOL no_delay = TRUE;  // small request/reply frames
  ::setsockopt(s, IPPROTO_TCP, TCP_NODELAY, reinterpret_cast<const char*>(&no_delay),
               sizeof no_delay);
  if (::ioctlsocket(s, FIONBIO, &non_blocking) != 0) {
    const int err = ::WSAGetLastError();
    ::closesocket(s);
    return UnavailableError("ioctlsocket(FIONBIO) failed: " + WsaError(err));
  }
  if (::connect(s, address.get(), address.length) != 0) {
    const int err = ::WSAGetLastError();
    if (err != WSAEWOULDBLOCK && err != WSAEINPROGRESS) {
      ::closesocket(s);
      return UnavailableError("signum-agent at " + where + " is not reachable: " + WsaError(err) +
                              " (is signum-agent running?)");
    }
    Status waited = WaitFor(s, Wait::kWrite, deadline, "connecting to " + where);
    int so_error = 0;
    int so_len = sizeof so_error;
    if (waited.ok() &&
        ::getsockopt(s, SOL_SOCKET, SO_ERROR, reinterpret_cast<char*>(&so_error), &so_len) != 0) {
      so_error = ::WSAGetLastError();
    }
    if (!waited.ok() || so_error != 0) {
      ::closesocket(s);
      if (!waited.ok() && waited.code() != ErrorCode::kDeadlineExceeded) return waited;
      return UnavailableError(
          "signum-agent at " + where +
          (waited.ok() ? " is not reachable: " + WsaError(so_error) + " (is signum-agent running?)"
                       : " did not accept the connection in time"));
    }
  }
  return static_cast<Handle>(s);
}

Status SendAll(Handle socket, std::string_view data, Clock::time_point deadline) {
  const SOCKET s = AsSocket(socket);
  size_t sent = 0;
  while (sent < data.size()) {
    const int chunk = static_cast<int>(std::min<size_t>(data.size() - sent, 1 << 20));
    const int n = ::send(s, data.data() + sent, chunk, 0);
    if (n > 0) {
      sent += static_cast<size_t>(n);
      continue;
    }
    const int err = ::WSAGetLastError();
    if (n == SOCKET_ERROR && err == WSAEWOULDBLOCK) {
      SIGNUM_RETURN_IF_ERROR(WaitFor(s, Wait::kWrite, deadline, "sending to signum-agent"));
      continue;
    }
    return UnavailableError("sending to signum-agent failed: " + WsaError(err));
  }
  return Status::Ok();
}

Result<size_t> ReceiveSome(Handle socket, char* out, size_t capacity, Clock::time_point deadline) {
  const SOCKET s = AsSocket(socket);
  const int want = static_cast<int>(std::min<size_t>(capacity, 1 << 20));
  for (;;) {
    const int n = ::recv(s, out, want, 0);
    if (n >= 0) return static_cast<size_t>(n);
    const int err = ::WSAGetLastError();
    if (err == WSAEWOULDBLOCK) {
      SIGNUM_RETURN_IF_ERROR(WaitFor(s, Wait::kRead, deadline, "waiting for signum-agent"));
      continue;
    }
    // A reset connection is the agent going away, like end of stream.
    if (err == WSAECONNRESET) return UnavailableError("signum-agent reset the connection");
    return UnavailableError("reading from signum-agent failed: " + WsaError(err));
  }
}

bool ReadableNow(Handle socket) {
  const SOCKET s = AsSocket(socket);
  fd_set ready;
  FD_ZERO(&ready);
  FD_SET(s, &ready);
  timeval zero{0, 0};
  return ::select(0, &ready, nullptr, nullptr, &zero) != 0;
}

void Close(Handle socket) {
  if (socket != kNoHandle) ::closesocket(AsSocket(socket));
}

bool IsLoopbackHost(const std::string& host) {
  return host == "::1" || (EnsureWinsock().ok() && IsLoopbackAddress(host));
}

std::string DefaultAgentSocketPath() { return ""; }

std::string DefaultAgentDirectory() {
  const char* local = std::getenv("LOCALAPPDATA");
  if (local != nullptr && *local != '\0') return std::string(local) + "\\Signum";
  const char* profile = std::getenv("USERPROFILE");
  return std::string(profile != nullptr ? profile : ".") + "\\AppData\\Local\\Signum";
}

}  // namespace signum::agent::transport

// The socket calls of the agent's service, one definition per system: BSD sockets and poll() on
// Linux and macOS (agent_socket_posix.cc), Winsock and WSAPoll() on Windows
// (agent_socket_windows.cc). The service itself (agent_service.cc) is the same everywhere.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "signum/core/status.h"

namespace signum::agent::net {

#ifdef _WIN32
using Socket = std::uintptr_t;  // SOCKET
inline constexpr Socket kNoSocket = ~Socket{0};  // INVALID_SOCKET
#else
using Socket = int;
inline constexpr Socket kNoSocket = -1;
#endif

// Once per process before any other call (WSAStartup on Windows).
Status Initialize();

// The last failed call's error: its text, and what the caller should do about it.
std::string LastError();
enum class ErrorKind { kInterrupted, kWouldBlock, kOutOfResources, kOther };
ErrorKind LastErrorKind();

void Close(Socket s);
void ShutdownWrite(Socket s);
void ShutdownBoth(Socket s);  // wakes a thread blocked in Receive on s (its socket stays open)
// Bytes sent or received, 0 when the peer closed (Receive), -1 on error. Send never raises SIGPIPE.
long Send(Socket s, const char* data, size_t size);
long Receive(Socket s, char* data, size_t size);
// 1 when s is readable, 0 after timeout_ms, -1 on error.
int WaitReadable(Socket s, int timeout_ms);
// Waits without a timeout until one of count sockets (kNoSocket entries are skipped) is readable;
// ready[i] says which. Returns the number ready, -1 on error.
int WaitAnyReadable(const Socket* sockets, bool* ready, size_t count);

// A non-blocking listener on a loopback address (host as given: 127.0.0.1, ::1); port 0 picks
// one, *bound_port says which.
Result<Socket> ListenTcp(const std::string& host, uint16_t port, uint16_t* bound_port);
// One pending connection of a non-blocking listener, or kNoSocket (LastErrorKind: kWouldBlock when
// none is pending). The connection is blocking and not inherited by child processes.
Socket Accept(Socket listener);
void SetSendTimeout(Socket s, int seconds);
void SetNoDelay(Socket s);

// Wakes WaitAnyReadable from another thread (Stop()): a pipe on Linux and macOS, a loopback UDP
// socket on Windows, where WSAPoll waits on sockets only.
class WakeUp {
 public:
  WakeUp() = default;
  WakeUp(const WakeUp&) = delete;
  WakeUp& operator=(const WakeUp&) = delete;
  ~WakeUp();
  Status Open();
  Socket readable() const { return read_end_; }  // to wait on with WaitAnyReadable
  void Signal();  // async-signal-safe on POSIX
  void Drain();

 private:
  Socket read_end_ = kNoSocket;
  Socket write_end_ = kNoSocket;
};

}  // namespace signum::agent::net

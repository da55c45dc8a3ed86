// The few things Linux and macOS do differently, behind one interface (the Windows parts have
// their own *_windows.cc files). Linux: posix_platform_linux.cc; macOS: posix_platform_macos.cc;
// CMake compiles exactly one, so neither build carries the other's code paths.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <optional>
#include <string>

#include "signum/core/status.h"

namespace signum::posix {

// A socket that is close-on-exec (a provider runs inside tools that fork and exec) and, when
// asked, non-blocking. On macOS it also never raises SIGPIPE (SO_NOSIGPIPE; Linux uses
// kSendNoSignal per send). -1 with errno on failure.
int OpenSocket(int domain, int type, bool nonblocking);
// accept(2) whose connection is close-on-exec (and never raises SIGPIPE on macOS).
int AcceptConnection(int listen_fd);
// A pipe whose two ends are close-on-exec and non-blocking. 0, or -1 with errno.
int OpenPipe(int fds[2]);
// Flags for send(2): a peer that went away gives EPIPE instead of killing the process.
extern const int kSendNoSignal;

// The calling thread's id as the system tools show it (Linux: the tid; macOS: the thread id).
long CurrentThreadId();
// The running executable's path; empty when it cannot be told.
std::string OwnExecutablePath();

// Who is at the other end of a connected Unix socket, as the kernel says.
struct SocketPeer {
  pid_t pid = 0;
  uid_t uid = 0;
  gid_t gid = 0;
};
Result<SocketPeer> UnixSocketPeer(int fd);

enum class ProcessState { kGone, kZombie, kRunning };
ProcessState StateOf(pid_t pid);
// The arguments of another process as the kernel holds them, each followed by a NUL (at most
// max_bytes); nullopt when they cannot be read (gone, another user's on a hardened system).
std::optional<std::string> ArgumentsOf(pid_t pid, size_t max_bytes);
// Its executable's path; nullopt when unreadable.
std::optional<std::string> ExecutablePathOf(pid_t pid);

// Makes a file's written data durable: fdatasync(2) on Linux; F_FULLFSYNC on macOS, where fsync
// leaves the data in the drive's cache. 0, or -1 with errno.
int SyncFileData(int fd);

}  // namespace signum::posix

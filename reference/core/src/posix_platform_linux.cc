// signum/core/posix_platform.h on Linux: SOCK_CLOEXEC/accept4/pipe2, MSG_NOSIGNAL, SO_PEERCRED,
// /proc, fdatasync.
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>

#include "signum/core/posix_platform.h"

namespace signum::posix {

const int kSendNoSignal = MSG_NOSIGNAL;

int OpenSocket(int domain, int type, bool nonblocking) {
  return ::socket(domain, type | SOCK_CLOEXEC | (nonblocking ? SOCK_NONBLOCK : 0), 0);
}

int AcceptConnection(int listen_fd) { return ::accept4(listen_fd, nullptr, nullptr, SOCK_CLOEXEC); }

int OpenPipe(int fds[2]) { return ::pipe2(fds, O_CLOEXEC | O_NONBLOCK); }

long CurrentThreadId() { return static_cast<long>(::syscall(SYS_gettid)); }

std::string OwnExecutablePath() {
  char path[4096];
  const ssize_t n = ::readlink("/proc/self/exe", path, sizeof path - 1);
  return n > 0 ? std::string(path, static_cast<size_t>(n)) : std::string();
}

Result<SocketPeer> UnixSocketPeer(int fd) {
  ucred cred{};
  socklen_t len = sizeof cred;
  if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0 || len != sizeof cred)
    return InternalError(std::string("SO_PEERCRED failed: ") + std::strerror(errno));
  return SocketPeer{cred.pid, cred.uid, cred.gid};
}

ProcessState StateOf(pid_t pid) {
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string text;
  if (!stat || !std::getline(stat, text)) return ProcessState::kGone;
  // "pid (comm) S ...": the state follows the last ')'.
  const size_t paren = text.rfind(')');
  if (paren != std::string::npos && paren + 2 < text.size() && text[paren + 2] == 'Z')
    return ProcessState::kZombie;
  return ProcessState::kRunning;
}

std::optional<std::string> ArgumentsOf(pid_t pid, size_t max_bytes) {
  std::ifstream cmdline("/proc/" + std::to_string(pid) + "/cmdline", std::ios::binary);
  if (!cmdline) return std::nullopt;
  std::string raw(max_bytes, '\0');
  cmdline.read(raw.data(), static_cast<std::streamsize>(raw.size()));
  raw.resize(static_cast<size_t>(cmdline.gcount()));
  return raw;
}

std::optional<std::string> ExecutablePathOf(pid_t pid) {
  char path[4096];
  const ssize_t n =
      ::readlink(("/proc/" + std::to_string(pid) + "/exe").c_str(), path, sizeof path - 1);
  if (n <= 0) return std::nullopt;
  return std::string(path, static_cast<size_t>(n));
}

int SyncFileData(int fd) { return ::fdatasync(fd); }

}  // namespace signum::posix

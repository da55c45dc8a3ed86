// signum/core/posix_platform.h on macOS: fcntl for close-on-exec and non-blocking (no
// SOCK_CLOEXEC, accept4 or pipe2), SO_NOSIGPIPE (no MSG_NOSIGNAL), LOCAL_PEERCRED and
// LOCAL_PEERPID (no SO_PEERCRED), libproc and sysctl(KERN_PROCARGS2) (no /proc), F_FULLFSYNC.
// Built and tested by the macOS CI job only (docs/macos.md).
#include <fcntl.h>
#include <libproc.h>
#include <pthread.h>
#include <sys/proc.h>
#include <sys/proc_info.h>
#include <sys/socket.h>
#include <sys/sysctl.h>
#include <sys/types.h>
#include <sys/ucred.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <vector>

#include <mach-o/dyld.h>

#include "signum/core/posix_platform.h"

namespace signum::posix {
namespace {

// Close-on-exec, non-blocking when asked, no SIGPIPE; closes fd and returns -1 on failure.
int Prepare(int fd, bool nonblocking, bool socket) {
  if (fd < 0) return fd;
  const int one = 1;
  bool ok = ::fcntl(fd, F_SETFD, FD_CLOEXEC) == 0;
  if (ok && nonblocking) ok = ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK) == 0;
  if (ok && socket) ok = ::setsockopt(fd, SOL_SOCKET, SO_NOSIGPIPE, &one, sizeof one) == 0;
  if (ok) return fd;
  const int err = errno;
  ::close(fd);
  errno = err;
  return -1;
}

}  // namespace

const int kSendNoSignal = 0;  // SO_NOSIGPIPE is set on every socket this layer opens

int OpenSocket(int domain, int type, bool nonblocking) {
  return Prepare(::socket(domain, type, 0), nonblocking, true);
}

int AcceptConnection(int listen_fd) {
  return Prepare(::accept(listen_fd, nullptr, nullptr), false, true);
}

int OpenPipe(int fds[2]) {
  if (::pipe(fds) != 0) return -1;
  if (Prepare(fds[0], true, false) < 0) {
    ::close(fds[1]);
    return -1;
  }
  if (Prepare(fds[1], true, false) < 0) {
    ::close(fds[0]);
    return -1;
  }
  return 0;
}

long CurrentThreadId() {
  uint64_t id = 0;
  pthread_threadid_np(nullptr, &id);
  return static_cast<long>(id);
}

std::string OwnExecutablePath() {
  uint32_t size = 0;
  _NSGetExecutablePath(nullptr, &size);
  std::string path(size, '\0');
  if (_NSGetExecutablePath(path.data(), &size) != 0) return std::string();
  path.resize(std::strlen(path.c_str()));
  return path;
}

Result<SocketPeer> UnixSocketPeer(int fd) {
  xucred cred{};
  socklen_t len = sizeof cred;
  if (::getsockopt(fd, SOL_LOCAL, LOCAL_PEERCRED, &cred, &len) != 0 ||
      cred.cr_version != XUCRED_VERSION)
    return InternalError(std::string("LOCAL_PEERCRED failed: ") + std::strerror(errno));
  pid_t pid = 0;
  len = sizeof pid;
  if (::getsockopt(fd, SOL_LOCAL, LOCAL_PEERPID, &pid, &len) != 0)
    return InternalError(std::string("LOCAL_PEERPID failed: ") + std::strerror(errno));
  return SocketPeer{pid, cred.cr_uid, cred.cr_ngroups > 0 ? cred.cr_groups[0] : 0};
}

ProcessState StateOf(pid_t pid) {
  proc_bsdinfo info{};
  const int n = proc_pidinfo(pid, PROC_PIDTBSDINFO, 0, &info, sizeof info);
  if (n != static_cast<int>(sizeof info)) return ProcessState::kGone;
  return info.pbi_status == SZOMB ? ProcessState::kZombie : ProcessState::kRunning;
}

std::optional<std::string> ArgumentsOf(pid_t pid, size_t max_bytes) {
  // KERN_PROCARGS2: argc (int), the executable path, NUL padding, then argv[0..argc) each
  // NUL-terminated, then the environment (never returned: it may hold secrets).
  int mib[3] = {CTL_KERN, KERN_PROCARGS2, static_cast<int>(pid)};
  size_t size = 0;
  if (::sysctl(mib, 3, nullptr, &size, nullptr, 0) != 0 || size < sizeof(int)) return std::nullopt;
  std::vector<char> buffer(size);
  if (::sysctl(mib, 3, buffer.data(), &size, nullptr, 0) != 0 || size < sizeof(int))
    return std::nullopt;
  int argc = 0;
  std::memcpy(&argc, buffer.data(), sizeof argc);
  size_t at = sizeof argc;
  while (at < size && buffer[at] != '\0') ++at;  // the executable path
  while (at < size && buffer[at] == '\0') ++at;  // its padding
  std::string args;
  for (int i = 0; i < argc && at < size && args.size() < max_bytes; ++i) {
    const size_t start = at;
    while (at < size && buffer[at] != '\0') ++at;
    args.append(buffer.data() + start, at - start);
    args.push_back('\0');
    ++at;
  }
  if (args.size() > max_bytes) args.resize(max_bytes);
  return args;
}

std::optional<std::string> ExecutablePathOf(pid_t pid) {
  char path[PROC_PIDPATHINFO_MAXSIZE];
  const int n = proc_pidpath(pid, path, sizeof path);
  if (n <= 0) return std::nullopt;
  return std::string(path, static_cast<size_t>(n));
}

int SyncFileData(int fd) {
  // F_FULLFSYNC asks the drive to flush its cache too; some file systems (network, FUSE) refuse
  // it, and fsync is then the best there is.
  if (::fcntl(fd, F_FULLFSYNC) == 0) return 0;
  return ::fsync(fd);
}

}  // namespace signum::posix

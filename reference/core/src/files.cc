#include "signum/core/files.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

// mingw-w64 (the Windows providers) has open/read/close but no O_CLOEXEC, fchmod, fsync or
// O_DIRECTORY: reads are binary and not inherited there, and WriteFileAtomically is
// files_windows.cc's.
#ifdef _WIN32
#define SIGNUM_READ_FLAGS (O_RDONLY | O_BINARY | O_NOINHERIT)
#else
#define SIGNUM_READ_FLAGS (O_RDONLY | O_CLOEXEC)
#endif

namespace signum {
namespace {

Status ErrnoStatus(const std::string& what, int err) {
  ErrorCode code = err == ENOENT                     ? ErrorCode::kNotFound
                   : (err == EACCES || err == EPERM) ? ErrorCode::kPermissionDenied
                                                     : ErrorCode::kInternal;
  return Status(code, what + ": " + std::strerror(err));
}

}  // namespace

Result<std::string> ReadFile(const std::string& path) {
  int fd = ::open(path.c_str(), SIGNUM_READ_FLAGS);
  if (fd < 0) return ErrnoStatus("cannot open " + path, errno);
  std::string content;
  char buf[65536];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      int err = errno;
      ::close(fd);
      return ErrnoStatus("cannot read " + path, err);
    }
    if (n == 0) break;
    content.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  return content;
}

#ifndef _WIN32
Status WriteFileAtomically(const std::string& path, std::string_view content, unsigned mode) {
  const std::string tmp = path + ".tmp-" + std::to_string(::getpid());
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  if (fd < 0) return ErrnoStatus("cannot create " + tmp, errno);
  // open() honours the umask; the caller asked for exactly `mode` (secrets must stay 0600).
  ::fchmod(fd, mode);
  size_t written = 0;
  while (written < content.size()) {
    ssize_t n = ::write(fd, content.data() + written, content.size() - written);
    if (n < 0) {
      if (errno == EINTR) continue;
      int err = errno;
      ::close(fd);
      ::unlink(tmp.c_str());
      return ErrnoStatus("cannot write " + tmp, err);
    }
    written += static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0) {
    int err = errno;
    ::close(fd);
    ::unlink(tmp.c_str());
    return ErrnoStatus("cannot fsync " + tmp, err);
  }
  ::close(fd);
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    int err = errno;
    ::unlink(tmp.c_str());
    return ErrnoStatus("cannot rename " + tmp + " to " + path, err);
  }
  // The rename is only durable once the directory entry is on disk.
  std::string dir = std::filesystem::path(path).parent_path().string();
  if (dir.empty()) dir = ".";
  int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
  return Status::Ok();
}

#endif  // _WIN32

Result<std::string> ReadSecretFile(const std::string& path) {
  SIGNUM_ASSIGN_OR_RETURN(std::string secret, ReadFile(path));
  if (!secret.empty() && secret.back() == '\n') secret.pop_back();
  if (!secret.empty() && secret.back() == '\r') secret.pop_back();
  return secret;
}

std::string ResolvePath(const std::string& base_dir, const std::string& path) {
  if (path.empty() || path.front() == '/' || base_dir.empty()) return path;
  return (std::filesystem::path(base_dir) / path).lexically_normal().string();
}

}  // namespace signum

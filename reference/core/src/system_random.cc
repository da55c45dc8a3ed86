#include "signum/core/system_random.h"

#ifdef _WIN32
#include <windows.h>
// windows.h first: bcrypt.h needs its types.
#include <bcrypt.h>
#else
#include <fcntl.h>
#include <sys/random.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#endif

#include <algorithm>
#include <string>

namespace signum {

Result<Bytes> SystemRandomBytes(size_t count) {
  Bytes out(count);
  if (count == 0) return out;
#ifdef _WIN32
  if (count > 0xffffffffu) return InvalidArgumentError("too many random bytes requested");
  const NTSTATUS rc = BCryptGenRandom(nullptr, out.data(), static_cast<ULONG>(count),
                                      BCRYPT_USE_SYSTEM_PREFERRED_RNG);
  if (rc < 0) {
    return InternalError("BCryptGenRandom failed: status " + std::to_string(static_cast<long>(rc)));
  }
  return out;
#else
  size_t filled = 0;
#ifdef __APPLE__
  // macOS has no getrandom; getentropy gives at most 256 bytes a call and never fails short.
  while (filled < count) {
    const size_t n = std::min<size_t>(256, count - filled);
    if (::getentropy(out.data() + filled, n) != 0)
      return InternalError(std::string("getentropy failed: ") + std::strerror(errno));
    filled += n;
  }
#else
  while (filled < count) {
    const ssize_t n = ::getrandom(out.data() + filled, count - filled, 0);
    if (n > 0) {
      filled += static_cast<size_t>(n);
    } else if (n < 0 && errno == EINTR) {
      continue;
    } else if (n < 0 && errno == ENOSYS) {
      break;  // a kernel older than 3.17: read /dev/urandom below
    } else {
      return InternalError(std::string("getrandom failed: ") + std::strerror(errno));
    }
  }
#endif
  if (filled == count) return out;
  const int fd = ::open("/dev/urandom", O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return InternalError(std::string("cannot open /dev/urandom: ") + std::strerror(errno));
  while (filled < count) {
    const ssize_t n = ::read(fd, out.data() + filled, count - filled);
    if (n > 0) {
      filled += static_cast<size_t>(n);
    } else if (n < 0 && errno == EINTR) {
      continue;
    } else {
      const std::string why = n == 0 ? "end of file" : std::strerror(errno);
      ::close(fd);
      return InternalError("reading /dev/urandom failed: " + why);
    }
  }
  ::close(fd);
  return out;
#endif
}

}  // namespace signum

// CurrentProcessContext() on Linux and macOS: the platform layer (signum/core/posix_platform.h:
// /proc on Linux, dyld and sysctl on macOS), gethostname, getpid/getuid.
#include <unistd.h>

#include <string>

#include "signum/core/command_line_redaction.h"
#include "signum/core/posix_platform.h"
#include "signum/provider/process_context.h"

namespace signum::provider {
namespace {

// Enough for any policy match and the audit log; a hostile command line is cut, not read whole.
constexpr size_t kMaxArgumentBytes = 64 * 1024;

}  // namespace

wire::CallerContext CurrentProcessContext() {
  wire::CallerContext context;
  const std::string path = posix::OwnExecutablePath();
  if (!path.empty()) {
    const size_t slash = path.rfind('/');
    context.process = SanitizeUtf8(slash == std::string::npos ? path : path.substr(slash + 1));
  }
  if (std::optional<std::string> raw = posix::ArgumentsOf(::getpid(), kMaxArgumentBytes)) {
    // Secrets (--pin 1234 ...) are hidden before the line leaves the process, and before it is cut.
    std::string command_line = redaction::RedactedCommandLineFromNulSeparated(*raw);
    if (command_line.size() > kMaxCallerCommandLine) command_line.resize(kMaxCallerCommandLine);
    context.command_line = SanitizeUtf8(command_line);
  }
  char host[256] = {};
  if (::gethostname(host, sizeof host - 1) == 0) context.host = SanitizeUtf8(host);
  context.pid = static_cast<long>(::getpid());
  context.uid = static_cast<long>(::getuid());
  return context;
}

}  // namespace signum::provider

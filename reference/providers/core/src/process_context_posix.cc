// CurrentProcessContext() on Linux and macOS: /proc, gethostname, getpid/getuid.
#include <limits.h>
#include <unistd.h>

#include <fstream>
#include <iterator>
#include <string>

#include "signum/core/command_line_redaction.h"
#include "signum/provider/process_context.h"

namespace signum::provider {

wire::CallerContext CurrentProcessContext() {
  wire::CallerContext context;
  char exe[PATH_MAX];
  const ssize_t n = ::readlink("/proc/self/exe", exe, sizeof exe - 1);
  if (n > 0) {
    std::string path(exe, static_cast<size_t>(n));
    const size_t slash = path.rfind('/');
    context.process = SanitizeUtf8(slash == std::string::npos ? path : path.substr(slash + 1));
  }
  std::ifstream cmdline("/proc/self/cmdline", std::ios::binary);
  if (cmdline) {
    const std::string raw((std::istreambuf_iterator<char>(cmdline)),
                          std::istreambuf_iterator<char>());
    // Secrets (--pin 1234 ...) are hidden before the line leaves the process, and before it is cut.
    std::string command_line = redaction::RedactedCommandLineFromNulSeparated(raw);
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

// What a provider tells the agent (and so the server's policies and audit log) about the process
// it runs in. The agent also derives pid/uid/executable from the socket peer and prefers those;
// the command line only the process itself knows.
#pragma once

#include <string>
#include <string_view>

#include "signum/core/wire.h"

namespace signum::provider {

// Long enough for any real signing command, short enough to keep every request small.
inline constexpr size_t kMaxCallerCommandLine = 4096;

// process = basename of the executable, command_line = the arguments joined by spaces (truncated
// to kMaxCallerCommandLine), host, pid and (POSIX) uid; per platform in process_context_*.cc.
// Never fails: what cannot be read stays empty.
wire::CallerContext CurrentProcessContext();

// Keeps valid UTF-8 sequences (RFC 3629) and replaces every other byte, and control characters
// other than tab, with '?': JSON strings must be valid UTF-8, and a command line is just bytes.
std::string SanitizeUtf8(std::string_view in);

}  // namespace signum::provider

// File helpers with the durability rules Signum's state needs.
#pragma once

#include <string>
#include <string_view>

#include "signum/core/status.h"

namespace signum {

Result<std::string> ReadFile(const std::string& path);
// Writes to "<path>.tmp-<pid>", fsyncs it, renames it over path and fsyncs the directory, so a
// crash leaves either the old or the new content, never half of it. mode is the new file's mode.
Status WriteFileAtomically(const std::string& path, std::string_view content, unsigned mode = 0600);
// Reads a secret (PIN, token) from a file, trimming one trailing newline.
Result<std::string> ReadSecretFile(const std::string& path);
// Resolves path relative to base_dir unless it is absolute.
std::string ResolvePath(const std::string& base_dir, const std::string& path);

}  // namespace signum

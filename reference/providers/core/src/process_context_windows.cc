// CurrentProcessContext() on Windows: the module path and command line of the calling process
// (signtool.exe, powershell.exe ...), the computer name and the process id. There is no uid: the
// agent identifies Windows callers by its own secret-authenticated endpoint.
#include <windows.h>

#include <string>

#include "signum/core/command_line_redaction.h"
#include "signum/provider/process_context.h"
#include "signum/provider/wide_string.h"

namespace signum::provider {

wire::CallerContext CurrentProcessContext() {
  wire::CallerContext context;
  std::wstring path(32768, L'\0');
  const DWORD n = GetModuleFileNameW(nullptr, path.data(), static_cast<DWORD>(path.size()));
  if (n > 0 && n < path.size()) {
    path.resize(n);
    const size_t slash = path.find_last_of(L"\\/");
    context.process =
        SanitizeUtf8(Utf8FromWide(slash == std::wstring::npos ? path : path.substr(slash + 1)));
  }
  // Secrets (signtool /p ...) are hidden before the line leaves the process, and before it is cut.
  std::string command_line = redaction::RedactCommandLine(Utf8FromWide(GetCommandLineW()));
  if (command_line.size() > kMaxCallerCommandLine) command_line.resize(kMaxCallerCommandLine);
  context.command_line = SanitizeUtf8(command_line);
  wchar_t host[MAX_COMPUTERNAME_LENGTH + 1] = {};
  DWORD host_len = MAX_COMPUTERNAME_LENGTH + 1;
  if (GetComputerNameW(host, &host_len)) context.host = SanitizeUtf8(Utf8FromWide(host));
  context.pid = static_cast<long>(GetCurrentProcessId());
  return context;
}

}  // namespace signum::provider

// agent_platform.h on Windows.
#include <winsock2.h>
#include <windows.h>

#include <cstdlib>
#include <filesystem>
#include <mutex>
#include <system_error>

#include "agent_platform.h"

namespace signum::agent {
namespace {

std::mutex g_stop_mu;
std::function<void(const std::string&)>* g_stop = nullptr;
bool g_stopped = false;                 // under g_stop_mu: AgentStopped() was called
HANDLE g_stopped_event = nullptr;       // set by AgentStopped()
// Windows ends the process once the handler returns for these, and gives it a few seconds.
constexpr DWORD kCleanupWaitMs = 4500;

BOOL WINAPI OnConsoleControl(DWORD event) {
  const char* why = event == CTRL_C_EVENT       ? "received Ctrl+C"
                    : event == CTRL_BREAK_EVENT ? "received Ctrl+Break"
                    : event == CTRL_CLOSE_EVENT ? "its console is closing"
                    : event == CTRL_LOGOFF_EVENT ? "the user is logging off"
                                                 : "the system is shutting down";
  std::function<void(const std::string&)>* stop = nullptr;
  {
    std::lock_guard lock(g_stop_mu);
    if (g_stopped) return TRUE;  // Run() is over: nothing left to stop
    stop = g_stop;
    g_stop = nullptr;  // once
  }
  if (stop != nullptr) (*stop)(why);
  // Ctrl+C / Break: the process ends when Run() returns, after closing its endpoint. Close,
  // logoff, shutdown: the system ends it when we return, so wait for that cleanup here.
  if (event != CTRL_C_EVENT && event != CTRL_BREAK_EVENT && g_stopped_event != nullptr)
    WaitForSingleObject(g_stopped_event, kCleanupWaitMs);
  return TRUE;
}

}  // namespace

std::string DirName(const std::string& path) {
  const size_t slash = path.find_last_of("/\\");
  if (slash == std::string::npos) return ".";
  if (slash == 0 || (slash == 2 && path.size() > 1 && path[1] == ':')) return path.substr(0, slash + 1);
  return path.substr(0, slash);
}

Status MakePrivateDirectory(const std::string& dir) {
  if (dir.empty() || dir == ".") return Status::Ok();
  std::error_code ec;
  const std::filesystem::path p = std::filesystem::u8path(dir);
  if (std::filesystem::is_directory(p, ec)) return Status::Ok();
  if (std::filesystem::exists(p, ec))
    return FailedPreconditionError(dir + " exists and is not a directory");
  if (!std::filesystem::create_directories(p, ec) && ec)
    return FailedPreconditionError("cannot create directory " + dir + ": " + ec.message());
  return Status::Ok();
}

std::string AgentUserName() {
  char name[256] = {};
  DWORD size = sizeof name;
  if (!GetUserNameA(name, &size)) return "unknown-user";
  const char* domain = std::getenv("USERDOMAIN");
  return (domain != nullptr && *domain != '\0' ? std::string(domain) + "\\" : std::string()) + name;
}

std::string LocalHostname() {
  char name[MAX_COMPUTERNAME_LENGTH + 1] = {};
  DWORD size = sizeof name;
  if (!GetComputerNameA(name, &size)) return "localhost";
  return name;
}

long CurrentProcessId() { return static_cast<long>(GetCurrentProcessId()); }

void BlockTerminationSignals() {}  // console control events arrive on a thread of their own

void StopOnTerminationRequest(std::function<void(const std::string& why)> stop) {
  std::lock_guard lock(g_stop_mu);
  g_stop = new std::function<void(const std::string&)>(std::move(stop));  // lives until the end
  g_stopped_event = CreateEventW(nullptr, TRUE, FALSE, nullptr);
  SetConsoleCtrlHandler(OnConsoleControl, TRUE);
}

void AgentStopped() {
  {
    std::lock_guard lock(g_stop_mu);
    g_stopped = true;
    g_stop = nullptr;
  }
  if (g_stopped_event != nullptr) SetEvent(g_stopped_event);
}

}  // namespace signum::agent

#include "signum/core/log.h"

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <mutex>

namespace signum {
namespace {

std::atomic<int> g_level{static_cast<int>(LogLevel::kInfo)};
std::mutex g_mu;
FILE* g_file = nullptr;  // nullptr = stderr

const char* LevelName(LogLevel level) {
  switch (level) {
    case LogLevel::kDebug:
      return "DEBUG";
    case LogLevel::kInfo:
      return "INFO";
    case LogLevel::kWarning:
      return "WARN";
    case LogLevel::kError:
      return "ERROR";
  }
  return "?";
}

}  // namespace

void SetLogLevel(LogLevel level) { g_level = static_cast<int>(level); }
LogLevel GetLogLevel() { return static_cast<LogLevel>(g_level.load()); }

bool SetLogLevelByName(std::string_view name) {
  if (name == "debug")
    SetLogLevel(LogLevel::kDebug);
  else if (name == "info")
    SetLogLevel(LogLevel::kInfo);
  else if (name == "warning" || name == "warn")
    SetLogLevel(LogLevel::kWarning);
  else if (name == "error")
    SetLogLevel(LogLevel::kError);
  else
    return false;
  return true;
}

bool SetLogFile(const std::string& path) {
  std::lock_guard lock(g_mu);
  if (g_file) {
    fclose(g_file);
    g_file = nullptr;
  }
  if (path.empty()) return true;
  g_file = fopen(path.c_str(), "a");
  return g_file != nullptr;
}

void LogLine(LogLevel level, std::string_view component, std::string_view message) {
  const auto now = std::chrono::system_clock::now();
  const std::time_t secs = std::chrono::system_clock::to_time_t(now);
  const auto millis =
      std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
  std::tm tm{};
#ifdef _WIN32
  gmtime_s(&tm, &secs);  // the same, argument order and all, as Microsoft's CRT spells it
#else
  gmtime_r(&secs, &tm);
#endif
  char stamp[32];
  std::strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &tm);
  std::lock_guard lock(g_mu);
  FILE* out = g_file ? g_file : stderr;
  std::fprintf(out, "%s.%03dZ %-5s [%d] %.*s: %.*s\n", stamp, static_cast<int>(millis),
               LevelName(level), static_cast<int>(getpid()), static_cast<int>(component.size()),
               component.data(), static_cast<int>(message.size()), message.data());
  std::fflush(out);
}

}  // namespace signum

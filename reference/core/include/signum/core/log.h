// Minimal leveled logging to stderr (or a file), one line per event. Secrets never go in here.
#pragma once

#include <sstream>
#include <string>
#include <string_view>

namespace signum {

enum class LogLevel { kDebug = 0, kInfo = 1, kWarning = 2, kError = 3 };

void SetLogLevel(LogLevel level);
LogLevel GetLogLevel();
// "debug", "info", "warning", "error"; unknown names leave the level unchanged and return false.
bool SetLogLevelByName(std::string_view name);
// Log to this file (appending) instead of stderr; empty path means stderr.
bool SetLogFile(const std::string& path);
void LogLine(LogLevel level, std::string_view component, std::string_view message);

}  // namespace signum

#define SIGNUM_LOG(level, component, expr)                                      \
  do {                                                                          \
    if (static_cast<int>(level) >= static_cast<int>(::signum::GetLogLevel())) { \
      std::ostringstream signum_log_stream_;                                    \
      signum_log_stream_ << expr;                                               \
      ::signum::LogLine(level, component, signum_log_stream_.str());            \
    }                                                                           \
  } while (0)
#define SIGNUM_LOG_DEBUG(c, e) SIGNUM_LOG(::signum::LogLevel::kDebug, c, e)
#define SIGNUM_LOG_INFO(c, e) SIGNUM_LOG(::signum::LogLevel::kInfo, c, e)
#define SIGNUM_LOG_WARN(c, e) SIGNUM_LOG(::signum::LogLevel::kWarning, c, e)
#define SIGNUM_LOG_ERROR(c, e) SIGNUM_LOG(::signum::LogLevel::kError, c, e)

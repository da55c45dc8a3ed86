// The envelope of trace format v1 (docs/trace-format.md), shared by its readers: signum-replay
// (PKCS#11 traces) and signum-cng-replay.exe (KSP/CSP traces). JSON lines; every line carries
// "v"; the first is a header naming the trace's kind; a reader refuses any other version rather
// than guess what a newer writer meant.
#pragma once

#include <cstddef>
#include <initializer_list>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "signum/core/status.h"

namespace signum::trace_file {

inline constexpr int kVersion = 1;

// One recorded call and the line of the file it came from (for messages).
struct Record {
  size_t line = 0;
  nlohmann::json j;
  const nlohmann::json& args() const { return j.at("args"); }
  const nlohmann::json& out() const { return j.at("out"); }
  std::string fn() const { return j.at("fn").get<std::string>(); }
  // The recorded result's numeric value, as the interface types it (CK_RV, or the KSP's
  // SECURITY_STATUS / the CSP's Win32 code).
  template <typename Code>
  Code code() const {
    return j.at("rv").at("value").get<Code>();
  }
};

// Both replayers' exit status (docs/trace-format.md): every call matched, a divergence, or the
// trace or the module cannot be used.
inline constexpr int kReplayMatched = 0;
inline constexpr int kReplayDiverged = 1;
inline constexpr int kReplayUnusable = 2;

struct TraceFile {
  nlohmann::json header;
  std::vector<Record> calls;
};

// Reads `path`: its header must be of `kind` ("signum-pkcs11-trace", "signum-cng-trace") and
// every call must have each of `fields`. kInvalidArgument names the file and line at fault
// ("path:3: trace format version 2 is not supported by this reader (supported: 1)"); kNotFound
// when the file cannot be opened.
Result<TraceFile> Read(const std::string& path, std::string_view kind,
                       std::initializer_list<const char*> fields);

}  // namespace signum::trace_file

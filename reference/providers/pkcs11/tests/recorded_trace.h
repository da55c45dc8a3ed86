// Reading back what the module recorded with SIGNUM_PKCS11_RECORD (trace format v1,
// docs/trace-format.md): the raw bytes (to search for secrets) and the parsed lines, checked
// against the format's required fields as they are read.
#pragma once

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "signum/core/bytes.h"
#include "signum/core/encoding.h"
#include "signum/core/files.h"
#include "signum/core/pkcs11.h"

namespace signum::pkcs11::testing {

struct RecordedTrace {
  std::string bytes;
  nlohmann::json header;
  std::vector<nlohmann::json> calls;

  std::vector<std::string> Functions() const {
    std::vector<std::string> names;
    for (const auto& c : calls) names.push_back(c["fn"].get<std::string>());
    return names;
  }
  // The calls of fn that returned rv, in order.
  std::vector<nlohmann::json> Calls(std::string_view fn, CK_RV rv) const {
    std::vector<nlohmann::json> found;
    for (const auto& c : calls) {
      if (c["fn"] == fn && c["rv"]["value"] == rv) found.push_back(c);
    }
    return found;
  }
};

inline RecordedTrace ReadRecordedTrace(const std::string& path) {
  RecordedTrace trace;
  auto bytes = ReadFile(path);
  EXPECT_TRUE(bytes.ok()) << path;
  if (!bytes.ok()) return trace;
  trace.bytes = *bytes;
  std::istringstream lines(trace.bytes);
  std::string line;
  while (std::getline(lines, line)) {
    nlohmann::json j = nlohmann::json::parse(line, nullptr, false);
    EXPECT_FALSE(j.is_discarded()) << line;
    EXPECT_EQ(j.value("v", 0), 1) << line;
    if (trace.header.is_null()) {
      trace.header = j;
      continue;
    }
    EXPECT_NE(j.value("kind", ""), "signum-pkcs11-trace") << "a second header: " << line;
    for (const char* field :
         {"seq", "fn", "pid", "thread", "t_start", "t_end", "args", "rv", "out"})
      EXPECT_TRUE(j.contains(field)) << field << " missing in " << line;
    EXPECT_TRUE(j["rv"].contains("name") && j["rv"].contains("value")) << line;
    trace.calls.push_back(std::move(j));
  }
  return trace;
}

// A recorded byte string (hex) as bytes.
inline Bytes RecordedBytes(const nlohmann::json& hex) {
  return HexDecode(hex.get<std::string>()).value();
}

}  // namespace signum::pkcs11::testing

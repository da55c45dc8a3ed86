#include "signum/core/trace_file.h"

#include <fstream>

namespace signum::trace_file {

Result<TraceFile> Read(const std::string& path, std::string_view kind,
                       std::initializer_list<const char*> fields) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return NotFoundError(path + ": cannot open the trace");
  TraceFile trace;
  bool have_header = false;
  std::string text;
  for (size_t line = 1; std::getline(in, text); ++line) {
    if (text.find_first_not_of(" \t\r") == std::string::npos) continue;
    nlohmann::json j = nlohmann::json::parse(text, nullptr, false);
    const std::string where = path + ":" + std::to_string(line) + ": ";
    if (j.is_discarded() || !j.is_object()) return InvalidArgumentError(where + "not a JSON object");
    if (!j.contains("v") || !j["v"].is_number_integer())
      return InvalidArgumentError(where + "no trace format version (\"v\")");
    if (j["v"].get<long long>() != kVersion)
      return InvalidArgumentError(where + "trace format version " + j["v"].dump() +
                                  " is not supported by this reader (supported: " +
                                  std::to_string(kVersion) + ")");
    if (!have_header) {
      if (j.value("kind", "") != kind)
        return InvalidArgumentError(where + "not a " + std::string(kind) + " header");
      trace.header = std::move(j);
      have_header = true;
      continue;
    }
    for (const char* field : fields)
      if (!j.contains(field))
        return InvalidArgumentError(where + "call without \"" + field + "\"");
    trace.calls.push_back(Record{line, std::move(j)});
  }
  if (!have_header) return InvalidArgumentError(path + ": empty trace (no header)");
  return trace;
}

}  // namespace signum::trace_file

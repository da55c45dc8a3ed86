#include "signum/core/http_request.h"

#include <algorithm>

#include "signum/core/encoding.h"

namespace signum {

bool IsValidRequestTarget(std::string_view target) {
  return !target.empty() && std::none_of(target.begin(), target.end(), [](char c) {
    return static_cast<unsigned char>(c) <= 0x20 || c == 0x7f;
  });
}

Result<std::string> FormatHttpRequest(const std::string& method, const std::string& target,
                                      const std::string& host_header,
                                      const std::string& bearer_token, const std::string& body,
                                      const std::map<std::string, std::string>& extra_headers) {
  if (!IsHttpToken(method)) return InvalidArgumentError("invalid HTTP method '" + method + "'");
  if (!IsValidRequestTarget(target))
    return InvalidArgumentError("invalid request target '" + target + "'");
  std::map<std::string, std::pair<std::string, std::string>> fields;  // by lower-case name
  fields["host"] = {"Host", host_header};
  fields["user-agent"] = {"User-Agent", "signum-https-client"};
  fields["accept"] = {"Accept", "application/json"};
  if (!bearer_token.empty()) {
    if (!IsSafeHttpFieldValue(bearer_token)) return InvalidArgumentError("invalid bearer token");
    fields["authorization"] = {"Authorization", "Bearer " + bearer_token};
  }
  if (!body.empty()) fields["content-type"] = {"Content-Type", "application/json"};
  for (const auto& [name, value] : extra_headers) {
    if (!IsHttpToken(name) || !IsSafeHttpFieldValue(value)) {
      return InvalidArgumentError("invalid HTTP header '" + name + "'");
    }
    const std::string lower = AsciiLower(name);
    if (lower == "content-length" || lower == "transfer-encoding") continue;  // we frame
    fields[lower] = {name, value};
  }
  std::string request = method + " " + target + " HTTP/1.1\r\n";
  for (const auto& [lower, field] : fields) request += field.first + ": " + field.second + "\r\n";
  if (!body.empty() || method == "POST" || method == "PUT" || method == "PATCH") {
    request += "Content-Length: " + std::to_string(body.size()) + "\r\n";
  }
  request += "\r\n";
  request += body;
  return request;
}

}  // namespace signum

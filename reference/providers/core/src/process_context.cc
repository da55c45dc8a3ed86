#include "signum/provider/process_context.h"

#include <string>

namespace signum::provider {
std::string SanitizeUtf8(std::string_view in) {
  std::string out;
  out.reserve(in.size());
  size_t i = 0;
  while (i < in.size()) {
    const auto c = static_cast<unsigned char>(in[i]);
    size_t len = c < 0x80           ? 1
                 : (c >> 5) == 0x6  ? 2
                 : (c >> 4) == 0xE  ? 3
                 : (c >> 3) == 0x1E ? 4
                                    : 0;
    bool valid = len != 0 && i + len <= in.size();
    for (size_t k = 1; valid && k < len; ++k) {
      valid = (static_cast<unsigned char>(in[i + k]) & 0xC0) == 0x80;
    }
    // Overlong forms, UTF-16 surrogates and code points past U+10FFFF are invalid too (RFC 3629).
    if (valid && len >= 2) {
      const auto c1 = static_cast<unsigned char>(in[i + 1]);
      if (len == 2 && c < 0xC2) valid = false;
      if (len == 3 && c == 0xE0 && c1 < 0xA0) valid = false;
      if (len == 3 && c == 0xED && c1 > 0x9F) valid = false;
      if (len == 4 && c == 0xF0 && c1 < 0x90) valid = false;
      if (len == 4 && (c > 0xF4 || (c == 0xF4 && c1 > 0x8F))) valid = false;
    }
    if (valid && c < 0x20 && c != '\t') valid = false;  // control characters: not in a log line
    if (!valid) {
      out.push_back('?');
      ++i;
      continue;
    }
    out.append(in.substr(i, len));
    i += len;
  }
  return out;
}

}  // namespace signum::provider

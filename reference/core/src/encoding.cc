// Base64 and hex, hand-written so that they need no OpenSSL (see encoding.h).
#include "signum/core/encoding.h"

#include <cstdint>

namespace signum {

std::string Base64Encode(ByteView data) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((data.size() + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 3 <= data.size(); i += 3) {
    const uint32_t v = (uint32_t{data[i]} << 16) | (uint32_t{data[i + 1]} << 8) | data[i + 2];
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += kAlphabet[(v >> 6) & 63];
    out += kAlphabet[v & 63];
  }
  const size_t rest = data.size() - i;
  if (rest > 0) {
    uint32_t v = uint32_t{data[i]} << 16;
    if (rest == 2) v |= uint32_t{data[i + 1]} << 8;
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += rest == 2 ? kAlphabet[(v >> 6) & 63] : '=';
    out += '=';
  }
  return out;
}

Result<Bytes> Base64Decode(std::string_view text) {
  auto value_of = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
  };
  if (text.size() % 4 != 0) {
    return InvalidArgumentError("base64 text length " + std::to_string(text.size()) +
                                " is not a multiple of 4");
  }
  Bytes out;
  out.reserve(text.size() / 4 * 3);
  for (size_t i = 0; i < text.size(); i += 4) {
    const bool last = i + 4 == text.size();
    size_t padding = 0;
    if (last) {
      if (text[i + 3] == '=') padding = text[i + 2] == '=' ? 2 : 1;
    }
    uint32_t v = 0;
    for (size_t j = 0; j < 4; ++j) {
      if (j >= 4 - padding) {
        v <<= 6;
        continue;
      }
      const int d = value_of(text[i + j]);
      if (d < 0) {
        return InvalidArgumentError("invalid base64 character at offset " + std::to_string(i + j));
      }
      v = (v << 6) | static_cast<uint32_t>(d);
    }
    // Non-zero bits under the padding mean the text was not produced by a base64 encoder.
    if ((padding == 1 && (v & 0xff) != 0) || (padding == 2 && (v & 0xffff) != 0)) {
      return InvalidArgumentError("non-canonical base64 padding");
    }
    out.push_back(static_cast<uint8_t>(v >> 16));
    if (padding < 2) out.push_back(static_cast<uint8_t>(v >> 8));
    if (padding < 1) out.push_back(static_cast<uint8_t>(v));
  }
  return out;
}

std::string AsciiLower(std::string_view text) {
  std::string out(text);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

bool EqualsIgnoringAsciiCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    const char x = a[i] >= 'A' && a[i] <= 'Z' ? static_cast<char>(a[i] - 'A' + 'a') : a[i];
    const char y = b[i] >= 'A' && b[i] <= 'Z' ? static_cast<char>(b[i] - 'A' + 'a') : b[i];
    if (x != y) return false;
  }
  return true;
}

bool IsHttpToken(std::string_view text) {
  if (text.empty()) return false;
  for (const char c : text) {
    const bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
    if (!alnum && std::string_view("!#$%&'*+-.^_`|~").find(c) == std::string_view::npos) {
      return false;
    }
  }
  return true;
}

bool IsSafeHttpFieldValue(std::string_view text) {
  return text.find_first_of(std::string_view("\r\n\0", 3)) == std::string_view::npos;
}

std::string PemEncode(std::string_view label, ByteView der) {
  const std::string b64 = Base64Encode(der);
  std::string out = "-----BEGIN " + std::string(label) + "-----\n";
  for (size_t i = 0; i < b64.size(); i += 64) {
    out.append(b64, i, 64);
    out += '\n';
  }
  out += "-----END " + std::string(label) + "-----\n";
  return out;
}

Result<std::vector<Bytes>> PemDecodeAll(std::string_view text, std::string_view label) {
  const std::string begin_line = "-----BEGIN " + std::string(label) + "-----";
  const std::string end_line = "-----END " + std::string(label) + "-----";
  std::vector<Bytes> blocks;
  for (size_t at = text.find(begin_line); at != std::string_view::npos;
       at = text.find(begin_line, at)) {
    const size_t body = at + begin_line.size();
    const size_t end = text.find(end_line, body);
    const std::string which = "PEM " + std::string(label) + " block " +
                              std::to_string(blocks.size() + 1);
    if (end == std::string_view::npos) return InvalidArgumentError(which + " does not end");
    std::string base64;
    for (char ch : text.substr(body, end - body)) {
      if (ch != '\n' && ch != '\r' && ch != ' ' && ch != '\t') base64 += ch;
    }
    auto der = Base64Decode(base64);
    if (!der.ok()) return der.status().WithContext(which);
    blocks.push_back(std::move(der).value());
    at = end + end_line.size();
  }
  return blocks;
}

std::string HexEncode(ByteView data) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(data.size() * 2);
  for (uint8_t b : data) {
    out += kDigits[b >> 4];
    out += kDigits[b & 15];
  }
  return out;
}

Result<Bytes> HexDecode(std::string_view hex) {
  auto nibble = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  Bytes out;
  out.reserve(hex.size() / 2);
  size_t i = 0;
  while (i < hex.size()) {
    // A separator is only allowed between whole bytes: "ab:cd", not ":ab", "a:b" or "ab::cd".
    if (hex[i] == ':') {
      if (out.empty() || i + 1 >= hex.size() || hex[i + 1] == ':') {
        return InvalidArgumentError("misplaced ':' in hex at offset " + std::to_string(i));
      }
      ++i;
      continue;
    }
    if (i + 1 >= hex.size()) return InvalidArgumentError("hex text has an odd number of digits");
    const int hi = nibble(hex[i]);
    const int lo = nibble(hex[i + 1]);
    if (hi < 0 || lo < 0) {
      return InvalidArgumentError("invalid hex character at offset " +
                                  std::to_string(hi < 0 ? i : i + 1));
    }
    out.push_back(static_cast<uint8_t>((hi << 4) | lo));
    i += 2;
  }
  return out;
}

std::string ToValidUtf8(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  size_t i = 0;
  while (i < text.size()) {
    const auto b0 = static_cast<uint8_t>(text[i]);
    size_t len = 0;
    uint32_t min = 0;
    if (b0 < 0x80) {
      len = 1;
    } else if ((b0 & 0xe0) == 0xc0) {
      len = 2;
      min = 0x80;
    } else if ((b0 & 0xf0) == 0xe0) {
      len = 3;
      min = 0x800;
    } else if ((b0 & 0xf8) == 0xf0) {
      len = 4;
      min = 0x10000;
    }
    bool valid = len > 0 && i + len <= text.size();
    uint32_t cp = len == 1 ? b0 : len == 2 ? (b0 & 0x1f) : len == 3 ? (b0 & 0x0f) : (b0 & 0x07);
    for (size_t k = 1; valid && k < len; ++k) {
      const auto b = static_cast<uint8_t>(text[i + k]);
      if ((b & 0xc0) != 0x80) valid = false;
      cp = (cp << 6) | (b & 0x3f);
    }
    // Overlong forms, UTF-16 surrogates and values past U+10FFFF are not UTF-8 either.
    if (valid && len > 1 && (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))) {
      valid = false;
    }
    if (valid) {
      out.append(text.substr(i, len));
      i += len;
    } else {
      out += '?';
      ++i;
    }
  }
  return out;
}

std::string TruncateUtf8(std::string_view valid_utf8, size_t max_bytes) {
  if (valid_utf8.size() <= max_bytes) return std::string(valid_utf8);
  size_t end = max_bytes;
  // Back off over continuation bytes so the cut falls between characters.
  while (end > 0 && (static_cast<uint8_t>(valid_utf8[end]) & 0xc0) == 0x80) --end;
  return std::string(valid_utf8.substr(0, end));
}

}  // namespace signum

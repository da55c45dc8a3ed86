#include "signum/provider/der_reader.h"

#include <cstdio>

namespace signum::provider {

Result<DerElement> DerReader::Next(const char* what) {
  auto fail = [&](const std::string& why) -> Result<DerElement> {
    return InvalidArgumentError(std::string(what) + ": " + why);
  };
  if (rest_.size() < 2) return fail("truncated DER element");
  const uint8_t tag = rest_[0];
  if ((tag & 0x1f) == 0x1f) return fail("multi-byte tags are not supported");
  size_t header = 2;
  size_t length = rest_[1];
  if (length == 0x80) return fail("indefinite length is not DER");
  if (length > 0x80) {
    const size_t count = length & 0x7f;
    // 4 length octets describe up to 4 GiB; no certificate comes near that.
    if (count > 4) return fail("length of " + std::to_string(count) + " octets");
    if (rest_.size() < 2 + count) return fail("truncated length");
    length = 0;
    for (size_t i = 0; i < count; ++i) length = (length << 8) | rest_[2 + i];
    // DER: the shortest form, so a long form must be needed and have no leading zero octet.
    if (length < 0x80 || rest_[2] == 0) return fail("non-minimal length");
    header += count;
  }
  if (length > rest_.size() - header) {
    return fail("length " + std::to_string(length) + " exceeds the " +
                std::to_string(rest_.size() - header) + " bytes that remain");
  }
  DerElement element;
  element.tag = tag;
  element.encoding = rest_.subspan(0, header + length);
  element.content = rest_.subspan(header, length);
  rest_ = rest_.subspan(header + length);
  return element;
}

Result<DerElement> DerReader::Expect(uint8_t tag, const char* what) {
  if (rest_.empty()) return InvalidArgumentError(std::string(what) + ": missing");
  if (rest_[0] != tag) {
    char buf[64];
    std::snprintf(buf, sizeof buf, ": expected tag 0x%02x, found 0x%02x", tag, rest_[0]);
    return InvalidArgumentError(std::string(what) + buf);
  }
  return Next(what);
}

Status DerReader::ExpectEnd(const char* what) const {
  if (!rest_.empty()) {
    return InvalidArgumentError(std::string(what) + ": " + std::to_string(rest_.size()) +
                                " unexpected trailing bytes");
  }
  return Status::Ok();
}

Result<Bytes> PositiveIntegerBytes(const DerElement& integer, const char* what) {
  if (integer.tag != der::kInteger) return InvalidArgumentError(std::string(what) + ": not an INTEGER");
  ByteView v = integer.content;
  if (v.empty()) return InvalidArgumentError(std::string(what) + ": empty INTEGER");
  if (v[0] & 0x80) return InvalidArgumentError(std::string(what) + ": negative");
  // DER forbids a leading zero unless the next octet needs it (its top bit set).
  if (v.size() > 1 && v[0] == 0 && (v[1] & 0x80) == 0) {
    return InvalidArgumentError(std::string(what) + ": non-minimal INTEGER");
  }
  while (!v.empty() && v[0] == 0) v = v.subspan(1);
  if (v.empty()) return InvalidArgumentError(std::string(what) + ": zero");
  return Bytes(v.begin(), v.end());
}

Result<std::string> ObjectIdentifierToString(ByteView oid) {
  if (oid.empty()) return InvalidArgumentError("empty OBJECT IDENTIFIER");
  std::string out;
  uint64_t value = 0;
  bool first = true;
  for (size_t i = 0; i < oid.size(); ++i) {
    if (value == 0 && oid[i] == 0x80) return InvalidArgumentError("non-minimal OID arc");
    if (value > (UINT64_MAX >> 7)) return InvalidArgumentError("OID arc too large");
    value = (value << 7) | (oid[i] & 0x7f);
    if (oid[i] & 0x80) {
      if (i + 1 == oid.size()) return InvalidArgumentError("truncated OID");
      continue;
    }
    if (first) {
      const uint64_t top = value < 40 ? 0 : value < 80 ? 1 : 2;
      out = std::to_string(top) + "." + std::to_string(value - top * 40);
      first = false;
    } else {
      out += "." + std::to_string(value);
    }
    value = 0;
  }
  return out;
}

}  // namespace signum::provider

#include "signum/ctk/der_writer.h"

namespace signum::ctk {
namespace {

void AppendLength(Bytes& out, size_t length) {
  if (length < 0x80) {
    out.push_back(static_cast<uint8_t>(length));
    return;
  }
  Bytes octets;
  for (size_t rest = length; rest != 0; rest >>= 8) {
    octets.insert(octets.begin(), static_cast<uint8_t>(rest & 0xff));
  }
  out.push_back(static_cast<uint8_t>(0x80 | octets.size()));
  out.insert(out.end(), octets.begin(), octets.end());
}

Bytes Tagged(uint8_t tag, ByteView content) {
  Bytes out{tag};
  AppendLength(out, content.size());
  out.insert(out.end(), content.begin(), content.end());
  return out;
}

}  // namespace

Bytes DerUnsignedInteger(ByteView magnitude) {
  size_t first = 0;
  while (first < magnitude.size() && magnitude[first] == 0) ++first;
  Bytes content;
  if (first == magnitude.size() || (magnitude[first] & 0x80) != 0) content.push_back(0);
  content.insert(content.end(), magnitude.begin() + static_cast<std::ptrdiff_t>(first),
                 magnitude.end());
  return Tagged(0x02, content);
}

Bytes DerSequence(ByteView content) { return Tagged(0x30, content); }

Result<Bytes> EcdsaRawToX962Der(ByteView raw) {
  if (raw.empty() || raw.size() % 2 != 0) {
    return InternalError("an ECDSA signature from the agent has " + std::to_string(raw.size()) +
                         " bytes: not r||s of two equal halves");
  }
  const size_t half = raw.size() / 2;
  Bytes content = DerUnsignedInteger(raw.subspan(0, half));
  const Bytes s = DerUnsignedInteger(raw.subspan(half));
  content.insert(content.end(), s.begin(), s.end());
  return DerSequence(content);
}

Bytes RsaPublicKeyDer(ByteView modulus, ByteView public_exponent) {
  Bytes content = DerUnsignedInteger(modulus);
  const Bytes e = DerUnsignedInteger(public_exponent);
  content.insert(content.end(), e.begin(), e.end());
  return DerSequence(content);
}

}  // namespace signum::ctk

// A bounded reader for the DER that providers must look into (certificates, public keys) on every
// platform, including mingw builds without OpenSSL. It checks every length against what remains
// before reading, accepts only definite lengths in minimal form and single-byte tags (all X.509
// needs), and never allocates: elements are views into the input.
#pragma once

#include <cstdint>
#include <string>

#include "signum/core/bytes.h"
#include "signum/core/status.h"

namespace signum::provider {

namespace der {
inline constexpr uint8_t kInteger = 0x02;
inline constexpr uint8_t kBitString = 0x03;
inline constexpr uint8_t kOctetString = 0x04;
inline constexpr uint8_t kNull = 0x05;
inline constexpr uint8_t kObjectIdentifier = 0x06;
inline constexpr uint8_t kUtf8String = 0x0c;
inline constexpr uint8_t kPrintableString = 0x13;
inline constexpr uint8_t kTeletexString = 0x14;
inline constexpr uint8_t kIa5String = 0x16;
inline constexpr uint8_t kUtcTime = 0x17;
inline constexpr uint8_t kGeneralizedTime = 0x18;
inline constexpr uint8_t kUniversalString = 0x1c;
inline constexpr uint8_t kBmpString = 0x1e;
inline constexpr uint8_t kSequence = 0x30;
inline constexpr uint8_t kSet = 0x31;
inline constexpr uint8_t kContextConstructed0 = 0xa0;  // [0] EXPLICIT
}  // namespace der

struct DerElement {
  uint8_t tag = 0;
  ByteView encoding;  // tag, length and content: what CKA_SUBJECT and friends hold
  ByteView content;
};

class DerReader {
 public:
  explicit DerReader(ByteView data) : rest_(data) {}

  bool empty() const { return rest_.empty(); }
  // The tag of the next element; 0 at the end.
  uint8_t PeekTag() const { return rest_.empty() ? 0 : rest_[0]; }
  // The next element, whatever its tag. what names it in errors ("certificate serial").
  Result<DerElement> Next(const char* what);
  // The next element, which must have this tag.
  Result<DerElement> Expect(uint8_t tag, const char* what);
  // Nothing may follow (the end of a SEQUENCE that must not carry more).
  Status ExpectEnd(const char* what) const;

 private:
  ByteView rest_;
};

// A positive INTEGER's magnitude, big-endian without leading zeros; negative or zero is an error.
Result<Bytes> PositiveIntegerBytes(const DerElement& integer, const char* what);
// "1.2.840.113549.1.1.1" from an OBJECT IDENTIFIER's content.
Result<std::string> ObjectIdentifierToString(ByteView oid_content);

}  // namespace signum::provider

// SHA-256 (FIPS 180-4) and HMAC-SHA256 (RFC 2104) in plain C++, for the code that cannot link
// OpenSSL: the agent protocol's TCP handshake (agent_protocol.h) runs in the Windows providers,
// which are built with mingw-w64 without OpenSSL. Everything else hashes with crypto.h.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>

#include "signum/core/bytes.h"

namespace signum {

inline constexpr size_t kSha256Bytes = 32;
using Sha256Digest = std::array<uint8_t, kSha256Bytes>;

class Sha256 {
 public:
  Sha256();
  void Update(ByteView data);
  // The digest of everything passed to Update(); the object must not be used afterwards.
  Sha256Digest Final();

 private:
  void Compress(const uint8_t* block);

  std::array<uint32_t, 8> state_;
  std::array<uint8_t, 64> block_{};
  size_t block_used_ = 0;
  uint64_t total_bytes_ = 0;
};

Sha256Digest Sha256Of(ByteView data);
Sha256Digest HmacSha256(ByteView key, ByteView message);

// Compares without an early exit, so the time taken does not tell how many leading bytes matched.
// Lengths are not secret: different lengths are unequal at once.
bool ConstantTimeEqual(ByteView a, ByteView b);

}  // namespace signum

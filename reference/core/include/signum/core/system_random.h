// Random bytes from the operating system, without OpenSSL (crypto.h's RandomBytes uses OpenSSL's
// generator): getrandom() with a /dev/urandom fallback on POSIX, BCryptGenRandom on Windows. For
// the agent protocol's handshake nonces, which the mingw-built Windows providers also make.
#pragma once

#include <cstddef>

#include "signum/core/bytes.h"
#include "signum/core/status.h"

namespace signum {

// kInternal when the system cannot supply them (never partial or predictable bytes).
Result<Bytes> SystemRandomBytes(size_t count);

}  // namespace signum

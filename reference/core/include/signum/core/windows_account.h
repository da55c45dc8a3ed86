// Windows only: the account a process runs as, for the agent's same-user check of a TCP peer
// (peer_windows.cc) and the owner-only ACL of a secret file (files_windows.cc).
#pragma once

#include <string>

#include "signum/core/bytes.h"

namespace signum {

// The user SID of `process`'s token (a HANDLE), as bytes; empty when it cannot be read.
Bytes TokenUserSid(void* process);
// "S-1-5-21-..."; "?" for bytes that are not a SID.
std::string SidText(const Bytes& sid);

}  // namespace signum

// The agent's Unix-socket endpoint: a user-only socket file and peers the kernel vouches for.
// unix_endpoint_posix.cc on Linux and macOS; on Windows (unix_endpoint_windows.cc) every call
// fails with the reason: the Windows agent serves loopback TCP only (SIGNUM_AGENT_SOCKET=off).
#pragma once

#include <cstdint>
#include <string>

#include "agent_socket.h"
#include "peer.h"
#include "signum/core/status.h"

namespace signum::agent {

struct UnixEndpoint {
  net::Socket socket = net::kNoSocket;  // non-blocking listener
  uint64_t inode = 0;                   // which socket file is ours, for RemoveUnixEndpoint
};

// Binds path (0600, in a directory only this user can write; a stale socket left by a killed
// agent is replaced, a live one or anything else is not) and listens on it.
Result<UnixEndpoint> OpenUnixEndpoint(const std::string& path);
// Unlinks path if it is still the socket OpenUnixEndpoint made (another agent may have replaced it).
void RemoveUnixEndpoint(const std::string& path, uint64_t inode);

// Who is on the other end of an accepted connection: the kernel's pid/uid/gid, refused
// (kPermissionDenied) unless the uid is this agent's, and what the system says of the process.
struct UnixPeer {
  PeerCredentials credentials;
  ProcessInfo process;
};
Result<UnixPeer> IdentifyUnixPeer(net::Socket connection);

}  // namespace signum::agent

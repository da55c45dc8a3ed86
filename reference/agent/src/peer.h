// Who is on the other end of a provider connection. On the Unix socket the kernel tells us
// (SO_PEERCRED) and /proc tells the rest; nothing the client claims about pid, uid or executable is
// believed there. Loopback TCP has no peer credential: the client's claims are passed on, marked.
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>

#include "signum/core/status.h"
#include "signum/core/wire.h"

namespace signum::agent {

struct PeerCredentials {
  pid_t pid = 0;
  uid_t uid = 0;
  gid_t gid = 0;
};

// SO_PEERCRED of a connected Unix socket.
Result<PeerCredentials> GetPeerCredentials(int fd);

// The agent serves one user: a peer with any other uid is refused (root included: root can read
// the user's files anyway, but a root-run tool signing as the user is a policy question we do not
// answer silently). Returns kPermissionDenied naming both uids.
Status CheckPeerUid(uid_t peer_uid, uid_t agent_euid);

// What /proc says about a process; empty strings when unreadable.
struct ProcessInfo {
  std::string executable;    // basename of readlink(/proc/PID/exe), else /proc/PID/comm
  std::string command_line;  // /proc/PID/cmdline with NULs as spaces
};
ProcessInfo ReadProcessInfo(pid_t pid, const std::string& proc_root = "/proc");

enum class Transport { kUnixSocket, kTcp };

// Marks the host of a context built from a TCP peer's unverified claims.
inline constexpr const char* kTcpPeerHostSuffix = " (tcp-peer)";

// The context the agent sends to the server for one request:
//   Unix socket: pid/uid from SO_PEERCRED, process and command line from /proc (the client's
//     command_line only when /proc gives nothing; its process claim never), host = gethostname().
//   TCP: the client's claims, host = "<hostname> (tcp-peer)".
// agent_id is always the agent's own.
wire::CallerContext BuildCallerContext(Transport transport,
                                       const std::optional<PeerCredentials>& peer,
                                       const ProcessInfo& process,
                                       const wire::CallerContext& claimed,
                                       const std::string& hostname, const std::string& agent_id);

std::string LocalHostname();

// The uid owning the other end of an accepted loopback TCP connection, from the kernel's socket
// tables (/proc/net/tcp and tcp6: the peer's socket is the one whose local address is our remote
// address and vice versa). nullopt when it cannot be told (no /proc, not loopback, not Linux):
// the caller then relies on the handshake alone.
std::optional<uid_t> LoopbackTcpPeerUid(int fd, const std::string& proc_root = "/proc");

}  // namespace signum::agent

// Who is on the other end of a provider connection. On the Unix socket the kernel tells us
// (SO_PEERCRED on Linux, LOCAL_PEERCRED/LOCAL_PEERPID on macOS) and /proc (macOS: libproc and
// sysctl) tells the rest; nothing the client claims about pid, uid or executable is believed there.
// Loopback TCP has no peer credential: the client's claims are passed on, marked.
// peer.cc is portable; peer_linux.cc and peer_macos.cc hold what each system does its own way.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>

#include "agent_platform.h"
#include "agent_socket.h"
#include "signum/core/status.h"
#include "signum/core/wire.h"

namespace signum::agent {

#ifdef _WIN32
// Windows has no uids; the Unix-socket peer (the only user of these) does not exist there.
using uid_t = std::uint32_t;
using gid_t = std::uint32_t;
#endif

struct PeerCredentials {
  pid_t pid = 0;
  uid_t uid = 0;
  gid_t gid = 0;
};

// The kernel's word on a connected Unix socket's peer (signum/core/posix_platform.h).
Result<PeerCredentials> GetPeerCredentials(int fd);

// The agent serves one user: a peer with any other uid is refused (root included: root can read
// the user's files anyway, but a root-run tool signing as the user is a policy question we do not
// answer silently). Returns kPermissionDenied naming both uids.
Status CheckPeerUid(uid_t peer_uid, uid_t agent_euid);

// What the system says about a process; empty strings when unreadable.
struct ProcessInfo {
  std::string executable;    // basename of its executable (Linux: /proc/PID/exe, else comm)
  std::string command_line;  // its arguments, secrets redacted, spaces between them
};
// proc_root: the /proc to read (tests give a fake one); macOS reads libproc and sysctl instead and
// ignores it.
ProcessInfo ReadProcessInfo(pid_t pid, const std::string& proc_root = "/proc");
// A process's arguments are at most a few pages for ordinary programs, but a hostile process can
// make them long; the server only needs enough to match policies and to audit.
inline constexpr size_t kMaxProcessArguments = 16 * 1024;
// The part both systems share: basename of the executable path (a Linux " (deleted)" suffix
// dropped) and the NUL-separated arguments redacted and joined.
ProcessInfo ProcessInfoFrom(std::string executable_path, const std::string& nul_separated_args);

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

// The uid owning the other end of an accepted loopback TCP connection, from the kernel's socket
// tables (/proc/net/tcp and tcp6: the peer's socket is the one whose local address is our remote
// address and vice versa). nullopt when it cannot be told (no /proc, not loopback; always on
// macOS, whose socket tables an unprivileged process cannot map to a uid): the caller then relies
// on the handshake alone.
std::optional<uid_t> LoopbackTcpPeerUid(int fd, const std::string& proc_root = "/proc");

// Another user's process on the agent's loopback port is never its client (the secret file is the
// owner's alone): kPermissionDenied naming both users when the system can tell (Linux: the socket
// tables above; Windows: the connection's owning process and its token's user), Ok when it is
// this user or cannot be told (macOS), leaving the handshake to decide.
Status CheckTcpPeerIsThisUser(net::Socket connection);
#ifdef _WIN32
// The process at the other end of an accepted loopback TCP connection, from the system's TCP
// table; 0 when it is not there.
unsigned long LoopbackTcpPeerProcessId(net::Socket connection);
#endif

}  // namespace signum::agent

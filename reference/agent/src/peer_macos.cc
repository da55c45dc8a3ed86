// The macOS half of peer.h: libproc and sysctl(KERN_PROCARGS2) through the core platform layer
// (signum/core/posix_platform.h) for another process's executable and arguments. There is no
// /proc/net: the owner of a loopback TCP peer cannot be told, and the TCP handshake (the agent's
// secret) is all that admits it. Linux: peer_linux.cc. Built by the macOS CI job (docs/macos.md).
#include <string>

#include "peer.h"
#include "signum/core/posix_platform.h"

namespace signum::agent {

std::optional<uid_t> LoopbackTcpPeerUid(int, const std::string&) { return std::nullopt; }

Status CheckTcpPeerIsThisUser(net::Socket) { return Status::Ok(); }  // cannot be told: handshake

ProcessInfo ReadProcessInfo(pid_t pid, const std::string&) {
  const std::optional<std::string> executable = posix::ExecutablePathOf(pid);
  const std::optional<std::string> arguments = posix::ArgumentsOf(pid, kMaxProcessArguments);
  return ProcessInfoFrom(executable.value_or(""), arguments.value_or(""));
}

}  // namespace signum::agent

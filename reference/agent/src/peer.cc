#include "peer.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <cstdio>
#include <fstream>
#include <sstream>

#include "signum/core/command_line_redaction.h"
#include "signum/core/encoding.h"

namespace signum::agent {
namespace {

std::string Basename(const std::string& path) {
  const size_t slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

// /proc/PID/cmdline is at most a few pages for ordinary programs, but a hostile process can make
// it long; the server only needs enough to match policies and to audit.
constexpr size_t kMaxCommandLine = 16 * 1024;

// An address as the kernel prints it in /proc/net/tcp{,6}: the address words as the host holds
// them, each %08X, then ":" and the port %04X in host order.
std::string ProcNetAddress(const sockaddr_storage& address) {
  char text[64];
  if (address.ss_family == AF_INET) {
    const auto& a = reinterpret_cast<const sockaddr_in&>(address);
    std::snprintf(text, sizeof text, "%08X:%04X", a.sin_addr.s_addr, ntohs(a.sin_port));
    return text;
  }
  const auto& a = reinterpret_cast<const sockaddr_in6&>(address);
  uint32_t words[4];
  std::memcpy(words, &a.sin6_addr, sizeof words);
  std::snprintf(text, sizeof text, "%08X%08X%08X%08X:%04X", words[0], words[1], words[2], words[3],
                ntohs(a.sin6_port));
  return text;
}

}  // namespace

std::optional<uid_t> LoopbackTcpPeerUid(int fd, const std::string& proc_root) {
  sockaddr_storage local{}, remote{};
  socklen_t local_len = sizeof local, remote_len = sizeof remote;
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&local), &local_len) != 0 ||
      ::getpeername(fd, reinterpret_cast<sockaddr*>(&remote), &remote_len) != 0 ||
      local.ss_family != remote.ss_family) {
    return std::nullopt;
  }
  // The peer's row: its local address is our remote one, its remote address our local one.
  const std::string peer_local = ProcNetAddress(remote);
  const std::string peer_remote = ProcNetAddress(local);
  std::ifstream table(proc_root + (local.ss_family == AF_INET ? "/net/tcp" : "/net/tcp6"));
  std::string line;
  std::getline(table, line);  // the header
  while (std::getline(table, line)) {
    std::istringstream fields(line);
    std::string slot, local_address, remote_address, state, queues, timer, retransmits;
    unsigned long uid = 0;
    if (!(fields >> slot >> local_address >> remote_address >> state >> queues >> timer >>
          retransmits >> uid)) {
      continue;
    }
    if (local_address == peer_local && remote_address == peer_remote) {
      return static_cast<uid_t>(uid);
    }
  }
  return std::nullopt;
}

Result<PeerCredentials> GetPeerCredentials(int fd) {
  ucred cred{};
  socklen_t len = sizeof cred;
  if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0 || len != sizeof cred) {
    return InternalError(std::string("SO_PEERCRED failed: ") + std::strerror(errno));
  }
  return PeerCredentials{cred.pid, cred.uid, cred.gid};
}

Status CheckPeerUid(uid_t peer_uid, uid_t agent_euid) {
  if (peer_uid == agent_euid) return Status::Ok();
  return PermissionDeniedError("peer uid " + std::to_string(peer_uid) +
                               " is not this agent's user (uid " + std::to_string(agent_euid) +
                               "); every user runs their own signum-agent");
}

ProcessInfo ReadProcessInfo(pid_t pid, const std::string& proc_root) {
  ProcessInfo info;
  const std::string dir = proc_root + "/" + std::to_string(pid);
  char target[4096];
  const ssize_t n = ::readlink((dir + "/exe").c_str(), target, sizeof target - 1);
  if (n > 0) {
    std::string exe(target, static_cast<size_t>(n));
    // A replaced or deleted binary reads as "/path/prog (deleted)"; the name is still the name.
    constexpr std::string_view kDeleted = " (deleted)";
    if (exe.size() > kDeleted.size() &&
        exe.compare(exe.size() - kDeleted.size(), kDeleted.size(), kDeleted) == 0) {
      exe.resize(exe.size() - kDeleted.size());
    }
    info.executable = Basename(exe);
  } else {
    std::ifstream comm(dir + "/comm");
    std::getline(comm, info.executable);
  }
  std::ifstream cmdline(dir + "/cmdline", std::ios::binary);
  std::string raw;
  raw.resize(kMaxCommandLine);
  cmdline.read(raw.data(), static_cast<std::streamsize>(raw.size()));
  raw.resize(static_cast<size_t>(cmdline.gcount()));
  // The audit log cannot be redacted later: secrets (--pin 1234 ...) go before anything else.
  info.command_line = redaction::RedactedCommandLineFromNulSeparated(raw);
  return info;
}

wire::CallerContext BuildCallerContext(Transport transport,
                                       const std::optional<PeerCredentials>& peer,
                                       const ProcessInfo& process,
                                       const wire::CallerContext& claimed,
                                       const std::string& hostname, const std::string& agent_id) {
  wire::CallerContext c;
  c.agent_id = TruncateUtf8(ToValidUtf8(agent_id), wire::kMaxHostLength);
  if (transport == Transport::kTcp || !peer) {
    // No kernel-verified identity: pass the claims on and say so in the host field, which the
    // audit log records beside them.
    c.process = claimed.process;
    c.command_line = redaction::RedactCommandLine(claimed.command_line);
    c.pid = claimed.pid;
    c.uid = claimed.uid;
    c.host = TruncateUtf8(ToValidUtf8(hostname),
                          wire::kMaxHostLength - std::strlen(kTcpPeerHostSuffix)) +
             kTcpPeerHostSuffix;
    return c;
  }
  c.pid = peer->pid;
  c.uid = peer->uid;
  c.host = TruncateUtf8(ToValidUtf8(hostname), wire::kMaxHostLength);
  // /proc is the truth. A claimed executable is never used (policies match on it); a claimed
  // command line only when /proc cannot be read (e.g. hidepid), so the audit log has something.
  // /proc holds arbitrary bytes: made valid UTF-8 and cut to the server's limits, which reject
  // longer values (a command line beyond 2048 bytes is audited and matched truncated).
  c.process = TruncateUtf8(ToValidUtf8(process.executable), wire::kMaxProcessLength);
  c.command_line = TruncateUtf8(
      ToValidUtf8(!process.command_line.empty() ? process.command_line
                                                : redaction::RedactCommandLine(claimed.command_line)),
      wire::kMaxCommandLineLength);
  return c;
}

std::string LocalHostname() {
  char name[256] = {};
  if (::gethostname(name, sizeof name - 1) != 0) return "localhost";
  return name;
}

}  // namespace signum::agent

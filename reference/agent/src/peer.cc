#include "peer.h"

#include <cstring>
#include <string_view>

#include "signum/core/command_line_redaction.h"
#include "signum/core/encoding.h"

namespace signum::agent {
namespace {

std::string Basename(const std::string& path) {
  const size_t slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

}  // namespace

Status CheckPeerUid(uid_t peer_uid, uid_t agent_euid) {
  if (peer_uid == agent_euid) return Status::Ok();
  return PermissionDeniedError("peer uid " + std::to_string(peer_uid) +
                               " is not this agent's user (uid " + std::to_string(agent_euid) +
                               "); every user runs their own signum-agent");
}

ProcessInfo ProcessInfoFrom(std::string executable_path, const std::string& nul_separated_args) {
  ProcessInfo info;
  // A replaced or deleted binary reads as "/path/prog (deleted)" on Linux; the name is still the
  // name.
  constexpr std::string_view kDeleted = " (deleted)";
  if (executable_path.size() > kDeleted.size() &&
      executable_path.compare(executable_path.size() - kDeleted.size(), kDeleted.size(),
                              kDeleted) == 0) {
    executable_path.resize(executable_path.size() - kDeleted.size());
  }
  info.executable = Basename(executable_path);
  // The audit log cannot be redacted later: secrets (--pin 1234 ...) go before anything else.
  info.command_line = redaction::RedactedCommandLineFromNulSeparated(nul_separated_args);
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

}  // namespace signum::agent

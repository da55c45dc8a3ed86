// The Linux half of peer.h: /proc for another process's executable and arguments, the kernel's
// socket tables (/proc/net/tcp{,6}) for the owner of a loopback TCP peer. macOS: peer_macos.cc.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>

#include "peer.h"

namespace signum::agent {
namespace {

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

ProcessInfo ReadProcessInfo(pid_t pid, const std::string& proc_root) {
  const std::string dir = proc_root + "/" + std::to_string(pid);
  char target[4096];
  const ssize_t n = ::readlink((dir + "/exe").c_str(), target, sizeof target - 1);
  std::string executable;
  if (n > 0) {
    executable.assign(target, static_cast<size_t>(n));
  } else {
    std::ifstream comm(dir + "/comm");  // a kernel thread, or exe hidden from us
    std::getline(comm, executable);
  }
  std::ifstream cmdline(dir + "/cmdline", std::ios::binary);
  std::string raw;
  raw.resize(kMaxProcessArguments);
  cmdline.read(raw.data(), static_cast<std::streamsize>(raw.size()));
  raw.resize(static_cast<size_t>(cmdline.gcount()));
  return ProcessInfoFrom(executable, raw);
}

Status CheckTcpPeerIsThisUser(net::Socket connection) {
  const std::optional<uid_t> uid = LoopbackTcpPeerUid(connection);
  if (!uid || *uid == ::geteuid()) return Status::Ok();
  return PermissionDeniedError("tcp connection from uid " + std::to_string(*uid) +
                               " refused (this agent serves uid " + std::to_string(::geteuid()) +
                               ")");
}

}  // namespace signum::agent

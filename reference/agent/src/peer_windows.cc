// The Windows half of peer.h: the owner of a loopback TCP peer, from the system's connection
// table (GetExtendedTcpTable: the row whose local end is the peer's and remote end ours names its
// process) and that process's token. Linux: peer_linux.cc; macOS: peer_macos.cc.
#include <winsock2.h>
#include <ws2tcpip.h>
#include <windows.h>
#include <iphlpapi.h>

#include <cstring>
#include <functional>
#include <memory>
#include <vector>

#include "peer.h"
#include "signum/core/windows_account.h"

namespace signum::agent {
namespace {

struct HandleCloser {
  void operator()(HANDLE h) const { CloseHandle(h); }
};
using UniqueHandle = std::unique_ptr<void, HandleCloser>;

// The PID owning the connection whose local end is `peer` and remote end `ours`; 0 if not found.
template <typename Table, typename Row>
DWORD FindOwner(ULONG family, const std::function<bool(const Row&)>& matches) {
  DWORD size = 0;
  std::vector<BYTE> buffer;
  DWORD rc = ERROR_INSUFFICIENT_BUFFER;
  for (int attempt = 0; attempt < 4 && rc == ERROR_INSUFFICIENT_BUFFER; ++attempt) {
    buffer.resize(size);
    rc = GetExtendedTcpTable(buffer.empty() ? nullptr : buffer.data(), &size, FALSE, family,
                             TCP_TABLE_OWNER_PID_CONNECTIONS, 0);
  }
  if (rc != NO_ERROR) return 0;
  const auto* table = reinterpret_cast<const Table*>(buffer.data());
  for (DWORD i = 0; i < table->dwNumEntries; ++i) {
    if (matches(table->table[i])) return table->table[i].dwOwningPid;
  }
  return 0;
}

}  // namespace

unsigned long LoopbackTcpPeerProcessId(net::Socket connection) {
  const SOCKET s = static_cast<SOCKET>(connection);
  sockaddr_storage ours{}, peer{};
  int ours_length = sizeof ours, peer_length = sizeof peer;
  if (getsockname(s, reinterpret_cast<sockaddr*>(&ours), &ours_length) != 0 ||
      getpeername(s, reinterpret_cast<sockaddr*>(&peer), &peer_length) != 0)
    return 0;
  if (peer.ss_family == AF_INET) {
    const auto& o = reinterpret_cast<const sockaddr_in&>(ours);
    const auto& p = reinterpret_cast<const sockaddr_in&>(peer);
    // The row's ports are in network order in the low 16 bits.
    return FindOwner<MIB_TCPTABLE_OWNER_PID, MIB_TCPROW_OWNER_PID>(
        AF_INET, [&](const MIB_TCPROW_OWNER_PID& row) {
          return row.dwLocalAddr == p.sin_addr.s_addr &&
                 static_cast<u_short>(row.dwLocalPort) == p.sin_port &&
                 row.dwRemoteAddr == o.sin_addr.s_addr &&
                 static_cast<u_short>(row.dwRemotePort) == o.sin_port;
        });
  }
  if (peer.ss_family == AF_INET6) {
    const auto& o = reinterpret_cast<const sockaddr_in6&>(ours);
    const auto& p = reinterpret_cast<const sockaddr_in6&>(peer);
    return FindOwner<MIB_TCP6TABLE_OWNER_PID, MIB_TCP6ROW_OWNER_PID>(
        AF_INET6, [&](const MIB_TCP6ROW_OWNER_PID& row) {
          return std::memcmp(row.ucLocalAddr, &p.sin6_addr, 16) == 0 &&
                 static_cast<u_short>(row.dwLocalPort) == p.sin6_port &&
                 std::memcmp(row.ucRemoteAddr, &o.sin6_addr, 16) == 0 &&
                 static_cast<u_short>(row.dwRemotePort) == o.sin6_port;
        });
  }
  return 0;
}

std::optional<uid_t> LoopbackTcpPeerUid(int, const std::string&) { return std::nullopt; }

Status CheckTcpPeerIsThisUser(net::Socket connection) {
  const DWORD pid = LoopbackTcpPeerProcessId(connection);
  if (pid == 0) return Status::Ok();  // not in the table: the handshake decides
  UniqueHandle process(OpenProcess(PROCESS_QUERY_LIMITED_INFORMATION, FALSE, pid));
  // A process we may not even query (a protected one, another user's service) is not ours to
  // serve either; one that is gone already cannot be judged.
  if (!process) {
    if (GetLastError() == ERROR_ACCESS_DENIED)
      return PermissionDeniedError("tcp connection from process " + std::to_string(pid) +
                                   " refused (its owner cannot be read by this agent's user)");
    return Status::Ok();
  }
  const Bytes peer_user = TokenUserSid(process.get());
  const Bytes our_user = TokenUserSid(GetCurrentProcess());
  if (our_user.empty()) return Status::Ok();  // our own token unreadable: cannot judge anyone
  // A process we can open but whose token we may not read has locked us out on purpose.
  if (peer_user.empty())
    return PermissionDeniedError("tcp connection from process " + std::to_string(pid) +
                                 " refused (its token's user cannot be read)");
  if (peer_user == our_user) return Status::Ok();
  return PermissionDeniedError("tcp connection from process " + std::to_string(pid) + " of " +
                               SidText(peer_user) + " refused (this agent serves " +
                               SidText(our_user) + ")");
}

}  // namespace signum::agent

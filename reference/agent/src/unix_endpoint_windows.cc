// unix_endpoint.h on Windows: there is no Unix-socket endpoint (AF_UNIX exists since Windows 10
// 1803 but carries no peer credentials), and the configuration never asks for one
// (agent_config.cc: the socket is off by default there); a caller that does gets the reason.
#include "unix_endpoint.h"

namespace signum::agent {
namespace {

Status NoUnixSocket() {
  return FailedPreconditionError(
      "the Windows signum-agent serves loopback TCP only: set SIGNUM_AGENT_SOCKET=off and "
      "SIGNUM_AGENT_TCP");
}

}  // namespace

Result<UnixEndpoint> OpenUnixEndpoint(const std::string&) { return NoUnixSocket(); }
void RemoveUnixEndpoint(const std::string&, uint64_t) {}
Result<UnixPeer> IdentifyUnixPeer(net::Socket) { return NoUnixSocket(); }

}  // namespace signum::agent

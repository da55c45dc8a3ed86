// signum-agent's provider-facing side: the user-only Unix socket, the optional loopback TCP
// endpoint with its secret, one thread per connection (bounded), and the request handlers that
// turn protocol messages into ServerClient calls.
#pragma once

#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <nlohmann/json_fwd.hpp>
#include <set>
#include <string>

#include "agent_config.h"
#include "agent_socket.h"
#include "peer.h"
#include "server_client.h"

namespace signum::agent {

inline constexpr const char* kAgentName = "signum-agent/0.1";

class AgentService {
 public:
  // Prepares both endpoints: creates the socket directory (0700), refuses to start when another
  // agent answers on the socket, removes a stale socket file, binds (socket 0600), binds TCP and
  // writes the secret (0600) and port files. Nothing is accepted before Run().
  static Result<std::unique_ptr<AgentService>> Create(const AgentConfig& config,
                                                      ServerClient* server);
  ~AgentService();

  // Accepts connections until Stop(); then closes the listeners, removes the socket and port
  // files, disconnects every client and waits (bounded) for their threads. Returns false if some
  // connection thread did not finish in time (the caller should then _exit rather than return).
  bool Run();
  // Thread-safe (and async-signal-safe on POSIX: writes one byte to a pipe).
  void Stop();

  uint16_t tcp_port() const { return tcp_port_; }

 private:
  AgentService(const AgentConfig& config, ServerClient* server)
      : config_(config), server_(server) {}

  Status PrepareUnixSocket();
  Status PrepareTcp();
  void AcceptFrom(net::Socket listener, Transport transport);
  void Serve(net::Socket fd, Transport transport);
  void ServeConnection(net::Socket fd, Transport transport);
  // A TCP connection that just proved the secret leaves the unauthenticated budget for the
  // authenticated one; false when that is full (the connection is then refused).
  bool AdmitAuthenticatedTcp(net::Socket fd);
  void RemoveFiles();

  // Handles one request after the Hello; *close is set for protocol violations.
  nlohmann::json Handle(const nlohmann::json& request, Transport transport,
                        const std::optional<PeerCredentials>& peer, const ProcessInfo& process,
                        bool* close);

  const AgentConfig config_;
  ServerClient* const server_;
  const std::string hostname_ = LocalHostname();
  net::Socket unix_fd_ = net::kNoSocket;
  net::Socket tcp_fd_ = net::kNoSocket;
  net::WakeUp wake_;
  uint16_t tcp_port_ = 0;
  std::string secret_;
  uint64_t socket_inode_ = 0;  // to remove only the socket file we created
  bool port_file_written_ = false;

  std::mutex mu_;
  std::condition_variable idle_cv_;
  std::set<net::Socket> connections_;  // live connections, to shut them down on Stop()
  // The same sockets by budget (AcceptFrom): each kind is limited on its own.
  std::set<net::Socket> unix_connections_;     // at most max_connections
  std::set<net::Socket> tcp_unauthenticated_;  // at most max_unauthenticated_connections
  std::set<net::Socket> tcp_authenticated_;    // at most max_connections
  uint64_t limit_warnings_ = 0;        // under mu_: log the first and every 100th refusal only
  uint64_t foreign_tcp_refused_ = 0;   // accept loop only
  bool stopping_ = false;
};

}  // namespace signum::agent

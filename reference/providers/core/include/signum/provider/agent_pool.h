// A small pool of connections to signum-agent. Each AgentClient serves one request at a time, so
// concurrent signers need several; connecting costs a handshake, so idle ones are kept.
//
// - Lazy: nothing connects until the first request (an absent agent costs nothing at load time).
// - Unhealthy connections (transport error, agent restarted) are dropped, never reused.
// - A request that fails because a *kept* connection turned out to be dead before anything was
//   sent (the agent restarted since it was last used) is retried once on a fresh connection, so
//   the first call after an agent restart does not fail needlessly.
// - Every call is bounded by timeout_ms (connect, handshake and the request each).
#pragma once

#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "signum/agent/agent_client.h"
#include "signum/core/agent_protocol.h"
#include "signum/core/status.h"
#include "signum/core/wire.h"

namespace signum::provider {

struct AgentPoolOptions {
  // Where the agent is; an error here (bad SIGNUM_AGENT_TCP, unreadable secret file) is returned
  // by every request, so a misconfiguration surfaces as a clear error at the first call.
  Result<agent::AgentEndpoint> endpoint = UnavailableError("no agent endpoint configured");
  std::string client_name = "signum-provider";
  int timeout_ms = 30000;
  size_t max_idle = 8;
};

class AgentConnectionPool {
 public:
  explicit AgentConnectionPool(AgentPoolOptions options);
  ~AgentConnectionPool();
  AgentConnectionPool(const AgentConnectionPool&) = delete;
  AgentConnectionPool& operator=(const AgentConnectionPool&) = delete;

  Result<wire::CertificateListResponse> ListCertificates(bool refresh);
  Result<Bytes> Sign(const agent_protocol::SignRequest& request);
  Result<agent_protocol::StatusReport> GetStatus();

  // "unix:/run/user/1000/signum/agent.sock", or the endpoint error.
  std::string DescribeEndpoint() const;
  size_t idle_connections() const;
  const AgentPoolOptions& options() const { return options_; }

 private:
  template <typename T>
  Result<T> Run(const std::function<Result<T>(agent::AgentClient&)>& request);
  // A kept connection (reused = true) or a new one.
  Result<std::unique_ptr<agent::AgentClient>> Acquire(bool* reused);
  void Release(std::unique_ptr<agent::AgentClient> client);

  const AgentPoolOptions options_;
  mutable std::mutex mu_;
  std::vector<std::unique_ptr<agent::AgentClient>> idle_;
};

}  // namespace signum::provider

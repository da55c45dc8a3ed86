#include "signum/provider/agent_pool.h"

#include <utility>

namespace signum::provider {

AgentConnectionPool::AgentConnectionPool(AgentPoolOptions options) : options_(std::move(options)) {}

AgentConnectionPool::~AgentConnectionPool() = default;

std::string AgentConnectionPool::DescribeEndpoint() const {
  if (!options_.endpoint.ok()) return options_.endpoint.status().ToString();
  return options_.endpoint->Describe();
}

size_t AgentConnectionPool::idle_connections() const {
  std::lock_guard lock(mu_);
  return idle_.size();
}

Result<std::unique_ptr<agent::AgentClient>> AgentConnectionPool::Acquire(bool* reused) {
  if (!options_.endpoint.ok()) return options_.endpoint.status();
  {
    std::lock_guard lock(mu_);
    while (!idle_.empty()) {
      std::unique_ptr<agent::AgentClient> client = std::move(idle_.back());
      idle_.pop_back();
      if (client->healthy()) {
        *reused = true;
        return client;
      }
    }
  }
  // Connect outside the lock: a slow agent must not serialise every other thread's requests.
  *reused = false;
  return agent::AgentClient::Connect(*options_.endpoint, options_.client_name, options_.timeout_ms);
}

void AgentConnectionPool::Release(std::unique_ptr<agent::AgentClient> client) {
  if (!client->healthy()) return;
  std::lock_guard lock(mu_);
  if (idle_.size() < options_.max_idle) idle_.push_back(std::move(client));
}

template <typename T>
Result<T> AgentConnectionPool::Run(const std::function<Result<T>(agent::AgentClient&)>& request) {
  for (int attempt = 0;; ++attempt) {
    bool reused = false;
    auto client = Acquire(&reused);
    if (!client.ok()) return client.status();
    Result<T> result = request(**client);
    const bool dead = !(*client)->healthy();
    Release(std::move(client).value());
    // Only a kept connection that died is worth a second try: a fresh one failing means the agent
    // itself is not answering, and trying again would just double the wait.
    if (!result.ok() && dead && reused && attempt == 0 &&
        result.status().code() == ErrorCode::kUnavailable) {
      continue;
    }
    return result;
  }
}

Result<wire::CertificateListResponse> AgentConnectionPool::ListCertificates(bool refresh) {
  return Run<wire::CertificateListResponse>(
      [refresh](agent::AgentClient& c) { return c.ListCertificates(refresh); });
}

Result<Bytes> AgentConnectionPool::Sign(const agent_protocol::SignRequest& request) {
  return Run<Bytes>([&request](agent::AgentClient& c) { return c.Sign(request); });
}

Result<agent_protocol::StatusReport> AgentConnectionPool::GetStatus() {
  return Run<agent_protocol::StatusReport>([](agent::AgentClient& c) { return c.GetStatus(); });
}

}  // namespace signum::provider

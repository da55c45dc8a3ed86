// The agent's side of the HTTPS API: the server credential, a pool of kept-alive TLS connections
// (one HttpsClient per concurrent request), the certificate-list cache, and the mapping of every
// failure to a Status a provider can act on.
#pragma once

#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "agent_config.h"
#include "signum/core/https_client.h"
#include "signum/core/wire.h"

namespace signum::agent {

class ServerClient {
 public:
  // Reads the credential and checks that the TLS settings load (CA, client certificate). Does not
  // contact the server: an agent starts (and serves "no certificates") while the server is down.
  static Result<std::unique_ptr<ServerClient>> Create(const AgentConfig& config);

  // The certificate list, from the cache while it is younger than the TTL. refresh bypasses the
  // cache. Concurrent callers that find no fresh cache share one server call.
  Result<wire::CertificateListResponse> ListCertificates(bool refresh);
  // POST /v1/sign, retried once on kUnavailable (signing a digest is idempotent).
  Result<Bytes> Sign(const wire::SignRequest& request);
  // GET /v1/health.
  Result<wire::HealthResponse> Health();

  // Who the agent is to the server: "token sgn_1a2b3c4d" or "client certificate CN=...".
  const std::string& user() const { return user_; }
  const std::string& server_url() const { return server_url_; }
  // Server calls made for the certificate list (for tests of the cache).
  uint64_t list_fetches() const;

 private:
  explicit ServerClient(const AgentConfig& config) : config_(config) {}

  // Takes an idle kept-alive connection or makes a new one; Release returns it for reuse.
  Result<std::unique_ptr<HttpsClient>> Acquire();
  void Release(std::unique_ptr<HttpsClient> client);

  // One HTTP exchange with error mapping: transport failures become kUnavailable naming the
  // server, HTTP errors the server's code and message.
  Result<std::string> Call(const std::string& method, const std::string& target,
                           const std::string& body, int ok_status = 200);
  Result<wire::CertificateListResponse> FetchCertificates();

  const AgentConfig config_;
  HttpsClientConfig https_config_;
  std::string server_url_;
  std::string user_;

  std::mutex pool_mu_;
  std::vector<std::unique_ptr<HttpsClient>> idle_;

  mutable std::mutex cache_mu_;
  std::condition_variable cache_cv_;
  std::optional<wire::CertificateListResponse> cached_;
  std::chrono::steady_clock::time_point cached_at_;
  bool fetching_ = false;
  uint64_t fetch_generation_ = 0;  // bumped when a fetch finishes
  Status last_fetch_status_;
  uint64_t list_fetches_ = 0;
};

// "sgn_1a2b3c4d_secret" -> "sgn_1a2b3c4d" (the token's public id); never the secret part.
std::string TokenId(const std::string& token);

}  // namespace signum::agent

#include "server_client.h"

#include <nlohmann/json.hpp>
#include <thread>

#include "signum/core/files.h"
#include "signum/core/log.h"

namespace signum::agent {
namespace {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

// Idle connections kept warm; more concurrent requests than this open extra connections that are
// closed afterwards.
constexpr size_t kMaxIdleConnections = 16;
// A server that was just restarted may refuse the first attempt; the retry waits this long.
constexpr auto kSignRetryDelay = std::chrono::milliseconds(250);

bool IsConnectPhase(const Status& s) {
  const std::string& m = s.message();
  return m.rfind("cannot connect", 0) == 0 || m.rfind("TLS handshake", 0) == 0;
}

}  // namespace

std::string TokenId(const std::string& token) {
  // API tokens are "sgn_<8 hex id>_<secret>"; the id part is public (the server lists it).
  if (token.rfind("sgn_", 0) == 0) {
    const size_t end = token.find('_', 4);
    if (end != std::string::npos && end > 4) return token.substr(0, end);
  }
  return "sgn_(unrecognised token format)";
}

Result<std::unique_ptr<ServerClient>> ServerClient::Create(const AgentConfig& config) {
  std::unique_ptr<ServerClient> client(new ServerClient(config));
  HttpsClientConfig& h = client->https_config_;
  h.host = config.server_host;
  h.port = config.server_port;
  h.ca_file = config.ca_file;
  h.connect_timeout_ms = config.connect_timeout_ms;
  h.request_timeout_ms = config.request_timeout_ms;
  client->server_url_ = config.server_url;
  if (!config.token_file.empty()) {
    auto token = ReadSecretFile(config.token_file);
    if (!token.ok()) return token.status().WithContext("reading the API token");
    if (token->empty())
      return InvalidArgumentError("token file " + config.token_file + " is empty");
    h.bearer_token = *token;
    client->user_ = "token " + TokenId(*token);
  }
  if (!config.client_certificate_file.empty()) {
    h.client_certificate_file = config.client_certificate_file;
    h.client_key_file = config.client_key_file;
  }
  // Building one connection object checks the CA file and client certificate now, at start-up,
  // instead of on the first provider request.
  auto first = HttpsClient::Create(h);
  if (!first.ok()) return first.status().WithContext("TLS settings for " + config.server_url);
  if (client->user_.empty() && !(*first)->client_certificate_subject().empty())
    client->user_ = "client certificate " + (*first)->client_certificate_subject();
  client->idle_.push_back(std::move(first).value());
  return client;
}

Result<std::unique_ptr<HttpsClient>> ServerClient::Acquire() {
  {
    std::lock_guard lock(pool_mu_);
    if (!idle_.empty()) {
      auto client = std::move(idle_.back());
      idle_.pop_back();
      return client;
    }
  }
  return HttpsClient::Create(https_config_);
}

void ServerClient::Release(std::unique_ptr<HttpsClient> client) {
  std::lock_guard lock(pool_mu_);
  if (idle_.size() < kMaxIdleConnections) idle_.push_back(std::move(client));
}

Result<std::string> ServerClient::Call(const std::string& method, const std::string& target,
                                       const std::string& body, int ok_status) {
  SIGNUM_ASSIGN_OR_RETURN(std::unique_ptr<HttpsClient> client, Acquire());
  Result<HttpsResult> result = client->Request(method, target, body);
  // The client closes a failed connection itself and reconnects on next use, so it is reusable.
  Release(std::move(client));
  if (!result.ok()) {
    const Status& s = result.status();
    if (s.code() == ErrorCode::kUnavailable ||
        (s.code() == ErrorCode::kDeadlineExceeded && IsConnectPhase(s))) {
      return UnavailableError("signum-server at " + server_url_ +
                              " is unreachable: " + s.message());
    }
    if (s.code() == ErrorCode::kDeadlineExceeded) {
      return DeadlineExceededError("signum-server at " + server_url_ +
                                   " did not answer in time: " + s.message());
    }
    return s.WithContext("signum-server at " + server_url_);
  }
  if (result->status != ok_status) {
    Status s = wire::StatusFromHttpError(result->status, result->body);
    if (s.ok()) s = InternalError("unexpected HTTP " + std::to_string(result->status));
    return s.WithContext("signum-server");
  }
  return std::move(result->body);
}

Result<wire::CertificateListResponse> ServerClient::FetchCertificates() {
  SIGNUM_ASSIGN_OR_RETURN(std::string body, Call("GET", std::string(wire::kCertificatesPath), ""));
  SIGNUM_ASSIGN_OR_RETURN(json j, wire::ParseJson(body));
  auto list = wire::ParseCertificateListResponse(j);
  if (!list.ok())
    return InternalError("malformed certificate list from signum-server: " +
                         list.status().message());
  return list;
}

Result<wire::CertificateListResponse> ServerClient::ListCertificates(bool refresh) {
  std::unique_lock lock(cache_mu_);
  const auto ttl = std::chrono::seconds(config_.cache_ttl_seconds);
  if (!refresh && cached_ && Clock::now() - cached_at_ < ttl) return *cached_;
  if (fetching_) {
    // Someone is already asking the server: share that answer instead of a second call.
    const uint64_t generation = fetch_generation_;
    cache_cv_.wait(lock, [&] { return fetch_generation_ != generation; });
    if (!last_fetch_status_.ok()) return last_fetch_status_;
    if (cached_) return *cached_;
    return InternalError("certificate list fetch finished without a result");
  }
  fetching_ = true;
  lock.unlock();
  Result<wire::CertificateListResponse> fetched = FetchCertificates();
  lock.lock();
  fetching_ = false;
  ++fetch_generation_;
  ++list_fetches_;
  last_fetch_status_ = fetched.status();
  if (fetched.ok()) {
    cached_ = *fetched;
    cached_at_ = Clock::now();
  } else if (fetched.status().code() == ErrorCode::kUnauthenticated ||
             fetched.status().code() == ErrorCode::kPermissionDenied) {
    // The credential no longer works: what we cached must not be shown any more.
    cached_.reset();
  }
  cache_cv_.notify_all();
  return fetched;
}

uint64_t ServerClient::list_fetches() const {
  std::lock_guard lock(cache_mu_);
  return list_fetches_;
}

Result<Bytes> ServerClient::Sign(const wire::SignRequest& request) {
  const std::string body =
      wire::ToJson(request).dump(-1, ' ', false, json::error_handler_t::replace);
  Result<std::string> reply = Call("POST", std::string(wire::kSignPath), body);
  if (!reply.ok() && reply.status().code() == ErrorCode::kUnavailable) {
    // The connection dropped mid-request or the server is restarting. HttpsClient already
    // reconnected once for a stale idle connection; this covers a request that was lost after it
    // was sent. Signing the same digest twice is harmless.
    SIGNUM_LOG_INFO("agent", "sign failed (" << reply.status().message() << "); retrying once");
    std::this_thread::sleep_for(kSignRetryDelay);
    reply = Call("POST", std::string(wire::kSignPath), body);
  }
  if (!reply.ok()) return reply.status();
  SIGNUM_ASSIGN_OR_RETURN(json j, wire::ParseJson(*reply));
  auto response = wire::ParseSignResponse(j);
  if (!response.ok()) {
    return InternalError("malformed sign response from signum-server: " +
                         response.status().message());
  }
  return std::move(response->signature);
}

Result<wire::HealthResponse> ServerClient::Health() {
  SIGNUM_ASSIGN_OR_RETURN(std::unique_ptr<HttpsClient> client, Acquire());
  Result<HttpsResult> result = client->Get(std::string(wire::kHealthPath));
  Release(std::move(client));
  if (!result.ok()) {
    return UnavailableError("signum-server at " + server_url_ +
                            " is unreachable: " + result.status().message());
  }
  // 503 "degraded" still means the server answered; the body says what is wrong.
  auto j = wire::ParseJson(result->body);
  if (!j.ok()) return InternalError("HTTP " + std::to_string(result->status) + " from /v1/health");
  auto health = wire::ParseHealthResponse(*j);
  if (!health.ok())
    return InternalError("malformed /v1/health response: " + health.status().message());
  return health;
}

}  // namespace signum::agent

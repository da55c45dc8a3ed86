// The versioned JSON API of signum-server (see docs/server-api.md): routing, authentication,
// policy, HSM signing and the audit record for every decision. Transport-independent: it maps an
// HttpRequest to an HttpResponse, so tests can drive it without sockets.
#pragma once

#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "audit.h"
#include "capabilities.h"
#include "hsm_backend.h"
#include "https_server.h"
#include "state_store.h"
#include "worker_pool.h"

namespace signum::server {

struct ApiLimits {
  size_t max_inflight_signatures = 64;
  size_t per_user_inflight_signatures = 0;  // 0 = unlimited
  // Authentication and TLS client-certificate failures: one record for the first failure per
  // source address per interval, then one summary with the count (FailureAuditAggregator).
  int failure_audit_interval_ms = 10000;
};

class SigningApi {
 public:
  // capabilities: what each key can do on the HSM; the list advertises, and signing accepts, only
  // what the caller's policies allow and the key can do.
  SigningApi(StateStore& state, HsmBackend& hsm, KeyCapabilityRegistry& capabilities,
             AuditLog& audit, ApiLimits limits, std::string version);

  HttpResponse Handle(const HttpRequest& request);
  // A TLS handshake that failed on the client's certificate (e.g. from an unknown CA): audited,
  // aggregated per source address like authentication failures. peer: "address:port".
  void AuditClientCertificateFailure(const std::string& peer, const std::string& reason);

 private:
  HttpResponse Health(const HttpRequest& request);
  HttpResponse ListCertificates(const HttpRequest& request);
  HttpResponse Sign(const HttpRequest& request);

  // Resolves the caller from a bearer token or a client certificate; records failures.
  Result<Principal> Authenticate(const HttpRequest& request, const StateSnapshot& snapshot,
                                 std::string_view action);
  // Appends to the audit log; a failure to audit turns the answer into an error (fail closed).
  Status Audit(nlohmann::json event);

  StateStore& state_;
  HsmBackend& hsm_;
  KeyCapabilityRegistry& capabilities_;
  AuditLog& audit_;
  ApiLimits limits_;
  std::string version_;
  std::atomic<size_t> inflight_{0};
  std::mutex per_user_mu_;
  std::map<std::string, size_t> per_user_inflight_;
  FailureAuditAggregator auth_failures_;
  FailureAuditAggregator client_certificate_failures_;
  // Audit records of allowed signatures are written here while the request thread signs.
  WorkerPool audit_workers_;
};

}  // namespace signum::server

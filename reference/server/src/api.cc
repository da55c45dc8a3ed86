#include "api.h"

#include <future>
#include <nlohmann/json.hpp>

#include "signum/core/crypto.h"
#include "signum/core/log.h"
#include "signum/core/wire.h"

namespace signum::server {
namespace {

using nlohmann::json;

HttpResponse JsonResponse(int status, const json& body) {
  HttpResponse r;
  r.status = status;
  // Error messages echo what the client sent (a path, a label), which need not be UTF-8:
  // replaced, as in the audit log, instead of throwing.
  r.body = body.dump(-1, ' ', false, json::error_handler_t::replace);
  return r;
}

HttpResponse ErrorResponse(const Status& status) {
  HttpResponse r =
      JsonResponse(wire::HttpStatusFor(status.code()), wire::ToJson(wire::ToErrorResponse(status)));
  if (status.code() == ErrorCode::kUnauthenticated) r.headers["WWW-Authenticate"] = "Bearer";
  if (status.code() == ErrorCode::kResourceExhausted) r.headers["Retry-After"] = "1";
  return r;
}

std::string PathOf(const std::string& target) { return target.substr(0, target.find('?')); }

json PrincipalJson(const Principal& p) {
  return json{{"user", p.user}, {"method", p.method}, {"credential", p.credential_id}};
}

// Counts an in-flight signature for the life of the object; released on every exit path.
class InflightSlot {
 public:
  InflightSlot(std::atomic<size_t>& counter, size_t limit) : counter_(counter) {
    acquired_ = counter_.fetch_add(1) < limit || limit == 0;
    if (!acquired_) counter_.fetch_sub(1);
  }
  ~InflightSlot() {
    if (acquired_) counter_.fetch_sub(1);
  }
  bool acquired() const { return acquired_; }

 private:
  std::atomic<size_t>& counter_;
  bool acquired_ = false;
};

}  // namespace

SigningApi::SigningApi(StateStore& state, HsmBackend& hsm, KeyCapabilityRegistry& capabilities,
                       AuditLog& audit, ApiLimits limits, std::string version)
    : state_(state),
      hsm_(hsm),
      capabilities_(capabilities),
      audit_(audit),
      limits_(limits),
      version_(std::move(version)) {}

HttpResponse SigningApi::Handle(const HttpRequest& request) {
  const std::string path = PathOf(request.target);
  struct Route {
    std::string_view path;
    std::string_view method;
    HttpResponse (SigningApi::*handler)(const HttpRequest&);
  };
  static const Route kRoutes[] = {
      {wire::kCertificatesPath, "GET", &SigningApi::ListCertificates},
      {wire::kSignPath, "POST", &SigningApi::Sign},
  };
  if (path == wire::kHealthPath) {
    if (request.method != "GET") return ErrorResponse(InvalidArgumentError("use GET " + path));
    return Health();
  }
  for (const Route& route : kRoutes) {
    if (path != route.path) continue;
    if (request.method != route.method) {
      HttpResponse r = JsonResponse(
          405, wire::ToJson(wire::ErrorResponse{"METHOD_NOT_ALLOWED",
                                                "use " + std::string(route.method) + " " + path}));
      r.headers["Allow"] = std::string(route.method);
      return r;
    }
    return (this->*route.handler)(request);
  }
  return ErrorResponse(NotFoundError("no such endpoint: " + path));
}

HttpResponse SigningApi::Health() {
  Status hsm = hsm_.Check();
  wire::HealthResponse h{hsm.ok() ? "ok" : "degraded", version_, hsm.ok() ? "ok" : hsm.message()};
  return JsonResponse(hsm.ok() ? 200 : 503, wire::ToJson(h));
}

Status SigningApi::Audit(json event) {
  Status s = audit_.Append(std::move(event));
  if (!s.ok()) {
    SIGNUM_LOG_ERROR("audit", "cannot write audit record: " << s.ToString());
    return InternalError("the audit log cannot be written; refusing to answer");
  }
  return s;
}

Result<Principal> SigningApi::Authenticate(const HttpRequest& request,
                                           const StateSnapshot& snapshot, std::string_view action) {
  std::optional<Principal> principal;
  std::string presented;
  auto auth = request.headers.find("authorization");
  if (auth != request.headers.end()) {
    constexpr std::string_view kBearer = "Bearer ";
    if (auth->second.size() > kBearer.size() &&
        auth->second.compare(0, kBearer.size(), kBearer) == 0) {
      principal =
          snapshot.authenticator.ByToken(std::string_view(auth->second).substr(kBearer.size()));
      presented = "token";
    } else {
      presented = "malformed authorization header";
    }
  } else if (request.client_certificate_sha256_hex) {
    principal = snapshot.authenticator.ByClientCertificate(*request.client_certificate_sha256_hex);
    presented = "client certificate " + *request.client_certificate_sha256_hex;
  }
  if (principal) return *principal;
  const std::string message =
      presented.empty()
          ? "authentication required: send 'Authorization: Bearer <token>' or a client certificate"
          : "unknown credential (" + presented + ")";
  SIGNUM_RETURN_IF_ERROR(Audit(json{{"type", "authentication"},
                                    {"action", action},
                                    {"peer", request.peer_address},
                                    {"decision", "denied"},
                                    {"reason", message}}));
  return UnauthenticatedError(message);
}

HttpResponse SigningApi::ListCertificates(const HttpRequest& request) {
  std::shared_ptr<const StateSnapshot> snapshot = state_.Current();
  auto principal = Authenticate(request, *snapshot, "list");
  if (!principal.ok()) return ErrorResponse(principal.status());
  const auto now = std::chrono::system_clock::now();
  wire::CertificateListResponse list;
  for (const CertificateRecord& cert : snapshot->state.certificates) {
    std::optional<AllowedUse> use = snapshot->policy.Visible(*principal, cert, now);
    if (!use) continue;
    wire::CertificateEntry e;
    e.id = cert.id;
    e.label = cert.label;
    e.key.type = cert.key_spec.type;
    e.key.bits = cert.key_spec.Bits();
    if (cert.key_spec.type == KeyType::kEc) e.key.curve = cert.key_spec.curve;
    e.certificate_pem = cert.certificate.Pem();
    for (const Certificate& c : cert.chain) e.chain_pem.push_back(c.Pem());
    // What the policies allow that the HSM key can do. While the key's abilities cannot be learned
    // (see KeyCapabilityRegistry::For), the policies alone, as before capabilities existed.
    SignatureCapabilities offered = use->capabilities;
    if (std::optional<SignatureCapabilities> hsm = capabilities_.For(cert)) {
      offered = offered.Intersect(*hsm);
    }
    e.capabilities = offered;
    e.schemes = offered.Schemes();
    e.hashes = offered.Hashes();
    list.certificates.push_back(std::move(e));
  }
  Status audited = Audit(json{{"type", "list"},
                              {"principal", PrincipalJson(*principal)},
                              {"peer", request.peer_address},
                              {"decision", "allowed"},
                              {"certificates", list.certificates.size()}});
  if (!audited.ok()) return ErrorResponse(audited);
  return JsonResponse(200, wire::ToJson(list));
}

HttpResponse SigningApi::Sign(const HttpRequest& request) {
  std::shared_ptr<const StateSnapshot> snapshot = state_.Current();
  auto principal = Authenticate(request, *snapshot, "sign");
  if (!principal.ok()) return ErrorResponse(principal.status());

  json event{
      {"type", "sign"}, {"principal", PrincipalJson(*principal)}, {"peer", request.peer_address}};
  // Every refusal is audited before the answer leaves. A signature that failed after an allowed
  // decision keeps "decision":"allowed" and records the failure as its outcome.
  auto refuse = [&](const Status& status, const std::string& rule) -> HttpResponse {
    if (!event.contains("decision")) event["decision"] = "denied";
    if (!rule.empty()) event["rule"] = rule;
    event["error"] = {{"code", ErrorCodeName(status.code())}, {"message", status.message()}};
    Status audited = Audit(event);
    if (!audited.ok()) return ErrorResponse(audited);
    return ErrorResponse(status);
  };

  auto body = wire::ParseJson(request.body);
  if (!body.ok()) return refuse(body.status(), "");
  auto parsed = wire::ParseSignRequest(*body);
  if (!parsed.ok()) return refuse(parsed.status(), "");
  const wire::SignRequest& req = *parsed;
  event["certificate_id"] = req.certificate_id;
  event["scheme"] = SchemeName(req.scheme);
  event["hash"] = HashName(req.hash);
  event["digest"] = HexEncode(req.digest);
  event["context"] = wire::ToJson(req.context);

  const CertificateRecord* cert = snapshot->state.FindCertificate(req.certificate_id);
  if (cert == nullptr)
    return refuse(NotFoundError("unknown certificate '" + req.certificate_id + "'"), "");
  event["certificate_id"] = cert->id;
  event["certificate_label"] = cert->label;
  if (!SchemeFitsKey(req.scheme, cert->key_spec.type)) {
    return refuse(InvalidArgumentError("scheme " + std::string(SchemeName(req.scheme)) +
                                       " does not fit the " + cert->key_spec.Name() +
                                       " key of certificate '" + cert->label + "'"),
                  "");
  }
  // Refused before the policy decision, like a scheme that does not fit the key: the HSM cannot
  // make this signature, whoever asks (the list never offered it).
  if (std::optional<SignatureCapabilities> hsm = capabilities_.For(*cert);
      hsm && !hsm->Allows(req.scheme, req.hash)) {
    return refuse(InvalidArgumentError(
                      "the HSM cannot sign " + std::string(SchemeName(req.scheme)) + " with " +
                      std::string(HashName(req.hash)) + " using the key of certificate '" +
                      cert->label + "' (it can: " + hsm->ToString() + ")"),
                  "");
  }
  const Decision decision = snapshot->policy.Evaluate(SignAttempt{
      *principal, *cert, req.scheme, req.hash, req.context, std::chrono::system_clock::now()});
  if (!decision.allowed) return refuse(PermissionDeniedError(decision.reason), decision.rule);

  InflightSlot global(inflight_, limits_.max_inflight_signatures);
  if (!global.acquired())
    return refuse(ResourceExhaustedError("server overloaded: too many signatures in flight; retry"),
                  decision.rule);
  // Per-user concurrency, as Signum's per-user setting: one busy pipeline cannot starve the rest.
  struct UserSlot {
    SigningApi& api;
    std::string user;
    bool acquired = false;
    ~UserSlot() {
      if (!acquired) return;
      std::lock_guard lock(api.per_user_mu_);
      if (--api.per_user_inflight_[user] == 0) api.per_user_inflight_.erase(user);
    }
  } user_slot{*this, principal->user};
  if (limits_.per_user_inflight_signatures > 0) {
    std::lock_guard lock(per_user_mu_);
    size_t& n = per_user_inflight_[principal->user];
    if (n >= limits_.per_user_inflight_signatures) {
      if (n == 0) per_user_inflight_.erase(principal->user);
      return refuse(ResourceExhaustedError("user '" + principal->user +
                                           "' has too many signatures in flight; retry"),
                    decision.rule);
    }
    ++n;
    user_slot.acquired = true;
  }

  auto key_id = HexDecode(cert->key_id_hex);
  if (!key_id.ok())
    return refuse(InternalError("certificate '" + cert->label + "' has a bad key id"),
                  decision.rule);

  // The allowed decision is made durable while the HSM signs: the answer waits for both, so the
  // audit fsync overlaps the signature instead of adding to it. A failed signature gets a second
  // record with the error before the answer leaves.
  event["decision"] = "allowed";
  event["rule"] = decision.rule;
  std::future<Status> audited =
      std::async(std::launch::async, [this, record = event] { return Audit(record); });
  auto signature = hsm_.Sign(*key_id, req.scheme, req.hash, req.digest, req.pss_salt_length);
  Status audit_status = audited.get();
  if (!audit_status.ok()) return ErrorResponse(audit_status);
  if (!signature.ok()) {
    SIGNUM_LOG_WARN(
        "api", "HSM signing for '" << cert->label << "' failed: " << signature.status().ToString());
    event["type"] = "sign-failed";
    event["outcome"] = "failed";
    return refuse(signature.status(), decision.rule);
  }
  wire::SignResponse response{cert->id, req.scheme, req.hash, std::move(signature).value()};
  return JsonResponse(200, wire::ToJson(response));
}

}  // namespace signum::server

#include "api.h"

#include <cctype>
#include <future>
#include <nlohmann/json.hpp>
#include <set>

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

// A request body as JSON, refusing duplicate member names: parsers disagree on which duplicate
// wins, so a body that a proxy or policy engine reads one way could be signed another way.
Result<json> ParseRequestBody(std::string_view text) {
  std::vector<std::set<std::string>> open_objects;
  std::string duplicate;
  auto reject_duplicates = [&](int, json::parse_event_t event, json& parsed) {
    switch (event) {
      case json::parse_event_t::object_start:
        open_objects.emplace_back();
        break;
      case json::parse_event_t::object_end:
        if (!open_objects.empty()) open_objects.pop_back();
        break;
      case json::parse_event_t::key:
        if (!open_objects.empty() && !open_objects.back().insert(parsed.get<std::string>()).second &&
            duplicate.empty()) {
          duplicate = parsed.get<std::string>();
        }
        break;
      default:
        break;
    }
    return true;
  };
  json j = json::parse(text.begin(), text.end(), reject_duplicates, /*allow_exceptions=*/false);
  if (j.is_discarded()) return InvalidArgumentError("body is not valid JSON");
  if (!duplicate.empty()) {
    return InvalidArgumentError("body has the member \"" + duplicate +
                                "\" more than once (duplicate JSON keys are refused)");
  }
  return j;
}

// RFC 7235 2.1: the auth-scheme is case-insensitive. The credentials after it, if it is Bearer.
std::optional<std::string_view> BearerCredentials(std::string_view header) {
  constexpr std::string_view kBearer = "bearer ";
  if (header.size() <= kBearer.size()) return std::nullopt;
  for (size_t i = 0; i < kBearer.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(header[i])) != kBearer[i]) return std::nullopt;
  }
  return header.substr(kBearer.size());
}

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
      version_(std::move(version)),
      auth_failures_(audit, "auth-failures",
                     std::chrono::milliseconds(limits.failure_audit_interval_ms)),
      client_certificate_failures_(audit, "tls-client-certificate-failures",
                                   std::chrono::milliseconds(limits.failure_audit_interval_ms)),
      audit_workers_(limits.max_inflight_signatures) {}

HttpResponse SigningApi::Handle(const HttpRequest& request) {
  const std::string path = PathOf(request.target);
  struct Route {
    std::string_view path;
    std::string_view method;
    HttpResponse (SigningApi::*handler)(const HttpRequest&);
  };
  static const Route kRoutes[] = {
      {wire::kHealthPath, "GET", &SigningApi::Health},
      {wire::kCertificatesPath, "GET", &SigningApi::ListCertificates},
      {wire::kSignPath, "POST", &SigningApi::Sign},
  };
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

HttpResponse SigningApi::Health(const HttpRequest&) {
  Status hsm = hsm_.Check();
  // While the audit log cannot be written nothing is signed (fail closed); Probe() retries a
  // write at most once a second, so health turns "ok" by itself once the disk has space again.
  Status audit = audit_.Probe();
  std::string status = "ok";
  if (!audit.ok()) {
    status = "degraded: audit unavailable";
  } else if (!hsm.ok()) {
    status = "degraded";
  }
  json body = wire::ToJson(
      wire::HealthResponse{status, version_, hsm.ok() ? "ok" : hsm.message()});
  body["audit"] = audit.ok() ? "ok" : audit.message();
  return JsonResponse(hsm.ok() && audit.ok() ? 200 : 503, body);
}

void SigningApi::AuditClientCertificateFailure(const std::string& peer, const std::string& reason) {
  Status s = client_certificate_failures_.Record(SourceAddressOf(peer),
                                                 json{{"type", "tls-client-certificate"},
                                                      {"peer", peer},
                                                      {"decision", "denied"},
                                                      {"reason", reason}});
  if (!s.ok()) SIGNUM_LOG_ERROR("audit", "cannot audit a client certificate failure: " << s.ToString());
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
    if (std::optional<std::string_view> token = BearerCredentials(auth->second)) {
      principal = snapshot.authenticator.ByToken(*token);
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
  // Aggregated per source address: a flood of bad credentials must not become one fsync'd
  // record per attempt (it filled the disk). The first failure of an interval is written now.
  Status audited = auth_failures_.Record(SourceAddressOf(request.peer_address),
                                         json{{"type", "authentication"},
                                              {"action", action},
                                              {"peer", request.peer_address},
                                              {"decision", "denied"},
                                              {"reason", message}});
  if (!audited.ok()) {
    SIGNUM_LOG_ERROR("audit", "cannot write audit record: " << audited.ToString());
    return InternalError("the audit log cannot be written; refusing to answer");
  }
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

  auto body = ParseRequestBody(request.body);
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
  // An impossible salt is the request's fault, whoever asks: refused before the policy decision
  // (not "allowed", then failed by the HSM).
  if (req.scheme == SignatureScheme::kRsaPss && req.pss_salt_length &&
      *req.pss_salt_length > MaxPssSaltLength(cert->key_spec.Bits(), req.hash)) {
    return refuse(InvalidArgumentError(
                      "pss_salt_length " + std::to_string(*req.pss_salt_length) +
                      " is too long for the " + cert->key_spec.Name() + " key with " +
                      std::string(HashName(req.hash)) + " (at most " +
                      std::to_string(MaxPssSaltLength(cert->key_spec.Bits(), req.hash)) + ")"),
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
      audit_workers_.Submit([this, record = event] { return Audit(record); });
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

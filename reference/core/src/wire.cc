#include "signum/core/wire.h"

#include <tuple>
#include <nlohmann/json.hpp>

#include "signum/core/encoding.h"
#include "json_fields.h"

namespace signum::wire {
namespace {

using nlohmann::json;

using json_fields::Base64Field;
using json_fields::FieldError;
using json_fields::OptionalIntegerField;
using json_fields::RequireObject;
using json_fields::StringField;
using json_fields::StringListField;

// "capabilities": [{"scheme": "rsa-pss", "hash": "sha256"}, ...]; absent or null: nullopt (a
// server that predates the field), which is not the same as an empty list (nothing can be signed).
Result<std::optional<SignatureCapabilities>> CapabilitiesField(const json& j) {
  auto it = j.find("capabilities");
  if (it == j.end() || it->is_null()) return std::optional<SignatureCapabilities>();
  if (!it->is_array()) return FieldError("capabilities", "must be an array of {scheme, hash}");
  SignatureCapabilities capabilities;
  for (size_t i = 0; i < it->size(); ++i) {
    const json& item = (*it)[i];
    const std::string field = "capabilities[" + std::to_string(i) + "]";
    if (!item.is_object()) return FieldError(field, "must be an object {scheme, hash}");
    auto scheme_name = StringField(item, "scheme", true);
    if (!scheme_name.ok()) return FieldError(field, scheme_name.status().message());
    auto scheme = ParseSignatureScheme(*scheme_name);
    if (!scheme.ok()) return FieldError(field + ".scheme", scheme.status().message());
    auto hash_name = StringField(item, "hash", true);
    if (!hash_name.ok()) return FieldError(field, hash_name.status().message());
    auto hash = ParseHashAlgorithm(*hash_name);
    if (!hash.ok()) return FieldError(field + ".hash", hash.status().message());
    capabilities.Add(*scheme, *hash);
  }
  return std::optional<SignatureCapabilities>(capabilities);
}

}  // namespace

json ToJson(const CallerContext& m) {
  json j = json::object();
  if (!m.process.empty()) j["process"] = m.process;
  if (!m.command_line.empty()) j["command_line"] = m.command_line;
  if (!m.host.empty()) j["host"] = m.host;
  if (!m.agent_id.empty()) j["agent_id"] = m.agent_id;
  if (m.pid) j["pid"] = *m.pid;
  if (m.uid) j["uid"] = *m.uid;
  return j;
}

json ToJson(const HealthResponse& m) {
  return json{{"status", m.status}, {"version", m.version}, {"hsm", m.hsm}};
}

json ToJson(const CertificateEntry& m) {
  json key{{"type", KeyTypeName(m.key.type)}, {"bits", m.key.bits}};
  if (m.key.curve) key["curve"] = GetCurveInfo(*m.key.curve).name;
  json schemes = json::array();
  for (SignatureScheme s : m.schemes) schemes.push_back(SchemeName(s));
  json hashes = json::array();
  for (HashAlgorithm h : m.hashes) hashes.push_back(HashName(h));
  json j{{"id", m.id},           {"label", m.label},
         {"key", key},           {"certificate", m.certificate_pem},
         {"chain", m.chain_pem}, {"schemes", schemes},
         {"hashes", hashes}};
  if (m.capabilities) {
    json pairs = json::array();
    for (const SchemeAndHash& p : m.capabilities->Pairs()) {
      pairs.push_back(json{{"scheme", SchemeName(p.scheme)}, {"hash", HashName(p.hash)}});
    }
    j["capabilities"] = std::move(pairs);
  }
  return j;
}

json ToJson(const CertificateListResponse& m) {
  json list = json::array();
  for (const CertificateEntry& e : m.certificates) list.push_back(ToJson(e));
  return json{{"certificates", list}};
}

json ToJson(const SignRequest& m) {
  json j{{"certificate_id", m.certificate_id},
         {"scheme", SchemeName(m.scheme)},
         {"hash", HashName(m.hash)},
         {"digest", Base64Encode(m.digest)}};
  if (m.pss_salt_length) j["pss_salt_length"] = *m.pss_salt_length;
  json context = ToJson(m.context);
  if (!context.empty()) j["context"] = context;
  return j;
}

json ToJson(const SignResponse& m) {
  return json{{"certificate_id", m.certificate_id},
              {"scheme", SchemeName(m.scheme)},
              {"hash", HashName(m.hash)},
              {"signature", Base64Encode(m.signature)}};
}

json ToJson(const ErrorResponse& m) {
  return json{{"error", {{"code", m.code}, {"message", m.message}}}};
}

Result<CallerContext> ParseCallerContext(const json& j) {
  SIGNUM_RETURN_IF_ERROR(RequireObject(j, "context"));
  CallerContext c;
  SIGNUM_ASSIGN_OR_RETURN(c.process, StringField(j, "process", false));
  SIGNUM_ASSIGN_OR_RETURN(c.command_line, StringField(j, "command_line", false));
  SIGNUM_ASSIGN_OR_RETURN(c.host, StringField(j, "host", false));
  SIGNUM_ASSIGN_OR_RETURN(c.agent_id, StringField(j, "agent_id", false));
  // Bounded so policies' regexes and the audit log never see pathological input.
  for (const auto& [field, value, limit] : {std::tuple{"process", &c.process, kMaxProcessLength},
                                            std::tuple{"command_line", &c.command_line, kMaxCommandLineLength},
                                            std::tuple{"host", &c.host, kMaxHostLength},
                                            std::tuple{"agent_id", &c.agent_id, kMaxHostLength}}) {
    if (value->size() > limit)
      return FieldError(std::string("context.") + field, "is longer than " + std::to_string(limit) + " bytes");
  }
  SIGNUM_ASSIGN_OR_RETURN(c.pid, OptionalIntegerField(j, "pid"));
  SIGNUM_ASSIGN_OR_RETURN(c.uid, OptionalIntegerField(j, "uid"));
  return c;
}

Result<HealthResponse> ParseHealthResponse(const json& j) {
  SIGNUM_RETURN_IF_ERROR(RequireObject(j, "health response"));
  HealthResponse h;
  SIGNUM_ASSIGN_OR_RETURN(h.status, StringField(j, "status", true));
  SIGNUM_ASSIGN_OR_RETURN(h.version, StringField(j, "version", false));
  SIGNUM_ASSIGN_OR_RETURN(h.hsm, StringField(j, "hsm", false));
  return h;
}

Result<CertificateEntry> ParseCertificateEntry(const json& j) {
  SIGNUM_RETURN_IF_ERROR(RequireObject(j, "certificate entry"));
  CertificateEntry e;
  SIGNUM_ASSIGN_OR_RETURN(e.id, StringField(j, "id", true));
  SIGNUM_ASSIGN_OR_RETURN(e.label, StringField(j, "label", false));
  SIGNUM_ASSIGN_OR_RETURN(e.certificate_pem, StringField(j, "certificate", true));
  SIGNUM_ASSIGN_OR_RETURN(e.chain_pem, StringListField(j, "chain"));
  auto key = j.find("key");
  if (key == j.end() || !key->is_object()) return FieldError("key", "must be an object");
  SIGNUM_ASSIGN_OR_RETURN(std::string type, StringField(*key, "type", true));
  if (type == "rsa") {
    e.key.type = KeyType::kRsa;
  } else if (type == "ec") {
    e.key.type = KeyType::kEc;
  } else {
    return FieldError("key.type", "must be \"rsa\" or \"ec\"");
  }
  auto bits = key->find("bits");
  if (bits == key->end() || !bits->is_number_integer()) return FieldError("key.bits", "must be an integer");
  e.key.bits = bits->get<int>();
  SIGNUM_ASSIGN_OR_RETURN(std::string curve, StringField(*key, "curve", false));
  if (!curve.empty()) {
    SIGNUM_ASSIGN_OR_RETURN(EcCurve parsed, ParseCurve(curve));
    e.key.curve = parsed;
  }
  SIGNUM_ASSIGN_OR_RETURN(std::vector<std::string> schemes, StringListField(j, "schemes"));
  for (const std::string& s : schemes) {
    SIGNUM_ASSIGN_OR_RETURN(SignatureScheme scheme, ParseSignatureScheme(s));
    e.schemes.push_back(scheme);
  }
  SIGNUM_ASSIGN_OR_RETURN(std::vector<std::string> hashes, StringListField(j, "hashes"));
  for (const std::string& h : hashes) {
    SIGNUM_ASSIGN_OR_RETURN(HashAlgorithm hash, ParseHashAlgorithm(h));
    e.hashes.push_back(hash);
  }
  SIGNUM_ASSIGN_OR_RETURN(e.capabilities, CapabilitiesField(j));
  return e;
}

Result<CertificateListResponse> ParseCertificateListResponse(const json& j) {
  SIGNUM_RETURN_IF_ERROR(RequireObject(j, "certificate list"));
  auto list = j.find("certificates");
  if (list == j.end() || !list->is_array()) return FieldError("certificates", "must be an array");
  CertificateListResponse r;
  for (const json& item : *list) {
    SIGNUM_ASSIGN_OR_RETURN(CertificateEntry e, ParseCertificateEntry(item));
    r.certificates.push_back(std::move(e));
  }
  return r;
}

Result<SignRequest> ParseSignRequest(const json& j) {
  SIGNUM_RETURN_IF_ERROR(RequireObject(j, "sign request"));
  SignRequest r;
  SIGNUM_ASSIGN_OR_RETURN(r.certificate_id, StringField(j, "certificate_id", true));
  if (r.certificate_id.empty()) return FieldError("certificate_id", "must not be empty");
  SIGNUM_ASSIGN_OR_RETURN(std::string scheme, StringField(j, "scheme", true));
  auto parsed_scheme = ParseSignatureScheme(scheme);
  if (!parsed_scheme.ok()) return FieldError("scheme", parsed_scheme.status().message());
  r.scheme = *parsed_scheme;
  SIGNUM_ASSIGN_OR_RETURN(std::string hash, StringField(j, "hash", true));
  auto parsed_hash = ParseHashAlgorithm(hash);
  if (!parsed_hash.ok()) return FieldError("hash", parsed_hash.status().message());
  r.hash = *parsed_hash;
  SIGNUM_ASSIGN_OR_RETURN(r.digest, Base64Field(j, "digest"));
  const size_t expected = GetHashInfo(r.hash).digest_size;
  if (r.digest.size() != expected) {
    return FieldError("digest", "a " + std::string(HashName(r.hash)) + " digest has " +
                                    std::to_string(expected) + " bytes, got " +
                                    std::to_string(r.digest.size()));
  }
  auto salt = j.find("pss_salt_length");
  if (salt != j.end() && !salt->is_null()) {
    if (!salt->is_number_unsigned()) return FieldError("pss_salt_length", "must be a non-negative integer");
    if (r.scheme != SignatureScheme::kRsaPss) return FieldError("pss_salt_length", "is only valid with scheme rsa-pss");
    r.pss_salt_length = salt->get<size_t>();
  }
  auto context = j.find("context");
  if (context != j.end() && !context->is_null()) {
    auto parsed = ParseCallerContext(*context);
    if (!parsed.ok()) return parsed.status().WithContext("field 'context'");
    r.context = std::move(parsed).value();
  }
  return r;
}

Result<SignResponse> ParseSignResponse(const json& j) {
  SIGNUM_RETURN_IF_ERROR(RequireObject(j, "sign response"));
  SignResponse r;
  SIGNUM_ASSIGN_OR_RETURN(r.certificate_id, StringField(j, "certificate_id", true));
  SIGNUM_ASSIGN_OR_RETURN(std::string scheme, StringField(j, "scheme", true));
  SIGNUM_ASSIGN_OR_RETURN(r.scheme, ParseSignatureScheme(scheme));
  SIGNUM_ASSIGN_OR_RETURN(std::string hash, StringField(j, "hash", true));
  SIGNUM_ASSIGN_OR_RETURN(r.hash, ParseHashAlgorithm(hash));
  SIGNUM_ASSIGN_OR_RETURN(r.signature, Base64Field(j, "signature"));
  return r;
}

Result<ErrorResponse> ParseErrorResponse(const json& j) {
  if (!j.is_object() || !j.contains("error") || !j["error"].is_object())
    return InvalidArgumentError("not an error response");
  ErrorResponse e;
  SIGNUM_ASSIGN_OR_RETURN(e.code, StringField(j["error"], "code", true));
  SIGNUM_ASSIGN_OR_RETURN(e.message, StringField(j["error"], "message", false));
  return e;
}

Result<json> ParseJson(std::string_view text) {
  json j = json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return InvalidArgumentError("body is not valid JSON");
  return j;
}

int HttpStatusFor(ErrorCode code) {
  switch (code) {
    case ErrorCode::kOk: return 200;
    case ErrorCode::kInvalidArgument: return 400;
    case ErrorCode::kUnauthenticated: return 401;
    case ErrorCode::kPermissionDenied: return 403;
    case ErrorCode::kNotFound: return 404;
    case ErrorCode::kAlreadyExists: return 409;
    case ErrorCode::kFailedPrecondition: return 409;
    case ErrorCode::kResourceExhausted: return 429;
    case ErrorCode::kUnimplemented: return 501;
    case ErrorCode::kUnavailable: return 503;
    case ErrorCode::kDeadlineExceeded: return 504;
    case ErrorCode::kDataLoss:
    case ErrorCode::kInternal: return 500;
  }
  return 500;
}

ErrorCode ErrorCodeForHttpStatus(int http_status) {
  switch (http_status) {
    case 400: case 405: case 411: case 413: case 415: case 431: return ErrorCode::kInvalidArgument;
    case 401: return ErrorCode::kUnauthenticated;
    case 403: return ErrorCode::kPermissionDenied;
    case 404: return ErrorCode::kNotFound;
    case 409: return ErrorCode::kFailedPrecondition;
    case 429: return ErrorCode::kResourceExhausted;
    case 501: return ErrorCode::kUnimplemented;
    case 502: case 503: return ErrorCode::kUnavailable;
    case 408: case 504: return ErrorCode::kDeadlineExceeded;
    default: return http_status >= 200 && http_status < 300 ? ErrorCode::kOk : ErrorCode::kInternal;
  }
}

ErrorResponse ToErrorResponse(const Status& status) {
  return {std::string(ErrorCodeName(status.code())), status.message()};
}

Status StatusFromHttpError(int http_status, std::string_view body) {
  ErrorCode code = ErrorCodeForHttpStatus(http_status);
  if (code == ErrorCode::kOk) return Status::Ok();
  std::string message = "HTTP " + std::to_string(http_status);
  auto parsed = ParseJson(body);
  if (parsed.ok()) {
    auto error = ParseErrorResponse(*parsed);
    if (error.ok()) message += ": " + error->message;
  }
  return Status(code, message);
}

}  // namespace signum::wire

// The messages of Signum's HTTPS API (server <-> agent, tests, bench), defined once.
// JSON over HTTP/1.1; every field documented in docs/server-api.md.
//
// Version: all paths start with /v1. Binary values are standard base64 (RFC 4648 §4, padded).
// Signatures are raw: PKCS#1 v1.5 / PSS octets of modulus length, ECDSA as r||s with each half
// left-padded to the curve's field size (the PKCS#11 CKM_ECDSA / IEEE P1363 form), never DER.
#pragma once

#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <string>
#include <vector>

#include "signum/core/algorithms.h"
#include "signum/core/bytes.h"
#include "signum/core/status.h"

namespace signum::wire {

inline constexpr std::string_view kApiPrefix = "/v1";
inline constexpr std::string_view kHealthPath = "/v1/health";
inline constexpr std::string_view kCertificatesPath = "/v1/certificates";
inline constexpr std::string_view kSignPath = "/v1/sign";

// Limits on caller context fields (longer values are rejected, not truncated).
inline constexpr size_t kMaxProcessLength = 256;
inline constexpr size_t kMaxCommandLineLength = 2048;
inline constexpr size_t kMaxHostLength = 255;

// Who is asking, as far as the caller can tell. Policies ("where") match on it and the audit log
// records it. The agent fills pid/uid/executable from the socket peer, not from its client.
struct CallerContext {
  std::string process;       // executable name, e.g. "osslsigncode"
  std::string command_line;  // full command line, arguments joined by spaces
  std::string host;
  std::string agent_id;
  std::optional<long> pid;
  std::optional<long> uid;

  bool operator==(const CallerContext&) const = default;
};

struct HealthResponse {
  std::string status;  // "ok" or "degraded"
  std::string version;
  std::string hsm;  // "ok" or the HSM error
};

struct KeyDescription {
  KeyType type = KeyType::kRsa;
  int bits = 0;                  // modulus bits or curve bits
  std::optional<EcCurve> curve;  // EC only
};

struct CertificateEntry {
  std::string id;  // lowercase hex SHA-1 thumbprint of the certificate
  std::string label;
  KeyDescription key;
  std::string certificate_pem;
  std::vector<std::string> chain_pem;  // issuing CA first, root last
  // Exactly the (scheme, hash) pairs the caller may sign with on this certificate: what its
  // policies allow, intersected with what the HSM key can do. nullopt: the server predates
  // capabilities (the field is absent); then only schemes and hashes below are known.
  std::optional<SignatureCapabilities> capabilities;
  // The projections of capabilities (schemes with some hash, hashes with some scheme), kept for
  // agents and providers that predate capabilities. Their cross product may hold pairs that
  // capabilities does not.
  std::vector<SignatureScheme> schemes;
  std::vector<HashAlgorithm> hashes;
};

struct CertificateListResponse {
  std::vector<CertificateEntry> certificates;
};

struct SignRequest {
  std::string certificate_id;
  SignatureScheme scheme = SignatureScheme::kRsaPkcs1;
  HashAlgorithm hash = HashAlgorithm::kSha256;
  Bytes digest;                           // exactly the hash's length
  std::optional<size_t> pss_salt_length;  // rsa-pss only; default = digest length
  CallerContext context;
};

struct SignResponse {
  std::string certificate_id;
  SignatureScheme scheme = SignatureScheme::kRsaPkcs1;
  HashAlgorithm hash = HashAlgorithm::kSha256;
  Bytes signature;
};

// {"error": {"code": "PERMISSION_DENIED", "message": "..."}}
struct ErrorResponse {
  std::string code;
  std::string message;
};

nlohmann::json ToJson(const CallerContext& m);
nlohmann::json ToJson(const HealthResponse& m);
nlohmann::json ToJson(const CertificateEntry& m);
nlohmann::json ToJson(const CertificateListResponse& m);
nlohmann::json ToJson(const SignRequest& m);
nlohmann::json ToJson(const SignResponse& m);
nlohmann::json ToJson(const ErrorResponse& m);

// Parsers validate types, required fields and value ranges and name the offending field.
Result<CallerContext> ParseCallerContext(const nlohmann::json& j);
Result<HealthResponse> ParseHealthResponse(const nlohmann::json& j);
Result<CertificateEntry> ParseCertificateEntry(const nlohmann::json& j);
Result<CertificateListResponse> ParseCertificateListResponse(const nlohmann::json& j);
Result<SignRequest> ParseSignRequest(const nlohmann::json& j);
Result<SignResponse> ParseSignResponse(const nlohmann::json& j);
Result<ErrorResponse> ParseErrorResponse(const nlohmann::json& j);

// Parses text as JSON without throwing.
Result<nlohmann::json> ParseJson(std::string_view text);

// HTTP status for an error code, and the code for a status (client side).
int HttpStatusFor(ErrorCode code);
ErrorCode ErrorCodeForHttpStatus(int http_status);
ErrorResponse ToErrorResponse(const Status& status);
// Client side: turns an HTTP error response into a Status with the server's code and message.
Status StatusFromHttpError(int http_status, std::string_view body);

}  // namespace signum::wire

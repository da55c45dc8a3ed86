// The server's persistent state: certificates (and the HSM keys behind them), users and their
// credentials, and the ordered policy rules. Stored as one JSON file, written atomically.
#pragma once

#include <chrono>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "signum/core/algorithms.h"
#include "signum/core/x509.h"

namespace signum::server {

struct CertificateRecord {
  std::string id;          // lowercase hex SHA-1 thumbprint of `certificate`
  std::string label;       // unique, human-chosen ("rsa-2048")
  std::string key_id_hex;  // CKA_ID of the HSM key
  KeySpec key_spec;
  Certificate certificate;
  std::vector<Certificate> chain;  // issuing CA first, root last
  std::vector<std::string> groups; // certificate groups policies can name
  bool enabled = true;
};

struct ApiTokenRecord {
  std::string id;          // public, short: shown in listings and audit ("tok_1a2b3c4d")
  std::string sha256_hex;  // SHA-256 of the whole secret token; the token itself is never stored
  std::string created;     // RFC 3339 UTC
};

struct ClientCertificateBinding {
  std::string sha256_hex;  // SHA-256 fingerprint of the client certificate DER
  std::string subject;     // for people reading the state
};

struct UserRecord {
  std::string name;
  std::vector<std::string> groups;
  bool admin = false;      // may call admin operations (never implies signing rights)
  std::vector<ApiTokenRecord> tokens;
  std::vector<ClientCertificateBinding> client_certificates;
};

enum class PolicyEffect { kAllow, kDeny };

// One ordered rule. Every non-empty condition must match; empty lists match anything, except
// that sha1 is only allowed by a rule that lists "sha1" in hashes explicitly.
struct PolicyRule {
  std::string name;
  PolicyEffect effect = PolicyEffect::kDeny;
  std::vector<std::string> users;               // who
  std::vector<std::string> groups;
  std::vector<std::string> certificates;        // what: certificate ids or labels
  std::vector<std::string> certificate_groups;
  std::string process_regex;                    // where: ECMAScript, full match, case-insensitive
  std::string command_line_regex;               //        ECMAScript, search
  std::optional<std::chrono::system_clock::time_point> not_before;  // when
  std::optional<std::chrono::system_clock::time_point> not_after;
  std::vector<SignatureScheme> schemes;         // which
  std::vector<HashAlgorithm> hashes;
};

struct ServerState {
  std::vector<CertificateRecord> certificates;
  std::vector<UserRecord> users;
  std::vector<PolicyRule> policies;

  const CertificateRecord* FindCertificate(std::string_view id_or_label) const;
  UserRecord* FindUser(std::string_view name);
  const UserRecord* FindUser(std::string_view name) const;
};

nlohmann::json StateToJson(const ServerState& state);
Result<ServerState> StateFromJson(const nlohmann::json& j);
Result<PolicyRule> PolicyRuleFromJson(const nlohmann::json& j);
nlohmann::json PolicyRuleToJson(const PolicyRule& rule);

// The cross-record rules StateFromJson enforces (unique ids, labels, user and policy names, ids
// that are the certificates' thumbprints, key specs that match the keys, well-formed credential
// hashes bound to one user each); for states built in code, e.g. by StateStore::Update.
Status ValidateState(const ServerState& state);

Result<ServerState> LoadState(const std::string& path);
Status SaveState(const std::string& path, const ServerState& state);  // atomic, mode 0600

// RFC 3339 UTC "2026-11-27T09:30:00Z" <-> time_point.
std::string FormatTimestamp(std::chrono::system_clock::time_point t);
Result<std::chrono::system_clock::time_point> ParseTimestamp(std::string_view text);

}  // namespace signum::server

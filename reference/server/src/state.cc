// The server's persistent state as one JSON document.
//
// Schema (every field below is written by StateToJson; unknown fields are rejected on load so a
// typo such as "user" for "users" in a policy cannot silently widen it):
//
// {
//   "certificates": [{
//     "id": "<lowercase hex SHA-1 thumbprint of certificate>",       required, must match
//     "label": "rsa-2048",                                            required, unique
//     "key_id": "<hex CKA_ID of the HSM key>",                        required
//     "key_spec": "rsa-2048",                                         required, must match the key
//     "certificate": "-----BEGIN CERTIFICATE-----...",                required, PEM
//     "chain": ["PEM", ...],                                          optional, issuing CA first
//     "groups": ["release", ...],                                     optional
//     "enabled": true                                                 optional, default true
//   }],
//   "users": [{
//     "name": "alice",                                                required, unique
//     "groups": ["ci"],                                               optional
//     "admin": false,                                                 optional, default false
//     "tokens": [{"id": "tok_1a2b3c4d", "sha256": "<hex SHA-256 of the whole token>",
//                 "created": "2026-11-27T09:30:00Z"}],                optional
//     "client_certificates": [{"sha256": "<hex SHA-256 of the DER>", "subject": "CN=..."}]
//   }],
//   "policies": [{                                                    ordered; first match decides
//     "name": "ci-rsa",                                               required, unique
//     "effect": "allow" | "deny",                                     required
//     "users": ["alice", "*"], "groups": ["ci"],                      who (optional)
//     "certificates": ["<id or label>"], "certificate_groups": [...], what (optional)
//     "process": "<regex, full match, case-insensitive>",             where (optional)
//     "command_line": "<regex, search, case-insensitive>",            where (optional)
//     "not_before": "RFC 3339", "not_after": "RFC 3339",              when (optional)
//     "schemes": ["rsa-pkcs1", "rsa-pss", "ecdsa"],                   which (optional)
//     "hashes": ["sha1", "sha224", "sha256", "sha384", "sha512"]      which (optional)
//   }]
// }
//
// Parsing never throws: every error is kInvalidArgument naming the JSON path of the offending
// value, e.g. "policies[2].hashes[0]: unknown hash algorithm 'md5' (...)".
#include "state.h"

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <exception>
#include <map>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>
#include <string_view>

#include "signum/core/encoding.h"
#include "signum/core/files.h"

namespace signum::server {
namespace {

using nlohmann::json;

std::string Join(const std::string& path, std::string_view field) {
  if (path.empty()) return std::string(field);
  return path + "." + std::string(field);
}

std::string Index(const std::string& path, size_t i) {
  return path + "[" + std::to_string(i) + "]";
}

Status Error(const std::string& path, std::string_view message) {
  return InvalidArgumentError((path.empty() ? std::string() : path + ": ") + std::string(message));
}

bool IsHex(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](unsigned char c) { return std::isxdigit(c) != 0; });
}

bool IsSha256Hex(std::string_view s) { return s.size() == 64 && IsHex(s); }

// Checks that `obj` is an object whose keys are all in `allowed`.
Status CheckObject(const json& obj, const std::string& path,
                   std::initializer_list<std::string_view> allowed) {
  if (!obj.is_object()) return Error(path, "expected an object");
  for (auto it = obj.begin(); it != obj.end(); ++it) {
    if (std::find(allowed.begin(), allowed.end(), it.key()) == allowed.end()) {
      return Error(path, "unknown field '" + it.key() + "'");
    }
  }
  return Status::Ok();
}

Result<std::string> GetString(const json& obj, std::string_view key, const std::string& path,
                              bool required, bool non_empty = true) {
  const std::string field_path = Join(path, key);
  auto it = obj.find(key);
  if (it == obj.end()) {
    if (required) return Error(field_path, "missing");
    return std::string();
  }
  if (!it->is_string()) return Error(field_path, "expected a string");
  std::string value = it->get<std::string>();
  if (non_empty && value.empty()) return Error(field_path, "must not be empty");
  return value;
}

Result<bool> GetBool(const json& obj, std::string_view key, const std::string& path,
                     bool default_value) {
  auto it = obj.find(key);
  if (it == obj.end()) return default_value;
  if (!it->is_boolean()) return Error(Join(path, key), "expected true or false");
  return it->get<bool>();
}

// An optional array of non-empty strings.
Result<std::vector<std::string>> GetStringList(const json& obj, std::string_view key,
                                               const std::string& path) {
  std::vector<std::string> out;
  const std::string field_path = Join(path, key);
  auto it = obj.find(key);
  if (it == obj.end()) return out;
  if (!it->is_array()) return Error(field_path, "expected an array of strings");
  for (size_t i = 0; i < it->size(); ++i) {
    const json& item = (*it)[i];
    if (!item.is_string()) return Error(Index(field_path, i), "expected a string");
    std::string value = item.get<std::string>();
    if (value.empty()) return Error(Index(field_path, i), "must not be empty");
    out.push_back(std::move(value));
  }
  return out;
}

// Parses "09" style fixed-width decimal fields.
bool ParseDigits(std::string_view text, size_t pos, size_t len, int& out) {
  if (pos + len > text.size()) return false;
  int value = 0;
  for (size_t i = pos; i < pos + len; ++i) {
    if (text[i] < '0' || text[i] > '9') return false;
    value = value * 10 + (text[i] - '0');
  }
  out = value;
  return true;
}

// --- Certificates ------------------------------------------------------------------------------

Result<CertificateRecord> CertificateFromJson(const json& j, const std::string& path) {
  SIGNUM_RETURN_IF_ERROR(CheckObject(
      j, path, {"id", "label", "key_id", "key_spec", "certificate", "chain", "groups", "enabled"}));
  SIGNUM_ASSIGN_OR_RETURN(std::string id, GetString(j, "id", path, true));
  SIGNUM_ASSIGN_OR_RETURN(std::string label, GetString(j, "label", path, true));
  SIGNUM_ASSIGN_OR_RETURN(std::string key_id, GetString(j, "key_id", path, true));
  if (key_id.size() % 2 != 0 || !IsHex(key_id)) {
    return Error(Join(path, "key_id"), "expected an even number of hex digits");
  }
  SIGNUM_ASSIGN_OR_RETURN(std::string spec, GetString(j, "key_spec", path, true));
  auto key_spec = ParseKeySpec(spec);
  if (!key_spec.ok()) return Error(Join(path, "key_spec"), key_spec.status().message());
  SIGNUM_ASSIGN_OR_RETURN(std::string pem, GetString(j, "certificate", path, true));
  auto cert = Certificate::FromPem(pem);
  if (!cert.ok()) return Error(Join(path, "certificate"), cert.status().message());
  SIGNUM_ASSIGN_OR_RETURN(std::vector<std::string> chain_pem, GetStringList(j, "chain", path));
  std::vector<Certificate> chain;
  for (size_t i = 0; i < chain_pem.size(); ++i) {
    auto ca = Certificate::FromPem(chain_pem[i]);
    if (!ca.ok()) return Error(Index(Join(path, "chain"), i), ca.status().message());
    chain.push_back(std::move(*ca));
  }
  SIGNUM_ASSIGN_OR_RETURN(std::vector<std::string> groups, GetStringList(j, "groups", path));
  SIGNUM_ASSIGN_OR_RETURN(bool enabled, GetBool(j, "enabled", path, true));
  return CertificateRecord{std::move(id),    std::move(label), AsciiLower(key_id),     *key_spec,
                           std::move(*cert), std::move(chain), std::move(groups), enabled};
}

json CertificateToJson(const CertificateRecord& rec) {
  json chain = json::array();
  for (const Certificate& c : rec.chain) chain.push_back(c.Pem());
  return json{{"id", rec.id},
              {"label", rec.label},
              {"key_id", rec.key_id_hex},
              {"key_spec", rec.key_spec.Name()},
              {"certificate", rec.certificate.Pem()},
              {"chain", std::move(chain)},
              {"groups", rec.groups},
              {"enabled", rec.enabled}};
}

// --- Users -------------------------------------------------------------------------------------

Result<UserRecord> UserFromJson(const json& j, const std::string& path) {
  SIGNUM_RETURN_IF_ERROR(
      CheckObject(j, path, {"name", "groups", "admin", "tokens", "client_certificates"}));
  UserRecord user;
  SIGNUM_ASSIGN_OR_RETURN(user.name, GetString(j, "name", path, true));
  SIGNUM_ASSIGN_OR_RETURN(user.groups, GetStringList(j, "groups", path));
  SIGNUM_ASSIGN_OR_RETURN(user.admin, GetBool(j, "admin", path, false));

  if (auto it = j.find("tokens"); it != j.end()) {
    const std::string tokens_path = Join(path, "tokens");
    if (!it->is_array()) return Error(tokens_path, "expected an array");
    for (size_t i = 0; i < it->size(); ++i) {
      const std::string p = Index(tokens_path, i);
      const json& t = (*it)[i];
      SIGNUM_RETURN_IF_ERROR(CheckObject(t, p, {"id", "sha256", "created"}));
      ApiTokenRecord rec;
      SIGNUM_ASSIGN_OR_RETURN(rec.id, GetString(t, "id", p, true));
      SIGNUM_ASSIGN_OR_RETURN(rec.sha256_hex, GetString(t, "sha256", p, true));
      if (!IsSha256Hex(rec.sha256_hex)) {
        return Error(Join(p, "sha256"), "expected 64 hex digits");
      }
      rec.sha256_hex = AsciiLower(rec.sha256_hex);
      SIGNUM_ASSIGN_OR_RETURN(rec.created, GetString(t, "created", p, false));
      if (!rec.created.empty()) {
        auto ts = ParseTimestamp(rec.created);
        if (!ts.ok()) return Error(Join(p, "created"), ts.status().message());
      }
      user.tokens.push_back(std::move(rec));
    }
  }
  if (auto it = j.find("client_certificates"); it != j.end()) {
    const std::string certs_path = Join(path, "client_certificates");
    if (!it->is_array()) return Error(certs_path, "expected an array");
    for (size_t i = 0; i < it->size(); ++i) {
      const std::string p = Index(certs_path, i);
      const json& c = (*it)[i];
      SIGNUM_RETURN_IF_ERROR(CheckObject(c, p, {"sha256", "subject"}));
      ClientCertificateBinding binding;
      SIGNUM_ASSIGN_OR_RETURN(binding.sha256_hex, GetString(c, "sha256", p, true));
      std::string compact = binding.sha256_hex;
      compact.erase(std::remove(compact.begin(), compact.end(), ':'), compact.end());
      if (!IsSha256Hex(compact)) return Error(Join(p, "sha256"), "expected 64 hex digits");
      binding.sha256_hex = AsciiLower(compact);
      SIGNUM_ASSIGN_OR_RETURN(binding.subject, GetString(c, "subject", p, false, false));
      user.client_certificates.push_back(std::move(binding));
    }
  }
  return user;
}

json UserToJson(const UserRecord& user) {
  json tokens = json::array();
  for (const ApiTokenRecord& t : user.tokens) {
    tokens.push_back({{"id", t.id}, {"sha256", t.sha256_hex}, {"created", t.created}});
  }
  json certs = json::array();
  for (const ClientCertificateBinding& c : user.client_certificates) {
    certs.push_back({{"sha256", c.sha256_hex}, {"subject", c.subject}});
  }
  return json{{"name", user.name},
              {"groups", user.groups},
              {"admin", user.admin},
              {"tokens", std::move(tokens)},
              {"client_certificates", std::move(certs)}};
}

// --- Policies ----------------------------------------------------------------------------------

Status CheckRegex(const std::string& pattern, const std::string& path) {
  try {
    std::regex re(pattern, std::regex::ECMAScript | std::regex::icase);
  } catch (const std::regex_error& e) {
    return Error(path, "invalid regular expression '" + pattern + "': " + e.what());
  }
  return Status::Ok();
}

Result<PolicyRule> PolicyFromJson(const json& j, const std::string& path) {
  SIGNUM_RETURN_IF_ERROR(
      CheckObject(j, path,
                  {"name", "effect", "users", "groups", "certificates", "certificate_groups",
                   "process", "command_line", "not_before", "not_after", "schemes", "hashes"}));
  PolicyRule rule;
  SIGNUM_ASSIGN_OR_RETURN(rule.name, GetString(j, "name", path, true));
  SIGNUM_ASSIGN_OR_RETURN(std::string effect, GetString(j, "effect", path, true));
  if (effect == "allow") {
    rule.effect = PolicyEffect::kAllow;
  } else if (effect == "deny") {
    rule.effect = PolicyEffect::kDeny;
  } else {
    return Error(Join(path, "effect"), "expected 'allow' or 'deny', got '" + effect + "'");
  }
  SIGNUM_ASSIGN_OR_RETURN(rule.users, GetStringList(j, "users", path));
  SIGNUM_ASSIGN_OR_RETURN(rule.groups, GetStringList(j, "groups", path));
  SIGNUM_ASSIGN_OR_RETURN(rule.certificates, GetStringList(j, "certificates", path));
  SIGNUM_ASSIGN_OR_RETURN(rule.certificate_groups, GetStringList(j, "certificate_groups", path));
  SIGNUM_ASSIGN_OR_RETURN(rule.process_regex, GetString(j, "process", path, false, false));
  if (!rule.process_regex.empty()) {
    SIGNUM_RETURN_IF_ERROR(CheckRegex(rule.process_regex, Join(path, "process")));
  }
  SIGNUM_ASSIGN_OR_RETURN(rule.command_line_regex,
                          GetString(j, "command_line", path, false, false));
  if (!rule.command_line_regex.empty()) {
    SIGNUM_RETURN_IF_ERROR(CheckRegex(rule.command_line_regex, Join(path, "command_line")));
  }
  for (std::string_view key : {"not_before", "not_after"}) {
    SIGNUM_ASSIGN_OR_RETURN(std::string text, GetString(j, key, path, false, false));
    if (text.empty()) continue;
    auto t = ParseTimestamp(text);
    if (!t.ok()) return Error(Join(path, key), t.status().message());
    (key == "not_before" ? rule.not_before : rule.not_after) = *t;
  }
  if (rule.not_before && rule.not_after && *rule.not_after < *rule.not_before) {
    return Error(path, "not_after is before not_before");
  }
  SIGNUM_ASSIGN_OR_RETURN(std::vector<std::string> schemes, GetStringList(j, "schemes", path));
  for (size_t i = 0; i < schemes.size(); ++i) {
    auto s = ParseSignatureScheme(schemes[i]);
    if (!s.ok()) return Error(Index(Join(path, "schemes"), i), s.status().message());
    if (std::find(rule.schemes.begin(), rule.schemes.end(), *s) == rule.schemes.end()) {
      rule.schemes.push_back(*s);
    }
  }
  SIGNUM_ASSIGN_OR_RETURN(std::vector<std::string> hashes, GetStringList(j, "hashes", path));
  for (size_t i = 0; i < hashes.size(); ++i) {
    auto h = ParseHashAlgorithm(hashes[i]);
    if (!h.ok()) return Error(Index(Join(path, "hashes"), i), h.status().message());
    if (std::find(rule.hashes.begin(), rule.hashes.end(), *h) == rule.hashes.end()) {
      rule.hashes.push_back(*h);
    }
  }
  return rule;
}

// --- Whole-state validation --------------------------------------------------------------------

std::string CertificatePath(size_t i) { return Index("certificates", i); }
std::string UserPath(size_t i) { return Index("users", i); }

}  // namespace

// --- ServerState -------------------------------------------------------------------------------

const CertificateRecord* ServerState::FindCertificate(std::string_view id_or_label) const {
  if (id_or_label.empty()) return nullptr;
  const std::string lower = AsciiLower(id_or_label);
  for (const CertificateRecord& c : certificates) {
    if (c.id == lower) return &c;
  }
  for (const CertificateRecord& c : certificates) {
    if (c.label == id_or_label) return &c;
  }
  return nullptr;
}

UserRecord* ServerState::FindUser(std::string_view name) {
  for (UserRecord& u : users) {
    if (u.name == name) return &u;
  }
  return nullptr;
}

const UserRecord* ServerState::FindUser(std::string_view name) const {
  for (const UserRecord& u : users) {
    if (u.name == name) return &u;
  }
  return nullptr;
}

Status ValidateState(const ServerState& state) {
  try {
    std::map<std::string, size_t> ids;
    std::map<std::string, size_t> labels;
    for (size_t i = 0; i < state.certificates.size(); ++i) {
      const CertificateRecord& c = state.certificates[i];
      const std::string path = CertificatePath(i);
      if (c.label.empty()) return Error(Join(path, "label"), "must not be empty");
      const std::string thumbprint = c.certificate.Sha1ThumbprintHex();
      if (c.id != thumbprint) {
        return Error(
            Join(path, "id"),
            "'" + c.id + "' is not the certificate's SHA-1 thumbprint (" + thumbprint + ")");
      }
      auto key_spec = c.certificate.GetKeySpec();
      if (!key_spec.ok()) {
        return Error(Join(path, "certificate"), key_spec.status().message());
      }
      if (!(*key_spec == c.key_spec)) {
        return Error(Join(path, "key_spec"), "'" + c.key_spec.Name() +
                                                 "' does not match the certificate's key (" +
                                                 key_spec->Name() + ")");
      }
      if (c.key_id_hex.empty()) return Error(Join(path, "key_id"), "must not be empty");
      if (auto [it, inserted] = ids.emplace(c.id, i); !inserted) {
        return Error(Join(path, "id"),
                     "duplicate certificate id (also " + CertificatePath(it->second) + ")");
      }
      if (auto [it, inserted] = labels.emplace(c.label, i); !inserted) {
        return Error(Join(path, "label"), "duplicate label '" + c.label + "' (also " +
                                              CertificatePath(it->second) + ")");
      }
    }
    // A label that spells another certificate's id would make FindCertificate ambiguous.
    for (size_t i = 0; i < state.certificates.size(); ++i) {
      auto it = ids.find(AsciiLower(state.certificates[i].label));
      if (it != ids.end() && it->second != i) {
        return Error(Join(CertificatePath(i), "label"),
                     "label equals the id of " + CertificatePath(it->second));
      }
    }

    std::map<std::string, size_t> names;
    std::map<std::string, std::string> token_hashes;  // hash -> user
    std::map<std::string, std::string> client_certs;  // fingerprint -> user
    for (size_t i = 0; i < state.users.size(); ++i) {
      const UserRecord& u = state.users[i];
      const std::string path = UserPath(i);
      if (u.name.empty()) return Error(Join(path, "name"), "must not be empty");
      if (auto [it, inserted] = names.emplace(u.name, i); !inserted) {
        return Error(Join(path, "name"),
                     "duplicate user name '" + u.name + "' (also " + UserPath(it->second) + ")");
      }
      std::set<std::string> token_ids;
      for (size_t t = 0; t < u.tokens.size(); ++t) {
        const ApiTokenRecord& tok = u.tokens[t];
        const std::string tpath = Index(Join(path, "tokens"), t);
        if (tok.id.empty()) return Error(Join(tpath, "id"), "must not be empty");
        if (!token_ids.insert(tok.id).second) {
          return Error(Join(tpath, "id"), "duplicate token id '" + tok.id + "'");
        }
        if (!IsSha256Hex(tok.sha256_hex)) {
          return Error(Join(tpath, "sha256"), "expected 64 hex digits");
        }
        if (auto [it, inserted] = token_hashes.emplace(AsciiLower(tok.sha256_hex), u.name); !inserted) {
          return Error(Join(tpath, "sha256"),
                       "token hash already belongs to user '" + it->second + "'");
        }
      }
      for (size_t c = 0; c < u.client_certificates.size(); ++c) {
        const ClientCertificateBinding& b = u.client_certificates[c];
        const std::string cpath = Index(Join(path, "client_certificates"), c);
        if (!IsSha256Hex(b.sha256_hex)) {
          return Error(Join(cpath, "sha256"), "expected 64 hex digits");
        }
        if (auto [it, inserted] = client_certs.emplace(AsciiLower(b.sha256_hex), u.name); !inserted) {
          return Error(Join(cpath, "sha256"),
                       "client certificate already bound to user '" + it->second + "'");
        }
      }
    }

    std::map<std::string, size_t> policy_names;
    for (size_t i = 0; i < state.policies.size(); ++i) {
      const PolicyRule& rule = state.policies[i];
      const std::string path = Index("policies", i);
      if (rule.name.empty()) return Error(Join(path, "name"), "must not be empty");
      if (auto [it, inserted] = policy_names.emplace(rule.name, i); !inserted) {
        return Error(Join(path, "name"), "duplicate policy name '" + rule.name + "' (also " +
                                             Index("policies", it->second) + ")");
      }
    }
  } catch (const std::exception& e) {
    return InternalError(std::string("validating state: ") + e.what());
  }
  return Status::Ok();
}

// --- JSON --------------------------------------------------------------------------------------

nlohmann::json PolicyRuleToJson(const PolicyRule& rule) {
  json j;
  j["name"] = rule.name;
  j["effect"] = rule.effect == PolicyEffect::kAllow ? "allow" : "deny";
  j["users"] = rule.users;
  j["groups"] = rule.groups;
  j["certificates"] = rule.certificates;
  j["certificate_groups"] = rule.certificate_groups;
  if (!rule.process_regex.empty()) j["process"] = rule.process_regex;
  if (!rule.command_line_regex.empty()) j["command_line"] = rule.command_line_regex;
  if (rule.not_before) j["not_before"] = FormatTimestamp(*rule.not_before);
  if (rule.not_after) j["not_after"] = FormatTimestamp(*rule.not_after);
  json schemes = json::array();
  for (SignatureScheme s : rule.schemes) schemes.push_back(std::string(SchemeName(s)));
  j["schemes"] = std::move(schemes);
  json hashes = json::array();
  for (HashAlgorithm h : rule.hashes) hashes.push_back(std::string(HashName(h)));
  j["hashes"] = std::move(hashes);
  return j;
}

Result<PolicyRule> PolicyRuleFromJson(const nlohmann::json& j) {
  try {
    return PolicyFromJson(j, "");
  } catch (const std::exception& e) {
    return InvalidArgumentError(std::string("policy: ") + e.what());
  }
}

nlohmann::json StateToJson(const ServerState& state) {
  json certs = json::array();
  for (const CertificateRecord& c : state.certificates) certs.push_back(CertificateToJson(c));
  json users = json::array();
  for (const UserRecord& u : state.users) users.push_back(UserToJson(u));
  json policies = json::array();
  for (const PolicyRule& p : state.policies) policies.push_back(PolicyRuleToJson(p));
  return json{{"certificates", std::move(certs)},
              {"users", std::move(users)},
              {"policies", std::move(policies)}};
}

Result<ServerState> StateFromJson(const nlohmann::json& j) {
  try {
    SIGNUM_RETURN_IF_ERROR(CheckObject(j, "", {"certificates", "users", "policies"}));
    ServerState state;
    for (std::string_view section : {"certificates", "users", "policies"}) {
      auto it = j.find(section);
      if (it == j.end()) continue;
      const std::string path(section);
      if (!it->is_array()) return Error(path, "expected an array");
      for (size_t i = 0; i < it->size(); ++i) {
        const std::string item_path = Index(path, i);
        if (section == "certificates") {
          SIGNUM_ASSIGN_OR_RETURN(CertificateRecord c, CertificateFromJson((*it)[i], item_path));
          state.certificates.push_back(std::move(c));
        } else if (section == "users") {
          SIGNUM_ASSIGN_OR_RETURN(UserRecord u, UserFromJson((*it)[i], item_path));
          state.users.push_back(std::move(u));
        } else {
          SIGNUM_ASSIGN_OR_RETURN(PolicyRule p, PolicyFromJson((*it)[i], item_path));
          state.policies.push_back(std::move(p));
        }
      }
    }
    SIGNUM_RETURN_IF_ERROR(ValidateState(state));
    return state;
  } catch (const std::exception& e) {
    return InvalidArgumentError(std::string("state: ") + e.what());
  }
}

Result<ServerState> LoadState(const std::string& path) {
  auto text = ReadFile(path);
  if (!text.ok()) return text.status().WithContext("loading state");
  json j = json::parse(*text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) {
    return InvalidArgumentError("loading state: " + path + " is not valid JSON");
  }
  auto state = StateFromJson(j);
  if (!state.ok()) return state.status().WithContext("loading state " + path);
  return state;
}

Status SaveState(const std::string& path, const ServerState& state) {
  std::string text;
  try {
    text = StateToJson(state).dump(2) + "\n";
  } catch (const std::exception& e) {
    return InvalidArgumentError(std::string("saving state: ") + e.what());
  }
  return WriteFileAtomically(path, text, 0600).WithContext("saving state " + path);
}

// --- Timestamps --------------------------------------------------------------------------------

std::string FormatTimestamp(std::chrono::system_clock::time_point t) {
  using namespace std::chrono;
  const auto secs = floor<seconds>(t);
  const auto day = floor<days>(secs);
  const year_month_day ymd(day);
  const hh_mm_ss hms(secs - day);
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%04d-%02u-%02uT%02d:%02d:%02dZ", static_cast<int>(ymd.year()),
                static_cast<unsigned>(ymd.month()), static_cast<unsigned>(ymd.day()),
                static_cast<int>(hms.hours().count()), static_cast<int>(hms.minutes().count()),
                static_cast<int>(hms.seconds().count()));
  return buf;
}

Result<std::chrono::system_clock::time_point> ParseTimestamp(std::string_view text) {
  using namespace std::chrono;
  auto bad = [&](std::string_view why) -> Status {
    return InvalidArgumentError("invalid RFC 3339 timestamp '" + std::string(text) +
                                "': " + std::string(why) + " (expected e.g. 2026-11-27T09:30:00Z)");
  };
  int y = 0, mo = 0, d = 0, h = 0, mi = 0, s = 0;
  if (text.size() < 20 || !ParseDigits(text, 0, 4, y) || text[4] != '-' ||
      !ParseDigits(text, 5, 2, mo) || text[7] != '-' || !ParseDigits(text, 8, 2, d) ||
      (text[10] != 'T' && text[10] != 't') || !ParseDigits(text, 11, 2, h) || text[13] != ':' ||
      !ParseDigits(text, 14, 2, mi) || text[16] != ':' || !ParseDigits(text, 17, 2, s)) {
    return bad("malformed");
  }
  const year_month_day ymd{year(y), month(static_cast<unsigned>(mo)),
                           day(static_cast<unsigned>(d))};
  if (!ymd.ok()) return bad("no such date");
  if (h > 23 || mi > 59 || s > 60) return bad("no such time of day");
  size_t pos = 19;
  nanoseconds fraction{0};
  if (pos < text.size() && text[pos] == '.') {
    ++pos;
    const size_t start = pos;
    long long value = 0;
    int digits = 0;
    while (pos < text.size() && text[pos] >= '0' && text[pos] <= '9') {
      if (digits < 9) {
        value = value * 10 + (text[pos] - '0');
        ++digits;
      }
      ++pos;
    }
    if (pos == start) return bad("empty fraction of a second");
    for (int i = digits; i < 9; ++i) value *= 10;
    fraction = nanoseconds(value);
  }
  const std::string_view zone = text.substr(pos);
  if (zone != "Z" && zone != "z" && zone != "+00:00") {
    return bad("only UTC is accepted ('Z' or '+00:00')");
  }
  const auto tp = sys_days(ymd) + hours(h) + minutes(mi) + seconds(s);
  return time_point_cast<system_clock::duration>(tp + fraction);
}

}  // namespace signum::server

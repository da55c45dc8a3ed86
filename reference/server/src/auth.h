// Authentication: bearer API tokens (random, shown once, stored as SHA-256) and client
// certificates (mTLS) mapped to users.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "state.h"

namespace signum::server {

struct Principal {
  std::string user;
  std::vector<std::string> groups;
  bool admin = false;
  std::string method;        // "token" or "client-certificate"
  std::string credential_id; // token id or client certificate fingerprint
};

// Immutable index over a state snapshot; lookups are O(1) and constant-time on the secret.
class Authenticator {
 public:
  explicit Authenticator(const ServerState& state);
  // token: the value after "Bearer ". Unknown or malformed tokens give nullopt.
  std::optional<Principal> ByToken(std::string_view token) const;
  std::optional<Principal> ByClientCertificate(std::string_view sha256_hex) const;

 private:
  std::unordered_map<std::string, Principal> by_token_hash_;
  std::unordered_map<std::string, Principal> by_client_cert_;
};

struct IssuedToken {
  std::string token;      // "sgn_<id>_<secret>": shown once, never stored
  ApiTokenRecord record;
};
// Creates a new random token (256-bit secret) for `user` and appends its record.
IssuedToken IssueApiToken(UserRecord& user);
// Removes the token with this id; false if the user has none such.
bool RevokeApiToken(UserRecord& user, std::string_view token_id);

}  // namespace signum::server

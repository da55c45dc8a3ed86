// Bearer tokens: "sgn_<8 hex id>_<43 char base64url of 32 random bytes>". The state keeps only
// the hex SHA-256 of the whole token string; the Authenticator indexes principals by that hash, so
// finding a token costs one SHA-256 and one hash-map lookup whatever the secret is.
#include "auth.h"

#include <algorithm>
#include <cctype>
#include <chrono>

#include "signum/core/crypto.h"

namespace signum::server {
namespace {

constexpr std::string_view kTokenPrefix = "sgn_";
constexpr std::string_view kTokenIdPrefix = "tok_";
constexpr size_t kTokenIdHexLen = 8;
constexpr size_t kSecretBytes = 32;
constexpr size_t kSecretLen = 43;  // base64url, unpadded, of 32 bytes
constexpr size_t kTokenLen = 4 + kTokenIdHexLen + 1 + kSecretLen;

bool IsLowerHex(char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); }

bool IsBase64Url(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '_';
}

// Shape check only; never touches the secret beyond its alphabet.
bool WellFormed(std::string_view token) {
  if (token.size() != kTokenLen || token.substr(0, kTokenPrefix.size()) != kTokenPrefix) {
    return false;
  }
  const std::string_view id = token.substr(kTokenPrefix.size(), kTokenIdHexLen);
  if (!std::all_of(id.begin(), id.end(), IsLowerHex)) return false;
  if (token[kTokenPrefix.size() + kTokenIdHexLen] != '_') return false;
  const std::string_view secret = token.substr(kTokenLen - kSecretLen);
  return std::all_of(secret.begin(), secret.end(), IsBase64Url);
}

std::string Sha256Hex(std::string_view text) {
  return HexEncode(Digest(HashAlgorithm::kSha256, AsBytes(text)));
}

std::string Base64Url(ByteView data) {
  std::string s = Base64Encode(data);
  for (char& c : s) {
    if (c == '+') c = '-';
    if (c == '/') c = '_';
  }
  while (!s.empty() && s.back() == '=') s.pop_back();
  return s;
}

std::string NormalizeFingerprint(std::string_view hex) {
  std::string out;
  out.reserve(hex.size());
  for (char c : hex) {
    if (c == ':') continue;
    out.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
  }
  return out;
}

std::string NowTimestamp() { return FormatTimestamp(std::chrono::system_clock::now()); }

}  // namespace

Authenticator::Authenticator(const ServerState& state) {
  for (const UserRecord& user : state.users) {
    Principal base;
    base.user = user.name;
    base.groups = user.groups;
    base.admin = user.admin;
    for (const ApiTokenRecord& token : user.tokens) {
      Principal p = base;
      p.method = "token";
      p.credential_id = token.id;
      by_token_hash_.emplace(NormalizeFingerprint(token.sha256_hex), std::move(p));
    }
    for (const ClientCertificateBinding& binding : user.client_certificates) {
      Principal p = base;
      p.method = "client-certificate";
      p.credential_id = NormalizeFingerprint(binding.sha256_hex);
      by_client_cert_.emplace(p.credential_id, std::move(p));
    }
  }
}

std::optional<Principal> Authenticator::ByToken(std::string_view token) const {
  if (!WellFormed(token)) return std::nullopt;
  const std::string hash = Sha256Hex(token);
  auto it = by_token_hash_.find(hash);
  if (it == by_token_hash_.end()) return std::nullopt;
  if (!ConstantTimeEquals(AsBytes(it->first), AsBytes(hash))) return std::nullopt;
  return it->second;
}

std::optional<Principal> Authenticator::ByClientCertificate(std::string_view sha256_hex) const {
  const std::string key = NormalizeFingerprint(sha256_hex);
  if (key.size() != 64) return std::nullopt;
  auto it = by_client_cert_.find(key);
  if (it == by_client_cert_.end()) return std::nullopt;
  return it->second;
}

IssuedToken IssueApiToken(UserRecord& user) {
  std::string id_hex;
  for (;;) {
    id_hex = HexEncode(RandomBytes(kTokenIdHexLen / 2));
    const std::string id = std::string(kTokenIdPrefix) + id_hex;
    const bool taken = std::any_of(user.tokens.begin(), user.tokens.end(),
                                   [&](const ApiTokenRecord& t) { return t.id == id; });
    if (!taken) break;
  }
  IssuedToken issued;
  issued.token = std::string(kTokenPrefix) + id_hex + "_" + Base64Url(RandomBytes(kSecretBytes));
  issued.record.id = std::string(kTokenIdPrefix) + id_hex;
  issued.record.sha256_hex = Sha256Hex(issued.token);
  issued.record.created = NowTimestamp();
  user.tokens.push_back(issued.record);
  return issued;
}

bool RevokeApiToken(UserRecord& user, std::string_view token_id) {
  auto it = std::find_if(user.tokens.begin(), user.tokens.end(), [&](const ApiTokenRecord& t) {
    // "tok_1a2b3c4d" or just "1a2b3c4d".
    return t.id == token_id || (t.id.size() == kTokenIdPrefix.size() + token_id.size() &&
                                t.id.starts_with(kTokenIdPrefix) && t.id.ends_with(token_id));
  });
  if (it == user.tokens.end()) return false;
  user.tokens.erase(it);
  return true;
}

}  // namespace signum::server

// API tokens (issue, authenticate, revoke, malformed) and client certificate mapping.
#include "auth.h"

#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>

#include "signum/core/crypto.h"
#include "signum/testing/status_matchers.h"
#include "signum/testing/temp_dir.h"
#include "state_test_util.h"

namespace signum::server {
namespace {

ServerState TwoUsers() {
  ServerState state;
  UserRecord alice;
  alice.name = "alice";
  alice.groups = {"ci", "release"};
  alice.admin = true;
  state.users.push_back(alice);
  UserRecord bob;
  bob.name = "bob";
  bob.groups = {"dev"};
  state.users.push_back(bob);
  return state;
}

TEST(Tokens, IssuedTokenHasTheDocumentedShape) {
  UserRecord user;
  user.name = "alice";
  const IssuedToken issued = IssueApiToken(user);
  EXPECT_TRUE(std::regex_match(issued.token, std::regex("sgn_[0-9a-f]{8}_[A-Za-z0-9_-]{43}")))
      << issued.token;
  EXPECT_EQ(issued.record.id, "tok_" + issued.token.substr(4, 8));
  EXPECT_EQ(issued.record.sha256_hex,
            HexEncode(Digest(HashAlgorithm::kSha256, AsBytes(issued.token))));
  EXPECT_OK(ParseTimestamp(issued.record.created)) << issued.record.created;
  ASSERT_EQ(user.tokens.size(), 1u);
  EXPECT_EQ(user.tokens[0].id, issued.record.id);

  std::set<std::string> tokens;
  std::set<std::string> ids;
  for (int i = 0; i < 100; ++i) {
    IssuedToken t = IssueApiToken(user);
    tokens.insert(t.token);
    ids.insert(t.record.id);
  }
  EXPECT_EQ(tokens.size(), 100u);
  EXPECT_EQ(ids.size(), 100u);  // ids are unique per user
}

TEST(Tokens, AuthenticateWrongMalformedAndRevoked) {
  ServerState state = TwoUsers();
  const IssuedToken alice1 = IssueApiToken(state.users[0]);
  const IssuedToken alice2 = IssueApiToken(state.users[0]);
  const IssuedToken bob = IssueApiToken(state.users[1]);
  ASSERT_OK(ValidateState(state));

  {
    const Authenticator auth(state);
    auto p = auth.ByToken(alice1.token);
    ASSERT_TRUE(p.has_value());
    EXPECT_EQ(p->user, "alice");
    EXPECT_EQ(p->groups, (std::vector<std::string>{"ci", "release"}));
    EXPECT_TRUE(p->admin);
    EXPECT_EQ(p->method, "token");
    EXPECT_EQ(p->credential_id, alice1.record.id);
    ASSERT_TRUE(auth.ByToken(alice2.token).has_value());
    EXPECT_EQ(auth.ByToken(alice2.token)->credential_id, alice2.record.id);
    auto pb = auth.ByToken(bob.token);
    ASSERT_TRUE(pb.has_value());
    EXPECT_EQ(pb->user, "bob");
    EXPECT_FALSE(pb->admin);

    // Right shape, wrong secret: one character changed.
    std::string wrong = alice1.token;
    wrong.back() = wrong.back() == 'A' ? 'B' : 'A';
    EXPECT_FALSE(auth.ByToken(wrong).has_value());
    // Another token's id with this token's secret.
    std::string mixed = bob.token.substr(0, 13) + alice1.token.substr(13);
    EXPECT_FALSE(auth.ByToken(mixed).has_value());

    const std::string t = alice1.token;
    for (const std::string& bad :
         {std::string(), std::string("sgn_"), t + "x", t.substr(0, t.size() - 1), "Bearer " + t,
          "SGN_" + t.substr(4), " " + t.substr(1), t.substr(0, 12) + "-" + t.substr(13),
          t.substr(0, 4) + "ABCDEF01" + t.substr(12), t.substr(0, 20) + "+" + t.substr(21),
          t.substr(0, 20) + "=" + t.substr(21), std::string(t.size(), 'a')}) {
      SCOPED_TRACE(bad);
      EXPECT_FALSE(auth.ByToken(bad).has_value());
    }
  }

  EXPECT_TRUE(RevokeApiToken(state.users[0], alice1.record.id));
  EXPECT_FALSE(RevokeApiToken(state.users[0], alice1.record.id));  // already gone
  EXPECT_FALSE(RevokeApiToken(state.users[0], bob.record.id));     // not alice's
  EXPECT_FALSE(RevokeApiToken(state.users[0], ""));
  {
    const Authenticator auth(state);
    EXPECT_FALSE(auth.ByToken(alice1.token).has_value());
    EXPECT_TRUE(auth.ByToken(alice2.token).has_value());  // other tokens keep working
    EXPECT_TRUE(auth.ByToken(bob.token).has_value());
  }
  // The id without its "tok_" prefix works too.
  EXPECT_TRUE(RevokeApiToken(state.users[0], alice2.record.id.substr(4)));
  EXPECT_TRUE(state.users[0].tokens.empty());
}

TEST(ClientCertificates, MapFingerprintsToUsers) {
  ServerState state = TwoUsers();
  const Certificate cert =
      testing::SelfSigned("alice laptop", *ParseKeySpec("ec-p256"), CertificateRole::kTlsClient);
  const std::string fingerprint = HexEncode(cert.Sha256Fingerprint());
  state.users[0].client_certificates.push_back({fingerprint, cert.Subject()});
  ASSERT_OK(ValidateState(state));

  const Authenticator auth(state);
  auto p = auth.ByClientCertificate(fingerprint);
  ASSERT_TRUE(p.has_value());
  EXPECT_EQ(p->user, "alice");
  EXPECT_EQ(p->method, "client-certificate");
  EXPECT_EQ(p->credential_id, fingerprint);
  EXPECT_TRUE(p->admin);

  std::string upper = fingerprint;
  for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  EXPECT_TRUE(auth.ByClientCertificate(upper).has_value());
  std::string colons;
  for (size_t i = 0; i < fingerprint.size(); i += 2) {
    if (i) colons += ':';
    colons += fingerprint.substr(i, 2);
  }
  EXPECT_TRUE(auth.ByClientCertificate(colons).has_value());

  EXPECT_FALSE(auth.ByClientCertificate(std::string(64, '0')).has_value());
  EXPECT_FALSE(auth.ByClientCertificate("").has_value());
  EXPECT_FALSE(auth.ByClientCertificate(fingerprint.substr(0, 40)).has_value());
  // A token never authenticates as a certificate and vice versa.
  EXPECT_FALSE(auth.ByToken(fingerprint).has_value());
}

TEST(Tokens, StoredStateNeverContainsThePlaintextToken) {
  signum::testing::TempDir dir;
  ServerState state = TwoUsers();
  const IssuedToken issued = IssueApiToken(state.users[1]);
  const std::string secret = issued.token.substr(13);
  ASSERT_EQ(secret.size(), 43u);

  const std::string json_text = StateToJson(state).dump();
  EXPECT_EQ(json_text.find(issued.token), std::string::npos);
  EXPECT_EQ(json_text.find(secret), std::string::npos);
  EXPECT_NE(json_text.find(issued.record.sha256_hex), std::string::npos);

  const std::string path = dir.File("state.json");
  ASSERT_OK(SaveState(path, state));
  std::ifstream in(path);
  const std::string file((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(file.find(secret), std::string::npos);

  // And the token still authenticates against the reloaded state.
  auto loaded = LoadState(path);
  ASSERT_OK(loaded);
  EXPECT_TRUE(Authenticator(*loaded).ByToken(issued.token).has_value());
}

}  // namespace
}  // namespace signum::server

// State JSON (round trip, validation with JSON paths), atomic save, timestamps, and StateStore
// (update, reload on external edit, broken file keeps the old snapshot).
#include "state.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <thread>

#include "signum/core/files.h"
#include "signum/testing/status_matchers.h"
#include "signum/testing/temp_dir.h"
#include "state_store.h"
#include "state_test_util.h"

namespace signum::server {
namespace {

using ::signum::testing::StatusIs;

using nlohmann::json;
using signum::testing::TempDir;
using namespace std::chrono_literals;

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

void WriteAll(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
}

// A state with one certificate of each key type (the EC one with a chain), two users with
// credentials and policies using every field.
ServerState SampleState() {
  ServerState state;
  state.certificates.push_back(testing::MakeCertificateRecord("rsa-2048", "rsa-2048", {"release"}));
  CertificateRecord ec = testing::MakeCertificateRecord("ec-p256", "ec-p256", {"dev", "release"});
  ec.chain.push_back(
      testing::SelfSigned("Signum Test CA", *ParseKeySpec("ec-p384"), CertificateRole::kRootCa));
  ec.enabled = false;
  state.certificates.push_back(std::move(ec));

  UserRecord alice;
  alice.name = "alice";
  alice.groups = {"ci", "release"};
  alice.admin = true;
  alice.tokens.push_back({"tok_1a2b3c4d", std::string(64, 'a'), "2026-11-27T09:30:00Z"});
  alice.client_certificates.push_back({std::string(64, 'b'), "CN=alice"});
  state.users.push_back(alice);
  UserRecord bob;
  bob.name = "bob";
  state.users.push_back(bob);

  PolicyRule deny;
  deny.name = "no-sha1";
  deny.effect = PolicyEffect::kDeny;
  deny.hashes = {HashAlgorithm::kSha1};
  state.policies.push_back(deny);
  PolicyRule allow;
  allow.name = "ci-rsa";
  allow.effect = PolicyEffect::kAllow;
  allow.users = {"alice", "*"};
  allow.groups = {"ci"};
  allow.certificates = {"rsa-2048"};
  allow.certificate_groups = {"release"};
  allow.process_regex = "signtool(\\.exe)?";
  allow.command_line_regex = "/fd sha(256|384)";
  allow.not_before = *ParseTimestamp("2026-01-01T00:00:00Z");
  allow.not_after = *ParseTimestamp("2027-01-01T00:00:00Z");
  allow.schemes = {SignatureScheme::kRsaPkcs1, SignatureScheme::kRsaPss};
  allow.hashes = {HashAlgorithm::kSha256, HashAlgorithm::kSha384};
  state.policies.push_back(allow);
  return state;
}

TEST(StateJson, RoundTripsEveryField) {
  const ServerState state = SampleState();
  const json j = StateToJson(state);
  // Reparse from text, as LoadState does.
  auto parsed = StateFromJson(json::parse(j.dump(2)));
  ASSERT_OK(parsed);
  EXPECT_EQ(StateToJson(*parsed), j);

  ASSERT_EQ(parsed->certificates.size(), 2u);
  const CertificateRecord& ec = parsed->certificates[1];
  EXPECT_EQ(ec.id, state.certificates[1].id);
  EXPECT_EQ(ec.label, "ec-p256");
  EXPECT_EQ(ec.key_spec.Name(), "ec-p256");
  EXPECT_EQ(ec.key_id_hex, state.certificates[1].key_id_hex);
  EXPECT_EQ(ec.certificate.Der(), state.certificates[1].certificate.Der());
  ASSERT_EQ(ec.chain.size(), 1u);
  EXPECT_EQ(ec.chain[0].Der(), state.certificates[1].chain[0].Der());
  EXPECT_EQ(ec.groups, (std::vector<std::string>{"dev", "release"}));
  EXPECT_FALSE(ec.enabled);
  EXPECT_TRUE(parsed->certificates[0].enabled);

  const UserRecord* alice = parsed->FindUser("alice");
  ASSERT_NE(alice, nullptr);
  EXPECT_TRUE(alice->admin);
  EXPECT_EQ(alice->groups, (std::vector<std::string>{"ci", "release"}));
  ASSERT_EQ(alice->tokens.size(), 1u);
  EXPECT_EQ(alice->tokens[0].id, "tok_1a2b3c4d");
  EXPECT_EQ(alice->tokens[0].created, "2026-11-27T09:30:00Z");
  ASSERT_EQ(alice->client_certificates.size(), 1u);
  EXPECT_EQ(alice->client_certificates[0].subject, "CN=alice");

  ASSERT_EQ(parsed->policies.size(), 2u);
  const PolicyRule& p = parsed->policies[1];
  EXPECT_EQ(p.name, "ci-rsa");
  EXPECT_EQ(p.effect, PolicyEffect::kAllow);
  EXPECT_EQ(p.users, (std::vector<std::string>{"alice", "*"}));
  EXPECT_EQ(p.process_regex, "signtool(\\.exe)?");
  EXPECT_EQ(p.command_line_regex, "/fd sha(256|384)");
  EXPECT_EQ(FormatTimestamp(*p.not_before), "2026-01-01T00:00:00Z");
  EXPECT_EQ(FormatTimestamp(*p.not_after), "2027-01-01T00:00:00Z");
  EXPECT_EQ(p.schemes,
            (std::vector<SignatureScheme>{SignatureScheme::kRsaPkcs1, SignatureScheme::kRsaPss}));
  EXPECT_EQ(p.hashes, (std::vector<HashAlgorithm>{HashAlgorithm::kSha256, HashAlgorithm::kSha384}));
  EXPECT_EQ(parsed->policies[0].effect, PolicyEffect::kDeny);
  EXPECT_FALSE(parsed->policies[0].not_before.has_value());

  // The documented field names.
  EXPECT_TRUE(j["certificates"][0].contains("key_id"));
  EXPECT_TRUE(j["users"][0]["tokens"][0].contains("sha256"));
  EXPECT_EQ(j["policies"][1]["process"], "signtool(\\.exe)?");
  EXPECT_EQ(j["policies"][1]["effect"], "allow");
}

TEST(StateJson, OptionalFieldsDefault) {
  const CertificateRecord rec = testing::MakeCertificateRecord("minimal");
  const json j = {
      {"certificates",
       {{{"id", rec.id},
         {"label", "minimal"},
         {"key_id", rec.key_id_hex},
         {"key_spec", "rsa-2048"},
         {"certificate", rec.certificate.Pem()}}}},
      {"users", {{{"name", "carol"}}}},
      {"policies", {{{"name", "p"}, {"effect", "deny"}}}},
  };
  auto state = StateFromJson(j);
  ASSERT_OK(state);
  EXPECT_TRUE(state->certificates[0].enabled);
  EXPECT_TRUE(state->certificates[0].chain.empty());
  EXPECT_FALSE(state->users[0].admin);
  EXPECT_TRUE(state->users[0].tokens.empty());
  EXPECT_TRUE(state->policies[0].users.empty());

  auto empty = StateFromJson(json::object());
  ASSERT_OK(empty);
  EXPECT_TRUE(empty->certificates.empty());
}

struct ValidationCase {
  std::string name;
  std::function<void(json&)> mutate;
  std::string expected;  // substring of the error message
};

TEST(StateJson, ValidationErrorsNameThePath) {
  const json good = StateToJson(SampleState());
  const std::string other_pem = testing::SelfSigned("Other", *ParseKeySpec("rsa-2048")).Pem();
  const std::vector<ValidationCase> cases = {
      {"duplicate label", [](json& j) { j["certificates"][1]["label"] = "rsa-2048"; },
       "certificates[1].label: duplicate label 'rsa-2048' (also certificates[0])"},
      {"bad thumbprint", [](json& j) { j["certificates"][0]["id"] = std::string(40, '0'); },
       "certificates[0].id: '0000000000000000000000000000000000000000' is not the "
       "certificate's SHA-1 thumbprint"},
      {"duplicate id",
       [](json& j) {
         j["certificates"][1] = j["certificates"][0];
         j["certificates"][1]["label"] = "copy";
       },
       "certificates[1].id: duplicate certificate id"},
      {"certificate not PEM",
       [](json& j) { j["certificates"][0]["certificate"] = "not a certificate"; },
       "certificates[0].certificate: "},
      {"key spec mismatch", [](json& j) { j["certificates"][0]["key_spec"] = "rsa-3072"; },
       "certificates[0].key_spec: 'rsa-3072' does not match the certificate's key (rsa-2048)"},
      {"unknown key spec", [](json& j) { j["certificates"][0]["key_spec"] = "dsa-1024"; },
       "certificates[0].key_spec: unknown key spec 'dsa-1024'"},
      {"bad key id", [](json& j) { j["certificates"][0]["key_id"] = "xyz"; },
       "certificates[0].key_id: expected an even number of hex digits"},
      {"bad chain", [](json& j) { j["certificates"][1]["chain"][0] = "junk"; },
       "certificates[1].chain[0]: "},
      {"missing label", [](json& j) { j["certificates"][0].erase("label"); },
       "certificates[0].label: missing"},
      {"enabled not bool", [](json& j) { j["certificates"][0]["enabled"] = "yes"; },
       "certificates[0].enabled: expected true or false"},
      {"duplicate user", [](json& j) { j["users"][1]["name"] = "alice"; },
       "users[1].name: duplicate user name 'alice' (also users[0])"},
      {"groups not an array", [](json& j) { j["users"][0]["groups"] = "ci"; },
       "users[0].groups: expected an array of strings"},
      {"group not a string", [](json& j) { j["users"][0]["groups"][1] = 7; },
       "users[0].groups[1]: expected a string"},
      {"token hash not hex", [](json& j) { j["users"][0]["tokens"][0]["sha256"] = "abc"; },
       "users[0].tokens[0].sha256: expected 64 hex digits"},
      {"client cert bound twice",
       [](json& j) { j["users"][1]["client_certificates"] = j["users"][0]["client_certificates"]; },
       "users[1].client_certificates[0].sha256: client certificate already bound to user "
       "'alice'"},
      {"bad hash name", [](json& j) { j["policies"][0]["hashes"][0] = "md5"; },
       "policies[0].hashes[0]: unknown hash algorithm 'md5'"},
      {"bad scheme name", [](json& j) { j["policies"][1]["schemes"][1] = "rsa-oaep"; },
       "policies[1].schemes[1]: unknown signature scheme 'rsa-oaep'"},
      {"bad effect", [](json& j) { j["policies"][0]["effect"] = "maybe"; },
       "policies[0].effect: expected 'allow' or 'deny', got 'maybe'"},
      {"bad timestamp", [](json& j) { j["policies"][1]["not_before"] = "tomorrow"; },
       "policies[1].not_before: invalid RFC 3339 timestamp 'tomorrow'"},
      {"window reversed", [](json& j) { j["policies"][1]["not_after"] = "2025-01-01T00:00:00Z"; },
       "policies[1]: not_after is before not_before"},
      {"bad regex", [](json& j) { j["policies"][1]["process"] = "(unclosed"; },
       "policies[1].process: invalid regular expression '(unclosed'"},
      {"typo in a policy field", [](json& j) { j["policies"][1]["user"] = json::array({"x"}); },
       "policies[1]: unknown field 'user'"},
      {"duplicate policy name", [](json& j) { j["policies"][1]["name"] = "no-sha1"; },
       "policies[1].name: duplicate policy name 'no-sha1'"},
      {"section not an array", [](json& j) { j["users"] = json::object(); },
       "users: expected an array"},
      {"unknown top-level field", [](json& j) { j["extra"] = 1; }, "unknown field 'extra'"},
      {"certificate entry not an object", [&](json& j) { j["certificates"][0] = other_pem; },
       "certificates[0]: expected an object"},
  };
  for (const ValidationCase& c : cases) {
    SCOPED_TRACE(c.name);
    json j = good;
    c.mutate(j);
    auto state = StateFromJson(j);
    ASSERT_THAT(state, StatusIs(ErrorCode::kInvalidArgument));
    EXPECT_NE(state.status().message().find(c.expected), std::string::npos)
        << state.status().message();
  }
  // Not even an object; never throws.
  for (const json& j : {json(), json(42), json::array(), json("x")}) {
    EXPECT_THAT(StateFromJson(j), StatusIs(ErrorCode::kInvalidArgument));
  }
}

TEST(StateJson, ValidateStateCatchesCodeBuiltMistakes) {
  ServerState state = SampleState();
  EXPECT_OK(ValidateState(state));
  state.certificates[1].label = "rsa-2048";
  EXPECT_NE(ValidateState(state).message().find("duplicate label"), std::string::npos);
  state = SampleState();
  state.users[1].tokens.push_back(state.users[0].tokens[0]);
  EXPECT_NE(ValidateState(state).message().find("token hash already belongs to user 'alice'"),
            std::string::npos);
  state = SampleState();
  state.certificates[0].label = state.certificates[1].id;
  EXPECT_FALSE(ValidateState(state).ok());
}

TEST(StateJson, PolicyRuleFromJsonAlone) {
  auto rule = PolicyRuleFromJson(json::parse(
      R"({"name":"r","effect":"allow","hashes":["SHA-256","sha256"],"schemes":["ecdsa"]})"));
  ASSERT_OK(rule);
  EXPECT_EQ(rule->hashes, std::vector<HashAlgorithm>{HashAlgorithm::kSha256});  // deduplicated
  EXPECT_EQ(PolicyRuleToJson(*rule)["schemes"], json::array({"ecdsa"}));
  auto bad = PolicyRuleFromJson(json::parse(R"({"name":"r","effect":"allow","hashes":["md5"]})"));
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().message().substr(0, 44), "hashes[0]: unknown hash algorithm 'md5' (exp");
  EXPECT_FALSE(PolicyRuleFromJson(json::parse(R"({"effect":"allow"})")).ok());
}

TEST(StateJson, FindCertificateByIdOrLabel) {
  const ServerState state = SampleState();
  const CertificateRecord& rsa = state.certificates[0];
  EXPECT_EQ(state.FindCertificate("rsa-2048"), &rsa);
  EXPECT_EQ(state.FindCertificate(rsa.id), &rsa);
  std::string upper = rsa.id;
  for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  EXPECT_EQ(state.FindCertificate(upper), &rsa);  // signtool /sha1 users type uppercase
  EXPECT_EQ(state.FindCertificate("nope"), nullptr);
  EXPECT_EQ(state.FindCertificate(""), nullptr);
  EXPECT_NE(state.FindUser("bob"), nullptr);
  EXPECT_EQ(state.FindUser("mallory"), nullptr);
}

TEST(StateFile, SaveIsAtomicAndPrivate) {
  TempDir dir;
  const std::string path = dir.File("state.json");
  const ServerState state = SampleState();
  ASSERT_OK(SaveState(path, state));
  ASSERT_OK(SaveState(path, state));  // over an existing file

  std::vector<std::string> names;
  for (const auto& entry : std::filesystem::directory_iterator(dir.path())) {
    names.push_back(entry.path().filename().string());
  }
  EXPECT_EQ(names, std::vector<std::string>{"state.json"}) << "temporary files left behind";
  struct stat st {};
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);

  auto loaded = LoadState(path);
  ASSERT_OK(loaded);
  EXPECT_EQ(StateToJson(*loaded), StateToJson(state));
}

TEST(StateFile, LoadErrors) {
  TempDir dir;
  EXPECT_FALSE(LoadState(dir.File("missing.json")).ok());
  WriteAll(dir.File("broken.json"), "{\"users\": [");
  auto broken = LoadState(dir.File("broken.json"));
  ASSERT_THAT(broken, StatusIs(ErrorCode::kInvalidArgument));
  EXPECT_NE(broken.status().message().find("not valid JSON"), std::string::npos);
  WriteAll(dir.File("invalid.json"), R"({"users":[{"name":"a"},{"name":"a"}]})");
  auto invalid = LoadState(dir.File("invalid.json"));
  ASSERT_FALSE(invalid.ok());
  EXPECT_NE(invalid.status().message().find("users[1].name"), std::string::npos);
}

TEST(Timestamps, FormatAndParse) {
  using std::chrono::system_clock;
  EXPECT_EQ(FormatTimestamp(system_clock::time_point{}), "1970-01-01T00:00:00Z");
  const auto t = system_clock::time_point{std::chrono::seconds(1795771800)};
  EXPECT_EQ(FormatTimestamp(t), "2026-11-27T09:30:00Z");
  EXPECT_EQ(FormatTimestamp(t + 999ms), "2026-11-27T09:30:00Z");  // truncates to seconds

  auto parsed = ParseTimestamp("2026-11-27T09:30:00Z");
  ASSERT_OK(parsed);
  EXPECT_EQ(*parsed, t);
  EXPECT_EQ(*ParseTimestamp("2026-11-27T09:30:00+00:00"), t);
  EXPECT_EQ(*ParseTimestamp("2026-11-27t09:30:00z"), t);
  EXPECT_EQ(*ParseTimestamp("2026-11-27T09:30:00.250Z"), t + 250ms);
  EXPECT_EQ(FormatTimestamp(*ParseTimestamp("2024-02-29T23:59:59Z")), "2024-02-29T23:59:59Z");
  EXPECT_EQ(FormatTimestamp(*ParseTimestamp("1969-12-31T23:59:59Z")), "1969-12-31T23:59:59Z");

  const auto now = system_clock::now();
  EXPECT_EQ(FormatTimestamp(*ParseTimestamp(FormatTimestamp(now))), FormatTimestamp(now));

  for (const char* bad : {"", "2026-11-27", "2026-11-27 09:30:00Z", "2026-11-27T09:30:00",
                          "2026-11-27T09:30:00+01:00", "2026-02-30T00:00:00Z",
                          "2026-13-01T00:00:00Z", "2026-11-27T24:00:00Z", "2026-11-27T09:30:00.Z",
                          "2026-11-27T09:30:00Zjunk", "20261127T093000Z"}) {
    SCOPED_TRACE(bad);
    auto r = ParseTimestamp(bad);
    ASSERT_THAT(r, StatusIs(ErrorCode::kInvalidArgument));
  }
}

// --- StateStore ---------------------------------------------------------------------------------

ServerState StoreState() {
  ServerState state;
  state.certificates.push_back(testing::MakeCertificateRecord("signing"));
  UserRecord alice;
  alice.name = "alice";
  state.users.push_back(alice);
  PolicyRule allow;
  allow.name = "alice-all";
  allow.effect = PolicyEffect::kAllow;
  allow.users = {"alice"};
  state.policies.push_back(allow);
  return state;
}

TEST(StateStore, OpenBuildsSnapshot) {
  TempDir dir;
  EXPECT_FALSE(StateStore::Open(dir.File("missing.json")).ok());
  ASSERT_OK(SaveState(dir.File("state.json"), StoreState()));
  auto store = StateStore::Open(dir.File("state.json"));
  ASSERT_OK(store);
  auto snap = (*store)->Current();
  ASSERT_NE(snap, nullptr);
  EXPECT_NE(snap->state.FindUser("alice"), nullptr);
  EXPECT_EQ((*store)->Current(), snap);  // cheap: the same snapshot until something changes
}

TEST(StateStore, BuildSnapshotRejectsBadPolicies) {
  ServerState state = StoreState();
  state.policies[0].process_regex = "[";
  auto snap = BuildSnapshot(state);
  ASSERT_FALSE(snap.ok());
  EXPECT_NE(snap.status().message().find("alice-all"), std::string::npos);
}

TEST(StateStore, UpdatePersistsAndIsVisibleToAnotherStore) {
  TempDir dir;
  const std::string path = dir.File("state.json");
  ASSERT_OK(SaveState(path, StoreState()));
  auto store = StateStore::Open(path);
  ASSERT_OK(store);
  auto before = (*store)->Current();

  IssuedToken issued;
  Status status = (*store)->Update([&](ServerState& state) {
    UserRecord bob;
    bob.name = "bob";
    issued = IssueApiToken(bob);
    state.users.push_back(bob);
    return Status::Ok();
  });
  ASSERT_OK(status);
  auto after = (*store)->Current();
  EXPECT_NE(after, before);
  ASSERT_NE(after->state.FindUser("bob"), nullptr);
  EXPECT_EQ(before->state.FindUser("bob"), nullptr);  // old snapshots stay immutable
  auto principal = after->authenticator.ByToken(issued.token);
  ASSERT_TRUE(principal.has_value());
  EXPECT_EQ(principal->user, "bob");

  auto second = StateStore::Open(path);
  ASSERT_OK(second);
  EXPECT_NE((*second)->Current()->state.FindUser("bob"), nullptr);

  // A failing mutation or an invalid result changes nothing, on disk or in memory.
  const std::string on_disk = ReadAll(path);
  Status failed = (*store)->Update([](ServerState&) { return NotFoundError("no such thing"); });
  EXPECT_THAT(failed, StatusIs(ErrorCode::kNotFound));
  Status invalid = (*store)->Update([](ServerState& state) {
    state.users.push_back(state.users[0]);  // duplicate name
    return Status::Ok();
  });
  EXPECT_THAT(invalid, StatusIs(ErrorCode::kInvalidArgument));
  Status bad_regex = (*store)->Update([](ServerState& state) {
    state.policies[0].command_line_regex = "(";
    return Status::Ok();
  });
  EXPECT_FALSE(bad_regex.ok());
  EXPECT_EQ(ReadAll(path), on_disk);
  EXPECT_EQ((*store)->Current(), after);
}

TEST(StateStore, ConcurrentReadersAndWriters) {
  TempDir dir;
  const std::string path = dir.File("state.json");
  ASSERT_OK(SaveState(path, StoreState()));
  auto store = StateStore::Open(path);
  ASSERT_OK(store);
  StateStore& s = **store;
  std::atomic<bool> done{false};
  std::vector<std::thread> readers;
  std::atomic<long> reads{0};
  for (int r = 0; r < 4; ++r) {
    readers.emplace_back([&] {
      while (!done) {
        auto snap = s.Current();
        EXPECT_NE(snap->state.FindUser("alice"), nullptr);
        ++reads;
      }
    });
  }
  std::vector<std::thread> writers;
  for (int w = 0; w < 2; ++w) {
    writers.emplace_back([&, w] {
      for (int i = 0; i < 10; ++i) {
        Status st = s.Update([&](ServerState& state) {
          UserRecord u;
          u.name = "user-" + std::to_string(w) + "-" + std::to_string(i);
          state.users.push_back(u);
          return Status::Ok();
        });
        EXPECT_OK(st);
      }
    });
  }
  for (std::thread& t : writers) t.join();
  done = true;
  for (std::thread& t : readers) t.join();
  // No update was lost.
  EXPECT_EQ(s.Current()->state.users.size(), 21u);
  auto reloaded = LoadState(path);
  ASSERT_OK(reloaded);
  EXPECT_EQ(reloaded->users.size(), 21u);
  EXPECT_GT(reads.load(), 0);
}

TEST(StateStore, ReloadsExternalEditsAndKeepsOldSnapshotOnBrokenFile) {
  TempDir dir;
  const std::string edited = dir.File("edited.json");
  const std::string broken = dir.File("broken.json");
  ASSERT_OK(SaveState(edited, StoreState()));
  ASSERT_OK(SaveState(broken, StoreState()));
  auto edited_store = StateStore::Open(edited);
  auto broken_store = StateStore::Open(broken);
  ASSERT_OK(edited_store);
  ASSERT_OK(broken_store);
  auto edited_before = (*edited_store)->Current();
  auto broken_before = (*broken_store)->Current();

  // Another process (the admin CLI) edits one file; someone breaks the other.
  ServerState changed = StoreState();
  changed.users[0].name = "carol";
  changed.policies[0].users = {"carol"};
  ASSERT_OK(SaveState(edited, changed));
  WriteAll(broken, "{ this is not json");

  // Checked at most once a second: not yet.
  EXPECT_EQ((*edited_store)->Current(), edited_before);

  std::this_thread::sleep_for(1100ms);
  auto edited_after = (*edited_store)->Current();
  EXPECT_NE(edited_after, edited_before);
  EXPECT_NE(edited_after->state.FindUser("carol"), nullptr);
  EXPECT_EQ(edited_after->state.FindUser("alice"), nullptr);

  auto broken_after = (*broken_store)->Current();
  EXPECT_EQ(broken_after, broken_before);
  EXPECT_NE(broken_after->state.FindUser("alice"), nullptr);
  // Update refuses to build on a broken file rather than overwrite it.
  EXPECT_FALSE((*broken_store)->Update([](ServerState&) { return Status::Ok(); }).ok());
}

}  // namespace
}  // namespace signum::server

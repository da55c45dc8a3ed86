// The policy engine: every condition (who, what, where, when, which), ordering, default deny, the
// SHA-1 rule, disabled certificates, Visible()/AllowedUse, and regex compilation.
#include "policy.h"

#include <gtest/gtest.h>

#include <chrono>
#include <nlohmann/json.hpp>

#include "signum/testing/status_matchers.h"
#include "state_test_util.h"

namespace signum::server {
namespace {

using ::signum::testing::StatusIs;

using nlohmann::json;
using std::chrono::system_clock;
using namespace std::chrono_literals;

PolicyRule Rule(const std::string& json_text) {
  auto rule = PolicyRuleFromJson(json::parse(json_text));
  if (!rule.ok()) {
    ADD_FAILURE() << json_text << ": " << rule.status().ToString();
    return PolicyRule{};
  }
  return *rule;
}

PolicyEngine Engine(std::vector<PolicyRule> rules) {
  auto engine = PolicyEngine::Compile(std::move(rules));
  EXPECT_OK(engine);
  return engine.ok() ? std::move(*engine) : PolicyEngine{};
}

// Shared fixtures: certificates are expensive-ish, so made once.
struct World {
  CertificateRecord rsa = testing::MakeCertificateRecord("rsa-2048", "rsa-2048", {"release"});
  CertificateRecord ec = testing::MakeCertificateRecord("ec-p256", "ec-p256", {"dev"});
  CertificateRecord disabled =
      testing::MakeCertificateRecord("old-rsa", "rsa-2048", {"release"}, /*enabled=*/false);
  Principal alice = testing::MakePrincipal("alice", {"ci", "release"});
  Principal bob = testing::MakePrincipal("bob", {"dev"});
  wire::CallerContext signtool{
      "signtool.exe", "signtool sign /fd sha256 /sha1 ab app.exe", "build-01", "agent-1", 42, 1000};
  wire::CallerContext anonymous{};
  system_clock::time_point now = *ParseTimestamp("2026-06-01T12:00:00Z");
};

World& W() {
  static World* world = new World();
  return *world;
}

struct Case {
  std::string name;
  std::vector<std::string> rules;  // JSON
  const Principal* principal;
  const CertificateRecord* cert;
  SignatureScheme scheme;
  HashAlgorithm hash;
  const wire::CallerContext* context;
  bool allowed;
  std::string rule;    // deciding rule, "" for the default
  std::string reason;  // substring of the reason
};

void RunCases(const std::vector<Case>& cases) {
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    std::vector<PolicyRule> rules;
    for (const std::string& r : c.rules) rules.push_back(Rule(r));
    const PolicyEngine engine = Engine(rules);
    const Decision d =
        engine.Evaluate(SignAttempt{*c.principal, *c.cert, c.scheme, c.hash, *c.context, W().now});
    EXPECT_EQ(d.allowed, c.allowed) << d.reason;
    EXPECT_EQ(d.rule, c.rule) << d.reason;
    EXPECT_NE(d.reason.find(c.reason), std::string::npos) << d.reason;
  }
}

constexpr auto kPkcs1 = SignatureScheme::kRsaPkcs1;
constexpr auto kPss = SignatureScheme::kRsaPss;
constexpr auto kEcdsa = SignatureScheme::kEcdsa;
constexpr auto kSha1 = HashAlgorithm::kSha1;
constexpr auto kSha256 = HashAlgorithm::kSha256;
constexpr auto kSha384 = HashAlgorithm::kSha384;
constexpr auto kSha512 = HashAlgorithm::kSha512;

const std::string kDefault = "no policy allows user";

TEST(PolicyEvaluate, Who) {
  World& w = W();
  const Principal* a = &w.alice;
  const Principal* b = &w.bob;
  const auto* rsa = &w.rsa;
  const auto* ctx = &w.signtool;
  RunCases({
      {"user listed",
       {R"({"name":"p","effect":"allow","users":["alice"]})"},
       a,
       rsa,
       kPkcs1,
       kSha256,
       ctx,
       true,
       "p",
       "allowed by policy 'p'"},
      {"user not listed",
       {R"({"name":"p","effect":"allow","users":["alice"]})"},
       b,
       rsa,
       kPkcs1,
       kSha256,
       ctx,
       false,
       "",
       kDefault},
      {"user name is exact",
       {R"({"name":"p","effect":"allow","users":["ALICE","alic"]})"},
       a,
       rsa,
       kPkcs1,
       kSha256,
       ctx,
       false,
       "",
       kDefault},
      {"wildcard user",
       {R"({"name":"p","effect":"allow","users":["*"]})"},
       b,
       rsa,
       kPkcs1,
       kSha256,
       ctx,
       true,
       "p",
       "allowed"},
      {"group overlap",
       {R"({"name":"p","effect":"allow","groups":["qa","dev"]})"},
       b,
       rsa,
       kPkcs1,
       kSha256,
       ctx,
       true,
       "p",
       "allowed"},
      {"no group overlap",
       {R"({"name":"p","effect":"allow","groups":["qa","dev"]})"},
       a,
       rsa,
       kPkcs1,
       kSha256,
       ctx,
       false,
       "",
       kDefault},
      {"users and groups both required",
       {R"({"name":"p","effect":"allow","users":["alice"],"groups":["dev"]})"},
       a,
       rsa,
       kPkcs1,
       kSha256,
       ctx,
       false,
       "",
       kDefault},
  });
}

TEST(PolicyEvaluate, What) {
  World& w = W();
  const auto* a = &w.alice;
  const auto* ctx = &w.signtool;
  const std::string by_id =
      R"({"name":"p","effect":"allow","certificates":[")" + w.rsa.id + R"("]})";
  RunCases({
      {"certificate by label",
       {R"({"name":"p","effect":"allow","certificates":["rsa-2048"]})"},
       a,
       &w.rsa,
       kPkcs1,
       kSha256,
       ctx,
       true,
       "p",
       "allowed"},
      {"certificate by id", {by_id}, a, &w.rsa, kPkcs1, kSha256, ctx, true, "p", "allowed"},
      {"other certificate", {by_id}, a, &w.ec, kEcdsa, kSha256, ctx, false, "", kDefault},
      {"certificate group overlap",
       {R"({"name":"p","effect":"allow","certificate_groups":["dev"]})"},
       a,
       &w.ec,
       kEcdsa,
       kSha256,
       ctx,
       true,
       "p",
       "allowed"},
      {"certificate group mismatch",
       {R"({"name":"p","effect":"allow","certificate_groups":["dev"]})"},
       a,
       &w.rsa,
       kPkcs1,
       kSha256,
       ctx,
       false,
       "",
       "certificate 'rsa-2048'"},
  });
}

TEST(PolicyEvaluate, Where) {
  World& w = W();
  const auto* a = &w.alice;
  const auto* rsa = &w.rsa;
  wire::CallerContext upper = w.signtool;
  upper.process = "SignTool.EXE";
  wire::CallerContext other = w.signtool;
  other.process = "osslsigncode";
  other.command_line = "osslsigncode sign -h sha384 in.exe";
  const std::string process_rule = R"({"name":"p","effect":"allow","process":"signtool(\\.exe)?"})";
  const std::string cmd_rule = R"({"name":"p","effect":"allow","command_line":"/fd sha256"})";
  RunCases({
      {"process full match", {process_rule}, a, rsa, kPkcs1, kSha256, &w.signtool, true, "p", ""},
      {"process case-insensitive", {process_rule}, a, rsa, kPkcs1, kSha256, &upper, true, "p", ""},
      {"process mismatch", {process_rule}, a, rsa, kPkcs1, kSha256, &other, false, "", kDefault},
      {"process must match fully",
       {R"({"name":"p","effect":"allow","process":"sign"})"},
       a,
       rsa,
       kPkcs1,
       kSha256,
       &w.signtool,
       false,
       "",
       kDefault},
      {"empty process never matches a regex",
       {R"({"name":"p","effect":"allow","process":".*"})"},
       a,
       rsa,
       kPkcs1,
       kSha256,
       &w.anonymous,
       false,
       "",
       kDefault},
      {"command line search", {cmd_rule}, a, rsa, kPkcs1, kSha256, &w.signtool, true, "p", ""},
      {"command line mismatch", {cmd_rule}, a, rsa, kPkcs1, kSha256, &other, false, "", kDefault},
      {"command line search is case-insensitive",
       {R"({"name":"p","effect":"allow","command_line":"SIGN -H SHA384"})"},
       a,
       rsa,
       kPkcs1,
       kSha256,
       &other,
       true,
       "p",
       ""},
      {"deny by process",
       {R"({"name":"d","effect":"deny","process":"osslsigncode"})",
        R"({"name":"p","effect":"allow"})"},
       a,
       rsa,
       kPkcs1,
       kSha256,
       &other,
       false,
       "d",
       "denied by policy 'd'"},
      {"deny by process does not hit others",
       {R"({"name":"d","effect":"deny","process":"osslsigncode"})",
        R"({"name":"p","effect":"allow"})"},
       a,
       rsa,
       kPkcs1,
       kSha256,
       &w.signtool,
       true,
       "p",
       ""},
  });
}

TEST(PolicyEvaluate, OverlongCallerContextFailsClosed) {
  World& w = W();
  wire::CallerContext huge = w.signtool;
  huge.command_line = "signtool sign /fd sha256 " + std::string(100000, 'a');
  RunCases({
      {"allow with a regex is skipped",
       {R"({"name":"p","effect":"allow","command_line":"sign"})"},
       &w.alice,
       &w.rsa,
       kPkcs1,
       kSha256,
       &huge,
       false,
       "",
       "too long"},
      {"deny with a regex applies",
       {R"({"name":"d","effect":"deny","command_line":"nothing"})",
        R"({"name":"p","effect":"allow"})"},
       &w.alice,
       &w.rsa,
       kPkcs1,
       kSha256,
       &huge,
       false,
       "d",
       "denied"},
      {"rules without regexes are unaffected",
       {R"({"name":"p","effect":"allow"})"},
       &w.alice,
       &w.rsa,
       kPkcs1,
       kSha256,
       &huge,
       true,
       "p",
       ""},
  });
}

TEST(PolicyEvaluate, When) {
  World& w = W();  // now = 2026-06-01T12:00:00Z
  const auto* a = &w.alice;
  const auto* rsa = &w.rsa;
  const auto* ctx = &w.signtool;
  RunCases({
      {"inside window",
       {R"({"name":"p","effect":"allow","not_before":"2026-01-01T00:00:00Z","not_after":"2026-12-31T00:00:00Z"})"},
       a,
       rsa,
       kPkcs1,
       kSha256,
       ctx,
       true,
       "p",
       ""},
      {"not yet",
       {R"({"name":"p","effect":"allow","not_before":"2026-06-01T12:00:01Z"})"},
       a,
       rsa,
       kPkcs1,
       kSha256,
       ctx,
       false,
       "",
       kDefault},
      {"starts exactly now",
       {R"({"name":"p","effect":"allow","not_before":"2026-06-01T12:00:00Z"})"},
       a,
       rsa,
       kPkcs1,
       kSha256,
       ctx,
       true,
       "p",
       ""},
      {"expired",
       {R"({"name":"p","effect":"allow","not_after":"2026-06-01T11:59:59Z"})"},
       a,
       rsa,
       kPkcs1,
       kSha256,
       ctx,
       false,
       "",
       kDefault},
      {"freeze window denies",
       {R"({"name":"freeze","effect":"deny","not_before":"2026-05-30T00:00:00Z","not_after":"2026-06-02T00:00:00Z"})",
        R"({"name":"p","effect":"allow"})"},
       a,
       rsa,
       kPkcs1,
       kSha256,
       ctx,
       false,
       "freeze",
       "denied by policy 'freeze'"},
  });
}

TEST(PolicyEvaluate, Which) {
  World& w = W();
  const auto* a = &w.alice;
  const auto* ctx = &w.signtool;
  RunCases({
      {"scheme listed",
       {R"({"name":"p","effect":"allow","schemes":["rsa-pss"]})"},
       a,
       &w.rsa,
       kPss,
       kSha256,
       ctx,
       true,
       "p",
       ""},
      {"scheme not listed",
       {R"({"name":"p","effect":"allow","schemes":["rsa-pss"]})"},
       a,
       &w.rsa,
       kPkcs1,
       kSha256,
       ctx,
       false,
       "",
       "(scheme rsa-pkcs1, hash sha256)"},
      {"hash listed",
       {R"({"name":"p","effect":"allow","hashes":["sha384","sha512"]})"},
       a,
       &w.rsa,
       kPkcs1,
       kSha512,
       ctx,
       true,
       "p",
       ""},
      {"hash not listed",
       {R"({"name":"p","effect":"allow","hashes":["sha384","sha512"]})"},
       a,
       &w.rsa,
       kPkcs1,
       kSha256,
       ctx,
       false,
       "",
       kDefault},
      {"scheme must fit the key",
       {R"({"name":"p","effect":"allow"})"},
       a,
       &w.rsa,
       kEcdsa,
       kSha256,
       ctx,
       false,
       "",
       "does not fit certificate 'rsa-2048'"},
      {"ecdsa on ec",
       {R"({"name":"p","effect":"allow"})"},
       a,
       &w.ec,
       kEcdsa,
       kSha384,
       ctx,
       true,
       "p",
       ""},
  });
}

TEST(PolicyEvaluate, OrderingAndDefaultDeny) {
  World& w = W();
  const std::string allow = R"({"name":"ci-rsa","effect":"allow","users":["alice"]})";
  const std::string deny = R"({"name":"no-alice","effect":"deny","users":["alice"]})";
  RunCases({
      {"deny before allow wins",
       {deny, allow},
       &w.alice,
       &w.rsa,
       kPkcs1,
       kSha256,
       &w.signtool,
       false,
       "no-alice",
       "denied by policy 'no-alice'"},
      {"allow before deny wins",
       {allow, deny},
       &w.alice,
       &w.rsa,
       kPkcs1,
       kSha256,
       &w.signtool,
       true,
       "ci-rsa",
       "allowed by policy 'ci-rsa'"},
      {"non-matching deny is skipped",
       {R"({"name":"d","effect":"deny","users":["bob"]})", allow},
       &w.alice,
       &w.rsa,
       kPkcs1,
       kSha256,
       &w.signtool,
       true,
       "ci-rsa",
       ""},
      {"no rules",
       {},
       &w.alice,
       &w.rsa,
       kPkcs1,
       kSha256,
       &w.signtool,
       false,
       "",
       "no policy allows user 'alice' to sign with certificate 'rsa-2048' (scheme rsa-pkcs1, "
       "hash sha256)"},
      {"only deny rules",
       {deny},
       &w.bob,
       &w.rsa,
       kPss,
       kSha512,
       &w.signtool,
       false,
       "",
       "no policy allows user 'bob' to sign with certificate 'rsa-2048' (scheme rsa-pss, hash "
       "sha512)"},
  });
}

TEST(PolicyEvaluate, Sha1NeedsExplicitPermission) {
  World& w = W();
  const std::string allow_all = R"({"name":"all","effect":"allow"})";
  const std::string allow_sha1 = R"({"name":"legacy","effect":"allow","hashes":["sha1"]})";
  RunCases({
      {"allow without hashes does not allow sha1",
       {allow_all},
       &w.alice,
       &w.rsa,
       kPkcs1,
       kSha1,
       &w.signtool,
       false,
       "",
       "sha1 is only allowed by a policy that lists it"},
      {"evaluation continues to an explicit sha1 rule",
       {allow_all, allow_sha1},
       &w.alice,
       &w.rsa,
       kPkcs1,
       kSha1,
       &w.signtool,
       true,
       "legacy",
       "allowed by policy 'legacy'"},
      {"explicit sha1 rule does not allow sha256",
       {allow_sha1},
       &w.alice,
       &w.rsa,
       kPkcs1,
       kSha256,
       &w.signtool,
       false,
       "",
       kDefault},
      {"deny without hashes denies sha1 too",
       {R"({"name":"no-alice","effect":"deny","users":["alice"]})", allow_sha1},
       &w.alice,
       &w.rsa,
       kPkcs1,
       kSha1,
       &w.signtool,
       false,
       "no-alice",
       "denied"},
      {"explicit sha1 deny",
       {R"({"name":"no-sha1","effect":"deny","hashes":["sha1"]})", allow_sha1},
       &w.alice,
       &w.rsa,
       kPkcs1,
       kSha1,
       &w.signtool,
       false,
       "no-sha1",
       "denied by policy 'no-sha1'"},
  });
}

TEST(PolicyEvaluate, DisabledCertificateIsAlwaysDenied) {
  World& w = W();
  RunCases({
      {"disabled",
       {R"({"name":"all","effect":"allow","users":["*"]})"},
       &w.alice,
       &w.disabled,
       kPkcs1,
       kSha256,
       &w.signtool,
       false,
       "",
       "certificate 'old-rsa' is disabled"},
  });
}

std::optional<AllowedUse> Visible(const std::vector<std::string>& rules, const Principal& who,
                                  const CertificateRecord& cert) {
  std::vector<PolicyRule> parsed;
  for (const std::string& r : rules) parsed.push_back(Rule(r));
  return Engine(parsed).Visible(who, cert, W().now);
}

using Schemes = std::vector<SignatureScheme>;
using Hashes = std::vector<HashAlgorithm>;
const Hashes kDefaultHashes = {HashAlgorithm::kSha224, kSha256, kSha384, kSha512};

TEST(PolicyVisible, AllowedUseForRsaAndEc) {
  World& w = W();
  const std::vector<std::string> all = {R"({"name":"all","effect":"allow","users":["alice"]})"};
  auto rsa = Visible(all, w.alice, w.rsa);
  ASSERT_TRUE(rsa.has_value());
  EXPECT_EQ(rsa->capabilities.Schemes(), (Schemes{kPkcs1, kPss}));
  EXPECT_EQ(rsa->capabilities.Hashes(), kDefaultHashes);
  auto ec = Visible(all, w.alice, w.ec);
  ASSERT_TRUE(ec.has_value());
  EXPECT_EQ(ec->capabilities.Schemes(), Schemes{kEcdsa});
  EXPECT_EQ(ec->capabilities.Hashes(), kDefaultHashes);

  EXPECT_FALSE(Visible(all, w.bob, w.rsa).has_value());         // not bob
  EXPECT_FALSE(Visible({}, w.alice, w.rsa).has_value());        // default deny
  EXPECT_FALSE(Visible(all, w.alice, w.disabled).has_value());  // disabled
}

TEST(PolicyVisible, UnionOfMatchingAllowRules) {
  World& w = W();
  auto use =
      Visible({R"({"name":"a","effect":"allow","schemes":["rsa-pkcs1"],"hashes":["sha256"]})",
               R"({"name":"b","effect":"allow","schemes":["rsa-pss"],"hashes":["sha1","sha512"]})",
               R"({"name":"c","effect":"allow","users":["bob"],"hashes":["sha384"]})"},
              w.alice, w.rsa);
  ASSERT_TRUE(use.has_value());
  EXPECT_EQ(use->capabilities.Schemes(), (Schemes{kPkcs1, kPss}));
  EXPECT_EQ(use->capabilities.Hashes(),
            (Hashes{kSha1, kSha256, kSha512}));  // sha1 only because listed

  // Schemes that do not fit the key contribute nothing.
  EXPECT_FALSE(Visible({R"({"name":"a","effect":"allow","schemes":["rsa-pss"]})"}, w.alice, w.ec)
                   .has_value());
  auto ec =
      Visible({R"({"name":"a","effect":"allow","schemes":["rsa-pss","ecdsa"]})"}, w.alice, w.ec);
  ASSERT_TRUE(ec.has_value());
  EXPECT_EQ(ec->capabilities.Schemes(), Schemes{kEcdsa});
}

TEST(PolicyVisible, PairsAreExact) {
  World& w = W();
  // The demo's release user: any scheme with SHA-2, SHA-1 with PKCS#1 v1.5 only.
  auto use =
      Visible({R"({"name":"sha1","effect":"allow","schemes":["rsa-pkcs1"],"hashes":["sha1"]})",
               R"({"name":"all","effect":"allow"})"},
              w.alice, w.rsa);
  ASSERT_TRUE(use.has_value());
  EXPECT_TRUE(use->capabilities.Allows(kPkcs1, kSha1));
  EXPECT_FALSE(use->capabilities.Allows(kPss, kSha1));
  EXPECT_TRUE(use->capabilities.Allows(kPss, kSha256));
  EXPECT_EQ(use->capabilities.Pairs().size(), 9u);
  // A deny of one combination removes that pair only.
  use = Visible({R"({"name":"d","effect":"deny","schemes":["rsa-pss"],"hashes":["sha512"]})",
                 R"({"name":"all","effect":"allow"})"},
                w.alice, w.rsa);
  ASSERT_TRUE(use.has_value());
  EXPECT_FALSE(use->capabilities.Allows(kPss, kSha512));
  EXPECT_TRUE(use->capabilities.Allows(kPkcs1, kSha512));
  EXPECT_TRUE(use->capabilities.Allows(kPss, kSha384));
}

TEST(PolicyVisible, DenyRulesAndConditions) {
  World& w = W();
  const std::string allow = R"({"name":"all","effect":"allow"})";
  // An earlier unconditional deny hides the certificate; a later one does not.
  EXPECT_FALSE(Visible({R"({"name":"d","effect":"deny","users":["alice"]})", allow}, w.alice, w.rsa)
                   .has_value());
  EXPECT_TRUE(Visible({allow, R"({"name":"d","effect":"deny","users":["alice"]})"}, w.alice, w.rsa)
                  .has_value());
  // A deny that depends on the caller's process may not apply: still listed.
  EXPECT_TRUE(Visible({R"({"name":"d","effect":"deny","process":"evil"})", allow}, w.alice, w.rsa)
                  .has_value());
  // A deny of one hash or scheme removes it from what later rules offer.
  auto no256 =
      Visible({R"({"name":"d","effect":"deny","hashes":["sha256"]})", allow}, w.alice, w.rsa);
  ASSERT_TRUE(no256.has_value());
  EXPECT_EQ(no256->capabilities.Hashes(), (Hashes{HashAlgorithm::kSha224, kSha384, kSha512}));
  auto no_pss =
      Visible({R"({"name":"d","effect":"deny","schemes":["rsa-pss"]})", allow}, w.alice, w.rsa);
  ASSERT_TRUE(no_pss.has_value());
  EXPECT_EQ(no_pss->capabilities.Schemes(), Schemes{kPkcs1});
  // Allow rules that only match at other times do not list the certificate now.
  EXPECT_FALSE(Visible({R"({"name":"old","effect":"allow","not_after":"2026-01-01T00:00:00Z"})"},
                       w.alice, w.rsa)
                   .has_value());
  // Allow rules with a process condition may apply: listed.
  EXPECT_TRUE(Visible({R"({"name":"p","effect":"allow","process":"signtool"})"}, w.alice, w.rsa)
                  .has_value());
  // What-conditions: only the named certificate.
  const std::string only_ec = R"({"name":"ec","effect":"allow","certificates":["ec-p256"]})";
  EXPECT_TRUE(Visible({only_ec}, w.alice, w.ec).has_value());
  EXPECT_FALSE(Visible({only_ec}, w.alice, w.rsa).has_value());
}

TEST(PolicyCompile, InvalidRegexIsRejectedWithTheRuleName) {
  PolicyRule bad_process;
  bad_process.name = "broken-process";
  bad_process.effect = PolicyEffect::kAllow;
  bad_process.process_regex = "(signtool";
  auto r1 = PolicyEngine::Compile({bad_process});
  ASSERT_THAT(r1, StatusIs(ErrorCode::kInvalidArgument));
  EXPECT_NE(r1.status().message().find("policy 'broken-process'"), std::string::npos)
      << r1.status().message();

  PolicyRule bad_cmd;
  bad_cmd.name = "broken-cmd";
  bad_cmd.command_line_regex = "[a-";
  PolicyRule fine;
  fine.name = "fine";
  fine.process_regex = "ok";
  auto r2 = PolicyEngine::Compile({fine, bad_cmd});
  ASSERT_FALSE(r2.ok());
  EXPECT_NE(r2.status().message().find("policy 'broken-cmd'"), std::string::npos);
  EXPECT_NE(r2.status().message().find("command_line"), std::string::npos);

  EXPECT_OK(PolicyEngine::Compile({fine}));
  EXPECT_OK(PolicyEngine::Compile({}));
}

}  // namespace
}  // namespace signum::server

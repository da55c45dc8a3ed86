#include "signum/core/wire.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "signum/core/crypto.h"
#include "signum/testing/status_matchers.h"

namespace signum::wire {
namespace {

using ::signum::testing::StatusIs;

using nlohmann::json;

SignRequest ValidRequest() {
  SignRequest r;
  r.certificate_id = "00112233445566778899aabbccddeeff00112233";
  r.scheme = SignatureScheme::kRsaPss;
  r.hash = HashAlgorithm::kSha384;
  r.digest = Bytes(48, 0xab);
  r.pss_salt_length = 48;
  r.context.process = "osslsigncode";
  r.context.command_line = "osslsigncode sign -in a.exe";
  r.context.pid = 42;
  return r;
}

TEST(WireTest, SignRequestRoundTrip) {
  const SignRequest original = ValidRequest();
  auto parsed = ParseSignRequest(ToJson(original));
  ASSERT_OK(parsed);
  EXPECT_EQ(parsed->certificate_id, original.certificate_id);
  EXPECT_EQ(parsed->scheme, original.scheme);
  EXPECT_EQ(parsed->hash, original.hash);
  EXPECT_EQ(parsed->digest, original.digest);
  EXPECT_EQ(parsed->pss_salt_length, original.pss_salt_length);
  EXPECT_EQ(parsed->context, original.context);
}

struct BadRequestCase {
  const char* name;
  std::function<void(json&)> mutate;
  const char* expected_field;
};

TEST(WireTest, SignRequestRejectsBadInputNamingTheField) {
  const std::vector<BadRequestCase> cases = {
      {"missing id", [](json& j) { j.erase("certificate_id"); }, "certificate_id"},
      {"empty id", [](json& j) { j["certificate_id"] = ""; }, "certificate_id"},
      {"id not string", [](json& j) { j["certificate_id"] = 5; }, "certificate_id"},
      {"unknown scheme", [](json& j) { j["scheme"] = "rsa-raw"; }, "scheme"},
      {"unknown hash", [](json& j) { j["hash"] = "md5"; }, "hash"},
      {"digest not base64", [](json& j) { j["digest"] = "!!!"; }, "digest"},
      {"digest wrong length", [](json& j) { j["digest"] = Base64Encode(Bytes(32, 1)); }, "digest"},
      {"negative salt", [](json& j) { j["pss_salt_length"] = -1; }, "pss_salt_length"},
      {"salt on pkcs1", [](json& j) { j["scheme"] = "rsa-pkcs1"; }, "pss_salt_length"},
      {"context not object", [](json& j) { j["context"] = "x"; }, "context"},
      {"pid not integer", [](json& j) { j["context"]["pid"] = "12"; }, "pid"},
  };
  for (const auto& c : cases) {
    json j = ToJson(ValidRequest());
    c.mutate(j);
    auto parsed = ParseSignRequest(j);
    ASSERT_FALSE(parsed.ok()) << c.name;
    EXPECT_THAT(parsed, StatusIs(ErrorCode::kInvalidArgument)) << c.name;
    EXPECT_NE(parsed.status().message().find(c.expected_field), std::string::npos)
        << c.name << ": " << parsed.status().message();
  }
  EXPECT_FALSE(ParseSignRequest(json::array()).ok());
  EXPECT_FALSE(ParseSignRequest(json(nullptr)).ok());
}

TEST(WireTest, CertificateListRoundTrip) {
  CertificateListResponse list;
  CertificateEntry e;
  e.id = "ab";
  e.label = "ec-p384";
  e.key = {KeyType::kEc, 384, EcCurve::kP384};
  e.certificate_pem = "-----BEGIN CERTIFICATE-----\n...";
  e.chain_pem = {"issuing", "root"};
  e.schemes = {SignatureScheme::kEcdsa};
  e.hashes = {HashAlgorithm::kSha256, HashAlgorithm::kSha384};
  list.certificates.push_back(e);
  auto parsed = ParseCertificateListResponse(ToJson(list));
  ASSERT_OK(parsed);
  ASSERT_EQ(parsed->certificates.size(), 1u);
  const CertificateEntry& p = parsed->certificates[0];
  EXPECT_EQ(p.label, "ec-p384");
  EXPECT_EQ(p.key.type, KeyType::kEc);
  EXPECT_EQ(p.key.bits, 384);
  EXPECT_EQ(p.key.curve, EcCurve::kP384);
  EXPECT_EQ(p.chain_pem, e.chain_pem);
  EXPECT_EQ(p.schemes, e.schemes);
  EXPECT_EQ(p.hashes, e.hashes);
}

TEST(WireTest, CertificateCapabilitiesRoundTripAsPairs) {
  CertificateEntry e;
  e.id = "ab";
  e.key = {KeyType::kRsa, 2048, std::nullopt};
  e.certificate_pem = "pem";
  SignatureCapabilities capabilities;
  capabilities.Add(SignatureScheme::kRsaPkcs1, HashAlgorithm::kSha1);
  capabilities.Add(SignatureScheme::kRsaPkcs1, HashAlgorithm::kSha256);
  capabilities.Add(SignatureScheme::kRsaPss, HashAlgorithm::kSha256);
  e.capabilities = capabilities;
  e.schemes = capabilities.Schemes();
  e.hashes = capabilities.Hashes();
  const json j = ToJson(e);
  EXPECT_EQ(j["capabilities"], json::parse(R"([{"scheme":"rsa-pkcs1","hash":"sha1"},
                                                 {"scheme":"rsa-pkcs1","hash":"sha256"},
                                                 {"scheme":"rsa-pss","hash":"sha256"}])"));
  auto parsed = ParseCertificateEntry(j);
  ASSERT_OK(parsed);
  ASSERT_TRUE(parsed->capabilities.has_value());
  EXPECT_EQ(*parsed->capabilities, capabilities);
  // The pair (rsa-pss, sha1) is in the projections' cross product, not in the capabilities.
  EXPECT_FALSE(parsed->capabilities->Allows(SignatureScheme::kRsaPss, HashAlgorithm::kSha1));

  // An empty list is "nothing can be signed"; an absent field is "an older server".
  e.capabilities = SignatureCapabilities();
  parsed = ParseCertificateEntry(ToJson(e));
  ASSERT_OK(parsed);
  ASSERT_TRUE(parsed->capabilities.has_value());
  EXPECT_TRUE(parsed->capabilities->empty());
  e.capabilities.reset();
  EXPECT_FALSE(ToJson(e).contains("capabilities"));
  parsed = ParseCertificateEntry(ToJson(e));
  ASSERT_OK(parsed);
  EXPECT_FALSE(parsed->capabilities.has_value());
}

TEST(WireTest, CertificateCapabilitiesRejectBadPairsNamingThem) {
  CertificateEntry e;
  e.id = "ab";
  e.key = {KeyType::kRsa, 2048, std::nullopt};
  e.certificate_pem = "pem";
  const std::vector<std::pair<const char*, std::string>> cases = {
      {R"("rsa-pss")", "capabilities"},
      {R"(["rsa-pss"])", "capabilities[0]"},
      {R"([{"scheme":"rsa-pss"}])", "capabilities[0]"},
      {R"([{"scheme":"rsa-pss","hash":"sha256"},{"scheme":"dsa","hash":"sha256"}])",
       "capabilities[1].scheme"},
      {R"([{"scheme":"rsa-pss","hash":"md5"}])", "capabilities[0].hash"},
  };
  for (const auto& [value, field] : cases) {
    json j = ToJson(e);
    j["capabilities"] = json::parse(value);
    auto parsed = ParseCertificateEntry(j);
    ASSERT_FALSE(parsed.ok()) << value;
    EXPECT_NE(parsed.status().message().find("'" + field + "'"), std::string::npos)
        << value << ": " << parsed.status().message();
  }
}

TEST(WireTest, SignResponseRoundTrip) {
  SignResponse r{"id", SignatureScheme::kEcdsa, HashAlgorithm::kSha256, Bytes(64, 7)};
  auto parsed = ParseSignResponse(ToJson(r));
  ASSERT_OK(parsed);
  EXPECT_EQ(parsed->signature, r.signature);
  EXPECT_EQ(parsed->scheme, SignatureScheme::kEcdsa);
}

TEST(WireTest, ErrorsMapToHttpAndBack) {
  for (ErrorCode code :
       {ErrorCode::kInvalidArgument, ErrorCode::kUnauthenticated, ErrorCode::kPermissionDenied,
        ErrorCode::kNotFound, ErrorCode::kResourceExhausted, ErrorCode::kUnavailable}) {
    Status s(code, "because");
    const int http = HttpStatusFor(code);
    const std::string body = ToJson(ToErrorResponse(s)).dump();
    Status back = StatusFromHttpError(http, body);
    EXPECT_EQ(back.code(), code) << body;
    EXPECT_NE(back.message().find("because"), std::string::npos);
  }
  EXPECT_THAT(StatusFromHttpError(502, "<html>"), StatusIs(ErrorCode::kUnavailable));
}

TEST(WireTest, ParseJsonRejectsGarbageWithoutThrowing) {
  EXPECT_FALSE(ParseJson("{\"a\":").ok());
  EXPECT_FALSE(ParseJson("").ok());
  EXPECT_OK(ParseJson("{}"));
}

}  // namespace
}  // namespace signum::wire

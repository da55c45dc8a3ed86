// The Windows half of the portable provider model, under Wine (or on Windows): BCrypt-backed
// hashing against the FIPS 180-4 "abc" answers, multi-part hashing, UTF-16 conversion and the
// Win32 process context. DER parsing is the same code as on Linux (checked there against OpenSSL);
// the KSP/CSP suites parse real agent certificates with it.
#include <gtest/gtest.h>

#include "signum/core/encoding.h"
#include "signum/provider/digest.h"
#include "signum/provider/process_context.h"
#include "signum/provider/wide_string.h"
#include "signum/testing/status_matchers.h"

namespace signum::provider {
namespace {

using ::signum::testing::StatusIs;

TEST(WindowsDigestTest, KnownAnswersForAbc) {
  const struct {
    HashAlgorithm hash;
    const char* hex;
  } kAnswers[] = {
      {HashAlgorithm::kSha1, "a9993e364706816aba3e25717850c26c9cd0d89d"},
      {HashAlgorithm::kSha256, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
      {HashAlgorithm::kSha384,
       "cb00753f45a35e8bb5a03d699ac65007272c32ab0eded1631a8b605a43ff5bed8086072ba1e7cc2358baeca134c8"
       "25a7"},
      {HashAlgorithm::kSha512,
       "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a2192992a274fc1a836ba3c23a3fe"
       "ebbd454d4423643ce80e2a9ac94fa54ca49f"},
  };
  for (const auto& answer : kAnswers) {
    SCOPED_TRACE(std::string(HashName(answer.hash)));
    auto digest = ComputeDigest(answer.hash, AsBytes("abc"));
    ASSERT_OK(digest);
    EXPECT_EQ(HexEncode(*digest), answer.hex);
    auto context = DigestContext::Create(answer.hash);
    ASSERT_OK(context);
    ASSERT_OK(context->Update(AsBytes("a")));
    auto clone = context->Clone();  // BCryptDuplicateHash: continues independently
    ASSERT_OK(clone);
    ASSERT_OK(context->Update(AsBytes("")));
    ASSERT_OK(context->Update(AsBytes("bc")));
    EXPECT_EQ(HexEncode(context->Finish().value()), answer.hex);
    ASSERT_OK(clone->Update(AsBytes("bc")));
    EXPECT_EQ(HexEncode(clone->Finish().value()), answer.hex);
    EXPECT_FALSE(context->Finish().ok()) << "a finished digest must not finish twice";
    EXPECT_FALSE(context->Update(AsBytes("x")).ok());
  }
}

TEST(WindowsDigestTest, Sha224IsNotOfferedByBcrypt) {
  auto digest = ComputeDigest(HashAlgorithm::kSha224, AsBytes("abc"));
  ASSERT_THAT(digest, StatusIs(ErrorCode::kUnimplemented));
}

TEST(WindowsStringTest, Utf16RoundTrip) {
  const std::string text = "Signum Key Storage Provider \xc3\xa4\xe2\x82\xac\xf0\x9f\x94\x91";
  const std::wstring wide = WideFromUtf8(text);
  EXPECT_EQ(wide.size(), 28u + 1 + 1 + 2);  // ä and € are one UTF-16 unit, the key emoji two
  EXPECT_EQ(Utf8FromWide(wide), text);
  EXPECT_EQ(Utf8FromWide(L""), "");
}

TEST(WindowsProcessContextTest, NamesThisProgram) {
  const wire::CallerContext context = CurrentProcessContext();
  EXPECT_NE(context.process.find("signum_provider_core_windows_test"), std::string::npos)
      << context.process;
  EXPECT_NE(context.command_line.find("signum_provider_core_windows_test"), std::string::npos);
  EXPECT_FALSE(context.host.empty());
  ASSERT_TRUE(context.pid.has_value());
  EXPECT_GT(*context.pid, 0);
}

}  // namespace
}  // namespace signum::provider

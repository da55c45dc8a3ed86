// call_record.h: the SIGNUM_CNG_RECORD encoder both Windows providers use, and the SIGNUM_CNG_TRACE
// line made from the same description. Runs under Wine (ctest in the mingw tree); the providers'
// own records are checked by signum_cng_fake_agent_wine.
#include "signum/cng/call_record.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace signum::cng {
namespace {

// A temporary file named after the test, removed before and after.
class TempFile {
 public:
  explicit TempFile(const char* name) {
    char directory[MAX_PATH];
    GetTempPathA(sizeof directory, directory);
    path_ = std::string(directory) + name;
    std::remove(path_.c_str());
  }
  ~TempFile() { std::remove(path_.c_str()); }
  const std::string& path() const { return path_; }
  std::vector<std::string> Lines() const {
    std::ifstream in(path_);
    std::vector<std::string> lines;
    for (std::string line; std::getline(in, line);) lines.push_back(line);
    return lines;
  }

 private:
  std::string path_;
};

// Sets an environment variable for one scope (for msvcrt's getenv and the process alike).
class ScopedVariable {
 public:
  ScopedVariable(const char* name, const std::string& value) : name_(name) {
    _putenv_s(name_, value.c_str());
  }
  ~ScopedVariable() { _putenv_s(name_, ""); }

 private:
  const char* name_;
};

SECURITY_STATUS SignCall(const char* key_name, SECURITY_STATUS result) {
  CallRecord call("test", "SignHash", ReturnConvention::kSecurityStatus);
  if (call.active()) {
    call.args() = {{"hKey", 7},
                   {"pszKeyName", TextValue(key_name)},
                   {"pbHashValue", HexValue("\x01\xab", 2)},
                   {"pPaddingInfo", nullptr}};
  }
  DWORD length = 3;
  const char signature[] = "\x0a\x0b\x0c";
  return ReturnAtAbiBoundary(
      call,
      [&](nlohmann::json& out, SECURITY_STATUS code) {
        DescribeSizedOutput(out, code, NTE_BUFFER_TOO_SMALL, "pbSignature", signature, "pcbResult",
                            &length);
      },
      [&] { return result == 0 ? Status::Ok() : NteError(result, "refused by policy"); });
}

TEST(CallRecordTest, WritesTheHeaderOnceAndOneLinePerCall) {
  TempFile file("signum_call_record_test.jsonl");
  {
    ScopedVariable record("SIGNUM_CNG_RECORD", file.path());
    EXPECT_EQ(SignCall("ok", ERROR_SUCCESS), ERROR_SUCCESS);
    EXPECT_EQ(SignCall("deny", NTE_PERM), NTE_PERM);
  }
  EXPECT_EQ(SignCall("unrecorded", ERROR_SUCCESS), ERROR_SUCCESS);  // the variable is re-read

  const std::vector<std::string> lines = file.Lines();
  ASSERT_EQ(lines.size(), 3u);
  const auto header = nlohmann::json::parse(lines[0]);
  EXPECT_EQ(header["v"], 1);
  EXPECT_EQ(header["kind"], "signum-cng-trace");
  EXPECT_EQ(header["pid"], GetCurrentProcessId());

  const auto ok = nlohmann::json::parse(lines[1]);
  EXPECT_EQ(ok["v"], 1);
  EXPECT_EQ(ok["seq"], 1);
  EXPECT_EQ(ok["fn"], "SignHash");
  EXPECT_EQ(ok["thread"], GetCurrentThreadId());
  EXPECT_LE(ok["t_start"].get<unsigned long long>(), ok["t_end"].get<unsigned long long>());
  EXPECT_EQ(
      ok["args"],
      (nlohmann::json{
          {"hKey", 7}, {"pszKeyName", "ok"}, {"pbHashValue", "01ab"}, {"pPaddingInfo", nullptr}}));
  EXPECT_EQ(ok["rv"], (nlohmann::json{{"name", "ERROR_SUCCESS"}, {"value", 0}}));
  EXPECT_EQ(ok["out"], (nlohmann::json{{"pbSignature", "0a0b0c"}, {"pcbResult", 3}}));
  EXPECT_FALSE(ok.contains("error"));

  const auto denied = nlohmann::json::parse(lines[2]);
  EXPECT_EQ(denied["seq"], 2);
  EXPECT_EQ(denied["rv"], (nlohmann::json{{"name", "NTE_PERM"}, {"value", 0x80090010UL}}));
  EXPECT_EQ(denied["out"], nlohmann::json::object()) << "a failed call hands nothing out";
  EXPECT_EQ(denied["error"], "PERMISSION_DENIED: refused by policy");
}

TEST(CallRecordTest, TheTextTraceNamesAFailedCallWithItsArguments) {
  TempFile file("signum_call_record_test.trace");
  {
    ScopedVariable trace("SIGNUM_CNG_TRACE", file.path());
    SignCall("ok", ERROR_SUCCESS);  // successes are not traced
    SignCall("deny", NTE_PERM);
  }
  EXPECT_EQ(file.Lines(),
            std::vector<std::string>{"test: SignHash(hKey=7, pPaddingInfo=null, pbHashValue=01ab, "
                                     "pszKeyName=deny): NTE_PERM (0x80090010): PERMISSION_DENIED: "
                                     "refused by policy"});
}

TEST(CallRecordTest, EncodesValuesAsTheFormatSays) {
  EXPECT_EQ(HexValue(nullptr, 4), nullptr);
  EXPECT_EQ(TextValue(static_cast<LPCWSTR>(nullptr)), nullptr);
  EXPECT_EQ(TextValue(L"Schl\u00fcssel"), "Schl\xc3\xbcssel");
  EXPECT_EQ(BufferValue(nullptr), (nlohmann::json{{"buffer", false}}));
  EXPECT_EQ(RedactedValue(12), (nlohmann::json{{"redacted", true}, {"length", 12}}));
  EXPECT_EQ(AddressValue(nullptr), 0);
  BCRYPT_PSS_PADDING_INFO pss{BCRYPT_SHA384_ALGORITHM, 48};
  EXPECT_EQ(PaddingInfoValue(NCRYPT_PAD_PSS_FLAG, &pss),
            (nlohmann::json{{"type", "pss"}, {"pszAlgId", "SHA384"}, {"cbSalt", 48}}));
  BCRYPT_PKCS1_PADDING_INFO pkcs1{nullptr};
  EXPECT_EQ(PaddingInfoValue(NCRYPT_PAD_PKCS1_FLAG | NCRYPT_SILENT_FLAG, &pkcs1),
            (nlohmann::json{{"type", "pkcs1"}, {"pszAlgId", nullptr}}));
  EXPECT_EQ(PaddingInfoValue(NCRYPT_PAD_PKCS1_FLAG, nullptr), nullptr);
  // Lengths only on success and on "too small"; bytes only on success into a buffer.
  DWORD length = 2;
  nlohmann::json out = nlohmann::json::object();
  DescribeSizedOutput(out, NTE_BUFFER_TOO_SMALL, NTE_BUFFER_TOO_SMALL, "pbOutput", "ab",
                      "pcbResult", &length);
  EXPECT_EQ(out, (nlohmann::json{{"pcbResult", 2}}));
  out = nlohmann::json::object();
  DescribeSizedOutput(out, NTE_PERM, NTE_BUFFER_TOO_SMALL, "pbOutput", "ab", "pcbResult", &length);
  EXPECT_EQ(out, nlohmann::json::object());
}

}  // namespace
}  // namespace signum::cng

// nte_status.h: the one Status -> SECURITY_STATUS conversion both Windows providers use, and the
// boundary that traces each failure with its reason. Runs under Wine (ctest in the mingw tree).
#include "signum/cng/nte_status.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <new>
#include <sstream>
#include <stdexcept>
#include <string>

#include "signum/testing/status_matchers.h"

namespace signum::cng {
namespace {

using ::signum::testing::StatusIs;

TEST(NteStatusTest, NteErrorCarriesItsCodeAndReason) {
  const Status status = NteError(NTE_BAD_FLAGS, "dwFlags 0x4 is unknown");
  EXPECT_THAT(status, StatusIs(ErrorCode::kInvalidArgument));
  EXPECT_EQ(status.message(), "dwFlags 0x4 is unknown");
  EXPECT_EQ(ToSecurityStatus(status), NTE_BAD_FLAGS);
  // Context added on the way up keeps the code.
  EXPECT_EQ(ToSecurityStatus(status.WithContext("OpenKey")), NTE_BAD_FLAGS);
}

TEST(NteStatusTest, CarriedCodeWinsOverTheTable) {
  // kNotFound would map to NTE_BAD_KEYSET; NTE_NO_MORE_ITEMS is the code that was chosen.
  const Status status = NteError(NTE_NO_MORE_ITEMS, "all keys listed");
  EXPECT_THAT(status, StatusIs(ErrorCode::kNotFound));
  EXPECT_EQ(ToSecurityStatus(status), NTE_NO_MORE_ITEMS);
}

TEST(NteStatusTest, Win32ErrorsKeepTheirValue) {
  EXPECT_EQ(static_cast<DWORD>(ToSecurityStatus(Win32Error(ERROR_MORE_DATA, "short buffer"))),
            static_cast<DWORD>(ERROR_MORE_DATA));
  EXPECT_THAT(Win32Error(ERROR_NO_MORE_ITEMS, "done"), StatusIs(ErrorCode::kNotFound));
}

TEST(NteStatusTest, StatusesFromBelowGoThroughTheTable) {
  EXPECT_EQ(ToSecurityStatus(Status::Ok()), ERROR_SUCCESS);
  EXPECT_EQ(ToSecurityStatus(NotFoundError("x")), NTE_BAD_KEYSET);
  EXPECT_EQ(ToSecurityStatus(InvalidArgumentError("x")), NTE_INVALID_PARAMETER);
  EXPECT_EQ(ToSecurityStatus(PermissionDeniedError("x")), NTE_PERM);
  EXPECT_EQ(ToSecurityStatus(UnauthenticatedError("x")), NTE_PERM);
  EXPECT_EQ(ToSecurityStatus(UnavailableError("x")), NTE_DEVICE_NOT_READY);
  EXPECT_EQ(ToSecurityStatus(DeadlineExceededError("x")), NTE_DEVICE_NOT_READY);
  EXPECT_EQ(ToSecurityStatus(ResourceExhaustedError("x")), NTE_DEVICE_NOT_READY);
  EXPECT_EQ(ToSecurityStatus(UnimplementedError("x")), NTE_NOT_SUPPORTED);
  EXPECT_EQ(ToSecurityStatus(FailedPreconditionError("x")), NTE_BAD_KEY_STATE);
  EXPECT_EQ(ToSecurityStatus(InternalError("x")), NTE_FAIL);
}

TEST(NteStatusTest, CheckKnownFlagsNamesTheUnknownBits) {
  EXPECT_OK(CheckKnownFlags(0x41, 0x41));
  const Status status = CheckKnownFlags(0x43, 0x41);
  EXPECT_EQ(ToSecurityStatus(status), NTE_BAD_FLAGS);
  EXPECT_NE(status.message().find("0x00000002"), std::string::npos) << status.message();
}

// The structured trace's "name" (call_record.h): both tables, bare; anything else as hex.
TEST(NteStatusTest, CodeNameNamesNteAndWin32CodesAlike) {
  EXPECT_EQ(CodeName(NTE_PERM), "NTE_PERM");
  EXPECT_EQ(CodeName(ERROR_SUCCESS), "ERROR_SUCCESS");
  EXPECT_EQ(CodeName(ERROR_MORE_DATA), "ERROR_MORE_DATA");
  EXPECT_EQ(CodeName(static_cast<SECURITY_STATUS>(0x80091234L)), "0x80091234");
}

TEST(NteStatusTest, BoundaryTurnsExceptionsIntoCodes) {
  EXPECT_EQ(ReturnAtAbiBoundary("test", "Ok", [] { return Status::Ok(); }), ERROR_SUCCESS);
  EXPECT_EQ(ReturnAtAbiBoundary("test", "BadAlloc", []() -> Status { throw std::bad_alloc(); }),
            NTE_NO_MEMORY);
  EXPECT_EQ(
      ReturnAtAbiBoundary("test", "Throws", []() -> Status { throw std::runtime_error("boom"); }),
      NTE_FAIL);
  EXPECT_EQ(ReturnAtAbiBoundary("test", "Int", []() -> Status { throw 7; }), NTE_FAIL);
}

TEST(NteStatusTest, BoundaryTracesEachFailureWithItsReason) {
  char directory[MAX_PATH];
  ASSERT_NE(GetTempPathA(sizeof directory, directory), 0u);
  const std::string trace_file = std::string(directory) + "signum_nte_status_test.trace";
  std::remove(trace_file.c_str());
  ASSERT_EQ(_putenv_s("SIGNUM_CNG_TRACE", trace_file.c_str()), 0);
  const SECURITY_STATUS code = ReturnAtAbiBoundary(
      "test", "OpenKey", [] { return NteError(NTE_BAD_KEYSET, "no key 'ab12'"); });
  ReturnAtAbiBoundary("test", "FreeKey", [] { return Status::Ok(); });
  ASSERT_EQ(_putenv_s("SIGNUM_CNG_TRACE", ""), 0);
  EXPECT_EQ(code, NTE_BAD_KEYSET);

  std::ifstream in(trace_file);
  std::stringstream text;
  text << in.rdbuf();
  in.close();
  std::remove(trace_file.c_str());
  EXPECT_EQ(text.str(), "test: OpenKey: NTE_BAD_KEYSET (0x80090016): NOT_FOUND: no key 'ab12'\n");
}

}  // namespace
}  // namespace signum::cng

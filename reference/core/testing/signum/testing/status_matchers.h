// Assertions and matchers for Status and Result<T>, shared by every suite (the shape of
// kms-integrations' test_status_macros.h and matchers.h): a failure prints the whole Status, so
// no test needs to spell out `<< x.status().ToString()` by hand.
//
//   ASSERT_OK(DoThing());                       // Status or Result<T>
//   ASSERT_OK_AND_ASSIGN(auto key, FindKey(id));
//   EXPECT_THAT(Sign(bad), StatusIs(ErrorCode::kInvalidArgument));
//   EXPECT_THAT(Sign(bad), StatusIs(ErrorCode::kInvalidArgument, HasSubstr("digest")));
#pragma once

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <ostream>
#include <string>

#include "signum/core/status.h"

namespace signum {

// gtest prints values with operator<<; these make failures read "INVALID_ARGUMENT: ...".
inline void PrintTo(const Status& status, std::ostream* os) { *os << status.ToString(); }
template <typename T>
void PrintTo(const Result<T>& result, std::ostream* os) {
  *os << (result.ok() ? std::string("OK (a value)") : result.status().ToString());
}

namespace testing {

inline const Status& StatusOf(const Status& status) { return status; }
template <typename T>
Status StatusOf(const Result<T>& result) {
  return result.status();
}

inline ::testing::AssertionResult IsOk(const char* expression, const Status& status) {
  if (status.ok()) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << expression << " failed: " << status.ToString();
}
template <typename T>
::testing::AssertionResult IsOk(const char* expression, const Result<T>& result) {
  return IsOk(expression, result.status());
}

// Matches a Status or Result<T> whose code is `code` and whose message matches `message`.
MATCHER_P2(StatusIsMatcher, code, message_matcher,
           std::string(negation ? "is not " : "is ") + std::string(ErrorCodeName(code))) {
  const Status status = ::signum::testing::StatusOf(arg);
  *result_listener << "which is " << status.ToString();
  return status.code() == code &&
         ::testing::Matches(message_matcher)(status.message());
}

template <typename MessageMatcher>
auto StatusIs(ErrorCode code, MessageMatcher message) {
  return StatusIsMatcher(code, ::testing::Matcher<const std::string&>(message));
}
inline auto StatusIs(ErrorCode code) { return StatusIs(code, ::testing::_); }

// A Status or Result<T> that is OK.
MATCHER(IsOkStatus, negation ? "is an error" : "is OK") {
  const Status status = ::signum::testing::StatusOf(arg);
  *result_listener << "which is " << status.ToString();
  return status.ok();
}

}  // namespace testing
}  // namespace signum

#define EXPECT_OK(expr) EXPECT_PRED_FORMAT1(::signum::testing::IsOk, expr)
#define ASSERT_OK(expr) ASSERT_PRED_FORMAT1(::signum::testing::IsOk, expr)

#define SIGNUM_ASSERT_OK_AND_ASSIGN_IMPL_(tmp, lhs, expr) \
  auto tmp = (expr);                                      \
  ASSERT_OK(tmp);                                         \
  lhs = std::move(tmp).value()

// ASSERT_OK_AND_ASSIGN(auto value, MakeValue()); stops the test with the Status on failure.
#define ASSERT_OK_AND_ASSIGN(lhs, expr) \
  SIGNUM_ASSERT_OK_AND_ASSIGN_IMPL_(SIGNUM_CONCAT_(signum_test_result_, __LINE__), lhs, expr)

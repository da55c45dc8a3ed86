// Status -> TKErrorCode, in one table, at one boundary: every entry point the macOS layer calls
// goes through ReturnAtTkBoundary, which converts once and keeps the reason for the NSError's
// description (and the trace). Errors born in the CTK core are made with the ErrorCode whose
// TKErrorCode the case needs; errors from below (agent, server) keep theirs:
//   kInvalidArgument, kAlreadyExists           -> TKErrorCodeBadParameter   (wrong digest length)
//   kNotFound                                   -> TKErrorCodeObjectNotFound (unknown object ID)
//   kUnimplemented                              -> TKErrorCodeNotImplemented (unsupported
//   algorithm) kUnauthenticated, kPermissionDenied         -> TKErrorCodeAuthenticationFailed (the
//   server
//                                                  refused the agent's credential or the policy
//                                                  refused the caller)
//   kUnavailable, kDeadlineExceeded,
//   kResourceExhausted, kFailedPrecondition     -> TKErrorCodeCommunicationError (agent/server
//   down,
//                                                  slow, overloaded, or a protocol mismatch)
//   kDataLoss, kInternal                        -> TKErrorCodeCorruptedData  (a signature that did
//                                                  not verify, an answer that did not fit)
#pragma once

#include <optional>
#include <string>
#include <utility>

#include "signum/core/bytes.h"
#include "signum/core/status.h"
#include "signum/ctk/ctk_iface.h"

namespace signum::ctk {

// What the macOS layer turns into an NSError in TKErrorDomain.
struct TkError {
  TkErrorCode code = TkErrorCode::kCorruptedData;
  std::string description;  // "<entry>: <ErrorCode>: <reason>"
};

TkErrorCode ToTkErrorCode(ErrorCode code);
TkError ToTkError(const char* entry, const Status& status);

// A value or the TkError it became.
template <typename T>
struct TkOutcome {
  std::optional<T> value;
  std::optional<TkError> error;
  bool ok() const { return value.has_value(); }
};

// "signum-ctk: <line>" to stderr (the unified log on macOS picks it up) when SIGNUM_CTK_TRACE is
// set, and appended to the file it names when that is a path. Never secrets.
void TraceTk(const std::string& line);

// What an exception that reached an entry point becomes (kInternal). Call inside a catch block.
Status StatusOfCurrentException() noexcept;

// The one exit of every entry point the platform layer calls: runs body (returning Result<T>),
// converts a failure once and traces it; no exception crosses into Objective-C.
template <typename T, typename Body>
TkOutcome<T> ReturnAtTkBoundary(const char* entry, Body&& body) noexcept {
  TkOutcome<T> outcome;
  try {
    Result<T> result = body();
    if (result.ok()) {
      outcome.value = std::move(result).value();
      return outcome;
    }
    outcome.error = ToTkError(entry, result.status());
  } catch (...) {
    try {
      outcome.error = ToTkError(entry, StatusOfCurrentException());
    } catch (...) {
      outcome.error.emplace();  // out of memory while describing it: the code still goes back
      return outcome;
    }
  }
  try {
    TraceTk(outcome.error->description);
  } catch (...) {
  }
  return outcome;
}

}  // namespace signum::ctk

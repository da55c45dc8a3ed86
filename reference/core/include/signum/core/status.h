// Status and Result<T>: how every layer of Signum reports errors without exceptions.
//
// A Status carries a portable ErrorCode, a human message and, when the error was born in a
// PKCS#11 call, the CK_RV it came from; when a Windows provider decided the exact code its caller
// must see, that code too. Each ABI layer (PKCS#11 provider, KSP, CSP, HTTP API) maps Status to
// its own codes in exactly one table.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace signum {

enum class ErrorCode {
  kOk = 0,
  kInvalidArgument,  // malformed input from the caller
  kNotFound,         // unknown certificate, key, user, file
  kAlreadyExists,
  kUnauthenticated,     // no or unknown credential
  kPermissionDenied,    // a policy said no
  kResourceExhausted,   // overloaded; retry later
  kFailedPrecondition,  // the system is not in a state that allows the call
  kUnavailable,         // a dependency (server, agent, HSM) cannot be reached; retrying may help
  kDeadlineExceeded,
  kUnimplemented,
  kDataLoss,  // corruption detected (e.g. an edited audit log)
  kInternal,
};

std::string_view ErrorCodeName(ErrorCode code);

class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(ErrorCode code, std::string message, std::optional<unsigned long> ck_rv = std::nullopt)
      : code_(code), message_(std::move(message)), ck_rv_(ck_rv) {}

  static Status Ok() { return Status(); }

  bool ok() const { return code_ == ErrorCode::kOk; }
  ErrorCode code() const { return code_; }
  const std::string& message() const { return message_; }
  // The PKCS#11 return value this error came from, if it came from a PKCS#11 call.
  std::optional<unsigned long> ck_rv() const { return ck_rv_; }
  // The code a Windows provider (KSP, CSP) returns for this error, when the provider chose one
  // (an NTE_* SECURITY_STATUS or a Win32 error); kept apart from ck_rv, which names an origin.
  std::optional<long> windows_code() const { return windows_code_; }
  Status WithWindowsCode(long code) const {
    Status with_code = *this;
    with_code.windows_code_ = code;
    return with_code;
  }

  // "NOT_FOUND: unknown certificate 'ab12'".
  std::string ToString() const;

  // Prefixes the message with context, keeping code, CK_RV and Windows code: "signing: <message>".
  Status WithContext(std::string_view context) const;

 private:
  ErrorCode code_ = ErrorCode::kOk;
  std::string message_;
  std::optional<unsigned long> ck_rv_;
  std::optional<long> windows_code_;
};

inline Status InvalidArgumentError(std::string m) {
  return {ErrorCode::kInvalidArgument, std::move(m)};
}
inline Status NotFoundError(std::string m) { return {ErrorCode::kNotFound, std::move(m)}; }
inline Status AlreadyExistsError(std::string m) {
  return {ErrorCode::kAlreadyExists, std::move(m)};
}
inline Status UnauthenticatedError(std::string m) {
  return {ErrorCode::kUnauthenticated, std::move(m)};
}
inline Status PermissionDeniedError(std::string m) {
  return {ErrorCode::kPermissionDenied, std::move(m)};
}
inline Status ResourceExhaustedError(std::string m) {
  return {ErrorCode::kResourceExhausted, std::move(m)};
}
inline Status FailedPreconditionError(std::string m) {
  return {ErrorCode::kFailedPrecondition, std::move(m)};
}
inline Status UnavailableError(std::string m) { return {ErrorCode::kUnavailable, std::move(m)}; }
inline Status DeadlineExceededError(std::string m) {
  return {ErrorCode::kDeadlineExceeded, std::move(m)};
}
inline Status UnimplementedError(std::string m) {
  return {ErrorCode::kUnimplemented, std::move(m)};
}
inline Status DataLossError(std::string m) { return {ErrorCode::kDataLoss, std::move(m)}; }
inline Status InternalError(std::string m) { return {ErrorCode::kInternal, std::move(m)}; }

// Either a value or a non-OK Status.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : data_(std::move(value)) {}        // NOLINT: implicit on purpose, like StatusOr
  Result(Status status) : data_(std::move(status)) {  // NOLINT
    if (std::get<Status>(data_).ok())
      data_ = Status(ErrorCode::kInternal, "Result built from OK status");
  }

  bool ok() const { return std::holds_alternative<T>(data_); }
  Status status() const { return ok() ? Status::Ok() : std::get<Status>(data_); }

  T& value() & { return std::get<T>(data_); }
  const T& value() const& { return std::get<T>(data_); }
  T&& value() && { return std::get<T>(std::move(data_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T&& operator*() && { return std::move(*this).value(); }

 private:
  std::variant<T, Status> data_;
};

}  // namespace signum

#define SIGNUM_CONCAT_INNER_(a, b) a##b
#define SIGNUM_CONCAT_(a, b) SIGNUM_CONCAT_INNER_(a, b)

#define SIGNUM_RETURN_IF_ERROR(expr)                 \
  do {                                               \
    ::signum::Status signum_status_ = (expr);        \
    if (!signum_status_.ok()) return signum_status_; \
  } while (0)

#define SIGNUM_ASSIGN_OR_RETURN_IMPL_(tmp, lhs, expr) \
  auto tmp = (expr);                                  \
  if (!tmp.ok()) return tmp.status();                 \
  lhs = std::move(tmp).value()

// SIGNUM_ASSIGN_OR_RETURN(auto key, FindKey(id));
#define SIGNUM_ASSIGN_OR_RETURN(lhs, expr) \
  SIGNUM_ASSIGN_OR_RETURN_IMPL_(SIGNUM_CONCAT_(signum_result_, __LINE__), lhs, expr)

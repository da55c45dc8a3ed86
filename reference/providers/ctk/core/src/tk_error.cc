#include "signum/ctk/tk_error.h"

#include <cstdio>
#include <cstdlib>
#include <exception>
#include <fstream>
#include <new>

namespace signum::ctk {

TkErrorCode ToTkErrorCode(ErrorCode code) {
  switch (code) {
    case ErrorCode::kInvalidArgument:
    case ErrorCode::kAlreadyExists:
      return TkErrorCode::kBadParameter;
    case ErrorCode::kNotFound:
      return TkErrorCode::kObjectNotFound;
    case ErrorCode::kUnimplemented:
      return TkErrorCode::kNotImplemented;
    case ErrorCode::kUnauthenticated:
    case ErrorCode::kPermissionDenied:
      return TkErrorCode::kAuthenticationFailed;
    case ErrorCode::kUnavailable:
    case ErrorCode::kDeadlineExceeded:
    case ErrorCode::kResourceExhausted:
    case ErrorCode::kFailedPrecondition:
      return TkErrorCode::kCommunicationError;
    case ErrorCode::kOk:  // not an error; a caller that converts OK has a bug
    case ErrorCode::kDataLoss:
    case ErrorCode::kInternal:
      break;
  }
  return TkErrorCode::kCorruptedData;
}

TkError ToTkError(const char* entry, const Status& status) {
  return {ToTkErrorCode(status.code()), std::string(entry) + ": " + status.ToString()};
}

void TraceTk(const std::string& line) {
  const char* target = std::getenv("SIGNUM_CTK_TRACE");
  if (target == nullptr || *target == '\0') return;
  std::fprintf(stderr, "signum-ctk: %s\n", line.c_str());
  if (std::string(target) != "1") {
    std::ofstream out(target, std::ios::app);
    out << line << '\n';
  }
}

Status StatusOfCurrentException() noexcept {
  try {
    throw;
  } catch (const std::bad_alloc&) {
    return {ErrorCode::kResourceExhausted, "out of memory"};
  } catch (const std::exception& e) {
    return InternalError(std::string("unexpected exception: ") + e.what());
  } catch (...) {
    return InternalError("unexpected exception");
  }
}

}  // namespace signum::ctk

// SIGNUM_CNG_RECORD=FILE: the structured trace of the calls a Windows provider receives, trace
// format v1 of kind "signum-cng-trace" (docs/trace-format.md, "Windows providers (KSP/CSP)"), the
// one encoder of signumksp.dll and signumcsp.dll; signum-cng-replay reads it.
//
// Every entry point describes its call in a CallRecord: the arguments before the body runs, the
// outputs after it, through ReturnAtAbiBoundary's recording overload below. The same description
// makes the human-readable SIGNUM_CNG_TRACE line of a failure ("SignHash(hKey=7, ...): NTE_PERM
// (0x80090010): reason"). The variables are read at every call, so a process can start, stop or
// move recording while it runs; with neither set, a call costs two environment lookups and
// describes nothing.
//
// The file is appended to (FILE_APPEND_DATA), one WriteFile per line under a per-DLL mutex, the
// header written only into an empty file; several processes and both DLLs may append to one
// file. Secrets (PINs of CSP containers, SafeNet-style "[{{PIN}}]=" prefixes) are never written.
#pragma once

#include <windows.h>
// SECURITY_STATUS comes from ncrypt.h (after windows.h).
#include <ncrypt.h>

#include <nlohmann/json.hpp>
#include <string>
#include <utility>

#include "signum/cng/nte_status.h"
#include "signum/core/status.h"
#include "signum/core/trace_file.h"

namespace signum::cng {

// The envelope and its version are core's (trace_file.h), shared with the PKCS#11 trace.
inline constexpr int kCngTraceVersion = trace_file::kVersion;
inline constexpr char kCngTraceKind[] = "signum-cng-trace";

// How an entry point reports its result: the KSP returns a SECURITY_STATUS; the CSP returns BOOL
// with the code in SetLastError.
enum class ReturnConvention { kSecurityStatus, kBoolAndLastError };

// One entry-point call's record, built while the call runs.
class CallRecord {
 public:
  // Reads SIGNUM_CNG_RECORD and SIGNUM_CNG_TRACE; with neither the record is inactive and
  // describes nothing.
  CallRecord(const char* component, const char* fn, ReturnConvention convention) noexcept;
  CallRecord(const CallRecord&) = delete;
  CallRecord& operator=(const CallRecord&) = delete;

  // The call is to be described (recorded, or traced should it fail).
  bool active() const { return active_; }
  // Its line goes to SIGNUM_CNG_RECORD's file.
  bool recording() const { return !path_.empty(); }
  const char* component() const { return component_; }
  const char* fn() const { return fn_; }
  nlohmann::json& args() { return args_; }
  nlohmann::json& out() { return out_; }

  // "fn(name=value, ...)" from the arguments described, long values shortened: the text trace's
  // name of the call.
  std::string Signature() const;

  // Stamps the record with the call's result (and the reason of a failure) and appends its line
  // when recording; recording never fails the call, so nothing escapes.
  void Finish(SECURITY_STATUS code, const Status& status) noexcept;

 private:
  const char* component_;
  const char* fn_;
  ReturnConvention convention_;
  bool active_;
  std::string path_;
  unsigned long long t_start_ = 0;
  // null until described (no allocation for a call nobody records); written as {} then.
  nlohmann::json args_;
  nlohmann::json out_;
};

// ---- How values are written (the same for both providers) ----------------------------------
// Bytes as lowercase hex; a NULL pointer as null.
nlohmann::json HexValue(const void* data, size_t size);
// UTF-16 / ANSI strings as UTF-8 text; NULL as null.
nlohmann::json TextValue(LPCWSTR text);
nlohmann::json TextValue(LPCSTR text);
// An output buffer the caller passed (or not): {"buffer": bool}; its bytes go to "out".
nlohmann::json BufferValue(const void* buffer);
// A buffer the provider hands out and the caller gives back (FreeBuffer): its address as a
// number, like a handle (the replayer maps it to the buffer its replayed call got); 0 for NULL.
nlohmann::json AddressValue(const void* address);
// A secret: {"redacted": true, "length": N}.
nlohmann::json RedactedValue(size_t length);
// A code with its name: {"name": "NTE_PERM", "value": 2148073488} (the value as a DWORD).
nlohmann::json CodeValue(SECURITY_STATUS code);
// The padding selector and structure of a KSP signature call, by dwFlags: null without one,
// {"type": "pkcs1", "pszAlgId": "SHA256" or null} (BCRYPT_PKCS1_PADDING_INFO),
// {"type": "pss", "pszAlgId": ..., "cbSalt": N} (BCRYPT_PSS_PADDING_INFO), else
// {"type": "flags 0x..."} (none, OAEP: not read).
nlohmann::json PaddingInfoValue(DWORD flags, const void* padding_info);

// What a call with the size-query convention wrote: the length (length_name) when it succeeded or
// said the buffer was too small (too_small: NTE_BUFFER_TOO_SMALL for the KSP, ERROR_MORE_DATA for
// the CSP), the bytes (buffer_name, hex) when it succeeded into a buffer.
void DescribeSizedOutput(nlohmann::json& out, SECURITY_STATUS code, SECURITY_STATUS too_small,
                         const char* buffer_name, const void* buffer, const char* length_name,
                         const DWORD* length);

// body's code, after the SIGNUM_CNG_TRACE line of a failure (ReportAtAbiBoundary), with the call
// recorded: outputs(call.out(), code) describes what the call wrote, only when recording. (The
// outputs come first so that the body, the long part, is the last argument.)
template <typename Outputs, typename Body>
SECURITY_STATUS ReturnAtAbiBoundary(CallRecord& call, Outputs&& outputs, Body&& body) noexcept {
  Status status;
  try {
    status = body();
  } catch (...) {
    status = StatusOfCurrentException();
  }
  std::string signature;
  if (call.active() && !status.ok()) {
    try {
      signature = call.Signature();
    } catch (...) {
      // Out of memory: the failure is traced by the entry point's name alone.
    }
  }
  const SECURITY_STATUS code = ReportAtAbiBoundary(
      call.component(), signature.empty() ? call.fn() : signature.c_str(), status);
  if (call.recording()) {
    try {
      outputs(call.out(), code);
    } catch (...) {
      // Out of memory while describing: the line goes out without its outputs.
    }
    call.Finish(code, status);
  }
  return code;
}

// For calls that write nothing worth recording besides their result.
inline void NoOutputs(nlohmann::json&, SECURITY_STATUS) {}

}  // namespace signum::cng

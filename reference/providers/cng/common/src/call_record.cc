#include "signum/cng/call_record.h"

#include <bcrypt.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <mutex>

#include "signum/core/encoding.h"
#include "signum/provider/wide_string.h"

namespace signum::cng {
namespace {

constexpr char kRecordVariable[] = "SIGNUM_CNG_RECORD";

std::string RecordPath() {
  char buffer[MAX_PATH * 2];
  const DWORD length = GetEnvironmentVariableA(kRecordVariable, buffer, sizeof buffer);
  if (length == 0 || length >= sizeof buffer) return {};
  return std::string(buffer, length);
}

// QueryPerformanceCounter in ns: monotonic, comparable within one process (t_start, t_end, t).
unsigned long long NowNs() {
  static const unsigned long long frequency = [] {
    LARGE_INTEGER f;
    QueryPerformanceFrequency(&f);
    return static_cast<unsigned long long>(f.QuadPart);
  }();
  LARGE_INTEGER counter;
  QueryPerformanceCounter(&counter);
  const auto ticks = static_cast<unsigned long long>(counter.QuadPart);
  return ticks / frequency * 1000000000ULL + ticks % frequency * 1000000000ULL / frequency;
}

// This DLL's own path (the common library is linked into each provider DLL).
std::string ThisModulePath() {
  HMODULE self = nullptr;
  wchar_t path[MAX_PATH] = {};
  if (!GetModuleHandleExW(
          GET_MODULE_HANDLE_EX_FLAG_FROM_ADDRESS | GET_MODULE_HANDLE_EX_FLAG_UNCHANGED_REFCOUNT,
          reinterpret_cast<LPCWSTR>(&ThisModulePath), &self) ||
      GetModuleFileNameW(self, path, MAX_PATH) == 0) {
    return "(unknown)";
  }
  return provider::Utf8FromWide(path);
}

std::string FileName(const std::string& path) {
  const size_t slash = path.find_last_of("\\/");
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

// The trace file of this DLL in this process: one open handle, the lines counted.
class TraceFile {
 public:
  static TraceFile& Instance() {
    static TraceFile* const file = new TraceFile();  // never destroyed: calls may come late
    return *file;
  }

  // Recording stopped (the variable unset): the file is let go, so that it can be moved or
  // deleted. One atomic load when nothing is open.
  void CloseIfOpen() {
    if (!open_.load(std::memory_order_relaxed)) return;
    std::lock_guard lock(mu_);
    if (handle_ != INVALID_HANDLE_VALUE) CloseHandle(handle_);
    handle_ = INVALID_HANDLE_VALUE;
    path_.clear();
    open_ = false;
  }

  void Append(const std::string& path, nlohmann::json& line) {
    std::lock_guard lock(mu_);
    if (path != path_) Open(path);
    if (handle_ == INVALID_HANDLE_VALUE) return;
    line["seq"] = ++seq_;
    WriteLine(line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
  }

 private:
  void Open(const std::string& path) {
    if (handle_ != INVALID_HANDLE_VALUE) CloseHandle(handle_);
    path_ = path;
    handle_ = CreateFileA(path.c_str(), FILE_APPEND_DATA,
                          FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE, nullptr,
                          OPEN_ALWAYS, FILE_ATTRIBUTE_NORMAL, nullptr);
    open_ = handle_ != INVALID_HANDLE_VALUE;
    if (handle_ == INVALID_HANDLE_VALUE) {
      // Once per path: the calls themselves never fail because of recording.
      Trace("record", "cannot open " + path + " (" + kRecordVariable + "): error " +
                          std::to_string(GetLastError()));
      return;
    }
    // The header goes only into an empty file; the lock keeps two processes that open it at the
    // same time from both writing one.
    OVERLAPPED whole{};
    LockFileEx(handle_, LOCKFILE_EXCLUSIVE_LOCK, 0, MAXDWORD, MAXDWORD, &whole);
    LARGE_INTEGER size{};
    if (GetFileSizeEx(handle_, &size) && size.QuadPart == 0) {
      const std::string module = ThisModulePath();
      const nlohmann::json header = {{"v", kCngTraceVersion},        {"kind", kCngTraceKind},
                                     {"provider", module},           {"recorder", FileName(module)},
                                     {"pid", GetCurrentProcessId()}, {"t", NowNs()}};
      WriteLine(header.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
    }
    UnlockFileEx(handle_, 0, MAXDWORD, MAXDWORD, &whole);
  }

  // One WriteFile per line: appends from other threads and processes never interleave with it.
  void WriteLine(std::string text) {
    text += '\n';
    DWORD written = 0;
    WriteFile(handle_, text.data(), static_cast<DWORD>(text.size()), &written, nullptr);
  }

  std::mutex mu_;
  std::atomic<bool> open_{false};
  std::string path_;
  HANDLE handle_ = INVALID_HANDLE_VALUE;
  unsigned long long seq_ = 0;
};

}  // namespace

CallRecord::CallRecord(const char* component, const char* fn, ReturnConvention convention) noexcept
    : component_(component), fn_(fn), convention_(convention), active_(false) {
  // Constructed outside the entry point's try: nothing may escape into the caller.
  try {
    path_ = RecordPath();
    // As Trace (nte_status.cc) reads it.
    const char* trace = std::getenv("SIGNUM_CNG_TRACE");
    active_ = !path_.empty() || (trace != nullptr && *trace != '\0');
    if (path_.empty()) TraceFile::Instance().CloseIfOpen();
    if (!path_.empty()) t_start_ = NowNs();
  } catch (...) {
    path_.clear();
    active_ = false;
  }
}

std::string CallRecord::Signature() const {
  constexpr size_t kShown = 40;  // hashes and certificates are in the record, not the text trace
  std::string text = std::string(fn_) + "(";
  bool first = true;
  for (const auto& [name, value] : args_.items()) {
    std::string shown = value.is_string() ? value.get<std::string>() : value.dump();
    if (shown.size() > kShown) shown = shown.substr(0, kShown) + "...";
    text += (first ? "" : ", ") + name + "=" + shown;
    first = false;
  }
  return text + ")";
}

void CallRecord::Finish(SECURITY_STATUS code, const Status& status) noexcept {
  if (path_.empty()) return;
  try {
    nlohmann::json rv = CodeValue(code);
    if (convention_ == ReturnConvention::kBoolAndLastError) {
      // BOOL, and GetLastError() as the provider set it when FALSE (ERROR_SUCCESS when TRUE).
      rv["returned"] = code == ERROR_SUCCESS;
    }
    nlohmann::json line = {{"v", kCngTraceVersion},
                           {"fn", fn_},
                           {"pid", GetCurrentProcessId()},
                           {"thread", GetCurrentThreadId()},
                           {"t_start", t_start_},
                           {"t_end", NowNs()},
                           {"args", args_.is_null() ? nlohmann::json::object() : std::move(args_)},
                           {"rv", std::move(rv)},
                           {"out", out_.is_null() ? nlohmann::json::object() : std::move(out_)}};
    if (!status.ok()) line["error"] = status.ToString();
    TraceFile::Instance().Append(path_, line);
  } catch (...) {
    // Recording must never fail the call it describes.
  }
}

nlohmann::json HexValue(const void* data, size_t size) {
  if (data == nullptr) return nullptr;
  return HexEncode(ByteView(static_cast<const uint8_t*>(data), size));
}

nlohmann::json TextValue(LPCWSTR text) {
  if (text == nullptr) return nullptr;
  return provider::Utf8FromWide(text);
}

nlohmann::json TextValue(LPCSTR text) {
  if (text == nullptr) return nullptr;
  return std::string(text);
}

nlohmann::json BufferValue(const void* buffer) { return {{"buffer", buffer != nullptr}}; }

nlohmann::json AddressValue(const void* address) {
  return static_cast<unsigned long long>(reinterpret_cast<uintptr_t>(address));
}

nlohmann::json RedactedValue(size_t length) { return {{"redacted", true}, {"length", length}}; }

nlohmann::json CodeValue(SECURITY_STATUS code) {
  return {{"name", CodeName(code)}, {"value", static_cast<DWORD>(code)}};
}

void DescribeSizedOutput(nlohmann::json& out, SECURITY_STATUS code, SECURITY_STATUS too_small,
                         const char* buffer_name, const void* buffer, const char* length_name,
                         const DWORD* length) {
  if (length == nullptr || (code != ERROR_SUCCESS && code != too_small)) return;
  out[length_name] = *length;
  if (code == ERROR_SUCCESS && buffer != nullptr) out[buffer_name] = HexValue(buffer, *length);
}

nlohmann::json PaddingInfoValue(DWORD flags, const void* padding_info) {
  if (padding_info == nullptr) return nullptr;
  constexpr DWORD kPaddings =
      BCRYPT_PAD_NONE | NCRYPT_PAD_PKCS1_FLAG | NCRYPT_PAD_OAEP_FLAG | NCRYPT_PAD_PSS_FLAG | 0x10;
  const DWORD padding = flags & kPaddings;
  if (padding == NCRYPT_PAD_PKCS1_FLAG) {
    const auto* info = static_cast<const BCRYPT_PKCS1_PADDING_INFO*>(padding_info);
    return {{"type", "pkcs1"}, {"pszAlgId", TextValue(info->pszAlgId)}};
  }
  if (padding == NCRYPT_PAD_PSS_FLAG) {
    const auto* info = static_cast<const BCRYPT_PSS_PADDING_INFO*>(padding_info);
    return {{"type", "pss"}, {"pszAlgId", TextValue(info->pszAlgId)}, {"cbSalt", info->cbSalt}};
  }
  return {{"type", "flags " + Hex(padding)}};
}

}  // namespace signum::cng

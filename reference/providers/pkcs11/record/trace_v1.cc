#include "trace_v1.h"

#include <fcntl.h>
#include <pthread.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <mutex>

#include "signum/core/algorithms.h"
#include "signum/core/pkcs11_module.h"
#include "signum/core/posix_platform.h"

namespace signum::pkcs11::trace_v1 {
namespace {

using json = nlohmann::json;

// --- The trace file ------------------------------------------------------------------------------
// Guards the descriptor and every write to it, so a line is never interleaved with another and a
// file being replaced is never written after its close. pthread_atfork keeps it usable in a child
// forked while another thread held it.
pthread_mutex_t g_file_mu = PTHREAD_MUTEX_INITIALIZER;
int g_fd = -1;                  // under g_file_mu
std::string* g_path = nullptr;  // under g_file_mu; leaked on purpose, like the module's state
std::atomic<bool> g_open{false};
std::atomic<uint64_t> g_seq{0};

// Holds g_file_mu for a scope (released on an exception too).
class FileLock {
 public:
  FileLock() { pthread_mutex_lock(&g_file_mu); }
  ~FileLock() { pthread_mutex_unlock(&g_file_mu); }
  FileLock(const FileLock&) = delete;
  FileLock& operator=(const FileLock&) = delete;
};

void AtForkPrepare() { pthread_mutex_lock(&g_file_mu); }
void AtForkRelease() { pthread_mutex_unlock(&g_file_mu); }

void WriteAll(int fd, const std::string& text) {
  const char* p = text.data();
  size_t left = text.size();
  while (left > 0) {
    const ssize_t n = ::write(fd, p, left);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    p += n;
    left -= static_cast<size_t>(n);
  }
}

std::string Line(const json& j) {
  std::string line = j.dump(-1, ' ', false, json::error_handler_t::replace);
  line.push_back('\n');
  return line;
}

// The header goes only into an empty file: processes appending to one trace write one header.
// flock orders two processes that open the same new file at once.
void WriteHeaderIfEmpty(int fd, const json& header) {
  const std::string line = Line(header);
  ::flock(fd, LOCK_EX);
  struct stat st {};
  if (::fstat(fd, &st) == 0 && st.st_size == 0) WriteAll(fd, line);
  ::flock(fd, LOCK_UN);
}

// Whether fd is still the file at path (not one since removed or replaced, e.g. by a test or a
// log rotation between two initialisations).
bool IsFileAt(int fd, const std::string& path) {
  struct stat open_file {
  }, named_file{};
  return fd >= 0 && ::fstat(fd, &open_file) == 0 && ::stat(path.c_str(), &named_file) == 0 &&
         open_file.st_dev == named_file.st_dev && open_file.st_ino == named_file.st_ino;
}

uint64_t MonotonicNs() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<uint64_t>(ts.tv_nsec);
}

std::string Hex(const void* data, size_t size) {
  static const char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(size * 2);
  const auto* p = static_cast<const unsigned char*>(data);
  for (size_t i = 0; i < size; ++i) {
    out.push_back(kDigits[p[i] >> 4]);
    out.push_back(kDigits[p[i] & 0xf]);
  }
  return out;
}

std::string Padded(const CK_UTF8CHAR* field, size_t width) { return TrimPadded(field, width); }

json Redacted(CK_ULONG length) { return {{"redacted", true}, {"length", length}}; }

// Attribute types whose values are key material: never written.
bool AlwaysSecret(CK_ATTRIBUTE_TYPE t) {
  switch (t) {
    case CKA_PRIVATE_EXPONENT:
    case CKA_PRIME_1:
    case CKA_PRIME_2:
    case CKA_EXPONENT_1:
    case CKA_EXPONENT_2:
    case CKA_COEFFICIENT:
      return true;
    default:
      return false;
  }
}

// CKA_VALUE is secret in private and secret key objects (EC/DSA private values, AES keys...).
bool TemplateHoldsKeyMaterial(const CK_ATTRIBUTE* p, CK_ULONG count) {
  for (CK_ULONG i = 0; i < count; ++i) {
    if (p[i].type == CKA_CLASS && p[i].pValue != nullptr &&
        p[i].ulValueLen == sizeof(CK_OBJECT_CLASS)) {
      CK_OBJECT_CLASS c;
      std::memcpy(&c, p[i].pValue, sizeof c);
      if (c == CKO_PRIVATE_KEY || c == CKO_SECRET_KEY) return true;
    }
  }
  return false;
}

json Length(CK_ULONG len) {
  if (len == CK_UNAVAILABLE_INFORMATION) return -1;
  return len;
}

json Attributes(const CK_ATTRIBUTE* p, CK_ULONG count, bool with_values) {
  json a = json::array();
  if (p == nullptr) return nullptr;
  const bool key_material = TemplateHoldsKeyMaterial(p, count);
  for (CK_ULONG i = 0; i < count; ++i) {
    json e = {{"type", p[i].type},
              {"name", AttributeName(p[i].type)},
              {"length", Length(p[i].ulValueLen)}};
    if (!with_values) {
      e["buffer"] = p[i].pValue != nullptr;
    } else if (p[i].pValue != nullptr && p[i].ulValueLen != CK_UNAVAILABLE_INFORMATION) {
      if (AlwaysSecret(p[i].type) || (key_material && p[i].type == CKA_VALUE)) {
        e["value"] = Redacted(p[i].ulValueLen);
      } else {
        e["value"] = Hex(p[i].pValue, p[i].ulValueLen);
      }
    }
    a.push_back(std::move(e));
  }
  return a;
}

json Version(const CK_VERSION& v) { return {{"major", v.major}, {"minor", v.minor}}; }

}  // namespace

// --- Records -------------------------------------------------------------------------------------
Call::Call(const char* function) : function_(function), t_start_(MonotonicNs()) {}

json Call::Finish(CK_RV rv) const {
  const uint64_t t_end = MonotonicNs();
  json j = {{"v", kVersion},
            {"seq", g_seq.fetch_add(1) + 1},
            {"fn", function_},
            {"pid", static_cast<long>(getpid())},
            {"thread", posix::CurrentThreadId()},
            {"t_start", t_start_},
            {"t_end", t_end},
            {"args", args_},
            {"rv", {{"name", CkRvName(rv)}, {"value", rv}}},
            {"out", out_}};
  if (!error_.empty()) j["error"] = error_;
  if (!note_.empty()) j["note"] = note_;
  return j;
}

json Header(std::string_view module, std::string_view recorder, const char* module_interface) {
  json header = {{"v", kVersion},
                 {"kind", "signum-pkcs11-trace"},
                 {"module", module},
                 {"pid", static_cast<long>(getpid())},
                 {"recorder", recorder}};
  if (module_interface != nullptr) header["module_interface"] = module_interface;
  header["t"] = MonotonicNs();
  return header;
}

// --- The trace file ------------------------------------------------------------------------------
bool UseFile(const std::string& path, const json& header, std::string* why) {
  static std::once_flag at_fork_once;
  std::call_once(at_fork_once,
                 [] { pthread_atfork(&AtForkPrepare, &AtForkRelease, &AtForkRelease); });
  FileLock lock;
  if (g_path == nullptr) g_path = new std::string();
  if (path == *g_path && (path.empty() || IsFileAt(g_fd, path))) {
    return true;
  }
  int fd = -1;
  bool opened = true;
  if (!path.empty()) {
    fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (fd < 0) {
      opened = false;
      if (why != nullptr) *why = "cannot open " + path + ": " + std::strerror(errno);
    } else {
      WriteHeaderIfEmpty(fd, header);
    }
  }
  if (g_fd >= 0) ::close(g_fd);
  g_fd = fd;
  *g_path = fd >= 0 ? path : std::string();
  g_open.store(fd >= 0, std::memory_order_release);
  return opened;
}

bool FileOpen() { return g_open.load(std::memory_order_relaxed); }

void Write(const json& line) {
  std::string text;
  try {
    text = Line(line);
  } catch (...) {
    return;
  }
  FileLock lock;
  if (g_fd >= 0) WriteAll(g_fd, text);
}

void Emit(const Call& call, CK_RV rv) noexcept {
  Quietly([&] { Write(call.Finish(rv)); });
}

// --- One In_/Out_ pair per argument KIND of functions.h
// -------------------------------------------
void In_HANDLE(Call& c, const char* n, CK_ULONG v) { c.args()[n] = v; }
void In_SLOT(Call& c, const char* n, CK_SLOT_ID v) { c.args()[n] = v; }
void In_FLAGS(Call& c, const char* n, CK_FLAGS v) { c.args()[n] = v; }
void In_USER(Call& c, const char* n, CK_USER_TYPE v) { c.args()[n] = v; }
void In_BOOL(Call& c, const char* n, CK_BBOOL v) { c.args()[n] = v != CK_FALSE; }
void In_MECHANISM_TYPE(Call& c, const char* n, CK_MECHANISM_TYPE v) {
  c.args()[n] = {{"type", v}, {"name", MechanismName(v)}};
}
// Pointers are process-local: only whether one was passed.
void In_PTR(Call& c, const char* n, const void* v) { c.args()[n] = {{"null", v == nullptr}}; }
void In_PTR(Call& c, const char* n, CK_NOTIFY v) { c.args()[n] = {{"null", v == nullptr}}; }
void In_INIT_ARGS(Call& c, const char* n, CK_VOID_PTR v) {
  if (v == nullptr) {
    c.args()[n] = nullptr;
    return;
  }
  const auto* a = static_cast<const CK_C_INITIALIZE_ARGS*>(v);
  c.args()[n] = {{"flags", a->flags}, {"mutex_callbacks", a->CreateMutex != nullptr}};
}
namespace {
// CKM_RSA_PKCS_PSS and the hashed PSS mechanisms of core's hash table.
bool IsPssMechanism(CK_MECHANISM_TYPE m) {
  if (m == CKM_RSA_PKCS_PSS) return true;
  for (const HashInfo& h : AllHashes())
    if (m == h.ckm_rsa_pss) return true;
  return false;
}
}  // namespace
void In_MECHANISM(Call& c, const char* n, CK_MECHANISM_PTR v) {
  if (v == nullptr) {
    c.args()[n] = nullptr;
    return;
  }
  json m = {{"type", v->mechanism},
            {"name", MechanismName(v->mechanism)},
            {"parameter", v->pParameter != nullptr ? json(Hex(v->pParameter, v->ulParameterLen))
                                                   : json(nullptr)},
            {"parameter_length", v->ulParameterLen}};
  if (v->pParameter != nullptr && v->ulParameterLen == sizeof(CK_RSA_PKCS_PSS_PARAMS) &&
      IsPssMechanism(v->mechanism)) {
    CK_RSA_PKCS_PSS_PARAMS pss;
    std::memcpy(&pss, v->pParameter, sizeof pss);
    m["pss"] = {{"hashAlg", MechanismName(pss.hashAlg)}, {"mgf", pss.mgf}, {"sLen", pss.sLen}};
  }
  c.args()[n] = std::move(m);
}
void In_VERSION(Call& c, const char* n, CK_VERSION_PTR v) {
  c.args()[n] = v == nullptr ? json(nullptr) : Version(*v);
}
void In_INTERFACE_NAME(Call& c, const char* n, CK_UTF8CHAR_PTR v) {
  c.args()[n] = v == nullptr ? json(nullptr) : json(reinterpret_cast<const char*>(v));
}
void In_LABEL(Call& c, const char* n, CK_UTF8CHAR_PTR v) {
  c.args()[n] = v == nullptr ? json(nullptr) : json(Padded(v, 32));
}
void In_BYTES(Call& c, const char* n, const void* p, const char* ln, CK_ULONG len) {
  c.args()[n] = p == nullptr ? json(nullptr) : json(Hex(p, len));
  c.args()[ln] = len;
}
void In_SECRET(Call& c, const char* n, CK_UTF8CHAR_PTR p, const char* ln, CK_ULONG len) {
  c.args()[n] = p == nullptr ? json(nullptr) : Redacted(len);
  c.args()[ln] = len;
}
void In_TEMPLATE(Call& c, const char* n, CK_ATTRIBUTE_PTR p, const char* cn, CK_ULONG count) {
  c.args()[n] = Attributes(p, count, true);
  c.args()[cn] = count;
}
void In_OUT_TEMPLATE(Call& c, const char* n, CK_ATTRIBUTE_PTR p, const char* cn, CK_ULONG count) {
  c.args()[n] = Attributes(p, count, false);
  c.args()[cn] = count;
}
void Out_OUT_TEMPLATE(Call& c, CK_RV rv, const char* n, CK_ATTRIBUTE_PTR p, const char*,
                      CK_ULONG count) {
  if (p == nullptr || (rv != CKR_OK && rv != CKR_ATTRIBUTE_SENSITIVE &&
                       rv != CKR_ATTRIBUTE_TYPE_INVALID && rv != CKR_BUFFER_TOO_SMALL)) {
    return;
  }
  c.out()[n] = Attributes(p, count, true);
}
void In_OUT_BYTES(Call& c, const char* n, CK_BYTE_PTR p, const char* ln, CK_ULONG_PTR len) {
  c.args()[n] = {{"buffer", p != nullptr}};
  c.args()[ln] = len == nullptr ? json(nullptr) : json(*len);
}
void Out_OUT_BYTES(Call& c, CK_RV rv, const char* n, CK_BYTE_PTR p, const char* ln,
                   CK_ULONG_PTR len) {
  if (len == nullptr || (rv != CKR_OK && rv != CKR_BUFFER_TOO_SMALL)) return;
  c.out()[ln] = *len;
  if (rv == CKR_OK && p != nullptr) c.out()[n] = Hex(p, *len);
}
void In_OUT_RANDOM(Call& c, const char* n, CK_BYTE_PTR p, const char* ln, CK_ULONG len) {
  c.args()[n] = {{"buffer", p != nullptr}};
  c.args()[ln] = len;
}
void Out_OUT_RANDOM(Call& c, CK_RV rv, const char* n, CK_BYTE_PTR p, const char*, CK_ULONG len) {
  if (rv == CKR_OK && p != nullptr) c.out()[n] = Hex(p, len);
}
void Out_OUT_ULONG(Call& c, CK_RV rv, const char* n, CK_ULONG_PTR v) {
  if (rv == CKR_OK && v != nullptr) c.out()[n] = *v;
}
void Out_OUT_HANDLE(Call& c, CK_RV rv, const char* n, CK_ULONG_PTR v) {
  if (rv == CKR_OK && v != nullptr) c.out()[n] = *v;
}
void Out_OUT_SLOT(Call& c, CK_RV rv, const char* n, CK_SLOT_ID_PTR v) {
  if (rv == CKR_OK && v != nullptr) c.out()[n] = *v;
}
void Out_OUT_INFO(Call& c, CK_RV rv, const char* n, CK_INFO_PTR v) {
  if (rv != CKR_OK || v == nullptr) return;
  c.out()[n] = {{"cryptokiVersion", Version(v->cryptokiVersion)},
                {"manufacturerID", Padded(v->manufacturerID, sizeof v->manufacturerID)},
                {"flags", v->flags},
                {"libraryDescription", Padded(v->libraryDescription, sizeof v->libraryDescription)},
                {"libraryVersion", Version(v->libraryVersion)}};
}
void Out_OUT_INFO(Call& c, CK_RV rv, const char* n, CK_SLOT_INFO_PTR v) {
  if (rv != CKR_OK || v == nullptr) return;
  c.out()[n] = {{"slotDescription", Padded(v->slotDescription, sizeof v->slotDescription)},
                {"manufacturerID", Padded(v->manufacturerID, sizeof v->manufacturerID)},
                {"flags", v->flags},
                {"hardwareVersion", Version(v->hardwareVersion)},
                {"firmwareVersion", Version(v->firmwareVersion)}};
}
void Out_OUT_INFO(Call& c, CK_RV rv, const char* n, CK_TOKEN_INFO_PTR v) {
  if (rv != CKR_OK || v == nullptr) return;
  c.out()[n] = {{"label", Padded(v->label, sizeof v->label)},
                {"manufacturerID", Padded(v->manufacturerID, sizeof v->manufacturerID)},
                {"model", Padded(v->model, sizeof v->model)},
                {"serialNumber", Padded(v->serialNumber, sizeof v->serialNumber)},
                {"flags", v->flags},
                {"ulMaxSessionCount", v->ulMaxSessionCount},
                {"ulSessionCount", v->ulSessionCount},
                {"ulMaxRwSessionCount", v->ulMaxRwSessionCount},
                {"ulRwSessionCount", v->ulRwSessionCount},
                {"ulMaxPinLen", v->ulMaxPinLen},
                {"ulMinPinLen", v->ulMinPinLen},
                {"ulTotalPublicMemory", v->ulTotalPublicMemory},
                {"ulFreePublicMemory", v->ulFreePublicMemory},
                {"ulTotalPrivateMemory", v->ulTotalPrivateMemory},
                {"ulFreePrivateMemory", v->ulFreePrivateMemory},
                {"hardwareVersion", Version(v->hardwareVersion)},
                {"firmwareVersion", Version(v->firmwareVersion)},
                {"utcTime", Padded(v->utcTime, sizeof v->utcTime)}};
}
void Out_OUT_INFO(Call& c, CK_RV rv, const char* n, CK_SESSION_INFO_PTR v) {
  if (rv != CKR_OK || v == nullptr) return;
  c.out()[n] = {{"slotID", v->slotID},
                {"state", v->state},
                {"flags", v->flags},
                {"ulDeviceError", v->ulDeviceError}};
}
void Out_OUT_INFO(Call& c, CK_RV rv, const char* n, CK_MECHANISM_INFO_PTR v) {
  if (rv != CKR_OK || v == nullptr) return;
  c.out()[n] = {
      {"ulMinKeySize", v->ulMinKeySize}, {"ulMaxKeySize", v->ulMaxKeySize}, {"flags", v->flags}};
}
void Out_OUT_FUNCTION_LIST(Call& c, CK_RV rv, const char* n, CK_FUNCTION_LIST_PTR_PTR v) {
  if (rv == CKR_OK && v != nullptr && *v != nullptr)
    c.out()[n] = {{"version", Version((*v)->version)}};
}
namespace {
json Interface(const CK_INTERFACE& i) {
  return {
      {"name", i.pInterfaceName != nullptr ? json(reinterpret_cast<const char*>(i.pInterfaceName))
                                           : json(nullptr)},
      {"version", Version(static_cast<const CK_FUNCTION_LIST*>(i.pFunctionList)->version)},
      {"flags", i.flags}};
}
}  // namespace
void Out_OUT_INTERFACE(Call& c, CK_RV rv, const char* n, CK_INTERFACE_PTR_PTR v) {
  if (rv == CKR_OK && v != nullptr && *v != nullptr) c.out()[n] = Interface(**v);
}
namespace {
template <typename T>
void InList(Call& c, const char* n, const T* p, const char* cn, CK_ULONG_PTR count) {
  c.args()[n] = {{"buffer", p != nullptr}};
  c.args()[cn] = count == nullptr ? json(nullptr) : json(*count);
}
}  // namespace
void In_OUT_SLOTS(Call& c, const char* n, CK_SLOT_ID_PTR p, const char* cn, CK_ULONG_PTR count) {
  InList(c, n, p, cn, count);
}
void Out_OUT_SLOTS(Call& c, CK_RV rv, const char* n, CK_SLOT_ID_PTR p, const char* cn,
                   CK_ULONG_PTR count) {
  if (count == nullptr || (rv != CKR_OK && rv != CKR_BUFFER_TOO_SMALL)) return;
  c.out()[cn] = *count;
  if (rv != CKR_OK || p == nullptr) return;
  json a = json::array();
  for (CK_ULONG i = 0; i < *count; ++i) a.push_back(p[i]);
  c.out()[n] = std::move(a);
}
void In_OUT_MECHANISMS(Call& c, const char* n, CK_MECHANISM_TYPE_PTR p, const char* cn,
                       CK_ULONG_PTR count) {
  InList(c, n, p, cn, count);
}
void Out_OUT_MECHANISMS(Call& c, CK_RV rv, const char* n, CK_MECHANISM_TYPE_PTR p, const char* cn,
                        CK_ULONG_PTR count) {
  if (count == nullptr || (rv != CKR_OK && rv != CKR_BUFFER_TOO_SMALL)) return;
  c.out()[cn] = *count;
  if (rv != CKR_OK || p == nullptr) return;
  json a = json::array();
  for (CK_ULONG i = 0; i < *count; ++i)
    a.push_back({{"type", p[i]}, {"name", MechanismName(p[i])}});
  c.out()[n] = std::move(a);
}
void In_OUT_INTERFACES(Call& c, const char* n, CK_INTERFACE_PTR p, const char* cn,
                       CK_ULONG_PTR count) {
  InList(c, n, p, cn, count);
}
void Out_OUT_INTERFACES(Call& c, CK_RV rv, const char* n, CK_INTERFACE_PTR p, const char* cn,
                        CK_ULONG_PTR count) {
  if (count == nullptr || (rv != CKR_OK && rv != CKR_BUFFER_TOO_SMALL)) return;
  c.out()[cn] = *count;
  if (rv != CKR_OK || p == nullptr) return;
  json a = json::array();
  for (CK_ULONG i = 0; i < *count; ++i) a.push_back(Interface(p[i]));
  c.out()[n] = std::move(a);
}
void In_OUT_HANDLES(Call& c, const char* n, CK_OBJECT_HANDLE_PTR p, const char* mn, CK_ULONG max,
                    const char*, CK_ULONG_PTR) {
  c.args()[n] = {{"buffer", p != nullptr}};
  c.args()[mn] = max;
}
void Out_OUT_HANDLES(Call& c, CK_RV rv, const char* n, CK_OBJECT_HANDLE_PTR p, const char*,
                     CK_ULONG, const char* cn, CK_ULONG_PTR count) {
  if (rv != CKR_OK || count == nullptr) return;
  c.out()[cn] = *count;
  if (p == nullptr) return;
  json a = json::array();
  for (CK_ULONG i = 0; i < *count; ++i) a.push_back(p[i]);
  c.out()[n] = std::move(a);
}
}  // namespace signum::pkcs11::trace_v1

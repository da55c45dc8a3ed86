// libsignum-pkcs11-recorder.so: wraps the PKCS#11 module named by SIGNUM_RECORD_MODULE and appends
// every call, as trace format v1 (docs/trace-format.md), to SIGNUM_RECORD_FILE.
//
// The wrappers are generated from the provider's call table (../src/functions.h): each argument is
// recorded by its KIND (one In_/Out_ pair per KIND below), so every function of CK_FUNCTION_LIST
// (2.40) and CK_FUNCTION_LIST_3_0 is recorded with its arguments, return value and outputs. Only
// C_GetFunctionList, C_GetInterfaceList and C_GetInterface are written by hand: they hand out the
// recorder's own lists. PINs (KIND SECRET) and private/secret key components in attribute
// templates are written as {"redacted": true, "length": N}.
//
// Each record is one write(2) on an O_APPEND descriptor under a mutex; pthread_atfork keeps the
// mutex usable in a forked child, whose records carry its own pid.
#include <dlfcn.h>
#include <fcntl.h>
#include <pthread.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>

#include "functions.h"
#include "signum/core/algorithms.h"
#include "signum/core/pkcs11_module.h"

namespace signum::pkcs11::recorder {
namespace {

using json = nlohmann::json;

constexpr int kTraceVersion = 1;

// --- State -------------------------------------------------------------------------------------
pthread_mutex_t g_write_mu = PTHREAD_MUTEX_INITIALIZER;
std::once_flag g_load_once;
CK_RV g_load_rv = CKR_GENERAL_ERROR;
void* g_handle = nullptr;
// The real module's functions; the 3.0 members stay NULL for a 2.40-only module.
CK_FUNCTION_LIST_3_0 g_real{};
bool g_real_has_3_0 = false;
int g_fd = -1;
std::atomic<uint64_t> g_seq{0};

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

void WriteLine(const json& j) {
  std::string line;
  try {
    line = j.dump(-1, ' ', false, json::error_handler_t::replace);
  } catch (...) {
    return;
  }
  line.push_back('\n');
  pthread_mutex_lock(&g_write_mu);
  if (g_fd >= 0) {
    const char* p = line.data();
    size_t left = line.size();
    while (left > 0) {
      const ssize_t n = ::write(g_fd, p, left);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;
      p += n;
      left -= static_cast<size_t>(n);
    }
  }
  pthread_mutex_unlock(&g_write_mu);
}

void AtForkPrepare() { pthread_mutex_lock(&g_write_mu); }
void AtForkParent() { pthread_mutex_unlock(&g_write_mu); }
void AtForkChild() { pthread_mutex_unlock(&g_write_mu); }

void Load() {
  const char* module = std::getenv("SIGNUM_RECORD_MODULE");
  const char* file = std::getenv("SIGNUM_RECORD_FILE");
  if (module == nullptr || *module == '\0') {
    std::fprintf(stderr, "libsignum-pkcs11-recorder: SIGNUM_RECORD_MODULE is not set (the path of "
                         "the PKCS#11 module to record)\n");
    return;
  }
  if (file == nullptr || *file == '\0') {
    std::fprintf(stderr, "libsignum-pkcs11-recorder: SIGNUM_RECORD_FILE is not set (where the "
                         "trace is written)\n");
    return;
  }
  g_fd = ::open(file, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (g_fd < 0) {
    std::fprintf(stderr, "libsignum-pkcs11-recorder: cannot open %s: %s\n", file,
                 std::strerror(errno));
    return;
  }
  g_handle = dlopen(module, RTLD_NOW | RTLD_LOCAL);
  if (g_handle == nullptr) {
    std::fprintf(stderr, "libsignum-pkcs11-recorder: cannot load %s: %s\n", module, dlerror());
    return;
  }
  auto get_interface =
      reinterpret_cast<CK_C_GetInterface>(dlsym(g_handle, "C_GetInterface"));
  if (get_interface != nullptr) {
    CK_INTERFACE_PTR iface = nullptr;
    CK_VERSION v30{3, 0};
    CK_UTF8CHAR name[] = "PKCS 11";
    if (get_interface(name, &v30, &iface, 0) == CKR_OK && iface != nullptr &&
        iface->pFunctionList != nullptr) {
      std::memcpy(&g_real, iface->pFunctionList, sizeof g_real);
      g_real_has_3_0 = true;
    }
  }
  if (!g_real_has_3_0) {
    auto get_list = reinterpret_cast<CK_C_GetFunctionList>(dlsym(g_handle, "C_GetFunctionList"));
    CK_FUNCTION_LIST_PTR list = nullptr;
    if (get_list == nullptr || get_list(&list) != CKR_OK || list == nullptr) {
      std::fprintf(stderr, "libsignum-pkcs11-recorder: %s has no usable C_GetFunctionList\n",
                   module);
      return;
    }
    std::memcpy(&g_real, list, sizeof(CK_FUNCTION_LIST));
  }
  pthread_atfork(&AtForkPrepare, &AtForkParent, &AtForkChild);
  json header = {{"v", kTraceVersion},
                 {"kind", "signum-pkcs11-trace"},
                 {"module", module},
                 {"pid", static_cast<long>(getpid())},
                 {"recorder", "libsignum-pkcs11-recorder.so"},
                 {"module_interface", g_real_has_3_0 ? "3.0" : "2.40"},
                 {"t", MonotonicNs()}};
  WriteLine(header);
  g_load_rv = CKR_OK;
}

CK_RV EnsureLoaded() {
  std::call_once(g_load_once, &Load);
  return g_load_rv;
}

// --- One call's record ---------------------------------------------------------------------------
class Call {
 public:
  explicit Call(const char* fn) : fn_(fn), t_start_(MonotonicNs()) {}
  json& args() { return args_; }
  json& out() { return out_; }
  void Emit(CK_RV rv) {
    const uint64_t t_end = MonotonicNs();
    json j = {{"v", kTraceVersion},
              {"seq", g_seq.fetch_add(1) + 1},
              {"fn", fn_},
              {"pid", static_cast<long>(getpid())},
              {"thread", static_cast<long>(syscall(SYS_gettid))},
              {"t_start", t_start_},
              {"t_end", t_end},
              {"args", args_},
              {"rv", {{"name", CkRvName(rv)}, {"value", rv}}},
              {"out", out_}};
    WriteLine(j);
  }

 private:
  const char* fn_;
  uint64_t t_start_;
  json args_ = json::object();
  json out_ = json::object();
};

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
    json e = {{"type", p[i].type}, {"name", AttributeName(p[i].type)},
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

// --- One In_/Out_ pair per argument KIND of functions.h -------------------------------------------
void In_HANDLE(Call& c, const char* n, CK_ULONG v) { c.args()[n] = v; }
void Out_HANDLE(Call&, CK_RV, const char*, CK_ULONG) {}
void In_SLOT(Call& c, const char* n, CK_SLOT_ID v) { c.args()[n] = v; }
void Out_SLOT(Call&, CK_RV, const char*, CK_SLOT_ID) {}
void In_FLAGS(Call& c, const char* n, CK_FLAGS v) { c.args()[n] = v; }
void Out_FLAGS(Call&, CK_RV, const char*, CK_FLAGS) {}
void In_USER(Call& c, const char* n, CK_USER_TYPE v) { c.args()[n] = v; }
void Out_USER(Call&, CK_RV, const char*, CK_USER_TYPE) {}
void In_BOOL(Call& c, const char* n, CK_BBOOL v) { c.args()[n] = v != CK_FALSE; }
void Out_BOOL(Call&, CK_RV, const char*, CK_BBOOL) {}
void In_MECHANISM_TYPE(Call& c, const char* n, CK_MECHANISM_TYPE v) {
  c.args()[n] = {{"type", v}, {"name", MechanismName(v)}};
}
void Out_MECHANISM_TYPE(Call&, CK_RV, const char*, CK_MECHANISM_TYPE) {}
// Pointers are process-local: only whether one was passed.
void In_PTR(Call& c, const char* n, const void* v) { c.args()[n] = {{"null", v == nullptr}}; }
void Out_PTR(Call&, CK_RV, const char*, const void*) {}
void In_PTR(Call& c, const char* n, CK_NOTIFY v) { c.args()[n] = {{"null", v == nullptr}}; }
void Out_PTR(Call&, CK_RV, const char*, CK_NOTIFY) {}
void In_INIT_ARGS(Call& c, const char* n, CK_VOID_PTR v) {
  if (v == nullptr) {
    c.args()[n] = nullptr;
    return;
  }
  const auto* a = static_cast<const CK_C_INITIALIZE_ARGS*>(v);
  c.args()[n] = {{"flags", a->flags}, {"mutex_callbacks", a->CreateMutex != nullptr}};
}
void Out_INIT_ARGS(Call&, CK_RV, const char*, CK_VOID_PTR) {}
// CKM_RSA_PKCS_PSS and the hashed PSS mechanisms of core's hash table.
bool IsPssMechanism(CK_MECHANISM_TYPE m) {
  if (m == CKM_RSA_PKCS_PSS) return true;
  for (const HashInfo& h : AllHashes())
    if (m == h.ckm_rsa_pss) return true;
  return false;
}
void In_MECHANISM(Call& c, const char* n, CK_MECHANISM_PTR v) {
  if (v == nullptr) {
    c.args()[n] = nullptr;
    return;
  }
  json m = {{"type", v->mechanism}, {"name", MechanismName(v->mechanism)},
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
void Out_MECHANISM(Call&, CK_RV, const char*, CK_MECHANISM_PTR) {}
void In_VERSION(Call& c, const char* n, CK_VERSION_PTR v) {
  c.args()[n] = v == nullptr ? json(nullptr) : Version(*v);
}
void Out_VERSION(Call&, CK_RV, const char*, CK_VERSION_PTR) {}
void In_INTERFACE_NAME(Call& c, const char* n, CK_UTF8CHAR_PTR v) {
  c.args()[n] = v == nullptr ? json(nullptr) : json(reinterpret_cast<const char*>(v));
}
void Out_INTERFACE_NAME(Call&, CK_RV, const char*, CK_UTF8CHAR_PTR) {}
void In_LABEL(Call& c, const char* n, CK_UTF8CHAR_PTR v) {
  c.args()[n] = v == nullptr ? json(nullptr) : json(Padded(v, 32));
}
void Out_LABEL(Call&, CK_RV, const char*, CK_UTF8CHAR_PTR) {}
void In_BYTES(Call& c, const char* n, const void* p, const char* ln, CK_ULONG len) {
  c.args()[n] = p == nullptr ? json(nullptr) : json(Hex(p, len));
  c.args()[ln] = len;
}
void Out_BYTES(Call&, CK_RV, const char*, const void*, const char*, CK_ULONG) {}
void In_SECRET(Call& c, const char* n, CK_UTF8CHAR_PTR p, const char* ln, CK_ULONG len) {
  c.args()[n] = p == nullptr ? json(nullptr) : Redacted(len);
  c.args()[ln] = len;
}
void Out_SECRET(Call&, CK_RV, const char*, CK_UTF8CHAR_PTR, const char*, CK_ULONG) {}
void In_TEMPLATE(Call& c, const char* n, CK_ATTRIBUTE_PTR p, const char* cn, CK_ULONG count) {
  c.args()[n] = Attributes(p, count, true);
  c.args()[cn] = count;
}
void Out_TEMPLATE(Call&, CK_RV, const char*, CK_ATTRIBUTE_PTR, const char*, CK_ULONG) {}
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
void In_OUT_ULONG(Call&, const char*, CK_ULONG_PTR) {}
void Out_OUT_ULONG(Call& c, CK_RV rv, const char* n, CK_ULONG_PTR v) {
  if (rv == CKR_OK && v != nullptr) c.out()[n] = *v;
}
void In_OUT_HANDLE(Call&, const char*, CK_ULONG_PTR) {}
void Out_OUT_HANDLE(Call& c, CK_RV rv, const char* n, CK_ULONG_PTR v) {
  if (rv == CKR_OK && v != nullptr) c.out()[n] = *v;
}
void In_OUT_SLOT(Call&, const char*, CK_SLOT_ID_PTR) {}
void Out_OUT_SLOT(Call& c, CK_RV rv, const char* n, CK_SLOT_ID_PTR v) {
  if (rv == CKR_OK && v != nullptr) c.out()[n] = *v;
}
template <typename T>
void In_OUT_INFO(Call&, const char*, T*) {}
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
void In_OUT_FUNCTION_LIST(Call&, const char*, CK_FUNCTION_LIST_PTR_PTR) {}
void Out_OUT_FUNCTION_LIST(Call& c, CK_RV rv, const char* n, CK_FUNCTION_LIST_PTR_PTR v) {
  if (rv == CKR_OK && v != nullptr && *v != nullptr) c.out()[n] = {{"version", Version((*v)->version)}};
}
void In_OUT_INTERFACE(Call&, const char*, CK_INTERFACE_PTR_PTR) {}
json Interface(const CK_INTERFACE& i) {
  return {{"name", i.pInterfaceName != nullptr
                       ? json(reinterpret_cast<const char*>(i.pInterfaceName))
                       : json(nullptr)},
          {"version", Version(static_cast<const CK_FUNCTION_LIST*>(i.pFunctionList)->version)},
          {"flags", i.flags}};
}
void Out_OUT_INTERFACE(Call& c, CK_RV rv, const char* n, CK_INTERFACE_PTR_PTR v) {
  if (rv == CKR_OK && v != nullptr && *v != nullptr) c.out()[n] = Interface(**v);
}
template <typename T>
void InList(Call& c, const char* n, const T* p, const char* cn, CK_ULONG_PTR count) {
  c.args()[n] = {{"buffer", p != nullptr}};
  c.args()[cn] = count == nullptr ? json(nullptr) : json(*count);
}
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
  for (CK_ULONG i = 0; i < *count; ++i) a.push_back({{"type", p[i]}, {"name", MechanismName(p[i])}});
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

// Runs the body with exceptions (std::bad_alloc while building a record) kept from the caller.
template <typename Fn>
void Quietly(Fn&& fn) {
  try {
    fn();
  } catch (...) {
  }
}

}  // namespace
}  // namespace signum::pkcs11::recorder

// --- The generated wrappers ------------------------------------------------------------------------
// Argument recording reuses the provider's expansion macros, pointed at this file's In_/Out_.
#define SIGNUM_REC_IN(call, Args) BOOST_PP_SEQ_FOR_EACH(SIGNUM_REC_IN_, call, Args)
#define SIGNUM_REC_IN_(r, call, elem)                                                      \
  Quietly([&] {                                                                             \
    BOOST_PP_CAT(In_, BOOST_PP_TUPLE_ELEM(0, elem))                                         \
    (call, BOOST_PP_CAT(SIGNUM_P11_NAMED_, BOOST_PP_TUPLE_SIZE(elem)) elem);                \
  });
#define SIGNUM_REC_OUT(call, rv, Args) BOOST_PP_SEQ_FOR_EACH(SIGNUM_REC_OUT_, (call, rv), Args)
#define SIGNUM_REC_OUT_(r, call_rv, elem)                                                   \
  Quietly([&] {                                                                             \
    BOOST_PP_CAT(Out_, BOOST_PP_TUPLE_ELEM(0, elem))                                        \
    (BOOST_PP_TUPLE_ELEM(0, call_rv), BOOST_PP_TUPLE_ELEM(1, call_rv),                      \
     BOOST_PP_CAT(SIGNUM_P11_NAMED_, BOOST_PP_TUPLE_SIZE(elem)) elem);                      \
  });

namespace signum::pkcs11::recorder {
namespace {

#define SIGNUM_REC_DEFINE(Name, Since, Support, Args)                                  \
  [[maybe_unused]] CK_RV W_##Name(SIGNUM_P11_PARAMS(Args)) {                           \
    if (CK_RV load = EnsureLoaded(); load != CKR_OK) return load;                      \
    Call call("C_" #Name);                                                             \
    SIGNUM_REC_IN(call, Args)                                                          \
    const CK_RV rv = g_real.C_##Name != nullptr ? g_real.C_##Name(SIGNUM_P11_ARGS(Args)) \
                                                : CKR_FUNCTION_NOT_SUPPORTED;          \
    SIGNUM_REC_OUT(call, rv, Args)                                                     \
    Quietly([&] { call.Emit(rv); });                                                   \
    return rv;                                                                         \
  }
SIGNUM_PKCS11_FUNCTIONS(SIGNUM_REC_DEFINE)
#undef SIGNUM_REC_DEFINE

CK_RV OwnGetFunctionList(CK_FUNCTION_LIST_PTR_PTR ppFunctionList);
CK_RV OwnGetInterfaceList(CK_INTERFACE_PTR pInterfacesList, CK_ULONG_PTR pulCount);
CK_RV OwnGetInterface(CK_UTF8CHAR_PTR pInterfaceName, CK_VERSION_PTR pVersion,
                      CK_INTERFACE_PTR_PTR ppInterface, CK_FLAGS flags);

constexpr CK_FUNCTION_LIST_3_0 MakeList30() {
  CK_FUNCTION_LIST_3_0 list{};
  list.version = {3, 0};
#define SIGNUM_REC_FILL(Name, Since, Support, Args) list.C_##Name = &W_##Name;
  SIGNUM_PKCS11_FUNCTIONS(SIGNUM_REC_FILL)
#undef SIGNUM_REC_FILL
  list.C_GetFunctionList = &OwnGetFunctionList;
  list.C_GetInterfaceList = &OwnGetInterfaceList;
  list.C_GetInterface = &OwnGetInterface;
  return list;
}

constexpr CK_FUNCTION_LIST MakeList240() {
  CK_FUNCTION_LIST list{};
  list.version = {2, 40};
#define SIGNUM_REC_FILL(Name, Since, Support, Args) \
  SIGNUM_P11_IF_V2(Since)(list.C_##Name = &W_##Name;)
  SIGNUM_PKCS11_FUNCTIONS(SIGNUM_REC_FILL)
#undef SIGNUM_REC_FILL
  list.C_GetFunctionList = &OwnGetFunctionList;
  return list;
}

constinit CK_FUNCTION_LIST_3_0 g_list_3_0 = MakeList30();
constinit CK_FUNCTION_LIST g_list_2_40 = MakeList240();
CK_CHAR g_interface_name[] = "PKCS 11";
CK_INTERFACE g_interfaces[] = {
    {g_interface_name, &g_list_3_0, 0},
    {g_interface_name, &g_list_2_40, 0},
};

// The 3.0 interface is offered only when the wrapped module has one.
CK_ULONG FirstInterface() { return g_real_has_3_0 ? 0 : 1; }

CK_RV OwnGetFunctionList(CK_FUNCTION_LIST_PTR_PTR ppFunctionList) {
  if (CK_RV load = EnsureLoaded(); load != CKR_OK) return load;
  Call call("C_GetFunctionList");
  CK_RV rv = CKR_OK;
  if (ppFunctionList == nullptr) {
    rv = CKR_ARGUMENTS_BAD;
  } else {
    *ppFunctionList = &g_list_2_40;
  }
  Quietly([&] {
    Out_OUT_FUNCTION_LIST(call, rv, "ppFunctionList", ppFunctionList);
    call.Emit(rv);
  });
  return rv;
}

CK_RV OwnGetInterfaceList(CK_INTERFACE_PTR pInterfacesList, CK_ULONG_PTR pulCount) {
  if (CK_RV load = EnsureLoaded(); load != CKR_OK) return load;
  Call call("C_GetInterfaceList");
  Quietly([&] { In_OUT_INTERFACES(call, "pInterfacesList", pInterfacesList, "pulCount", pulCount); });
  const CK_ULONG first = FirstInterface();
  const CK_ULONG n = 2 - first;
  CK_RV rv = CKR_OK;
  if (pulCount == nullptr) {
    rv = CKR_ARGUMENTS_BAD;
  } else if (pInterfacesList == nullptr) {
    *pulCount = n;
  } else if (*pulCount < n) {
    *pulCount = n;
    rv = CKR_BUFFER_TOO_SMALL;
  } else {
    for (CK_ULONG i = 0; i < n; ++i) pInterfacesList[i] = g_interfaces[first + i];
    *pulCount = n;
  }
  Quietly([&] {
    Out_OUT_INTERFACES(call, rv, "pInterfacesList", pInterfacesList, "pulCount", pulCount);
    call.Emit(rv);
  });
  return rv;
}

CK_RV OwnGetInterface(CK_UTF8CHAR_PTR pInterfaceName, CK_VERSION_PTR pVersion,
                      CK_INTERFACE_PTR_PTR ppInterface, CK_FLAGS flags) {
  if (CK_RV load = EnsureLoaded(); load != CKR_OK) return load;
  Call call("C_GetInterface");
  Quietly([&] {
    In_INTERFACE_NAME(call, "pInterfaceName", pInterfaceName);
    In_VERSION(call, "pVersion", pVersion);
    In_FLAGS(call, "flags", flags);
  });
  CK_RV rv = CKR_ARGUMENTS_BAD;
  if (ppInterface != nullptr) {
    for (CK_ULONG i = FirstInterface(); i < 2; ++i) {
      CK_INTERFACE& candidate = g_interfaces[i];
      if (pInterfaceName != nullptr &&
          std::strcmp(reinterpret_cast<const char*>(pInterfaceName),
                      reinterpret_cast<const char*>(candidate.pInterfaceName)) != 0) {
        continue;
      }
      const CK_VERSION v = static_cast<const CK_FUNCTION_LIST*>(candidate.pFunctionList)->version;
      if (pVersion != nullptr && (pVersion->major != v.major || pVersion->minor != v.minor)) {
        continue;
      }
      if ((candidate.flags & flags) != flags) continue;
      *ppInterface = &candidate;
      rv = CKR_OK;
      break;
    }
  }
  Quietly([&] {
    Out_OUT_INTERFACE(call, rv, "ppInterface", ppInterface);
    call.Emit(rv);
  });
  return rv;
}

}  // namespace
}  // namespace signum::pkcs11::recorder

extern "C" __attribute__((visibility("default"))) CK_RV C_GetFunctionList(
    CK_FUNCTION_LIST_PTR_PTR ppFunctionList) {
  return signum::pkcs11::recorder::OwnGetFunctionList(ppFunctionList);
}

extern "C" __attribute__((visibility("default"))) CK_RV C_GetInterfaceList(
    CK_INTERFACE_PTR pInterfacesList, CK_ULONG_PTR pulCount) {
  return signum::pkcs11::recorder::OwnGetInterfaceList(pInterfacesList, pulCount);
}

extern "C" __attribute__((visibility("default"))) CK_RV C_GetInterface(
    CK_UTF8CHAR_PTR pInterfaceName, CK_VERSION_PTR pVersion, CK_INTERFACE_PTR_PTR ppInterface,
    CK_FLAGS flags) {
  return signum::pkcs11::recorder::OwnGetInterface(pInterfaceName, pVersion, ppInterface, flags);
}

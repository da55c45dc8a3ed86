#include "trace.h"

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <mutex>
#include <thread>

#include "mechanisms.h"
#include "signum/core/pkcs11_module.h"
#include "signum/core/posix_platform.h"

namespace signum::pkcs11::trace {
namespace {

// The open trace file, or -1. Descriptors of earlier configurations are never closed: a thread
// still writing a record to one must not hit a descriptor number the process reused.
std::atomic<int> g_fd{-1};
std::atomic<bool> g_configured{false};
// Guards Configure() only; never held while a record is written (records need no lock at all).
std::mutex g_configure_mu;
// Leaked on purpose: nothing of the module is destroyed at process exit (see bridge.cc).
std::string* g_path = new std::string();

std::string Ulong(CK_ULONG v) { return std::to_string(v); }

std::string HexUlong(CK_ULONG v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "0x%lx", static_cast<unsigned long>(v));
  return buf;
}

std::string Named(const char* name, CK_ULONG v) {
  return name != nullptr ? std::string(name) : HexUlong(v);
}

const char* ObjectClassName(CK_ULONG v) {
  switch (v) {
    case CKO_DATA:
      return "CKO_DATA";
    case CKO_CERTIFICATE:
      return "CKO_CERTIFICATE";
    case CKO_PUBLIC_KEY:
      return "CKO_PUBLIC_KEY";
    case CKO_PRIVATE_KEY:
      return "CKO_PRIVATE_KEY";
    case CKO_SECRET_KEY:
      return "CKO_SECRET_KEY";
    case CKO_HW_FEATURE:
      return "CKO_HW_FEATURE";
    case CKO_DOMAIN_PARAMETERS:
      return "CKO_DOMAIN_PARAMETERS";
    case CKO_MECHANISM:
      return "CKO_MECHANISM";
    case CKO_PROFILE:
      return "CKO_PROFILE";
    case CKO_NSS_TRUST:
      return "CKO_NSS_TRUST";
    case CKO_NSS_BUILTIN_ROOT_LIST:
      return "CKO_NSS_BUILTIN_ROOT_LIST";
    default:
      return nullptr;
  }
}

const char* KeyTypeName(CK_ULONG v) {
  switch (v) {
    case CKK_RSA:
      return "CKK_RSA";
    case CKK_EC:
      return "CKK_EC";
    case CKK_DSA:
      return "CKK_DSA";
    case CKK_AES:
      return "CKK_AES";
    case CKK_GENERIC_SECRET:
      return "CKK_GENERIC_SECRET";
    case CKK_EC_EDWARDS:
      return "CKK_EC_EDWARDS";
    default:
      return nullptr;
  }
}

const char* UserTypeName(CK_ULONG v) {
  switch (v) {
    case CKU_SO:
      return "CKU_SO";
    case CKU_USER:
      return "CKU_USER";
    case CKU_CONTEXT_SPECIFIC:
      return "CKU_CONTEXT_SPECIFIC";
    default:
      return nullptr;
  }
}

const char* MgfName(CK_ULONG v) {
  switch (v) {
    case CKG_MGF1_SHA1:
      return "CKG_MGF1_SHA1";
    case CKG_MGF1_SHA224:
      return "CKG_MGF1_SHA224";
    case CKG_MGF1_SHA256:
      return "CKG_MGF1_SHA256";
    case CKG_MGF1_SHA384:
      return "CKG_MGF1_SHA384";
    case CKG_MGF1_SHA512:
      return "CKG_MGF1_SHA512";
    default:
      return nullptr;
  }
}

bool IsUlongAttribute(CK_ATTRIBUTE_TYPE type) {
  switch (type) {
    case CKA_CLASS:
    case CKA_KEY_TYPE:
    case CKA_CERTIFICATE_TYPE:
    case CKA_CERTIFICATE_CATEGORY:
    case CKA_MODULUS_BITS:
    case CKA_KEY_GEN_MECHANISM:
    case CKA_JAVA_MIDP_SECURITY_DOMAIN:
    case CKA_VALUE_LEN:
      return true;
    default:
      return false;
  }
}

bool IsTextAttribute(CK_ATTRIBUTE_TYPE type) { return type == CKA_LABEL || type == CKA_URL; }

std::string Printable(const unsigned char* p, size_t n) {
  std::string out;
  for (size_t i = 0; i < n; ++i) {
    const unsigned char c = p[i];
    out.push_back(c >= 0x20 && c != 0x7f ? static_cast<char>(c) : '?');
  }
  return out;
}

std::string Padded(const CK_UTF8CHAR* field, size_t width) {
  return "\"" + Printable(field, width) + "\"";
}

std::string VersionText(const CK_VERSION& v) {
  return std::to_string(v.major) + "." + std::to_string(v.minor);
}

std::string Timestamp() {
  timespec ts{};
  ::clock_gettime(CLOCK_REALTIME, &ts);
  tm utc{};
  ::gmtime_r(&ts.tv_sec, &utc);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%06ldZ", utc.tm_year + 1900,
                utc.tm_mon + 1, utc.tm_mday, utc.tm_hour, utc.tm_min, utc.tm_sec,
                ts.tv_nsec / 1000);
  return buf;
}

}  // namespace

static thread_local std::string t_note;

void Note(std::string_view message) {
  if (!t_note.empty()) t_note += "; ";
  t_note += message;
}

std::string TakeNote() {
  std::string out;
  out.swap(t_note);
  return out;
}

void Configure() {
  // try_lock, bounded: in a child forked while a parent thread held this mutex it would stay
  // locked forever; tracing then keeps its old configuration rather than hanging the child.
  std::unique_lock lock(g_configure_mu, std::defer_lock);
  for (int attempt = 0; !lock.try_lock(); ++attempt) {
    if (attempt == 2000) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  const char* path = std::getenv("SIGNUM_PKCS11_TRACE");
  const std::string wanted = path != nullptr ? path : "";
  if (wanted == *g_path && g_configured.load()) return;
  *g_path = wanted;
  int fd = -1;
  if (!wanted.empty()) {
    fd = ::open(wanted.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
  }
  g_fd.store(fd);
  g_configured.store(true);
}

bool Enabled() {
  if (!g_configured.load(std::memory_order_acquire)) Configure();
  return g_fd.load(std::memory_order_relaxed) >= 0;
}

Record::Record(const char* function)
    : function_(function), start_(std::chrono::steady_clock::now()) {
  text_.reserve(512);
  text_ += function;
  text_ += " [" + Timestamp() + " pid=" + std::to_string(::getpid()) +
           " tid=" + std::to_string(posix::CurrentThreadId()) + "]\n";
}

void Record::In(const char* name, std::string_view value) {
  text_ += "  IN: ";
  text_ += name;
  text_ += " = ";
  text_ += value;
  text_ += '\n';
}

void Record::Out(const char* name, std::string_view value) {
  text_ += "  OUT: ";
  text_ += name;
  text_ += " = ";
  text_ += value;
  text_ += '\n';
}

void Record::Error(std::string_view message) {
  text_ += "  ERROR: ";
  // One line per record line: keep a multi-line message readable.
  for (char c : message) text_ += (c == '\n' ? ' ' : c);
  text_ += '\n';
}

void Record::Remark(std::string_view message) {
  text_ += "  NOTE: ";
  for (char c : message) text_ += (c == '\n' ? ' ' : c);
  text_ += '\n';
}

void Record::Emit(CK_RV rv) {
  const double ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start_).count();
  char elapsed[48];
  std::snprintf(elapsed, sizeof elapsed, " [%.3f ms]\n", ms);
  text_ += function_;
  text_ += " = ";
  text_ += CkRvName(rv);
  text_ += elapsed;
  const int fd = g_fd.load(std::memory_order_relaxed);
  if (fd < 0) return;
  size_t done = 0;
  while (done < text_.size()) {
    const ssize_t n = ::write(fd, text_.data() + done, text_.size() - done);
    if (n <= 0) break;  // tracing must never fail the call it describes
    done += static_cast<size_t>(n);
  }
}

std::string Hex(const void* data, size_t size, size_t max_bytes) {
  if (data == nullptr) return "NULL";
  static const char kDigits[] = "0123456789abcdef";
  const auto* p = static_cast<const unsigned char*>(data);
  std::string out = "(" + std::to_string(size) + ") ";
  const size_t shown = size < max_bytes ? size : max_bytes;
  for (size_t i = 0; i < shown; ++i) {
    out += kDigits[p[i] >> 4];
    out += kDigits[p[i] & 0xf];
  }
  if (shown < size) out += "...";
  return out;
}

std::string Pointer(const void* p) {
  if (p == nullptr) return "NULL";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%p", p);
  return buf;
}

std::string AttributeValue(const CK_ATTRIBUTE& a) {
  if (a.ulValueLen == CK_UNAVAILABLE_INFORMATION) return "CK_UNAVAILABLE_INFORMATION";
  if (a.pValue == nullptr) return "NULL (" + std::to_string(a.ulValueLen) + ")";
  const auto* p = static_cast<const unsigned char*>(a.pValue);
  if (IsUlongAttribute(a.type) && a.ulValueLen == sizeof(CK_ULONG)) {
    CK_ULONG v;
    std::memcpy(&v, p, sizeof v);
    if (a.type == CKA_CLASS) return Named(ObjectClassName(v), v);
    if (a.type == CKA_KEY_TYPE) return Named(KeyTypeName(v), v);
    if (a.type == CKA_KEY_GEN_MECHANISM && v == CK_UNAVAILABLE_INFORMATION) {
      return "CK_UNAVAILABLE_INFORMATION";
    }
    return Ulong(v);
  }
  if (a.ulValueLen == 1 && (p[0] == CK_TRUE || p[0] == CK_FALSE) && !IsTextAttribute(a.type)) {
    return p[0] == CK_TRUE ? "CK_TRUE" : "CK_FALSE";
  }
  if (IsTextAttribute(a.type)) return "\"" + Printable(p, a.ulValueLen) + "\"";
  if (a.type == CKA_ALLOWED_MECHANISMS && a.ulValueLen % sizeof(CK_MECHANISM_TYPE) == 0) {
    std::string out = "[";
    for (size_t i = 0; i < a.ulValueLen / sizeof(CK_MECHANISM_TYPE); ++i) {
      CK_MECHANISM_TYPE m;
      std::memcpy(&m, p + i * sizeof m, sizeof m);
      if (i > 0) out += ", ";
      out += MechanismName(m);
    }
    return out + "]";
  }
  return Hex(p, a.ulValueLen);
}

void In_HANDLE(Record& r, const char* n, CK_ULONG v) { r.In(n, HexUlong(v)); }
void In_SLOT(Record& r, const char* n, CK_SLOT_ID v) { r.In(n, Ulong(v)); }
void In_FLAGS(Record& r, const char* n, CK_FLAGS v) { r.In(n, HexUlong(v)); }
void In_USER(Record& r, const char* n, CK_USER_TYPE v) { r.In(n, Named(UserTypeName(v), v)); }
void In_BOOL(Record& r, const char* n, CK_BBOOL v) { r.In(n, v ? "CK_TRUE" : "CK_FALSE"); }
void In_MECHANISM_TYPE(Record& r, const char* n, CK_MECHANISM_TYPE v) { r.In(n, MechanismName(v)); }
void In_PTR(Record& r, const char* n, const void* v) { r.In(n, Pointer(v)); }
void In_PTR(Record& r, const char* n, CK_NOTIFY v) {
  r.In(n, v == nullptr ? "NULL" : "(callback)");
}

void In_INIT_ARGS(Record& r, const char* n, CK_VOID_PTR v) {
  if (v == nullptr) return r.In(n, "NULL");
  const auto* args = static_cast<const CK_C_INITIALIZE_ARGS*>(v);
  std::string text = "{flags = " + HexUlong(args->flags);
  if (args->flags & CKF_OS_LOCKING_OK) text += " CKF_OS_LOCKING_OK";
  if (args->flags & CKF_LIBRARY_CANT_CREATE_OS_THREADS)
    text += " CKF_LIBRARY_CANT_CREATE_OS_THREADS";
  const bool callbacks = args->CreateMutex != nullptr || args->DestroyMutex != nullptr ||
                         args->LockMutex != nullptr || args->UnlockMutex != nullptr;
  text += std::string(", mutex callbacks = ") + (callbacks ? "set" : "NULL");
  text += ", pReserved = " + Pointer(args->pReserved) + "}";
  r.In(n, text);
}

void In_MECHANISM(Record& r, const char* n, CK_MECHANISM_PTR v) {
  if (v == nullptr) return r.In(n, "NULL");
  std::string text = MechanismName(v->mechanism);
  const Mechanism* known = FindMechanism(v->mechanism);
  if (v->pParameter != nullptr && v->ulParameterLen == sizeof(CK_RSA_PKCS_PSS_PARAMS) &&
      known != nullptr && known->signature.has_value() &&
      known->signature->scheme == SignatureScheme::kRsaPss) {
    const auto* pss = static_cast<const CK_RSA_PKCS_PSS_PARAMS*>(v->pParameter);
    text += " {hashAlg = " + MechanismName(pss->hashAlg) +
            ", mgf = " + Named(MgfName(pss->mgf), pss->mgf) + ", sLen = " + Ulong(pss->sLen) + "}";
  } else if (v->pParameter != nullptr || v->ulParameterLen != 0) {
    text += " parameter " + Hex(v->pParameter, v->ulParameterLen);
  }
  r.In(n, text);
}

void In_VERSION(Record& r, const char* n, CK_VERSION_PTR v) {
  r.In(n, v == nullptr ? "NULL" : VersionText(*v));
}

void In_INTERFACE_NAME(Record& r, const char* n, CK_UTF8CHAR_PTR v) {
  if (v == nullptr) return r.In(n, "NULL");
  const char* s = reinterpret_cast<const char*>(v);
  r.In(n, "\"" + Printable(v, ::strnlen(s, 64)) + "\"");
}

void In_LABEL(Record& r, const char* n, CK_UTF8CHAR_PTR v) {
  r.In(n, v == nullptr ? "NULL" : Padded(v, 32));
}

void In_BYTES(Record& r, const char* n, const void* p, const char* ln, CK_ULONG len) {
  r.In(n, p == nullptr ? "NULL" : Hex(p, len));
  r.In(ln, Ulong(len));
}

void In_SECRET(Record& r, const char* n, CK_UTF8CHAR_PTR p, const char* ln, CK_ULONG len) {
  // Never the value: traces end up in bug reports.
  r.In(n, p == nullptr ? "NULL" : "<" + std::to_string(len) + " bytes>");
  r.In(ln, Ulong(len));
}

void In_TEMPLATE(Record& r, const char* n, CK_ATTRIBUTE_PTR p, const char* cn, CK_ULONG count) {
  r.In(cn, Ulong(count));
  if (p == nullptr) return r.In(n, "NULL");
  for (CK_ULONG i = 0; i < count; ++i) {
    r.In(n, "[" + AttributeName(p[i].type) + "] = " + AttributeValue(p[i]));
  }
}

void In_OUT_TEMPLATE(Record& r, const char* n, CK_ATTRIBUTE_PTR p, const char* cn, CK_ULONG count) {
  r.In(cn, Ulong(count));
  if (p == nullptr) return r.In(n, "NULL");
  for (CK_ULONG i = 0; i < count; ++i) {
    r.In(n, "[" + AttributeName(p[i].type) +
                "] = " + (p[i].pValue == nullptr ? "NULL" : "buffer of " + Ulong(p[i].ulValueLen)));
  }
}

void Out_OUT_TEMPLATE(Record& r, CK_RV rv, const char* n, CK_ATTRIBUTE_PTR p, const char*,
                      CK_ULONG count) {
  // Every attribute is processed even when the call reports one of these three (PKCS#11 §5.7).
  if (p == nullptr || (rv != CKR_OK && rv != CKR_ATTRIBUTE_SENSITIVE &&
                       rv != CKR_ATTRIBUTE_TYPE_INVALID && rv != CKR_BUFFER_TOO_SMALL)) {
    return;
  }
  for (CK_ULONG i = 0; i < count; ++i) {
    std::string value;
    if (p[i].ulValueLen == CK_UNAVAILABLE_INFORMATION) {
      value = "CK_UNAVAILABLE_INFORMATION";
    } else if (p[i].pValue == nullptr) {
      value = "length " + Ulong(p[i].ulValueLen);
    } else {
      value = AttributeValue(p[i]);
    }
    r.Out(n, "[" + AttributeName(p[i].type) + "] = " + value);
  }
}

void In_OUT_BYTES(Record& r, const char* n, CK_BYTE_PTR p, const char* ln, CK_ULONG_PTR len) {
  r.In(n, Pointer(p));
  r.In(ln, len == nullptr ? "NULL" : Ulong(*len));
}

void Out_OUT_BYTES(Record& r, CK_RV rv, const char* n, CK_BYTE_PTR p, const char* ln,
                   CK_ULONG_PTR len) {
  if (len == nullptr || (rv != CKR_OK && rv != CKR_BUFFER_TOO_SMALL)) return;
  if (rv == CKR_OK && p != nullptr) r.Out(n, Hex(p, *len));
  r.Out(ln, Ulong(*len));
}

void In_OUT_RANDOM(Record& r, const char* n, CK_BYTE_PTR p, const char* ln, CK_ULONG len) {
  r.In(n, Pointer(p));
  r.In(ln, Ulong(len));
}

void Out_OUT_RANDOM(Record& r, CK_RV rv, const char* n, CK_BYTE_PTR p, const char*, CK_ULONG len) {
  // Random bytes may become keys or nonces: their length only.
  if (rv == CKR_OK && p != nullptr) r.Out(n, "<" + std::to_string(len) + " random bytes>");
}

void Out_OUT_ULONG(Record& r, CK_RV rv, const char* n, CK_ULONG_PTR v) {
  if (rv == CKR_OK && v != nullptr) {
    r.Out(n, *v == CK_UNAVAILABLE_INFORMATION ? "CK_UNAVAILABLE_INFORMATION" : Ulong(*v));
  }
}

void Out_OUT_HANDLE(Record& r, CK_RV rv, const char* n, CK_ULONG_PTR v) {
  if (rv == CKR_OK && v != nullptr) r.Out(n, HexUlong(*v));
}

void Out_OUT_SLOT(Record& r, CK_RV rv, const char* n, CK_SLOT_ID_PTR v) {
  if (rv == CKR_OK && v != nullptr) r.Out(n, Ulong(*v));
}

void Out_OUT_INFO(Record& r, CK_RV rv, const char* n, CK_INFO_PTR v) {
  if (rv != CKR_OK || v == nullptr) return;
  r.Out(n, "{cryptokiVersion = " + VersionText(v->cryptokiVersion) +
               ", manufacturerID = " + Padded(v->manufacturerID, sizeof v->manufacturerID) +
               ", flags = " + HexUlong(v->flags) + ", libraryDescription = " +
               Padded(v->libraryDescription, sizeof v->libraryDescription) +
               ", libraryVersion = " + VersionText(v->libraryVersion) + "}");
}

void Out_OUT_INFO(Record& r, CK_RV rv, const char* n, CK_SLOT_INFO_PTR v) {
  if (rv != CKR_OK || v == nullptr) return;
  r.Out(n, "{slotDescription = " + Padded(v->slotDescription, sizeof v->slotDescription) +
               ", manufacturerID = " + Padded(v->manufacturerID, sizeof v->manufacturerID) +
               ", flags = " + HexUlong(v->flags) + "}");
}

void Out_OUT_INFO(Record& r, CK_RV rv, const char* n, CK_TOKEN_INFO_PTR v) {
  if (rv != CKR_OK || v == nullptr) return;
  r.Out(n, "{label = " + Padded(v->label, sizeof v->label) +
               ", manufacturerID = " + Padded(v->manufacturerID, sizeof v->manufacturerID) +
               ", model = " + Padded(v->model, sizeof v->model) + ", serialNumber = " +
               Padded(v->serialNumber, sizeof v->serialNumber) + ", flags = " + HexUlong(v->flags) +
               ", ulSessionCount = " + Ulong(v->ulSessionCount) +
               ", ulRwSessionCount = " + Ulong(v->ulRwSessionCount) + "}");
}

void Out_OUT_INFO(Record& r, CK_RV rv, const char* n, CK_SESSION_INFO_PTR v) {
  if (rv != CKR_OK || v == nullptr) return;
  r.Out(n, "{slotID = " + Ulong(v->slotID) + ", state = " + Ulong(v->state) + ", flags = " +
               HexUlong(v->flags) + ", ulDeviceError = " + Ulong(v->ulDeviceError) + "}");
}

void Out_OUT_INFO(Record& r, CK_RV rv, const char* n, CK_MECHANISM_INFO_PTR v) {
  if (rv != CKR_OK || v == nullptr) return;
  r.Out(n, "{ulMinKeySize = " + Ulong(v->ulMinKeySize) + ", ulMaxKeySize = " +
               Ulong(v->ulMaxKeySize) + ", flags = " + HexUlong(v->flags) + "}");
}

void Out_OUT_FUNCTION_LIST(Record& r, CK_RV rv, const char* n, CK_FUNCTION_LIST_PTR_PTR v) {
  if (rv == CKR_OK && v != nullptr && *v != nullptr) {
    r.Out(n, Pointer(*v) + " (version " + VersionText((*v)->version) + ")");
  }
}

void Out_OUT_INTERFACE(Record& r, CK_RV rv, const char* n, CK_INTERFACE_PTR_PTR v) {
  if (rv != CKR_OK || v == nullptr || *v == nullptr) return;
  const auto* list = static_cast<const CK_FUNCTION_LIST*>((*v)->pFunctionList);
  r.Out(n, "{pInterfaceName = \"" +
               std::string(reinterpret_cast<const char*>((*v)->pInterfaceName)) + "\", version " +
               VersionText(list->version) + ", flags = " + HexUlong((*v)->flags) + "}");
}

void In_OUT_SLOTS(Record& r, const char* n, CK_SLOT_ID_PTR p, const char* cn, CK_ULONG_PTR count) {
  r.In(n, Pointer(p));
  r.In(cn, count == nullptr ? "NULL" : Ulong(*count));
}

void Out_OUT_SLOTS(Record& r, CK_RV rv, const char* n, CK_SLOT_ID_PTR p, const char* cn,
                   CK_ULONG_PTR count) {
  if (count == nullptr || (rv != CKR_OK && rv != CKR_BUFFER_TOO_SMALL)) return;
  if (rv == CKR_OK && p != nullptr) {
    std::string list = "[";
    for (CK_ULONG i = 0; i < *count; ++i) list += (i ? ", " : "") + Ulong(p[i]);
    r.Out(n, list + "]");
  }
  r.Out(cn, Ulong(*count));
}

void In_OUT_MECHANISMS(Record& r, const char* n, CK_MECHANISM_TYPE_PTR p, const char* cn,
                       CK_ULONG_PTR count) {
  r.In(n, Pointer(p));
  r.In(cn, count == nullptr ? "NULL" : Ulong(*count));
}

void Out_OUT_MECHANISMS(Record& r, CK_RV rv, const char* n, CK_MECHANISM_TYPE_PTR p, const char* cn,
                        CK_ULONG_PTR count) {
  if (count == nullptr || (rv != CKR_OK && rv != CKR_BUFFER_TOO_SMALL)) return;
  if (rv == CKR_OK && p != nullptr) {
    std::string list = "[";
    for (CK_ULONG i = 0; i < *count; ++i) list += (i ? ", " : "") + MechanismName(p[i]);
    r.Out(n, list + "]");
  }
  r.Out(cn, Ulong(*count));
}

void In_OUT_INTERFACES(Record& r, const char* n, CK_INTERFACE_PTR p, const char* cn,
                       CK_ULONG_PTR count) {
  r.In(n, Pointer(p));
  r.In(cn, count == nullptr ? "NULL" : Ulong(*count));
}

void Out_OUT_INTERFACES(Record& r, CK_RV rv, const char* n, CK_INTERFACE_PTR p, const char* cn,
                        CK_ULONG_PTR count) {
  if (count == nullptr || (rv != CKR_OK && rv != CKR_BUFFER_TOO_SMALL)) return;
  if (rv == CKR_OK && p != nullptr) {
    for (CK_ULONG i = 0; i < *count; ++i) {
      const auto* list = static_cast<const CK_FUNCTION_LIST*>(p[i].pFunctionList);
      r.Out(n, "\"" + std::string(reinterpret_cast<const char*>(p[i].pInterfaceName)) +
                   "\" version " + VersionText(list->version));
    }
  }
  r.Out(cn, Ulong(*count));
}

void In_OUT_HANDLES(Record& r, const char* n, CK_OBJECT_HANDLE_PTR p, const char* mn, CK_ULONG max,
                    const char*, CK_ULONG_PTR) {
  r.In(n, Pointer(p));
  r.In(mn, Ulong(max));
}

void Out_OUT_HANDLES(Record& r, CK_RV rv, const char* n, CK_OBJECT_HANDLE_PTR p, const char*,
                     CK_ULONG, const char* cn, CK_ULONG_PTR count) {
  if (rv != CKR_OK || count == nullptr) return;
  if (p != nullptr) {
    std::string list = "[";
    for (CK_ULONG i = 0; i < *count; ++i) list += (i ? ", " : "") + HexUlong(p[i]);
    r.Out(n, list + "]");
  }
  r.Out(cn, Ulong(*count));
}

}  // namespace signum::pkcs11::trace

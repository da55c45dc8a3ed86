// libsignum-defect-shim.so: a TEST-ONLY PKCS#11 module in front of a real one. It loads the module
// named by $SIGNUM_SHIM_TARGET, hands out copies of that module's function lists (2.40 and the 3.0
// interfaces) and routes a few entries through wrappers that inject ONE known defect, chosen by
// $SIGNUM_SHIM_DEFECT from defect_catalogue.h. With no defect, every call reaches the real module
// unchanged. It proves that the conformance suite notices each defect, and only that defect.
//
// Exported: C_GetFunctionList, and C_GetInterfaceList/C_GetInterface unless built with
// SIGNUM_SHIM_2_40_ONLY (libsignum-defect-shim-v2.so: for 2.40 modules such as SoftHSM 2.6, whose
// callers must not see 3.0 entry points they would not see without the shim). Not the individual
// C_* symbols: Pkcs11Module, p11-kit, OpenSC and OpenSSL go through the lists.
#include <dlfcn.h>
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "defect_catalogue.h"
#include "signum/core/crypto.h"
#include "signum/core/pkcs11.h"

namespace {

using signum::conformance::Defect;
using signum::conformance::DefectInfo;
using Bytes = std::vector<uint8_t>;

struct Shim {
  void* handle = nullptr;
  CK_RV load_rv = CKR_OK;
  Defect defect = Defect::kNone;
  CK_FUNCTION_LIST real{};       // the target's 2.x entries
  CK_FUNCTION_LIST_3_0 real3{};  // valid when has3
  bool has3 = false;
  CK_FUNCTION_LIST shim2{};  // what callers get
  CK_FUNCTION_LIST_3_0 shim3{};
  std::vector<CK_INTERFACE> interfaces;
};

Shim& TheShim() {
  static Shim shim;
  return shim;
}

const CK_FUNCTION_LIST& Real() { return TheShim().real; }
Defect Injected() { return TheShim().defect; }

// Per-session bookkeeping the defects need.
struct SessionState {
  CK_MECHANISM_TYPE sign_mechanism = CK_UNAVAILABLE_INFORMATION;
  bool stuck = false;              // sign-error-leaves-operation-active
  bool drop_certificates = false;  // cert-id-mismatch: a CKA_ID search without a class
  bool find_nothing = false;       // subject-search-finds-nothing: this search holds CKA_SUBJECT
};
std::mutex sessions_mu;
std::map<CK_SESSION_HANDLE, SessionState> sessions;

template <typename F>
auto WithSession(CK_SESSION_HANDLE h, F f) {
  std::lock_guard<std::mutex> lock(sessions_mu);
  return f(sessions[h]);
}

std::atomic<bool> in_forked_child{false};
// login-bound-to-its-session: the session whose C_Login succeeded (CK_INVALID_HANDLE: none).
std::atomic<CK_SESSION_HANDLE> login_session{CK_INVALID_HANDLE};
std::atomic<int> signing_threads{0};

void CrashOnNull(const void* p) {
  // The defect: a module that dereferences what it was given. SIGSEGV, as it would be.
  if (p == nullptr && Injected() == Defect::kNullArgCrash) ::raise(SIGSEGV);
}

bool BrokenChild() { return Injected() == Defect::kForkUnsafe && in_forked_child.load(); }

bool IsEcdsa(CK_MECHANISM_TYPE m) {
  return m == CKM_ECDSA || m == CKM_ECDSA_SHA1 || m == CKM_ECDSA_SHA224 || m == CKM_ECDSA_SHA256 ||
         m == CKM_ECDSA_SHA384 || m == CKM_ECDSA_SHA512;
}

bool IsPss(CK_MECHANISM_TYPE m) {
  return m == CKM_RSA_PKCS_PSS || m == CKM_SHA1_RSA_PKCS_PSS || m == CKM_SHA224_RSA_PKCS_PSS ||
         m == CKM_SHA256_RSA_PKCS_PSS || m == CKM_SHA384_RSA_PKCS_PSS ||
         m == CKM_SHA512_RSA_PKCS_PSS;
}

// One attribute of an object, by the two-call protocol.
std::pair<CK_RV, Bytes> ReadAttribute(CK_SESSION_HANDLE h, CK_OBJECT_HANDLE o,
                                      CK_ATTRIBUTE_TYPE type) {
  CK_ATTRIBUTE a{type, nullptr, 0};
  CK_RV rv = Real().C_GetAttributeValue(h, o, &a, 1);
  if (rv != CKR_OK) return {rv, {}};
  Bytes value(a.ulValueLen);
  a.pValue = value.data();
  rv = Real().C_GetAttributeValue(h, o, &a, 1);
  value.resize(rv == CKR_OK ? a.ulValueLen : 0);
  return {rv, value};
}

std::optional<CK_OBJECT_CLASS> ClassOf(CK_SESSION_HANDLE h, CK_OBJECT_HANDLE o) {
  auto [rv, value] = ReadAttribute(h, o, CKA_CLASS);
  if (rv != CKR_OK || value.size() != sizeof(CK_OBJECT_CLASS)) return std::nullopt;
  CK_OBJECT_CLASS cls;
  std::memcpy(&cls, value.data(), sizeof cls);
  return cls;
}

// Answers one template entry with `value` the way C_GetAttributeValue must.
CK_RV Answer(CK_ATTRIBUTE& a, const Bytes& value, CK_ULONG buffer_len) {
  if (a.pValue == nullptr) {
    a.ulValueLen = value.size();
    return CKR_OK;
  }
  if (buffer_len < value.size()) {
    a.ulValueLen = CK_UNAVAILABLE_INFORMATION;
    return CKR_BUFFER_TOO_SMALL;
  }
  std::memcpy(a.pValue, value.data(), value.size());
  a.ulValueLen = value.size();
  return CKR_OK;
}

// Output of an operation (C_Sign, C_SignFinal) replaced by transform(real output):
// `call(buffer, length)` runs the real function.
template <typename Call, typename Transform>
CK_RV TransformedOutput(Call call, Transform transform, CK_ULONG slack, CK_BYTE_PTR out,
                        CK_ULONG_PTR out_len) {
  CK_ULONG real_len = 0;
  CK_RV rv = call(nullptr, &real_len);
  if (rv != CKR_OK) return rv;
  if (out == nullptr) {
    *out_len = real_len + slack;
    return CKR_OK;
  }
  Bytes real(real_len);
  rv = call(real.data(), &real_len);
  if (rv != CKR_OK) return rv;
  real.resize(real_len);
  Bytes changed = transform(real);
  if (*out_len < changed.size()) {
    *out_len = changed.size();
    return CKR_BUFFER_TOO_SMALL;  // the real operation is over: part of the defect
  }
  std::memcpy(out, changed.data(), changed.size());
  *out_len = changed.size();
  return CKR_OK;
}

// The defects that change what C_Sign/C_SignFinal return. `call` runs the real function.
template <typename Call>
CK_RV SignOutput(CK_SESSION_HANDLE h, Call call, CK_BYTE_PTR out, CK_ULONG_PTR out_len) {
  CrashOnNull(out_len);
  if (out_len == nullptr) return call(out, out_len);
  const CK_MECHANISM_TYPE mechanism =
      WithSession(h, [](SessionState& s) { return s.sign_mechanism; });
  switch (Injected()) {
    case Defect::kEcdsaDerSignature:
      if (IsEcdsa(mechanism)) {
        return TransformedOutput(
            call,
            [](const Bytes& raw) {
              auto der = signum::EcdsaRawToDer(raw);
              return der.ok() ? *der : raw;
            },
            9, out, out_len);  // DER adds at most 9 bytes (P-521: 3 + 2 * 3)
      }
      break;
    case Defect::kLengthQueryEndsOperation:
      if (out == nullptr) {
        CK_ULONG len = 0;
        CK_RV rv = call(nullptr, &len);
        if (rv != CKR_OK) return rv;
        Bytes discarded(len);
        call(discarded.data(), &len);  // finishes (and so ends) the operation
        *out_len = len;
        return CKR_OK;
      }
      break;
    case Defect::kBufferTooSmallReturnsOk: {
      if (out == nullptr) break;
      const CK_ULONG given = *out_len;
      CK_RV rv = call(out, out_len);
      if (rv != CKR_BUFFER_TOO_SMALL) return rv;
      Bytes full(*out_len);
      CK_ULONG full_len = full.size();
      rv = call(full.data(), &full_len);
      if (rv != CKR_OK) return rv;
      std::memcpy(out, full.data(), given);
      *out_len = given;
      return CKR_OK;
    }
    default:
      break;
  }
  return call(out, out_len);
}

void NoteSignResult(CK_SESSION_HANDLE h, CK_RV rv) {
  if (Injected() == Defect::kSignErrorLeavesOperationActive && rv != CKR_OK &&
      rv != CKR_BUFFER_TOO_SMALL)
    WithSession(h, [](SessionState& s) { s.stuck = true; });
}

// thread-unsafe: holds a "module-wide" slot for 2 ms and fails when it finds it taken.
class UnsafeSection {
 public:
  UnsafeSection() {
    if (Injected() != Defect::kThreadUnsafe) return;
    active_ = true;
    collided_ = signing_threads.fetch_add(1) > 0;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  ~UnsafeSection() {
    if (active_) signing_threads.fetch_sub(1);
  }
  bool collided() const { return collided_; }

 private:
  bool active_ = false;
  bool collided_ = false;
};

// ---- wrappers (installed always; with no defect they only forward) ----

CK_RV Shim_C_Initialize(CK_VOID_PTR init_args) {
  if (BrokenChild()) return CKR_DEVICE_ERROR;
  if (Injected() == Defect::kReservedInitArgsRejected && init_args != nullptr &&
      static_cast<CK_C_INITIALIZE_ARGS*>(init_args)->pReserved != nullptr) {
    return CKR_ARGUMENTS_BAD;
  }
  return Real().C_Initialize(init_args);
}

CK_RV Shim_C_Finalize(CK_VOID_PTR reserved) {
  if (BrokenChild()) return CKR_DEVICE_ERROR;
  CK_RV rv = Real().C_Finalize(reserved);
  if (rv == CKR_OK) {
    std::lock_guard<std::mutex> lock(sessions_mu);
    sessions.clear();
    login_session = CK_INVALID_HANDLE;
  }
  return rv;
}

CK_RV Shim_C_GetInfo(CK_INFO_PTR info) {
  if (BrokenChild()) return CKR_DEVICE_ERROR;
  CrashOnNull(info);
  return Real().C_GetInfo(info);
}

CK_RV Shim_C_GetSlotList(CK_BBOOL token_present, CK_SLOT_ID_PTR list, CK_ULONG_PTR count) {
  if (BrokenChild()) return CKR_DEVICE_ERROR;
  CrashOnNull(count);
  return Real().C_GetSlotList(token_present, list, count);
}

CK_RV Shim_C_GetTokenInfo(CK_SLOT_ID slot, CK_TOKEN_INFO_PTR info) {
  if (BrokenChild()) return CKR_DEVICE_ERROR;
  CrashOnNull(info);
  CK_RV rv = Real().C_GetTokenInfo(slot, info);
  if (rv == CKR_OK && info != nullptr && Injected() == Defect::kUnpaddedTokenLabel) {
    size_t end = sizeof info->label;
    while (end > 0 && info->label[end - 1] == ' ') --end;
    std::memset(info->label + end, 0, sizeof info->label - end);
  }
  if (rv == CKR_OK && info != nullptr && Injected() == Defect::kTokenSerialPerProcess) {
    char serial[sizeof info->serialNumber + 1];
    std::snprintf(serial, sizeof serial, "%-16lx", static_cast<unsigned long>(::getpid()));
    std::memcpy(info->serialNumber, serial, sizeof info->serialNumber);
  }
  if (rv == CKR_OK && info != nullptr && Injected() == Defect::kPinFlagsNeverSet) {
    info->flags &= ~CK_FLAGS(CKF_USER_PIN_COUNT_LOW | CKF_USER_PIN_FINAL_TRY | CKF_USER_PIN_LOCKED);
  }
  return rv;
}

CK_RV Shim_C_GetMechanismList(CK_SLOT_ID slot, CK_MECHANISM_TYPE_PTR list, CK_ULONG_PTR count) {
  if (BrokenChild()) return CKR_DEVICE_ERROR;
  CrashOnNull(count);
  if (Injected() != Defect::kMechanismListDuplicates || count == nullptr)
    return Real().C_GetMechanismList(slot, list, count);
  CK_ULONG n = 0;
  CK_RV rv = Real().C_GetMechanismList(slot, nullptr, &n);
  if (rv != CKR_OK || n == 0) {
    *count = n;
    return rv;
  }
  std::vector<CK_MECHANISM_TYPE> real(n);
  rv = Real().C_GetMechanismList(slot, real.data(), &n);
  if (rv != CKR_OK) return rv;
  real.resize(n);
  real.push_back(real.front());
  if (list == nullptr) {
    *count = real.size();
    return CKR_OK;
  }
  if (*count < real.size()) {
    *count = real.size();
    return CKR_BUFFER_TOO_SMALL;
  }
  std::memcpy(list, real.data(), real.size() * sizeof(CK_MECHANISM_TYPE));
  *count = real.size();
  return CKR_OK;
}

CK_RV Shim_C_OpenSession(CK_SLOT_ID slot, CK_FLAGS flags, CK_VOID_PTR app, CK_NOTIFY notify,
                         CK_SESSION_HANDLE_PTR session) {
  if (BrokenChild()) return CKR_DEVICE_ERROR;
  CrashOnNull(session);
  return Real().C_OpenSession(slot, flags, app, notify, session);
}

CK_RV Shim_C_CloseSession(CK_SESSION_HANDLE h) {
  if (BrokenChild()) return CKR_DEVICE_ERROR;
  if (Injected() == Defect::kLoginBoundToItsSession && h == login_session.load()) {
    Real().C_Logout(h);
    login_session = CK_INVALID_HANDLE;
  }
  CK_RV rv = Real().C_CloseSession(h);
  std::lock_guard<std::mutex> lock(sessions_mu);
  sessions.erase(h);
  return rv;
}

CK_RV Shim_C_CloseAllSessions(CK_SLOT_ID slot) {
  if (BrokenChild()) return CKR_DEVICE_ERROR;
  login_session = CK_INVALID_HANDLE;
  return Real().C_CloseAllSessions(slot);  // stale entries are harmless: handles get reused fresh
}

CK_RV Shim_C_Login(CK_SESSION_HANDLE h, CK_USER_TYPE user, CK_UTF8CHAR_PTR pin, CK_ULONG len) {
  if (BrokenChild()) return CKR_DEVICE_ERROR;
  if (user == CKU_SO && Injected() == Defect::kSoLoginChecksPinFirst) return CKR_PIN_INCORRECT;
  const CK_RV rv = Real().C_Login(h, user, pin, len);
  if (rv == CKR_OK && user == CKU_USER) login_session = h;
  return rv;
}

CK_RV Shim_C_Logout(CK_SESSION_HANDLE h) {
  if (BrokenChild()) return CKR_DEVICE_ERROR;
  const CK_RV rv = Real().C_Logout(h);
  if (rv == CKR_OK) login_session = CK_INVALID_HANDLE;
  return rv;
}

bool IsSensitiveType(CK_ATTRIBUTE_TYPE t) {
  return t == CKA_VALUE || t == CKA_PRIVATE_EXPONENT || t == CKA_PRIME_1 || t == CKA_PRIME_2 ||
         t == CKA_EXPONENT_1 || t == CKA_EXPONENT_2 || t == CKA_COEFFICIENT;
}

bool IsPublicComponent(CK_ATTRIBUTE_TYPE t) {
  return t == CKA_MODULUS || t == CKA_PUBLIC_EXPONENT || t == CKA_EC_PARAMS || t == CKA_EC_POINT;
}

// DER OCTET STRING -> its contents (the raw X9.62 point).
Bytes UnwrapOctetString(const Bytes& der) {
  if (der.size() < 2 || der[0] != 0x04) return der;
  size_t header = 2;
  if (der[1] == 0x81) header = 3;
  if (der[1] == 0x82) header = 4;
  return der.size() > header ? Bytes(der.begin() + header, der.end()) : der;
}

CK_RV Shim_C_GetAttributeValue(CK_SESSION_HANDLE h, CK_OBJECT_HANDLE o, CK_ATTRIBUTE_PTR tmpl,
                               CK_ULONG count) {
  if (BrokenChild()) return CKR_DEVICE_ERROR;
  if (count > 0) CrashOnNull(tmpl);
  const Defect defect = Injected();
  if (defect == Defect::kNone || tmpl == nullptr)
    return Real().C_GetAttributeValue(h, o, tmpl, count);
  std::vector<CK_ULONG> buffer_len(count);
  for (CK_ULONG i = 0; i < count; ++i) buffer_len[i] = tmpl[i].ulValueLen;
  CK_RV rv = Real().C_GetAttributeValue(h, o, tmpl, count);

  // Entries the defect answers itself: nullopt = leave the module's answer.
  std::vector<std::optional<CK_RV>> replaced(count);
  std::optional<CK_OBJECT_CLASS> cls;
  auto object_class = [&]() {
    if (!cls) cls = ClassOf(h, o);
    return cls.value_or(CKO_VENDOR_DEFINED);
  };
  for (CK_ULONG i = 0; i < count; ++i) {
    CK_ATTRIBUTE& a = tmpl[i];
    switch (defect) {
      case Defect::kCertIdMismatch:
        if (a.type == CKA_ID && object_class() == CKO_CERTIFICATE) {
          auto [id_rv, id] = ReadAttribute(h, o, CKA_ID);
          if (id_rv == CKR_OK && !id.empty()) {
            id.back() ^= 0x01;
            replaced[i] = Answer(a, id, buffer_len[i]);
          }
        }
        break;
      case Defect::kEcPointNotDerWrapped:
        if (a.type == CKA_EC_POINT) {
          auto [point_rv, point] = ReadAttribute(h, o, CKA_EC_POINT);
          if (point_rv == CKR_OK) replaced[i] = Answer(a, UnwrapOctetString(point), buffer_len[i]);
        }
        break;
      case Defect::kPrivateKeyLacksPublicComponents:
        if (IsPublicComponent(a.type) && object_class() == CKO_PRIVATE_KEY) {
          a.ulValueLen = CK_UNAVAILABLE_INFORMATION;
          replaced[i] = CKR_ATTRIBUTE_TYPE_INVALID;
        }
        break;
      case Defect::kSensitiveAttributeReturnsValue:
        if (IsSensitiveType(a.type) && a.ulValueLen == CK_UNAVAILABLE_INFORMATION) {
          auto [value_rv, value] = ReadAttribute(h, o, a.type);
          if (value_rv == CKR_ATTRIBUTE_SENSITIVE)
            replaced[i] = Answer(a, Bytes(32, 0x5a), buffer_len[i]);
        }
        break;
      case Defect::kCertIdReadBackDiffers:
        if (a.type == CKA_ID && object_class() == CKO_CERTIFICATE) {
          auto [label_rv, label] = ReadAttribute(h, o, CKA_LABEL);
          if (label_rv == CKR_OK) {
            static const char kHex[] = "0123456789abcdef";
            Bytes hex_label;
            for (uint8_t b : label) {
              hex_label.push_back(static_cast<uint8_t>(kHex[b >> 4]));
              hex_label.push_back(static_cast<uint8_t>(kHex[b & 15]));
            }
            replaced[i] = Answer(a, hex_label, buffer_len[i]);
          }
        }
        break;
      case Defect::kSensitiveAttributeTypeInvalid:
        if (IsSensitiveType(a.type) && a.ulValueLen == CK_UNAVAILABLE_INFORMATION &&
            object_class() == CKO_PRIVATE_KEY &&
            ReadAttribute(h, o, a.type).first == CKR_ATTRIBUTE_SENSITIVE) {
          replaced[i] = CKR_ATTRIBUTE_TYPE_INVALID;
        }
        break;
      case Defect::kAlwaysAuthenticateTypeInvalid:
        if (a.type == CKA_ALWAYS_AUTHENTICATE && object_class() == CKO_PRIVATE_KEY) {
          a.ulValueLen = CK_UNAVAILABLE_INFORMATION;
          replaced[i] = CKR_ATTRIBUTE_TYPE_INVALID;
        }
        break;
      case Defect::kBufferTooSmallReturnsOk:
        if (a.pValue != nullptr && a.ulValueLen == CK_UNAVAILABLE_INFORMATION) {
          auto [value_rv, value] = ReadAttribute(h, o, a.type);
          if (value_rv == CKR_OK && value.size() > buffer_len[i]) {
            std::memcpy(a.pValue, value.data(), buffer_len[i]);
            a.ulValueLen = buffer_len[i];
            replaced[i] = CKR_OK;
          }
        }
        break;
      default:
        break;
    }
  }
  if (defect == Defect::kUlValueLenNotUnavailable) {
    for (CK_ULONG i = 0; i < count; ++i)
      if (tmpl[i].ulValueLen == CK_UNAVAILABLE_INFORMATION) tmpl[i].ulValueLen = 0;
    return rv;
  }
  bool any = false;
  for (const auto& r : replaced) any = any || r.has_value();
  if (!any) return rv;
  // Recompute the overall result from every entry's own outcome.
  CK_RV sensitive = CKR_OK, invalid = CKR_OK, too_small = CKR_OK;
  for (CK_ULONG i = 0; i < count; ++i) {
    CK_RV entry = CKR_OK;
    if (replaced[i]) {
      entry = *replaced[i];
    } else if (tmpl[i].ulValueLen == CK_UNAVAILABLE_INFORMATION) {
      entry = ReadAttribute(h, o, tmpl[i].type).first;
      if (entry == CKR_OK) entry = CKR_BUFFER_TOO_SMALL;  // readable, so the buffer was short
    }
    if (entry == CKR_ATTRIBUTE_SENSITIVE)
      sensitive = entry;
    else if (entry == CKR_ATTRIBUTE_TYPE_INVALID)
      invalid = entry;
    else if (entry == CKR_BUFFER_TOO_SMALL)
      too_small = entry;
    else if (entry != CKR_OK)
      return rv;
  }
  if (sensitive != CKR_OK) return sensitive;
  if (invalid != CKR_OK) return invalid;
  return too_small;
}

CK_ATTRIBUTE* FindInTemplate(std::vector<CK_ATTRIBUTE>& tmpl, CK_ATTRIBUTE_TYPE type) {
  for (auto& a : tmpl)
    if (a.type == type) return &a;
  return nullptr;
}

CK_RV Shim_C_FindObjectsInit(CK_SESSION_HANDLE h, CK_ATTRIBUTE_PTR tmpl, CK_ULONG count) {
  if (BrokenChild()) return CKR_DEVICE_ERROR;
  if (count > 0) CrashOnNull(tmpl);
  WithSession(h, [](SessionState& s) { s.drop_certificates = false; });
  if (Injected() == Defect::kSubjectSearchFindsNothing && tmpl != nullptr) {
    bool has_subject = false;
    for (CK_ULONG i = 0; i < count; ++i) has_subject = has_subject || tmpl[i].type == CKA_SUBJECT;
    WithSession(h, [&](SessionState& s) { s.find_nothing = has_subject; });
  }
  if (Injected() != Defect::kCertIdMismatch || tmpl == nullptr)
    return Real().C_FindObjectsInit(h, tmpl, count);
  std::vector<CK_ATTRIBUTE> copy(tmpl, tmpl + count);
  CK_ATTRIBUTE* id = FindInTemplate(copy, CKA_ID);
  CK_ATTRIBUTE* cls = FindInTemplate(copy, CKA_CLASS);
  if (id == nullptr || id->pValue == nullptr || id->ulValueLen == 0)
    return Real().C_FindObjectsInit(h, tmpl, count);
  if (cls != nullptr && cls->pValue != nullptr && cls->ulValueLen == sizeof(CK_OBJECT_CLASS) &&
      *static_cast<CK_OBJECT_CLASS*>(cls->pValue) == CKO_CERTIFICATE) {
    // The certificate "has" the flipped ID: search the token for what that maps to.
    Bytes flipped(static_cast<uint8_t*>(id->pValue),
                  static_cast<uint8_t*>(id->pValue) + id->ulValueLen);
    flipped.back() ^= 0x01;
    id->pValue = flipped.data();
    return Real().C_FindObjectsInit(h, copy.data(), count);
  }
  if (cls == nullptr) WithSession(h, [](SessionState& s) { s.drop_certificates = true; });
  return Real().C_FindObjectsInit(h, tmpl, count);
}

CK_RV Shim_C_FindObjects(CK_SESSION_HANDLE h, CK_OBJECT_HANDLE_PTR out, CK_ULONG max,
                         CK_ULONG_PTR count) {
  if (BrokenChild()) return CKR_DEVICE_ERROR;
  CrashOnNull(count);
  const bool drop_certificates =
      WithSession(h, [](SessionState& s) { return s.drop_certificates; });
  if (count != nullptr && WithSession(h, [](SessionState& s) { return s.find_nothing; })) {
    *count = 0;
    return CKR_OK;
  }
  const bool drop_public = Injected() == Defect::kNoPublicKeyObjects;
  if ((!drop_certificates && !drop_public) || out == nullptr || count == nullptr)
    return Real().C_FindObjects(h, out, max, count);
  // Filter, fetching more until `max` survive or the search is exhausted.
  CK_ULONG kept = 0;
  while (kept < max) {
    CK_ULONG got = 0;
    const CK_ULONG batch = kept;  // the new handles land at out[batch ...]
    CK_RV rv = Real().C_FindObjects(h, out + batch, max - batch, &got);
    if (rv != CKR_OK) return rv;
    if (got == 0) break;
    for (CK_ULONG i = 0; i < got; ++i) {
      const CK_OBJECT_HANDLE o = out[batch + i];
      const auto cls = ClassOf(h, o);
      const bool drop =
          (drop_public && cls == CKO_PUBLIC_KEY) || (drop_certificates && cls == CKO_CERTIFICATE);
      if (!drop) out[kept++] = o;
    }
  }
  *count = kept;
  return CKR_OK;
}

CK_RV Shim_C_SignInit(CK_SESSION_HANDLE h, CK_MECHANISM_PTR mechanism, CK_OBJECT_HANDLE key) {
  if (BrokenChild()) return CKR_DEVICE_ERROR;
  UnsafeSection section;
  if (section.collided()) return CKR_DEVICE_ERROR;
  if (WithSession(h, [](SessionState& s) { return s.stuck; })) return CKR_OPERATION_ACTIVE;
  CK_MECHANISM changed;
  CK_RSA_PKCS_PSS_PARAMS pss;
  if (Injected() == Defect::kPssIgnoresSaltParams && mechanism != nullptr &&
      IsPss(mechanism->mechanism) && mechanism->pParameter != nullptr &&
      mechanism->ulParameterLen == sizeof pss) {
    std::memcpy(&pss, mechanism->pParameter, sizeof pss);
    pss.sLen = pss.sLen == 0 ? 20 : 0;
    changed = *mechanism;
    changed.pParameter = &pss;
    mechanism = &changed;
  }
  CK_RV rv = Real().C_SignInit(h, mechanism, key);
  if (rv == CKR_OK && mechanism != nullptr)
    WithSession(h, [&](SessionState& s) { s.sign_mechanism = mechanism->mechanism; });
  return rv;
}

// A DigestInfo's hash (the OCTET STRING at its end), or nothing.
std::optional<Bytes> HashInDigestInfo(CK_BYTE_PTR data, CK_ULONG len) {
  for (CK_ULONG hash_len : {20ul, 28ul, 32ul, 48ul, 64ul}) {
    const CK_ULONG prefix = hash_len == 20 ? 15 : 19;
    if (len == prefix + hash_len && data[0] == 0x30 && data[prefix - 2] == 0x04 &&
        data[prefix - 1] == hash_len)
      return Bytes(data + prefix, data + len);
  }
  return std::nullopt;
}

// pss-sign-data-invalid: a PSS operation is accepted at C_SignInit and refused when it is to
// produce the signature. `finish(buffer, length)` runs the real C_Sign/C_SignFinal; it is driven
// to the end so the real operation ends, as the refusal ends the caller's.
template <typename Finish>
std::optional<CK_RV> RefusePssSignature(CK_SESSION_HANDLE h, Finish finish) {
  if (Injected() != Defect::kPssSignDataInvalid ||
      !IsPss(WithSession(h, [](SessionState& s) { return s.sign_mechanism; })))
    return std::nullopt;
  CK_ULONG len = 0;
  const CK_RV rv = finish(nullptr, &len);
  if (rv != CKR_OK) return rv;  // no active operation: answered as the module answers it
  Bytes discarded(len);
  finish(discarded.data(), &len);
  return CKR_DATA_INVALID;
}

CK_RV Shim_C_Sign(CK_SESSION_HANDLE h, CK_BYTE_PTR data, CK_ULONG data_len, CK_BYTE_PTR sig,
                  CK_ULONG_PTR sig_len) {
  if (BrokenChild()) return CKR_DEVICE_ERROR;
  UnsafeSection section;
  if (section.collided()) return CKR_DEVICE_ERROR;
  if (auto refused = RefusePssSignature(h, [&](CK_BYTE_PTR out, CK_ULONG_PTR len) {
        return Real().C_Sign(h, data, data_len, out, len);
      }))
    return *refused;
  std::optional<Bytes> hash_only;
  if (Injected() == Defect::kRsaPkcsIgnoresDigestInfo && data != nullptr &&
      WithSession(h, [](SessionState& s) { return s.sign_mechanism; }) == CKM_RSA_PKCS)
    hash_only = HashInDigestInfo(data, data_len);
  if (hash_only) {
    data = hash_only->data();
    data_len = hash_only->size();
  }
  CK_RV rv = SignOutput(
      h,
      [&](CK_BYTE_PTR out, CK_ULONG_PTR len) { return Real().C_Sign(h, data, data_len, out, len); },
      sig, sig_len);
  NoteSignResult(h, rv);
  return rv;
}

CK_RV Shim_C_SignUpdate(CK_SESSION_HANDLE h, CK_BYTE_PTR part, CK_ULONG len) {
  if (BrokenChild()) return CKR_DEVICE_ERROR;
  CK_RV rv = Real().C_SignUpdate(h, part, len);
  NoteSignResult(h, rv);
  return rv;
}

CK_RV Shim_C_SignFinal(CK_SESSION_HANDLE h, CK_BYTE_PTR sig, CK_ULONG_PTR sig_len) {
  if (BrokenChild()) return CKR_DEVICE_ERROR;
  if (auto refused = RefusePssSignature(
          h, [&](CK_BYTE_PTR out, CK_ULONG_PTR len) { return Real().C_SignFinal(h, out, len); }))
    return *refused;
  CK_RV rv = SignOutput(
      h, [&](CK_BYTE_PTR out, CK_ULONG_PTR len) { return Real().C_SignFinal(h, out, len); }, sig,
      sig_len);
  NoteSignResult(h, rv);
  return rv;
}

CK_RV Shim_C_GetOperationState(CK_SESSION_HANDLE h, CK_BYTE_PTR state, CK_ULONG_PTR state_len) {
  if (BrokenChild()) return CKR_DEVICE_ERROR;
  if (Injected() != Defect::kOperationStateEndsSign)
    return Real().C_GetOperationState(h, state, state_len);
  // Ends whatever signing operation is active: a multi-part one by C_SignFinal, a single-part
  // one by C_Sign over a dummy input (either call ends the operation, whatever it answers).
  Bytes signature(2048);
  CK_ULONG length = signature.size();
  const CK_RV final_rv = Real().C_SignFinal(h, signature.data(), &length);
  if (final_rv != CKR_OK && final_rv != CKR_OPERATION_NOT_INITIALIZED) {
    Bytes dummy(32, 0x11);
    length = signature.size();
    Real().C_Sign(h, dummy.data(), static_cast<CK_ULONG>(dummy.size()), signature.data(), &length);
  }
  return CKR_STATE_UNSAVEABLE;
}

CK_RV Shim_C_GenerateRandom(CK_SESSION_HANDLE h, CK_BYTE_PTR out, CK_ULONG len) {
  if (BrokenChild()) return CKR_DEVICE_ERROR;
  CrashOnNull(out);
  return Real().C_GenerateRandom(h, out, len);
}

}  // namespace

extern "C" CK_RV C_GetFunctionList(CK_FUNCTION_LIST_PTR_PTR list);
#ifndef SIGNUM_SHIM_2_40_ONLY
extern "C" CK_RV C_GetInterfaceList(CK_INTERFACE_PTR list, CK_ULONG_PTR count);
extern "C" CK_RV C_GetInterface(CK_UTF8CHAR_PTR name, CK_VERSION_PTR version,
                                CK_INTERFACE_PTR_PTR iface, CK_FLAGS flags);
#endif

namespace {

// Installs the wrappers into both lists (their 2.x parts are laid out alike). An entry the module
// lacks stays NULL.
template <typename List>
void Install(List& list, const CK_FUNCTION_LIST& real) {
#define SIGNUM_SHIM_WRAP(name) \
  if (real.name != nullptr) list.name = Shim_##name;
  SIGNUM_SHIM_WRAP(C_Initialize)
  SIGNUM_SHIM_WRAP(C_Finalize)
  SIGNUM_SHIM_WRAP(C_GetInfo)
  SIGNUM_SHIM_WRAP(C_GetSlotList)
  SIGNUM_SHIM_WRAP(C_GetTokenInfo)
  SIGNUM_SHIM_WRAP(C_GetMechanismList)
  SIGNUM_SHIM_WRAP(C_OpenSession)
  SIGNUM_SHIM_WRAP(C_CloseSession)
  SIGNUM_SHIM_WRAP(C_CloseAllSessions)
  SIGNUM_SHIM_WRAP(C_Login)
  SIGNUM_SHIM_WRAP(C_Logout)
  SIGNUM_SHIM_WRAP(C_GetOperationState)
  SIGNUM_SHIM_WRAP(C_GetAttributeValue)
  SIGNUM_SHIM_WRAP(C_FindObjectsInit)
  SIGNUM_SHIM_WRAP(C_FindObjects)
  SIGNUM_SHIM_WRAP(C_SignInit)
  SIGNUM_SHIM_WRAP(C_Sign)
  SIGNUM_SHIM_WRAP(C_SignUpdate)
  SIGNUM_SHIM_WRAP(C_SignFinal)
  SIGNUM_SHIM_WRAP(C_GenerateRandom)
#undef SIGNUM_SHIM_WRAP
  list.C_GetFunctionList = C_GetFunctionList;
}

CK_RV LoadTarget(Shim& s) {
  const char* target = std::getenv("SIGNUM_SHIM_TARGET");
  if (target == nullptr || *target == '\0') {
    std::fprintf(stderr, "libsignum-defect-shim: set SIGNUM_SHIM_TARGET to the real module\n");
    return CKR_GENERAL_ERROR;
  }
  const char* defect_name = std::getenv("SIGNUM_SHIM_DEFECT");
  const DefectInfo* defect = signum::conformance::FindDefect(defect_name ? defect_name : "");
  if (defect == nullptr) {
    std::fprintf(stderr, "libsignum-defect-shim: unknown SIGNUM_SHIM_DEFECT '%s'\n", defect_name);
    return CKR_GENERAL_ERROR;
  }
  s.defect = defect->defect;
  s.handle = ::dlopen(target, RTLD_NOW | RTLD_LOCAL);
  if (s.handle == nullptr) {
    std::fprintf(stderr, "libsignum-defect-shim: cannot load %s: %s\n", target, ::dlerror());
    return CKR_GENERAL_ERROR;
  }
  auto get_list = reinterpret_cast<CK_C_GetFunctionList>(::dlsym(s.handle, "C_GetFunctionList"));
  CK_FUNCTION_LIST_PTR real = nullptr;
  if (get_list == nullptr || get_list(&real) != CKR_OK || real == nullptr) {
    std::fprintf(stderr, "libsignum-defect-shim: %s has no usable C_GetFunctionList\n", target);
    return CKR_GENERAL_ERROR;
  }
  s.real = *real;
  s.shim2 = s.real;
  Install(s.shim2, s.real);

  auto get_list_3 =
      reinterpret_cast<CK_C_GetInterfaceList>(::dlsym(s.handle, "C_GetInterfaceList"));
  std::vector<CK_INTERFACE> target_interfaces;
  CK_ULONG n = 0;
  if (get_list_3 != nullptr && get_list_3(nullptr, &n) == CKR_OK && n > 0) {
    target_interfaces.resize(n);
    if (get_list_3(target_interfaces.data(), &n) != CKR_OK) n = 0;
    target_interfaces.resize(n);
  }
  for (CK_INTERFACE iface : target_interfaces) {
    const bool standard =
        iface.pInterfaceName != nullptr &&
        std::strcmp(reinterpret_cast<char*>(iface.pInterfaceName), "PKCS 11") == 0;
    auto* version = static_cast<CK_VERSION*>(iface.pFunctionList);
    if (standard && version != nullptr && version->major == 3 && !s.has3) {
      s.real3 = *static_cast<CK_FUNCTION_LIST_3_0*>(iface.pFunctionList);
      s.has3 = true;
      s.shim3 = s.real3;
      Install(s.shim3, s.real);
#ifndef SIGNUM_SHIM_2_40_ONLY
      s.shim3.C_GetInterfaceList = C_GetInterfaceList;
      s.shim3.C_GetInterface = C_GetInterface;
#endif
      iface.pFunctionList = &s.shim3;
    } else if (standard && version != nullptr && version->major == 2) {
      iface.pFunctionList = &s.shim2;
    }
    // Vendor interfaces pass through untouched (no defect reaches them).
    s.interfaces.push_back(iface);
  }
  if (s.interfaces.empty()) {
    static CK_UTF8CHAR name[] = "PKCS 11";
    s.interfaces.push_back({name, &s.shim2, 0});
  }
  pthread_atfork(nullptr, nullptr, [] { in_forked_child = true; });
  return CKR_OK;
}

CK_RV EnsureLoaded() {
  static std::once_flag once;
  std::call_once(once, [] { TheShim().load_rv = LoadTarget(TheShim()); });
  return TheShim().load_rv;
}

}  // namespace

extern "C" __attribute__((visibility("default"))) CK_RV C_GetFunctionList(
    CK_FUNCTION_LIST_PTR_PTR list) {
  if (list == nullptr) return CKR_ARGUMENTS_BAD;
  CK_RV rv = EnsureLoaded();
  if (rv != CKR_OK) return rv;
  *list = &TheShim().shim2;
  return CKR_OK;
}

#ifndef SIGNUM_SHIM_2_40_ONLY
extern "C" __attribute__((visibility("default"))) CK_RV C_GetInterfaceList(CK_INTERFACE_PTR list,
                                                                           CK_ULONG_PTR count) {
  if (count == nullptr) return CKR_ARGUMENTS_BAD;
  CK_RV rv = EnsureLoaded();
  if (rv != CKR_OK) return rv;
  const auto& interfaces = TheShim().interfaces;
  if (list == nullptr) {
    *count = interfaces.size();
    return CKR_OK;
  }
  if (*count < interfaces.size()) {
    *count = interfaces.size();
    return CKR_BUFFER_TOO_SMALL;
  }
  std::copy(interfaces.begin(), interfaces.end(), list);
  *count = interfaces.size();
  return CKR_OK;
}

extern "C" __attribute__((visibility("default"))) CK_RV C_GetInterface(CK_UTF8CHAR_PTR name,
                                                                       CK_VERSION_PTR version,
                                                                       CK_INTERFACE_PTR_PTR iface,
                                                                       CK_FLAGS flags) {
  if (iface == nullptr) return CKR_ARGUMENTS_BAD;
  CK_RV rv = EnsureLoaded();
  if (rv != CKR_OK) return rv;
  for (CK_INTERFACE& candidate : TheShim().interfaces) {
    if (name != nullptr && std::strcmp(reinterpret_cast<char*>(name),
                                       reinterpret_cast<char*>(candidate.pInterfaceName)) != 0)
      continue;
    const auto* v = static_cast<CK_VERSION*>(candidate.pFunctionList);
    if (version != nullptr && (v->major != version->major || v->minor != version->minor)) continue;
    if ((candidate.flags & flags) != flags) continue;
    *iface = &candidate;
    return CKR_OK;
  }
  return CKR_ARGUMENTS_BAD;
}
#endif  // SIGNUM_SHIM_2_40_ONLY

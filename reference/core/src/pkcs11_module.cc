// Loading a PKCS#11 module and driving sessions on it. See pkcs11_module.h.
#include "signum/core/pkcs11_module.h"

#include <dlfcn.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <mutex>
#include <utility>

namespace signum {
namespace {

// Spelled once: the interface name of PKCS#11 3.0 (section 5.2 of the 3.0 base spec).
constexpr char kPkcs11InterfaceName[] = "PKCS 11";

// One Pkcs11Module per loaded library and process. A PKCS#11 library has exactly one
// "initialised" state per process, so two owners of the same library would step on each other:
// the second C_Initialize gets CKR_CRYPTOKI_ALREADY_INITIALIZED, and when the first owner dies its
// C_Finalize pulls the library out from under the second. Load() therefore hands out the live
// instance for a library it already loaded (keyed by dlopen handle, so symlinked paths match);
// the options of the first Load() stay in force, as C_Initialize can only be called once anyway.
//
// The mutex is held across dlopen + C_Initialize and across the destructor's C_Finalize. When an
// instance's last reference is gone but its destructor has not finished finalising yet, its
// registry entry is expired but still present; Load() waits for the destructor to erase it
// (registry_cv) instead of initialising a library that is about to be finalised.
struct Registry {
  std::mutex mu;
  std::condition_variable cv;
  std::vector<std::pair<void*, std::weak_ptr<Pkcs11Module>>> modules;
};

Registry& GetRegistry() {
  // Leaked on purpose: modules may be destroyed from static destructors after this would be.
  static Registry* registry = new Registry;
  return *registry;
}

// Strips trailing blanks and NULs (some modules pad with NUL rather than spaces).
std::string TrimRight(std::string s) {
  while (!s.empty() && (s.back() == ' ' || s.back() == '\0')) s.pop_back();
  return s;
}

}  // namespace

std::string TrimPadded(const CK_UTF8CHAR* field, size_t width) {
  return TrimRight(std::string(reinterpret_cast<const char*>(field), width));
}

void CopyPadded(std::string_view value, CK_UTF8CHAR* field, size_t width) {
  size_t n = std::min(value.size(), width);
  // Never cut a UTF-8 sequence in half: back off over continuation bytes (10xxxxxx) when the
  // byte after the cut is one.
  if (n < value.size()) {
    while (n > 0 && (static_cast<unsigned char>(value[n]) & 0xC0) == 0x80) --n;
  }
  std::memset(field, ' ', width);
  std::memcpy(field, value.data(), n);
}

CK_ATTRIBUTE MakeAttribute(CK_ATTRIBUTE_TYPE type, const void* value, CK_ULONG length) {
  // PKCS#11 templates are not const-correct; modules only read pValue in templates they consume.
  return CK_ATTRIBUTE{type, const_cast<void*>(value), length};
}

// --- Pkcs11Module --------------------------------------------------------------------------------

Result<std::shared_ptr<Pkcs11Module>> Pkcs11Module::Load(const std::string& path,
                                                         Pkcs11InitOptions options) {
  const std::string where = "PKCS#11 module " + path;
  if (path.empty()) return InvalidArgumentError("PKCS#11 module path is empty");
  if (::access(path.c_str(), F_OK) != 0) {
    const int err = errno;
    if (err == ENOENT) return NotFoundError(where + ": no such file");
    return FailedPreconditionError(where + ": " + std::strerror(err));
  }

  Registry& registry = GetRegistry();
  std::unique_lock<std::mutex> lock(registry.mu);

  // RTLD_NODELETE: dlclose() only drops our reference and never unmaps the library. Unmapping
  // SoftHSM2 in an OpenSSL 3 process is a known way to crash at exit (softhsm/SoftHSMv2#635:
  // OpenSSL's atexit cleanup and SoftHSM's static destructors run in the wrong order, or run code
  // that is no longer mapped). Keeping the library mapped until exit costs nothing and lets
  // the destructor balance dlopen/dlclose for every module alike.
  ::dlerror();  // clear a stale error so the one we report is ours
  void* handle = ::dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE);
  if (handle == nullptr) {
    const char* err = ::dlerror();
    return FailedPreconditionError(where +
                                   ": dlopen failed: " + (err != nullptr ? err : "unknown error"));
  }

  // Already loaded by us? Wait out an instance whose destructor is still finalising.
  for (;;) {
    auto it = std::find_if(registry.modules.begin(), registry.modules.end(),
                           [&](const auto& entry) { return entry.first == handle; });
    if (it == registry.modules.end()) break;
    if (std::shared_ptr<Pkcs11Module> live = it->second.lock()) {
      ::dlclose(handle);  // the live instance holds its own reference
      return live;
    }
    registry.cv.wait(lock);
  }

  // Until the module object exists, failures drop the dlopen reference themselves (the object's
  // destructor would take registry.mu, which we hold).
  auto fail = [handle](Status status) {
    ::dlclose(handle);
    return status;
  };

  // PKCS#11 3.0: C_GetInterface("PKCS 11") -> a CK_FUNCTION_LIST_3_0 whose first members are laid
  // out exactly like CK_FUNCTION_LIST, so one pointer serves 2.x-style calls and the other the
  // 3.0 additions. Modules that only return a 2.x list through it are used via C_GetFunctionList.
  CK_FUNCTION_LIST_PTR functions = nullptr;
  CK_FUNCTION_LIST_3_0_PTR functions_3_0 = nullptr;
  auto get_interface = reinterpret_cast<CK_C_GetInterface>(::dlsym(handle, "C_GetInterface"));
  if (get_interface != nullptr) {
    CK_VERSION version{3, 0};
    CK_INTERFACE_PTR iface = nullptr;
    CK_RV rv =
        get_interface(reinterpret_cast<CK_UTF8CHAR_PTR>(const_cast<char*>(kPkcs11InterfaceName)),
                      &version, &iface, 0);
    if (rv != CKR_OK || iface == nullptr) {
      iface = nullptr;
      rv = get_interface(nullptr, nullptr, &iface, 0);  // the module's default interface
    }
    if (rv == CKR_OK && iface != nullptr && iface->pFunctionList != nullptr &&
        iface->pInterfaceName != nullptr &&
        std::strcmp(reinterpret_cast<const char*>(iface->pInterfaceName), kPkcs11InterfaceName) ==
            0) {
      auto* list = static_cast<CK_FUNCTION_LIST_3_0_PTR>(iface->pFunctionList);
      if (list->version.major >= 3) {
        functions_3_0 = list;
        functions = reinterpret_cast<CK_FUNCTION_LIST_PTR>(list);
      }
    }
  }
  if (functions == nullptr) {
    auto get_function_list =
        reinterpret_cast<CK_C_GetFunctionList>(::dlsym(handle, "C_GetFunctionList"));
    if (get_function_list == nullptr) {
      return fail(InvalidArgumentError(where +
                                       " is not a PKCS#11 module: it exports neither "
                                       "C_GetInterface (3.0) nor C_GetFunctionList (missing "
                                       "symbol C_GetFunctionList)"));
    }
    CK_RV rv = get_function_list(&functions);
    if (rv != CKR_OK) return fail(CkStatus(rv, where + ": C_GetFunctionList"));
    if (functions == nullptr) {
      return fail(InternalError(where + ": C_GetFunctionList returned no list"));
    }
  }
  if (functions->C_Initialize == nullptr) {
    return fail(InternalError(where + ": the function list has no C_Initialize"));
  }

  // SoftHSM2 only creates its mutexes when told the application may call it from several
  // threads: CKF_OS_LOCKING_OK (or mutex callbacks). With NULL arguments it runs lock-free.
  CK_C_INITIALIZE_ARGS args{};
  args.flags = CKF_OS_LOCKING_OK;
  CK_RV rv = functions->C_Initialize(options.os_locking ? &args : nullptr);
  bool finalize = false;
  if (rv == CKR_OK) {
    finalize = options.finalize_on_destroy;
  } else if (rv != CKR_CRYPTOKI_ALREADY_INITIALIZED) {
    return fail(CkStatus(rv, where + ": C_Initialize"));
  }
  // CKR_CRYPTOKI_ALREADY_INITIALIZED: someone else in this process initialised it (e.g. NSS, or
  // a PKCS#11 spy forwarding to a module we also loaded directly). Use it, but leave C_Finalize to
  // them.

  std::shared_ptr<Pkcs11Module> module(new Pkcs11Module());
  module->path_ = path;
  module->handle_ = handle;
  module->functions_ = functions;
  module->functions_3_0_ = functions_3_0;
  module->finalize_ = finalize;
  registry.modules.emplace_back(handle, module);
  return module;
}

Pkcs11Module::~Pkcs11Module() {
  if (handle_ == nullptr) return;
  Registry& registry = GetRegistry();
  // Loads that hold registry.mu have their own dlopen reference; they only wait for this entry to
  // go (see Load), so doing C_Finalize under the lock keeps init/finalize strictly ordered.
  std::lock_guard<std::mutex> lock(registry.mu);
  if (finalize_ && functions_ != nullptr && functions_->C_Finalize != nullptr) {
    functions_->C_Finalize(nullptr);
  }
  std::erase_if(registry.modules, [&](const auto& entry) {
    return entry.first == handle_ && entry.second.expired();
  });
  registry.cv.notify_all();
  // With RTLD_NODELETE (see Load) this only drops our reference; the library stays mapped.
  ::dlclose(handle_);
}

CK_INFO Pkcs11Module::info() const {
  CK_INFO info{};
  if (functions_ != nullptr && functions_->C_GetInfo(&info) != CKR_OK) info = CK_INFO{};
  return info;
}

Result<std::vector<CK_SLOT_ID>> Pkcs11Module::SlotsWithTokens() const {
  // The count can change between the two calls (a token inserted): retry on BUFFER_TOO_SMALL.
  for (int attempt = 0; attempt < 5; ++attempt) {
    CK_ULONG count = 0;
    CK_RV rv = functions_->C_GetSlotList(CK_TRUE, nullptr, &count);
    if (rv != CKR_OK) return CkStatus(rv, "C_GetSlotList");
    std::vector<CK_SLOT_ID> slots(count);
    if (count == 0) return slots;
    rv = functions_->C_GetSlotList(CK_TRUE, slots.data(), &count);
    if (rv == CKR_BUFFER_TOO_SMALL) continue;
    if (rv != CKR_OK) return CkStatus(rv, "C_GetSlotList");
    slots.resize(count);
    return slots;
  }
  return UnavailableError("C_GetSlotList: the slot list kept changing");
}

Result<CK_SLOT_ID> Pkcs11Module::FindSlotByTokenLabel(std::string_view label) const {
  SIGNUM_ASSIGN_OR_RETURN(std::vector<CK_SLOT_ID> slots, SlotsWithTokens());
  std::string available;
  for (CK_SLOT_ID slot : slots) {
    CK_TOKEN_INFO info{};
    // Unrecognised or uninitialised tokens (SoftHSM always offers one empty slot) are skipped.
    if (functions_->C_GetTokenInfo(slot, &info) != CKR_OK) continue;
    if ((info.flags & CKF_TOKEN_INITIALIZED) == 0) continue;
    const std::string token_label = TrimPadded(info.label, sizeof info.label);
    if (token_label == label) return slot;
    if (!available.empty()) available += ", ";
    available += token_label;
  }
  return NotFoundError("token '" + std::string(label) + "' not found (tokens: " +
                       (available.empty() ? std::string("none") : available) + ")");
}

Result<CK_TOKEN_INFO> Pkcs11Module::TokenInfo(CK_SLOT_ID slot) const {
  CK_TOKEN_INFO info{};
  CK_RV rv = functions_->C_GetTokenInfo(slot, &info);
  if (rv != CKR_OK) return CkStatus(rv, "C_GetTokenInfo");
  return info;
}

Result<std::vector<CK_MECHANISM_TYPE>> Pkcs11Module::Mechanisms(CK_SLOT_ID slot) const {
  for (int attempt = 0; attempt < 5; ++attempt) {
    CK_ULONG count = 0;
    CK_RV rv = functions_->C_GetMechanismList(slot, nullptr, &count);
    if (rv != CKR_OK) return CkStatus(rv, "C_GetMechanismList");
    std::vector<CK_MECHANISM_TYPE> mechanisms(count);
    if (count == 0) return mechanisms;
    rv = functions_->C_GetMechanismList(slot, mechanisms.data(), &count);
    if (rv == CKR_BUFFER_TOO_SMALL) continue;
    if (rv != CKR_OK) return CkStatus(rv, "C_GetMechanismList");
    mechanisms.resize(count);
    return mechanisms;
  }
  return InternalError("C_GetMechanismList: the mechanism count kept changing");
}

// --- Pkcs11Session -------------------------------------------------------------------------------

Result<Pkcs11Session> Pkcs11Session::Open(std::shared_ptr<Pkcs11Module> module, CK_SLOT_ID slot,
                                          bool read_write) {
  if (module == nullptr) return InvalidArgumentError("Pkcs11Session::Open: no module");
  CK_FLAGS flags = CKF_SERIAL_SESSION | (read_write ? CKF_RW_SESSION : 0);
  CK_SESSION_HANDLE handle = CK_INVALID_HANDLE;
  CK_RV rv = module->functions()->C_OpenSession(slot, flags, nullptr, nullptr, &handle);
  if (rv != CKR_OK) return CkStatus(rv, "C_OpenSession");
  return Pkcs11Session(std::move(module), slot, handle);
}

Pkcs11Session::~Pkcs11Session() {
  if (module_ != nullptr && handle_ != CK_INVALID_HANDLE) {
    module_->functions()->C_CloseSession(handle_);  // nothing useful to do if this fails
  }
}

Pkcs11Session::Pkcs11Session(Pkcs11Session&& other) noexcept
    : module_(std::move(other.module_)),
      slot_(other.slot_),
      handle_(std::exchange(other.handle_, CK_INVALID_HANDLE)) {}

Pkcs11Session& Pkcs11Session::operator=(Pkcs11Session&& other) noexcept {
  if (this != &other) {
    if (module_ != nullptr && handle_ != CK_INVALID_HANDLE) {
      module_->functions()->C_CloseSession(handle_);
    }
    module_ = std::move(other.module_);
    slot_ = other.slot_;
    handle_ = std::exchange(other.handle_, CK_INVALID_HANDLE);
  }
  return *this;
}

Status Pkcs11Session::Login(CK_USER_TYPE user, std::string_view pin) {
  // C_Login does not write the PIN; the API just isn't const-correct.
  CK_RV rv =
      fn()->C_Login(handle_, user, reinterpret_cast<CK_UTF8CHAR_PTR>(const_cast<char*>(pin.data())),
                    static_cast<CK_ULONG>(pin.size()));
  if (rv == CKR_USER_ALREADY_LOGGED_IN) return Status::Ok();
  return CkStatus(rv, "C_Login");
}

Status Pkcs11Session::Logout() { return CkStatus(fn()->C_Logout(handle_), "C_Logout"); }

Result<CK_SESSION_INFO> Pkcs11Session::Info() const {
  CK_SESSION_INFO info{};
  CK_RV rv = fn()->C_GetSessionInfo(handle_, &info);
  if (rv != CKR_OK) return CkStatus(rv, "C_GetSessionInfo");
  return info;
}

Result<std::vector<CK_OBJECT_HANDLE>> Pkcs11Session::FindObjects(std::vector<CK_ATTRIBUTE> tmpl) {
  CK_RV rv = fn()->C_FindObjectsInit(handle_, tmpl.empty() ? nullptr : tmpl.data(),
                                     static_cast<CK_ULONG>(tmpl.size()));
  if (rv != CKR_OK) return CkStatus(rv, "C_FindObjectsInit");
  std::vector<CK_OBJECT_HANDLE> found;
  constexpr CK_ULONG kChunk = 64;
  CK_OBJECT_HANDLE chunk[kChunk];
  Status status;
  for (;;) {
    CK_ULONG count = 0;
    rv = fn()->C_FindObjects(handle_, chunk, kChunk, &count);
    if (rv != CKR_OK) {
      status = CkStatus(rv, "C_FindObjects");
      break;
    }
    if (count == 0) break;  // a short chunk need not be the last one; only 0 is
    found.insert(found.end(), chunk, chunk + std::min(count, kChunk));
  }
  // Always end the operation, or the session stays in find mode and every later call fails with
  // CKR_OPERATION_ACTIVE.
  CK_RV final_rv = fn()->C_FindObjectsFinal(handle_);
  if (!status.ok()) return status;
  if (final_rv != CKR_OK) return CkStatus(final_rv, "C_FindObjectsFinal");
  return found;
}

Result<Bytes> Pkcs11Session::GetAttribute(CK_OBJECT_HANDLE object, CK_ATTRIBUTE_TYPE type) {
  const std::string what = "C_GetAttributeValue(" + AttributeName(type) + ")";
  // Two calls: the length, then the value. The value can (rarely) change size in between.
  for (int attempt = 0; attempt < 3; ++attempt) {
    CK_ATTRIBUTE attr{type, nullptr, 0};
    CK_RV rv = fn()->C_GetAttributeValue(handle_, object, &attr, 1);
    if (rv == CKR_ATTRIBUTE_TYPE_INVALID) {
      return Status(ErrorCode::kNotFound, what + ": the object has no " + AttributeName(type), rv);
    }
    if (rv == CKR_ATTRIBUTE_SENSITIVE) {
      return Status(ErrorCode::kFailedPrecondition,
                    what + ": " + AttributeName(type) + " is sensitive and cannot be read", rv);
    }
    if (rv != CKR_OK) return CkStatus(rv, what);
    if (attr.ulValueLen == CK_UNAVAILABLE_INFORMATION) {
      return NotFoundError(what + ": the value is unavailable");
    }
    Bytes value(attr.ulValueLen);
    if (value.empty()) return value;
    attr.pValue = value.data();
    rv = fn()->C_GetAttributeValue(handle_, object, &attr, 1);
    if (rv == CKR_BUFFER_TOO_SMALL) continue;
    if (rv != CKR_OK) return CkStatus(rv, what);
    value.resize(attr.ulValueLen);
    return value;
  }
  return InternalError(what + ": the value kept changing size");
}

Result<bool> Pkcs11Session::GetBoolAttribute(CK_OBJECT_HANDLE object, CK_ATTRIBUTE_TYPE type) {
  SIGNUM_ASSIGN_OR_RETURN(Bytes value, GetAttribute(object, type));
  if (value.size() != sizeof(CK_BBOOL)) {
    return InternalError(AttributeName(type) + " has " + std::to_string(value.size()) +
                         " bytes, expected a CK_BBOOL");
  }
  return value[0] != CK_FALSE;
}

Result<CK_ULONG> Pkcs11Session::GetUlongAttribute(CK_OBJECT_HANDLE object, CK_ATTRIBUTE_TYPE type) {
  SIGNUM_ASSIGN_OR_RETURN(Bytes value, GetAttribute(object, type));
  if (value.size() != sizeof(CK_ULONG)) {
    return InternalError(AttributeName(type) + " has " + std::to_string(value.size()) +
                         " bytes, expected a CK_ULONG");
  }
  CK_ULONG out = 0;
  std::memcpy(&out, value.data(), sizeof out);
  return out;
}

Result<Bytes> Pkcs11Session::Sign(const CK_MECHANISM& mechanism, CK_OBJECT_HANDLE key,
                                  ByteView data) {
  const std::string mech = MechanismName(mechanism.mechanism);
  CK_RV rv = fn()->C_SignInit(handle_, const_cast<CK_MECHANISM_PTR>(&mechanism), key);
  if (rv != CKR_OK) return CkStatus(rv, "C_SignInit(" + mech + ")");
  auto* input = const_cast<CK_BYTE_PTR>(data.data());
  const auto input_len = static_cast<CK_ULONG>(data.size());
  CK_ULONG length = 0;
  // A length query keeps the operation active; any other failure ends it.
  rv = fn()->C_Sign(handle_, input, input_len, nullptr, &length);
  if (rv != CKR_OK) return CkStatus(rv, "C_Sign(" + mech + ")");
  Bytes signature(length);
  for (int attempt = 0; attempt < 2; ++attempt) {
    length = static_cast<CK_ULONG>(signature.size());
    rv = fn()->C_Sign(handle_, input, input_len, signature.data(), &length);
    if (rv == CKR_BUFFER_TOO_SMALL && length > signature.size()) {
      signature.resize(length);
      continue;
    }
    break;
  }
  if (rv != CKR_OK) return CkStatus(rv, "C_Sign(" + mech + ")");
  signature.resize(length);
  return signature;
}

}  // namespace signum

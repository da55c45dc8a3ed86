// Loading and driving any PKCS#11 module: dlopen, C_GetInterface (3.0) or C_GetFunctionList,
// C_Initialize with OS locking, RAII sessions and login, CK_RV names in every error.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "signum/core/bytes.h"
#include "signum/core/pkcs11.h"
#include "signum/core/status.h"

namespace signum {

// "CKR_PIN_INCORRECT"; "CKR_0x80000123" for unknown values.
std::string CkRvName(CK_RV rv);
// "CKM_SHA256_RSA_PKCS"; "CKM_0x..." for unknown values.
std::string MechanismName(CK_MECHANISM_TYPE mechanism);
std::string AttributeName(CK_ATTRIBUTE_TYPE attribute);
// OK for CKR_OK; otherwise a Status whose message reads "<what>: CKR_X (0x..)" with ck_rv set and
// a fitting ErrorCode (PIN/login errors -> kUnauthenticated, handle/session loss -> kUnavailable,
// bad arguments -> kInvalidArgument, ...).
Status CkStatus(CK_RV rv, std::string_view what);

// Space-padded fixed-width PKCS#11 string fields (labels, manufacturer ...) <-> std::string.
std::string TrimPadded(const CK_UTF8CHAR* field, size_t width);
void CopyPadded(std::string_view value, CK_UTF8CHAR* field, size_t width);

struct Pkcs11InitOptions {
  // CKF_OS_LOCKING_OK: required for SoftHSM2 to lock at all (with NULL args it disables its
  // mutexes).
  bool os_locking = true;
  // Call C_Finalize and dlclose when the module object is destroyed.
  bool finalize_on_destroy = true;
};

class Pkcs11Module {
 public:
  // dlopen(path), prefer C_GetInterface("PKCS 11", 3.0) when exported, else C_GetFunctionList, then
  // C_Initialize. CKR_CRYPTOKI_ALREADY_INITIALIZED is accepted (and then not finalized by us).
  static Result<std::shared_ptr<Pkcs11Module>> Load(const std::string& path,
                                                    Pkcs11InitOptions options = {});
  ~Pkcs11Module();
  Pkcs11Module(const Pkcs11Module&) = delete;
  Pkcs11Module& operator=(const Pkcs11Module&) = delete;

  CK_FUNCTION_LIST_PTR functions() const { return functions_; }
  // Non-null when the module gave us a 3.0 interface.
  CK_FUNCTION_LIST_3_0_PTR functions_3_0() const { return functions_3_0_; }
  const std::string& path() const { return path_; }
  CK_INFO info() const;

  // Slots with a token present.
  Result<std::vector<CK_SLOT_ID>> SlotsWithTokens() const;
  // The slot whose token label (trimmed) equals label.
  Result<CK_SLOT_ID> FindSlotByTokenLabel(std::string_view label) const;
  Result<CK_TOKEN_INFO> TokenInfo(CK_SLOT_ID slot) const;
  Result<std::vector<CK_MECHANISM_TYPE>> Mechanisms(CK_SLOT_ID slot) const;

 private:
  Pkcs11Module() = default;
  std::string path_;
  void* handle_ = nullptr;
  CK_FUNCTION_LIST_PTR functions_ = nullptr;
  CK_FUNCTION_LIST_3_0_PTR functions_3_0_ = nullptr;
  bool finalize_ = false;
};

// An open session; closes itself. Movable, not copyable.
class Pkcs11Session {
 public:
  static Result<Pkcs11Session> Open(std::shared_ptr<Pkcs11Module> module, CK_SLOT_ID slot,
                                    bool read_write);
  ~Pkcs11Session();
  Pkcs11Session(Pkcs11Session&& other) noexcept;
  Pkcs11Session& operator=(Pkcs11Session&& other) noexcept;
  Pkcs11Session(const Pkcs11Session&) = delete;
  Pkcs11Session& operator=(const Pkcs11Session&) = delete;

  CK_SESSION_HANDLE handle() const { return handle_; }
  CK_FUNCTION_LIST_PTR fn() const { return module_->functions(); }
  Pkcs11Module& module() const { return *module_; }
  CK_SLOT_ID slot() const { return slot_; }

  // C_Login; CKR_USER_ALREADY_LOGGED_IN counts as success.
  Status Login(CK_USER_TYPE user, std::string_view pin);
  Status Logout();
  Result<CK_SESSION_INFO> Info() const;
  // Forgets the handle without calling C_CloseSession (after the module already invalidated it).
  void Abandon() { handle_ = CK_INVALID_HANDLE; }

  // C_FindObjectsInit/C_FindObjects/C_FindObjectsFinal over the whole result.
  Result<std::vector<CK_OBJECT_HANDLE>> FindObjects(std::vector<CK_ATTRIBUTE> tmpl);
  // One attribute's value (two-call protocol). CKR_ATTRIBUTE_TYPE_INVALID -> kNotFound.
  Result<Bytes> GetAttribute(CK_OBJECT_HANDLE object, CK_ATTRIBUTE_TYPE type);
  Result<bool> GetBoolAttribute(CK_OBJECT_HANDLE object, CK_ATTRIBUTE_TYPE type);
  Result<CK_ULONG> GetUlongAttribute(CK_OBJECT_HANDLE object, CK_ATTRIBUTE_TYPE type);

  // Single-part C_SignInit + C_Sign with a length query first.
  Result<Bytes> Sign(const CK_MECHANISM& mechanism, CK_OBJECT_HANDLE key, ByteView data);

 private:
  Pkcs11Session(std::shared_ptr<Pkcs11Module> module, CK_SLOT_ID slot, CK_SESSION_HANDLE handle)
      : module_(std::move(module)), slot_(slot), handle_(handle) {}
  std::shared_ptr<Pkcs11Module> module_;
  CK_SLOT_ID slot_ = 0;
  CK_SESSION_HANDLE handle_ = CK_INVALID_HANDLE;
};

// Template helpers: the attribute points into `storage`, which must outlive the template.
CK_ATTRIBUTE MakeAttribute(CK_ATTRIBUTE_TYPE type, const void* value, CK_ULONG length);

}  // namespace signum

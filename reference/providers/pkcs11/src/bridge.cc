// One function per C_*; section numbers refer to the PKCS#11 Base Specification v3.0 (OASIS,
// https://docs.oasis-open.org/pkcs11/pkcs11-base/v3.0/os/pkcs11-base-v3.0-os.html).
#include "bridge.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <functional>
#include <mutex>

#include "ck_status.h"
#include "signum/core/crypto.h"
#include "signum/core/pkcs11_module.h"
#include "trace.h"

namespace signum::pkcs11::bridge {
namespace {

// --- Library state, fork-aware --------------------------------------------------------------
// One State per process that initialised the library. A forked child sees its parent's State
// (pid differs) and is "not initialised" until it calls C_Initialize, which gives it a fresh
// State: the parent's mutex, sessions and agent connections are never touched in the child (a
// mutex held by another parent thread at fork time would stay locked forever there). The
// parent's State is deliberately leaked in the child. No pthread_atfork handler is needed.
struct State {
  explicit State(pid_t p) : pid(p) {}
  const pid_t pid;
  std::mutex mu;
  std::shared_ptr<Provider> provider;
};

// A bare pointer with static storage (never destroyed): a process that exits without
// C_Finalize must not run provider destructors after OpenSSL's atexit cleanup (F26).
std::atomic<State*> g_state{nullptr};

State* StateForThisProcess(bool create) {
  const pid_t pid = ::getpid();
  for (;;) {
    State* current = g_state.load(std::memory_order_acquire);
    if (current != nullptr && current->pid == pid) return current;
    if (!create) return nullptr;
    auto* fresh = new State(pid);
    if (g_state.compare_exchange_strong(current, fresh, std::memory_order_acq_rel)) return fresh;
    delete fresh;  // another thread of this process won the race; use its State
  }
}

Status NotInitialized() {
  State* any = g_state.load(std::memory_order_acquire);
  if (any != nullptr && any->pid != ::getpid()) {
    return CkError(CKR_CRYPTOKI_NOT_INITIALIZED,
                   "this process was forked after C_Initialize; call C_Initialize again");
  }
  return CkError(CKR_CRYPTOKI_NOT_INITIALIZED, "C_Initialize has not been called");
}

Status ArgumentsBad(const std::string& what) { return CkError(CKR_ARGUMENTS_BAD, what); }

Status CheckSlot(CK_SLOT_ID slot) {
  if (slot != kSlotId) {
    return CkError(CKR_SLOT_ID_INVALID, "slot " + std::to_string(slot) +
                                            " does not exist (the Signum slot is " +
                                            std::to_string(kSlotId) + ")");
  }
  return Status::Ok();
}

struct SessionContext {
  std::shared_ptr<Provider> provider;
  std::shared_ptr<Session> session;
};

Result<SessionContext> GetSessionContext(CK_SESSION_HANDLE handle) {
  SIGNUM_ASSIGN_OR_RETURN(std::shared_ptr<Provider> provider, GetProvider());
  SIGNUM_ASSIGN_OR_RETURN(std::shared_ptr<Session> session, provider->GetSession(handle));
  return SessionContext{std::move(provider), std::move(session)};
}

// The token never changes: a R/O session may not write at all, a R/W one finds the token
// write-protected (CKF_WRITE_PROTECTED). Both tell tools "no" without looking like a failure.
Status WriteProtected(const Session& session) {
  if (!session.read_write()) return CkError(CKR_SESSION_READ_ONLY, "the session is read-only");
  return CkError(CKR_TOKEN_WRITE_PROTECTED,
                 "the Signum token is read-only: keys and certificates are managed on the server");
}

bool TemplateArgumentsOk(CK_ATTRIBUTE_PTR tmpl, CK_ULONG count) {
  return tmpl != nullptr || count == 0;
}

// Fixed-size list output with the two-call protocol (§5.2 "Conventions for functions returning
// output in a variable-length buffer").
template <typename T>
Status CopyList(const std::vector<T>& items, T* out, CK_ULONG_PTR count) {
  if (out == nullptr) {
    *count = items.size();
    return Status::Ok();
  }
  if (*count < items.size()) {
    const CK_ULONG given = *count;
    *count = items.size();
    return CkError(CKR_BUFFER_TOO_SMALL, "room for " + std::to_string(given) + " of " +
                                             std::to_string(items.size()) + " entries");
  }
  std::copy(items.begin(), items.end(), out);
  *count = items.size();
  return Status::Ok();
}

// Signature and digest output: the length query (NULL buffer) and a short buffer keep the
// operation (§5.2); the caller ends it on every other outcome. Returns nullopt when the caller
// should go on and produce the output (`what`, for the message).
std::optional<Status> LengthProtocol(const char* what, size_t size, CK_BYTE_PTR out,
                                     CK_ULONG_PTR out_len) {
  if (out == nullptr) {
    *out_len = size;
    return Status::Ok();
  }
  if (*out_len < size) {
    const CK_ULONG given = *out_len;
    *out_len = size;
    return CkError(CKR_BUFFER_TOO_SMALL, std::string(what) + " needs " + std::to_string(size) +
                                             " bytes, buffer has " + std::to_string(given));
  }
  return std::nullopt;
}

// Copies a computed digest out (the length protocol has already made sure it fits).
Status DeliverDigest(const Bytes& digest, CK_BYTE_PTR out, CK_ULONG_PTR out_len) {
  std::memcpy(out, digest.data(), digest.size());
  *out_len = digest.size();
  return Status::Ok();
}

// Signs the prepared digest through the agent, keeping the result in the operation so that it is
// never computed twice for one operation (the digest is only prepared if it is needed).
Status ProduceSignature(Provider& provider, SignatureOperation& op,
                        const std::function<Result<provider::DigestToSign>()>& digest,
                        CK_BYTE_PTR out, CK_ULONG_PTR out_len) {
  if (!op.signature.has_value()) {
    SIGNUM_ASSIGN_OR_RETURN(provider::DigestToSign prepared, digest());
    auto signature = provider.signer().SignDigest(op.key(), prepared);
    if (!signature.ok()) {
      return signature.status().WithContext("signing with '" + op.key().label + "' via agent " +
                                            provider.pool().DescribeEndpoint());
    }
    op.signature = std::move(signature).value();
  }
  std::memcpy(out, op.signature->data(), op.signature->size());
  *out_len = op.signature->size();
  return Status::Ok();
}

Status NoOperation(const char* what) {
  return CkError(CKR_OPERATION_NOT_INITIALIZED, std::string("no ") + what + " operation is active");
}

// C_SignInit and C_VerifyInit share everything but the key class they accept.
Status OperationInit(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism, CK_OBJECT_HANDLE hKey,
                     bool verify) {
  SIGNUM_ASSIGN_OR_RETURN(std::shared_ptr<Provider> provider, GetProvider());
  if (pMechanism == nullptr) return ArgumentsBad("pMechanism is NULL");
  if (pMechanism->pParameter == nullptr && pMechanism->ulParameterLen != 0) {
    return ArgumentsBad("pMechanism->pParameter is NULL with ulParameterLen " +
                        std::to_string(pMechanism->ulParameterLen));
  }
  SIGNUM_ASSIGN_OR_RETURN(std::shared_ptr<Session> session, provider->GetSession(hSession));
  std::lock_guard lock(session->mu);
  std::unique_ptr<SignatureOperation>& slot = verify ? session->verify : session->sign;
  // Spec: a second Init while one is active is CKR_OPERATION_ACTIVE; the active one stays.
  if (slot != nullptr) {
    return CkError(CKR_OPERATION_ACTIVE, std::string("a ") + (verify ? "verify" : "sign") +
                                             " operation is already active in this session");
  }
  std::shared_ptr<const Object> key = provider->FindObject(hKey);
  if (key == nullptr || key->kind == ObjectKind::kCertificate) {
    return CkError(CKR_KEY_HANDLE_INVALID, "no key with handle " + std::to_string(hKey));
  }
  if (key->is_private && !provider->logged_in()) {
    return CkError(CKR_USER_NOT_LOGGED_IN, "log in (C_Login) before using private keys");
  }
  const ObjectKind wanted = verify ? ObjectKind::kPublicKey : ObjectKind::kPrivateKey;
  if (key->kind != wanted) {
    return CkError(CKR_KEY_FUNCTION_NOT_PERMITTED, verify ? "verify with the public key object"
                                                          : "sign with the private key object");
  }
  SIGNUM_ASSIGN_OR_RETURN(slot,
                          SignatureOperation::Create(*pMechanism, key->certificate,
                                                     verify ? SignatureOperation::Purpose::kVerify
                                                            : SignatureOperation::Purpose::kSign));
  return Status::Ok();
}

Status NotSupported() {
  return CkError(CKR_FUNCTION_NOT_SUPPORTED, "not offered by the Signum token");
}

}  // namespace

Result<std::shared_ptr<Provider>> GetProvider() {
  State* state = StateForThisProcess(/*create=*/false);
  if (state == nullptr) return NotInitialized();
  std::lock_guard lock(state->mu);
  if (state->provider == nullptr) return NotInitialized();
  return state->provider;
}

// --- General-purpose functions (§5.4) -----------------------------------------------------------

// §5.4.1 C_Initialize
Status Initialize(CK_VOID_PTR pInitArgs) {
  if (pInitArgs != nullptr) {
    const auto* args = static_cast<const CK_C_INITIALIZE_ARGS*>(pInitArgs);
    // pReserved is ignored, whatever it holds. The spec says it must be NULL, but the hosts that
    // matter pass library parameters there: p11-kit (so GnuTLS and every p11-kit-proxy program)
    // and NSS (its module "parameters" string), and SoftHSM2, openCryptoki and tpm2-pkcs11 all
    // accept it (F49). Its type is the caller's business, so it is never dereferenced;
    // configuration comes from the environment (F25).
    const int callbacks = (args->CreateMutex != nullptr) + (args->DestroyMutex != nullptr) +
                          (args->LockMutex != nullptr) + (args->UnlockMutex != nullptr);
    if (callbacks != 0 && callbacks != 4) {
      return ArgumentsBad("mutex callbacks must be all set or all NULL");
    }
    // The module always locks with OS primitives. Callbacks without CKF_OS_LOCKING_OK would
    // demand the application's mutexes exclusively, which it cannot honour (as p11-kit).
    if (callbacks == 4 && (args->flags & CKF_OS_LOCKING_OK) == 0) {
      return CkError(CKR_CANT_LOCK, "only OS locking is supported; set CKF_OS_LOCKING_OK");
    }
    // CKF_LIBRARY_CANT_CREATE_OS_THREADS is fine: the module creates no threads.
  }
  State* state = StateForThisProcess(/*create=*/true);
  std::lock_guard lock(state->mu);
  if (state->provider != nullptr) {
    return CkError(CKR_CRYPTOKI_ALREADY_INITIALIZED, "C_Initialize was already called");
  }
  // Nothing is contacted here: an absent agent costs nothing until a tool looks for objects.
  state->provider = std::make_shared<Provider>(Config::FromEnvironment());
  return Status::Ok();
}

// §5.4.2 C_Finalize
Status Finalize(CK_VOID_PTR pReserved) {
  if (pReserved != nullptr) return ArgumentsBad("pReserved must be NULL");
  State* state = StateForThisProcess(/*create=*/false);
  if (state == nullptr) return NotInitialized();
  std::shared_ptr<Provider> provider;
  {
    std::lock_guard lock(state->mu);
    if (state->provider == nullptr) return NotInitialized();
    provider.swap(state->provider);
  }
  // Calls still running in other threads hold their own reference; the provider (sessions,
  // agent connections) goes when the last of them returns.
  return Status::Ok();
}

// §5.4.3 C_GetInfo
Status GetInfo(CK_INFO_PTR pInfo) {
  SIGNUM_ASSIGN_OR_RETURN(auto provider, GetProvider());
  if (pInfo == nullptr) return ArgumentsBad("pInfo is NULL");
  std::memset(pInfo, 0, sizeof *pInfo);
  pInfo->cryptokiVersion = {3, 0};
  CopyPadded(kManufacturer, pInfo->manufacturerID, sizeof pInfo->manufacturerID);
  pInfo->flags = 0;
  CopyPadded("Signum PKCS#11 provider", pInfo->libraryDescription,
             sizeof pInfo->libraryDescription);
  pInfo->libraryVersion = kLibraryVersion;
  return Status::Ok();
}

// --- Slot and token management (§5.5)
// -------------------------------------------------------------

// §5.5.1 C_GetSlotList: one slot, always with its token.
Status GetSlotList(CK_BBOOL, CK_SLOT_ID_PTR pSlotList, CK_ULONG_PTR pulCount) {
  SIGNUM_ASSIGN_OR_RETURN(auto provider, GetProvider());
  if (pulCount == nullptr) return ArgumentsBad("pulCount is NULL");
  return CopyList(std::vector<CK_SLOT_ID>{kSlotId}, pSlotList, pulCount);
}

// §5.5.2 C_GetSlotInfo
Status GetSlotInfo(CK_SLOT_ID slotID, CK_SLOT_INFO_PTR pInfo) {
  SIGNUM_ASSIGN_OR_RETURN(auto provider, GetProvider());
  if (pInfo == nullptr) return ArgumentsBad("pInfo is NULL");
  SIGNUM_RETURN_IF_ERROR(CheckSlot(slotID));
  *pInfo = provider->SlotInfo();
  return Status::Ok();
}

// §5.5.3 C_GetTokenInfo: works straight after C_Initialize, with no C_GetSlotList first (F19).
Status GetTokenInfo(CK_SLOT_ID slotID, CK_TOKEN_INFO_PTR pInfo) {
  SIGNUM_ASSIGN_OR_RETURN(auto provider, GetProvider());
  if (pInfo == nullptr) return ArgumentsBad("pInfo is NULL");
  SIGNUM_RETURN_IF_ERROR(CheckSlot(slotID));
  *pInfo = provider->TokenInfo();
  return Status::Ok();
}

// §5.5.4 C_WaitForSlotEvent: the slot never changes.
Status WaitForSlotEvent(CK_FLAGS flags, CK_SLOT_ID_PTR pSlot, CK_VOID_PTR pReserved) {
  SIGNUM_ASSIGN_OR_RETURN(auto provider, GetProvider());
  if (pSlot == nullptr) return ArgumentsBad("pSlot is NULL");
  if (pReserved != nullptr) return ArgumentsBad("pReserved must be NULL");
  if (flags & CKF_DONT_BLOCK) return CkError(CKR_NO_EVENT, "no slot event");
  return CkError(CKR_FUNCTION_NOT_SUPPORTED, "blocking C_WaitForSlotEvent is not supported");
}

// §5.5.5 C_GetMechanismList
Status GetMechanismList(CK_SLOT_ID slotID, CK_MECHANISM_TYPE_PTR pMechanismList,
                        CK_ULONG_PTR pulCount) {
  SIGNUM_ASSIGN_OR_RETURN(auto provider, GetProvider());
  if (pulCount == nullptr) return ArgumentsBad("pulCount is NULL");
  SIGNUM_RETURN_IF_ERROR(CheckSlot(slotID));
  // The digests (local, no key), and the signature mechanisms some certificate can sign with.
  const std::optional<SignatureCapabilities> signable = provider->SignableByAnyKey();
  std::vector<CK_MECHANISM_TYPE> types;
  for (const Mechanism& m : AllMechanisms()) {
    if (m.is_digest() || !signable || CanSignWith(m, *signable)) types.push_back(m.type);
  }
  return CopyList(types, pMechanismList, pulCount);
}

// §5.5.6 C_GetMechanismInfo
Status GetMechanismInfo(CK_SLOT_ID slotID, CK_MECHANISM_TYPE type, CK_MECHANISM_INFO_PTR pInfo) {
  SIGNUM_ASSIGN_OR_RETURN(auto provider, GetProvider());
  if (pInfo == nullptr) return ArgumentsBad("pInfo is NULL");
  SIGNUM_RETURN_IF_ERROR(CheckSlot(slotID));
  const Mechanism* m = FindMechanism(type);
  if (m == nullptr) return CkError(CKR_MECHANISM_INVALID, MechanismName(type) + " is not offered");
  if (!m->is_digest()) {
    const std::optional<SignatureCapabilities> signable = provider->SignableByAnyKey();
    if (signable && !CanSignWith(*m, *signable)) {
      return CkError(CKR_MECHANISM_INVALID,
                     MechanismName(type) + " is not offered: no certificate can sign with it");
    }
  }
  *pInfo = InfoFor(*m);
  return Status::Ok();
}

// --- Session management (§5.6) -------------------------------------------------------------------

// §5.6.1 C_OpenSession: R/O and R/W both open (cosign and pkcs11-tool insist on R/W, F18).
Status OpenSession(CK_SLOT_ID slotID, CK_FLAGS flags, CK_VOID_PTR, CK_NOTIFY,
                   CK_SESSION_HANDLE_PTR phSession) {
  SIGNUM_ASSIGN_OR_RETURN(auto provider, GetProvider());
  if (phSession == nullptr) return ArgumentsBad("phSession is NULL");
  SIGNUM_RETURN_IF_ERROR(CheckSlot(slotID));
  if ((flags & CKF_SERIAL_SESSION) == 0) {
    return CkError(CKR_SESSION_PARALLEL_NOT_SUPPORTED, "CKF_SERIAL_SESSION must be set");
  }
  *phSession = provider->OpenSession((flags & CKF_RW_SESSION) != 0);
  return Status::Ok();
}

// §5.6.2 C_CloseSession
Status CloseSession(CK_SESSION_HANDLE hSession) {
  SIGNUM_ASSIGN_OR_RETURN(auto provider, GetProvider());
  return provider->CloseSession(hSession);
}

// §5.6.3 C_CloseAllSessions
Status CloseAllSessions(CK_SLOT_ID slotID) {
  SIGNUM_ASSIGN_OR_RETURN(auto provider, GetProvider());
  SIGNUM_RETURN_IF_ERROR(CheckSlot(slotID));
  provider->CloseAllSessions();
  return Status::Ok();
}

// §5.6.4 C_GetSessionInfo
Status GetSessionInfo(CK_SESSION_HANDLE hSession, CK_SESSION_INFO_PTR pInfo) {
  SIGNUM_ASSIGN_OR_RETURN(auto provider, GetProvider());
  if (pInfo == nullptr) return ArgumentsBad("pInfo is NULL");
  SIGNUM_ASSIGN_OR_RETURN(auto session, provider->GetSession(hSession));
  std::memset(pInfo, 0, sizeof *pInfo);
  pInfo->slotID = kSlotId;
  pInfo->state = provider->SessionState(*session);
  pInfo->flags = CKF_SERIAL_SESSION | (session->read_write() ? CKF_RW_SESSION : 0);
  pInfo->ulDeviceError = 0;
  return Status::Ok();
}

// §5.6.7 C_SessionCancel (3.0): ends the operations named in flags (sign, verify, digest, find).
Status SessionCancel(CK_SESSION_HANDLE hSession, CK_FLAGS flags) {
  SIGNUM_ASSIGN_OR_RETURN(auto ctx, GetSessionContext(hSession));
  std::lock_guard lock(ctx.session->mu);
  if (flags & CKF_SIGN) ctx.session->sign.reset();
  if (flags & CKF_VERIFY) ctx.session->verify.reset();
  if (flags & CKF_DIGEST) ctx.session->digest.reset();
  if (flags & CKF_FIND_OBJECTS) ctx.session->find.reset();
  return Status::Ok();
}

// §5.6.8 C_Login. PIN policy: with SIGNUM_PKCS11_PIN set the PIN is checked (constant time) and
// private keys are CKA_PRIVATE; without it any PIN is accepted and nothing is private (like
// kmsp11). CKU_SO: CKR_SESSION_READ_ONLY_EXISTS with a read-only session open, else
// CKR_PIN_LOCKED. A wrong user PIN sets CKF_USER_PIN_COUNT_LOW until the next successful login. CKU_CONTEXT_SPECIFIC: keys are CKA_ALWAYS_AUTHENTICATE=FALSE,
// so re-authentication is never required; it is accepted (and the PIN checked in checked mode)
// while a sign or verify operation is active, leaving the operation untouched, and is
// CKR_OPERATION_NOT_INITIALIZED otherwise ("improper use", §5.6.8) (F24).
Status Login(CK_SESSION_HANDLE hSession, CK_USER_TYPE userType, CK_UTF8CHAR_PTR pPin,
             CK_ULONG ulPinLen) {
  SIGNUM_ASSIGN_OR_RETURN(auto provider, GetProvider());
  // No protected authentication path (CKF_PROTECTED_AUTHENTICATION_PATH unset): a PIN is needed.
  if (pPin == nullptr)
    return ArgumentsBad("pPin is NULL (the token has no protected authentication path)");
  SIGNUM_ASSIGN_OR_RETURN(auto session, provider->GetSession(hSession));
  const ByteView pin(pPin, ulPinLen);
  if (userType == CKU_CONTEXT_SPECIFIC) {
    std::lock_guard lock(session->mu);
    if (session->sign == nullptr && session->verify == nullptr) {
      return CkError(CKR_OPERATION_NOT_INITIALIZED,
                     "CKU_CONTEXT_SPECIFIC needs an active operation (and Signum keys never "
                     "require it: CKA_ALWAYS_AUTHENTICATE is FALSE)");
    }
    if (provider->pin_checked() && !provider->logged_in()) {
      return CkError(CKR_USER_NOT_LOGGED_IN, "log in as CKU_USER first");
    }
    if (!provider->PinMatches(pin)) return CkError(CKR_PIN_INCORRECT, "wrong PIN");
    return Status::Ok();
  }
  return provider->Login(userType, pin);
}

// §5.6.9 C_LoginUser (3.0): without a user name it is C_Login; the token knows no user names.
Status LoginUser(CK_SESSION_HANDLE hSession, CK_USER_TYPE userType, CK_UTF8CHAR_PTR pPin,
                 CK_ULONG ulPinLen, CK_UTF8CHAR_PTR pUsername, CK_ULONG ulUsernameLen) {
  SIGNUM_ASSIGN_OR_RETURN(auto provider, GetProvider());
  if (pUsername == nullptr && ulUsernameLen != 0) return ArgumentsBad("pUsername is NULL");
  if (ulUsernameLen != 0) {
    return CkError(CKR_FUNCTION_NOT_SUPPORTED, "the Signum token has no user names");
  }
  return Login(hSession, userType, pPin, ulPinLen);
}

// §5.6.10 C_Logout
Status Logout(CK_SESSION_HANDLE hSession) {
  SIGNUM_ASSIGN_OR_RETURN(auto ctx, GetSessionContext(hSession));
  return ctx.provider->Logout();
}

// --- Object management (§5.7): a read-only token
// ----------------------------------------------------

// §5.7.1 C_CreateObject
Status CreateObject(CK_SESSION_HANDLE hSession, CK_ATTRIBUTE_PTR pTemplate, CK_ULONG ulCount,
                    CK_OBJECT_HANDLE_PTR phObject) {
  SIGNUM_ASSIGN_OR_RETURN(auto provider, GetProvider());
  if (!TemplateArgumentsOk(pTemplate, ulCount)) return ArgumentsBad("pTemplate is NULL");
  if (phObject == nullptr) return ArgumentsBad("phObject is NULL");
  SIGNUM_ASSIGN_OR_RETURN(auto session, provider->GetSession(hSession));
  return WriteProtected(*session);
}

// §5.7.2 C_CopyObject
Status CopyObject(CK_SESSION_HANDLE hSession, CK_OBJECT_HANDLE hObject, CK_ATTRIBUTE_PTR pTemplate,
                  CK_ULONG ulCount, CK_OBJECT_HANDLE_PTR phNewObject) {
  SIGNUM_ASSIGN_OR_RETURN(auto provider, GetProvider());
  if (!TemplateArgumentsOk(pTemplate, ulCount)) return ArgumentsBad("pTemplate is NULL");
  if (phNewObject == nullptr) return ArgumentsBad("phNewObject is NULL");
  SIGNUM_ASSIGN_OR_RETURN(auto session, provider->GetSession(hSession));
  SIGNUM_ASSIGN_OR_RETURN(auto object, provider->GetObject(hObject));
  return WriteProtected(*session);
}

// §5.7.3 C_DestroyObject
Status DestroyObject(CK_SESSION_HANDLE hSession, CK_OBJECT_HANDLE hObject) {
  SIGNUM_ASSIGN_OR_RETURN(auto ctx, GetSessionContext(hSession));
  SIGNUM_ASSIGN_OR_RETURN(auto object, ctx.provider->GetObject(hObject));
  return WriteProtected(*ctx.session);
}

// §5.7.4 C_GetObjectSize: the spec lets a token not say.
Status GetObjectSize(CK_SESSION_HANDLE hSession, CK_OBJECT_HANDLE hObject, CK_ULONG_PTR pulSize) {
  SIGNUM_ASSIGN_OR_RETURN(auto provider, GetProvider());
  if (pulSize == nullptr) return ArgumentsBad("pulSize is NULL");
  SIGNUM_ASSIGN_OR_RETURN(auto session, provider->GetSession(hSession));
  SIGNUM_ASSIGN_OR_RETURN(auto object, provider->GetObject(hObject));
  *pulSize = CK_UNAVAILABLE_INFORMATION;
  return Status::Ok();
}

// §5.7.5 C_GetAttributeValue. Every attribute is processed (F23):
//   sensitive          -> ulValueLen = CK_UNAVAILABLE_INFORMATION, CKR_ATTRIBUTE_SENSITIVE
//   absent             -> ulValueLen = CK_UNAVAILABLE_INFORMATION, CKR_ATTRIBUTE_TYPE_INVALID
//   pValue NULL        -> ulValueLen = the length
//   buffer big enough  -> value copied, ulValueLen = the length
//   buffer too small   -> ulValueLen = CK_UNAVAILABLE_INFORMATION, CKR_BUFFER_TOO_SMALL
// The spec lets any of the three errors win when several apply; this module reports them in the
// order the spec lists the cases: SENSITIVE, then TYPE_INVALID, then BUFFER_TOO_SMALL.
Status GetAttributeValue(CK_SESSION_HANDLE hSession, CK_OBJECT_HANDLE hObject,
                         CK_ATTRIBUTE_PTR pTemplate, CK_ULONG ulCount) {
  SIGNUM_ASSIGN_OR_RETURN(auto provider, GetProvider());
  if (!TemplateArgumentsOk(pTemplate, ulCount)) return ArgumentsBad("pTemplate is NULL");
  SIGNUM_ASSIGN_OR_RETURN(auto session, provider->GetSession(hSession));
  SIGNUM_ASSIGN_OR_RETURN(auto object, provider->GetObject(hObject));
  bool any_sensitive = false, any_invalid = false, any_short = false;
  std::string first_problem;
  for (CK_ULONG i = 0; i < ulCount; ++i) {
    CK_ATTRIBUTE& a = pTemplate[i];
    bool sensitive = false;
    const Bytes* value = object->attributes.Find(a.type, &sensitive);
    if (sensitive) {
      a.ulValueLen = CK_UNAVAILABLE_INFORMATION;
      any_sensitive = true;
      if (first_problem.empty()) first_problem = AttributeName(a.type) + " is sensitive";
    } else if (value == nullptr) {
      a.ulValueLen = CK_UNAVAILABLE_INFORMATION;
      any_invalid = true;
      if (first_problem.empty())
        first_problem = AttributeName(a.type) + " does not exist on this object";
    } else if (a.pValue == nullptr) {
      a.ulValueLen = value->size();
    } else if (a.ulValueLen >= value->size()) {
      if (!value->empty()) std::memcpy(a.pValue, value->data(), value->size());
      a.ulValueLen = value->size();
    } else {
      if (first_problem.empty()) {
        first_problem = AttributeName(a.type) + " needs " + std::to_string(value->size()) +
                        " bytes, buffer has " + std::to_string(a.ulValueLen);
      }
      a.ulValueLen = CK_UNAVAILABLE_INFORMATION;
      any_short = true;
    }
  }
  if (any_sensitive) return CkError(CKR_ATTRIBUTE_SENSITIVE, first_problem);
  if (any_invalid) return CkError(CKR_ATTRIBUTE_TYPE_INVALID, first_problem);
  if (any_short) return CkError(CKR_BUFFER_TOO_SMALL, first_problem);
  return Status::Ok();
}

// §5.7.6 C_SetAttributeValue
Status SetAttributeValue(CK_SESSION_HANDLE hSession, CK_OBJECT_HANDLE hObject,
                         CK_ATTRIBUTE_PTR pTemplate, CK_ULONG ulCount) {
  SIGNUM_ASSIGN_OR_RETURN(auto provider, GetProvider());
  if (!TemplateArgumentsOk(pTemplate, ulCount)) return ArgumentsBad("pTemplate is NULL");
  SIGNUM_ASSIGN_OR_RETURN(auto session, provider->GetSession(hSession));
  SIGNUM_ASSIGN_OR_RETURN(auto object, provider->GetObject(hObject));
  return WriteProtected(*session);
}

// §5.7.7 C_FindObjectsInit: exact matching; unknown classes and attributes (NSS trust objects,
// CKO_PROFILE, vendor attributes) match nothing; an empty template matches everything visible.
// The certificate list is loaded here on first use; if the agent cannot be reached the search
// succeeds with no results (the trace notes why) instead of failing every enumerating tool.
Status FindObjectsInit(CK_SESSION_HANDLE hSession, CK_ATTRIBUTE_PTR pTemplate, CK_ULONG ulCount) {
  SIGNUM_ASSIGN_OR_RETURN(auto provider, GetProvider());
  if (!TemplateArgumentsOk(pTemplate, ulCount)) return ArgumentsBad("pTemplate is NULL");
  for (CK_ULONG i = 0; i < ulCount; ++i) {
    if (pTemplate[i].pValue == nullptr && pTemplate[i].ulValueLen != 0) {
      return ArgumentsBad("pTemplate[" + std::to_string(i) + "].pValue is NULL with ulValueLen " +
                          std::to_string(pTemplate[i].ulValueLen));
    }
  }
  SIGNUM_ASSIGN_OR_RETURN(auto session, provider->GetSession(hSession));
  std::lock_guard lock(session->mu);
  if (session->find.has_value()) {
    return CkError(CKR_OPERATION_ACTIVE, "a search is already active in this session");
  }
  Status loaded = provider->EnsureObjects();
  if (!loaded.ok()) trace::Note(loaded.ToString());
  Session::FindState find;
  for (const auto& object : provider->VisibleObjects()) {
    if (object->Matches(pTemplate, ulCount)) find.results.push_back(object->handle);
  }
  session->find = std::move(find);
  return Status::Ok();
}

// §5.7.8 C_FindObjects
Status FindObjects(CK_SESSION_HANDLE hSession, CK_OBJECT_HANDLE_PTR phObject,
                   CK_ULONG ulMaxObjectCount, CK_ULONG_PTR pulObjectCount) {
  SIGNUM_ASSIGN_OR_RETURN(auto provider, GetProvider());
  if (phObject == nullptr) return ArgumentsBad("phObject is NULL");
  if (pulObjectCount == nullptr) return ArgumentsBad("pulObjectCount is NULL");
  SIGNUM_ASSIGN_OR_RETURN(auto session, provider->GetSession(hSession));
  std::lock_guard lock(session->mu);
  if (!session->find.has_value()) return NoOperation("find");
  Session::FindState& find = *session->find;
  CK_ULONG n = 0;
  while (n < ulMaxObjectCount && find.next < find.results.size()) {
    phObject[n++] = find.results[find.next++];
  }
  *pulObjectCount = n;
  return Status::Ok();
}

// §5.7.9 C_FindObjectsFinal
Status FindObjectsFinal(CK_SESSION_HANDLE hSession) {
  SIGNUM_ASSIGN_OR_RETURN(auto ctx, GetSessionContext(hSession));
  std::lock_guard lock(ctx.session->mu);
  if (!ctx.session->find.has_value()) return NoOperation("find");
  ctx.session->find.reset();
  return Status::Ok();
}

// --- Message digesting: local (OpenSSL), no key, no agent, no login needed --------------------
// SunPKCS11 offers RSASSA-PSS only when the token lists the digest mechanism (CKF_DIGEST); other
// tools (pkcs11-tool --hash) digest on the token. The rules mirror signing: CKR_OPERATION_ACTIVE
// for a second Init, the length protocol (NULL buffer or short buffer keep the operation), every
// other outcome ends it.

// C_DigestInit
Status DigestInit(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism) {
  SIGNUM_ASSIGN_OR_RETURN(std::shared_ptr<Provider> provider, GetProvider());
  if (pMechanism == nullptr) return ArgumentsBad("pMechanism is NULL");
  if (pMechanism->pParameter == nullptr && pMechanism->ulParameterLen != 0) {
    return ArgumentsBad("pMechanism->pParameter is NULL with ulParameterLen " +
                        std::to_string(pMechanism->ulParameterLen));
  }
  SIGNUM_ASSIGN_OR_RETURN(std::shared_ptr<Session> session, provider->GetSession(hSession));
  std::lock_guard lock(session->mu);
  if (session->digest != nullptr) {
    return CkError(CKR_OPERATION_ACTIVE, "a digest operation is already active in this session");
  }
  SIGNUM_ASSIGN_OR_RETURN(session->digest, DigestOperation::Create(*pMechanism));
  return Status::Ok();
}

// C_Digest: single-part; the same length protocol as C_Sign (pData may be NULL for the probe).
Status Digest(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pData, CK_ULONG ulDataLen,
              CK_BYTE_PTR pDigest, CK_ULONG_PTR pulDigestLen) {
  SIGNUM_ASSIGN_OR_RETURN(auto ctx, GetSessionContext(hSession));
  std::lock_guard lock(ctx.session->mu);
  std::unique_ptr<DigestOperation>& op = ctx.session->digest;
  if (op == nullptr) return NoOperation("digest");
  if (pulDigestLen == nullptr) {
    op.reset();
    return ArgumentsBad("pulDigestLen is NULL");
  }
  if (op->updated()) {
    // As C_Sign after C_SignUpdate: C_Digest cannot finish a multi-part operation; end it.
    op.reset();
    return CkError(
        CKR_OPERATION_NOT_INITIALIZED,
        "C_Digest after C_DigestUpdate: finish a multi-part operation with C_DigestFinal");
  }
  if (auto done = LengthProtocol("digest", op->digest_size(), pDigest, pulDigestLen)) return *done;
  if (pData == nullptr && ulDataLen != 0) {
    op.reset();
    return ArgumentsBad("pData is NULL with ulDataLen " + std::to_string(ulDataLen));
  }
  const Bytes digest = op->DigestOf(ByteView(pData, pData == nullptr ? 0 : ulDataLen));
  op.reset();
  return DeliverDigest(digest, pDigest, pulDigestLen);
}

// C_DigestUpdate: any error ends the operation.
Status DigestUpdate(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pPart, CK_ULONG ulPartLen) {
  SIGNUM_ASSIGN_OR_RETURN(auto ctx, GetSessionContext(hSession));
  std::lock_guard lock(ctx.session->mu);
  std::unique_ptr<DigestOperation>& op = ctx.session->digest;
  if (op == nullptr) return NoOperation("digest");
  if (pPart == nullptr && ulPartLen != 0) {
    op.reset();
    return ArgumentsBad("pPart is NULL with ulPartLen " + std::to_string(ulPartLen));
  }
  op->Update(ByteView(pPart, pPart == nullptr ? 0 : ulPartLen));
  return Status::Ok();
}

// C_DigestKey digests a secret key's value. The token holds only key pairs (no CKO_SECRET_KEY),
// and their private halves never leave the HSM: a key → CKR_KEY_INDIGESTIBLE, anything else →
// CKR_KEY_HANDLE_INVALID. Either error ends the operation, as a failed C_DigestUpdate does.
Status DigestKey(CK_SESSION_HANDLE hSession, CK_OBJECT_HANDLE hKey) {
  SIGNUM_ASSIGN_OR_RETURN(auto ctx, GetSessionContext(hSession));
  std::lock_guard lock(ctx.session->mu);
  std::unique_ptr<DigestOperation>& op = ctx.session->digest;
  if (op == nullptr) return NoOperation("digest");
  op.reset();
  std::shared_ptr<const Object> key = ctx.provider->FindObject(hKey);
  if (key == nullptr || key->kind == ObjectKind::kCertificate ||
      (key->is_private && !ctx.provider->logged_in())) {
    return CkError(CKR_KEY_HANDLE_INVALID, "no key with handle " + std::to_string(hKey));
  }
  return CkError(CKR_KEY_INDIGESTIBLE,
                 "only secret keys can be digested; the Signum token holds key pairs whose "
                 "private halves never leave the HSM");
}

// C_DigestFinal: the same length protocol as C_SignFinal.
Status DigestFinal(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pDigest, CK_ULONG_PTR pulDigestLen) {
  SIGNUM_ASSIGN_OR_RETURN(auto ctx, GetSessionContext(hSession));
  std::lock_guard lock(ctx.session->mu);
  std::unique_ptr<DigestOperation>& op = ctx.session->digest;
  if (op == nullptr) return NoOperation("digest");
  if (pulDigestLen == nullptr) {
    op.reset();
    return ArgumentsBad("pulDigestLen is NULL");
  }
  if (auto done = LengthProtocol("digest", op->digest_size(), pDigest, pulDigestLen)) return *done;
  Result<Bytes> digest = op->Final();
  op.reset();
  if (!digest.ok()) return digest.status();
  return DeliverDigest(*digest, pDigest, pulDigestLen);
}

// --- Signing (§5.12)
// ------------------------------------------------------------------------------

// §5.12.1 C_SignInit
Status SignInit(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism, CK_OBJECT_HANDLE hKey) {
  return OperationInit(hSession, pMechanism, hKey, /*verify=*/false);
}

// §5.12.2 C_Sign. A NULL pSignature asks for the length; a short buffer gets
// CKR_BUFFER_TOO_SMALL and the length; both keep the operation, and neither needs pData (some
// callers probe with pData = NULL, F9). Every other outcome ends the operation (§5.12.2). The
// length comes from the key, so the agent is asked only once the caller can take the signature.
Status Sign(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pData, CK_ULONG ulDataLen,
            CK_BYTE_PTR pSignature, CK_ULONG_PTR pulSignatureLen) {
  SIGNUM_ASSIGN_OR_RETURN(auto ctx, GetSessionContext(hSession));
  std::lock_guard lock(ctx.session->mu);
  std::unique_ptr<SignatureOperation>& op = ctx.session->sign;
  if (op == nullptr) return NoOperation("sign");
  if (pulSignatureLen == nullptr) {
    op.reset();
    return ArgumentsBad("pulSignatureLen is NULL");
  }
  if (op->updated()) {
    // C_Sign cannot finish a multi-part operation (§5.12.2); as SoftHSM, end it.
    op.reset();
    return CkError(CKR_OPERATION_NOT_INITIALIZED,
                   "C_Sign after C_SignUpdate: finish a multi-part operation with C_SignFinal");
  }
  if (auto done = LengthProtocol("signature", op->signature_size(), pSignature, pulSignatureLen)) {
    return *done;
  }
  if (pData == nullptr && ulDataLen != 0) {
    op.reset();
    return ArgumentsBad("pData is NULL with ulDataLen " + std::to_string(ulDataLen));
  }
  const ByteView data(pData, pData == nullptr ? 0 : ulDataLen);
  SignatureOperation& current = *op;
  Status s = ProduceSignature(
      *ctx.provider, current, [&] { return current.DigestFor(data); }, pSignature, pulSignatureLen);
  op.reset();
  return s;
}

// C_SignUpdate and C_VerifyUpdate: feed one part to the session's active operation; any error
// ends it.
Status UpdateOperation(CK_SESSION_HANDLE hSession,
                       std::unique_ptr<SignatureOperation> Session::*slot, const char* kind,
                       CK_BYTE_PTR pPart, CK_ULONG ulPartLen) {
  SIGNUM_ASSIGN_OR_RETURN(auto ctx, GetSessionContext(hSession));
  std::lock_guard lock(ctx.session->mu);
  std::unique_ptr<SignatureOperation>& op = (*ctx.session).*slot;
  if (op == nullptr) return NoOperation(kind);
  if (pPart == nullptr && ulPartLen != 0) {
    op.reset();
    return ArgumentsBad("pPart is NULL with ulPartLen " + std::to_string(ulPartLen));
  }
  Status s = op->Update(ByteView(pPart, pPart == nullptr ? 0 : ulPartLen));
  if (!s.ok()) op.reset();
  return s;
}

// §5.12.3 C_SignUpdate: hash-and-sign mechanisms hash as the data comes; raw mechanisms collect it.
Status SignUpdate(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pPart, CK_ULONG ulPartLen) {
  return UpdateOperation(hSession, &Session::sign, "sign", pPart, ulPartLen);
}

// §5.12.4 C_SignFinal: the same length protocol as C_Sign.
Status SignFinal(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pSignature, CK_ULONG_PTR pulSignatureLen) {
  SIGNUM_ASSIGN_OR_RETURN(auto ctx, GetSessionContext(hSession));
  std::lock_guard lock(ctx.session->mu);
  std::unique_ptr<SignatureOperation>& op = ctx.session->sign;
  if (op == nullptr) return NoOperation("sign");
  if (pulSignatureLen == nullptr) {
    op.reset();
    return ArgumentsBad("pulSignatureLen is NULL");
  }
  if (auto done = LengthProtocol("signature", op->signature_size(), pSignature, pulSignatureLen)) {
    return *done;
  }
  SignatureOperation& current = *op;
  Status s = ProduceSignature(
      *ctx.provider, current, [&] { return current.FinalDigest(); }, pSignature, pulSignatureLen);
  op.reset();
  return s;
}

// --- Verification (§5.13), local: OpenSSL against the key's public key
// ----------------------------

// §5.13.1 C_VerifyInit
Status VerifyInit(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism, CK_OBJECT_HANDLE hKey) {
  return OperationInit(hSession, pMechanism, hKey, /*verify=*/true);
}

// §5.13.2 C_Verify: always ends the operation.
Status Verify(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pData, CK_ULONG ulDataLen,
              CK_BYTE_PTR pSignature, CK_ULONG ulSignatureLen) {
  SIGNUM_ASSIGN_OR_RETURN(auto ctx, GetSessionContext(hSession));
  std::lock_guard lock(ctx.session->mu);
  std::unique_ptr<SignatureOperation> op = std::move(ctx.session->verify);
  if (op == nullptr) return NoOperation("verify");
  if (pData == nullptr && ulDataLen != 0) return ArgumentsBad("pData is NULL");
  if (pSignature == nullptr) return ArgumentsBad("pSignature is NULL");
  if (op->updated()) {
    return CkError(CKR_OPERATION_NOT_INITIALIZED,
                   "C_Verify after C_VerifyUpdate: finish with C_VerifyFinal");
  }
  SIGNUM_ASSIGN_OR_RETURN(provider::DigestToSign digest,
                          op->DigestFor(ByteView(pData, pData == nullptr ? 0 : ulDataLen)));
  return VerifySignature(op->key(), digest, ByteView(pSignature, ulSignatureLen));
}

// §5.13.3 C_VerifyUpdate
Status VerifyUpdate(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pPart, CK_ULONG ulPartLen) {
  return UpdateOperation(hSession, &Session::verify, "verify", pPart, ulPartLen);
}

// §5.13.4 C_VerifyFinal: always ends the operation.
Status VerifyFinal(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pSignature, CK_ULONG ulSignatureLen) {
  SIGNUM_ASSIGN_OR_RETURN(auto ctx, GetSessionContext(hSession));
  std::lock_guard lock(ctx.session->mu);
  std::unique_ptr<SignatureOperation> op = std::move(ctx.session->verify);
  if (op == nullptr) return NoOperation("verify");
  if (pSignature == nullptr) return ArgumentsBad("pSignature is NULL");
  SIGNUM_ASSIGN_OR_RETURN(provider::DigestToSign digest, op->FinalDigest());
  return VerifySignature(op->key(), digest, ByteView(pSignature, ulSignatureLen));
}

// --- Key management (§5.14): nothing is generated on this token
// -----------------------------------

// §5.14.1 C_GenerateKey
Status GenerateKey(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism,
                   CK_ATTRIBUTE_PTR pTemplate, CK_ULONG ulCount, CK_OBJECT_HANDLE_PTR phKey) {
  SIGNUM_ASSIGN_OR_RETURN(auto provider, GetProvider());
  if (pMechanism == nullptr) return ArgumentsBad("pMechanism is NULL");
  if (!TemplateArgumentsOk(pTemplate, ulCount)) return ArgumentsBad("pTemplate is NULL");
  if (phKey == nullptr) return ArgumentsBad("phKey is NULL");
  SIGNUM_ASSIGN_OR_RETURN(auto session, provider->GetSession(hSession));
  return WriteProtected(*session);
}

// §5.14.2 C_GenerateKeyPair
Status GenerateKeyPair(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism,
                       CK_ATTRIBUTE_PTR pPublicKeyTemplate, CK_ULONG ulPublicKeyAttributeCount,
                       CK_ATTRIBUTE_PTR pPrivateKeyTemplate, CK_ULONG ulPrivateKeyAttributeCount,
                       CK_OBJECT_HANDLE_PTR phPublicKey, CK_OBJECT_HANDLE_PTR phPrivateKey) {
  SIGNUM_ASSIGN_OR_RETURN(auto provider, GetProvider());
  if (pMechanism == nullptr) return ArgumentsBad("pMechanism is NULL");
  if (!TemplateArgumentsOk(pPublicKeyTemplate, ulPublicKeyAttributeCount)) {
    return ArgumentsBad("pPublicKeyTemplate is NULL");
  }
  if (!TemplateArgumentsOk(pPrivateKeyTemplate, ulPrivateKeyAttributeCount)) {
    return ArgumentsBad("pPrivateKeyTemplate is NULL");
  }
  if (phPublicKey == nullptr || phPrivateKey == nullptr)
    return ArgumentsBad("key handle output is NULL");
  SIGNUM_ASSIGN_OR_RETURN(auto session, provider->GetSession(hSession));
  return WriteProtected(*session);
}

// --- Random numbers (§5.15)
// -----------------------------------------------------------------------

// §5.15.1 C_SeedRandom: OpenSSL's CSPRNG seeds itself.
Status SeedRandom(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pSeed, CK_ULONG ulSeedLen) {
  SIGNUM_ASSIGN_OR_RETURN(auto provider, GetProvider());
  if (pSeed == nullptr && ulSeedLen != 0) return ArgumentsBad("pSeed is NULL");
  SIGNUM_ASSIGN_OR_RETURN(auto session, provider->GetSession(hSession));
  return CkError(CKR_RANDOM_SEED_NOT_SUPPORTED, "the generator seeds itself");
}

// §5.15.2 C_GenerateRandom: OpenSSL's CSPRNG (hence CKF_RNG).
Status GenerateRandom(CK_SESSION_HANDLE hSession, CK_BYTE_PTR RandomData, CK_ULONG ulRandomLen) {
  SIGNUM_ASSIGN_OR_RETURN(auto provider, GetProvider());
  if (RandomData == nullptr && ulRandomLen != 0) return ArgumentsBad("RandomData is NULL");
  SIGNUM_ASSIGN_OR_RETURN(auto session, provider->GetSession(hSession));
  if (ulRandomLen == 0) return Status::Ok();
  Bytes random = RandomBytes(ulRandomLen);
  std::memcpy(RandomData, random.data(), random.size());
  return Status::Ok();
}

// --- Legacy parallel functions (§5.16)
// ------------------------------------------------------------

// §5.16.1 C_GetFunctionStatus
Status GetFunctionStatus(CK_SESSION_HANDLE hSession) {
  SIGNUM_ASSIGN_OR_RETURN(auto ctx, GetSessionContext(hSession));
  return CkError(CKR_FUNCTION_NOT_PARALLEL, "legacy function");
}

// §5.16.2 C_CancelFunction
Status CancelFunction(CK_SESSION_HANDLE hSession) {
  SIGNUM_ASSIGN_OR_RETURN(auto ctx, GetSessionContext(hSession));
  return CkError(CKR_FUNCTION_NOT_PARALLEL, "legacy function");
}

// --- Everything else: CKR_FUNCTION_NOT_SUPPORTED once initialised
// ---------------------------------
#define SIGNUM_P11_DEFINE_STUB(Name, Since, Support, Args) \
  SIGNUM_P11_IF_STUB(Support)                              \
  (Status Name(SIGNUM_P11_TYPES(Args)) {                   \
    SIGNUM_ASSIGN_OR_RETURN(auto provider, GetProvider()); \
    return NotSupported();                                 \
  })
SIGNUM_PKCS11_FUNCTIONS(SIGNUM_P11_DEFINE_STUB)
#undef SIGNUM_P11_DEFINE_STUB

}  // namespace signum::pkcs11::bridge

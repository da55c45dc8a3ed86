// The object model behind the bridge: a Provider is one run of the library, from C_Initialize to
// C_Finalize (kmsp11's definition). It owns the single slot and its token, the sessions, the
// handle space, the agent connection pool and the certificate cache.
//
// Locking: the provider's own mutexes (sessions, login, object store) are held only for short
// bookkeeping; a session's mutex is held across its operation's agent round trip (a session is
// used by one thread at a time per the spec, and other sessions are unaffected). Nothing is held
// while connecting to the agent except by the thread that needs the connection.
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "digest_operation.h"
#include "objects.h"
#include "sign_operation.h"
#include "signum/core/pkcs11.h"
#include "signum/provider/agent_pool.h"
#include "signum/provider/certificate_source.h"
#include "signum/provider/signer.h"

namespace signum::pkcs11 {

inline constexpr CK_SLOT_ID kSlotId = 1;  // like Signum's own token: one slot, ID 1
inline constexpr char kManufacturer[] = "Signum Harness";
inline constexpr char kModel[] = "signum-agent";
inline constexpr char kSerialNumber[] = "1";
inline constexpr char kDefaultTokenLabel[] = "Signum";
inline constexpr CK_VERSION kLibraryVersion = {0, 1};

// One line on stderr, "libsignumpkcs11: <message>", written with write(2) (no stdio or logging
// locks a fork could inherit).
void Warn(const std::string& message);

// Everything the module reads from the environment, once per C_Initialize.
struct Config {
  std::string token_label = kDefaultTokenLabel;  // SIGNUM_TOKEN_LABEL
  std::optional<std::string> pin;                // SIGNUM_PKCS11_PIN: checked-PIN mode when set
  Result<agent::AgentEndpoint> endpoint = UnavailableError("not configured");
  int timeout_ms = 30000;                    // SIGNUM_PKCS11_TIMEOUT_MS
  std::chrono::seconds refresh_interval{0};  // SIGNUM_PKCS11_REFRESH_SECONDS (0: never)

  static Config FromEnvironment();
};

class Session {
 public:
  Session(CK_SESSION_HANDLE handle, bool read_write) : handle_(handle), read_write_(read_write) {}
  CK_SESSION_HANDLE handle() const { return handle_; }
  bool read_write() const { return read_write_; }

  struct FindState {
    std::vector<CK_OBJECT_HANDLE> results;
    size_t next = 0;
  };

  // Guards the operations below.
  std::mutex mu;
  std::optional<FindState> find;
  std::unique_ptr<SignatureOperation> sign;
  std::unique_ptr<SignatureOperation> verify;
  std::unique_ptr<DigestOperation> digest;

 private:
  const CK_SESSION_HANDLE handle_;
  const bool read_write_;
};

class Provider {
 public:
  explicit Provider(Config config);
  ~Provider();
  Provider(const Provider&) = delete;
  Provider& operator=(const Provider&) = delete;

  const Config& config() const { return config_; }
  bool pin_checked() const { return config_.pin.has_value(); }

  CK_SLOT_INFO SlotInfo() const;
  CK_TOKEN_INFO TokenInfo() const;

  // --- Login (application-wide, per PKCS#11 §5.6: all sessions share it) ---
  // CKU_USER and CKU_SO; CKU_CONTEXT_SPECIFIC is the bridge's (it needs the session's operation).
  Status Login(CK_USER_TYPE user, ByteView pin);
  Status Logout();
  bool logged_in() const;
  // The PIN check alone (constant time), for context-specific login.
  bool PinMatches(ByteView pin) const;

  // --- Objects ---
  // Loads the certificate list on first use (and after a failure, rate-limited; and again when
  // SIGNUM_PKCS11_REFRESH_SECONDS says so). Returns the load error when there are no objects
  // because of it; the token then simply shows none.
  Status EnsureObjects();
  // Objects the current login state may see, in a stable order.
  std::vector<std::shared_ptr<const Object>> VisibleObjects() const;
  // A visible object, or CKR_OBJECT_HANDLE_INVALID.
  Result<std::shared_ptr<const Object>> GetObject(CK_OBJECT_HANDLE handle) const;
  // What at least one certificate can sign with (the union of ProviderCertificate::Signable),
  // loading the list first when needed; visible or not, logged in or not. nullopt while no list
  // could be loaded: the token cannot know, and then offers every mechanism, as before
  // capabilities (a tool that reads the mechanism list once must not lose signing for good).
  std::optional<SignatureCapabilities> SignableByAnyKey();
  // Any object, visible or not (C_SignInit tells "not logged in" from "no such key").
  std::shared_ptr<const Object> FindObject(CK_OBJECT_HANDLE handle) const {
    return objects_.Find(handle);
  }

  // --- Sessions ---
  CK_SESSION_HANDLE OpenSession(bool read_write);
  // CKR_SESSION_HANDLE_INVALID for unknown handles.
  Result<std::shared_ptr<Session>> GetSession(CK_SESSION_HANDLE handle) const;
  Status CloseSession(CK_SESSION_HANDLE handle);
  void CloseAllSessions();
  CK_STATE SessionState(const Session& session) const;

  provider::Signer& signer() { return signer_; }
  provider::AgentConnectionPool& pool() { return pool_; }

 private:
  Status ApplyCertificateSet(const Result<std::shared_ptr<const provider::CertificateSet>>& set);
  void LogoutIfNoSessionsLocked();

  const Config config_;
  provider::AgentConnectionPool pool_;
  provider::Signer signer_;
  provider::CertificateSource source_;
  HandleAllocator handles_;
  ObjectStore objects_;

  mutable std::mutex objects_mu_;  // serialises loads and refreshes
  std::shared_ptr<const provider::CertificateSet> applied_set_;
  std::chrono::steady_clock::time_point applied_at_{};
  bool warned_ = false;

  mutable std::mutex login_mu_;
  bool logged_in_ = false;
  // A wrong PIN since the last successful login: CKF_USER_PIN_COUNT_LOW. The PIN never locks:
  // it is a local gate in front of the agent (the server credential is the secret), and a
  // lockout would let any process that can load the module stop the owner's signing.
  bool wrong_pin_since_login_ = false;

  mutable std::mutex sessions_mu_;
  std::map<CK_SESSION_HANDLE, std::shared_ptr<Session>> sessions_;
};

}  // namespace signum::pkcs11

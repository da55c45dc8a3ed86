#include "provider.h"

#include <unistd.h>

#include <cstdlib>
#include <cstring>

#include "ck_status.h"
#include "signum/core/crypto.h"
#include "signum/core/pkcs11_module.h"
#include "signum/provider/process_context.h"

namespace signum::pkcs11 {
namespace {

std::optional<std::string> Env(const char* name) {
  const char* v = std::getenv(name);
  if (v == nullptr) return std::nullopt;
  return std::string(v);
}

long EnvNumber(const char* name, long fallback, long min, long max) {
  auto v = Env(name);
  if (!v || v->empty()) return fallback;
  char* end = nullptr;
  const long n = std::strtol(v->c_str(), &end, 10);
  if (end == nullptr || *end != '\0' || n < min || n > max) return fallback;
  return n;
}

std::string ClientName() {
  return "libsignumpkcs11/" + std::to_string(kLibraryVersion.major) + "." +
         std::to_string(kLibraryVersion.minor);
}

}  // namespace

void Warn(const std::string& message) {
  const std::string line = "libsignumpkcs11: " + message + "\n";
  ssize_t ignored = ::write(STDERR_FILENO, line.data(), line.size());
  (void)ignored;
}

Config Config::FromEnvironment() {
  Config c;
  if (auto label = Env("SIGNUM_TOKEN_LABEL"); label && !label->empty()) c.token_label = *label;
  // An empty SIGNUM_PKCS11_PIN is "unset": a checked mode whose PIN is empty protects nothing.
  if (auto pin = Env("SIGNUM_PKCS11_PIN"); pin && !pin->empty()) c.pin = *pin;
  c.endpoint = agent::AgentEndpointFromEnvironment();
  c.timeout_ms = static_cast<int>(EnvNumber("SIGNUM_PKCS11_TIMEOUT_MS", 30000, 100, 600000));
  c.refresh_interval =
      std::chrono::seconds(EnvNumber("SIGNUM_PKCS11_REFRESH_SECONDS", 0, 0, 86400 * 365));
  return c;
}

Provider::Provider(Config config)
    : config_(std::move(config)),
      pool_(provider::AgentPoolOptions{.endpoint = config_.endpoint,
                                       .client_name = ClientName(),
                                       .timeout_ms = config_.timeout_ms,
                                       .max_idle = 16}),
      signer_(&pool_, provider::CurrentProcessContext()),
      source_([this](bool refresh) { return pool_.ListCertificates(refresh); }),
      objects_(&handles_) {}

Provider::~Provider() = default;

CK_SLOT_INFO Provider::SlotInfo() const {
  CK_SLOT_INFO info{};
  CopyPadded("Signum Harness agent slot", info.slotDescription, sizeof info.slotDescription);
  CopyPadded(kManufacturer, info.manufacturerID, sizeof info.manufacturerID);
  // The token is always present: when the agent is unreachable it shows no certificates rather
  // than disappearing, so token= URIs still resolve and the failure is an error, not a mystery.
  info.flags = CKF_TOKEN_PRESENT;
  info.hardwareVersion = kLibraryVersion;
  info.firmwareVersion = kLibraryVersion;
  return info;
}

CK_TOKEN_INFO Provider::TokenInfo() const {
  CK_TOKEN_INFO info{};
  CopyPadded(config_.token_label, info.label, sizeof info.label);
  CopyPadded(kManufacturer, info.manufacturerID, sizeof info.manufacturerID);
  CopyPadded(kModel, info.model, sizeof info.model);
  CopyPadded(kSerialNumber, info.serialNumber, sizeof info.serialNumber);
  // CKF_SO_PIN_LOCKED: there is no security officer; C_Login(CKU_SO) says CKR_PIN_LOCKED, and
  // the flags agree with it (as kmsp11's do).
  info.flags = CKF_TOKEN_INITIALIZED | CKF_USER_PIN_INITIALIZED | CKF_RNG | CKF_WRITE_PROTECTED |
               CKF_SO_PIN_LOCKED;
  if (pin_checked()) info.flags |= CKF_LOGIN_REQUIRED;
  {
    std::lock_guard lock(login_mu_);
    if (wrong_pin_since_login_) info.flags |= CKF_USER_PIN_COUNT_LOW;
  }
  info.ulMaxSessionCount = CK_EFFECTIVELY_INFINITE;
  info.ulMaxRwSessionCount = CK_EFFECTIVELY_INFINITE;
  {
    std::lock_guard lock(sessions_mu_);
    info.ulSessionCount = sessions_.size();
    CK_ULONG rw = 0;
    for (const auto& [h, s] : sessions_) rw += s->read_write() ? 1 : 0;
    info.ulRwSessionCount = rw;
  }
  info.ulMaxPinLen = 255;
  info.ulMinPinLen = 0;
  info.ulTotalPublicMemory = CK_UNAVAILABLE_INFORMATION;
  info.ulFreePublicMemory = CK_UNAVAILABLE_INFORMATION;
  info.ulTotalPrivateMemory = CK_UNAVAILABLE_INFORMATION;
  info.ulFreePrivateMemory = CK_UNAVAILABLE_INFORMATION;
  info.hardwareVersion = kLibraryVersion;
  info.firmwareVersion = kLibraryVersion;
  // No clock on the token (CKF_CLOCK_ON_TOKEN unset): the field is blank.
  std::memset(info.utcTime, ' ', sizeof info.utcTime);
  return info;
}

bool Provider::PinMatches(ByteView pin) const {
  if (!config_.pin.has_value()) return true;
  return ConstantTimeEquals(pin, AsBytes(*config_.pin));
}

Status Provider::Login(CK_USER_TYPE user, ByteView pin) {
  if (user == CKU_SO) {
    // §5.6.8: an SO login with a read-only session open is CKR_SESSION_READ_ONLY_EXISTS, decided
    // before anything about the SO or the PIN.
    {
      std::lock_guard lock(sessions_mu_);
      for (const auto& [handle, session] : sessions_) {
        if (!session->read_write()) {
          return CkError(CKR_SESSION_READ_ONLY_EXISTS,
                         "a read-only session is open (the SO logs in from read/write sessions)");
        }
      }
    }
    return CkError(CKR_PIN_LOCKED, "the Signum token has no security officer (CKF_SO_PIN_LOCKED)");
  }
  if (user != CKU_USER) {
    return CkError(CKR_USER_TYPE_INVALID, "unknown user type " + std::to_string(user));
  }
  std::lock_guard lock(login_mu_);
  if (logged_in_) return CkError(CKR_USER_ALREADY_LOGGED_IN, "already logged in");
  if (!PinMatches(pin)) {
    wrong_pin_since_login_ = true;
    return CkError(CKR_PIN_INCORRECT, "wrong PIN (SIGNUM_PKCS11_PIN)");
  }
  logged_in_ = true;
  wrong_pin_since_login_ = false;
  return Status::Ok();
}

Status Provider::Logout() {
  std::lock_guard lock(login_mu_);
  if (!logged_in_) return CkError(CKR_USER_NOT_LOGGED_IN, "not logged in");
  logged_in_ = false;
  return Status::Ok();
}

bool Provider::logged_in() const {
  std::lock_guard lock(login_mu_);
  return logged_in_;
}

Status Provider::ApplyCertificateSet(
    const Result<std::shared_ptr<const provider::CertificateSet>>& set) {
  if (!set.ok()) {
    if (!warned_) {
      warned_ = true;
      Warn(set.status().message() + "; the token shows no certificates");
    }
    return set.status();
  }
  if (*set == applied_set_) return Status::Ok();
  std::vector<std::string> problems = (*set)->skipped;
  objects_.Update(**set, pin_checked(), &problems);
  applied_set_ = *set;
  applied_at_ = std::chrono::steady_clock::now();
  warned_ = false;
  if (!problems.empty()) {
    std::string all;
    for (const auto& p : problems) all += (all.empty() ? "" : "; ") + p;
    return InvalidArgumentError("some certificates are not shown: " + all);
  }
  return Status::Ok();
}

Status Provider::EnsureObjects() {
  std::lock_guard lock(objects_mu_);
  if (applied_set_ && config_.refresh_interval.count() > 0 &&
      std::chrono::steady_clock::now() - applied_at_ >= config_.refresh_interval) {
    auto refreshed = source_.Refresh();
    if (refreshed.ok()) return ApplyCertificateSet(refreshed);
    applied_at_ = std::chrono::steady_clock::now();  // keep the old list; retry next interval
    return refreshed.status();
  }
  return ApplyCertificateSet(source_.Get());
}

std::optional<SignatureCapabilities> Provider::SignableByAnyKey() {
  // A failed load is reported by EnsureObjects itself (once); here it only means "unknown".
  const Status loaded = EnsureObjects();
  (void)loaded;
  std::lock_guard lock(objects_mu_);
  if (!applied_set_) return std::nullopt;
  SignatureCapabilities any;
  for (const auto& certificate : applied_set_->certificates) {
    any = any.Union(certificate->Signable());
  }
  return any;
}

std::vector<std::shared_ptr<const Object>> Provider::VisibleObjects() const {
  const bool see_private = logged_in();
  std::vector<std::shared_ptr<const Object>> out;
  for (auto& o : objects_.All()) {
    if (!o->is_private || see_private) out.push_back(std::move(o));
  }
  return out;
}

Result<std::shared_ptr<const Object>> Provider::GetObject(CK_OBJECT_HANDLE handle) const {
  std::shared_ptr<const Object> o = objects_.Find(handle);
  // A private object is invisible before login: to the caller it does not exist (§4.4).
  if (o == nullptr || (o->is_private && !logged_in())) {
    return CkError(CKR_OBJECT_HANDLE_INVALID, "no object with handle " + std::to_string(handle));
  }
  return o;
}

CK_SESSION_HANDLE Provider::OpenSession(bool read_write) {
  const CK_SESSION_HANDLE h = handles_.Allocate();
  std::lock_guard lock(sessions_mu_);
  sessions_[h] = std::make_shared<Session>(h, read_write);
  return h;
}

Result<std::shared_ptr<Session>> Provider::GetSession(CK_SESSION_HANDLE handle) const {
  std::lock_guard lock(sessions_mu_);
  auto it = sessions_.find(handle);
  if (it == sessions_.end()) {
    return CkError(CKR_SESSION_HANDLE_INVALID, "no session with handle " + std::to_string(handle));
  }
  return it->second;
}

void Provider::LogoutIfNoSessionsLocked() {
  // Closing the application's last session with the token logs it out (§5.6 C_CloseSession).
  if (!sessions_.empty()) return;
  std::lock_guard lock(login_mu_);
  logged_in_ = false;
}

Status Provider::CloseSession(CK_SESSION_HANDLE handle) {
  std::lock_guard lock(sessions_mu_);
  if (sessions_.erase(handle) == 0) {
    return CkError(CKR_SESSION_HANDLE_INVALID, "no session with handle " + std::to_string(handle));
  }
  LogoutIfNoSessionsLocked();
  return Status::Ok();
}

void Provider::CloseAllSessions() {
  std::lock_guard lock(sessions_mu_);
  sessions_.clear();
  LogoutIfNoSessionsLocked();
}

CK_STATE Provider::SessionState(const Session& session) const {
  const bool user = logged_in();
  if (session.read_write()) return user ? CKS_RW_USER_FUNCTIONS : CKS_RW_PUBLIC_SESSION;
  return user ? CKS_RO_USER_FUNCTIONS : CKS_RO_PUBLIC_SESSION;
}

}  // namespace signum::pkcs11

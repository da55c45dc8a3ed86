// signum-server's HSM backend. See hsm_backend.h.
//
// Threading. Every public method may be called from any thread:
//  - PKCS#11 sessions are single-threaded by contract, so each call borrows one session from a
//    pool (mutex + condition variable; callers block while all sessions are busy) and has it to
//    itself until it returns it. The module itself was initialised with CKF_OS_LOCKING_OK, without
//    which SoftHSM2 turns all its internal locks into no-ops.
//  - Login state and object handles belong to the token/application, not to a session, so one
//    login serves the whole pool and the key-handle cache (guarded by its own mutex) is shared.
//  - Statistics are atomics.
//  - With HsmConfig::serialize_calls, one more mutex is held for the whole of each Run() (every
//    module call a method makes, repairs included) and around the few calls made outside Run(), so
//    the module only ever sees one thread. It is taken after the session lease, never before, so
//    a thread holding it never waits for a session.
//
// Recovery. HSMs lose sessions (network HSMs restart, tokens are re-plugged, SoftHSM drops every
// object handle when the last session closes and private ones at logout). A call that fails with
//   CKR_SESSION_HANDLE_INVALID/SESSION_CLOSED/DEVICE_REMOVED/TOKEN_NOT_PRESENT -> reopen the
//                                  session, log in if the new session is not, forget all handles;
//   CKR_USER_NOT_LOGGED_IN      -> C_Login again, forget all handles (logout killed private ones);
//   CKR_OBJECT/KEY_HANDLE_INVALID -> forget the key's handle and find it again by CKA_ID;
//   CKR_OPERATION_ACTIVE        -> close the session (ending the stray operation) and reopen it;
// and is retried. Each kind of repair is done at most once per call, so a call makes at most four
// attempts; one event often needs several repairs in a row (after a C_Logout elsewhere: the key
// handle is stale, then the re-find finds nothing because the session is logged out). Only the
// borrowed session is repaired; other pooled sessions that died with it (C_CloseAllSessions) are
// repaired when they are next used.
#include "hsm_backend.h"

#include <openssl/crypto.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <utility>

#include "signum/core/log.h"

namespace signum::server {
namespace {

const CK_BBOOL kTrue = CK_TRUE;
const CK_BBOOL kFalse = CK_FALSE;
const CK_OBJECT_CLASS kPrivateKeyClass = CKO_PRIVATE_KEY;
const CK_OBJECT_CLASS kPublicKeyClass = CKO_PUBLIC_KEY;
const CK_OBJECT_CLASS kCertificateClass = CKO_CERTIFICATE;
const CK_CERTIFICATE_TYPE kX509 = CKC_X_509;
// 65537, big-endian, as CKA_PUBLIC_EXPONENT wants it.
const CK_BYTE kRsaPublicExponent[] = {0x01, 0x00, 0x01};

bool IsSessionLoss(CK_RV rv) {
  return rv == CKR_SESSION_HANDLE_INVALID || rv == CKR_SESSION_CLOSED || rv == CKR_DEVICE_REMOVED ||
         rv == CKR_TOKEN_NOT_PRESENT;
}

bool IsStaleHandle(CK_RV rv) {
  return rv == CKR_OBJECT_HANDLE_INVALID || rv == CKR_KEY_HANDLE_INVALID;
}

CK_ATTRIBUTE BytesAttribute(CK_ATTRIBUTE_TYPE type, ByteView value) {
  return MakeAttribute(type, value.data(), static_cast<CK_ULONG>(value.size()));
}

CK_ATTRIBUTE StringAttribute(CK_ATTRIBUTE_TYPE type, const std::string& value) {
  return MakeAttribute(type, value.data(), static_cast<CK_ULONG>(value.size()));
}

CK_ATTRIBUTE BoolAttribute(CK_ATTRIBUTE_TYPE type, bool value) {
  return MakeAttribute(type, value ? &kTrue : &kFalse, sizeof(CK_BBOOL));
}

// Bit length of a big-endian unsigned integer.
int BitLength(ByteView n) {
  size_t i = 0;
  while (i < n.size() && n[i] == 0) ++i;
  if (i == n.size()) return 0;
  int bits = static_cast<int>((n.size() - i - 1) * 8);
  for (uint8_t top = n[i]; top != 0; top >>= 1) ++bits;
  return bits;
}

std::string KeyTypeTitle(KeyType type) { return type == KeyType::kRsa ? "RSA" : "EC"; }

// The uncompressed point from CKA_EC_POINT: a DER OCTET STRING per the spec (and SoftHSM), but
// some modules return the raw point; accept both.
Result<PublicKey> EcPublicKeyFromCkaEcPoint(EcCurve curve, ByteView cka_ec_point) {
  if (auto point = UnwrapEcPointOctetString(cka_ec_point); point.ok()) {
    if (auto key = PublicKey::FromEcPoint(curve, *point); key.ok()) return key;
  }
  return PublicKey::FromEcPoint(curve, cka_ec_point);
}

// What signing needs to know about a private key, cached by CKA_ID.
struct KeyEntry {
  CK_OBJECT_HANDLE handle = CK_INVALID_HANDLE;
  KeySpec spec;
  bool usable = false;  // passed the CKA_SENSITIVE / CKA_EXTRACTABLE check
  std::string refusal;  // why not, when !usable
};

class HsmSigner : public DigestSigner {
 public:
  HsmSigner(HsmBackend* backend, Bytes key_id, PublicKey public_key)
      : backend_(backend), key_id_(std::move(key_id)), public_key_(std::move(public_key)) {}
  const PublicKey& public_key() const override { return public_key_; }
  Result<Bytes> SignDigest(SignatureScheme scheme, HashAlgorithm hash, ByteView digest,
                           std::optional<size_t> pss_salt_length) override {
    return backend_->Sign(key_id_, scheme, hash, digest, pss_salt_length);
  }

 private:
  HsmBackend* backend_;  // must outlive the signer
  Bytes key_id_;
  PublicKey public_key_;
};

// What some modules need beyond PKCS#11 (ModuleQuirks), keyed by what C_GetInfo says: a new
// module is one row. Learned from the vendor baselines (docs/conformance-pkcs11.md). Each row
// names the module as C_GetInfo reports it, checked against the real module (hsm_quirks_test.cc
// holds the CK_INFO each one returns), not as its documentation or package calls it.
constexpr ModuleQuirks kModuleQuirks[] = {
    // tpm2-pkcs11 (src/lib/sign.c: "synthetic" CKM_RSA_PKCS through TPM2_RSA_Decrypt).
    {.name = "tpm2-pkcs11",
     .manufacturer = "tpm2-software.github.io",
     .raw_rsa_sign_needs_decrypt = true},
    // openCryptoki 3.8's soft token: segfaults in template_attribute_find in 5 of 8 runs of
    // concurrent signing, and inside signum-server under concurrent signing through Signum
    // (docs/conformance-pkcs11.md). Its C_GetInfo says manufacturer "IBM", library "Meta PKCS11
    // LIBRARY" (libopencryptoki's API layer, version 3.8), never "openCryptoki": a row keyed on
    // that name never matched, and the server called the soft token from several threads at once.
    {.name = "openCryptoki",
     .manufacturer = "IBM",
     .library_description = "Meta PKCS11 LIBRARY",
     .serialize_calls = true},
};

// A CK_INFO string: up to its first NUL (some modules NUL-terminate their strings, e.g.
// openCryptoki's CK_SLOT_INFO; what follows is not padding), trailing blanks dropped.
std::string InfoString(const CK_UTF8CHAR* field, size_t width) {
  std::string value(reinterpret_cast<const char*>(field), width);
  if (const size_t nul = value.find('\0'); nul != std::string::npos) value.resize(nul);
  while (!value.empty() && value.back() == ' ') value.pop_back();
  return value;
}

// The mechanism Sign() uses, and ProbeCapabilities() looks up, for each scheme (over a DigestInfo, the digest, the digest).
CK_MECHANISM_TYPE MechanismForScheme(SignatureScheme scheme) {
  switch (scheme) {
    case SignatureScheme::kRsaPkcs1:
      return CKM_RSA_PKCS;
    case SignatureScheme::kRsaPss:
      return CKM_RSA_PKCS_PSS;
    case SignatureScheme::kEcdsa:
      return CKM_ECDSA;
  }
  return CKM_ECDSA;
}

}  // namespace

ModuleQuirks QuirksFor(const CK_INFO& info) {
  const std::string manufacturer = InfoString(info.manufacturerID, sizeof info.manufacturerID);
  const std::string description =
      InfoString(info.libraryDescription, sizeof info.libraryDescription);
  for (const ModuleQuirks& quirks : kModuleQuirks) {
    if (manufacturer == quirks.manufacturer && description.starts_with(quirks.library_description))
      return quirks;
  }
  return ModuleQuirks{};
}

class HsmBackend::Impl {
 public:
  using Op = std::function<Status(Pkcs11Session&)>;

  Impl(std::shared_ptr<Pkcs11Module> module, CK_SLOT_ID slot, const HsmConfig& config)
      : module_(std::move(module)),
        slot_(slot),
        label_(config.token_label),
        pin_(config.pin),
        serialize_calls_(config.serialize_calls) {}
  ~Impl() {
    // Best effort: don't leave the PIN in freed memory.
    if (!pin_.empty()) OPENSSL_cleanse(pin_.data(), pin_.size());
  }

  const std::string& label() const { return label_; }

  // Held while calling into the module; owns the module mutex only with serialize_calls.
  std::unique_lock<std::mutex> SerializeCalls() {
    if (!serialize_calls_) return std::unique_lock<std::mutex>(module_call_mu_, std::defer_lock);
    return std::unique_lock<std::mutex>(module_call_mu_);
  }

  void AddSession(Pkcs11Session session) {
    std::lock_guard<std::mutex> lock(pool_mu_);
    pool_.emplace_back(std::move(session));
  }

  Status Login(Pkcs11Session& session) {
    Status status = session.Login(CKU_USER, pin_);
    if (status.ok()) return status;
    // The message names the token and the CK_RV, never the PIN.
    return Status(status.code(),
                  "login to token '" + label_ +
                      "' failed: " + CkRvName(status.ck_rv().value_or(CKR_GENERAL_ERROR)),
                  status.ck_rv());
  }

  // Runs op on a pooled session, repairing session loss, logout and stale handles (each at most
  // once) and retrying. key_id names the key whose cached handle a stale-handle error refers to
  // (empty when op does not use cached handles).
  Status Run(ByteView key_id, const Op& op) {
    Lease lease(this);
    const std::unique_lock<std::mutex> serialized = SerializeCalls();
    bool reopened = false, relogged = false, refound = false;
    for (;;) {
      if (!lease.session) {
        // This pooled session failed to reopen earlier; try again now.
        if (reopened) return UnavailableError("no usable session to token '" + label_ + "'");
        reopened = true;
        SIGNUM_RETURN_IF_ERROR(Reopen(lease));
      }
      Status status = op(*lease.session);
      if (status.ok() || !status.ck_rv()) return status;
      const CK_RV rv = *status.ck_rv();
      // CKR_OPERATION_ACTIVE: an earlier call left an operation running on this session (e.g. a
      // module that misreported a buffer size); closing the session is the portable way to end it.
      if ((IsSessionLoss(rv) || rv == CKR_OPERATION_ACTIVE) && !reopened) {
        reopened = true;
        // A handle the module no longer knows must not be closed: it may have been reused.
        if (rv == CKR_SESSION_HANDLE_INVALID || rv == CKR_SESSION_CLOSED) lease.session->Abandon();
        lease.session.reset();
        session_reopens_++;
        SIGNUM_RETURN_IF_ERROR(Reopen(lease).WithContext(status.message()));
        continue;
      }
      if (rv == CKR_USER_NOT_LOGGED_IN && !relogged) {
        relogged = true;
        relogins_++;
        SIGNUM_RETURN_IF_ERROR(Login(*lease.session));
        ClearCache();  // a logout invalidates handles to private objects
        continue;
      }
      if (IsStaleHandle(rv) && !refound && !key_id.empty()) {
        refound = true;
        key_refinds_++;
        DropCached(key_id);
        continue;
      }
      return status;
    }
  }

  // The cached entry for key_id, or a fresh one found by CKA_ID.
  Result<KeyEntry> ResolveKey(Pkcs11Session& session, ByteView key_id) {
    const std::string cache_key = HexEncode(key_id);
    uint64_t epoch;
    {
      std::lock_guard<std::mutex> lock(cache_mu_);
      if (auto it = cache_.find(cache_key); it != cache_.end()) return it->second;
      epoch = cache_epoch_;
    }
    SIGNUM_ASSIGN_OR_RETURN(CK_OBJECT_HANDLE handle, FindUniquePrivateKey(session, key_id));
    KeyEntry entry;
    entry.handle = handle;
    SIGNUM_ASSIGN_OR_RETURN(entry.spec, ReadKeySpec(session, handle));
    SIGNUM_ASSIGN_OR_RETURN(bool sensitive, session.GetBoolAttribute(handle, CKA_SENSITIVE));
    SIGNUM_ASSIGN_OR_RETURN(bool extractable, session.GetBoolAttribute(handle, CKA_EXTRACTABLE));
    if (!sensitive) {
      entry.refusal = "key " + cache_key +
                      " is not CKA_SENSITIVE: its private value can be read off the token, so "
                      "Signum will not sign with it";
    } else if (extractable) {
      entry.refusal = "key " + cache_key +
                      " is CKA_EXTRACTABLE: it can be wrapped and taken off the token, so Signum "
                      "will not sign with it";
    }
    entry.usable = entry.refusal.empty();
    {
      // Not if the cache was cleared meanwhile: the handle may predate the event that cleared it.
      std::lock_guard<std::mutex> lock(cache_mu_);
      if (cache_epoch_ == epoch) cache_[cache_key] = entry;
    }
    return entry;
  }

  void DropCached(ByteView key_id) {
    std::lock_guard<std::mutex> lock(cache_mu_);
    cache_.erase(HexEncode(key_id));
    ++cache_epoch_;
  }

  void ClearCache() {
    std::lock_guard<std::mutex> lock(cache_mu_);
    cache_.clear();
    ++cache_epoch_;
  }

  // Objects of class cls with CKA_ID = id (any CKA_ID when id is empty).
  Result<std::vector<CK_OBJECT_HANDLE>> FindById(Pkcs11Session& session, CK_OBJECT_CLASS cls,
                                                 ByteView id) {
    std::vector<CK_ATTRIBUTE> tmpl = {MakeAttribute(CKA_CLASS, ClassPtr(cls), sizeof(cls))};
    if (!id.empty()) tmpl.push_back(BytesAttribute(CKA_ID, id));
    SIGNUM_ASSIGN_OR_RETURN(std::vector<CK_OBJECT_HANDLE> found,
                            session.FindObjects(std::move(tmpl)));
    if (found.empty() && cls == CKO_PRIVATE_KEY) SIGNUM_RETURN_IF_ERROR(CheckLoggedIn(session));
    return found;
  }

  // Private objects are invisible, not an error, when the session is not logged in: an empty
  // search then has to be told apart from a missing key so that Run() logs in again.
  Status CheckLoggedIn(Pkcs11Session& session) {
    SIGNUM_ASSIGN_OR_RETURN(CK_SESSION_INFO info, session.Info());
    if (info.state == CKS_RO_USER_FUNCTIONS || info.state == CKS_RW_USER_FUNCTIONS) {
      return Status::Ok();
    }
    return Status(ErrorCode::kFailedPrecondition,
                  "the session to token '" + label_ + "' is not logged in", CKR_USER_NOT_LOGGED_IN);
  }

  Result<CK_OBJECT_HANDLE> FindUniquePrivateKey(Pkcs11Session& session, ByteView key_id) {
    SIGNUM_ASSIGN_OR_RETURN(std::vector<CK_OBJECT_HANDLE> found,
                            FindById(session, CKO_PRIVATE_KEY, key_id));
    if (found.empty()) {
      return NotFoundError("no private key with CKA_ID " + HexEncode(key_id) + " on token '" +
                           label_ + "'");
    }
    if (found.size() > 1) {
      // Signing with whichever one the module lists first could use the wrong key.
      return FailedPreconditionError(std::to_string(found.size()) + " private keys on token '" +
                                     label_ + "' have CKA_ID " + HexEncode(key_id));
    }
    return found[0];
  }

  // RSA: bits of CKA_MODULUS; EC: the curve of CKA_EC_PARAMS. Other types: kUnimplemented.
  Result<KeySpec> ReadKeySpec(Pkcs11Session& session, CK_OBJECT_HANDLE key) {
    SIGNUM_ASSIGN_OR_RETURN(CK_ULONG key_type, session.GetUlongAttribute(key, CKA_KEY_TYPE));
    KeySpec spec;
    if (key_type == CKK_RSA) {
      SIGNUM_ASSIGN_OR_RETURN(Bytes modulus, session.GetAttribute(key, CKA_MODULUS));
      spec.type = KeyType::kRsa;
      spec.rsa_bits = BitLength(modulus);
      return spec;
    }
    if (key_type == CKK_EC) {
      SIGNUM_ASSIGN_OR_RETURN(Bytes params, session.GetAttribute(key, CKA_EC_PARAMS));
      std::optional<EcCurve> curve = CurveFromParamsDer(params);
      if (!curve) {
        return UnimplementedError("EC key on an unsupported curve (CKA_EC_PARAMS " +
                                  HexEncode(params) + ")");
      }
      spec.type = KeyType::kEc;
      spec.curve = *curve;
      return spec;
    }
    return UnimplementedError("unsupported CKA_KEY_TYPE " + std::to_string(key_type));
  }

  // Everything FindKey/ListKeys report about a private key.
  Result<HsmKey> DescribeKey(Pkcs11Session& session, CK_OBJECT_HANDLE priv) {
    SIGNUM_ASSIGN_OR_RETURN(Bytes id, session.GetAttribute(priv, CKA_ID));
    std::string label;
    if (auto value = session.GetAttribute(priv, CKA_LABEL); value.ok()) {
      label = ToString(*value);
    } else if (value.status().code() != ErrorCode::kNotFound) {
      return value.status();
    }
    SIGNUM_ASSIGN_OR_RETURN(KeySpec spec, ReadKeySpec(session, priv));
    std::optional<PublicKey> public_key;
    if (spec.type == KeyType::kRsa) {
      SIGNUM_ASSIGN_OR_RETURN(Bytes modulus, session.GetAttribute(priv, CKA_MODULUS));
      auto exponent = session.GetAttribute(priv, CKA_PUBLIC_EXPONENT);
      if (!exponent.ok() && exponent.status().code() == ErrorCode::kNotFound) {
        // Not every module keeps the public exponent on the private key: ask the public key.
        SIGNUM_ASSIGN_OR_RETURN(CK_OBJECT_HANDLE pub, FindPublicKey(session, id));
        exponent = session.GetAttribute(pub, CKA_PUBLIC_EXPONENT);
      }
      if (!exponent.ok()) return exponent.status();
      SIGNUM_ASSIGN_OR_RETURN(public_key, PublicKey::FromRsaComponents(modulus, *exponent));
    } else {
      // CKA_EC_POINT lives on the public key object only (SoftHSM, and most modules).
      SIGNUM_ASSIGN_OR_RETURN(CK_OBJECT_HANDLE pub, FindPublicKey(session, id));
      SIGNUM_ASSIGN_OR_RETURN(Bytes point, session.GetAttribute(pub, CKA_EC_POINT));
      SIGNUM_ASSIGN_OR_RETURN(public_key, EcPublicKeyFromCkaEcPoint(spec.curve, point));
    }
    SIGNUM_ASSIGN_OR_RETURN(bool sensitive, session.GetBoolAttribute(priv, CKA_SENSITIVE));
    SIGNUM_ASSIGN_OR_RETURN(bool extractable, session.GetBoolAttribute(priv, CKA_EXTRACTABLE));
    return HsmKey{std::move(id), std::move(label), std::move(*public_key), sensitive, extractable};
  }

  Result<CK_OBJECT_HANDLE> FindPublicKey(Pkcs11Session& session, ByteView id) {
    if (id.empty()) {
      // Without a CKA_ID there is no way to pair the halves (an empty template matches all).
      return FailedPreconditionError("a private key without CKA_ID has no findable public key");
    }
    SIGNUM_ASSIGN_OR_RETURN(std::vector<CK_OBJECT_HANDLE> found,
                            FindById(session, CKO_PUBLIC_KEY, id));
    if (found.empty()) {
      return FailedPreconditionError("the private key with CKA_ID " + HexEncode(id) +
                                     " has no public key object with the same CKA_ID");
    }
    return found[0];
  }

  HsmStats stats() const {
    HsmStats s;
    s.signatures = signatures_.load();
    s.session_reopens = session_reopens_.load();
    s.relogins = relogins_.load();
    s.key_refinds = key_refinds_.load();
    s.probe_signatures = probe_signatures_.load();
    return s;
  }

  std::atomic<uint64_t> signatures_{0};
  std::atomic<uint64_t> probe_signatures_{0};

 private:
  // A pooled session, borrowed for one call. Empty while it could not be reopened.
  struct Lease {
    explicit Lease(Impl* impl) : impl(impl) {
      std::unique_lock<std::mutex> lock(impl->pool_mu_);
      impl->pool_cv_.wait(lock, [impl] { return !impl->pool_.empty(); });
      session = std::move(impl->pool_.front());
      impl->pool_.pop_front();
    }
    ~Lease() {
      {
        std::lock_guard<std::mutex> lock(impl->pool_mu_);
        impl->pool_.push_back(std::move(session));
      }
      impl->pool_cv_.notify_one();
    }
    Lease(const Lease&) = delete;
    Lease& operator=(const Lease&) = delete;
    Impl* impl;
    std::optional<Pkcs11Session> session;
  };

  static const CK_OBJECT_CLASS* ClassPtr(CK_OBJECT_CLASS cls) {
    switch (cls) {
      case CKO_PRIVATE_KEY:
        return &kPrivateKeyClass;
      case CKO_PUBLIC_KEY:
        return &kPublicKeyClass;
      default:
        return &kCertificateClass;
    }
  }

  // A new session for the lease, logged in if the token forgot the login, and a cleared handle
  // cache (the old session may have been the last one, which takes every handle with it).
  Status Reopen(Lease& lease) {
    auto session = Pkcs11Session::Open(module_, slot_, /*read_write=*/true);
    if (!session.ok()) {
      return session.status().WithContext("reopening a session to token '" + label_ + "'");
    }
    lease.session = std::move(*session);
    ClearCache();
    if (!CheckLoggedIn(*lease.session).ok()) SIGNUM_RETURN_IF_ERROR(Login(*lease.session));
    return Status::Ok();
  }

  std::shared_ptr<Pkcs11Module> module_;
  CK_SLOT_ID slot_;
  std::string label_;
  std::string pin_;  // needed to log in again after a session loss; never logged
  const bool serialize_calls_;
  std::mutex module_call_mu_;  // see SerializeCalls()

  std::mutex pool_mu_;
  std::condition_variable pool_cv_;
  std::deque<std::optional<Pkcs11Session>> pool_;  // idle sessions

  std::mutex cache_mu_;
  std::map<std::string, KeyEntry> cache_;  // hex CKA_ID -> private key
  uint64_t cache_epoch_ = 0;               // bumped whenever entries are dropped

  std::atomic<uint64_t> session_reopens_{0};
  std::atomic<uint64_t> relogins_{0};
  std::atomic<uint64_t> key_refinds_{0};
};

// --- HsmBackend ----------------------------------------------------------------------------------

Result<std::unique_ptr<HsmBackend>> HsmBackend::Open(const HsmConfig& config) {
  const std::string where = "HSM module " + config.module_path;
  auto module = Pkcs11Module::Load(config.module_path, Pkcs11InitOptions{.os_locking = true});
  if (!module.ok()) {
    // Load's messages read "PKCS#11 module <path>: ..."; say which role the module plays instead
    // of naming the path twice.
    const Status& status = module.status();
    std::string message = status.message();
    const std::string prefix = "PKCS#11 module " + config.module_path;
    if (message.starts_with(prefix)) {
      message = where + message.substr(prefix.size());
    } else {
      message = where + ": " + message;
    }
    return Status(status.code(), std::move(message), status.ck_rv());
  }
  auto slot = (*module)->FindSlotByTokenLabel(config.token_label);
  if (!slot.ok()) return slot.status().WithContext(where);

  // Still one thread here: nothing else has the module yet.
  const CK_INFO info = (*module)->info();
  const ModuleQuirks quirks = QuirksFor(info);
  HsmConfig effective = config;
  // Said either way: conformance/pkcs11/vendors/run-validate.sh looks for it in openCryptoki's run.
  if (quirks.serialize_calls) {
    effective.serialize_calls = true;
    SIGNUM_LOG_INFO("hsm", "one call at a time into "
                               << quirks.name << " ("
                               << InfoString(info.manufacturerID, sizeof info.manufacturerID)
                               << " "
                               << InfoString(info.libraryDescription,
                                             sizeof info.libraryDescription)
                               << " " << int{info.libraryVersion.major} << "."
                               << int{info.libraryVersion.minor}
                               << "; it is not safe under concurrent signing; hsm.serialize is "
                                  "implied)");
  } else if (config.serialize_calls) {
    SIGNUM_LOG_INFO("hsm", "one call at a time into the module (hsm.serialize)");
  }

  std::unique_ptr<HsmBackend> backend(new HsmBackend());
  backend->module_ = *module;
  backend->slot_ = *slot;
  backend->serializes_calls_ = effective.serialize_calls;
  backend->quirks_ = quirks;
  backend->impl_ = std::make_unique<Impl>(*module, *slot, effective);
  const size_t pool_size = std::max<size_t>(config.pool_size, 1);
  for (size_t i = 0; i < pool_size; ++i) {
    auto session = Pkcs11Session::Open(*module, *slot, /*read_write=*/true);
    if (!session.ok()) {
      return session.status().WithContext(where + ": opening session " + std::to_string(i + 1) +
                                          " of " + std::to_string(pool_size) + " to token '" +
                                          config.token_label + "'");
    }
    if (i == 0) {
      // Login state is per token and application: one login covers every session.
      Status login = backend->impl_->Login(*session);
      if (!login.ok()) return login.WithContext(where);
    }
    backend->impl_->AddSession(std::move(*session));
  }
  return backend;
}

HsmBackend::~HsmBackend() = default;

Result<Bytes> HsmBackend::Sign(ByteView key_id, SignatureScheme scheme, HashAlgorithm hash,
                               ByteView digest, std::optional<size_t> pss_salt_length) {
  SIGNUM_ASSIGN_OR_RETURN(Bytes signature,
                          SignUncounted(key_id, scheme, hash, digest, pss_salt_length));
  impl_->signatures_++;
  return signature;
}

Result<Bytes> HsmBackend::SignUncounted(ByteView key_id, SignatureScheme scheme, HashAlgorithm hash,
                                        ByteView digest, std::optional<size_t> pss_salt_length) {
  const HashInfo& hash_info = GetHashInfo(hash);
  if (digest.size() != hash_info.digest_size) {
    return InvalidArgumentError("a " + std::string(hash_info.name) + " digest has " +
                                std::to_string(hash_info.digest_size) + " bytes, got " +
                                std::to_string(digest.size()));
  }
  if (key_id.empty()) return InvalidArgumentError("empty key id");

  Bytes signature;
  Status status = impl_->Run(key_id, [&](Pkcs11Session& session) -> Status {
    SIGNUM_ASSIGN_OR_RETURN(KeyEntry key, impl_->ResolveKey(session, key_id));
    if (!key.usable) return FailedPreconditionError(key.refusal);
    if (!SchemeFitsKey(scheme, key.spec.type)) {
      return InvalidArgumentError(std::string(SchemeName(scheme)) + " on an " +
                                  KeyTypeTitle(key.spec.type) + " key");
    }

    CK_MECHANISM mechanism{MechanismForScheme(scheme), nullptr, 0};
    CK_RSA_PKCS_PSS_PARAMS pss{};
    Bytes input;
    switch (scheme) {
      case SignatureScheme::kRsaPkcs1: {
        SIGNUM_ASSIGN_OR_RETURN(input, BuildDigestInfo(hash, digest));
        break;
      }
      case SignatureScheme::kRsaPss: {
        const size_t salt = pss_salt_length.value_or(DefaultPssSaltLength(hash));
        const size_t max_salt = MaxPssSaltLength(key.spec.rsa_bits, hash);
        if (salt > max_salt) {
          return InvalidArgumentError("a PSS salt of " + std::to_string(salt) +
                                      " bytes is too long for " + key.spec.Name() + " with " +
                                      std::string(hash_info.name) + " (at most " +
                                      std::to_string(max_salt) + ")");
        }
        pss.hashAlg = hash_info.ckm_digest;
        pss.mgf = hash_info.ckg_mgf;
        pss.sLen = static_cast<CK_ULONG>(salt);
        mechanism.pParameter = &pss;
        mechanism.ulParameterLen = sizeof pss;
        input.assign(digest.begin(), digest.end());
        break;
      }
      case SignatureScheme::kEcdsa:
        // Raw CKM_ECDSA over the digest (SoftHSM 2.6 has no CKM_ECDSA_SHA*); the module truncates
        // digests longer than the group order itself.
        input.assign(digest.begin(), digest.end());
        break;
    }

    const std::string mech = MechanismName(mechanism.mechanism);
    CK_FUNCTION_LIST_PTR fn = session.fn();
    CK_RV rv = fn->C_SignInit(session.handle(), &mechanism, key.handle);
    if (rv != CKR_OK) return CkStatus(rv, "C_SignInit(" + mech + ")");
    // One C_Sign into a buffer of the known signature size; CKR_BUFFER_TOO_SMALL keeps the
    // operation alive and tells us the size.
    const size_t expected = key.spec.SignatureSize();
    Bytes out(expected);
    CK_ULONG length = static_cast<CK_ULONG>(out.size());
    rv = fn->C_Sign(session.handle(), input.data(), static_cast<CK_ULONG>(input.size()), out.data(),
                    &length);
    if (rv == CKR_BUFFER_TOO_SMALL && length > out.size()) {
      out.resize(length);
      rv = fn->C_Sign(session.handle(), input.data(), static_cast<CK_ULONG>(input.size()),
                      out.data(), &length);
    }
    if (rv != CKR_OK) return CkStatus(rv, "C_Sign(" + mech + ")");
    out.resize(length);
    if (out.size() < expected && key.spec.type == KeyType::kRsa) {
      // The same integer, left-padded to the modulus length as RFC 8017 requires.
      out.insert(out.begin(), expected - out.size(), 0);
    }
    if (out.size() != expected) {
      return InternalError(mech + " returned " + std::to_string(out.size()) + " bytes; a " +
                           key.spec.Name() + " signature has " + std::to_string(expected));
    }
    signature = std::move(out);
    return Status::Ok();
  });
  if (!status.ok()) return status;
  return signature;
}

namespace {

// Whether a failed probe signature says the key cannot do that pair. Errors about sessions,
// login, the device or the key's handle say nothing about it (and Run() already tried to repair
// them); neither do errors without a CK_RV other than Sign()'s own checks of the request and of
// the module's answer (a salt the modulus cannot carry, a signature of the wrong length).
bool SaysKeyCannot(const Status& status) {
  if (!status.ck_rv()) {
    return status.code() == ErrorCode::kInvalidArgument || status.code() == ErrorCode::kInternal;
  }
  switch (static_cast<CK_RV>(*status.ck_rv())) {
    case CKR_SESSION_HANDLE_INVALID:
    case CKR_SESSION_CLOSED:
    case CKR_SESSION_COUNT:
    case CKR_DEVICE_REMOVED:
    case CKR_DEVICE_ERROR:
    case CKR_DEVICE_MEMORY:
    case CKR_HOST_MEMORY:
    case CKR_TOKEN_NOT_PRESENT:
    case CKR_TOKEN_NOT_RECOGNIZED:
    case CKR_USER_NOT_LOGGED_IN:
    case CKR_PIN_INCORRECT:
    case CKR_PIN_EXPIRED:
    case CKR_PIN_LOCKED:
    case CKR_OPERATION_ACTIVE:
    case CKR_OBJECT_HANDLE_INVALID:
    case CKR_KEY_HANDLE_INVALID:
    case CKR_CRYPTOKI_NOT_INITIALIZED:
    case CKR_FUNCTION_CANCELED:
    case CKR_CANT_LOCK:
      return false;
    default:
      return true;
  }
}

// Some modules give EC key sizes in bytes (32..66) although PKCS#11 says bits.
bool KeySizeInRange(const CK_MECHANISM_INFO& info, const KeySpec& spec) {
  if (info.ulMaxKeySize == 0) return true;  // no range claimed
  const auto bits = static_cast<CK_ULONG>(spec.Bits());
  if (bits >= info.ulMinKeySize && bits <= info.ulMaxKeySize) return true;
  if (spec.type == KeyType::kEc && info.ulMaxKeySize < 128) {
    const CK_ULONG bytes = (bits + 7) / 8;
    return bytes >= info.ulMinKeySize && bytes <= info.ulMaxKeySize;
  }
  return false;
}

// The fixed input of every probe signature (its digest under each hash).
constexpr std::string_view kProbeMessage = "signum-server capability probe";

}  // namespace

Result<KeyCapabilityProbe> HsmBackend::ProbeCapabilities(ByteView key_id,
                                                         const PublicKey& verify_with) {
  if (key_id.empty()) return InvalidArgumentError("empty key id");
  const KeySpec spec = verify_with.spec();
  CK_FUNCTION_LIST_PTR fn = module_->functions();

  // The slot's mechanisms. A module that cannot list them is judged by the probes alone.
  std::optional<std::vector<CK_MECHANISM_TYPE>> listed;
  {
    const std::unique_lock<std::mutex> serialized = impl_->SerializeCalls();
    if (auto mechanisms = module_->Mechanisms(slot_); mechanisms.ok()) listed = *mechanisms;
  }
  KeyCapabilityProbe probe;
  for (SignatureScheme scheme : AllSchemes()) {
    if (!SchemeFitsKey(scheme, spec.type)) continue;
    const std::string scheme_name(SchemeName(scheme));
    const CK_MECHANISM_TYPE mechanism = MechanismForScheme(scheme);
    const std::string mech = MechanismName(mechanism);
    if (listed) {
      if (std::find(listed->begin(), listed->end(), mechanism) == listed->end()) {
        probe.missing.push_back(scheme_name + ": " + mech + " is not in C_GetMechanismList");
        continue;
      }
      CK_MECHANISM_INFO info{};
      CK_RV rv;
      {
        const std::unique_lock<std::mutex> serialized = impl_->SerializeCalls();
        rv = fn->C_GetMechanismInfo(slot_, mechanism, &info);
      }
      if (rv != CKR_OK) {
        probe.missing.push_back(scheme_name + ": C_GetMechanismInfo(" + mech +
                                "): " + CkRvName(rv));
        continue;
      }
      if ((info.flags & CKF_SIGN) == 0) {
        probe.missing.push_back(scheme_name + ": " + mech + " lacks CKF_SIGN");
        continue;
      }
      if (!KeySizeInRange(info, spec)) {
        probe.missing.push_back(scheme_name + ": " + spec.Name() + " is outside " + mech + "'s " +
                                std::to_string(info.ulMinKeySize) + ".." +
                                std::to_string(info.ulMaxKeySize));
        continue;
      }
    }
    std::vector<std::string> reasons;  // why each hash failed, for this scheme
    for (const HashInfo& h : AllHashes()) {
      const std::string pair = scheme_name + "/" + std::string(h.name);
      const Bytes digest = Digest(h.algorithm, AsBytes(kProbeMessage));
      auto signature = SignUncounted(key_id, scheme, h.algorithm, digest, std::nullopt);
      if (!signature.ok()) {
        if (!SaysKeyCannot(signature.status())) {
          return signature.status().WithContext("probing " + pair + " on key " + HexEncode(key_id));
        }
        reasons.push_back(signature.status().message());
        probe.missing.push_back(pair + ": " + reasons.back());
        continue;
      }
      impl_->probe_signatures_++;
      Status verified = VerifyDigestSignature(verify_with, scheme, h.algorithm, digest, *signature);
      if (!verified.ok()) {
        reasons.push_back(mech + " returned a signature that does not verify");
        probe.missing.push_back(pair + ": " + reasons.back());
        continue;
      }
      probe.can_sign.Add(scheme, h.algorithm);
    }
    // One reason for the whole scheme when every hash failed the same way (the usual case).
    if (reasons.size() == AllHashes().size() &&
        std::all_of(reasons.begin(), reasons.end(),
                    [&](const std::string& r) { return r == reasons.front(); })) {
      probe.missing.resize(probe.missing.size() - reasons.size());
      probe.missing.push_back(scheme_name + ": " + reasons.front());
    }
  }
  return probe;
}

Result<HsmKey> HsmBackend::GenerateKeyPair(const KeySpec& spec, const std::string& label) {
  const auto supported = SupportedKeySpecs();
  if (std::find(supported.begin(), supported.end(), spec) == supported.end()) {
    return InvalidArgumentError("unsupported key spec " + spec.Name());
  }
  // CKA_DECRYPT=FALSE: a signing key, nothing else, unless the module signs PKCS#1 v1.5 through
  // decryption (the key stays sensitive and non-extractable either way; HsmKey says which).
  // (quirks_, not C_GetInfo again: a call here would bypass serialize_calls.)
  const bool forbid_decrypt = spec.type != KeyType::kRsa || !quirks_.raw_rsa_sign_needs_decrypt;
  std::optional<HsmKey> generated;
  Status status = impl_->Run({}, [&](Pkcs11Session& session) -> Status {
    const CK_ULONG modulus_bits = static_cast<CK_ULONG>(spec.rsa_bits);
    // CKA_PRIVATE=FALSE on the public half: SoftHSM makes every object private by default, and
    // clients expect to see public keys (and certificates) without logging in.
    // No CKA_VERIFY: Signum verifies with OpenSSL, never on the token, and tpm2-pkcs11 derives
    // the public CKA_VERIFY from the key's DECRYPT attribute, so VERIFY=TRUE with the private
    // CKA_DECRYPT=FALSE is a conflict it refuses (CKR_GENERAL_ERROR, "attr mismatch 0x10a").
    std::vector<CK_ATTRIBUTE> pub_tmpl = {
        BoolAttribute(CKA_TOKEN, true),
        BoolAttribute(CKA_PRIVATE, false),
        StringAttribute(CKA_LABEL, label),
    };
    std::vector<CK_ATTRIBUTE> priv_tmpl = {
        BoolAttribute(CKA_TOKEN, true),     BoolAttribute(CKA_PRIVATE, true),
        BoolAttribute(CKA_SENSITIVE, true), BoolAttribute(CKA_EXTRACTABLE, false),
        BoolAttribute(CKA_SIGN, true),      StringAttribute(CKA_LABEL, label),
    };
    if (forbid_decrypt) priv_tmpl.push_back(BoolAttribute(CKA_DECRYPT, false));
    // Nor a key-unwrapping key (modules default CKA_UNWRAP to TRUE): a signing key that can
    // unwrap could import keys chosen by whoever can call C_UnwrapKey with it.
    priv_tmpl.push_back(BoolAttribute(CKA_UNWRAP, false));
    CK_MECHANISM mechanism{CKM_RSA_PKCS_KEY_PAIR_GEN, nullptr, 0};
    if (spec.type == KeyType::kRsa) {
      pub_tmpl.push_back(MakeAttribute(CKA_MODULUS_BITS, &modulus_bits, sizeof modulus_bits));
      pub_tmpl.push_back(
          MakeAttribute(CKA_PUBLIC_EXPONENT, kRsaPublicExponent, sizeof kRsaPublicExponent));
    } else {
      mechanism.mechanism = CKM_EC_KEY_PAIR_GEN;
      pub_tmpl.push_back(BytesAttribute(CKA_EC_PARAMS, GetCurveInfo(spec.curve).params_der));
    }
    CK_FUNCTION_LIST_PTR fn = session.fn();
    CK_OBJECT_HANDLE pub = CK_INVALID_HANDLE, priv = CK_INVALID_HANDLE;
    CK_RV rv = fn->C_GenerateKeyPair(session.handle(), &mechanism, pub_tmpl.data(),
                                     static_cast<CK_ULONG>(pub_tmpl.size()), priv_tmpl.data(),
                                     static_cast<CK_ULONG>(priv_tmpl.size()), &pub, &priv);
    if (rv != CKR_OK) {
      return CkStatus(
          rv, "C_GenerateKeyPair(" + MechanismName(mechanism.mechanism) + ", " + spec.Name() + ")");
    }

    // The CKA_ID is derived from the public key, so it is set after generation. If anything from
    // here on fails, remove the half-made pair (best effort: after a session loss the objects
    // stay behind without a CKA_ID, invisible to FindKey) and let Run() retry from scratch.
    auto finish = [&]() -> Status {
      std::optional<PublicKey> public_key;
      if (spec.type == KeyType::kRsa) {
        SIGNUM_ASSIGN_OR_RETURN(Bytes modulus, session.GetAttribute(pub, CKA_MODULUS));
        SIGNUM_ASSIGN_OR_RETURN(Bytes exponent, session.GetAttribute(pub, CKA_PUBLIC_EXPONENT));
        SIGNUM_ASSIGN_OR_RETURN(public_key, PublicKey::FromRsaComponents(modulus, exponent));
      } else {
        SIGNUM_ASSIGN_OR_RETURN(Bytes point, session.GetAttribute(pub, CKA_EC_POINT));
        SIGNUM_ASSIGN_OR_RETURN(public_key, EcPublicKeyFromCkaEcPoint(spec.curve, point));
      }
      if (public_key->spec() != spec) {
        return InternalError("generated a " + public_key->spec().Name() + " key, asked for " +
                             spec.Name());
      }
      Bytes id = public_key->KeyId();
      CK_ATTRIBUTE id_attr = BytesAttribute(CKA_ID, id);
      rv = fn->C_SetAttributeValue(session.handle(), pub, &id_attr, 1);
      if (rv != CKR_OK) return CkStatus(rv, "C_SetAttributeValue(CKA_ID) on the public key");
      rv = fn->C_SetAttributeValue(session.handle(), priv, &id_attr, 1);
      if (rv != CKR_OK) return CkStatus(rv, "C_SetAttributeValue(CKA_ID) on the private key");
      // Report what the token says, not what we asked for.
      SIGNUM_ASSIGN_OR_RETURN(bool sensitive, session.GetBoolAttribute(priv, CKA_SENSITIVE));
      SIGNUM_ASSIGN_OR_RETURN(bool extractable, session.GetBoolAttribute(priv, CKA_EXTRACTABLE));
      generated = HsmKey{std::move(id),        label,       std::move(*public_key),
                         sensitive,            extractable, !forbid_decrypt};
      return Status::Ok();
    };
    Status finished = finish();
    if (!finished.ok()) {
      fn->C_DestroyObject(session.handle(), priv);
      fn->C_DestroyObject(session.handle(), pub);
    }
    return finished;
  });
  if (!status.ok()) {
    return status.WithContext("generating a " + spec.Name() + " key pair on token '" +
                              impl_->label() + "'");
  }
  impl_->DropCached(generated->id);
  return std::move(*generated);
}

Result<HsmKey> HsmBackend::FindKey(ByteView key_id) {
  if (key_id.empty()) return InvalidArgumentError("empty key id");
  std::optional<HsmKey> key;
  Status status = impl_->Run({}, [&](Pkcs11Session& session) -> Status {
    SIGNUM_ASSIGN_OR_RETURN(CK_OBJECT_HANDLE priv, impl_->FindUniquePrivateKey(session, key_id));
    SIGNUM_ASSIGN_OR_RETURN(key, impl_->DescribeKey(session, priv));
    return Status::Ok();
  });
  if (!status.ok()) return status;
  return std::move(*key);
}

Result<std::vector<HsmKey>> HsmBackend::ListKeys() {
  std::vector<HsmKey> keys;
  Status status = impl_->Run({}, [&](Pkcs11Session& session) -> Status {
    keys.clear();
    SIGNUM_ASSIGN_OR_RETURN(std::vector<CK_OBJECT_HANDLE> found,
                            impl_->FindById(session, CKO_PRIVATE_KEY, {}));
    for (CK_OBJECT_HANDLE priv : found) {
      // Signum addresses keys by CKA_ID; keys without one are not usable through this backend.
      SIGNUM_ASSIGN_OR_RETURN(Bytes id, session.GetAttribute(priv, CKA_ID));
      if (id.empty()) continue;
      auto key = impl_->DescribeKey(session, priv);
      // Keys Signum cannot use (DSA, other curves) are not Signum's business.
      if (!key.ok() && key.status().code() == ErrorCode::kUnimplemented) continue;
      if (!key.ok()) return key.status();
      keys.push_back(std::move(*key));
    }
    return Status::Ok();
  });
  if (!status.ok()) return status;
  return keys;
}

Status HsmBackend::StoreCertificate(ByteView key_id, const std::string& label,
                                    const Certificate& cert) {
  if (key_id.empty()) return InvalidArgumentError("empty key id");
  const Bytes value = cert.Der();
  const Bytes subject = cert.SubjectDer();
  const Bytes issuer = cert.IssuerDer();
  const Bytes serial = cert.SerialDer();
  const Result<PublicKey> cert_key = cert.GetPublicKey();
  if (!cert_key.ok()) return cert_key.status().WithContext("the certificate's public key");
  return impl_->Run({}, [&](Pkcs11Session& session) -> Status {
    // A certificate that does not belong to the key would make every client sign with the key
    // and present someone else's certificate.
    SIGNUM_ASSIGN_OR_RETURN(CK_OBJECT_HANDLE priv, impl_->FindUniquePrivateKey(session, key_id));
    SIGNUM_ASSIGN_OR_RETURN(HsmKey key, impl_->DescribeKey(session, priv));
    if (cert_key->spec() != key.public_key.spec() || cert_key->KeyId() != key.public_key.KeyId()) {
      return InvalidArgumentError("the certificate '" + cert.Subject() +
                                  "' is not for the key with CKA_ID " + HexEncode(key_id));
    }
    SIGNUM_ASSIGN_OR_RETURN(std::vector<CK_OBJECT_HANDLE> old,
                            impl_->FindById(session, CKO_CERTIFICATE, key_id));
    // Create first, then remove the old ones: a failure never leaves the key without a
    // certificate.
    std::vector<CK_ATTRIBUTE> tmpl = {
        MakeAttribute(CKA_CLASS, &kCertificateClass, sizeof kCertificateClass),
        MakeAttribute(CKA_CERTIFICATE_TYPE, &kX509, sizeof kX509),
        BoolAttribute(CKA_TOKEN, true),
        BoolAttribute(CKA_PRIVATE, false),
        BytesAttribute(CKA_ID, key_id),
        StringAttribute(CKA_LABEL, label),
        BytesAttribute(CKA_SUBJECT, subject),
        BytesAttribute(CKA_ISSUER, issuer),
        BytesAttribute(CKA_SERIAL_NUMBER, serial),
        BytesAttribute(CKA_VALUE, value),
    };
    CK_OBJECT_HANDLE created = CK_INVALID_HANDLE;
    CK_RV rv = session.fn()->C_CreateObject(session.handle(), tmpl.data(),
                                            static_cast<CK_ULONG>(tmpl.size()), &created);
    if (rv != CKR_OK) return CkStatus(rv, "C_CreateObject(CKO_CERTIFICATE)");
    for (CK_OBJECT_HANDLE handle : old) {
      rv = session.fn()->C_DestroyObject(session.handle(), handle);
      if (rv != CKR_OK) return CkStatus(rv, "C_DestroyObject(old certificate)");
    }
    return Status::Ok();
  });
}

Status HsmBackend::DestroyKey(ByteView key_id) {
  if (key_id.empty()) return InvalidArgumentError("empty key id");
  Status status = impl_->Run({}, [&](Pkcs11Session& session) -> Status {
    std::vector<CK_OBJECT_HANDLE> objects;
    for (CK_OBJECT_CLASS cls : {CKO_PRIVATE_KEY, CKO_PUBLIC_KEY, CKO_CERTIFICATE}) {
      auto found = impl_->FindById(session, cls, key_id);
      // An empty private-key search while logged out surfaces as CKR_USER_NOT_LOGGED_IN.
      if (!found.ok()) return found.status();
      objects.insert(objects.end(), found->begin(), found->end());
    }
    if (objects.empty()) {
      return NotFoundError("no objects with CKA_ID " + HexEncode(key_id) + " on token '" +
                           impl_->label() + "'");
    }
    for (CK_OBJECT_HANDLE handle : objects) {
      CK_RV rv = session.fn()->C_DestroyObject(session.handle(), handle);
      if (rv != CKR_OK) return CkStatus(rv, "C_DestroyObject");
    }
    return Status::Ok();
  });
  impl_->DropCached(key_id);
  return status;
}

Result<std::unique_ptr<DigestSigner>> HsmBackend::SignerFor(ByteView key_id) {
  SIGNUM_ASSIGN_OR_RETURN(HsmKey key, FindKey(key_id));
  return std::unique_ptr<DigestSigner>(
      std::make_unique<HsmSigner>(this, std::move(key.id), std::move(key.public_key)));
}

Status HsmBackend::Check() {
  const std::unique_lock<std::mutex> serialized = impl_->SerializeCalls();
  return module_->TokenInfo(slot_).status().WithContext("HSM token '" + impl_->label() + "'");
}

HsmStats HsmBackend::stats() const { return impl_->stats(); }

}  // namespace signum::server

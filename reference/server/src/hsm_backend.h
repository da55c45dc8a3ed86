// signum-server's HSM backend: any PKCS#11 module, a pool of logged-in sessions (one per worker),
// keys found by CKA_ID and found again when handles go stale, recovery from session loss.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "signum/core/crypto.h"
#include "signum/core/pkcs11_module.h"
#include "signum/core/x509.h"

namespace signum::server {

struct HsmConfig {
  std::string module_path;   // e.g. /usr/lib/softhsm/libsofthsm2.so
  std::string token_label;
  std::string pin;           // the user PIN; never logged
  size_t pool_size = 4;      // sessions kept open; one per signing worker
  // One mutex around every call into the module (the session pool stays, sessions just take
  // turns): for vendor modules that crash or corrupt their state when several threads call them
  // at once, CKF_OS_LOCKING_OK notwithstanding. Costs the HSM's parallelism (docs/server-api.md).
  bool serialize_calls = false;
};

struct HsmKey {
  Bytes id;                  // CKA_ID
  std::string label;         // CKA_LABEL of the private key
  PublicKey public_key;
  bool sensitive = false;
  bool extractable = true;
  // CKA_DECRYPT left to the module rather than FALSE: it signs CKM_RSA_PKCS only with keys that
  // may decrypt (tpm2-pkcs11 does raw RSA through TPM2_RSA_Decrypt). Never for EC keys.
  bool decrypt_left_to_module = false;
};

// What a key can sign with on its token, learned by HsmBackend::ProbeCapabilities.
struct KeyCapabilityProbe {
  SignatureCapabilities can_sign;
  // Why each scheme or (scheme, hash) pair the key's type allows is missing, e.g.
  // "rsa-pss/sha256: C_Sign(CKM_RSA_PKCS_PSS): CKR_DATA_INVALID (0x20)".
  std::vector<std::string> missing;
};

struct HsmStats {
  uint64_t signatures = 0;
  uint64_t probe_signatures = 0;  // capability probes (ProbeCapabilities), not in `signatures`
  uint64_t session_reopens = 0;  // sessions replaced after CKR_SESSION_HANDLE_INVALID & co
  uint64_t relogins = 0;         // logins after CKR_USER_NOT_LOGGED_IN
  uint64_t key_refinds = 0;      // key handles looked up again after CKR_*_HANDLE_INVALID
};

// What some modules need beyond PKCS#11, looked up by their CK_INFO (kModuleQuirks in
// hsm_backend.cc; a new module is one row there). Exposed for the tests.
struct ModuleQuirks {
  std::string_view name = {};  // for the log, e.g. "openCryptoki"; empty: no quirks
  // C_GetInfo's manufacturerID, exactly, and a prefix of its libraryDescription (empty: any).
  std::string_view manufacturer = {};
  std::string_view library_description = {};
  // One call at a time into the module, whatever server.json says (HsmConfig::serialize_calls):
  // it crashes the process under concurrent signing although it accepts CKF_OS_LOCKING_OK.
  bool serialize_calls = false;
  // The module performs CKM_RSA_PKCS (PKCS#1 v1.5 over a DigestInfo, what Sign() uses) as a raw
  // RSA private operation that the device allows only for keys that may decrypt, so RSA keys are
  // generated without CKA_DECRYPT=FALSE. Testing it with a signature instead is not an option:
  // after the refusal tpm2-pkcs11 cannot destroy the key in that process and reuses its handle.
  bool raw_rsa_sign_needs_decrypt = false;
};
// The row of kModuleQuirks that matches `info`, or no quirks. The strings are compared up to
// their first NUL, trailing blanks ignored (PKCS#11 pads with blanks; some modules NUL-terminate).
ModuleQuirks QuirksFor(const CK_INFO& info);

class HsmBackend {
 public:
  // Loads the module (C_Initialize with CKF_OS_LOCKING_OK), finds the token by label, opens the
  // pool and logs in. Errors name the module, the token and the CK_RV, never the PIN.
  static Result<std::unique_ptr<HsmBackend>> Open(const HsmConfig& config);
  ~HsmBackend();

  // Signs a digest with the private key whose CKA_ID is key_id:
  //   rsa-pkcs1: CKM_RSA_PKCS over DigestInfo(hash, digest)
  //   rsa-pss:   CKM_RSA_PKCS_PSS with {hash, MGF1(hash), salt}
  //   ecdsa:     CKM_ECDSA over the digest -> raw r||s
  // Refuses keys that are not CKA_SENSITIVE or are CKA_EXTRACTABLE (kFailedPrecondition).
  // Session/handle/login loss is repaired and the signature retried once.
  Result<Bytes> Sign(ByteView key_id, SignatureScheme scheme, HashAlgorithm hash, ByteView digest,
                     std::optional<size_t> pss_salt_length = std::nullopt);

  // Learns what the key can sign with, for the signatures Sign() makes: the slot's
  // C_GetMechanismList / C_GetMechanismInfo (CKM_RSA_PKCS, CKM_RSA_PKCS_PSS, CKM_ECDSA listed, with
  // CKF_SIGN and a key-size range that holds the key), then one signature per (scheme, hash) over
  // a fixed digest, as Sign() makes it (PSS: salt = hash length), verified against `verify_with`
  // (the certificate's key): a module that "signs" garbage cannot do that pair. Only answers that
  // are about the mechanism or the data count as "cannot"; anything that says nothing about the
  // key's abilities (session loss Run() could not repair, login, device errors, the key missing
  // or refused) fails the whole probe, so a passing problem never turns into a missing pair.
  // Probes are not user signatures: counted in stats().probe_signatures only.
  Result<KeyCapabilityProbe> ProbeCapabilities(ByteView key_id, const PublicKey& verify_with);

  // Generates a token key pair: private key CKA_SENSITIVE, not CKA_EXTRACTABLE, CKA_SIGN;
  // CKA_ID = PublicKey::KeyId(); label on both halves.
  Result<HsmKey> GenerateKeyPair(const KeySpec& spec, const std::string& label);
  Result<HsmKey> FindKey(ByteView key_id);
  Result<std::vector<HsmKey>> ListKeys();
  // Stores the certificate on the token as a CKO_CERTIFICATE with the key's CKA_ID and label,
  // replacing an earlier certificate with that CKA_ID.
  Status StoreCertificate(ByteView key_id, const std::string& label, const Certificate& cert);
  Status DestroyKey(ByteView key_id);  // private, public and certificate objects with that CKA_ID

  // A DigestSigner over an HSM key (for CSRs signed by the key itself).
  Result<std::unique_ptr<DigestSigner>> SignerFor(ByteView key_id);

  // Health probe: C_GetTokenInfo on the slot.
  Status Check();
  HsmStats stats() const;
  const std::shared_ptr<Pkcs11Module>& module() const { return module_; }
  CK_SLOT_ID slot() const { return slot_; }
  // Whether calls into the module take turns: HsmConfig::serialize_calls, or implied by a module
  // known to need it (kModuleQuirks).
  bool serializes_calls() const { return serializes_calls_; }

 private:
  HsmBackend() = default;
  // Sign() without counting the signature in stats().signatures.
  Result<Bytes> SignUncounted(ByteView key_id, SignatureScheme scheme, HashAlgorithm hash,
                              ByteView digest, std::optional<size_t> pss_salt_length);
  class Impl;
  std::unique_ptr<Impl> impl_;
  std::shared_ptr<Pkcs11Module> module_;
  CK_SLOT_ID slot_ = 0;
  bool serializes_calls_ = false;
  ModuleQuirks quirks_;  // QuirksFor(C_GetInfo), learned once by Open()
};

}  // namespace signum::server

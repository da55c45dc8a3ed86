// signum-server's HSM backend: any PKCS#11 module, a pool of logged-in sessions (one per worker),
// keys found by CKA_ID and found again when handles go stale, recovery from session loss.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
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
};

struct HsmKey {
  Bytes id;                  // CKA_ID
  std::string label;         // CKA_LABEL of the private key
  PublicKey public_key;
  bool sensitive = false;
  bool extractable = true;
};

struct HsmStats {
  uint64_t signatures = 0;
  uint64_t session_reopens = 0;  // sessions replaced after CKR_SESSION_HANDLE_INVALID & co
  uint64_t relogins = 0;         // logins after CKR_USER_NOT_LOGGED_IN
  uint64_t key_refinds = 0;      // key handles looked up again after CKR_*_HANDLE_INVALID
};

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

 private:
  HsmBackend() = default;
  class Impl;
  std::unique_ptr<Impl> impl_;
  std::shared_ptr<Pkcs11Module> module_;
  CK_SLOT_ID slot_ = 0;
};

}  // namespace signum::server

// Provisioning: keys on the HSM, CSRs signed by those keys, certificates issued by a (demo) CA and
// imported for a key, and `init-demo`, which builds a complete deployment on a fresh SoftHSM2
// token or on an existing token of any PKCS#11 module (an HSM vendor's), and
// `remove-demo-keys`, which takes exactly the demo's objects off that token again.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "config.h"
#include "hsm_backend.h"
#include "state_store.h"

namespace signum::server {

// A CA whose key is a file (demo deployments only; production CAs live elsewhere).
struct FileCa {
  Certificate certificate;
  std::unique_ptr<SoftwareKey> key;
  std::vector<Certificate> chain;  // the CA's own issuers, nearest first
};
Result<FileCa> LoadFileCa(const std::string& cert_pem_file, const std::string& key_pem_file,
                          const std::string& chain_pem_file = "");

// Generates a key pair on the HSM, has the HSM key sign a CSR for `subject`, issues a code-signing
// certificate from the CSR with `ca`, stores it on the token beside the key and records it in the
// state. Returns the new record.
struct EnrollRequest {
  KeySpec spec;
  std::string label;
  DistinguishedName subject;
  std::vector<std::string> emails;
  std::vector<std::string> groups;
  int validity_days = 825;
};
Result<CertificateRecord> EnrollKey(HsmBackend& hsm, FileCa& ca, const EnrollRequest& request);
// The second half of EnrollKey, for a key pair generated already.
Result<CertificateRecord> CertifyKey(HsmBackend& hsm, FileCa& ca, const HsmKey& key,
                                     const EnrollRequest& request);

// Imports an externally issued certificate (and chain) for an HSM key: checks that the
// certificate's public key is the HSM key's, stores it on the token and returns the record.
Result<CertificateRecord> ImportCertificate(HsmBackend& hsm, ByteView key_id,
                                            const std::string& label,
                                            const Certificate& certificate,
                                            std::vector<Certificate> chain,
                                            std::vector<std::string> groups);

// An existing token that init-demo uses instead of creating a SoftHSM2 token: it is never
// initialised, only logged into; the demo's key pairs and certificates are added to it.
struct ExistingToken {
  std::string pin_file;                            // user PIN; referenced, never copied
  std::map<std::string, std::string> environment;  // for the module (server.json hsm.environment)
};

struct DemoOptions {
  std::string dir;
  uint16_t port = 0;  // 0 = pick a free loopback port now
  std::string token_label = "signum-demo";
  std::string module_path = "/usr/lib/softhsm/libsofthsm2.so";
  std::vector<KeySpec> key_specs;               // empty = every supported spec
  std::optional<ExistingToken> existing_token;  // unset = a fresh SoftHSM2 token in DIR/hsm
  bool hsm_serialize = false;                   // server.json hsm.serialize
};

// DIR/hsm/demo-keys.json: the CKA_IDs of the key pairs init-demo generated, written as each key
// is generated (before its certificate), so even a failed init-demo can be cleaned up.
// state.json is not enough: certificates imported later may belong to keys the token had before.
inline constexpr const char* kDemoKeyLedger = "hsm/demo-keys.json";

struct DemoSummary {
  std::string config_path;
  uint16_t port = 0;
  std::vector<std::string> certificate_labels;
  std::vector<std::string> users;
  std::vector<std::string> notes;  // what the HSM made init-demo do differently, one line each
};

// Builds DIR/{server.json, state.json, hsm/, ca/, tls/, credentials/, secrets/, audit/}.
// Refuses a DIR that already holds a deployment.
Result<DemoSummary> InitDemo(const DemoOptions& options);

struct RemovedDemoKeys {
  std::vector<std::string> key_ids_hex;  // removed now
  std::vector<std::string> missing_hex;  // in the ledger but no longer on the token
};

// Destroys on the deployment's token the private keys, public keys and certificates whose CKA_ID
// is in DIR/hsm/demo-keys.json, drops their certificate records from state.json and empties the
// ledger. Nothing else on the token is touched. Running it twice is harmless.
Result<RemovedDemoKeys> RemoveDemoKeys(const std::string& dir);

}  // namespace signum::server

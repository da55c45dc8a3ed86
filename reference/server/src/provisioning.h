// Provisioning: keys on the HSM, CSRs signed by those keys, certificates issued by a (demo) CA and
// imported for a key, and `init-demo`, which builds a complete deployment on a fresh SoftHSM2
// token.
#pragma once

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

// Imports an externally issued certificate (and chain) for an HSM key: checks that the
// certificate's public key is the HSM key's, stores it on the token and returns the record.
Result<CertificateRecord> ImportCertificate(HsmBackend& hsm, ByteView key_id,
                                            const std::string& label,
                                            const Certificate& certificate,
                                            std::vector<Certificate> chain,
                                            std::vector<std::string> groups);

struct DemoOptions {
  std::string dir;
  uint16_t port = 0;  // 0 = pick a free loopback port now
  std::string token_label = "signum-demo";
  std::string module_path = "/usr/lib/softhsm/libsofthsm2.so";
  std::vector<KeySpec> key_specs;  // empty = every supported spec
};

struct DemoSummary {
  std::string config_path;
  uint16_t port = 0;
  std::vector<std::string> certificate_labels;
  std::vector<std::string> users;
};

// Builds DIR/{server.json, state.json, hsm/, ca/, tls/, credentials/, secrets/, audit/}.
// Refuses a DIR that already holds a deployment.
Result<DemoSummary> InitDemo(const DemoOptions& options);

}  // namespace signum::server

// Helpers shared by the state, auth, policy and audit tests: real certificates for certificate
// records (self-signed with throwaway software keys) and small state builders.
#pragma once

#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "signum/core/crypto.h"
#include "signum/core/x509.h"
#include "state.h"

namespace signum::server::testing {

// One software key per key spec per process (RSA generation is slow); every call issues a new
// certificate (random serial, so a new thumbprint).
inline SoftwareKey& TestKey(const KeySpec& spec) {
  static std::mutex mu;
  static std::map<std::string, std::unique_ptr<SoftwareKey>> keys;
  std::lock_guard<std::mutex> lock(mu);
  auto& slot = keys[spec.Name()];
  if (!slot) {
    auto key = SoftwareKey::Generate(spec);
    if (!key.ok()) {
      ADD_FAILURE() << "generating " << spec.Name() << ": " << key.status().ToString();
      std::abort();
    }
    slot = std::move(*key);
  }
  return *slot;
}

inline Certificate SelfSigned(const std::string& common_name, const KeySpec& spec,
                              CertificateRole role = CertificateRole::kCodeSigning) {
  SoftwareKey& key = TestKey(spec);
  CertificateTemplate tmpl;
  tmpl.subject = {{"CN", common_name}, {"O", "Signum Harness Tests"}};
  tmpl.role = role;
  auto cert = IssueCertificate(tmpl, key.public_key(), std::nullopt, key);
  if (!cert.ok()) {
    ADD_FAILURE() << "issuing " << common_name << ": " << cert.status().ToString();
    std::abort();
  }
  return std::move(*cert);
}

inline CertificateRecord MakeCertificateRecord(const std::string& label,
                                               const std::string& key_spec = "rsa-2048",
                                               std::vector<std::string> groups = {},
                                               bool enabled = true) {
  const KeySpec spec = *ParseKeySpec(key_spec);
  Certificate cert = SelfSigned("Signum Test " + label, spec);
  return CertificateRecord{cert.Sha1ThumbprintHex(),
                           label,
                           HexEncode(TestKey(spec).public_key().KeyId()),
                           spec,
                           cert,
                           {},
                           std::move(groups),
                           enabled};
}

inline Principal MakePrincipal(const std::string& user, std::vector<std::string> groups = {}) {
  Principal p;
  p.user = user;
  p.groups = std::move(groups);
  p.method = "token";
  p.credential_id = "tok_00000000";
  return p;
}

}  // namespace signum::server::testing

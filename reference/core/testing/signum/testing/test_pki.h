// A throwaway software PKI for unit tests: root -> issuing CA -> leaves of any key spec, shaped
// like the demo deployment's chains, as the wire::CertificateEntry values the agent would list.
// One builder for every suite (provider core, PKCS#11 bridge, fake agent).
#pragma once

#include <memory>
#include <string>

#include "signum/core/crypto.h"
#include "signum/core/wire.h"
#include "signum/core/x509.h"

namespace signum::testing {

class TestPki {
 public:
  TestPki();  // generates the two CA keys (P-256) and certificates; aborts the test on failure

  // A leaf for a fresh key of `spec_name` ("rsa-2048", "ec-p384", ...), labelled `label`, with
  // every scheme its key type allows and SHA-256/384/512 (no capabilities: the field an older
  // server leaves out). `key_out`, when given, receives the leaf's private key.
  wire::CertificateEntry Leaf(const std::string& label, const std::string& spec_name,
                              std::unique_ptr<SoftwareKey>* key_out = nullptr) const;
  // The same over an existing key: several certificates sharing one key cost one key generation
  // (signum-fake-agent's scripted certificates).
  wire::CertificateEntry Leaf(const std::string& label, const SoftwareKey& key) const;

  const Certificate& root() const { return *root_; }
  const Certificate& issuing() const { return *issuing_; }

 private:
  std::unique_ptr<SoftwareKey> root_key_, issuing_key_;
  std::unique_ptr<Certificate> root_, issuing_;
};

// One PKI per test process, made on first use (key generation is the slow part).
const TestPki& SharedTestPki();

}  // namespace signum::testing

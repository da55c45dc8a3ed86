// A throwaway software PKI for unit tests: root -> issuing CA -> leaves of any key spec, shaped
// like the demo deployment's chains, as wire::CertificateEntry values the agent would list.
#pragma once

#include <memory>
#include <string>

#include "signum/core/crypto.h"
#include "signum/core/wire.h"
#include "signum/core/x509.h"

namespace signum::pkcs11::testing {

class TestPki {
 public:
  TestPki() {
    root_key_ = SoftwareKey::Generate(ParseKeySpec("ec-p256").value()).value();
    CertificateTemplate root;
    root.subject = {{"CN", "Unit Test Root"}, {"O", "Signum Harness"}};
    root.role = CertificateRole::kRootCa;
    root_ = std::make_unique<Certificate>(
        IssueCertificate(root, root_key_->public_key(), std::nullopt, *root_key_).value());
    issuing_key_ = SoftwareKey::Generate(ParseKeySpec("ec-p256").value()).value();
    CertificateTemplate ca;
    ca.subject = {{"CN", "Unit Test Issuing CA"}, {"O", "Signum Harness"}};
    ca.role = CertificateRole::kIntermediateCa;
    issuing_ = std::make_unique<Certificate>(
        IssueCertificate(ca, issuing_key_->public_key(), *root_, *root_key_).value());
  }

  // A leaf for a fresh key of spec_name ("rsa-2048", "ec-p384", ...), labelled label.
  wire::CertificateEntry Leaf(const std::string& label, const std::string& spec_name) const {
    auto key = SoftwareKey::Generate(ParseKeySpec(spec_name).value()).value();
    CertificateTemplate tmpl;
    tmpl.subject = {{"CN", "Signer " + label}, {"O", "Signum Harness"}};
    tmpl.role = CertificateRole::kCodeSigning;
    Certificate leaf = IssueCertificate(tmpl, key->public_key(), *issuing_, *issuing_key_).value();
    wire::CertificateEntry e;
    e.id = leaf.Sha1ThumbprintHex();
    e.label = label;
    const KeySpec spec = key->public_key().spec();
    e.key.type = spec.type;
    e.key.bits = spec.Bits();
    if (spec.type == KeyType::kEc) e.key.curve = spec.curve;
    e.certificate_pem = leaf.Pem();
    e.chain_pem = {issuing_->Pem(), root_->Pem()};
    e.schemes =
        spec.type == KeyType::kRsa
            ? std::vector<SignatureScheme>{SignatureScheme::kRsaPkcs1, SignatureScheme::kRsaPss}
            : std::vector<SignatureScheme>{SignatureScheme::kEcdsa};
    e.hashes = {HashAlgorithm::kSha256, HashAlgorithm::kSha384, HashAlgorithm::kSha512};
    return e;
  }

  const Certificate& root() const { return *root_; }
  const Certificate& issuing() const { return *issuing_; }

 private:
  std::unique_ptr<SoftwareKey> root_key_, issuing_key_;
  std::unique_ptr<Certificate> root_, issuing_;
};

}  // namespace signum::pkcs11::testing

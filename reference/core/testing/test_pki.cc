#include "signum/testing/test_pki.h"

#include <stdexcept>

namespace signum::testing {
namespace {

template <typename T>
T OrThrow(Result<T> result, const char* what) {
  if (!result.ok()) throw std::runtime_error(std::string(what) + ": " + result.status().ToString());
  return std::move(result).value();
}

std::unique_ptr<SoftwareKey> NewKey(const std::string& spec_name) {
  return OrThrow(SoftwareKey::Generate(OrThrow(ParseKeySpec(spec_name), "key spec")),
                 "key generation");
}

}  // namespace

TestPki::TestPki() {
  root_key_ = NewKey("ec-p256");
  CertificateTemplate root;
  root.subject = {{"CN", "Unit Test Root"}, {"O", "Signum Harness"}};
  root.role = CertificateRole::kRootCa;
  root_ = std::make_unique<Certificate>(OrThrow(
      IssueCertificate(root, root_key_->public_key(), std::nullopt, *root_key_), "root CA"));
  issuing_key_ = NewKey("ec-p256");
  CertificateTemplate ca;
  ca.subject = {{"CN", "Unit Test Issuing CA"}, {"O", "Signum Harness"}};
  ca.role = CertificateRole::kIntermediateCa;
  issuing_ = std::make_unique<Certificate>(OrThrow(
      IssueCertificate(ca, issuing_key_->public_key(), *root_, *root_key_), "issuing CA"));
}

wire::CertificateEntry TestPki::Leaf(const std::string& label, const std::string& spec_name,
                                     std::unique_ptr<SoftwareKey>* key_out) const {
  auto key = NewKey(spec_name);
  wire::CertificateEntry e = Leaf(label, *key);
  if (key_out != nullptr) *key_out = std::move(key);
  return e;
}

wire::CertificateEntry TestPki::Leaf(const std::string& label, const SoftwareKey& key) const {
  CertificateTemplate tmpl;
  tmpl.subject = {{"CN", "Signer " + label}, {"O", "Signum Harness"}};
  tmpl.role = CertificateRole::kCodeSigning;
  const Certificate leaf =
      OrThrow(IssueCertificate(tmpl, key.public_key(), *issuing_, *issuing_key_), "leaf");
  wire::CertificateEntry e;
  e.id = leaf.Sha1ThumbprintHex();
  e.label = label;
  const KeySpec spec = key.public_key().spec();
  e.key.type = spec.type;
  e.key.bits = spec.Bits();
  if (spec.type == KeyType::kEc) e.key.curve = spec.curve;
  e.certificate_pem = leaf.Pem();
  e.chain_pem = {issuing_->Pem(), root_->Pem()};
  e.schemes = spec.type == KeyType::kRsa
                  ? std::vector<SignatureScheme>{SignatureScheme::kRsaPkcs1, SignatureScheme::kRsaPss}
                  : std::vector<SignatureScheme>{SignatureScheme::kEcdsa};
  e.hashes = {HashAlgorithm::kSha256, HashAlgorithm::kSha384, HashAlgorithm::kSha512};
  return e;
}

const TestPki& SharedTestPki() {
  static const TestPki* pki = new TestPki();  // never destroyed: used until the process exits
  return *pki;
}

}  // namespace signum::testing

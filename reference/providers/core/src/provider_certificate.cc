#include "signum/provider/provider_certificate.h"

#include <algorithm>
#include <set>

namespace signum::provider {

bool ProviderCertificate::AllowsScheme(SignatureScheme scheme) const {
  return std::find(schemes.begin(), schemes.end(), scheme) != schemes.end();
}

bool ProviderCertificate::AllowsHash(HashAlgorithm hash) const {
  return std::find(hashes.begin(), hashes.end(), hash) != hashes.end();
}

SignatureCapabilities ProviderCertificate::Signable() const {
  const SignatureCapabilities fitting = SignatureCapabilities::AllFor(key_spec.type);
  return capabilities ? capabilities->Intersect(fitting) : fitting;
}

Result<ProviderCertificate> ProviderCertificateFromEntry(const wire::CertificateEntry& entry) {
  const std::string where = "certificate '" + entry.label + "' (" + entry.id + ")";
  auto certificate = CertificateInfo::FromPem(entry.certificate_pem);
  if (!certificate.ok()) return certificate.status().WithContext(where);
  // The id is what the server signs with; the thumbprint is what tools see as CKA_ID. They must
  // be the same certificate, or a tool would select one key and the server sign with another.
  if (entry.id != certificate->Sha1ThumbprintHex()) {
    return InvalidArgumentError(where + ": id is not the certificate's SHA-1 thumbprint " +
                                certificate->Sha1ThumbprintHex());
  }
  auto components = ParseSubjectPublicKeyInfo(certificate->SpkiDer());
  if (!components.ok()) return components.status().WithContext(where);
  const KeySpec spec = components->spec;
  if (spec.type != entry.key.type || spec.Bits() != entry.key.bits ||
      (spec.type == KeyType::kEc && entry.key.curve.has_value() &&
       *entry.key.curve != spec.curve)) {
    return InvalidArgumentError(
        where + ": the listed key (" + std::string(KeyTypeName(entry.key.type)) + " " +
        std::to_string(entry.key.bits) + ") is not the certificate's key (" + spec.Name() + ")");
  }
  std::vector<CertificateInfo> chain;
  for (const std::string& pem : entry.chain_pem) {
    auto ca = CertificateInfo::FromPem(pem);
    if (!ca.ok()) return ca.status().WithContext(where + " chain");
    chain.push_back(std::move(ca).value());
  }
  ProviderCertificate result{
      .id = entry.id,
      .thumbprint = certificate->Sha1Thumbprint(),
      .label = entry.label,
      .certificate = std::move(certificate).value(),
      .chain = std::move(chain),
      .key_spec = spec,
      .components = std::move(components).value(),
      .schemes = entry.schemes,
      .hashes = entry.hashes,
      .capabilities = entry.capabilities,
  };
  if (result.capabilities) {
    *result.capabilities = result.capabilities->Intersect(SignatureCapabilities::AllFor(spec.type));
  }
  return result;
}

const ProviderCertificate* CertificateSet::FindById(std::string_view id) const {
  for (const auto& c : certificates) {
    if (c->id == id) return c.get();
  }
  return nullptr;
}

CertificateSet BuildCertificateSet(const wire::CertificateListResponse& response) {
  CertificateSet set;
  std::set<std::string> leaf_ids;
  for (const wire::CertificateEntry& entry : response.certificates) {
    auto parsed = ProviderCertificateFromEntry(entry);
    if (!parsed.ok()) {
      set.skipped.push_back(parsed.status().ToString());
      continue;
    }
    if (!leaf_ids.insert(parsed->id).second) {
      set.skipped.push_back("certificate " + parsed->id + " listed twice; using the first");
      continue;
    }
    set.certificates.push_back(
        std::make_shared<const ProviderCertificate>(std::move(parsed).value()));
  }
  std::set<std::string> ca_ids;
  for (const auto& leaf : set.certificates) {
    for (const CertificateInfo& ca : leaf->chain) {
      const std::string id = ca.Sha1ThumbprintHex();
      if (leaf_ids.count(id) != 0 || !ca_ids.insert(id).second) continue;
      set.authorities.push_back(ca);
    }
  }
  return set;
}

}  // namespace signum::provider

#include "signum/ctk/keychain_contents.h"

#include <algorithm>

#include "signum/ctk/der_writer.h"
#include "signum/ctk/key_algorithms.h"
#include "signum/provider/digest.h"

namespace signum::ctk {
namespace {

bool SameId(const Bytes& id, ByteView object_id) {
  return std::equal(id.begin(), id.end(), object_id.begin(), object_id.end());
}

}  // namespace

const KeychainCertificateItem* KeychainContents::FindCertificate(ByteView object_id) const {
  for (const auto& item : certificates) {
    if (SameId(item.object_id, object_id)) return &item;
  }
  return nullptr;
}

const KeychainKeyItem* KeychainContents::FindKey(ByteView object_id) const {
  for (const auto& item : keys) {
    if (SameId(item.object_id, object_id)) return &item;
  }
  return nullptr;
}

Result<KeychainKeyItem> BuildKeychainKey(const provider::ProviderCertificate& certificate) {
  KeychainKeyItem key;
  key.object_id = certificate.thumbprint;
  key.label = certificate.label;
  key.key_size_in_bits = certificate.key_spec.Bits();
  if (certificate.key_spec.type == KeyType::kRsa) {
    key.key_type = KeychainKeyType::kRsa;
    key.public_key_data = RsaPublicKeyDer(certificate.components.rsa_modulus,
                                          certificate.components.rsa_public_exponent);
  } else {
    key.key_type = KeychainKeyType::kEcSecPrimeRandom;
    key.public_key_data = certificate.components.ec_point;
  }
  SIGNUM_ASSIGN_OR_RETURN(key.public_key_hash,
                          provider::ComputeDigest(HashAlgorithm::kSha1, key.public_key_data));
  key.sign_algorithms = SigningAlgorithms(certificate);
  // A key the server offers nothing on is still listed (its certificate is what users see), but
  // it cannot sign, so macOS does not offer it for signing.
  key.can_sign = !key.sign_algorithms.empty();
  return key;
}

Result<KeychainContents> BuildKeychainContents(const provider::CertificateSet& set) {
  KeychainContents contents;
  contents.skipped = set.skipped;
  for (const auto& certificate : set.certificates) {
    contents.certificates.push_back(
        {certificate->thumbprint, certificate->label, certificate->certificate.Der()});
    auto key = BuildKeychainKey(*certificate);
    if (!key.ok()) return key.status().WithContext("certificate '" + certificate->label + "'");
    contents.keys.push_back(std::move(key).value());
  }
  return contents;
}

}  // namespace signum::ctk

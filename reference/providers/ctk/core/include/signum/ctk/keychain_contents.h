// The token's keychain contents (TKTokenKeychainContents), built from the agent's certificate
// list: one certificate item and one key item per signing certificate. The host side
// (`signum-util keychain --add`) writes them into the token's configuration (TKTokenConfiguration
// .keychainItems); the extension fills TKTokenKeychainContents from that configuration. Object
// IDs are the certificate's SHA-1 thumbprint (20 bytes), stable across runs and the same name
// every other Signum interface uses (CKA_ID, the KSP key name, codesign's -s <SHA-1>); a
// certificate and its key share it, as CKA_ID is shared in PKCS#11: CTK looks items up per class
// (certificateForObjectID:, keyForObjectID:).
#pragma once

#include <string>
#include <vector>

#include "signum/core/bytes.h"
#include "signum/core/status.h"
#include "signum/ctk/ctk_iface.h"
#include "signum/provider/provider_certificate.h"

namespace signum::ctk {

struct KeychainCertificateItem {
  Bytes object_id;    // SHA-1 thumbprint
  std::string label;  // the server's label ("rsa-2048"): TKTokenKeychainItem.label
  Bytes der;          // TKTokenKeychainCertificate.data
};

struct KeychainKeyItem {
  Bytes object_id;  // the certificate's thumbprint
  std::string label;
  KeychainKeyType key_type = KeychainKeyType::kRsa;
  int key_size_in_bits = 0;
  // What Security.framework would read from the certificate (TKTokenKeychainKey's
  // initWithCertificate:objectID: sets the same on macOS): RSAPublicKey DER or the X9.63 point,
  // and its SHA-1 (kSecAttrApplicationLabel), which pairs the key with its certificate into an
  // identity.
  Bytes public_key_data;
  Bytes public_key_hash;
  bool can_sign = true;
  bool can_decrypt = false;
  bool can_perform_key_exchange = false;
  bool suitable_for_login = false;               // never a login (smart-card logon) key
  std::vector<SecKeyAlgorithm> sign_algorithms;  // key_algorithms.h: SigningAlgorithms
};

struct KeychainContents {
  std::vector<KeychainCertificateItem> certificates;  // in the agent's order
  std::vector<KeychainKeyItem> keys;                  // same order
  std::vector<std::string> skipped;                   // the certificate set's, with reasons

  const KeychainCertificateItem* FindCertificate(ByteView object_id) const;
  const KeychainKeyItem* FindKey(ByteView object_id) const;
};

Result<KeychainKeyItem> BuildKeychainKey(const provider::ProviderCertificate& certificate);
// kInternal only if a certificate the set holds cannot be described (it was parsed already).
Result<KeychainContents> BuildKeychainContents(const provider::CertificateSet& set);

}  // namespace signum::ctk

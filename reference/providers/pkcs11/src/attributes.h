// What every object on the Signum token carries, as data: one table per object kind saying, for
// each attribute, where its value comes from (or that it is sensitive). BuildAttributes() turns a
// certificate into attribute values by walking the table; the tests walk the same table to check
// what C_GetAttributeValue returns, so the rules are written down exactly once (the way SoftHSM's
// P11Attributes encode the spec's attribute footnotes).
//
// Per signing certificate the token shows three objects sharing CKA_ID (the certificate's 20-byte
// SHA-1 thumbprint, as Signum's own token does) and CKA_LABEL (the server's label): the
// certificate, its public key and its private key. Each CA certificate of the chains is one more
// certificate object (CKA_CERTIFICATE_CATEGORY authority, CKA_ID its own thumbprint, CKA_LABEL its
// subject CN).
#pragma once

#include <chrono>
#include <map>
#include <set>
#include <span>
#include <string>

#include "signum/core/bytes.h"
#include "signum/core/pkcs11.h"
#include "signum/core/status.h"
#include "signum/provider/certificate_info.h"
#include "signum/provider/provider_certificate.h"

namespace signum::pkcs11 {

enum class ObjectKind { kCertificate, kPublicKey, kPrivateKey };

enum class ValueSource {
  kTrue,                 // CK_BBOOL CK_TRUE
  kFalse,                // CK_BBOOL CK_FALSE
  kUlong,                // CK_ULONG rule.constant
  kEmpty,                // present with a zero-length value (e.g. CKA_START_DATE on keys)
  kSensitive,            // exists, never revealed: CKR_ATTRIBUTE_SENSITIVE
  kClass,                // CK_OBJECT_CLASS of the kind
  kPrivate,              // CK_BBOOL: private keys are private only in checked-PIN mode
  kLabel,                // the server's label (leaf objects) or the CA's subject CN
  kId,                   // SHA-1 thumbprint of the certificate (binary, 20 bytes)
  kCertificateValue,     // DER certificate
  kCertificateCategory,  // CK_ULONG: 1 token user (leaf), 2 authority (CA)
  kSubject,              // DER Name of the certificate subject
  kIssuer,               // DER Name of the issuer
  kSerialNumber,         // DER INTEGER
  kCheckValue,           // first 3 bytes of SHA-1 over the DER certificate (PKCS#11 §4.6.3)
  kStartDate,            // CK_DATE from notBefore (UTC)
  kEndDate,              // CK_DATE from notAfter (UTC)
  kPublicKeyInfo,        // DER SubjectPublicKeyInfo
  kKeyType,              // CK_KEY_TYPE: CKK_RSA / CKK_EC
  kModulus,              // RSA modulus, big-endian
  kModulusBits,          // CK_ULONG
  kPublicExponent,       // big-endian
  kEcParams,             // DER OID of the named curve
  kEcPoint,              // DER OCTET STRING around the uncompressed point
  kAllowedMechanisms,    // CK_MECHANISM_TYPE array for the key type (public keys: verification)
  kSigningMechanisms,    // CK_MECHANISM_TYPE array: what the key can sign with (private keys)
};

// Which keys a rule applies to; on the others the attribute does not exist (TYPE_INVALID).
enum class KeyFilter { kAny, kRsa, kEc };

struct AttributeRule {
  CK_ATTRIBUTE_TYPE type;
  ValueSource source;
  KeyFilter keys = KeyFilter::kAny;
  CK_ULONG constant = 0;
};

std::span<const AttributeRule> AttributeRules(ObjectKind kind);
CK_OBJECT_CLASS ObjectClassOf(ObjectKind kind);

// The values of one object. Absent types are CKR_ATTRIBUTE_TYPE_INVALID, sensitive ones
// CKR_ATTRIBUTE_SENSITIVE.
class AttributeMap {
 public:
  void Set(CK_ATTRIBUTE_TYPE type, Bytes value);
  void SetSensitive(CK_ATTRIBUTE_TYPE type);
  // The value, or nullptr; *sensitive tells a sensitive attribute from an absent one.
  const Bytes* Find(CK_ATTRIBUTE_TYPE type, bool* sensitive) const;
  size_t size() const { return values_.size() + sensitive_.size(); }

 private:
  std::map<CK_ATTRIBUTE_TYPE, Bytes> values_;
  std::set<CK_ATTRIBUTE_TYPE> sensitive_;
};

// What an object is made from.
struct ObjectSubject {
  ObjectKind kind = ObjectKind::kCertificate;
  const provider::CertificateInfo* certificate = nullptr;  // the certificate itself (leaf or CA)
  const provider::ProviderCertificate* leaf = nullptr;  // set for leaf certificates and keys
  std::string label;
  Bytes id;
  bool authority = false;             // a CA certificate from a chain
  bool private_keys_private = false;  // checked-PIN mode
};

Result<AttributeMap> BuildAttributes(const ObjectSubject& subject);

// Encodings shared with the tests.
Bytes BoolValue(bool value);
Bytes UlongValue(CK_ULONG value);
Bytes DateValue(std::chrono::system_clock::time_point time);  // "YYYYMMDD", UTC
// CKA_LABEL of a CA certificate: its subject CN, else the RFC 2253 subject.
std::string AuthorityLabel(const provider::CertificateInfo& certificate);

}  // namespace signum::pkcs11

#include "attributes.h"

#include <cstring>
#include <ctime>

#include "mechanisms.h"
#include "signum/core/crypto.h"

namespace signum::pkcs11 {
namespace {

using S = ValueSource;
using K = KeyFilter;

// Storage object + certificate + X.509 certificate attributes (PKCS#11 3.0 §4.4, §4.6, §4.6.3).
// Signum's token is read-only: nothing is modifiable, copyable or destroyable.
const AttributeRule kCertificateRules[] = {
    {CKA_CLASS, S::kClass},
    {CKA_TOKEN, S::kTrue},
    {CKA_PRIVATE, S::kFalse},
    {CKA_MODIFIABLE, S::kFalse},
    {CKA_COPYABLE, S::kFalse},
    {CKA_DESTROYABLE, S::kFalse},
    {CKA_LABEL, S::kLabel},
    {CKA_CERTIFICATE_TYPE, S::kUlong, K::kAny, CKC_X_509},
    // Trust is the relying party's decision; the token asserts none (NSS would otherwise treat
    // the demo root as a trust anchor).
    {CKA_TRUSTED, S::kFalse},
    {CKA_CERTIFICATE_CATEGORY, S::kCertificateCategory},
    {CKA_CHECK_VALUE, S::kCheckValue},
    {CKA_START_DATE, S::kStartDate},
    {CKA_END_DATE, S::kEndDate},
    {CKA_PUBLIC_KEY_INFO, S::kPublicKeyInfo},
    {CKA_SUBJECT, S::kSubject},
    {CKA_ID, S::kId},
    {CKA_ISSUER, S::kIssuer},
    {CKA_SERIAL_NUMBER, S::kSerialNumber},
    {CKA_VALUE, S::kCertificateValue},
    {CKA_URL, S::kEmpty},
    // Allowed to be empty when CKA_URL is (§4.6.3).
    {CKA_HASH_OF_SUBJECT_PUBLIC_KEY, S::kEmpty},
    {CKA_HASH_OF_ISSUER_PUBLIC_KEY, S::kEmpty},
    {CKA_JAVA_MIDP_SECURITY_DOMAIN, S::kUlong, K::kAny, CK_SECURITY_DOMAIN_UNSPECIFIED},
};

// Storage + key + public key + RSA/EC public key attributes (§4.7, §4.8, §6.1.2, §6.3.3).
const AttributeRule kPublicKeyRules[] = {
    {CKA_CLASS, S::kClass},
    {CKA_TOKEN, S::kTrue},
    {CKA_PRIVATE, S::kFalse},
    {CKA_MODIFIABLE, S::kFalse},
    {CKA_COPYABLE, S::kFalse},
    {CKA_DESTROYABLE, S::kFalse},
    {CKA_LABEL, S::kLabel},
    {CKA_KEY_TYPE, S::kKeyType},
    {CKA_ID, S::kId},
    {CKA_START_DATE, S::kEmpty},
    {CKA_END_DATE, S::kEmpty},
    {CKA_DERIVE, S::kFalse},
    // Generated in the HSM behind the server, not by this token.
    {CKA_LOCAL, S::kFalse},
    {CKA_KEY_GEN_MECHANISM, S::kUlong, K::kAny, CK_UNAVAILABLE_INFORMATION},
    {CKA_ALLOWED_MECHANISMS, S::kAllowedMechanisms},
    {CKA_SUBJECT, S::kSubject},
    {CKA_ENCRYPT, S::kFalse},
    // C_Verify runs locally against this key.
    {CKA_VERIFY, S::kTrue},
    {CKA_VERIFY_RECOVER, S::kFalse},
    {CKA_WRAP, S::kFalse},
    {CKA_TRUSTED, S::kFalse},
    {CKA_PUBLIC_KEY_INFO, S::kPublicKeyInfo},
    {CKA_MODULUS, S::kModulus, K::kRsa},
    {CKA_MODULUS_BITS, S::kModulusBits, K::kRsa},
    {CKA_PUBLIC_EXPONENT, S::kPublicExponent, K::kRsa},
    {CKA_EC_PARAMS, S::kEcParams, K::kEc},
    {CKA_EC_POINT, S::kEcPoint, K::kEc},
};

// Storage + key + private key attributes (§4.9, §6.1.4, §6.3.4). The public components are on
// the private key too: libp11 and SunPKCS11 read CKA_MODULUS/CKA_PUBLIC_EXPONENT there, and some
// tools expect CKA_EC_POINT (kmsp11 does the same on purpose).
const AttributeRule kPrivateKeyRules[] = {
    {CKA_CLASS, S::kClass},
    {CKA_TOKEN, S::kTrue},
    {CKA_PRIVATE, S::kPrivate},
    {CKA_MODIFIABLE, S::kFalse},
    {CKA_COPYABLE, S::kFalse},
    {CKA_DESTROYABLE, S::kFalse},
    {CKA_LABEL, S::kLabel},
    {CKA_KEY_TYPE, S::kKeyType},
    {CKA_ID, S::kId},
    {CKA_START_DATE, S::kEmpty},
    {CKA_END_DATE, S::kEmpty},
    {CKA_DERIVE, S::kFalse},
    {CKA_LOCAL, S::kFalse},
    {CKA_KEY_GEN_MECHANISM, S::kUlong, K::kAny, CK_UNAVAILABLE_INFORMATION},
    // Exactly what the key can sign with (PKCS#11 2.40 §4.9): the pairs the server offers.
    {CKA_ALLOWED_MECHANISMS, S::kSigningMechanisms},
    {CKA_SUBJECT, S::kSubject},
    {CKA_SENSITIVE, S::kTrue},
    {CKA_DECRYPT, S::kFalse},
    {CKA_SIGN, S::kTrue},
    {CKA_SIGN_RECOVER, S::kFalse},
    {CKA_UNWRAP, S::kFalse},
    // The key never leaves the HSM (Signum's own token wrongly reports it extractable).
    {CKA_EXTRACTABLE, S::kFalse},
    {CKA_ALWAYS_SENSITIVE, S::kTrue},
    {CKA_NEVER_EXTRACTABLE, S::kTrue},
    {CKA_WRAP_WITH_TRUSTED, S::kFalse},
    {CKA_ALWAYS_AUTHENTICATE, S::kFalse},
    {CKA_PUBLIC_KEY_INFO, S::kPublicKeyInfo},
    {CKA_MODULUS, S::kModulus, K::kRsa},
    {CKA_MODULUS_BITS, S::kModulusBits, K::kRsa},
    {CKA_PUBLIC_EXPONENT, S::kPublicExponent, K::kRsa},
    {CKA_PRIVATE_EXPONENT, S::kSensitive, K::kRsa},
    {CKA_PRIME_1, S::kSensitive, K::kRsa},
    {CKA_PRIME_2, S::kSensitive, K::kRsa},
    {CKA_EXPONENT_1, S::kSensitive, K::kRsa},
    {CKA_EXPONENT_2, S::kSensitive, K::kRsa},
    {CKA_COEFFICIENT, S::kSensitive, K::kRsa},
    {CKA_EC_PARAMS, S::kEcParams, K::kEc},
    {CKA_EC_POINT, S::kEcPoint, K::kEc},
    {CKA_VALUE, S::kSensitive, K::kEc},
};

bool Applies(KeyFilter filter, const provider::ProviderCertificate* leaf) {
  if (filter == KeyFilter::kAny) return true;
  if (leaf == nullptr) return false;
  return (filter == KeyFilter::kRsa) == (leaf->key_spec.type == KeyType::kRsa);
}

Bytes MechanismArray(const std::vector<CK_MECHANISM_TYPE>& mechanisms) {
  Bytes out(mechanisms.size() * sizeof(CK_MECHANISM_TYPE));
  std::memcpy(out.data(), mechanisms.data(), out.size());
  return out;
}

Result<Bytes> Value(const AttributeRule& rule, const ObjectSubject& s) {
  const provider::ProviderCertificate* leaf = s.leaf;
  auto need_key = [&]() -> Status {
    if (leaf == nullptr) return InternalError("key attribute on an object without a key");
    return Status::Ok();
  };
  switch (rule.source) {
    case S::kTrue:
      return BoolValue(true);
    case S::kFalse:
      return BoolValue(false);
    case S::kUlong:
      return UlongValue(rule.constant);
    case S::kEmpty:
      return Bytes{};
    case S::kSensitive:
      return InternalError("sensitive attributes have no value");
    case S::kClass:
      return UlongValue(ObjectClassOf(s.kind));
    case S::kPrivate:
      return BoolValue(s.kind == ObjectKind::kPrivateKey && s.private_keys_private);
    case S::kLabel:
      return Bytes(s.label.begin(), s.label.end());
    case S::kId:
      return s.id;
    case S::kCertificateValue:
      return s.certificate->Der();
    case S::kCertificateCategory:
      // CK_CERTIFICATE_CATEGORY_TOKEN_USER = 1, _AUTHORITY = 2 (§4.6.2).
      return UlongValue(s.authority ? CK_CERTIFICATE_CATEGORY_AUTHORITY
                                    : CK_CERTIFICATE_CATEGORY_TOKEN_USER);
    case S::kSubject:
      return s.certificate->SubjectDer();
    case S::kIssuer:
      return s.certificate->IssuerDer();
    case S::kSerialNumber:
      return s.certificate->SerialDer();
    case S::kCheckValue: {
      Bytes sha1 = Digest(HashAlgorithm::kSha1, s.certificate->Der());
      return Bytes(sha1.begin(), sha1.begin() + 3);
    }
    case S::kStartDate:
      return DateValue(s.certificate->NotBefore());
    case S::kEndDate:
      return DateValue(s.certificate->NotAfter());
    case S::kPublicKeyInfo:
      return s.certificate->SpkiDer();
    case S::kKeyType:
      SIGNUM_RETURN_IF_ERROR(need_key());
      return UlongValue(leaf->key_spec.type == KeyType::kRsa ? CKK_RSA : CKK_EC);
    case S::kModulus:
      SIGNUM_RETURN_IF_ERROR(need_key());
      return leaf->components.rsa_modulus;
    case S::kModulusBits:
      SIGNUM_RETURN_IF_ERROR(need_key());
      return UlongValue(static_cast<CK_ULONG>(leaf->key_spec.rsa_bits));
    case S::kPublicExponent:
      SIGNUM_RETURN_IF_ERROR(need_key());
      return leaf->components.rsa_public_exponent;
    case S::kEcParams: {
      SIGNUM_RETURN_IF_ERROR(need_key());
      ByteView params = GetCurveInfo(leaf->key_spec.curve).params_der;
      return Bytes(params.begin(), params.end());
    }
    case S::kEcPoint:
      SIGNUM_RETURN_IF_ERROR(need_key());
      return WrapEcPointOctetString(leaf->components.ec_point);
    case S::kAllowedMechanisms:
      SIGNUM_RETURN_IF_ERROR(need_key());
      return MechanismArray(MechanismsFor(leaf->key_spec.type));
    case S::kSigningMechanisms:
      SIGNUM_RETURN_IF_ERROR(need_key());
      return MechanismArray(SigningMechanismsFor(leaf->Signable()));
  }
  return InternalError("unknown attribute source");
}

}  // namespace

std::span<const AttributeRule> AttributeRules(ObjectKind kind) {
  switch (kind) {
    case ObjectKind::kCertificate:
      return kCertificateRules;
    case ObjectKind::kPublicKey:
      return kPublicKeyRules;
    case ObjectKind::kPrivateKey:
      return kPrivateKeyRules;
  }
  return {};
}

CK_OBJECT_CLASS ObjectClassOf(ObjectKind kind) {
  switch (kind) {
    case ObjectKind::kCertificate:
      return CKO_CERTIFICATE;
    case ObjectKind::kPublicKey:
      return CKO_PUBLIC_KEY;
    case ObjectKind::kPrivateKey:
      return CKO_PRIVATE_KEY;
  }
  return CKO_VENDOR_DEFINED;
}

void AttributeMap::Set(CK_ATTRIBUTE_TYPE type, Bytes value) { values_[type] = std::move(value); }

void AttributeMap::SetSensitive(CK_ATTRIBUTE_TYPE type) { sensitive_.insert(type); }

const Bytes* AttributeMap::Find(CK_ATTRIBUTE_TYPE type, bool* sensitive) const {
  *sensitive = sensitive_.count(type) != 0;
  auto it = values_.find(type);
  return it == values_.end() ? nullptr : &it->second;
}

Result<AttributeMap> BuildAttributes(const ObjectSubject& subject) {
  if (subject.certificate == nullptr) return InternalError("object without a certificate");
  if (subject.kind != ObjectKind::kCertificate && subject.leaf == nullptr) {
    return InternalError("key object without its certificate");
  }
  AttributeMap map;
  for (const AttributeRule& rule : AttributeRules(subject.kind)) {
    if (!Applies(rule.keys, subject.leaf)) continue;
    if (rule.source == ValueSource::kSensitive) {
      map.SetSensitive(rule.type);
      continue;
    }
    SIGNUM_ASSIGN_OR_RETURN(Bytes value, Value(rule, subject));
    map.Set(rule.type, std::move(value));
  }
  return map;
}

Bytes BoolValue(bool value) { return Bytes{static_cast<uint8_t>(value ? CK_TRUE : CK_FALSE)}; }

Bytes UlongValue(CK_ULONG value) {
  Bytes out(sizeof value);
  std::memcpy(out.data(), &value, sizeof value);
  return out;
}

Bytes DateValue(std::chrono::system_clock::time_point time) {
  const std::time_t t = std::chrono::system_clock::to_time_t(time);
  std::tm utc{};
  ::gmtime_r(&t, &utc);
  // CK_DATE: four year digits, two month, two day, as characters (§3.3).
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d%02d%02d", (utc.tm_year + 1900) % 10000, utc.tm_mon + 1,
                utc.tm_mday);
  return Bytes(buf, buf + 8);
}

std::string AuthorityLabel(const provider::CertificateInfo& certificate) {
  std::string cn = certificate.SubjectCommonName();
  return cn.empty() ? certificate.Subject() : cn;
}

}  // namespace signum::pkcs11

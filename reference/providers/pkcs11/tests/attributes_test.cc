// Unit tests of the module's building blocks, no agent and no dlopen: the attribute tables (each
// rule checked against a value computed here independently from the certificate), the object
// store's handles and matching, the mechanism table, the Status -> CK_RV table, the trace
// formatting and the signature operations' input rules.
#include "attributes.h"

#include <gtest/gtest.h>

#include <cstring>
#include <set>

#include "ck_status.h"
#include "digest_operation.h"
#include "mechanisms.h"
#include "objects.h"
#include "sign_operation.h"
#include "signum/core/crypto.h"
#include "signum/core/encoding.h"
#include "signum/core/pkcs11_module.h"
#include "signum/testing/status_matchers.h"
#include "signum/testing/test_pki.h"
#include "trace.h"

namespace signum::pkcs11 {
namespace {

using ::signum::testing::StatusIs;

constexpr auto kSign = SignatureOperation::Purpose::kSign;

using signum::testing::SharedTestPki;
using signum::testing::TestPki;

// The key as OpenSSL reads it from the certificate: the independent answer the provider's own
// DER-derived components must match.
PublicKey OpenSslPublicKey(const provider::ProviderCertificate& leaf) {
  return Certificate::FromDer(leaf.certificate.Der()).value().GetPublicKey().value();
}

const TestPki& Pki() { return SharedTestPki(); }

// The issuing CA as the provider model holds it.
const provider::CertificateInfo& IssuingInfo() {
  static const auto* info =
      new provider::CertificateInfo(provider::CertificateInfo::FromDer(Pki().issuing().Der()).value());
  return *info;
}

std::shared_ptr<const provider::ProviderCertificate> Leaf(const std::string& label,
                                                          const std::string& spec) {
  return std::make_shared<const provider::ProviderCertificate>(
      provider::ProviderCertificateFromEntry(Pki().Leaf(label, spec)).value());
}

const std::shared_ptr<const provider::ProviderCertificate>& RsaLeaf() {
  static auto* leaf =
      new std::shared_ptr<const provider::ProviderCertificate>(Leaf("rsa", "rsa-2048"));
  return *leaf;
}
const std::shared_ptr<const provider::ProviderCertificate>& EcLeaf() {
  static auto* leaf =
      new std::shared_ptr<const provider::ProviderCertificate>(Leaf("ec", "ec-p384"));
  return *leaf;
}

// The value each source must produce, computed here without attributes.cc.
Bytes Expected(const AttributeRule& rule, const ObjectSubject& s) {
  const auto* leaf = s.leaf;
  switch (rule.source) {
    case ValueSource::kTrue:
      return {CK_TRUE};
    case ValueSource::kFalse:
      return {CK_FALSE};
    case ValueSource::kUlong:
      return UlongValue(rule.constant);
    case ValueSource::kEmpty:
      return {};
    case ValueSource::kSensitive:
      ADD_FAILURE() << "sensitive has no value";
      return {};
    case ValueSource::kClass:
      return UlongValue(s.kind == ObjectKind::kCertificate ? CKO_CERTIFICATE
                        : s.kind == ObjectKind::kPublicKey ? CKO_PUBLIC_KEY
                                                           : CKO_PRIVATE_KEY);
    case ValueSource::kPrivate:
      return {static_cast<uint8_t>(s.kind == ObjectKind::kPrivateKey && s.private_keys_private)};
    case ValueSource::kLabel:
      return Bytes(s.label.begin(), s.label.end());
    case ValueSource::kId:
      return s.certificate->Sha1Thumbprint();
    case ValueSource::kCertificateValue:
      return s.certificate->Der();
    case ValueSource::kCertificateCategory:
      return UlongValue(s.authority ? 2 : 1);
    case ValueSource::kSubject:
      return s.certificate->SubjectDer();
    case ValueSource::kIssuer:
      return s.certificate->IssuerDer();
    case ValueSource::kSerialNumber:
      return s.certificate->SerialDer();
    case ValueSource::kCheckValue: {
      Bytes d = Digest(HashAlgorithm::kSha1, s.certificate->Der());
      return Bytes(d.begin(), d.begin() + 3);
    }
    case ValueSource::kStartDate:
      return DateValue(s.certificate->NotBefore());
    case ValueSource::kEndDate:
      return DateValue(s.certificate->NotAfter());
    case ValueSource::kPublicKeyInfo:
      return s.certificate->SpkiDer();
    case ValueSource::kKeyType:
      return UlongValue(leaf->key_spec.type == KeyType::kRsa ? CKK_RSA : CKK_EC);
    case ValueSource::kModulus:
      return OpenSslPublicKey(*leaf).RsaModulus();
    case ValueSource::kModulusBits:
      return UlongValue(static_cast<CK_ULONG>(leaf->key_spec.rsa_bits));
    case ValueSource::kPublicExponent:
      return OpenSslPublicKey(*leaf).RsaPublicExponent();
    case ValueSource::kEcParams: {
      ByteView p = GetCurveInfo(leaf->key_spec.curve).params_der;
      return Bytes(p.begin(), p.end());
    }
    case ValueSource::kEcPoint:
      return WrapEcPointOctetString(OpenSslPublicKey(*leaf).EcPoint());
    case ValueSource::kAllowedMechanisms:
    case ValueSource::kSigningMechanisms: {
      auto m = rule.source == ValueSource::kAllowedMechanisms
                   ? MechanismsFor(leaf->key_spec.type)
                   : SigningMechanismsFor(leaf->Signable());
      Bytes out(m.size() * sizeof(CK_MECHANISM_TYPE));
      std::memcpy(out.data(), m.data(), out.size());
      return out;
    }
  }
  ADD_FAILURE() << "unknown source";
  return {};
}

bool RuleApplies(const AttributeRule& rule, const provider::ProviderCertificate* leaf) {
  if (rule.keys == KeyFilter::kAny) return true;
  return leaf != nullptr &&
         (rule.keys == KeyFilter::kRsa) == (leaf->key_spec.type == KeyType::kRsa);
}

void CheckObject(const ObjectSubject& subject) {
  auto map = BuildAttributes(subject);
  ASSERT_OK(map);
  size_t expected_count = 0;
  for (const AttributeRule& rule : AttributeRules(subject.kind)) {
    bool sensitive = false;
    const Bytes* value = map->Find(rule.type, &sensitive);
    if (!RuleApplies(rule, subject.leaf)) {
      EXPECT_EQ(value, nullptr) << AttributeName(rule.type);
      EXPECT_FALSE(sensitive) << AttributeName(rule.type);
      continue;
    }
    ++expected_count;
    if (rule.source == ValueSource::kSensitive) {
      EXPECT_TRUE(sensitive) << AttributeName(rule.type);
      EXPECT_EQ(value, nullptr) << AttributeName(rule.type);
      continue;
    }
    ASSERT_NE(value, nullptr) << AttributeName(rule.type);
    EXPECT_EQ(*value, Expected(rule, subject)) << AttributeName(rule.type);
  }
  EXPECT_EQ(map->size(), expected_count);
}

TEST(AttributeRulesTest, EachKindListsEachAttributeOnce) {
  for (ObjectKind kind :
       {ObjectKind::kCertificate, ObjectKind::kPublicKey, ObjectKind::kPrivateKey}) {
    std::set<std::pair<CK_ATTRIBUTE_TYPE, int>> seen;
    for (const AttributeRule& rule : AttributeRules(kind)) {
      EXPECT_TRUE(seen.insert({rule.type, static_cast<int>(rule.keys)}).second)
          << AttributeName(rule.type);
    }
  }
}

TEST(AttributeRulesTest, EveryAttributeOfEveryObjectKindHasItsSourcesValue) {
  for (const auto& leaf : {RsaLeaf(), EcLeaf()}) {
    for (ObjectKind kind :
         {ObjectKind::kCertificate, ObjectKind::kPublicKey, ObjectKind::kPrivateKey}) {
      for (bool checked : {false, true}) {
        SCOPED_TRACE(leaf->label + " kind " + std::to_string(static_cast<int>(kind)));
        CheckObject({.kind = kind,
                     .certificate = &leaf->certificate,
                     .leaf = leaf.get(),
                     .label = leaf->label,
                     .id = leaf->thumbprint,
                     .authority = false,
                     .private_keys_private = checked});
      }
    }
  }
  CheckObject({.kind = ObjectKind::kCertificate,
               .certificate = &IssuingInfo(),
               .leaf = nullptr,
               .label = AuthorityLabel(IssuingInfo()),
               .id = Pki().issuing().Sha1Thumbprint(),
               .authority = true,
               .private_keys_private = false});
}

TEST(AttributeRulesTest, PrivateKeysAreSensitiveNeverExtractableAndCarryPublicComponents) {
  // The spec-critical facts stated once more in plain words (F3, product-facts §1.5).
  for (const auto& leaf : {RsaLeaf(), EcLeaf()}) {
    auto map = BuildAttributes({.kind = ObjectKind::kPrivateKey,
                                .certificate = &leaf->certificate,
                                .leaf = leaf.get(),
                                .label = leaf->label,
                                .id = leaf->thumbprint})
                   .value();
    bool sensitive = false;
    EXPECT_EQ(*map.Find(CKA_SENSITIVE, &sensitive), Bytes{CK_TRUE});
    EXPECT_EQ(*map.Find(CKA_EXTRACTABLE, &sensitive), Bytes{CK_FALSE});
    EXPECT_EQ(*map.Find(CKA_NEVER_EXTRACTABLE, &sensitive), Bytes{CK_TRUE});
    EXPECT_EQ(*map.Find(CKA_ALWAYS_AUTHENTICATE, &sensitive), Bytes{CK_FALSE});
    EXPECT_EQ(*map.Find(CKA_ID, &sensitive), leaf->thumbprint);
    EXPECT_EQ(leaf->thumbprint.size(), 20u);
    if (leaf->key_spec.type == KeyType::kRsa) {
      EXPECT_NE(map.Find(CKA_MODULUS, &sensitive), nullptr);
      EXPECT_EQ(map.Find(CKA_PRIVATE_EXPONENT, &sensitive), nullptr);
      EXPECT_TRUE(sensitive);
    } else {
      const Bytes* point = map.Find(CKA_EC_POINT, &sensitive);
      ASSERT_NE(point, nullptr);
      // DER OCTET STRING around 04||X||Y (F2).
      EXPECT_EQ((*point)[0], 0x04);
      EXPECT_EQ(UnwrapEcPointOctetString(*point).value(), OpenSslPublicKey(*leaf).EcPoint());
      EXPECT_EQ(map.Find(CKA_VALUE, &sensitive), nullptr);
      EXPECT_TRUE(sensitive);
    }
  }
}

TEST(AttributeValuesTest, DatesAreCkDate) {
  using namespace std::chrono;
  const sys_days day = year{2026} / November / 27;
  const Bytes d = DateValue(day + hours(23) + minutes(59));
  EXPECT_EQ(std::string(d.begin(), d.end()), "20261127");
}

TEST(ObjectStoreTest, ThreeObjectsPerCertificateThenCasWithStableRandomHandles) {
  HandleAllocator handles;
  ObjectStore store(&handles);
  wire::CertificateListResponse list;
  list.certificates = {Pki().Leaf("a", "ec-p256"), Pki().Leaf("b", "ec-p256")};
  provider::CertificateSet set = provider::BuildCertificateSet(list);
  std::vector<std::string> problems;
  store.Update(set, false, &problems);
  EXPECT_TRUE(problems.empty());
  auto all = store.All();
  ASSERT_EQ(all.size(), 2u * 3u + 2u);
  std::set<CK_OBJECT_HANDLE> unique;
  for (const auto& o : all) {
    EXPECT_NE(o->handle, CK_INVALID_HANDLE);
    EXPECT_TRUE(unique.insert(o->handle).second);
    EXPECT_EQ(store.Find(o->handle), o);
  }
  EXPECT_EQ(all[0]->kind, ObjectKind::kCertificate);
  EXPECT_EQ(all[1]->kind, ObjectKind::kPublicKey);
  EXPECT_EQ(all[2]->kind, ObjectKind::kPrivateKey);
  EXPECT_EQ(all[6]->certificate, nullptr);  // the issuing CA
  // Handles look random, not like a counter.
  EXPECT_FALSE(all[1]->handle == all[0]->handle + 1 && all[2]->handle == all[1]->handle + 1);

  // A refresh that drops "a" and adds "c": b's objects and the CAs keep their handles, a's
  // handles are never reused.
  const CK_OBJECT_HANDLE a_cert = all[0]->handle, b_key = all[5]->handle, ca = all[6]->handle;
  wire::CertificateListResponse list2;
  list2.certificates = {list.certificates[1], Pki().Leaf("c", "ec-p256")};
  store.Update(provider::BuildCertificateSet(list2), false, &problems);
  EXPECT_EQ(store.Find(a_cert), nullptr);
  ASSERT_NE(store.Find(b_key), nullptr);
  EXPECT_EQ(store.Find(b_key)->certificate->label, "b");
  ASSERT_NE(store.Find(ca), nullptr);
  for (const auto& o : store.All()) EXPECT_NE(o->handle, a_cert);
}

TEST(ObjectStoreTest, MatchingIsExact) {
  HandleAllocator handles;
  ObjectStore store(&handles);
  wire::CertificateListResponse list;
  list.certificates = {Pki().Leaf("m", "rsa-2048")};
  std::vector<std::string> problems;
  store.Update(provider::BuildCertificateSet(list), /*private_keys_private=*/true, &problems);
  auto all = store.All();
  const Object& cert = *all[0];
  const Object& priv = *all[2];
  EXPECT_TRUE(priv.is_private);
  EXPECT_FALSE(cert.is_private);
  CK_OBJECT_CLASS klass = CKO_PRIVATE_KEY;
  CK_BBOOL yes = CK_TRUE;
  const Bytes& id = priv.certificate->thumbprint;
  CK_ATTRIBUTE by_class_id_sign[] = {{CKA_CLASS, &klass, sizeof klass},
                                     {CKA_ID, const_cast<uint8_t*>(id.data()), id.size()},
                                     {CKA_SIGN, &yes, sizeof yes}};
  EXPECT_TRUE(priv.Matches(by_class_id_sign, 3));
  EXPECT_FALSE(cert.Matches(by_class_id_sign, 3));
  EXPECT_TRUE(priv.Matches(nullptr, 0));
  // A shorter CK_ULONG, a prefix of the id, a sensitive attribute and a vendor attribute: no.
  uint32_t short_class = CKO_PRIVATE_KEY;
  CK_ATTRIBUTE short_ulong[] = {{CKA_CLASS, &short_class, sizeof short_class}};
  EXPECT_FALSE(priv.Matches(short_ulong, 1));
  CK_ATTRIBUTE prefix[] = {{CKA_ID, const_cast<uint8_t*>(id.data()), id.size() - 1}};
  EXPECT_FALSE(priv.Matches(prefix, 1));
  Bytes zero(256);
  CK_ATTRIBUTE sensitive[] = {{CKA_PRIVATE_EXPONENT, zero.data(), zero.size()}};
  EXPECT_FALSE(priv.Matches(sensitive, 1));
  CK_ATTRIBUTE vendor[] = {{CKA_VENDOR_DEFINED | 0x1234, &yes, 1}};
  EXPECT_FALSE(priv.Matches(vendor, 1));
  CK_OBJECT_CLASS trust = CKO_NSS_TRUST;
  CK_ATTRIBUTE nss_trust[] = {{CKA_CLASS, &trust, sizeof trust}};
  EXPECT_FALSE(cert.Matches(nss_trust, 1));
  const Bytes der = cert.certificate->certificate.Der();
  CK_ATTRIBUTE by_value[] = {{CKA_VALUE, const_cast<uint8_t*>(der.data()), der.size()}};
  EXPECT_TRUE(cert.Matches(by_value, 1));
  EXPECT_FALSE(priv.Matches(by_value, 1));
}

TEST(MechanismsTest, EveryMechanismOnceWithConsistentInfo) {
  std::set<CK_MECHANISM_TYPE> seen;
  size_t digests = 0;
  for (const Mechanism& m : AllMechanisms()) {
    EXPECT_TRUE(seen.insert(m.type).second) << MechanismName(m.type);
    EXPECT_EQ(FindMechanism(m.type), &m);
    CK_MECHANISM_INFO info = InfoFor(m);
    EXPECT_LE(info.ulMinKeySize, info.ulMaxKeySize);
    EXPECT_FALSE(info.flags & (CKF_ENCRYPT | CKF_DECRYPT | CKF_DERIVE | CKF_HW));
    if (m.is_digest()) {
      ++digests;
      ASSERT_TRUE(m.hash.has_value()) << MechanismName(m.type);
      EXPECT_EQ(m.type, GetHashInfo(*m.hash).ckm_digest);
      EXPECT_EQ(info.flags, static_cast<CK_FLAGS>(CKF_DIGEST)) << MechanismName(m.type);
      EXPECT_EQ(info.ulMinKeySize, 0u);
      EXPECT_EQ(info.ulMaxKeySize, 0u);
      continue;
    }
    EXPECT_TRUE(info.flags & CKF_SIGN);
    EXPECT_FALSE(info.flags & CKF_DIGEST);
    if (m.signature->key_type == KeyType::kRsa) {
      EXPECT_EQ(info.ulMinKeySize, 2048u);
      EXPECT_EQ(info.ulMaxKeySize, 4096u);
    } else {
      EXPECT_EQ(info.ulMinKeySize, 256u);
      EXPECT_EQ(info.ulMaxKeySize, 521u);
    }
  }
  // (raw + 5 hashes) x {PKCS#1, PSS, ECDSA}, and the 5 digests.
  EXPECT_EQ(seen.size(), 23u);
  EXPECT_EQ(digests, 5u);
  for (CK_MECHANISM_TYPE t :
       {CKM_RSA_PKCS, CKM_SHA256_RSA_PKCS, CKM_RSA_PKCS_PSS, CKM_SHA512_RSA_PKCS_PSS, CKM_ECDSA,
        CKM_ECDSA_SHA384, CKM_SHA_1, CKM_SHA224, CKM_SHA256, CKM_SHA384, CKM_SHA512}) {
    EXPECT_NE(FindMechanism(t), nullptr) << MechanismName(t);
  }
  EXPECT_EQ(FindMechanism(CKM_RSA_X_509), nullptr);
  EXPECT_EQ(FindMechanism(CKM_MD5), nullptr);
  // Keys allow their signature mechanisms only: a digest needs no key.
  EXPECT_EQ(MechanismsFor(KeyType::kRsa).size(), 12u);
  EXPECT_EQ(MechanismsFor(KeyType::kEc).size(), 6u);
  for (KeyType type : {KeyType::kRsa, KeyType::kEc}) {
    for (CK_MECHANISM_TYPE t : MechanismsFor(type)) {
      EXPECT_FALSE(FindMechanism(t)->is_digest()) << MechanismName(t);
    }
  }
}

TEST(MechanismsTest, WhatAKeyCanSignWithFollowsItsPairs) {
  // Every pair of the key's type: every signature mechanism of that type.
  EXPECT_EQ(SigningMechanismsFor(SignatureCapabilities::AllFor(KeyType::kRsa)),
            MechanismsFor(KeyType::kRsa));
  EXPECT_EQ(SigningMechanismsFor(SignatureCapabilities::AllFor(KeyType::kEc)),
            MechanismsFor(KeyType::kEc));
  EXPECT_TRUE(SigningMechanismsFor(SignatureCapabilities()).empty());

  // An HSM without PSS, and PKCS#1 v1.5 with SHA-256 only: the raw mechanism of a scheme is
  // offered when the scheme has any hash, hash-and-sign ones only for their own pair.
  SignatureCapabilities signable;
  signable.Add(SignatureScheme::kRsaPkcs1, HashAlgorithm::kSha256);
  EXPECT_EQ(SigningMechanismsFor(signable),
            (std::vector<CK_MECHANISM_TYPE>{CKM_RSA_PKCS, CKM_SHA256_RSA_PKCS}));
  EXPECT_FALSE(CanSignWith(*FindMechanism(CKM_RSA_PKCS_PSS), signable));
  EXPECT_FALSE(CanSignWith(*FindMechanism(CKM_SHA384_RSA_PKCS), signable));
  // Digests need no key.
  EXPECT_FALSE(
      CanSignWith(*FindMechanism(CKM_SHA256), SignatureCapabilities::AllFor(KeyType::kRsa)));
}

TEST(CkStatusTest, PayloadWinsOverTheTable) {
  EXPECT_EQ(ToCkRv(Status::Ok()), CKR_OK);
  EXPECT_EQ(ToCkRv(CkError(CKR_PIN_INCORRECT, "x")), CKR_PIN_INCORRECT);
  EXPECT_THAT(CkError(CKR_PIN_INCORRECT, "x"), StatusIs(ErrorCode::kUnauthenticated));
  EXPECT_EQ(ToCkRv(UnavailableError("agent down")), CKR_DEVICE_ERROR);
  EXPECT_EQ(ToCkRv(PermissionDeniedError("policy")), CKR_FUNCTION_REJECTED);
  EXPECT_EQ(ToCkRv(UnauthenticatedError("token revoked")), CKR_USER_NOT_LOGGED_IN);
  EXPECT_EQ(ToCkRv(NotFoundError("gone")), CKR_KEY_HANDLE_INVALID);
  EXPECT_EQ(ToCkRv(DeadlineExceededError("slow")), CKR_DEVICE_ERROR);
  EXPECT_EQ(ToCkRv(ResourceExhaustedError("429")), CKR_DEVICE_MEMORY);
  EXPECT_EQ(ToCkRv(InvalidArgumentError("bad")), CKR_DATA_INVALID);
  // Every code maps to something other than OK.
  for (int c = 1; c <= static_cast<int>(ErrorCode::kInternal); ++c) {
    EXPECT_NE(CkRvForErrorCode(static_cast<ErrorCode>(c)), CKR_OK) << c;
  }
}

TEST(TraceFormatTest, ValuesAndSecrets) {
  const uint8_t bytes[] = {0xde, 0xad, 0xbe, 0xef};
  EXPECT_EQ(trace::Hex(bytes, 4), "(4) deadbeef");
  EXPECT_EQ(trace::Hex(bytes, 4, 2), "(4) dead...");
  EXPECT_EQ(trace::Hex(nullptr, 4), "NULL");
  CK_OBJECT_CLASS klass = CKO_PRIVATE_KEY;
  CK_ATTRIBUTE a{CKA_CLASS, &klass, sizeof klass};
  EXPECT_EQ(trace::AttributeValue(a), "CKO_PRIVATE_KEY");
  char label[] = "rsa-2048";
  CK_ATTRIBUTE l{CKA_LABEL, label, 8};
  EXPECT_EQ(trace::AttributeValue(l), "\"rsa-2048\"");
  CK_BBOOL t = CK_TRUE;
  CK_ATTRIBUTE b{CKA_SIGN, &t, 1};
  EXPECT_EQ(trace::AttributeValue(b), "CK_TRUE");
  CK_ATTRIBUTE unavailable{CKA_MODULUS, nullptr, CK_UNAVAILABLE_INFORMATION};
  EXPECT_EQ(trace::AttributeValue(unavailable), "CK_UNAVAILABLE_INFORMATION");
}

// --- Signature operations
// --------------------------------------------------------------------------

CK_MECHANISM Mech(CK_MECHANISM_TYPE type, void* param = nullptr, CK_ULONG len = 0) {
  return CK_MECHANISM{type, param, len};
}

CK_RV RvOf(const Status& s) { return ToCkRv(s); }

TEST(SignatureOperationTest, MechanismMustFitTheKey) {
  auto op = SignatureOperation::Create(Mech(CKM_ECDSA), RsaLeaf(), kSign);
  ASSERT_FALSE(op.ok());
  EXPECT_EQ(RvOf(op.status()), CKR_KEY_TYPE_INCONSISTENT);
  op = SignatureOperation::Create(Mech(CKM_RSA_X_509), RsaLeaf(), kSign);
  EXPECT_EQ(RvOf(op.status()), CKR_MECHANISM_INVALID);
  uint8_t junk[4] = {};
  op = SignatureOperation::Create(Mech(CKM_RSA_PKCS, junk, 4), RsaLeaf(), kSign);
  EXPECT_EQ(RvOf(op.status()), CKR_MECHANISM_PARAM_INVALID);
}

// A key whose HSM cannot do PSS and does PKCS#1 v1.5 with SHA-256 only; ECDSA on P-384 with
// SHA-384 only.
std::shared_ptr<const provider::ProviderCertificate> LimitedLeaf(const std::string& spec) {
  wire::CertificateEntry e = Pki().Leaf("limited-" + spec, spec);
  SignatureCapabilities can;
  can.Add(SignatureScheme::kRsaPkcs1, HashAlgorithm::kSha256);
  can.Add(SignatureScheme::kEcdsa, HashAlgorithm::kSha384);
  e.capabilities = can;
  return std::make_shared<const provider::ProviderCertificate>(
      provider::ProviderCertificateFromEntry(e).value());
}

TEST(SignatureOperationTest, SigningIsLimitedToWhatTheKeyCanSignWith) {
  constexpr auto kVerify = SignatureOperation::Purpose::kVerify;
  const auto rsa = LimitedLeaf("rsa-2048");
  CK_RSA_PKCS_PSS_PARAMS pss{CKM_SHA256, CKG_MGF1_SHA256, 32};
  // At C_SignInit, before any agent round trip.
  EXPECT_EQ(
      RvOf(SignatureOperation::Create(Mech(CKM_SHA256_RSA_PKCS_PSS, &pss, sizeof pss), rsa, kSign)
               .status()),
      CKR_MECHANISM_INVALID);
  EXPECT_EQ(RvOf(SignatureOperation::Create(Mech(CKM_RSA_PKCS_PSS, &pss, sizeof pss), rsa, kSign)
                     .status()),
            CKR_MECHANISM_INVALID);
  EXPECT_EQ(RvOf(SignatureOperation::Create(Mech(CKM_SHA384_RSA_PKCS), rsa, kSign).status()),
            CKR_MECHANISM_INVALID);
  EXPECT_OK(SignatureOperation::Create(Mech(CKM_SHA256_RSA_PKCS), rsa, kSign));
  // Verification is local and knows every mechanism of the key's type.
  EXPECT_OK(
      SignatureOperation::Create(Mech(CKM_SHA256_RSA_PKCS_PSS, &pss, sizeof pss), rsa, kVerify));

  // Raw mechanisms need their scheme with some hash; the input's hash is the server's to judge
  // (a policy refusal and an HSM refusal map to different CK_RVs).
  EXPECT_OK(SignatureOperation::Create(Mech(CKM_RSA_PKCS), rsa, kSign));
  const auto ec = LimitedLeaf("ec-p384");
  EXPECT_OK(SignatureOperation::Create(Mech(CKM_ECDSA), ec, kSign));
  EXPECT_EQ(RvOf(SignatureOperation::Create(Mech(CKM_ECDSA_SHA256), ec, kSign).status()),
            CKR_MECHANISM_INVALID);
  EXPECT_OK(SignatureOperation::Create(Mech(CKM_ECDSA_SHA384), ec, kSign));

  // PSS possible with some hash: raw CKM_RSA_PKCS_PSS names its hash in the parameters, so one
  // the key cannot sign with is refused at C_SignInit (openCryptoki's PSS with SHA-224 was
  // accepted there and failed at C_Sign, after the tool had committed to it).
  wire::CertificateEntry e = Pki().Leaf("pss-sha384", "rsa-2048");
  SignatureCapabilities only_pss384;
  only_pss384.Add(SignatureScheme::kRsaPss, HashAlgorithm::kSha384);
  e.capabilities = only_pss384;
  auto pss_leaf = std::make_shared<const provider::ProviderCertificate>(
      provider::ProviderCertificateFromEntry(e).value());
  EXPECT_EQ(
      RvOf(SignatureOperation::Create(Mech(CKM_RSA_PKCS_PSS, &pss, sizeof pss), pss_leaf, kSign)
               .status()),
      CKR_MECHANISM_PARAM_INVALID);
  EXPECT_OK(
      SignatureOperation::Create(Mech(CKM_RSA_PKCS_PSS, &pss, sizeof pss), pss_leaf, kVerify));
  EXPECT_EQ(RvOf(SignatureOperation::Create(Mech(CKM_SHA256_RSA_PKCS_PSS, &pss, sizeof pss),
                                            pss_leaf, kSign)
                     .status()),
            CKR_MECHANISM_INVALID);
  CK_RSA_PKCS_PSS_PARAMS pss384{CKM_SHA384, CKG_MGF1_SHA384, 48};
  EXPECT_OK(
      SignatureOperation::Create(Mech(CKM_RSA_PKCS_PSS, &pss384, sizeof pss384), pss_leaf, kSign));
}

TEST(SignatureOperationTest, DigestMechanismsDoNotSign) {
  auto op = SignatureOperation::Create(Mech(CKM_SHA256), RsaLeaf(), kSign);
  ASSERT_FALSE(op.ok());
  EXPECT_EQ(RvOf(op.status()), CKR_MECHANISM_INVALID);
  EXPECT_EQ(RvOf(SignatureOperation::Create(Mech(CKM_SHA_1), EcLeaf(), kSign).status()),
            CKR_MECHANISM_INVALID);
}

TEST(DigestOperationTest, OnlyDigestMechanismsWithoutParameters) {
  EXPECT_EQ(RvOf(DigestOperation::Create(Mech(CKM_SHA256_RSA_PKCS)).status()),
            CKR_MECHANISM_INVALID);
  EXPECT_EQ(RvOf(DigestOperation::Create(Mech(CKM_ECDSA)).status()), CKR_MECHANISM_INVALID);
  EXPECT_EQ(RvOf(DigestOperation::Create(Mech(CKM_MD5)).status()), CKR_MECHANISM_INVALID);
  uint8_t junk[4] = {};
  EXPECT_EQ(RvOf(DigestOperation::Create(Mech(CKM_SHA256, junk, 4)).status()),
            CKR_MECHANISM_PARAM_INVALID);
  for (const HashInfo& h : AllHashes()) {
    auto op = DigestOperation::Create(Mech(h.ckm_digest));
    ASSERT_OK(op) << h.name;
    EXPECT_EQ((*op)->digest_size(), h.digest_size);
    EXPECT_EQ((*op)->mechanism().type, h.ckm_digest);
    EXPECT_FALSE((*op)->updated());
  }
}

TEST(DigestOperationTest, FinalIsOnce) {
  auto op = DigestOperation::Create(Mech(CKM_SHA384)).value();
  op->Update(AsBytes("ab"));
  op->Update(AsBytes("c"));
  EXPECT_TRUE(op->updated());
  auto first = op->Final();
  ASSERT_OK(first);
  // SHA-384("abc"), FIPS 180-2 appendix D.1.
  EXPECT_EQ(HexEncode(*first),
            "cb00753f45a35e8bb5a03d699ac65007272c32ab0eded1631a8b605a43ff5bed"
            "8086072ba1e7cc2358baeca134c825a7");
  EXPECT_EQ(RvOf(op->Final().status()), CKR_GENERAL_ERROR);
}

TEST(SignatureOperationTest, RsaPkcsTakesADigestInfo) {
  auto op = SignatureOperation::Create(Mech(CKM_RSA_PKCS), RsaLeaf(), kSign).value();
  EXPECT_EQ(op->signature_size(), 256u);
  const Bytes digest = Digest(HashAlgorithm::kSha384, AsBytes("x"));
  auto d = op->DigestFor(BuildDigestInfo(HashAlgorithm::kSha384, digest).value());
  ASSERT_OK(d);
  EXPECT_EQ(d->hash, HashAlgorithm::kSha384);
  EXPECT_EQ(d->digest, digest);
  EXPECT_EQ(d->scheme, SignatureScheme::kRsaPkcs1);
  // A bare digest is not a DigestInfo; too long for k-11 is a length error.
  EXPECT_EQ(RvOf(op->DigestFor(digest).status()), CKR_DATA_INVALID);
  EXPECT_EQ(RvOf(op->DigestFor(Bytes(246)).status()), CKR_DATA_LEN_RANGE);
}

TEST(SignatureOperationTest, PssParametersAreValidated) {
  CK_RSA_PKCS_PSS_PARAMS p{CKM_SHA256, CKG_MGF1_SHA256, 32};
  EXPECT_OK(SignatureOperation::Create(Mech(CKM_RSA_PKCS_PSS, &p, sizeof p), RsaLeaf(), kSign));
  EXPECT_OK(
      SignatureOperation::Create(Mech(CKM_SHA256_RSA_PKCS_PSS, &p, sizeof p), RsaLeaf(), kSign));
  // openssl cms asks for the maximum salt: 256 - 32 - 2 = 222.
  p.sLen = 222;
  EXPECT_OK(SignatureOperation::Create(Mech(CKM_RSA_PKCS_PSS, &p, sizeof p), RsaLeaf(), kSign));
  p.sLen = 223;
  EXPECT_EQ(RvOf(SignatureOperation::Create(Mech(CKM_RSA_PKCS_PSS, &p, sizeof p), RsaLeaf(), kSign)
                     .status()),
            CKR_MECHANISM_PARAM_INVALID);
  CK_RSA_PKCS_PSS_PARAMS mgf_mismatch{CKM_SHA256, CKG_MGF1_SHA384, 32};
  EXPECT_EQ(RvOf(SignatureOperation::Create(Mech(CKM_RSA_PKCS_PSS, &mgf_mismatch, sizeof p),
                                            RsaLeaf(), kSign)
                     .status()),
            CKR_MECHANISM_PARAM_INVALID);
  CK_RSA_PKCS_PSS_PARAMS hash_mismatch{CKM_SHA384, CKG_MGF1_SHA384, 48};
  EXPECT_EQ(RvOf(SignatureOperation::Create(Mech(CKM_SHA256_RSA_PKCS_PSS, &hash_mismatch, sizeof p),
                                            RsaLeaf(), kSign)
                     .status()),
            CKR_MECHANISM_PARAM_INVALID);
  CK_RSA_PKCS_PSS_PARAMS unknown_hash{CKM_MD5, CKG_MGF1_SHA256, 16};
  EXPECT_EQ(RvOf(SignatureOperation::Create(Mech(CKM_RSA_PKCS_PSS, &unknown_hash, sizeof p),
                                            RsaLeaf(), kSign)
                     .status()),
            CKR_MECHANISM_PARAM_INVALID);
  EXPECT_EQ(
      RvOf(SignatureOperation::Create(Mech(CKM_RSA_PKCS_PSS, &p, sizeof p - 1), RsaLeaf(), kSign)
               .status()),
      CKR_MECHANISM_PARAM_INVALID);
  EXPECT_EQ(RvOf(SignatureOperation::Create(Mech(CKM_RSA_PKCS_PSS), RsaLeaf(), kSign).status()),
            CKR_MECHANISM_PARAM_INVALID);
  // Raw PSS input must be the digest of hashAlg.
  CK_RSA_PKCS_PSS_PARAMS ok{CKM_SHA256, CKG_MGF1_SHA256, 32};
  auto op =
      SignatureOperation::Create(Mech(CKM_RSA_PKCS_PSS, &ok, sizeof ok), RsaLeaf(), kSign).value();
  EXPECT_EQ(RvOf(op->DigestFor(Bytes(48)).status()), CKR_DATA_LEN_RANGE);
  auto d = op->DigestFor(Bytes(32, 1));
  ASSERT_OK(d);
  EXPECT_EQ(d->pss_salt_length, std::optional<size_t>(32));
}

TEST(SignatureOperationTest, EcdsaAcceptsLongAndShortInputs) {
  auto op = SignatureOperation::Create(Mech(CKM_ECDSA), EcLeaf(), kSign).value();  // P-384
  EXPECT_EQ(op->signature_size(), 96u);
  auto d32 = op->DigestFor(Bytes(32, 7));
  ASSERT_OK(d32);
  EXPECT_EQ(d32->hash, HashAlgorithm::kSha256);
  auto d64 = op->DigestFor(Bytes(64, 7));
  ASSERT_OK(d64);
  EXPECT_EQ(d64->hash, HashAlgorithm::kSha512);
  EXPECT_EQ(RvOf(op->DigestFor(Bytes{}).status()), CKR_DATA_LEN_RANGE);
}

TEST(SignatureOperationTest, MultiPartHashesLikeSinglePart) {
  const Bytes data(100000, 0x5a);
  auto single = SignatureOperation::Create(Mech(CKM_SHA384_RSA_PKCS), RsaLeaf(), kSign).value();
  auto multi = SignatureOperation::Create(Mech(CKM_SHA384_RSA_PKCS), RsaLeaf(), kSign).value();
  for (size_t i = 0; i < data.size(); i += 333) {
    ASSERT_OK(multi->Update(ByteView(data).subspan(i, std::min<size_t>(333, data.size() - i))));
  }
  EXPECT_TRUE(multi->updated());
  auto a = single->DigestFor(data).value();
  auto b = multi->FinalDigest().value();
  EXPECT_EQ(a.digest, b.digest);
  EXPECT_EQ(a.digest, Digest(HashAlgorithm::kSha384, data));
  EXPECT_FALSE(multi->FinalDigest().ok());  // consumed
  // Raw mechanisms collect their input, bounded.
  auto raw = SignatureOperation::Create(Mech(CKM_ECDSA), EcLeaf(), kSign).value();
  ASSERT_OK(raw->Update(Bytes(20, 1)));
  ASSERT_OK(raw->Update(Bytes(12, 1)));
  EXPECT_EQ(raw->FinalDigest()->hash, HashAlgorithm::kSha256);
  auto big = SignatureOperation::Create(Mech(CKM_ECDSA), EcLeaf(), kSign).value();
  EXPECT_EQ(RvOf(big->Update(Bytes(5000))), CKR_DATA_LEN_RANGE);
}

TEST(SignatureOperationTest, LocalVerification) {
  provider::DigestToSign d{SignatureScheme::kEcdsa, HashAlgorithm::kSha256, Bytes(32, 3),
                           std::nullopt};
  EXPECT_EQ(RvOf(VerifySignature(*EcLeaf(), d, Bytes(95))), CKR_SIGNATURE_LEN_RANGE);
  EXPECT_EQ(RvOf(VerifySignature(*EcLeaf(), d, Bytes(96, 1))), CKR_SIGNATURE_INVALID);
}

}  // namespace
}  // namespace signum::pkcs11

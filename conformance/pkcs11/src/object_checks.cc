// Objects, Find and Attributes checks (CHECKS.md).
#include <algorithm>
#include <map>

#include "signum/testing/status_matchers.h"
#include "suite.h"

namespace signum::conformance {
namespace {

constexpr CK_OBJECT_CLASS kNssClass = 0xCE534350;  // CKO_NSS (NSS's pkcs11n.h)
constexpr CK_ATTRIBUTE_TYPE kUndefinedAttribute = 0x0FFF0F0F;  // no spec or vendor assigns it

class Find : public KeyedCheck {};
class Attributes : public KeyedCheck {};

class Objects : public KeyedCheck {
 protected:
  // Whether any certificate on the token has this subject, found by reading every certificate's
  // value (not by a CKA_SUBJECT search).
  bool CertificateWithSubjectOnToken(const Bytes& subject_der) {
    for (CK_OBJECT_HANDLE handle : Search(Template().AddUlong(CKA_CLASS, CKO_CERTIFICATE))) {
      auto der = GetAttribute(session_, handle, CKA_VALUE);
      if (!der.ok()) continue;
      auto cert = Certificate::FromDer(*der);
      if (cert.ok() && cert->SubjectDer() == subject_der) return true;
    }
    return false;
  }
};

#define SKIP_WITHOUT_CERTIFICATES()                                                  \
  if (SkipWithoutCertificates())                                                     \
  GTEST_SKIP() << "hsm profile: the token holds no certificates for its keys"

TEST_F(Objects, PrivateKeyHasCertificateWithSameId) {
  SKIP_WITHOUT_CERTIFICATES();
  for (const auto& key : keys_) {
    auto certs = Search(Template().AddUlong(CKA_CLASS, CKO_CERTIFICATE).Add(CKA_ID, key.id));
    EXPECT_EQ(certs.size(), 1u) << key.Name() << ": certificates with CKA_ID " << Hex(key.id);
  }
}

TEST_F(Objects, PrivateKeyHasPublicKeyWithSameId) {
  for (const auto& key : keys_) {
    auto pubs = Search(Template().AddUlong(CKA_CLASS, CKO_PUBLIC_KEY).Add(CKA_ID, key.id));
    ASSERT_EQ(pubs.size(), 1u) << key.Name() << ": public keys with CKA_ID " << Hex(key.id);
    auto type = GetUlong(session_, *pubs.begin(), CKA_KEY_TYPE);
    ASSERT_OK(type);
    EXPECT_EQ(*type, key.key_type) << key.Name() << ": CKA_KEY_TYPE of the public key";
  }
}

TEST_F(Objects, KeyObjectsShareLabel) {
  for (const auto& key : keys_) {
    EXPECT_FALSE(key.label.empty()) << "private key " << Hex(key.id) << " has no CKA_LABEL";
    for (CK_OBJECT_HANDLE other : {key.certificate_handle, key.public_key_handle}) {
      if (other == CK_INVALID_HANDLE) continue;
      auto label = GetAttribute(session_, other, CKA_LABEL);
      ASSERT_OK(label);
      EXPECT_EQ(ToString(*label), key.label) << "CKA_LABEL of an object with CKA_ID " << Hex(key.id);
    }
  }
}

TEST_F(Objects, PrivateKeyCarriesPublicComponents) {
  for (const auto& key : keys_) {
    auto from_private = PublicKeyFromObject(session_, key.private_key);
    ASSERT_OK(from_private) << key.Name() << ": public components on the private key";
    ASSERT_TRUE(key.verify_key.has_value());
    EXPECT_EQ(Hex(from_private->SpkiDer()), Hex(key.verify_key->SpkiDer()))
        << key.Name() << ": the private key's public components differ from "
        << (key.certificate ? "the certificate" : "the public-key object");
  }
}

TEST_F(Objects, PublicKeyMatchesCertificate) {
  SKIP_WITHOUT_CERTIFICATES();
  for (const auto& key : keys_) {
    if (!key.certificate || key.public_key_handle == CK_INVALID_HANDLE) {
      ADD_FAILURE() << key.Name() << ": needs a certificate and a public key";
      continue;
    }
    auto pub = PublicKeyFromObject(session_, key.public_key_handle);
    ASSERT_OK(pub) << key.Name();
    EXPECT_EQ(Hex(pub->SpkiDer()), Hex(key.certificate->SpkiDer())) << key.Name();
  }
}

TEST_F(Objects, EcPointIsDerOctetString) {
  int ec_keys = 0;
  for (const auto& key : keys_) {
    if (key.key_type != CKK_EC) continue;
    ++ec_keys;
    for (CK_OBJECT_HANDLE object : {key.private_key, key.public_key_handle}) {
      if (object == CK_INVALID_HANDLE) continue;
      auto params = GetAttribute(session_, object, CKA_EC_PARAMS);
      ASSERT_OK(params) << key.Name();
      auto curve = CurveFromParamsDer(*params);
      ASSERT_TRUE(curve.has_value())
          << key.Name() << ": CKA_EC_PARAMS " << Hex(*params) << " is not a named-curve OID";
      auto point = GetAttribute(session_, object, CKA_EC_POINT);
      if (object == key.private_key && point.status().ck_rv() == CKR_ATTRIBUTE_TYPE_INVALID) {
        // Its absence is Objects.PrivateKeyCarriesPublicComponents' business; here: encoding.
        Note(key.Name() + ": the private key has no CKA_EC_POINT");
        continue;
      }
      ASSERT_OK(point) << key.Name();
      const size_t raw_size = 1 + 2 * GetCurveInfo(*curve).field_size;
      EXPECT_NE(point->size(), raw_size)
          << key.Name() << ": CKA_EC_POINT is a raw point, not a DER OCTET STRING";
      auto inner = UnwrapEcPointOctetString(*point);
      ASSERT_OK(inner) << key.Name() << ": CKA_EC_POINT";
      ASSERT_EQ(inner->size(), raw_size) << key.Name() << ": point size";
      EXPECT_EQ((*inner)[0], 0x04) << key.Name() << ": not an uncompressed point";
      if (key.verify_key) { EXPECT_EQ(Hex(*inner), Hex(key.verify_key->EcPoint())) << key.Name(); }
    }
  }
  if (ec_keys == 0) GTEST_SKIP() << "no EC keys on the token";
}

TEST_F(Objects, CertificateAttributesMatchValue) {
  auto certs = Search(Template().AddUlong(CKA_CLASS, CKO_CERTIFICATE));
  if (certs.empty()) GTEST_SKIP() << "the token holds no certificates";
  for (CK_OBJECT_HANDLE handle : certs) {
    auto type = GetUlong(session_, handle, CKA_CERTIFICATE_TYPE);
    ASSERT_OK(type);
    if (*type != CKC_X_509) continue;
    ASSERT_OK_AND_ASSIGN(Bytes der, GetAttribute(session_, handle, CKA_VALUE));
    ASSERT_OK_AND_ASSIGN(auto cert, Certificate::FromDer(der));
    SCOPED_TRACE(cert.Subject());
    ASSERT_OK_AND_ASSIGN(Bytes subject, GetAttribute(session_, handle, CKA_SUBJECT));
    EXPECT_EQ(Hex(subject), Hex(cert.SubjectDer())) << "CKA_SUBJECT";
    auto issuer = GetAttribute(session_, handle, CKA_ISSUER);
    if (issuer.ok()) { EXPECT_EQ(Hex(*issuer), Hex(cert.IssuerDer())) << "CKA_ISSUER"; }
    auto serial = GetAttribute(session_, handle, CKA_SERIAL_NUMBER);
    if (serial.ok()) { EXPECT_EQ(Hex(*serial), Hex(cert.SerialDer())) << "CKA_SERIAL_NUMBER"; }
  }
}

TEST_F(Objects, AuthorityCertificatesPresent) {
  SKIP_WITHOUT_CERTIFICATES();
  std::vector<std::pair<CK_OBJECT_HANDLE, Certificate>> all;
  for (CK_OBJECT_HANDLE handle : Search(Template().AddUlong(CKA_CLASS, CKO_CERTIFICATE))) {
    auto der = GetAttribute(session_, handle, CKA_VALUE);
    if (!der.ok()) continue;
    auto cert = Certificate::FromDer(*der);
    if (cert.ok()) all.emplace_back(handle, *cert);
  }
  const bool any_ca = std::any_of(all.begin(), all.end(), [](const auto& c) { return c.second.IsCa(); });
  if (!any_ca) GTEST_SKIP() << "the token keeps only leaf certificates (no CA certificates)";
  for (const auto& key : keys_) {
    if (!key.certificate) continue;
    Bytes issuer = key.certificate->IssuerDer();
    // Walk up to a self-signed certificate; every step must be on the token.
    for (int depth = 0; depth < 8; ++depth) {
      auto it = std::find_if(all.begin(), all.end(), [&](const auto& c) {
        return c.second.IsCa() && c.second.SubjectDer() == issuer;
      });
      if (it == all.end()) {
        ADD_FAILURE() << key.Name() << ": issuer of the chain is not on the token";
        break;
      }
      auto category = GetUlong(session_, it->first, CKA_CERTIFICATE_CATEGORY);
      if (category.ok()) {
        EXPECT_NE(*category, 1u) << it->second.Subject()
                                 << ": a CA certificate with category 'token user'";
      }
      if (it->second.IssuerDer() == it->second.SubjectDer()) break;
      issuer = it->second.IssuerDer();
    }
  }
}

TEST_F(Objects, IdReadBackPairsKeyAndCertificate) {
  // F34: SunPKCS11 and gnupg-pkcs11-scd do not search by CKA_ID: they read CKA_ID from every
  // private key and every certificate and pair equal values (tpm2-pkcs11 once wrote hex(label)
  // as a certificate's CKA_ID; searches still matched, the pairing did not).
  SKIP_WITHOUT_CERTIFICATES();
  std::map<std::string, int> certificate_ids, public_key_ids;
  for (CK_OBJECT_HANDLE handle : Search(Template().AddUlong(CKA_CLASS, CKO_CERTIFICATE))) {
    auto id = GetAttribute(session_, handle, CKA_ID);
    ASSERT_OK(id) << "CKA_ID of certificate " << handle;
    ++certificate_ids[Hex(*id)];
  }
  for (CK_OBJECT_HANDLE handle : Search(Template().AddUlong(CKA_CLASS, CKO_PUBLIC_KEY))) {
    auto id = GetAttribute(session_, handle, CKA_ID);
    ASSERT_OK(id) << "CKA_ID of public key " << handle;
    ++public_key_ids[Hex(*id)];
  }
  for (CK_OBJECT_HANDLE handle : Search(Template().AddUlong(CKA_CLASS, CKO_PRIVATE_KEY))) {
    auto id = GetAttribute(session_, handle, CKA_ID);
    ASSERT_OK(id) << "CKA_ID of private key " << handle;
    const std::string hex = Hex(*id);
    auto label = GetAttribute(session_, handle, CKA_LABEL);
    const std::string name = label.ok() ? ToString(*label) : hex;
    EXPECT_EQ(certificate_ids[hex], 1)
        << name << ": certificates whose CKA_ID, read back, equals the key's (" << hex << ")";
    EXPECT_EQ(public_key_ids[hex], 1)
        << name << ": public keys whose CKA_ID, read back, equals the key's (" << hex << ")";
  }
}

TEST_F(Objects, ChainWalkBySubjectSearch) {
  // F36: SunPKCS11 builds jarsigner's chain by C_FindObjects({CKO_CERTIFICATE, CKA_SUBJECT =
  // issuer}) from the leaf up; comparing values (AuthorityCertificatesPresent) does not prove
  // the search finds them.
  SKIP_WITHOUT_CERTIFICATES();
  int walked = 0;
  for (const auto& key : keys_) {
    if (!key.certificate) continue;
    Certificate current = *key.certificate;
    for (int depth = 0; depth < 8 && current.IssuerDer() != current.SubjectDer(); ++depth) {
      auto found = Search(Template()
                              .AddUlong(CKA_CLASS, CKO_CERTIFICATE)
                              .Add(CKA_SUBJECT, current.IssuerDer()));
      std::optional<Certificate> issuer;
      for (CK_OBJECT_HANDLE handle : found) {
        auto der = GetAttribute(session_, handle, CKA_VALUE);
        if (!der.ok()) continue;
        auto cert = Certificate::FromDer(*der);
        if (cert.ok() && cert->SubjectDer() == current.IssuerDer()) issuer = *cert;
      }
      if (!issuer) {
        // An issuer that is not on the token at all is AuthorityCertificatesPresent's finding.
        if (!CertificateWithSubjectOnToken(current.IssuerDer())) break;
        ADD_FAILURE() << key.Name() << ": C_FindObjects by CKA_SUBJECT found no issuer for '"
                      << current.Subject() << "' (" << found.size() << " objects matched)";
        break;
      }
      current = *issuer;
      ++walked;
    }
  }
  if (walked == 0) GTEST_SKIP() << "the token keeps only leaf certificates (no issuer to find)";
}

TEST_F(Objects, PrivateKeysAreSensitive) {
  for (const auto& key : keys_) {
    for (auto [type, want] : {std::pair{CKA_SIGN, true}, std::pair{CKA_SENSITIVE, true},
                              std::pair{CKA_EXTRACTABLE, false}}) {
      auto value = GetBool(session_, key.private_key, type);
      ASSERT_OK(value) << key.Name();
      EXPECT_EQ(*value, want) << key.Name() << ": " << AttributeName(type);
    }
  }
}

// --- Find ----------------------------------------------------------------------------------------

TEST_F(Find, ByClassReturnsOnlyThatClass) {
  const auto all = Search(Template());
  for (CK_OBJECT_CLASS cls : {CKO_CERTIFICATE, CKO_PUBLIC_KEY, CKO_PRIVATE_KEY}) {
    for (CK_OBJECT_HANDLE handle : Search(Template().AddUlong(CKA_CLASS, cls))) {
      auto actual = GetUlong(session_, handle, CKA_CLASS);
      ASSERT_OK(actual);
      EXPECT_EQ(*actual, cls) << "object " << handle;
      EXPECT_TRUE(all.count(handle)) << "object " << handle << " not found by the empty template";
    }
  }
  for (const auto& key : keys_) { EXPECT_TRUE(all.count(key.private_key)) << key.Name(); }
}

TEST_F(Find, ByIdReturnsKeyTrio) {
  for (const auto& key : keys_) {
    auto found = Search(Template().Add(CKA_ID, key.id));
    for (CK_OBJECT_HANDLE h : {key.private_key, key.public_key_handle, key.certificate_handle}) {
      if (h != CK_INVALID_HANDLE) { EXPECT_TRUE(found.count(h)) << key.Name() << ": object " << h; }
    }
    EXPECT_EQ(Search(Template().AddUlong(CKA_CLASS, CKO_PRIVATE_KEY).Add(CKA_ID, key.id)).size(), 1u)
        << key.Name();
  }
}

TEST_F(Find, ByLabelReturnsKeyTrio) {
  int labelled = 0;
  for (const auto& key : keys_) {
    if (key.label.empty()) continue;
    ++labelled;
    auto found = Search(Template().AddString(CKA_LABEL, key.label));
    for (CK_OBJECT_HANDLE h : {key.private_key, key.public_key_handle, key.certificate_handle}) {
      if (h != CK_INVALID_HANDLE) { EXPECT_TRUE(found.count(h)) << key.Name() << ": object " << h; }
    }
    EXPECT_EQ(
        Search(Template().AddUlong(CKA_CLASS, CKO_PRIVATE_KEY).AddString(CKA_LABEL, key.label)).size(),
        1u)
        << key.Name();
  }
  if (labelled == 0) GTEST_SKIP() << "no private key has a CKA_LABEL";
}

TEST_F(Find, SignTrueReturnsPrivateKeys) {
  const auto found = Search(Template().AddBool(CKA_SIGN, true));
  for (const auto& key : keys_) { EXPECT_TRUE(found.count(key.private_key)) << key.Name(); }
  for (CK_OBJECT_HANDLE handle : found) {
    auto sign = GetBool(session_, handle, CKA_SIGN);
    ASSERT_OK(sign);
    EXPECT_TRUE(*sign) << "object " << handle << " found by CKA_SIGN=TRUE";
  }
}

TEST_F(Find, TokenTrueMatchesEmptyTemplate) {
  std::set<CK_OBJECT_HANDLE> token_objects;
  for (CK_OBJECT_HANDLE handle : Search(Template())) {
    auto token = GetBool(session_, handle, CKA_TOKEN);
    ASSERT_OK(token);
    if (*token) token_objects.insert(handle);
  }
  EXPECT_EQ(Search(Template().AddBool(CKA_TOKEN, true)), token_objects);
}

TEST_F(Find, NssVendorClassesMatchNothing) {
  for (CK_OBJECT_CLASS cls : {kNssClass + 3 /* CKO_NSS_TRUST */,
                              kNssClass + 4 /* CKO_NSS_BUILTIN_ROOT_LIST */,
                              CK_OBJECT_CLASS(CKO_VENDOR_DEFINED | 0x5167)}) {
    EXPECT_TRUE(Search(Template().AddUlong(CKA_CLASS, cls)).empty())
        << "class 0x" << std::hex << cls << " matched objects";
  }
}

TEST_F(Find, MaxOneLoopMatchesBulk) {
  ASSERT_OK_AND_ASSIGN(auto one, FindObjects(session_, Template(), 1));
  ASSERT_OK_AND_ASSIGN(auto bulk, FindObjects(session_, Template(), 1024));
  std::sort(one.begin(), one.end());
  std::sort(bulk.begin(), bulk.end());
  EXPECT_EQ(one, bulk);
  EXPECT_EQ(std::adjacent_find(bulk.begin(), bulk.end()), bulk.end()) << "a handle came twice";
}

TEST_F(Find, FindObjectsWithoutInitIsNotInitialized) {
  CK_OBJECT_HANDLE handles[4];
  CK_ULONG count = 0;
  EXPECT_RV(CKR_OPERATION_NOT_INITIALIZED, f()->C_FindObjects(session_, handles, 4, &count));
  EXPECT_RV(CKR_OPERATION_NOT_INITIALIZED, f()->C_FindObjectsFinal(session_));
}

TEST_F(Find, FindInitWhileActiveIsOperationActive) {
  ASSERT_RV(CKR_OK, f()->C_FindObjectsInit(session_, nullptr, 0));
  EXPECT_RV(CKR_OPERATION_ACTIVE, f()->C_FindObjectsInit(session_, nullptr, 0));
  CK_OBJECT_HANDLE handles[4];
  CK_ULONG count = 0;
  EXPECT_RV(CKR_OK, f()->C_FindObjects(session_, handles, 4, &count));
  EXPECT_RV(CKR_OK, f()->C_FindObjectsFinal(session_));
}

// --- Attributes ----------------------------------------------------------------------------------

CK_ATTRIBUTE_TYPE SensitiveAttribute(const TokenKey& key) {
  return key.key_type == CKK_RSA ? CKA_PRIVATE_EXPONENT : CKA_VALUE;
}

TEST_F(Attributes, NullValueReturnsExactLength) {
  for (const auto& key : keys_) {
    CK_ATTRIBUTE a{CKA_ID, nullptr, 0};
    ASSERT_RV(CKR_OK, f()->C_GetAttributeValue(session_, key.private_key, &a, 1));
    EXPECT_EQ(a.ulValueLen, key.id.size()) << key.Name();
    if (key.certificate_handle == CK_INVALID_HANDLE) continue;
    CK_ATTRIBUTE v{CKA_VALUE, nullptr, 0};
    ASSERT_RV(CKR_OK, f()->C_GetAttributeValue(session_, key.certificate_handle, &v, 1));
    // The length sizes the buffer below: a wrong one (CK_UNAVAILABLE_INFORMATION, garbage) ends
    // the case here.
    ASSERT_EQ(v.ulValueLen, key.certificate->Der().size()) << key.Name() << ": certificate";
    Bytes big(v.ulValueLen + 16);
    v.pValue = big.data();
    v.ulValueLen = big.size();
    ASSERT_RV(CKR_OK, f()->C_GetAttributeValue(session_, key.certificate_handle, &v, 1));
    EXPECT_EQ(v.ulValueLen, key.certificate->Der().size()) << "length after reading into a larger buffer";
    if (v.ulValueLen <= big.size()) {
      big.resize(v.ulValueLen);
      EXPECT_EQ(Hex(big), Hex(key.certificate->Der())) << key.Name() << ": certificate value";
    }
  }
}

TEST_F(Attributes, SensitiveValueIsUnavailable) {
  // What matters to a key custodian: the private value never comes back. The exact error code
  // is SensitiveValueIsAttributeSensitive's business (F50: tpm2-pkcs11 answers TYPE_INVALID).
  for (const auto& key : keys_) {
    CK_KEY_TYPE type = 0xFFFF;
    Bytes secret(1024);
    CK_ATTRIBUTE t[] = {{CKA_KEY_TYPE, &type, sizeof type},
                        {SensitiveAttribute(key), secret.data(), secret.size()}};
    const CK_RV rv = f()->C_GetAttributeValue(session_, key.private_key, t, 2);
    EXPECT_TRUE(rv == CKR_ATTRIBUTE_SENSITIVE || rv == CKR_ATTRIBUTE_TYPE_INVALID)
        << key.Name() << ": reading " << AttributeName(SensitiveAttribute(key)) << " returned "
        << CkRvName(rv) << " (the value must not be returned)";
    EXPECT_EQ(t[1].ulValueLen, CK_UNAVAILABLE_INFORMATION) << key.Name();
    EXPECT_EQ(type, key.key_type) << key.Name() << ": the readable attribute was not filled";
  }
}

TEST_F(Attributes, SensitiveValueIsAttributeSensitive) {
  for (const auto& key : keys_) {
    Bytes secret(1024);
    CK_ATTRIBUTE a{SensitiveAttribute(key), secret.data(), secret.size()};
    EXPECT_RV(CKR_ATTRIBUTE_SENSITIVE, f()->C_GetAttributeValue(session_, key.private_key, &a, 1))
        << key.Name() << ": " << AttributeName(SensitiveAttribute(key));
  }
}

TEST_F(Attributes, AlwaysAuthenticateReadable) {
  // F44: libp11 and pkcs11-provider read CKA_ALWAYS_AUTHENTICATE of the key before signing; a
  // module without it (CKR_ATTRIBUTE_TYPE_INVALID) broke them. When it is TRUE the caller logs
  // in with CKU_CONTEXT_SPECIFIC after C_SignInit: that must then work and sign.
  for (const auto& key : keys_) {
    CK_BBOOL value = 0xAA;
    CK_ATTRIBUTE a{CKA_ALWAYS_AUTHENTICATE, &value, sizeof value};
    ASSERT_RV(CKR_OK, f()->C_GetAttributeValue(session_, key.private_key, &a, 1))
        << key.Name() << ": CKA_ALWAYS_AUTHENTICATE";
    ASSERT_EQ(a.ulValueLen, sizeof(CK_BBOOL)) << key.Name();
    ASSERT_TRUE(value == CK_TRUE || value == CK_FALSE) << key.Name() << ": value " << int(value);
    if (value == CK_FALSE) continue;
    if (!pin()) {
      Note(key.Name() + ": CKA_ALWAYS_AUTHENTICATE is TRUE; no PIN to test CKU_CONTEXT_SPECIFIC");
      continue;
    }
    auto recipe = DefaultRecipe(key);
    if (!recipe) continue;
    CK_MECHANISM mechanism{recipe->mechanism, nullptr, 0};
    ASSERT_RV(CKR_OK, f()->C_SignInit(session_, &mechanism, key.private_key)) << key.Name();
    EXPECT_RV(CKR_OK, f()->C_Login(session_, CKU_CONTEXT_SPECIFIC, PinBytes(*pin()),
                                   static_cast<CK_ULONG>(pin()->size())))
        << key.Name() << ": CKU_CONTEXT_SPECIFIC login after C_SignInit";
    Bytes signature(1024);
    CK_ULONG length = signature.size();
    Bytes input(recipe->scheme == SignatureScheme::kEcdsa ? 32 : 51, 0x5A);
    f()->C_Sign(session_, input.data(), static_cast<CK_ULONG>(input.size()), signature.data(),
                &length);  // ends the operation whatever it returns; the login was the point
  }
}

TEST_F(Attributes, InvalidTypeIsUnavailableOthersFilled) {
  for (const auto& key : keys_) {
    CK_KEY_TYPE type = 0xFFFF;
    Bytes buffer(64);
    CK_ATTRIBUTE t[] = {{kUndefinedAttribute, buffer.data(), buffer.size()},
                        {CKA_KEY_TYPE, &type, sizeof type}};
    EXPECT_RV(CKR_ATTRIBUTE_TYPE_INVALID, f()->C_GetAttributeValue(session_, key.private_key, t, 2))
        << key.Name();
    EXPECT_EQ(t[0].ulValueLen, CK_UNAVAILABLE_INFORMATION) << key.Name();
    EXPECT_EQ(type, key.key_type) << key.Name() << ": the valid attribute was not filled";
  }
}

TEST_F(Attributes, BufferTooSmallOthersFilled) {
  for (const auto& key : keys_) {
    if (key.id.size() < 2) continue;
    CK_KEY_TYPE type = 0xFFFF;
    Bytes small(key.id.size() - 1);
    CK_ATTRIBUTE t[] = {{CKA_ID, small.data(), small.size()}, {CKA_KEY_TYPE, &type, sizeof type}};
    EXPECT_RV(CKR_BUFFER_TOO_SMALL, f()->C_GetAttributeValue(session_, key.private_key, t, 2))
        << key.Name();
    EXPECT_EQ(t[0].ulValueLen, CK_UNAVAILABLE_INFORMATION) << key.Name();
    EXPECT_EQ(type, key.key_type) << key.Name() << ": the valid attribute was not filled";
  }
}

TEST_F(Attributes, MixedTemplateProcessesEveryAttribute) {
  for (const auto& key : keys_) {
    SCOPED_TRACE(key.Name());
    CK_KEY_TYPE type = 0xFFFF;
    // The short buffer is never NULL (a 1-byte CKA_ID would make it a length query); an empty
    // CKA_ID fits any buffer, so the fifth entry then just reads back 0 bytes.
    Bytes secret(1024), unknown(64), small(std::max<size_t>(key.id.size(), 1));
    const CK_ULONG short_length = key.id.empty() ? 0 : key.id.size() - 1;
    CK_ATTRIBUTE t[] = {{CKA_KEY_TYPE, &type, sizeof type},
                        {CKA_ID, nullptr, 0},
                        {SensitiveAttribute(key), secret.data(), secret.size()},
                        {kUndefinedAttribute, unknown.data(), unknown.size()},
                        {CKA_ID, small.data(), short_length}};
    const CK_RV rv = f()->C_GetAttributeValue(session_, key.private_key, t, 5);
    EXPECT_TRUE(rv == CKR_ATTRIBUTE_SENSITIVE || rv == CKR_ATTRIBUTE_TYPE_INVALID ||
                rv == CKR_BUFFER_TOO_SMALL)
        << "returned " << CkRvName(rv);
    EXPECT_EQ(type, key.key_type) << "CKA_KEY_TYPE not filled";
    EXPECT_EQ(t[1].ulValueLen, key.id.size()) << "NULL pValue must give the length";
    EXPECT_EQ(t[2].ulValueLen, CK_UNAVAILABLE_INFORMATION) << "sensitive attribute";
    EXPECT_EQ(t[3].ulValueLen, CK_UNAVAILABLE_INFORMATION) << "unknown attribute";
    EXPECT_EQ(t[4].ulValueLen, key.id.empty() ? 0 : CK_UNAVAILABLE_INFORMATION) << "short buffer";
  }
}

}  // namespace
}  // namespace signum::conformance

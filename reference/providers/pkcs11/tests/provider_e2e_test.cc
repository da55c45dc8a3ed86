// libsignumpkcs11.so end to end: the module (dlopen, raw function lists) -> real signum-agent ->
// real signum-server -> SoftHSM2, on a fresh `init-demo` deployment. Every signature is verified
// with OpenSSL (signum::VerifyDigestSignature) against the certificate the token serves
// (CKA_VALUE), so a test passes only if the whole path signed exactly what the caller asked for.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <boost/process.hpp>
#include <chrono>
#include <map>
#include <set>
#include <thread>

#include "deployment.h"
#include "module_test_util.h"
#include "recorded_trace.h"
#include "signum/core/algorithms.h"
#include "signum/core/crypto.h"
#include "signum/core/x509.h"
#include "signum/testing/status_matchers.h"

namespace signum::pkcs11::testing {
namespace {

using Clock = std::chrono::steady_clock;

Bytes B(std::string_view text) {
  ByteView v = AsBytes(text);
  return Bytes(v.begin(), v.end());
}

const std::vector<std::string> kLabels = {"rsa-2048", "rsa-3072", "rsa-4096",
                                          "ec-p256",  "ec-p384",  "ec-p521"};

// One signing certificate as the token shows it.
struct Key {
  std::string label;
  CK_OBJECT_HANDLE certificate = 0, public_key = 0, private_key = 0;
  Bytes id;
  std::unique_ptr<Certificate> cert;
  std::unique_ptr<PublicKey> key;
  KeySpec spec;
};

class ProviderE2eTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    deployment_ = new Deployment("release");
    deployment_->StartServer();
    deployment_->StartAgent();
  }
  static void TearDownTestSuite() {
    delete deployment_;
    deployment_ = nullptr;
  }

  ProviderE2eTest()
      : socket_("SIGNUM_AGENT_SOCKET", deployment_->agent_socket()),
        tcp_("SIGNUM_AGENT_TCP", std::nullopt),
        pin_("SIGNUM_PKCS11_PIN", std::nullopt),
        label_("SIGNUM_TOKEN_LABEL", std::nullopt),
        trace_("SIGNUM_PKCS11_TRACE", std::nullopt),
        record_("SIGNUM_PKCS11_RECORD", std::nullopt),
        refresh_("SIGNUM_PKCS11_REFRESH_SECONDS", std::nullopt) {}

  // Finds the three objects of every signing certificate and checks they belong together.
  static std::map<std::string, Key> LoadKeys(CK_SESSION_HANDLE s) {
    std::map<std::string, Key> keys;
    CK_OBJECT_CLASS klass = CKO_PRIVATE_KEY;
    for (CK_OBJECT_HANDLE priv : Find(s, {{CKA_CLASS, &klass, sizeof klass}})) {
      Key k;
      k.private_key = priv;
      Bytes label = GetAttribute(s, priv, CKA_LABEL).value;
      k.label.assign(label.begin(), label.end());
      k.id = GetAttribute(s, priv, CKA_ID).value;
      CK_OBJECT_CLASS cert_class = CKO_CERTIFICATE, pub_class = CKO_PUBLIC_KEY;
      auto certs = Find(
          s, {{CKA_CLASS, &cert_class, sizeof cert_class}, {CKA_ID, k.id.data(), k.id.size()}});
      auto pubs =
          Find(s, {{CKA_CLASS, &pub_class, sizeof pub_class}, {CKA_ID, k.id.data(), k.id.size()}});
      EXPECT_EQ(certs.size(), 1u) << k.label;
      EXPECT_EQ(pubs.size(), 1u) << k.label;
      if (certs.size() != 1 || pubs.size() != 1) continue;
      k.certificate = certs[0];
      k.public_key = pubs[0];
      k.cert = std::make_unique<Certificate>(
          Certificate::FromDer(GetAttribute(s, k.certificate, CKA_VALUE).value).value());
      k.key = std::make_unique<PublicKey>(k.cert->GetPublicKey().value());
      k.spec = k.key->spec();
      keys[k.label] = std::move(k);
    }
    return keys;
  }

  static Deployment* deployment_;
  ScopedEnv socket_, tcp_, pin_, label_, trace_, record_, refresh_;
};
Deployment* ProviderE2eTest::deployment_ = nullptr;

// --- Signing helpers ----------------------------------------------------------------------------

struct SignResult {
  CK_RV rv = CKR_OK;
  Bytes signature;
};

SignResult SignOnce(CK_SESSION_HANDLE s, CK_MECHANISM mechanism, CK_OBJECT_HANDLE key,
                    const Bytes& data) {
  SignResult r;
  r.rv = F()->C_SignInit(s, &mechanism, key);
  if (r.rv != CKR_OK) return r;
  // Sized from the key up front, as libp11, NSS and SunPKCS11 do (no length query).
  r.signature.resize(1024);
  CK_ULONG len = r.signature.size();
  r.rv = F()->C_Sign(s, const_cast<uint8_t*>(data.data()), data.size(), r.signature.data(), &len);
  r.signature.resize(r.rv == CKR_OK ? len : 0);
  return r;
}

// What the module must have signed, for verification: scheme, hash and digest of the input.
struct Expectation {
  SignatureScheme scheme;
  HashAlgorithm hash;
  Bytes digest;
  std::optional<size_t> salt;
};

void ExpectVerifies(const Key& k, const Expectation& e, const Bytes& signature,
                    const std::string& what) {
  EXPECT_EQ(signature.size(), k.spec.SignatureSize()) << what;
  Status v = VerifyDigestSignature(*k.key, e.scheme, e.hash, e.digest, signature, e.salt);
  EXPECT_OK(v) << what;
}

bool PolicyAllows(SignatureScheme scheme, HashAlgorithm hash) {
  // The demo's release user: any scheme with SHA-2; SHA-1 only with PKCS#1 v1.5.
  return hash != HashAlgorithm::kSha1 || scheme == SignatureScheme::kRsaPkcs1;
}

// --- Objects ------------------------------------------------------------------------------------

TEST_F(ProviderE2eTest, EveryCertificateHasItsKeyPairAndTheChainIsServedOnce) {
  Initialized init;
  CK_SESSION_HANDLE s = OpenSession();
  auto all = Find(s, {});
  // 6 signing certificates x (certificate, public key, private key) + issuing CA + root.
  EXPECT_EQ(all.size(), 6u * 3u + 2u);
  auto keys = LoadKeys(s);
  ASSERT_EQ(keys.size(), 6u);
  for (const std::string& label : kLabels) {
    ASSERT_EQ(keys.count(label), 1u) << label;
    const Key& k = keys[label];
    SCOPED_TRACE(label);
    EXPECT_EQ(k.spec.Name(), label);
    // CKA_ID: the certificate's SHA-1 thumbprint, binary, on all three (F4, F22).
    EXPECT_EQ(k.id, k.cert->Sha1Thumbprint());
    EXPECT_EQ(GetAttribute(s, k.public_key, CKA_ID).value, k.id);
    // CKA_LABEL: the server's label, on all three (F21).
    for (CK_OBJECT_HANDLE h : {k.certificate, k.public_key, k.private_key}) {
      Bytes l = GetAttribute(s, h, CKA_LABEL).value;
      EXPECT_EQ(std::string(l.begin(), l.end()), label);
    }
    EXPECT_EQ(AsUlong(GetAttribute(s, k.certificate, CKA_CERTIFICATE_CATEGORY).value), 1u);
    EXPECT_EQ(AsUlong(GetAttribute(s, k.certificate, CKA_CERTIFICATE_TYPE).value), CKC_X_509);
    EXPECT_EQ(GetAttribute(s, k.certificate, CKA_TRUSTED).value, Bytes{CK_FALSE});
    EXPECT_EQ(GetAttribute(s, k.certificate, CKA_SUBJECT).value, k.cert->SubjectDer());
    EXPECT_EQ(GetAttribute(s, k.certificate, CKA_ISSUER).value, k.cert->IssuerDer());
    EXPECT_EQ(GetAttribute(s, k.certificate, CKA_SERIAL_NUMBER).value, k.cert->SerialDer());
    EXPECT_EQ(GetAttribute(s, k.private_key, CKA_PUBLIC_KEY_INFO).value, k.cert->SpkiDer());
    // The private key: sensitive, never extractable, signs, carries the public parts (F3).
    EXPECT_EQ(GetAttribute(s, k.private_key, CKA_SENSITIVE).value, Bytes{CK_TRUE});
    EXPECT_EQ(GetAttribute(s, k.private_key, CKA_EXTRACTABLE).value, Bytes{CK_FALSE});
    EXPECT_EQ(GetAttribute(s, k.private_key, CKA_NEVER_EXTRACTABLE).value, Bytes{CK_TRUE});
    EXPECT_EQ(GetAttribute(s, k.private_key, CKA_SIGN).value, Bytes{CK_TRUE});
    EXPECT_EQ(GetAttribute(s, k.private_key, CKA_DECRYPT).value, Bytes{CK_FALSE});
    EXPECT_EQ(GetAttribute(s, k.private_key, CKA_ALWAYS_AUTHENTICATE).value, Bytes{CK_FALSE});
    EXPECT_EQ(GetAttribute(s, k.private_key, CKA_PRIVATE).value, Bytes{CK_FALSE});
    if (k.spec.type == KeyType::kRsa) {
      EXPECT_EQ(AsUlong(GetAttribute(s, k.private_key, CKA_KEY_TYPE).value), CKK_RSA);
      EXPECT_EQ(GetAttribute(s, k.private_key, CKA_MODULUS).value, k.key->RsaModulus());
      EXPECT_EQ(GetAttribute(s, k.public_key, CKA_MODULUS).value, k.key->RsaModulus());
      EXPECT_EQ(GetAttribute(s, k.private_key, CKA_PUBLIC_EXPONENT).value,
                k.key->RsaPublicExponent());
      EXPECT_EQ(AsUlong(GetAttribute(s, k.public_key, CKA_MODULUS_BITS).value),
                static_cast<CK_ULONG>(k.spec.rsa_bits));
      EXPECT_RV(CKR_ATTRIBUTE_SENSITIVE, GetAttribute(s, k.private_key, CKA_PRIVATE_EXPONENT).rv);
      EXPECT_RV(CKR_ATTRIBUTE_TYPE_INVALID, GetAttribute(s, k.private_key, CKA_EC_POINT).rv);
    } else {
      EXPECT_EQ(AsUlong(GetAttribute(s, k.private_key, CKA_KEY_TYPE).value), CKK_EC);
      const ByteView params = GetCurveInfo(k.spec.curve).params_der;
      EXPECT_EQ(GetAttribute(s, k.private_key, CKA_EC_PARAMS).value,
                Bytes(params.begin(), params.end()));
      // A DER OCTET STRING around the uncompressed point, on both keys (F2).
      for (CK_OBJECT_HANDLE h : {k.private_key, k.public_key}) {
        auto point = UnwrapEcPointOctetString(GetAttribute(s, h, CKA_EC_POINT).value);
        ASSERT_OK(point);
        EXPECT_EQ(*point, k.key->EcPoint());
      }
      EXPECT_RV(CKR_ATTRIBUTE_SENSITIVE, GetAttribute(s, k.private_key, CKA_VALUE).rv);
    }
  }
  // The CA certificates: category authority, each once, never trusted.
  CK_OBJECT_CLASS cert_class = CKO_CERTIFICATE;
  CK_ULONG authority = CK_CERTIFICATE_CATEGORY_AUTHORITY;
  auto cas = Find(s, {{CKA_CLASS, &cert_class, sizeof cert_class},
                      {CKA_CERTIFICATE_CATEGORY, &authority, sizeof authority}});
  ASSERT_EQ(cas.size(), 2u);
  std::set<std::string> ca_labels;
  for (CK_OBJECT_HANDLE h : cas) {
    Bytes l = GetAttribute(s, h, CKA_LABEL).value;
    ca_labels.insert(std::string(l.begin(), l.end()));
    Certificate ca = Certificate::FromDer(GetAttribute(s, h, CKA_VALUE).value).value();
    EXPECT_TRUE(ca.IsCa());
    EXPECT_EQ(GetAttribute(s, h, CKA_ID).value, ca.Sha1Thumbprint());
  }
  EXPECT_EQ(ca_labels, (std::set<std::string>{"Signum Harness Demo Code Signing CA",
                                              "Signum Harness Demo Root CA"}));
  // The leaf chains to them (what jarsigner needs from the token, F6).
  const Key& leaf = keys["rsa-2048"];
  std::vector<Certificate> chain;
  for (CK_OBJECT_HANDLE h : cas)
    chain.push_back(Certificate::FromDer(GetAttribute(s, h, CKA_VALUE).value).value());
  const Certificate root =
      Certificate::FromPem(*ReadFile(deployment_->root() + "/ca/root.pem")).value();
  EXPECT_OK(VerifyCertificateChain(*leaf.cert, chain, {root}, true));
}

TEST_F(ProviderE2eTest, FindTemplatesRealToolsUse) {
  Initialized init;
  CK_SESSION_HANDLE s = OpenSession();
  auto keys = LoadKeys(s);
  ASSERT_EQ(keys.size(), 6u);
  const Key& k = keys["ec-p384"];
  CK_OBJECT_CLASS priv = CKO_PRIVATE_KEY, pub = CKO_PUBLIC_KEY, cert = CKO_CERTIFICATE;
  CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
  std::string label = "ec-p384";
  // class only (libp11, NSS, SunPKCS11)
  EXPECT_EQ(Find(s, {{CKA_CLASS, &priv, sizeof priv}}).size(), 6u);
  EXPECT_EQ(Find(s, {{CKA_CLASS, &pub, sizeof pub}}).size(), 6u);
  EXPECT_EQ(Find(s, {{CKA_CLASS, &cert, sizeof cert}}).size(), 8u);
  // class + id (SunPKCS11, pkcs11-tool, gnupg-pkcs11-scd)
  EXPECT_EQ(Find(s, {{CKA_CLASS, &priv, sizeof priv},
                     {CKA_ID, const_cast<uint8_t*>(k.id.data()), k.id.size()}}),
            std::vector<CK_OBJECT_HANDLE>{k.private_key});
  // class + label (NSS), label only (F21: all three)
  EXPECT_EQ(Find(s, {{CKA_CLASS, &cert, sizeof cert}, {CKA_LABEL, label.data(), label.size()}}),
            std::vector<CK_OBJECT_HANDLE>{k.certificate});
  EXPECT_EQ(Find(s, {{CKA_LABEL, label.data(), label.size()}}),
            (std::vector<CK_OBJECT_HANDLE>{k.certificate, k.public_key, k.private_key}));
  // class + CKA_TOKEN (SunPKCS11, NSS)
  EXPECT_EQ(Find(s, {{CKA_CLASS, &priv, sizeof priv}, {CKA_TOKEN, &yes, 1}}).size(), 6u);
  EXPECT_TRUE(Find(s, {{CKA_CLASS, &priv, sizeof priv}, {CKA_TOKEN, &no, 1}}).empty());
  // class + id + CKA_SIGN
  EXPECT_EQ(Find(s, {{CKA_CLASS, &priv, sizeof priv},
                     {CKA_ID, const_cast<uint8_t*>(k.id.data()), k.id.size()},
                     {CKA_SIGN, &yes, 1}}),
            std::vector<CK_OBJECT_HANDLE>{k.private_key});
  EXPECT_TRUE(Find(s, {{CKA_CLASS, &pub, sizeof pub}, {CKA_SIGN, &yes, 1}}).empty());
  // NSS vendor classes and attributes, CKO_PROFILE: nothing.
  CK_OBJECT_CLASS trust = CKO_NSS_TRUST, builtin = CKO_NSS_BUILTIN_ROOT_LIST, profile = CKO_PROFILE;
  EXPECT_TRUE(Find(s, {{CKA_CLASS, &trust, sizeof trust}}).empty());
  EXPECT_TRUE(Find(s, {{CKA_CLASS, &builtin, sizeof builtin}}).empty());
  EXPECT_TRUE(Find(s, {{CKA_CLASS, &profile, sizeof profile}}).empty());
  Bytes sha1 = Digest(HashAlgorithm::kSha1, k.cert->Der());
  EXPECT_TRUE(Find(s, {{CKA_CERT_SHA1_HASH, sha1.data(), sha1.size()}}).empty());
  // {CKA_VALUE = <DER>} (NSS): the certificate only.
  Bytes der = k.cert->Der();
  EXPECT_EQ(Find(s, {{CKA_VALUE, der.data(), der.size()}}),
            std::vector<CK_OBJECT_HANDLE>{k.certificate});
  // A search over everything, fetched in one call.
  ASSERT_RV(CKR_OK, F()->C_FindObjectsInit(s, nullptr, 0));
  std::vector<CK_OBJECT_HANDLE> many(100);
  CK_ULONG n = 0;
  ASSERT_RV(CKR_OK, F()->C_FindObjects(s, many.data(), many.size(), &n));
  EXPECT_EQ(n, 20u);
  EXPECT_RV(CKR_OPERATION_ACTIVE, F()->C_FindObjectsInit(s, nullptr, 0));
  EXPECT_RV(CKR_OK, F()->C_FindObjectsFinal(s));
  EXPECT_RV(CKR_OPERATION_NOT_INITIALIZED, F()->C_FindObjectsFinal(s));
}

TEST_F(ProviderE2eTest, GetAttributeValueFillsEverythingAndReportsOneError) {
  Initialized init;
  CK_SESSION_HANDLE s = OpenSession();
  auto keys = LoadKeys(s);
  const Key& k = keys["rsa-2048"];
  char label[64];
  uint8_t modulus_short[8];
  CK_ATTRIBUTE mixed[] = {
      {CKA_LABEL, label, sizeof label},                    // fits
      {CKA_PRIVATE_EXPONENT, nullptr, 0},                  // sensitive
      {CKA_VENDOR_DEFINED | 0x4242, nullptr, 0},           // invalid
      {CKA_MODULUS, modulus_short, sizeof modulus_short},  // too small
      {CKA_ID, nullptr, 0},                                // length query
  };
  // Several cases apply; sensitive wins (module's documented order), and all are processed (F23).
  EXPECT_RV(CKR_ATTRIBUTE_SENSITIVE, F()->C_GetAttributeValue(s, k.private_key, mixed, 5));
  EXPECT_EQ(std::string(label, mixed[0].ulValueLen), "rsa-2048");
  EXPECT_EQ(mixed[1].ulValueLen, CK_UNAVAILABLE_INFORMATION);
  EXPECT_EQ(mixed[2].ulValueLen, CK_UNAVAILABLE_INFORMATION);
  EXPECT_EQ(mixed[3].ulValueLen, CK_UNAVAILABLE_INFORMATION);
  EXPECT_EQ(mixed[4].ulValueLen, 20u);
  CK_ATTRIBUTE invalid_and_short[] = {{CKA_VENDOR_DEFINED | 0x4242, nullptr, 0},
                                      {CKA_MODULUS, modulus_short, sizeof modulus_short},
                                      {CKA_CLASS, nullptr, 0}};
  EXPECT_RV(CKR_ATTRIBUTE_TYPE_INVALID,
            F()->C_GetAttributeValue(s, k.private_key, invalid_and_short, 3));
  EXPECT_EQ(invalid_and_short[2].ulValueLen, sizeof(CK_ULONG));
  CK_ATTRIBUTE only_short[] = {{CKA_MODULUS, modulus_short, sizeof modulus_short}};
  EXPECT_RV(CKR_BUFFER_TOO_SMALL, F()->C_GetAttributeValue(s, k.private_key, only_short, 1));
  EXPECT_EQ(only_short[0].ulValueLen, CK_UNAVAILABLE_INFORMATION);
  // libp11 reads CKA_ID straight into a 255-byte buffer.
  uint8_t id[255];
  CK_ATTRIBUTE direct{CKA_ID, id, sizeof id};
  EXPECT_RV(CKR_OK, F()->C_GetAttributeValue(s, k.private_key, &direct, 1));
  EXPECT_EQ(Bytes(id, id + direct.ulValueLen), k.id);
  CK_ULONG size = 0;
  EXPECT_RV(CKR_OK, F()->C_GetObjectSize(s, k.private_key, &size));
}

// --- Signing ------------------------------------------------------------------------------------

TEST_F(ProviderE2eTest, EveryKeyEveryMechanismEveryHashSignsAndVerifies) {
  Initialized init;
  CK_SESSION_HANDLE s = OpenSession();
  auto keys = LoadKeys(s);
  ASSERT_EQ(keys.size(), 6u);
  int verified = 0, rejected = 0;
  const Bytes data = B("the artifact being signed, hashed on the client");
  for (const auto& [label, k] : keys) {
    for (const HashInfo& h : AllHashes()) {
      const Bytes digest = Digest(h.algorithm, data);
      struct Case {
        std::string name;
        CK_MECHANISM mechanism;
        Bytes input;
        Expectation expect;
      };
      std::vector<Case> cases;
      CK_RSA_PKCS_PSS_PARAMS pss{h.ckm_digest, h.ckg_mgf, h.digest_size};
      if (k.spec.type == KeyType::kRsa) {
        cases.push_back({"CKM_RSA_PKCS",
                         {CKM_RSA_PKCS, nullptr, 0},
                         BuildDigestInfo(h.algorithm, digest).value(),
                         {SignatureScheme::kRsaPkcs1, h.algorithm, digest, std::nullopt}});
        cases.push_back({MechanismName(h.ckm_rsa_pkcs),
                         {h.ckm_rsa_pkcs, nullptr, 0},
                         data,
                         {SignatureScheme::kRsaPkcs1, h.algorithm, digest, std::nullopt}});
        cases.push_back({"CKM_RSA_PKCS_PSS",
                         {CKM_RSA_PKCS_PSS, &pss, sizeof pss},
                         digest,
                         {SignatureScheme::kRsaPss, h.algorithm, digest, h.digest_size}});
        cases.push_back({MechanismName(h.ckm_rsa_pss),
                         {h.ckm_rsa_pss, &pss, sizeof pss},
                         data,
                         {SignatureScheme::kRsaPss, h.algorithm, digest, h.digest_size}});
      } else {
        cases.push_back({"CKM_ECDSA",
                         {CKM_ECDSA, nullptr, 0},
                         digest,
                         {SignatureScheme::kEcdsa, h.algorithm, digest, std::nullopt}});
        cases.push_back({MechanismName(h.ckm_ecdsa),
                         {h.ckm_ecdsa, nullptr, 0},
                         data,
                         {SignatureScheme::kEcdsa, h.algorithm, digest, std::nullopt}});
      }
      for (Case& c : cases) {
        const std::string what = label + " " + c.name + " " + std::string(h.name);
        SignResult r = SignOnce(s, c.mechanism, k.private_key, c.input);
        if (!PolicyAllows(c.expect.scheme, h.algorithm)) {
          // Not offered on the list (the policy's pairs): a hash-and-sign mechanism is refused at
          // C_SignInit, raw PSS there too by its hashAlg; the hash inside a raw PKCS#1 or ECDSA
          // input only the server can judge, and its policy refusal maps to
          // CKR_FUNCTION_REJECTED (docs/pkcs11-provider.md).
          const CK_MECHANISM_TYPE m = c.mechanism.mechanism;
          const CK_RV expected = m == CKM_RSA_PKCS_PSS          ? CKR_MECHANISM_PARAM_INVALID
                                 : m == CKM_RSA_PKCS || m == CKM_ECDSA ? CKR_FUNCTION_REJECTED
                                                                      : CKR_MECHANISM_INVALID;
          EXPECT_RV(expected, r.rv) << what;
          ++rejected;
          continue;
        }
        ASSERT_RV(CKR_OK, r.rv) << what;
        ExpectVerifies(k, c.expect, r.signature, what);
        ++verified;
      }
    }
  }
  // RSA: 3 keys x 5 hashes x 4 mechanisms; EC: 3 x 5 x 2; SHA-1 only with PKCS#1 v1.5.
  EXPECT_EQ(verified + rejected, 3 * 5 * 4 + 3 * 5 * 2);
  EXPECT_EQ(rejected, 3 * 2 + 3 * 2);
}

TEST_F(ProviderE2eTest, EcdsaTakesInputsOfAnyLengthAndReturnsRawRs) {
  Initialized init;
  CK_SESSION_HANDLE s = OpenSession();
  auto keys = LoadKeys(s);
  CK_MECHANISM ecdsa{CKM_ECDSA, nullptr, 0};
  // jarsigner SHA512withECDSA on P-256: 64 bytes into a 256-bit curve.
  const Bytes sha512 = Digest(HashAlgorithm::kSha512, AsBytes("jar"));
  SignResult r = SignOnce(s, ecdsa, keys["ec-p256"].private_key, sha512);
  ASSERT_RV(CKR_OK, r.rv);
  EXPECT_EQ(r.signature.size(), 64u);  // raw r||s (F1)
  ExpectVerifies(keys["ec-p256"],
                 {SignatureScheme::kEcdsa, HashAlgorithm::kSha512, sha512, std::nullopt},
                 r.signature, "sha512 into P-256");
  // SHA-256 into P-384.
  const Bytes sha256 = Digest(HashAlgorithm::kSha256, AsBytes("jar"));
  r = SignOnce(s, ecdsa, keys["ec-p384"].private_key, sha256);
  ASSERT_RV(CKR_OK, r.rv);
  EXPECT_EQ(r.signature.size(), 96u);
  ExpectVerifies(keys["ec-p384"],
                 {SignatureScheme::kEcdsa, HashAlgorithm::kSha256, sha256, std::nullopt},
                 r.signature, "sha256 into P-384");
  // P-521: 132 bytes.
  r = SignOnce(s, ecdsa, keys["ec-p521"].private_key, sha512);
  ASSERT_RV(CKR_OK, r.rv);
  EXPECT_EQ(r.signature.size(), 132u);
  // 40 bytes (no hash has that length) into P-256: X9.62 truncation to the leftmost 32 bytes.
  Bytes forty(40);
  for (size_t i = 0; i < forty.size(); ++i) forty[i] = static_cast<uint8_t>(i * 7 + 1);
  r = SignOnce(s, ecdsa, keys["ec-p256"].private_key, forty);
  ASSERT_RV(CKR_OK, r.rv);
  ExpectVerifies(keys["ec-p256"],
                 {SignatureScheme::kEcdsa, HashAlgorithm::kSha256,
                  Bytes(forty.begin(), forty.begin() + 32), std::nullopt},
                 r.signature, "40 bytes into P-256");
  // 10 bytes: left-padded to SHA-224's length, same integer.
  Bytes ten(10, 0x9c);
  r = SignOnce(s, ecdsa, keys["ec-p256"].private_key, ten);
  ASSERT_RV(CKR_OK, r.rv);
  Bytes padded(18, 0);
  padded.insert(padded.end(), ten.begin(), ten.end());
  ExpectVerifies(keys["ec-p256"],
                 {SignatureScheme::kEcdsa, HashAlgorithm::kSha224, padded, std::nullopt},
                 r.signature, "10 bytes into P-256");
  // Nothing to sign, or more than P-521 can take: CKR_DATA_LEN_RANGE.
  EXPECT_RV(CKR_DATA_LEN_RANGE, SignOnce(s, ecdsa, keys["ec-p256"].private_key, Bytes{}).rv);
  EXPECT_RV(CKR_DATA_LEN_RANGE, SignOnce(s, ecdsa, keys["ec-p521"].private_key, Bytes(66, 1)).rv);
  // Many signatures in a row: every one has the fixed length (leading zero bytes kept).
  for (int i = 0; i < 30; ++i) {
    Bytes d = Digest(HashAlgorithm::kSha256, AsBytes("round " + std::to_string(i)));
    r = SignOnce(s, ecdsa, keys["ec-p256"].private_key, d);
    ASSERT_RV(CKR_OK, r.rv);
    ASSERT_EQ(r.signature.size(), 64u);
    ExpectVerifies(keys["ec-p256"],
                   {SignatureScheme::kEcdsa, HashAlgorithm::kSha256, d, std::nullopt}, r.signature,
                   "round " + std::to_string(i));
  }
}

TEST_F(ProviderE2eTest, MultiPartSigningInChunksEqualsSinglePart) {
  Initialized init;
  CK_SESSION_HANDLE s = OpenSession();
  auto keys = LoadKeys(s);
  Bytes data(3 * 1024 * 1024 + 17);
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<uint8_t>((i * 131) ^ (i >> 8));
  const Key& rsa = keys["rsa-3072"];
  const Key& ec = keys["ec-p384"];
  for (size_t chunk : {size_t{0}, size_t{1}, size_t{63}, size_t{64}, size_t{1024 * 1024}}) {
    // Chunk size 0 = zero-length updates between 4 KiB ones; small chunks over a smaller input.
    const size_t total = chunk >= 64 * 1024 ? data.size() : 100000;
    const ByteView input(data.data(), total);
    for (const auto& [k, mech, scheme] :
         {std::tuple<const Key*, CK_MECHANISM_TYPE, SignatureScheme>{&rsa, CKM_SHA256_RSA_PKCS,
                                                                     SignatureScheme::kRsaPkcs1},
          {&ec, CKM_ECDSA_SHA384, SignatureScheme::kEcdsa}}) {
      const std::string what = MechanismName(mech) + " chunk " + std::to_string(chunk);
      CK_MECHANISM m{mech, nullptr, 0};
      ASSERT_RV(CKR_OK, F()->C_SignInit(s, &m, k->private_key)) << what;
      size_t pos = 0;
      while (pos < total) {
        const size_t n =
            chunk == 0 ? std::min<size_t>(4096, total - pos) : std::min(chunk, total - pos);
        if (chunk == 0) {
          ASSERT_RV(CKR_OK, F()->C_SignUpdate(s, nullptr, 0)) << what;
        }
        ASSERT_RV(CKR_OK, F()->C_SignUpdate(s, const_cast<uint8_t*>(input.data()) + pos, n))
            << what;
        pos += n;
      }
      Bytes sig(k->spec.SignatureSize());
      CK_ULONG len = sig.size();
      ASSERT_RV(CKR_OK, F()->C_SignFinal(s, sig.data(), &len)) << what;
      sig.resize(len);
      const HashAlgorithm hash =
          mech == CKM_SHA256_RSA_PKCS ? HashAlgorithm::kSha256 : HashAlgorithm::kSha384;
      const Bytes digest = Digest(hash, input);
      ExpectVerifies(*k, {scheme, hash, digest, std::nullopt}, sig, what);
      if (scheme == SignatureScheme::kRsaPkcs1) {
        // PKCS#1 v1.5 is deterministic: multi-part equals single-part.
        SignResult single = SignOnce(s, m, k->private_key, Bytes(input.begin(), input.end()));
        ASSERT_RV(CKR_OK, single.rv);
        EXPECT_EQ(single.signature, sig) << what;
      }
    }
  }
  // Raw mechanisms collect multi-part input: a DigestInfo in pieces.
  const Bytes digest = Digest(HashAlgorithm::kSha512, AsBytes("pieces"));
  const Bytes info = BuildDigestInfo(HashAlgorithm::kSha512, digest).value();
  CK_MECHANISM raw{CKM_RSA_PKCS, nullptr, 0};
  ASSERT_RV(CKR_OK, F()->C_SignInit(s, &raw, rsa.private_key));
  ASSERT_RV(CKR_OK, F()->C_SignUpdate(s, const_cast<uint8_t*>(info.data()), 19));
  ASSERT_RV(CKR_OK, F()->C_SignUpdate(s, const_cast<uint8_t*>(info.data()) + 19, info.size() - 19));
  Bytes sig(384);
  CK_ULONG len = sig.size();
  ASSERT_RV(CKR_OK, F()->C_SignFinal(s, sig.data(), &len));
  ExpectVerifies(rsa, {SignatureScheme::kRsaPkcs1, HashAlgorithm::kSha512, digest, std::nullopt},
                 sig, "CKM_RSA_PKCS multi-part");
  // C_Sign cannot finish a multi-part operation.
  ASSERT_RV(CKR_OK, F()->C_SignInit(s, &raw, rsa.private_key));
  ASSERT_RV(CKR_OK, F()->C_SignUpdate(s, const_cast<uint8_t*>(info.data()), 10));
  EXPECT_RV(CKR_OPERATION_NOT_INITIALIZED,
            F()->C_Sign(s, const_cast<uint8_t*>(info.data()), info.size(), sig.data(), &len));
  EXPECT_RV(CKR_OPERATION_NOT_INITIALIZED, F()->C_SignFinal(s, sig.data(), &len));
}

TEST_F(ProviderE2eTest, LengthQueriesKeepTheOperationAndErrorsEndIt) {
  Initialized init;
  CK_SESSION_HANDLE s = OpenSession();
  auto keys = LoadKeys(s);
  const Key& k = keys["rsa-4096"];
  const Bytes digest = Digest(HashAlgorithm::kSha256, AsBytes("length"));
  Bytes info = BuildDigestInfo(HashAlgorithm::kSha256, digest).value();
  CK_MECHANISM m{CKM_RSA_PKCS, nullptr, 0};
  // C_Sign: NULL buffer -> length, OK; short buffer -> BUFFER_TOO_SMALL + length; then OK (F7).
  ASSERT_RV(CKR_OK, F()->C_SignInit(s, &m, k.private_key));
  CK_ULONG len = 0;
  ASSERT_RV(CKR_OK, F()->C_Sign(s, info.data(), info.size(), nullptr, &len));
  EXPECT_EQ(len, 512u);
  // A probe with no data at all (OpenSSL 3 + libp11, F9) also just answers the length.
  len = 0;
  ASSERT_RV(CKR_OK, F()->C_Sign(s, nullptr, 0, nullptr, &len));
  EXPECT_EQ(len, 512u);
  Bytes sig(100);
  len = sig.size();
  EXPECT_RV(CKR_BUFFER_TOO_SMALL, F()->C_Sign(s, info.data(), info.size(), sig.data(), &len));
  EXPECT_EQ(len, 512u);
  sig.resize(len);
  ASSERT_RV(CKR_OK, F()->C_Sign(s, info.data(), info.size(), sig.data(), &len));
  ExpectVerifies(k, {SignatureScheme::kRsaPkcs1, HashAlgorithm::kSha256, digest, std::nullopt}, sig,
                 "after queries");
  // Success ended it.
  EXPECT_RV(CKR_OPERATION_NOT_INITIALIZED,
            F()->C_Sign(s, info.data(), info.size(), sig.data(), &len));
  // The same protocol for C_SignFinal.
  CK_MECHANISM hashing{CKM_SHA384_RSA_PKCS, nullptr, 0};
  ASSERT_RV(CKR_OK, F()->C_SignInit(s, &hashing, k.private_key));
  ASSERT_RV(CKR_OK, F()->C_SignUpdate(s, info.data(), info.size()));
  len = 0;
  ASSERT_RV(CKR_OK, F()->C_SignFinal(s, nullptr, &len));
  EXPECT_EQ(len, 512u);
  len = 511;
  EXPECT_RV(CKR_BUFFER_TOO_SMALL, F()->C_SignFinal(s, sig.data(), &len));
  EXPECT_EQ(len, 512u);
  ASSERT_RV(CKR_OK, F()->C_SignFinal(s, sig.data(), &len));
  ExpectVerifies(k,
                 {SignatureScheme::kRsaPkcs1, HashAlgorithm::kSha384,
                  Digest(HashAlgorithm::kSha384, info), std::nullopt},
                 sig, "SignFinal after queries");
  EXPECT_RV(CKR_OPERATION_NOT_INITIALIZED, F()->C_SignFinal(s, sig.data(), &len));

  // A second C_SignInit while one is active is refused and the first one survives.
  ASSERT_RV(CKR_OK, F()->C_SignInit(s, &m, k.private_key));
  EXPECT_RV(CKR_OPERATION_ACTIVE, F()->C_SignInit(s, &m, k.private_key));
  len = sig.size();
  ASSERT_RV(CKR_OK, F()->C_Sign(s, info.data(), info.size(), sig.data(), &len));
  // Any other error ends the operation, and a new C_SignInit works (F8).
  ASSERT_RV(CKR_OK, F()->C_SignInit(s, &m, k.private_key));
  Bytes not_digest_info(51, 0x30);
  EXPECT_RV(CKR_DATA_INVALID,
            F()->C_Sign(s, not_digest_info.data(), not_digest_info.size(), sig.data(), &len));
  EXPECT_RV(CKR_OPERATION_NOT_INITIALIZED,
            F()->C_Sign(s, info.data(), info.size(), sig.data(), &len));
  ASSERT_RV(CKR_OK, F()->C_SignInit(s, &m, k.private_key));
  Bytes too_long(512 - 10, 1);
  EXPECT_RV(CKR_DATA_LEN_RANGE, F()->C_Sign(s, too_long.data(), too_long.size(), sig.data(), &len));
  ASSERT_RV(CKR_OK, F()->C_SignInit(s, &m, k.private_key));
  EXPECT_RV(CKR_ARGUMENTS_BAD, F()->C_Sign(s, info.data(), info.size(), sig.data(), nullptr));
  EXPECT_RV(CKR_OPERATION_NOT_INITIALIZED,
            F()->C_Sign(s, info.data(), info.size(), sig.data(), &len));
  ASSERT_RV(CKR_OK, F()->C_SignInit(s, &m, k.private_key));
  EXPECT_RV(CKR_ARGUMENTS_BAD, F()->C_Sign(s, nullptr, 20, sig.data(), &len));
  ASSERT_RV(CKR_OK, F()->C_SignInit(s, &m, k.private_key));
  EXPECT_RV(CKR_ARGUMENTS_BAD, F()->C_SignUpdate(s, nullptr, 20));
  EXPECT_RV(CKR_OPERATION_NOT_INITIALIZED, F()->C_SignFinal(s, sig.data(), &len));
  // C_SessionCancel (3.0) ends it too.
  ASSERT_RV(CKR_OK, F()->C_SignInit(s, &m, k.private_key));
  ASSERT_RV(CKR_OK, F()->C_SessionCancel(s, CKF_SIGN));
  ASSERT_RV(CKR_OK, F()->C_SignInit(s, &m, k.private_key));
  EXPECT_RV(CKR_OK, F()->C_Sign(s, info.data(), info.size(), sig.data(), &len));
  // Keys and mechanisms that do not go together.
  CK_MECHANISM ecdsa{CKM_ECDSA, nullptr, 0};
  EXPECT_RV(CKR_KEY_TYPE_INCONSISTENT, F()->C_SignInit(s, &ecdsa, k.private_key));
  EXPECT_RV(CKR_KEY_FUNCTION_NOT_PERMITTED, F()->C_SignInit(s, &m, k.public_key));
  EXPECT_RV(CKR_KEY_HANDLE_INVALID, F()->C_SignInit(s, &m, k.certificate));
  CK_MECHANISM x509{CKM_RSA_X_509, nullptr, 0};
  EXPECT_RV(CKR_MECHANISM_INVALID, F()->C_SignInit(s, &x509, k.private_key));
}

TEST_F(ProviderE2eTest, PssParametersAreCheckedAtSignInit) {
  Initialized init;
  CK_SESSION_HANDLE s = OpenSession();
  auto keys = LoadKeys(s);
  const Key& k = keys["rsa-2048"];
  const Bytes digest = Digest(HashAlgorithm::kSha256, AsBytes("pss"));
  CK_RSA_PKCS_PSS_PARAMS p{CKM_SHA256, CKG_MGF1_SHA256, 222};  // openssl cms: the maximum salt
  SignResult r = SignOnce(s, {CKM_RSA_PKCS_PSS, &p, sizeof p}, k.private_key, digest);
  ASSERT_RV(CKR_OK, r.rv);
  ExpectVerifies(k, {SignatureScheme::kRsaPss, HashAlgorithm::kSha256, digest, 222}, r.signature,
                 "sLen 222");
  p.sLen = 0;
  r = SignOnce(s, {CKM_RSA_PKCS_PSS, &p, sizeof p}, k.private_key, digest);
  ASSERT_RV(CKR_OK, r.rv);
  ExpectVerifies(k, {SignatureScheme::kRsaPss, HashAlgorithm::kSha256, digest, 0}, r.signature,
                 "sLen 0");
  p.sLen = 223;
  EXPECT_RV(CKR_MECHANISM_PARAM_INVALID,
            SignOnce(s, {CKM_RSA_PKCS_PSS, &p, sizeof p}, k.private_key, digest).rv);
  CK_RSA_PKCS_PSS_PARAMS mgf{CKM_SHA256, CKG_MGF1_SHA1, 32};
  EXPECT_RV(CKR_MECHANISM_PARAM_INVALID,
            SignOnce(s, {CKM_RSA_PKCS_PSS, &mgf, sizeof mgf}, k.private_key, digest).rv);
  CK_RSA_PKCS_PSS_PARAMS other{CKM_SHA512, CKG_MGF1_SHA512, 64};
  EXPECT_RV(CKR_MECHANISM_PARAM_INVALID,
            SignOnce(s, {CKM_SHA256_RSA_PKCS_PSS, &other, sizeof other}, k.private_key, digest).rv);
  CK_RSA_PKCS_PSS_PARAMS ok{CKM_SHA256, CKG_MGF1_SHA256, 32};
  EXPECT_RV(CKR_MECHANISM_PARAM_INVALID,
            SignOnce(s, {CKM_RSA_PKCS_PSS, &ok, sizeof ok + 1}, k.private_key, digest).rv);
  // hashAlg must match the input length.
  EXPECT_RV(CKR_DATA_LEN_RANGE,
            SignOnce(s, {CKM_RSA_PKCS_PSS, &ok, sizeof ok}, k.private_key, Bytes(48, 1)).rv);
}

// Hash on the token (C_Digest*), then sign that digest with raw CKM_RSA_PKCS_PSS, both operations
// active in one session; the signature verifies over the original data's digest.
TEST_F(ProviderE2eTest, DigestOnTheTokenThenSignTheDigestWithRawPss) {
  Initialized init;
  CK_SESSION_HANDLE s = OpenSession();
  auto keys = LoadKeys(s);
  const Key& k = keys["rsa-2048"];
  ASSERT_NE(k.private_key, 0u);
  Bytes data = B("jar manifest digest");
  CK_MECHANISM sha256{CKM_SHA256, nullptr, 0};
  ASSERT_RV(CKR_OK, F()->C_DigestInit(s, &sha256));
  CK_RSA_PKCS_PSS_PARAMS p{CKM_SHA256, CKG_MGF1_SHA256, 32};
  CK_MECHANISM pss{CKM_RSA_PKCS_PSS, &p, sizeof p};
  ASSERT_RV(CKR_OK, F()->C_SignInit(s, &pss, k.private_key));
  ASSERT_RV(CKR_OK, F()->C_DigestUpdate(s, data.data(), data.size()));
  Bytes digest(32);
  CK_ULONG len = digest.size();
  ASSERT_RV(CKR_OK, F()->C_DigestFinal(s, digest.data(), &len));
  EXPECT_EQ(digest, Digest(HashAlgorithm::kSha256, data));
  Bytes signature(256);
  len = signature.size();
  ASSERT_RV(CKR_OK, F()->C_Sign(s, digest.data(), digest.size(), signature.data(), &len));
  signature.resize(len);
  ExpectVerifies(k, {SignatureScheme::kRsaPss, HashAlgorithm::kSha256, digest, 32}, signature,
                 "digest on the token, then CKM_RSA_PKCS_PSS");

  // The token's keys are key pairs: nothing it holds can be fed into a digest.
  ASSERT_RV(CKR_OK, F()->C_DigestInit(s, &sha256));
  EXPECT_RV(CKR_KEY_INDIGESTIBLE, F()->C_DigestKey(s, k.private_key));
  len = digest.size();
  EXPECT_RV(CKR_OPERATION_NOT_INITIALIZED, F()->C_DigestFinal(s, digest.data(), &len));
  ASSERT_RV(CKR_OK, F()->C_DigestInit(s, &sha256));
  EXPECT_RV(CKR_KEY_INDIGESTIBLE, F()->C_DigestKey(s, k.public_key));
  ASSERT_RV(CKR_OK, F()->C_DigestInit(s, &sha256));
  EXPECT_RV(CKR_KEY_HANDLE_INVALID, F()->C_DigestKey(s, k.certificate));
  // A digest mechanism does not sign.
  EXPECT_RV(CKR_MECHANISM_INVALID, F()->C_SignInit(s, &sha256, k.private_key));
}

TEST_F(ProviderE2eTest, LocalVerificationAcceptsOurSignaturesAndRejectsOthers) {
  Initialized init;
  CK_SESSION_HANDLE s = OpenSession();
  auto keys = LoadKeys(s);
  for (const char* label : {"rsa-2048", "ec-p256"}) {
    const Key& k = keys[label];
    const Bytes data = B("verify me");
    CK_MECHANISM m{k.spec.type == KeyType::kRsa ? CKM_SHA256_RSA_PKCS : CKM_ECDSA_SHA256, nullptr,
                   0};
    SignResult r = SignOnce(s, m, k.private_key, data);
    ASSERT_RV(CKR_OK, r.rv);
    ASSERT_RV(CKR_OK, F()->C_VerifyInit(s, &m, k.public_key));
    EXPECT_RV(CKR_OK, F()->C_Verify(s, const_cast<uint8_t*>(data.data()), data.size(),
                                    r.signature.data(), r.signature.size()));
    Bytes bad = r.signature;
    bad[bad.size() / 2] ^= 1;
    ASSERT_RV(CKR_OK, F()->C_VerifyInit(s, &m, k.public_key));
    EXPECT_RV(CKR_SIGNATURE_INVALID, F()->C_Verify(s, const_cast<uint8_t*>(data.data()),
                                                   data.size(), bad.data(), bad.size()));
    ASSERT_RV(CKR_OK, F()->C_VerifyInit(s, &m, k.public_key));
    EXPECT_RV(CKR_SIGNATURE_LEN_RANGE, F()->C_Verify(s, const_cast<uint8_t*>(data.data()),
                                                     data.size(), bad.data(), bad.size() - 1));
    // Multi-part.
    ASSERT_RV(CKR_OK, F()->C_VerifyInit(s, &m, k.public_key));
    ASSERT_RV(CKR_OK, F()->C_VerifyUpdate(s, const_cast<uint8_t*>(data.data()), 2));
    ASSERT_RV(CKR_OK,
              F()->C_VerifyUpdate(s, const_cast<uint8_t*>(data.data()) + 2, data.size() - 2));
    EXPECT_RV(CKR_OK, F()->C_VerifyFinal(s, r.signature.data(), r.signature.size()));
    EXPECT_RV(CKR_KEY_FUNCTION_NOT_PERMITTED, F()->C_VerifyInit(s, &m, k.private_key));
  }
}

TEST_F(ProviderE2eTest, NullArgumentsDuringOperationsAreArgumentsBadAndEndThem) {
  Initialized init;
  CK_SESSION_HANDLE s = OpenSession();
  auto keys = LoadKeys(s);
  const Key& k = keys["ec-p256"];
  CK_MECHANISM m{CKM_ECDSA_SHA256, nullptr, 0};
  Bytes sig(64);
  CK_ULONG len = sig.size();
  ASSERT_RV(CKR_OK, F()->C_SignInit(s, &m, k.private_key));
  ASSERT_RV(CKR_OK, F()->C_SignUpdate(s, sig.data(), 10));
  EXPECT_RV(CKR_ARGUMENTS_BAD, F()->C_SignFinal(s, sig.data(), nullptr));
  EXPECT_RV(CKR_OPERATION_NOT_INITIALIZED, F()->C_SignFinal(s, sig.data(), &len));
  ASSERT_RV(CKR_OK, F()->C_VerifyInit(s, &m, k.public_key));
  EXPECT_RV(CKR_ARGUMENTS_BAD, F()->C_Verify(s, sig.data(), 10, nullptr, 64));
  EXPECT_RV(CKR_OPERATION_NOT_INITIALIZED, F()->C_Verify(s, sig.data(), 10, sig.data(), 64));
  ASSERT_RV(CKR_OK, F()->C_VerifyInit(s, &m, k.public_key));
  EXPECT_RV(CKR_ARGUMENTS_BAD, F()->C_Verify(s, nullptr, 10, sig.data(), 64));
  ASSERT_RV(CKR_OK, F()->C_VerifyInit(s, &m, k.public_key));
  EXPECT_RV(CKR_ARGUMENTS_BAD, F()->C_VerifyUpdate(s, nullptr, 10));
  EXPECT_RV(CKR_OPERATION_NOT_INITIALIZED, F()->C_VerifyFinal(s, sig.data(), 64));
  ASSERT_RV(CKR_OK, F()->C_VerifyInit(s, &m, k.public_key));
  EXPECT_RV(CKR_ARGUMENTS_BAD, F()->C_VerifyFinal(s, nullptr, 64));
  EXPECT_RV(CKR_OPERATION_NOT_INITIALIZED, F()->C_VerifyFinal(s, sig.data(), 64));
  // Object functions with real handles and NULL outputs.
  EXPECT_RV(CKR_ARGUMENTS_BAD, F()->C_GetAttributeValue(s, k.private_key, nullptr, 3));
  EXPECT_RV(CKR_ARGUMENTS_BAD, F()->C_GetObjectSize(s, k.private_key, nullptr));
  EXPECT_RV(CKR_ARGUMENTS_BAD, F()->C_CopyObject(s, k.private_key, nullptr, 0, nullptr));
  CK_OBJECT_HANDLE copy;
  EXPECT_RV(CKR_SESSION_READ_ONLY, F()->C_CopyObject(s, k.private_key, nullptr, 0, &copy));
  EXPECT_RV(CKR_SESSION_READ_ONLY, F()->C_DestroyObject(s, k.private_key));
  CK_SESSION_HANDLE rw = OpenSession(true);
  EXPECT_RV(CKR_TOKEN_WRITE_PROTECTED, F()->C_DestroyObject(rw, k.private_key));
  CK_BBOOL no = CK_FALSE;
  CK_ATTRIBUTE set{CKA_SIGN, &no, 1};
  EXPECT_RV(CKR_TOKEN_WRITE_PROTECTED, F()->C_SetAttributeValue(rw, k.private_key, &set, 1));
}

// --- Login modes ---------------------------------------------------------------------------------

TEST_F(ProviderE2eTest, CheckedPinModeHidesPrivateKeysUntilLogin) {
  ScopedEnv pin("SIGNUM_PKCS11_PIN", "4711-signum");
  Initialized init;
  CK_SESSION_HANDLE s = OpenSession();
  CK_OBJECT_CLASS priv = CKO_PRIVATE_KEY, pub = CKO_PUBLIC_KEY;
  EXPECT_TRUE(Find(s, {{CKA_CLASS, &priv, sizeof priv}}).empty());
  auto pubs = Find(s, {{CKA_CLASS, &pub, sizeof pub}});
  EXPECT_EQ(pubs.size(), 6u);
  EXPECT_EQ(Find(s, {}).size(), 6u * 2u + 2u);
  auto wrong = reinterpret_cast<CK_UTF8CHAR_PTR>(const_cast<char*>("4711-signun"));
  auto right = reinterpret_cast<CK_UTF8CHAR_PTR>(const_cast<char*>("4711-signum"));
  EXPECT_RV(CKR_PIN_INCORRECT, F()->C_Login(s, CKU_USER, wrong, 11));
  ASSERT_RV(CKR_OK, F()->C_Login(s, CKU_USER, right, 11));
  auto keys = LoadKeys(s);
  ASSERT_EQ(keys.size(), 6u);
  const Key& k = keys["ec-p384"];
  EXPECT_EQ(GetAttribute(s, k.private_key, CKA_PRIVATE).value, Bytes{CK_TRUE});
  EXPECT_EQ(GetAttribute(s, k.public_key, CKA_PRIVATE).value, Bytes{CK_FALSE});
  const Bytes digest = Digest(HashAlgorithm::kSha384, AsBytes("checked"));
  CK_MECHANISM m{CKM_ECDSA, nullptr, 0};
  // Context-specific login during an operation: accepted (PIN checked), the operation goes on.
  ASSERT_RV(CKR_OK, F()->C_SignInit(s, &m, k.private_key));
  EXPECT_RV(CKR_PIN_INCORRECT, F()->C_Login(s, CKU_CONTEXT_SPECIFIC, wrong, 11));
  EXPECT_RV(CKR_OK, F()->C_Login(s, CKU_CONTEXT_SPECIFIC, right, 11));
  Bytes sig(96);
  CK_ULONG len = sig.size();
  ASSERT_RV(CKR_OK,
            F()->C_Sign(s, const_cast<uint8_t*>(digest.data()), digest.size(), sig.data(), &len));
  ExpectVerifies(k, {SignatureScheme::kEcdsa, HashAlgorithm::kSha384, digest, std::nullopt}, sig,
                 "checked mode");
  // After logout the key is invisible again, and its handle says why.
  ASSERT_RV(CKR_OK, F()->C_Logout(s));
  EXPECT_TRUE(Find(s, {{CKA_CLASS, &priv, sizeof priv}}).empty());
  EXPECT_RV(CKR_OBJECT_HANDLE_INVALID, GetAttribute(s, k.private_key, CKA_LABEL).rv);
  EXPECT_RV(CKR_USER_NOT_LOGGED_IN, F()->C_SignInit(s, &m, k.private_key));
}

// --- Concurrency and fork -----------------------------------------------------------------------

TEST_F(ProviderE2eTest, SixteenThreadsSignConcurrently) {
  CK_C_INITIALIZE_ARGS args = OsLockingArgs();
  Initialized init(&args);
  CK_SESSION_HANDLE s = OpenSession();
  auto keys = LoadKeys(s);
  std::vector<const Key*> order;
  for (const auto& label : kLabels) order.push_back(&keys[label]);
  std::atomic<int> ok{0}, failed{0};
  std::vector<std::string> errors(16);
  std::vector<std::thread> threads;
  for (int t = 0; t < 16; ++t) {
    threads.emplace_back([&, t] {
      CK_SESSION_HANDLE mine;
      if (F()->C_OpenSession(1, CKF_SERIAL_SESSION, nullptr, nullptr, &mine) != CKR_OK) {
        ++failed;
        return;
      }
      for (int i = 0; i < 6; ++i) {
        const Key& k = *order[(t + i) % order.size()];
        const Bytes data = B("thread " + std::to_string(t) + " round " + std::to_string(i));
        CK_MECHANISM m{k.spec.type == KeyType::kRsa ? CKM_SHA256_RSA_PKCS : CKM_ECDSA_SHA256,
                       nullptr, 0};
        SignResult r = SignOnce(mine, m, k.private_key, data);
        Status v = r.rv == CKR_OK ? VerifyDigestSignature(
                                        *k.key,
                                        k.spec.type == KeyType::kRsa ? SignatureScheme::kRsaPkcs1
                                                                     : SignatureScheme::kEcdsa,
                                        HashAlgorithm::kSha256,
                                        Digest(HashAlgorithm::kSha256, data), r.signature)
                                  : Status(ErrorCode::kInternal, CkRvName(r.rv));
        if (v.ok()) {
          ++ok;
        } else {
          ++failed;
          errors[t] = k.label + ": " + v.ToString();
        }
      }
      F()->C_CloseSession(mine);
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(failed.load(), 0);
  for (const auto& e : errors) EXPECT_TRUE(e.empty()) << e;
  EXPECT_EQ(ok.load(), 16 * 6);
}

int SignInChild() {
  int failures = 0;
  CK_INFO info;
  if (F()->C_GetInfo(&info) != CKR_CRYPTOKI_NOT_INITIALIZED) failures |= 1;
  if (F()->C_Initialize(nullptr) != CKR_OK) return failures | 2;
  CK_SESSION_HANDLE s;
  if (F()->C_OpenSession(1, CKF_SERIAL_SESSION, nullptr, nullptr, &s) != CKR_OK)
    return failures | 4;
  std::string label = "ec-p256";
  CK_OBJECT_CLASS priv = CKO_PRIVATE_KEY, cert = CKO_CERTIFICATE;
  CK_ATTRIBUTE by_label[] = {{CKA_CLASS, &priv, sizeof priv},
                             {CKA_LABEL, label.data(), label.size()}};
  CK_OBJECT_HANDLE key = 0, certificate = 0;
  CK_ULONG n = 0;
  if (F()->C_FindObjectsInit(s, by_label, 2) != CKR_OK ||
      F()->C_FindObjects(s, &key, 1, &n) != CKR_OK || n != 1) {
    return failures | 8;
  }
  F()->C_FindObjectsFinal(s);
  by_label[0].pValue = &cert;
  if (F()->C_FindObjectsInit(s, by_label, 2) != CKR_OK ||
      F()->C_FindObjects(s, &certificate, 1, &n) != CKR_OK || n != 1) {
    return failures | 8;
  }
  F()->C_FindObjectsFinal(s);
  const Bytes digest = Digest(HashAlgorithm::kSha256, AsBytes("child"));
  CK_MECHANISM m{CKM_ECDSA, nullptr, 0};
  Bytes sig(64);
  CK_ULONG len = sig.size();
  if (F()->C_SignInit(s, &m, key) != CKR_OK ||
      F()->C_Sign(s, const_cast<uint8_t*>(digest.data()), digest.size(), sig.data(), &len) !=
          CKR_OK) {
    return failures | 16;
  }
  auto der = GetAttribute(s, certificate, CKA_VALUE).value;
  auto pub = Certificate::FromDer(der)->GetPublicKey();
  if (!pub.ok() ||
      !VerifyDigestSignature(*pub, SignatureScheme::kEcdsa, HashAlgorithm::kSha256, digest, sig)
           .ok()) {
    failures |= 32;
  }
  if (F()->C_Finalize(nullptr) != CKR_OK) failures |= 64;
  return failures;
}

TEST_F(ProviderE2eTest, AForkedChildInitializesAndSignsWhileTheParentCarriesOn) {
  Initialized init;
  CK_SESSION_HANDLE s = OpenSession();
  auto keys = LoadKeys(s);
  const Key& k = keys["rsa-2048"];
  // Fork in the middle of a multi-part operation: the child cannot touch it, the parent finishes.
  CK_MECHANISM m{CKM_SHA256_RSA_PKCS, nullptr, 0};
  ASSERT_RV(CKR_OK, F()->C_SignInit(s, &m, k.private_key));
  Bytes part(1000, 0x41);
  ASSERT_RV(CKR_OK, F()->C_SignUpdate(s, part.data(), part.size()));
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) ::_exit(SignInChild());
  ASSERT_RV(CKR_OK, F()->C_SignUpdate(s, part.data(), part.size()));
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0) << "child failure bits " << WEXITSTATUS(status);
  Bytes sig(256);
  CK_ULONG len = sig.size();
  ASSERT_RV(CKR_OK, F()->C_SignFinal(s, sig.data(), &len));
  Bytes both = part;
  both.insert(both.end(), part.begin(), part.end());
  ExpectVerifies(k,
                 {SignatureScheme::kRsaPkcs1, HashAlgorithm::kSha256,
                  Digest(HashAlgorithm::kSha256, both), std::nullopt},
                 sig, "parent after fork");
  // And the parent goes on signing (its agent connections were not disturbed).
  SignResult again = SignOnce(s, m, k.private_key, part);
  EXPECT_RV(CKR_OK, again.rv);
}

// --- Handles and refresh -----------------------------------------------------------------------

TEST_F(ProviderE2eTest, HandlesAreStableAcrossARefresh) {
  ScopedEnv refresh("SIGNUM_PKCS11_REFRESH_SECONDS", "1");
  Initialized init;
  CK_SESSION_HANDLE s = OpenSession();
  auto first = Find(s, {});
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));
  auto second = Find(s, {});  // refreshes (agent cache bypassed) and keeps handles
  EXPECT_EQ(first, second);
  std::set<CK_OBJECT_HANDLE> unique(first.begin(), first.end());
  EXPECT_EQ(unique.size(), first.size());
  EXPECT_EQ(unique.count(CK_INVALID_HANDLE), 0u);
}

// --- Trace with signing
// ---------------------------------------------------------------------------

TEST_F(ProviderE2eTest, TraceShowsSigningCalls) {
  const std::string file = deployment_->File("sign-trace.log");
  {
    ScopedEnv trace("SIGNUM_PKCS11_TRACE", file);
    ScopedEnv pin("SIGNUM_PKCS11_PIN", "trace-pin-9876");
    Initialized init;
    CK_SESSION_HANDLE s = OpenSession();
    auto pin_value = reinterpret_cast<CK_UTF8CHAR_PTR>(const_cast<char*>("trace-pin-9876"));
    ASSERT_RV(CKR_OK, F()->C_Login(s, CKU_USER, pin_value, 14));
    auto keys = LoadKeys(s);
    CK_RSA_PKCS_PSS_PARAMS p{CKM_SHA256, CKG_MGF1_SHA256, 32};
    EXPECT_RV(CKR_OK, SignOnce(s, {CKM_RSA_PKCS_PSS, &p, sizeof p}, keys["rsa-2048"].private_key,
                               Digest(HashAlgorithm::kSha256, AsBytes("t")))
                          .rv);
  }
  const std::string text = ReadFile(file).value();
  EXPECT_NE(text.find("C_SignInit ["), std::string::npos);
  EXPECT_NE(text.find("  IN: pMechanism = CKM_RSA_PKCS_PSS {hashAlg = CKM_SHA256, mgf = "
                      "CKG_MGF1_SHA256, sLen = 32}"),
            std::string::npos)
      << text.substr(0, 4000);
  EXPECT_NE(text.find("  OUT: pSignature = (256) "), std::string::npos);
  EXPECT_NE(text.find("C_Sign = CKR_OK"), std::string::npos);
  EXPECT_NE(text.find("  OUT: pTemplate = [CKA_LABEL] = \"rsa-2048\""), std::string::npos);
  EXPECT_EQ(text.find("trace-pin-9876"), std::string::npos) << "the PIN leaked into the trace";
}

// SIGNUM_PKCS11_RECORD on the real path: a login + sign session recorded by the module itself
// (trace format v1): its signatures verify against the token's certificates, the PIN is nowhere,
// and signum-replay replays it against the same deployment with every call matching (exit 0).
TEST_F(ProviderE2eTest, RecordedSessionVerifiesAndReplaysAgainstTheSameDeployment) {
  const std::string file = deployment_->File("recorded-session.jsonl");
  const std::string pin = "record-pin-4242";
  ScopedEnv pin_env("SIGNUM_PKCS11_PIN", pin);
  const Bytes data = B("recorded by the module");
  const Bytes digest = Digest(HashAlgorithm::kSha256, data);
  std::map<std::string, Key> keys;
  SignResult rsa, ec;
  {
    ScopedEnv record("SIGNUM_PKCS11_RECORD", file);
    Initialized init;
    CK_SESSION_HANDLE s = OpenSession();
    auto pin_value = reinterpret_cast<CK_UTF8CHAR_PTR>(const_cast<char*>(pin.data()));
    ASSERT_RV(CKR_OK, F()->C_Login(s, CKU_USER, pin_value, pin.size()));
    keys = LoadKeys(s);
    rsa = SignOnce(s, {CKM_SHA256_RSA_PKCS, nullptr, 0}, keys["rsa-2048"].private_key, data);
    ec = SignOnce(s, {CKM_ECDSA, nullptr, 0}, keys["ec-p256"].private_key, digest);
    EXPECT_RV(CKR_OK, F()->C_Logout(s));
    EXPECT_RV(CKR_OK, F()->C_CloseSession(s));
  }
  ASSERT_RV(CKR_OK, rsa.rv);
  ASSERT_RV(CKR_OK, ec.rv);

  const RecordedTrace trace = ReadRecordedTrace(file);
  EXPECT_EQ(trace.header["recorder"], "libsignumpkcs11.so");
  EXPECT_EQ(trace.bytes.find(pin), std::string::npos) << "the PIN leaked into the trace";
  const std::vector<std::string> functions = trace.Functions();
  ASSERT_FALSE(functions.empty());
  EXPECT_EQ(functions.front(), "C_Initialize");
  EXPECT_EQ(functions.back(), "C_Finalize");
  for (const auto& call : trace.calls) EXPECT_EQ(call["rv"]["name"], "CKR_OK") << call;
  const std::vector<nlohmann::json> signs = trace.Calls("C_Sign", CKR_OK);
  ASSERT_EQ(signs.size(), 2u);
  const Bytes recorded_rsa = RecordedBytes(signs[0]["out"]["pSignature"]);
  const Bytes recorded_ec = RecordedBytes(signs[1]["out"]["pSignature"]);
  EXPECT_EQ(recorded_rsa, rsa.signature);
  EXPECT_EQ(recorded_ec, ec.signature);
  ExpectVerifies(keys["rsa-2048"],
                 {SignatureScheme::kRsaPkcs1, HashAlgorithm::kSha256, digest, std::nullopt},
                 recorded_rsa, "recorded RSA signature");
  ExpectVerifies(keys["ec-p256"],
                 {SignatureScheme::kEcdsa, HashAlgorithm::kSha256, digest, std::nullopt},
                 recorded_ec, "recorded ECDSA signature");

  // The child inherits the agent socket and SIGNUM_PKCS11_PIN; SIGNUM_PKCS11_RECORD is unset again.
  namespace bp = boost::process;
  const std::string output = deployment_->File("replay.out");
  bp::child replay(SIGNUM_REPLAY, file, "--module", kModulePath, bp::env["SIGNUM_REPLAY_PIN"] = pin,
                   (bp::std_out & bp::std_err) > output);
  if (!replay.wait_for(std::chrono::seconds(120))) {
    replay.terminate();
    FAIL() << "signum-replay did not finish in 120 s";
  }
  const auto replayed = ReadFile(output);
  const std::string report = replayed.ok() ? *replayed : "(no output)";
  EXPECT_EQ(replay.exit_code(), 0) << report;
  EXPECT_NE(report.find(std::to_string(trace.calls.size()) + " matched"), std::string::npos)
      << report;
}

// --- Failures of the path: last, they stop and restart the agent and the server ------------------

TEST_F(ProviderE2eTest, AgentRestartFailsCleanlyThenReconnects) {
  Initialized init;
  CK_SESSION_HANDLE s = OpenSession();
  auto keys = LoadKeys(s);
  const Key& k = keys["ec-p256"];
  CK_MECHANISM m{CKM_ECDSA, nullptr, 0};
  const Bytes digest = Digest(HashAlgorithm::kSha256, AsBytes("restart"));
  ASSERT_RV(CKR_OK, SignOnce(s, m, k.private_key, digest).rv);
  deployment_->StopAgent();
  auto start = Clock::now();
  EXPECT_RV(CKR_DEVICE_ERROR, SignOnce(s, m, k.private_key, digest).rv);
  EXPECT_LT(Clock::now() - start, std::chrono::seconds(5));
  // The operation ended with the error; the session is fine.
  Bytes sig(64);
  CK_ULONG len = sig.size();
  EXPECT_RV(CKR_OPERATION_NOT_INITIALIZED,
            F()->C_Sign(s, const_cast<uint8_t*>(digest.data()), digest.size(), sig.data(), &len));
  deployment_->StartAgent();
  SignResult r = SignOnce(s, m, k.private_key, digest);
  ASSERT_RV(CKR_OK, r.rv);
  ExpectVerifies(k, {SignatureScheme::kEcdsa, HashAlgorithm::kSha256, digest, std::nullopt},
                 r.signature, "after restart");
}

TEST_F(ProviderE2eTest, AStoppedServerGivesAMappedErrorQuickly) {
  const std::string file = deployment_->File("server-down-trace.log");
  ScopedEnv trace("SIGNUM_PKCS11_TRACE", file);
  Initialized init;
  CK_SESSION_HANDLE s = OpenSession();
  auto keys = LoadKeys(s);
  const Key& k = keys["rsa-2048"];
  CK_MECHANISM m{CKM_SHA256_RSA_PKCS, nullptr, 0};
  deployment_->StopServer();
  auto start = Clock::now();
  EXPECT_RV(CKR_DEVICE_ERROR, SignOnce(s, m, k.private_key, Bytes{1, 2, 3}).rv);
  EXPECT_LT(Clock::now() - start, std::chrono::seconds(15));
  deployment_->StartServer();
  SignResult r = SignOnce(s, m, k.private_key, Bytes{1, 2, 3});
  EXPECT_RV(CKR_OK, r.rv);
  const std::string text = ReadFile(file).value();
  EXPECT_NE(text.find("C_Sign = CKR_DEVICE_ERROR"), std::string::npos);
  EXPECT_NE(text.find("  ERROR: UNAVAILABLE"), std::string::npos)
      << text.substr(text.size() > 3000 ? text.size() - 3000 : 0);
}

TEST_F(ProviderE2eTest, WithTheServerDownAtLoadTheTokenShowsNoCertificatesThenRecovers) {
  // A fresh agent (empty cache) and no server: the list fails within the agent's bounds.
  deployment_->StopServer();
  deployment_->StopAgent();
  deployment_->StartAgent();
  {
    Initialized init;
    CK_SESSION_HANDLE s = OpenSession();
    auto start = Clock::now();
    EXPECT_TRUE(Find(s, {}).empty());
    EXPECT_LT(Clock::now() - start, std::chrono::seconds(10));
    deployment_->StartServer();
    std::this_thread::sleep_for(std::chrono::milliseconds(1100));  // the retry interval
    EXPECT_EQ(Find(s, {}).size(), 20u);
  }
}

TEST_F(ProviderE2eTest, WithTheAgentDownAtLoadTheTokenShowsNoCertificatesThenRecovers) {
  deployment_->StopAgent();
  {
    Initialized init;
    CK_SESSION_HANDLE s = OpenSession();
    CK_TOKEN_INFO token;
    EXPECT_RV(CKR_OK, F()->C_GetTokenInfo(1, &token));
    auto start = Clock::now();
    EXPECT_TRUE(Find(s, {}).empty());
    EXPECT_LT(Clock::now() - start, std::chrono::seconds(2));
    deployment_->StartAgent();
    std::this_thread::sleep_for(std::chrono::milliseconds(1100));  // the retry interval
    EXPECT_EQ(Find(s, {}).size(), 20u);
  }
}

}  // namespace
}  // namespace signum::pkcs11::testing

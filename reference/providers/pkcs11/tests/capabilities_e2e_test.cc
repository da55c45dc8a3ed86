// What the HSM cannot do is never offered, end to end: signum-server on an HSM that lists
// CKM_RSA_PKCS_PSS but answers CKR_DATA_INVALID when it is to sign with it (openCryptoki's soft
// token; here libsignum-defect-shim.so with SIGNUM_SHIM_DEFECT=pss-sign-data-invalid in front of a
// SoftHSM2 token), then signum-agent and libsignumpkcs11.so:
//   - the server learns it at start (one log line per key) and lists no rsa-pss for RSA keys;
//   - a sign request for rsa-pss is refused (400 INVALID_ARGUMENT) and audited as denied, never
//     as allowed;
//   - libsignumpkcs11.so lists no PSS mechanism, answers CKR_MECHANISM_INVALID for their info and
//     at C_SignInit, and CKA_ALLOWED_MECHANISMS of the keys holds exactly what they can sign;
//   - PKCS#1 v1.5 and ECDSA sign, and verify with OpenSSL against the token's certificates.
#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "module_test_util.h"
#include "signum/core/crypto.h"
#include "signum/core/files.h"
#include "signum/core/https_client.h"
#include "signum/core/wire.h"
#include "signum/core/x509.h"
#include "signum/deployment/deployment.h"
#include "signum/testing/softhsm_token.h"
#include "signum/testing/status_matchers.h"
#include "signum/testing/temp_dir.h"

namespace signum::pkcs11::testing {
namespace {

using nlohmann::json;

constexpr char kTokenLabel[] = "signum-pss-broken";
constexpr char kTokenPin[] = "31415926";
constexpr char kDefect[] = "pss-sign-data-invalid";

template <typename T>
T Check(Result<T> r) {
  if (!r.ok()) throw std::runtime_error(r.status().ToString());
  return std::move(r).value();
}
void Check(const Status& s) {
  if (!s.ok()) throw std::runtime_error(s.ToString());
}

std::vector<std::string> Lines(const std::string& path) {
  std::ifstream in(path);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

class CapabilitiesE2eTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    token_ = new ::signum::testing::SoftHsmToken(kTokenLabel, kTokenPin);
    work_ = new ::signum::testing::TempDir("signum-capabilities");
    const std::string pin_file = work_->File("vendor.pin");
    Check(WriteFileAtomically(pin_file, std::string(kTokenPin) + "\n", 0600));
    deployment::DeploymentOptions options;
    options.directory = work_->File("demo");
    options.user = "release";
    options.agent_tcp = false;
    options.keys = {"rsa-2048", "ec-p256"};
    options.vendor_hsm = deployment::VendorHsm{SIGNUM_DEFECT_SHIM,
                                               kTokenLabel,
                                               pin_file,
                                               {{"SOFTHSM2_CONF", token_->config_path()},
                                                {"SIGNUM_SHIM_TARGET", token_->module_path()},
                                                {"SIGNUM_SHIM_DEFECT", kDefect}}};
    vendor_ = Check(deployment::Deployment::Create(std::move(options))).release();
    Check(vendor_->Initialize());
    Check(vendor_->StartServer());
    Check(vendor_->StartAgent());
  }
  static void TearDownTestSuite() {
    delete vendor_;  // stops the agent and the server
    delete work_;
    delete token_;
    vendor_ = nullptr;
    work_ = nullptr;
    token_ = nullptr;
  }

  CapabilitiesE2eTest()
      : socket_("SIGNUM_AGENT_SOCKET", vendor_->agent_socket()),
        tcp_("SIGNUM_AGENT_TCP", std::nullopt),
        pin_("SIGNUM_PKCS11_PIN", std::nullopt),
        refresh_("SIGNUM_PKCS11_REFRESH_SECONDS", std::nullopt) {}

  static std::unique_ptr<HttpsClient> Client() {
    const json config = json::parse(Check(ReadFile(vendor_->server_config())));
    HttpsClientConfig c;
    c.host = "127.0.0.1";
    c.port = config["listen"]["port"].get<uint16_t>();
    c.ca_file = vendor_->root_ca();
    c.bearer_token = Check(ReadSecretFile(vendor_->File("credentials/release.token")));
    return Check(HttpsClient::Create(c));
  }

  static wire::CertificateListResponse List() {
    auto response = Check(Client()->Get(std::string(wire::kCertificatesPath)));
    EXPECT_EQ(response.status, 200) << response.body;
    return Check(wire::ParseCertificateListResponse(Check(wire::ParseJson(response.body))));
  }

  static std::vector<CK_MECHANISM_TYPE> MechanismList() {
    CK_ULONG count = 0;
    EXPECT_RV(CKR_OK, F()->C_GetMechanismList(1, nullptr, &count));
    std::vector<CK_MECHANISM_TYPE> list(count);
    EXPECT_RV(CKR_OK, F()->C_GetMechanismList(1, list.data(), &count));
    list.resize(count);
    return list;
  }

  // The private key and certificate of the signing certificate labelled `label`.
  struct TokenKey {
    CK_OBJECT_HANDLE private_key = 0;
    std::unique_ptr<PublicKey> public_key;
  };
  static TokenKey FindKey(CK_SESSION_HANDLE s, const std::string& label) {
    TokenKey key;
    CK_OBJECT_CLASS private_class = CKO_PRIVATE_KEY, cert_class = CKO_CERTIFICATE;
    auto keys = Find(s, {{CKA_CLASS, &private_class, sizeof private_class},
                         {CKA_LABEL, const_cast<char*>(label.data()), label.size()}});
    auto certs = Find(s, {{CKA_CLASS, &cert_class, sizeof cert_class},
                          {CKA_LABEL, const_cast<char*>(label.data()), label.size()}});
    EXPECT_EQ(keys.size(), 1u) << label;
    EXPECT_EQ(certs.size(), 1u) << label;
    if (keys.size() != 1 || certs.size() != 1) return key;
    key.private_key = keys[0];
    const Certificate cert =
        Check(Certificate::FromDer(GetAttribute(s, certs[0], CKA_VALUE).value));
    key.public_key = std::make_unique<PublicKey>(Check(cert.GetPublicKey()));
    return key;
  }

  static std::vector<CK_MECHANISM_TYPE> AllowedMechanisms(CK_SESSION_HANDLE s,
                                                          CK_OBJECT_HANDLE key) {
    const Bytes value = GetAttribute(s, key, CKA_ALLOWED_MECHANISMS).value;
    std::vector<CK_MECHANISM_TYPE> out(value.size() / sizeof(CK_MECHANISM_TYPE));
    std::memcpy(out.data(), value.data(), out.size() * sizeof(CK_MECHANISM_TYPE));
    return out;
  }

  static size_t AuditRecords() { return Lines(vendor_->File("audit/audit.log")).size(); }

  static ::signum::testing::SoftHsmToken* token_;
  static ::signum::testing::TempDir* work_;
  static deployment::Deployment* vendor_;
  ScopedEnv socket_, tcp_, pin_, refresh_;
};
::signum::testing::SoftHsmToken* CapabilitiesE2eTest::token_ = nullptr;
::signum::testing::TempDir* CapabilitiesE2eTest::work_ = nullptr;
deployment::Deployment* CapabilitiesE2eTest::vendor_ = nullptr;

const std::set<CK_MECHANISM_TYPE> kPssMechanisms = {
    CKM_RSA_PKCS_PSS,        CKM_SHA1_RSA_PKCS_PSS,   CKM_SHA224_RSA_PKCS_PSS,
    CKM_SHA256_RSA_PKCS_PSS, CKM_SHA384_RSA_PKCS_PSS, CKM_SHA512_RSA_PKCS_PSS};

TEST_F(CapabilitiesE2eTest, ServerLearnsAtStartAndListsNoPss) {
  // One line per key, naming what the HSM answered.
  int rsa_lines = 0, ec_lines = 0;
  for (const std::string& line : Lines(vendor_->File("logs/server.log"))) {
    if (line.find("capabilities") == std::string::npos) continue;
    if (line.find("'rsa-2048'") != std::string::npos) {
      ++rsa_lines;
      EXPECT_NE(line.find("can sign with rsa-pkcs1: sha1 sha224 sha256 sha384 sha512"),
                std::string::npos)
          << line;
      EXPECT_NE(line.find("rsa-pss: C_Sign(CKM_RSA_PKCS_PSS): CKR_DATA_INVALID"), std::string::npos)
          << line;
    }
    if (line.find("'ec-p256'") != std::string::npos) {
      ++ec_lines;
      EXPECT_NE(line.find("can sign with ecdsa: sha1 sha224 sha256 sha384 sha512"),
                std::string::npos)
          << line;
    }
  }
  EXPECT_EQ(rsa_lines, 1);
  EXPECT_EQ(ec_lines, 1);

  const wire::CertificateListResponse list = List();
  ASSERT_EQ(list.certificates.size(), 2u);
  for (const wire::CertificateEntry& e : list.certificates) {
    ASSERT_TRUE(e.capabilities.has_value()) << e.label;
    SCOPED_TRACE(e.label + ": " + e.capabilities->ToString());
    if (e.key.type == KeyType::kRsa) {
      // The release user's policy (SHA-2 for any scheme, SHA-1 with PKCS#1 v1.5 only) that the
      // HSM can do: PKCS#1 v1.5 with every hash, no PSS at all.
      EXPECT_EQ(*e.capabilities,
                SignatureCapabilities::AllFor(KeyType::kRsa)
                    .Intersect(SignatureCapabilities::Of(std::vector<SchemeAndHash>{
                        {SignatureScheme::kRsaPkcs1, HashAlgorithm::kSha1},
                        {SignatureScheme::kRsaPkcs1, HashAlgorithm::kSha224},
                        {SignatureScheme::kRsaPkcs1, HashAlgorithm::kSha256},
                        {SignatureScheme::kRsaPkcs1, HashAlgorithm::kSha384},
                        {SignatureScheme::kRsaPkcs1, HashAlgorithm::kSha512}})));
      EXPECT_EQ(e.schemes, std::vector<SignatureScheme>{SignatureScheme::kRsaPkcs1});
    } else {
      SignatureCapabilities expected = SignatureCapabilities::AllFor(KeyType::kEc);
      expected.Remove(SignatureScheme::kEcdsa, HashAlgorithm::kSha1);  // policy, not the HSM
      EXPECT_EQ(*e.capabilities, expected);
    }
  }
}

TEST_F(CapabilitiesE2eTest, ServerRefusesWhatTheHsmCannotDoBeforeAllowingIt) {
  const wire::CertificateListResponse list = List();
  auto rsa = std::find_if(list.certificates.begin(), list.certificates.end(),
                          [](const auto& e) { return e.label == "rsa-2048"; });
  ASSERT_NE(rsa, list.certificates.end());
  const size_t before = AuditRecords();
  wire::SignRequest request;
  request.certificate_id = rsa->id;
  request.scheme = SignatureScheme::kRsaPss;
  request.hash = HashAlgorithm::kSha256;
  request.digest = Digest(HashAlgorithm::kSha256, AsBytes("pss"));
  auto response = Check(Client()->Post(std::string(wire::kSignPath), wire::ToJson(request).dump()));
  EXPECT_EQ(response.status, 400) << response.body;
  auto error = Check(wire::ParseErrorResponse(Check(wire::ParseJson(response.body))));
  EXPECT_EQ(error.code, "INVALID_ARGUMENT");
  EXPECT_NE(error.message.find("the HSM cannot sign rsa-pss with sha256"), std::string::npos)
      << error.message;

  // Exactly one record for the request, a denial: nothing was ever "allowed".
  const std::vector<std::string> audit = Lines(vendor_->File("audit/audit.log"));
  ASSERT_EQ(audit.size(), before + 1);
  const json event = json::parse(audit.back())["event"];
  EXPECT_EQ(event["type"], "sign");
  EXPECT_EQ(event["decision"], "denied");
  EXPECT_EQ(event["scheme"], "rsa-pss");
  EXPECT_EQ(event["error"]["code"], "INVALID_ARGUMENT");
}

TEST_F(CapabilitiesE2eTest, ModuleOffersOnlyWhatTheKeysCanSign) {
  Initialized init;
  const std::vector<CK_MECHANISM_TYPE> listed = MechanismList();
  for (CK_MECHANISM_TYPE m : listed) {
    EXPECT_EQ(kPssMechanisms.count(m), 0u) << MechanismName(m) << " is listed";
  }
  for (CK_MECHANISM_TYPE m : {CKM_RSA_PKCS, CKM_SHA256_RSA_PKCS, CKM_SHA1_RSA_PKCS, CKM_ECDSA,
                              CKM_ECDSA_SHA384, CKM_SHA_1, CKM_SHA256, CKM_SHA512}) {
    EXPECT_NE(std::find(listed.begin(), listed.end(), m), listed.end())
        << MechanismName(m) << " is missing";
  }
  // ECDSA with SHA-1: the release user's policy does not allow it.
  EXPECT_EQ(std::find(listed.begin(), listed.end(), CKM_ECDSA_SHA1), listed.end());
  for (CK_MECHANISM_TYPE m : kPssMechanisms) {
    CK_MECHANISM_INFO info{};
    EXPECT_RV(CKR_MECHANISM_INVALID, F()->C_GetMechanismInfo(1, m, &info)) << MechanismName(m);
  }
  CK_MECHANISM_INFO info{};
  EXPECT_RV(CKR_OK, F()->C_GetMechanismInfo(1, CKM_SHA256_RSA_PKCS, &info));
  EXPECT_TRUE(info.flags & CKF_SIGN);

  const CK_SESSION_HANDLE s = OpenSession();
  const TokenKey rsa = FindKey(s, "rsa-2048");
  const TokenKey ec = FindKey(s, "ec-p256");
  ASSERT_NE(rsa.private_key, 0u);
  ASSERT_NE(ec.private_key, 0u);
  EXPECT_EQ(AllowedMechanisms(s, rsa.private_key),
            (std::vector<CK_MECHANISM_TYPE>{CKM_RSA_PKCS, CKM_SHA1_RSA_PKCS, CKM_SHA224_RSA_PKCS,
                                            CKM_SHA256_RSA_PKCS, CKM_SHA384_RSA_PKCS,
                                            CKM_SHA512_RSA_PKCS}));
  EXPECT_EQ(AllowedMechanisms(s, ec.private_key),
            (std::vector<CK_MECHANISM_TYPE>{CKM_ECDSA, CKM_ECDSA_SHA224, CKM_ECDSA_SHA256,
                                            CKM_ECDSA_SHA384, CKM_ECDSA_SHA512}));

  // C_SignInit refuses PSS before anything reaches the agent (the audit log stays as it was).
  const size_t before = AuditRecords();
  CK_RSA_PKCS_PSS_PARAMS pss{CKM_SHA256, CKG_MGF1_SHA256, 32};
  for (CK_MECHANISM_TYPE m : {CKM_RSA_PKCS_PSS, CKM_SHA256_RSA_PKCS_PSS}) {
    CK_MECHANISM mechanism{m, &pss, sizeof pss};
    EXPECT_RV(CKR_MECHANISM_INVALID, F()->C_SignInit(s, &mechanism, rsa.private_key))
        << MechanismName(m);
  }
  EXPECT_EQ(AuditRecords(), before);

  // What the keys can do still signs, and verifies against the token's certificates.
  const Bytes data = {'s', 'i', 'g', 'n', 'u', 'm'};
  struct Case {
    const TokenKey* key;
    CK_MECHANISM_TYPE mechanism;
    SignatureScheme scheme;
  };
  for (const Case& c : {Case{&rsa, CKM_SHA256_RSA_PKCS, SignatureScheme::kRsaPkcs1},
                        Case{&ec, CKM_ECDSA_SHA256, SignatureScheme::kEcdsa}}) {
    CK_MECHANISM mechanism{c.mechanism, nullptr, 0};
    ASSERT_RV(CKR_OK, F()->C_SignInit(s, &mechanism, c.key->private_key));
    Bytes signature(512);
    CK_ULONG length = signature.size();
    ASSERT_RV(CKR_OK, F()->C_Sign(s, const_cast<uint8_t*>(data.data()), data.size(),
                                  signature.data(), &length))
        << MechanismName(c.mechanism);
    signature.resize(length);
    const Status verified =
        VerifyDigestSignature(*c.key->public_key, c.scheme, HashAlgorithm::kSha256,
                              Digest(HashAlgorithm::kSha256, data), signature);
    EXPECT_OK(verified) << MechanismName(c.mechanism);
  }
  EXPECT_RV(CKR_OK, F()->C_CloseSession(s));
}

}  // namespace
}  // namespace signum::pkcs11::testing

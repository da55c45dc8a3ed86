#include "signum/core/x509.h"

#include <gtest/gtest.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <sys/wait.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cstdio>
#include <fstream>
#include <map>
#include <string>

#include "signum/core/encoding.h"
#include "signum/testing/status_matchers.h"
#include "signum/testing/temp_dir.h"

namespace signum {
namespace {

using ::signum::testing::StatusIs;

using std::chrono::system_clock;

const KeySpec kRsa2048{KeyType::kRsa, 2048, EcCurve::kP256};
const KeySpec kRsa3072{KeyType::kRsa, 3072, EcCurve::kP256};
const KeySpec kEcP256{KeyType::kEc, 0, EcCurve::kP256};
const KeySpec kEcP384{KeyType::kEc, 0, EcCurve::kP384};
const KeySpec kEcP521{KeyType::kEc, 0, EcCurve::kP521};

// One key per (spec, slot): RSA generation is slow, and slots give distinct keys of one spec.
SoftwareKey& KeyFor(const KeySpec& spec, int slot = 0) {
  static auto* keys = new std::map<std::string, std::unique_ptr<SoftwareKey>>();
  std::unique_ptr<SoftwareKey>& entry = (*keys)[spec.Name() + "#" + std::to_string(slot)];
  if (!entry) {
    Result<std::unique_ptr<SoftwareKey>> key = SoftwareKey::Generate(spec);
    if (!key.ok()) ADD_FAILURE() << key.status().ToString();
    entry = std::move(key).value();
  }
  return *entry;
}

DistinguishedName Dn(std::string_view text) {
  Result<DistinguishedName> dn = ParseDistinguishedName(text);
  if (!dn.ok()) ADD_FAILURE() << text << ": " << dn.status().ToString();
  return dn.ok() ? *dn : DistinguishedName{};
}

CertificateTemplate Template(std::string_view subject, CertificateRole role) {
  CertificateTemplate t;
  t.subject = Dn(subject);
  t.role = role;
  return t;
}

Certificate Issue(const CertificateTemplate& tmpl, const PublicKey& key,
                  const std::optional<Certificate>& issuer, DigestSigner& signer) {
  Result<Certificate> cert = IssueCertificate(tmpl, key, issuer, signer);
  if (!cert.ok()) {
    ADD_FAILURE() << cert.status().ToString();
    std::abort();  // the remaining checks would only crash on a missing value
  }
  return *std::move(cert);
}

struct Chain {
  Certificate root;
  Certificate intermediate;
  Certificate leaf;
};

Chain BuildChain(const KeySpec& root_spec, const KeySpec& inter_spec, const KeySpec& leaf_spec,
                 CertificateRole leaf_role = CertificateRole::kCodeSigning) {
  SoftwareKey& root_key = KeyFor(root_spec);
  SoftwareKey& inter_key = KeyFor(inter_spec, 1);
  SoftwareKey& leaf_key = KeyFor(leaf_spec, 2);
  Certificate root = Issue(Template("CN=Test Root " + root_spec.Name() + ",O=Signum Harness Test",
                                    CertificateRole::kRootCa),
                           root_key.public_key(), std::nullopt, root_key);
  Certificate inter =
      Issue(Template("CN=Test Intermediate " + inter_spec.Name() + ",O=Signum Harness Test",
                     CertificateRole::kIntermediateCa),
            inter_key.public_key(), root, root_key);
  CertificateTemplate leaf_tmpl =
      Template("CN=Test Leaf " + leaf_spec.Name() + ",O=Signum Harness Test", leaf_role);
  leaf_tmpl.emails = {"signer@example.test"};
  leaf_tmpl.validity_days = 30;
  Certificate leaf = Issue(leaf_tmpl, leaf_key.public_key(), inter, inter_key);
  return {std::move(root), std::move(inter), std::move(leaf)};
}

void WriteFile(const std::string& path, const std::string& content) {
  std::ofstream out(path, std::ios::binary);
  out << content;
  ASSERT_TRUE(out.good()) << path;
}

// Runs a shell command and returns (exit status, combined output).
std::pair<int, std::string> RunCommand(const std::string& command) {
  std::string output;
  FILE* pipe = popen((command + " 2>&1").c_str(), "r");
  if (pipe == nullptr) return {-1, "popen failed"};
  std::array<char, 512> buf;
  size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), pipe)) > 0) output.append(buf.data(), n);
  const int status = pclose(pipe);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, output};
}

// --- Chains -------------------------------------------------------------------------------------

struct ChainSpecs {
  KeySpec root, intermediate, leaf;
};

class ChainTest : public ::testing::TestWithParam<ChainSpecs> {};

TEST_P(ChainTest, VerifiesWithOurCodeAndTheOpenSslCli) {
  const ChainSpecs& specs = GetParam();
  const Chain chain = BuildChain(specs.root, specs.intermediate, specs.leaf);

  Status st = VerifyCertificateChain(chain.leaf, {chain.intermediate}, {chain.root}, true);
  EXPECT_OK(st);
  EXPECT_OK(VerifyCertificateChain(chain.intermediate, {}, {chain.root}));
  EXPECT_OK(VerifyCertificateChain(chain.root, {}, {chain.root}));

  testing::TempDir dir;
  WriteFile(dir.File("root.pem"), chain.root.Pem());
  WriteFile(dir.File("inter.pem"), chain.intermediate.Pem());
  WriteFile(dir.File("leaf.pem"), chain.leaf.Pem());
  auto [rc, out] = RunCommand("openssl verify -CAfile " + dir.File("root.pem") + " -untrusted " +
                              dir.File("inter.pem") + " " + dir.File("leaf.pem"));
  EXPECT_EQ(rc, 0) << out;
  EXPECT_NE(out.find("leaf.pem: OK"), std::string::npos) << out;

  // The CLI's own idea of the thumbprint and serial.
  auto [rc2, text] =
      RunCommand("openssl x509 -in " + dir.File("leaf.pem") + " -noout -fingerprint -sha1 -serial");
  ASSERT_EQ(rc2, 0) << text;
  std::string fingerprint = chain.leaf.Sha1ThumbprintHex();
  std::string colon_form;
  for (size_t i = 0; i < fingerprint.size(); i += 2) {
    if (!colon_form.empty()) colon_form += ':';
    colon_form += fingerprint.substr(i, 2);
  }
  EXPECT_NE(AsciiLower(text).find(colon_form), std::string::npos) << text;
  EXPECT_NE(AsciiLower(text).find("serial=" + chain.leaf.SerialHex()), std::string::npos) << text;
}

INSTANTIATE_TEST_SUITE_P(
    Mixes, ChainTest,
    ::testing::Values(ChainSpecs{kRsa2048, kEcP384, kRsa2048},  // RSA root, EC intermediate
                      ChainSpecs{kEcP256, kRsa2048, kEcP256},   // EC root, RSA intermediate
                      ChainSpecs{kRsa3072, kRsa2048, kEcP521},  // all-RSA issuers, EC leaf
                      ChainSpecs{kEcP384, kEcP256, kRsa2048}),  // all-EC issuers, RSA leaf
    [](const ::testing::TestParamInfo<ChainSpecs>& info) {
      std::string name = info.param.root.Name() + "_" + info.param.intermediate.Name() + "_" +
                         info.param.leaf.Name();
      name.erase(std::remove(name.begin(), name.end(), '-'), name.end());
      return name;
    });

TEST(ChainFailureTest, WrongRootMissingIntermediateAndPurpose) {
  const Chain chain = BuildChain(kEcP256, kRsa2048, kEcP256);

  // Same subject name, different key: a name match is not enough.
  SoftwareKey& impostor_key = KeyFor(kEcP256, 7);
  Certificate impostor =
      Issue(Template("CN=Test Root ec-p256,O=Signum Harness Test", CertificateRole::kRootCa),
            impostor_key.public_key(), std::nullopt, impostor_key);
  ASSERT_EQ(impostor.Subject(), chain.root.Subject());
  Status st = VerifyCertificateChain(chain.leaf, {chain.intermediate}, {impostor});
  EXPECT_THAT(st, StatusIs(ErrorCode::kInvalidArgument));
  EXPECT_NE(st.message().find("does not verify"), std::string::npos) << st.message();

  const Chain other = BuildChain(kRsa2048, kEcP256, kEcP256);
  EXPECT_FALSE(VerifyCertificateChain(chain.leaf, {chain.intermediate}, {other.root}).ok());
  // With several roots, one right one is enough.
  EXPECT_OK(VerifyCertificateChain(chain.leaf, {chain.intermediate}, {other.root, chain.root}));

  st = VerifyCertificateChain(chain.leaf, {}, {chain.root});
  EXPECT_FALSE(st.ok());
  EXPECT_NE(st.message().find("unable to get local issuer certificate"), std::string::npos)
      << st.message();
  EXPECT_FALSE(VerifyCertificateChain(chain.leaf, {chain.intermediate}, {}).ok());
  // The intermediate is no trust anchor on its own.
  EXPECT_FALSE(VerifyCertificateChain(chain.leaf, {}, {chain.intermediate}).ok());

  const Chain tls = BuildChain(kEcP256, kRsa2048, kEcP256, CertificateRole::kTlsServer);
  EXPECT_OK(VerifyCertificateChain(tls.leaf, {tls.intermediate}, {tls.root}, false));
  st = VerifyCertificateChain(tls.leaf, {tls.intermediate}, {tls.root}, true);
  EXPECT_THAT(st, StatusIs(ErrorCode::kInvalidArgument));
  EXPECT_NE(st.message().find("codeSigning"), std::string::npos) << st.message();

  testing::TempDir dir;
  WriteFile(dir.File("wrong.pem"), other.root.Pem());
  WriteFile(dir.File("inter.pem"), chain.intermediate.Pem());
  WriteFile(dir.File("leaf.pem"), chain.leaf.Pem());
  auto [rc, out] = RunCommand("openssl verify -CAfile " + dir.File("wrong.pem") + " -untrusted " +
                              dir.File("inter.pem") + " " + dir.File("leaf.pem"));
  EXPECT_NE(rc, 0) << out;
  EXPECT_EQ(ERR_peek_error(), 0u);
}

TEST(ChainValidityTest, ShortValidityLeaf) {
  const Chain chain = BuildChain(kEcP256, kEcP256, kEcP256);
  SoftwareKey& inter_key = KeyFor(kEcP256, 1);
  CertificateTemplate tmpl = Template("CN=Short", CertificateRole::kCodeSigning);
  tmpl.validity_days = 1;
  Certificate leaf = Issue(tmpl, KeyFor(kEcP256, 3).public_key(), chain.intermediate, inter_key);
  EXPECT_OK(VerifyCertificateChain(leaf, {chain.intermediate}, {chain.root}, true));
  EXPECT_LT(leaf.NotAfter(), system_clock::now() + std::chrono::hours(25));
}

// --- Parsing ------------------------------------------------------------------------------------

TEST(CertificateTest, Fields) {
  const Chain chain = BuildChain(kRsa2048, kEcP384, kEcP256);
  const Certificate& leaf = chain.leaf;
  const system_clock::time_point now = system_clock::now();

  EXPECT_EQ(leaf.Subject(), "CN=Test Leaf ec-p256,O=Signum Harness Test");
  EXPECT_EQ(leaf.Issuer(), chain.intermediate.Subject());
  EXPECT_EQ(leaf.SubjectCommonName(), "Test Leaf ec-p256");
  EXPECT_EQ(chain.root.Issuer(), chain.root.Subject());
  EXPECT_EQ(chain.root.IssuerDer(), chain.root.SubjectDer());
  EXPECT_EQ(leaf.IssuerDer(), chain.intermediate.SubjectDer());
  EXPECT_NE(leaf.SubjectDer(), leaf.IssuerDer());
  EXPECT_EQ(*ParseDistinguishedName(leaf.Subject()),
            Dn("/O=Signum Harness Test/CN=Test Leaf ec-p256"));

  // SerialDer is a DER INTEGER whose content (without a sign byte) is SerialHex.
  const Bytes serial_der = leaf.SerialDer();
  ASSERT_GE(serial_der.size(), 3u);
  EXPECT_EQ(serial_der[0], 0x02);
  EXPECT_EQ(serial_der[1], serial_der.size() - 2);
  Bytes magnitude(serial_der.begin() + 2, serial_der.end());
  EXPECT_LT(magnitude[0], 0x80);  // positive
  if (magnitude[0] == 0x00) magnitude.erase(magnitude.begin());
  EXPECT_EQ(leaf.SerialHex(), HexEncode(magnitude));
  EXPECT_EQ(magnitude.size(), 16u);
  EXPECT_NE(leaf.SerialHex(), chain.intermediate.SerialHex());

  EXPECT_EQ(leaf.Sha1Thumbprint(), Digest(HashAlgorithm::kSha1, leaf.Der()));
  EXPECT_EQ(leaf.Sha1ThumbprintHex(), HexEncode(leaf.Sha1Thumbprint()));
  EXPECT_EQ(leaf.Sha1ThumbprintHex().size(), 40u);
  EXPECT_EQ(leaf.Sha256Fingerprint(), Digest(HashAlgorithm::kSha256, leaf.Der()));

  EXPECT_EQ(*leaf.GetKeySpec(), kEcP256);
  EXPECT_EQ(*chain.root.GetKeySpec(), kRsa2048);
  EXPECT_EQ(*chain.intermediate.GetKeySpec(), kEcP384);
  EXPECT_EQ(leaf.SpkiDer(), KeyFor(kEcP256, 2).public_key().SpkiDer());
  EXPECT_EQ(leaf.GetPublicKey()->KeyId(), KeyFor(kEcP256, 2).public_key().KeyId());

  EXPECT_TRUE(chain.root.IsCa());
  EXPECT_TRUE(chain.intermediate.IsCa());
  EXPECT_FALSE(leaf.IsCa());
  EXPECT_TRUE(leaf.HasCodeSigningUsage());
  EXPECT_FALSE(chain.root.HasCodeSigningUsage());  // no EKU at all is not "codeSigning"
  EXPECT_FALSE(chain.intermediate.HasCodeSigningUsage());

  EXPECT_LE(leaf.NotBefore(), now - std::chrono::minutes(4));
  EXPECT_GE(leaf.NotBefore(), now - std::chrono::minutes(6));
  EXPECT_GE(leaf.NotAfter(), now + std::chrono::hours(24 * 30) - std::chrono::minutes(1));
  EXPECT_LE(leaf.NotAfter(), now + std::chrono::hours(24 * 30) + std::chrono::minutes(1));
  EXPECT_GE(chain.root.NotAfter(), now + std::chrono::hours(24 * 824));

  EXPECT_EQ(X509_get_version(leaf.get()), X509_VERSION_3);
  EXPECT_EQ(X509_get_signature_nid(leaf.get()), NID_ecdsa_with_SHA256);
  EXPECT_EQ(X509_get_signature_nid(chain.intermediate.get()), NID_sha256WithRSAEncryption);
}

TEST(CertificateTest, RoleExtensions) {
  SoftwareKey& key = KeyFor(kRsa2048);
  Certificate root =
      Issue(Template("CN=Ext Root", CertificateRole::kRootCa), key.public_key(), std::nullopt, key);
  const uint32_t root_ku = X509_get_key_usage(root.get());
  EXPECT_EQ(root_ku, static_cast<uint32_t>(KU_KEY_CERT_SIGN | KU_CRL_SIGN));
  EXPECT_EQ(X509_get_pathlen(root.get()), -1);
  EXPECT_NE(X509_get0_subject_key_id(root.get()), nullptr);
  EXPECT_EQ(X509_get0_authority_key_id(root.get()), nullptr);

  SoftwareKey& inter_key = KeyFor(kEcP256, 1);
  Certificate inter = Issue(Template("CN=Ext Intermediate", CertificateRole::kIntermediateCa),
                            inter_key.public_key(), root, key);
  EXPECT_EQ(X509_get_pathlen(inter.get()), 0);
  ASSERT_NE(X509_get0_authority_key_id(inter.get()), nullptr);
  EXPECT_EQ(ASN1_STRING_cmp(X509_get0_authority_key_id(inter.get()),
                            X509_get0_subject_key_id(root.get())),
            0);

  CertificateTemplate server = Template("CN=localhost", CertificateRole::kTlsServer);
  server.dns_names = {"localhost", "signum.example.test"};
  server.ip_addresses = {"127.0.0.1", "::1"};
  Certificate tls = Issue(server, KeyFor(kRsa2048, 2).public_key(), inter, inter_key);
  EXPECT_FALSE(tls.IsCa());
  EXPECT_EQ(X509_get_extended_key_usage(tls.get()), static_cast<uint32_t>(XKU_SSL_SERVER));
  EXPECT_EQ(X509_get_key_usage(tls.get()),
            static_cast<uint32_t>(KU_DIGITAL_SIGNATURE | KU_KEY_ENCIPHERMENT));
  EXPECT_EQ(X509_check_host(tls.get(), "signum.example.test", 0, 0, nullptr), 1);
  EXPECT_EQ(X509_check_host(tls.get(), "other.example.test", 0, 0, nullptr), 0);
  EXPECT_EQ(X509_check_ip_asc(tls.get(), "127.0.0.1", 0), 1);
  EXPECT_EQ(X509_check_ip_asc(tls.get(), "::1", 0), 1);
  EXPECT_EQ(X509_check_ip_asc(tls.get(), "10.0.0.1", 0), 0);

  CertificateTemplate client = Template("CN=client", CertificateRole::kTlsClient);
  Certificate tls_client = Issue(client, KeyFor(kEcP256, 2).public_key(), inter, inter_key);
  EXPECT_EQ(X509_get_extended_key_usage(tls_client.get()), static_cast<uint32_t>(XKU_SSL_CLIENT));
  EXPECT_EQ(X509_get_key_usage(tls_client.get()), static_cast<uint32_t>(KU_DIGITAL_SIGNATURE));

  CertificateTemplate signing = Template("CN=signer", CertificateRole::kCodeSigning);
  signing.emails = {"signer@example.test"};
  Certificate code = Issue(signing, KeyFor(kEcP256, 2).public_key(), inter, inter_key);
  EXPECT_EQ(X509_get_extended_key_usage(code.get()),
            static_cast<uint32_t>(XKU_CODE_SIGN | XKU_SMIME));
  EXPECT_EQ(X509_get_key_usage(code.get()), static_cast<uint32_t>(KU_DIGITAL_SIGNATURE));
  EXPECT_EQ(X509_check_email(code.get(), "signer@example.test", 0, 0), 1);

  // A self-signed end-entity certificate (for quick local tests) is fine too.
  SoftwareKey& self_key = KeyFor(kEcP384);
  Certificate self = Issue(Template("CN=self", CertificateRole::kCodeSigning),
                           self_key.public_key(), std::nullopt, self_key);
  EXPECT_EQ(X509_verify(self.get(), self_key.public_key().get()), 1);
  EXPECT_EQ(self.Issuer(), "CN=self");
}

TEST(CertificateTest, DerAndPemRoundTrips) {
  const Chain chain = BuildChain(kEcP256, kEcP256, kRsa2048);
  for (const Certificate* cert : {&chain.root, &chain.intermediate, &chain.leaf}) {
    const Bytes der = cert->Der();
    Result<Certificate> from_der = Certificate::FromDer(der);
    ASSERT_OK(from_der);
    EXPECT_EQ(from_der->Der(), der);
    const std::string pem = cert->Pem();
    EXPECT_EQ(pem.rfind("-----BEGIN CERTIFICATE-----\n", 0), 0u);
    Result<Certificate> from_pem = Certificate::FromPem(pem);
    ASSERT_OK(from_pem);
    EXPECT_EQ(from_pem->Der(), der);
  }
  // Leading text and other PEM blocks (as in bundles with keys) are skipped.
  const std::string bundle = "Bag Attributes: junk\n" + KeyFor(kEcP256).public_key().Pem() +
                             chain.leaf.Pem() + chain.root.Pem();
  EXPECT_EQ(Certificate::FromPem(bundle)->Der(), chain.leaf.Der());

  Bytes trailing = chain.leaf.Der();
  trailing.push_back(0x00);
  EXPECT_THAT(Certificate::FromDer(trailing), StatusIs(ErrorCode::kInvalidArgument));
  Bytes truncated = chain.leaf.Der();
  truncated.pop_back();
  EXPECT_THAT(Certificate::FromDer(truncated), StatusIs(ErrorCode::kInvalidArgument));
  EXPECT_FALSE(Certificate::FromDer({}).ok());
  EXPECT_FALSE(Certificate::FromPem("").ok());
  EXPECT_FALSE(
      Certificate::FromPem("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n").ok());
  EXPECT_EQ(ERR_peek_error(), 0u);
}

TEST(CertificateTest, AllFromPem) {
  const Chain chain = BuildChain(kEcP256, kEcP384, kEcP256);
  const std::vector<Certificate> certs = {chain.leaf, chain.intermediate, chain.root};
  const std::string pem = CertificatesToPem(certs);
  EXPECT_EQ(pem, chain.leaf.Pem() + chain.intermediate.Pem() + chain.root.Pem());
  Result<std::vector<Certificate>> parsed = Certificate::AllFromPem(pem);
  ASSERT_OK(parsed);
  ASSERT_EQ(parsed->size(), 3u);
  for (size_t i = 0; i < 3; ++i) EXPECT_EQ((*parsed)[i].Der(), certs[i].Der());

  EXPECT_EQ(Certificate::AllFromPem(pem + "\n\n")->size(), 3u);
  EXPECT_EQ(Certificate::AllFromPem(chain.root.Pem())->size(), 1u);
  EXPECT_THAT(Certificate::AllFromPem(""), StatusIs(ErrorCode::kInvalidArgument));
  EXPECT_THAT(Certificate::AllFromPem("no pem here"), StatusIs(ErrorCode::kInvalidArgument));

  // A damaged second block is an error, not a silently shorter chain.
  std::string damaged = chain.leaf.Pem() + chain.intermediate.Pem();
  damaged[chain.leaf.Pem().size() + 40] = '*';
  Result<std::vector<Certificate>> bad = Certificate::AllFromPem(damaged);
  EXPECT_THAT(bad, StatusIs(ErrorCode::kInvalidArgument));
  EXPECT_EQ(ERR_peek_error(), 0u);
}

// --- CSRs ---------------------------------------------------------------------------------------

TEST(CsrTest, BuildParseAndVerify) {
  for (const KeySpec& spec : {kRsa2048, kEcP256, kEcP521}) {
    SCOPED_TRACE(spec.Name());
    SoftwareKey& key = KeyFor(spec);
    const DistinguishedName subject =
        Dn("CN=Signum Demo " + spec.Name() + ",O=Signum Harness Demo");
    Result<Bytes> der = BuildCsrDer(subject, key);
    ASSERT_OK(der);

    for (const std::string& input : {ToString(*der), CsrDerToPem(*der)}) {
      Result<ParsedCsr> csr = ParseAndVerifyCsr(input);
      ASSERT_OK(csr);
      EXPECT_EQ(csr->subject, subject);
      EXPECT_EQ(csr->subject_text, "CN=Signum Demo " + spec.Name() + ",O=Signum Harness Demo");
      EXPECT_EQ(csr->public_key.SpkiDer(), key.public_key().SpkiDer());
      EXPECT_EQ(csr->public_key.spec(), spec);
    }

    testing::TempDir dir;
    WriteFile(dir.File("req.pem"), CsrDerToPem(*der));
    auto [rc, out] = RunCommand("openssl req -in " + dir.File("req.pem") + " -noout -verify");
    EXPECT_EQ(rc, 0) << out;
    EXPECT_NE(out.find("verify OK"), std::string::npos) << out;
  }
  // Other hashes are honoured.
  Result<Bytes> sha384 = BuildCsrDer(Dn("CN=x"), KeyFor(kEcP384), HashAlgorithm::kSha384);
  ASSERT_OK(sha384);
  const unsigned char* p = sha384->data();
  X509_REQ* req = d2i_X509_REQ(nullptr, &p, static_cast<long>(sha384->size()));
  ASSERT_NE(req, nullptr);
  EXPECT_EQ(X509_REQ_get_signature_nid(req), NID_ecdsa_with_SHA384);
  X509_REQ_free(req);
}

TEST(CsrTest, TamperedAndMalformedCsrsAreRejected) {
  SoftwareKey& key = KeyFor(kRsa2048);
  const Bytes der = *BuildCsrDer(Dn("CN=Tamper Target,O=Signum"), key);
  std::string text = ToString(der);
  const size_t at = text.find("Tamper Target");
  ASSERT_NE(at, std::string::npos);
  text[at] = 'D';  // still well-formed DER, but no longer what was signed
  Result<ParsedCsr> tampered = ParseAndVerifyCsr(text);
  EXPECT_THAT(tampered, StatusIs(ErrorCode::kInvalidArgument));
  EXPECT_THAT(ParseAndVerifyCsr(CsrDerToPem(AsBytes(text))), StatusIs(ErrorCode::kInvalidArgument));

  Bytes bad_signature = der;
  bad_signature[bad_signature.size() - 5] ^= 0x01;
  EXPECT_FALSE(ParseAndVerifyCsr(ToString(bad_signature)).ok());

  EXPECT_FALSE(ParseAndVerifyCsr("").ok());
  EXPECT_FALSE(ParseAndVerifyCsr("garbage").ok());
  EXPECT_FALSE(ParseAndVerifyCsr(ToString(der) + "x").ok());
  EXPECT_FALSE(ParseAndVerifyCsr(
                   "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n")
                   .ok());
  EXPECT_FALSE(BuildCsrDer({}, key).ok());
  EXPECT_THAT(BuildCsrDer({{"NotAnAttribute", "x"}}, key), StatusIs(ErrorCode::kInvalidArgument));
  EXPECT_EQ(ERR_peek_error(), 0u);
}

// --- Signers that misbehave
// -----------------------------------------------------------------------

// Claims one key and signs with another, like a misconfigured HSM slot.
class WrongKeySigner : public DigestSigner {
 public:
  WrongKeySigner(SoftwareKey& claimed, SoftwareKey& actual) : claimed_(claimed), actual_(actual) {}
  const PublicKey& public_key() const override { return claimed_.public_key(); }
  Result<Bytes> SignDigest(SignatureScheme scheme, HashAlgorithm hash, ByteView digest,
                           std::optional<size_t> salt) override {
    return actual_.SignDigest(scheme, hash, digest, salt);
  }

 private:
  SoftwareKey& claimed_;
  SoftwareKey& actual_;
};

// Returns noise of the right length.
class NoiseSigner : public DigestSigner {
 public:
  explicit NoiseSigner(SoftwareKey& key) : key_(key) {}
  const PublicKey& public_key() const override { return key_.public_key(); }
  Result<Bytes> SignDigest(SignatureScheme, HashAlgorithm, ByteView,
                           std::optional<size_t>) override {
    return RandomBytes(key_.public_key().spec().SignatureSize());
  }

 private:
  SoftwareKey& key_;
};

class FailingSigner : public DigestSigner {
 public:
  explicit FailingSigner(SoftwareKey& key) : key_(key) {}
  const PublicKey& public_key() const override { return key_.public_key(); }
  Result<Bytes> SignDigest(SignatureScheme, HashAlgorithm, ByteView,
                           std::optional<size_t>) override {
    return UnavailableError("HSM unplugged");
  }

 private:
  SoftwareKey& key_;
};

TEST(BrokenSignerTest, NeverProducesBadCertificatesOrCsrs) {
  for (const KeySpec& spec : {kRsa2048, kEcP256}) {
    SCOPED_TRACE(spec.Name());
    SoftwareKey& key = KeyFor(spec);
    WrongKeySigner wrong(key, KeyFor(spec, 5));
    NoiseSigner noise(key);
    FailingSigner failing(key);
    const CertificateTemplate tmpl = Template("CN=Broken", CertificateRole::kRootCa);
    for (DigestSigner* signer : std::initializer_list<DigestSigner*>{&wrong, &noise}) {
      EXPECT_THAT(IssueCertificate(tmpl, key.public_key(), std::nullopt, *signer),
                  StatusIs(ErrorCode::kInternal));
      EXPECT_THAT(BuildCsrDer(Dn("CN=Broken"), *signer), StatusIs(ErrorCode::kInternal));
    }
    Result<Certificate> failed = IssueCertificate(tmpl, key.public_key(), std::nullopt, failing);
    EXPECT_THAT(failed, StatusIs(ErrorCode::kUnavailable));
    EXPECT_NE(failed.status().message().find("HSM unplugged"), std::string::npos);
    EXPECT_THAT(BuildCsrDer(Dn("CN=Broken"), failing), StatusIs(ErrorCode::kUnavailable));
  }
  EXPECT_EQ(ERR_peek_error(), 0u);
}

TEST(IssueTest, ArgumentErrors) {
  SoftwareKey& root_key = KeyFor(kEcP256);
  SoftwareKey& other_key = KeyFor(kEcP256, 4);
  const Certificate root = Issue(Template("CN=Arg Root", CertificateRole::kRootCa),
                                 root_key.public_key(), std::nullopt, root_key);
  const CertificateTemplate leaf = Template("CN=Arg Leaf", CertificateRole::kCodeSigning);
  auto code = [](const Result<Certificate>& r) { return r.status().code(); };
  const ErrorCode kBad = ErrorCode::kInvalidArgument;

  // Self-signed, but the signer does not own the subject key.
  EXPECT_EQ(code(IssueCertificate(leaf, other_key.public_key(), std::nullopt, root_key)), kBad);
  // The signer is not the issuer's key.
  EXPECT_EQ(code(IssueCertificate(leaf, other_key.public_key(), root, other_key)), kBad);
  // The issuer is no CA.
  const Certificate not_ca = Issue(leaf, other_key.public_key(), root, root_key);
  EXPECT_EQ(code(IssueCertificate(leaf, root_key.public_key(), not_ca, other_key)), kBad);

  CertificateTemplate t = leaf;
  t.validity_days = 0;
  EXPECT_EQ(code(IssueCertificate(t, other_key.public_key(), root, root_key)), kBad);
  t = leaf;
  t.ip_addresses = {"300.1.1.1"};
  EXPECT_EQ(code(IssueCertificate(t, other_key.public_key(), root, root_key)), kBad);
  t = leaf;
  t.dns_names = {"bad name"};
  EXPECT_EQ(code(IssueCertificate(t, other_key.public_key(), root, root_key)), kBad);
  t = leaf;
  t.subject = {{"C", "Germany"}};  // countryName is two letters
  EXPECT_EQ(code(IssueCertificate(t, other_key.public_key(), root, root_key)), kBad);
  t = leaf;
  t.subject = {};
  EXPECT_EQ(code(IssueCertificate(t, other_key.public_key(), root, root_key)), kBad);
  // An empty subject is fine with a subjectAltName (then critical, RFC 5280 §4.2.1.6).
  t.role = CertificateRole::kTlsServer;
  t.dns_names = {"only-san.example.test"};
  Result<Certificate> san_only = IssueCertificate(t, other_key.public_key(), root, root_key);
  ASSERT_OK(san_only);
  EXPECT_EQ(san_only->Subject(), "");
  EXPECT_EQ(san_only->SubjectCommonName(), "");
  const int san_index = X509_get_ext_by_NID(san_only->get(), NID_subject_alt_name, -1);
  ASSERT_GE(san_index, 0);
  EXPECT_EQ(X509_EXTENSION_get_critical(X509_get_ext(san_only->get(), san_index)), 1);
  EXPECT_EQ(ERR_peek_error(), 0u);
}

// --- Distinguished names ------------------------------------------------------------------------

TEST(DistinguishedNameTest, BothSyntaxes) {
  using DN = DistinguishedName;
  // -subj style is in DER order; RFC 4514 text lists the most specific RDN first.
  EXPECT_EQ(*ParseDistinguishedName("/CN=x/O=y"), (DN{{"CN", "x"}, {"O", "y"}}));
  EXPECT_EQ(*ParseDistinguishedName("CN=x,O=y"), (DN{{"O", "y"}, {"CN", "x"}}));
  EXPECT_EQ(*ParseDistinguishedName("/C=DE/O=Signum Harness/OU=QA/CN=Demo Signer"),
            (DN{{"C", "DE"}, {"O", "Signum Harness"}, {"OU", "QA"}, {"CN", "Demo Signer"}}));
  EXPECT_EQ(*ParseDistinguishedName(" CN = Demo Signer , O = Signum "),
            (DN{{"O", "Signum"}, {"CN", "Demo Signer"}}));
  EXPECT_EQ(*ParseDistinguishedName("CN=a\\,b\\+c\\=d,O=x\\2Cy"),
            (DN{{"O", "x,y"}, {"CN", "a,b+c=d"}}));
  EXPECT_EQ(*ParseDistinguishedName("/CN=a\\/b/O=with,comma"),
            (DN{{"CN", "a/b"}, {"O", "with,comma"}}));
  EXPECT_EQ(*ParseDistinguishedName("/CN=a+b"), (DN{{"CN", "a+b"}}));
  EXPECT_EQ(*ParseDistinguishedName("CN=trailing\\ "), (DN{{"CN", "trailing "}}));
  EXPECT_EQ(*ParseDistinguishedName("emailAddress=a@b.c,CN=Zoë"),
            (DN{{"CN", "Zoë"}, {"emailAddress", "a@b.c"}}));
  EXPECT_EQ(*ParseDistinguishedName("commonName=long name"), (DN{{"commonName", "long name"}}));
}

TEST(DistinguishedNameTest, Errors) {
  for (const char* bad : {"", "   ", "/", "CN", "/CN", "CN=", "/CN=", "=x", "CN=x,,O=y", "CN=x,",
                          "/CN=x//O=y", "FOO=bar", "CN=a+OU=b", "CN=x\\", "CN=#0403616263"}) {
    Result<DistinguishedName> dn = ParseDistinguishedName(bad);
    ASSERT_FALSE(dn.ok()) << "'" << bad << "'";
    EXPECT_THAT(dn, StatusIs(ErrorCode::kInvalidArgument)) << bad;
  }
  EXPECT_EQ(ERR_peek_error(), 0u);
}

TEST(DistinguishedNameTest, CertificateSubjectRoundTrips) {
  SoftwareKey& key = KeyFor(kEcP256);
  for (const char* text : {"CN=Signum Demo RSA-2048,O=Signum Harness Demo",
                           "CN=Comma\\, Inc.,OU=R\\+D,O=Zoë \\\"Quoted\\\",C=DE", "CN=plain"}) {
    SCOPED_TRACE(text);
    const DistinguishedName dn = Dn(text);
    CertificateTemplate tmpl;
    tmpl.subject = dn;
    tmpl.role = CertificateRole::kRootCa;
    Certificate cert = Issue(tmpl, key.public_key(), std::nullopt, key);
    EXPECT_EQ(cert.Subject(), text);
    EXPECT_EQ(*ParseDistinguishedName(cert.Subject()), dn);
    Result<ParsedCsr> csr = ParseAndVerifyCsr(ToString(*BuildCsrDer(dn, key)));
    ASSERT_OK(csr);
    EXPECT_EQ(csr->subject, dn);
    EXPECT_EQ(csr->subject_text, text);
  }
}

}  // namespace
}  // namespace signum

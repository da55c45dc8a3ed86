// The providers' own DER reading (der_reader.h, certificate_info.h, public_key_components.h)
// checked against OpenSSL on real certificates and keys, and against malformed input: every
// truncation and single-byte corruption of a certificate is either rejected or (for bytes that
// do not affect what is read) parsed to the same fields, and never crashes (run under ASan in
// ci/test --sanitize).
#include "signum/provider/der_reader.h"

#include <gtest/gtest.h>

#include <chrono>

#include "signum/core/crypto.h"
#include "signum/core/encoding.h"
#include "signum/core/x509.h"
#include "signum/provider/certificate_info.h"
#include "signum/provider/digest.h"
#include "signum/provider/public_key_components.h"
#include "signum/testing/status_matchers.h"

namespace signum::provider {
namespace {

Certificate SelfSigned(const std::string& spec, const DistinguishedName& subject, int days) {
  auto key = SoftwareKey::Generate(ParseKeySpec(spec).value()).value();
  CertificateTemplate tmpl;
  tmpl.subject = subject;
  tmpl.role = CertificateRole::kCodeSigning;
  tmpl.validity_days = days;
  return IssueCertificate(tmpl, key->public_key(), std::nullopt, *key).value();
}

void ExpectSameAsOpenSsl(const Certificate& expected) {
  auto info = CertificateInfo::FromDer(expected.Der());
  ASSERT_OK(info);
  EXPECT_EQ(info->Der(), expected.Der());
  EXPECT_EQ(info->SerialDer(), expected.SerialDer());
  EXPECT_EQ(info->IssuerDer(), expected.IssuerDer());
  EXPECT_EQ(info->SubjectDer(), expected.SubjectDer());
  EXPECT_EQ(info->SpkiDer(), expected.SpkiDer());
  EXPECT_EQ(info->Subject(), expected.Subject());
  EXPECT_EQ(info->Issuer(), expected.Issuer());
  EXPECT_EQ(info->SubjectCommonName(), expected.SubjectCommonName());
  EXPECT_EQ(info->NotBefore(), expected.NotBefore());
  EXPECT_EQ(info->NotAfter(), expected.NotAfter());
  EXPECT_EQ(info->Sha1ThumbprintHex(), expected.Sha1ThumbprintHex());
  auto pem = CertificateInfo::FromPem("junk before\n" + expected.Pem() + "junk after");
  ASSERT_OK(pem);
  EXPECT_EQ(pem->Der(), expected.Der());
}

TEST(CertificateInfoTest, MatchesOpenSslForEveryKeyType) {
  for (const KeySpec& spec : SupportedKeySpecs()) {
    SCOPED_TRACE(spec.Name());
    ExpectSameAsOpenSsl(SelfSigned(spec.Name(), {{"CN", "Signum " + spec.Name()},
                                                 {"O", "Signum Harness"}, {"C", "DE"}}, 30));
  }
}

TEST(CertificateInfoTest, MatchesOpenSslForEscapesAndGeneralizedTime) {
  // 40 years: notAfter past 2049 is a GeneralizedTime (RFC 5280 §4.1.2.5).
  ExpectSameAsOpenSsl(SelfSigned("ec-p256",
                                 {{"CN", "a,b+c\"d\\e<f>g;h"}, {"OU", "#lead"}, {"L", "Köln"}},
                                 40 * 366));
}

TEST(CertificateInfoTest, PublicKeyComponentsMatchOpenSsl) {
  for (const KeySpec& spec : SupportedKeySpecs()) {
    SCOPED_TRACE(spec.Name());
    auto key = SoftwareKey::Generate(spec).value();
    auto parsed = ParseSubjectPublicKeyInfo(key->public_key().SpkiDer());
    ASSERT_OK(parsed);
    EXPECT_EQ(parsed->spec, spec);
    if (spec.type == KeyType::kRsa) {
      EXPECT_EQ(parsed->rsa_modulus, key->public_key().RsaModulus());
      EXPECT_EQ(parsed->rsa_public_exponent, key->public_key().RsaPublicExponent());
    } else {
      EXPECT_EQ(parsed->ec_point, key->public_key().EcPoint());
    }
  }
}

TEST(CertificateInfoTest, EveryTruncationIsRejected) {
  const Bytes der = SelfSigned("rsa-2048", {{"CN", "t"}}, 1).Der();
  for (size_t n = 0; n < der.size(); ++n) {
    EXPECT_FALSE(CertificateInfo::FromDer(ByteView(der).first(n)).ok()) << n;
  }
  Bytes longer = der;
  longer.push_back(0);
  EXPECT_FALSE(CertificateInfo::FromDer(longer).ok());
}

TEST(CertificateInfoTest, CorruptedBytesAreRejectedOrReadConsistently) {
  const Certificate original = SelfSigned("ec-p384", {{"CN", "corrupt"}, {"O", "x"}}, 1);
  const Bytes der = original.Der();
  size_t rejected = 0;
  for (size_t i = 0; i < der.size(); ++i) {
    for (uint8_t flip : {0x01, 0x80, 0xff}) {
      Bytes bad = der;
      bad[i] ^= flip;
      auto info = CertificateInfo::FromDer(bad);
      if (!info.ok()) {
        ++rejected;
        continue;
      }
      // Accepted: then it read the corrupted certificate faithfully (signature bytes, values).
      EXPECT_EQ(info->Der(), bad);
      (void)info->Subject();
      (void)ParseSubjectPublicKeyInfo(info->SpkiDer());
    }
  }
  // The structure (tags, lengths) is a large share of a certificate's bytes.
  EXPECT_GT(rejected, der.size() / 4);
}

TEST(DerReaderTest, RejectsNonDerLengths) {
  const Bytes indefinite = {0x30, 0x80, 0x00, 0x00};
  EXPECT_FALSE(DerReader(indefinite).Next("x").ok());
  const Bytes non_minimal = {0x04, 0x81, 0x01, 0xaa};  // 1 byte in a long form
  EXPECT_FALSE(DerReader(non_minimal).Next("x").ok());
  const Bytes leading_zero = {0x04, 0x82, 0x00, 0x81};
  EXPECT_FALSE(DerReader(leading_zero).Next("x").ok());
  const Bytes too_long = {0x04, 0x85, 0x01, 0x00, 0x00, 0x00, 0x00};
  EXPECT_FALSE(DerReader(too_long).Next("x").ok());
  const Bytes past_end = {0x04, 0x05, 0x01};
  EXPECT_FALSE(DerReader(past_end).Next("x").ok());
  const Bytes high_tag = {0x1f, 0x01, 0x00};
  EXPECT_FALSE(DerReader(high_tag).Next("x").ok());
  const Bytes ok = {0x04, 0x81, 0x80};
  Bytes with_content = ok;
  with_content.resize(3 + 0x80, 0x55);
  auto element = DerReader(with_content).Next("x");
  ASSERT_OK(element);
  EXPECT_EQ(element->content.size(), 0x80u);
}

TEST(DerReaderTest, IntegersAndObjectIdentifiers) {
  const Bytes negative = {0x02, 0x01, 0x80};
  const Bytes padded = {0x02, 0x02, 0x00, 0x01};
  const Bytes positive = {0x02, 0x02, 0x00, 0x80};
  EXPECT_FALSE(PositiveIntegerBytes(DerReader(negative).Next("i").value(), "i").ok());
  EXPECT_FALSE(PositiveIntegerBytes(DerReader(padded).Next("i").value(), "i").ok());
  EXPECT_EQ(PositiveIntegerBytes(DerReader(positive).Next("i").value(), "i").value(),
            Bytes{0x80});
  const Bytes rsa = {0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01};
  EXPECT_EQ(ObjectIdentifierToString(rsa).value(), "1.2.840.113549.1.1.1");
  const Bytes truncated = {0x2a, 0x86};
  EXPECT_FALSE(ObjectIdentifierToString(truncated).ok());
}

TEST(DigestTest, PlatformDigestMatchesCore) {
  const Bytes data(100000, 0x61);
  for (const HashInfo& h : AllHashes()) {
    EXPECT_EQ(ComputeDigest(h.algorithm, data).value(), Digest(h.algorithm, data));
    auto context = DigestContext::Create(h.algorithm).value();
    ASSERT_OK(context.Update(ByteView(data).first(10)));
    ASSERT_OK(context.Update(ByteView(data).subspan(10)));
    auto copy = context.Clone().value();
    ASSERT_OK(copy.Update(AsBytes("more")));
    EXPECT_EQ(context.Finish().value(), Digest(h.algorithm, data));
    EXPECT_FALSE(context.Finish().ok());
    EXPECT_FALSE(context.Clone().ok());
    Bytes more = data;
    more.insert(more.end(), {'m', 'o', 'r', 'e'});
    EXPECT_EQ(copy.Finish().value(), Digest(h.algorithm, more)) << "the clone continues alone";
  }
}

}  // namespace
}  // namespace signum::provider

// The provider's check of returned signatures keeps decoded keys and fetched digests between
// calls (signature_check_openssl.cc): the cache must never change a verdict, across more keys
// than it holds, for every hash, and for a forged signature after a good one with the same key.
#include <gtest/gtest.h>

#include <memory>
#include <vector>

#include "signum/core/crypto.h"
#include "signum/provider/provider_certificate.h"
#include "signum/provider/signature_check.h"
#include "signum/testing/status_matchers.h"
#include "signum/testing/test_pki.h"

namespace signum::provider {
namespace {

using ::signum::testing::StatusIs;

struct SigningCertificate {
  ProviderCertificate certificate;
  std::unique_ptr<SoftwareKey> key;
};

SigningCertificate Make(const std::string& label, const std::string& spec) {
  SigningCertificate out;
  const wire::CertificateEntry entry = signum::testing::SharedTestPki().Leaf(label, spec, &out.key);
  auto certificate = ProviderCertificateFromEntry(entry);
  EXPECT_OK(certificate);
  if (certificate.ok()) out.certificate = std::move(certificate).value();
  return out;
}

DigestToSign Request(SignatureScheme scheme, HashAlgorithm hash, const std::string& text) {
  DigestToSign request;
  request.scheme = scheme;
  request.hash = hash;
  request.digest = Digest(hash, AsBytes(text));
  return request;
}

// More keys than the cache holds, each checked twice (decoded, then cached; after the cache
// started over, decoded again): good signatures pass, flipped ones fail, a signature by another
// key fails.
TEST(SignatureCheckCacheTest, VerdictsHoldAcrossMoreKeysThanTheCacheKeeps) {
  constexpr int kKeys = 70;  // the cache keeps 64
  std::vector<SigningCertificate> certificates;
  for (int i = 0; i < kKeys; ++i)
    certificates.push_back(Make("cache-" + std::to_string(i), "ec-p256"));
  for (int round = 0; round < 2; ++round) {
    for (int i = 0; i < kKeys; ++i) {
      SCOPED_TRACE("key " + std::to_string(i) + ", round " + std::to_string(round));
      const DigestToSign request =
          Request(SignatureScheme::kEcdsa, HashAlgorithm::kSha256, "payload " + std::to_string(i));
      ASSERT_OK_AND_ASSIGN(Bytes signature,
                           certificates[i].key->SignDigest(request.scheme, request.hash,
                                                           request.digest, std::nullopt));
      EXPECT_OK(CheckReturnedSignature(certificates[i].certificate, request, signature));
      Bytes flipped = signature;
      flipped[flipped.size() / 2] ^= 0x01;
      EXPECT_THAT(CheckReturnedSignature(certificates[i].certificate, request, flipped),
                  StatusIs(ErrorCode::kDataLoss));
      const SigningCertificate& other = certificates[(i + 1) % kKeys];
      EXPECT_THAT(CheckReturnedSignature(other.certificate, request, signature),
                  StatusIs(ErrorCode::kDataLoss));
    }
  }
}

// The fetched digests are per hash: each hash and scheme verifies with its own, and a signature
// over one hash is not accepted as another's.
TEST(SignatureCheckCacheTest, EveryHashAndSchemeUsesItsOwnDigest) {
  SigningCertificate rsa = Make("cache-rsa", "rsa-2048");
  SigningCertificate ec = Make("cache-ec", "ec-p384");
  for (HashAlgorithm hash : {HashAlgorithm::kSha1, HashAlgorithm::kSha224, HashAlgorithm::kSha256,
                             HashAlgorithm::kSha384, HashAlgorithm::kSha512}) {
    for (int repeat = 0; repeat < 2; ++repeat) {
      for (auto [cert, scheme] : {std::pair{&rsa, SignatureScheme::kRsaPkcs1},
                                  std::pair{&rsa, SignatureScheme::kRsaPss},
                                  std::pair{&ec, SignatureScheme::kEcdsa}}) {
        SCOPED_TRACE(std::string(HashName(hash)) + " " + std::string(SchemeName(scheme)));
        DigestToSign request = Request(scheme, hash, "message");
        ASSERT_OK_AND_ASSIGN(Bytes signature,
                             cert->key->SignDigest(scheme, hash, request.digest, std::nullopt));
        EXPECT_OK(CheckReturnedSignature(cert->certificate, request, signature));
        if (scheme == SignatureScheme::kEcdsa) continue;  // ECDSA signs the bytes, not a DigestInfo
        // The same bytes claimed under another hash of equal length cannot verify (PKCS#1 and PSS
        // bind the hash); under SHA-1 vs SHA-256 the lengths differ and the check refuses too.
        DigestToSign other = request;
        other.hash = hash == HashAlgorithm::kSha256 ? HashAlgorithm::kSha384 : HashAlgorithm::kSha256;
        other.digest = Digest(other.hash, AsBytes("message"));
        EXPECT_FALSE(CheckReturnedSignature(cert->certificate, other, signature).ok());
      }
    }
  }
}

}  // namespace
}  // namespace signum::provider

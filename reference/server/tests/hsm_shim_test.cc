// HsmBackend in front of modules that misbehave: libsignum-defect-shim (conformance/pkcs11/shim)
// over a throwaway SoftHSM2 token. The shim reads SIGNUM_SHIM_DEFECT once per process, so ctest
// runs this binary once per defect, each time with a filter for that defect's tests:
//   PssSignDataInvalid.*  SIGNUM_SHIM_DEFECT=pss-sign-data-invalid (openCryptoki's PSS)
//   ThreadUnsafe.*        SIGNUM_SHIM_DEFECT=thread-unsafe (a module that breaks when two threads
//                         are inside C_SignInit/C_Sign at once)
#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <thread>
#include <vector>

#include "hsm_backend.h"
#include "signum/testing/softhsm_token.h"
#include "signum/testing/status_matchers.h"

namespace signum::server {
namespace {

using ::signum::testing::StatusIs;

using ::signum::testing::SoftHsmToken;

constexpr char kLabel[] = "signum-shim-test";
constexpr char kPin[] = "2718-signum";

bool Contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

// A token, and backends over the shim in front of it. Skips when this process runs another
// defect than the test was written for.
class ShimTest : public ::testing::Test {
 protected:
  void SetUpFor(const std::string& defect) {
    const char* injected = std::getenv("SIGNUM_SHIM_DEFECT");
    if (injected == nullptr || injected != defect) {
      GTEST_SKIP() << "run with SIGNUM_SHIM_DEFECT=" << defect << " (ctest does)";
    }
    token_ = std::make_unique<SoftHsmToken>(kLabel, kPin);
    ::setenv("SIGNUM_SHIM_TARGET", token_->module_path().c_str(), 1);
    backend_ = Open(/*serialize_calls=*/false);
  }

  std::unique_ptr<HsmBackend> Open(bool serialize_calls) {
    HsmConfig config{SIGNUM_DEFECT_SHIM, kLabel, kPin, kSigners};
    config.serialize_calls = serialize_calls;
    auto backend = HsmBackend::Open(config);
    EXPECT_OK(backend);
    return backend.ok() ? std::move(*backend) : nullptr;
  }

  HsmKey Generate(std::string_view spec) {
    auto key = backend_->GenerateKeyPair(ParseKeySpec(spec).value(), std::string(spec));
    EXPECT_OK(key);
    if (!key.ok()) std::abort();
    return std::move(*key);
  }

  // kSigners threads sign kRounds times each with `backend`; returns the number of failures.
  static int SignConcurrently(HsmBackend& backend, const HsmKey& key, std::string* first_error) {
    std::atomic<int> failures{0};
    std::mutex error_mu;
    std::vector<std::thread> threads;
    for (size_t t = 0; t < kSigners; ++t) {
      threads.emplace_back([&, t] {
        for (int i = 0; i < kRounds; ++i) {
          const Bytes digest =
              Digest(HashAlgorithm::kSha256, AsBytes(std::to_string(t) + "/" + std::to_string(i)));
          auto signature =
              backend.Sign(key.id, SignatureScheme::kEcdsa, HashAlgorithm::kSha256, digest);
          if (signature.ok()) {
            EXPECT_OK(VerifyDigestSignature(key.public_key, SignatureScheme::kEcdsa,
                                            HashAlgorithm::kSha256, digest, *signature));
            continue;
          }
          if (failures++ == 0) {
            std::lock_guard<std::mutex> lock(error_mu);
            *first_error = signature.status().ToString();
          }
        }
      });
    }
    for (auto& thread : threads) thread.join();
    return failures.load();
  }

  void TearDown() override {
    backend_.reset();
    token_.reset();
  }

  static constexpr size_t kSigners = 4;
  static constexpr int kRounds = 20;
  std::unique_ptr<SoftHsmToken> token_;
  std::unique_ptr<HsmBackend> backend_;
};

class PssSignDataInvalid : public ShimTest {
 protected:
  void SetUp() override { SetUpFor("pss-sign-data-invalid"); }
};

TEST_F(PssSignDataInvalid, ProbeFindsEverythingButPss) {
  const HsmKey rsa = Generate("rsa-2048");
  const HsmKey ec = Generate("ec-p256");
  const HsmStats before = backend_->stats();

  auto probe = backend_->ProbeCapabilities(rsa.id, rsa.public_key);
  ASSERT_OK(probe);
  SignatureCapabilities expected;
  for (const HashInfo& h : AllHashes()) expected.Add(SignatureScheme::kRsaPkcs1, h.algorithm);
  EXPECT_EQ(probe->can_sign, expected) << probe->can_sign.ToString();
  // Every hash failed alike: one reason for the scheme, naming the module's answer.
  ASSERT_EQ(probe->missing.size(), 1u);
  EXPECT_TRUE(Contains(probe->missing[0], "rsa-pss: C_Sign(CKM_RSA_PKCS_PSS): CKR_DATA_INVALID"))
      << probe->missing[0];

  probe = backend_->ProbeCapabilities(ec.id, ec.public_key);
  ASSERT_OK(probe);
  EXPECT_EQ(probe->can_sign, SignatureCapabilities::AllFor(KeyType::kEc));
  EXPECT_TRUE(probe->missing.empty());

  // Probes are not user signatures.
  const HsmStats after = backend_->stats();
  EXPECT_EQ(after.signatures, before.signatures);
  EXPECT_EQ(after.probe_signatures, before.probe_signatures + 10);

  // The backend itself still asks the HSM (the API refuses before it gets here).
  auto pss = backend_->Sign(rsa.id, SignatureScheme::kRsaPss, HashAlgorithm::kSha256, Bytes(32, 1));
  ASSERT_FALSE(pss.ok());
  EXPECT_EQ(pss.status().ck_rv(), CKR_DATA_INVALID);
}

TEST_F(PssSignDataInvalid, SignaturesThatDoNotVerifyCountAsCannot) {
  const HsmKey rsa = Generate("rsa-2048");
  const HsmKey other = Generate("rsa-2048");
  // The token signs fine, but not with the key the certificate names.
  auto probe = backend_->ProbeCapabilities(rsa.id, other.public_key);
  ASSERT_OK(probe);
  EXPECT_TRUE(probe->can_sign.empty()) << probe->can_sign.ToString();
  ASSERT_FALSE(probe->missing.empty());
  EXPECT_TRUE(Contains(probe->missing[0],
                       "rsa-pkcs1: CKM_RSA_PKCS returned a signature that does "
                       "not verify"))
      << probe->missing[0];
}

TEST_F(PssSignDataInvalid, ProblemsThatSayNothingAboutTheKeyFailTheProbe) {
  const HsmKey ec = Generate("ec-p256");
  auto probe = backend_->ProbeCapabilities(Bytes(20, 0x42), ec.public_key);
  ASSERT_THAT(probe, StatusIs(ErrorCode::kNotFound)) << probe.status().ToString();
}

class ThreadUnsafe : public ShimTest {
 protected:
  void SetUp() override { SetUpFor("thread-unsafe"); }
};

TEST_F(ThreadUnsafe, SerializedCallsKeepAnUnsafeModuleWorking) {
  const HsmKey ec = Generate("ec-p256");
  // Without serialisation the module sees threads collide (the defect answers
  // CKR_DEVICE_ERROR where a real module would corrupt its state or crash).
  std::string error;
  EXPECT_GT(SignConcurrently(*backend_, ec, &error), 0)
      << "the shim's thread-unsafe defect was never hit; the test proves nothing";
  EXPECT_TRUE(Contains(error, "CKR_DEVICE_ERROR")) << error;

  std::unique_ptr<HsmBackend> serialized = Open(/*serialize_calls=*/true);
  ASSERT_NE(serialized, nullptr);
  error.clear();
  EXPECT_EQ(SignConcurrently(*serialized, ec, &error), 0) << error;
  EXPECT_EQ(serialized->stats().signatures, kSigners * kRounds);
  EXPECT_OK(serialized->Check());
}

}  // namespace
}  // namespace signum::server

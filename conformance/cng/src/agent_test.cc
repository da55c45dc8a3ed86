// signum_cng_agent_test: the first Windows program of the CNG conformance suite. Under Wine (or
// on Windows) it reaches a real signum-agent over loopback TCP through the shared AgentClient
// (the same protocol code as the Linux providers, Winsock underneath), lists the certificates
// and signs SHA-256 digests with RSA-2048 PKCS#1 v1.5 and PSS. Every signature is written with
// its message and certificate to SIGNUM_CNG_OUTPUT_DIR (manifest.tsv lists them) and verified
// there by native OpenSSL (run-wine-suite.sh): Wine is the caller, never the judge.
//
// Environment: SIGNUM_AGENT_TCP, SIGNUM_AGENT_SECRET_FILE (a Windows path, e.g.
// Z:/tmp/x/agent.secret), SIGNUM_CNG_OUTPUT_DIR (Windows path).
#include <windows.h>
// A block of its own: formatting must not move windows.h after the headers that need it.
#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <memory>
#include <string>

#include "signum/agent/agent_client.h"
#include "signum/core/algorithms.h"
#include "signum/testing/status_matchers.h"
#include "suite_support.h"

namespace signum::cng {
namespace {

using ::signum::testing::StatusIs;

class AgentOverTcp : public ::testing::Test {
 protected:
  void SetUp() override {
    if (EnvironmentValue("SIGNUM_AGENT_TCP").empty() ||
        EnvironmentValue("SIGNUM_CNG_OUTPUT_DIR").empty()) {
      GTEST_SKIP() << "SIGNUM_AGENT_TCP / SIGNUM_CNG_OUTPUT_DIR not set: this program is driven "
                      "by conformance/cng/run-wine-suite.sh (ctest signum_cng_agent_wine)";
    }
    output_dir_ = EnvironmentValue("SIGNUM_CNG_OUTPUT_DIR");
    auto endpoint = agent::AgentEndpointFromEnvironment();
    ASSERT_OK(endpoint);
    ASSERT_FALSE(endpoint->tcp_host.empty()) << "SIGNUM_AGENT_TCP gave no TCP endpoint";
    endpoint_ = *endpoint;
    endpoint_.unix_socket.clear();  // Windows: TCP only
    auto client = agent::AgentClient::Connect(endpoint_, "signum_cng_agent_test/0.1", 10000);
    ASSERT_OK(client);
    client_ = std::move(client).value();
  }

  // The first certificate with an RSA-2048 key that the agent lets us use with scheme + SHA-256.
  const wire::CertificateEntry* FindRsa2048(const wire::CertificateListResponse& list,
                                            SignatureScheme scheme) {
    for (const auto& c : list.certificates) {
      const bool allowed = std::ranges::find(c.schemes, scheme) != c.schemes.end() &&
                           std::ranges::find(c.hashes, HashAlgorithm::kSha256) != c.hashes.end();
      if (c.key.type == KeyType::kRsa && c.key.bits == 2048 && allowed) return &c;
    }
    return nullptr;
  }

  void SignAndRecord(SignatureScheme scheme) {
    auto list = client_->ListCertificates();
    ASSERT_OK(list);
    const wire::CertificateEntry* cert = FindRsa2048(*list, scheme);
    ASSERT_NE(cert, nullptr) << "the agent offers no RSA-2048 certificate for "
                             << SchemeName(scheme) << " with SHA-256";
    const Bytes message = BcryptRandomBytes(1000);
    agent_protocol::SignRequest request;
    request.certificate_id = cert->id;
    request.scheme = scheme;
    request.hash = HashAlgorithm::kSha256;
    request.digest = BcryptDigest(HashAlgorithm::kSha256, message);
    if (scheme == SignatureScheme::kRsaPss) request.pss_salt_length = 32;
    request.context.process = "signum_cng_agent_test.exe";
    request.context.command_line = GetCommandLineA();
    auto signature = client_->Sign(request);
    ASSERT_OK(signature);
    EXPECT_EQ(signature->size(), 256u) << "RSA-2048 signatures are 256 bytes";

    const std::string param =
        request.pss_salt_length ? std::to_string(*request.pss_salt_length) : std::string("-");
    const std::string_view kind = SchemeName(scheme);
    SignatureManifest(output_dir_)
        .Add(cert->label + "-" + std::string(kind), kind, HashAlgorithm::kSha256, message,
             *signature, AsBytes(cert->certificate_pem), param);
  }

  std::string output_dir_;
  agent::AgentEndpoint endpoint_;
  std::unique_ptr<agent::AgentClient> client_;
};

TEST_F(AgentOverTcp, ListsCertificates) {
  auto list = client_->ListCertificates(/*refresh=*/true);
  ASSERT_OK(list);
  ASSERT_FALSE(list->certificates.empty()) << "the demo deployment's agent lists no certificates";
  for (const auto& c : list->certificates) {
    EXPECT_EQ(c.id.size(), 40u) << c.label << ": id is not a SHA-1 thumbprint";
    EXPECT_EQ(c.certificate_pem.rfind("-----BEGIN CERTIFICATE-----", 0), 0u) << c.label;
  }
  std::ofstream(output_dir_ + "/certificates.txt") << list->certificates.size() << '\n';
}

TEST_F(AgentOverTcp, ReportsStatus) {
  auto status = client_->GetStatus();
  ASSERT_OK(status);
  EXPECT_TRUE(status->server_reachable) << status->message;
}

TEST_F(AgentOverTcp, SignsSha256WithRsa2048Pkcs1) { SignAndRecord(SignatureScheme::kRsaPkcs1); }

TEST_F(AgentOverTcp, SignsSha256WithRsa2048Pss) { SignAndRecord(SignatureScheme::kRsaPss); }

TEST_F(AgentOverTcp, RejectsAWrongSecret) {
  agent::AgentEndpoint wrong = endpoint_;
  wrong.secret[0] = wrong.secret[0] == '0' ? '1' : '0';
  auto client = agent::AgentClient::Connect(wrong, "signum_cng_agent_test/0.1", 10000);
  // Protocol 2: the agent proves the secret first, so a client holding another secret refuses
  // the agent itself (its proof does not match) before sending its own.
  ASSERT_FALSE(client.ok()) << "a client with a wrong secret got through the handshake";
  EXPECT_THAT(client, StatusIs(ErrorCode::kPermissionDenied)) << client.status().ToString();
}

}  // namespace
}  // namespace signum::cng

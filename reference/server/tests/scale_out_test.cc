// Two signum-server instances on one HSM token, each with its own agent (docs/performance.md,
// "Past one machine"): both serve signatures that verify against the certificate, both keep an
// audit chain of their own that verifies, and each chain holds exactly its own server's
// signatures. Real processes: SoftHSM2, two servers, two agents, over loopback.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "audit.h"
#include "signum/agent/agent_client.h"
#include "signum/core/crypto.h"
#include "signum/core/files.h"
#include "signum/core/x509.h"
#include "signum/deployment/deployment.h"
#include "signum/testing/loopback.h"
#include "signum/testing/status_matchers.h"
#include "signum/testing/temp_dir.h"

namespace signum::server {
namespace {

namespace fs = std::filesystem;
using deployment::Deployment;
using deployment::DeploymentOptions;

// A free loopback port for server B (server A's comes from init-demo).
int FreePort() {
  const signum::testing::TcpListener listener = signum::testing::ListenLoopbackTcp();
  EXPECT_GE(listener.fd, 0);
  ::close(listener.fd);  // free again: server B binds it a moment later
  return listener.port;
}

// Signs `count` digests through the agent at `socket` with the certificate labelled `label` and
// verifies each against the certificate the agent listed.
void SignThrough(const std::string& socket, const std::string& label, int count) {
  agent::AgentEndpoint endpoint;
  endpoint.unix_socket = socket;
  ASSERT_OK_AND_ASSIGN(auto client, agent::AgentClient::Connect(endpoint, "scale-out-test"));
  ASSERT_OK_AND_ASSIGN(auto list, client->ListCertificates(true));
  const wire::CertificateEntry* entry = nullptr;
  for (const auto& c : list.certificates)
    if (c.label == label) entry = &c;
  ASSERT_NE(entry, nullptr) << "no certificate '" << label << "' through " << socket;
  ASSERT_OK_AND_ASSIGN(auto certificate, Certificate::FromPem(entry->certificate_pem));
  ASSERT_OK_AND_ASSIGN(PublicKey key, certificate.GetPublicKey());
  for (int i = 0; i < count; ++i) {
    agent_protocol::SignRequest request;
    request.certificate_id = entry->id;
    request.scheme = SignatureScheme::kEcdsa;
    request.hash = HashAlgorithm::kSha256;
    request.digest = Digest(HashAlgorithm::kSha256, AsBytes(socket + std::to_string(i)));
    request.context.process = "scale-out-test";
    ASSERT_OK_AND_ASSIGN(Bytes signature, client->Sign(request));
    EXPECT_OK(VerifyDigestSignature(key, request.scheme, request.hash, request.digest, signature));
  }
}

// Allowed signatures recorded in an audit log.
int AllowedSignatures(const std::string& audit_log) {
  std::ifstream in(audit_log);
  int allowed = 0;
  for (std::string line; std::getline(in, line);) {
    auto record = nlohmann::json::parse(line, nullptr, false);
    if (record.is_discarded()) continue;
    const auto& event = record["event"];
    if (event.value("type", "") == "sign" && event.value("decision", "") == "allowed") ++allowed;
  }
  return allowed;
}

TEST(ScaleOutTest, TwoServersOnOneTokenBothServeAndKeepChainsOfTheirOwn) {
  signum::testing::TempDir work("signum-scale-out");
  // Server A: a demo deployment (SoftHSM2 token, state, CA, credentials) with its agent.
  DeploymentOptions options_a;
  options_a.directory = work.path() + "/a";
  options_a.keys = {"ec-p256"};
  options_a.agent_tcp = false;
  ASSERT_OK_AND_ASSIGN(auto a, Deployment::Create(options_a));
  ASSERT_OK(a->Up());

  // Server B: the same token, state and credentials (shared), its own port, audit log, head copy
  // and logs. Its directory borrows A's CA and credentials, so B's agent trusts B and logs in as
  // the same user.
  const std::string b_dir = work.path() + "/b";
  fs::create_directories(b_dir);
  fs::create_symlink(a->File("ca"), b_dir + "/ca");
  fs::create_symlink(a->File("credentials"), b_dir + "/credentials");
  ASSERT_OK_AND_ASSIGN(std::string a_config, ReadFile(a->server_config()));
  nlohmann::json config = nlohmann::json::parse(a_config);
  config["listen"]["port"] = FreePort();
  config["audit_log"] = b_dir + "/audit/audit.log";
  config["audit_head_copy"] = b_dir + "/audit-head-copy";
  config["log"]["file"] = b_dir + "/logs/server.log";
  fs::create_directories(b_dir + "/audit");
  fs::create_directories(b_dir + "/logs");
  ASSERT_OK(WriteFileAtomically(b_dir + "/server.json", config.dump(2)));
  DeploymentOptions options_b;
  options_b.directory = b_dir;
  options_b.agent_tcp = false;
  ASSERT_OK_AND_ASSIGN(auto b, Deployment::Create(options_b));
  ASSERT_OK(b->Up());

  // Both serve, interleaved, on the one token.
  for (int round = 0; round < 3; ++round) {
    SignThrough(a->agent_socket(), "ec-p256", 4);
    SignThrough(b->agent_socket(), "ec-p256", 4);
  }
  ASSERT_OK(b->Down());
  ASSERT_OK(a->Down());

  // Each chain verifies (against its own head copy) and holds its own server's signatures only.
  const std::string a_log = a->File("audit/audit.log");
  ASSERT_OK_AND_ASSIGN(AuditVerifyReport report_a,
                       VerifyAuditLog(a_log, a->File("state.json.audit-head")));
  ASSERT_OK_AND_ASSIGN(AuditVerifyReport report_b,
                       VerifyAuditLog(b_dir + "/audit/audit.log", b_dir + "/audit-head-copy"));
  EXPECT_TRUE(report_a.tail_checked());
  EXPECT_TRUE(report_b.tail_checked());
  EXPECT_EQ(AllowedSignatures(a_log), 12);
  EXPECT_EQ(AllowedSignatures(b_dir + "/audit/audit.log"), 12);
  EXPECT_NE(report_a.last_hash, report_b.last_hash);
}

}  // namespace
}  // namespace signum::server

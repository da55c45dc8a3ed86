// libsignumpkcs11.so through dlopen against the in-process FakeAgent: the bridge's sign path and
// its error mapping (agent error -> CK_RV, ck_status.cc) in milliseconds, without a server, an HSM
// or a deployment. Every signature is verified with OpenSSL against the certificate the fake agent
// listed. provider_e2e_test.cc keeps the same paths covered against the real agent and server.
#include <gtest/gtest.h>
#include <unistd.h>

#include <memory>
#include <string>
#include <vector>

#include "module_test_util.h"
#include "recorded_trace.h"
#include "signum/agent/fake_agent.h"
#include "signum/core/crypto.h"
#include "signum/core/x509.h"
#include "signum/testing/status_matchers.h"
#include "signum/testing/temp_dir.h"
#include "signum/testing/test_pki.h"

namespace signum::pkcs11::testing {
namespace {

using agent::testing::FakeAgent;
using agent_protocol::MessageType;
using signum::testing::SharedTestPki;
using signum::testing::TempDir;

class FakeAgentModuleTest : public ::testing::Test {
 protected:
  FakeAgentModuleTest()
      : dir_("signum-p11-fake"),
        agent_(FakeAgent::Start({.dir = dir_.path()}).value()),
        socket_("SIGNUM_AGENT_SOCKET", agent_->unix_socket()),
        tcp_("SIGNUM_AGENT_TCP", std::nullopt),
        pin_("SIGNUM_PKCS11_PIN", std::nullopt),
        label_("SIGNUM_TOKEN_LABEL", std::nullopt),
        trace_("SIGNUM_PKCS11_TRACE", std::nullopt),
        record_("SIGNUM_PKCS11_RECORD", std::nullopt) {}

  // The private key object labelled `label`.
  static CK_OBJECT_HANDLE PrivateKey(CK_SESSION_HANDLE s, const std::string& label) {
    CK_OBJECT_CLASS klass = CKO_PRIVATE_KEY;
    auto found = Find(s, {{CKA_CLASS, &klass, sizeof klass},
                          {CKA_LABEL, const_cast<char*>(label.data()), label.size()}});
    EXPECT_EQ(found.size(), 1u) << label;
    return found.empty() ? CK_INVALID_HANDLE : found[0];
  }

  static CK_RV Sign(CK_SESSION_HANDLE s, CK_MECHANISM_TYPE type, CK_OBJECT_HANDLE key,
                    const Bytes& data, Bytes* signature) {
    CK_MECHANISM mechanism{type, nullptr, 0};
    const CK_RV init = F()->C_SignInit(s, &mechanism, key);
    if (init != CKR_OK) return init;
    signature->resize(1024);
    CK_ULONG length = signature->size();
    const CK_RV rv = F()->C_Sign(s, const_cast<uint8_t*>(data.data()), data.size(),
                                 signature->data(), &length);
    signature->resize(rv == CKR_OK ? length : 0);
    return rv;
  }

  TempDir dir_;
  std::unique_ptr<FakeAgent> agent_;
  ScopedEnv socket_, tcp_, pin_, label_, trace_, record_;
};

TEST_F(FakeAgentModuleTest, SignsRsaAndEcdsaAndEverySignatureVerifies) {
  const wire::CertificateEntry rsa = agent_->AddLeaf(SharedTestPki(), "rsa", "rsa-2048");
  const wire::CertificateEntry ec = agent_->AddLeaf(SharedTestPki(), "ec", "ec-p256");
  Initialized init;
  const CK_SESSION_HANDLE s = OpenSession();
  const Bytes data = Bytes{'b', 'u', 'i', 'l', 'd'};
  const struct {
    const wire::CertificateEntry* entry;
    CK_MECHANISM_TYPE mechanism;
    SignatureScheme scheme;
  } cases[] = {{&rsa, CKM_SHA256_RSA_PKCS, SignatureScheme::kRsaPkcs1},
               {&ec, CKM_ECDSA_SHA256, SignatureScheme::kEcdsa}};
  for (const auto& c : cases) {
    SCOPED_TRACE(c.entry->label);
    Bytes signature;
    ASSERT_RV(CKR_OK, Sign(s, c.mechanism, PrivateKey(s, c.entry->label), data, &signature));
    ASSERT_OK_AND_ASSIGN(Certificate cert, Certificate::FromPem(c.entry->certificate_pem));
    ASSERT_OK_AND_ASSIGN(PublicKey key, cert.GetPublicKey());
    EXPECT_OK(VerifyDigestSignature(key, c.scheme, HashAlgorithm::kSha256,
                                    Digest(HashAlgorithm::kSha256, data), signature,
                                    std::nullopt));
  }
  ASSERT_EQ(agent_->sign_requests().size(), 2u);
  EXPECT_EQ(agent_->sign_requests()[0].certificate_id, rsa.id);
  EXPECT_EQ(agent_->sign_requests()[0].digest, Digest(HashAlgorithm::kSha256, data));
  F()->C_CloseSession(s);
}

// The agent's error codes become the CK_RVs docs/pkcs11-provider.md lists, and a signature that
// does not verify is CKR_DEVICE_ERROR, never returned.
TEST_F(FakeAgentModuleTest, AgentErrorsMapToTheDocumentedReturnValues) {
  const wire::CertificateEntry ec = agent_->AddLeaf(SharedTestPki(), "ec", "ec-p256");
  Initialized init;
  const CK_SESSION_HANDLE s = OpenSession();
  const CK_OBJECT_HANDLE key = PrivateKey(s, "ec");
  const struct {
    Status error;
    CK_RV expected;
  } cases[] = {{PermissionDeniedError("policy says no"), CKR_FUNCTION_REJECTED},
               {UnauthenticatedError("agent not logged in"), CKR_USER_NOT_LOGGED_IN},
               {UnavailableError("server unreachable"), CKR_DEVICE_ERROR},
               {NotFoundError("certificate gone"), CKR_KEY_HANDLE_INVALID},
               {ResourceExhaustedError("rate limited"), CKR_DEVICE_MEMORY}};
  Bytes signature;
  for (const auto& c : cases) {
    SCOPED_TRACE(c.error.ToString());
    agent_->FailNext(MessageType::kSign, c.error);
    EXPECT_RV(c.expected, Sign(s, CKM_ECDSA_SHA256, key, Bytes{'x'}, &signature));
  }
  agent_->SetSignHandler([](const wire::SignRequest&) -> Result<Bytes> { return Bytes(64, 7); });
  EXPECT_RV(CKR_DEVICE_ERROR, Sign(s, CKM_ECDSA_SHA256, key, Bytes{'x'}, &signature));
  agent_->SetSignHandler(nullptr);
  EXPECT_RV(CKR_OK, Sign(s, CKM_ECDSA_SHA256, key, Bytes{'x'}, &signature));
  F()->C_CloseSession(s);
}

// SIGNUM_PKCS11_RECORD: the module writes trace format v1 itself, beside the text trace. Every call
// is there with its return value, the PINs nowhere, the signature as returned (it verifies), and
// each failure with the reason the module knows ("error").
TEST_F(FakeAgentModuleTest, RecordsTheSessionAsTraceFormatV1WithTheReasonOfEachFailure) {
  const wire::CertificateEntry rsa = agent_->AddLeaf(SharedTestPki(), "rsa", "rsa-2048");
  const std::string pin = "fake-pin-31415", wrong_pin = "wrong-pin-27182";
  const std::string file = dir_.path() + "/session.jsonl", text_file = dir_.path() + "/trace.log";
  Bytes signature;
  {
    ScopedEnv record("SIGNUM_PKCS11_RECORD", file), trace("SIGNUM_PKCS11_TRACE", text_file),
        pin_env("SIGNUM_PKCS11_PIN", pin);
    Initialized init;
    const CK_SESSION_HANDLE s = OpenSession();
    auto utf8 = [](const std::string& p) {
      return reinterpret_cast<CK_UTF8CHAR_PTR>(const_cast<char*>(p.data()));
    };
    EXPECT_RV(CKR_PIN_INCORRECT, F()->C_Login(s, CKU_USER, utf8(wrong_pin), wrong_pin.size()));
    ASSERT_RV(CKR_OK, F()->C_Login(s, CKU_USER, utf8(pin), pin.size()));
    const CK_OBJECT_HANDLE key = PrivateKey(s, "rsa");
    ASSERT_RV(CKR_OK, Sign(s, CKM_SHA256_RSA_PKCS, key, Bytes{'r', 'e', 'c'}, &signature));
    agent_->FailNext(MessageType::kSign, PermissionDeniedError("policy says no"));
    EXPECT_RV(CKR_FUNCTION_REJECTED, Sign(s, CKM_SHA256_RSA_PKCS, key, Bytes{'x'}, &signature));
    EXPECT_RV(CKR_OK, F()->C_CloseSession(s));
  }
  const RecordedTrace trace = ReadRecordedTrace(file);
  EXPECT_EQ(trace.header["kind"], "signum-pkcs11-trace");
  EXPECT_EQ(trace.header["recorder"], "libsignumpkcs11.so");
  EXPECT_EQ(trace.header["module"], kModulePath);  // dladdr: the path it was loaded from
  EXPECT_EQ(trace.header["pid"], static_cast<long>(::getpid()));

  const std::vector<std::string> expected = {
      "C_Initialize",      "C_OpenSession", "C_Login",       "C_Login",
      "C_FindObjectsInit", "C_FindObjects", "C_FindObjects", "C_FindObjectsFinal",
      "C_SignInit",        "C_Sign",        "C_SignInit",    "C_Sign",
      "C_CloseSession",    "C_Finalize"};
  EXPECT_EQ(trace.Functions(), expected);
  // seq counts the calls of the process (earlier tests recorded too): consecutive here.
  for (size_t i = 1; i < trace.calls.size(); ++i) {
    EXPECT_EQ(trace.calls[i]["seq"], trace.calls[0]["seq"].get<uint64_t>() + i);
  }

  // The PINs: their length only, never their bytes.
  EXPECT_EQ(trace.bytes.find(pin), std::string::npos) << "the PIN leaked into the trace";
  EXPECT_EQ(trace.bytes.find(wrong_pin), std::string::npos) << "a PIN leaked into the trace";
  EXPECT_EQ(trace.bytes.find(HexEncode(AsBytes(pin))), std::string::npos);
  ASSERT_EQ(trace.Calls("C_Login", CKR_OK).size(), 1u);
  const nlohmann::json login = trace.Calls("C_Login", CKR_OK)[0];
  EXPECT_EQ(login["args"]["pPin"], (nlohmann::json{{"redacted", true}, {"length", pin.size()}}));

  // The recorded signature is the one returned, and it verifies against the certificate.
  ASSERT_EQ(trace.Calls("C_Sign", CKR_OK).size(), 1u);
  const nlohmann::json sign = trace.Calls("C_Sign", CKR_OK)[0];
  EXPECT_EQ(RecordedBytes(sign["args"]["pData"]), (Bytes{'r', 'e', 'c'}));
  const Bytes recorded = RecordedBytes(sign["out"]["pSignature"]);
  ASSERT_OK_AND_ASSIGN(Certificate cert, Certificate::FromPem(rsa.certificate_pem));
  ASSERT_OK_AND_ASSIGN(PublicKey public_key, cert.GetPublicKey());
  EXPECT_OK(VerifyDigestSignature(public_key, SignatureScheme::kRsaPkcs1, HashAlgorithm::kSha256,
                                  Digest(HashAlgorithm::kSha256, Bytes{'r', 'e', 'c'}), recorded,
                                  std::nullopt));
  EXPECT_FALSE(sign.contains("error"));

  // Failures carry why, as the module knows it.
  ASSERT_EQ(trace.Calls("C_Login", CKR_PIN_INCORRECT).size(), 1u);
  EXPECT_NE(trace.Calls("C_Login", CKR_PIN_INCORRECT)[0].value("error", "").find("wrong PIN"),
            std::string::npos);
  ASSERT_EQ(trace.Calls("C_Sign", CKR_FUNCTION_REJECTED).size(), 1u);
  const nlohmann::json rejected = trace.Calls("C_Sign", CKR_FUNCTION_REJECTED)[0];
  EXPECT_EQ(rejected["rv"]["name"], "CKR_FUNCTION_REJECTED");
  EXPECT_NE(rejected.value("error", "").find("policy says no"), std::string::npos) << rejected;

  // The text trace was on at the same time, unchanged.
  const std::string text = ReadFile(text_file).value();
  EXPECT_NE(text.find("C_Sign = CKR_FUNCTION_REJECTED"), std::string::npos);
  EXPECT_NE(text.find("  ERROR: PERMISSION_DENIED"), std::string::npos) << text;
  EXPECT_EQ(text.find(pin), std::string::npos);

  // Recording ends with the environment variable, at the next C_Initialize.
  const size_t size = ReadFile(file).value().size();
  { Initialized init; }
  EXPECT_EQ(ReadFile(file).value().size(), size);
}

}  // namespace
}  // namespace signum::pkcs11::testing

// signum-conformance-ctk: conformance/ctk's Linux driver. A test-only host that does what macOS's
// token framework does with the Signum token extension — make the token, enumerate its keychain
// items, open sessions, ask supportsOperation for every algorithm x key, call signData, read the
// TKError that comes back — but calls the CTK core (reference/providers/ctk/core) directly.
// Every signature is judged by OpenSSL against the certificate (common/openssl_check.h).
//
//   signum-conformance-ctk --fake-agent [--junit FILE]
//       an in-process fake agent (software keys: RSA 2048/3072, EC P-256/P-384, one RSA key whose
//       server offers two pairs only); agent.down stops it for real
//   signum-conformance-ctk --agent-from-environment [--stop-agent-command CMD] [--junit FILE]
//       the agent of a running deployment (SIGNUM_AGENT_SOCKET / SIGNUM_AGENT_TCP, as providers
//       read them): the real agent, server and HSM; CMD stops the agent for agent.down
//
// Exit status: 0 when every check passed, 1 when one failed, 2 on a usage or setup error.
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "../common/openssl_check.h"
#include "../common/suite.h"
#include "signum/agent/agent_client.h"
#include "signum/agent/fake_agent.h"
#include "signum/core/crypto.h"
#include "signum/core/encoding.h"
#include "signum/core/x509.h"
#include "signum/ctk/key_algorithms.h"
#include "signum/ctk/token.h"
#include "signum/testing/temp_dir.h"
#include "signum/testing/test_pki.h"

namespace signum::conformance::ctk {
namespace {

using namespace signum::ctk;  // NOLINT: the driver speaks the token's vocabulary throughout

constexpr TokenOperation kAllOperations[] = {
    TokenOperation::kNone, TokenOperation::kReadData, TokenOperation::kSignData,
    TokenOperation::kDecryptData, TokenOperation::kPerformKeyExchange};

// One key of the token as the suite sees it: the agent's word (capabilities) and OpenSSL's
// reading of the certificate, never the core's.
struct KeyUnderTest {
  std::string label;
  Bytes object_id;  // what the agent's id says the thumbprint is
  CertificateFacts facts;
  SignatureCapabilities offered;
  int curve_bytes = 0;  // EC: field size
};

Bytes ToBytes(std::string_view text) {
  const ByteView view = AsBytes(text);
  return Bytes(view.begin(), view.end());
}

std::string Describe(const KeyUnderTest& key, const KeyAlgorithmInfo& info) {
  return key.label + " " + std::string(info.constant_name);
}

std::string DescribeError(const std::optional<TkError>& error) {
  return error ? TkErrorCodeName(error->code) + " (" + error->description + ")"
               : std::string("a signature");
}

// What macOS's token framework does for SecKeyCreateSignature on one of the token's keys: a
// session, supportsOperation with the target algorithm, and signData only after a YES.
class FrameworkHost {
 public:
  explicit FrameworkHost(Token* token) : token_(token) {}
  TkOutcome<Bytes> CreateSignature(ByteView key_id, SecKeyAlgorithm algorithm, ByteView data) {
    auto session = token_->CreateSession();
    const KeyAlgorithmRequest request(algorithm);
    if (!session->SupportsOperation(TokenOperation::kSignData, key_id, request)) {
      TkOutcome<Bytes> refused;
      refused.error = TkError{TkErrorCode::kNotImplemented,
                              "framework: the token does not support the algorithm for the key"};
      return refused;
    }
    return session->SignDataAtBoundary(data, key_id, request);
  }

 private:
  Token* token_;
};

class Driver {
 public:
  Driver(Report* report, Token* token, std::vector<KeyUnderTest> keys)
      : report_(*report), token_(*token), host_(token), keys_(std::move(keys)) {}

  void Items();
  void SupportsMatrix();
  void Sign();
  void Negatives();
  void Concurrent();

 private:
  // Signs `input` with the host and has OpenSSL verify over `digest`; feeds the checks named.
  void SignAndJudge(const KeyUnderTest& key, const KeyAlgorithmInfo& info, std::string_view check,
                    ByteView input, HashAlgorithm hash, ByteView digest);

  Report& report_;
  Token& token_;
  FrameworkHost host_;
  std::vector<KeyUnderTest> keys_;
};

void Driver::Items() {
  auto contents = ReturnAtTkBoundary<KeychainContents>("keychainContents",
                                                       [&] { return token_.KeychainItems(); });
  const std::string_view per_cert = "items.certificate_and_key_per_certificate";
  if (!contents.ok()) {
    report_.Fail(per_cert, "the token's keychain contents: " + DescribeError(contents.error));
    return;
  }
  report_.Expect(per_cert,
                 contents.value->certificates.size() == keys_.size() &&
                     contents.value->keys.size() == keys_.size(),
                 "the agent lists " + std::to_string(keys_.size()) +
                     " certificates; the token has " +
                     std::to_string(contents.value->certificates.size()) + " certificate and " +
                     std::to_string(contents.value->keys.size()) + " key items");
  for (const KeyUnderTest& key : keys_) {
    const KeychainCertificateItem* certificate = contents.value->FindCertificate(key.facts.sha1);
    const KeychainKeyItem* item = contents.value->FindKey(key.facts.sha1);
    report_.Expect(per_cert, certificate != nullptr && item != nullptr,
                   key.label + ": no certificate or key item under the certificate's thumbprint " +
                       HexEncode(key.facts.sha1));
    if (certificate == nullptr || item == nullptr) continue;
    const std::string_view ids = "items.object_ids_are_thumbprints";
    report_.Expect(ids,
                   certificate->object_id == key.facts.sha1 && item->object_id == key.facts.sha1,
                   key.label + ": object IDs are not the SHA-1 thumbprint");
    report_.Expect(ids, key.object_id == key.facts.sha1,
                   key.label + ": the agent's id is not the certificate's SHA-1 thumbprint");
    report_.Expect(ids, certificate->der == key.facts.der,
                   key.label + ": the certificate item's DER is not the agent's certificate");
    const std::string_view attributes = "items.key_attributes";
    const KeychainKeyType type = key.facts.type == KeyType::kRsa
                                     ? KeychainKeyType::kRsa
                                     : KeychainKeyType::kEcSecPrimeRandom;
    report_.Expect(
        attributes, item->key_type == type && item->key_size_in_bits == key.facts.bits,
        key.label + ": key type/size " + std::string(KeychainKeyTypeConstantName(item->key_type)) +
            "/" + std::to_string(item->key_size_in_bits) + ", the certificate says " +
            std::string(KeychainKeyTypeConstantName(type)) + "/" + std::to_string(key.facts.bits));
    report_.Expect(attributes, item->label == key.label && certificate->label == key.label,
                   key.label + ": label '" + item->label + "'");
    report_.Expect(attributes, item->public_key_data == key.facts.public_key_data,
                   key.label + ": publicKeyData is not the certificate's public key");
    report_.Expect(
        attributes,
        item->public_key_hash == Digest(HashAlgorithm::kSha1, key.facts.public_key_data),
        key.label + ": the public key hash (kSecAttrApplicationLabel) is not its SHA-1");
    report_.Expect(attributes,
                   item->can_sign && !item->can_decrypt && !item->can_perform_key_exchange &&
                       !item->suitable_for_login,
                   key.label + ": must sign and do nothing else");
  }
}

void Driver::SupportsMatrix() {
  auto session = token_.CreateSession();
  for (const KeyUnderTest& key : keys_) {
    for (const KeyAlgorithmInfo& info : AllKeyAlgorithms()) {
      for (TokenOperation operation : kAllOperations) {
        const bool expected = operation == TokenOperation::kSignData &&
                              ExpectedSupport(info, key.facts.type, key.offered);
        const bool answer = session->SupportsOperation(operation, key.object_id,
                                                       KeyAlgorithmRequest(info.algorithm));
        report_.Expect("supports.algorithm_matrix", answer == expected,
                       Describe(key, info) + " operation " +
                           std::to_string(static_cast<long>(operation)) + ": answered " +
                           (answer ? "YES" : "NO") + ", expected " + (expected ? "YES" : "NO"));
      }
    }
  }
}

void Driver::SignAndJudge(const KeyUnderTest& key, const KeyAlgorithmInfo& info,
                          std::string_view check, ByteView input, HashAlgorithm hash,
                          ByteView digest) {
  const std::string what =
      Describe(key, info) + " (" + std::to_string(input.size()) + "-byte input)";
  auto outcome = host_.CreateSignature(key.object_id, info.algorithm, input);
  if (!outcome.ok()) {
    report_.Fail(check, what + ": " + DescribeError(outcome.error));
    return;
  }
  const SignatureScheme scheme = *info.signature_scheme();
  const std::string verdict = VerifySignature(key.facts.der, scheme, hash, digest, *outcome.value);
  report_.Expect(check, verdict.empty(), what + ": " + verdict);
  if (scheme == SignatureScheme::kEcdsa) {
    const std::string der = CheckCanonicalEcdsaDer(*outcome.value);
    report_.Expect("sign.ecdsa_der", der.empty(), what + ": " + der);
  }
  if (scheme == SignatureScheme::kRsaPss) {
    report_.Expect("sign.pss_salt_is_hash_length", verdict.empty(),
                   what + ": does not verify with MGF1(" + std::string(HashName(hash)) +
                       ") and a " + std::to_string(digest.size()) + "-byte salt: " + verdict);
  }
}

void Driver::Sign() {
  for (const KeyUnderTest& key : keys_) {
    for (const KeyAlgorithmInfo& info : AllKeyAlgorithms()) {
      if (!ExpectedSupport(info, key.facts.type, key.offered)) continue;
      const Bytes message =
          ToBytes("conformance/ctk " + key.label + " " + std::string(info.constant_name));
      switch (info.input) {
        case AlgorithmInput::kMessage: {
          const HashAlgorithm hash = *info.hash_algorithm();
          SignAndJudge(key, info, "sign.message", message, hash, Digest(hash, message));
          break;
        }
        case AlgorithmInput::kDigest: {
          const HashAlgorithm hash = *info.hash_algorithm();
          const Bytes digest = Digest(hash, message);
          SignAndJudge(key, info, "sign.digest", digest, hash, digest);
          break;
        }
        case AlgorithmInput::kDigestInfo:
          for (const SchemeAndHash& pair : key.offered.Pairs()) {
            if (pair.scheme != SignatureScheme::kRsaPkcs1) continue;
            const Bytes digest = Digest(pair.hash, message);
            SignAndJudge(key, info, "sign.digest_info", BuildDigestInfo(pair.hash, digest).value(),
                         pair.hash, digest);
          }
          break;
        case AlgorithmInput::kAnyLengthDigest:
          // A digest of every offered ECDSA hash (64 bytes into P-256: truncated by the HSM), and
          // a 40-byte input, which is no hash's length (truncated for P-256, zero-padded to 48
          // bytes for P-384): OpenSSL applies X9.62's rules to the same bytes.
          for (const SchemeAndHash& pair : key.offered.Pairs()) {
            if (pair.scheme != SignatureScheme::kEcdsa) continue;
            const Bytes digest = Digest(pair.hash, message);
            SignAndJudge(key, info, "sign.any_length_digest", digest, pair.hash, digest);
          }
          {
            const HashAlgorithm label =
                key.curve_bytes == 32 ? HashAlgorithm::kSha256 : HashAlgorithm::kSha384;
            const Bytes forty(40, 0x3c);
            if (key.offered.Allows(SignatureScheme::kEcdsa, label)) {
              SignAndJudge(key, info, "sign.any_length_digest", forty, label, forty);
            }
          }
          break;
        default:
          report_.Fail("supports.algorithm_matrix",
                       Describe(key, info) + ": the suite expected support for this input kind");
      }
    }
  }
}

void Driver::Negatives() {
  auto session = token_.CreateSession();
  for (const KeyUnderTest& key : keys_) {
    for (const KeyAlgorithmInfo& info : AllKeyAlgorithms()) {
      const size_t length =
          info.hash_algorithm() ? GetHashInfo(*info.hash_algorithm()).digest_size : 32;
      if (!ExpectedSupport(info, key.facts.type, key.offered)) {
        // A framework that skipped supportsOperation must still get an error, not a signature.
        auto outcome = session->SignDataAtBoundary(Bytes(length, 0x11), key.object_id,
                                                   KeyAlgorithmRequest(info.algorithm));
        report_.Expect("negative.unsupported_algorithm",
                       !outcome.ok() && outcome.error->code == TkErrorCode::kNotImplemented,
                       Describe(key, info) + ": " + DescribeError(outcome.error));
        continue;
      }
      if (info.input != AlgorithmInput::kDigest) continue;
      for (size_t wrong : {length - 1, length + 1}) {
        auto outcome = session->SignDataAtBoundary(Bytes(wrong, 0x22), key.object_id,
                                                   KeyAlgorithmRequest(info.algorithm));
        report_.Expect("negative.wrong_length_digest",
                       !outcome.ok() && outcome.error->code == TkErrorCode::kBadParameter,
                       Describe(key, info) + " with " + std::to_string(wrong) +
                           " bytes: " + DescribeError(outcome.error));
      }
    }
  }
  const KeyAlgorithmRequest request(SecKeyAlgorithm::kECDSASignatureDigestX962SHA256);
  Bytes longer = keys_.front().object_id;
  longer.push_back(0);
  for (const Bytes& id : {Bytes(20, 0xee), Bytes(), longer}) {
    auto outcome = session->SignDataAtBoundary(Bytes(32, 1), id, request);
    report_.Expect("negative.unknown_key",
                   !outcome.ok() && outcome.error->code == TkErrorCode::kObjectNotFound,
                   "object ID " + HexEncode(id) + ": " + DescribeError(outcome.error));
    report_.Expect("negative.unknown_key",
                   !session->SupportsOperation(TokenOperation::kSignData, id, request),
                   "supportsOperation said YES for unknown object ID " + HexEncode(id));
  }
}

void Driver::Concurrent() {
  constexpr int kThreads = 8, kEach = 4;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([this, t] {
      const KeyUnderTest& key = keys_[static_cast<size_t>(t) % keys_.size()];
      // A message algorithm this key signs with (one per thread, spread over the hashes).
      std::vector<const KeyAlgorithmInfo*> usable;
      for (const KeyAlgorithmInfo& info : AllKeyAlgorithms()) {
        if (info.input == AlgorithmInput::kMessage &&
            ExpectedSupport(info, key.facts.type, key.offered)) {
          usable.push_back(&info);
        }
      }
      if (usable.empty()) return;
      const KeyAlgorithmInfo& info = *usable[static_cast<size_t>(t) % usable.size()];
      auto session = token_.CreateSession();
      for (int i = 0; i < kEach; ++i) {
        const Bytes data = ToBytes("session " + std::to_string(t) + " item " + std::to_string(i));
        auto outcome =
            session->SignDataAtBoundary(data, key.object_id, KeyAlgorithmRequest(info.algorithm));
        if (!outcome.ok()) {
          report_.Fail("sessions.concurrent",
                       Describe(key, info) + ": " + DescribeError(outcome.error));
          continue;
        }
        const HashAlgorithm hash = *info.hash_algorithm();
        const std::string verdict = VerifySignature(key.facts.der, *info.signature_scheme(), hash,
                                                    Digest(hash, data), *outcome.value);
        report_.Expect("sessions.concurrent", verdict.empty(),
                       Describe(key, info) + ": " + verdict);
      }
    });
  }
  for (auto& thread : threads) thread.join();
}

// agent.down, part 1: a token made while no agent listens (the extension started before the
// agent): no items, no support, CommunicationError, all within a second or two.
void AgentDownFromTheStart(Report& report, const std::vector<KeyUnderTest>& keys) {
  signum::testing::TempDir dir("signum-ctk-down");
  provider::AgentPoolOptions options;
  agent::AgentEndpoint absent;
  absent.unix_socket = dir.path() + "/agent.sock";
  options.endpoint = absent;
  options.timeout_ms = 3000;
  Token token(options);
  const auto start = std::chrono::steady_clock::now();
  auto contents = ReturnAtTkBoundary<KeychainContents>("keychainContents",
                                                       [&] { return token.KeychainItems(); });
  report.Expect("agent.down",
                !contents.ok() && contents.error->code == TkErrorCode::kCommunicationError,
                "keychain contents without an agent: " +
                    (contents.ok() ? std::string("listed items") : DescribeError(contents.error)));
  auto session = token.CreateSession();
  const KeyUnderTest& key = keys.front();
  const SecKeyAlgorithm algorithm = key.facts.type == KeyType::kRsa
                                        ? SecKeyAlgorithm::kRSASignatureMessagePKCS1v15SHA256
                                        : SecKeyAlgorithm::kECDSASignatureMessageX962SHA256;
  report.Expect("agent.down",
                !session->SupportsOperation(TokenOperation::kSignData, key.object_id,
                                            KeyAlgorithmRequest(algorithm)),
                "supportsOperation said YES without an agent");
  auto outcome =
      session->SignDataAtBoundary(ToBytes("x"), key.object_id, KeyAlgorithmRequest(algorithm));
  report.Expect("agent.down",
                !outcome.ok() && outcome.error->code == TkErrorCode::kCommunicationError,
                "signData without an agent: " + DescribeError(outcome.error));
  report.Expect("agent.down", std::chrono::steady_clock::now() - start < std::chrono::seconds(5),
                "an absent agent cost more than 5 s");
}

// agent.down, part 2: the agent stops under a loaded token: signData fails as a communication
// error (not a hang, not a signature), every time.
void AgentStopsUnderALoadedToken(Report& report, Token& token,
                                 const std::vector<KeyUnderTest>& keys,
                                 const std::function<bool()>& stop_agent) {
  if (!stop_agent()) {
    report.Fail("agent.down", "could not stop the agent");
    return;
  }
  auto session = token.CreateSession();
  for (const KeyUnderTest& key : keys) {
    const SecKeyAlgorithm algorithm = key.facts.type == KeyType::kRsa
                                          ? SecKeyAlgorithm::kRSASignatureMessagePKCS1v15SHA256
                                          : SecKeyAlgorithm::kECDSASignatureMessageX962SHA256;
    const auto start = std::chrono::steady_clock::now();
    auto outcome = session->SignDataAtBoundary(ToBytes("after the agent stopped"), key.object_id,
                                               KeyAlgorithmRequest(algorithm));
    report.Expect(
        "agent.down", !outcome.ok() && outcome.error->code == TkErrorCode::kCommunicationError,
        key.label + ": signData after the agent stopped: " + DescribeError(outcome.error));
    report.Expect("agent.down", std::chrono::steady_clock::now() - start < std::chrono::seconds(10),
                  key.label + ": signData after the agent stopped took more than 10 s");
  }
}

// The keys the agent lists, read by the suite itself (its own connection, OpenSSL's parse).
std::optional<std::vector<KeyUnderTest>> KeysFromAgent(const agent::AgentEndpoint& endpoint,
                                                       std::string* error) {
  auto client = agent::AgentClient::Connect(endpoint, "signum-conformance-ctk", 30000);
  if (!client.ok()) {
    *error = client.status().ToString();
    return std::nullopt;
  }
  auto list = (*client)->ListCertificates(true);
  if (!list.ok()) {
    *error = list.status().ToString();
    return std::nullopt;
  }
  std::vector<KeyUnderTest> keys;
  for (const wire::CertificateEntry& entry : list->certificates) {
    KeyUnderTest key;
    key.label = entry.label;
    auto id = HexDecode(entry.id);
    auto certificate = Certificate::FromPem(entry.certificate_pem);
    if (!id.ok() || !certificate.ok()) {
      *error = "agent entry '" + entry.label + "' has an unreadable id or certificate";
      return std::nullopt;
    }
    key.object_id = *id;
    auto facts = ReadCertificate(certificate->Der(), error);
    if (!facts) return std::nullopt;
    key.facts = *facts;
    const SignatureCapabilities fitting = SignatureCapabilities::AllFor(key.facts.type);
    key.offered = entry.capabilities ? entry.capabilities->Intersect(fitting) : fitting;
    key.curve_bytes = key.facts.type == KeyType::kEc ? (key.facts.bits + 7) / 8 : 0;
    keys.push_back(std::move(key));
  }
  if (keys.empty()) {
    *error = "the agent lists no certificates";
    return std::nullopt;
  }
  return keys;
}

int Usage() {
  std::fprintf(stderr,
               "usage: signum-conformance-ctk (--fake-agent | --agent-from-environment "
               "[--stop-agent-command CMD]) [--junit FILE]\n");
  return 2;
}

int Run(int argc, char** argv) {
  bool fake = false, environment = false;
  std::string junit, stop_command;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--fake-agent") {
      fake = true;
    } else if (arg == "--agent-from-environment") {
      environment = true;
    } else if (arg == "--junit" && i + 1 < argc) {
      junit = argv[++i];
    } else if (arg == "--stop-agent-command" && i + 1 < argc) {
      stop_command = argv[++i];
    } else {
      return Usage();
    }
  }
  if (fake == environment) return Usage();

  signum::testing::TempDir dir("signum-ctk-conformance");
  std::unique_ptr<agent::testing::FakeAgent> fake_agent;
  agent::AgentEndpoint endpoint;
  if (fake) {
    auto started = agent::testing::FakeAgent::Start({.dir = dir.path()});
    if (!started.ok()) {
      std::fprintf(stderr, "fake agent: %s\n", started.status().ToString().c_str());
      return 2;
    }
    fake_agent = std::move(started).value();
    const auto& pki = signum::testing::SharedTestPki();
    for (const char* spec : {"rsa-2048", "rsa-3072", "ec-p256", "ec-p384"}) {
      fake_agent->AddLeaf(pki, spec, spec);
    }
    // A key whose server offers two pairs only (a policy): the token must offer those alone.
    std::unique_ptr<SoftwareKey> key;
    wire::CertificateEntry limited = pki.Leaf("rsa-2048-limited", "rsa-2048", &key);
    const SchemeAndHash offered[] = {{SignatureScheme::kRsaPkcs1, HashAlgorithm::kSha256},
                                     {SignatureScheme::kRsaPss, HashAlgorithm::kSha384}};
    limited.capabilities = SignatureCapabilities::Of(offered);
    fake_agent->AddCertificate(limited, std::shared_ptr<SoftwareKey>(std::move(key)));
    endpoint = fake_agent->endpoint();
  } else {
    auto from_environment = agent::AgentEndpointFromEnvironment();
    if (!from_environment.ok()) {
      std::fprintf(stderr, "agent endpoint: %s\n", from_environment.status().ToString().c_str());
      return 2;
    }
    endpoint = *from_environment;
  }

  std::string error;
  auto keys = KeysFromAgent(endpoint, &error);
  if (!keys) {
    std::fprintf(stderr, "listing the agent's certificates at %s: %s\n",
                 endpoint.Describe().c_str(), error.c_str());
    return 2;
  }
  std::printf("signum-conformance-ctk: %zu keys from %s (%s)\n", keys->size(),
              endpoint.Describe().c_str(), fake ? "fake agent" : "deployment");

  Report report(fake ? "ctk-linux-fake-agent" : "ctk-linux-deployment");
  provider::AgentPoolOptions options;
  options.endpoint = endpoint;
  options.client_name = "signum-ctk-conformance";
  options.timeout_ms = 30000;
  Token token(options);
  Driver driver(&report, &token, *keys);
  driver.Items();
  driver.SupportsMatrix();
  driver.Sign();
  driver.Negatives();
  driver.Concurrent();
  AgentDownFromTheStart(report, *keys);
  if (fake) {
    AgentStopsUnderALoadedToken(report, token, *keys, [&] {
      fake_agent.reset();
      return true;
    });
  } else if (!stop_command.empty()) {
    AgentStopsUnderALoadedToken(report, token, *keys,
                                [&] { return std::system(stop_command.c_str()) == 0; });
  }
  const int failed = report.Print();
  if (!junit.empty() && !report.WriteJunit(junit)) {
    std::fprintf(stderr, "cannot write %s\n", junit.c_str());
    return 2;
  }
  return failed == 0 ? 0 : 1;
}

}  // namespace
}  // namespace signum::conformance::ctk

int main(int argc, char** argv) { return signum::conformance::ctk::Run(argc, argv); }

// signum-conformance-ctk-macos: conformance/ctk's checks (common/suite.h) through
// Security.framework against the installed Signum token extension: the keychain's identities of our
// token (SecItemCopyMatching with kSecAttrTokenID), SecKeyIsAlgorithmSupported and
// SecKeyCreateSignature for every algorithm and key, every signature judged by OpenSSL against the
// certificate.
//
//   signum-conformance-ctk-macos [--token-id org.signum-harness.token:signum]
//                                [--stop-agent-command CMD] [--junit FILE]
//
// The agent's own list (SIGNUM_AGENT_TCP / SIGNUM_AGENT_SOCKET, as env.sh sets) is the reference
// for what the token must show. Differences from the Linux driver, because the framework sits in
// between: supportsOperation is observed through SecKeyIsAlgorithmSupported, which may also say
// YES for algorithms the framework derives (a …Message… it hashes itself), so only "must be YES"
// and "wrong key type must be NO" are judged; negative.unknown_key needs a key the keychain does
// not have and is skipped.
//
// Source only on Linux: NOT compiled there (docs/ctk.md); it runs in the macOS CI job.
#import <Foundation/Foundation.h>
#import <Security/Security.h>

#include <dispatch/dispatch.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "../common/openssl_check.h"
#include "../common/suite.h"
#include "ctk_bridge.h"
#include "signum/agent/agent_client.h"
#include "signum/core/crypto.h"  // Digest
#include "signum/core/encoding.h"
#include "signum/ctk/key_algorithms.h"

namespace signum::conformance::ctk {
namespace {

using namespace signum::ctk;  // NOLINT

// The SDK's constant for one of ours: the bridge's one mapping (ctk_bridge.h).
::SecKeyAlgorithm Sdk(SecKeyAlgorithm algorithm) { return signum::ctk::apple::SdkAlgorithm(algorithm); }

Bytes BytesOf(CFDataRef data) {
  const auto* begin = CFDataGetBytePtr(data);
  return Bytes(begin, begin + CFDataGetLength(data));
}

struct Identity {
  std::string label;
  CertificateFacts facts;
  SignatureCapabilities offered;
  SecKeyRef key = nullptr;  // owned (released at exit)
};

std::string ErrorText(CFErrorRef error) {
  if (error == nullptr) return "no error";
  CFStringRef text = CFErrorCopyDescription(error);
  std::string out = [(__bridge NSString*)text UTF8String] ?: "";
  CFRelease(text);
  return out + " (code " + std::to_string(CFErrorGetCode(error)) + ")";
}

// The agent's list: what the token must show.
std::vector<wire::CertificateEntry> AgentList(std::string* error) {
  auto endpoint = agent::AgentEndpointFromEnvironment();
  if (!endpoint.ok()) {
    *error = endpoint.status().ToString();
    return {};
  }
  auto client = agent::AgentClient::Connect(*endpoint, "signum-conformance-ctk-macos", 30000);
  if (!client.ok()) {
    *error = client.status().ToString();
    return {};
  }
  auto list = (*client)->ListCertificates(true);
  if (!list.ok()) {
    *error = list.status().ToString();
    return {};
  }
  return list->certificates;
}

// SecItemCopyMatching: every identity of our token.
std::vector<Identity> TokenIdentities(NSString* token_id, Report& report,
                                      const std::vector<wire::CertificateEntry>& agent) {
  NSDictionary* query = @{
    (id)kSecClass : (id)kSecClassIdentity,
    (id)kSecAttrTokenID : token_id,
    (id)kSecReturnRef : @YES,
    (id)kSecMatchLimit : (id)kSecMatchLimitAll,
  };
  CFTypeRef result = nullptr;
  const OSStatus status = SecItemCopyMatching((__bridge CFDictionaryRef)query, &result);
  std::vector<Identity> identities;
  if (status != errSecSuccess) {
    report.Fail("items.certificate_and_key_per_certificate", "SecItemCopyMatching(identities of " +
                                                                 std::string(token_id.UTF8String) +
                                                                 ") = " + std::to_string(status));
    return identities;
  }
  for (id item in (__bridge_transfer NSArray*)result) {
    SecIdentityRef identity = (__bridge SecIdentityRef)item;
    SecCertificateRef certificate = nullptr;
    SecKeyRef key = nullptr;
    if (SecIdentityCopyCertificate(identity, &certificate) != errSecSuccess ||
        SecIdentityCopyPrivateKey(identity, &key) != errSecSuccess) {
      report.Fail("items.certificate_and_key_per_certificate",
                  "an identity without certificate or key");
      continue;
    }
    CFDataRef der = SecCertificateCopyData(certificate);
    CFRelease(certificate);
    std::string error;
    auto facts = ReadCertificate(BytesOf(der), &error);
    CFRelease(der);
    if (!facts) {
      report.Fail("items.object_ids_are_thumbprints",
                  "OpenSSL cannot read a certificate: " + error);
      CFRelease(key);
      continue;
    }
    Identity entry;
    entry.facts = *facts;
    entry.key = key;
    const std::string thumbprint = HexEncode(facts->sha1);
    bool listed = false;
    for (const wire::CertificateEntry& listed_entry : agent) {
      if (listed_entry.id != thumbprint) continue;
      listed = true;
      entry.label = listed_entry.label;
      const SignatureCapabilities fitting = SignatureCapabilities::AllFor(facts->type);
      entry.offered =
          listed_entry.capabilities ? listed_entry.capabilities->Intersect(fitting) : fitting;
    }
    report.Expect("items.object_ids_are_thumbprints", listed,
                  "identity " + thumbprint + " is not in the agent's list");
    if (listed) identities.push_back(std::move(entry));
  }
  report.Expect("items.certificate_and_key_per_certificate", identities.size() == agent.size(),
                "the agent lists " + std::to_string(agent.size()) +
                    " certificates; the keychain "
                    "shows " +
                    std::to_string(identities.size()) + " identities of the token");
  return identities;
}

void KeyAttributes(Report& report, const Identity& identity) {
  NSDictionary* attributes = (__bridge_transfer NSDictionary*)SecKeyCopyAttributes(identity.key);
  const bool rsa = identity.facts.type == KeyType::kRsa;
  NSString* type = attributes[(id)kSecAttrKeyType];
  report.Expect("items.key_attributes",
                [type isEqual:(rsa ? (id)kSecAttrKeyTypeRSA : (id)kSecAttrKeyTypeECSECPrimeRandom)],
                identity.label + ": kSecAttrKeyType " + std::string(type.description.UTF8String));
  report.Expect("items.key_attributes",
                [attributes[(id)kSecAttrKeySizeInBits] intValue] == identity.facts.bits,
                identity.label + ": kSecAttrKeySizeInBits");
  report.Expect("items.key_attributes", [attributes[(id)kSecAttrCanSign] boolValue],
                identity.label + ": kSecAttrCanSign is not set");
  report.Expect("items.key_attributes", ![attributes[(id)kSecAttrCanDecrypt] boolValue],
                identity.label + ": kSecAttrCanDecrypt is set");
  NSData* label = attributes[(id)kSecAttrApplicationLabel];
  report.Expect(
      "items.key_attributes",
      label != nil && BytesOf((__bridge CFDataRef)label) ==
                          Digest(HashAlgorithm::kSha1, identity.facts.public_key_data),
      identity.label + ": kSecAttrApplicationLabel is not the public key's SHA-1");
}

std::optional<Bytes> Sign(const Identity& identity, SecKeyAlgorithm algorithm, ByteView input,
                          std::string* error) {
  CFErrorRef cf_error = nullptr;
  NSData* data = [NSData dataWithBytes:input.data() length:input.size()];
  CFDataRef signature =
      SecKeyCreateSignature(identity.key, Sdk(algorithm), (__bridge CFDataRef)data, &cf_error);
  if (signature == nullptr) {
    *error = ErrorText(cf_error);
    if (cf_error != nullptr) CFRelease(cf_error);
    return std::nullopt;
  }
  Bytes out = BytesOf(signature);
  CFRelease(signature);
  return out;
}

void Judge(Report& report, const Identity& identity, const KeyAlgorithmInfo& info,
           std::string_view check, ByteView input, HashAlgorithm hash, ByteView digest) {
  const std::string what = identity.label + " " + std::string(info.constant_name);
  std::string error;
  auto signature = Sign(identity, info.algorithm, input, &error);
  if (!signature) {
    report.Fail(check, what + ": SecKeyCreateSignature: " + error);
    return;
  }
  const std::string verdict =
      VerifySignature(identity.facts.der, *info.signature_scheme(), hash, digest, *signature);
  report.Expect(check, verdict.empty(), what + ": " + verdict);
  if (info.scheme == AlgorithmScheme::kEcdsa) {
    const std::string der = CheckCanonicalEcdsaDer(*signature);
    report.Expect("sign.ecdsa_der", der.empty(), what + ": " + der);
  }
  if (info.scheme == AlgorithmScheme::kRsaPss) {
    report.Expect("sign.pss_salt_is_hash_length", verdict.empty(), what + ": " + verdict);
  }
}

Bytes Text(const std::string& text) { return Bytes(text.begin(), text.end()); }

void RunChecks(Report& report, const std::vector<Identity>& identities) {
  for (const Identity& identity : identities) {
    KeyAttributes(report, identity);
    for (const KeyAlgorithmInfo& info : AllKeyAlgorithms()) {
      const bool expected = ExpectedSupport(info, identity.facts.type, identity.offered);
      const bool answer =
          SecKeyIsAlgorithmSupported(identity.key, kSecKeyOperationTypeSign, Sdk(info.algorithm));
      const bool key_fits =
          (info.key == AlgorithmKey::kRsa) == (identity.facts.type == KeyType::kRsa);
      if (expected || !key_fits) {
        report.Expect("supports.algorithm_matrix", answer == expected,
                      identity.label + " " + std::string(info.constant_name) + ": answered " +
                          (answer ? "YES" : "NO") + ", expected " + (expected ? "YES" : "NO"));
      }
      const Bytes message =
          Text("conformance/ctk macOS " + identity.label + " " + std::string(info.constant_name));
      if (!expected) {
        if (key_fits && answer) continue;  // the framework derives it: not the token's answer
        std::string error;
        const size_t length =
            info.hash_algorithm() ? GetHashInfo(*info.hash_algorithm()).digest_size : 32;
        auto signature = Sign(identity, info.algorithm, Bytes(length, 0x11), &error);
        report.Expect("negative.unsupported_algorithm", !signature,
                      identity.label + " " + std::string(info.constant_name) +
                          ": SecKeyCreateSignature returned a signature");
        continue;
      }
      switch (info.input) {
        case AlgorithmInput::kMessage: {
          const HashAlgorithm hash = *info.hash_algorithm();
          Judge(report, identity, info, "sign.message", message, hash,
                Digest(hash, message));
          break;
        }
        case AlgorithmInput::kDigest: {
          const HashAlgorithm hash = *info.hash_algorithm();
          const Bytes digest = Digest(hash, message);
          Judge(report, identity, info, "sign.digest", digest, hash, digest);
          for (size_t wrong : {digest.size() - 1, digest.size() + 1}) {
            std::string error;
            auto signature = Sign(identity, info.algorithm, Bytes(wrong, 0x22), &error);
            report.Expect("negative.wrong_length_digest", !signature,
                          identity.label + " " + std::string(info.constant_name) + " accepted " +
                              std::to_string(wrong) + " bytes");
          }
          break;
        }
        case AlgorithmInput::kDigestInfo:
          for (const SchemeAndHash& pair : identity.offered.Pairs()) {
            if (pair.scheme != SignatureScheme::kRsaPkcs1) continue;
            const Bytes digest = Digest(pair.hash, message);
            Judge(report, identity, info, "sign.digest_info",
                  BuildDigestInfo(pair.hash, digest).value(), pair.hash, digest);
          }
          break;
        case AlgorithmInput::kAnyLengthDigest:
          for (const SchemeAndHash& pair : identity.offered.Pairs()) {
            if (pair.scheme != SignatureScheme::kEcdsa) continue;
            const Bytes digest = Digest(pair.hash, message);
            Judge(report, identity, info, "sign.any_length_digest", digest, pair.hash, digest);
          }
          break;
        default:
          break;
      }
    }
  }
  report.Skip("negative.unknown_key",
              "Security.framework only hands out keys the token holds; the Linux driver checks it");
}

void Concurrent(Report& report_in, const std::vector<Identity>& identities_in) {
  // Blocks capture pointers plainly; C++ references they would copy or capture ambiguously.
  Report* const report_ptr = &report_in;
  const std::vector<Identity>* const identities_ptr = &identities_in;
  dispatch_apply(8, dispatch_get_global_queue(QOS_CLASS_USER_INITIATED, 0), ^(size_t t) {
    Report& report = *report_ptr;
    const std::vector<Identity>& identities = *identities_ptr;
    const Identity& identity = identities[t % identities.size()];
    const SecKeyAlgorithm algorithm = identity.facts.type == KeyType::kRsa
                                          ? SecKeyAlgorithm::kRSASignatureMessagePKCS1v15SHA256
                                          : SecKeyAlgorithm::kECDSASignatureMessageX962SHA256;
    for (int i = 0; i < 4; ++i) {
      const Bytes data = Text("macOS session " + std::to_string(t) + " " + std::to_string(i));
      std::string error;
      auto signature = Sign(identity, algorithm, data, &error);
      if (!signature) {
        report.Fail("sessions.concurrent", identity.label + ": " + error);
        continue;
      }
      const std::string verdict = VerifySignature(
          identity.facts.der, *FindKeyAlgorithm(algorithm)->signature_scheme(),
          HashAlgorithm::kSha256, Digest(HashAlgorithm::kSha256, data), *signature);
      report.Expect("sessions.concurrent", verdict.empty(), identity.label + ": " + verdict);
    }
  });
}

void AgentDown(Report& report, const std::vector<Identity>& identities, const std::string& stop) {
  if (stop.empty()) {
    report.Skip("agent.down", "no --stop-agent-command given");
    return;
  }
  if (std::system(stop.c_str()) != 0) {
    report.Fail("agent.down", "the stop command failed: " + stop);
    return;
  }
  for (const Identity& identity : identities) {
    const SecKeyAlgorithm algorithm = identity.facts.type == KeyType::kRsa
                                          ? SecKeyAlgorithm::kRSASignatureMessagePKCS1v15SHA256
                                          : SecKeyAlgorithm::kECDSASignatureMessageX962SHA256;
    std::string error;
    const auto start = std::chrono::steady_clock::now();
    auto signature = Sign(identity, algorithm, Text("agent stopped"), &error);
    report.Expect("agent.down", !signature, identity.label + ": signed with the agent stopped");
    report.Expect("agent.down", std::chrono::steady_clock::now() - start < std::chrono::seconds(40),
                  identity.label + ": SecKeyCreateSignature took more than 40 s without an agent");
  }
}

int Run(int argc, char** argv) {
  NSString* token_id = @"org.signum-harness.token:signum";
  std::string junit, stop;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string arg = argv[i];
    if (arg == "--token-id")
      token_id = @(argv[i + 1]);
    else if (arg == "--junit")
      junit = argv[i + 1];
    else if (arg == "--stop-agent-command")
      stop = argv[i + 1];
    else
      return 2;
  }
  std::string error;
  const std::vector<wire::CertificateEntry> agent = AgentList(&error);
  if (agent.empty()) {
    std::fprintf(stderr, "the agent's list: %s\n", error.empty() ? "empty" : error.c_str());
    return 2;
  }
  Report report("ctk-macos");
  std::vector<Identity> identities = TokenIdentities(token_id, report, agent);
  if (!identities.empty()) {
    RunChecks(report, identities);
    Concurrent(report, identities);
    AgentDown(report, identities, stop);
  }
  for (Identity& identity : identities) CFRelease(identity.key);
  const int failed = report.Print();
  if (!junit.empty()) report.WriteJunit(junit);
  return failed == 0 ? 0 : 1;
}

}  // namespace
}  // namespace signum::conformance::ctk

int main(int argc, char** argv) {
  @autoreleasepool {
    return signum::conformance::ctk::Run(argc, argv);
  }
}

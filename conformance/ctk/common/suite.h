// conformance/ctk: the suite definition both drivers run — the Linux driver (linux/), which calls
// the CTK core the way macOS's token framework does, and the macOS driver (macos/), which goes
// through Security.framework to the installed token extension. One table of checks; each driver
// reports every check by its id, with the cases it ran and why any failed. A check that ran no
// case fails: nothing passes silently.
#pragma once

#include <cstddef>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "signum/core/algorithms.h"
#include "signum/ctk/key_algorithms.h"

namespace signum::conformance::ctk {

struct CheckDefinition {
  std::string_view id;
  std::string_view what;  // what the check proves, as a user of the token would state it
};

// The suite, in the order drivers run it (docs/ctk.md lists the same table).
inline constexpr CheckDefinition kChecks[] = {
    {"items.certificate_and_key_per_certificate",
     "the token holds one certificate item and one key item for every certificate the agent lists"},
    {"items.object_ids_are_thumbprints",
     "each item's object ID is its certificate's SHA-1 thumbprint; the certificate bytes are the "
     "agent's"},
    {"items.key_attributes",
     "each key's type, size, label and public key match the certificate; it can sign and nothing "
     "else (no decrypt, key exchange or login)"},
    {"supports.algorithm_matrix",
     "supportsOperation answers YES exactly for the signing algorithms the key's type and the "
     "server's offered pairs allow, for every SecKeyAlgorithm x key x operation"},
    {"sign.message",
     "every supported …Message… algorithm signs; OpenSSL verifies it against the certificate over "
     "the hash of the message"},
    {"sign.digest",
     "every supported …Digest…SHA* algorithm signs the digest it is given, not a hash of it (F57); "
     "OpenSSL verifies it over that digest"},
    {"sign.digest_info",
     "RSASignatureDigestPKCS1v15Raw signs a DigestInfo's digest with PKCS#1 v1.5; OpenSSL "
     "verifies"},
    {"sign.any_length_digest",
     "ECDSASignatureDigestX962 signs digests of other lengths than the curve's (X9.62 truncation); "
     "OpenSSL verifies"},
    {"sign.ecdsa_der",
     "every ECDSA signature is canonical DER X9.62 (SEQUENCE of two INTEGERs), never raw r||s "
     "(F57)"},
    {"sign.pss_salt_is_hash_length",
     "PSS signatures carry a salt of the hash's length with MGF1 over the same hash, as "
     "Security.framework's …PSSSHA* algorithms define"},
    {"negative.unsupported_algorithm",
     "signData with an algorithm supportsOperation refused fails with TKErrorCodeNotImplemented "
     "and no signature"},
    {"negative.wrong_length_digest",
     "a …Digest…SHA* input one byte short or long fails with TKErrorCodeBadParameter"},
    {"negative.unknown_key",
     "signData with an object ID the token does not hold fails with "
     "TKErrorCodeObjectNotFound"},
    {"sessions.concurrent",
     "sessions on 8 threads sign at once (parallel codesign, F57) and every signature verifies"},
    {"agent.down",
     "with the agent down the token lists nothing, supports nothing and signData fails with "
     "TKErrorCodeCommunicationError, quickly"},
};

// What the token is expected to answer in supportsOperation(kSignData, key, algorithm), derived
// here from the algorithm's own description and the agent's list (not from the core's code):
// a signing input the token takes, for the key's type, on a pair the server offers.
bool ExpectedSupport(const signum::ctk::KeyAlgorithmInfo& info, KeyType key_type,
                     const SignatureCapabilities& offered);

// The results of one run.
class Report {
 public:
  explicit Report(std::string suite_name) : suite_name_(std::move(suite_name)) {}
  // One case of a check: passed, or failed with the reason. Thread-safe.
  void Pass(std::string_view check);
  void Fail(std::string_view check, const std::string& reason);
  void Expect(std::string_view check, bool ok, const std::string& reason_if_not) {
    ok ? Pass(check) : Fail(check, reason_if_not);
  }
  // Marks a check as not applicable in this run (e.g. agent.down where the driver cannot stop the
  // agent), with the reason; it is reported as skipped, not passed.
  void Skip(std::string_view check, const std::string& reason);

  // Prints "PASS id (n cases)" / "FAIL id: reason..." per check in suite order, and a summary;
  // returns the number of failed checks (a check with no case and no skip counts as failed).
  int Print() const;
  // JUnit XML: one testcase per check.
  bool WriteJunit(const std::string& path) const;

 private:
  struct Outcome {
    size_t passed = 0;
    std::vector<std::string> failures;
    std::optional<std::string> skipped;
  };
  bool Failed(const Outcome& outcome) const;
  std::string suite_name_;
  mutable std::mutex mu_;
  std::map<std::string, Outcome, std::less<>> outcomes_;
};

}  // namespace signum::conformance::ctk

// Policies: deny by default; ordered allow/deny rules over who, what, where, when and which
// scheme/hash. The first rule whose conditions all match decides.
#pragma once

#include <chrono>
#include <optional>
#include <regex>
#include <string>
#include <vector>

#include "auth.h"
#include "signum/core/wire.h"
#include "state.h"

namespace signum::server {

struct SignAttempt {
  const Principal& principal;
  const CertificateRecord& certificate;
  SignatureScheme scheme;
  HashAlgorithm hash;
  const wire::CallerContext& context;
  std::chrono::system_clock::time_point now;
};

struct Decision {
  bool allowed = false;
  std::string rule;    // name of the deciding rule; empty when the default (deny) decided
  std::string reason;  // for the caller and the audit log
};

struct AllowedUse {
  // The (scheme, hash) pairs some rule allows, each fitting the key type.
  SignatureCapabilities capabilities;
};

class PolicyEngine {
 public:
  // Compiles the regexes; invalid rules are reported, never half-applied.
  static Result<PolicyEngine> Compile(std::vector<PolicyRule> rules);

  Decision Evaluate(const SignAttempt& attempt) const;
  // Whether the principal may see (list) the certificate, and with which (scheme, hash) pairs: a
  // pair is allowed when, among the rules matching who+what+when and that pair, the first one that
  // surely applies allows it (deny rules with a process or command-line condition may not apply
  // and are passed over; allow rules with one may apply and count). Visible when some pair is.
  std::optional<AllowedUse> Visible(const Principal& principal, const CertificateRecord& cert,
                                    std::chrono::system_clock::time_point now) const;

 private:
  struct CompiledRule {
    PolicyRule rule;
    std::optional<std::regex> process;
    std::optional<std::regex> command_line;
  };
  std::vector<CompiledRule> rules_;
};

}  // namespace signum::server

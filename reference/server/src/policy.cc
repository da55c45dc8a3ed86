// Policy evaluation: deny by default, ordered rules, first full match decides.
//
// Regular expressions use std::regex, whose libstdc++ matcher recurses once per input character
// and overflows a thread's stack on inputs of a few thousand characters. The caller context comes
// from clients, so inputs longer than kMaxProcessLength / kMaxCommandLineLength are never run
// through a regex: for such a request a regex condition counts as matched in deny rules and as
// not matched in allow rules (fail closed), and the default-deny reason says so.
#include "policy.h"

#include "signum/core/encoding.h"

#include <algorithm>
#include <array>
#include <cctype>

namespace signum::server {
namespace {

constexpr size_t kMaxProcessLength = 256;
constexpr size_t kMaxCommandLineLength = 2048;

template <typename T, typename V>
bool Contains(const T& list, const V& value) {
  return std::find(list.begin(), list.end(), value) != list.end();
}

bool Overlaps(const std::vector<std::string>& a, const std::vector<std::string>& b) {
  return std::any_of(a.begin(), a.end(), [&](const std::string& x) { return Contains(b, x); });
}

bool MatchesWho(const PolicyRule& rule, const Principal& principal) {
  if (!rule.users.empty() &&
      !std::any_of(rule.users.begin(), rule.users.end(),
                   [&](const std::string& u) { return u == "*" || u == principal.user; })) {
    return false;
  }
  if (!rule.groups.empty() && !Overlaps(rule.groups, principal.groups)) return false;
  return true;
}

bool MatchesWhat(const PolicyRule& rule, const CertificateRecord& cert) {
  if (!rule.certificates.empty() &&
      !std::any_of(rule.certificates.begin(), rule.certificates.end(), [&](const std::string& c) {
        return c == cert.label || EqualsIgnoringAsciiCase(c, cert.id);
      })) {
    return false;
  }
  if (!rule.certificate_groups.empty() && !Overlaps(rule.certificate_groups, cert.groups)) {
    return false;
  }
  return true;
}

bool MatchesWhen(const PolicyRule& rule, std::chrono::system_clock::time_point now) {
  if (rule.not_before && now < *rule.not_before) return false;
  if (rule.not_after && now > *rule.not_after) return false;
  return true;
}

bool MatchesWhich(const PolicyRule& rule, SignatureScheme scheme, HashAlgorithm hash) {
  if (!rule.schemes.empty() && !Contains(rule.schemes, scheme)) return false;
  if (!rule.hashes.empty()) return Contains(rule.hashes, hash);
  // SHA-1 only by explicit permission; a deny rule without hashes denies SHA-1 too.
  return rule.effect == PolicyEffect::kDeny || hash != HashAlgorithm::kSha1;
}

std::string EffectVerb(PolicyEffect effect) {
  return effect == PolicyEffect::kAllow ? "allowed" : "denied";
}

}  // namespace

Result<PolicyEngine> PolicyEngine::Compile(std::vector<PolicyRule> rules) {
  PolicyEngine engine;
  engine.rules_.reserve(rules.size());
  for (PolicyRule& rule : rules) {
    CompiledRule compiled;
    const auto flags = std::regex::ECMAScript | std::regex::icase;
    try {
      if (!rule.process_regex.empty()) compiled.process.emplace(rule.process_regex, flags);
    } catch (const std::regex_error& e) {
      return InvalidArgumentError("policy '" + rule.name + "': invalid process regex '" +
                                  rule.process_regex + "': " + e.what());
    }
    try {
      if (!rule.command_line_regex.empty()) {
        compiled.command_line.emplace(rule.command_line_regex, flags);
      }
    } catch (const std::regex_error& e) {
      return InvalidArgumentError("policy '" + rule.name + "': invalid command_line regex '" +
                                  rule.command_line_regex + "': " + e.what());
    }
    compiled.rule = std::move(rule);
    engine.rules_.push_back(std::move(compiled));
  }
  return engine;
}

Decision PolicyEngine::Evaluate(const SignAttempt& attempt) const {
  const CertificateRecord& cert = attempt.certificate;
  Decision decision;
  if (!cert.enabled) {
    decision.reason = "certificate '" + cert.label + "' is disabled";
    return decision;
  }
  if (!SchemeFitsKey(attempt.scheme, cert.key_spec.type)) {
    decision.reason = "scheme " + std::string(SchemeName(attempt.scheme)) +
                      " does not fit certificate '" + cert.label + "' (" +
                      std::string(KeyTypeName(cert.key_spec.type)) + " key)";
    return decision;
  }

  const std::string& process = attempt.context.process;
  const std::string& command_line = attempt.context.command_line;
  bool unevaluated_regex = false;  // some allow rule was skipped because input was too long

  // Returns whether the where-condition holds for this rule; regex trouble fails closed.
  auto where_matches = [&](const CompiledRule& r) {
    const bool deny = r.rule.effect == PolicyEffect::kDeny;
    try {
      if (r.process) {
        if (process.empty()) return false;
        if (process.size() > kMaxProcessLength) {
          if (!deny) {
            unevaluated_regex = true;
            return false;
          }
        } else if (!std::regex_match(process, *r.process)) {
          return false;
        }
      }
      if (r.command_line) {
        if (command_line.empty()) return false;
        if (command_line.size() > kMaxCommandLineLength) {
          if (!deny) {
            unevaluated_regex = true;
            return false;
          }
        } else if (!std::regex_search(command_line, *r.command_line)) {
          return false;
        }
      }
    } catch (const std::regex_error&) {
      if (!deny) unevaluated_regex = true;
      return deny;
    }
    return true;
  };

  for (const CompiledRule& r : rules_) {
    const PolicyRule& rule = r.rule;
    if (!MatchesWho(rule, attempt.principal) || !MatchesWhat(rule, cert) ||
        !MatchesWhen(rule, attempt.now) || !MatchesWhich(rule, attempt.scheme, attempt.hash) ||
        !where_matches(r)) {
      continue;
    }
    decision.allowed = rule.effect == PolicyEffect::kAllow;
    decision.rule = rule.name;
    decision.reason = EffectVerb(rule.effect) + " by policy '" + rule.name + "'";
    return decision;
  }

  decision.reason = "no policy allows user '" + attempt.principal.user +
                    "' to sign with certificate '" + cert.label + "' (scheme " +
                    std::string(SchemeName(attempt.scheme)) + ", hash " +
                    std::string(HashName(attempt.hash)) + ")";
  if (attempt.hash == HashAlgorithm::kSha1) {
    decision.reason += "; sha1 is only allowed by a policy that lists it in hashes";
  }
  if (unevaluated_regex) {
    decision.reason += "; the caller's process name or command line was too long (over " +
                       std::to_string(kMaxProcessLength) + "/" +
                       std::to_string(kMaxCommandLineLength) +
                       " characters) to match against policy regexes";
  }
  return decision;
}

std::optional<AllowedUse> PolicyEngine::Visible(const Principal& principal,
                                                const CertificateRecord& cert,
                                                std::chrono::system_clock::time_point now) const {
  if (!cert.enabled) return std::nullopt;
  // Evaluated per pair, so combinations (SHA-1 with PKCS#1 v1.5 only, a deny of one scheme+hash)
  // come out exactly as Evaluate would decide them for a caller that matches every condition.
  auto allowed = [&](SignatureScheme scheme, HashAlgorithm hash) {
    for (const CompiledRule& r : rules_) {
      const PolicyRule& rule = r.rule;
      if (!MatchesWho(rule, principal) || !MatchesWhat(rule, cert) || !MatchesWhen(rule, now) ||
          !MatchesWhich(rule, scheme, hash)) {
        continue;
      }
      if (rule.effect == PolicyEffect::kAllow) return true;
      // A deny that depends on the caller (process, command line) may or may not apply.
      if (!r.process && !r.command_line) return false;
    }
    return false;
  };
  AllowedUse use;
  for (const SchemeAndHash& pair : SignatureCapabilities::AllFor(cert.key_spec.type).Pairs()) {
    if (allowed(pair.scheme, pair.hash)) use.capabilities.Add(pair.scheme, pair.hash);
  }
  if (use.capabilities.empty()) return std::nullopt;
  return use;
}

}  // namespace signum::server

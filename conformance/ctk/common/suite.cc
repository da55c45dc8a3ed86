#include "suite.h"

#include <cstdio>
#include <fstream>

namespace signum::conformance::ctk {

using signum::ctk::AlgorithmInput;
using signum::ctk::AlgorithmKey;

bool ExpectedSupport(const signum::ctk::KeyAlgorithmInfo& info, KeyType key_type,
                     const SignatureCapabilities& offered) {
  const bool key_fits = (info.key == AlgorithmKey::kRsa) == (key_type == KeyType::kRsa);
  if (!key_fits) return false;
  switch (info.input) {
    case AlgorithmInput::kDigest:
    case AlgorithmInput::kMessage:
      return offered.Allows(*info.signature_scheme(), *info.hash_algorithm());
    case AlgorithmInput::kDigestInfo:
    case AlgorithmInput::kAnyLengthDigest:
      return offered.AllowsScheme(*info.signature_scheme());
    case AlgorithmInput::kRawRsa:
    case AlgorithmInput::kRawEcdsaOutput:
    case AlgorithmInput::kNotSigning:
      return false;
  }
  return false;
}

void Report::Pass(std::string_view check) {
  std::lock_guard lock(mu_);
  ++outcomes_[std::string(check)].passed;
}

void Report::Fail(std::string_view check, const std::string& reason) {
  std::lock_guard lock(mu_);
  outcomes_[std::string(check)].failures.push_back(reason);
}

void Report::Skip(std::string_view check, const std::string& reason) {
  std::lock_guard lock(mu_);
  outcomes_[std::string(check)].skipped = reason;
}

bool Report::Failed(const Outcome& outcome) const {
  return !outcome.failures.empty() || (outcome.passed == 0 && !outcome.skipped);
}

int Report::Print() const {
  std::lock_guard lock(mu_);
  int failed = 0, passed = 0, skipped = 0;
  for (const CheckDefinition& check : kChecks) {
    auto it = outcomes_.find(check.id);
    const Outcome outcome = it != outcomes_.end() ? it->second : Outcome{};
    if (Failed(outcome)) {
      ++failed;
      std::printf("FAIL %s (%zu cases passed, %zu failed)\n", std::string(check.id).c_str(),
                  outcome.passed, outcome.failures.size());
      if (outcome.failures.empty()) std::printf("       ran no case\n");
      size_t shown = 0;
      for (const std::string& failure : outcome.failures) {
        if (++shown > 12) {
          std::printf("       ... and %zu more\n", outcome.failures.size() - 12);
          break;
        }
        std::printf("       %s\n", failure.c_str());
      }
    } else if (outcome.passed == 0) {
      ++skipped;
      std::printf("SKIP %s: %s\n", std::string(check.id).c_str(), outcome.skipped->c_str());
    } else {
      ++passed;
      std::printf("PASS %s (%zu cases)\n", std::string(check.id).c_str(), outcome.passed);
    }
  }
  std::printf("%s: %d checks passed, %d failed, %d skipped\n", suite_name_.c_str(), passed, failed,
              skipped);
  return failed;
}

namespace {
std::string XmlEscape(std::string_view text) {
  std::string out;
  for (char c : text) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      default:
        out += c;
    }
  }
  return out;
}
}  // namespace

bool Report::WriteJunit(const std::string& path) const {
  std::lock_guard lock(mu_);
  std::ofstream out(path);
  if (!out) return false;
  size_t failures = 0, skips = 0;
  for (const CheckDefinition& check : kChecks) {
    auto it = outcomes_.find(check.id);
    const Outcome outcome = it != outcomes_.end() ? it->second : Outcome{};
    if (Failed(outcome))
      ++failures;
    else if (outcome.passed == 0)
      ++skips;
  }
  out << "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuite name=\"" << XmlEscape(suite_name_)
      << "\" tests=\"" << std::size(kChecks) << "\" failures=\"" << failures << "\" skipped=\""
      << skips << "\">\n";
  for (const CheckDefinition& check : kChecks) {
    auto it = outcomes_.find(check.id);
    const Outcome outcome = it != outcomes_.end() ? it->second : Outcome{};
    out << "  <testcase classname=\"ctk\" name=\"" << XmlEscape(check.id) << "\">\n";
    if (Failed(outcome)) {
      std::string text;
      for (const std::string& failure : outcome.failures) text += failure + "\n";
      if (outcome.failures.empty()) text = "ran no case";
      out << "    <failure message=\"" << XmlEscape(check.what) << "\">" << XmlEscape(text)
          << "</failure>\n";
    } else if (outcome.passed == 0) {
      out << "    <skipped message=\"" << XmlEscape(*outcome.skipped) << "\"/>\n";
    } else {
      out << "    <system-out>" << outcome.passed << " cases</system-out>\n";
    }
    out << "  </testcase>\n";
  }
  out << "</testsuite>\n";
  return static_cast<bool>(out);
}

}  // namespace signum::conformance::ctk

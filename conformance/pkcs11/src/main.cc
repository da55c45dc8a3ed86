// signum-conformance-pkcs11: PKCS#11 conformance checks against any module and token.
// Our flags are parsed here; --gtest_* flags go to GoogleTest; anything else is a usage error.

#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "grades.h"
#include "report.h"
#include "signum/core/files.h"
#include "suite.h"

namespace {

using signum::conformance::Options;
using signum::conformance::Profile;

// Checks that create and delete objects or need a bare HSM: run in the hsm profile only.
constexpr const char* kHsmOnlyAreas = "KeyGen.*:Handles.*:HsmSessions.*";

constexpr const char* kUsage = R"(usage: signum-conformance-pkcs11 --module PATH [options] [--gtest_...]

  --module PATH        the PKCS#11 module under test (its environment, e.g. SOFTHSM2_CONF, is inherited)
  --token LABEL        the token, by label ...
  --slot ID            ... or by slot ID (default: the only slot with a token)
  --pin PIN            user PIN (or --pin-file FILE, or env SIGNUM_CONFORMANCE_PIN)
  --pin-file FILE
  --profile P          provider (default; non-destructive) or hsm (also generates and deletes keys)
  --key-id HEX         only private keys with this CKA_ID
  --key-label LABEL    only private keys with this CKA_LABEL
  --junit FILE         JUnit XML (xfail = skipped with reason, xpass = failure)
  --summary FILE       JSON summary: module, token, profile, counts, one record per check
  --expect FILE        known deviations of this module (expected failures, not-applicable checks)
  --strict             fail on spec-level deviations too (default: only required checks fail the
                       run; a failed spec-level check is a warning). CHECKS.md grades every check
  --init-args STRING   passed as CK_C_INITIALIZE_ARGS.pReserved (modules that read parameters there)
  --grades             print every check's level and callers as JSON and exit
  --gtest_filter=...   and other GoogleTest flags
Exit status: 0 when no check failed and no expected failure passed (warnings do not count);
1 otherwise; 2 usage error.
)";

[[noreturn]] void UsageError(const std::string& message) {
  std::cerr << "signum-conformance-pkcs11: " << message << "\n\n" << kUsage;
  std::exit(2);
}

void PrintGrades() {
  nlohmann::json out = nlohmann::json::array();
  for (const auto& grade : signum::conformance::CheckGrades()) {
    out.push_back({{"check", grade.check},
                   {"level", signum::conformance::LevelName(grade.level)},
                   {"callers", grade.callers},
                   {"threads", grade.threads}});
  }
  std::cout << out.dump(2) << "\n";
}

Options ParseArguments(int argc, char** argv, std::vector<char*>& gtest_args) {
  Options o;
  std::optional<std::string> pin_file;
  gtest_args.push_back(argv[0]);
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg.rfind("--gtest_", 0) == 0) {
      gtest_args.push_back(argv[i]);
      continue;
    }
    if (arg == "--help" || arg == "-h") {
      std::cout << kUsage;
      std::exit(0);
    }
    if (arg == "--grades") {
      PrintGrades();
      std::exit(0);
    }
    if (arg == "--strict") {
      o.strict = true;
      continue;
    }
    std::string value;
    const auto eq = arg.find('=');
    if (eq != std::string::npos) {
      value = arg.substr(eq + 1);
      arg = arg.substr(0, eq);
    } else {
      static const std::vector<std::string> with_value = {
          "--module", "--token",    "--slot",  "--pin",    "--pin-file", "--profile",
          "--key-id", "--key-label", "--junit", "--summary", "--expect", "--init-args"};
      if (std::find(with_value.begin(), with_value.end(), arg) == with_value.end()) {
        UsageError("unknown argument '" + arg + "'");
      }
      if (i + 1 >= argc) UsageError(arg + " needs a value");
      value = argv[++i];
    }
    if (arg == "--module") {
      o.module_path = value;
    } else if (arg == "--token") {
      o.token_label = value;
    } else if (arg == "--slot") {
      char* end = nullptr;
      const unsigned long slot = std::strtoul(value.c_str(), &end, 0);
      if (value.empty() || *end != '\0') UsageError("--slot needs a number, got '" + value + "'");
      o.slot = slot;
    } else if (arg == "--pin") {
      o.pin = value;
    } else if (arg == "--pin-file") {
      pin_file = value;
    } else if (arg == "--profile") {
      if (value == "provider") {
        o.profile = Profile::kProvider;
      } else if (value == "hsm") {
        o.profile = Profile::kHsm;
      } else {
        UsageError("--profile is provider or hsm, not '" + value + "'");
      }
    } else if (arg == "--key-id") {
      auto id = signum::HexDecode(value);
      if (!id.ok() || id->empty()) UsageError("--key-id needs hex, got '" + value + "'");
      o.key_id = *id;
    } else if (arg == "--key-label") {
      o.key_label = value;
    } else if (arg == "--junit") {
      o.junit_path = value;
    } else if (arg == "--summary") {
      o.summary_path = value;
    } else if (arg == "--expect") {
      o.expect_path = value;
    } else if (arg == "--init-args") {
      o.init_args = value;
    } else {
      UsageError("unknown argument '" + arg + "'");
    }
  }
  if (o.module_path.empty()) UsageError("--module is required");
  if (o.token_label && o.slot) UsageError("give --token or --slot, not both");
  if (pin_file) {
    if (o.pin) UsageError("give --pin or --pin-file, not both");
    auto text = signum::ReadFile(*pin_file);
    if (!text.ok()) UsageError("--pin-file: " + text.status().ToString());
    std::string pin = *text;
    while (!pin.empty() && (pin.back() == '\n' || pin.back() == '\r')) pin.pop_back();
    o.pin = pin;
  } else if (!o.pin) {
    if (const char* env = std::getenv("SIGNUM_CONFORMANCE_PIN"); env && *env) o.pin = env;
  }
  return o;
}

// Adds the profile's exclusions to whatever filter the user gave.
void ApplyProfileFilter(Profile profile) {
  if (profile == Profile::kHsm) return;
  std::string filter = GTEST_FLAG_GET(filter);
  if (filter.find('-') == std::string::npos) {
    filter += std::string("-") + kHsmOnlyAreas;
  } else {
    filter += std::string(":") + kHsmOnlyAreas;
  }
  GTEST_FLAG_SET(filter, filter);
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<char*> gtest_args;
  signum::conformance::Suite& suite = signum::conformance::TheSuite();
  suite.options = ParseArguments(argc, argv, gtest_args);
  int gtest_argc = static_cast<int>(gtest_args.size());
  gtest_args.push_back(nullptr);
  ::testing::InitGoogleTest(&gtest_argc, gtest_args.data());
  ApplyProfileFilter(suite.options.profile);

  if (!suite.options.expect_path.empty()) {
    auto expectations = signum::conformance::Expectations::Load(suite.options.expect_path);
    if (!expectations.ok()) UsageError("--expect: " + expectations.status().ToString());
    suite.expectations = *expectations;
  }
  if (GTEST_FLAG_GET(list_tests)) return RUN_ALL_TESTS();

  if (signum::Status status = signum::conformance::PrepareSuite(suite); !status.ok()) {
    std::cerr << "signum-conformance-pkcs11: " << suite.options.module_path << ": "
              << status.ToString() << "\n";
    return 1;
  }
  std::printf("module %s (%s), token '%s' in slot %lu, profile %s, %s\n",
              suite.options.module_path.c_str(), suite.library_description.c_str(),
              suite.token_label.c_str(), suite.slot,
              std::string(signum::conformance::ProfileName(suite.options.profile)).c_str(),
              suite.options.pin ? "PIN given" : "no PIN");

  auto* collector = new signum::conformance::ResultCollector();  // owned by gtest's listeners
  ::testing::UnitTest::GetInstance()->listeners().Append(collector);
  const int gtest_verdict = RUN_ALL_TESTS();  // ignores the expectations: the collector decides
  (void)gtest_verdict;

  collector->PrintSummary();
  int exit_code = collector->Passed() ? 0 : 1;
  if (!suite.options.junit_path.empty()) {
    if (auto s = collector->WriteJunit(suite.options.junit_path); !s.ok()) {
      std::cerr << s.ToString() << "\n";
      exit_code = 1;
    }
  }
  if (!suite.options.summary_path.empty()) {
    if (auto s = collector->WriteSummary(suite.options.summary_path); !s.ok()) {
      std::cerr << s.ToString() << "\n";
      exit_code = 1;
    }
  }
  // Leave without C_Finalize or static destructors of the module (see ModuleUnderTest).
  std::fflush(stdout);
  std::_Exit(exit_code);
}

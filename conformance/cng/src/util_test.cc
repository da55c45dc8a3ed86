// signum_cng_util_test: the Windows signum-util.exe as users run it, under Wine (or on Windows)
// against a real agent: status and list, registering both providers, publishing the agent's
// certificates in CurrentUser\My with CERT_KEY_PROV_INFO (checked here through crypt32, not
// through signum-util's own output), removing them, unregistering, the HKCU agent configuration
// providers fall back to, and clean exit codes for usage errors and an unreachable agent.
// It signs nothing (registration and stores only), so it writes no manifest and says so
// (SIGNUM_CNG_NO_SIGNATURES, run-wine-suite.sh); the suites that sign use what it sets up.
//
// Environment (run-wine-suite.sh): SIGNUM_AGENT_TCP, SIGNUM_AGENT_SECRET_FILE, SIGNUM_CNG_BIN_DIR.
#include <windows.h>
// wincrypt.h needs windows.h's types first.
#include <wincrypt.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <iostream>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "signum/cng/names.h"
#include "signum/core/encoding.h"
#include "signum/cng/provider_runtime.h"
#include "signum/provider/wide_string.h"
#include "suite_support.h"

namespace signum::cng {
namespace {

constexpr DWORD kTimeoutMs = 60000;

ChildRun Util(const std::string& arguments,
              const std::vector<std::pair<std::string, std::string>>& environment = {}) {
  ChildRun run = RunProgram(ProviderDllPath(L"signum-util.exe"),
                            provider::WideFromUtf8(arguments), environment, kTimeoutMs,
                            ChildOutput::kCapture);
  EXPECT_TRUE(run.started) << "signum-util.exe did not start: " << Win32ErrorName(run.start_error);
  EXPECT_TRUE(run.finished) << "signum-util " << arguments << " did not finish";
  return run;
}

bool Contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

// The lines after "installed N certificate(s) in ...": one upper-case thumbprint each.
std::vector<std::string> InstalledThumbprints(const std::string& output) {
  std::vector<std::string> thumbprints;
  std::istringstream lines(output);
  std::string line;
  while (std::getline(lines, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();  // the console writes CR LF
    if (line.size() == 42 && line.rfind("  ", 0) == 0) thumbprints.push_back(line.substr(2));
  }
  return thumbprints;
}

class UtilTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (EnvironmentValue("SIGNUM_AGENT_TCP").empty()) {
      GTEST_SKIP() << "SIGNUM_AGENT_TCP is not set: run through conformance/cng/run-wine-suite.sh";
    }
  }
};

TEST_F(UtilTest, StatusAndListReachTheAgent) {
  ChildRun status = Util("status");
  EXPECT_EQ(status.exit_code, 0u) << status.output;
  EXPECT_TRUE(Contains(status.output, "(reachable)")) << status.output;
  ChildRun list = Util("list");
  EXPECT_EQ(list.exit_code, 0u) << list.output;
  EXPECT_TRUE(Contains(list.output, " certificate(s)")) << list.output;
  EXPECT_TRUE(Contains(list.output, "  SHA-1 thumbprint: ")) << list.output;
  EXPECT_TRUE(Contains(list.output, "  algorithm:        rsa-2048")) << list.output;
}

TEST_F(UtilTest, RegisterInstallRemoveUnregister) {
  ChildRun reg_ksp = Util("windows register ksp");
  ASSERT_EQ(reg_ksp.exit_code, 0u) << reg_ksp.output;
  ChildRun reg_csp = Util("windows register csp");
  ASSERT_EQ(reg_csp.exit_code, 0u) << reg_csp.output;
  ChildRun show = Util("windows show");
  EXPECT_EQ(show.exit_code, 0u);
  EXPECT_TRUE(Contains(show.output, "signumksp.dll")) << show.output;
  EXPECT_TRUE(Contains(show.output, "signumcsp.dll")) << show.output;
  EXPECT_FALSE(Contains(show.output, "not registered")) << show.output;

  ChildRun install = Util("windows install-certificates --provider ksp --store CurrentUser");
  ASSERT_EQ(install.exit_code, 0u) << install.output;
  const std::vector<std::string> thumbprints = InstalledThumbprints(install.output);
  ASSERT_GE(thumbprints.size(), 3u) << "the demo has three RSA certificates\n" << install.output;
  for (const std::string& thumbprint : thumbprints) {
    const ProvInfo entry = FindInStore(CERT_SYSTEM_STORE_CURRENT_USER, L"My", thumbprint);
    EXPECT_TRUE(entry.found) << thumbprint << " is not in CurrentUser\\My";
    EXPECT_TRUE(entry.has_info) << thumbprint << " carries no CERT_KEY_PROV_INFO";
    EXPECT_EQ(entry.provider, provider::Utf8FromWide(kKspName)) << thumbprint;
    EXPECT_EQ(entry.container, AsciiLower(thumbprint))
        << "the container is the key name the KSP answers to";
    EXPECT_EQ(entry.provider_type, 0u) << "CNG keys have provider type 0";
  }
  // Installing again replaces, never duplicates.
  ChildRun again = Util("windows install-certificates --provider ksp --store CurrentUser");
  EXPECT_EQ(again.exit_code, 0u) << again.output;
  EXPECT_EQ(InstalledThumbprints(again.output), thumbprints);

  ChildRun remove = Util("windows remove-certificates --provider ksp --store CurrentUser");
  ASSERT_EQ(remove.exit_code, 0u) << remove.output;
  EXPECT_TRUE(Contains(remove.output, "removed " + std::to_string(thumbprints.size()) + " ")) <<
      remove.output;
  for (const std::string& thumbprint : thumbprints) {
    EXPECT_FALSE(FindInStore(CERT_SYSTEM_STORE_CURRENT_USER, L"My", thumbprint).found)
        << thumbprint << " is still installed";
  }

  EXPECT_EQ(Util("windows unregister ksp").exit_code, 0u);
  EXPECT_EQ(Util("windows unregister csp").exit_code, 0u);
  EXPECT_EQ(Util("windows unregister csp").exit_code, 0u) << "unregistering twice is not an error";
  ChildRun after = Util("windows show");
  EXPECT_TRUE(Contains(after.output, "not registered")) << after.output;
}

TEST_F(UtilTest, ConfigureLetsProvidersFindTheAgentWithoutEnvironment) {
  const std::string tcp = EnvironmentValue("SIGNUM_AGENT_TCP");
  const std::string secret = EnvironmentValue("SIGNUM_AGENT_SECRET_FILE");
  // Without the variables and without configuration: a clear error, exit 1.
  RegDeleteTreeW(HKEY_CURRENT_USER, kAgentRegistryKey);
  ChildRun unconfigured = Util("status", {{"SIGNUM_AGENT_TCP", ""}});
  EXPECT_EQ(unconfigured.exit_code, 1u) << unconfigured.output;
  EXPECT_TRUE(Contains(unconfigured.output, "windows configure")) << unconfigured.output;

  ChildRun configure = Util("windows configure --agent-tcp " + tcp + " --secret-file \"" + secret +
                            "\"");
  ASSERT_EQ(configure.exit_code, 0u) << configure.output;
  ChildRun status = Util("status", {{"SIGNUM_AGENT_TCP", ""}});
  EXPECT_EQ(status.exit_code, 0u) << status.output;
  EXPECT_TRUE(Contains(status.output, "(reachable)")) << status.output;
  RegDeleteTreeW(HKEY_CURRENT_USER, kAgentRegistryKey);
}

TEST_F(UtilTest, UsageErrorsAndAnUnreachableAgentHaveTheirExitCodes) {
  EXPECT_EQ(Util("no-such-command").exit_code, 2u);
  EXPECT_EQ(Util("windows register").exit_code, 2u);
  EXPECT_EQ(Util("windows register hsm").exit_code, 2u);
  EXPECT_EQ(Util("windows configure --agent-tcp 10.0.0.1:5").exit_code, 2u);
  ChildRun help = Util("help");
  EXPECT_EQ(help.exit_code, 0u);
  EXPECT_TRUE(Contains(help.output, "install-certificates")) << help.output;
  // Port 1 on loopback: nothing listens there.
  ChildRun down = Util("status", {{"SIGNUM_AGENT_TCP", "127.0.0.1:1"}});
  EXPECT_EQ(down.exit_code, 1u) << down.output;
  EXPECT_TRUE(Contains(down.output, "UNREACHABLE")) << down.output;
}

}  // namespace
}  // namespace signum::cng

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  // run-wine-suite.sh: this program signs nothing, so no manifest.tsv is expected.
  std::cout << "SIGNUM_CNG_NO_SIGNATURES: signum-util registers and publishes; it does not sign\n";
  return RUN_ALL_TESTS();
}

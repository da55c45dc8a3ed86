// A throwaway SoftHSM2 token for tests: its own softhsm2.conf and token directory under a
// TempDir, initialised with softhsm2-util. SOFTHSM2_CONF is set process-wide (SoftHSM reads it
// at C_Initialize), so one SoftHsmToken per test process at a time.
#pragma once

#include <string>

#include "signum/testing/temp_dir.h"

namespace signum::testing {

inline constexpr const char* kSoftHsmModule = "/usr/lib/softhsm/libsofthsm2.so";

class SoftHsmToken {
 public:
  // Creates and initialises the token; throws std::runtime_error with softhsm2-util's output on
  // failure. `extra_config` lines are appended to softhsm2.conf.
  explicit SoftHsmToken(const std::string& label = "signum-test", const std::string& pin = "1234",
                        const std::string& so_pin = "5678", const std::string& extra_config = "");
  ~SoftHsmToken();

  const std::string& module_path() const { return module_; }
  const std::string& label() const { return label_; }
  const std::string& pin() const { return pin_; }
  const std::string& config_path() const { return config_; }
  const std::string& dir() const { return dir_.path(); }

 private:
  TempDir dir_;
  std::string module_ = kSoftHsmModule;
  std::string label_, pin_, config_;
  std::string previous_conf_;
  bool had_previous_conf_ = false;
};

// Runs a shell command, returning its exit status and combined output.
struct CommandResult {
  int exit_code = -1;
  std::string output;
};
CommandResult RunCommand(const std::string& command);

}  // namespace signum::testing

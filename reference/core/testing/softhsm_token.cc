#include "signum/testing/softhsm_token.h"

#include <sys/wait.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <stdexcept>

namespace signum::testing {

CommandResult RunCommand(const std::string& command) {
  CommandResult result;
  FILE* pipe = popen((command + " 2>&1").c_str(), "r");
  if (!pipe) return result;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, pipe)) > 0) result.output.append(buf, n);
  int status = pclose(pipe);
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return result;
}

SoftHsmToken::SoftHsmToken(const std::string& label, const std::string& pin,
                           const std::string& so_pin, const std::string& extra_config)
    : dir_("signum-softhsm"), label_(label), pin_(pin) {
  config_ = dir_.File("softhsm2.conf");
  const std::string tokens = dir_.File("tokens");
  std::ofstream(config_) << "directories.tokendir = " << tokens << "\n"
                         << "objectstore.backend = file\n"
                         << "log.level = ERROR\n"
                         << "slots.removable = false\n"
                         << extra_config << "\n";
  if (RunCommand("mkdir -p '" + tokens + "'").exit_code != 0)
    throw std::runtime_error("cannot create " + tokens);
  if (const char* prev = std::getenv("SOFTHSM2_CONF")) {
    had_previous_conf_ = true;
    previous_conf_ = prev;
  }
  setenv("SOFTHSM2_CONF", config_.c_str(), 1);
  CommandResult init = RunCommand("softhsm2-util --init-token --free --label '" + label +
                                  "' --pin '" + pin + "' --so-pin '" + so_pin + "'");
  if (init.exit_code != 0)
    throw std::runtime_error("softhsm2-util --init-token failed: " + init.output);
}

SoftHsmToken::~SoftHsmToken() {
  if (had_previous_conf_) {
    setenv("SOFTHSM2_CONF", previous_conf_.c_str(), 1);
  } else {
    unsetenv("SOFTHSM2_CONF");
  }
}

}  // namespace signum::testing

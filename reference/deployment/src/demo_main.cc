// signum-demo: a local Signum deployment for people and test suites (ci/demo execs it).
//
//   signum-demo up DIR       create DIR with `signum-server init-demo` if needed, start server and
//                            agent in the background, wait until the agent reaches the server,
//                            write DIR/env.sh (running already: only rewrites DIR/env.sh)
//   signum-demo status DIR   what runs (exit 3 unless server and agent run and reach each other)
//   signum-demo down DIR     stop exactly the processes in DIR/run/*.pid
//
// Binaries: this build's, or $SIGNUM_BUILD_DIR's. Exit codes: 0 ok, 1 failure, 2 usage, 3 status
// found something stopped or unreachable.
#include <sys/stat.h>

#include <iostream>
#include <string>

#include "signum/deployment/deployment.h"

namespace {

using signum::deployment::Deployment;
using signum::deployment::DeploymentOptions;
using signum::deployment::DeploymentState;

constexpr const char* kName = "signum-demo";

int Usage() {
  std::cerr << "usage: " << kName << " up|status|down DIR\n";
  return 2;
}

int Fail(const std::string& message) {
  std::cerr << kName << ": " << message << "\n";
  return 1;
}

int Up(Deployment& d) {
  signum::Status up = d.Up();
  if (!up.ok()) return Fail(up.message());
  DeploymentState s = d.State();
  std::cout << kName << ": up: server " << s.server_url << " (pid " << s.server_pid << "), agent "
            << s.agent_socket << " (pid " << s.agent_pid << ")\n"
            << kName << ": source " << d.env_file() << "\n";
  return 0;
}

int Status(Deployment& d) {
  DeploymentState s = d.State();
  int rc = 0;
  if (s.server_pid != 0) {
    std::cout << "signum-server: running (pid " << s.server_pid << ", " << s.server_url << ")\n";
  } else {
    std::cout << "signum-server: stopped\n";
    rc = 3;
  }
  if (s.agent_pid == 0) {
    std::cout << "signum-agent:  stopped\n";
    return 3;
  }
  std::cout << "signum-agent:  running (pid " << s.agent_pid << ", " << s.agent_socket << ")\n";
  if (!s.agent_answered) {
    std::cout << "  agent:        UNREACHABLE (" << s.agent_error << ")\n";
    return 3;
  }
  std::cout << "  agent:        " << s.agent_endpoint << " (" << s.agent_name << ")\n"
            << "  server:       " << s.server_url << " ("
            << (s.server_reachable ? "reachable" : "UNREACHABLE") << ")\n"
            << "  user:         " << s.user << "\n"
            << "  certificates: " << s.certificates << "\n"
            << "  message:      " << s.message << "\n";
  return s.server_reachable ? rc : 3;
}

int Down(Deployment& d) {
  signum::Status down = d.Down();
  return down.ok() ? 0 : Fail(down.message());
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) return Usage();
  const std::string command = argv[1];
  if (command != "up" && command != "status" && command != "down") return Usage();
  struct stat st;
  if (command != "up" && (::stat(argv[2], &st) != 0 || !S_ISDIR(st.st_mode))) {
    return Fail(std::string("no directory ") + argv[2]);
  }
  DeploymentOptions options;
  options.directory = argv[2];
  options.detached = true;  // the processes outlive this command
  options.progress = [](const std::string& message) { std::cout << kName << ": " << message << "\n"; };
  auto deployment = Deployment::Create(std::move(options));
  if (!deployment.ok()) return Fail(deployment.status().message());
  if (command == "up") return Up(**deployment);
  if (command == "status") return Status(**deployment);
  return Down(**deployment);
}

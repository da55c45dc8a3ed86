// A running Signum deployment, defined once: `signum-server init-demo` on a directory, signum-server
// and one signum-agent for a demo user, and DIR/env.sh for tools. Used by the end-to-end tests,
// by `signum-demo` (behind ci/demo) and by the Python module the interop runner drives.
//
// Every process is tracked by a PID file (DIR/run/server.pid, DIR/run/agent.pid) and is signalled
// only while /proc/PID/cmdline still names its binary, so a recycled PID is never touched. A
// deployment started by one process can therefore be inspected and stopped by another.
//
//   DIR/run/agent.sock, agent.secret, agent.port    the agent's endpoints (run/ is 0700)
//   DIR/logs/server.out, agent.out, agent.log        the processes' output
//   DIR/secrets/token.pin                            the PIN providers check (created by Up())
//   DIR/env.sh                                       `source` it for providers (0600: token PIN)
//   DIR/hsm-baseline.env.sh                          the direct-HSM baseline (0600: HSM PIN), only
//                                                    for tests that use the HSM around Signum
#pragma once

#include <sys/types.h>

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "signum/core/status.h"

namespace signum::deployment {

// A PKCS#11 HSM other than the demo's own SoftHSM2 token; passed through to init-demo as
// --hsm-module, --hsm-token-label, --hsm-pin-file and one --hsm-env NAME=VALUE per entry.
struct VendorHsm {
  std::string module;       // the HSM's PKCS#11 module
  std::string token_label;  // an initialised token on it
  std::string pin_file;     // its user PIN
  std::map<std::string, std::string> environment;  // what the module needs (config file, ...)
};

struct DeploymentOptions {
  // Where the deployment lives. Empty: a fresh directory under $TMPDIR (or /tmp), removed when
  // the Deployment object dies (unless detached).
  std::string directory;
  // The demo user whose credential the agent holds: credentials/USER.token (bearer token) or
  // credentials/USER.crt + USER.key (mTLS).
  std::string user = "release";
  // init-demo --keys (e.g. {"rsa-2048", "ec-p256"}); empty means init-demo's full set.
  std::vector<std::string> keys;
  // The agent also listens on loopback TCP (127.0.0.1, ephemeral port) beside its Unix socket.
  bool agent_tcp = true;
  // The processes outlive this object (they run in their own session); stop them with Down(),
  // from this or any other process. Otherwise the destructor stops them.
  bool detached = false;
  std::optional<VendorHsm> vendor_hsm;
  // init-demo --hsm-serialize: the server makes one call at a time into the HSM module
  // (server.json hsm.serialize), for modules that are not safe under concurrency.
  bool hsm_serialize = false;
  // Bound for each of: the server answering /v1/health, the agent answering, the agent reaching
  // the server.
  int start_timeout_ms = 30000;
  // Commands the server and the agent run under, for profiling (e.g. {"valgrind",
  // "--tool=callgrind"}, {"strace", "-f", "-c", "-o", "FILE"}): they must exec the program in the
  // same process, so the PID files stay right. Empty: run them directly.
  std::vector<std::string> server_wrapper;
  std::vector<std::string> agent_wrapper;
  // Progress for people ("creating a demo deployment in DIR", "stopped agent (pid N)").
  std::function<void(const std::string&)> progress;
};

// The programs a deployment runs. Defaults are the build's own binaries (compile definitions);
// $SIGNUM_BUILD_DIR, when set, points at another build tree of the same layout.
struct BinaryPaths {
  std::string build_dir;      // named in "not built" errors
  std::string server;         // signum-server
  std::string agent;          // signum-agent
  std::string pkcs11_module;  // libsignumpkcs11.so (exported in env.sh; need not be built)
  static BinaryPaths FromBuild();
};

// What runs, as seen through the PID files and the agent itself.
struct DeploymentState {
  pid_t server_pid = 0;  // 0: not running
  pid_t agent_pid = 0;
  std::string server_url;    // from server.json; empty before init-demo
  std::string agent_socket;  // DIR/run/agent.sock
  // The agent's own report (agent_protocol StatusReport), when it answered.
  bool agent_answered = false;
  std::string agent_error;     // why it did not answer
  std::string agent_endpoint;  // "unix:/.../agent.sock"
  std::string agent_name;      // "signum-agent/0.1"
  bool server_reachable = false;
  std::string user;
  size_t certificates = 0;
  std::string message;

  // Server and agent run, and the agent reaches the server.
  bool healthy() const { return server_pid && agent_pid && agent_answered && server_reachable; }
};

class Deployment {
 public:
  // Creates the directory (not the deployment: that is Up()'s first step).
  static Result<std::unique_ptr<Deployment>> Create(DeploymentOptions options,
                                                    BinaryPaths binaries = BinaryPaths::FromBuild());
  ~Deployment();
  Deployment(const Deployment&) = delete;
  Deployment& operator=(const Deployment&) = delete;

  // Initialize(), then starts whatever is not running (server, then agent), waits until the agent
  // reaches the server, and writes env.sh. On a running deployment it only rewrites env.sh.
  Status Up();
  // Stops the agent, then the server: SIGTERM, up to 10 s, then SIGKILL. Removes the PID files.
  Status Down();
  DeploymentState State() const;

  // The single steps, for tests that take the path apart.
  Status Initialize();   // `signum-server init-demo DIR ...` unless DIR/server.json exists
  Status StartServer();  // returns once /v1/health answers 200
  Status StopServer();
  Status StartAgent();  // returns once the agent answers on its socket (the server may be down)
  Status StopAgent();
  // DIR/env.sh from Env() and DIR/hsm-baseline.env.sh from HsmBaselineEnv(), both 0600.
  Status WriteEnvFile();

  // The variables env.sh exports, by name: what a provider user needs (agent, module, token PIN).
  Result<std::map<std::string, std::string>> Env() const;
  // The variables hsm-baseline.env.sh exports: the HSM module, its environment, token label and
  // HSM PIN, for the direct-HSM baseline only (the PIN goes around policy and audit).
  Result<std::map<std::string, std::string>> HsmBaselineEnv() const;

  const std::string& dir() const { return dir_; }
  const DeploymentOptions& options() const { return options_; }
  const BinaryPaths& binaries() const { return binaries_; }
  std::string File(const std::string& relative) const { return dir_ + "/" + relative; }
  std::string server_config() const { return File("server.json"); }
  std::string root_ca() const { return File("ca/root.pem"); }
  std::string chain() const { return File("ca/chain.pem"); }  // issuing CA + root
  std::string token_pin_file() const { return File("secrets/token.pin"); }
  Result<std::string> hsm_pin_file() const;  // hsm.pin_file of server.json
  std::string env_file() const { return File("env.sh"); }
  std::string hsm_baseline_env_file() const { return File("hsm-baseline.env.sh"); }
  std::string run_dir() const { return File("run"); }
  std::string logs_dir() const { return File("logs"); }
  std::string agent_socket() const { return File("run/agent.sock"); }
  // The label libsignumpkcs11.so gives its token.
  static constexpr const char* kSignumTokenLabel = "Signum";

 private:
  Deployment(DeploymentOptions options, BinaryPaths binaries, std::string dir, bool owns_dir);
  void Progress(const std::string& message) const;
  pid_t LivePid(const std::string& name, const std::string& binary) const;
  Status StopProcess(const std::string& name, const std::string& binary);
  Status EnsureTokenPin();
  Status WaitForAgentToReachServer();

  DeploymentOptions options_;
  BinaryPaths binaries_;
  std::string dir_;
  bool owns_dir_ = false;
};

}  // namespace signum::deployment

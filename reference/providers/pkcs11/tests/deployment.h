// The real signing path for end-to-end tests: a demo deployment (`signum-server init-demo` on a
// fresh SoftHSM2 token) with a running signum-server and signum-agent, both our own children
// (Boost.Process), stopped by their PIDs. Nothing in the path is mocked.
#pragma once

#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <boost/process.hpp>
#include <chrono>
#include <memory>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "agent_client.h"
#include "signum/core/files.h"
#include "signum/core/https_client.h"
#include "signum/core/wire.h"
#include "softhsm_token.h"
#include "temp_dir.h"

namespace signum::pkcs11::testing {

namespace bp = boost::process;

inline constexpr const char* kServerBinary = SIGNUM_SERVER_BINARY;
inline constexpr const char* kAgentBinary = SIGNUM_AGENT_BINARY;

// A log file's text for failure messages ("" when it cannot be read).
inline std::string ReadLog(const std::string& path) {
  auto text = ReadFile(path);
  return text.ok() ? *text : std::string();
}

// SIGTERM to our own child, a bounded wait, SIGKILL as the last resort.
inline void StopChild(std::unique_ptr<bp::child>& child) {
  if (!child) return;
  if (child->running()) {
    ::kill(child->id(), SIGTERM);
    for (int i = 0; i < 200 && child->running(); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(25));
    }
    if (child->running()) child->terminate();
  }
  child->wait();
  child.reset();
}

class Deployment {
 public:
  explicit Deployment(const std::string& user = "release") : dir_("signum-p11-e2e"), user_(user) {
    root_ = dir_.path() + "/demo";
    auto init = signum::testing::RunCommand(std::string(kServerBinary) + " init-demo " + root_);
    if (init.exit_code != 0) throw std::runtime_error("init-demo failed: " + init.output);
    nlohmann::json config = nlohmann::json::parse(*ReadFile(root_ + "/server.json"));
    port_ = config["listen"]["port"].get<uint16_t>();
  }
  ~Deployment() {
    StopAgent();
    StopServer();
  }

  const std::string& root() const { return root_; }
  std::string agent_socket() const { return dir_.path() + "/agent/agent.sock"; }
  std::string File(const std::string& name) const { return dir_.File(name); }

  void StartServer() {
    server_ = std::make_unique<bp::child>(
        kServerBinary, "serve", "--config", root_ + "/server.json",
        bp::std_out > root_ + "/logs/stdout.log", bp::std_err > root_ + "/logs/stderr.log");
    // Ready when /v1/health answers (bounded: 30 s).
    for (int i = 0; i < 300; ++i) {
      HttpsClientConfig c;
      c.port = port_;
      c.ca_file = root_ + "/ca/root.pem";
      c.connect_timeout_ms = 1000;
      auto client = HttpsClient::Create(c);
      if (client.ok()) {
        auto r = (*client)->Get(std::string(wire::kHealthPath));
        if (r.ok() && r->status == 200) return;
      }
      if (!server_->running()) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    throw std::runtime_error("signum-server did not start: " + ReadLog(root_ + "/logs/stderr.log"));
  }
  void StopServer() { StopChild(server_); }

  void StartAgent() {
    ::mkdir((dir_.path() + "/agent").c_str(), 0700);
    // The agent's environment is set through env(1), which execs the agent (same PID, so it is
    // still stopped by PID): Boost.Process 1.74's environment lookup reads past the end of
    // shorter names (AddressSanitizer reports it), so its environment API is avoided.
    std::vector<std::string> args;
    for (const char* name :
         {"SIGNUM_CERTIFICATE_PATH", "SIGNUM_KEY_PATH", "SIGNUM_AGENT_SECRET_FILE",
          "SIGNUM_AGENT_PORT_FILE", "SIGNUM_LOG_FILE", "SIGNUM_CACHE_TTL", "SIGNUM_PKCS11_TRACE",
          "SIGNUM_CONFIG"}) {
      args.push_back("-u");
      args.push_back(name);
    }
    args.push_back("SIGNUM_SERVER_URL=https://127.0.0.1:" + std::to_string(port_));
    args.push_back("SIGNUM_TLS_TRUSTED_CA=" + root_ + "/ca/root.pem");
    args.push_back("SIGNUM_TOKEN_FILE=" + root_ + "/credentials/" + user_ + ".token");
    args.push_back("SIGNUM_AGENT_SOCKET=" + agent_socket());
    args.push_back("SIGNUM_AGENT_TCP=off");
    args.push_back("SIGNUM_LOGLEVEL=info");
    args.push_back(kAgentBinary);
    args.push_back("--log-file");
    args.push_back(dir_.path() + "/agent/agent.log");
    agent_ = std::make_unique<bp::child>(bp::exe = "/usr/bin/env", bp::args = args,
                                         bp::std_out > bp::null,
                                         bp::std_err > dir_.path() + "/agent/agent.stderr");
    agent::AgentEndpoint endpoint;
    endpoint.unix_socket = agent_socket();
    for (int i = 0; i < 200; ++i) {
      if (::access(agent_socket().c_str(), F_OK) == 0 &&
          agent::AgentClient::Connect(endpoint, "p11-test (startup)", 2000).ok()) {
        return;
      }
      if (!agent_->running()) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    throw std::runtime_error(
        "signum-agent did not start: " + ReadLog(dir_.path() + "/agent/agent.log") +
        ReadLog(dir_.path() + "/agent/agent.stderr"));
  }
  void StopAgent() { StopChild(agent_); }

 private:
  signum::testing::TempDir dir_;
  std::string user_;
  std::string root_;
  uint16_t port_ = 0;
  std::unique_ptr<bp::child> server_;
  std::unique_ptr<bp::child> agent_;
};

}  // namespace signum::pkcs11::testing

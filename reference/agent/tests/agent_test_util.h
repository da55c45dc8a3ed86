// Test fixtures shared by the agent's end-to-end tests: a real signum-server on a demo deployment
// (init-demo on a fresh SoftHSM2 token) and real signum-agent processes, all started with
// Boost.Process and stopped by the PID of our own child.
#pragma once

#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <boost/process.hpp>
#include <boost/process/extend.hpp>
#include <chrono>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "signum/agent/agent_client.h"
#include "signum/core/files.h"
#include "signum/core/https_client.h"
#include "signum/core/wire.h"
#include "signum/testing/loopback.h"
#include "signum/testing/softhsm_token.h"
#include "signum/testing/temp_dir.h"

namespace signum::agent::testing {

namespace bp = boost::process;
using signum::testing::RunCommand;
using signum::testing::TempDir;

inline constexpr const char* kServerBinary = SIGNUM_SERVER_BINARY;
inline constexpr const char* kAgentBinary = SIGNUM_AGENT_BINARY;
inline constexpr const char* kUtilBinary = SIGNUM_UTIL_BINARY;
// The real libsignumpkcs11.so (p11-kit registration is tested with what it registers).
inline constexpr const char* kPkcs11Module = SIGNUM_PKCS11_MODULE_PATH;

// The value, or "" for an error (file not there yet, and the like).
inline std::string OrEmpty(const Result<std::string>& r) { return r.ok() ? *r : std::string(); }

// Sends SIGTERM to our own child, waits (bounded), SIGKILLs as a last resort; returns the exit
// code.
inline int StopChild(bp::child& child, std::chrono::milliseconds grace = std::chrono::seconds(10)) {
  if (child.running()) {
    ::kill(child.id(), SIGTERM);
    const auto deadline = std::chrono::steady_clock::now() + grace;
    while (child.running() && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    if (child.running()) child.terminate();
  }
  child.wait();
  return child.exit_code();
}

// A demo deployment with a running signum-server.
class Deployment {
 public:
  Deployment() : dir_("signum-agent-e2e") {
    root_ = dir_.path() + "/demo";
    auto init = RunCommand(std::string(kServerBinary) + " init-demo " + root_);
    if (init.exit_code != 0) throw std::runtime_error("init-demo failed: " + init.output);
    nlohmann::json config = nlohmann::json::parse(*ReadFile(root_ + "/server.json"));
    port_ = config["listen"]["port"].get<uint16_t>();
  }
  ~Deployment() { Stop(); }

  const std::string& root() const { return root_; }
  const std::string& dir() const { return dir_.path(); }
  uint16_t port() const { return port_; }
  std::string url() const { return "https://127.0.0.1:" + std::to_string(port_); }
  std::string ca() const { return root_ + "/ca/root.pem"; }
  std::string token_file(const std::string& user = "release") const {
    return root_ + "/credentials/" + user + ".token";
  }
  std::string audit_log() const { return root_ + "/audit/audit.log"; }
  bool running() { return server_ && server_->running(); }

  void Start() {
    server_ = std::make_unique<bp::child>(
        kServerBinary, "serve", "--config", root_ + "/server.json",
        bp::std_out > root_ + "/logs/stdout.log", bp::std_err > root_ + "/logs/stderr.log");
    for (int i = 0; i < 300; ++i) {
      HttpsClientConfig c;
      c.port = port_;
      c.ca_file = ca();
      c.connect_timeout_ms = 1000;
      auto client = HttpsClient::Create(c);
      if (client.ok()) {
        auto r = (*client)->Get(std::string(wire::kHealthPath));
        if (r.ok() && r->status == 200) return;
      }
      if (!server_->running()) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    throw std::runtime_error("signum-server did not become healthy: " +
                             OrEmpty(ReadFile(root_ + "/logs/stderr.log")));
  }

  void Stop() {
    if (!server_) return;
    StopChild(*server_);
    server_.reset();
  }

 private:
  TempDir dir_;
  std::string root_;
  uint16_t port_ = 0;
  std::unique_ptr<bp::child> server_;
};

// One signum-agent process configured through SIGNUM_* environment variables.
class AgentProcess {
 public:
  struct Options {
    std::string server_url;
    std::string ca_file;
    std::string token_file;
    bool tcp = true;
    bool unix_socket = true;  // false: SIGNUM_AGENT_SOCKET=off, the TCP-only (Windows) mode
    std::string cache_ttl;  // empty: default
    std::map<std::string, std::string> extra_env;
    std::function<void()> before_exec;  // runs in the child (e.g. setuid)
  };

  AgentProcess(const std::string& dir, Options options) : dir_(dir), options_(std::move(options)) {}
  ~AgentProcess() { Stop(); }

  std::string socket() const { return dir_ + "/agent.sock"; }
  std::string secret_file() const { return dir_ + "/agent.secret"; }
  std::string port_file() const { return dir_ + "/agent.port"; }
  std::string pid_file() const { return dir_ + "/agent.pid"; }
  std::string log_file() const { return dir_ + "/agent.log"; }
  std::string log() const { return OrEmpty(ReadFile(log_file())); }
  std::string stderr_output() const { return OrEmpty(ReadFile(dir_ + "/agent.stderr")); }

  // The agent's environment as `env` arguments: "-u NAME" for every SIGNUM_* variable the agent
  // reads (so the test's own environment cannot leak in), then NAME=VALUE pairs; a later pair
  // wins. (Boost.Process's environment editing reads out of bounds under ASan in Boost 1.74, so
  // the child gets its variables through /usr/bin/env instead.)
  std::vector<std::string> EnvArgs() const {
    std::vector<std::string> args;
    for (const char* name :
         {"SIGNUM_SERVER_URL", "SIGNUM_TLS_TRUSTED_CA", "SIGNUM_TOKEN_FILE",
          "SIGNUM_CERTIFICATE_PATH", "SIGNUM_KEY_PATH", "SIGNUM_AGENT_SOCKET", "SIGNUM_AGENT_TCP",
          "SIGNUM_AGENT_SECRET_FILE", "SIGNUM_AGENT_PORT_FILE", "SIGNUM_AGENTID", "SIGNUM_LOGLEVEL",
          "SIGNUM_LOG_FILE", "SIGNUM_CACHE_TTL"}) {
      args.push_back("-u");
      args.push_back(name);
    }
    auto set = [&](const std::string& k, const std::string& v) { args.push_back(k + "=" + v); };
    set("SIGNUM_SERVER_URL", options_.server_url);
    set("SIGNUM_TLS_TRUSTED_CA", options_.ca_file);
    set("SIGNUM_TOKEN_FILE", options_.token_file);
    set("SIGNUM_AGENT_SOCKET", options_.unix_socket ? socket() : "off");
    set("SIGNUM_AGENT_TCP", options_.tcp ? "127.0.0.1:0" : "off");
    set("SIGNUM_AGENT_SECRET_FILE", secret_file());
    set("SIGNUM_AGENT_PORT_FILE", port_file());
    set("SIGNUM_AGENTID", "agent-e2e");
    set("SIGNUM_LOGLEVEL", "debug");
    if (!options_.cache_ttl.empty()) set("SIGNUM_CACHE_TTL", options_.cache_ttl);
    for (const auto& [k, v] : options_.extra_env) set(k, v);
    return args;
  }

  // Starts the agent and waits (bounded) until it answers a Hello on its socket.
  void Start() {
    auto setup = bp::extend::on_exec_setup = [this](auto&) {
      if (options_.before_exec) options_.before_exec();
    };
    std::vector<std::string> args = EnvArgs();
    for (const std::string& a : {std::string(kAgentBinary), std::string("--pid-file"), pid_file(),
                                 std::string("--log-file"), log_file()}) {
      args.push_back(a);
    }
    // env execs the agent, so the child's PID is the agent's.
    child_ = std::make_unique<bp::child>(bp::exe = "/usr/bin/env", bp::args = args,
                                         bp::std_out > bp::null,
                                         bp::std_err > dir_ + "/agent.stderr", setup);
    for (int i = 0; i < 200; ++i) {
      if (!child_->running()) break;
      if ((!options_.unix_socket || ::access(socket().c_str(), F_OK) == 0) &&
          (!options_.tcp || ::access(port_file().c_str(), F_OK) == 0)) {
        auto client = AgentClient::Connect(options_.unix_socket ? UnixEndpoint() : TcpEndpoint(),
                                           "agent-test (startup)", 2000);
        if (client.ok() || client.status().code() == ErrorCode::kPermissionDenied) return;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    throw std::runtime_error("signum-agent did not start: " + log() +
                             OrEmpty(ReadFile(dir_ + "/agent.stderr")));
  }

  int Stop() {
    if (!child_) return last_exit_code_;
    last_exit_code_ = StopChild(*child_);
    child_.reset();
    return last_exit_code_;
  }
  bool running() { return child_ && child_->running(); }
  pid_t pid() const { return child_ ? child_->id() : -1; }
  bp::child* child() { return child_.get(); }

  AgentEndpoint UnixEndpoint() const {
    AgentEndpoint e;
    e.unix_socket = socket();
    return e;
  }
  uint16_t tcp_port() const {
    auto text = ReadFile(port_file());
    return text.ok() ? static_cast<uint16_t>(std::stoi(*text)) : 0;
  }
  AgentEndpoint TcpEndpoint() const {
    AgentEndpoint e;
    e.tcp_host = "127.0.0.1";
    e.tcp_port = tcp_port();
    e.secret = OrEmpty(ReadAgentSecretFile(secret_file()));
    return e;
  }

 private:
  std::string dir_;
  Options options_;
  std::unique_ptr<bp::child> child_;
  int last_exit_code_ = -1;
};

}  // namespace signum::agent::testing

#include "signum/deployment/deployment.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/process.hpp>
#include <boost/process/extend.hpp>
#include <chrono>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>
#include <utility>

#include "signum/agent/agent_client.h"
#include "signum/core/crypto.h"
#include "signum/core/files.h"
#include "signum/core/https_client.h"
#include "signum/core/posix_platform.h"
#include "signum/core/wire.h"

namespace signum::deployment {
namespace {

namespace bp = boost::process;
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

constexpr const char* kEnvBinary = "/usr/bin/env";
constexpr int kPollIntervalMs = 100;
constexpr int kStopGraceMs = 10000;
constexpr int kLogTailLines = 5;

// Runs the child in its own session: it survives the terminal and the process group of whoever
// started it (a detached deployment).
struct NewSession : bp::extend::handler {
  template <typename Executor>
  void on_exec_setup(Executor&) const {
    ::setsid();
  }
};

void Sleep(int ms) { std::this_thread::sleep_for(std::chrono::milliseconds(ms)); }

std::string Basename(const std::string& path) {
  auto slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

// The last `lines` lines of a log file, each prefixed "  ", for error messages ("" if unreadable).
std::string LogTail(const std::string& path, int lines = kLogTailLines) {
  auto text = ReadFile(path);
  if (!text.ok() || text->empty()) return "";
  std::string s = *text;
  while (!s.empty() && s.back() == '\n') s.pop_back();
  size_t start = s.size();
  for (int i = 0; i < lines && start > 0; ++i) {
    start = s.rfind('\n', start - 1);
    if (start == std::string::npos) {
      start = 0;
      break;
    }
  }
  if (start > 0) ++start;
  std::string out = "\n==> " + path + " <==";
  std::istringstream in(s.substr(start));
  for (std::string line; std::getline(in, line);) out += "\n  " + line;
  return out;
}

// True while pid is a live process (a zombie counts as gone). Reaps it first if it is our own
// child, so a deployment started by this process does not leave zombies behind.
bool Alive(pid_t pid) {
  int status = 0;
  ::waitpid(pid, &status, WNOHANG);  // ECHILD for processes that are not ours: harmless
  return posix::StateOf(pid) == posix::ProcessState::kRunning;
}

// True once pid has left the process table: reaped by us (our own child) or by its parent.
// Callers that stop a process wait for this, not for !Alive(), so that when they return nothing
// of it is visible any more, not even a zombie awaiting its reaper.
bool Gone(pid_t pid) {
  int status = 0;
  ::waitpid(pid, &status, WNOHANG);
  return posix::StateOf(pid) == posix::ProcessState::kGone;
}

// Shell single quotes around value.
std::string ShellQuote(const std::string& value) {
  std::string out = "'";
  for (char c : value) {
    if (c == '\'')
      out += "'\\''";
    else
      out += c;
  }
  return out + "'";
}

// What a deployment needs from server.json; relative paths resolved against DIR like
// signum-server does.
struct ServerConfigView {
  uint16_t port = 0;
  std::string hsm_module;
  std::string hsm_token_label;
  std::string hsm_pin_file;
  std::vector<std::pair<std::string, std::string>> hsm_environment;
};

Result<ServerConfigView> ReadServerConfig(const std::string& dir) {
  const std::string path = dir + "/server.json";
  SIGNUM_ASSIGN_OR_RETURN(std::string text, ReadFile(path));
  nlohmann::json config = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (!config.is_object()) return InvalidArgumentError(path + " is not a JSON object");
  ServerConfigView view;
  try {
    view.port = config.at("listen").at("port").get<uint16_t>();
    const auto& hsm = config.at("hsm");
    view.hsm_module = hsm.value("module", "");
    view.hsm_token_label = hsm.value("token_label", "");
    const std::string pin_file = hsm.value("pin_file", "");
    view.hsm_pin_file = pin_file.empty() ? "" : ResolvePath(dir, pin_file);
    if (hsm.contains("environment") && hsm["environment"].is_object()) {
      for (const auto& [name, value] : hsm["environment"].items()) {
        std::string v = value.get<std::string>();
        // Paths in the demo's environment (SOFTHSM2_CONF) are resolved like the server does.
        if (name == "SOFTHSM2_CONF") v = ResolvePath(dir, v);
        view.hsm_environment.emplace_back(name, v);
      }
    }
  } catch (const nlohmann::json::exception& e) {
    return InvalidArgumentError(path + ": " + e.what());
  }
  return view;
}

// Starts argv (argv[0] = program) with stdin from /dev/null and stdout + stderr appended to
// output_file. The child is not waited for by Boost: Alive() reaps it.
Result<pid_t> Launch(const std::vector<std::string>& argv, const std::string& output_file,
                     bool new_session) {
  FILE* out = ::fopen(output_file.c_str(), "ae");
  if (out == nullptr) return UnavailableError("cannot open " + output_file + " for appending");
  std::vector<std::string> args(argv.begin() + 1, argv.end());
  std::error_code ec;
  bp::child child;
  if (new_session) {
    child = bp::child(bp::exe = argv[0], bp::args = args, bp::std_in<bp::null, bp::std_out> out,
                      bp::std_err > out, NewSession{}, ec);
  } else {
    child = bp::child(bp::exe = argv[0], bp::args = args, bp::std_in<bp::null, bp::std_out> out,
                      bp::std_err > out, ec);
  }
  ::fclose(out);
  if (ec) return UnavailableError("cannot start " + argv[0] + ": " + ec.message());
  pid_t pid = child.id();
  child.detach();
  return pid;
}

Status RequireExecutable(const std::string& path, const BinaryPaths& binaries) {
  if (::access(path.c_str(), X_OK) == 0) return Status::Ok();
  return FailedPreconditionError(path + " is not built (cmake --build " + binaries.build_dir +
                                 " --target signum-server signum-agent)");
}

Status WritePidFile(const std::string& path, pid_t pid) {
  return WriteFileAtomically(path, std::to_string(pid) + "\n", 0644);
}

std::string HostName() {
  char name[256] = {};
  if (::gethostname(name, sizeof name - 1) != 0) return "localhost";
  return name;
}

}  // namespace

BinaryPaths BinaryPaths::FromBuild() {
  BinaryPaths b;
  const char* override_dir = std::getenv("SIGNUM_BUILD_DIR");
  if (override_dir != nullptr && *override_dir != '\0') {
    std::string build = fs::absolute(override_dir).lexically_normal().string();
    while (build.size() > 1 && build.back() == '/') build.pop_back();
    b.build_dir = build;
    b.server = build + "/reference/server/signum-server";
    b.agent = build + "/reference/agent/signum-agent";
    b.pkcs11_module = build + "/reference/providers/pkcs11/libsignumpkcs11.so";
  } else {
    b.build_dir = SIGNUM_DEPLOYMENT_BUILD_DIR;
    b.server = SIGNUM_DEPLOYMENT_SERVER_BINARY;
    b.agent = SIGNUM_DEPLOYMENT_AGENT_BINARY;
    b.pkcs11_module = SIGNUM_DEPLOYMENT_PKCS11_MODULE;
  }
  return b;
}

Deployment::Deployment(DeploymentOptions options, BinaryPaths binaries, std::string dir,
                       bool owns_dir)
    : options_(std::move(options)),
      binaries_(std::move(binaries)),
      dir_(std::move(dir)),
      owns_dir_(owns_dir) {}

Result<std::unique_ptr<Deployment>> Deployment::Create(DeploymentOptions options,
                                                       BinaryPaths binaries) {
  if (options.user.empty()) return InvalidArgumentError("the deployment needs a user");
  if (options.vendor_hsm) {
    const VendorHsm& v = *options.vendor_hsm;
    if (v.module.empty() || v.token_label.empty() || v.pin_file.empty())
      return InvalidArgumentError("a vendor HSM needs its module, token label and PIN file");
  }
  std::string dir;
  bool owns = false;
  if (options.directory.empty()) {
    const char* tmp = std::getenv("TMPDIR");
    std::string pattern = std::string(tmp != nullptr && *tmp ? tmp : "/tmp") + "/signum-deployment.XXXXXX";
    if (::mkdtemp(pattern.data()) == nullptr)
      return UnavailableError("cannot create a temporary directory from " + pattern);
    dir = pattern;
    owns = true;
  } else {
    std::error_code ec;
    dir = fs::absolute(options.directory, ec).lexically_normal().string();
    while (dir.size() > 1 && dir.back() == '/') dir.pop_back();
    fs::create_directories(dir, ec);
    if (ec) return UnavailableError("cannot create " + dir + ": " + ec.message());
  }
  return std::unique_ptr<Deployment>(
      new Deployment(std::move(options), std::move(binaries), std::move(dir), owns));
}

Deployment::~Deployment() {
  if (options_.detached) return;
  (void)Down();
  if (owns_dir_) {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
}

void Deployment::Progress(const std::string& message) const {
  if (options_.progress) options_.progress(message);
}

Result<std::string> Deployment::hsm_pin_file() const {
  SIGNUM_ASSIGN_OR_RETURN(ServerConfigView config, ReadServerConfig(dir_));
  return config.hsm_pin_file;
}

// --- Processes ------------------------------------------------------------------------------------

pid_t Deployment::LivePid(const std::string& name, const std::string& binary) const {
  auto text = ReadFile(run_dir() + "/" + name + ".pid");
  if (!text.ok()) return 0;
  std::string digits;
  for (char c : *text)
    if (c >= '0' && c <= '9') digits += c;
  if (digits.empty() || digits.size() > 9) return 0;
  const pid_t pid = static_cast<pid_t>(std::stol(digits));
  if (pid <= 1 || !Alive(pid)) return 0;
  std::optional<std::string> cmdline = posix::ArgumentsOf(pid, 64 * 1024);
  if (!cmdline) return 0;
  std::string line = *cmdline;
  for (char& c : line)
    if (c == '\0') c = ' ';
  return line.find(Basename(binary)) != std::string::npos ? pid : 0;
}

Status Deployment::StopProcess(const std::string& name, const std::string& binary) {
  const std::string pid_file = run_dir() + "/" + name + ".pid";
  const pid_t pid = LivePid(name, binary);
  if (pid != 0) {
    ::kill(pid, SIGTERM);
    const auto deadline = Clock::now() + std::chrono::milliseconds(kStopGraceMs);
    while (!Gone(pid) && Clock::now() < deadline) Sleep(kPollIntervalMs);
    if (Alive(pid)) {
      Progress(name + " (pid " + std::to_string(pid) + ") ignored SIGTERM for " +
               std::to_string(kStopGraceMs / 1000) + "s; killing it");
      ::kill(pid, SIGKILL);
      for (int i = 0; i < 50 && !Gone(pid); ++i) Sleep(kPollIntervalMs);
      if (Alive(pid)) {
        return InternalError(name + " (pid " + std::to_string(pid) + ") survived SIGKILL");
      }
    }
    Progress("stopped " + name + " (pid " + std::to_string(pid) + ")");
  }
  ::unlink(pid_file.c_str());
  return Status::Ok();
}

Status Deployment::Initialize() {
  if (::access(server_config().c_str(), F_OK) == 0) return Status::Ok();
  SIGNUM_RETURN_IF_ERROR(RequireExecutable(binaries_.server, binaries_));
  Progress("creating a demo deployment in " + dir_);
  std::vector<std::string> args = {"init-demo", dir_};
  if (!options_.keys.empty()) {
    std::string list;
    for (const std::string& k : options_.keys) list += (list.empty() ? "" : ",") + k;
    args.insert(args.end(), {"--keys", list});
  }
  if (options_.vendor_hsm) {
    const VendorHsm& v = *options_.vendor_hsm;
    args.insert(args.end(), {"--hsm-module", v.module, "--hsm-token-label", v.token_label,
                             "--hsm-pin-file", v.pin_file});
    for (const auto& [name, value] : v.environment) {
      args.insert(args.end(), {"--hsm-env", name + "=" + value});
    }
  }
  if (options_.hsm_serialize) args.push_back("--hsm-serialize");
  bp::ipstream output;
  std::error_code ec;
  // As for serve: the PIN is the deployment's, never an inherited $SIGNUM_HSM_PIN.
  args.insert(args.begin(), {"-u", "SIGNUM_HSM_PIN", binaries_.server});
  bp::child child(bp::exe = kEnvBinary, bp::args = args, bp::std_in < bp::null,
                  (bp::std_out & bp::std_err) > output, ec);
  if (ec) return UnavailableError("cannot start " + binaries_.server + ": " + ec.message());
  std::string text, line;
  while (std::getline(output, line)) text += line + "\n";
  child.wait(ec);
  const int exit_code = ec ? -1 : child.exit_code();
  if (exit_code != 0) {
    return FailedPreconditionError("signum-server init-demo " + dir_ + " failed (exit " +
                                   std::to_string(exit_code) + "):\n" + text);
  }
  return Status::Ok();
}

Status Deployment::StartServer() {
  SIGNUM_RETURN_IF_ERROR(RequireExecutable(binaries_.server, binaries_));
  SIGNUM_ASSIGN_OR_RETURN(ServerConfigView config, ReadServerConfig(dir_));
  fs::create_directories(run_dir());
  fs::create_directories(logs_dir());
  ::chmod(run_dir().c_str(), 0700);
  const std::string out = logs_dir() + "/server.out";
  // Liveness while starting goes by PID alone: between fork and exec a fresh child's cmdline
  // is still ours, which LivePid's binary check would take for a foreign process.
  pid_t pid = LivePid("server", binaries_.server);
  if (pid == 0) {
    // The HSM PIN comes from the deployment's pin file: a $SIGNUM_HSM_PIN inherited from some
    // other deployment's env.sh would win over it in signum-server.
    std::vector<std::string> argv = {kEnvBinary, "-u", "SIGNUM_HSM_PIN"};
    argv.insert(argv.end(), options_.server_wrapper.begin(), options_.server_wrapper.end());
    argv.insert(argv.end(), {binaries_.server, "serve", "--config", server_config()});
    SIGNUM_ASSIGN_OR_RETURN(pid, Launch(argv, out, options_.detached));
    SIGNUM_RETURN_IF_ERROR(WritePidFile(run_dir() + "/server.pid", pid));
  }
  // Ready when /v1/health answers 200.
  HttpsClientConfig client_config;
  client_config.port = config.port;
  client_config.ca_file = root_ca();
  client_config.connect_timeout_ms = 1000;
  client_config.request_timeout_ms = 2000;
  std::string last_error = "no answer yet";
  const auto deadline = Clock::now() + std::chrono::milliseconds(options_.start_timeout_ms);
  while (true) {
    auto client = HttpsClient::Create(client_config);
    if (client.ok()) {
      auto response = (*client)->Get(std::string(wire::kHealthPath));
      if (response.ok() && response->status == 200) return Status::Ok();
      last_error = response.ok() ? "HTTP " + std::to_string(response->status)
                                 : response.status().ToString();
    } else {
      last_error = client.status().ToString();
    }
    if (!Alive(pid)) {
      return UnavailableError("signum-server exited; see " + out + " and " + logs_dir() +
                              "/server.log" + LogTail(out));
    }
    if (Clock::now() >= deadline) {
      return DeadlineExceededError("signum-server did not answer " + std::string(wire::kHealthPath) +
                                   " on port " + std::to_string(config.port) + " within " +
                                   std::to_string(options_.start_timeout_ms / 1000) +
                                   "s (last: " + last_error + ")" + LogTail(out));
    }
    Sleep(kPollIntervalMs);
  }
}

Status Deployment::StopServer() { return StopProcess("server", binaries_.server); }

Status Deployment::StartAgent() {
  SIGNUM_RETURN_IF_ERROR(RequireExecutable(binaries_.agent, binaries_));
  SIGNUM_ASSIGN_OR_RETURN(ServerConfigView config, ReadServerConfig(dir_));
  fs::create_directories(run_dir());
  fs::create_directories(logs_dir());
  ::chmod(run_dir().c_str(), 0700);
  const std::string out = logs_dir() + "/agent.out";
  const std::string log = logs_dir() + "/agent.log";
  pid_t pid = LivePid("agent", binaries_.agent);  // then by PID alone, as in StartServer()
  if (pid == 0) {
    ::unlink((run_dir() + "/agent.port").c_str());
    // The environment goes through env(1), which execs the agent under the same PID.
    // (Boost.Process 1.74's environment lookup reads past the end of shorter names.)
    std::vector<std::string> argv = {kEnvBinary};
    // Nothing of the caller's agent configuration may leak in: the environment wins over files.
    for (const char* name :
         {"SIGNUM_CONFIG", "SIGNUM_TOKEN_FILE", "SIGNUM_CERTIFICATE_PATH", "SIGNUM_KEY_PATH",
          "SIGNUM_AGENT_SECRET_FILE", "SIGNUM_AGENT_PORT_FILE", "SIGNUM_LOG_FILE",
          "SIGNUM_CACHE_TTL", "SIGNUM_PKCS11_TRACE", "SIGNUM_PKCS11_RECORD"}) {
      argv.insert(argv.end(), {"-u", name});
    }
    argv.push_back("SIGNUM_SERVER_URL=https://127.0.0.1:" + std::to_string(config.port));
    argv.push_back("SIGNUM_TLS_TRUSTED_CA=" + root_ca());
    const std::string credentials = File("credentials/" + options_.user);
    if (::access((credentials + ".token").c_str(), R_OK) == 0) {
      argv.push_back("SIGNUM_TOKEN_FILE=" + credentials + ".token");
    } else if (::access((credentials + ".crt").c_str(), R_OK) == 0) {
      argv.push_back("SIGNUM_CERTIFICATE_PATH=" + credentials + ".crt");
      argv.push_back("SIGNUM_KEY_PATH=" + credentials + ".key");
    } else {
      return NotFoundError("no credential for user '" + options_.user + "' (" + credentials +
                           ".token or .crt)");
    }
    argv.push_back("SIGNUM_AGENT_SOCKET=" + agent_socket());
    argv.push_back(std::string("SIGNUM_AGENT_TCP=") + (options_.agent_tcp ? "127.0.0.1:0" : "off"));
    argv.push_back("SIGNUM_AGENT_SECRET_FILE=" + run_dir() + "/agent.secret");
    argv.push_back("SIGNUM_AGENT_PORT_FILE=" + run_dir() + "/agent.port");
    argv.push_back("SIGNUM_AGENTID=signum-demo@" + HostName());
    argv.insert(argv.end(), options_.agent_wrapper.begin(), options_.agent_wrapper.end());
    argv.insert(argv.end(), {binaries_.agent, "--pid-file", run_dir() + "/agent.pid",
                             "--log-file", log});
    SIGNUM_ASSIGN_OR_RETURN(pid, Launch(argv, out, options_.detached));
    // The agent rewrites it with the same PID once it is up.
    SIGNUM_RETURN_IF_ERROR(WritePidFile(run_dir() + "/agent.pid", pid));
  }
  agent::AgentEndpoint endpoint;
  endpoint.unix_socket = agent_socket();
  std::string last_error = "no answer yet";
  const auto deadline = Clock::now() + std::chrono::milliseconds(options_.start_timeout_ms);
  while (true) {
    if (::access(agent_socket().c_str(), F_OK) == 0) {
      auto client = agent::AgentClient::Connect(endpoint, "signum-deployment (startup)", 2000);
      if (client.ok()) {
        // With TCP on, the port file is written before the agent accepts anything.
        if (!options_.agent_tcp || ::access((run_dir() + "/agent.port").c_str(), F_OK) == 0)
          return Status::Ok();
        last_error = "no port file yet";
      } else {
        last_error = client.status().ToString();
      }
    }
    if (!Alive(pid)) {
      return UnavailableError("signum-agent exited; see " + log + LogTail(log) + LogTail(out));
    }
    if (Clock::now() >= deadline) {
      return DeadlineExceededError("signum-agent did not answer on " + agent_socket() + " within " +
                                   std::to_string(options_.start_timeout_ms / 1000) +
                                   "s (last: " + last_error + ")" + LogTail(log));
    }
    Sleep(kPollIntervalMs / 2);
  }
}

Status Deployment::StopAgent() { return StopProcess("agent", binaries_.agent); }

Status Deployment::WaitForAgentToReachServer() {
  agent::AgentEndpoint endpoint;
  endpoint.unix_socket = agent_socket();
  std::string last = "no answer yet";
  const auto deadline = Clock::now() + std::chrono::milliseconds(options_.start_timeout_ms);
  while (true) {
    auto client = agent::AgentClient::Connect(endpoint, "signum-deployment (startup)", 10000);
    if (client.ok()) {
      auto report = (*client)->GetStatus();
      if (report.ok() && report->server_reachable) return Status::Ok();
      last = report.ok() ? report->message : report.status().ToString();
    } else {
      last = client.status().ToString();
    }
    if (Clock::now() >= deadline) {
      return DeadlineExceededError("not ready after " +
                                   std::to_string(options_.start_timeout_ms / 1000) +
                                   "s: the agent does not reach the server (" + last + ")");
    }
    Sleep(kPollIntervalMs * 2);
  }
}

Status Deployment::Up() {
  SIGNUM_RETURN_IF_ERROR(RequireExecutable(binaries_.server, binaries_));
  SIGNUM_RETURN_IF_ERROR(RequireExecutable(binaries_.agent, binaries_));
  SIGNUM_RETURN_IF_ERROR(Initialize());
  SIGNUM_RETURN_IF_ERROR(StartServer());
  SIGNUM_RETURN_IF_ERROR(StartAgent());
  SIGNUM_RETURN_IF_ERROR(WaitForAgentToReachServer());
  return WriteEnvFile();
}

Status Deployment::Down() {
  // The agent first: it is the server's client.
  Status agent = StopAgent();
  Status server = StopServer();
  return agent.ok() ? server : agent;
}

DeploymentState Deployment::State() const {
  DeploymentState s;
  s.server_pid = LivePid("server", binaries_.server);
  s.agent_pid = LivePid("agent", binaries_.agent);
  s.agent_socket = agent_socket();
  auto config = ReadServerConfig(dir_);
  if (config.ok()) s.server_url = "https://127.0.0.1:" + std::to_string(config->port);
  if (s.agent_pid == 0) {
    s.agent_error = "signum-agent is not running";
    return s;
  }
  agent::AgentEndpoint endpoint;
  endpoint.unix_socket = agent_socket();
  auto client = agent::AgentClient::Connect(endpoint, "signum-deployment (status)", 10000);
  if (!client.ok()) {
    s.agent_error = client.status().ToString();
    return s;
  }
  s.agent_endpoint = (*client)->endpoint_description();
  s.agent_name = (*client)->agent_name();
  auto report = (*client)->GetStatus();
  if (!report.ok()) {
    s.agent_error = report.status().ToString();
    return s;
  }
  s.agent_answered = true;
  s.server_reachable = report->server_reachable;
  s.user = report->user;
  s.certificates = report->certificates;
  s.message = report->message;
  return s;
}

// --- env.sh -----------------------------------------------------------------------------------------

Status Deployment::EnsureTokenPin() {
  if (auto pin = ReadSecretFile(token_pin_file()); pin.ok() && !pin->empty()) return Status::Ok();
  // The PIN providers check before they sign (the agent holds the real credential): 8 digits.
  std::string pin;
  while (pin.size() < 8) {
    for (uint8_t b : RandomBytes(16)) {
      if (b < 250 && pin.size() < 8) pin += static_cast<char>('0' + b % 10);  // no modulo bias
    }
  }
  fs::create_directories(File("secrets"));
  return WriteFileAtomically(token_pin_file(), pin + "\n", 0600);
}

namespace {

// A variable in env.sh's order; `comment` lines go before the entry they name.
struct EnvEntry {
  std::string name, value, comment;
};

// The provider environment (env.sh) and the direct-HSM baseline (hsm-baseline.env.sh) are two
// files because the baseline's HSM PIN opens the keys around policy and audit: a provider user
// never needs it, only the tests that compare a tool's result with the HSM used directly.
struct EnvFiles {
  std::vector<EnvEntry> provider;
  std::vector<EnvEntry> hsm_baseline;
};

Result<EnvFiles> EnvEntries(const Deployment& d) {
  SIGNUM_ASSIGN_OR_RETURN(ServerConfigView config, ReadServerConfig(d.dir()));
  auto pin = ReadSecretFile(d.token_pin_file());
  if (!pin.ok())
    return FailedPreconditionError("no " + d.token_pin_file() + " yet: bring the deployment up");
  std::string hsm_pin;
  if (!config.hsm_pin_file.empty()) {
    SIGNUM_ASSIGN_OR_RETURN(hsm_pin, ReadSecretFile(config.hsm_pin_file));
  }
  std::string tcp = "off";
  if (auto port = ReadFile(d.run_dir() + "/agent.port"); port.ok()) {
    std::string digits;
    for (char c : *port)
      if (c >= '0' && c <= '9') digits += c;
    if (!digits.empty()) tcp = "127.0.0.1:" + digits;
  }
  EnvFiles files;
  files.provider = {
      {"SIGNUM_DEMO_DIR", d.dir(), ""},
      {"SIGNUM_SERVER_URL", "https://127.0.0.1:" + std::to_string(config.port), ""},
      {"SIGNUM_CA_CERT", d.root_ca(), ""},
      {"SIGNUM_TLS_TRUSTED_CA", d.root_ca(), ""},
      {"SIGNUM_AGENT_SOCKET", d.agent_socket(), ""},
      {"SIGNUM_AGENT_TCP", tcp, ""},
      {"SIGNUM_AGENT_SECRET_FILE", d.run_dir() + "/agent.secret", ""},
      {"SIGNUM_PKCS11_MODULE", d.binaries().pkcs11_module, ""},
      {"SIGNUM_TOKEN_LABEL", Deployment::kSignumTokenLabel, ""},
      {"SIGNUM_PIN", *pin, ""},
      {"SIGNUM_PKCS11_PIN", *pin, ""},
  };
  // The module's own environment (SOFTHSM2_CONF, a vendor's variables) first: the module reads it.
  for (const auto& [name, value] : config.hsm_environment) {
    files.hsm_baseline.push_back({name, value, ""});
  }
  files.hsm_baseline.push_back({"SIGNUM_HSM_MODULE", config.hsm_module, ""});
  files.hsm_baseline.push_back({"SIGNUM_HSM_TOKEN_LABEL", config.hsm_token_label, ""});
  files.hsm_baseline.push_back({"SIGNUM_HSM_PIN", hsm_pin, ""});
  return files;
}

std::map<std::string, std::string> ToMap(const std::vector<EnvEntry>& entries) {
  std::map<std::string, std::string> env;
  for (const EnvEntry& e : entries) env[e.name] = e.value;
  return env;
}

Status WriteShellEnvFile(const std::string& path, std::string_view header,
                         const std::vector<EnvEntry>& entries) {
  std::string text(header);
  for (const EnvEntry& e : entries) {
    if (!e.comment.empty()) text += "# " + e.comment + "\n";
    text += "export " + e.name + "=" + ShellQuote(e.value) + "\n";
  }
  return WriteFileAtomically(path, text, 0600);
}

}  // namespace

Result<std::map<std::string, std::string>> Deployment::Env() const {
  SIGNUM_ASSIGN_OR_RETURN(EnvFiles files, EnvEntries(*this));
  return ToMap(files.provider);
}

Result<std::map<std::string, std::string>> Deployment::HsmBaselineEnv() const {
  SIGNUM_ASSIGN_OR_RETURN(EnvFiles files, EnvEntries(*this));
  return ToMap(files.hsm_baseline);
}

Status Deployment::WriteEnvFile() {
  SIGNUM_RETURN_IF_ERROR(EnsureTokenPin());
  SIGNUM_ASSIGN_OR_RETURN(EnvFiles files, EnvEntries(*this));
  SIGNUM_RETURN_IF_ERROR(WriteShellEnvFile(
      env_file(),
      "# Written by signum-demo up (ci/demo); source it. Holds the demo token PIN (the provider's,\n"
      "# not the HSM's): keep it private.\n",
      files.provider));
  return WriteShellEnvFile(
      hsm_baseline_env_file(),
      "# Written by signum-demo up (ci/demo). Direct-HSM baseline: the same keys and certificates\n"
      "# straight from the HSM, around Signum's policies and audit log. Holds the HSM PIN: only the\n"
      "# tests that compare with the HSM directly source it, never a provider user's shell.\n",
      files.hsm_baseline);
}

}  // namespace signum::deployment

// signum-agent: the per-user daemon between providers and signum-server. See docs/agent.md.
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <string>
#include <thread>

#include "agent_config.h"
#include "agent_platform.h"
#include "agent_service.h"
#include "server_client.h"
#include "signum/core/agent_protocol.h"
#include "signum/core/files.h"
#include "signum/core/log.h"

namespace signum::agent {
namespace {

constexpr const char* kLog = "agent";

void PrintUsage() {
  std::cout << R"TEXT(Usage: signum-agent [--config FILE] [--pid-file FILE] [--log-file FILE]
       signum-agent --help | --version

Serves the signing certificates of one signum-server user to local providers (libsignumpkcs11.so
and friends) over a user-only Unix socket and, optionally, loopback TCP guarded by a secret
(on Windows: loopback TCP only). Runs in the foreground until SIGTERM or SIGINT (Ctrl+C); then it
removes its socket and port file.

Options:
  --config FILE    JSON configuration (keys in docs/agent.md); the environment overrides it
  --pid-file FILE  write the agent's PID here (removed on exit)
  --log-file FILE  append the log here instead of stderr (same as SIGNUM_LOG_FILE)

)TEXT" << EnvironmentHelp()
            << R"TEXT(
Caller identity sent to the server: on the Unix socket pid/uid come from the kernel (SO_PEERCRED)
and the executable and command line from /proc; over TCP the client's own claims are passed on,
with the host marked "(tcp-peer)", after the system's socket table showed the peer to be this
user's process where it can (Linux, Windows).
)TEXT";
}

int Main(int argc, char** argv) {
  std::string config_path;
  std::string pid_file;
  std::string log_file;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    auto value = [&](std::string* out) {
      if (i + 1 >= argc) {
        std::cerr << "signum-agent: " << arg << " needs a value\n";
        return false;
      }
      *out = argv[++i];
      return true;
    };
    if (arg == "--help" || arg == "-h") {
      PrintUsage();
      return 0;
    } else if (arg == "--version") {
      std::cout << kAgentName << " (agent protocol " << agent_protocol::kProtocolVersion << ")\n";
      return 0;
    } else if (arg == "--config") {
      if (!value(&config_path)) return 2;
    } else if (arg == "--pid-file") {
      if (!value(&pid_file)) return 2;
    } else if (arg == "--log-file") {
      if (!value(&log_file)) return 2;
    } else {
      std::cerr << "signum-agent: unknown argument '" << arg << "' (see --help)\n";
      return 2;
    }
  }

  auto config = LoadAgentConfig(config_path, ProcessEnvironment());
  if (!config.ok()) {
    std::cerr << "signum-agent: " << config.status().ToString() << "\n";
    return 2;
  }
  SetLogLevel(config->log_level);
  if (log_file.empty()) log_file = config->log_file;
  if (!log_file.empty() && !SetLogFile(log_file)) {
    std::cerr << "signum-agent: cannot open log file " << log_file << ": " << std::strerror(errno)
              << "\n";
    return 2;
  }

  // Before any thread exists: they all inherit the blocked termination signals, which only
  // StopOnTerminationRequest's thread takes (POSIX).
  BlockTerminationSignals();
  if (Status started = net::Initialize(); !started.ok()) {
    std::cerr << "signum-agent: " << started.ToString() << "\n";
    return 1;
  }

  auto server = ServerClient::Create(*config);
  if (!server.ok()) {
    SIGNUM_LOG_ERROR(kLog, "cannot start: " << server.status().ToString());
    return 1;
  }
  auto service = AgentService::Create(*config, server->get());
  if (!service.ok()) {
    SIGNUM_LOG_ERROR(kLog, "cannot start: " << service.status().ToString());
    return 1;
  }
  if (!pid_file.empty()) {
    Status written = WriteFileAtomically(pid_file, std::to_string(CurrentProcessId()) + "\n", 0644);
    if (!written.ok()) {
      SIGNUM_LOG_ERROR(kLog, "cannot write PID file: " << written.ToString());
      return 1;
    }
  }

  AgentService* raw_service = service->get();
  StopOnTerminationRequest([raw_service](const std::string& why) {
    SIGNUM_LOG_INFO(kLog, why << ", shutting down");
    raw_service->Stop();
  });

  SIGNUM_LOG_INFO(kLog, kAgentName << " ready: server " << config->server_url << " as "
                                   << (*server)->user() << ", agent id " << config->agent_id
                                   << ", certificate cache " << config->cache_ttl_seconds << " s");
  const bool drained = (*service)->Run();
  if (!pid_file.empty()) std::remove(pid_file.c_str());
  SIGNUM_LOG_INFO(kLog, "stopped");
  AgentStopped();
  if (!drained) {
    // Connection threads still use the service and the server client; destroying them under
    // those threads would be a use-after-free, so leave without running destructors.
    (void)service->release();
    std::fflush(nullptr);
    std::_Exit(0);
  }
  return 0;
}

}  // namespace
}  // namespace signum::agent

int main(int argc, char** argv) { return signum::agent::Main(argc, argv); }

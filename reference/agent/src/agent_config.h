// signum-agent's configuration: a JSON file (--config) plus SIGNUM_* environment variables in the
// style of Keyfactor's Signum agent. The environment wins over the file; unset values take the
// defaults below. Relative paths in the file are resolved against the file's directory.
//
// {
//   "server_url": "https://127.0.0.1:8443",        SIGNUM_SERVER_URL
//   "ca_file": "ca/root.pem",                      SIGNUM_TLS_TRUSTED_CA
//   "token_file": "credentials/release.token",     SIGNUM_TOKEN_FILE
//   "client_certificate": "credentials/x.crt",     SIGNUM_CERTIFICATE_PATH   (mTLS instead of a
//   token) "client_key": "credentials/x.key",             SIGNUM_KEY_PATH "socket":
//   "/run/user/1000/signum/agent.sock" | "off",  SIGNUM_AGENT_SOCKET "tcp": "127.0.0.1:0" | "off",
//   SIGNUM_AGENT_TCP "secret_file": ".../agent.secret",             SIGNUM_AGENT_SECRET_FILE
//   "port_file": ".../agent.port",                 SIGNUM_AGENT_PORT_FILE
//   "agent_id": "build-7-agent",                   SIGNUM_AGENTID
//   "log_level": "info",                           SIGNUM_LOGLEVEL (LOW/MEDIUM/HIGH or
//   debug/info/warning/error) "log_file": "",                                SIGNUM_LOG_FILE
//   "cache_ttl_seconds": 60,                       SIGNUM_CACHE_TTL
//   "connect_timeout_ms": 3000, "request_timeout_ms": 30000, "max_connections": 256
// }
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>

#include "signum/core/log.h"
#include "signum/core/status.h"

namespace signum::agent {

struct AgentConfig {
  // The signum-server and how to authenticate to it.
  std::string server_url;   // as given, e.g. "https://127.0.0.1:8443"
  std::string server_host;  // parsed from server_url
  uint16_t server_port = 443;
  std::string ca_file;                  // empty: the system trust store
  std::string token_file;               // bearer token, or ...
  std::string client_certificate_file;  // ... client certificate and key (mTLS)
  std::string client_key_file;

  // Where providers reach the agent.
  std::string socket_path;         // empty when the Unix socket is off
  bool unix_socket_enabled = true;  // "socket": "off": TCP only, the Windows agent's one endpoint
  bool tcp_enabled = false;  // loopback TCP with a secret
  std::string tcp_host = "127.0.0.1";
  uint16_t tcp_port = 0;    // 0 = ephemeral, written to port_file
  std::string secret_file;  // default: beside the socket
  std::string port_file;    // default: beside the secret file

  std::string agent_id;  // default: "signum-agent@<hostname>/<uid>"
  LogLevel log_level = LogLevel::kInfo;
  std::string log_file;  // empty: stderr
  int cache_ttl_seconds = 60;
  int connect_timeout_ms = 3000;
  int request_timeout_ms = 30000;
  size_t max_connections = 256;  // per endpoint: the Unix socket and TCP each have this many
  // TCP connections that have not finished the handshake yet (their own budget, so a flood of
  // them cannot take the owner's capacity; each gets kHelloTimeoutMs to finish).
  size_t max_unauthenticated_connections = 16;
};

// Looks an environment variable up; injectable for tests. Returns nullopt when unset.
using EnvLookup = std::function<std::optional<std::string>(const std::string&)>;
EnvLookup ProcessEnvironment();

// Loads config_path (may be empty: environment and defaults only) and applies the environment.
// require_server: signum-util only needs the endpoint part, the agent needs the server too.
Result<AgentConfig> LoadAgentConfig(const std::string& config_path, const EnvLookup& env,
                                    bool require_server = true);

// "LOW"/"MEDIUM"/"HIGH" (Signum's verbosity names: HIGH = most detail) or debug/info/warning/error.
std::optional<LogLevel> ParseLogLevel(const std::string& name);

// "https://host:port[/]" -> host and port (default 443). IPv6 literals in brackets.
Status ParseServerUrl(const std::string& url, std::string* host, uint16_t* port);

// The environment variables the agent reads, with one-line explanations, for --help and docs.
std::string EnvironmentHelp();

}  // namespace signum::agent

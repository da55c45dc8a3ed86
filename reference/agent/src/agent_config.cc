#include "agent_config.h"

#include <cstdlib>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "agent_platform.h"
#include "signum/agent/agent_client.h"
#include "signum/core/files.h"
#include "signum/core/wire.h"

namespace signum::agent {
namespace {

using nlohmann::json;

// Raw values as strings, before interpretation; file values first, then the environment over them.
struct RawSettings {
  std::optional<std::string> server_url, ca_file, token_file, client_certificate, client_key,
      socket, tcp, secret_file, port_file, agent_id, log_level, log_file, cache_ttl,
      connect_timeout_ms, request_timeout_ms, max_connections, max_unauthenticated_connections;
};

Status ReadConfigFile(const std::string& path, RawSettings* raw) {
  SIGNUM_ASSIGN_OR_RETURN(std::string text, ReadFile(path));
  auto parsed = wire::ParseJson(text);
  if (!parsed.ok()) return InvalidArgumentError("agent config " + path + " is not valid JSON");
  const json& j = *parsed;
  if (!j.is_object()) return InvalidArgumentError("agent config " + path + " is not a JSON object");
  const std::string base = DirName(std::filesystem::absolute(path).string());
  struct Field {
    const char* name;
    std::optional<std::string>* target;
    bool is_path;
  };
  const Field fields[] = {
      {"server_url", &raw->server_url, false},
      {"ca_file", &raw->ca_file, true},
      {"token_file", &raw->token_file, true},
      {"client_certificate", &raw->client_certificate, true},
      {"client_key", &raw->client_key, true},
      {"socket", &raw->socket, true},
      {"tcp", &raw->tcp, false},
      {"secret_file", &raw->secret_file, true},
      {"port_file", &raw->port_file, true},
      {"agent_id", &raw->agent_id, false},
      {"log_level", &raw->log_level, false},
      {"log_file", &raw->log_file, true},
      {"cache_ttl_seconds", &raw->cache_ttl, false},
      {"connect_timeout_ms", &raw->connect_timeout_ms, false},
      {"request_timeout_ms", &raw->request_timeout_ms, false},
      {"max_connections", &raw->max_connections, false},
      {"max_unauthenticated_connections", &raw->max_unauthenticated_connections, false},
  };
  for (const auto& [key, value] : j.items()) {
    const Field* field = nullptr;
    for (const Field& f : fields) {
      if (key == f.name) field = &f;
    }
    // A misspelt key would silently fall back to a default (e.g. no TCP secret file): reject it.
    if (field == nullptr)
      return InvalidArgumentError("agent config " + path + ": unknown key '" + key + "'");
    if (value.is_null()) continue;
    std::string text;
    if (value.is_string()) {
      text = value.get<std::string>();
    } else if (value.is_number_integer()) {
      text = std::to_string(value.get<long long>());
    } else {
      return InvalidArgumentError("agent config " + path + ": '" + key +
                                  "' must be a string or an integer");
    }
    if (field->is_path && !text.empty()) text = ResolvePath(base, text);
    *field->target = text;
  }
  return Status::Ok();
}

void ApplyEnvironment(const EnvLookup& env, RawSettings* raw) {
  const std::pair<const char*, std::optional<std::string>*> vars[] = {
      {"SIGNUM_SERVER_URL", &raw->server_url},
      {"SIGNUM_TLS_TRUSTED_CA", &raw->ca_file},
      {"SIGNUM_TOKEN_FILE", &raw->token_file},
      {"SIGNUM_CERTIFICATE_PATH", &raw->client_certificate},
      {"SIGNUM_KEY_PATH", &raw->client_key},
      {"SIGNUM_AGENT_SOCKET", &raw->socket},
      {"SIGNUM_AGENT_TCP", &raw->tcp},
      {"SIGNUM_AGENT_SECRET_FILE", &raw->secret_file},
      {"SIGNUM_AGENT_PORT_FILE", &raw->port_file},
      {"SIGNUM_AGENTID", &raw->agent_id},
      {"SIGNUM_LOGLEVEL", &raw->log_level},
      {"SIGNUM_LOG_FILE", &raw->log_file},
      {"SIGNUM_CACHE_TTL", &raw->cache_ttl},
  };
  for (const auto& [name, target] : vars) {
    auto value = env(name);
    // An empty variable counts as unset, like the real agent's container scripts expect.
    if (value && !value->empty()) *target = *value;
  }
}

Result<long> ParseInt(const std::string& what, const std::string& text, long min, long max) {
  if (text.empty() || text.find_first_not_of("0123456789") != std::string::npos ||
      text.size() > 9) {
    return InvalidArgumentError(what + " must be a non-negative integer, got '" + text + "'");
  }
  const long value = std::stol(text);
  if (value < min || value > max) {
    return InvalidArgumentError(what + " must be between " + std::to_string(min) + " and " +
                                std::to_string(max) + ", got " + text);
  }
  return value;
}

}  // namespace

EnvLookup ProcessEnvironment() {
  return [](const std::string& name) -> std::optional<std::string> {
    const char* value = std::getenv(name.c_str());
    if (value == nullptr) return std::nullopt;
    return std::string(value);
  };
}

std::optional<LogLevel> ParseLogLevel(const std::string& name) {
  std::string lower;
  for (char c : name) lower += static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
  if (lower == "high" || lower == "debug") return LogLevel::kDebug;
  if (lower == "medium" || lower == "info") return LogLevel::kInfo;
  if (lower == "low" || lower == "warning" || lower == "warn") return LogLevel::kWarning;
  if (lower == "error") return LogLevel::kError;
  return std::nullopt;
}

Status ParseServerUrl(const std::string& url, std::string* host, uint16_t* port) {
  constexpr std::string_view kScheme = "https://";
  if (url.compare(0, kScheme.size(), kScheme) != 0) {
    return InvalidArgumentError("server URL '" + url + "' must start with https://");
  }
  std::string rest = url.substr(kScheme.size());
  while (!rest.empty() && rest.back() == '/') rest.pop_back();
  if (rest.find('/') != std::string::npos) {
    return InvalidArgumentError("server URL '" + url +
                                "' must not have a path (the API is at /v1)");
  }
  std::string h;
  std::string p;
  if (!rest.empty() && rest[0] == '[') {
    const size_t close = rest.find(']');
    if (close == std::string::npos)
      return InvalidArgumentError("server URL '" + url + "': unclosed [");
    h = rest.substr(1, close - 1);
    if (close + 1 < rest.size()) {
      if (rest[close + 1] != ':')
        return InvalidArgumentError("server URL '" + url + "': junk after ]");
      p = rest.substr(close + 2);
    }
  } else {
    const size_t colon = rest.find(':');
    h = rest.substr(0, colon);
    if (colon != std::string::npos) p = rest.substr(colon + 1);
  }
  if (h.empty()) return InvalidArgumentError("server URL '" + url + "' has no host");
  long port_value = 443;
  if (!p.empty() || rest.find(':') != std::string::npos) {
    auto parsed = ParseInt("port in server URL '" + url + "'", p, 1, 65535);
    if (!parsed.ok()) return parsed.status();
    port_value = *parsed;
  }
  *host = h;
  *port = static_cast<uint16_t>(port_value);
  return Status::Ok();
}

Result<AgentConfig> LoadAgentConfig(const std::string& config_path, const EnvLookup& env,
                                    bool require_server) {
  RawSettings raw;
  if (!config_path.empty()) SIGNUM_RETURN_IF_ERROR(ReadConfigFile(config_path, &raw));
  ApplyEnvironment(env, &raw);

  AgentConfig c;
  if (raw.server_url) {
    c.server_url = *raw.server_url;
    SIGNUM_RETURN_IF_ERROR(ParseServerUrl(c.server_url, &c.server_host, &c.server_port));
  } else if (require_server) {
    return FailedPreconditionError(
        "no signum-server configured: set SIGNUM_SERVER_URL (or \"server_url\" in --config)");
  }
  c.ca_file = raw.ca_file.value_or("");
  c.token_file = raw.token_file.value_or("");
  c.client_certificate_file = raw.client_certificate.value_or("");
  c.client_key_file = raw.client_key.value_or("");
  if (c.client_certificate_file.empty() != c.client_key_file.empty()) {
    return InvalidArgumentError(
        "a client certificate needs its key: set both SIGNUM_CERTIFICATE_PATH and SIGNUM_KEY_PATH");
  }
  if (require_server && c.token_file.empty() && c.client_certificate_file.empty()) {
    return FailedPreconditionError(
        "no credential for signum-server: set SIGNUM_TOKEN_FILE, or SIGNUM_CERTIFICATE_PATH and "
        "SIGNUM_KEY_PATH");
  }

  // Where there is no Unix socket for the agent (Windows, whose default socket is "") loopback
  // TCP is its endpoint by default, and the socket is off.
  const std::string default_socket = DefaultAgentSocketPath();
  const std::string tcp = raw.tcp.value_or(default_socket.empty() ? "127.0.0.1:0" : "off");
  if (!tcp.empty() && tcp != "off") {
    c.tcp_enabled = true;
    SIGNUM_RETURN_IF_ERROR(
        ParseLoopbackAddress(tcp, &c.tcp_host, &c.tcp_port).WithContext("agent TCP address"));
  }
  const std::string socket =
      raw.socket.value_or(default_socket.empty() ? std::string("off") : default_socket);
  if (socket == "off") {
    // TCP only: the mode of the Windows agent (no AF_UNIX peer credentials there), also
    // available here. An agent serving nobody is a mistake, not a configuration (on Windows:
    // SIGNUM_AGENT_TCP=off).
    c.unix_socket_enabled = false;
    if (!c.tcp_enabled)
      return InvalidArgumentError(
          "the agent socket is off and so is TCP: set SIGNUM_AGENT_TCP (e.g. 127.0.0.1:0)");
  } else {
    c.socket_path = socket;
    if (c.socket_path.empty() || c.socket_path[0] != '/') {
      return InvalidArgumentError("agent socket path '" + c.socket_path + "' must be absolute");
    }
  }
  // Beside the socket, or where the socket would be (the user's private runtime directory).
  c.secret_file = raw.secret_file.value_or(
      (c.unix_socket_enabled ? DirName(c.socket_path) : DefaultAgentDirectory()) + "/agent.secret");
  c.port_file = raw.port_file.value_or(DirName(c.secret_file) + "/agent.port");

  c.agent_id = raw.agent_id.value_or("signum-agent@" + LocalHostname() + "/" + AgentUserName());
  if (raw.log_level) {
    auto level = ParseLogLevel(*raw.log_level);
    if (!level) {
      return InvalidArgumentError("log level '" + *raw.log_level +
                                  "' is not one of LOW, MEDIUM, HIGH, debug, info, warning, error");
    }
    c.log_level = *level;
  }
  c.log_file = raw.log_file.value_or("");
  if (raw.cache_ttl) {
    SIGNUM_ASSIGN_OR_RETURN(long ttl, ParseInt("cache TTL (seconds)", *raw.cache_ttl, 0, 86400));
    c.cache_ttl_seconds = static_cast<int>(ttl);
  }
  if (raw.connect_timeout_ms) {
    SIGNUM_ASSIGN_OR_RETURN(long v,
                            ParseInt("connect_timeout_ms", *raw.connect_timeout_ms, 100, 600000));
    c.connect_timeout_ms = static_cast<int>(v);
  }
  if (raw.request_timeout_ms) {
    SIGNUM_ASSIGN_OR_RETURN(long v,
                            ParseInt("request_timeout_ms", *raw.request_timeout_ms, 100, 600000));
    c.request_timeout_ms = static_cast<int>(v);
  }
  if (raw.max_connections) {
    SIGNUM_ASSIGN_OR_RETURN(long v, ParseInt("max_connections", *raw.max_connections, 1, 65536));
    c.max_connections = static_cast<size_t>(v);
  }
  if (raw.max_unauthenticated_connections) {
    SIGNUM_ASSIGN_OR_RETURN(long v, ParseInt("max_unauthenticated_connections",
                                             *raw.max_unauthenticated_connections, 1, 4096));
    c.max_unauthenticated_connections = static_cast<size_t>(v);
  }
  return c;
}

std::string EnvironmentHelp() {
  return R"TEXT(Environment (wins over --config; empty means unset):
  SIGNUM_SERVER_URL         signum-server base URL, https://HOST:PORT (required)
  SIGNUM_TLS_TRUSTED_CA     PEM file of the CA(s) that signed the server certificate
                            (default: the system trust store)
  SIGNUM_TOKEN_FILE         file holding the bearer API token (sgn_<id>_<secret>), or
  SIGNUM_CERTIFICATE_PATH   client certificate (PEM) for mutual TLS, with
  SIGNUM_KEY_PATH           its private key (PEM, unencrypted)
  SIGNUM_AGENT_SOCKET       Unix socket to serve providers on, or "off" (TCP only, as the Windows
                            agent: then SIGNUM_AGENT_TCP is required)
                            (default: $XDG_RUNTIME_DIR/signum/agent.sock, else /tmp/signum-<uid>/agent.sock;
                            on Windows always off)
  SIGNUM_AGENT_TCP          loopback TCP endpoint, 127.0.0.1:PORT (0 = ephemeral), or "off" (default;
                            on Windows 127.0.0.1:0)
  SIGNUM_AGENT_SECRET_FILE  where the TCP secret is written, 0600 / owner-only ACL (default: beside
                            the socket; on Windows %LOCALAPPDATA%\Signum\agent.secret)
  SIGNUM_AGENT_PORT_FILE    where the bound TCP port is written (default: beside the secret file)
  SIGNUM_AGENTID            agent identifier sent to the server's audit log
                            (default: signum-agent@<hostname>/<uid or Windows user>)
  SIGNUM_LOGLEVEL           LOW, MEDIUM, HIGH (HIGH = most detail) or debug, info, warning, error
  SIGNUM_LOG_FILE           append the log to this file instead of stderr
  SIGNUM_CACHE_TTL          seconds the certificate list is cached (default 60; 0 = no cache)
)TEXT";
}

}  // namespace signum::agent

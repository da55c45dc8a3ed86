#include "config.h"

#include <cstdlib>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "signum/core/files.h"
#include "signum/core/wire.h"

namespace signum::server {
namespace {

using nlohmann::json;

// Reads an optional member of the right JSON type; a wrong type is an error naming the path.
template <typename T>
Status Read(const json& obj, const char* key, const std::string& path, T& out) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return Status::Ok();
  try {
    out = it->get<T>();
  } catch (const json::exception&) {
    return InvalidArgumentError("config " + path + "." + key + " has the wrong type");
  }
  return Status::Ok();
}

const json& Section(const json& root, const char* name) {
  static const json kEmpty = json::object();
  auto it = root.find(name);
  return (it != root.end() && it->is_object()) ? *it : kEmpty;
}

}  // namespace

Result<ServerConfig> LoadServerConfig(const std::string& path) {
  SIGNUM_ASSIGN_OR_RETURN(std::string text, ReadFile(path));
  auto parsed = wire::ParseJson(text);
  if (!parsed.ok() || !parsed->is_object())
    return InvalidArgumentError("config " + path + " is not a JSON object");
  const json& root = *parsed;
  ServerConfig c;
  c.config_dir = std::filesystem::absolute(path).parent_path().string();
  auto resolve = [&](std::string& p) { p = ResolvePath(c.config_dir, p); };

  const json& listen = Section(root, "listen");
  SIGNUM_RETURN_IF_ERROR(Read(listen, "address", "listen", c.https.listen_address));
  SIGNUM_RETURN_IF_ERROR(Read(listen, "port", "listen", c.https.port));

  const json& tls = Section(root, "tls");
  SIGNUM_RETURN_IF_ERROR(Read(tls, "certificate", "tls", c.https.certificate_chain_file));
  SIGNUM_RETURN_IF_ERROR(Read(tls, "private_key", "tls", c.https.private_key_file));
  SIGNUM_RETURN_IF_ERROR(Read(tls, "client_ca", "tls", c.https.client_ca_file));
  if (c.https.certificate_chain_file.empty() || c.https.private_key_file.empty())
    return InvalidArgumentError(
        "config " + path +
        ": tls.certificate and tls.private_key are required (the server only speaks HTTPS)");
  resolve(c.https.certificate_chain_file);
  resolve(c.https.private_key_file);
  if (!c.https.client_ca_file.empty()) resolve(c.https.client_ca_file);

  const json& hsm = Section(root, "hsm");
  SIGNUM_RETURN_IF_ERROR(Read(hsm, "module", "hsm", c.hsm_module));
  SIGNUM_RETURN_IF_ERROR(Read(hsm, "token_label", "hsm", c.hsm_token_label));
  SIGNUM_RETURN_IF_ERROR(Read(hsm, "pin_env", "hsm", c.hsm_pin_env));
  SIGNUM_RETURN_IF_ERROR(Read(hsm, "pin_file", "hsm", c.hsm_pin_file));
  SIGNUM_RETURN_IF_ERROR(Read(hsm, "sessions", "hsm", c.hsm_sessions));
  SIGNUM_RETURN_IF_ERROR(Read(hsm, "serialize", "hsm", c.hsm_serialize));
  SIGNUM_RETURN_IF_ERROR(Read(hsm, "environment", "hsm", c.hsm_environment));
  if (c.hsm_module.empty() || c.hsm_token_label.empty())
    return InvalidArgumentError("config " + path + ": hsm.module and hsm.token_label are required");
  if (!c.hsm_pin_file.empty()) resolve(c.hsm_pin_file);
  if (c.hsm_sessions == 0)
    return InvalidArgumentError("config " + path + ": hsm.sessions must be at least 1");

  SIGNUM_RETURN_IF_ERROR(Read(root, "state_file", "", c.state_file));
  SIGNUM_RETURN_IF_ERROR(Read(root, "audit_log", "", c.audit_log));
  if (c.state_file.empty()) c.state_file = "state.json";
  if (c.audit_log.empty()) c.audit_log = "audit.log";
  resolve(c.state_file);
  resolve(c.audit_log);
  // The head's copy lives away from the log (by default beside the state file), so that deleting
  // the audit directory's head file does not make a cut tail undetectable.
  SIGNUM_RETURN_IF_ERROR(Read(root, "audit_head_copy", "", c.audit_head_copy));
  if (c.audit_head_copy.empty()) c.audit_head_copy = c.state_file + ".audit-head";
  resolve(c.audit_head_copy);
  SIGNUM_RETURN_IF_ERROR(Read(root, "audit_head_interval_ms", "", c.audit_head_interval_ms));
  if (c.audit_head_interval_ms < 0 || c.audit_head_interval_ms > 60000)
    return InvalidArgumentError("config " + path + ": audit_head_interval_ms must be 0..60000");
  SIGNUM_RETURN_IF_ERROR(Read(root, "threads", "", c.threads));
  if (c.threads == 0)
    return InvalidArgumentError("config " + path + ": threads must be at least 1");
  c.https.io_threads = c.threads;

  const json& limits = Section(root, "limits");
  SIGNUM_RETURN_IF_ERROR(Read(limits, "max_body_bytes", "limits", c.https.max_body_bytes));
  SIGNUM_RETURN_IF_ERROR(
      Read(limits, "max_inflight_signatures", "limits", c.max_inflight_signatures));
  SIGNUM_RETURN_IF_ERROR(
      Read(limits, "per_user_inflight_signatures", "limits", c.per_user_inflight_signatures));
  SIGNUM_RETURN_IF_ERROR(Read(limits, "request_timeout_ms", "limits", c.https.request_timeout_ms));
  SIGNUM_RETURN_IF_ERROR(Read(limits, "idle_timeout_ms", "limits", c.https.idle_timeout_ms));
  SIGNUM_RETURN_IF_ERROR(Read(limits, "max_connections", "limits", c.https.max_connections));
  SIGNUM_RETURN_IF_ERROR(Read(limits, "max_connections_per_source", "limits",
                              c.https.max_connections_per_source));
  SIGNUM_RETURN_IF_ERROR(
      Read(limits, "pre_handshake_timeout_ms", "limits", c.https.pre_handshake_timeout_ms));
  SIGNUM_RETURN_IF_ERROR(
      Read(limits, "handshake_timeout_ms", "limits", c.https.handshake_timeout_ms));
  SIGNUM_RETURN_IF_ERROR(
      Read(limits, "failure_audit_interval_ms", "limits", c.failure_audit_interval_ms));
  for (const auto& [name, value] :
       {std::pair<const char*, int>{"request_timeout_ms", c.https.request_timeout_ms},
        {"idle_timeout_ms", c.https.idle_timeout_ms},
        {"pre_handshake_timeout_ms", c.https.pre_handshake_timeout_ms},
        {"handshake_timeout_ms", c.https.handshake_timeout_ms},
        {"failure_audit_interval_ms", c.failure_audit_interval_ms}}) {
    if (value <= 0)
      return InvalidArgumentError("config " + path + ": limits." + name + " must be positive");
  }

  const json& log = Section(root, "log");
  SIGNUM_RETURN_IF_ERROR(Read(log, "level", "log", c.log_level));
  SIGNUM_RETURN_IF_ERROR(Read(log, "file", "log", c.log_file));
  if (!c.log_file.empty()) resolve(c.log_file);
  return c;
}

json ServerConfigToJson(const ServerConfig& c) {
  json hsm{{"module", c.hsm_module},          {"token_label", c.hsm_token_label},
           {"pin_env", c.hsm_pin_env},        {"pin_file", c.hsm_pin_file},
           {"sessions", c.hsm_sessions},      {"serialize", c.hsm_serialize},
           {"environment", c.hsm_environment}};
  json tls{{"certificate", c.https.certificate_chain_file},
           {"private_key", c.https.private_key_file}};
  if (!c.https.client_ca_file.empty()) tls["client_ca"] = c.https.client_ca_file;
  return json{{"listen", {{"address", c.https.listen_address}, {"port", c.https.port}}},
              {"tls", tls},
              {"hsm", hsm},
              {"state_file", c.state_file},
              {"audit_log", c.audit_log},
              {"audit_head_copy", c.audit_head_copy},
              {"audit_head_interval_ms", c.audit_head_interval_ms},
              {"threads", c.threads},
              {"limits",
               {{"max_body_bytes", c.https.max_body_bytes},
                {"max_inflight_signatures", c.max_inflight_signatures},
                {"per_user_inflight_signatures", c.per_user_inflight_signatures},
                {"request_timeout_ms", c.https.request_timeout_ms},
                {"idle_timeout_ms", c.https.idle_timeout_ms},
                {"max_connections", c.https.max_connections},
                {"max_connections_per_source", c.https.max_connections_per_source},
                {"pre_handshake_timeout_ms", c.https.pre_handshake_timeout_ms},
                {"handshake_timeout_ms", c.https.handshake_timeout_ms},
                {"failure_audit_interval_ms", c.failure_audit_interval_ms}}},
              {"log", {{"level", c.log_level}, {"file", c.log_file}}}};
}

Result<HsmConfig> ResolveHsmConfig(const ServerConfig& config) {
  for (const auto& [name, value] : config.hsm_environment) setenv(name.c_str(), value.c_str(), 1);
  HsmConfig hsm;
  hsm.module_path = config.hsm_module;
  hsm.token_label = config.hsm_token_label;
  hsm.pool_size = config.hsm_sessions;
  hsm.serialize_calls = config.hsm_serialize;
  const char* from_env =
      config.hsm_pin_env.empty() ? nullptr : std::getenv(config.hsm_pin_env.c_str());
  if (from_env && *from_env) {
    hsm.pin = from_env;
  } else if (!config.hsm_pin_file.empty()) {
    auto pin = ReadSecretFile(config.hsm_pin_file);
    if (!pin.ok()) return pin.status().WithContext("HSM PIN file");
    hsm.pin = *pin;
  } else {
    return InvalidArgumentError("no HSM PIN: set $" + config.hsm_pin_env + " or hsm.pin_file");
  }
  return hsm;
}

}  // namespace signum::server

// signum-server's configuration file (JSON). Relative paths are resolved against the directory
// of the config file, so a deployment directory can be moved as a whole.
//
// {
//   "listen":  {"address": "127.0.0.1", "port": 8443},
//   "tls":     {"certificate": "tls/server-chain.pem", "private_key": "tls/server.key",
//               "client_ca": "ca/client-ca.pem"},
//   "hsm":     {"module": "/usr/lib/softhsm/libsofthsm2.so", "token_label": "signum-demo",
//               "pin_env": "SIGNUM_HSM_PIN", "pin_file": "secrets/hsm.pin", "sessions": 4,
//               "serialize": false,
//               "environment": {"SOFTHSM2_CONF": "/abs/path/softhsm2.conf"}},
//   "state_file": "state.json",
//   "audit_log": "audit/audit.log",
//   "audit_head_copy": "state.json.audit-head",   (default: the state file's name + ".audit-head")
//   "audit_head_interval_ms": 100,                (least time between head rewrites; 0 = every flush)
//   "threads": 4,
//   "limits":  {"max_body_bytes": 65536, "max_inflight_signatures": 64,
//               "per_user_inflight_signatures": 0, "request_timeout_ms": 30000,
//               "idle_timeout_ms": 60000, "max_connections": 1024,
//               "max_connections_per_source": 64, "pre_handshake_timeout_ms": 2000,
//               "handshake_timeout_ms": 10000, "failure_audit_interval_ms": 10000},
//   "log":     {"level": "info", "file": ""}
// }
#pragma once

#include <cstdint>
#include <map>
#include <nlohmann/json_fwd.hpp>
#include <string>

#include "hsm_backend.h"
#include "https_server.h"
#include "signum/core/status.h"

namespace signum::server {

struct ServerConfig {
  std::string config_dir;  // directory of the config file (base for relative paths)
  HttpsServerConfig https;
  std::string hsm_module;
  std::string hsm_token_label;
  std::string hsm_pin_env = "SIGNUM_HSM_PIN";
  std::string hsm_pin_file;
  size_t hsm_sessions = 4;
  // One call into the module at a time (HsmConfig::serialize_calls): for modules that are not
  // safe under concurrency. validate-hsm writes it when its concurrency check fails.
  bool hsm_serialize = false;
  std::map<std::string, std::string> hsm_environment;  // set before the module is loaded
  std::string state_file;
  std::string audit_log;
  std::string audit_head_copy;  // AuditOptions::head_copy_path
  int audit_head_interval_ms = 100;  // AuditOptions::head_interval_ms
  size_t threads = 4;
  size_t max_inflight_signatures = 64;      // beyond this: 429 + Retry-After
  size_t per_user_inflight_signatures = 0;  // 0 = no per-user limit
  int failure_audit_interval_ms = 10000;    // ApiLimits::failure_audit_interval_ms
  std::string log_level = "info";
  std::string log_file;
};

Result<ServerConfig> LoadServerConfig(const std::string& path);
nlohmann::json ServerConfigToJson(const ServerConfig& config);  // paths as given (absolute)

// Applies hsm_environment and reads the PIN (environment variable first, then file).
Result<HsmConfig> ResolveHsmConfig(const ServerConfig& config);

}  // namespace signum::server

// HTTPS client for Signum's API (agent, tests, benchmark): TLS 1.2+, server verified against a
// given CA file and host name, optional client certificate, bearer token, keep-alive connection
// reused across requests and re-established when the server closed it.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>

#include "signum/core/status.h"

namespace signum {

struct HttpsClientConfig {
  std::string host = "127.0.0.1";
  uint16_t port = 8443;
  std::string ca_file;                  // PEM trust anchors for the server certificate
  std::string server_name;              // name to verify; default = host
  std::string client_certificate_file;  // PEM, optional (mTLS)
  std::string client_key_file;          // PEM, optional
  std::string bearer_token;             // optional
  int connect_timeout_ms = 5000;
  int request_timeout_ms = 30000;
};

struct HttpsResult {
  int status = 0;
  std::string body;
  std::map<std::string, std::string> headers;  // lower-case names
};

// One connection; not thread-safe (use one client per thread, or a pool).
class HttpsClient {
 public:
  static Result<std::unique_ptr<HttpsClient>> Create(const HttpsClientConfig& config);
  ~HttpsClient();

  // Sends one request on the kept-alive connection, connecting (or reconnecting once if the server
  // closed an idle connection) as needed. Transport failures -> kUnavailable / kDeadlineExceeded.
  Result<HttpsResult> Request(const std::string& method, const std::string& target,
                              const std::string& body = {},
                              const std::map<std::string, std::string>& extra_headers = {});
  Result<HttpsResult> Get(const std::string& target) { return Request("GET", target); }
  Result<HttpsResult> Post(const std::string& target, const std::string& json_body) {
    return Request("POST", target, json_body);
  }
  void Close();
  uint64_t connections_opened() const;
  // The subject of the client certificate this client presents ("CN=...,O=..."), empty without.
  const std::string& client_certificate_subject() const;

 private:
  HttpsClient() = default;
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace signum

// HTTPS transport for signum-server (Boost.Beast + Asio + OpenSSL). Knows nothing about the API:
// it parses HTTP/1.1 requests over TLS 1.2+, enforces size limits and timeouts, keeps connections
// alive, and hands each request to a handler on a worker thread.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "signum/core/status.h"

namespace signum::server {

struct HttpsServerConfig {
  std::string listen_address = "127.0.0.1";  // "::1", "0.0.0.0" ...
  uint16_t port = 8443;                      // 0 = pick a free port (see HttpsServer::port())
  std::string certificate_chain_file;        // PEM: server certificate then intermediates
  std::string private_key_file;              // PEM
  std::string client_ca_file;                // PEM; empty = no client certificates requested
  size_t io_threads = 2;                     // threads running the event loop and handlers
  size_t max_body_bytes = 64 * 1024;         // larger bodies -> 413
  size_t max_header_bytes = 16 * 1024;       // larger headers -> 431
  // A new connection must send its first TLS byte (ClientHello) within pre_handshake_timeout_ms
  // and finish the handshake within handshake_timeout_ms: idle sockets that never start TLS are
  // dropped quickly instead of holding a connection slot.
  int pre_handshake_timeout_ms = 2000;
  int handshake_timeout_ms = 10000;
  int idle_timeout_ms = 60000;               // keep-alive connection idle limit
  int request_timeout_ms = 30000;            // reading one request
  size_t max_connections = 1024;             // beyond this new connections are refused
  // Connections from one source address beyond this are refused, so one client (or attacker)
  // cannot take every slot of max_connections. 0 = no per-source limit.
  size_t max_connections_per_source = 64;
  // Called (on an io thread) when a client's certificate fails verification in the handshake,
  // e.g. one from an unknown CA; peer is "address:port", reason OpenSSL's verify error.
  std::function<void(const std::string& peer, const std::string& reason)>
      on_client_certificate_failure;
};

struct HttpRequest {
  std::string method;                        // "GET", "POST"
  std::string target;                        // "/v1/sign?x=y"
  std::map<std::string, std::string> headers;  // lower-case names
  std::string body;
  std::string peer_address;                  // "127.0.0.1:53422"
  // Set when the client presented a certificate that chains to client_ca_file.
  std::optional<std::string> client_certificate_sha256_hex;
  std::optional<std::string> client_certificate_subject;
};

struct HttpResponse {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::map<std::string, std::string> headers;  // extra headers, e.g. Retry-After, WWW-Authenticate
};

using HttpHandler = std::function<HttpResponse(const HttpRequest&)>;

class HttpsServer {
 public:
  // Loads certificates and binds; errors name the file or address.
  static Result<std::unique_ptr<HttpsServer>> Create(const HttpsServerConfig& config,
                                                     HttpHandler handler);
  ~HttpsServer();  // stops and joins

  uint16_t port() const;     // the bound port
  void Start();              // starts io_threads threads; returns immediately
  void Stop();               // closes the listener and connections, joins threads
  void Wait();               // blocks until Stop() (from a signal handler thread, for example)

 private:
  HttpsServer() = default;
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace signum::server

// HttpsServer and HttpsClient over real TLS on loopback. Certificates are made at test time with
// the openssl command line; raw TLS/TCP clients (OpenSSL directly) probe the server's limits.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "https_server.h"
#include "signum/core/https_client.h"
#include "signum/testing/loopback.h"
#include "signum/testing/softhsm_token.h"
#include "signum/testing/status_matchers.h"
#include "signum/testing/temp_dir.h"

namespace signum::server {
namespace {

using ::signum::testing::StatusIs;

using signum::testing::RunCommand;
using signum::testing::TempDir;
using Clock = std::chrono::steady_clock;

int64_t MillisSince(Clock::time_point start) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start).count();
}

std::string Trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) s.pop_back();
  return s;
}

// Test PKI: a CA and a server certificate for 127.0.0.1, ::1 and localhost; a client CA and a
// client certificate; a "rogue" CA with its own client certificate.
struct Pki {
  TempDir dir{"signum-https-test"};
  std::string ca, server_cert, server_key;
  std::string client_ca, client_cert, client_key;
  std::string rogue_ca, rogue_client_cert, rogue_client_key;
  std::string client_fingerprint;  // lower-case hex, no colons
  std::string client_subject;      // RFC 2253

  Pki() {
    const std::string d = dir.path();
    const std::string ec_key = "-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes";
    const std::string script =
        "(set -e; cd '" + d + "';" +
        "printf 'subjectAltName=IP:127.0.0.1,IP:::1,DNS:localhost\\n"
        "extendedKeyUsage=serverAuth\\nbasicConstraints=CA:FALSE\\n' > server.ext;"
        "printf 'extendedKeyUsage=clientAuth\\nbasicConstraints=CA:FALSE\\n' > client.ext;"
        "openssl req -x509 " +
        ec_key +
        " -keyout ca.key -out ca.pem -days 2 -subj '/CN=Signum Test CA';"
        "openssl req -x509 " +
        ec_key +
        " -keyout client-ca.key -out client-ca.pem -days 2 -subj '/CN=Signum Test Client CA';"
        "openssl req -x509 " +
        ec_key +
        " -keyout rogue-ca.key -out rogue-ca.pem -days 2 -subj '/CN=Rogue CA';"
        "openssl req -new " +
        ec_key +
        " -keyout server.key -out server.csr -subj '/CN=localhost';"
        "openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -set_serial 2 -days 2"
        " -extfile server.ext -out server.pem;"
        "openssl req -new " +
        ec_key +
        " -keyout client.key -out client.csr -subj '/O=Signum Test/CN=builder-1';"
        "openssl x509 -req -in client.csr -CA client-ca.pem -CAkey client-ca.key -set_serial 3"
        " -days 2 -extfile client.ext -out client.pem;"
        "openssl req -new " +
        ec_key +
        " -keyout rogue-client.key -out rogue-client.csr -subj '/CN=intruder';"
        "openssl x509 -req -in rogue-client.csr -CA rogue-ca.pem -CAkey rogue-ca.key"
        " -set_serial 4 -days 2 -extfile client.ext -out rogue-client.pem)";
    auto r = RunCommand(script);
    if (r.exit_code != 0) throw std::runtime_error("making test PKI failed: " + r.output);
    ca = dir.File("ca.pem");
    server_cert = dir.File("server.pem");
    server_key = dir.File("server.key");
    client_ca = dir.File("client-ca.pem");
    client_cert = dir.File("client.pem");
    client_key = dir.File("client.key");
    rogue_ca = dir.File("rogue-ca.pem");
    rogue_client_cert = dir.File("rogue-client.pem");
    rogue_client_key = dir.File("rogue-client.key");

    auto fp = RunCommand("openssl x509 -in '" + client_cert + "' -noout -fingerprint -sha256");
    if (fp.exit_code != 0) throw std::runtime_error(fp.output);
    std::string hex = Trim(fp.output.substr(fp.output.find('=') + 1));
    for (char c : hex) {
      if (c == ':') continue;
      client_fingerprint += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    }
    auto subject =
        RunCommand("openssl x509 -in '" + client_cert + "' -noout -subject -nameopt RFC2253");
    if (subject.exit_code != 0) throw std::runtime_error(subject.output);
    client_subject = Trim(subject.output.substr(subject.output.find('=') + 1));
  }
};

const Pki& GetPki() {
  static const Pki pki;  // made once per process, removed at exit
  return pki;
}

HttpsServerConfig ServerConfig() {
  HttpsServerConfig c;
  c.listen_address = "127.0.0.1";
  c.port = 0;
  c.certificate_chain_file = GetPki().server_cert;
  c.private_key_file = GetPki().server_key;
  c.io_threads = 2;
  return c;
}

HttpsClientConfig ClientConfig(uint16_t port) {
  HttpsClientConfig c;
  c.host = "127.0.0.1";
  c.port = port;
  c.ca_file = GetPki().ca;
  c.connect_timeout_ms = 3000;
  c.request_timeout_ms = 5000;
  return c;
}

HttpResponse Echo(const HttpRequest& r) {
  HttpResponse resp;
  resp.status = 200;
  resp.content_type = "application/octet-stream";
  resp.body = r.body;
  auto header = [&](const char* name) {
    auto it = r.headers.find(name);
    return it == r.headers.end() ? std::string("<none>") : it->second;
  };
  resp.headers["X-Method"] = r.method;
  resp.headers["X-Target"] = r.target;
  resp.headers["X-Peer"] = r.peer_address;
  resp.headers["X-Authorization"] = header("authorization");
  resp.headers["X-Content-Type"] = header("content-type");
  resp.headers["X-Custom"] = header("x-custom");
  resp.headers["X-Client-Cert"] = r.client_certificate_sha256_hex.value_or("<none>");
  resp.headers["X-Client-Subject"] = r.client_certificate_subject.value_or("<none>");
  return resp;
}

std::unique_ptr<HttpsServer> StartServer(const HttpsServerConfig& config,
                                         HttpHandler handler = Echo) {
  auto server = HttpsServer::Create(config, std::move(handler));
  if (!server.ok()) throw std::runtime_error(server.status().ToString());
  (*server)->Start();
  return std::move(server).value();
}

std::unique_ptr<HttpsClient> MakeClient(const HttpsClientConfig& config) {
  auto client = HttpsClient::Create(config);
  if (!client.ok()) throw std::runtime_error(client.status().ToString());
  return std::move(client).value();
}

// Waits until fd is readable (data or EOF); false on timeout.
bool WaitReadable(int fd, int timeout_ms) {
  pollfd p{fd, POLLIN, 0};
  return ::poll(&p, 1, timeout_ms) > 0;
}

// A TLS client written directly against OpenSSL, for sending what HttpsClient never would.
class RawTls {
 public:
  RawTls() {
    ctx_ = SSL_CTX_new(TLS_client_method());
    SSL_CTX_set_verify(ctx_, SSL_VERIFY_NONE, nullptr);
  }
  ~RawTls() {
    if (ssl_ != nullptr) SSL_free(ssl_);
    if (fd_ >= 0) ::close(fd_);
    SSL_CTX_free(ctx_);
  }
  SSL_CTX* ctx() { return ctx_; }

  // TCP connect + TLS handshake; on failure *error holds OpenSSL's reasons.
  bool Connect(uint16_t port, std::string* error = nullptr) {
    fd_ = signum::testing::ConnectLoopbackTcp(port);
    if (fd_ < 0) {
      if (error) *error = "tcp connect failed";
      return false;
    }
    ssl_ = SSL_new(ctx_);
    SSL_set_fd(ssl_, fd_);
    if (SSL_connect(ssl_) != 1) {
      if (error) {
        char buf[256];
        while (unsigned long e = ERR_get_error()) {
          ERR_error_string_n(e, buf, sizeof buf);
          *error += std::string(buf) + "\n";
        }
      }
      return false;
    }
    return true;
  }

  bool Write(const std::string& data) {
    return SSL_write(ssl_, data.data(), static_cast<int>(data.size())) ==
           static_cast<int>(data.size());
  }

  // Reads until the server closes the connection or `timeout_ms` passes (then *closed = false).
  std::string ReadUntilClosed(int timeout_ms, bool* closed) {
    std::string out;
    *closed = false;
    const auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
    for (;;) {
      if (SSL_pending(ssl_) == 0) {
        const auto left =
            std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
        if (left <= 0 || !WaitReadable(fd_, static_cast<int>(left))) return out;
      }
      char buf[4096];
      const int n = SSL_read(ssl_, buf, sizeof buf);
      if (n > 0) {
        out.append(buf, static_cast<size_t>(n));
        continue;
      }
      const int err = SSL_get_error(ssl_, n);
      if (err == SSL_ERROR_WANT_READ) continue;
      ERR_clear_error();
      *closed = true;
      return out;
    }
  }

  // Reads until `out` contains `marker` (or timeout).
  std::string ReadUntil(const std::string& marker, int timeout_ms) {
    std::string out;
    const auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
    while (out.find(marker) == std::string::npos) {
      if (SSL_pending(ssl_) == 0) {
        const auto left =
            std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
        if (left <= 0 || !WaitReadable(fd_, static_cast<int>(left))) break;
      }
      char buf[4096];
      const int n = SSL_read(ssl_, buf, sizeof buf);
      if (n > 0) {
        out.append(buf, static_cast<size_t>(n));
      } else if (SSL_get_error(ssl_, n) != SSL_ERROR_WANT_READ) {
        ERR_clear_error();
        break;
      }
    }
    return out;
  }

 private:
  SSL_CTX* ctx_ = nullptr;
  SSL* ssl_ = nullptr;
  int fd_ = -1;
};

// ---------------------------------------------------------------------------------------------

TEST(HttpsTest, RoundTrip) {
  auto server = StartServer(ServerConfig());
  auto config = ClientConfig(server->port());
  config.bearer_token = "tok-123";
  auto client = MakeClient(config);

  auto r = client->Request("POST", "/v1/echo?x=y", "{\"a\":1}", {{"X-Custom", "hello"}});
  ASSERT_OK(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, "{\"a\":1}");
  EXPECT_EQ(r->headers["server"], "signum-server");
  EXPECT_EQ(r->headers["content-type"], "application/octet-stream");
  EXPECT_EQ(r->headers["content-length"], "7");
  EXPECT_EQ(r->headers["x-method"], "POST");
  EXPECT_EQ(r->headers["x-target"], "/v1/echo?x=y");
  EXPECT_EQ(r->headers["x-authorization"], "Bearer tok-123");
  EXPECT_EQ(r->headers["x-content-type"], "application/json");
  EXPECT_EQ(r->headers["x-custom"], "hello");
  EXPECT_EQ(r->headers["x-client-cert"], "<none>");  // no client_ca_file: nothing requested
  EXPECT_EQ(r->headers["x-peer"].rfind("127.0.0.1:", 0), 0u) << r->headers["x-peer"];

  auto g = client->Get("/v1/health");
  ASSERT_OK(g);
  EXPECT_EQ(g->headers["x-method"], "GET");
  EXPECT_EQ(g->body, "");
  EXPECT_EQ(client->connections_opened(), 1u);

  // Host name verification against the DNS SAN.
  config.host = "localhost";
  auto by_name = MakeClient(config);
  auto n = by_name->Get("/");
  ASSERT_OK(n);
}

TEST(HttpsTest, KeepAliveReusesOneConnection) {
  auto server = StartServer(ServerConfig());
  auto client = MakeClient(ClientConfig(server->port()));
  for (int i = 0; i < 100; ++i) {
    auto r = client->Post("/v1/echo", "{\"i\":" + std::to_string(i) + "}");
    ASSERT_OK(r) << i;
    ASSERT_EQ(r->body, "{\"i\":" + std::to_string(i) + "}");
  }
  EXPECT_EQ(client->connections_opened(), 1u);

  // Throughput over one kept-alive connection (informational).
  constexpr int kRequests = 2000;
  const auto start = Clock::now();
  for (int i = 0; i < kRequests; ++i) {
    auto r = client->Post("/v1/echo", "{\"payload\":\"0123456789abcdef\"}");
    ASSERT_OK(r);
  }
  const double seconds = std::max<int64_t>(1, MillisSince(start)) / 1000.0;
  std::printf("[ measure  ] %d requests over one keep-alive TLS connection: %.0f requests/s\n",
              kRequests, kRequests / seconds);
  EXPECT_EQ(client->connections_opened(), 1u);
}

TEST(HttpsTest, ServerClosesIdleConnectionAndClientReconnects) {
  auto config = ServerConfig();
  config.idle_timeout_ms = 200;
  auto server = StartServer(config);
  auto client = MakeClient(ClientConfig(server->port()));
  ASSERT_OK(client->Get("/a"));
  std::this_thread::sleep_for(std::chrono::milliseconds(600));
  auto r = client->Get("/b");
  ASSERT_OK(r);
  EXPECT_EQ(r->headers["x-target"], "/b");
  EXPECT_EQ(client->connections_opened(), 2u);
}

TEST(HttpsTest, BodyOverLimitIs413) {
  auto config = ServerConfig();
  config.max_body_bytes = 1024;
  auto server = StartServer(config);
  auto client = MakeClient(ClientConfig(server->port()));
  ASSERT_OK(client->Post("/ok", std::string(1024, 'a')));

  auto r = client->Post("/big", std::string(200 * 1024, 'a'));
  ASSERT_OK(r);
  EXPECT_EQ(r->status, 413);
  EXPECT_NE(r->body.find("\"code\":\"PAYLOAD_TOO_LARGE\""), std::string::npos) << r->body;
  EXPECT_EQ(r->headers["connection"], "close");
  EXPECT_EQ(r->headers["content-type"], "application/json");

  // The connection was closed; the next request opens a new one.
  auto after = client->Get("/after");
  ASSERT_OK(after);
  EXPECT_EQ(after->status, 200);
  EXPECT_EQ(client->connections_opened(), 2u);
}

TEST(HttpsTest, ChunkedBodyOverLimitIs413) {
  auto config = ServerConfig();
  config.max_body_bytes = 100;
  auto server = StartServer(config);
  RawTls raw;
  ASSERT_TRUE(raw.Connect(server->port()));
  std::string chunk(80, 'x');
  ASSERT_TRUE(raw.Write("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n50\r\n" +
                        chunk + "\r\n50\r\n" + chunk + "\r\n0\r\n\r\n"));
  bool closed = false;
  std::string out = raw.ReadUntilClosed(3000, &closed);
  EXPECT_EQ(out.rfind("HTTP/1.1 413 ", 0), 0u) << out;
  EXPECT_TRUE(closed);
}

TEST(HttpsTest, HeadersOverLimitIs431) {
  auto config = ServerConfig();
  config.max_header_bytes = 4096;
  auto server = StartServer(config);
  auto client = MakeClient(ClientConfig(server->port()));
  auto r = client->Request("GET", "/", "", {{"X-Big", std::string(8000, 'h')}});
  ASSERT_OK(r);
  EXPECT_EQ(r->status, 431);
  EXPECT_NE(r->body.find("HEADERS_TOO_LARGE"), std::string::npos) << r->body;
}

TEST(HttpsTest, MalformedRequestIs400AndClose) {
  auto server = StartServer(ServerConfig());
  RawTls raw;
  ASSERT_TRUE(raw.Connect(server->port()));
  ASSERT_TRUE(raw.Write("this is \x01 not HTTP at all\r\n\r\n"));
  bool closed = false;
  std::string out = raw.ReadUntilClosed(3000, &closed);
  EXPECT_EQ(out.rfind("HTTP/1.1 400 Bad Request\r\n", 0), 0u) << out;
  EXPECT_NE(out.find("\"code\":\"BAD_REQUEST\""), std::string::npos) << out;
  EXPECT_NE(out.find("Connection: close\r\n"), std::string::npos) << out;
  EXPECT_TRUE(closed);

  // The server is still fine.
  auto client = MakeClient(ClientConfig(server->port()));
  EXPECT_OK(client->Get("/"));
}

TEST(HttpsTest, SlowLorisIsCutOffAfterRequestTimeout) {
  auto config = ServerConfig();
  config.request_timeout_ms = 500;
  auto server = StartServer(config);
  RawTls raw;
  ASSERT_TRUE(raw.Connect(server->port()));
  const auto start = Clock::now();
  ASSERT_TRUE(raw.Write("POST /v1/sign HTTP/1.1\r\nHost: x\r\nContent-Le"));
  bool closed = false;
  std::string out = raw.ReadUntilClosed(5000, &closed);
  const int64_t elapsed = MillisSince(start);
  EXPECT_TRUE(closed);
  EXPECT_EQ(out.rfind("HTTP/1.1 408 ", 0), 0u) << out;
  EXPECT_NE(out.find("REQUEST_TIMEOUT"), std::string::npos) << out;
  EXPECT_GE(elapsed, 400);
  EXPECT_LT(elapsed, 2000);
}

TEST(HttpsTest, SilentTlsClientIsClosedWithoutResponse) {
  // Handshake done, then nothing: closed after request_timeout, nothing sent back (no 408).
  auto config = ServerConfig();
  config.request_timeout_ms = 300;
  auto server = StartServer(config);
  RawTls raw;
  ASSERT_TRUE(raw.Connect(server->port()));
  const auto start = Clock::now();
  bool closed = false;
  std::string out = raw.ReadUntilClosed(5000, &closed);
  EXPECT_TRUE(closed);
  EXPECT_EQ(out, "");
  EXPECT_LT(MillisSince(start), 2000);
}

TEST(HttpsTest, HandshakeTimeoutForSilentTcpClient) {
  auto config = ServerConfig();
  config.handshake_timeout_ms = 300;
  auto server = StartServer(config);
  int fd = signum::testing::ConnectLoopbackTcp(server->port());
  ASSERT_GE(fd, 0);
  const auto start = Clock::now();
  ASSERT_TRUE(WaitReadable(fd, 5000));
  char c;
  EXPECT_LE(::recv(fd, &c, 1, 0), 0);  // EOF (or reset), never data
  const int64_t elapsed = MillisSince(start);
  EXPECT_GE(elapsed, 250);
  EXPECT_LT(elapsed, 2000);
  ::close(fd);
}

// A TCP connection from source (a loopback address such as 127.0.0.2) that never starts TLS.
int IdleTcpConnectFrom(const char* source, uint16_t port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in from{};
  from.sin_family = AF_INET;
  ::inet_pton(AF_INET, source, &from.sin_addr);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&from), sizeof from) != 0) {
    ::close(fd);
    return -1;
  }
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

// 300 idle connections from 127.0.0.2 (more than max_connections) must not lock out a client
// from 127.0.0.1, and are dropped within the pre-handshake deadline. Before: the flood took every
// slot and the legitimate client was refused until the 10 s handshake timeout freed them.
TEST(HttpsTest, IdleConnectionFloodFromOneSourceDoesNotLockOutOthers) {
  auto config = ServerConfig();
  config.max_connections = 256;
  config.max_connections_per_source = 32;
  config.pre_handshake_timeout_ms = 500;
  auto server = StartServer(config);
  std::vector<int> idle;
  for (int i = 0; i < 300; ++i) {
    const int fd = IdleTcpConnectFrom("127.0.0.2", server->port());
    ASSERT_GE(fd, 0) << "connect " << i << ": " << std::strerror(errno);
    idle.push_back(fd);
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(100));  // all accepted (or refused)
  const auto start = Clock::now();
  auto client = MakeClient(ClientConfig(server->port()));
  auto r = client->Get("/x");
  ASSERT_OK(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_LT(MillisSince(start), 1500);  // before: refused until the 10 s handshake timeout
  // Every idle connection is closed by the server soon: refused at once or after 500 ms.
  size_t closed = 0;
  for (int fd : idle) {
    if (WaitReadable(fd, 3000)) {
      char c;
      if (::recv(fd, &c, 1, 0) <= 0) ++closed;
    }
    ::close(fd);
  }
  EXPECT_EQ(closed, idle.size());
  EXPECT_LT(MillisSince(start), 3000);
}

TEST(HttpsTest, Tls11ClientRefusedTls12Accepted) {
  auto server = StartServer(ServerConfig());
  {
    RawTls raw;
    SSL_CTX_set_security_level(raw.ctx(), 0);  // let this OpenSSL offer TLS 1.1 at all
    SSL_CTX_set_cipher_list(raw.ctx(), "DEFAULT:@SECLEVEL=0");
    SSL_CTX_set_min_proto_version(raw.ctx(), TLS1_VERSION);
    SSL_CTX_set_max_proto_version(raw.ctx(), TLS1_1_VERSION);
    std::string error;
    EXPECT_FALSE(raw.Connect(server->port(), &error));
    EXPECT_NE(error.find("protocol version"), std::string::npos) << error;
  }
  {
    RawTls raw;
    SSL_CTX_set_max_proto_version(raw.ctx(), TLS1_2_VERSION);
    std::string error;
    EXPECT_TRUE(raw.Connect(server->port(), &error)) << error;
  }
}

TEST(HttpsTest, UntrustedCaIsVerifyFailure) {
  auto server = StartServer(ServerConfig());
  auto config = ClientConfig(server->port());
  config.ca_file = GetPki().rogue_ca;
  auto client = MakeClient(config);
  auto r = client->Get("/");
  ASSERT_THAT(r, StatusIs(ErrorCode::kUnavailable));
  EXPECT_NE(r.status().message().find("certificate verify failed"), std::string::npos)
      << r.status().message();
  EXPECT_EQ(client->connections_opened(), 0u);
}

TEST(HttpsTest, WrongServerNameIsVerifyFailure) {
  auto server = StartServer(ServerConfig());
  auto config = ClientConfig(server->port());
  config.server_name = "wrong.example";
  auto r = MakeClient(config)->Get("/");
  ASSERT_THAT(r, StatusIs(ErrorCode::kUnavailable));
  EXPECT_NE(r.status().message().find("certificate verify failed: hostname mismatch"),
            std::string::npos)
      << r.status().message();

  config.server_name = "10.9.8.7";  // an IP that is not in the certificate's IP SANs
  r = MakeClient(config)->Get("/");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("certificate verify failed: IP address mismatch"),
            std::string::npos)
      << r.status().message();

  config.server_name = "localhost";  // connect by IP, verify the DNS name
  r = MakeClient(config)->Get("/");
  EXPECT_OK(r);
}

TEST(HttpsTest, MutualTls) {
  auto server_config = ServerConfig();
  server_config.client_ca_file = GetPki().client_ca;
  auto server = StartServer(server_config);

  auto config = ClientConfig(server->port());
  config.client_certificate_file = GetPki().client_cert;
  config.client_key_file = GetPki().client_key;
  auto r = MakeClient(config)->Get("/whoami");
  ASSERT_OK(r);
  EXPECT_EQ(r->headers["x-client-cert"], GetPki().client_fingerprint);
  EXPECT_EQ(r->headers["x-client-subject"], GetPki().client_subject);
  EXPECT_EQ(GetPki().client_subject, "CN=builder-1,O=Signum Test");

  // Token users present no certificate: the handshake succeeds, nothing is exposed.
  auto token_config = ClientConfig(server->port());
  token_config.bearer_token = "t";
  r = MakeClient(token_config)->Get("/whoami");
  ASSERT_OK(r);
  EXPECT_EQ(r->headers["x-client-cert"], "<none>");
  EXPECT_EQ(r->headers["x-client-subject"], "<none>");

  // A certificate from another CA is rejected in the handshake (with TLS 1.3 the client learns
  // it when it reads the server's alert).
  auto rogue_config = ClientConfig(server->port());
  rogue_config.client_certificate_file = GetPki().rogue_client_cert;
  rogue_config.client_key_file = GetPki().rogue_client_key;
  r = MakeClient(rogue_config)->Get("/whoami");
  ASSERT_THAT(r, StatusIs(ErrorCode::kUnavailable));
  EXPECT_NE(r.status().message().find("unknown ca"), std::string::npos) << r.status().message();
}

TEST(HttpsTest, ConcurrentClients) {
  auto config = ServerConfig();
  config.io_threads = 4;
  auto server = StartServer(config);
  constexpr int kThreads = 8;
  constexpr int kRequests = 200;
  std::atomic<int> ok{0};
  std::atomic<int> connections{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      auto client = MakeClient(ClientConfig(server->port()));
      for (int i = 0; i < kRequests; ++i) {
        const std::string body = std::to_string(t) + "/" + std::to_string(i);
        auto r = client->Post("/v1/echo", body);
        if (r.ok() && r->status == 200 && r->body == body) ++ok;
      }
      connections += static_cast<int>(client->connections_opened());
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok.load(), kThreads * kRequests);
  EXPECT_EQ(connections.load(), kThreads);
}

TEST(HttpsTest, Ipv6Loopback) {
  auto config = ServerConfig();
  config.listen_address = "::1";
  auto created = HttpsServer::Create(config, Echo);
  if (!created.ok()) GTEST_SKIP() << "no IPv6 loopback: " << created.status().ToString();
  auto server = std::move(created).value();
  server->Start();
  auto client_config = ClientConfig(server->port());
  client_config.host = "::1";
  auto r = MakeClient(client_config)->Get("/six");
  ASSERT_OK(r);
  EXPECT_EQ(r->headers["x-peer"].rfind("[::1]:", 0), 0u) << r->headers["x-peer"];
}

TEST(HttpsTest, HandlerExceptionIs500) {
  auto server = StartServer(ServerConfig(), [](const HttpRequest& r) -> HttpResponse {
    if (r.target == "/throw") throw std::runtime_error("secret internal detail");
    if (r.target == "/bad-status") return HttpResponse{42, "text/plain", "", {}};
    return Echo(r);
  });
  auto client = MakeClient(ClientConfig(server->port()));
  auto r = client->Get("/throw");
  ASSERT_OK(r);
  EXPECT_EQ(r->status, 500);
  EXPECT_NE(r->body.find("\"code\":\"INTERNAL\""), std::string::npos) << r->body;
  EXPECT_EQ(r->body.find("secret"), std::string::npos) << r->body;
  r = client->Get("/bad-status");
  ASSERT_OK(r);
  EXPECT_EQ(r->status, 500);
  r = client->Get("/fine");
  ASSERT_OK(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(client->connections_opened(), 1u);  // a handler failure does not cost the connection
}

TEST(HttpsTest, ExtraResponseHeadersAndStatus) {
  auto server = StartServer(ServerConfig(), [](const HttpRequest&) {
    HttpResponse r;
    r.status = 429;
    r.body = "{}";
    r.headers["Retry-After"] = "3";
    r.headers["WWW-Authenticate"] = "Bearer realm=\"signum\"";
    r.headers["Content-Length"] = "999";         // framing is the transport's business
    r.headers["X-Injected"] = "a\r\nX-Evil: 1";  // dropped
    return r;
  });
  auto r = MakeClient(ClientConfig(server->port()))->Get("/");
  ASSERT_OK(r);
  EXPECT_EQ(r->status, 429);
  EXPECT_EQ(r->headers["retry-after"], "3");
  EXPECT_EQ(r->headers["www-authenticate"], "Bearer realm=\"signum\"");
  EXPECT_EQ(r->headers["content-length"], "2");
  EXPECT_EQ(r->headers.count("x-evil"), 0u);
  EXPECT_EQ(r->headers.count("x-injected"), 0u);
}

TEST(HttpsTest, StopWithConnectedClientsIsPrompt) {
  auto server = StartServer(ServerConfig());
  std::vector<std::unique_ptr<HttpsClient>> clients;
  for (int i = 0; i < 4; ++i) {
    clients.push_back(MakeClient(ClientConfig(server->port())));
    ASSERT_OK(clients.back()->Get("/"));
  }
  RawTls mid_request;  // one connection half-way through a request
  ASSERT_TRUE(mid_request.Connect(server->port()));
  ASSERT_TRUE(mid_request.Write("GET / HTTP/1.1\r\n"));
  int silent = signum::testing::ConnectLoopbackTcp(server->port());  // one still before its handshake
  ASSERT_GE(silent, 0);

  std::atomic<bool> waited{false};
  std::thread waiter([&] {
    server->Wait();
    waited = true;
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  const auto start = Clock::now();
  server->Stop();
  EXPECT_LT(MillisSince(start), 1000);
  waiter.join();
  EXPECT_TRUE(waited.load());
  server->Stop();  // idempotent

  // Connections were closed.
  ASSERT_TRUE(WaitReadable(silent, 2000));
  char c;
  EXPECT_LE(::recv(silent, &c, 1, 0), 0);
  ::close(silent);
  bool closed = false;
  mid_request.ReadUntilClosed(2000, &closed);
  EXPECT_TRUE(closed);
  auto r = clients[0]->Get("/");
  ASSERT_THAT(r, StatusIs(ErrorCode::kUnavailable)) << r.status().ToString();
}

TEST(HttpsTest, ConnectionRefused) {
  uint16_t port = 0;
  {
    auto server = StartServer(ServerConfig());
    port = server->port();
  }
  auto r = MakeClient(ClientConfig(port))->Get("/");
  ASSERT_THAT(r, StatusIs(ErrorCode::kUnavailable));
  EXPECT_EQ(r.status().message(),
            "cannot connect to 127.0.0.1:" + std::to_string(port) + ": Connection refused");
}

TEST(HttpsTest, CreateErrorsNameTheFileOrAddress) {
  auto config = ServerConfig();
  config.certificate_chain_file = "/nonexistent/chain.pem";
  auto r = HttpsServer::Create(config, Echo);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("/nonexistent/chain.pem"), std::string::npos);

  config = ServerConfig();
  config.private_key_file = GetPki().ca;  // a certificate, not a key
  r = HttpsServer::Create(config, Echo);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find(GetPki().ca), std::string::npos) << r.status().message();

  config = ServerConfig();
  config.private_key_file = GetPki().dir.File("client.key");  // another certificate's key
  r = HttpsServer::Create(config, Echo);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("mismatch"), std::string::npos) << r.status().message();

  auto first = StartServer(ServerConfig());
  config = ServerConfig();
  config.port = first->port();
  r = HttpsServer::Create(config, Echo);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("127.0.0.1:" + std::to_string(first->port())),
            std::string::npos)
      << r.status().message();

  config = ServerConfig();
  config.listen_address = "not an address";
  r = HttpsServer::Create(config, Echo);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("not an address"), std::string::npos);

  auto client_config = ClientConfig(1);
  client_config.ca_file = "/nonexistent/ca.pem";
  auto c = HttpsClient::Create(client_config);
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("/nonexistent/ca.pem"), std::string::npos);
}

TEST(HttpsTest, ClientRequestTimeout) {
  auto server = StartServer(ServerConfig(), [](const HttpRequest& r) {
    if (r.target == "/slow") std::this_thread::sleep_for(std::chrono::milliseconds(800));
    return Echo(r);
  });
  auto config = ClientConfig(server->port());
  config.request_timeout_ms = 200;
  auto client = MakeClient(config);
  const auto start = Clock::now();
  auto r = client->Get("/slow");
  ASSERT_THAT(r, StatusIs(ErrorCode::kDeadlineExceeded)) << r.status().ToString();
  EXPECT_LT(MillisSince(start), 700);
  auto fine = client->Get("/fast");  // a new connection
  ASSERT_OK(fine);
  EXPECT_EQ(client->connections_opened(), 2u);
}

TEST(HttpsTest, ConnectionCloseAndHttp10) {
  auto server = StartServer(ServerConfig());
  auto client = MakeClient(ClientConfig(server->port()));
  auto r = client->Request("GET", "/", "", {{"Connection", "close"}});
  ASSERT_OK(r);
  EXPECT_EQ(r->headers["connection"], "close");
  ASSERT_OK(client->Get("/"));
  EXPECT_EQ(client->connections_opened(), 2u);

  RawTls raw;
  ASSERT_TRUE(raw.Connect(server->port()));
  ASSERT_TRUE(raw.Write("GET /old HTTP/1.0\r\n\r\n"));
  bool closed = false;
  std::string out = raw.ReadUntilClosed(3000, &closed);
  EXPECT_EQ(out.rfind("HTTP/1.0 200 OK\r\n", 0), 0u) << out;
  EXPECT_TRUE(closed);

  RawTls keep;
  ASSERT_TRUE(keep.Connect(server->port()));
  ASSERT_TRUE(keep.Write("GET /old HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"));
  out = keep.ReadUntil("\r\n\r\n", 3000);
  EXPECT_NE(out.find("Connection: keep-alive\r\n"), std::string::npos) << out;
}

TEST(HttpsTest, PipelinedRequestsAnsweredInOrder) {
  auto server = StartServer(ServerConfig());
  RawTls raw;
  ASSERT_TRUE(raw.Connect(server->port()));
  ASSERT_TRUE(
      raw.Write("GET /one HTTP/1.1\r\nHost: x\r\n\r\nGET /two HTTP/1.1\r\nHost: x\r\n"
                "Connection: close\r\n\r\n"));
  bool closed = false;
  std::string out = raw.ReadUntilClosed(3000, &closed);
  EXPECT_TRUE(closed);
  const size_t one = out.find("X-Target: /one");
  const size_t two = out.find("X-Target: /two");
  ASSERT_NE(one, std::string::npos) << out;
  ASSERT_NE(two, std::string::npos) << out;
  EXPECT_LT(one, two);
}

TEST(HttpsTest, ExpectContinue) {
  auto server = StartServer(ServerConfig());
  RawTls raw;
  ASSERT_TRUE(raw.Connect(server->port()));
  ASSERT_TRUE(
      raw.Write("POST /c HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
                "Expect: 100-continue\r\n\r\n"));
  std::string out = raw.ReadUntil("\r\n\r\n", 3000);
  EXPECT_EQ(out, "HTTP/1.1 100 Continue\r\n\r\n");
  ASSERT_TRUE(raw.Write("hello"));
  out = raw.ReadUntil("hello", 3000);
  EXPECT_EQ(out.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << out;
}

TEST(HttpsTest, MaxConnectionsRefusesBeyondLimit) {
  auto config = ServerConfig();
  config.max_connections = 1;
  auto server = StartServer(config);
  auto first = std::make_unique<RawTls>();
  ASSERT_TRUE(first->Connect(server->port()));

  auto client = MakeClient(ClientConfig(server->port()));
  auto r = client->Get("/");
  ASSERT_THAT(r, StatusIs(ErrorCode::kUnavailable)) << r.status().ToString();

  first.reset();  // frees the slot (once the server noticed)
  bool ok = false;
  for (int i = 0; i < 50 && !ok; ++i) {
    ok = client->Get("/").ok();
    if (!ok) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_TRUE(ok);
}

TEST(HttpsTest, ClientConnectTimeout) {
  // A listener whose accept queue is full drops further SYNs: connect() hangs.
  int listener = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_EQ(::listen(listener, 0), 0);
  socklen_t len = sizeof addr;
  ASSERT_EQ(::getsockname(listener, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  const uint16_t port = ntohs(addr.sin_port);
  std::vector<int> fillers;
  for (int i = 0; i < 3; ++i) {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
    fillers.push_back(fd);
  }
  auto config = ClientConfig(port);
  config.connect_timeout_ms = 300;
  const auto start = Clock::now();
  auto r = MakeClient(config)->Get("/");
  const int64_t elapsed = MillisSince(start);
  ASSERT_FALSE(r.ok());
  // Either the TCP connect or (if the kernel still completed it) the TLS handshake timed out.
  EXPECT_THAT(r, StatusIs(ErrorCode::kDeadlineExceeded)) << r.status().ToString();
  EXPECT_GE(elapsed, 250);
  EXPECT_LT(elapsed, 1500);
  for (int fd : fillers) ::close(fd);
  ::close(listener);
}

TEST(HttpsTest, StopFromHandlerThenWait) {
  std::atomic<HttpsServer*> self{nullptr};
  auto server = StartServer(ServerConfig(), [&](const HttpRequest& r) {
    if (r.target == "/stop") self.load()->Stop();  // on an io thread: must not deadlock
    return Echo(r);
  });
  self = server.get();
  std::thread caller([&] {
    auto config = ClientConfig(server->port());
    config.request_timeout_ms = 2000;
    (void)MakeClient(config)->Get("/stop");  // answered or not: the server is going away
  });
  const auto start = Clock::now();
  server->Wait();
  EXPECT_LT(MillisSince(start), 2000);
  caller.join();
  server.reset();  // destructor after a stop from inside: fine
}

TEST(HttpsTest, HeadResponseHasNoBody) {
  auto server = StartServer(ServerConfig(), [](const HttpRequest&) {
    HttpResponse r;
    r.body = "{\"x\":1}";
    return r;
  });
  RawTls raw;
  ASSERT_TRUE(raw.Connect(server->port()));
  ASSERT_TRUE(raw.Write("HEAD / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"));
  bool closed = false;
  std::string out = raw.ReadUntilClosed(3000, &closed);
  EXPECT_TRUE(closed);
  EXPECT_NE(out.find("Content-Length: 7\r\n"), std::string::npos) << out;
  EXPECT_EQ(out.substr(out.size() - 4), "\r\n\r\n") << out;
}

}  // namespace
}  // namespace signum::server

// HTTPS transport: Asio + OpenSSL for TLS, Beast only for parsing requests.
//
// Design notes
// - One shared_ptr<Session> per TCP connection; every operation of a session runs on its own
//   strand (the socket's executor), so a session never needs a lock. io_threads threads run the
//   io_context; the handler runs synchronously on one of them inside the session's strand (it may
//   block on the HSM; other connections keep being served by the other threads).
// - Timeouts use one steady_timer per session with a generation counter (stale expirations are
//   ignored). While reading a request (or waiting idle for one) an expiry *cancels* the socket's
//   pending operations instead of closing it, so that the completion handler can still answer
//   408 (when part of a request arrived) and send a TLS close_notify; a short grace timer then
//   closes the socket outright in case the cancellation raced with an already-queued completion.
//   During the handshake, writes and the closing handshake an expiry closes the socket.
//   Timeouts: handshake_timeout_ms for the TLS handshake; request_timeout_ms from the first byte
//   of a request to its last (a total, so a slow-loris trickle does not extend it), for writing
//   a response, and for the first request of a new connection to start; idle_timeout_ms between
//   requests on a kept-alive connection. The handler itself is not timed.
// - Closing is a lingering close: close_notify, TCP half-close, then input is drained until the
//   client closes (bounded by kShutdownTimeout), so an early answer (413 while the body is still
//   coming) is not destroyed by a TCP reset.
// - Responses are formatted into one contiguous string and written with a single async_write
//   (one TLS record for small responses; Beast's serializer would produce header and body
//   records separately over asio::ssl::stream, and would pull in http/write.hpp).
// - max_connections: a connection accepted beyond the limit is closed immediately, before the
//   TLS handshake (no 503: answering would cost a handshake exactly when we are overloaded). The
//   client sees the TCP connection closed/reset, which HttpsClient reports as kUnavailable.
//   max_connections_per_source applies the same per source address, so idle connections from one
//   address cannot lock everyone else out; and a connection that sends no byte within
//   pre_handshake_timeout_ms is closed (waiting for readability costs no TLS state).
// - Client certificates: when client_ca_file is set the server requests one (SSL_VERIFY_PEER
//   without FAIL_IF_NO_PEER_CERT, because token users have none). A certificate that does not
//   chain to client_ca_file makes the handshake fail (OpenSSL's default verify callback), rather
//   than being silently ignored: a client that sends a certificate expects it to count.
#include "https_server.h"
#include "signum/core/encoding.h"
#include "signum/core/crypto.h"
#include "signum/core/tls_files.h"

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <exception>
#include <limits>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <utility>

#include "signum/core/log.h"

// GCC 12 reports -Wmaybe-uninitialized inside Beast's parser (boost::optional) when it is
// inlined here, notably with sanitizers; a known false positive in a SYSTEM header.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <boost/asio/basic_waitable_timer.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/status.hpp>
#include <boost/beast/http/string_body.hpp>
#pragma GCC diagnostic pop

namespace signum::server {
namespace {

namespace asio = boost::asio;
namespace ssl = boost::asio::ssl;
namespace beast = boost::beast;
namespace http = boost::beast::http;
using tcp = boost::asio::ip::tcp;
using SysError = boost::system::error_code;
// Concrete executor types instead of any_io_executor: much less template instantiation.
using IoExecutor = asio::io_context::executor_type;
using Strand = asio::strand<IoExecutor>;
using Socket = asio::basic_stream_socket<tcp, Strand>;  // a session's socket lives on its strand
using Timer = asio::basic_waitable_timer<std::chrono::steady_clock,
                                         asio::wait_traits<std::chrono::steady_clock>, Strand>;
using Acceptor = asio::basic_socket_acceptor<tcp, IoExecutor>;
using IoTimer =
    asio::basic_waitable_timer<std::chrono::steady_clock,
                               asio::wait_traits<std::chrono::steady_clock>, IoExecutor>;
using Resolver = asio::ip::basic_resolver<tcp, IoExecutor>;
using std::chrono::milliseconds;

constexpr size_t kReadChunk = 16 * 1024;
// After a soft (cancelling) timeout, how long the completion may take before a hard close.
constexpr milliseconds kCancelGrace{1000};
// Upper bound for the TLS closing handshake (close_notify, waiting for the peer's).
constexpr milliseconds kShutdownTimeout{1000};

// TLS 1.2 suites: forward secrecy and AEAD only (Mozilla "intermediate" without DHE). TLS 1.3
// suites are OpenSSL's defaults, which are all fine.
constexpr const char* kTls12Ciphers =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";

constexpr unsigned char kSessionIdContext[] = "signum-server";


std::string EndpointString(const asio::ip::address& address, uint16_t port) {
  if (address.is_v6()) return "[" + address.to_string() + "]:" + std::to_string(port);
  return address.to_string() + ":" + std::to_string(port);
}

std::string JsonEscape(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned>(c));
          out += buf;
        } else {
          out += c;
        }
    }
  }
  return out;
}

HttpResponse JsonError(int status, std::string_view code, std::string_view message) {
  HttpResponse r;
  r.status = status;
  r.content_type = "application/json";
  r.body = "{\"error\":{\"code\":\"" + JsonEscape(code) + "\",\"message\":\"" +
           JsonEscape(message) + "\"}}";
  return r;
}

// Serialises a response: status line, Server, Content-Type, Content-Length, Connection, extra
// headers (framing headers from the handler are ignored), body (not for HEAD).
std::string FormatResponse(HttpResponse resp, unsigned version, bool keep_alive,
                           bool head_request = false) {
  if (resp.status < 200 || resp.status > 599) {
    resp = JsonError(500, "INTERNAL",
                     "handler returned invalid HTTP status " + std::to_string(resp.status));
  }
  const auto status = static_cast<http::status>(resp.status);
  beast::string_view reason = http::obsolete_reason(status);
  if (reason.starts_with('<')) reason = {};  // "<unknown-status>"
  std::string out;
  out.reserve(256 + resp.body.size());
  out += version == 10 ? "HTTP/1.0 " : "HTTP/1.1 ";
  out += std::to_string(resp.status);
  out += ' ';
  out.append(reason.data(), reason.size());
  out += "\r\nServer: signum-server\r\n";
  if (!resp.content_type.empty() && IsSafeHttpFieldValue(resp.content_type)) {
    out += "Content-Type: " + resp.content_type + "\r\n";
  }
  const bool no_body = resp.status == 204 || resp.status == 304;
  if (!no_body) out += "Content-Length: " + std::to_string(resp.body.size()) + "\r\n";
  if (!keep_alive) {
    out += "Connection: close\r\n";
  } else if (version == 10) {
    out += "Connection: keep-alive\r\n";
  }
  for (const auto& [name, value] : resp.headers) {
    const std::string lower = AsciiLower(name);
    if (lower == "content-length" || lower == "transfer-encoding" || lower == "connection" ||
        lower == "server" || lower == "content-type") {
      continue;
    }
    if (!IsHttpToken(name) || !IsSafeHttpFieldValue(value)) continue;
    out += name + ": " + value + "\r\n";
  }
  out += "\r\n";
  if (!no_body && !head_request) out += resp.body;
  return out;
}

bool IsHttpParseError(const SysError& ec) {
  return ec.category() == beast::http::make_error_code(http::error::bad_method).category();
}

}  // namespace

class HttpsServer::Impl {
 public:
  class Session;

  Impl(const HttpsServerConfig& config, HttpHandler handler)
      : config_(config),
        handler_(std::move(handler)),
        ssl_ctx_(ssl::context::tls_server),
        acceptor_(ioc_),
        accept_retry_timer_(ioc_),
        work_(asio::make_work_guard(ioc_)) {}

  ~Impl() {
    // Pending handlers (holding sessions) are destroyed with the io_context; sessions unregister
    // themselves, which needs mu_ and sessions_ alive: they are declared before ioc_.
    Stop();
  }

  Status InitTls();
  Status Bind();
  void Start();
  void Stop();
  void Wait();
  uint16_t port() const { return port_; }

  const HttpsServerConfig& config() const { return config_; }
  bool stopping() const { return stopping_; }
  HttpResponse CallHandler(const HttpRequest& request) const;
  void Unregister(Session* session, const std::string& source);

 private:
  void DoAccept();
  void OnAccept(const SysError& ec, Socket socket);
  bool OnIoThread() const;
  void RequestStop();
  void FinishStop();

  const HttpsServerConfig config_;
  const HttpHandler handler_;
  uint16_t port_ = 0;

  std::mutex mu_;
  std::condition_variable cv_;
  bool started_ = false;                                           // guarded by mu_
  bool stop_requested_ = false;                                    // guarded by mu_
  bool stopped_ = false;                                           // guarded by mu_
  std::unordered_map<Session*, std::weak_ptr<Session>> sessions_;  // guarded by mu_
  std::unordered_map<std::string, size_t> sessions_per_source_;     // guarded by mu_
  std::atomic<bool> stopping_{false};
  std::mutex finish_mu_;  // serialises FinishStop

  ssl::context ssl_ctx_;
  asio::io_context ioc_;
  Acceptor acceptor_;
  IoTimer accept_retry_timer_;
  asio::executor_work_guard<asio::io_context::executor_type> work_;
  std::vector<std::thread> threads_;
};

class HttpsServer::Impl::Session : public std::enable_shared_from_this<Session> {
 public:
  Session(Impl* server, Socket socket, std::string peer, std::string source, ssl::context& ctx)
      : server_(server),
        config_(server->config()),
        stream_(std::move(socket), ctx),
        timer_(stream_.get_executor()),
        peer_(std::move(peer)),
        source_(std::move(source)) {}

  ~Session() { server_->Unregister(this, source_); }

  void Start() {
    asio::dispatch(stream_.get_executor(), [self = shared_from_this()] { self->DoHandshake(); });
  }

  // Only called by Stop() once no io thread runs any more.
  void ForceClose() { CloseSocket(); }

 private:
  enum class Phase { kHandshake, kIdle, kReading, kWriting, kClosing };

  void ArmTimer(milliseconds timeout) {
    const uint64_t generation = ++timer_generation_;
    timer_.expires_after(timeout);
    timer_.async_wait([self = shared_from_this(), generation](const SysError& ec) {
      if (ec || generation != self->timer_generation_) return;
      self->OnTimer();
    });
  }

  void DisarmTimer() {
    ++timer_generation_;
    timer_.cancel();
  }

  void OnTimer() {
    if (closed_) return;
    if ((phase_ == Phase::kIdle || phase_ == Phase::kReading) && !timed_out_) {
      // Soft timeout: the pending read completes with operation_aborted and decides (408 or a
      // quiet close with close_notify).
      timed_out_ = true;
      SysError ignored;
      stream_.lowest_layer().cancel(ignored);
      ArmTimer(kCancelGrace);
      return;
    }
    CloseSocket();
  }

  void CloseSocket() {
    if (closed_) return;
    closed_ = true;
    DisarmTimer();
    SysError ignored;
    stream_.lowest_layer().shutdown(tcp::socket::shutdown_both, ignored);
    stream_.lowest_layer().close(ignored);
  }

  // Waits (at most pre_handshake_timeout_ms) for the client's first byte, then handshakes.
  void DoHandshake() {
    phase_ = Phase::kHandshake;
    // The handshake timeout is the total; the pre-handshake deadline can only be shorter.
    ArmTimer(milliseconds(std::min(config_.pre_handshake_timeout_ms, config_.handshake_timeout_ms)));
    stream_.next_layer().async_wait(Socket::wait_read,
                                    [self = shared_from_this()](const SysError& ec) {
                                      if (self->closed_) return;
                                      if (ec) {
                                        self->CloseSocket();
                                        return;
                                      }
                                      self->ArmTimer(
                                          milliseconds(self->config_.handshake_timeout_ms));
                                      self->stream_.async_handshake(
                                          ssl::stream_base::server,
                                          [self](const SysError& e) { self->OnHandshake(e); });
                                    });
  }

  void OnHandshake(const SysError& ec) {
    DisarmTimer();
    if (closed_) return;
    if (ec) {
      SIGNUM_LOG_DEBUG("https", "TLS handshake with " << peer_ << " failed: " << ec.message());
      const long verify_result = SSL_get_verify_result(stream_.native_handle());
      if (verify_result != X509_V_OK && config_.on_client_certificate_failure) {
        config_.on_client_certificate_failure(peer_,
                                              X509_verify_cert_error_string(verify_result));
      }
      CloseSocket();
      return;
    }
    ExtractClientCertificate();
    WaitForRequest();
  }

  void ExtractClientCertificate() {
    if (config_.client_ca_file.empty()) return;
    SSL* ssl = stream_.native_handle();
    X509* cert = SSL_get0_peer_certificate(ssl);
    if (cert == nullptr || SSL_get_verify_result(ssl) != X509_V_OK) return;
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int md_len = 0;
    if (X509_digest(cert, EVP_sha256(), md, &md_len) != 1) {
      ERR_clear_error();
      return;
    }
    static constexpr char kHex[] = "0123456789abcdef";
    std::string hex;
    hex.reserve(md_len * 2);
    for (unsigned int i = 0; i < md_len; ++i) {
      hex += kHex[md[i] >> 4];
      hex += kHex[md[i] & 0xf];
    }
    std::string subject;
    if (BIO* bio = BIO_new(BIO_s_mem())) {
      if (X509_NAME_print_ex(bio, X509_get_subject_name(cert), 0, XN_FLAG_RFC2253) >= 0) {
        char* data = nullptr;
        long len = BIO_get_mem_data(bio, &data);
        if (len > 0) subject.assign(data, static_cast<size_t>(len));
      }
      BIO_free(bio);
    }
    ERR_clear_error();
    client_cert_sha256_ = std::move(hex);
    client_cert_subject_ = std::move(subject);
  }

  // Waits (idle) for the first byte of the next request, unless pipelined bytes are buffered.
  void WaitForRequest() {
    timed_out_ = false;
    if (buffer_.size() > 0) {
      ReadRequest();
      return;
    }
    phase_ = Phase::kIdle;
    // A fresh connection gets request_timeout to start its first request; between requests the
    // keep-alive idle limit applies.
    ArmTimer(milliseconds(first_request_ ? config_.request_timeout_ms : config_.idle_timeout_ms));
    stream_.async_read_some(
        buffer_.prepare(kReadChunk),
        [self = shared_from_this()](const SysError& ec, size_t n) { self->OnFirstBytes(ec, n); });
  }

  void OnFirstBytes(const SysError& ec, size_t n) {
    if (closed_) return;
    DisarmTimer();
    if (timed_out_) {  // idle timeout: close politely
      if (n > 0) buffer_.commit(n);
      GracefulClose();
      return;
    }
    if (ec) {  // the client went away
      CloseSocket();
      return;
    }
    buffer_.commit(n);
    ReadRequest();
  }

  void ReadRequest() {
    phase_ = Phase::kReading;
    ArmTimer(milliseconds(config_.request_timeout_ms));
    parser_.emplace();
    parser_->header_limit(static_cast<std::uint32_t>(
        std::min<size_t>(config_.max_header_bytes, std::numeric_limits<std::uint32_t>::max())));
    parser_->body_limit(config_.max_body_bytes);
    http::async_read_header(
        stream_, buffer_, *parser_,
        [self = shared_from_this()](const SysError& ec, size_t) { self->OnHeader(ec); });
  }

  void OnHeader(const SysError& ec) {
    if (closed_) return;
    if (ec || timed_out_) {
      OnReadError(ec);
      return;
    }
    const auto& req = parser_->get();
    auto expect = req.find(http::field::expect);
    if (expect != req.end() && req.version() >= 11 &&
        AsciiLower(std::string_view(expect->value().data(), expect->value().size())) == "100-continue" &&
        !parser_->is_done()) {
      static constexpr char kContinue[] = "HTTP/1.1 100 Continue\r\n\r\n";
      asio::async_write(stream_, asio::buffer(kContinue, sizeof kContinue - 1),
                        [self = shared_from_this()](const SysError& ec, size_t) {
                          if (self->closed_) return;
                          if (ec || self->timed_out_) {
                            self->OnReadError(ec);
                            return;
                          }
                          self->ReadBody();
                        });
      return;
    }
    ReadBody();
  }

  void ReadBody() {
    http::async_read(stream_, buffer_, *parser_,
                     [self = shared_from_this()](const SysError& ec, size_t) { self->OnRead(ec); });
  }

  void OnRead(const SysError& ec) {
    if (closed_) return;
    if (ec || timed_out_) {
      OnReadError(ec);
      return;
    }
    DisarmTimer();
    HandleRequest();
  }

  void OnReadError(const SysError& ec) {
    DisarmTimer();
    if (timed_out_) {
      // Some of a request arrived (we only get here after its first byte), then the client
      // stalled: tell it, then close.
      SendFinal(JsonError(
          408, "REQUEST_TIMEOUT",
          "request not received within " + std::to_string(config_.request_timeout_ms) + " ms"));
      return;
    }
    if (ec == http::error::body_limit) {
      SendFinal(
          JsonError(413, "PAYLOAD_TOO_LARGE",
                    "request body exceeds " + std::to_string(config_.max_body_bytes) + " bytes"));
    } else if (ec == http::error::header_limit) {
      SendFinal(JsonError(
          431, "HEADERS_TOO_LARGE",
          "request headers exceed " + std::to_string(config_.max_header_bytes) + " bytes"));
    } else if (ec == http::error::end_of_stream || ec == http::error::partial_message) {
      CloseSocket();  // the client closed the connection
    } else if (IsHttpParseError(ec)) {
      SendFinal(JsonError(400, "BAD_REQUEST", "malformed HTTP request: " + ec.message()));
    } else {
      CloseSocket();  // I/O error: nobody to answer
    }
  }

  void HandleRequest() {
    auto& req = parser_->get();
    HttpRequest request;
    request.method = std::string(req.method_string());
    request.target = std::string(req.target());
    for (const auto& field : req) {
      std::string name =
          AsciiLower(std::string_view(field.name_string().data(), field.name_string().size()));
      std::string value(field.value());
      auto [it, inserted] = request.headers.emplace(std::move(name), value);
      if (!inserted) it->second += ", " + value;  // RFC 9110 5.3: combine repeated fields
    }
    request.body = std::move(req.body());
    request.peer_address = peer_;
    request.client_certificate_sha256_hex = client_cert_sha256_;
    request.client_certificate_subject = client_cert_subject_;
    const bool keep_alive = req.keep_alive() && !server_->stopping();
    const unsigned version = req.version() == 10 ? 10 : 11;
    const bool head = req.method() == http::verb::head;
    parser_.reset();

    HttpResponse response = server_->CallHandler(request);
    Send(std::move(response), version, keep_alive, head);
  }

  // An error response after which the connection is closed.
  void SendFinal(HttpResponse response) { Send(std::move(response), 11, false); }

  void Send(HttpResponse response, unsigned version, bool keep_alive, bool head = false) {
    phase_ = Phase::kWriting;
    out_ = FormatResponse(std::move(response), version, keep_alive, head);
    ArmTimer(milliseconds(config_.request_timeout_ms));
    asio::async_write(stream_, asio::buffer(out_),
                      [self = shared_from_this(), keep_alive](const SysError& ec, size_t) {
                        self->OnWrite(ec, keep_alive);
                      });
  }

  void OnWrite(const SysError& ec, bool keep_alive) {
    if (closed_) return;
    DisarmTimer();
    out_.clear();
    out_.shrink_to_fit();
    if (ec) {
      CloseSocket();
      return;
    }
    if (!keep_alive) {
      GracefulClose();
      return;
    }
    first_request_ = false;
    WaitForRequest();
  }

  // Lingering close: send close_notify (without waiting for the peer's), half-close TCP, then
  // read and discard whatever the client still sends until it closes or kShutdownTimeout passes.
  // Closing a socket with unread input would reset the connection, and the reset can destroy a
  // response (e.g. 413 sent while the client is still writing the body) before it is read.
  void GracefulClose() {
    phase_ = Phase::kClosing;
    ArmTimer(kShutdownTimeout);
    // Tell OpenSSL the peer's close_notify is in, so SSL_shutdown only sends ours.
    SSL_set_shutdown(stream_.native_handle(), SSL_RECEIVED_SHUTDOWN);
    stream_.async_shutdown([self = shared_from_this()](const SysError& ec) {
      if (self->closed_) return;
      if (ec) {
        self->CloseSocket();
        return;
      }
      SysError ignored;
      self->stream_.lowest_layer().shutdown(tcp::socket::shutdown_send, ignored);
      self->Drain();
    });
  }

  void Drain() {
    buffer_.clear();
    stream_.next_layer().async_read_some(buffer_.prepare(kReadChunk),
                                         [self = shared_from_this()](const SysError& ec, size_t) {
                                           if (self->closed_) return;
                                           if (ec) {
                                             self->CloseSocket();  // EOF: the client has closed too
                                             return;
                                           }
                                           self->Drain();
                                         });
  }

  Impl* const server_;
  const HttpsServerConfig& config_;
  ssl::stream<Socket> stream_;
  Timer timer_;
  uint64_t timer_generation_ = 0;
  const std::string peer_;
  const std::string source_;  // the peer's address, for max_connections_per_source
  Phase phase_ = Phase::kHandshake;
  bool timed_out_ = false;
  bool closed_ = false;
  bool first_request_ = true;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  std::string out_;
  std::optional<std::string> client_cert_sha256_;
  std::optional<std::string> client_cert_subject_;
};

HttpResponse HttpsServer::Impl::CallHandler(const HttpRequest& request) const {
  try {
    return handler_(request);
  } catch (const std::exception& e) {
    // The exception's text stays in the server's log: it may describe internals.
    SIGNUM_LOG_ERROR("https", "handler threw on " << request.method << " " << request.target
                                                  << " from " << request.peer_address << ": "
                                                  << e.what());
    return JsonError(500, "INTERNAL", "internal error");
  } catch (...) {
    SIGNUM_LOG_ERROR(
        "https", "handler threw a non-exception on " << request.method << " " << request.target);
    return JsonError(500, "INTERNAL", "internal error");
  }
}

Status HttpsServer::Impl::InitTls() {
  SSL_CTX* ctx = ssl_ctx_.native_handle();
  ERR_clear_error();
  RefusePassphrases(ctx);
  if (SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1) {
    return InternalError("cannot set minimum TLS version: " + DrainOpenSslErrors());
  }
  SSL_CTX_set_options(
      ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_SSLv2 | SSL_OP_NO_SSLv3);
  if (SSL_CTX_set_cipher_list(ctx, kTls12Ciphers) != 1) {
    return InternalError("cannot set TLS 1.2 cipher list: " + DrainOpenSslErrors());
  }
  SIGNUM_RETURN_IF_ERROR(UseCertificateAndKey(ctx, "server", config_.certificate_chain_file,
                                              config_.private_key_file));
  if (!config_.client_ca_file.empty()) {
    SIGNUM_RETURN_IF_ERROR(CheckReadableFile("client CA", config_.client_ca_file));
    if (SSL_CTX_load_verify_locations(ctx, config_.client_ca_file.c_str(), nullptr) != 1) {
      return InvalidArgumentError("cannot load client CA certificates from " +
                                  config_.client_ca_file + ": " + DrainOpenSslErrors());
    }
    // The CA names sent in CertificateRequest, so clients pick a matching certificate.
    STACK_OF(X509_NAME)* names = SSL_load_client_CA_file(config_.client_ca_file.c_str());
    if (names == nullptr) {
      return InvalidArgumentError("no CA certificate in " + config_.client_ca_file + ": " +
                                  DrainOpenSslErrors());
    }
    SSL_CTX_set_client_CA_list(ctx, names);
    // Request, don't require: bearer-token clients have no certificate.
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
  }
  // Needed for session resumption when client certificates are requested.
  SSL_CTX_set_session_id_context(ctx, kSessionIdContext, sizeof kSessionIdContext - 1);
  ERR_clear_error();
  return Status::Ok();
}

Status HttpsServer::Impl::Bind() {
  SysError ec;
  asio::ip::address address = asio::ip::make_address(config_.listen_address, ec);
  if (ec) {
    // Not a literal address: resolve a host name such as "localhost".
    Resolver resolver(ioc_);
    auto results = resolver.resolve(config_.listen_address, std::to_string(config_.port),
                                    tcp::resolver::passive, ec);
    if (ec || results.empty()) {
      return InvalidArgumentError("invalid listen address '" + config_.listen_address +
                                  "': " + (ec ? ec.message() : "no address"));
    }
    address = results.begin()->endpoint().address();
  }
  const std::string where = EndpointString(address, config_.port);
  const tcp::endpoint endpoint(address, config_.port);
  acceptor_.open(endpoint.protocol(), ec);
  if (ec) return UnavailableError("cannot listen on " + where + ": " + ec.message());
  acceptor_.set_option(asio::socket_base::reuse_address(true), ec);
  acceptor_.bind(endpoint, ec);
  if (ec) return UnavailableError("cannot bind " + where + ": " + ec.message());
  acceptor_.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) return UnavailableError("cannot listen on " + where + ": " + ec.message());
  port_ = acceptor_.local_endpoint(ec).port();
  if (ec) return UnavailableError("cannot read bound port of " + where + ": " + ec.message());
  return Status::Ok();
}

void HttpsServer::Impl::Start() {
  {
    std::lock_guard lock(mu_);
    if (started_ || stop_requested_) return;
    started_ = true;
  }
  DoAccept();
  const size_t n = std::max<size_t>(1, config_.io_threads);
  threads_.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    threads_.emplace_back([this] {
      for (;;) {
        try {
          ioc_.run();
          return;
        } catch (...) {
          // A handler threw past every catch: keep serving the other connections.
        }
      }
    });
  }
}

void HttpsServer::Impl::DoAccept() {
  acceptor_.async_accept(asio::make_strand(ioc_), [this](const SysError& ec, Socket socket) {
    OnAccept(ec, std::move(socket));
  });
}

void HttpsServer::Impl::OnAccept(const SysError& ec, Socket socket) {
  if (ec == asio::error::operation_aborted || !acceptor_.is_open() || stopping_) return;
  if (ec) {
    // EMFILE, ENFILE, ENOBUFS...: back off a little instead of spinning.
    SIGNUM_LOG_WARN("https", "accept failed: " << ec.message());
    accept_retry_timer_.expires_after(milliseconds(50));
    accept_retry_timer_.async_wait([this](const SysError& e) {
      if (!e && !stopping_) DoAccept();
    });
    return;
  }
  SysError ignored;
  std::shared_ptr<Session> session;
  const auto remote = socket.remote_endpoint(ignored);
  std::string source = remote.address().to_string();
  const char* refused = nullptr;
  {
    std::lock_guard lock(mu_);
    size_t& from_source = sessions_per_source_[source];
    if (sessions_.size() >= config_.max_connections) {
      refused = "max_connections";
    } else if (config_.max_connections_per_source > 0 &&
               from_source >= config_.max_connections_per_source) {
      refused = "max_connections_per_source";
    } else {
      ++from_source;
      socket.set_option(tcp::no_delay(true), ignored);
      session = std::make_shared<Session>(this, std::move(socket),
                                          EndpointString(remote.address(), remote.port()), source,
                                          ssl_ctx_);
      sessions_.emplace(session.get(), session);
    }
    if (from_source == 0) sessions_per_source_.erase(source);
  }
  if (session) {
    session->Start();
  } else {
    SIGNUM_LOG_DEBUG("https", "refusing connection from " << source << ": " << refused
                                                          << " reached");
    socket.close(ignored);  // over a connection limit: refuse
  }
  DoAccept();
}

void HttpsServer::Impl::Unregister(Session* session, const std::string& source) {
  std::lock_guard lock(mu_);
  sessions_.erase(session);
  auto it = sessions_per_source_.find(source);
  if (it != sessions_per_source_.end() && --it->second == 0) sessions_per_source_.erase(it);
}

bool HttpsServer::Impl::OnIoThread() const {
  const auto self = std::this_thread::get_id();
  return std::any_of(threads_.begin(), threads_.end(),
                     [self](const std::thread& t) { return t.get_id() == self; });
}

void HttpsServer::Impl::RequestStop() {
  std::lock_guard lock(mu_);
  if (stop_requested_) return;
  stop_requested_ = true;
  stopping_ = true;
  ioc_.stop();
  cv_.notify_all();
}

void HttpsServer::Impl::FinishStop() {
  std::lock_guard finish_lock(finish_mu_);
  {
    std::lock_guard lock(mu_);
    if (stopped_) return;
  }
  // Handlers in progress finish first (a handler may be waiting on the HSM).
  for (auto& t : threads_) {
    if (t.joinable()) t.join();
  }
  // No io thread runs now: touching the acceptor and the sessions from here is safe.
  SysError ignored;
  accept_retry_timer_.cancel();
  acceptor_.close(ignored);
  std::vector<std::shared_ptr<Session>> sessions;
  {
    std::lock_guard lock(mu_);
    for (auto& [ptr, weak] : sessions_) {
      if (auto s = weak.lock()) sessions.push_back(std::move(s));
    }
  }
  for (auto& s : sessions) s->ForceClose();
  sessions.clear();  // sessions still referenced by queued handlers die with the io_context
  std::lock_guard lock(mu_);
  stopped_ = true;
  cv_.notify_all();
}

void HttpsServer::Impl::Stop() {
  RequestStop();
  // Called from a handler (an io thread) we cannot join ourselves: Wait() or the destructor,
  // on another thread, completes the stop.
  if (!OnIoThread()) FinishStop();
}

void HttpsServer::Impl::Wait() {
  {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [this] { return stop_requested_; });
  }
  if (!OnIoThread()) FinishStop();
}

Result<std::unique_ptr<HttpsServer>> HttpsServer::Create(const HttpsServerConfig& config,
                                                         HttpHandler handler) {
  if (!handler) return InvalidArgumentError("HTTPS server needs a handler");
  auto impl = std::make_unique<Impl>(config, std::move(handler));
  SIGNUM_RETURN_IF_ERROR(impl->InitTls());
  SIGNUM_RETURN_IF_ERROR(impl->Bind());
  std::unique_ptr<HttpsServer> server(new HttpsServer());
  server->impl_ = std::move(impl);
  return server;
}

HttpsServer::~HttpsServer() {
  if (impl_) impl_->Stop();
}

uint16_t HttpsServer::port() const { return impl_->port(); }
void HttpsServer::Start() { impl_->Start(); }
void HttpsServer::Stop() { impl_->Stop(); }
void HttpsServer::Wait() { impl_->Wait(); }

}  // namespace signum::server

// HTTPS client: synchronous API over Asio's asynchronous operations.
//
// Timeouts: every step (TCP connect, TLS handshake, request write, response read) is started as
// an asynchronous operation on a private io_context and driven with run_one_until(deadline).
// When the deadline passes first, the socket is closed, the pending operation completes with
// operation_aborted, and the call reports kDeadlineExceeded; the connection is discarded. This
// works with asio::ssl::stream whatever the SSL engine is doing (mid-record, mid-handshake)
// because the deadline is enforced outside it. SO_RCVTIMEO/SO_SNDTIMEO would not: Asio's
// synchronous socket operations treat EAGAIN as "poll and retry" and would block forever.
// (beast::tcp_stream's expires_after would work too, but its polymorphic executor and rate
// policies double this file's compile time for nothing we need.)
//
// Requests are formatted by hand into one buffer (one TLS record for small requests); Beast is
// only used to parse responses.
#include "signum/core/encoding.h"
#include "signum/core/https_client.h"
#include "signum/core/crypto.h"
#include "signum/core/files.h"
#include "signum/core/http_request.h"
#include "signum/core/x509.h"
#include "signum/core/tls_files.h"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>

// GCC 12 reports -Wmaybe-uninitialized inside Beast's parser (boost::optional) when it is
// inlined here, notably with sanitizers; a known false positive in a SYSTEM header.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#pragma GCC diagnostic pop

namespace signum {
namespace {

namespace asio = boost::asio;
namespace ssl = boost::asio::ssl;
namespace beast = boost::beast;
namespace http = boost::beast::http;
using tcp = boost::asio::ip::tcp;
using SysError = boost::system::error_code;
// A concrete executor type instead of any_io_executor: less template instantiation.
using Executor = asio::io_context::executor_type;
using Socket = asio::basic_stream_socket<tcp, Executor>;
using Resolver = asio::ip::basic_resolver<tcp, Executor>;
using Stream = ssl::stream<Socket>;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

constexpr size_t kMaxResponseBody = 64 * 1024 * 1024;
constexpr std::uint32_t kMaxResponseHeader = 64 * 1024;



// The server closed (or reset) a connection we were reusing.
bool IsClosedByPeer(const SysError& ec) {
  return ec == asio::error::eof || ec == asio::error::connection_reset ||
         ec == asio::error::broken_pipe || ec == asio::error::connection_aborted ||
         ec == asio::error::not_connected || ec == ssl::error::stream_truncated ||
         ec == http::error::end_of_stream;
}

}  // namespace

class HttpsClient::Impl {
 public:
  explicit Impl(const HttpsClientConfig& config)
      : config_(config), ioc_(1), ctx_(ssl::context::tls_client) {}

  ~Impl() { Close(); }

  Status Init();
  Result<HttpsResult> Request(const std::string& method, const std::string& target,
                              const std::string& body,
                              const std::map<std::string, std::string>& extra_headers);
  void Close();
  uint64_t connections_opened() const { return connections_opened_; }
  const std::string& client_certificate_subject() const { return client_certificate_subject_; }

  // What ExchangeReconnectingOnce (http_request.h) drives.
  bool IsOpen() const { return stream_ != nullptr; }
  bool ConnectionLooksClosed();
  Status Connect();
  Result<HttpsResult> Exchange(const std::string& request, bool* retryable);

 private:
  // Runs the io_context until `done` or `deadline`. On timeout closes the socket (the pending
  // operation completes with operation_aborted) and returns false.
  bool Drive(const bool& done, Clock::time_point deadline);

  const HttpsClientConfig config_;
  std::string endpoint_name_;  // "127.0.0.1:8443", "[::1]:8443"
  std::string verify_name_;
  bool verify_ip_ = false;
  std::string host_header_;
  asio::io_context ioc_;
  ssl::context ctx_;
  std::unique_ptr<Stream> stream_;
  beast::flat_buffer buffer_;
  uint64_t connections_opened_ = 0;
  std::string client_certificate_subject_;
};

Status HttpsClient::Impl::Init() {
  if (config_.host.empty()) return InvalidArgumentError("HTTPS client: empty host");
  SysError ec;
  const auto host_address = asio::ip::make_address(config_.host, ec);
  const bool host_is_v6 = !ec && host_address.is_v6();
  const std::string host_part = host_is_v6 ? "[" + config_.host + "]" : config_.host;
  endpoint_name_ = host_part + ":" + std::to_string(config_.port);
  verify_name_ = config_.server_name.empty() ? config_.host : config_.server_name;
  const auto verify_address = asio::ip::make_address(verify_name_, ec);
  verify_ip_ = !ec;
  // Host names the server we mean (as SNI does), which is server_name when one is given.
  host_header_ = (verify_ip_ && verify_address.is_v6() ? "[" + verify_name_ + "]" : verify_name_) +
                 ":" + std::to_string(config_.port);

  SSL_CTX* ctx = ctx_.native_handle();
  ERR_clear_error();
  RefusePassphrases(ctx);
  if (SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1) {
    return InternalError("cannot set minimum TLS version: " + DrainOpenSslErrors());
  }
  SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION);
  if (config_.ca_file.empty()) {
    if (SSL_CTX_set_default_verify_paths(ctx) != 1) {
      return InternalError("cannot load the system trust store: " + DrainOpenSslErrors());
    }
  } else {
    SIGNUM_RETURN_IF_ERROR(CheckReadableFile("CA", config_.ca_file));
    if (SSL_CTX_load_verify_locations(ctx, config_.ca_file.c_str(), nullptr) != 1) {
      return InvalidArgumentError("cannot load CA certificates from " + config_.ca_file + ": " +
                                  DrainOpenSslErrors());
    }
  }
  SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);

  if (config_.client_certificate_file.empty() != config_.client_key_file.empty()) {
    return InvalidArgumentError(
        "client certificate and client key must be given together (certificate '" +
        config_.client_certificate_file + "', key '" + config_.client_key_file + "')");
  }
  if (!config_.client_certificate_file.empty()) {
    SIGNUM_RETURN_IF_ERROR(UseCertificateAndKey(ctx, "client", config_.client_certificate_file,
                                                config_.client_key_file));
    SIGNUM_ASSIGN_OR_RETURN(std::string pem, ReadFile(config_.client_certificate_file));
    SIGNUM_ASSIGN_OR_RETURN(Certificate certificate, Certificate::FromPem(pem));
    client_certificate_subject_ = certificate.Subject();
  }
  ERR_clear_error();
  return Status::Ok();
}

bool HttpsClient::Impl::Drive(const bool& done, Clock::time_point deadline) {
  ioc_.restart();
  while (!done && ioc_.run_one_until(deadline) > 0) {
  }
  if (done) return true;
  SysError ignored;
  stream_->lowest_layer().close(ignored);
  ioc_.restart();
  ioc_.run();  // lets the aborted operation complete
  return false;
}

void HttpsClient::Impl::Close() {
  if (stream_) {
    SysError ignored;
    stream_->lowest_layer().shutdown(tcp::socket::shutdown_both, ignored);
    stream_->lowest_layer().close(ignored);
    stream_.reset();
  }
  buffer_.clear();
}

// A kept-alive connection on which the server sent something unsolicited (close_notify, FIN,
// RST) is dead: detect it before writing a request into it.
bool HttpsClient::Impl::ConnectionLooksClosed() {
  if (buffer_.size() > 0) return true;
  pollfd p{};
  p.fd = stream_->lowest_layer().native_handle();
  p.events = POLLIN;
  return ::poll(&p, 1, 0) != 0;
}

Status HttpsClient::Impl::Connect() {
  Close();
  // One deadline for the TCP connect and the TLS handshake.
  const Clock::time_point deadline = Clock::now() + milliseconds(config_.connect_timeout_ms);
  SysError ec;
  Resolver resolver(ioc_);
  auto endpoints = resolver.resolve(config_.host, std::to_string(config_.port),
                                    tcp::resolver::numeric_service, ec);
  if (ec) {
    return UnavailableError("cannot connect to " + endpoint_name_ +
                            ": cannot resolve host: " + ec.message());
  }
  stream_ = std::make_unique<Stream>(ioc_, ctx_);
  SSL* ssl = stream_->native_handle();
  if (verify_ip_) {
    // IP literal: verify against the certificate's IP SANs; no SNI (RFC 6066 forbids IPs).
    if (X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), verify_name_.c_str()) != 1) {
      stream_.reset();
      return InvalidArgumentError("invalid IP address to verify: " + verify_name_);
    }
  } else {
    SSL_set_hostflags(ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
    if (SSL_set1_host(ssl, verify_name_.c_str()) != 1 ||
        SSL_set_tlsext_host_name(ssl, verify_name_.c_str()) != 1) {
      stream_.reset();
      return InvalidArgumentError("invalid server name: " + verify_name_);
    }
  }

  bool done = false;
  asio::async_connect(stream_->lowest_layer(), endpoints,
                      [&](const SysError& e, const tcp::endpoint&) {
                        ec = e;
                        done = true;
                      });
  if (!Drive(done, deadline)) {
    Close();
    return DeadlineExceededError("cannot connect to " + endpoint_name_ + ": timed out after " +
                                 std::to_string(config_.connect_timeout_ms) + " ms");
  }
  if (ec) {
    Close();
    return UnavailableError("cannot connect to " + endpoint_name_ + ": " + ec.message());
  }
  stream_->lowest_layer().set_option(tcp::no_delay(true), ec);

  done = false;
  stream_->async_handshake(ssl::stream_base::client, [&](const SysError& e) {
    ec = e;
    done = true;
  });
  if (!Drive(done, deadline)) {
    Close();
    return DeadlineExceededError("TLS handshake with " + endpoint_name_ + " timed out after " +
                                 std::to_string(config_.connect_timeout_ms) + " ms");
  }
  if (ec) {
    const long verify = SSL_get_verify_result(ssl);
    std::string reason = verify != X509_V_OK ? std::string("certificate verify failed: ") +
                                                   X509_verify_cert_error_string(verify)
                                             : ec.message();
    ERR_clear_error();
    Close();
    return UnavailableError("TLS handshake with " + endpoint_name_ + " failed: " + reason);
  }
  ++connections_opened_;
  return Status::Ok();
}

Result<HttpsResult> HttpsClient::Impl::Exchange(const std::string& request, bool* retryable) {
  *retryable = false;
  // One deadline for writing the request and reading the answer.
  const Clock::time_point deadline = Clock::now() + milliseconds(config_.request_timeout_ms);
  const auto timed_out = [&] {
    return DeadlineExceededError("request to " + endpoint_name_ + " timed out after " +
                                 std::to_string(config_.request_timeout_ms) + " ms");
  };

  SysError ec;
  bool done = false;
  asio::async_write(*stream_, asio::buffer(request), [&](const SysError& e, size_t) {
    ec = e;
    done = true;
  });
  if (!Drive(done, deadline)) return timed_out();
  SysError write_error;
  if (ec) {
    if (!IsClosedByPeer(ec)) {
      return UnavailableError("sending request to " + endpoint_name_ + " failed: " + ec.message());
    }
    // The server may have answered early (e.g. 413 before the whole body) and closed: read
    // what it sent before giving up.
    write_error = ec;
  }

  http::response_parser<http::string_body> parser;
  parser.body_limit(kMaxResponseBody);
  parser.header_limit(kMaxResponseHeader);
  done = false;
  http::async_read(*stream_, buffer_, parser, [&](const SysError& e, size_t) {
    ec = e;
    done = true;
  });
  if (!Drive(done, deadline)) return timed_out();
  if (ec) {
    // Nothing of a response arrived: the server closed the connection before reading our
    // request (typically an idle keep-alive connection it had just timed out).
    *retryable = (write_error || IsClosedByPeer(ec)) && !parser.got_some() && buffer_.size() == 0;
    ERR_clear_error();
    if (write_error) {
      return UnavailableError("sending request to " + endpoint_name_ +
                              " failed: " + write_error.message());
    }
    return UnavailableError("reading response from " + endpoint_name_ + " failed: " + ec.message());
  }

  auto& res = parser.get();
  HttpsResult result;
  result.status = static_cast<int>(res.result_int());
  for (const auto& field : res) {
    std::string name =
        AsciiLower(std::string_view(field.name_string().data(), field.name_string().size()));
    std::string value(field.value());
    auto [it, inserted] = result.headers.emplace(std::move(name), value);
    if (!inserted) it->second += ", " + value;
  }
  result.body = std::move(res.body());
  if (!res.keep_alive()) Close();
  return result;
}

Result<HttpsResult> HttpsClient::Impl::Request(
    const std::string& method, const std::string& target, const std::string& body,
    const std::map<std::string, std::string>& extra_headers) {
  SIGNUM_ASSIGN_OR_RETURN(const std::string request,
                          FormatHttpRequest(method, target, host_header_, config_.bearer_token,
                                            body, extra_headers));
  return ExchangeReconnectingOnce(*this, request);
}

#include "https_client_facade.inc"

}  // namespace signum

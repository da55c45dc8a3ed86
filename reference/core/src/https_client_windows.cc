// HTTPS client on Windows: Schannel through SSPI on a Winsock socket, behind the same interface
// and error mapping as https_client.cc (Asio + OpenSSL, which the Windows build does not have).
//
// Why SSPI and not WinHTTP: the server must be checked before a byte of the request (with its
// bearer token) is written. WinHTTP offers that only through WINHTTP_CALLBACK_STATUS_SENDING_REQUEST
// plus closing the request handle inside the callback, which Windows honours but Wine does not
// (it has already built the request and sends it anyway: the Wine suite's trust check caught the
// token arriving at a server with another CA's certificate). Driving Schannel ourselves puts the
// check between the handshake and the first write on every implementation.
//
// Trust. The handshake is run with SCH_CRED_MANUAL_CRED_VALIDATION and the peer's certificate is
// checked here before anything is sent. With a CA file it is the only trust anchor, as on Linux:
// the chain (every certificate in date, intermediates the server sent must be CAs, the last one
// signed by a certificate of the file) and the host against the certificate's subjectAltName
// (iPAddress for an address, dNSName with a left-most wildcard for a name, the CN only without
// dNSName entries), as OpenSSL's X509_check_host / X509_check_ip do. Without one, Windows decides:
// CertGetCertificateChain and the SSL policy with the host name.
//
// Protocol: TLS 1.2 (what Schannel on every supported Windows and Wine's GnuTLS-backed Schannel
// both speak; the server accepts 1.2 and later). HTTP/1.1 with keep-alive: one connection per
// client, re-made once when the server closed an idle one; responses framed by Content-Length or
// chunked transfer coding; requests and responses are bounded in time by the socket timeouts.
#include "signum/core/https_client.h"

#include <winsock2.h>
#include <ws2tcpip.h>
#include <windows.h>
#include <wincrypt.h>
#define SECURITY_WIN32
#include <schannel.h>
#include <security.h>
#include <sspi.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <vector>

#include "signum/core/encoding.h"
#include "signum/core/files.h"
#include "signum/core/http_request.h"
#include "signum/core/windows_error.h"

namespace signum {
namespace {

constexpr size_t kMaxResponseBody = 64 * 1024 * 1024;
constexpr size_t kMaxResponseHeader = 64 * 1024;
// Intermediates a server may put between its certificate and an anchor.
constexpr int kMaxChainDepth = 8;

// Host names are ASCII here (checked by Init).
std::wstring Widen(std::string_view ascii) { return std::wstring(ascii.begin(), ascii.end()); }
std::string Narrow(std::wstring_view wide) {
  std::string out;
  out.reserve(wide.size());
  for (wchar_t c : wide) out += c < 0x80 ? static_cast<char>(c) : '?';
  return out;
}

std::string Hex(long code) {
  char text[16];
  std::snprintf(text, sizeof text, "0x%08lx", static_cast<unsigned long>(code));
  return text;
}

std::string WinsockError(int code) {
  return WindowsErrorText(static_cast<unsigned long>(code), "WSA");
}

struct StoreCloser {
  void operator()(void* store) const { CertCloseStore(static_cast<HCERTSTORE>(store), 0); }
};
using StorePtr = std::unique_ptr<void, StoreCloser>;
struct CertFree {
  void operator()(const CERT_CONTEXT* c) const { CertFreeCertificateContext(c); }
};
using CertPtr = std::unique_ptr<const CERT_CONTEXT, CertFree>;

std::string SubjectOf(const CERT_CONTEXT* cert) {
  char name[512] = {};
  CertNameToStrA(X509_ASN_ENCODING, &cert->pCertInfo->Subject, CERT_X500_NAME_STR, name,
                 sizeof name);
  return name;
}

bool SignedBy(const CERT_CONTEXT* subject, const CERT_CONTEXT* issuer) {
  return CryptVerifyCertificateSignatureEx(
             0, X509_ASN_ENCODING, CRYPT_VERIFY_CERT_SIGN_SUBJECT_CERT,
             const_cast<CERT_CONTEXT*>(subject), CRYPT_VERIFY_CERT_SIGN_ISSUER_CERT,
             const_cast<CERT_CONTEXT*>(issuer), 0, nullptr) != FALSE;
}

bool IsCa(const CERT_CONTEXT* cert) {
  const CERT_EXTENSION* ext = CertFindExtension(
      szOID_BASIC_CONSTRAINTS2, cert->pCertInfo->cExtension, cert->pCertInfo->rgExtension);
  if (ext == nullptr) return false;
  CERT_BASIC_CONSTRAINTS2_INFO info{};
  DWORD size = sizeof info;
  return CryptDecodeObject(X509_ASN_ENCODING, szOID_BASIC_CONSTRAINTS2, ext->Value.pbData,
                           ext->Value.cbData, 0, &info, &size) &&
         info.fCA;
}

// The issuer of cert in store whose signature on cert verifies, if any.
CertPtr FindIssuer(HCERTSTORE store, const CERT_CONTEXT* cert) {
  const CERT_CONTEXT* candidate = nullptr;
  while ((candidate = CertFindCertificateInStore(store, X509_ASN_ENCODING, 0,
                                                 CERT_FIND_SUBJECT_NAME,
                                                 &cert->pCertInfo->Issuer, candidate))) {
    if (!CertCompareCertificate(X509_ASN_ENCODING, candidate->pCertInfo, cert->pCertInfo) &&
        SignedBy(cert, candidate)) {
      return CertPtr(candidate);  // ends the search; the pointer is ours now
    }
  }
  return nullptr;
}

// A certificate's subjectAltName entries (empty without the extension).
struct AltNames {
  std::vector<std::wstring> dns;
  std::vector<Bytes> ip;
};
AltNames AltNamesOf(const CERT_CONTEXT* cert) {
  AltNames names;
  const CERT_EXTENSION* ext = CertFindExtension(
      szOID_SUBJECT_ALT_NAME2, cert->pCertInfo->cExtension, cert->pCertInfo->rgExtension);
  if (ext == nullptr) return names;
  CERT_ALT_NAME_INFO* info = nullptr;
  DWORD size = 0;
  if (!CryptDecodeObjectEx(X509_ASN_ENCODING, X509_ALTERNATE_NAME, ext->Value.pbData,
                           ext->Value.cbData, CRYPT_DECODE_ALLOC_FLAG, nullptr, &info, &size))
    return names;
  for (DWORD i = 0; i < info->cAltEntry; ++i) {
    const CERT_ALT_NAME_ENTRY& entry = info->rgAltEntry[i];
    if (entry.dwAltNameChoice == CERT_ALT_NAME_DNS_NAME && entry.pwszDNSName != nullptr) {
      names.dns.emplace_back(entry.pwszDNSName);
    } else if (entry.dwAltNameChoice == CERT_ALT_NAME_IP_ADDRESS) {
      names.ip.emplace_back(entry.IPAddress.pbData, entry.IPAddress.pbData + entry.IPAddress.cbData);
    }
  }
  LocalFree(info);
  return names;
}

bool DnsNameMatches(std::string pattern, const std::string& host) {
  pattern = AsciiLower(pattern);
  if (pattern == host) return true;
  // "*.example.com" matches one left-most label: "a.example.com", not "example.com" or
  // "a.b.example.com"; and like OpenSSL, a wildcard needs two labels after it ("*.com" is none).
  if (pattern.size() > 2 && pattern.compare(0, 2, "*.") == 0 &&
      pattern.find('.', 2) != std::string::npos) {
    const size_t dot = host.find('.');
    return dot != std::string::npos && dot > 0 && host.substr(dot) == pattern.substr(1);
  }
  return false;
}

// The host the client connected to is the one the certificate names (RFC 6125, as OpenSSL's
// X509_check_host / X509_check_ip on Linux).
Status CheckHostName(const CERT_CONTEXT* cert, const std::string& host) {
  const AltNames names = AltNamesOf(cert);
  in_addr v4{};
  in6_addr v6{};
  Bytes address;
  if (inet_pton(AF_INET, host.c_str(), &v4) == 1) {
    const auto* b = reinterpret_cast<const uint8_t*>(&v4);
    address.assign(b, b + 4);
  } else if (inet_pton(AF_INET6, host.c_str(), &v6) == 1) {
    const auto* b = reinterpret_cast<const uint8_t*>(&v6);
    address.assign(b, b + 16);
  }
  if (!address.empty()) {
    for (const Bytes& ip : names.ip)
      if (ip == address) return Status::Ok();
    return UnavailableError("server certificate " + SubjectOf(cert) +
                            " does not name the address " + host +
                            " (no matching subjectAltName iPAddress)");
  }
  const std::string lower = AsciiLower(host);
  for (const std::wstring& dns : names.dns)
    if (DnsNameMatches(Narrow(dns), lower)) return Status::Ok();
  if (names.dns.empty()) {
    char cn[256] = {};
    CertGetNameStringA(cert, CERT_NAME_ATTR_TYPE, 0, const_cast<char*>(szOID_COMMON_NAME), cn,
                       sizeof cn);
    if (DnsNameMatches(cn, lower)) return Status::Ok();
  }
  return UnavailableError("server certificate " + SubjectOf(cert) + " does not name the host " +
                          host);
}

// A leaf that lists extended key usages must allow TLS server authentication (or any usage).
Status CheckServerUsage(const CERT_CONTEXT* leaf) {
  const CERT_EXTENSION* ext = CertFindExtension(
      szOID_ENHANCED_KEY_USAGE, leaf->pCertInfo->cExtension, leaf->pCertInfo->rgExtension);
  if (ext == nullptr) return Status::Ok();
  CERT_ENHKEY_USAGE* usage = nullptr;
  DWORD size = 0;
  if (!CryptDecodeObjectEx(X509_ASN_ENCODING, X509_ENHANCED_KEY_USAGE, ext->Value.pbData,
                           ext->Value.cbData, CRYPT_DECODE_ALLOC_FLAG, nullptr, &usage, &size))
    return UnavailableError("server certificate: unreadable extended key usage");
  bool allowed = false;
  for (DWORD i = 0; i < usage->cUsageIdentifier; ++i) {
    const std::string oid = usage->rgpszUsageIdentifier[i];
    allowed = allowed || oid == szOID_PKIX_KP_SERVER_AUTH || oid == "2.5.29.37.0";
  }
  LocalFree(usage);
  if (allowed) return Status::Ok();
  return UnavailableError("server certificate " + SubjectOf(leaf) +
                          " is not for TLS servers (its extended key usage lacks serverAuth)");
}

}  // namespace

class HttpsClient::Impl {
 public:
  explicit Impl(const HttpsClientConfig& config) : config_(config) {}
  ~Impl() {
    Close();
    if (have_credentials_) FreeCredentialsHandle(&credentials_);
  }

  Status Init();
  Result<HttpsResult> Request(const std::string& method, const std::string& target,
                              const std::string& body,
                              const std::map<std::string, std::string>& extra_headers);
  void Close();
  uint64_t connections_opened() const { return connections_opened_; }
  const std::string& client_certificate_subject() const { return client_certificate_subject_; }

  // What ExchangeReconnectingOnce (http_request.h) drives.
  bool IsOpen() const { return socket_ != INVALID_SOCKET; }
  bool ConnectionLooksClosed();
  Status Connect();
  Result<HttpsResult> Exchange(const std::string& request, bool* retryable);

 private:
  Status Handshake();
  // The server's certificate, checked before anything is sent (file comment).
  Status CheckServerCertificate(const CERT_CONTEXT* leaf);
  Status CheckWithWindowsTrust(const CERT_CONTEXT* leaf);
  Status SendAll(const std::string& plaintext);
  // Decrypts more of the server's data into plain_: true, or false once the peer has closed.
  Result<bool> ReadMore();

  const HttpsClientConfig config_;
  std::string endpoint_name_;
  StorePtr anchors_;  // the CA file's certificates; null = Windows' own trust
  uint64_t connections_opened_ = 0;
  std::string client_certificate_subject_;

  SOCKET socket_ = INVALID_SOCKET;
  CredHandle credentials_{};
  bool have_credentials_ = false;
  CtxtHandle context_{};
  bool have_context_ = false;
  SecPkgContext_StreamSizes sizes_{};
  std::string cipher_;  // received, not yet decrypted
  std::string plain_;   // decrypted, not yet consumed
  // How the last read or write ended: the server closed the connection (FIN, RST or
  // close_notify), and whether that close was a TLS close_notify.
  bool peer_closed_ = false;
  bool close_notified_ = false;
};

Status HttpsClient::Impl::Init() {
  if (config_.host.empty()) return InvalidArgumentError("HTTPS client: empty host");
  if (!IsValidRequestTarget(config_.host) ||
      std::any_of(config_.host.begin(), config_.host.end(),
                  [](char c) { return static_cast<unsigned char>(c) >= 0x80; }))
    return InvalidArgumentError("HTTPS client: invalid host '" + config_.host + "'");
  endpoint_name_ = config_.host + ":" + std::to_string(config_.port);
  if (!config_.server_name.empty() && config_.server_name != config_.host) {
    return InvalidArgumentError(
        "HTTPS client on Windows: a server name other than the host (" + config_.server_name +
        ") is not supported");
  }
  if (!config_.client_certificate_file.empty() || !config_.client_key_file.empty()) {
    return InvalidArgumentError(
        "client-certificate authentication to signum-server is not supported on Windows yet "
        "(Schannel needs the key in a Windows key store); use an API token (SIGNUM_TOKEN_FILE)");
  }
  if (!config_.bearer_token.empty() && !IsSafeHttpFieldValue(config_.bearer_token))
    return InvalidArgumentError("invalid bearer token");
  if (!config_.ca_file.empty()) {
    SIGNUM_ASSIGN_OR_RETURN(std::string pem, ReadFile(config_.ca_file));
    auto blocks = PemDecodeAll(pem, "CERTIFICATE");
    if (!blocks.ok())
      return blocks.status().WithContext("CA certificates in " + config_.ca_file);
    if (blocks->empty())
      return InvalidArgumentError("no PEM certificate in CA file " + config_.ca_file);
    anchors_.reset(CertOpenStore(CERT_STORE_PROV_MEMORY, 0, 0, 0, nullptr));
    if (!anchors_) return InternalError("CertOpenStore failed: " + std::to_string(GetLastError()));
    for (const Bytes& der : *blocks) {
      if (!CertAddEncodedCertificateToStore(anchors_.get(), X509_ASN_ENCODING, der.data(),
                                            static_cast<DWORD>(der.size()),
                                            CERT_STORE_ADD_REPLACE_EXISTING, nullptr)) {
        return InvalidArgumentError("cannot load CA certificates from " + config_.ca_file +
                                    ": a certificate does not parse (error " +
                                    std::to_string(GetLastError()) + ")");
      }
    }
  }
  WSADATA data{};
  if (const int rc = WSAStartup(MAKEWORD(2, 2), &data); rc != 0)
    return InternalError("WSAStartup failed: " + WinsockError(rc));
  SCHANNEL_CRED cred{};
  cred.dwVersion = SCHANNEL_CRED_VERSION;
  cred.grbitEnabledProtocols = SP_PROT_TLS1_2_CLIENT;
  // The certificate is ours to check, before anything is sent; no client certificate.
  cred.dwFlags = SCH_CRED_MANUAL_CRED_VALIDATION | SCH_CRED_NO_DEFAULT_CREDS;
  wchar_t package[] = UNISP_NAME_W;
  const SECURITY_STATUS rc =
      AcquireCredentialsHandleW(nullptr, package, SECPKG_CRED_OUTBOUND, nullptr, &cred, nullptr,
                                nullptr, &credentials_, nullptr);
  if (rc != SEC_E_OK) return InternalError("Schannel credentials: " + Hex(rc));
  have_credentials_ = true;
  return Status::Ok();
}

void HttpsClient::Impl::Close() {
  if (have_context_) {
    DeleteSecurityContext(&context_);
    have_context_ = false;
  }
  context_ = {};
  if (socket_ != INVALID_SOCKET) {
    ::closesocket(socket_);
    socket_ = INVALID_SOCKET;
  }
  cipher_.clear();
  plain_.clear();
}

Status HttpsClient::Impl::Connect() {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_protocol = IPPROTO_TCP;
  addrinfo* found = nullptr;
  if (const int rc = getaddrinfo(config_.host.c_str(), std::to_string(config_.port).c_str(),
                                 &hints, &found);
      rc != 0) {
    return UnavailableError("cannot connect to " + endpoint_name_ + ": " + WinsockError(rc));
  }
  std::string last_error = "no address";
  bool timed_out = false;
  for (addrinfo* a = found; a != nullptr; a = a->ai_next) {
    SOCKET s = WSASocketW(a->ai_family, a->ai_socktype, a->ai_protocol, nullptr, 0,
                          WSA_FLAG_OVERLAPPED | WSA_FLAG_NO_HANDLE_INHERIT);
    if (s == INVALID_SOCKET) continue;
    u_long nonblocking = 1;
    ::ioctlsocket(s, FIONBIO, &nonblocking);
    int rc = ::connect(s, a->ai_addr, static_cast<int>(a->ai_addrlen));
    if (rc != 0 && WSAGetLastError() == WSAEWOULDBLOCK) {
      // select(), not WSAPoll: WSAPoll does not report a refused connect before Windows 10 2004
      // (it waits out the timeout); select() puts it in the exception set.
      fd_set writable, failed;
      FD_ZERO(&writable);
      FD_ZERO(&failed);
      FD_SET(s, &writable);
      FD_SET(s, &failed);
      timeval timeout{config_.connect_timeout_ms / 1000, (config_.connect_timeout_ms % 1000) * 1000};
      rc = ::select(0, nullptr, &writable, &failed, &timeout);
      if (rc == 1 && FD_ISSET(s, &writable)) {
        rc = 0;
      } else {
        int error = 0;
        int length = sizeof error;
        ::getsockopt(s, SOL_SOCKET, SO_ERROR, reinterpret_cast<char*>(&error), &length);
        timed_out = rc == 0;
        last_error = rc == 0 ? "timed out after " + std::to_string(config_.connect_timeout_ms) +
                                   " ms"
                             : WinsockError(error != 0 ? error : WSAECONNREFUSED);
        rc = -1;
      }
    } else if (rc != 0) {
      last_error = WinsockError(WSAGetLastError());
    }
    if (rc != 0) {
      ::closesocket(s);
      continue;
    }
    nonblocking = 0;
    ::ioctlsocket(s, FIONBIO, &nonblocking);
    // The handshake's reads are bounded by the connect timeout, the request's by the request
    // timeout (set once the handshake is done), as on Linux.
    const DWORD timeout = static_cast<DWORD>(config_.connect_timeout_ms);
    ::setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, reinterpret_cast<const char*>(&timeout), sizeof timeout);
    ::setsockopt(s, SOL_SOCKET, SO_SNDTIMEO, reinterpret_cast<const char*>(&timeout), sizeof timeout);
    const BOOL one = TRUE;
    ::setsockopt(s, IPPROTO_TCP, TCP_NODELAY, reinterpret_cast<const char*>(&one), sizeof one);
    socket_ = s;
    break;
  }
  freeaddrinfo(found);
  if (socket_ == INVALID_SOCKET) {
    if (timed_out) return DeadlineExceededError("cannot connect to " + endpoint_name_ + ": " + last_error);
    return UnavailableError("cannot connect to " + endpoint_name_ + ": " + last_error);
  }
  Status handshake = Handshake();
  if (!handshake.ok()) {
    Close();
    return handshake;
  }
  const DWORD request_timeout = static_cast<DWORD>(config_.request_timeout_ms);
  ::setsockopt(socket_, SOL_SOCKET, SO_RCVTIMEO, reinterpret_cast<const char*>(&request_timeout),
               sizeof request_timeout);
  ::setsockopt(socket_, SOL_SOCKET, SO_SNDTIMEO, reinterpret_cast<const char*>(&request_timeout),
               sizeof request_timeout);
  ++connections_opened_;
  return Status::Ok();
}

Status HttpsClient::Impl::Handshake() {
  const std::string failed = "TLS handshake with " + endpoint_name_ + " failed: ";
  std::wstring target = Widen(config_.host);  // SNI
  const ULONG wanted = ISC_REQ_SEQUENCE_DETECT | ISC_REQ_REPLAY_DETECT | ISC_REQ_CONFIDENTIALITY |
                       ISC_REQ_ALLOCATE_MEMORY | ISC_REQ_STREAM | ISC_REQ_EXTENDED_ERROR |
                       ISC_REQ_MANUAL_CRED_VALIDATION |
                       // A server that asks for a client certificate (signum-server does when it
                       // has client CAs) gets none instead of SEC_I_INCOMPLETE_CREDENTIALS.
                       ISC_REQ_USE_SUPPLIED_CREDS;
  ULONG attributes = 0;
  std::string input;
  for (int round = 0; round < 32; ++round) {
    SecBuffer in_buffers[2] = {};
    in_buffers[0].BufferType = SECBUFFER_TOKEN;
    in_buffers[0].pvBuffer = input.empty() ? nullptr : input.data();
    in_buffers[0].cbBuffer = static_cast<ULONG>(input.size());
    in_buffers[1].BufferType = SECBUFFER_EMPTY;
    SecBufferDesc in_desc{SECBUFFER_VERSION, 2, in_buffers};
    SecBuffer out_buffer{0, SECBUFFER_TOKEN, nullptr};
    SecBufferDesc out_desc{SECBUFFER_VERSION, 1, &out_buffer};
    const SECURITY_STATUS rc = InitializeSecurityContextW(
        &credentials_, have_context_ ? &context_ : nullptr, target.data(), wanted, 0, 0,
        have_context_ ? &in_desc : nullptr, 0, &context_, &out_desc, &attributes, nullptr);
    if (!FAILED(rc)) have_context_ = true;  // a failed first call made no context
    if (out_buffer.cbBuffer > 0 && out_buffer.pvBuffer != nullptr) {
      const int sent = ::send(socket_, static_cast<const char*>(out_buffer.pvBuffer),
                              static_cast<int>(out_buffer.cbBuffer), 0);
      FreeContextBuffer(out_buffer.pvBuffer);
      if (sent != static_cast<int>(out_buffer.cbBuffer))
        return UnavailableError(failed + WinsockError(WSAGetLastError()));
    }
    // Asked for a client certificate we do not have: the same input again, sending none.
    if (rc == SEC_I_INCOMPLETE_CREDENTIALS) continue;
    if (rc == SEC_E_INCOMPLETE_MESSAGE || rc == SEC_I_CONTINUE_NEEDED) {
      if (rc == SEC_I_CONTINUE_NEEDED) {
        // What Schannel did not consume belongs to the next round.
        input = in_buffers[1].BufferType == SECBUFFER_EXTRA
                    ? input.substr(input.size() - in_buffers[1].cbBuffer)
                    : std::string();
        if (!input.empty()) continue;
      }
      char chunk[16384];
      const int n = ::recv(socket_, chunk, sizeof chunk, 0);
      if (n <= 0) {
        const int error = WSAGetLastError();
        if (n < 0 && error == WSAETIMEDOUT)
          return DeadlineExceededError("TLS handshake with " + endpoint_name_ +
                                       " timed out after " +
                                       std::to_string(config_.connect_timeout_ms) + " ms");
        return UnavailableError(failed + (n == 0 ? "the server closed the connection"
                                                 : WinsockError(error)));
      }
      input.append(chunk, static_cast<size_t>(n));
      continue;
    }
    if (rc != SEC_E_OK) return UnavailableError(failed + "Schannel " + Hex(rc));
    // Done: application data the server sent along stays for the first read.
    if (in_buffers[1].BufferType == SECBUFFER_EXTRA && in_buffers[1].cbBuffer > 0)
      cipher_ = input.substr(input.size() - in_buffers[1].cbBuffer);
    if (QueryContextAttributesW(&context_, SECPKG_ATTR_STREAM_SIZES, &sizes_) != SEC_E_OK)
      return UnavailableError(failed + "no stream sizes");
    const CERT_CONTEXT* leaf = nullptr;
    if (QueryContextAttributesW(&context_, SECPKG_ATTR_REMOTE_CERT_CONTEXT, &leaf) != SEC_E_OK ||
        leaf == nullptr)
      return UnavailableError(failed + "the server presented no certificate");
    Status checked = CheckServerCertificate(leaf);
    CertFreeCertificateContext(leaf);
    if (!checked.ok()) return UnavailableError(failed + checked.message() + "; nothing was sent");
    return Status::Ok();
  }
  return UnavailableError(failed + "too many handshake rounds");
}

Status HttpsClient::Impl::CheckWithWindowsTrust(const CERT_CONTEXT* leaf) {
  CERT_CHAIN_PARA chain_para{};
  chain_para.cbSize = sizeof chain_para;
  const CERT_CHAIN_CONTEXT* chain = nullptr;
  if (!CertGetCertificateChain(nullptr, leaf, nullptr, leaf->hCertStore, &chain_para, 0, nullptr,
                               &chain))
    return UnavailableError("cannot build the server certificate chain (error " +
                            std::to_string(GetLastError()) + ")");
  std::wstring host = Widen(config_.host);
  SSL_EXTRA_CERT_CHAIN_POLICY_PARA ssl{};
  ssl.cbSize = sizeof ssl;
  ssl.dwAuthType = AUTHTYPE_SERVER;
  ssl.pwszServerName = host.data();
  CERT_CHAIN_POLICY_PARA policy_para{};
  policy_para.cbSize = sizeof policy_para;
  policy_para.pvExtraPolicyPara = &ssl;
  CERT_CHAIN_POLICY_STATUS status{};
  status.cbSize = sizeof status;
  const BOOL ran = CertVerifyCertificateChainPolicy(CERT_CHAIN_POLICY_SSL, chain, &policy_para,
                                                    &status);
  CertFreeCertificateChain(chain);
  if (!ran || status.dwError != 0)
    return UnavailableError("server certificate " + SubjectOf(leaf) +
                            " is not trusted by Windows for " + config_.host + " (" +
                            Hex(static_cast<long>(ran ? status.dwError : GetLastError())) + ")");
  return Status::Ok();
}

Status HttpsClient::Impl::CheckServerCertificate(const CERT_CONTEXT* leaf) {
  if (!anchors_) return CheckWithWindowsTrust(leaf);
  SIGNUM_RETURN_IF_ERROR(CheckHostName(leaf, config_.host));
  SIGNUM_RETURN_IF_ERROR(CheckServerUsage(leaf));
  CertPtr current(CertDuplicateCertificateContext(leaf));
  for (int depth = 0; depth < kMaxChainDepth; ++depth) {
    if (CertVerifyTimeValidity(nullptr, current->pCertInfo) != 0) {
      return UnavailableError("server certificate chain: " + SubjectOf(current.get()) +
                              " is expired or not yet valid");
    }
    // Pinned exactly (a self-signed server certificate in the CA file) ...
    const CERT_CONTEXT* same = CertFindCertificateInStore(
        anchors_.get(), X509_ASN_ENCODING, 0, CERT_FIND_EXISTING, current.get(), nullptr);
    if (same != nullptr) {
      CertFreeCertificateContext(same);
      return Status::Ok();
    }
    // ... or issued by a CA of the file ...
    if (CertPtr anchor = FindIssuer(anchors_.get(), current.get())) {
      if (CertVerifyTimeValidity(nullptr, anchor->pCertInfo) != 0)
        return UnavailableError("the CA " + SubjectOf(anchor.get()) + " in " + config_.ca_file +
                                " is expired or not yet valid");
      return Status::Ok();
    }
    // ... or by an intermediate CA the server sent along.
    CertPtr next = leaf->hCertStore ? FindIssuer(leaf->hCertStore, current.get()) : nullptr;
    if (!next) {
      return UnavailableError("server certificate " + SubjectOf(leaf) +
                              " is not issued by a CA in " + config_.ca_file +
                              " (no chain to it from what the server sent)");
    }
    if (!IsCa(next.get())) {
      return UnavailableError("server certificate chain: " + SubjectOf(next.get()) +
                              " signs certificates but is not a CA");
    }
    current = std::move(next);
  }
  return UnavailableError("server certificate chain is longer than " +
                          std::to_string(kMaxChainDepth) + " certificates");
}

Status HttpsClient::Impl::SendAll(const std::string& plaintext) {
  std::string record;
  for (size_t at = 0; at < plaintext.size();) {
    const size_t n = std::min<size_t>(plaintext.size() - at, sizes_.cbMaximumMessage);
    record.assign(sizes_.cbHeader + n + sizes_.cbTrailer, '\0');
    std::memcpy(record.data() + sizes_.cbHeader, plaintext.data() + at, n);
    SecBuffer buffers[4] = {
        {sizes_.cbHeader, SECBUFFER_STREAM_HEADER, record.data()},
        {static_cast<ULONG>(n), SECBUFFER_DATA, record.data() + sizes_.cbHeader},
        {sizes_.cbTrailer, SECBUFFER_STREAM_TRAILER, record.data() + sizes_.cbHeader + n},
        {0, SECBUFFER_EMPTY, nullptr}};
    SecBufferDesc desc{SECBUFFER_VERSION, 4, buffers};
    const SECURITY_STATUS rc = EncryptMessage(&context_, 0, &desc, 0);
    if (rc != SEC_E_OK) return UnavailableError("TLS encryption failed: Schannel " + Hex(rc));
    const size_t total = buffers[0].cbBuffer + buffers[1].cbBuffer + buffers[2].cbBuffer;
    for (size_t sent = 0; sent < total;) {
      const int k = ::send(socket_, record.data() + sent, static_cast<int>(total - sent), 0);
      if (k <= 0) {
        const int error = WSAGetLastError();
        peer_closed_ = error == WSAECONNRESET || error == WSAECONNABORTED || error == WSAESHUTDOWN;
        if (error == WSAETIMEDOUT)
          return DeadlineExceededError("request to " + endpoint_name_ + " timed out after " +
                                       std::to_string(config_.request_timeout_ms) + " ms");
        return UnavailableError("sending request to " + endpoint_name_ + " failed: " +
                                WinsockError(error));
      }
      sent += static_cast<size_t>(k);
    }
    at += n;
  }
  return Status::Ok();
}

Result<bool> HttpsClient::Impl::ReadMore() {
  for (;;) {
    if (!cipher_.empty()) {
      SecBuffer buffers[4] = {{static_cast<ULONG>(cipher_.size()), SECBUFFER_DATA, cipher_.data()},
                              {0, SECBUFFER_EMPTY, nullptr},
                              {0, SECBUFFER_EMPTY, nullptr},
                              {0, SECBUFFER_EMPTY, nullptr}};
      SecBufferDesc desc{SECBUFFER_VERSION, 4, buffers};
      const SECURITY_STATUS rc = DecryptMessage(&context_, &desc, 0, nullptr);
      if (rc == SEC_E_OK) {
        std::string extra;
        bool got = false;
        for (const SecBuffer& b : buffers) {
          if (b.BufferType == SECBUFFER_DATA && b.cbBuffer > 0) {
            plain_.append(static_cast<const char*>(b.pvBuffer), b.cbBuffer);
            got = true;
          }
          if (b.BufferType == SECBUFFER_EXTRA && b.cbBuffer > 0)
            extra.assign(cipher_.data() + cipher_.size() - b.cbBuffer, b.cbBuffer);
        }
        cipher_ = std::move(extra);
        if (got) return true;
        continue;  // a record without application data
      }
      if (rc == SEC_I_CONTEXT_EXPIRED) {  // close_notify
        peer_closed_ = close_notified_ = true;
        return false;
      }
      if (rc == SEC_I_RENEGOTIATE)
        return UnavailableError("reading response from " + endpoint_name_ +
                                " failed: the server renegotiates, which this client refuses");
      if (rc != SEC_E_INCOMPLETE_MESSAGE)
        return UnavailableError("reading response from " + endpoint_name_ +
                                " failed: TLS decryption, Schannel " + Hex(rc));
    }
    char chunk[16384];
    const int n = ::recv(socket_, chunk, sizeof chunk, 0);
    if (n == 0) {
      peer_closed_ = true;
      return false;
    }
    if (n < 0) {
      const int error = WSAGetLastError();
      peer_closed_ = error == WSAECONNRESET || error == WSAECONNABORTED || error == WSAESHUTDOWN;
      if (error == WSAETIMEDOUT)
        return DeadlineExceededError("request to " + endpoint_name_ + " timed out after " +
                                     std::to_string(config_.request_timeout_ms) + " ms");
      return UnavailableError("reading response from " + endpoint_name_ + " failed: " +
                              WinsockError(error));
    }
    cipher_.append(chunk, static_cast<size_t>(n));
  }
}

// A kept-alive connection on which the server sent something unsolicited (close_notify, FIN, RST)
// is dead: detect it before writing a request into it.
bool HttpsClient::Impl::ConnectionLooksClosed() {
  if (!plain_.empty() || !cipher_.empty()) return true;
  WSAPOLLFD p{};
  p.fd = socket_;
  p.events = POLLRDNORM;
  return WSAPoll(&p, 1, 0) != 0;
}

Result<HttpsResult> HttpsClient::Impl::Exchange(const std::string& request, bool* retryable) {
  // Worth one more try on a new connection only when the server closed this one before
  // answering anything (it closed an idle connection as we wrote), never after a timeout: the
  // request may be running on the server (the Linux client's rule too).
  *retryable = false;
  peer_closed_ = close_notified_ = false;
  if (Status sent = SendAll(request); !sent.ok()) {
    *retryable = peer_closed_;
    return sent;
  }
  // Status line and headers.
  size_t header_end = std::string::npos;
  while ((header_end = plain_.find("\r\n\r\n")) == std::string::npos) {
    if (plain_.size() > kMaxResponseHeader)
      return UnavailableError("response header from " + endpoint_name_ + " is too large");
    const bool nothing_yet = plain_.empty();
    Result<bool> more = ReadMore();
    if (!more.ok() || !*more) {
      *retryable = nothing_yet && peer_closed_;
      if (!more.ok()) return more.status();
      return UnavailableError("reading response from " + endpoint_name_ +
                              " failed: the server closed the connection");
    }
  }
  const std::string head = plain_.substr(0, header_end);
  plain_.erase(0, header_end + 4);
  HttpsResult result;
  const size_t line_end = head.find("\r\n");
  const std::string status_line = head.substr(0, line_end);
  if (status_line.compare(0, 5, "HTTP/") != 0 || status_line.size() < 12)
    return UnavailableError("invalid response from " + endpoint_name_ + ": '" +
                            status_line.substr(0, 40) + "'");
  result.status = std::atoi(status_line.c_str() + 9);
  for (size_t at = line_end; at != std::string::npos && at + 2 < head.size();) {
    const size_t begin = at + 2;
    const size_t end = head.find("\r\n", begin);
    const std::string line = head.substr(begin, end == std::string::npos ? end : end - begin);
    const size_t colon = line.find(':');
    if (colon != std::string::npos) {
      std::string value = line.substr(colon + 1);
      value.erase(0, value.find_first_not_of(" \t"));
      while (!value.empty() && (value.back() == ' ' || value.back() == '\t')) value.pop_back();
      result.headers[AsciiLower(line.substr(0, colon))] = value;
    }
    at = end;
  }
  // Body: Content-Length, chunked, or (HTTP/1.0 style) until close.
  auto need = [&](size_t bytes) -> Status {
    while (plain_.size() < bytes) {
      SIGNUM_ASSIGN_OR_RETURN(bool more, ReadMore());
      if (!more)
        return UnavailableError("reading response from " + endpoint_name_ +
                                " failed: the body ended early");
    }
    return Status::Ok();
  };
  const auto connection = result.headers.find("connection");
  bool keep_alive = connection == result.headers.end() || AsciiLower(connection->second) != "close";
  const auto chunked = result.headers.find("transfer-encoding");
  const auto length = result.headers.find("content-length");
  if (chunked != result.headers.end() && AsciiLower(chunked->second) == "chunked") {
    for (;;) {
      size_t line = std::string::npos;
      while ((line = plain_.find("\r\n")) == std::string::npos) {
        SIGNUM_RETURN_IF_ERROR(need(plain_.size() + 1));
      }
      const std::string size_line = plain_.substr(0, line);
      char* end = nullptr;
      const size_t size = std::strtoul(size_line.c_str(), &end, 16);
      if (end == size_line.c_str() || (*end != '\0' && *end != ';' && *end != ' ')) {
        Close();
        return UnavailableError("invalid chunk size from " + endpoint_name_ + ": '" +
                                size_line.substr(0, 20) + "'");
      }
      plain_.erase(0, line + 2);
      if (result.body.size() + size > kMaxResponseBody) {
        Close();
        return UnavailableError("response from " + endpoint_name_ + " is larger than " +
                                std::to_string(kMaxResponseBody) + " bytes");
      }
      SIGNUM_RETURN_IF_ERROR(need(size + 2));
      result.body.append(plain_, 0, size);
      plain_.erase(0, size + 2);
      if (size == 0) break;  // (trailers are not used by the server)
    }
  } else if (length != result.headers.end()) {
    const size_t size = std::strtoull(length->second.c_str(), nullptr, 10);
    if (size > kMaxResponseBody) {
      Close();
      return UnavailableError("response from " + endpoint_name_ + " is larger than " +
                              std::to_string(kMaxResponseBody) + " bytes");
    }
    SIGNUM_RETURN_IF_ERROR(need(size));
    result.body = plain_.substr(0, size);
    plain_.erase(0, size);
  } else if (result.status != 204 && result.status != 304 && result.status >= 200) {
    for (;;) {
      SIGNUM_ASSIGN_OR_RETURN(bool more, ReadMore());
      if (!more) break;
      if (plain_.size() > kMaxResponseBody) {
        Close();
        return UnavailableError("response from " + endpoint_name_ + " is too large");
      }
    }
    // A body that ends with the connection is complete only with TLS's close_notify; a bare
    // TCP close may have cut it.
    if (!close_notified_) {
      Close();
      return UnavailableError("response from " + endpoint_name_ +
                              " ended without TLS close_notify: it may be cut short");
    }
    result.body = std::move(plain_);
    plain_.clear();
    keep_alive = false;
  }
  if (!keep_alive) Close();
  return result;
}

Result<HttpsResult> HttpsClient::Impl::Request(
    const std::string& method, const std::string& target, const std::string& body,
    const std::map<std::string, std::string>& extra_headers) {
  const bool v6 = config_.host.find(':') != std::string::npos;
  const std::string host_header =
      (v6 ? "[" + config_.host + "]" : config_.host) + ":" + std::to_string(config_.port);
  SIGNUM_ASSIGN_OR_RETURN(const std::string request,
                          FormatHttpRequest(method, target, host_header, config_.bearer_token,
                                            body, extra_headers));
  return ExchangeReconnectingOnce(*this, request);
}

#include "https_client_facade.inc"

}  // namespace signum

// libFuzzer target for signum-server's request path: the bytes a client sends after the TLS
// handshake, through Boost.Beast's HTTP/1.1 parser (the server's parser type and size limits),
// into SigningApi::Handle: routing, bearer-token authentication, JSON decoding, policy, HSM
// signing (SoftHSM2) and the audit record. Everything must end in an HTTP response: no crash, no
// exception, no leak, no undefined behaviour.
//
// Inputs are raw HTTP requests. The deployment is made fresh at start-up (init-demo), so its
// token cannot be in a corpus: the placeholder @TOKEN@ becomes the demo user "release"'s bearer
// token before parsing (in headers only, so no Content-Length changes meaning). Certificates are
// named by label (ec-p256, rsa-2048), which init-demo makes the same every time.
//
// Build and run: ci/fuzz (docs/testing.md), or by hand
//   cmake -S . -B build-fuzz -G Ninja -DSIGNUM_FUZZ=ON -DCMAKE_C_COMPILER=clang \
//         -DCMAKE_CXX_COMPILER=clang++ -DSIGNUM_BUILD_TESTS=OFF
//   cmake --build build-fuzz --target signum_server_request_fuzz
//   build-fuzz/reference/server/signum_server_request_fuzz -max_total_time=60 CORPUS_DIR \
//         reference/server/tests/fuzz-corpus/request
#include <stdlib.h>

#include <boost/beast/core/error.hpp>
#include <boost/beast/http.hpp>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>

#include "api.h"
#include "audit.h"
#include "capabilities.h"
#include "config.h"
#include "hsm_backend.h"
#include "provisioning.h"
#include "signum/core/algorithms.h"
#include "signum/core/files.h"
#include "signum/core/log.h"
#include "state_store.h"

namespace {

namespace http = boost::beast::http;
using namespace signum;
using namespace signum::server;

// One deployment for the whole run: SigningApi and what it needs.
struct FuzzedServer {
  std::string dir;
  std::string token;
  bool print = std::getenv("SIGNUM_REQUEST_FUZZ_PRINT") != nullptr;
  HttpsServerConfig limits;  // the defaults signum-server parses with
  std::unique_ptr<HsmBackend> hsm;
  std::unique_ptr<StateStore> state;
  std::unique_ptr<AuditLog> audit;
  std::unique_ptr<KeyCapabilityRegistry> capabilities;
  std::unique_ptr<SigningApi> api;
};

FuzzedServer* fuzzed = nullptr;

[[noreturn]] void Die(const std::string& what, const Status& status) {
  std::fprintf(stderr, "signum_server_request_fuzz: %s: %s\n", what.c_str(),
               status.ToString().c_str());
  std::abort();
}

template <typename T>
T Must(Result<T> result, const std::string& what) {
  if (!result.ok()) Die(what, result.status());
  return std::move(*result);
}

FuzzedServer* StartServer() {
  auto* s = new FuzzedServer;
  // tmpfs when there is one: every request appends (and fsyncs) an audit record.
  const char* base = std::filesystem::is_directory("/dev/shm") ? "/dev/shm" : "/tmp";
  std::string templ = std::string(base) + "/signum-request-fuzz.XXXXXX";
  if (::mkdtemp(templ.data()) == nullptr) Die("mkdtemp", InternalError(templ));
  s->dir = templ + "/demo";
  static std::string made = templ;  // removed when libFuzzer exits (not after a crash: evidence)
  std::atexit([] { std::filesystem::remove_all(made); });

  DemoOptions options;
  options.dir = s->dir;
  options.key_specs = {Must(ParseKeySpec("ec-p256"), "key spec"),
                       Must(ParseKeySpec("rsa-2048"), "key spec")};
  Must(InitDemo(options), "init-demo");
  const ServerConfig config = Must(LoadServerConfig(s->dir + "/server.json"), "server.json");
  s->hsm = Must(HsmBackend::Open(Must(ResolveHsmConfig(config), "hsm config")), "HSM");
  s->state = Must(StateStore::Open(config.state_file), "state");
  s->audit = Must(AuditLog::Open(config.audit_log), "audit log");
  s->capabilities = std::make_unique<KeyCapabilityRegistry>(*s->hsm);
  s->capabilities->DiscoverAll(s->state->Current()->state);
  s->api = std::make_unique<SigningApi>(*s->state, *s->hsm, *s->capabilities, *s->audit,
                                        ApiLimits{}, "fuzz");
  s->token = Must(ReadSecretFile(s->dir + "/credentials/release.token"), "release.token");
  return s;
}

void ReplaceAll(std::string& text, std::string_view placeholder, const std::string& value) {
  for (size_t at = text.find(placeholder); at != std::string::npos;
       at = text.find(placeholder, at + value.size())) {
    text.replace(at, placeholder.size(), value);
  }
}

// What https_server.cc's session does with a request that parsed: the same header folding.
HttpRequest ToHttpRequest(http::request<http::string_body>& parsed) {
  HttpRequest request;
  request.method = std::string(parsed.method_string());
  request.target = std::string(parsed.target());
  for (const auto& field : parsed) {
    std::string name(field.name_string());
    for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    const std::string value(field.value());
    auto [it, inserted] = request.headers.emplace(std::move(name), value);
    if (!inserted) it->second += ", " + value;
  }
  request.body = std::move(parsed.body());
  request.peer_address = "127.0.0.1:40000";
  return request;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  SetLogLevelByName("error");  // one log line per request would drown libFuzzer's output
  fuzzed = StartServer();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string bytes(reinterpret_cast<const char*>(data), size);
  ReplaceAll(bytes, "@TOKEN@", fuzzed->token);

  // Keep-alive: the input may hold several requests, as one connection's byte stream does.
  boost::asio::const_buffer remaining(bytes.data(), bytes.size());
  for (int requests = 0; requests < 8 && remaining.size() > 0; ++requests) {
    http::request_parser<http::string_body> parser;
    parser.eager(true);
    parser.header_limit(static_cast<std::uint32_t>(fuzzed->limits.max_header_bytes));
    parser.body_limit(fuzzed->limits.max_body_bytes);
    boost::beast::error_code ec;
    while (!parser.is_done()) {
      const size_t used = parser.put(remaining, ec);
      remaining += used;
      // need_more: the input is all there is, so the client closed here (a body without a
      // length ends; anything else is a partial message).
      if (ec == http::error::need_more) parser.put_eof(ec);
      if (ec || (!parser.is_done() && used == 0)) return 0;  // the server answers 4xx and closes
    }
    HttpRequest request = ToHttpRequest(parser.get());
    const HttpResponse response = fuzzed->api->Handle(request);
    if (response.status < 200 || response.status > 599) std::abort();
    // SIGNUM_REQUEST_FUZZ_PRINT=1: what each request got, to check that seeds reach signing.
    if (fuzzed->print) std::fprintf(stderr, "%d %s\n", response.status, response.body.c_str());
  }
  return 0;
}

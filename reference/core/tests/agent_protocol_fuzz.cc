// libFuzzer target for the agent protocol decoder: the bytes a provider (or anything else that
// reaches the socket) can send the agent, and the bytes the agent sends a provider. Everything
// must end in a value or a Status: no crash, no exception, no leak, no undefined behaviour.
//
// Build: cmake -S . -B build-fuzz -G Ninja -DSIGNUM_FUZZ=ON -DCMAKE_CXX_COMPILER=clang++ \
//          -DCMAKE_C_COMPILER=clang -DSIGNUM_BUILD_TESTS=OFF
//        cmake --build build-fuzz --target signum_agent_protocol_fuzz
// Run:   build-fuzz/reference/core/signum_agent_protocol_fuzz -max_total_time=60 CORPUS_DIR
#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

#include "signum/core/agent_protocol.h"

namespace {

namespace proto = signum::agent_protocol;

void Exercise(const nlohmann::json& message) {
  (void)proto::TypeOf(message);
  (void)proto::ErrorFromReply(message);
  if (auto hello = proto::ParseHello(message); hello.ok()) {
    (void)proto::EncodeFrame(proto::ToJson(*hello, !hello->proof.empty()));
    if (auto auth = proto::ParseAuthRequest(message); auth.ok()) (void)auth;
  }
  if (auto list = proto::ParseListRequest(message); list.ok()) {
    (void)proto::EncodeFrame(proto::ToJson(*list));
  }
  if (auto sign = proto::ParseSignRequest(message); sign.ok()) {
    // What the agent does with a parsed request: re-encode it for the server.
    (void)proto::EncodeFrame(proto::SignRequestJson(*sign));
  }
  if (auto certificates = proto::ParseCertificates(message); certificates.ok()) {
    (void)proto::EncodeFrame(proto::ToJson(*certificates));
  }
  if (auto signature = proto::ParseSignature(message); signature.ok()) {
    (void)proto::EncodeFrame(proto::SignatureJson(*signature));
  }
  if (auto report = proto::ParseStatusReport(message); report.ok()) {
    (void)proto::EncodeFrame(proto::ToJson(*report));
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // 1. The input as a byte stream of frames, the way a connection delivers it.
  std::string buffer(reinterpret_cast<const char*>(data), size);
  for (int frames = 0; frames < 64; ++frames) {
    auto decoded = proto::DecodeFrame(buffer);
    if (!decoded.ok() || !decoded->has_value()) break;
    Exercise(**decoded);
  }
  // 2. The input as one frame body, so the JSON parsers see it without a valid header first.
  std::string framed(4, '\0');
  framed[0] = static_cast<char>((size >> 24) & 0xff);
  framed[1] = static_cast<char>((size >> 16) & 0xff);
  framed[2] = static_cast<char>((size >> 8) & 0xff);
  framed[3] = static_cast<char>(size & 0xff);
  framed.append(reinterpret_cast<const char*>(data), size);
  auto decoded = proto::DecodeFrame(framed);
  if (decoded.ok() && decoded->has_value()) Exercise(**decoded);
  return 0;
}

// The provider <-> signum-agent protocol, defined once for the agent and every provider
// (PKCS#11, KSP, CSP, CTK). It builds without OpenSSL so the Windows providers can share it.
//
// Transport: a Unix socket (peer uid checked by the agent) or loopback TCP (the first message must
// carry the secret from the agent's user-only secret file).
// Framing: 4-byte big-endian length, then that many bytes of UTF-8 JSON (one object).
// Frames over kMaxFrameBytes, non-JSON or non-object bodies are protocol errors: the receiver
// answers with an error (when it can) and closes the connection; it never crashes.
//
// Conversation: the client sends Hello, the agent answers Hello (or an error and closes); then any
// number of request/response pairs, strictly alternating, one at a time per connection.
//
//   {"type":"hello","protocol":1,"client":"libsignumpkcs11/0.1","secret":"..."}   (secret: TCP only)
//   {"type":"hello","protocol":1,"agent":"signum-agent/0.1"}
//   {"type":"list","refresh":false}
//        -> {"type":"certificates","certificates":[<wire::CertificateEntry>...]}
//   {"type":"sign","certificate_id":"..","scheme":"rsa-pkcs1","hash":"sha256","digest":"<b64>",
//    "pss_salt_length":32,"context":{"process":"..","command_line":".."}}
//        (context strings longer than wire.h's kMax*Length are cut to that length, not rejected)
//        -> {"type":"signature","signature":"<b64>"}
//   {"type":"status"}
//        -> {"type":"status","server_url":"..","server_reachable":true,"user":"..","certificates":6,
//            "message":".."}
//   any request -> {"type":"error","code":"UNAVAILABLE","message":"..."}  (codes: ErrorCodeName)
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "signum/core/bytes.h"
#include "signum/core/status.h"
#include "signum/core/wire.h"

namespace signum::agent_protocol {

inline constexpr int kProtocolVersion = 1;
inline constexpr uint32_t kMaxFrameBytes = 4 * 1024 * 1024;

// --- Framing (transport-independent: works on any byte buffer) -------------------------------
// Header + body for one JSON message.
std::string EncodeFrame(const nlohmann::json& message);
// Tries to take one frame off the front of `buffer`. Returns nullopt when more bytes are needed;
// an error for an oversized or malformed frame (the connection must then be closed).
Result<std::optional<nlohmann::json>> DecodeFrame(std::string& buffer);

// --- Messages --------------------------------------------------------------------------------
struct Hello {
  int protocol = kProtocolVersion;
  std::string peer;    // "client" on requests, "agent" on replies: name/version of the sender
  std::string secret;  // loopback TCP only
};

struct ListRequest {
  bool refresh = false;  // bypass the agent's certificate cache
};

struct SignRequest {
  std::string certificate_id;
  SignatureScheme scheme = SignatureScheme::kRsaPkcs1;
  HashAlgorithm hash = HashAlgorithm::kSha256;
  Bytes digest;
  std::optional<size_t> pss_salt_length;
  wire::CallerContext context;  // what the client claims; the agent overrides pid/uid/process
};

struct StatusReport {
  std::string server_url;
  bool server_reachable = false;
  std::string user;
  size_t certificates = 0;
  std::string message;
};

enum class MessageType { kHello, kList, kCertificates, kSign, kSignature, kStatus, kError };

// Reads "type"; an unknown or missing type is kInvalidArgument.
Result<MessageType> TypeOf(const nlohmann::json& message);

nlohmann::json ToJson(const Hello& m, bool from_agent);
nlohmann::json ToJson(const ListRequest& m);
nlohmann::json ToJson(const SignRequest& m);
nlohmann::json StatusRequestJson();
nlohmann::json ToJson(const wire::CertificateListResponse& m);  // type "certificates"
nlohmann::json SignatureJson(ByteView signature);                  // type "signature"
nlohmann::json ToJson(const StatusReport& m);
nlohmann::json ErrorJson(const Status& status);                    // type "error"

Result<Hello> ParseHello(const nlohmann::json& j);
Result<ListRequest> ParseListRequest(const nlohmann::json& j);
Result<SignRequest> ParseSignRequest(const nlohmann::json& j);
Result<wire::CertificateListResponse> ParseCertificates(const nlohmann::json& j);
Result<Bytes> ParseSignature(const nlohmann::json& j);
Result<StatusReport> ParseStatusReport(const nlohmann::json& j);
// For a reply of type "error": the Status it carries (never OK). For any other reply: OK.
Status ErrorFromReply(const nlohmann::json& reply);

}  // namespace signum::agent_protocol

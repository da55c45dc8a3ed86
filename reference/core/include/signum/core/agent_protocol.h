// The provider <-> signum-agent protocol, defined once for the agent and every provider
// (PKCS#11, KSP, CSP, CTK). It builds without OpenSSL so the Windows providers can share it.
//
// Transport: a Unix socket (peer uid checked by the agent with SO_PEERCRED; no secret) or loopback
// TCP, where both sides prove that they know the secret from the agent's user-only secret file
// (challenge-response below) without the secret itself ever crossing the wire.
// Framing: 4-byte big-endian length, then that many bytes of UTF-8 JSON (one object).
// Frames over kMaxFrameBytes, non-JSON or non-object bodies are protocol errors: the receiver
// answers with an error (when it can) and closes the connection; it never crashes.
//
// Conversation: the client sends Hello, the agent answers Hello (or an error and closes); on TCP
// the client then sends Auth and the agent answers Authenticated (or an error and closes); then
// any number of request/response pairs, strictly alternating, one at a time per connection.
//
//   {"type":"hello","protocol":2,"client":"libsignumpkcs11/0.1"}                  (Unix socket)
//   {"type":"hello","protocol":2,"agent":"signum-agent/0.1"}
//
// TCP handshake (protocol 2). Whoever binds the port first receives the client's hello, so the
// agent proves itself before the client sends anything else, and the client proves itself before
// the agent serves anything:
//   {"type":"hello","protocol":2,"client":"..","nonce":"<Nc: 32 random bytes, hex>"}
//   {"type":"hello","protocol":2,"agent":"..","nonce":"<Na: 32 random bytes, hex>",
//    "proof":"<hex HMAC-SHA256(K, "signum-agent-proof" || Nc || Na)>"}
//        the client checks the proof (constant time); a wrong or missing proof, or protocol 1,
//        means the listener is not signum-agent: kPermissionDenied, the connection is closed
//   {"type":"auth","proof":"<hex HMAC-SHA256(K, "signum-client-proof" || Nc || Na)>"}
//   {"type":"authenticated"}      or an UNAUTHENTICATED error and close
// K is the secret decoded from its 64 hex digits (32 bytes); Nc and Na are the raw 32-byte
// nonces; the labels are ASCII without a terminator. HandshakeProof() is the one definition.
// Distinct labels keep either side's proof from being replayed as the other's; fresh nonces on
// both sides keep an old exchange from being replayed. The requests that follow are not
// encrypted or MACed: loopback traffic is only readable by root, and once the real agent holds
// the port nobody else can sit in between.
// Protocol 1 sent the secret itself in the client's hello ("secret"): an agent speaking protocol 2
// refuses such a hello on TCP (FAILED_PRECONDITION naming the upgrade), and this client never
// sends it.
//
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

// 2: the TCP challenge-response (protocol 1 sent the secret in the hello).
inline constexpr int kProtocolVersion = 2;
// TCP needs the challenge-response; the Unix socket still accepts protocol 1 peers.
inline constexpr int kMinTcpProtocolVersion = 2;
inline constexpr size_t kNonceBytes = 32;
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
  std::string peer;  // "client" on requests, "agent" on replies: name/version of the sender
  // Protocol 1's plaintext secret ("secret"). Parsed only so the agent can refuse it; never sent
  // by this client.
  std::string legacy_secret;
  // {}: brace-initialized hellos may stop after the fields above.
  std::string nonce{};  // TCP: the sender's fresh nonce, kNonceBytes as lowercase hex
  std::string proof{};  // TCP, agent's reply only: HandshakeProof(kAgent, ...)
};

// TCP only, the client's second message.
struct AuthRequest {
  std::string proof;  // HandshakeProof(kClient, ...)
};

struct ListRequest {
  bool refresh = false;  // bypass the agent's certificate cache
};

// The same message as POST /v1/sign, field for field: one definition, so a sign request means
// exactly one thing on both hops. The context is what the client claims; the agent overrides
// pid/uid/process from the socket peer before forwarding it.
using SignRequest = wire::SignRequest;

struct StatusReport {
  std::string server_url;
  bool server_reachable = false;
  std::string user;
  size_t certificates = 0;
  std::string message;
};

enum class MessageType {
  kHello,
  kList,
  kCertificates,
  kSign,
  kSignature,
  kStatus,
  kError,
  kAuth,
  kAuthenticated
};

// The one table of the conversation, which both ends check against (as p11-kit's
// p11_rpc_calls[]): each message's name on the wire, who may send it, whether it belongs to the
// handshake or to the session after it, and the reply a client request expects (besides
// "error", which may answer anything).
enum class Sender { kClient, kAgent };
enum class Phase { kHandshake, kSession };
struct MessageSpec {
  MessageType type;
  std::string_view name;
  Sender sender;
  Phase phase;
  std::optional<MessageType> reply;  // client messages only
};
const std::vector<MessageSpec>& MessageTable();
const MessageSpec& SpecOf(MessageType type);
// What the agent serves once the handshake is over: client messages of the session phase.
bool IsSessionRequest(MessageType type);
// Client side: OK when `reply` is the table's reply to `request`; the agent's error for an error
// reply; kInvalidArgument naming both types otherwise.
Status CheckReply(MessageType request, const nlohmann::json& reply);

// --- TCP handshake ---------------------------------------------------------------------------
enum class ProofRole { kAgent, kClient };
// A fresh nonce: kNonceBytes from the operating system's generator, lowercase hex.
Result<std::string> NewNonce();
// Lowercase hex of HMAC-SHA256(secret, label(role) || client_nonce || agent_nonce). The secret is
// the secret file's 64 hex digits; the nonces are kNonceBytes each, hex. kInvalidArgument when
// any of them is malformed.
Result<std::string> HandshakeProof(ProofRole role, std::string_view secret_hex,
                                   std::string_view client_nonce_hex,
                                   std::string_view agent_nonce_hex);
// Whether `proof_hex` is that proof, compared in constant time. False for anything malformed.
bool ProofMatches(ProofRole role, std::string_view secret_hex, std::string_view client_nonce_hex,
                  std::string_view agent_nonce_hex, std::string_view proof_hex);

// Reads "type"; an unknown or missing type is kInvalidArgument.
Result<MessageType> TypeOf(const nlohmann::json& message);

nlohmann::json ToJson(const Hello& m, bool from_agent);
nlohmann::json ToJson(const ListRequest& m);
nlohmann::json SignRequestJson(const SignRequest& m);  // type "sign"
nlohmann::json StatusRequestJson();
nlohmann::json ToJson(const wire::CertificateListResponse& m);  // type "certificates"
nlohmann::json SignatureJson(ByteView signature);                  // type "signature"
nlohmann::json ToJson(const StatusReport& m);
nlohmann::json ErrorJson(const Status& status);                    // type "error"
nlohmann::json ToJson(const AuthRequest& m);                       // type "auth"
nlohmann::json AuthenticatedJson();                                // type "authenticated"

// "nonce" and "proof", when present, must be kNonceBytes / 32 bytes of hex.
Result<Hello> ParseHello(const nlohmann::json& j);
Result<AuthRequest> ParseAuthRequest(const nlohmann::json& j);
// OK for an "authenticated" reply; the agent's error for an error reply.
Status ParseAuthenticated(const nlohmann::json& j);
Result<ListRequest> ParseListRequest(const nlohmann::json& j);
Result<SignRequest> ParseSignRequest(const nlohmann::json& j);
Result<wire::CertificateListResponse> ParseCertificates(const nlohmann::json& j);
Result<Bytes> ParseSignature(const nlohmann::json& j);
Result<StatusReport> ParseStatusReport(const nlohmann::json& j);
// For a reply of type "error": the Status it carries (never OK). For any other reply: OK.
Status ErrorFromReply(const nlohmann::json& reply);

}  // namespace signum::agent_protocol

// The provider <-> signum-agent protocol. No OpenSSL here (see agent_protocol.h): binary values go
// through encoding.h, and the message bodies reuse wire.h's parsers where the fields are the same
// as the HTTPS API's, so a sign request means exactly one thing on both hops.
#include "signum/core/agent_protocol.h"

#include <nlohmann/json.hpp>

#include "signum/core/encoding.h"
#include "signum/core/sha256.h"
#include "signum/core/system_random.h"
#include "json_fields.h"

namespace signum::agent_protocol {
namespace {

using nlohmann::json;

constexpr size_t kHeaderBytes = 4;

using json_fields::BoolField;
using json_fields::CountField;
using json_fields::FieldError;
using json_fields::StringField;

std::string_view TypeName(MessageType type) { return SpecOf(type).name; }

// Every Parse* first checks the message type. A reply of type "error" yields the Status it
// carries, so a client can hand any reply to the parser it expects and get either the value or
// the agent's error.
Status ExpectType(const json& j, MessageType expected) {
  SIGNUM_ASSIGN_OR_RETURN(MessageType type, TypeOf(j));
  if (type == expected) return Status::Ok();
  if (type == MessageType::kError) return ErrorFromReply(j);
  return InvalidArgumentError("expected a '" + std::string(TypeName(expected)) +
                              "' message, got '" + std::string(TypeName(type)) + "'");
}

std::optional<ErrorCode> ErrorCodeFromName(std::string_view name) {
  for (int i = static_cast<int>(ErrorCode::kOk); i <= static_cast<int>(ErrorCode::kInternal); ++i) {
    const auto code = static_cast<ErrorCode>(i);
    if (ErrorCodeName(code) == name) return code;
  }
  return std::nullopt;
}

// Exactly `bytes` bytes of hex (either case): nonces, proofs and the secret.
Result<Bytes> FixedHex(std::string_view hex, size_t bytes, std::string_view what) {
  if (hex.size() != 2 * bytes || hex.find_first_not_of("0123456789abcdefABCDEF") != hex.npos) {
    return InvalidArgumentError(std::string(what) + " must be " + std::to_string(2 * bytes) +
                                " hex digits");
  }
  return HexDecode(hex);
}

// The secret file holds 32 random bytes as 64 hex digits (agent_client.h, ReadAgentSecretFile).
constexpr size_t kSecretBytes = 32;

}  // namespace

// --- Framing ---------------------------------------------------------------------------------

std::string EncodeFrame(const json& message) {
  // Strings that are not valid UTF-8 (a command line read from /proc can hold anything) are
  // replaced with U+FFFD instead of making dump() throw.
  const std::string body = message.dump(-1, ' ', false, json::error_handler_t::replace);
  const auto size = static_cast<uint32_t>(body.size());
  std::string frame;
  frame.reserve(kHeaderBytes + body.size());
  frame += static_cast<char>((size >> 24) & 0xff);
  frame += static_cast<char>((size >> 16) & 0xff);
  frame += static_cast<char>((size >> 8) & 0xff);
  frame += static_cast<char>(size & 0xff);
  frame += body;
  return frame;
}

Result<std::optional<json>> DecodeFrame(std::string& buffer) {
  if (buffer.size() < kHeaderBytes) return std::optional<json>();
  const auto byte = [&](size_t i) {
    return static_cast<uint32_t>(static_cast<uint8_t>(buffer[i]));
  };
  const uint32_t size = (byte(0) << 24) | (byte(1) << 16) | (byte(2) << 8) | byte(3);
  // Checked before waiting for the body, so a peer cannot make us buffer a huge frame.
  if (size > kMaxFrameBytes) {
    return InvalidArgumentError("frame of " + std::to_string(size) +
                                " bytes exceeds the limit of " + std::to_string(kMaxFrameBytes) +
                                " bytes");
  }
  if (size == 0) return InvalidArgumentError("empty frame");
  if (buffer.size() - kHeaderBytes < size) return std::optional<json>();
  const char* begin = buffer.data() + kHeaderBytes;
  json message = json::parse(begin, begin + size, nullptr, /*allow_exceptions=*/false);
  buffer.erase(0, kHeaderBytes + size);
  if (message.is_discarded()) return InvalidArgumentError("frame body is not valid JSON");
  if (!message.is_object()) return InvalidArgumentError("frame body is not a JSON object");
  return std::optional<json>(std::move(message));
}

// --- Messages --------------------------------------------------------------------------------

const std::vector<MessageSpec>& MessageTable() {
  using enum MessageType;
  static const std::vector<MessageSpec> table = {
      {kHello, "hello", Sender::kClient, Phase::kHandshake, kHello},
      {kAuth, "auth", Sender::kClient, Phase::kHandshake, kAuthenticated},
      {kAuthenticated, "authenticated", Sender::kAgent, Phase::kHandshake, std::nullopt},
      {kList, "list", Sender::kClient, Phase::kSession, kCertificates},
      {kCertificates, "certificates", Sender::kAgent, Phase::kSession, std::nullopt},
      {kSign, "sign", Sender::kClient, Phase::kSession, kSignature},
      {kSignature, "signature", Sender::kAgent, Phase::kSession, std::nullopt},
      // "status" names both the request and its reply.
      {kStatus, "status", Sender::kClient, Phase::kSession, kStatus},
      {kError, "error", Sender::kAgent, Phase::kSession, std::nullopt},
  };
  return table;
}

const MessageSpec& SpecOf(MessageType type) {
  for (const MessageSpec& spec : MessageTable()) {
    if (spec.type == type) return spec;
  }
  return MessageTable().back();  // unreachable: every MessageType has a row (tested)
}

bool IsSessionRequest(MessageType type) {
  const MessageSpec& spec = SpecOf(type);
  return spec.sender == Sender::kClient && spec.phase == Phase::kSession;
}

Status CheckReply(MessageType request, const json& reply) {
  const std::optional<MessageType> expected = SpecOf(request).reply;
  if (!expected) {
    return InvalidArgumentError("'" + std::string(TypeName(request)) + "' is not a request");
  }
  return ExpectType(reply, *expected);
}

Result<MessageType> TypeOf(const json& message) {
  if (!message.is_object()) return InvalidArgumentError("message is not a JSON object");
  auto it = message.find("type");
  if (it == message.end()) return FieldError("type", "is required");
  if (!it->is_string()) return FieldError("type", "must be a string");
  const std::string& type = it->get_ref<const std::string&>();
  for (const MessageSpec& spec : MessageTable()) {
    if (type == spec.name) return spec.type;
  }
  return InvalidArgumentError("unknown message type '" + type.substr(0, 64) + "'");
}

json ToJson(const Hello& m, bool from_agent) {
  json j{{"type", "hello"}, {"protocol", m.protocol}, {from_agent ? "agent" : "client", m.peer}};
  if (!m.legacy_secret.empty()) j["secret"] = m.legacy_secret;
  if (!m.nonce.empty()) j["nonce"] = m.nonce;
  if (!m.proof.empty()) j["proof"] = m.proof;
  return j;
}

json ToJson(const AuthRequest& m) { return json{{"type", "auth"}, {"proof", m.proof}}; }

json AuthenticatedJson() { return json{{"type", "authenticated"}}; }

// --- TCP handshake ---------------------------------------------------------------------------

Result<std::string> NewNonce() {
  SIGNUM_ASSIGN_OR_RETURN(Bytes nonce, SystemRandomBytes(kNonceBytes));
  return HexEncode(nonce);
}

Result<std::string> HandshakeProof(ProofRole role, std::string_view secret_hex,
                                   std::string_view client_nonce_hex,
                                   std::string_view agent_nonce_hex) {
  SIGNUM_ASSIGN_OR_RETURN(Bytes key, FixedHex(secret_hex, kSecretBytes, "the agent secret"));
  SIGNUM_ASSIGN_OR_RETURN(Bytes client_nonce,
                          FixedHex(client_nonce_hex, kNonceBytes, "the client nonce"));
  SIGNUM_ASSIGN_OR_RETURN(Bytes agent_nonce,
                          FixedHex(agent_nonce_hex, kNonceBytes, "the agent nonce"));
  const std::string_view label =
      role == ProofRole::kAgent ? "signum-agent-proof" : "signum-client-proof";
  Bytes message(label.begin(), label.end());
  message.insert(message.end(), client_nonce.begin(), client_nonce.end());
  message.insert(message.end(), agent_nonce.begin(), agent_nonce.end());
  return HexEncode(HmacSha256(key, message));
}

bool ProofMatches(ProofRole role, std::string_view secret_hex, std::string_view client_nonce_hex,
                  std::string_view agent_nonce_hex, std::string_view proof_hex) {
  auto expected = HandshakeProof(role, secret_hex, client_nonce_hex, agent_nonce_hex);
  if (!expected.ok()) return false;
  auto expected_bytes = HexDecode(*expected);
  auto given = FixedHex(proof_hex, kSha256Bytes, "proof");
  if (!expected_bytes.ok() || !given.ok()) return false;
  return ConstantTimeEqual(*expected_bytes, *given);
}

json ToJson(const ListRequest& m) { return json{{"type", "list"}, {"refresh", m.refresh}}; }

json SignRequestJson(const SignRequest& m) {
  json j = wire::ToJson(m);
  j["type"] = "sign";
  return j;
}

json StatusRequestJson() { return json{{"type", "status"}}; }

json ToJson(const wire::CertificateListResponse& m) {
  json j = wire::ToJson(m);
  j["type"] = "certificates";
  return j;
}

json SignatureJson(ByteView signature) {
  return json{{"type", "signature"}, {"signature", Base64Encode(signature)}};
}

json ToJson(const StatusReport& m) {
  return json{{"type", "status"},
              {"server_url", m.server_url},
              {"server_reachable", m.server_reachable},
              {"user", m.user},
              {"certificates", m.certificates},
              {"message", m.message}};
}

json ErrorJson(const Status& status) {
  // An OK status is not an error; sending it as one would make the peer treat success as failure
  // with code "OK", so it becomes INTERNAL (a bug on the sending side).
  const ErrorCode code = status.ok() ? ErrorCode::kInternal : status.code();
  const std::string message =
      status.ok() ? "error reply built from an OK status" : status.message();
  return json{{"type", "error"}, {"code", ErrorCodeName(code)}, {"message", message}};
}

Result<Hello> ParseHello(const json& j) {
  SIGNUM_RETURN_IF_ERROR(ExpectType(j, MessageType::kHello));
  Hello h;
  auto protocol = j.find("protocol");
  if (protocol == j.end() || !protocol->is_number_integer()) {
    return FieldError("protocol", "must be an integer");
  }
  // Clamp instead of casting blindly: a huge value must not wrap into a valid version.
  const auto value = protocol->get<int64_t>();
  h.protocol = value < 0 ? -1 : value > 1'000'000 ? 1'000'000 : static_cast<int>(value);
  // The sender names itself as "client" (provider) or "agent" (reply).
  SIGNUM_ASSIGN_OR_RETURN(std::string client, StringField(j, "client", false));
  SIGNUM_ASSIGN_OR_RETURN(std::string agent, StringField(j, "agent", false));
  h.peer = !client.empty() ? client : agent;
  SIGNUM_ASSIGN_OR_RETURN(h.legacy_secret, StringField(j, "secret", false));
  SIGNUM_ASSIGN_OR_RETURN(h.nonce, StringField(j, "nonce", false));
  SIGNUM_ASSIGN_OR_RETURN(h.proof, StringField(j, "proof", false));
  if (!h.nonce.empty() && !FixedHex(h.nonce, kNonceBytes, "nonce").ok()) {
    return FieldError("nonce", "must be " + std::to_string(2 * kNonceBytes) + " hex digits");
  }
  if (!h.proof.empty() && !FixedHex(h.proof, kSha256Bytes, "proof").ok()) {
    return FieldError("proof", "must be " + std::to_string(2 * kSha256Bytes) + " hex digits");
  }
  return h;
}

Result<AuthRequest> ParseAuthRequest(const json& j) {
  SIGNUM_RETURN_IF_ERROR(ExpectType(j, MessageType::kAuth));
  AuthRequest r;
  SIGNUM_ASSIGN_OR_RETURN(r.proof, StringField(j, "proof", true));
  if (!FixedHex(r.proof, kSha256Bytes, "proof").ok()) {
    return FieldError("proof", "must be " + std::to_string(2 * kSha256Bytes) + " hex digits");
  }
  return r;
}

Status ParseAuthenticated(const json& j) { return ExpectType(j, MessageType::kAuthenticated); }

Result<ListRequest> ParseListRequest(const json& j) {
  SIGNUM_RETURN_IF_ERROR(ExpectType(j, MessageType::kList));
  ListRequest r;
  SIGNUM_ASSIGN_OR_RETURN(r.refresh, BoolField(j, "refresh", false));
  return r;
}

Result<SignRequest> ParseSignRequest(const json& j) {
  SIGNUM_RETURN_IF_ERROR(ExpectType(j, MessageType::kSign));
  // Same fields and checks as POST /v1/sign (digest length, salt only with PSS, context types),
  // except that over-long context strings are cut to the server's limits rather than rejected:
  // a provider cannot always tell how long its host's command line is, and the claims are only
  // informational (see agent_protocol.h).
  const json* checked = &j;
  json shortened;
  auto context = j.find("context");
  if (context != j.end() && context->is_object()) {
    for (const auto& [field, limit] :
         {std::pair{"process", wire::kMaxProcessLength},
          std::pair{"command_line", wire::kMaxCommandLineLength},
          std::pair{"host", wire::kMaxHostLength}, std::pair{"agent_id", wire::kMaxHostLength}}) {
      auto value = context->find(field);
      if (value == context->end() || !value->is_string() ||
          value->get_ref<const std::string&>().size() <= limit) {
        continue;
      }
      if (checked == &j) {
        shortened = j;
        checked = &shortened;
      }
      shortened["context"][field] = TruncateUtf8(value->get_ref<const std::string&>(), limit);
    }
  }
  return wire::ParseSignRequest(*checked);
}

Result<wire::CertificateListResponse> ParseCertificates(const json& j) {
  SIGNUM_RETURN_IF_ERROR(ExpectType(j, MessageType::kCertificates));
  return wire::ParseCertificateListResponse(j);
}

Result<Bytes> ParseSignature(const json& j) {
  SIGNUM_RETURN_IF_ERROR(ExpectType(j, MessageType::kSignature));
  SIGNUM_ASSIGN_OR_RETURN(std::string text, StringField(j, "signature", true));
  auto bytes = Base64Decode(text);
  if (!bytes.ok()) return FieldError("signature", "is not valid base64");
  if (bytes->empty()) return FieldError("signature", "is empty");
  return std::move(bytes).value();
}

Result<StatusReport> ParseStatusReport(const json& j) {
  SIGNUM_RETURN_IF_ERROR(ExpectType(j, MessageType::kStatus));
  StatusReport r;
  SIGNUM_ASSIGN_OR_RETURN(r.server_url, StringField(j, "server_url", false));
  SIGNUM_ASSIGN_OR_RETURN(r.server_reachable, BoolField(j, "server_reachable", false));
  SIGNUM_ASSIGN_OR_RETURN(r.user, StringField(j, "user", false));
  SIGNUM_ASSIGN_OR_RETURN(r.certificates, CountField(j, "certificates"));
  SIGNUM_ASSIGN_OR_RETURN(r.message, StringField(j, "message", false));
  return r;
}

Status ErrorFromReply(const json& reply) {
  SIGNUM_ASSIGN_OR_RETURN(MessageType type, TypeOf(reply));
  if (type != MessageType::kError) return Status::Ok();
  auto code_field = reply.find("code");
  auto message_field = reply.find("message");
  std::string code_name =
      code_field != reply.end() && code_field->is_string() ? code_field->get<std::string>() : "";
  std::string message = message_field != reply.end() && message_field->is_string()
                            ? message_field->get<std::string>()
                            : "";
  std::optional<ErrorCode> code = ErrorCodeFromName(code_name);
  // An error reply always means failure: an unknown (newer) or "OK" code becomes INTERNAL with the
  // original name kept in the message.
  if (!code || *code == ErrorCode::kOk) {
    return InternalError("agent error '" + code_name.substr(0, 64) + "': " + message);
  }
  return Status(*code, message);
}

}  // namespace signum::agent_protocol

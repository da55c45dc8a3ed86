#include "signum/core/agent_protocol.h"

#include <gtest/gtest.h>

#include <cctype>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "signum/core/encoding.h"
#include "signum/testing/status_matchers.h"

namespace signum::agent_protocol {
namespace {

using ::signum::testing::StatusIs;

using nlohmann::json;

std::string Header(uint32_t size) {
  std::string h(4, '\0');
  h[0] = static_cast<char>(size >> 24);
  h[1] = static_cast<char>(size >> 16);
  h[2] = static_cast<char>(size >> 8);
  h[3] = static_cast<char>(size);
  return h;
}

std::string RawFrame(const std::string& body) {
  return Header(static_cast<uint32_t>(body.size())) + body;
}

// Encodes, decodes and checks that exactly one frame came back and the buffer is empty.
json RoundTrip(const json& message) {
  std::string buffer = EncodeFrame(message);
  auto decoded = DecodeFrame(buffer);
  EXPECT_OK(decoded);
  EXPECT_TRUE(decoded->has_value());
  EXPECT_TRUE(buffer.empty());
  return **decoded;
}

wire::CertificateEntry SampleEntry() {
  wire::CertificateEntry e;
  e.id = "3f2c0000000000000000000000000000000000ab";
  e.label = "ec-p384";
  e.key.type = KeyType::kEc;
  e.key.bits = 384;
  e.key.curve = EcCurve::kP384;
  e.certificate_pem = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
  e.chain_pem = {"issuing", "root"};
  e.schemes = {SignatureScheme::kEcdsa};
  e.hashes = {HashAlgorithm::kSha256, HashAlgorithm::kSha384};
  return e;
}

SignRequest SampleSign() {
  SignRequest r;
  r.certificate_id = "rsa-2048";
  r.scheme = SignatureScheme::kRsaPss;
  r.hash = HashAlgorithm::kSha384;
  r.digest = Bytes(48, 0x5a);
  r.pss_salt_length = 20;
  r.context.process = "jarsigner";
  r.context.command_line = "jarsigner -keystore NONE app.jar";
  r.context.pid = 4242;
  return r;
}

// --- Framing ---------------------------------------------------------------------------------

TEST(AgentFramingTest, HeaderIsBigEndianLength) {
  const std::string frame = EncodeFrame(json{{"type", "status"}});
  const std::string body = R"({"type":"status"})";
  EXPECT_EQ(frame, Header(static_cast<uint32_t>(body.size())) + body);
}

TEST(AgentFramingTest, FrameSplitAcrossReadsNeedsMoreBytesUntilComplete) {
  const std::string frame = EncodeFrame(SignRequestJson(SampleSign()));
  std::string buffer;
  for (size_t i = 0; i + 1 < frame.size(); ++i) {
    buffer += frame[i];
    auto decoded = DecodeFrame(buffer);
    ASSERT_OK(decoded) << "after " << i + 1 << " bytes";
    ASSERT_FALSE(decoded->has_value()) << "after " << i + 1 << " bytes";
  }
  buffer += frame.back();
  auto decoded = DecodeFrame(buffer);
  ASSERT_OK(decoded);
  ASSERT_TRUE(decoded->has_value());
  EXPECT_TRUE(buffer.empty());
  EXPECT_EQ((**decoded)["type"], "sign");
}

TEST(AgentFramingTest, SeveralFramesInOneBufferComeOutInOrder) {
  std::string buffer = EncodeFrame(ToJson(ListRequest{true})) + EncodeFrame(StatusRequestJson()) +
                       EncodeFrame(SignRequestJson(SampleSign()));
  const std::string partial = EncodeFrame(ToJson(ListRequest{false}));
  buffer += partial.substr(0, 6);  // and the start of a fourth
  std::vector<std::string> types;
  for (;;) {
    auto decoded = DecodeFrame(buffer);
    ASSERT_OK(decoded);
    if (!decoded->has_value()) break;
    types.push_back((**decoded)["type"].get<std::string>());
  }
  EXPECT_EQ(types, (std::vector<std::string>{"list", "status", "sign"}));
  EXPECT_EQ(buffer, partial.substr(0, 6));
}

TEST(AgentFramingTest, OversizedLengthIsRejectedBeforeTheBodyArrives) {
  std::string buffer = Header(kMaxFrameBytes + 1);
  auto decoded = DecodeFrame(buffer);
  ASSERT_THAT(decoded, StatusIs(ErrorCode::kInvalidArgument));
  EXPECT_NE(decoded.status().message().find("exceeds"), std::string::npos);
  buffer = Header(0xffffffff) + "{}";
  EXPECT_FALSE(DecodeFrame(buffer).ok());
}

TEST(AgentFramingTest, FrameOfExactlyTheLimitIsAccepted) {
  json big{{"type", "status"}, {"pad", ""}};
  const size_t overhead = big.dump().size();
  big["pad"] = std::string(kMaxFrameBytes - overhead, 'x');
  std::string buffer = EncodeFrame(big);
  ASSERT_EQ(buffer.size(), 4 + kMaxFrameBytes);
  auto decoded = DecodeFrame(buffer);
  ASSERT_OK(decoded);
  EXPECT_TRUE(decoded->has_value());
}

TEST(AgentFramingTest, GarbageEmptyAndNonObjectBodiesAreErrors) {
  for (const std::string& body :
       {std::string("not json"), std::string("{\"type\":"), std::string("[1,2]"),
        std::string("\"hello\""), std::string("42"), std::string("null"), std::string("{} {}"),
        std::string("\xff\xfe{}", 4), std::string("{\"type\":\"list\x80\"}")}) {
    std::string buffer = RawFrame(body);
    auto decoded = DecodeFrame(buffer);
    EXPECT_FALSE(decoded.ok()) << body;
    if (!decoded.ok()) {
      EXPECT_THAT(decoded, StatusIs(ErrorCode::kInvalidArgument)) << body;
    }
  }
  std::string empty = Header(0);
  EXPECT_FALSE(DecodeFrame(empty).ok());
}

TEST(AgentFramingTest, InvalidUtf8IsReplacedWhenEncodingInsteadOfThrowing) {
  // Command lines come from /proc and can hold any bytes.
  json message{{"type", "sign"}, {"command_line", std::string("tool \xff\xfe arg")}};
  std::string frame;
  ASSERT_NO_THROW(frame = EncodeFrame(message));
  auto decoded = DecodeFrame(frame);
  ASSERT_OK(decoded);
  EXPECT_NE((**decoded)["command_line"].get<std::string>().find("\xEF\xBF\xBD"), std::string::npos);
}

// --- Messages ---------------------------------------------------------------------------------

TEST(AgentMessagesTest, TypeOfKnowsEveryTypeAndRejectsOthers) {
  EXPECT_EQ(*TypeOf(json{{"type", "hello"}}), MessageType::kHello);
  EXPECT_EQ(*TypeOf(json{{"type", "list"}}), MessageType::kList);
  EXPECT_EQ(*TypeOf(json{{"type", "certificates"}}), MessageType::kCertificates);
  EXPECT_EQ(*TypeOf(json{{"type", "sign"}}), MessageType::kSign);
  EXPECT_EQ(*TypeOf(json{{"type", "signature"}}), MessageType::kSignature);
  EXPECT_EQ(*TypeOf(json{{"type", "status"}}), MessageType::kStatus);
  EXPECT_EQ(*TypeOf(json{{"type", "error"}}), MessageType::kError);
  EXPECT_EQ(*TypeOf(json{{"type", "auth"}}), MessageType::kAuth);
  EXPECT_EQ(*TypeOf(json{{"type", "authenticated"}}), MessageType::kAuthenticated);
  EXPECT_THAT(TypeOf(json{{"type", "shutdown"}}), StatusIs(ErrorCode::kInvalidArgument));
  EXPECT_THAT(TypeOf(json{{"kind", "list"}}), StatusIs(ErrorCode::kInvalidArgument));
  EXPECT_THAT(TypeOf(json{{"type", 3}}), StatusIs(ErrorCode::kInvalidArgument));
  EXPECT_THAT(TypeOf(json::array()), StatusIs(ErrorCode::kInvalidArgument));
}

TEST(AgentMessagesTest, HelloRoundTripsBothWays) {
  Hello client{kProtocolVersion, "libsignumpkcs11/0.1", "ab12"};
  json j = RoundTrip(ToJson(client, /*from_agent=*/false));
  EXPECT_EQ(j["client"], "libsignumpkcs11/0.1");
  auto parsed = ParseHello(j);
  ASSERT_OK(parsed);
  EXPECT_EQ(parsed->protocol, kProtocolVersion);
  EXPECT_EQ(parsed->peer, "libsignumpkcs11/0.1");
  EXPECT_EQ(parsed->legacy_secret, "ab12");

  Hello agent{kProtocolVersion, "signum-agent/0.1", ""};
  j = RoundTrip(ToJson(agent, /*from_agent=*/true));
  EXPECT_EQ(j["agent"], "signum-agent/0.1");
  EXPECT_FALSE(j.contains("secret"));
  parsed = ParseHello(j);
  ASSERT_OK(parsed);
  EXPECT_EQ(parsed->peer, "signum-agent/0.1");
  EXPECT_TRUE(parsed->legacy_secret.empty());
  EXPECT_FALSE(j.contains("nonce"));
  EXPECT_FALSE(j.contains("proof"));
}

// --- TCP handshake ----------------------------------------------------------------------------

const std::string kSecret = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
const std::string kClientNonce = "202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f";
const std::string kAgentNonce = "404142434445464748494a4b4c4d4e4f505152535455565758595a5b5c5d5e5f";

TEST(AgentHandshakeTest, ProofsAreHmacSha256OverLabelAndBothNonces) {
  // Expected values from Python's hmac module: hmac.new(bytes(range(32)),
  // b"signum-agent-proof" + bytes(range(32, 64)) + bytes(range(64, 96)), "sha256").hexdigest()
  EXPECT_EQ(*HandshakeProof(ProofRole::kAgent, kSecret, kClientNonce, kAgentNonce),
            "a85cf10beebbd6f791cca4425e38a1d952da73b39dd94621d3f52e965d13ff44");
  EXPECT_EQ(*HandshakeProof(ProofRole::kClient, kSecret, kClientNonce, kAgentNonce),
            "436b3de5e00d64e3bdb5beb15958193b70805afa2989895d08e492dfee84ca43");
  // The secret file's hex may be uppercase: same key.
  std::string upper = kSecret;
  for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  EXPECT_EQ(*HandshakeProof(ProofRole::kAgent, upper, kClientNonce, kAgentNonce),
            "a85cf10beebbd6f791cca4425e38a1d952da73b39dd94621d3f52e965d13ff44");
}

TEST(AgentHandshakeTest, ProofMatchesOnlyTheRightRoleSecretAndNonces) {
  const std::string agent_proof =
      *HandshakeProof(ProofRole::kAgent, kSecret, kClientNonce, kAgentNonce);
  EXPECT_TRUE(ProofMatches(ProofRole::kAgent, kSecret, kClientNonce, kAgentNonce, agent_proof));
  // A proof is not valid for the other role (no reflection), other nonces or another secret.
  EXPECT_FALSE(ProofMatches(ProofRole::kClient, kSecret, kClientNonce, kAgentNonce, agent_proof));
  EXPECT_FALSE(ProofMatches(ProofRole::kAgent, kSecret, kAgentNonce, kClientNonce, agent_proof));
  EXPECT_FALSE(ProofMatches(ProofRole::kAgent, std::string(64, '0'), kClientNonce, kAgentNonce,
                            agent_proof));
  std::string flipped = agent_proof;
  flipped[10] = flipped[10] == '0' ? '1' : '0';
  EXPECT_FALSE(ProofMatches(ProofRole::kAgent, kSecret, kClientNonce, kAgentNonce, flipped));
  // Malformed inputs never match and never throw.
  EXPECT_FALSE(ProofMatches(ProofRole::kAgent, kSecret, kClientNonce, kAgentNonce, ""));
  EXPECT_FALSE(
      ProofMatches(ProofRole::kAgent, kSecret, kClientNonce, kAgentNonce, agent_proof + "00"));
  EXPECT_FALSE(ProofMatches(ProofRole::kAgent, "", kClientNonce, kAgentNonce, agent_proof));
  EXPECT_FALSE(ProofMatches(ProofRole::kAgent, kSecret, "", kAgentNonce, agent_proof));
  EXPECT_FALSE(ProofMatches(ProofRole::kAgent, kSecret, kClientNonce, "zz", agent_proof));
  EXPECT_THAT(HandshakeProof(ProofRole::kAgent, "abc", kClientNonce, kAgentNonce),
              StatusIs(ErrorCode::kInvalidArgument));
}

TEST(AgentHandshakeTest, NoncesAreFreshHex) {
  auto a = NewNonce();
  auto b = NewNonce();
  ASSERT_OK(a);
  ASSERT_OK(b);
  EXPECT_EQ(a->size(), 2 * kNonceBytes);
  EXPECT_EQ(a->find_first_not_of("0123456789abcdef"), std::string::npos);
  EXPECT_NE(*a, *b);
}

TEST(AgentHandshakeTest, HelloAndAuthCarryNoncesAndProofs) {
  Hello client{kProtocolVersion, "libsignumpkcs11/0.1", "", kClientNonce, ""};
  json j = RoundTrip(ToJson(client, /*from_agent=*/false));
  EXPECT_FALSE(j.contains("secret"));
  EXPECT_EQ(j["nonce"], kClientNonce);
  auto parsed = ParseHello(j);
  ASSERT_OK(parsed);
  EXPECT_EQ(parsed->nonce, kClientNonce);

  const std::string proof = *HandshakeProof(ProofRole::kAgent, kSecret, kClientNonce, kAgentNonce);
  Hello agent{kProtocolVersion, "signum-agent/0.1", "", kAgentNonce, proof};
  parsed = ParseHello(RoundTrip(ToJson(agent, /*from_agent=*/true)));
  ASSERT_OK(parsed);
  EXPECT_EQ(parsed->nonce, kAgentNonce);
  EXPECT_EQ(parsed->proof, proof);
  // Malformed nonces and proofs are refused at parse time.
  json bad = ToJson(agent, true);
  bad["nonce"] = "abc";
  EXPECT_THAT(ParseHello(bad), StatusIs(ErrorCode::kInvalidArgument));
  bad = ToJson(agent, true);
  bad["proof"] = 7;
  EXPECT_THAT(ParseHello(bad), StatusIs(ErrorCode::kInvalidArgument));

  auto auth = ParseAuthRequest(RoundTrip(ToJson(AuthRequest{proof})));
  ASSERT_OK(auth);
  EXPECT_EQ(auth->proof, proof);
  EXPECT_THAT(ParseAuthRequest(json{{"type", "auth"}}), StatusIs(ErrorCode::kInvalidArgument));
  EXPECT_THAT(ParseAuthRequest(json{{"type", "auth"}, {"proof", "xyz"}}),
              StatusIs(ErrorCode::kInvalidArgument));
  EXPECT_OK(ParseAuthenticated(RoundTrip(AuthenticatedJson())));
  EXPECT_THAT(ParseAuthenticated(ErrorJson(UnauthenticatedError("wrong proof"))),
              StatusIs(ErrorCode::kUnauthenticated));
  EXPECT_THAT(ParseAuthenticated(ToJson(StatusReport{})), StatusIs(ErrorCode::kInvalidArgument));
}

TEST(AgentMessagesTest, HelloNeedsAnIntegerProtocol) {
  EXPECT_FALSE(ParseHello(json{{"type", "hello"}, {"client", "x"}}).ok());
  EXPECT_FALSE(ParseHello(json{{"type", "hello"}, {"protocol", "1"}}).ok());
  EXPECT_FALSE(ParseHello(json{{"type", "hello"}, {"protocol", 1.5}}).ok());
  EXPECT_FALSE(ParseHello(json{{"type", "hello"}, {"protocol", 1}, {"secret", 7}}).ok());
  // Out-of-range versions are clamped, never wrapped into a valid one.
  auto huge = ParseHello(json{{"type", "hello"}, {"protocol", 4294967297ULL}});
  ASSERT_OK(huge);
  EXPECT_GT(huge->protocol, kProtocolVersion);
  auto negative = ParseHello(json{{"type", "hello"}, {"protocol", -5}});
  ASSERT_OK(negative);
  EXPECT_LT(negative->protocol, 1);
}

TEST(AgentMessagesTest, ListRequestRoundTrips) {
  for (bool refresh : {false, true}) {
    auto parsed = ParseListRequest(RoundTrip(ToJson(ListRequest{refresh})));
    ASSERT_OK(parsed);
    EXPECT_EQ(parsed->refresh, refresh);
  }
  auto defaulted = ParseListRequest(json{{"type", "list"}});
  ASSERT_OK(defaulted);
  EXPECT_FALSE(defaulted->refresh);
  EXPECT_FALSE(ParseListRequest(json{{"type", "list"}, {"refresh", "yes"}}).ok());
}

TEST(AgentMessagesTest, SignRequestRoundTrips) {
  const SignRequest original = SampleSign();
  json j = RoundTrip(SignRequestJson(original));
  EXPECT_EQ(j["type"], "sign");
  EXPECT_EQ(j["digest"], Base64Encode(original.digest));
  auto parsed = ParseSignRequest(j);
  ASSERT_OK(parsed);
  EXPECT_EQ(parsed->certificate_id, original.certificate_id);
  EXPECT_EQ(parsed->scheme, original.scheme);
  EXPECT_EQ(parsed->hash, original.hash);
  EXPECT_EQ(parsed->digest, original.digest);
  EXPECT_EQ(parsed->pss_salt_length, original.pss_salt_length);
  EXPECT_EQ(parsed->context, original.context);
}

TEST(AgentMessagesTest, SignRequestWithMissingOrWrongFieldsIsRejected) {
  const json good = SignRequestJson(SampleSign());
  ASSERT_OK(ParseSignRequest(good));
  for (const char* field : {"certificate_id", "scheme", "hash", "digest"}) {
    json j = good;
    j.erase(field);
    auto parsed = ParseSignRequest(j);
    EXPECT_FALSE(parsed.ok()) << field;
    EXPECT_THAT(parsed, StatusIs(ErrorCode::kInvalidArgument));
    EXPECT_NE(parsed.status().message().find(field), std::string::npos)
        << parsed.status().message();
  }
  json j = good;
  j["digest"] = Base64Encode(Bytes(32, 1));  // sha256 length with hash sha384
  EXPECT_FALSE(ParseSignRequest(j).ok());
  j = good;
  j["digest"] = "***";
  EXPECT_FALSE(ParseSignRequest(j).ok());
  j = good;
  j["scheme"] = "dsa";
  EXPECT_FALSE(ParseSignRequest(j).ok());
  j = good;
  j["scheme"] = "ecdsa";  // a salt only makes sense with PSS
  EXPECT_FALSE(ParseSignRequest(j).ok());
  j = good;
  j["pss_salt_length"] = -1;
  EXPECT_FALSE(ParseSignRequest(j).ok());
  j = good;
  j["context"] = "me";
  EXPECT_FALSE(ParseSignRequest(j).ok());
  j = good;
  j["context"]["pid"] = "4242";
  EXPECT_FALSE(ParseSignRequest(j).ok());
  j = good;
  j["certificate_id"] = "";
  EXPECT_FALSE(ParseSignRequest(j).ok());
}

TEST(AgentMessagesTest, OverlongContextClaimsAreCutNotRejected) {
  SignRequest r = SampleSign();
  r.context.command_line = std::string(wire::kMaxCommandLineLength - 1, 'a') + "\xC3\xA9tail";
  r.context.process = std::string(1000, 'p');
  auto parsed = ParseSignRequest(RoundTrip(SignRequestJson(r)));
  ASSERT_OK(parsed);
  // The two-byte character straddling the limit is dropped whole.
  EXPECT_EQ(parsed->context.command_line, std::string(wire::kMaxCommandLineLength - 1, 'a'));
  EXPECT_EQ(parsed->context.process, std::string(wire::kMaxProcessLength, 'p'));
}

TEST(Utf8Test, InvalidSequencesBecomeQuestionMarks) {
  EXPECT_EQ(ToValidUtf8("plain ascii"), "plain ascii");
  EXPECT_EQ(ToValidUtf8("caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x94\x91"),
            "caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x94\x91");
  EXPECT_EQ(ToValidUtf8("a\xFF" "b"), "a?b");
  EXPECT_EQ(ToValidUtf8("\xC3"), "?");                 // truncated sequence
  EXPECT_EQ(ToValidUtf8("\xC0\xAF"), "??");            // overlong '/'
  EXPECT_EQ(ToValidUtf8("\xED\xA0\x80"), "???");       // UTF-16 surrogate
  EXPECT_EQ(ToValidUtf8("\xF4\x90\x80\x80"), "????");  // past U+10FFFF
  EXPECT_EQ(ToValidUtf8(std::string("nul\0in", 6)), std::string("nul\0in", 6));
  // Whatever comes out is accepted by the JSON encoder unchanged.
  const std::string fixed = ToValidUtf8("\x80\x81ok\xC3\xA9");
  EXPECT_EQ(json(fixed).dump(), "\"??ok\xC3\xA9\"");
}

TEST(Utf8Test, TruncationNeverSplitsACharacter) {
  EXPECT_EQ(TruncateUtf8("abc", 5), "abc");
  EXPECT_EQ(TruncateUtf8("abcdef", 3), "abc");
  EXPECT_EQ(TruncateUtf8("ab\xE2\x82\xAC", 4), "ab");
  EXPECT_EQ(TruncateUtf8("ab\xE2\x82\xAC", 5), "ab\xE2\x82\xAC");
  EXPECT_EQ(TruncateUtf8("\xF0\x9F\x94\x91", 3), "");
  EXPECT_EQ(TruncateUtf8("", 0), "");
}

TEST(AgentMessagesTest, CertificatesRoundTrip) {
  wire::CertificateListResponse list;
  list.certificates = {SampleEntry(), SampleEntry()};
  list.certificates[1].label = "second";
  // Qualified: wire::ToJson is found by ADL as well.
  json j = RoundTrip(agent_protocol::ToJson(list));
  EXPECT_EQ(j["type"], "certificates");
  auto parsed = ParseCertificates(j);
  ASSERT_OK(parsed);
  ASSERT_EQ(parsed->certificates.size(), 2u);
  const auto& e = parsed->certificates[0];
  EXPECT_EQ(e.id, SampleEntry().id);
  EXPECT_EQ(e.key.curve, EcCurve::kP384);
  EXPECT_EQ(e.chain_pem, SampleEntry().chain_pem);
  EXPECT_EQ(e.schemes, SampleEntry().schemes);
  EXPECT_EQ(e.hashes, SampleEntry().hashes);
  EXPECT_EQ(parsed->certificates[1].label, "second");
  auto empty =
      ParseCertificates(RoundTrip(agent_protocol::ToJson(wire::CertificateListResponse{})));
  ASSERT_OK(empty);
  EXPECT_TRUE(empty->certificates.empty());
  EXPECT_FALSE(ParseCertificates(json{{"type", "certificates"}}).ok());
}

TEST(AgentMessagesTest, SignatureRoundTrips) {
  const Bytes signature = {1, 2, 3, 250, 251, 252, 0};
  auto parsed = ParseSignature(RoundTrip(SignatureJson(signature)));
  ASSERT_OK(parsed);
  EXPECT_EQ(*parsed, signature);
  EXPECT_FALSE(ParseSignature(json{{"type", "signature"}}).ok());
  EXPECT_FALSE(ParseSignature(json{{"type", "signature"}, {"signature", "!!"}}).ok());
  EXPECT_FALSE(ParseSignature(json{{"type", "signature"}, {"signature", ""}}).ok());
}

TEST(AgentMessagesTest, StatusRoundTrips) {
  EXPECT_EQ(*TypeOf(RoundTrip(StatusRequestJson())), MessageType::kStatus);
  StatusReport report{"https://127.0.0.1:8443", true, "token sgn_1a2b3c4d", 6, "ok"};
  auto parsed = ParseStatusReport(RoundTrip(ToJson(report)));
  ASSERT_OK(parsed);
  EXPECT_EQ(parsed->server_url, report.server_url);
  EXPECT_TRUE(parsed->server_reachable);
  EXPECT_EQ(parsed->user, report.user);
  EXPECT_EQ(parsed->certificates, 6u);
  EXPECT_EQ(parsed->message, "ok");
  EXPECT_FALSE(ParseStatusReport(json{{"type", "status"}, {"certificates", -1}}).ok());
  EXPECT_FALSE(ParseStatusReport(json{{"type", "status"}, {"server_reachable", "yes"}}).ok());
}

TEST(AgentMessagesTest, EveryErrorCodeRoundTrips) {
  for (int i = static_cast<int>(ErrorCode::kInvalidArgument);
       i <= static_cast<int>(ErrorCode::kInternal); ++i) {
    const auto code = static_cast<ErrorCode>(i);
    const Status original(code, "message for " + std::string(ErrorCodeName(code)));
    json j = RoundTrip(ErrorJson(original));
    EXPECT_EQ(j["type"], "error");
    EXPECT_EQ(j["code"], ErrorCodeName(code));
    Status back = ErrorFromReply(j);
    EXPECT_EQ(back.code(), code);
    EXPECT_EQ(back.message(), original.message());
  }
}

TEST(AgentMessagesTest, ErrorRepliesNeverReadAsSuccess) {
  // An "OK" or unknown code in an error reply is still an error.
  EXPECT_THAT(ErrorFromReply(json{{"type", "error"}, {"code", "OK"}}),
              StatusIs(ErrorCode::kInternal));
  Status unknown = ErrorFromReply(json{{"type", "error"}, {"code", "TEAPOT"}, {"message", "m"}});
  EXPECT_THAT(unknown, StatusIs(ErrorCode::kInternal));
  EXPECT_NE(unknown.message().find("TEAPOT"), std::string::npos);
  EXPECT_THAT(ErrorFromReply(json{{"type", "error"}}), StatusIs(ErrorCode::kInternal));
  EXPECT_EQ(ErrorJson(Status::Ok())["code"], "INTERNAL");
  // Non-error replies are OK.
  EXPECT_OK(ErrorFromReply(SignatureJson(Bytes{1})));
  EXPECT_OK(ErrorFromReply(ToJson(StatusReport{})));
}

TEST(AgentMessagesTest, ParsersReturnTheAgentsErrorForAnErrorReply) {
  const json error =
      ErrorJson(UnavailableError("signum-server at https://127.0.0.1:1 is unreachable"));
  EXPECT_THAT(ParseCertificates(error), StatusIs(ErrorCode::kUnavailable));
  EXPECT_THAT(ParseSignature(error), StatusIs(ErrorCode::kUnavailable));
  EXPECT_THAT(ParseStatusReport(error), StatusIs(ErrorCode::kUnavailable));
  EXPECT_THAT(ParseHello(ErrorJson(UnauthenticatedError("bad secret"))),
              StatusIs(ErrorCode::kUnauthenticated));
  EXPECT_EQ(ParseSignature(error).status().message(),
            "signum-server at https://127.0.0.1:1 is unreachable");
}

TEST(AgentMessagesTest, ParsersRejectTheWrongMessageType) {
  EXPECT_THAT(ParseSignature(ToJson(ListRequest{})), StatusIs(ErrorCode::kInvalidArgument));
  EXPECT_THAT(ParseSignRequest(StatusRequestJson()), StatusIs(ErrorCode::kInvalidArgument));
  EXPECT_THAT(ParseListRequest(SignatureJson(Bytes{1})), StatusIs(ErrorCode::kInvalidArgument));
  EXPECT_THAT(ParseHello(ToJson(ListRequest{})), StatusIs(ErrorCode::kInvalidArgument));
  EXPECT_THAT(ParseStatusReport(json::array()), StatusIs(ErrorCode::kInvalidArgument));
}

// The table is the protocol: every MessageType has exactly one row, names are unique, and every
// client request names an agent message as its reply.
TEST(AgentMessageTableTest, EveryTypeHasOneRowAndEveryRequestAReply) {
  std::set<std::string_view> names;
  for (int i = 0; i <= static_cast<int>(MessageType::kAuthenticated); ++i) {
    const auto type = static_cast<MessageType>(i);
    const MessageSpec& spec = SpecOf(type);
    EXPECT_EQ(spec.type, type) << i;
    EXPECT_TRUE(names.insert(spec.name).second) << spec.name;
    auto parsed = TypeOf(json{{"type", std::string(spec.name)}});
    ASSERT_OK(parsed) << spec.name;
    EXPECT_EQ(*parsed, type);
    if (spec.sender == Sender::kClient) {
      ASSERT_TRUE(spec.reply.has_value()) << spec.name;
      // "hello" and "status" name both the request and the agent's reply.
      EXPECT_TRUE(SpecOf(*spec.reply).sender == Sender::kAgent || *spec.reply == type)
          << spec.name;
    } else {
      EXPECT_FALSE(spec.reply.has_value()) << spec.name;
    }
  }
  EXPECT_EQ(names.size(), MessageTable().size());
  EXPECT_TRUE(IsSessionRequest(MessageType::kSign));
  EXPECT_FALSE(IsSessionRequest(MessageType::kHello));
  EXPECT_FALSE(IsSessionRequest(MessageType::kSignature));
}

TEST(AgentMessageTableTest, CheckReplyTakesTheTablesReplyOrAnError) {
  EXPECT_OK(CheckReply(MessageType::kSign, SignatureJson(AsBytes("sig"))));
  EXPECT_OK(CheckReply(MessageType::kStatus, ToJson(StatusReport{})));
  const Status wrong = CheckReply(MessageType::kSign, ToJson(StatusReport{}));
  EXPECT_THAT(wrong, StatusIs(ErrorCode::kInvalidArgument));
  EXPECT_NE(wrong.message().find("expected a 'signature' message, got 'status'"), std::string::npos)
      << wrong.message();
  EXPECT_THAT(CheckReply(MessageType::kSign, ErrorJson(NotFoundError("no such key"))),
              StatusIs(ErrorCode::kNotFound));
  EXPECT_FALSE(CheckReply(MessageType::kSignature, SignatureJson(AsBytes("sig"))).ok());
}

}  // namespace
}  // namespace signum::agent_protocol

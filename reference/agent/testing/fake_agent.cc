#include "signum/agent/fake_agent.h"

#include <sys/socket.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "signum/core/encoding.h"
#include "signum/core/files.h"
#include "signum/core/system_random.h"
#include "signum/testing/loopback.h"
#include "signum/testing/test_pki.h"

namespace signum::agent::testing {
namespace {

using nlohmann::json;
namespace proto = agent_protocol;

// How often blocked reads and waits look at the stop flag.
constexpr int kTickMs = 20;

}  // namespace

Result<std::unique_ptr<FakeAgent>> FakeAgent::Start(const FakeAgentOptions& options) {
  if (options.dir.empty()) return InvalidArgumentError("FakeAgentOptions.dir is required");
  if (!options.unix_socket && !options.tcp) {
    return InvalidArgumentError("a fake agent needs a Unix socket, TCP or both");
  }
  std::unique_ptr<FakeAgent> agent(new FakeAgent(options));
  if (options.unix_socket) {
    agent->unix_socket_ = options.dir + "/agent.sock";
    agent->unix_fd_ = signum::testing::ListenUnixSocket(agent->unix_socket_);
    if (agent->unix_fd_ < 0) return UnavailableError("cannot listen on " + agent->unix_socket_);
  }
  if (options.tcp) {
    SIGNUM_ASSIGN_OR_RETURN(Bytes secret, SystemRandomBytes(32));
    agent->secret_hex_ = HexEncode(secret);
    agent->secret_file_ = options.dir + "/agent.secret";
    SIGNUM_RETURN_IF_ERROR(WriteFileAtomically(agent->secret_file_, agent->secret_hex_ + "\n"));
    const signum::testing::TcpListener listener = signum::testing::ListenLoopbackTcp();
    if (listener.fd < 0) return UnavailableError("cannot listen on 127.0.0.1");
    agent->tcp_fd_ = listener.fd;
    agent->tcp_port_ = listener.port;
  }
  agent->accept_thread_ = std::thread([raw = agent.get()] { raw->AcceptLoop(); });
  return agent;
}

FakeAgent::~FakeAgent() {
  stop_ = true;
  if (accept_thread_.joinable()) accept_thread_.join();
  // The accept loop has ended, so no thread is added any more.
  for (std::thread& t : connection_threads_) t.join();
  if (unix_fd_ >= 0) ::close(unix_fd_);
  if (tcp_fd_ >= 0) ::close(tcp_fd_);
}

// --- Script -----------------------------------------------------------------------------------

void FakeAgent::AddCertificate(const wire::CertificateEntry& entry,
                               std::shared_ptr<SoftwareKey> key) {
  std::lock_guard lock(mu_);
  certificates_.push_back(entry);
  if (key) keys_[entry.id] = std::move(key);
}

wire::CertificateEntry FakeAgent::AddLeaf(const signum::testing::TestPki& pki,
                                          const std::string& label, const std::string& spec_name) {
  std::unique_ptr<SoftwareKey> key;
  wire::CertificateEntry entry = pki.Leaf(label, spec_name, &key);
  AddCertificate(entry, std::move(key));
  return entry;
}

void FakeAgent::ClearCertificates() {
  std::lock_guard lock(mu_);
  certificates_.clear();
  keys_.clear();
}

void FakeAgent::SetSignHandler(SignHandler handler) {
  std::lock_guard lock(mu_);
  sign_handler_ = std::move(handler);
}

void FakeAgent::FailNext(MessageType type, Status status, int count) {
  std::lock_guard lock(mu_);
  for (int i = 0; i < count; ++i) failures_[type].push_back(status);
}

void FakeAgent::DisconnectNext(MessageType type, int count) {
  std::lock_guard lock(mu_);
  disconnects_[type] += count;
}

void FakeAgent::SetDelay(MessageType type, std::chrono::milliseconds delay) {
  std::lock_guard lock(mu_);
  delays_[type] = delay;
}

void FakeAgent::ScriptCertificate(const std::string& certificate_id, CertificateScript script) {
  std::lock_guard lock(mu_);
  scripts_[certificate_id] = std::move(script);
}

Result<Bytes> FakeAgent::SignWithKey(const wire::SignRequest& request) const {
  std::shared_ptr<SoftwareKey> key;
  {
    std::lock_guard lock(mu_);
    auto it = keys_.find(request.certificate_id);
    if (it != keys_.end()) key = it->second;
  }
  if (!key) return NotFoundError("no certificate with id " + request.certificate_id);
  return key->SignDigest(request.scheme, request.hash, request.digest, request.pss_salt_length);
}

// --- Observations -----------------------------------------------------------------------------

std::vector<wire::SignRequest> FakeAgent::sign_requests() const {
  std::lock_guard lock(mu_);
  return sign_requests_;
}

int FakeAgent::requests(MessageType type) const {
  std::lock_guard lock(mu_);
  auto it = request_counts_.find(type);
  return it == request_counts_.end() ? 0 : it->second;
}

int FakeAgent::connections() const {
  std::lock_guard lock(mu_);
  return connections_;
}

AgentEndpoint FakeAgent::endpoint() const {
  if (unix_socket_.empty()) return tcp_endpoint();
  AgentEndpoint e;
  e.unix_socket = unix_socket_;
  return e;
}

AgentEndpoint FakeAgent::tcp_endpoint() const {
  AgentEndpoint e;
  e.tcp_host = "127.0.0.1";
  e.tcp_port = tcp_port_;
  e.secret = secret_hex_;
  return e;
}

std::vector<std::pair<std::string, std::string>> FakeAgent::Environment() const {
  if (!unix_socket_.empty()) return {{"SIGNUM_AGENT_SOCKET", unix_socket_}};
  return {{"SIGNUM_AGENT_SOCKET", options_.dir + "/no-socket"},
          {"SIGNUM_AGENT_TCP", "127.0.0.1:" + std::to_string(tcp_port_)},
          {"SIGNUM_AGENT_SECRET_FILE", secret_file_}};
}

// --- Serving ----------------------------------------------------------------------------------

void FakeAgent::AcceptLoop() {
  while (!stop_) {
    for (const auto& [fd, tcp] : {std::pair{unix_fd_, false}, std::pair{tcp_fd_, true}}) {
      if (fd < 0 || !signum::testing::WaitReadable(fd, kTickMs / 2)) continue;
      const int connection = ::accept4(fd, nullptr, nullptr, SOCK_CLOEXEC);
      if (connection < 0) continue;
      std::lock_guard lock(mu_);
      ++connections_;
      connection_threads_.emplace_back([this, connection, tcp = tcp] {
        Serve(connection, tcp);
        ::close(connection);
      });
    }
  }
}

std::optional<json> FakeAgent::ReadFrame(int fd, std::string& buffer) {
  while (!stop_) {
    auto frame = proto::DecodeFrame(buffer);
    if (!frame.ok()) return std::nullopt;
    if (frame->has_value()) return std::move(**frame);
    if (!signum::testing::WaitReadable(fd, kTickMs)) continue;
    char chunk[4096];
    const ssize_t n = ::read(fd, chunk, sizeof chunk);
    if (n <= 0) return std::nullopt;
    buffer.append(chunk, static_cast<size_t>(n));
  }
  return std::nullopt;
}

bool FakeAgent::WriteFrame(int fd, const json& message) {
  const std::string frame = proto::EncodeFrame(message);
  size_t sent = 0;
  while (sent < frame.size()) {
    const ssize_t n = ::send(fd, frame.data() + sent, frame.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) return false;
    sent += static_cast<size_t>(n);
  }
  return true;
}

void FakeAgent::Sleep(std::chrono::milliseconds delay) {
  const auto end = std::chrono::steady_clock::now() + delay;
  while (!stop_ && std::chrono::steady_clock::now() < end) {
    std::this_thread::sleep_for(std::chrono::milliseconds(kTickMs / 4));
  }
}

bool FakeAgent::Handshake(int fd, bool tcp, std::string& buffer) {
  std::optional<json> message = ReadFrame(fd, buffer);
  if (!message) return false;
  auto hello = proto::ParseHello(*message);
  if (!hello.ok()) {
    WriteFrame(fd, proto::ErrorJson(hello.status()));
    return false;
  }
  proto::Hello reply;
  reply.peer = options_.name;
  if (!tcp) return WriteFrame(fd, proto::ToJson(reply, /*from_agent=*/true));

  // TCP: prove the secret, then require the client's proof (agent_protocol.h).
  auto nonce = proto::NewNonce();
  if (!nonce.ok()) return false;
  auto proof =
      proto::HandshakeProof(proto::ProofRole::kAgent, secret_hex_, hello->nonce, *nonce);
  if (!proof.ok()) {
    WriteFrame(fd, proto::ErrorJson(proof.status()));
    return false;
  }
  reply.nonce = *nonce;
  reply.proof = *proof;
  if (!WriteFrame(fd, proto::ToJson(reply, /*from_agent=*/true))) return false;
  message = ReadFrame(fd, buffer);
  if (!message) return false;
  auto auth = proto::ParseAuthRequest(*message);
  if (!auth.ok() || !proto::ProofMatches(proto::ProofRole::kClient, secret_hex_, hello->nonce,
                                         *nonce, auth->proof)) {
    WriteFrame(fd, proto::ErrorJson(UnauthenticatedError("wrong proof of the agent secret")));
    return false;
  }
  return WriteFrame(fd, proto::AuthenticatedJson());
}

void FakeAgent::Serve(int fd, bool tcp) {
  std::string buffer;
  if (!Handshake(fd, tcp, buffer)) return;
  while (!stop_) {
    std::optional<json> request = ReadFrame(fd, buffer);
    if (!request) return;
    json reply;
    if (!Answer(*request, &reply)) return;
    if (!WriteFrame(fd, reply)) return;
    // The real agent closes after a malformed or out-of-place request, and so does this one.
    if (reply.value("type", "") == "error" && reply.value("code", "") == "INVALID_ARGUMENT") return;
  }
}

bool FakeAgent::Answer(const json& request, json* reply) {
  auto type = proto::TypeOf(request);
  if (!type.ok() || !proto::IsSessionRequest(*type)) {
    *reply = proto::ErrorJson(type.ok() ? InvalidArgumentError("not a session request")
                                        : type.status());
    return true;
  }
  std::optional<Status> failure;
  std::chrono::milliseconds delay{0};
  {
    std::lock_guard lock(mu_);
    ++request_counts_[*type];
    if (int& pending = disconnects_[*type]; pending > 0) {
      --pending;
      return false;
    }
    if (auto& queued = failures_[*type]; !queued.empty()) {
      failure = queued.front();
      queued.erase(queued.begin());
    }
    if (auto it = delays_.find(*type); it != delays_.end()) delay = it->second;
  }
  Sleep(delay);
  if (failure) {
    *reply = proto::ErrorJson(*failure);
    return true;
  }
  switch (*type) {
    case MessageType::kList: {
      auto parsed = proto::ParseListRequest(request);
      if (!parsed.ok()) {
        *reply = proto::ErrorJson(parsed.status());
        return true;
      }
      std::lock_guard lock(mu_);
      *reply = proto::ToJson(wire::CertificateListResponse{certificates_});
      return true;
    }
    case MessageType::kSign: {
      auto parsed = proto::ParseSignRequest(request);
      if (!parsed.ok()) {
        *reply = proto::ErrorJson(parsed.status());
        return true;
      }
      SignHandler handler;
      std::optional<CertificateScript> script;
      {
        std::lock_guard lock(mu_);
        sign_requests_.push_back(*parsed);
        handler = sign_handler_;
        if (auto it = scripts_.find(parsed->certificate_id); it != scripts_.end()) {
          script = it->second;
        }
      }
      if (script) {
        Sleep(script->delay);
        if (script->disconnect || stop_) return false;
        if (script->handler) handler = script->handler;
      }
      Result<Bytes> signature = handler ? handler(*parsed) : SignWithKey(*parsed);
      *reply = signature.ok() ? proto::SignatureJson(*signature)
                              : proto::ErrorJson(signature.status());
      return true;
    }
    case MessageType::kStatus: {
      proto::StatusReport report;
      report.server_url = "https://fake-agent.invalid";
      report.server_reachable = true;
      report.user = "fake";
      std::lock_guard lock(mu_);
      report.certificates = certificates_.size();
      report.message = "ok";
      *reply = proto::ToJson(report);
      return true;
    }
    default:
      *reply = proto::ErrorJson(InvalidArgumentError("not a session request"));
      return true;
  }
}

}  // namespace signum::agent::testing

#include "provisioning.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <boost/process.hpp>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "auth.h"
#include "signum/core/files.h"
#include "signum/core/log.h"

namespace signum::server {
namespace {

namespace fs = std::filesystem;
namespace bp = boost::process;
using nlohmann::json;

Status MakeDir(const std::string& path, unsigned mode) {
  std::error_code ec;
  fs::create_directories(path, ec);
  if (ec) return InternalError("cannot create " + path + ": " + ec.message());
  ::chmod(path.c_str(), mode);
  return Status::Ok();
}

Status WritePem(const std::string& path, const std::string& pem, unsigned mode = 0644) {
  return WriteFileAtomically(path, pem, mode);
}

// A free TCP port on 127.0.0.1 right now (the kernel picks it).
Result<uint16_t> PickFreeLoopbackPort() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return InternalError("socket() failed");
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof addr;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    ::close(fd);
    return InternalError("cannot pick a free loopback port");
  }
  ::close(fd);
  return static_cast<uint16_t>(ntohs(addr.sin_port));
}

// Initialises a SoftHSM2 token with softhsm2-util (the documented way; C_InitToken would also
// work but SoftHSM re-numbers the slot afterwards).
Status InitSoftHsmToken(const std::string& softhsm_conf, const std::string& label,
                        const std::string& pin, const std::string& so_pin) {
  boost::filesystem::path util = bp::search_path("softhsm2-util");
  if (util.empty())
    return FailedPreconditionError(
        "softhsm2-util not found: SoftHSM2 is not installed (apt-get install softhsm2)");
  bp::environment env = boost::this_process::environment();
  env["SOFTHSM2_CONF"] = softhsm_conf;
  bp::ipstream output;
  std::error_code ec;
  int rc = bp::system(util, "--init-token", "--free", "--label", label, "--pin", pin, "--so-pin",
                      so_pin, bp::env = env, (bp::std_out & bp::std_err) > output, ec);
  std::string text, line;
  while (std::getline(output, line)) text += line + "\n";
  if (ec) return InternalError("cannot run softhsm2-util: " + ec.message());
  if (rc != 0) return InternalError("softhsm2-util --init-token failed: " + text);
  return Status::Ok();
}

// DIR/hsm/demo-keys.json (see kDemoKeyLedger).
struct LedgerEntry {
  std::string key_id_hex;
  std::string label;
};

Result<std::vector<LedgerEntry>> ReadKeyLedger(const std::string& path) {
  SIGNUM_ASSIGN_OR_RETURN(std::string text, ReadFile(path));
  try {
    std::vector<LedgerEntry> entries;
    const json ledger = json::parse(text);  // named: a temporary would die before the loop
    for (const json& key : ledger.at("keys"))
      entries.push_back({key.at("key_id").get<std::string>(), key.at("label").get<std::string>()});
    return entries;
  } catch (const std::exception& e) {
    return DataLossError(path + " is not a demo key ledger: " + e.what());
  }
}

Status WriteKeyLedger(const std::string& path, const std::vector<LedgerEntry>& entries) {
  json keys = json::array();
  for (const LedgerEntry& e : entries)
    keys.push_back({{"key_id", e.key_id_hex}, {"label", e.label}});
  return WriteFileAtomically(path, json{{"keys", keys}}.dump(2) + "\n", 0644);
}

std::string RandomDigits(size_t n) {
  Bytes random = RandomBytes(n);
  std::string out;
  for (uint8_t b : random) out += static_cast<char>('0' + b % 10);
  return out;
}

}  // namespace

Result<FileCa> LoadFileCa(const std::string& cert_pem_file, const std::string& key_pem_file,
                          const std::string& chain_pem_file) {
  SIGNUM_ASSIGN_OR_RETURN(std::string cert_pem, ReadFile(cert_pem_file));
  SIGNUM_ASSIGN_OR_RETURN(std::string key_pem, ReadFile(key_pem_file));
  SIGNUM_ASSIGN_OR_RETURN(Certificate cert, Certificate::FromPem(cert_pem));
  SIGNUM_ASSIGN_OR_RETURN(std::unique_ptr<SoftwareKey> key, SoftwareKey::FromPem(key_pem));
  if (key->public_key().SpkiDer() != cert.SpkiDer())
    return InvalidArgumentError("CA key " + key_pem_file + " does not belong to " + cert_pem_file);
  std::vector<Certificate> chain;
  if (!chain_pem_file.empty()) {
    SIGNUM_ASSIGN_OR_RETURN(std::string chain_pem, ReadFile(chain_pem_file));
    SIGNUM_ASSIGN_OR_RETURN(chain, Certificate::AllFromPem(chain_pem));
  }
  return FileCa{std::move(cert), std::move(key), std::move(chain)};
}

Result<CertificateRecord> ImportCertificate(HsmBackend& hsm, ByteView key_id,
                                            const std::string& label,
                                            const Certificate& certificate,
                                            std::vector<Certificate> chain,
                                            std::vector<std::string> groups) {
  SIGNUM_ASSIGN_OR_RETURN(HsmKey key, hsm.FindKey(key_id));
  if (key.public_key.SpkiDer() != certificate.SpkiDer())
    return InvalidArgumentError("certificate '" + certificate.Subject() +
                                "' does not carry the public key of HSM key " + HexEncode(key_id));
  if (!key.sensitive || key.extractable)
    return FailedPreconditionError("HSM key " + HexEncode(key_id) +
                                   " is not CKA_SENSITIVE/non-extractable; Signum will not use it");
  SIGNUM_RETURN_IF_ERROR(hsm.StoreCertificate(key_id, label, certificate));
  CertificateRecord record{certificate.Sha1ThumbprintHex(),
                           label,
                           HexEncode(key_id),
                           key.public_key.spec(),
                           certificate,
                           std::move(chain),
                           std::move(groups),
                           true};
  return record;
}

Result<CertificateRecord> EnrollKey(HsmBackend& hsm, FileCa& ca, const EnrollRequest& request) {
  SIGNUM_ASSIGN_OR_RETURN(HsmKey key, hsm.GenerateKeyPair(request.spec, request.label));
  return CertifyKey(hsm, ca, key, request);
}

Result<CertificateRecord> CertifyKey(HsmBackend& hsm, FileCa& ca, const HsmKey& key,
                                     const EnrollRequest& request) {
  SIGNUM_ASSIGN_OR_RETURN(std::unique_ptr<DigestSigner> signer, hsm.SignerFor(key.id));
  // The CSR round trip proves the HSM key can sign before a certificate is issued for it.
  SIGNUM_ASSIGN_OR_RETURN(Bytes csr, BuildCsrDer(request.subject, *signer));
  SIGNUM_ASSIGN_OR_RETURN(ParsedCsr parsed, ParseAndVerifyCsr(ToString(csr)));
  CertificateTemplate tmpl;
  tmpl.subject = parsed.subject;
  tmpl.role = CertificateRole::kCodeSigning;
  tmpl.validity_days = request.validity_days;
  tmpl.emails = request.emails;
  SIGNUM_ASSIGN_OR_RETURN(Certificate cert,
                          IssueCertificate(tmpl, parsed.public_key, ca.certificate, *ca.key));
  std::vector<Certificate> chain{ca.certificate};
  chain.insert(chain.end(), ca.chain.begin(), ca.chain.end());
  return ImportCertificate(hsm, key.id, request.label, cert, std::move(chain), request.groups);
}

Result<DemoSummary> InitDemo(const DemoOptions& options) {
  if (options.dir.empty()) return InvalidArgumentError("init-demo needs a directory");
  const std::string dir = fs::absolute(options.dir).lexically_normal().string();
  if (fs::exists(dir + "/server.json"))
    return AlreadyExistsError(dir + " already holds a deployment (server.json exists)");
  const bool fresh_softhsm = !options.existing_token.has_value();
  if (!fs::exists(options.module_path))
    return FailedPreconditionError(
        fresh_softhsm ? "SoftHSM2 module " + options.module_path +
                            " not found: SoftHSM2 is not installed (apt-get install softhsm2)"
                      : "PKCS#11 module " + options.module_path + " not found");
  for (const char* sub : {"", "/hsm", "/ca", "/tls", "/audit", "/logs"})
    SIGNUM_RETURN_IF_ERROR(MakeDir(dir + sub, 0755));
  for (const char* sub : {"/secrets", "/credentials"})
    SIGNUM_RETURN_IF_ERROR(MakeDir(dir + sub, 0700));

  ServerConfig config;
  config.config_dir = dir;
  config.hsm_module = options.module_path;
  config.hsm_token_label = options.token_label;
  config.hsm_serialize = options.hsm_serialize;
  if (fresh_softhsm) {
    // 1. A fresh SoftHSM2 token with its own configuration.
    SIGNUM_RETURN_IF_ERROR(MakeDir(dir + "/hsm/tokens", 0755));
    const std::string softhsm_conf = dir + "/hsm/softhsm2.conf";
    SIGNUM_RETURN_IF_ERROR(WriteFileAtomically(softhsm_conf,
                                               "directories.tokendir = " + dir +
                                                   "/hsm/tokens\n"
                                                   "objectstore.backend = file\n"
                                                   "log.level = ERROR\n"
                                                   "slots.removable = false\n",
                                               0644));
    const std::string pin = RandomDigits(8);
    const std::string so_pin = RandomDigits(8);
    SIGNUM_RETURN_IF_ERROR(InitSoftHsmToken(softhsm_conf, options.token_label, pin, so_pin));
    SIGNUM_RETURN_IF_ERROR(WriteFileAtomically(dir + "/secrets/hsm.pin", pin + "\n", 0600));
    SIGNUM_RETURN_IF_ERROR(WriteFileAtomically(dir + "/secrets/hsm-so.pin", so_pin + "\n", 0600));
    config.hsm_pin_file = dir + "/secrets/hsm.pin";
    config.hsm_environment["SOFTHSM2_CONF"] = softhsm_conf;
  } else {
    // 1. The vendor's token as it is: no initialisation, the PIN stays in the vendor's file.
    const std::string pin_file = fs::absolute(options.existing_token->pin_file).string();
    SIGNUM_RETURN_IF_ERROR(ReadSecretFile(pin_file).status().WithContext("HSM PIN file"));
    config.hsm_pin_file = pin_file;
    config.hsm_environment = options.existing_token->environment;
  }

  // 2. The configuration, so every later step goes through the same code as `serve`.
  uint16_t port = options.port;
  if (port == 0) {
    SIGNUM_ASSIGN_OR_RETURN(port, PickFreeLoopbackPort());
  }
  config.https.listen_address = "127.0.0.1";
  config.https.port = port;
  config.https.certificate_chain_file = dir + "/tls/server-chain.pem";
  config.https.private_key_file = dir + "/tls/server.key";
  config.https.client_ca_file = dir + "/ca/client-ca.pem";
  config.state_file = dir + "/state.json";
  config.audit_log = dir + "/audit/audit.log";
  config.log_file = dir + "/logs/server.log";
  const std::string config_path = dir + "/server.json";
  SIGNUM_RETURN_IF_ERROR(
      WriteFileAtomically(config_path, ServerConfigToJson(config).dump(2) + "\n", 0644));
  // Open the token now: a wrong module, label or PIN fails before any other work.
  SIGNUM_ASSIGN_OR_RETURN(HsmConfig hsm_config, ResolveHsmConfig(config));
  hsm_config.pool_size = 1;  // provisioning is sequential
  SIGNUM_ASSIGN_OR_RETURN(std::unique_ptr<HsmBackend> hsm, HsmBackend::Open(hsm_config));
  const std::string ledger_path = dir + "/" + kDemoKeyLedger;
  std::vector<LedgerEntry> ledger;
  SIGNUM_RETURN_IF_ERROR(WriteKeyLedger(ledger_path, ledger));

  // 3. The demo PKI: root -> issuing CA for code signing, a client CA, the server's TLS
  // certificate.
  const KeySpec ca_spec{KeyType::kRsa, 3072, EcCurve::kP256};
  SIGNUM_ASSIGN_OR_RETURN(std::unique_ptr<SoftwareKey> root_key, SoftwareKey::Generate(ca_spec));
  CertificateTemplate root_tmpl{
      {{"CN", "Signum Harness Demo Root CA"}, {"O", "Signum Harness Demo"}},
      CertificateRole::kRootCa,
      3650,
      {},
      {},
      {}};
  SIGNUM_ASSIGN_OR_RETURN(Certificate root, IssueCertificate(root_tmpl, root_key->public_key(),
                                                             std::nullopt, *root_key));
  SIGNUM_ASSIGN_OR_RETURN(std::unique_ptr<SoftwareKey> issuing_key, SoftwareKey::Generate(ca_spec));
  CertificateTemplate issuing_tmpl{
      {{"CN", "Signum Harness Demo Code Signing CA"}, {"O", "Signum Harness Demo"}},
      CertificateRole::kIntermediateCa,
      1825,
      {},
      {},
      {}};
  SIGNUM_ASSIGN_OR_RETURN(
      Certificate issuing,
      IssueCertificate(issuing_tmpl, issuing_key->public_key(), root, *root_key));
  SIGNUM_RETURN_IF_ERROR(WritePem(dir + "/ca/root.pem", root.Pem()));
  SIGNUM_RETURN_IF_ERROR(WritePem(dir + "/ca/root.key", root_key->PrivateKeyPem(), 0600));
  SIGNUM_RETURN_IF_ERROR(WritePem(dir + "/ca/issuing.pem", issuing.Pem()));
  SIGNUM_RETURN_IF_ERROR(WritePem(dir + "/ca/issuing.key", issuing_key->PrivateKeyPem(), 0600));
  SIGNUM_RETURN_IF_ERROR(WritePem(dir + "/ca/issuing-chain.pem", root.Pem()));
  SIGNUM_RETURN_IF_ERROR(WritePem(dir + "/ca/chain.pem", issuing.Pem() + root.Pem()));

  const KeySpec tls_spec{KeyType::kEc, 0, EcCurve::kP256};
  SIGNUM_ASSIGN_OR_RETURN(std::unique_ptr<SoftwareKey> tls_key, SoftwareKey::Generate(tls_spec));
  CertificateTemplate tls_tmpl{{{"CN", "localhost"}, {"O", "Signum Harness Demo"}},
                               CertificateRole::kTlsServer,
                               825,
                               {"localhost"},
                               {"127.0.0.1", "::1"},
                               {}};
  SIGNUM_ASSIGN_OR_RETURN(Certificate tls_cert,
                          IssueCertificate(tls_tmpl, tls_key->public_key(), root, *root_key));
  SIGNUM_RETURN_IF_ERROR(WritePem(dir + "/tls/server-chain.pem", tls_cert.Pem()));
  SIGNUM_RETURN_IF_ERROR(WritePem(dir + "/tls/server.key", tls_key->PrivateKeyPem(), 0600));

  SIGNUM_ASSIGN_OR_RETURN(std::unique_ptr<SoftwareKey> client_ca_key,
                          SoftwareKey::Generate(tls_spec));
  CertificateTemplate client_ca_tmpl{
      {{"CN", "Signum Harness Demo Client CA"}, {"O", "Signum Harness Demo"}},
      CertificateRole::kRootCa,
      3650,
      {},
      {},
      {}};
  SIGNUM_ASSIGN_OR_RETURN(
      Certificate client_ca,
      IssueCertificate(client_ca_tmpl, client_ca_key->public_key(), std::nullopt, *client_ca_key));
  SIGNUM_RETURN_IF_ERROR(WritePem(dir + "/ca/client-ca.pem", client_ca.Pem()));
  SIGNUM_RETURN_IF_ERROR(WritePem(dir + "/ca/client-ca.key", client_ca_key->PrivateKeyPem(), 0600));

  // 4. Users and their credentials.
  ServerState state;
  DemoSummary summary;
  summary.config_path = config_path;
  summary.port = port;
  for (const auto& [name, group] : std::vector<std::pair<std::string, std::string>>{
           {"release", "release"}, {"alice", "developers"}}) {
    UserRecord user{name, {group}, false, {}, {}};
    IssuedToken token = IssueApiToken(user);
    SIGNUM_RETURN_IF_ERROR(
        WriteFileAtomically(dir + "/credentials/" + name + ".token", token.token + "\n", 0600));
    state.users.push_back(std::move(user));
    summary.users.push_back(name);
  }
  SIGNUM_ASSIGN_OR_RETURN(std::unique_ptr<SoftwareKey> bot_key, SoftwareKey::Generate(tls_spec));
  CertificateTemplate bot_tmpl{{{"CN", "ci-bot"}, {"O", "Signum Harness Demo"}},
                               CertificateRole::kTlsClient,
                               825,
                               {},
                               {},
                               {}};
  SIGNUM_ASSIGN_OR_RETURN(Certificate bot_cert, IssueCertificate(bot_tmpl, bot_key->public_key(),
                                                                 client_ca, *client_ca_key));
  SIGNUM_RETURN_IF_ERROR(WritePem(dir + "/credentials/ci-bot.crt", bot_cert.Pem(), 0600));
  SIGNUM_RETURN_IF_ERROR(WritePem(dir + "/credentials/ci-bot.key", bot_key->PrivateKeyPem(), 0600));
  state.users.push_back(
      UserRecord{"ci-bot",
                 {"ci"},
                 false,
                 {},
                 {{HexEncode(bot_cert.Sha256Fingerprint()), bot_cert.Subject()}}});
  summary.users.push_back("ci-bot");

  // 5. One HSM key and code-signing certificate per algorithm, each key in the ledger as soon as
  //    it exists.
  FileCa ca{issuing, std::move(issuing_key), {root}};
  std::vector<KeySpec> specs = options.key_specs;
  if (specs.empty()) specs.assign(SupportedKeySpecs().begin(), SupportedKeySpecs().end());
  for (const KeySpec& spec : specs) {
    const std::string label = spec.Name();
    EnrollRequest request{spec,
                          label,
                          {{"CN", "Signum Demo " + label}, {"O", "Signum Harness Demo"}},
                          {"signer@signum.test"},
                          {std::string(KeyTypeName(spec.type))},
                          825};
    auto key = hsm->GenerateKeyPair(spec, label);
    if (!key.ok()) return key.status().WithContext("generating " + label + " on the token");
    if (key->decrypt_left_to_module) {
      summary.notes.push_back(label + ": the module signs CKM_RSA_PKCS only with keys that may "
                              "decrypt; CKA_DECRYPT left to the module (still sensitive, "
                              "non-extractable)");
    }
    ledger.push_back({HexEncode(key->id), label});
    SIGNUM_RETURN_IF_ERROR(WriteKeyLedger(ledger_path, ledger));
    auto record = CertifyKey(*hsm, ca, *key, request);
    if (!record.ok()) return record.status().WithContext("enrolling " + label);
    state.certificates.push_back(std::move(record).value());
    summary.certificate_labels.push_back(label);
  }

  // 6. Policies: release sees everything (SHA-1 only for legacy PKCS#1 v1.5), alice only
  //    RSA-2048, ci-bot (client certificate) everything but SHA-1.
  auto rule = [](json j) { return *PolicyRuleFromJson(j); };
  state.policies.push_back(
      rule({{"name", "release-all"}, {"effect", "allow"}, {"users", {"release"}}}));
  state.policies.push_back(rule({{"name", "release-legacy-sha1"},
                                 {"effect", "allow"},
                                 {"users", {"release"}},
                                 {"schemes", {"rsa-pkcs1"}},
                                 {"hashes", {"sha1"}}}));
  state.policies.push_back(rule({{"name", "alice-rsa-2048"},
                                 {"effect", "allow"},
                                 {"users", {"alice"}},
                                 {"certificates", {"rsa-2048"}}}));
  state.policies.push_back(
      rule({{"name", "ci-bot-all"}, {"effect", "allow"}, {"users", {"ci-bot"}}}));
  SIGNUM_RETURN_IF_ERROR(BuildSnapshot(state).status());
  SIGNUM_RETURN_IF_ERROR(SaveState(config.state_file, state));
  return summary;
}

Result<RemovedDemoKeys> RemoveDemoKeys(const std::string& dir_arg) {
  const std::string dir = fs::absolute(dir_arg).lexically_normal().string();
  SIGNUM_ASSIGN_OR_RETURN(ServerConfig config, LoadServerConfig(dir + "/server.json"));
  const std::string ledger_path = dir + "/" + kDemoKeyLedger;
  if (!fs::exists(ledger_path))
    return NotFoundError(
        ledger_path + " does not exist: " + dir +
        " was not made by this init-demo, so which objects are its own is unknown");
  SIGNUM_ASSIGN_OR_RETURN(std::vector<LedgerEntry> ledger, ReadKeyLedger(ledger_path));
  RemovedDemoKeys removed;
  if (ledger.empty()) return removed;

  SIGNUM_ASSIGN_OR_RETURN(HsmConfig hsm_config, ResolveHsmConfig(config));
  hsm_config.pool_size = 1;
  SIGNUM_ASSIGN_OR_RETURN(std::unique_ptr<HsmBackend> hsm, HsmBackend::Open(hsm_config));
  std::vector<LedgerEntry> remaining = ledger;
  Status failure = Status::Ok();
  for (const LedgerEntry& entry : ledger) {
    SIGNUM_ASSIGN_OR_RETURN(Bytes key_id, HexDecode(entry.key_id_hex));
    Status destroyed = hsm->DestroyKey(key_id);
    if (destroyed.code() == ErrorCode::kNotFound) {
      removed.missing_hex.push_back(entry.key_id_hex);
    } else if (!destroyed.ok()) {
      failure =
          destroyed.WithContext("removing " + entry.label + " (CKA_ID " + entry.key_id_hex + ")");
      break;
    } else {
      removed.key_ids_hex.push_back(entry.key_id_hex);
    }
    std::erase_if(remaining,
                  [&](const LedgerEntry& e) { return e.key_id_hex == entry.key_id_hex; });
  }
  // The ledger and state.json follow what is gone, even after a partial failure.
  SIGNUM_RETURN_IF_ERROR(WriteKeyLedger(ledger_path, remaining));
  auto gone = [&](const CertificateRecord& c) {
    return std::none_of(remaining.begin(), remaining.end(),
                        [&](const LedgerEntry& e) { return e.key_id_hex == c.key_id_hex; }) &&
           std::any_of(ledger.begin(), ledger.end(),
                       [&](const LedgerEntry& e) { return e.key_id_hex == c.key_id_hex; });
  };
  if (fs::exists(config.state_file)) {
    SIGNUM_ASSIGN_OR_RETURN(std::unique_ptr<StateStore> store, StateStore::Open(config.state_file));
    SIGNUM_RETURN_IF_ERROR(store->Update([&](ServerState& state) -> Status {
      std::erase_if(state.certificates, gone);
      return Status::Ok();
    }));
  }
  if (!failure.ok()) return failure;
  return removed;
}

}  // namespace signum::server

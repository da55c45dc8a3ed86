#include "admin_cli.h"

#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "api.h"
#include "config.h"
#include "provisioning.h"
#include "signum/core/files.h"
#include "signum/core/log.h"

namespace signum::server {
namespace {

using nlohmann::json;

constexpr const char* kVersion = "0.1.0";

constexpr const char* kUsage = R"(usage: signum-server COMMAND [options]

Running
  serve --config FILE                 run the HTTPS signing server
  init-demo DIR [--port N] [--token-label L] [--module PATH] [--keys rsa-2048,ec-p256,...]
                                      build a complete demo deployment on a fresh SoftHSM2 token
  init-demo DIR --hsm-module PATH --hsm-token-label LABEL --hsm-pin-file FILE
            [--hsm-env NAME=VALUE]... [--port N] [--keys ...]
                                      the same on an EXISTING token of any PKCS#11 module (an HSM
                                      vendor's): nothing is initialised, the demo keys are added
            [--hsm-serialize]         either form: one call at a time into the module
                                      (server.json hsm.serialize; for modules unsafe under
                                      concurrency)
  remove-demo-keys DIR                destroy on the token exactly the keys, public keys and
                                      certificates init-demo created there (DIR/hsm/demo-keys.json)
  audit-verify FILE [--head-copy F] | audit-verify --config FILE
                                      check an audit log's hash chain (edits, drops, reorders)
                                      and its end against the head file and its copy; exit 3
                                      when there was no anchor to check the end against

Administration (all take --config FILE; the running server picks up state changes by itself)
  key generate --spec SPEC --label L  generate a key pair on the HSM (rsa-2048|3072|4096, ec-p256|p384|p521)
  key list                            keys on the HSM token
  csr --key-id HEX --subject DN [--out FILE]
                                      PKCS#10 request signed by the HSM key
  certificate import --key-id HEX --label L --cert FILE [--chain FILE] [--groups a,b]
  certificate issue --key-id HEX --label L --subject DN --ca-cert FILE --ca-key FILE [--ca-chain FILE] [--groups a,b]
  certificate list | certificate remove ID_OR_LABEL | certificate enable|disable ID_OR_LABEL
  user add NAME [--groups a,b] [--admin] | user remove NAME | user list
  token create USER                   prints a new API token once (only its hash is stored)
  token revoke USER TOKEN_ID
  client-cert add USER --cert FILE    map a client certificate (mTLS) to USER
  policy list | policy add --json RULE [--position N] | policy remove NAME
)";

// --name value options and positional arguments.
struct Args {
  std::vector<std::string> positional;
  std::map<std::string, std::string> options;                  // the last value of each option
  std::map<std::string, std::vector<std::string>> all_values;  // every value, for repeatable ones
  std::vector<std::string> flags;

  bool Has(const std::string& name) const {
    return options.count(name) || std::find(flags.begin(), flags.end(), name) != flags.end();
  }
  std::string Get(const std::string& name, const std::string& fallback = "") const {
    auto it = options.find(name);
    return it == options.end() ? fallback : it->second;
  }
};

Args ParseArgs(int argc, char** argv, int first) {
  static const std::vector<std::string> kFlags = {"--admin", "--help", "--hsm-serialize"};
  Args args;
  for (int i = first; i < argc; ++i) {
    std::string a = argv[i];
    if (a.rfind("--", 0) == 0) {
      if (std::find(kFlags.begin(), kFlags.end(), a) != kFlags.end()) {
        args.flags.push_back(a);
      } else if (auto eq = a.find('='); eq != std::string::npos) {
        args.options[a.substr(0, eq)] = a.substr(eq + 1);
        args.all_values[a.substr(0, eq)].push_back(a.substr(eq + 1));
      } else if (i + 1 < argc) {
        args.options[a] = argv[++i];
        args.all_values[a].push_back(argv[i]);
      } else {
        args.options[a] = "";
      }
    } else {
      args.positional.push_back(a);
    }
  }
  return args;
}

std::vector<std::string> SplitList(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ',')) {
    if (!item.empty()) out.push_back(item);
  }
  return out;
}

int Fail(const Status& status) {
  std::cerr << "signum-server: " << status.ToString() << "\n";
  switch (status.code()) {
    case ErrorCode::kInvalidArgument:
      return 2;
    case ErrorCode::kDataLoss:
      return 3;
    default:
      return 1;
  }
}

Result<ServerConfig> ConfigFrom(const Args& args) {
  const std::string path = args.Get("--config", "");
  if (path.empty()) return InvalidArgumentError("--config FILE is required");
  return LoadServerConfig(path);
}

// The state file named by the config in --config.
Result<std::unique_ptr<StateStore>> OpenStateStore(const Args& args) {
  SIGNUM_ASSIGN_OR_RETURN(ServerConfig config, ConfigFrom(args));
  return StateStore::Open(config.state_file);
}

Result<std::unique_ptr<HsmBackend>> OpenHsm(const ServerConfig& config) {
  SIGNUM_ASSIGN_OR_RETURN(HsmConfig hsm, ResolveHsmConfig(config));
  hsm.pool_size = 1;  // administration is sequential
  return HsmBackend::Open(hsm);
}

int Serve(const Args& args) {
  auto config = ConfigFrom(args);
  if (!config.ok()) return Fail(config.status());
  SetLogLevelByName(config->log_level);
  if (!config->log_file.empty() && !SetLogFile(config->log_file))
    return Fail(InternalError("cannot open log file " + config->log_file));

  // Block the stop signals in every thread; one thread waits for them with sigwait.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  signal(SIGPIPE, SIG_IGN);

  auto hsm_config = ResolveHsmConfig(*config);
  if (!hsm_config.ok()) return Fail(hsm_config.status());
  auto hsm = HsmBackend::Open(*hsm_config);
  if (!hsm.ok()) return Fail(hsm.status());
  auto state = StateStore::Open(config->state_file);
  if (!state.ok()) return Fail(state.status());
  auto audit = AuditLog::Open(config->audit_log, AuditOptions{config->audit_head_copy,
                                                              config->audit_head_interval_ms});
  if (!audit.ok()) return Fail(audit.status());
  // Each start is a chain event: what the audit was anchored to when this server took it over.
  if (Status started = (*audit)->Append(json{{"type", "server-start"},
                                              {"version", kVersion},
                                              {"pid", ::getpid()},
                                              {"records_before", (*audit)->records()},
                                              {"head_copy", config->audit_head_copy}});
      !started.ok()) {
    return Fail(started);
  }

  // What every key can do, learned before the first request (keys enrolled later: on first use).
  KeyCapabilityRegistry capabilities(**hsm);
  capabilities.DiscoverAll((*state)->Current()->state);
  SigningApi api(**state, **hsm, capabilities, **audit,
                 ApiLimits{config->max_inflight_signatures, config->per_user_inflight_signatures,
                           config->failure_audit_interval_ms},
                 kVersion);
  HttpsServerConfig https = config->https;
  https.on_client_certificate_failure = [&api](const std::string& peer, const std::string& why) {
    api.AuditClientCertificateFailure(peer, why);
  };
  auto server = HttpsServer::Create(https, [&api](const HttpRequest& r) { return api.Handle(r); });
  if (!server.ok()) return Fail(server.status());
  (*server)->Start();
  SIGNUM_LOG_INFO("server",
                  "signum-server "
                      << kVersion << " listening on https://" << config->https.listen_address << ":"
                      << (*server)->port() << " (HSM token '" << config->hsm_token_label << "', "
                      << (*state)->Current()->state.certificates.size() << " certificates)");
  std::printf("listening on %s:%u\n", config->https.listen_address.c_str(), (*server)->port());
  std::fflush(stdout);

  int signal_number = 0;
  sigwait(&stop_signals, &signal_number);
  SIGNUM_LOG_INFO("server", "signal " << signal_number << ": stopping");
  (*server)->Stop();
  return 0;
}

int InitDemoCommand(const Args& args) {
  if (args.positional.size() != 2)
    return Fail(InvalidArgumentError("usage: signum-server init-demo DIR"));
  DemoOptions options;
  options.dir = args.positional[1];
  if (args.Has("--port")) options.port = static_cast<uint16_t>(std::stoi(args.Get("--port")));
  options.token_label = args.Get("--token-label", options.token_label);
  options.module_path = args.Get("--module", options.module_path);
  options.hsm_serialize = args.Has("--hsm-serialize");
  for (const std::string& name : SplitList(args.Get("--keys"))) {
    auto spec = ParseKeySpec(name);
    if (!spec.ok()) return Fail(spec.status());
    options.key_specs.push_back(*spec);
  }
  const bool existing_token =
      args.Has("--hsm-module") || args.Has("--hsm-token-label") || args.Has("--hsm-pin-file");
  if (existing_token) {
    if (!args.Has("--hsm-module") || !args.Has("--hsm-token-label") ||
        !args.Has("--hsm-pin-file") || args.Has("--module") || args.Has("--token-label"))
      return Fail(InvalidArgumentError(
          "an existing token needs all of --hsm-module, --hsm-token-label and --hsm-pin-file "
          "(and neither --module nor --token-label)"));
    options.module_path = args.Get("--hsm-module");
    options.token_label = args.Get("--hsm-token-label");
    ExistingToken token;
    token.pin_file = args.Get("--hsm-pin-file");
    auto env = args.all_values.find("--hsm-env");
    for (const std::string& assignment :
         env == args.all_values.end() ? std::vector<std::string>{} : env->second) {
      const size_t eq = assignment.find('=');
      if (eq == std::string::npos || eq == 0)
        return Fail(InvalidArgumentError("--hsm-env wants NAME=VALUE, not '" + assignment + "'"));
      token.environment[assignment.substr(0, eq)] = assignment.substr(eq + 1);
    }
    options.existing_token = std::move(token);
  } else if (args.Has("--hsm-env")) {
    return Fail(InvalidArgumentError("--hsm-env only goes with --hsm-module (an existing token)"));
  }
  auto summary = InitDemo(options);
  if (!summary.ok()) return Fail(summary.status().WithContext("init-demo"));
  std::cout << "demo deployment ready in " << options.dir << "\n"
            << "  config:       " << summary->config_path << "\n"
            << "  listen:       https://127.0.0.1:" << summary->port << "\n"
            << "  certificates: ";
  for (const auto& l : summary->certificate_labels) std::cout << l << " ";
  std::cout << "\n  users:        ";
  for (const auto& u : summary->users) std::cout << u << " ";
  std::cout << "\n";
  for (const auto& note : summary->notes) std::cout << "  note:         " << note << "\n";
  std::cout << "  start with:   signum-server serve --config " << summary->config_path << "\n";
  return 0;
}

int RemoveDemoKeysCommand(const Args& args) {
  if (args.positional.size() != 2)
    return Fail(InvalidArgumentError("usage: signum-server remove-demo-keys DIR"));
  auto removed = RemoveDemoKeys(args.positional[1]);
  if (!removed.ok()) return Fail(removed.status().WithContext("remove-demo-keys"));
  std::cout << "removed " << removed->key_ids_hex.size()
            << " demo key pairs (private key, public key, certificate) from the token\n";
  for (const std::string& id : removed->key_ids_hex) std::cout << "  removed " << id << "\n";
  for (const std::string& id : removed->missing_hex) std::cout << "  already gone " << id << "\n";
  return 0;
}

int AuditVerifyCommand(const Args& args) {
  constexpr const char* kVerifyUsage =
      "usage: signum-server audit-verify FILE [--head-copy FILE] | audit-verify --config FILE";
  std::string log_path = args.positional.size() == 2 ? args.positional[1] : "";
  std::string head_copy = args.Get("--head-copy");
  if (args.Has("--config")) {
    auto config = ConfigFrom(args);
    if (!config.ok()) return Fail(config.status());
    if (log_path.empty()) log_path = config->audit_log;
    if (head_copy.empty()) head_copy = config->audit_head_copy;
  }
  if (log_path.empty() || args.positional.size() > 2) return Fail(InvalidArgumentError(kVerifyUsage));
  auto report = VerifyAuditLog(log_path, head_copy);
  if (!report.ok()) return Fail(report.status());
  // Say what the verdict rests on: the chain proves no record was edited, dropped or reordered,
  // but only an anchor (head file or its copy) shows that none was cut off the end.
  std::cout << "audit log chain intact: " << report->records << " records, last hash "
            << report->last_hash << "\n";
  for (const std::string& anchor : report->anchors_checked)
    std::cout << "  tail checked against " << anchor << "\n";
  for (const std::string& anchor : report->anchors_missing)
    std::cout << "  not checked: " << anchor << "\n";
  if (head_copy.empty())
    std::cout << "  not checked: the head copy (give --config or --head-copy)\n";
  std::cout << "  server starts recorded: " << report->server_starts << "\n";
  if (report->records > 0 && !report->tail_checked()) {
    std::cout << "audit log NOT fully verified: no head file or copy to check its end against; "
                 "records cut off the end would go unnoticed\n";
    return 3;
  }
  std::cout << "audit log OK\n";
  return 0;
}

int KeyCommand(const Args& args) {
  auto config = ConfigFrom(args);
  if (!config.ok()) return Fail(config.status());
  auto hsm = OpenHsm(*config);
  if (!hsm.ok()) return Fail(hsm.status());
  const std::string verb = args.positional.size() > 1 ? args.positional[1] : "";
  if (verb == "generate") {
    auto spec = ParseKeySpec(args.Get("--spec"));
    if (!spec.ok()) return Fail(spec.status());
    const std::string label = args.Get("--label", spec->Name());
    auto key = (*hsm)->GenerateKeyPair(*spec, label);
    if (!key.ok()) return Fail(key.status());
    std::cout << "key_id " << HexEncode(key->id) << "\nlabel " << key->label << "\nspec "
              << key->public_key.spec().Name() << "\n";
    if (key->decrypt_left_to_module) {
      std::cout << "note the module signs CKM_RSA_PKCS only with keys that may decrypt; "
                   "CKA_DECRYPT left to the module\n";
    }
    return 0;
  }
  if (verb == "list") {
    auto keys = (*hsm)->ListKeys();
    if (!keys.ok()) return Fail(keys.status());
    for (const HsmKey& k : *keys) {
      std::cout << HexEncode(k.id) << "  " << k.public_key.spec().Name() << "  " << k.label
                << (k.sensitive && !k.extractable ? ""
                                                  : "  (NOT sensitive/non-extractable: unusable)")
                << "\n";
    }
    return 0;
  }
  return Fail(InvalidArgumentError("usage: signum-server key generate|list --config FILE ..."));
}

int CsrCommand(const Args& args) {
  auto config = ConfigFrom(args);
  if (!config.ok()) return Fail(config.status());
  auto hsm = OpenHsm(*config);
  if (!hsm.ok()) return Fail(hsm.status());
  auto key_id = HexDecode(args.Get("--key-id"));
  if (!key_id.ok() || key_id->empty())
    return Fail(InvalidArgumentError("--key-id HEX is required"));
  auto subject = ParseDistinguishedName(args.Get("--subject"));
  if (!subject.ok()) return Fail(subject.status());
  auto signer = (*hsm)->SignerFor(*key_id);
  if (!signer.ok()) return Fail(signer.status());
  auto csr = BuildCsrDer(*subject, **signer);
  if (!csr.ok()) return Fail(csr.status());
  const std::string pem = CsrDerToPem(*csr);
  if (args.Has("--out")) {
    Status s = WriteFileAtomically(args.Get("--out"), pem, 0644);
    if (!s.ok()) return Fail(s);
  } else {
    std::cout << pem;
  }
  return 0;
}

Result<std::vector<Certificate>> ReadCertificates(const std::string& path) {
  SIGNUM_ASSIGN_OR_RETURN(std::string pem, ReadFile(path));
  return Certificate::AllFromPem(pem);
}

int CertificateCommand(const Args& args) {
  auto store = OpenStateStore(args);
  if (!store.ok()) return Fail(store.status());
  const std::string verb = args.positional.size() > 1 ? args.positional[1] : "";
  if (verb == "list") {
    for (const CertificateRecord& c : (*store)->Current()->state.certificates) {
      std::cout << c.id << "  " << c.label << "  " << c.key_spec.Name() << "  "
                << (c.enabled ? "enabled " : "disabled") << "  " << c.certificate.Subject() << "\n";
    }
    return 0;
  }
  if (verb == "remove" || verb == "enable" || verb == "disable") {
    if (args.positional.size() != 3)
      return Fail(InvalidArgumentError("usage: certificate " + verb + " ID_OR_LABEL"));
    const std::string which = args.positional[2];
    Status s = (*store)->Update([&](ServerState& state) -> Status {
      for (auto it = state.certificates.begin(); it != state.certificates.end(); ++it) {
        if (it->id != which && it->label != which) continue;
        if (verb == "remove") {
          state.certificates.erase(it);
        } else {
          it->enabled = verb == "enable";
        }
        return Status::Ok();
      }
      return NotFoundError("no certificate '" + which + "'");
    });
    return s.ok() ? 0 : Fail(s);
  }
  if (verb != "import" && verb != "issue")
    return Fail(InvalidArgumentError("usage: certificate import|issue|list|remove|enable|disable"));

  auto config = ConfigFrom(args);
  if (!config.ok()) return Fail(config.status());
  auto hsm = OpenHsm(*config);
  if (!hsm.ok()) return Fail(hsm.status());
  auto key_id = HexDecode(args.Get("--key-id"));
  if (!key_id.ok() || key_id->empty())
    return Fail(InvalidArgumentError("--key-id HEX is required"));
  const std::string label = args.Get("--label");
  if (label.empty()) return Fail(InvalidArgumentError("--label is required"));
  const std::vector<std::string> groups = SplitList(args.Get("--groups"));
  Result<CertificateRecord> record = InternalError("unreachable");
  if (verb == "import") {
    auto certs = ReadCertificates(args.Get("--cert"));
    if (!certs.ok()) return Fail(certs.status());
    std::vector<Certificate> chain;
    if (args.Has("--chain")) {
      auto c = ReadCertificates(args.Get("--chain"));
      if (!c.ok()) return Fail(c.status());
      chain = *c;
    }
    record = ImportCertificate(**hsm, *key_id, label, certs->front(), chain, groups);
  } else {
    auto ca = LoadFileCa(args.Get("--ca-cert"), args.Get("--ca-key"), args.Get("--ca-chain"));
    if (!ca.ok()) return Fail(ca.status());
    auto subject = ParseDistinguishedName(args.Get("--subject"));
    if (!subject.ok()) return Fail(subject.status());
    auto key = (*hsm)->FindKey(*key_id);
    if (!key.ok()) return Fail(key.status());
    CertificateTemplate tmpl;
    tmpl.subject = *subject;
    auto cert = IssueCertificate(tmpl, key->public_key, ca->certificate, *ca->key);
    if (!cert.ok()) return Fail(cert.status());
    std::vector<Certificate> chain{ca->certificate};
    chain.insert(chain.end(), ca->chain.begin(), ca->chain.end());
    record = ImportCertificate(**hsm, *key_id, label, *cert, chain, groups);
  }
  if (!record.ok()) return Fail(record.status());
  Status s = (*store)->Update([&](ServerState& state) -> Status {
    std::erase_if(state.certificates, [&](const CertificateRecord& c) { return c.label == label; });
    state.certificates.push_back(*record);
    return Status::Ok();
  });
  if (!s.ok()) return Fail(s);
  std::cout << "certificate " << record->id << " (" << label << ") ready\n";
  // The running server learns this by itself on first use; shown here so that whoever enrols the
  // key sees at once what the HSM cannot do with it.
  if (auto public_key = record->certificate.GetPublicKey(); public_key.ok()) {
    auto probe = (*hsm)->ProbeCapabilities(*key_id, *public_key);
    if (probe.ok()) {
      std::cout << "the HSM key can sign with " << probe->can_sign.ToString() << "\n";
      for (const std::string& reason : probe->missing) std::cout << "  cannot: " << reason << "\n";
    } else {
      std::cerr << "signum-server: could not learn what the key can sign with: "
                << probe.status().ToString() << "\n";
    }
  }
  return 0;
}

int UserCommand(const Args& args) {
  auto store = OpenStateStore(args);
  if (!store.ok()) return Fail(store.status());
  const std::string verb = args.positional.size() > 1 ? args.positional[1] : "";
  if (verb == "list") {
    for (const UserRecord& u : (*store)->Current()->state.users) {
      std::cout << u.name << "  groups=" << json(u.groups).dump() << "  tokens=" << u.tokens.size()
                << "  client_certificates=" << u.client_certificates.size()
                << (u.admin ? "  admin" : "") << "\n";
    }
    return 0;
  }
  if (args.positional.size() != 3) return Fail(InvalidArgumentError("usage: user add|remove NAME"));
  const std::string name = args.positional[2];
  Status s = (*store)->Update([&](ServerState& state) -> Status {
    if (verb == "add") {
      if (state.FindUser(name)) return AlreadyExistsError("user '" + name + "' exists");
      state.users.push_back(
          UserRecord{name, SplitList(args.Get("--groups")), args.Has("--admin"), {}, {}});
      return Status::Ok();
    }
    if (verb == "remove") {
      const size_t before = state.users.size();
      std::erase_if(state.users, [&](const UserRecord& u) { return u.name == name; });
      return before == state.users.size() ? NotFoundError("no user '" + name + "'") : Status::Ok();
    }
    return InvalidArgumentError("usage: user add|remove|list");
  });
  return s.ok() ? 0 : Fail(s);
}

int TokenCommand(const Args& args) {
  auto store = OpenStateStore(args);
  if (!store.ok()) return Fail(store.status());
  const std::string verb = args.positional.size() > 1 ? args.positional[1] : "";
  if (verb == "create" && args.positional.size() == 3) {
    IssuedToken issued;
    Status s = (*store)->Update([&](ServerState& state) -> Status {
      UserRecord* user = state.FindUser(args.positional[2]);
      if (!user) return NotFoundError("no user '" + args.positional[2] + "'");
      issued = IssueApiToken(*user);
      return Status::Ok();
    });
    if (!s.ok()) return Fail(s);
    // The token goes to stdout alone so scripts can capture it; it is shown only this once.
    std::cout << issued.token << "\n";
    std::cerr << "created token " << issued.record.id << " for " << args.positional[2]
              << " (only its SHA-256 is stored; revoke with: token revoke " << args.positional[2]
              << " " << issued.record.id << ")\n";
    return 0;
  }
  if (verb == "revoke" && args.positional.size() == 4) {
    Status s = (*store)->Update([&](ServerState& state) -> Status {
      UserRecord* user = state.FindUser(args.positional[2]);
      if (!user) return NotFoundError("no user '" + args.positional[2] + "'");
      if (!RevokeApiToken(*user, args.positional[3]))
        return NotFoundError("user '" + args.positional[2] + "' has no token " +
                             args.positional[3]);
      return Status::Ok();
    });
    return s.ok() ? 0 : Fail(s);
  }
  return Fail(InvalidArgumentError("usage: token create USER | token revoke USER TOKEN_ID"));
}

int ClientCertCommand(const Args& args) {
  auto config = ConfigFrom(args);
  if (!config.ok()) return Fail(config.status());
  if (args.positional.size() != 3 || args.positional[1] != "add")
    return Fail(InvalidArgumentError("usage: client-cert add USER --cert FILE"));
  auto certs = ReadCertificates(args.Get("--cert"));
  if (!certs.ok()) return Fail(certs.status());
  auto store = StateStore::Open(config->state_file);
  if (!store.ok()) return Fail(store.status());
  Status s = (*store)->Update([&](ServerState& state) -> Status {
    UserRecord* user = state.FindUser(args.positional[2]);
    if (!user) return NotFoundError("no user '" + args.positional[2] + "'");
    user->client_certificates.push_back(
        {HexEncode(certs->front().Sha256Fingerprint()), certs->front().Subject()});
    return Status::Ok();
  });
  return s.ok() ? 0 : Fail(s);
}

int PolicyCommand(const Args& args) {
  auto store = OpenStateStore(args);
  if (!store.ok()) return Fail(store.status());
  const std::string verb = args.positional.size() > 1 ? args.positional[1] : "";
  if (verb == "list") {
    int i = 0;
    for (const PolicyRule& r : (*store)->Current()->state.policies)
      std::cout << i++ << "  " << PolicyRuleToJson(r).dump() << "\n";
    return 0;
  }
  Status s = (*store)->Update([&](ServerState& state) -> Status {
    if (verb == "add") {
      SIGNUM_ASSIGN_OR_RETURN(json j, wire::ParseJson(args.Get("--json")));
      SIGNUM_ASSIGN_OR_RETURN(PolicyRule rule, PolicyRuleFromJson(j));
      size_t position =
          args.Has("--position") ? std::stoul(args.Get("--position")) : state.policies.size();
      position = std::min(position, state.policies.size());
      state.policies.insert(state.policies.begin() + static_cast<long>(position), rule);
      return Status::Ok();
    }
    if (verb == "remove" && args.positional.size() == 3) {
      const size_t before = state.policies.size();
      std::erase_if(state.policies,
                    [&](const PolicyRule& r) { return r.name == args.positional[2]; });
      return before == state.policies.size()
                 ? NotFoundError("no policy '" + args.positional[2] + "'")
                 : Status::Ok();
    }
    return InvalidArgumentError(
        "usage: policy list | policy add --json RULE [--position N] | policy remove NAME");
  });
  return s.ok() ? 0 : Fail(s);
}

}  // namespace

int RunServerCli(int argc, char** argv) {
  if (argc < 2 || std::string(argv[1]) == "--help" || std::string(argv[1]) == "help") {
    std::cout << kUsage;
    return argc < 2 ? 2 : 0;
  }
  const std::string command = argv[1];
  if (command == "--version" || command == "version") {
    std::cout << "signum-server " << kVersion << "\n";
    return 0;
  }
  const Args args = ParseArgs(argc, argv, 1);  // positional[0] is the command itself
  static const std::map<std::string, int (*)(const Args&)> kCommands = {
      {"serve", Serve},
      {"init-demo", InitDemoCommand},
      {"remove-demo-keys", RemoveDemoKeysCommand},
      {"audit-verify", AuditVerifyCommand},
      {"key", KeyCommand},
      {"csr", CsrCommand},
      {"certificate", CertificateCommand},
      {"user", UserCommand},
      {"token", TokenCommand},
      {"client-cert", ClientCertCommand},
      {"policy", PolicyCommand},
  };
  auto it = kCommands.find(command);
  if (it == kCommands.end()) {
    std::cerr << "signum-server: unknown command '" << command << "'\n" << kUsage;
    return 2;
  }
  return it->second(args);
}

}  // namespace signum::server

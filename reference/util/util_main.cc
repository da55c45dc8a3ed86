// signum-util: the command-line companion of signum-agent (status, list, test-sign, p11-kit
// registration, environment for providers). It talks to the agent exactly like a provider does.
#include <unistd.h>

#include <chrono>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <iomanip>
#include <iostream>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "signum/core/encoding.h"
#include "signum/agent/agent_client.h"
#include "agent_config.h"
#include "certificate_listing.h"
#include "signum/core/crypto.h"
#include "signum/core/files.h"
#include "signum/core/posix_platform.h"
#include "signum/core/x509.h"

namespace signum::agent {
namespace {

namespace fs = std::filesystem;

constexpr const char* kVersion = "0.1.0";
constexpr const char* kClientName = "signum-util/0.1";
constexpr const char* kModuleFileName = "signum.module";
constexpr const char* kModuleLibraryName = "libsignumpkcs11.so";
// p11-kit reads module files from three directories: the user's (~/.config/pkcs11/modules,
// skipped when the program runs as root or setuid), the system's ($sysconfdir/pkcs11/modules) and
// the packages' ($datadir/p11-kit/modules, pkg-config's p11_module_configs). An administrator's
// registration belongs in the system one: no package owns it, root reads it, and a file there
// takes precedence over a package's file of the same name.
constexpr const char* kSystemModuleDirectory = "/etc/pkcs11/modules";

void PrintUsage(std::ostream& out) {
  out << R"TEXT(Usage: signum-util [OPTIONS] COMMAND [ARGS]

Commands:
  status                          agent and server state; exit 0 only if both are reachable
                                  (1: agent unreachable, 2: server unreachable)
  list [--refresh]                the certificates the agent offers: id, label, subject, issuer,
                                  validity, SHA-1 thumbprint, algorithm
  test-sign [--certificate ID|LABEL] [--hash sha256]
                                  signs a random digest with every scheme each certificate allows
                                  and verifies it locally against the certificate
  p11-kit register [--module PATH] [--dir DIR | --system]
                                  writes a p11-kit module file (signum.module) so p11-kit-aware
                                  tools (GnuTLS, p11-kit-proxy users) load libsignumpkcs11.so;
                                  default DIR is $XDG_CONFIG_HOME/pkcs11/modules
                                  (~/.config/pkcs11/modules), which p11-kit reads for non-root
                                  users only; --system: /etc/pkcs11/modules, the administrator's
                                  directory p11-kit reads for every user including root (before
                                  the packages' /usr/share/p11-kit/modules, so it wins there)
  p11-kit unregister [--dir DIR | --system]
  env                             prints export lines for providers (SIGNUM_AGENT_SOCKET, ...)
  keychain --add|--remove|--list [--instance ID]
                                  macOS: the agent's certificates as a CryptoTokenKit token's
                                  keychain identities (runs signum-token-host, docs/ctk.md)
  version
  help

Options (the agent endpoint; default: the environment, as providers see it):
  --socket PATH        the agent's Unix socket (SIGNUM_AGENT_SOCKET)
  --tcp HOST:PORT      the agent's loopback TCP endpoint (SIGNUM_AGENT_TCP)
  --secret-file PATH   the TCP secret (SIGNUM_AGENT_SECRET_FILE)
  --config FILE        read the endpoint from an agent configuration file instead
  --timeout MS         per-request timeout (default 30000)
)TEXT";
}

struct Options {
  std::string socket;
  std::string tcp;
  std::string secret_file;
  std::string config;
  int timeout_ms = 30000;
  std::string command;
  std::vector<std::string> args;
};

std::string ShellQuote(const std::string& s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\'') {
      out += "'\\''";
    } else {
      out += c;
    }
  }
  return out + "'";
}

// The endpoint resolution order: command-line flags, then --config (the agent's own file, with
// the environment applied as the agent would), then the provider environment.
Result<AgentEndpoint> ResolveEndpoint(const Options& o) {
  AgentEndpoint endpoint;
  if (!o.socket.empty() || !o.tcp.empty()) {
    endpoint.unix_socket = o.socket;
    if (!o.tcp.empty()) {
      SIGNUM_RETURN_IF_ERROR(ParseLoopbackAddress(o.tcp, &endpoint.tcp_host, &endpoint.tcp_port));
      const std::string secret_file =
          !o.secret_file.empty()
              ? o.secret_file
              : (std::getenv("SIGNUM_AGENT_SECRET_FILE") ? std::getenv("SIGNUM_AGENT_SECRET_FILE")
                                                         : "");
      if (secret_file.empty()) return FailedPreconditionError("--tcp needs --secret-file");
      SIGNUM_ASSIGN_OR_RETURN(endpoint.secret, ReadAgentSecretFile(secret_file));
    }
    return endpoint;
  }
  if (!o.config.empty()) {
    SIGNUM_ASSIGN_OR_RETURN(AgentConfig c, LoadAgentConfig(o.config, ProcessEnvironment(), false));
    if (c.unix_socket_enabled) {
      endpoint.unix_socket = c.socket_path;
      return endpoint;
    }
    // A TCP-only agent: its address, the port it wrote when it chose one, its secret.
    endpoint.tcp_host = c.tcp_host;
    endpoint.tcp_port = c.tcp_port;
    if (endpoint.tcp_port == 0) {
      SIGNUM_ASSIGN_OR_RETURN(std::string port, ReadFile(c.port_file));
      const int parsed = std::atoi(port.c_str());
      if (parsed <= 0 || parsed > 65535)
        return FailedPreconditionError(c.port_file + " holds no TCP port (is signum-agent running?)");
      endpoint.tcp_port = static_cast<uint16_t>(parsed);
    }
    SIGNUM_ASSIGN_OR_RETURN(endpoint.secret, ReadAgentSecretFile(c.secret_file));
    return endpoint;
  }
  return AgentEndpointFromEnvironment();
}

Result<std::unique_ptr<AgentClient>> ConnectAgent(const Options& o) {
  SIGNUM_ASSIGN_OR_RETURN(AgentEndpoint endpoint, ResolveEndpoint(o));
  return AgentClient::Connect(endpoint, kClientName, o.timeout_ms);
}

int Fail(const Status& s) {
  std::cerr << "signum-util: " << s.ToString() << "\n";
  return 1;
}

int CmdStatus(const Options& o) {
  auto client = ConnectAgent(o);
  if (!client.ok()) {
    std::cout << "agent:        UNREACHABLE (" << client.status().ToString() << ")\n";
    return 1;
  }
  auto status = (*client)->GetStatus();
  if (!status.ok()) {
    std::cout << "agent:        " << (*client)->endpoint_description() << " ("
              << status.status().ToString() << ")\n";
    return 1;
  }
  std::cout << "agent:        " << (*client)->endpoint_description() << " ("
            << (*client)->agent_name() << ")\n"
            << "server:       " << status->server_url << " ("
            << (status->server_reachable ? "reachable" : "UNREACHABLE") << ")\n"
            << "user:         " << status->user << "\n"
            << "certificates: " << status->certificates << "\n"
            << "message:      " << status->message << "\n";
  return status->server_reachable ? 0 : 2;
}

int CmdList(const Options& o) {
  bool refresh = false;
  for (const std::string& a : o.args) {
    if (a == "--refresh") {
      refresh = true;
    } else {
      return Fail(InvalidArgumentError("list: unknown argument '" + a + "'"));
    }
  }
  auto client = ConnectAgent(o);
  if (!client.ok()) return Fail(client.status());
  auto list = (*client)->ListCertificates(refresh);
  if (!list.ok()) return Fail(list.status());
  PrintCertificateListing(std::cout, provider::BuildCertificateSet(*list));
  return 0;
}

int CmdTestSign(const Options& o) {
  std::string only;
  HashAlgorithm hash = HashAlgorithm::kSha256;
  for (size_t i = 0; i < o.args.size(); ++i) {
    const std::string& a = o.args[i];
    if ((a == "--certificate" || a == "--hash") && i + 1 >= o.args.size()) {
      return Fail(InvalidArgumentError(a + " needs a value"));
    }
    if (a == "--certificate") {
      only = o.args[++i];
    } else if (a == "--hash") {
      auto parsed = ParseHashAlgorithm(o.args[++i]);
      if (!parsed.ok()) return Fail(parsed.status());
      hash = *parsed;
    } else {
      return Fail(InvalidArgumentError("test-sign: unknown argument '" + a + "'"));
    }
  }
  auto client = ConnectAgent(o);
  if (!client.ok()) return Fail(client.status());
  auto list = (*client)->ListCertificates(false);
  if (!list.ok()) return Fail(list.status());
  int ok = 0;
  int failed = 0;
  for (const auto& e : list->certificates) {
    if (!only.empty() && AsciiLower(only) != e.id && only != e.label) continue;
    const std::string name = e.label.empty() ? e.id : e.label;
    auto cert = Certificate::FromPem(e.certificate_pem);
    auto key = cert.ok() ? cert->GetPublicKey() : Result<PublicKey>(cert.status());
    if (!key.ok()) {
      std::cout << "FAIL " << name
                << ": cannot read the certificate's key: " << key.status().ToString() << "\n";
      ++failed;
      continue;
    }
    for (SignatureScheme scheme : e.schemes) {
      if (!SchemeFitsKey(scheme, key->type())) continue;
      agent_protocol::SignRequest request;
      request.certificate_id = e.id;
      request.scheme = scheme;
      request.hash = hash;
      request.digest = RandomBytes(GetHashInfo(hash).digest_size);
      request.context.process = "signum-util";
      const auto start = std::chrono::steady_clock::now();
      auto signature = (*client)->Sign(request);
      const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                          std::chrono::steady_clock::now() - start)
                          .count();
      const std::string what =
          name + " " + std::string(SchemeName(scheme)) + " " + std::string(HashName(hash));
      if (!signature.ok()) {
        std::cout << "FAIL " << what << ": " << signature.status().ToString() << "\n";
        ++failed;
        if (!(*client)->healthy())
          return Fail(UnavailableError("lost the connection to the agent"));
        continue;
      }
      Status verified = VerifyDigestSignature(*key, scheme, hash, request.digest, *signature);
      if (verified.ok()) {
        std::cout << "OK   " << what << " (" << signature->size() << "-byte signature, " << ms
                  << " ms)\n";
        ++ok;
      } else {
        std::cout << "FAIL " << what << ": signature does not verify: " << verified.ToString()
                  << "\n";
        ++failed;
      }
    }
  }
  if (ok + failed == 0) {
    return Fail(NotFoundError(only.empty() ? "the agent offers no certificate to test"
                                           : "no certificate with id or label '" + only + "'"));
  }
  std::cout << ok << " OK, " << failed << " FAIL\n";
  return failed == 0 ? 0 : 1;
}

std::string SelfDirectory() {
  const std::string self = posix::OwnExecutablePath();
  if (self.empty()) return ".";
  return fs::path(self).parent_path().string();
}

// Where libsignumpkcs11.so is: $SIGNUM_PKCS11_MODULE, the build tree beside this binary, or the
// usual install locations.
std::optional<std::string> FindModule() {
  std::vector<std::string> candidates;
  if (const char* env = std::getenv("SIGNUM_PKCS11_MODULE"); env != nullptr && env[0] != '\0') {
    candidates.push_back(env);
  }
  const std::string self = SelfDirectory();
  candidates.push_back(self + "/../providers/pkcs11/" + kModuleLibraryName);  // build tree
  candidates.push_back(self + "/../lib/" + kModuleLibraryName);  // /usr/local/bin -> lib
  candidates.push_back(std::string("/usr/lib/") + kModuleLibraryName);
  candidates.push_back(std::string("/usr/local/lib/") + kModuleLibraryName);
  candidates.push_back(std::string("/usr/lib/x86_64-linux-gnu/") + kModuleLibraryName);
  for (const std::string& c : candidates) {
    std::error_code ec;
    if (fs::exists(c, ec)) return fs::weakly_canonical(fs::absolute(c), ec).string();
  }
  return std::nullopt;
}

Result<std::string> ModuleDirectory(const std::vector<std::string>& args, size_t* i, bool* system,
                                    std::string* dir) {
  const std::string& a = args[*i];
  if (a == "--system") {
    *system = true;
    return std::string(kSystemModuleDirectory);
  }
  if (a == "--dir") {
    if (*i + 1 >= args.size()) return InvalidArgumentError("--dir needs a value");
    *dir = args[++*i];
    return *dir;
  }
  return InvalidArgumentError("unknown argument '" + a + "'");
}

std::string UserModuleDirectory() {
  // p11-kit reads $XDG_CONFIG_HOME/pkcs11/modules, else ~/.config/pkcs11/modules.
  if (const char* xdg = std::getenv("XDG_CONFIG_HOME"); xdg != nullptr && xdg[0] == '/') {
    return std::string(xdg) + "/pkcs11/modules";
  }
  const char* home = std::getenv("HOME");
  return std::string(home != nullptr ? home : "") + "/.config/pkcs11/modules";
}

int CmdP11Kit(const Options& o) {
  if (o.args.empty() || (o.args[0] != "register" && o.args[0] != "unregister")) {
    return Fail(InvalidArgumentError("usage: signum-util p11-kit register|unregister [...]"));
  }
  const bool reg = o.args[0] == "register";
  std::string module;
  std::string dir;
  bool system = false;
  for (size_t i = 1; i < o.args.size(); ++i) {
    if (reg && o.args[i] == "--module") {
      if (i + 1 >= o.args.size()) return Fail(InvalidArgumentError("--module needs a value"));
      module = o.args[++i];
      continue;
    }
    auto d = ModuleDirectory(o.args, &i, &system, &dir);
    if (!d.ok()) return Fail(d.status());
    dir = *d;
  }
  if (dir.empty()) dir = UserModuleDirectory();
  const std::string file = dir + "/" + kModuleFileName;
  if (!reg) {
    std::error_code ec;
    if (!fs::remove(file, ec)) {
      return Fail(NotFoundError("no " + file + (ec ? ": " + ec.message() : "")));
    }
    std::cout << "removed " << file << "\n";
    return 0;
  }
  if (module.empty()) {
    auto found = FindModule();
    if (!found) {
      return Fail(NotFoundError(std::string("cannot find ") + kModuleLibraryName +
                                "; pass --module PATH (or set SIGNUM_PKCS11_MODULE)"));
    }
    module = *found;
  }
  std::error_code ec;
  // p11-kit resolves relative module paths against its own module directory, so write an
  // absolute one.
  module = fs::weakly_canonical(fs::absolute(module), ec).string();
  if (!fs::exists(module, ec)) return Fail(NotFoundError("module " + module + " does not exist"));
  fs::create_directories(dir, ec);
  if (ec) return Fail(FailedPreconditionError("cannot create " + dir + ": " + ec.message()));
  const std::string content =
      "# Signum PKCS#11 provider: certificates and keys served by signum-agent.\n"
      "# Written by `signum-util p11-kit register`; remove with `signum-util p11-kit unregister`.\n"
      "module: " +
      module + "\n";
  Status written = WriteFileAtomically(file, content, 0644);
  if (!written.ok()) return Fail(written);
  std::cout << "registered " << module << " in " << file << "\n";
  if (!system && ::geteuid() == 0) {
    std::cout << "note: p11-kit ignores per-user module files in programs running as root; "
                 "use --system (" << kSystemModuleDirectory << ") for root\n";
  }
  return 0;
}

int CmdEnv(const Options& o) {
  std::vector<std::pair<std::string, std::string>> vars;
  if (!o.socket.empty() || !o.tcp.empty()) {
    if (!o.socket.empty()) vars.emplace_back("SIGNUM_AGENT_SOCKET", o.socket);
    if (!o.tcp.empty()) vars.emplace_back("SIGNUM_AGENT_TCP", o.tcp);
    if (!o.secret_file.empty()) vars.emplace_back("SIGNUM_AGENT_SECRET_FILE", o.secret_file);
  } else {
    // What the agent would use with this configuration (its file and the same environment).
    auto config = LoadAgentConfig(o.config, ProcessEnvironment(), /*require_server=*/false);
    if (!config.ok()) return Fail(config.status());
    vars.emplace_back("SIGNUM_AGENT_SOCKET", config->socket_path);
    if (config->tcp_enabled) {
      uint16_t port = config->tcp_port;
      if (port == 0) {
        // Ephemeral: the running agent wrote the port it got.
        auto text = ReadFile(config->port_file);
        if (text.ok()) port = static_cast<uint16_t>(std::atoi(text->c_str()));
      }
      if (port == 0) {
        std::cerr << "signum-util: the agent's TCP port is ephemeral and " << config->port_file
                  << " is not readable (is the agent running?)\n";
      } else {
        const bool v6 = config->tcp_host.find(':') != std::string::npos;
        vars.emplace_back(
            "SIGNUM_AGENT_TCP",
            (v6 ? "[" + config->tcp_host + "]" : config->tcp_host) + ":" + std::to_string(port));
      }
      vars.emplace_back("SIGNUM_AGENT_SECRET_FILE", config->secret_file);
    } else {
      vars.emplace_back("SIGNUM_AGENT_TCP", "off");
    }
  }
  if (auto module = FindModule()) vars.emplace_back("SIGNUM_PKCS11_MODULE", *module);
  for (const auto& [name, value] : vars)
    std::cout << "export " << name << "=" << ShellQuote(value) << "\n";
  return 0;
}

// The token's configuration may only be changed by the app that hosts the token extension, so on
// macOS the keychain commands run as that app's executable (reference/providers/ctk/macos/host);
// signum-util finds it beside itself ($SIGNUM_TOKEN_HOST overrides). Elsewhere there is no token.
int CmdKeychain(const Options& o, const char* self) {
#if defined(__APPLE__)
  std::string host;
  if (const char* env = std::getenv("SIGNUM_TOKEN_HOST")) host = env;
  if (host.empty()) {
    const std::filesystem::path dir = std::filesystem::path(self).parent_path();
    for (const auto& candidate :
         {dir / "signum-token-host.app/Contents/MacOS/signum-token-host",
          dir / "../providers/ctk/macos/signum-token-host.app/Contents/MacOS/signum-token-host"}) {
      if (::access(candidate.c_str(), X_OK) == 0) {
        host = candidate.string();
        break;
      }
    }
  }
  if (host.empty()) {
    std::cerr << "signum-util keychain: signum-token-host.app not found beside signum-util "
                 "(set SIGNUM_TOKEN_HOST)\n";
    return 1;
  }
  std::vector<std::string> args = {host, "keychain"};
  args.insert(args.end(), o.args.begin(), o.args.end());
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  ::execv(host.c_str(), argv.data());
  std::cerr << "signum-util keychain: cannot run " << host << ": " << std::strerror(errno) << "\n";
  return 1;
#else
  (void)o;
  (void)self;
  std::cerr << "signum-util keychain: the CryptoTokenKit token exists on macOS only (docs/ctk.md); "
               "here tools reach the certificates through libsignumpkcs11.so "
               "(signum-util p11-kit register)\n";
  return 2;
#endif
}

int Main(int argc, char** argv) {
  Options o;
  int i = 1;
  for (; i < argc; ++i) {
    const std::string a = argv[i];
    if (a.rfind("--", 0) != 0 || a == "--help" || a == "--version") break;
    if (i + 1 >= argc) {
      std::cerr << "signum-util: " << a << " needs a value\n";
      return 2;
    }
    const std::string v = argv[++i];
    if (a == "--socket") {
      o.socket = v;
    } else if (a == "--tcp") {
      o.tcp = v;
    } else if (a == "--secret-file") {
      o.secret_file = v;
    } else if (a == "--config") {
      o.config = v;
    } else if (a == "--timeout") {
      o.timeout_ms = std::atoi(v.c_str());
      if (o.timeout_ms <= 0) {
        std::cerr << "signum-util: --timeout must be a positive number of milliseconds\n";
        return 2;
      }
    } else {
      std::cerr << "signum-util: unknown option " << a << " (see signum-util help)\n";
      return 2;
    }
  }
  if (i >= argc) {
    PrintUsage(std::cerr);
    return 2;
  }
  o.command = argv[i++];
  for (; i < argc; ++i) o.args.push_back(argv[i]);

  if (o.command == "help" || o.command == "--help" || o.command == "-h") {
    PrintUsage(std::cout);
    return 0;
  }
  if (o.command == "version" || o.command == "--version") {
    std::cout << "signum-util " << kVersion << " (agent protocol "
              << agent_protocol::kProtocolVersion << ")\n";
    return 0;
  }
  if (o.command == "status") return CmdStatus(o);
  if (o.command == "list") return CmdList(o);
  if (o.command == "test-sign") return CmdTestSign(o);
  if (o.command == "p11-kit") return CmdP11Kit(o);
  if (o.command == "env") return CmdEnv(o);
  if (o.command == "keychain") return CmdKeychain(o, argv[0]);
  std::cerr << "signum-util: unknown command '" << o.command << "'\n\n";
  PrintUsage(std::cerr);
  return 2;
}

}  // namespace
}  // namespace signum::agent

int main(int argc, char** argv) { return signum::agent::Main(argc, argv); }

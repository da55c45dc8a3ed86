// signum-util.exe: the Windows build of signum-agent's command-line companion. Same program name
// and the same status/list commands as on Linux (util_main.cc), plus the Windows commands that
// register Signum's CNG Key Storage Provider and CryptoAPI CSP, publish the agent's certificates
// in a certificate store with CERT_KEY_PROV_INFO pointing at them, and tell providers where the
// agent is. It reaches the agent exactly as the providers do: provider::ProviderContext over
// loopback TCP, endpoint from the environment or the registry (signum/cng/provider_runtime.h).
//
// Exit codes: 0 success; 1 the operation failed (message on stderr); 2 usage error;
// status: 1 agent unreachable, 2 server unreachable.
#include <windows.h>
// shellapi.h needs windows.h's types first.
#include <shellapi.h>

#include <chrono>
#include <cstdlib>
#include <ctime>
#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "signum/agent/agent_client.h"
#include "certificate_listing.h"
#include "signum/cng/names.h"
#include "signum/cng/provider_runtime.h"
#include "signum/cng/registration.h"
#include "signum/cng/registry.h"
#include "signum/core/algorithms.h"
#include "signum/core/status.h"
#include "signum/provider/provider_context.h"
#include "signum/provider/wide_string.h"

namespace signum::cng {
namespace {

using provider::Utf8FromWide;
using provider::WideFromUtf8;

constexpr const char* kVersion = "0.1.0";
constexpr const char* kClientName = "signum-util/0.1 (windows)";

void PrintUsage(std::ostream& out) {
  out << R"TEXT(Usage: signum-util [OPTIONS] COMMAND [ARGS]

Commands:
  status                          agent and server state; exit 0 only if both are reachable
                                  (1: agent unreachable, 2: server unreachable)
  list [--refresh]                the certificates the agent offers: id, label, subject, issuer,
                                  validity, SHA-1 thumbprint, algorithm
  windows register ksp|csp [--dll PATH]
                                  registers Signum's CNG Key Storage Provider or CryptoAPI CSP
                                  (HKLM: needs an elevated prompt). Default PATH: signumksp.dll /
                                  signumcsp.dll beside signum-util.exe (full path); a bare KSP
                                  name (--dll signumksp.dll) is loaded from System32 by Windows.
                                  The CSP is registered under one name per provider type
                                  (PROV_RSA_FULL, PROV_RSA_AES; `windows show` lists them), and
                                  unregistered under both
  windows unregister ksp|csp
  windows install-certificates --provider ksp|csp [--store CurrentUser|LocalMachine] [--roots]
                                  adds the agent's signing certificates to <store>\My with
                                  CERT_KEY_PROV_INFO naming the provider and the key (container =
                                  certificate id), intermediates to <store>\CA and, with --roots,
                                  roots to <store>\Root (CurrentUser\Root makes Windows ask the
                                  user to confirm). Prints the SHA-1 thumbprints (signtool /sha1).
                                  csp: the key link names the PROV_RSA_FULL registration, the one
                                  signtool /csp uses
  windows remove-certificates --provider ksp|csp [--store CurrentUser|LocalMachine]
                                  removes from <store>\My every certificate whose key link names
                                  the provider
  windows configure --agent-tcp HOST:PORT --secret-file PATH
                                  tells providers where the agent is, for processes started
                                  without SIGNUM_AGENT_TCP / SIGNUM_AGENT_SECRET_FILE (writes
                                  HKCU\Software\Signum Harness\Agent: Tcp, SecretFile)
  windows show                    what is registered and configured
  version
  help

Options (the agent endpoint; default: what the providers use, i.e. SIGNUM_AGENT_TCP and
SIGNUM_AGENT_SECRET_FILE, else the values `windows configure` wrote):
  --tcp HOST:PORT      the agent's loopback TCP endpoint
  --secret-file PATH   the TCP secret
  --timeout MS         per-request timeout (default 30000)
)TEXT";
}

struct Options {
  std::string tcp;
  std::string secret_file;
  int timeout_ms = 30000;
  std::string command;
  std::vector<std::string> args;
};

int Fail(const Status& s) {
  std::cerr << "signum-util: " << s.ToString() << "\n";
  return 1;
}

int UsageError(const std::string& message) {
  std::cerr << "signum-util: " << message << " (see signum-util help)\n";
  return 2;
}

// Flags first, else the providers' own resolution (environment, then the registry).
Result<agent::AgentEndpoint> ResolveEndpoint(const Options& o) {
  if (o.tcp.empty()) return AgentEndpointForWindowsProvider();
  agent::AgentEndpoint endpoint;
  SIGNUM_RETURN_IF_ERROR(
      agent::ParseLoopbackAddress(o.tcp, &endpoint.tcp_host, &endpoint.tcp_port));
  std::string secret_file = o.secret_file;
  if (secret_file.empty() && std::getenv("SIGNUM_AGENT_SECRET_FILE") != nullptr) {
    secret_file = std::getenv("SIGNUM_AGENT_SECRET_FILE");
  }
  if (secret_file.empty()) return FailedPreconditionError("--tcp needs --secret-file");
  SIGNUM_ASSIGN_OR_RETURN(endpoint.secret, agent::ReadAgentSecretFile(secret_file));
  return endpoint;
}

std::unique_ptr<provider::ProviderContext> MakeContext(const Options& o) {
  provider::AgentPoolOptions options;
  options.endpoint = ResolveEndpoint(o);
  options.client_name = kClientName;
  options.timeout_ms = o.timeout_ms;
  return std::make_unique<provider::ProviderContext>(std::move(options));
}

int CmdStatus(const Options& o) {
  auto context = MakeContext(o);
  auto status = context->pool().GetStatus();
  if (!status.ok()) {
    std::cout << "agent:        UNREACHABLE (" << status.status().ToString() << ")\n";
    return 1;
  }
  std::cout << "agent:        " << context->pool().DescribeEndpoint() << "\n"
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
    if (a != "--refresh") return UsageError("list: unknown argument '" + a + "'");
    refresh = true;
  }
  auto context = MakeContext(o);
  auto set = refresh ? context->Refresh() : context->Certificates();
  if (!set.ok()) return Fail(set.status());
  agent::PrintCertificateListing(std::cout, **set);
  return 0;
}

std::optional<ProviderKind> ParseKind(const std::string& text) {
  if (text == "ksp") return ProviderKind::kKsp;
  if (text == "csp") return ProviderKind::kCsp;
  return std::nullopt;
}

const char* KindName(ProviderKind kind) { return kind == ProviderKind::kKsp ? "KSP" : "CSP"; }

std::wstring ExecutableDirectory() {
  std::wstring path(MAX_PATH, L'\0');
  for (;;) {
    const DWORD n = GetModuleFileNameW(nullptr, path.data(), static_cast<DWORD>(path.size()));
    if (n < path.size()) {
      path.resize(n);
      break;
    }
    path.resize(path.size() * 2);
  }
  const size_t slash = path.find_last_of(L"\\/");
  return slash == std::wstring::npos ? L"." : path.substr(0, slash);
}

// The full path of a DLL, or the bare name (KSP only: Windows loads it from System32).
Result<std::wstring> ResolveDll(ProviderKind kind, const std::string& given) {
  const wchar_t* default_name = kind == ProviderKind::kKsp ? kKspDllName : kCspDllName;
  std::wstring dll =
      given.empty() ? ExecutableDirectory() + L"\\" + default_name : WideFromUtf8(given);
  const bool bare = dll.find_first_of(L"\\/:") == std::wstring::npos;
  if (bare) {
    if (kind == ProviderKind::kCsp) {
      return InvalidArgumentError(
          "the CSP's --dll must be a full path (CryptoAPI loads 'Image Path' as is)");
    }
    return dll;
  }
  std::wstring full(MAX_PATH, L'\0');
  const DWORD n =
      GetFullPathNameW(dll.c_str(), static_cast<DWORD>(full.size()), full.data(), nullptr);
  if (n == 0 || n >= full.size())
    return InvalidArgumentError("cannot resolve " + Utf8FromWide(dll));
  full.resize(n);
  if (GetFileAttributesW(full.c_str()) == INVALID_FILE_ATTRIBUTES) {
    return NotFoundError(Utf8FromWide(full) + " does not exist (build it, or name it with --dll)");
  }
  return full;
}

int CmdRegister(const std::vector<std::string>& args, bool unregister) {
  const char* verb = unregister ? "unregister" : "register";
  if (args.empty()) return UsageError(std::string("windows ") + verb + " needs ksp or csp");
  auto kind = ParseKind(args[0]);
  if (!kind) return UsageError("expected ksp or csp, not '" + args[0] + "'");
  std::string dll_arg;
  for (size_t i = 1; i < args.size(); ++i) {
    if (args[i] == "--dll" && !unregister && i + 1 < args.size()) {
      dll_arg = args[++i];
    } else {
      return UsageError(std::string("windows ") + verb + ": unexpected argument '" + args[i] + "'");
    }
  }
  // The CSP is one DLL under one name per provider type (names.h).
  std::vector<std::string> names;
  if (*kind == ProviderKind::kKsp) {
    names.push_back(Utf8FromWide(kKspName));
  } else {
    for (const CspRegistration& registration : kCspRegistrations) {
      names.push_back(Utf8FromWide(registration.name) + " (type " +
                      std::to_string(registration.type) + ")");
    }
  }
  if (unregister) {
    Status s = *kind == ProviderKind::kKsp ? UnregisterKsp() : UnregisterCsp();
    if (!s.ok()) return Fail(s);
    for (const std::string& name : names) {
      std::cout << "unregistered " << KindName(*kind) << " " << name << "\n";
    }
    return 0;
  }
  auto dll = ResolveDll(*kind, dll_arg);
  if (!dll.ok()) return Fail(dll.status());
  Status s = *kind == ProviderKind::kKsp ? RegisterKsp(*dll) : RegisterCsp(*dll);
  if (!s.ok()) return Fail(s);
  for (const std::string& name : names) {
    std::cout << "registered " << KindName(*kind) << " " << name << ": " << Utf8FromWide(*dll)
              << "\n";
  }
  return 0;
}

struct StoreArgs {
  ProviderKind kind = ProviderKind::kKsp;
  StoreLocation location = StoreLocation::kCurrentUser;
  bool roots = false;
};

// --provider ksp|csp [--store CurrentUser|LocalMachine] [--roots (install only)]
std::optional<StoreArgs> ParseStoreArgs(const std::vector<std::string>& args, bool allow_roots,
                                        std::string* error) {
  StoreArgs parsed;
  bool have_provider = false;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if ((a == "--provider" || a == "--store") && i + 1 >= args.size()) {
      *error = a + " needs a value";
      return std::nullopt;
    }
    if (a == "--provider") {
      auto kind = ParseKind(args[++i]);
      if (!kind) {
        *error = "--provider takes ksp or csp, not '" + args[i] + "'";
        return std::nullopt;
      }
      parsed.kind = *kind;
      have_provider = true;
    } else if (a == "--store") {
      const std::string& v = args[++i];
      if (_stricmp(v.c_str(), "CurrentUser") == 0) {
        parsed.location = StoreLocation::kCurrentUser;
      } else if (_stricmp(v.c_str(), "LocalMachine") == 0) {
        parsed.location = StoreLocation::kLocalMachine;
      } else {
        *error = "--store takes CurrentUser or LocalMachine, not '" + v + "'";
        return std::nullopt;
      }
    } else if (a == "--roots" && allow_roots) {
      parsed.roots = true;
    } else {
      *error = "unexpected argument '" + a + "'";
      return std::nullopt;
    }
  }
  if (!have_provider) {
    *error = "--provider ksp|csp is required";
    return std::nullopt;
  }
  return parsed;
}

const char* StoreName(StoreLocation location) {
  return location == StoreLocation::kCurrentUser ? "CurrentUser" : "LocalMachine";
}

int CmdInstallCertificates(const Options& o, const std::vector<std::string>& args) {
  std::string error;
  auto parsed = ParseStoreArgs(args, /*allow_roots=*/true, &error);
  if (!parsed) return UsageError("windows install-certificates: " + error);
  auto context = MakeContext(o);
  auto installed = InstallCertificates(*context, parsed->kind, parsed->location, parsed->roots);
  if (!installed.ok()) return Fail(installed.status());
  std::cout << "installed " << installed->size() << " certificate(s) in "
            << StoreName(parsed->location) << "\\My for the " << KindName(parsed->kind) << "\n";
  for (const std::string& thumbprint : *installed) {
    std::cout << "  " << agent::UpperHex(thumbprint) << "\n";
  }
  return 0;
}

int CmdRemoveCertificates(const std::vector<std::string>& args) {
  std::string error;
  auto parsed = ParseStoreArgs(args, /*allow_roots=*/false, &error);
  if (!parsed) return UsageError("windows remove-certificates: " + error);
  auto removed = RemoveInstalledCertificates(parsed->kind, parsed->location);
  if (!removed.ok()) return Fail(removed.status());
  std::cout << "removed " << *removed << " certificate(s) from " << StoreName(parsed->location)
            << "\\My linked to the " << KindName(parsed->kind) << "\n";
  return 0;
}

Status WriteAgentValue(HKEY key, const wchar_t* name, const std::string& value) {
  return WriteRegistryString(key, name, WideFromUtf8(value),
                             "HKCU\\" + Utf8FromWide(kAgentRegistryKey) + "\\" + Utf8FromWide(name));
}

int CmdConfigure(const std::vector<std::string>& args) {
  std::string tcp, secret_file;
  for (size_t i = 0; i < args.size(); ++i) {
    if ((args[i] == "--agent-tcp" || args[i] == "--secret-file") && i + 1 < args.size()) {
      (args[i] == "--agent-tcp" ? tcp : secret_file) = args[i + 1];
      ++i;
    } else {
      return UsageError("windows configure: unexpected argument '" + args[i] + "'");
    }
  }
  if (tcp.empty() || secret_file.empty()) {
    return UsageError("windows configure needs --agent-tcp HOST:PORT and --secret-file PATH");
  }
  std::string host;
  uint16_t port = 0;
  if (Status s = agent::ParseLoopbackAddress(tcp, &host, &port); !s.ok()) return Fail(s);
  // Checked now so a typo surfaces here, not as a failure inside some other program later.
  if (auto secret = agent::ReadAgentSecretFile(secret_file); !secret.ok())
    return Fail(secret.status());
  HKEY key = nullptr;
  const LONG rc = RegCreateKeyExW(HKEY_CURRENT_USER, kAgentRegistryKey, 0, nullptr, 0, KEY_WRITE,
                                  nullptr, &key, nullptr);
  if (rc != ERROR_SUCCESS) {
    return Fail(InternalError("creating HKCU\\" + Utf8FromWide(kAgentRegistryKey) +
                              ": Win32 error " + std::to_string(rc)));
  }
  Status s = WriteAgentValue(key, L"Tcp", tcp);
  if (s.ok()) s = WriteAgentValue(key, L"SecretFile", secret_file);
  RegCloseKey(key);
  if (!s.ok()) return Fail(s);
  std::cout << "configured HKCU\\" << Utf8FromWide(kAgentRegistryKey) << ": Tcp=" << tcp
            << " SecretFile=" << secret_file << "\n";
  return 0;
}

int CmdShow() {
  auto ksp = RegisteredKspImage();
  std::cout << "KSP " << Utf8FromWide(kKspName) << ": "
            << (ksp.ok() ? Utf8FromWide(*ksp) : "not registered (" + ksp.status().message() + ")")
            << "\n";
  for (const CspRegistration& registration : kCspRegistrations) {
    auto csp = RegisteredCspImage(registration);
    std::cout << "CSP " << Utf8FromWide(registration.name) << " (type " << registration.type
              << "): " << (csp.ok() ? Utf8FromWide(*csp) : csp.status().message()) << "\n";
  }
  auto endpoint = AgentEndpointForWindowsProvider();
  std::cout << "agent endpoint for providers: "
            << (endpoint.ok() ? endpoint->Describe() : endpoint.status().ToString()) << "\n";
  return 0;
}

int CmdWindows(const Options& o) {
  if (o.args.empty()) return UsageError("windows needs a subcommand");
  const std::string& sub = o.args[0];
  const std::vector<std::string> rest(o.args.begin() + 1, o.args.end());
  if (sub == "register") return CmdRegister(rest, false);
  if (sub == "unregister") return CmdRegister(rest, true);
  if (sub == "install-certificates") return CmdInstallCertificates(o, rest);
  if (sub == "remove-certificates") return CmdRemoveCertificates(rest);
  if (sub == "configure") return CmdConfigure(rest);
  if (sub == "show" && rest.empty()) return CmdShow();
  return UsageError("unknown windows subcommand '" + sub + "'");
}

// UTF-8 arguments from the UTF-16 command line (main's argv is in the ANSI code page).
std::vector<std::string> Arguments() {
  int argc = 0;
  LPWSTR* argv = CommandLineToArgvW(GetCommandLineW(), &argc);
  std::vector<std::string> out;
  for (int i = 0; i < argc; ++i) out.push_back(Utf8FromWide(argv[i]));
  LocalFree(argv);
  return out;
}

int Main() {
  const std::vector<std::string> argv = Arguments();
  const size_t argc = argv.size();
  Options o;
  size_t i = 1;
  for (; i < argc; ++i) {
    const std::string& a = argv[i];
    if (a.rfind("--", 0) != 0 || a == "--help" || a == "--version") break;
    if (i + 1 >= argc) return UsageError(a + " needs a value");
    const std::string& v = argv[++i];
    if (a == "--tcp") {
      o.tcp = v;
    } else if (a == "--secret-file") {
      o.secret_file = v;
    } else if (a == "--timeout") {
      o.timeout_ms = std::atoi(v.c_str());
      if (o.timeout_ms <= 0)
        return UsageError("--timeout must be a positive number of milliseconds");
    } else {
      return UsageError("unknown option " + a);
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
    std::cout << "signum-util " << kVersion << " (windows)\n";
    return 0;
  }
  if (o.command == "status")
    return o.args.empty() ? CmdStatus(o) : UsageError("status takes no arguments");
  if (o.command == "list") return CmdList(o);
  if (o.command == "windows") return CmdWindows(o);
  std::cerr << "signum-util: unknown command '" << o.command << "'\n\n";
  PrintUsage(std::cerr);
  return 2;
}

}  // namespace
}  // namespace signum::cng

int main() { return signum::cng::Main(); }

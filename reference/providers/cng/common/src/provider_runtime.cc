#include "signum/cng/provider_runtime.h"

#include <cstdlib>
#include <mutex>
#include <string>

#include "signum/cng/registry.h"
#include "signum/provider/wide_string.h"

namespace signum::cng {
namespace {

// A REG_SZ value under HKCU\<kAgentRegistryKey>; empty when absent or not a string.
std::string RegistryString(const wchar_t* value_name) {
  auto value = ReadRegistryString(HKEY_CURRENT_USER, kAgentRegistryKey, value_name);
  return value.ok() ? provider::Utf8FromWide(*value) : std::string();
}

int TimeoutFromEnvironment() {
  const char* text = std::getenv("SIGNUM_CNG_TIMEOUT_MS");
  if (text == nullptr) return 30000;
  const long value = std::strtol(text, nullptr, 10);
  return value >= 100 && value <= 600000 ? static_cast<int>(value) : 30000;
}

}  // namespace

Result<agent::AgentEndpoint> AgentEndpointForWindowsProvider() {
  const char* tcp = std::getenv("SIGNUM_AGENT_TCP");
  if (tcp != nullptr && *tcp != '\0') return agent::AgentEndpointFromEnvironment();
  const std::string registry_tcp = RegistryString(L"Tcp");
  const std::string registry_secret = RegistryString(L"SecretFile");
  if (registry_tcp.empty() || registry_secret.empty()) {
    const std::string dir = agent::DefaultAgentDirectory();
    auto from_files = agent::AgentEndpointFromAgentFiles(dir);
    if (from_files.ok() || from_files.status().code() != ErrorCode::kNotFound) return from_files;
    return UnavailableError(
        "signum-agent is not configured for this process: set SIGNUM_AGENT_TCP and "
        "SIGNUM_AGENT_SECRET_FILE, run `signum-util windows configure`, or start signum-agent.exe "
        "(with its defaults it announces itself in " + dir + ")");
  }
  agent::AgentEndpoint endpoint;
  SIGNUM_RETURN_IF_ERROR(
      agent::ParseLoopbackAddress(registry_tcp, &endpoint.tcp_host, &endpoint.tcp_port)
          .WithContext("HKCU\\Software\\Signum Harness\\Agent\\Tcp"));
  SIGNUM_ASSIGN_OR_RETURN(endpoint.secret, agent::ReadAgentSecretFile(registry_secret));
  return endpoint;
}

provider::ProviderContext& SharedProviderContext(const char* client_name) {
  static std::once_flag once;
  static provider::ProviderContext* context = nullptr;
  std::call_once(once, [&] {
    provider::AgentPoolOptions options;
    options.endpoint = AgentEndpointForWindowsProvider();
    options.client_name = client_name;
    options.timeout_ms = TimeoutFromEnvironment();
    // Never destroyed: DLL unload order at process exit is arbitrary, and destroying sockets
    // from DllMain(PROCESS_DETACH) can deadlock on the loader lock.
    context = new provider::ProviderContext(std::move(options));
  });
  return *context;
}

bool IsWindowsKey(const provider::ProviderCertificate& certificate) {
  return certificate.key_spec.type == KeyType::kRsa;
}

std::vector<std::shared_ptr<const provider::ProviderCertificate>> WindowsKeys(
    const provider::CertificateSet& set) {
  std::vector<std::shared_ptr<const provider::ProviderCertificate>> keys;
  for (const auto& certificate : set.certificates) {
    if (IsWindowsKey(*certificate)) keys.push_back(certificate);
  }
  return keys;
}

Result<std::shared_ptr<const provider::ProviderCertificate>> FindWindowsKey(
    provider::ProviderContext& context, std::string_view name) {
  SIGNUM_ASSIGN_OR_RETURN(auto certificate, context.FindCertificate(name));
  if (!IsWindowsKey(*certificate)) {
    return NotFoundError("'" + std::string(name) + "' is a " + certificate->key_spec.Name() +
                         " certificate; Signum's Windows providers offer RSA keys only");
  }
  return certificate;
}

}  // namespace signum::cng

// The process-wide state of the Windows providers (signumksp.dll, signumcsp.dll): one
// provider::ProviderContext per DLL, created on first use, never torn down while the process runs
// (providers are loaded into other people's processes and unloaded at arbitrary times; the
// context only holds sockets and memory).
//
// Where the agent is, in order:
//   1. SIGNUM_AGENT_TCP=127.0.0.1:PORT and SIGNUM_AGENT_SECRET_FILE=C:\path\agent.secret
//      (the environment of the calling process: build scripts, the Wine test suites);
//   2. HKEY_CURRENT_USER\Software\Signum Harness\Agent, values Tcp and SecretFile (REG_SZ),
//      written by `signum-util windows configure`, for processes started without that environment
//      (Explorer, services started by the user);
//   3. the files a native signum-agent.exe started with its defaults writes:
//      %LOCALAPPDATA%\Signum\agent.port and agent.secret (agent::AgentEndpointFromAgentFiles).
// A missing or bad configuration is an error returned by every call that needs the agent, never a
// failure to load the DLL.
#pragma once

#include <windows.h>

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "signum/core/status.h"
#include "signum/provider/provider_context.h"

namespace signum::cng {

inline constexpr wchar_t kAgentRegistryKey[] = L"Software\\Signum Harness\\Agent";

// The agent endpoint from the environment, else the registry (above).
Result<agent::AgentEndpoint> AgentEndpointForWindowsProvider();

// The shared context of this DLL; client_name ("signumksp", "signumcsp") is sent in the agent
// handshake. Thread-safe; the first caller creates it.
provider::ProviderContext& SharedProviderContext(const char* client_name);

// The keys both Windows providers offer: the agent's RSA signing certificates, in the agent's
// order. Signum documents RSA only on Windows, so EC certificates are not keys here (the KSP does
// not enumerate them, the CSP is PROV_RSA_FULL, and no store entry links to them).
bool IsWindowsKey(const provider::ProviderCertificate& certificate);
std::vector<std::shared_ptr<const provider::ProviderCertificate>> WindowsKeys(
    const provider::CertificateSet& set);
// A Windows key by key/container name: the certificate id (any case) or its label. kNotFound for
// unknown names and for EC certificates (saying why); load failures as ProviderContext returns
// them.
Result<std::shared_ptr<const provider::ProviderCertificate>> FindWindowsKey(
    provider::ProviderContext& context, std::string_view name);

}  // namespace signum::cng

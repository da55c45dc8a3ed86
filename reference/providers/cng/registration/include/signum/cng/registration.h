// Registering Signum's Windows providers and publishing the agent's certificates in a Windows
// certificate store with CERT_KEY_PROV_INFO pointing at them, as the Signum agent does on Windows.
// Used by `signum-util windows ...` and by the conformance suites (which register into their
// throwaway Wine prefix). Everything here is plain Win32 (advapi32 registry, bcrypt, crypt32).
#pragma once

#include <windows.h>

#include <string>
#include <vector>

#include "signum/core/status.h"
#include "signum/provider/provider_context.h"

namespace signum::cng {

enum class ProviderKind { kKsp, kCsp };
enum class StoreLocation { kCurrentUser, kLocalMachine };

// --- KSP (ksp_registration.cc) ---
// BCryptRegisterProvider + BCryptAddContextFunctionProvider for kKspName with image kKspDllName
// (Windows loads it from System32 / SysWOW64), and the same layout written to
// HKLM\SYSTEM\CurrentControlSet\Control\Cryptography\Providers\<kKspName>\UM (Image = dll_path)
// with subkey 00010001 Functions = KEY_STORAGE, which is where a router that does not implement
// the BCrypt registration API (Wine's) finds it. dll_path: what Image holds (a bare name or a
// full path). Needs administrator rights on Windows (HKLM).
Status RegisterKsp(const std::wstring& dll_path);
Status UnregisterKsp();
// The Image registered for kKspName, kNotFound when not registered.
Result<std::wstring> RegisteredKspImage();

// --- CSP (csp_registration.cc) ---
// HKLM\SOFTWARE\Microsoft\Cryptography\Defaults\Provider\<kCspName>: Type = PROV_RSA_FULL
// (REG_DWORD), Image Path = dll_full_path (REG_SZ, fully qualified, as CryptoAPI requires).
Status RegisterCsp(const std::wstring& dll_full_path);
Status UnregisterCsp();
Result<std::wstring> RegisteredCspImage();

// --- Certificate store (certificate_store.cc) ---
// Adds every RSA signing certificate of the agent's list (the Windows providers are RSA-only,
// as Signum documents) to <location>\My with CERT_KEY_PROV_INFO
// {provider name of kind, container = certificate id, KSP: dwProvType 0, dwKeySpec 0;
// CSP: PROV_RSA_FULL, AT_SIGNATURE}, and its chain's CAs to CA (intermediates) and, only when
// install_roots, to Root. Replaces what an earlier call installed for the same certificate.
// Returns the SHA-1 thumbprints (lowercase hex) it installed.
Result<std::vector<std::string>> InstallCertificates(provider::ProviderContext& context,
                                                     ProviderKind kind, StoreLocation location,
                                                     bool install_roots);
// Removes from <location>\My every certificate whose CERT_KEY_PROV_INFO names kind's provider.
// Returns how many were removed.
Result<int> RemoveInstalledCertificates(ProviderKind kind, StoreLocation location);

}  // namespace signum::cng

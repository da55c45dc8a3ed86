// Registering Signum's Windows providers and publishing the agent's certificates in a Windows
// certificate store with CERT_KEY_PROV_INFO pointing at them, as the Signum agent does on Windows.
// Used by `signum-util windows ...` and by the conformance suites (which register into their
// throwaway Wine prefix). Everything here is plain Win32 (advapi32 registry, bcrypt, crypt32).
#pragma once

#include <windows.h>

#include <string>
#include <vector>

#include "signum/cng/names.h"
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
// For each of kCspRegistrations (names.h: kCspName as PROV_RSA_FULL, kCspAesName as
// PROV_RSA_AES), HKLM\SOFTWARE\Microsoft\Cryptography\Defaults\Provider\<name>: Type (REG_DWORD),
// Image Path = dll_full_path (REG_SZ, fully qualified, as CryptoAPI requires). The same DLL
// under both names: advapi32 routes a name only to the type registered for it.
Status RegisterCsp(const std::wstring& dll_full_path);
// Removes both names; idempotent.
Status UnregisterCsp();
// The Image registered under every name: kNotFound when none is registered, kFailedPrecondition
// when only some are, a Type is wrong or the images differ (a partial or stale registration).
Result<std::wstring> RegisteredCspImage();
// The Image registered under one name: kNotFound when that name is not registered,
// kFailedPrecondition when its Type is not registration.type.
Result<std::wstring> RegisteredCspImage(const CspRegistration& registration);

// --- Certificate store (certificate_store.cc) ---
// Adds every RSA signing certificate of the agent's list (the Windows providers are RSA-only,
// as Signum documents) to <location>\My with CERT_KEY_PROV_INFO {provider name of kind,
// container = certificate id, KSP: dwProvType 0, dwKeySpec 0; CSP: kCspName, PROV_RSA_FULL,
// AT_SIGNATURE: the PROV_RSA_FULL registration, which signtool /csp uses}, and its chain's CAs
// to CA (intermediates) and, only when install_roots, to Root. Replaces what an earlier call
// installed for the same certificate.
// Returns the SHA-1 thumbprints (lowercase hex) it installed.
Result<std::vector<std::string>> InstallCertificates(provider::ProviderContext& context,
                                                     ProviderKind kind, StoreLocation location,
                                                     bool install_roots);
// Removes from <location>\My every certificate whose CERT_KEY_PROV_INFO names kind's provider.
// Returns how many were removed.
Result<int> RemoveInstalledCertificates(ProviderKind kind, StoreLocation location);

}  // namespace signum::cng

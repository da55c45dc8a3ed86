// The names under which Signum's Windows providers are registered and found. One definition:
// the DLLs, the registration code, signum-util and the conformance suites all use these.
#pragma once

#include <windows.h>

namespace signum::cng {

// CNG Key Storage Provider (NCryptOpenStorageProvider(kKspName)).
inline constexpr wchar_t kKspName[] = L"Signum Key Storage Provider";
inline constexpr wchar_t kKspDllName[] = L"signumksp.dll";
// Legacy CryptoAPI CSP (CryptAcquireContext(..., kCspName, PROV_RSA_FULL, ...)).
inline constexpr wchar_t kCspName[] = L"Signum Cryptographic Service Provider";
inline constexpr wchar_t kCspDllName[] = L"signumcsp.dll";
// The CSP answers to both provider types tools ask for (signtool /csp with /kc uses PROV_RSA_FULL;
// .NET and newer tools PROV_RSA_AES); it is registered as PROV_RSA_FULL.
inline constexpr DWORD kCspRegisteredType = 1;  // PROV_RSA_FULL

// Keys and containers are named by the certificate's id: its SHA-1 thumbprint in lowercase hex,
// which is also what signtool /sha1 takes. Lookups also accept the server's label ("rsa-2048").

}  // namespace signum::cng

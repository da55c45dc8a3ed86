// The names under which Signum's Windows providers are registered and found. One definition:
// the DLLs, the registration code, signum-util and the conformance suites all use these.
#pragma once

#include <windows.h>

namespace signum::cng {

// CNG Key Storage Provider (NCryptOpenStorageProvider(kKspName)).
inline constexpr wchar_t kKspName[] = L"Signum Key Storage Provider";
inline constexpr wchar_t kKspDllName[] = L"signumksp.dll";
// Legacy CryptoAPI CSP: signumcsp.dll, registered twice, as Microsoft ships one provider per
// type. advapi32 refuses CryptAcquireContext(name, type) when type differs from the one
// registered for name (NTE_PROV_TYPE_NO_MATCH), so each type a caller asks for needs its own
// name: signtool /csp with /kc and CERT_KEY_PROV_INFO use PROV_RSA_FULL; .NET Framework
// (CspParameters) and SHA-2 aware tools PROV_RSA_AES, like Microsoft's "Enhanced RSA and AES".
inline constexpr wchar_t kCspDllName[] = L"signumcsp.dll";
inline constexpr wchar_t kCspName[] = L"Signum Cryptographic Service Provider";
inline constexpr DWORD kCspRegisteredType = 1;  // PROV_RSA_FULL
inline constexpr wchar_t kCspAesName[] = L"Signum Enhanced RSA and AES Cryptographic Provider";
inline constexpr DWORD kCspAesRegisteredType = 24;  // PROV_RSA_AES

struct CspRegistration {
  const wchar_t* name;
  DWORD type;
};
// Every name the CSP is registered under, with its type (registration, signum-util, tests).
inline constexpr CspRegistration kCspRegistrations[] = {
    {kCspName, kCspRegisteredType},
    {kCspAesName, kCspAesRegisteredType},
};

// Keys and containers are named by the certificate's id: its SHA-1 thumbprint in lowercase hex,
// which is also what signtool /sha1 takes. Lookups also accept the server's label ("rsa-2048").

}  // namespace signum::cng

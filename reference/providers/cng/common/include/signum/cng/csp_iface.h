// The CryptoAPI service-provider interface (CryptoSPI) a legacy CSP DLL implements, written from
// Microsoft's public documentation ("VTableProvStruc structure" on Microsoft Learn and the CSP
// reference pages for CPAcquireContext, CPSignHash, CPGetProvParam, CPExportKey; see
// shared/research/windows-recipes.md §3.3), because mingw-w64 ships no cspdk.h. wincrypt.h
// supplies the types (HCRYPTPROV, ALG_ID) and constants (PP_*, KP_*, HP_*).
//
// advapi32 (Windows' and Wine's) resolves all 23 required CP* names with GetProcAddress and
// refuses a DLL that lacks any of them; CPDuplicateHash and CPDuplicateKey are optional. Every
// entry point returns TRUE, or FALSE with SetLastError(NTE_* / ERROR_*). An output buffer that is
// NULL asks for the size; one that is too small fails with ERROR_MORE_DATA; both report the size.
#pragma once

#include <windows.h>
// wincrypt.h needs windows.h's types first.
#include <wincrypt.h>

#include <string>
#include <type_traits>

namespace signum::cng {

// What advapi32 passes to CPAcquireContext, valid only during that call (copy what you need).
// mingw's wincrypt.h declares the same layout only for pre-XP targets, hence our own name space.
struct VTableProvStruc {
  DWORD Version;            // 1, 2 or 3 (Wine and Windows pass 3)
  FARPROC FuncVerifyImage;  // v1: BOOL (WINAPI *)(LPCSTR image, BYTE* signature)
  FARPROC FuncReturnhWnd;   // v1: the window for UI (PP_CLIENT_HWND)
  DWORD dwProvType;         // v2: the provider type the caller asked for
  BYTE* pbContextInfo;      // v2
  DWORD cbContextInfo;      // v2
  LPSTR pszProvName;        // v3: the provider name the caller used (ANSI)
};
using PVTableProvStruc = VTableProvStruc*;

}  // namespace signum::cng

// The exports, undecorated (signumcsp.def: on i686 the stdcall names lose their @N suffix).
extern "C" {

BOOL WINAPI CPAcquireContext(HCRYPTPROV* phProv, LPCSTR szContainer, DWORD dwFlags,
                             signum::cng::PVTableProvStruc pVTable);
BOOL WINAPI CPReleaseContext(HCRYPTPROV hProv, DWORD dwFlags);
BOOL WINAPI CPGetProvParam(HCRYPTPROV hProv, DWORD dwParam, BYTE* pbData, DWORD* pcbDataLen,
                           DWORD dwFlags);
BOOL WINAPI CPSetProvParam(HCRYPTPROV hProv, DWORD dwParam, const BYTE* pbData, DWORD dwFlags);
BOOL WINAPI CPGenKey(HCRYPTPROV hProv, ALG_ID Algid, DWORD dwFlags, HCRYPTKEY* phKey);
BOOL WINAPI CPDeriveKey(HCRYPTPROV hProv, ALG_ID Algid, HCRYPTHASH hBaseData, DWORD dwFlags,
                        HCRYPTKEY* phKey);
BOOL WINAPI CPDestroyKey(HCRYPTPROV hProv, HCRYPTKEY hKey);
BOOL WINAPI CPSetKeyParam(HCRYPTPROV hProv, HCRYPTKEY hKey, DWORD dwParam, const BYTE* pbData,
                          DWORD dwFlags);
BOOL WINAPI CPGetKeyParam(HCRYPTPROV hProv, HCRYPTKEY hKey, DWORD dwParam, BYTE* pbData,
                          DWORD* pcbDataLen, DWORD dwFlags);
BOOL WINAPI CPExportKey(HCRYPTPROV hProv, HCRYPTKEY hKey, HCRYPTKEY hPubKey, DWORD dwBlobType,
                        DWORD dwFlags, BYTE* pbData, DWORD* pcbDataLen);
BOOL WINAPI CPImportKey(HCRYPTPROV hProv, const BYTE* pbData, DWORD cbDataLen, HCRYPTKEY hPubKey,
                        DWORD dwFlags, HCRYPTKEY* phKey);
BOOL WINAPI CPEncrypt(HCRYPTPROV hProv, HCRYPTKEY hKey, HCRYPTHASH hHash, BOOL fFinal,
                      DWORD dwFlags, BYTE* pbData, DWORD* pcbDataLen, DWORD cbBufLen);
BOOL WINAPI CPDecrypt(HCRYPTPROV hProv, HCRYPTKEY hKey, HCRYPTHASH hHash, BOOL fFinal,
                      DWORD dwFlags, BYTE* pbData, DWORD* pcbDataLen);
BOOL WINAPI CPCreateHash(HCRYPTPROV hProv, ALG_ID Algid, HCRYPTKEY hKey, DWORD dwFlags,
                         HCRYPTHASH* phHash);
BOOL WINAPI CPHashData(HCRYPTPROV hProv, HCRYPTHASH hHash, const BYTE* pbData, DWORD cbDataLen,
                       DWORD dwFlags);
BOOL WINAPI CPHashSessionKey(HCRYPTPROV hProv, HCRYPTHASH hHash, HCRYPTKEY hKey, DWORD dwFlags);
BOOL WINAPI CPSetHashParam(HCRYPTPROV hProv, HCRYPTHASH hHash, DWORD dwParam, const BYTE* pbData,
                           DWORD dwFlags);
BOOL WINAPI CPGetHashParam(HCRYPTPROV hProv, HCRYPTHASH hHash, DWORD dwParam, BYTE* pbData,
                           DWORD* pcbDataLen, DWORD dwFlags);
// szDescription: documented as "should be NULL"; ignored.
BOOL WINAPI CPSignHash(HCRYPTPROV hProv, HCRYPTHASH hHash, DWORD dwKeySpec, LPCWSTR szDescription,
                       DWORD dwFlags, BYTE* pbSignature, DWORD* pcbSigLen);
BOOL WINAPI CPVerifySignature(HCRYPTPROV hProv, HCRYPTHASH hHash, const BYTE* pbSignature,
                              DWORD cbSigLen, HCRYPTKEY hPubKey, LPCWSTR szDescription,
                              DWORD dwFlags);
BOOL WINAPI CPDestroyHash(HCRYPTPROV hProv, HCRYPTHASH hHash);
BOOL WINAPI CPGenRandom(HCRYPTPROV hProv, DWORD cbLen, BYTE* pbBuffer);
BOOL WINAPI CPGetUserKey(HCRYPTPROV hProv, DWORD dwKeySpec, HCRYPTKEY* phUserKey);
// Optional entry points.
BOOL WINAPI CPDuplicateHash(HCRYPTPROV hProv, HCRYPTHASH hHash, DWORD* pdwReserved, DWORD dwFlags,
                            HCRYPTHASH* phHash);
BOOL WINAPI CPDuplicateKey(HCRYPTPROV hProv, HCRYPTKEY hKey, DWORD* pdwReserved, DWORD dwFlags,
                           HCRYPTKEY* phKey);

}  // extern "C"

namespace signum::cng {

// Pointer types for callers that load a CSP with LoadLibrary/GetProcAddress (the conformance
// suite drives the DLL directly where advapi32 would stop it first, e.g. bad handles).
using PFN_CPAcquireContext = decltype(&CPAcquireContext);
using PFN_CPReleaseContext = decltype(&CPReleaseContext);
using PFN_CPGetProvParam = decltype(&CPGetProvParam);
using PFN_CPGetUserKey = decltype(&CPGetUserKey);
using PFN_CPGetKeyParam = decltype(&CPGetKeyParam);
using PFN_CPDestroyKey = decltype(&CPDestroyKey);
using PFN_CPCreateHash = decltype(&CPCreateHash);
using PFN_CPHashData = decltype(&CPHashData);
using PFN_CPGetHashParam = decltype(&CPGetHashParam);
using PFN_CPSetHashParam = decltype(&CPSetHashParam);
using PFN_CPDestroyHash = decltype(&CPDestroyHash);
using PFN_CPSignHash = decltype(&CPSignHash);
using PFN_CPExportKey = decltype(&CPExportKey);

// The 23 names advapi32 requires, then the two optional ones (the suite checks the DLL exports
// each of them).
inline constexpr const char* kRequiredCspExports[] = {
    "CPAcquireContext", "CPReleaseContext", "CPGetProvParam", "CPSetProvParam", "CPGenKey",
    "CPDeriveKey",      "CPDestroyKey",     "CPSetKeyParam",  "CPGetKeyParam",  "CPExportKey",
    "CPImportKey",      "CPEncrypt",        "CPDecrypt",      "CPCreateHash",   "CPHashData",
    "CPHashSessionKey", "CPSetHashParam",   "CPGetHashParam", "CPSignHash",     "CPVerifySignature",
    "CPDestroyHash",    "CPGenRandom",      "CPGetUserKey"};
inline constexpr const char* kOptionalCspExports[] = {"CPDuplicateHash", "CPDuplicateKey"};
static_assert(sizeof(kRequiredCspExports) / sizeof(kRequiredCspExports[0]) == 23);

// The entry points a program that drives a CSP directly calls (signum-cng-replay, the conformance
// programs), resolved once from the loaded DLL.
struct CspEntryPoints {
  PFN_CPAcquireContext acquire = nullptr;
  PFN_CPReleaseContext release = nullptr;
  PFN_CPGetProvParam get_prov_param = nullptr;
  decltype(&CPSetProvParam) set_prov_param = nullptr;
  PFN_CPGetUserKey get_user_key = nullptr;
  PFN_CPGetKeyParam get_key_param = nullptr;
  PFN_CPDestroyKey destroy_key = nullptr;
  PFN_CPExportKey export_key = nullptr;
  PFN_CPCreateHash create_hash = nullptr;
  PFN_CPHashData hash_data = nullptr;
  PFN_CPSetHashParam set_hash_param = nullptr;
  PFN_CPGetHashParam get_hash_param = nullptr;
  PFN_CPSignHash sign_hash = nullptr;
  decltype(&CPVerifySignature) verify_signature = nullptr;
  PFN_CPDestroyHash destroy_hash = nullptr;
  decltype(&CPDuplicateHash) duplicate_hash = nullptr;
  decltype(&CPDuplicateKey) duplicate_key = nullptr;
  decltype(&CPGenRandom) gen_random = nullptr;
};

// Every member from `module`; the names it does not export, space-separated, in *missing (empty
// when all are there).
inline CspEntryPoints ResolveCspEntryPoints(HMODULE module, std::string* missing) {
  CspEntryPoints f;
  missing->clear();
  const auto get = [&](auto& slot, const char* name) {
    slot = reinterpret_cast<std::remove_reference_t<decltype(slot)>>(
        reinterpret_cast<void*>(GetProcAddress(module, name)));
    if (slot == nullptr) *missing += (missing->empty() ? "" : " ") + std::string(name);
  };
  get(f.acquire, "CPAcquireContext");
  get(f.release, "CPReleaseContext");
  get(f.get_prov_param, "CPGetProvParam");
  get(f.set_prov_param, "CPSetProvParam");
  get(f.get_user_key, "CPGetUserKey");
  get(f.get_key_param, "CPGetKeyParam");
  get(f.destroy_key, "CPDestroyKey");
  get(f.export_key, "CPExportKey");
  get(f.create_hash, "CPCreateHash");
  get(f.hash_data, "CPHashData");
  get(f.set_hash_param, "CPSetHashParam");
  get(f.get_hash_param, "CPGetHashParam");
  get(f.sign_hash, "CPSignHash");
  get(f.verify_signature, "CPVerifySignature");
  get(f.destroy_hash, "CPDestroyHash");
  get(f.duplicate_hash, "CPDuplicateHash");
  get(f.duplicate_key, "CPDuplicateKey");
  get(f.gen_random, "CPGenRandom");
  return f;
}

}  // namespace signum::cng

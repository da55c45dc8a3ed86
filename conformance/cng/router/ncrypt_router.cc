// ncrypt.dll, TEST-ONLY: a minimal CNG key storage router, so the layer (b) suite
// (conformance/cng/src/ncrypt_api_test.cc) can drive signumksp.dll through the public NCrypt* API
// under Wine, whose own ncrypt.dll never loads a third-party KSP (windows-recipes.md §5).
//
// This is OUR model of Microsoft's dispatcher, not Microsoft's: results obtained through it are
// labelled "through our router". It proves that the suite drives the KSP correctly through the
// public API's shapes; it does not prove that Windows' ncrypt.dll calls the KSP the same way
// (handle lifetimes, FreeBuffer routing, silent-flag handling, property caching). Only a Windows
// runner shows that. Never ship or install this DLL: it is loaded beside the test program with
// WINEDLLOVERRIDES=ncrypt=n.
//
// What it does, and nothing more:
//  - NCryptOpenStorageProvider reads the value Image of
//    HKLM\SYSTEM\CurrentControlSet\Control\Cryptography\Providers\<name>\UM (the layout
//    RegisterKsp writes, registration.h), loads that DLL (a bare name from System32, as Windows
//    does), asks it for GetKeyStorageInterface's table and calls OpenProvider. An unregistered name
//    is NTE_PROV_DLL_NOT_FOUND.
//  - Provider and key handles are the router's own objects; every call validates its handle
//    (NTE_INVALID_HANDLE) and its required out-pointers (NTE_INVALID_PARAMETER) before
//    dispatching to the KSP's table with the KSP's own handles.
//  - Buffers a KSP hands out (EnumKeys' key names and enumeration state, EnumAlgorithms' list)
//    are remembered, so NCryptFreeBuffer reaches the FreeBuffer of the KSP that allocated them.
//  - A provider handle freed while keys opened from it are still open stays alive in the KSP
//    until the last key is freed. NCryptDeleteKey frees the key handle when it succeeds (Learn).
#include <windows.h>

#include <map>
#include <memory>
#include <mutex>
#include <string>

// Includes bcrypt.h and ncrypt.h, after windows.h.
#include "signum/cng/ksp_iface.h"

namespace {

constexpr wchar_t kProvidersKey[] =
    L"SYSTEM\\CurrentControlSet\\Control\\Cryptography\\Providers\\";

// A loaded KSP DLL: loaded once per image, never unloaded (ncrypt keeps providers loaded too, and
// unloading a DLL whose buffers may still be out would leave NCryptFreeBuffer nothing to call).
struct Module {
  HMODULE dll = nullptr;
  const NCRYPT_KEY_STORAGE_FUNCTION_TABLE* table = nullptr;
};

struct Provider {
  std::shared_ptr<const Module> module;
  NCRYPT_PROV_HANDLE inner = 0;
  bool inner_freed = false;
  // The KSP's provider handle lives until the router's handle and every key opened from it are
  // freed; a deferred FreeProvider has nobody to return its status to.
  ~Provider() {
    if (!inner_freed) module->table->FreeProvider(inner);
  }
  const NCRYPT_KEY_STORAGE_FUNCTION_TABLE& table() const { return *module->table; }
};

struct Key {
  std::shared_ptr<Provider> provider;
  NCRYPT_KEY_HANDLE inner = 0;
};

// The router's state. Allocated once and never destroyed: at process exit the KSP DLLs may already
// be detached, so no destructor may call into them then.
struct Router {
  std::mutex mu;
  std::map<std::wstring, std::shared_ptr<const Module>> modules;  // by image path
  std::map<ULONG_PTR, std::shared_ptr<Provider>> providers;       // by router handle
  std::map<ULONG_PTR, std::shared_ptr<Key>> keys;
  std::map<void*, NCryptFreeBufferFn> buffers;  // buffer -> the FreeBuffer of its KSP
};

Router& State() {
  static Router* router = new Router();
  return *router;
}

std::shared_ptr<Provider> FindProvider(ULONG_PTR handle) {
  Router& r = State();
  std::lock_guard<std::mutex> lock(r.mu);
  auto it = r.providers.find(handle);
  return it == r.providers.end() ? nullptr : it->second;
}

std::shared_ptr<Key> FindKey(ULONG_PTR handle) {
  Router& r = State();
  std::lock_guard<std::mutex> lock(r.mu);
  auto it = r.keys.find(handle);
  return it == r.keys.end() ? nullptr : it->second;
}

ULONG_PTR AddProvider(std::shared_ptr<Provider> provider) {
  const auto handle = reinterpret_cast<ULONG_PTR>(provider.get());
  Router& r = State();
  std::lock_guard<std::mutex> lock(r.mu);
  r.providers[handle] = std::move(provider);
  return handle;
}

ULONG_PTR AddKey(std::shared_ptr<Provider> provider, NCRYPT_KEY_HANDLE inner) {
  auto key = std::make_shared<Key>();
  key->provider = std::move(provider);
  key->inner = inner;
  const auto handle = reinterpret_cast<ULONG_PTR>(key.get());
  Router& r = State();
  std::lock_guard<std::mutex> lock(r.mu);
  r.keys[handle] = std::move(key);
  return handle;
}

void RememberBuffer(void* buffer, const Provider& provider) {
  if (buffer == nullptr) return;
  Router& r = State();
  std::lock_guard<std::mutex> lock(r.mu);
  r.buffers[buffer] = provider.table().FreeBuffer;
}

// The Image registered for a provider name, empty when there is none.
std::wstring RegisteredImage(LPCWSTR provider_name) {
  const std::wstring path = std::wstring(kProvidersKey) + provider_name + L"\\UM";
  DWORD size = 0;
  if (RegGetValueW(HKEY_LOCAL_MACHINE, path.c_str(), L"Image", RRF_RT_REG_SZ, nullptr, nullptr,
                   &size) != ERROR_SUCCESS) {
    return L"";
  }
  std::wstring image(size / sizeof(wchar_t) + 1, L'\0');
  size = static_cast<DWORD>(image.size() * sizeof(wchar_t));
  if (RegGetValueW(HKEY_LOCAL_MACHINE, path.c_str(), L"Image", RRF_RT_REG_SZ, nullptr, image.data(),
                   &size) != ERROR_SUCCESS) {
    return L"";
  }
  image.resize(wcsnlen(image.c_str(), image.size()));
  return image;
}

SECURITY_STATUS LoadModule(LPCWSTR provider_name, std::shared_ptr<const Module>* out) {
  const std::wstring image = RegisteredImage(provider_name);
  if (image.empty()) return NTE_PROV_DLL_NOT_FOUND;
  Router& r = State();
  {
    std::lock_guard<std::mutex> lock(r.mu);
    auto it = r.modules.find(image);
    if (it != r.modules.end()) {
      *out = it->second;
      return ERROR_SUCCESS;
    }
  }
  const bool bare = image.find_first_of(L"\\/:") == std::wstring::npos;
  HMODULE dll = bare ? LoadLibraryExW(image.c_str(), nullptr, LOAD_LIBRARY_SEARCH_SYSTEM32)
                     : LoadLibraryW(image.c_str());
  if (dll == nullptr) return NTE_PROV_DLL_NOT_FOUND;
  auto entry = reinterpret_cast<GetKeyStorageInterfaceFn>(
      reinterpret_cast<void*>(GetProcAddress(dll, SIGNUM_KSP_ENTRY_POINT_NAME)));
  if (entry == nullptr) return NTE_PROVIDER_DLL_FAIL;
  NCRYPT_KEY_STORAGE_FUNCTION_TABLE* table = nullptr;
  if (entry(provider_name, &table, 0) != 0 || table == nullptr || table->Version.MajorVersion < 1) {
    return NTE_PROVIDER_DLL_FAIL;
  }
  auto module = std::make_shared<Module>();
  module->dll = dll;
  module->table = table;
  std::lock_guard<std::mutex> lock(r.mu);
  auto [it, inserted] = r.modules.emplace(image, std::move(module));
  *out = it->second;
  return ERROR_SUCCESS;
}

}  // namespace

extern "C" {

SECURITY_STATUS WINAPI NCryptOpenStorageProvider(NCRYPT_PROV_HANDLE* phProvider,
                                                 LPCWSTR pszProviderName, DWORD dwFlags) {
  if (phProvider == nullptr) return NTE_INVALID_PARAMETER;
  *phProvider = 0;
  // NULL means Microsoft's software KSP, which this router does not serve.
  const wchar_t* name = pszProviderName != nullptr ? pszProviderName : MS_KEY_STORAGE_PROVIDER;
  std::shared_ptr<const Module> module;
  SECURITY_STATUS status = LoadModule(name, &module);
  if (status != ERROR_SUCCESS) return status;
  auto provider = std::make_shared<Provider>();
  provider->module = module;
  status = module->table->OpenProvider(&provider->inner, name, dwFlags);
  if (status != ERROR_SUCCESS) {
    provider->inner_freed = true;  // nothing was opened
    return status;
  }
  *phProvider = AddProvider(std::move(provider));
  return ERROR_SUCCESS;
}

SECURITY_STATUS WINAPI NCryptOpenKey(NCRYPT_PROV_HANDLE hProvider, NCRYPT_KEY_HANDLE* phKey,
                                     LPCWSTR pszKeyName, DWORD dwLegacyKeySpec, DWORD dwFlags) {
  auto provider = FindProvider(hProvider);
  if (provider == nullptr) return NTE_INVALID_HANDLE;
  if (phKey == nullptr) return NTE_INVALID_PARAMETER;
  *phKey = 0;
  NCRYPT_KEY_HANDLE inner = 0;
  const SECURITY_STATUS status =
      provider->table().OpenKey(provider->inner, &inner, pszKeyName, dwLegacyKeySpec, dwFlags);
  if (status != ERROR_SUCCESS) return status;
  *phKey = AddKey(std::move(provider), inner);
  return ERROR_SUCCESS;
}

SECURITY_STATUS WINAPI NCryptCreatePersistedKey(NCRYPT_PROV_HANDLE hProvider,
                                                NCRYPT_KEY_HANDLE* phKey, LPCWSTR pszAlgId,
                                                LPCWSTR pszKeyName, DWORD dwLegacyKeySpec,
                                                DWORD dwFlags) {
  auto provider = FindProvider(hProvider);
  if (provider == nullptr) return NTE_INVALID_HANDLE;
  if (phKey == nullptr || pszAlgId == nullptr) return NTE_INVALID_PARAMETER;
  *phKey = 0;
  NCRYPT_KEY_HANDLE inner = 0;
  const SECURITY_STATUS status = provider->table().CreatePersistedKey(
      provider->inner, &inner, pszAlgId, pszKeyName, dwLegacyKeySpec, dwFlags);
  if (status != ERROR_SUCCESS) return status;
  *phKey = AddKey(std::move(provider), inner);
  return ERROR_SUCCESS;
}

SECURITY_STATUS WINAPI NCryptFinalizeKey(NCRYPT_KEY_HANDLE hKey, DWORD dwFlags) {
  auto key = FindKey(hKey);
  if (key == nullptr) return NTE_INVALID_HANDLE;
  return key->provider->table().FinalizeKey(key->provider->inner, key->inner, dwFlags);
}

SECURITY_STATUS WINAPI NCryptDeleteKey(NCRYPT_KEY_HANDLE hKey, DWORD dwFlags) {
  auto key = FindKey(hKey);
  if (key == nullptr) return NTE_INVALID_HANDLE;
  const SECURITY_STATUS status =
      key->provider->table().DeleteKey(key->provider->inner, key->inner, dwFlags);
  if (status != ERROR_SUCCESS) return status;  // the caller still owns the handle
  // Deleted: the handle is freed (Learn, NCryptDeleteKey). The KSP's key object is released
  // through FreeKey, as for NCryptFreeObject.
  {
    Router& r = State();
    std::lock_guard<std::mutex> lock(r.mu);
    r.keys.erase(hKey);
  }
  key->provider->table().FreeKey(key->provider->inner, key->inner);
  return ERROR_SUCCESS;
}

SECURITY_STATUS WINAPI NCryptFreeObject(NCRYPT_HANDLE hObject) {
  Router& r = State();
  std::shared_ptr<Key> key;
  std::shared_ptr<Provider> provider;
  {
    std::lock_guard<std::mutex> lock(r.mu);
    if (auto it = r.keys.find(hObject); it != r.keys.end()) {
      key = std::move(it->second);
      r.keys.erase(it);
    } else if (auto pit = r.providers.find(hObject); pit != r.providers.end()) {
      provider = std::move(pit->second);
      r.providers.erase(pit);
    }
  }
  if (key != nullptr) return key->provider->table().FreeKey(key->provider->inner, key->inner);
  if (provider == nullptr) return NTE_INVALID_HANDLE;
  if (provider.use_count() > 1) return ERROR_SUCCESS;  // keys still open: freed with the last one
  provider->inner_freed = true;
  return provider->table().FreeProvider(provider->inner);
}

SECURITY_STATUS WINAPI NCryptFreeBuffer(PVOID pvInput) {
  if (pvInput == nullptr) return NTE_INVALID_PARAMETER;
  NCryptFreeBufferFn free_buffer = nullptr;
  {
    Router& r = State();
    std::lock_guard<std::mutex> lock(r.mu);
    auto it = r.buffers.find(pvInput);
    if (it == r.buffers.end()) return NTE_INVALID_PARAMETER;  // not a buffer a KSP handed out
    free_buffer = it->second;
    r.buffers.erase(it);
  }
  return free_buffer(pvInput);
}

BOOL WINAPI NCryptIsKeyHandle(NCRYPT_KEY_HANDLE hKey) { return FindKey(hKey) != nullptr; }

SECURITY_STATUS WINAPI NCryptGetProperty(NCRYPT_HANDLE hObject, LPCWSTR pszProperty, PBYTE pbOutput,
                                         DWORD cbOutput, DWORD* pcbResult, DWORD dwFlags) {
  if (auto key = FindKey(hObject)) {
    if (pszProperty == nullptr || pcbResult == nullptr) return NTE_INVALID_PARAMETER;
    return key->provider->table().GetKeyProperty(key->provider->inner, key->inner, pszProperty,
                                                 pbOutput, cbOutput, pcbResult, dwFlags);
  }
  if (auto provider = FindProvider(hObject)) {
    if (pszProperty == nullptr || pcbResult == nullptr) return NTE_INVALID_PARAMETER;
    return provider->table().GetProviderProperty(provider->inner, pszProperty, pbOutput, cbOutput,
                                                 pcbResult, dwFlags);
  }
  return NTE_INVALID_HANDLE;
}

SECURITY_STATUS WINAPI NCryptSetProperty(NCRYPT_HANDLE hObject, LPCWSTR pszProperty, PBYTE pbInput,
                                         DWORD cbInput, DWORD dwFlags) {
  if (auto key = FindKey(hObject)) {
    if (pszProperty == nullptr) return NTE_INVALID_PARAMETER;
    return key->provider->table().SetKeyProperty(key->provider->inner, key->inner, pszProperty,
                                                 pbInput, cbInput, dwFlags);
  }
  if (auto provider = FindProvider(hObject)) {
    if (pszProperty == nullptr) return NTE_INVALID_PARAMETER;
    return provider->table().SetProviderProperty(provider->inner, pszProperty, pbInput, cbInput,
                                                 dwFlags);
  }
  return NTE_INVALID_HANDLE;
}

SECURITY_STATUS WINAPI NCryptSignHash(NCRYPT_KEY_HANDLE hKey, VOID* pPaddingInfo, PBYTE pbHashValue,
                                      DWORD cbHashValue, PBYTE pbSignature, DWORD cbSignature,
                                      DWORD* pcbResult, DWORD dwFlags) {
  auto key = FindKey(hKey);
  if (key == nullptr) return NTE_INVALID_HANDLE;
  if (pcbResult == nullptr) return NTE_INVALID_PARAMETER;
  return key->provider->table().SignHash(key->provider->inner, key->inner, pPaddingInfo,
                                         pbHashValue, cbHashValue, pbSignature, cbSignature,
                                         pcbResult, dwFlags);
}

SECURITY_STATUS WINAPI NCryptVerifySignature(NCRYPT_KEY_HANDLE hKey, VOID* pPaddingInfo,
                                             PBYTE pbHashValue, DWORD cbHashValue,
                                             PBYTE pbSignature, DWORD cbSignature, DWORD dwFlags) {
  auto key = FindKey(hKey);
  if (key == nullptr) return NTE_INVALID_HANDLE;
  return key->provider->table().VerifySignature(key->provider->inner, key->inner, pPaddingInfo,
                                                pbHashValue, cbHashValue, pbSignature, cbSignature,
                                                dwFlags);
}

SECURITY_STATUS WINAPI NCryptExportKey(NCRYPT_KEY_HANDLE hKey, NCRYPT_KEY_HANDLE hExportKey,
                                       LPCWSTR pszBlobType, NCryptBufferDesc* pParameterList,
                                       PBYTE pbOutput, DWORD cbOutput, DWORD* pcbResult,
                                       DWORD dwFlags) {
  auto key = FindKey(hKey);
  if (key == nullptr) return NTE_INVALID_HANDLE;
  NCRYPT_KEY_HANDLE inner_export = 0;
  if (hExportKey != 0) {
    auto export_key = FindKey(hExportKey);
    if (export_key == nullptr) return NTE_INVALID_HANDLE;
    inner_export = export_key->inner;
  }
  if (pszBlobType == nullptr || pcbResult == nullptr) return NTE_INVALID_PARAMETER;
  return key->provider->table().ExportKey(key->provider->inner, key->inner, inner_export,
                                          pszBlobType, pParameterList, pbOutput, cbOutput,
                                          pcbResult, dwFlags);
}

SECURITY_STATUS WINAPI NCryptIsAlgSupported(NCRYPT_PROV_HANDLE hProvider, LPCWSTR pszAlgId,
                                            DWORD dwFlags) {
  auto provider = FindProvider(hProvider);
  if (provider == nullptr) return NTE_INVALID_HANDLE;
  if (pszAlgId == nullptr) return NTE_INVALID_PARAMETER;
  return provider->table().IsAlgSupported(provider->inner, pszAlgId, dwFlags);
}

SECURITY_STATUS WINAPI NCryptEnumAlgorithms(NCRYPT_PROV_HANDLE hProvider, DWORD dwAlgOperations,
                                            DWORD* pdwAlgCount, NCryptAlgorithmName** ppAlgList,
                                            DWORD dwFlags) {
  auto provider = FindProvider(hProvider);
  if (provider == nullptr) return NTE_INVALID_HANDLE;
  if (pdwAlgCount == nullptr || ppAlgList == nullptr) return NTE_INVALID_PARAMETER;
  const SECURITY_STATUS status = provider->table().EnumAlgorithms(provider->inner, dwAlgOperations,
                                                                  pdwAlgCount, ppAlgList, dwFlags);
  if (status == ERROR_SUCCESS) RememberBuffer(*ppAlgList, *provider);
  return status;
}

SECURITY_STATUS WINAPI NCryptEnumKeys(NCRYPT_PROV_HANDLE hProvider, LPCWSTR pszScope,
                                      NCryptKeyName** ppKeyName, PVOID* ppEnumState,
                                      DWORD dwFlags) {
  auto provider = FindProvider(hProvider);
  if (provider == nullptr) return NTE_INVALID_HANDLE;
  if (ppKeyName == nullptr || ppEnumState == nullptr) return NTE_INVALID_PARAMETER;
  const SECURITY_STATUS status =
      provider->table().EnumKeys(provider->inner, pszScope, ppKeyName, ppEnumState, dwFlags);
  // The enumeration state is the caller's to free with NCryptFreeBuffer even after
  // NTE_NO_MORE_ITEMS; a key name only comes with success.
  RememberBuffer(*ppEnumState, *provider);
  if (status == ERROR_SUCCESS) RememberBuffer(*ppKeyName, *provider);
  return status;
}

}  // extern "C"

// Registering signumksp.dll as a CNG Key Storage Provider (registration.h).
//
// Two steps, both always done:
//  1. The documented API (BCryptRegisterProvider + BCryptAddContextFunctionProvider), as
//     Microsoft's KSP sample does: on Windows this is what makes ncrypt find the provider.
//  2. The layout that API writes, written directly: Providers\<kKspName>\UM with Image, and
//     UM\00010001 with Functions = KEY_STORAGE. Wine's BCryptRegisterProvider is a stub that
//     writes nothing (windows-recipes.md §5), and a dispatcher that reads the registry (our test
//     router, conformance/cng/router) finds the provider only there. On Windows the values are
//     the same ones the API wrote.
#include <windows.h>
// bcrypt.h and ncrypt.h need windows.h's types first.
#include <bcrypt.h>
#include <ncrypt.h>

#include <string>

#include "signum/cng/names.h"
#include "signum/cng/registration.h"
#include "signum/cng/registry.h"
#include "signum/provider/wide_string.h"

// mingw-w64's bcrypt.h lacks these declarations; libbcrypt.a has the imports
// (windows-recipes.md §3.1). Signatures from Microsoft Learn (bcrypt.h).
extern "C" {
NTSTATUS WINAPI BCryptRegisterProvider(LPCWSTR pszProvider, ULONG dwFlags,
                                       PCRYPT_PROVIDER_REG pReg);
NTSTATUS WINAPI BCryptUnregisterProvider(LPCWSTR pszProvider);
NTSTATUS WINAPI BCryptAddContextFunctionProvider(ULONG dwTable, LPCWSTR pszContext,
                                                 ULONG dwInterface, LPCWSTR pszFunction,
                                                 LPCWSTR pszProvider, ULONG dwPosition);
NTSTATUS WINAPI BCryptRemoveContextFunctionProvider(ULONG dwTable, LPCWSTR pszContext,
                                                    ULONG dwInterface, LPCWSTR pszFunction,
                                                    LPCWSTR pszProvider);
}

namespace signum::cng {
namespace {

constexpr wchar_t kProvidersKey[] = L"SYSTEM\\CurrentControlSet\\Control\\Cryptography\\Providers";
// NTSTATUS values the unregister path tolerates: the provider or context entry is already gone
// (Windows), or the call is not implemented (Wine 8 stubs BCryptUnregisterProvider and
// BCryptRemoveContextFunctionProvider with STATUS_NOT_IMPLEMENTED); the registry keys this file
// wrote are removed directly either way.
constexpr NTSTATUS kStatusNotImplemented = static_cast<NTSTATUS>(0xC0000002L);
constexpr NTSTATUS kStatusNotFound = static_cast<NTSTATUS>(0xC0000225L);
constexpr NTSTATUS kStatusObjectNameNotFound = static_cast<NTSTATUS>(0xC0000034L);

std::wstring ProviderKeyPath() { return std::wstring(kProvidersKey) + L"\\" + kKspName; }
std::wstring UserModeKeyPath() { return ProviderKeyPath() + L"\\UM"; }
std::wstring FunctionsKeyPath() {
  wchar_t interface_name[16];
  swprintf(interface_name, 16, L"%08lx", static_cast<unsigned long>(NCRYPT_KEY_STORAGE_INTERFACE));
  return UserModeKeyPath() + L"\\" + interface_name;
}

std::string Hex32(unsigned long value) {
  char text[16];
  snprintf(text, sizeof text, "0x%08lx", value);
  return text;
}

Status NtFailure(NTSTATUS status, const std::string& what) {
  return InternalError(what + " failed: NTSTATUS " + Hex32(static_cast<unsigned long>(status)));
}

class RegistryKey {
 public:
  RegistryKey() = default;
  ~RegistryKey() {
    if (key_ != nullptr) RegCloseKey(key_);
  }
  RegistryKey(const RegistryKey&) = delete;
  RegistryKey& operator=(const RegistryKey&) = delete;
  HKEY* out() { return &key_; }
  HKEY get() const { return key_; }

 private:
  HKEY key_ = nullptr;
};

Status CreateKey(const std::wstring& path, RegistryKey* key) {
  const LONG rc = RegCreateKeyExW(HKEY_LOCAL_MACHINE, path.c_str(), 0, nullptr, 0,
                                  KEY_READ | KEY_WRITE, nullptr, key->out(), nullptr);
  if (rc != ERROR_SUCCESS) {
    return RegistryError(rc, "creating HKLM\\" + provider::Utf8FromWide(path));
  }
  return Status::Ok();
}

// Writes the registry layout BCryptRegisterProvider + BCryptAddContextFunctionProvider produce
// on Windows for a user-mode key storage provider.
Status WriteProviderKeys(const std::wstring& dll_path) {
  RegistryKey user_mode;
  SIGNUM_RETURN_IF_ERROR(CreateKey(UserModeKeyPath(), &user_mode));
  SIGNUM_RETURN_IF_ERROR(WriteRegistryString(user_mode.get(), L"Image", dll_path, "UM\\Image"));

  RegistryKey functions;
  SIGNUM_RETURN_IF_ERROR(CreateKey(FunctionsKeyPath(), &functions));
  // REG_MULTI_SZ: each string NUL-terminated, plus a final NUL.
  std::wstring multi = NCRYPT_KEY_STORAGE_ALGORITHM;
  multi.push_back(L'\0');
  multi.push_back(L'\0');
  const LONG rc = RegSetValueExW(functions.get(), L"Functions", 0, REG_MULTI_SZ,
                      reinterpret_cast<const BYTE*>(multi.data()),
                      static_cast<DWORD>(multi.size() * sizeof(wchar_t)));
  if (rc != ERROR_SUCCESS) return RegistryError(rc, "writing UM\\00010001\\Functions");
  return Status::Ok();
}

}  // namespace

Status RegisterKsp(const std::wstring& dll_path) {
  if (dll_path.empty()) return InvalidArgumentError("RegisterKsp: empty DLL path");

  PWSTR functions[] = {const_cast<PWSTR>(NCRYPT_KEY_STORAGE_ALGORITHM)};
  CRYPT_INTERFACE_REG key_storage = {NCRYPT_KEY_STORAGE_INTERFACE, CRYPT_LOCAL, 1, functions};
  PCRYPT_INTERFACE_REG interfaces[] = {&key_storage};
  std::wstring image_name = dll_path;
  CRYPT_IMAGE_REG image = {image_name.data(), 1, interfaces};
  CRYPT_PROVIDER_REG registration = {0, nullptr, &image, nullptr};  // KM must stay NULL
  // CRYPT_OVERWRITE: re-registering replaces an earlier Image.
  NTSTATUS status = BCryptRegisterProvider(kKspName, CRYPT_OVERWRITE, &registration);
  if (!BCRYPT_SUCCESS(status)) return NtFailure(status, "BCryptRegisterProvider");
  status = BCryptAddContextFunctionProvider(CRYPT_LOCAL, nullptr, NCRYPT_KEY_STORAGE_INTERFACE,
                                            NCRYPT_KEY_STORAGE_ALGORITHM, kKspName,
                                            CRYPT_PRIORITY_BOTTOM);
  if (!BCRYPT_SUCCESS(status)) return NtFailure(status, "BCryptAddContextFunctionProvider");

  SIGNUM_RETURN_IF_ERROR(WriteProviderKeys(dll_path));

  // Read back: a registration that cannot be found again is not one.
  SIGNUM_ASSIGN_OR_RETURN(std::wstring image_read, RegisteredKspImage());
  if (image_read != dll_path) {
    return InternalError("RegisterKsp: UM\\Image reads back as '" +
                         provider::Utf8FromWide(image_read) + "', not '" +
                         provider::Utf8FromWide(dll_path) + "'");
  }
  return Status::Ok();
}

Status UnregisterKsp() {
  NTSTATUS status = BCryptRemoveContextFunctionProvider(
      CRYPT_LOCAL, nullptr, NCRYPT_KEY_STORAGE_INTERFACE, NCRYPT_KEY_STORAGE_ALGORITHM, kKspName);
  if (!BCRYPT_SUCCESS(status) && status != kStatusNotImplemented && status != kStatusNotFound &&
      status != kStatusObjectNameNotFound) {
    return NtFailure(status, "BCryptRemoveContextFunctionProvider");
  }
  status = BCryptUnregisterProvider(kKspName);
  if (!BCRYPT_SUCCESS(status) && status != kStatusNotImplemented && status != kStatusNotFound &&
      status != kStatusObjectNameNotFound) {
    return NtFailure(status, "BCryptUnregisterProvider");
  }
  const LONG rc = RegDeleteTreeW(HKEY_LOCAL_MACHINE, ProviderKeyPath().c_str());
  if (rc != ERROR_SUCCESS && rc != ERROR_FILE_NOT_FOUND) {
    return RegistryError(rc, "deleting HKLM\\" + provider::Utf8FromWide(ProviderKeyPath()));
  }
  return Status::Ok();
}

Result<std::wstring> RegisteredKspImage() {
  const std::wstring path = UserModeKeyPath();
  auto image = ReadRegistryString(HKEY_LOCAL_MACHINE, path, L"Image");
  if (!image.ok() && image.status().code() == ErrorCode::kNotFound) {
    return NotFoundError(provider::Utf8FromWide(kKspName) + " is not registered (no HKLM\\" +
                         provider::Utf8FromWide(path) + "\\Image)");
  }
  return image;
}

}  // namespace signum::cng

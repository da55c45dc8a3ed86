// Registering signumcsp.dll the way CryptoAPI finds a CSP ("Registering the CSP", Microsoft
// Learn; windows-recipes.md §3.3): HKLM\SOFTWARE\Microsoft\Cryptography\Defaults\Provider\<name>
// with Type (REG_DWORD) and Image Path (REG_SZ, fully qualified). Since Windows 8 a CSP need not
// be signed, so the legacy Signature / SigInFile values are not written. Each bitness writes its
// own registry view (no KEY_WOW64_* flag): a 32-bit signum-util registers the 32-bit DLL for
// 32-bit callers (SysWOW64), a 64-bit one the 64-bit DLL.
#include <windows.h>

#include <string>

#include "signum/cng/names.h"
#include "signum/cng/registration.h"
#include "signum/provider/wide_string.h"

namespace signum::cng {
namespace {

constexpr wchar_t kCspProvidersKey[] = L"SOFTWARE\\Microsoft\\Cryptography\\Defaults\\Provider\\";
constexpr wchar_t kImagePathValue[] = L"Image Path";
constexpr wchar_t kTypeValue[] = L"Type";

std::wstring CspKeyPath() { return std::wstring(kCspProvidersKey) + kCspName; }

Status RegistryError(LONG error, const std::string& what) {
  const std::string message = what + " (Win32 error " + std::to_string(error) + ")";
  if (error == ERROR_ACCESS_DENIED) {
    return PermissionDeniedError(message + ": registering a CSP needs administrator rights");
  }
  if (error == ERROR_FILE_NOT_FOUND) return NotFoundError(message);
  return InternalError(message);
}

}  // namespace

Status RegisterCsp(const std::wstring& dll_full_path) {
  if (dll_full_path.empty()) return InvalidArgumentError("RegisterCsp: empty DLL path");
  const std::string key_name = "HKLM\\" + provider::Utf8FromWide(CspKeyPath());
  HKEY key = nullptr;
  LONG error = RegCreateKeyExW(HKEY_LOCAL_MACHINE, CspKeyPath().c_str(), 0, nullptr,
                               REG_OPTION_NON_VOLATILE, KEY_SET_VALUE, nullptr, &key, nullptr);
  if (error != ERROR_SUCCESS) return RegistryError(error, "cannot create " + key_name);
  const DWORD type = kCspRegisteredType;
  error = RegSetValueExW(key, kTypeValue, 0, REG_DWORD, reinterpret_cast<const BYTE*>(&type),
                         sizeof(type));
  if (error == ERROR_SUCCESS) {
    error = RegSetValueExW(key, kImagePathValue, 0, REG_SZ,
                           reinterpret_cast<const BYTE*>(dll_full_path.c_str()),
                           static_cast<DWORD>((dll_full_path.size() + 1) * sizeof(wchar_t)));
  }
  RegCloseKey(key);
  if (error != ERROR_SUCCESS) return RegistryError(error, "cannot write the values of " + key_name);
  return Status::Ok();
}

// Idempotent: a CSP that is not registered is already unregistered.
Status UnregisterCsp() {
  const LONG error = RegDeleteKeyW(HKEY_LOCAL_MACHINE, CspKeyPath().c_str());
  if (error == ERROR_SUCCESS || error == ERROR_FILE_NOT_FOUND) return Status::Ok();
  return RegistryError(error, "cannot delete HKLM\\" + provider::Utf8FromWide(CspKeyPath()));
}

Result<std::wstring> RegisteredCspImage() {
  DWORD size = 0;
  LONG error = RegGetValueW(HKEY_LOCAL_MACHINE, CspKeyPath().c_str(), kImagePathValue,
                            RRF_RT_REG_SZ, nullptr, nullptr, &size);
  if (error == ERROR_SUCCESS && size >= sizeof(wchar_t)) {
    std::wstring image(size / sizeof(wchar_t), L'\0');
    error = RegGetValueW(HKEY_LOCAL_MACHINE, CspKeyPath().c_str(), kImagePathValue, RRF_RT_REG_SZ,
                         nullptr, image.data(), &size);
    if (error == ERROR_SUCCESS) {
      image.resize(wcsnlen(image.c_str(), image.size()));
      return image;
    }
  }
  if (error == ERROR_SUCCESS) error = ERROR_FILE_NOT_FOUND;  // an empty value: not registered
  return RegistryError(error, "cannot read Image Path of HKLM\\" +
                                  provider::Utf8FromWide(CspKeyPath()) + " (CSP registered?)");
}

}  // namespace signum::cng

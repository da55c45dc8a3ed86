// Registering signumcsp.dll the way CryptoAPI finds a CSP ("Registering the CSP", Microsoft
// Learn; windows-recipes.md §3.3): HKLM\SOFTWARE\Microsoft\Cryptography\Defaults\Provider\<name>
// with Type (REG_DWORD) and Image Path (REG_SZ, fully qualified). Since Windows 8 a CSP need not
// be signed, so the legacy Signature / SigInFile values are not written. Each bitness writes its
// own registry view (no KEY_WOW64_* flag): a 32-bit signum-util registers the 32-bit DLL for
// 32-bit callers (SysWOW64), a 64-bit one the 64-bit DLL. The DLL is registered once per name in
// kCspRegistrations (names.h): one name per provider type, as advapi32 routes a name to one type.
#include <windows.h>

#include <iterator>
#include <string>

#include "signum/cng/names.h"
#include "signum/cng/registration.h"
#include "signum/cng/registry.h"
#include "signum/provider/wide_string.h"

namespace signum::cng {
namespace {

constexpr wchar_t kCspProvidersKey[] = L"SOFTWARE\\Microsoft\\Cryptography\\Defaults\\Provider\\";
constexpr wchar_t kImagePathValue[] = L"Image Path";
constexpr wchar_t kTypeValue[] = L"Type";

std::wstring CspKeyPath(const CspRegistration& registration) {
  return std::wstring(kCspProvidersKey) + registration.name;
}
std::string KeyName(const CspRegistration& registration) {
  return "HKLM\\" + provider::Utf8FromWide(CspKeyPath(registration));
}

Status RegisterOne(const CspRegistration& registration, const std::wstring& dll_full_path) {
  HKEY key = nullptr;
  LONG error = RegCreateKeyExW(HKEY_LOCAL_MACHINE, CspKeyPath(registration).c_str(), 0, nullptr,
                               REG_OPTION_NON_VOLATILE, KEY_SET_VALUE, nullptr, &key, nullptr);
  if (error != ERROR_SUCCESS) return RegistryError(error, "cannot create " + KeyName(registration));
  const DWORD type = registration.type;
  error = RegSetValueExW(key, kTypeValue, 0, REG_DWORD, reinterpret_cast<const BYTE*>(&type),
                         sizeof(type));
  Status written = error == ERROR_SUCCESS
                       ? WriteRegistryString(key, kImagePathValue, dll_full_path,
                                             KeyName(registration) + "\\Image Path")
                       : RegistryError(error, "writing " + KeyName(registration) + "\\Type");
  RegCloseKey(key);
  return written;
}

}  // namespace

Status RegisterCsp(const std::wstring& dll_full_path) {
  if (dll_full_path.empty()) return InvalidArgumentError("RegisterCsp: empty DLL path");
  for (const CspRegistration& registration : kCspRegistrations) {
    SIGNUM_RETURN_IF_ERROR(RegisterOne(registration, dll_full_path));
  }
  return Status::Ok();
}

// Idempotent: a name that is not registered is already unregistered.
Status UnregisterCsp() {
  for (const CspRegistration& registration : kCspRegistrations) {
    const LONG error = RegDeleteKeyW(HKEY_LOCAL_MACHINE, CspKeyPath(registration).c_str());
    if (error != ERROR_SUCCESS && error != ERROR_FILE_NOT_FOUND) {
      return RegistryError(error, "cannot delete " + KeyName(registration));
    }
  }
  return Status::Ok();
}

Result<std::wstring> RegisteredCspImage(const CspRegistration& registration) {
  const std::wstring key_path = CspKeyPath(registration);
  DWORD type = 0;
  DWORD size = sizeof(type);
  LONG error = RegGetValueW(HKEY_LOCAL_MACHINE, key_path.c_str(), kTypeValue, RRF_RT_REG_DWORD,
                            nullptr, &type, &size);
  if (error == ERROR_FILE_NOT_FOUND) {
    return NotFoundError(provider::Utf8FromWide(registration.name) + " is not registered (no " +
                         KeyName(registration) + "\\Type)");
  }
  if (error != ERROR_SUCCESS) return RegistryError(error, "cannot read " + KeyName(registration));
  if (type != registration.type) {
    return FailedPreconditionError(KeyName(registration) + " has Type " + std::to_string(type) +
                                   ", expected " + std::to_string(registration.type) +
                                   " (register the CSP again)");
  }
  auto image = ReadRegistryString(HKEY_LOCAL_MACHINE, key_path, kImagePathValue);
  if (!image.ok()) return image.status().WithContext("CSP registered?");
  // An empty value: not registered.
  if (image->empty()) return NotFoundError(KeyName(registration) + "\\Image Path is empty");
  return image;
}

Result<std::wstring> RegisteredCspImage() {
  std::wstring common_image;
  int registered = 0;
  std::string problems;
  for (const CspRegistration& registration : kCspRegistrations) {
    auto image = RegisteredCspImage(registration);
    if (!image.ok()) {
      problems += (problems.empty() ? "" : "; ") + image.status().message();
      continue;
    }
    if (registered++ > 0 && *image != common_image) {
      return FailedPreconditionError(
          "the CSP's names have different images: " + provider::Utf8FromWide(common_image) +
          " and " + provider::Utf8FromWide(*image) + " (register it again)");
    }
    common_image = *image;
  }
  if (registered == static_cast<int>(std::size(kCspRegistrations))) return common_image;
  if (registered == 0) return NotFoundError(problems);
  return FailedPreconditionError("the CSP is registered under only some of its names: " + problems +
                                 " (register it again)");
}

}  // namespace signum::cng

#include "signum/cng/registry.h"

#include "signum/provider/wide_string.h"

namespace signum::cng {
namespace {

std::string RootName(HKEY root) {
  if (root == HKEY_LOCAL_MACHINE) return "HKLM";
  if (root == HKEY_CURRENT_USER) return "HKCU";
  return "HKEY";
}

}  // namespace

Status RegistryError(LONG error, const std::string& what) {
  const std::string message = what + ": Win32 error " + std::to_string(error);
  if (error == ERROR_FILE_NOT_FOUND) return NotFoundError(message);
  if (error == ERROR_ACCESS_DENIED) {
    return PermissionDeniedError(message + " (access denied: writing HKLM needs administrator "
                                           "rights)");
  }
  return InternalError(message);
}

Result<std::wstring> ReadRegistryString(HKEY root, const std::wstring& key_path,
                                        const wchar_t* value_name) {
  const std::string what = RootName(root) + "\\" + provider::Utf8FromWide(key_path) + "\\" +
                           provider::Utf8FromWide(value_name);
  DWORD size = 0;
  LONG error =
      RegGetValueW(root, key_path.c_str(), value_name, RRF_RT_REG_SZ, nullptr, nullptr, &size);
  if (error != ERROR_SUCCESS) return RegistryError(error, "reading " + what);
  // RegGetValueW sizes include the NUL it guarantees; one more character guards a value that
  // grows between the two calls.
  std::wstring value(size / sizeof(wchar_t) + 1, L'\0');
  size = static_cast<DWORD>(value.size() * sizeof(wchar_t));
  error = RegGetValueW(root, key_path.c_str(), value_name, RRF_RT_REG_SZ, nullptr, value.data(),
                       &size);
  if (error != ERROR_SUCCESS) return RegistryError(error, "reading " + what);
  value.resize(wcsnlen(value.c_str(), value.size()));
  return value;
}

Status WriteRegistryString(HKEY key, const wchar_t* value_name, const std::wstring& data,
                           const std::string& what) {
  const LONG error =
      RegSetValueExW(key, value_name, 0, REG_SZ, reinterpret_cast<const BYTE*>(data.c_str()),
                     static_cast<DWORD>((data.size() + 1) * sizeof(wchar_t)));
  if (error != ERROR_SUCCESS) return RegistryError(error, "writing " + what);
  return Status::Ok();
}

}  // namespace signum::cng

// The registry access the Windows side shares: the providers reading where the agent is (HKCU),
// provider registration (HKLM) and signum-util's configuration. One error mapping and one way to
// read and write REG_SZ values.
#pragma once

#include <windows.h>

#include <string>

#include "signum/core/status.h"

namespace signum::cng {

// A Win32 registry error as a Status naming `what` (a key or value): ERROR_FILE_NOT_FOUND is
// kNotFound, ERROR_ACCESS_DENIED is kPermissionDenied (HKLM needs administrator rights), anything
// else kInternal.
Status RegistryError(LONG error, const std::string& what);

// A REG_SZ value without its terminating NUL (empty when the value is empty). Errors as
// RegistryError, naming root\key_path\value_name.
Result<std::wstring> ReadRegistryString(HKEY root, const std::wstring& key_path,
                                        const wchar_t* value_name);

// Writes a REG_SZ value (with its NUL) into an open key; `what` names it in errors.
Status WriteRegistryString(HKEY key, const wchar_t* value_name, const std::wstring& data,
                           const std::string& what);

}  // namespace signum::cng

#include "signum/core/windows_account.h"

#include <windows.h>
#include <sddl.h>

namespace signum {

Bytes TokenUserSid(void* process) {
  HANDLE token = nullptr;
  if (!OpenProcessToken(static_cast<HANDLE>(process), TOKEN_QUERY, &token)) return {};
  DWORD size = 0;
  GetTokenInformation(token, TokenUser, nullptr, 0, &size);
  Bytes buffer(size);
  const bool read =
      size != 0 && GetTokenInformation(token, TokenUser, buffer.data(), size, &size);
  CloseHandle(token);
  if (!read) return {};
  const PSID sid = reinterpret_cast<TOKEN_USER*>(buffer.data())->User.Sid;
  const auto* bytes = static_cast<const uint8_t*>(sid);
  return Bytes(bytes, bytes + GetLengthSid(sid));
}

std::string SidText(const Bytes& sid) {
  char* text = nullptr;
  if (sid.empty() || !IsValidSid(const_cast<uint8_t*>(sid.data())) ||
      !ConvertSidToStringSidA(const_cast<uint8_t*>(sid.data()), &text))
    return "?";
  std::string out = text;
  LocalFree(text);
  return out;
}

}  // namespace signum

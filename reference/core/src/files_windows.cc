// WriteFileAtomically on Windows (files.h; the POSIX one is in files.cc): a temporary file beside
// the target, flushed, then moved over it. "Owner only" modes (no group/other bits, e.g. 0600 for
// a secret) become a protected DACL granting this user alone, set when the file is created so the
// content never exists with the directory's inherited permissions; other modes inherit them.
#include <windows.h>
#include <sddl.h>

#include <string>

#include "signum/core/encoding.h"
#include "signum/core/files.h"
#include "signum/core/system_random.h"
#include "signum/core/windows_account.h"

namespace signum {
namespace {

std::wstring Wide(const std::string& utf8) {
  if (utf8.empty()) return {};
  const int n = MultiByteToWideChar(CP_UTF8, 0, utf8.data(), static_cast<int>(utf8.size()),
                                    nullptr, 0);
  std::wstring out(static_cast<size_t>(n), L'\0');
  MultiByteToWideChar(CP_UTF8, 0, utf8.data(), static_cast<int>(utf8.size()), out.data(), n);
  return out;
}

std::string LastErrorText(const std::string& what) {
  return what + " (Windows error " + std::to_string(GetLastError()) + ")";
}

// "D:P(A;;FA;;;<this user's SID>)": full access for the user, nobody else, nothing inherited.
Result<std::wstring> OwnerOnlyDescriptor() {
  const Bytes user = TokenUserSid(GetCurrentProcess());
  if (user.empty()) return InternalError(LastErrorText("cannot read this process's user"));
  return L"D:P(A;;FA;;;" + Wide(SidText(user)) + L")";
}

}  // namespace

Status WriteFileAtomically(const std::string& path, std::string_view content, unsigned mode) {
  // A name nobody can guess, created new: an existing file (someone else's, with their ACL)
  // is never reused, since CREATE_ALWAYS would keep its security and ignore ours.
  SIGNUM_ASSIGN_OR_RETURN(const Bytes nonce, SystemRandomBytes(8));
  const std::string tmp = path + ".tmp-" + HexEncode(nonce);
  SECURITY_ATTRIBUTES attributes{sizeof(SECURITY_ATTRIBUTES), nullptr, FALSE};
  PSECURITY_DESCRIPTOR descriptor = nullptr;
  if ((mode & 077) == 0) {
    SIGNUM_ASSIGN_OR_RETURN(const std::wstring sddl, OwnerOnlyDescriptor());
    if (!ConvertStringSecurityDescriptorToSecurityDescriptorW(sddl.c_str(), SDDL_REVISION_1,
                                                              &descriptor, nullptr))
      return InternalError(LastErrorText("cannot build the owner-only ACL for " + path));
    attributes.lpSecurityDescriptor = descriptor;
  }
  const std::wstring wide_tmp = Wide(tmp);
  HANDLE file = CreateFileW(wide_tmp.c_str(), GENERIC_WRITE, 0, &attributes, CREATE_NEW,
                            FILE_ATTRIBUTE_NORMAL, nullptr);
  if (descriptor != nullptr) LocalFree(descriptor);
  if (file == INVALID_HANDLE_VALUE) {
    const DWORD error = GetLastError();
    return Status(error == ERROR_ACCESS_DENIED ? ErrorCode::kPermissionDenied
                  : error == ERROR_PATH_NOT_FOUND ? ErrorCode::kNotFound
                                                  : ErrorCode::kInternal,
                  "cannot create " + tmp + " (Windows error " + std::to_string(error) + ")");
  }
  DWORD written = 0;
  const bool wrote = WriteFile(file, content.data(), static_cast<DWORD>(content.size()), &written,
                               nullptr) &&
                     written == content.size() && FlushFileBuffers(file);
  const std::string write_error = LastErrorText("cannot write " + tmp);
  CloseHandle(file);
  if (!wrote) {
    DeleteFileW(wide_tmp.c_str());
    return InternalError(write_error);
  }
  // A scanner or indexer holding the old file open makes the move fail for a moment.
  bool moved = false;
  for (int attempt = 0; attempt < 10 && !moved; ++attempt) {
    moved = MoveFileExW(wide_tmp.c_str(), Wide(path).c_str(),
                        MOVEFILE_REPLACE_EXISTING | MOVEFILE_WRITE_THROUGH) != FALSE;
    const DWORD error = moved ? 0 : GetLastError();
    if (!moved && error != ERROR_ACCESS_DENIED && error != ERROR_SHARING_VIOLATION) break;
    if (!moved) Sleep(50);
  }
  if (!moved) {
    const std::string error = LastErrorText("cannot rename " + tmp + " to " + path);
    DeleteFileW(wide_tmp.c_str());
    return InternalError(error);
  }
  return Status::Ok();
}

}  // namespace signum

// UTF-16 <-> UTF-8 for the Windows providers and tools (Windows only): every Windows API string is
// UTF-16, every Signum string is UTF-8. Invalid sequences become U+FFFD, never an exception.
#pragma once

#include <string>
#include <string_view>

namespace signum::provider {

std::string Utf8FromWide(std::wstring_view wide);
std::wstring WideFromUtf8(std::string_view utf8);

}  // namespace signum::provider

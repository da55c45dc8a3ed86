// Windows only: the system's text for a Win32 or Winsock error code, for messages that a person
// reads ("No connection could be made because the target machine actively refused it (WSA 10061)").
#pragma once

#include <string>

namespace signum {

// FormatMessage's text without its trailing period and line break, then " (<prefix> <code>)";
// "error (<prefix> <code>)" for a code the system has no text for.
std::string WindowsErrorText(unsigned long code, const char* prefix = "error");

}  // namespace signum

#include "recording.h"

#include <dlfcn.h>

#include <atomic>
#include <cstdlib>
#include <string>

#include "provider.h"
#include "trace_v1.h"

namespace signum::pkcs11::recording {
namespace {

constexpr const char* kModuleName = "libsignumpkcs11.so";

std::atomic<bool> g_configured{false};

// The header's "module": this module's path as the application loaded it.
std::string OwnPath() {
  Dl_info info{};
  if (::dladdr(reinterpret_cast<const void*>(&OwnPath), &info) != 0 && info.dli_fname != nullptr &&
      *info.dli_fname != '\0') {
    return info.dli_fname;
  }
  return kModuleName;
}

}  // namespace

void Configure() {
  trace_v1::Quietly([] {
    const char* path = std::getenv("SIGNUM_PKCS11_RECORD");
    const std::string wanted = path != nullptr ? path : "";
    std::string why;
    if (!trace_v1::UseFile(wanted, trace_v1::Header(OwnPath(), kModuleName, nullptr), &why)) {
      // The application's own output is no place for this, but a recording asked for and silently
      // missing would be worse.
      Warn("SIGNUM_PKCS11_RECORD: " + why);
    }
  });
  g_configured.store(true, std::memory_order_release);
}

bool Enabled() {
  if (!g_configured.load(std::memory_order_acquire)) Configure();
  return trace_v1::FileOpen();
}

}  // namespace signum::pkcs11::recording

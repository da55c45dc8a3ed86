// libsignum-pkcs11-recorder.so: wraps the PKCS#11 module named by SIGNUM_RECORD_MODULE and appends
// every call, as trace format v1 (docs/trace-format.md), to SIGNUM_RECORD_FILE.
//
// The wrappers are generated from the provider's call table (../src/functions.h): each argument is
// recorded by its KIND with the shared v1 encoder (../record/trace_v1.h, also libsignumpkcs11.so's
// SIGNUM_PKCS11_RECORD), so every function of CK_FUNCTION_LIST (2.40) and CK_FUNCTION_LIST_3_0 is
// recorded with its arguments, return value and outputs, PINs and key material redacted. Only
// C_GetFunctionList, C_GetInterfaceList and C_GetInterface are written by hand: they hand out the
// recorder's own lists.
#include <dlfcn.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>

#include "functions.h"
#include "trace_v1.h"

namespace signum::pkcs11::recorder {
namespace {

using trace_v1::Call;
using trace_v1::Emit;
using trace_v1::Quietly;

std::once_flag g_load_once;
CK_RV g_load_rv = CKR_GENERAL_ERROR;
void* g_handle = nullptr;
// The real module's functions; the 3.0 members stay NULL for a 2.40-only module.
CK_FUNCTION_LIST_3_0 g_real{};
bool g_real_has_3_0 = false;

void Load() {
  const char* module = std::getenv("SIGNUM_RECORD_MODULE");
  const char* file = std::getenv("SIGNUM_RECORD_FILE");
  if (module == nullptr || *module == '\0') {
    std::fprintf(stderr,
                 "libsignum-pkcs11-recorder: SIGNUM_RECORD_MODULE is not set (the path of "
                 "the PKCS#11 module to record)\n");
    return;
  }
  if (file == nullptr || *file == '\0') {
    std::fprintf(stderr,
                 "libsignum-pkcs11-recorder: SIGNUM_RECORD_FILE is not set (where the "
                 "trace is written)\n");
    return;
  }
  g_handle = dlopen(module, RTLD_NOW | RTLD_LOCAL);
  if (g_handle == nullptr) {
    std::fprintf(stderr, "libsignum-pkcs11-recorder: cannot load %s: %s\n", module, dlerror());
    return;
  }
  auto get_interface = reinterpret_cast<CK_C_GetInterface>(dlsym(g_handle, "C_GetInterface"));
  if (get_interface != nullptr) {
    CK_INTERFACE_PTR iface = nullptr;
    CK_VERSION v30{3, 0};
    CK_UTF8CHAR name[] = "PKCS 11";
    if (get_interface(name, &v30, &iface, 0) == CKR_OK && iface != nullptr &&
        iface->pFunctionList != nullptr) {
      std::memcpy(&g_real, iface->pFunctionList, sizeof g_real);
      g_real_has_3_0 = true;
    }
  }
  if (!g_real_has_3_0) {
    auto get_list = reinterpret_cast<CK_C_GetFunctionList>(dlsym(g_handle, "C_GetFunctionList"));
    CK_FUNCTION_LIST_PTR list = nullptr;
    if (get_list == nullptr || get_list(&list) != CKR_OK || list == nullptr) {
      std::fprintf(stderr, "libsignum-pkcs11-recorder: %s has no usable C_GetFunctionList\n",
                   module);
      return;
    }
    std::memcpy(&g_real, list, sizeof(CK_FUNCTION_LIST));
  }
  std::string why;
  if (!trace_v1::UseFile(
          file,
          trace_v1::Header(module, "libsignum-pkcs11-recorder.so", g_real_has_3_0 ? "3.0" : "2.40"),
          &why)) {
    std::fprintf(stderr, "libsignum-pkcs11-recorder: %s\n", why.c_str());
    return;
  }
  g_load_rv = CKR_OK;
}

CK_RV EnsureLoaded() {
  std::call_once(g_load_once, &Load);
  return g_load_rv;
}

// --- The generated wrappers ---------------------------------------------------------------------
#define SIGNUM_REC_DEFINE(Name, Since, Support, Args)                                    \
  [[maybe_unused]] CK_RV W_##Name(SIGNUM_P11_PARAMS(Args)) {                             \
    if (CK_RV load = EnsureLoaded(); load != CKR_OK) return load;                        \
    Call call("C_" #Name);                                                               \
    Quietly([&] { SIGNUM_P11_TRACE_IN(call, Args) });                                    \
    const CK_RV rv = g_real.C_##Name != nullptr ? g_real.C_##Name(SIGNUM_P11_ARGS(Args)) \
                                                : CKR_FUNCTION_NOT_SUPPORTED;            \
    Quietly([&] { SIGNUM_P11_TRACE_OUT(call, rv, Args) });                               \
    Emit(call, rv);                                                                      \
    return rv;                                                                           \
  }
SIGNUM_PKCS11_FUNCTIONS(SIGNUM_REC_DEFINE)
#undef SIGNUM_REC_DEFINE

CK_RV OwnGetFunctionList(CK_FUNCTION_LIST_PTR_PTR ppFunctionList);
CK_RV OwnGetInterfaceList(CK_INTERFACE_PTR pInterfacesList, CK_ULONG_PTR pulCount);
CK_RV OwnGetInterface(CK_UTF8CHAR_PTR pInterfaceName, CK_VERSION_PTR pVersion,
                      CK_INTERFACE_PTR_PTR ppInterface, CK_FLAGS flags);

constexpr CK_FUNCTION_LIST_3_0 MakeList30() {
  CK_FUNCTION_LIST_3_0 list{};
  list.version = {3, 0};
#define SIGNUM_REC_FILL(Name, Since, Support, Args) list.C_##Name = &W_##Name;
  SIGNUM_PKCS11_FUNCTIONS(SIGNUM_REC_FILL)
#undef SIGNUM_REC_FILL
  list.C_GetFunctionList = &OwnGetFunctionList;
  list.C_GetInterfaceList = &OwnGetInterfaceList;
  list.C_GetInterface = &OwnGetInterface;
  return list;
}

constexpr CK_FUNCTION_LIST MakeList240() {
  CK_FUNCTION_LIST list{};
  list.version = {2, 40};
#define SIGNUM_REC_FILL(Name, Since, Support, Args) \
  SIGNUM_P11_IF_V2(Since)(list.C_##Name = &W_##Name;)
  SIGNUM_PKCS11_FUNCTIONS(SIGNUM_REC_FILL)
#undef SIGNUM_REC_FILL
  list.C_GetFunctionList = &OwnGetFunctionList;
  return list;
}

constinit CK_FUNCTION_LIST_3_0 g_list_3_0 = MakeList30();
constinit CK_FUNCTION_LIST g_list_2_40 = MakeList240();
CK_CHAR g_interface_name[] = "PKCS 11";
CK_INTERFACE g_interfaces[] = {
    {g_interface_name, &g_list_3_0, 0},
    {g_interface_name, &g_list_2_40, 0},
};

// The 3.0 interface is offered only when the wrapped module has one.
CK_ULONG FirstInterface() { return g_real_has_3_0 ? 0 : 1; }

CK_RV OwnGetFunctionList(CK_FUNCTION_LIST_PTR_PTR ppFunctionList) {
  if (CK_RV load = EnsureLoaded(); load != CKR_OK) return load;
  Call call("C_GetFunctionList");
  CK_RV rv = CKR_OK;
  if (ppFunctionList == nullptr) {
    rv = CKR_ARGUMENTS_BAD;
  } else {
    *ppFunctionList = &g_list_2_40;
  }
  Quietly([&] { Out_OUT_FUNCTION_LIST(call, rv, "ppFunctionList", ppFunctionList); });
  Emit(call, rv);
  return rv;
}

CK_RV OwnGetInterfaceList(CK_INTERFACE_PTR pInterfacesList, CK_ULONG_PTR pulCount) {
  if (CK_RV load = EnsureLoaded(); load != CKR_OK) return load;
  Call call("C_GetInterfaceList");
  Quietly(
      [&] { In_OUT_INTERFACES(call, "pInterfacesList", pInterfacesList, "pulCount", pulCount); });
  const CK_ULONG first = FirstInterface();
  const CK_ULONG n = 2 - first;
  CK_RV rv = CKR_OK;
  if (pulCount == nullptr) {
    rv = CKR_ARGUMENTS_BAD;
  } else if (pInterfacesList == nullptr) {
    *pulCount = n;
  } else if (*pulCount < n) {
    *pulCount = n;
    rv = CKR_BUFFER_TOO_SMALL;
  } else {
    for (CK_ULONG i = 0; i < n; ++i) pInterfacesList[i] = g_interfaces[first + i];
    *pulCount = n;
  }
  Quietly([&] {
    Out_OUT_INTERFACES(call, rv, "pInterfacesList", pInterfacesList, "pulCount", pulCount);
  });
  Emit(call, rv);
  return rv;
}

CK_RV OwnGetInterface(CK_UTF8CHAR_PTR pInterfaceName, CK_VERSION_PTR pVersion,
                      CK_INTERFACE_PTR_PTR ppInterface, CK_FLAGS flags) {
  if (CK_RV load = EnsureLoaded(); load != CKR_OK) return load;
  Call call("C_GetInterface");
  Quietly([&] {
    In_INTERFACE_NAME(call, "pInterfaceName", pInterfaceName);
    In_VERSION(call, "pVersion", pVersion);
    In_FLAGS(call, "flags", flags);
  });
  CK_RV rv = CKR_ARGUMENTS_BAD;
  if (ppInterface != nullptr) {
    for (CK_ULONG i = FirstInterface(); i < 2; ++i) {
      CK_INTERFACE& candidate = g_interfaces[i];
      if (pInterfaceName != nullptr &&
          std::strcmp(reinterpret_cast<const char*>(pInterfaceName),
                      reinterpret_cast<const char*>(candidate.pInterfaceName)) != 0) {
        continue;
      }
      const CK_VERSION v = static_cast<const CK_FUNCTION_LIST*>(candidate.pFunctionList)->version;
      if (pVersion != nullptr && (pVersion->major != v.major || pVersion->minor != v.minor)) {
        continue;
      }
      if ((candidate.flags & flags) != flags) continue;
      *ppInterface = &candidate;
      rv = CKR_OK;
      break;
    }
  }
  Quietly([&] { Out_OUT_INTERFACE(call, rv, "ppInterface", ppInterface); });
  Emit(call, rv);
  return rv;
}

}  // namespace
}  // namespace signum::pkcs11::recorder

extern "C" __attribute__((visibility("default"))) CK_RV C_GetFunctionList(
    CK_FUNCTION_LIST_PTR_PTR ppFunctionList) {
  return signum::pkcs11::recorder::OwnGetFunctionList(ppFunctionList);
}

extern "C" __attribute__((visibility("default"))) CK_RV C_GetInterfaceList(
    CK_INTERFACE_PTR pInterfacesList, CK_ULONG_PTR pulCount) {
  return signum::pkcs11::recorder::OwnGetInterfaceList(pInterfacesList, pulCount);
}

extern "C" __attribute__((visibility("default"))) CK_RV C_GetInterface(
    CK_UTF8CHAR_PTR pInterfaceName, CK_VERSION_PTR pVersion, CK_INTERFACE_PTR_PTR ppInterface,
    CK_FLAGS flags) {
  return signum::pkcs11::recorder::OwnGetInterface(pInterfaceName, pVersion, ppInterface, flags);
}

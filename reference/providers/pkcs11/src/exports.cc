// The ABI: the exported C_* functions, CK_FUNCTION_LIST (2.40), CK_FUNCTION_LIST_3_0 and the
// "PKCS 11" interfaces, all generated from functions.h. Each shim clears OpenSSL's error queue,
// calls its bridge function, converts the Status to a CK_RV (ck_status.h), traces the call when
// SIGNUM_PKCS11_TRACE is set, and never lets a C++ exception cross into the caller.
#include <openssl/err.h>

#include <cstddef>
#include <cstring>
#include <new>
#include <string_view>

#include "bridge.h"
#include "ck_status.h"
#include "functions.h"
#include "trace.h"

namespace signum::pkcs11 {
namespace {

template <typename Fn>
CK_RV Invoke(trace::Record* record, Fn&& fn) {
  ERR_clear_error();  // errors left by the application must not be blamed on us, or vice versa
  (void)trace::TakeNote();
  CK_RV rv = CKR_GENERAL_ERROR;
  try {
    Status status = fn();
    rv = ToCkRv(status);
    if (record != nullptr && !status.ok()) record->Error(status.ToString());
  } catch (const std::bad_alloc&) {
    rv = CKR_HOST_MEMORY;
    if (record != nullptr) record->Error("out of memory");
  } catch (const std::exception& e) {
    rv = CKR_GENERAL_ERROR;
    if (record != nullptr) record->Error(std::string("internal error: ") + e.what());
  } catch (...) {
    rv = CKR_GENERAL_ERROR;
    if (record != nullptr) record->Error("internal error");
  }
  std::string note = trace::TakeNote();
  if (record != nullptr && !note.empty()) record->Remark(note);
  return rv;
}

}  // namespace
}  // namespace signum::pkcs11

// --- The exported shims
// ---------------------------------------------------------------------------- C_Initialize
// re-reads SIGNUM_PKCS11_TRACE first, so each initialisation traces where the environment says at
// that time.
#define SIGNUM_P11_DEFINE_SHIM(Name, Since, Support, Args)                                 \
  extern "C" CK_RV C_##Name(SIGNUM_P11_PARAMS(Args)) {                                     \
    using namespace ::signum::pkcs11;                                                      \
    if (std::string_view(#Name) == "Initialize") trace::Configure();                       \
    if (!trace::Enabled()) {                                                               \
      return Invoke(nullptr, [&] { return bridge::Name(SIGNUM_P11_ARGS(Args)); });         \
    }                                                                                      \
    trace::Record record("C_" #Name);                                                      \
    SIGNUM_P11_TRACE_IN(record, Args)                                                      \
    const CK_RV rv = Invoke(&record, [&] { return bridge::Name(SIGNUM_P11_ARGS(Args)); }); \
    SIGNUM_P11_TRACE_OUT(record, rv, Args)                                                 \
    record.Emit(rv);                                                                       \
    return rv;                                                                             \
  }
SIGNUM_PKCS11_FUNCTIONS(SIGNUM_P11_DEFINE_SHIM)
#undef SIGNUM_P11_DEFINE_SHIM

namespace signum::pkcs11 {
namespace {

// --- Function lists
// ----------------------------------------------------------------------------------
#define SIGNUM_P11_COUNT(Name, Since, Support, Args) +1
constexpr size_t kFunctionCount = 0 SIGNUM_PKCS11_FUNCTIONS(SIGNUM_P11_COUNT);
#define SIGNUM_P11_COUNT_V2(Name, Since, Support, Args) SIGNUM_P11_IF_V2(Since)(+1)
constexpr size_t kFunctionCount240 = 0 SIGNUM_PKCS11_FUNCTIONS(SIGNUM_P11_COUNT_V2);
#undef SIGNUM_P11_COUNT
#undef SIGNUM_P11_COUNT_V2

// The table must cover the headers' function lists exactly: one pointer per member.
static_assert(sizeof(CK_FUNCTION_LIST_3_0) ==
                  offsetof(CK_FUNCTION_LIST_3_0, C_Initialize) + kFunctionCount * sizeof(void*),
              "functions.h does not list every CK_FUNCTION_LIST_3_0 member");
static_assert(sizeof(CK_FUNCTION_LIST) ==
                  offsetof(CK_FUNCTION_LIST, C_Initialize) + kFunctionCount240 * sizeof(void*),
              "functions.h does not list every CK_FUNCTION_LIST member");

constexpr CK_FUNCTION_LIST_3_0 MakeFunctionList30() {
  CK_FUNCTION_LIST_3_0 list{};
  list.version = {3, 0};
#define SIGNUM_P11_FILL(Name, Since, Support, Args) list.C_##Name = &C_##Name;
  SIGNUM_PKCS11_FUNCTIONS(SIGNUM_P11_FILL)
#undef SIGNUM_P11_FILL
  return list;
}

constexpr CK_FUNCTION_LIST MakeFunctionList240() {
  CK_FUNCTION_LIST list{};
  list.version = {2, 40};
#define SIGNUM_P11_FILL(Name, Since, Support, Args) \
  SIGNUM_P11_IF_V2(Since)(list.C_##Name = &C_##Name;)
  SIGNUM_PKCS11_FUNCTIONS(SIGNUM_P11_FILL)
#undef SIGNUM_P11_FILL
  return list;
}

// Constant-initialised: valid before any constructor of this library runs.
constinit CK_FUNCTION_LIST_3_0 g_function_list_3_0 = MakeFunctionList30();
constinit CK_FUNCTION_LIST g_function_list_2_40 = MakeFunctionList240();

// "PKCS 11" is the interface name of PKCS#11 3.0 (§5.2); 3.0 first, so it is the default.
CK_CHAR g_interface_name[] = "PKCS 11";
// No CKF_INTERFACE_FORK_SAFE: a forked child must call C_Initialize again.
CK_INTERFACE g_interfaces[] = {
    {g_interface_name, &g_function_list_3_0, 0},
    {g_interface_name, &g_function_list_2_40, 0},
};
constexpr CK_ULONG kInterfaceCount = sizeof g_interfaces / sizeof g_interfaces[0];

CK_VERSION InterfaceVersion(const CK_INTERFACE& i) {
  return static_cast<const CK_FUNCTION_LIST*>(i.pFunctionList)->version;
}

}  // namespace

namespace bridge {

// §5.4.4 C_GetFunctionList: the 2.40 list (3.0 callers use C_GetInterface). Needs no C_Initialize.
Status GetFunctionList(CK_FUNCTION_LIST_PTR_PTR ppFunctionList) {
  if (ppFunctionList == nullptr) return CkError(CKR_ARGUMENTS_BAD, "ppFunctionList is NULL");
  *ppFunctionList = &g_function_list_2_40;
  return Status::Ok();
}

// §5.4.5 C_GetInterfaceList
Status GetInterfaceList(CK_INTERFACE_PTR pInterfacesList, CK_ULONG_PTR pulCount) {
  if (pulCount == nullptr) return CkError(CKR_ARGUMENTS_BAD, "pulCount is NULL");
  if (pInterfacesList == nullptr) {
    *pulCount = kInterfaceCount;
    return Status::Ok();
  }
  if (*pulCount < kInterfaceCount) {
    *pulCount = kInterfaceCount;
    return CkError(CKR_BUFFER_TOO_SMALL,
                   "there are " + std::to_string(kInterfaceCount) + " interfaces");
  }
  for (CK_ULONG i = 0; i < kInterfaceCount; ++i) pInterfacesList[i] = g_interfaces[i];
  *pulCount = kInterfaceCount;
  return Status::Ok();
}

// §5.4.6 C_GetInterface: NULL name = any; NULL version = the newest; flags must all be offered.
Status GetInterface(CK_UTF8CHAR_PTR pInterfaceName, CK_VERSION_PTR pVersion,
                    CK_INTERFACE_PTR_PTR ppInterface, CK_FLAGS flags) {
  if (ppInterface == nullptr) return CkError(CKR_ARGUMENTS_BAD, "ppInterface is NULL");
  for (CK_INTERFACE& candidate : g_interfaces) {
    if (pInterfaceName != nullptr &&
        std::strcmp(reinterpret_cast<const char*>(pInterfaceName),
                    reinterpret_cast<const char*>(candidate.pInterfaceName)) != 0) {
      continue;
    }
    const CK_VERSION v = InterfaceVersion(candidate);
    if (pVersion != nullptr && (pVersion->major != v.major || pVersion->minor != v.minor)) continue;
    if ((candidate.flags & flags) != flags) continue;
    *ppInterface = &candidate;
    return Status::Ok();
  }
  return CkError(CKR_ARGUMENTS_BAD, "no such interface (offered: \"PKCS 11\" 3.0 and 2.40)");
}

}  // namespace bridge
}  // namespace signum::pkcs11

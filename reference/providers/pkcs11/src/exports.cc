// The ABI: the exported C_* functions, CK_FUNCTION_LIST (2.40), CK_FUNCTION_LIST_3_0 and the
// "PKCS 11" interfaces, all generated from functions.h. Each shim clears OpenSSL's error queue,
// calls its bridge function, converts the Status to a CK_RV (ck_status.h), records the call as text
// when SIGNUM_PKCS11_TRACE is set and as trace format v1 when SIGNUM_PKCS11_RECORD is set, and
// never lets a C++ exception cross into the caller.
#include <openssl/err.h>

#include <cstddef>
#include <cstring>
#include <new>
#include <optional>
#include <string>
#include <string_view>

#include "bridge.h"
#include "ck_status.h"
#include "functions.h"
#include "recording.h"
#include "trace.h"
#include "trace_v1.h"

namespace signum::pkcs11 {
namespace {

// What a call's records tell besides its arguments and outputs: why it failed, and any remark on
// it (trace::Note). Filled only when the call is recorded.
struct Explanation {
  std::string error;
  std::string note;
};

template <typename Fn>
CK_RV Invoke(Explanation* why, Fn&& fn) {
  ERR_clear_error();  // errors left by the application must not be blamed on us, or vice versa
  (void)trace::TakeNote();
  CK_RV rv = CKR_GENERAL_ERROR;
  try {
    Status status = fn();
    rv = ToCkRv(status);
    if (why != nullptr && !status.ok()) why->error = status.ToString();
  } catch (const std::bad_alloc&) {
    rv = CKR_HOST_MEMORY;
    if (why != nullptr) why->error = "out of memory";
  } catch (const std::exception& e) {
    rv = CKR_GENERAL_ERROR;
    if (why != nullptr) why->error = std::string("internal error: ") + e.what();
  } catch (...) {
    rv = CKR_GENERAL_ERROR;
    if (why != nullptr) why->error = "internal error";
  }
  std::string note = trace::TakeNote();
  if (why != nullptr) why->note = std::move(note);
  return rv;
}

// One C_* call: the bridge function, and around it the records that are switched on, the text
// trace and trace format v1. record_in/record_out are the call table's expansion of the arguments,
// generic over the record type, so both records are filled by the same code.
template <typename RecordIn, typename Body, typename RecordOut>
CK_RV Run(const char* function, RecordIn&& record_in, Body&& body, RecordOut&& record_out) {
  const bool text = trace::Enabled();
  const bool v1 = recording::Enabled();
  if (!text && !v1) return Invoke(nullptr, body);
  std::optional<trace::Record> text_record;
  std::optional<trace_v1::Call> v1_record;
  if (text) {
    text_record.emplace(function);
    record_in(*text_record);
  }
  if (v1) {
    trace_v1::Quietly([&] {
      v1_record.emplace(function);
      record_in(*v1_record);
    });
  }
  Explanation why;
  const CK_RV rv = Invoke(&why, body);
  if (text_record) {
    if (!why.error.empty()) text_record->Error(why.error);
    if (!why.note.empty()) text_record->Remark(why.note);
    record_out(*text_record, rv);
    text_record->Emit(rv);
  }
  if (v1_record) {
    trace_v1::Quietly([&] {
      v1_record->Error(why.error);
      v1_record->Note(why.note);
      record_out(*v1_record, rv);
    });
    trace_v1::Emit(*v1_record, rv);
  }
  return rv;
}

}  // namespace
}  // namespace signum::pkcs11

// --- The exported shims --------------------------------------------------------------------------
// C_Initialize re-reads SIGNUM_PKCS11_TRACE and SIGNUM_PKCS11_RECORD first, so each initialisation
// records where the environment says at that time.
#define SIGNUM_P11_DEFINE_SHIM(Name, Since, Support, Args)                       \
  extern "C" CK_RV C_##Name(SIGNUM_P11_PARAMS(Args)) {                           \
    using namespace ::signum::pkcs11;                                            \
    if (std::string_view(#Name) == "Initialize") {                               \
      trace::Configure();                                                        \
      recording::Configure();                                                    \
    }                                                                            \
    return Run(                                                                  \
        "C_" #Name, [&](auto& record) { SIGNUM_P11_TRACE_IN(record, Args) },     \
        [&] { return bridge::Name(SIGNUM_P11_ARGS(Args)); },                     \
        [&](auto& record, CK_RV rv) { SIGNUM_P11_TRACE_OUT(record, rv, Args) }); \
  }
SIGNUM_PKCS11_FUNCTIONS(SIGNUM_P11_DEFINE_SHIM)
#undef SIGNUM_P11_DEFINE_SHIM

namespace signum::pkcs11 {
namespace {

// --- Function lists --------------------------------------------------------------------------
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

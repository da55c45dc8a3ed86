// signumksp.dll: the Signum CNG Key Storage Provider. A thin ABI layer over
// provider::ProviderContext (SharedProviderContext("signumksp")): keys are the signing
// certificates the agent lists, named by certificate id; signing sends the digest to the agent.
//
// Every one of the 29 table entries either works or returns the documented NTE_* code:
//   NTE_INVALID_HANDLE     a provider/key handle that is not live (handles are looked up in
//                          ksp_objects.h's registry, never dereferenced)
//   NTE_INVALID_PARAMETER  a NULL required pointer, a malformed argument
//   NTE_BAD_FLAGS          a dwFlags bit Windows does not define for that call
//   NTE_NOT_SUPPORTED      what a remote, non-exportable signing key cannot do: creating,
//                          importing, deleting keys, encryption, decryption, secret agreement,
//                          key derivation, claims, private key export, unknown properties
//   NTE_BAD_KEYSET         an unknown key name
//   NTE_BUFFER_TOO_SMALL   an output buffer shorter than the value (*pcbResult says how long)
//   agent errors           through ToSecurityStatus (nte_status.h): unreachable agent ->
//                          NTE_DEVICE_NOT_READY, policy refusal -> NTE_PERM, ...
// Each entry point's body returns a Status (the codes above as NteError, with the reason); the
// entry point converts it once at the ABI boundary (AtBoundary), tracing failures with reasons.
// A NULL output buffer is a size query: *pcbResult is set and ERROR_SUCCESS returned.
//
// RSA only: Signum's Windows providers serve RSA 2048/3072/4096 signing certificates. EC
// certificates the agent lists are not shown here (EnumKeys skips them, OpenKey answers
// NTE_BAD_KEYSET), because this provider does not implement CNG's ECDSA P1363 signing.
#include <windows.h>
// A block of its own: these need windows.h's types, so formatting must not reorder them.
// wincrypt.h: AT_SIGNATURE, AT_KEYEXCHANGE (windows.h skips it under WIN32_LEAN_AND_MEAN).
#include <bcrypt.h>
#include <ncrypt.h>
#include <wincrypt.h>

#include <algorithm>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

#include "ksp_objects.h"
#include "signum/cng/call_record.h"
#include "signum/cng/ksp_iface.h"
#include "signum/cng/names.h"
#include "signum/cng/nte_status.h"
#include "signum/cng/provider_runtime.h"
#include "signum/cng/rsa_public_key.h"
#include "signum/core/algorithms.h"
#include "signum/provider/wide_string.h"

namespace signum::cng::ksp {
namespace {

constexpr char kComponent[] = "ksp";

// The flags Windows defines for each family of calls; anything else is NTE_BAD_FLAGS.
constexpr DWORD kOpenFlags = NCRYPT_SILENT_FLAG | NCRYPT_MACHINE_KEY_FLAG;
constexpr DWORD kSecurityInfoFlags = OWNER_SECURITY_INFORMATION | GROUP_SECURITY_INFORMATION |
                                     DACL_SECURITY_INFORMATION | SACL_SECURITY_INFORMATION |
                                     LABEL_SECURITY_INFORMATION;
// NCRYPT_PERSIST_ONLY_FLAG on a get asks for the persisted value only: every property of this
// provider is one (conformance-anchors F28: signtool and .NET pass it).
constexpr DWORD kGetPropertyFlags =
    NCRYPT_SILENT_FLAG | NCRYPT_PERSIST_ONLY_FLAG | kSecurityInfoFlags;
constexpr DWORD kSetPropertyFlags =
    NCRYPT_SILENT_FLAG | NCRYPT_PERSIST_FLAG | NCRYPT_PERSIST_ONLY_FLAG | kSecurityInfoFlags;
// Padding selectors a signature call may carry. PKCS#1 and PSS work; the others (none, OAEP,
// 0x10) are defined by CNG but cannot be done by the agent: NTE_NOT_SUPPORTED.
constexpr DWORD kPaddingFlags =
    BCRYPT_PAD_NONE | NCRYPT_PAD_PKCS1_FLAG | NCRYPT_PAD_OAEP_FLAG | NCRYPT_PAD_PSS_FLAG | 0x10;
constexpr DWORD kSignatureFlags = kPaddingFlags | NCRYPT_SILENT_FLAG;

// The keys live in an HSM behind the signing server and never in this process: hardware. Not
// NCRYPT_IMPL_REMOVABLE_FLAG, which marks smart cards and makes callers look for a reader, a card
// and a PIN this provider does not have.
constexpr DWORD kImplType = NCRYPT_IMPL_HARDWARE_FLAG;
// Provider version 1.0 (major in the high word, as Microsoft's providers report it).
constexpr DWORD kProviderVersion = 0x00010000;
// Lengths: what Signum's RSA keys can be (algorithms.h SupportedKeySpecs: 2048, 3072, 4096).
constexpr DWORD kMinRsaBits = 2048, kMaxRsaBits = 4096, kRsaBitsIncrement = 1024;

provider::ProviderContext& Context() { return SharedProviderContext("signumksp"); }

// A call of this provider as SIGNUM_CNG_RECORD records it (call_record.h): each entry point puts
// its arguments into args() when active(), and says what it wrote in its outputs function.
class KspCall : public CallRecord {
 public:
  explicit KspCall(const char* fn)
      : CallRecord(kComponent, fn, ReturnConvention::kSecurityStatus) {}
};

// Every entry point's one exit (call_record.h, nte_status.h): the body returns a Status, whose code
// goes back to ncrypt.dll once, a failure traced with its reason, the call recorded.
template <typename Outputs, typename Body>
SECURITY_STATUS AtBoundary(CallRecord& call, Outputs&& outputs, Body&& body) {
  return ReturnAtAbiBoundary(call, std::forward<Outputs>(outputs), std::forward<Body>(body));
}
// For the calls recorded by their result alone.
template <typename Body>
SECURITY_STATUS AtBoundary(const char* entry, Body&& body) {
  KspCall call(entry);
  return AtBoundary(call, NoOutputs, std::forward<Body>(body));
}

// The outputs of the calls that follow WriteOutput's convention.
auto SizedOutput(const char* buffer_name, PBYTE buffer, DWORD* result_size) {
  return [=](nlohmann::json& out, SECURITY_STATUS code) {
    DescribeSizedOutput(out, code, NTE_BUFFER_TOO_SMALL, buffer_name, buffer, "pcbResult",
                        result_size);
  };
}

// Property values that are secrets (a smart-card PIN a caller sets), recorded as their length.
bool IsSecretProperty(LPCWSTR name) {
  const std::wstring_view property = name == nullptr ? std::wstring_view() : name;
  return property == NCRYPT_PIN_PROPERTY || property == NCRYPT_SECURE_PIN_PROPERTY;
}

std::string Utf8(LPCWSTR text) {
  return text == nullptr ? std::string("(null)") : provider::Utf8FromWide(text);
}

Status NullArgument(const char* names) {
  return NteError(NTE_INVALID_PARAMETER, std::string(names) + ": a required pointer is NULL");
}

Status InvalidProviderHandle(NCRYPT_PROV_HANDLE provider) {
  return NteError(NTE_INVALID_HANDLE,
                  "provider handle " + std::to_string(provider) + " is not open");
}

Status InvalidKeyHandle(NCRYPT_PROV_HANDLE provider, NCRYPT_KEY_HANDLE key) {
  return NteError(NTE_INVALID_HANDLE, "key handle " + std::to_string(key) +
                                          " is not open through provider handle " +
                                          std::to_string(provider));
}

Status RequireProvider(NCRYPT_PROV_HANDLE provider) {
  if (HandleRegistry::Instance().FindProvider(provider)) return Status::Ok();
  return InvalidProviderHandle(provider);
}

Result<std::shared_ptr<const KeyObject>> RequireKey(NCRYPT_PROV_HANDLE provider,
                                                    NCRYPT_KEY_HANDLE key) {
  auto found = HandleRegistry::Instance().FindKey(provider, key);
  if (found) return found;
  return InvalidKeyHandle(provider, key);
}

Status OutOfMemory(size_t size) {
  return NteError(NTE_NO_MEMORY, "cannot allocate " + std::to_string(size) + " bytes");
}

// The size-query / too-small / copy convention shared by every call that returns bytes.
Status WriteOutput(ByteView value, PBYTE output, DWORD output_size, DWORD* result_size) {
  if (result_size == nullptr) return NullArgument("pcbResult");
  *result_size = static_cast<DWORD>(value.size());
  if (output == nullptr) return Status::Ok();
  if (output_size < value.size()) {
    return NteError(NTE_BUFFER_TOO_SMALL, "output buffer of " + std::to_string(output_size) +
                                              " bytes, " + std::to_string(value.size()) +
                                              " needed");
  }
  if (!value.empty()) std::memcpy(output, value.data(), value.size());
  return Status::Ok();
}

template <typename T>
Bytes PlainValue(const T& value) {
  Bytes bytes(sizeof(T));
  std::memcpy(bytes.data(), &value, sizeof(T));
  return bytes;
}

// A NUL-terminated UTF-16 string, as CNG returns string properties.
Bytes WideValue(std::wstring_view text) {
  Bytes bytes((text.size() + 1) * sizeof(wchar_t), 0);
  std::memcpy(bytes.data(), text.data(), text.size() * sizeof(wchar_t));
  return bytes;
}

std::wstring_view View(LPCWSTR text) { return text == nullptr ? std::wstring_view() : text; }

// ---- provider --------------------------------------------------------------------------------

SECURITY_STATUS WINAPI OpenProvider(NCRYPT_PROV_HANDLE* phProvider, LPCWSTR pszProviderName,
                                    DWORD dwFlags) {
  KspCall call("OpenProvider");
  if (call.active()) {
    call.args() = {{"pszProviderName", TextValue(pszProviderName)}, {"dwFlags", dwFlags}};
  }
  const auto outputs = [&](nlohmann::json& out, SECURITY_STATUS code) {
    if (code == ERROR_SUCCESS) out["phProvider"] = *phProvider;
  };
  return AtBoundary(call, outputs, [&]() -> Status {
    if (phProvider == nullptr) return NullArgument("phProvider");
    SIGNUM_RETURN_IF_ERROR(CheckKnownFlags(dwFlags, kOpenFlags));
    // ncrypt passes the name the provider was registered under (names.h kKspName); the provider
    // serves the same keys whatever it is called, so the name is only traced. Opening does not
    // contact the agent: an unreachable agent is reported by the calls that need it.
    Trace(kComponent, "OpenProvider(" + provider::Utf8FromWide(View(pszProviderName)) + ")");
    *phProvider = HandleRegistry::Instance().AddProvider(ProviderObject{dwFlags});
    return Status::Ok();
  });
}

SECURITY_STATUS WINAPI FreeProvider(NCRYPT_PROV_HANDLE hProvider) {
  KspCall call("FreeProvider");
  if (call.active()) call.args() = {{"hProvider", hProvider}};
  return AtBoundary(call, NoOutputs, [&]() -> Status {
    if (HandleRegistry::Instance().RemoveProvider(hProvider)) return Status::Ok();
    return InvalidProviderHandle(hProvider);
  });
}

std::optional<Bytes> ProviderProperty(std::wstring_view name) {
  if (name == NCRYPT_NAME_PROPERTY) return WideValue(kKspName);
  if (name == NCRYPT_VERSION_PROPERTY) return PlainValue<DWORD>(kProviderVersion);
  if (name == NCRYPT_IMPL_TYPE_PROPERTY) return PlainValue<DWORD>(kImplType);
  if (name == NCRYPT_MAX_NAME_LENGTH_PROPERTY) {
    return PlainValue<DWORD>(NCRYPT_MAX_KEY_NAME_LENGTH);
  }
  // NCRYPT_SECURITY_DESCR_SUPPORT_PROPERTY is deliberately absent: access to the keys is decided
  // by the server's policies, not by Windows security descriptors.
  return std::nullopt;
}

// A property value, or NTE_NOT_SUPPORTED naming the property.
Status WriteProperty(const std::optional<Bytes>& value, const char* owner, LPCWSTR name,
                     PBYTE output, DWORD output_size, DWORD* result_size) {
  if (!value) {
    return NteError(NTE_NOT_SUPPORTED,
                    std::string(owner) + " property '" + Utf8(name) + "' is not supported");
  }
  return WriteOutput(*value, output, output_size, result_size);
}

SECURITY_STATUS WINAPI GetProviderProperty(NCRYPT_PROV_HANDLE hProvider, LPCWSTR pszProperty,
                                           PBYTE pbOutput, DWORD cbOutput, DWORD* pcbResult,
                                           DWORD dwFlags) {
  KspCall call("GetProviderProperty");
  if (call.active()) {
    call.args() = {{"hProvider", hProvider},
                   {"pszProperty", TextValue(pszProperty)},
                   {"pbOutput", BufferValue(pbOutput)},
                   {"cbOutput", cbOutput},
                   {"dwFlags", dwFlags}};
  }
  return AtBoundary(call, SizedOutput("pbOutput", pbOutput, pcbResult), [&]() -> Status {
    SIGNUM_RETURN_IF_ERROR(RequireProvider(hProvider));
    if (pszProperty == nullptr || pcbResult == nullptr) {
      return NullArgument("pszProperty or pcbResult");
    }
    SIGNUM_RETURN_IF_ERROR(CheckKnownFlags(dwFlags, kGetPropertyFlags));
    return WriteProperty(ProviderProperty(pszProperty), "provider", pszProperty, pbOutput, cbOutput,
                         pcbResult);
  });
}

// Properties callers set for UI purposes are accepted and ignored (this provider never shows
// UI); everything else is read-only here (the server owns the keys).
Status SetProperty(const char* owner, LPCWSTR name, PBYTE input, DWORD size, DWORD flags) {
  if (name == nullptr || (input == nullptr && size != 0)) {
    return NullArgument("pszProperty or pbInput");
  }
  SIGNUM_RETURN_IF_ERROR(CheckKnownFlags(flags, kSetPropertyFlags));
  const std::wstring_view property = name;
  if (property == NCRYPT_USE_CONTEXT_PROPERTY) return Status::Ok();
  if (property == NCRYPT_WINDOW_HANDLE_PROPERTY && size == sizeof(HWND)) return Status::Ok();
  return NteError(NTE_NOT_SUPPORTED,
                  std::string(owner) + " property '" + Utf8(name) + "' cannot be set here");
}

// The arguments of SetProviderProperty and SetKeyProperty after the handles.
void DescribeSetProperty(nlohmann::json& args, LPCWSTR property, PBYTE input, DWORD size,
                         DWORD flags) {
  args["pszProperty"] = TextValue(property);
  args["pbInput"] = IsSecretProperty(property) ? RedactedValue(size) : HexValue(input, size);
  args["cbInput"] = size;
  args["dwFlags"] = flags;
}

SECURITY_STATUS WINAPI SetProviderProperty(NCRYPT_PROV_HANDLE hProvider, LPCWSTR pszProperty,
                                           PBYTE pbInput, DWORD cbInput, DWORD dwFlags) {
  KspCall call("SetProviderProperty");
  if (call.active()) {
    call.args()["hProvider"] = hProvider;
    DescribeSetProperty(call.args(), pszProperty, pbInput, cbInput, dwFlags);
  }
  return AtBoundary(call, NoOutputs, [&]() -> Status {
    SIGNUM_RETURN_IF_ERROR(RequireProvider(hProvider));
    return SetProperty("provider", pszProperty, pbInput, cbInput, dwFlags);
  });
}

SECURITY_STATUS WINAPI IsAlgSupported(NCRYPT_PROV_HANDLE hProvider, LPCWSTR pszAlgId,
                                      DWORD dwFlags) {
  KspCall call("IsAlgSupported");
  if (call.active()) {
    call.args() = {
        {"hProvider", hProvider}, {"pszAlgId", TextValue(pszAlgId)}, {"dwFlags", dwFlags}};
  }
  return AtBoundary(call, NoOutputs, [&]() -> Status {
    SIGNUM_RETURN_IF_ERROR(RequireProvider(hProvider));
    if (pszAlgId == nullptr) return NullArgument("pszAlgId");
    SIGNUM_RETURN_IF_ERROR(CheckKnownFlags(dwFlags, NCRYPT_SILENT_FLAG));
    if (View(pszAlgId) == NCRYPT_RSA_ALGORITHM) return Status::Ok();
    return NteError(NTE_NOT_SUPPORTED, "algorithm '" + Utf8(pszAlgId) + "': RSA only");
  });
}

SECURITY_STATUS WINAPI EnumAlgorithms(NCRYPT_PROV_HANDLE hProvider, DWORD dwAlgClass,
                                      DWORD* pdwAlgCount, NCryptAlgorithmName** ppAlgList,
                                      DWORD dwFlags) {
  KspCall call("EnumAlgorithms");
  if (call.active()) {
    call.args() = {{"hProvider", hProvider}, {"dwAlgClass", dwAlgClass}, {"dwFlags", dwFlags}};
  }
  const auto outputs = [&](nlohmann::json& out, SECURITY_STATUS code) {
    if (code != ERROR_SUCCESS) return;
    out["pdwAlgCount"] = *pdwAlgCount;
    out["ppAlgList"] = AddressValue(*ppAlgList);
  };
  return AtBoundary(call, outputs, [&]() -> Status {
    SIGNUM_RETURN_IF_ERROR(RequireProvider(hProvider));
    if (pdwAlgCount == nullptr || ppAlgList == nullptr) {
      return NullArgument("pdwAlgCount or ppAlgList");
    }
    SIGNUM_RETURN_IF_ERROR(CheckKnownFlags(dwFlags, NCRYPT_SILENT_FLAG));
    constexpr DWORD kKnownClasses =
        NCRYPT_CIPHER_OPERATION | NCRYPT_HASH_OPERATION | NCRYPT_ASYMMETRIC_ENCRYPTION_OPERATION |
        NCRYPT_SECRET_AGREEMENT_OPERATION | NCRYPT_SIGNATURE_OPERATION | NCRYPT_RNG_OPERATION |
        BCRYPT_KEY_DERIVATION_OPERATION;  // ncrypt.h names it only for Windows 8+ targets
    if (dwAlgClass & ~kKnownClasses) {
      return NteError(NTE_INVALID_PARAMETER,
                      "dwAlgClass " + Hex(dwAlgClass) + " has undefined operation bits");
    }
    // The one algorithm: RSA, for signatures. 0 asks for every class.
    if (dwAlgClass != 0 && !(dwAlgClass & NCRYPT_SIGNATURE_OPERATION)) {
      return NteError(NTE_NOT_SUPPORTED,
                      "dwAlgClass " + Hex(dwAlgClass) + ": this provider only signs");
    }
    const std::wstring_view name = NCRYPT_RSA_ALGORITHM;
    const size_t block_size = sizeof(NCryptAlgorithmName) + (name.size() + 1) * sizeof(wchar_t);
    void* block = BufferRegistry::Instance().AllocateBlock(block_size);
    if (block == nullptr) return OutOfMemory(block_size);
    auto* entry = static_cast<NCryptAlgorithmName*>(block);
    auto* text = reinterpret_cast<wchar_t*>(entry + 1);
    std::memcpy(text, name.data(), name.size() * sizeof(wchar_t));
    entry->pszName = text;
    entry->dwClass = NCRYPT_SIGNATURE_INTERFACE;
    entry->dwAlgOperations = NCRYPT_SIGNATURE_OPERATION;
    entry->dwFlags = 0;
    *pdwAlgCount = 1;
    *ppAlgList = entry;
    return Status::Ok();
  });
}

SECURITY_STATUS WINAPI EnumKeys(NCRYPT_PROV_HANDLE hProvider, LPCWSTR pszScope,
                                NCryptKeyName** ppKeyName, PVOID* ppEnumState, DWORD dwFlags) {
  // The scope (a smart-card reader for card KSPs) does not apply: one set of keys is served.
  KspCall call("EnumKeys");
  if (call.active()) {
    // The enumeration state and the key name are buffers this provider hands out (FreeBuffer):
    // recorded by address, as handles are.
    call.args() = {
        {"hProvider", hProvider},
        {"pszScope", TextValue(pszScope)},
        {"ppEnumState", ppEnumState == nullptr ? nlohmann::json() : AddressValue(*ppEnumState)},
        {"dwFlags", dwFlags}};
  }
  const auto outputs = [&](nlohmann::json& out, SECURITY_STATUS code) {
    if (ppEnumState != nullptr) out["ppEnumState"] = AddressValue(*ppEnumState);
    if (code != ERROR_SUCCESS) return;
    out["ppKeyName"] = {{"address", AddressValue(*ppKeyName)},
                        {"pszName", TextValue((*ppKeyName)->pszName)},
                        {"pszAlgid", TextValue((*ppKeyName)->pszAlgid)},
                        {"dwLegacyKeySpec", (*ppKeyName)->dwLegacyKeySpec},
                        {"dwFlags", (*ppKeyName)->dwFlags}};
  };
  return AtBoundary(call, outputs, [&]() -> Status {
    SIGNUM_RETURN_IF_ERROR(RequireProvider(hProvider));
    if (ppKeyName == nullptr || ppEnumState == nullptr) {
      return NullArgument("ppKeyName or ppEnumState");
    }
    SIGNUM_RETURN_IF_ERROR(CheckKnownFlags(dwFlags, kOpenFlags));
    BufferRegistry& buffers = BufferRegistry::Instance();
    EnumKeysState* state = nullptr;
    if (*ppEnumState == nullptr) {
      SIGNUM_ASSIGN_OR_RETURN(auto certificates, Context().Certificates());
      auto fresh = std::make_unique<EnumKeysState>();
      for (const auto& certificate : certificates->certificates) {
        if (IsWindowsKey(*certificate)) fresh->keys.push_back(certificate);
      }
      fresh->machine_keys = (dwFlags & NCRYPT_MACHINE_KEY_FLAG) != 0;
      // Nothing to list: no state is handed out, so there is nothing for the caller to free.
      if (fresh->keys.empty()) {
        return NteError(NTE_NO_MORE_ITEMS, "the agent lists no RSA signing certificate");
      }
      state = fresh.get();
      *ppEnumState = buffers.AddEnumState(std::move(fresh));
    } else {
      state = buffers.FindEnumState(*ppEnumState);
      if (state == nullptr) {
        return NteError(NTE_INVALID_PARAMETER,
                        "*ppEnumState is not an enumeration this provider started");
      }
    }
    if (state->next >= state->keys.size()) {
      return NteError(NTE_NO_MORE_ITEMS,
                      "all " + std::to_string(state->keys.size()) + " keys listed");
    }
    const provider::ProviderCertificate& certificate = *state->keys[state->next];

    // One block: the NCryptKeyName, then its two strings.
    const std::wstring name = provider::WideFromUtf8(certificate.id);
    const std::wstring_view algorithm = NCRYPT_RSA_ALGORITHM;
    const size_t name_bytes = (name.size() + 1) * sizeof(wchar_t);
    const size_t algorithm_bytes = (algorithm.size() + 1) * sizeof(wchar_t);
    const size_t block_size = sizeof(NCryptKeyName) + name_bytes + algorithm_bytes;
    void* block = buffers.AllocateBlock(block_size);
    if (block == nullptr) return OutOfMemory(block_size);
    auto* key_name = static_cast<NCryptKeyName*>(block);
    auto* name_text = reinterpret_cast<wchar_t*>(key_name + 1);
    auto* algorithm_text = name_text + name.size() + 1;
    std::memcpy(name_text, name.data(), name.size() * sizeof(wchar_t));
    std::memcpy(algorithm_text, algorithm.data(), algorithm.size() * sizeof(wchar_t));
    key_name->pszName = name_text;
    key_name->pszAlgid = algorithm_text;
    key_name->dwLegacyKeySpec = AT_SIGNATURE;  // a signing-only key
    key_name->dwFlags = state->machine_keys ? NCRYPT_MACHINE_KEY_FLAG : 0;
    ++state->next;
    *ppKeyName = key_name;
    return Status::Ok();
  });
}

SECURITY_STATUS WINAPI FreeBuffer(PVOID pvInput) {
  KspCall call("FreeBuffer");
  if (call.active()) call.args() = {{"pvInput", AddressValue(pvInput)}};
  return AtBoundary(call, NoOutputs, [&]() -> Status {
    if (pvInput == nullptr) return Status::Ok();  // like free(NULL)
    if (BufferRegistry::Instance().Free(pvInput)) return Status::Ok();
    return NteError(NTE_INVALID_PARAMETER, "pvInput is not a buffer this provider handed out");
  });
}

SECURITY_STATUS WINAPI NotifyChangeKey(NCRYPT_PROV_HANDLE hProvider, HANDLE* phEvent,
                                       DWORD /*dwFlags*/) {
  return AtBoundary("NotifyChangeKey", [&]() -> Status {
    SIGNUM_RETURN_IF_ERROR(RequireProvider(hProvider));
    if (phEvent == nullptr) return NullArgument("phEvent");
    return NteError(NTE_NOT_SUPPORTED,
                    "the key list changes on the server, with no event to signal");
  });
}

// ---- keys ------------------------------------------------------------------------------------

SECURITY_STATUS WINAPI OpenKey(NCRYPT_PROV_HANDLE hProvider, NCRYPT_KEY_HANDLE* phKey,
                               LPCWSTR pszKeyName, DWORD dwLegacyKeySpec, DWORD dwFlags) {
  KspCall call("OpenKey");
  if (call.active()) {
    call.args() = {{"hProvider", hProvider},
                   {"pszKeyName", TextValue(pszKeyName)},
                   {"dwLegacyKeySpec", dwLegacyKeySpec},
                   {"dwFlags", dwFlags}};
  }
  const auto outputs = [&](nlohmann::json& out, SECURITY_STATUS code) {
    if (code == ERROR_SUCCESS) out["phKey"] = *phKey;
  };
  return AtBoundary(call, outputs, [&]() -> Status {
    SIGNUM_RETURN_IF_ERROR(RequireProvider(hProvider));
    if (phKey == nullptr || pszKeyName == nullptr) return NullArgument("phKey or pszKeyName");
    if (*pszKeyName == L'\0') return NteError(NTE_INVALID_PARAMETER, "pszKeyName is empty");
    // 0 for CNG callers; AT_SIGNATURE / AT_KEYEXCHANGE from callers coming from CryptoAPI
    // (CERT_KEY_PROV_INFO.dwKeySpec). The same key answers to all three (F28).
    if (dwLegacyKeySpec != 0 && dwLegacyKeySpec != AT_SIGNATURE &&
        dwLegacyKeySpec != AT_KEYEXCHANGE) {
      return NteError(NTE_INVALID_PARAMETER, "dwLegacyKeySpec " + std::to_string(dwLegacyKeySpec) +
                                                 " is none of 0, AT_SIGNATURE, AT_KEYEXCHANGE");
    }
    SIGNUM_RETURN_IF_ERROR(CheckKnownFlags(dwFlags, kOpenFlags));
    // The certificate id (any case) or the label; EC certificates are not keys here.
    SIGNUM_ASSIGN_OR_RETURN(auto certificate,
                            FindWindowsKey(Context(), provider::Utf8FromWide(pszKeyName)));
    KeyObject key;
    key.provider = hProvider;
    key.certificate = std::move(certificate);
    key.legacy_key_spec = dwLegacyKeySpec;
    // The agent serves one user's certificates; a machine-key open sees the same keys and is
    // told so in the Key Type property.
    key.machine_key = (dwFlags & NCRYPT_MACHINE_KEY_FLAG) != 0;
    *phKey = HandleRegistry::Instance().AddKey(std::move(key));
    return Status::Ok();
  });
}

SECURITY_STATUS WINAPI FreeKey(NCRYPT_PROV_HANDLE hProvider, NCRYPT_KEY_HANDLE hKey) {
  KspCall call("FreeKey");
  if (call.active()) call.args() = {{"hProvider", hProvider}, {"hKey", hKey}};
  return AtBoundary(call, NoOutputs, [&]() -> Status {
    if (HandleRegistry::Instance().RemoveKey(hProvider, hKey)) return Status::Ok();
    return InvalidKeyHandle(hProvider, hKey);
  });
}

std::optional<Bytes> KeyProperty(std::wstring_view name, NCRYPT_PROV_HANDLE provider_handle,
                                 const KeyObject& key) {
  const provider::ProviderCertificate& certificate = *key.certificate;
  const DWORD bits = static_cast<DWORD>(certificate.key_spec.Bits());
  if (name == NCRYPT_ALGORITHM_GROUP_PROPERTY) return WideValue(NCRYPT_RSA_ALGORITHM_GROUP);
  if (name == NCRYPT_ALGORITHM_PROPERTY) return WideValue(NCRYPT_RSA_ALGORITHM);
  if (name == NCRYPT_LENGTH_PROPERTY) return PlainValue<DWORD>(bits);
  if (name == NCRYPT_LENGTHS_PROPERTY) {
    NCRYPT_SUPPORTED_LENGTHS lengths{kMinRsaBits, kMaxRsaBits, kRsaBitsIncrement, bits};
    return PlainValue(lengths);
  }
  if (name == NCRYPT_BLOCK_LENGTH_PROPERTY) {
    return PlainValue<DWORD>(static_cast<DWORD>(certificate.key_spec.SignatureSize()));
  }
  if (name == NCRYPT_KEY_USAGE_PROPERTY) return PlainValue<DWORD>(NCRYPT_ALLOW_SIGNING_FLAG);
  if (name == NCRYPT_EXPORT_POLICY_PROPERTY) return PlainValue<DWORD>(0);  // never exportable
  // The key name is the certificate id, whatever name (label, upper case) opened it, so callers
  // that store it (CERT_KEY_PROV_INFO) get the canonical one.
  if (name == NCRYPT_NAME_PROPERTY || name == NCRYPT_UNIQUE_NAME_PROPERTY) {
    return WideValue(provider::WideFromUtf8(certificate.id));
  }
  if (name == NCRYPT_CERTIFICATE_PROPERTY) return certificate.certificate.Der();
  if (name == NCRYPT_KEY_TYPE_PROPERTY) {
    return PlainValue<DWORD>(key.machine_key ? NCRYPT_MACHINE_KEY_FLAG : 0);
  }
  if (name == NCRYPT_PROVIDER_HANDLE_PROPERTY) return PlainValue(provider_handle);
  if (name == NCRYPT_IMPL_TYPE_PROPERTY) return PlainValue<DWORD>(kImplType);
  if (name == NCRYPT_UI_POLICY_PROPERTY) {
    // No UI protection: version 1 of the structure, no flags, no strings.
    NCRYPT_UI_POLICY policy{};
    policy.dwVersion = 1;
    return PlainValue(policy);
  }
  // NCRYPT_SECURITY_DESCR_PROPERTY, NCRYPT_LAST_MODIFIED_PROPERTY and anything unknown: not
  // supported (see ProviderProperty).
  return std::nullopt;
}

SECURITY_STATUS WINAPI GetKeyProperty(NCRYPT_PROV_HANDLE hProvider, NCRYPT_KEY_HANDLE hKey,
                                      LPCWSTR pszProperty, PBYTE pbOutput, DWORD cbOutput,
                                      DWORD* pcbResult, DWORD dwFlags) {
  KspCall call("GetKeyProperty");
  if (call.active()) {
    call.args() = {{"hProvider", hProvider},
                   {"hKey", hKey},
                   {"pszProperty", TextValue(pszProperty)},
                   {"pbOutput", BufferValue(pbOutput)},
                   {"cbOutput", cbOutput},
                   {"dwFlags", dwFlags}};
  }
  return AtBoundary(call, SizedOutput("pbOutput", pbOutput, pcbResult), [&]() -> Status {
    SIGNUM_ASSIGN_OR_RETURN(auto key, RequireKey(hProvider, hKey));
    if (pszProperty == nullptr || pcbResult == nullptr) {
      return NullArgument("pszProperty or pcbResult");
    }
    SIGNUM_RETURN_IF_ERROR(CheckKnownFlags(dwFlags, kGetPropertyFlags));
    return WriteProperty(KeyProperty(pszProperty, hProvider, *key), "key", pszProperty, pbOutput,
                         cbOutput, pcbResult);
  });
}

SECURITY_STATUS WINAPI SetKeyProperty(NCRYPT_PROV_HANDLE hProvider, NCRYPT_KEY_HANDLE hKey,
                                      LPCWSTR pszProperty, PBYTE pbInput, DWORD cbInput,
                                      DWORD dwFlags) {
  KspCall call("SetKeyProperty");
  if (call.active()) {
    call.args()["hProvider"] = hProvider;
    call.args()["hKey"] = hKey;
    DescribeSetProperty(call.args(), pszProperty, pbInput, cbInput, dwFlags);
  }
  return AtBoundary(call, NoOutputs, [&]() -> Status {
    SIGNUM_RETURN_IF_ERROR(RequireKey(hProvider, hKey).status());
    return SetProperty("key", pszProperty, pbInput, cbInput, dwFlags);
  });
}

// Public blobs only; the private key never leaves the HSM (Export Policy 0). Private blob types
// get NTE_NOT_SUPPORTED, as Microsoft's providers answer for a non-exportable key.
SECURITY_STATUS WINAPI ExportKey(NCRYPT_PROV_HANDLE hProvider, NCRYPT_KEY_HANDLE hKey,
                                 NCRYPT_KEY_HANDLE hExportKey, LPCWSTR pszBlobType,
                                 NCryptBufferDesc* /*pParameterList*/, PBYTE pbOutput,
                                 DWORD cbOutput, DWORD* pcbResult, DWORD dwFlags) {
  KspCall call("ExportKey");
  if (call.active()) {
    call.args() = {{"hProvider", hProvider},
                   {"hKey", hKey},
                   {"hExportKey", hExportKey},
                   {"pszBlobType", TextValue(pszBlobType)},
                   {"pbOutput", BufferValue(pbOutput)},
                   {"cbOutput", cbOutput},
                   {"dwFlags", dwFlags}};
  }
  return AtBoundary(call, SizedOutput("pbOutput", pbOutput, pcbResult), [&]() -> Status {
    SIGNUM_ASSIGN_OR_RETURN(auto key, RequireKey(hProvider, hKey));
    if (pszBlobType == nullptr || pcbResult == nullptr) {
      return NullArgument("pszBlobType or pcbResult");
    }
    SIGNUM_RETURN_IF_ERROR(CheckKnownFlags(dwFlags, NCRYPT_SILENT_FLAG));
    const std::wstring_view blob_type = pszBlobType;
    if (blob_type != BCRYPT_RSAPUBLIC_BLOB && blob_type != BCRYPT_PUBLIC_KEY_BLOB) {
      return NteError(NTE_NOT_SUPPORTED,
                      "blob type '" + Utf8(pszBlobType) + "': only the public key is exported");
    }
    // A public blob is not wrapped: there is no export key to encrypt it under.
    if (hExportKey != 0) {
      return NteError(NTE_INVALID_PARAMETER, "hExportKey: a public blob is not wrapped");
    }
    SIGNUM_ASSIGN_OR_RETURN(Bytes blob, BuildRsaPublicBlob(key->certificate->components));
    return WriteOutput(blob, pbOutput, cbOutput, pcbResult);
  });
}

// The digest and scheme a SignHash call asks for, from its padding flag and padding info.
Result<provider::DigestToSign> ParseSignRequest(DWORD padding, const void* padding_info,
                                                ByteView input) {
  if (padding == 0 || padding_info == nullptr) {
    return NteError(NTE_INVALID_PARAMETER, "no padding flag or no padding info");
  }
  if (padding != NCRYPT_PAD_PKCS1_FLAG && padding != NCRYPT_PAD_PSS_FLAG) {
    // Two paddings at once is a malformed call; a single other one is a real CNG padding the
    // agent cannot do.
    if ((padding & (padding - 1)) != 0) {
      return NteError(NTE_INVALID_PARAMETER, "padding flags " + Hex(padding) + " name several");
    }
    return NteError(NTE_NOT_SUPPORTED, "padding " + Hex(padding) + ": PKCS#1 and PSS only");
  }
  if (input.empty()) return NteError(NTE_INVALID_PARAMETER, "no hash value");

  provider::DigestToSign digest;
  if (padding == NCRYPT_PAD_PKCS1_FLAG) {
    const auto* info = static_cast<const BCRYPT_PKCS1_PADDING_INFO*>(padding_info);
    digest.scheme = SignatureScheme::kRsaPkcs1;
    if (info->pszAlgId == nullptr) {
      // No algorithm id: the caller built the DigestInfo itself (signtool /ds, F28). Only a
      // DigestInfo can be signed through the agent; raw PKCS#1 over other data (TLS 1.0's
      // MD5+SHA-1) cannot.
      auto parsed = ParseDigestInfo(input);
      if (!parsed.ok()) {
        return NteError(NTE_NOT_SUPPORTED,
                        "PKCS#1 without pszAlgId over data that is not a DigestInfo of a "
                        "supported hash: " +
                            parsed.status().message());
      }
      digest.hash = parsed->hash;
      digest.digest = std::move(parsed->digest);
      return digest;
    }
    auto hash = HashForCngAlgorithmId(provider::Utf8FromWide(info->pszAlgId));
    // MD5, MD2, ...: not Signum hashes
    if (!hash) return NteError(NTE_NOT_SUPPORTED, "hash '" + Utf8(info->pszAlgId) + "'");
    digest.hash = *hash;
  } else {
    const auto* info = static_cast<const BCRYPT_PSS_PADDING_INFO*>(padding_info);
    if (info->pszAlgId == nullptr) return NteError(NTE_INVALID_PARAMETER, "PSS without pszAlgId");
    auto hash = HashForCngAlgorithmId(provider::Utf8FromWide(info->pszAlgId));
    if (!hash) return NteError(NTE_NOT_SUPPORTED, "hash '" + Utf8(info->pszAlgId) + "'");
    digest.scheme = SignatureScheme::kRsaPss;
    digest.hash = *hash;
    digest.pss_salt_length = info->cbSalt;
  }
  const size_t digest_size = GetHashInfo(digest.hash).digest_size;
  if (input.size() != digest_size) {
    return NteError(NTE_INVALID_PARAMETER, "hash value of " + std::to_string(input.size()) +
                                               " bytes, " + std::to_string(digest_size) +
                                               " expected");
  }
  digest.digest.assign(input.begin(), input.end());
  return digest;
}

SECURITY_STATUS WINAPI SignHash(NCRYPT_PROV_HANDLE hProvider, NCRYPT_KEY_HANDLE hKey,
                                VOID* pPaddingInfo, PBYTE pbHashValue, DWORD cbHashValue,
                                PBYTE pbSignature, DWORD cbSignature, DWORD* pcbResult,
                                DWORD dwFlags) {
  KspCall call("SignHash");
  if (call.active()) {
    call.args() = {{"hProvider", hProvider},
                   {"hKey", hKey},
                   {"pPaddingInfo", PaddingInfoValue(dwFlags, pPaddingInfo)},
                   {"pbHashValue", HexValue(pbHashValue, cbHashValue)},
                   {"cbHashValue", cbHashValue},
                   {"pbSignature", BufferValue(pbSignature)},
                   {"cbSignature", cbSignature},
                   {"dwFlags", dwFlags}};
  }
  return AtBoundary(call, SizedOutput("pbSignature", pbSignature, pcbResult), [&]() -> Status {
    SIGNUM_ASSIGN_OR_RETURN(auto key, RequireKey(hProvider, hKey));
    if (pcbResult == nullptr) return NullArgument("pcbResult");
    SIGNUM_RETURN_IF_ERROR(CheckKnownFlags(dwFlags, kSignatureFlags));
    const provider::ProviderCertificate& certificate = *key->certificate;
    const DWORD signature_size = static_cast<DWORD>(certificate.key_spec.SignatureSize());
    // Size query: answered from the key alone, before the padding is looked at, because some
    // callers ask for the size without padding information.
    if (pbSignature == nullptr) {
      *pcbResult = signature_size;
      return Status::Ok();
    }
    if (pbHashValue == nullptr && cbHashValue != 0) return NullArgument("pbHashValue");
    SIGNUM_ASSIGN_OR_RETURN(provider::DigestToSign request,
                            ParseSignRequest(dwFlags & kPaddingFlags, pPaddingInfo,
                                             ByteView(pbHashValue, cbHashValue)));
    SIGNUM_RETURN_IF_ERROR(provider::ValidateDigestToSign(certificate.key_spec, request));
    if (cbSignature < signature_size) {
      *pcbResult = signature_size;
      return NteError(NTE_BUFFER_TOO_SMALL, "signature buffer of " + std::to_string(cbSignature) +
                                                " bytes, " + std::to_string(signature_size) +
                                                " needed");
    }
    SIGNUM_ASSIGN_OR_RETURN(Bytes signature, Context().signer().SignDigest(certificate, request));
    // Big-endian, as CNG returns RSA signatures (the CSP reverses them; this does not).
    return WriteOutput(signature, pbSignature, cbSignature, pcbResult);
  });
}

// Verification is local (the public key is in the certificate), through the platform's BCrypt,
// which takes the same padding flags and padding info structures as SignHash.
SECURITY_STATUS WINAPI VerifySignature(NCRYPT_PROV_HANDLE hProvider, NCRYPT_KEY_HANDLE hKey,
                                       VOID* pPaddingInfo, PBYTE pbHashValue, DWORD cbHashValue,
                                       PBYTE pbSignature, DWORD cbSignature, DWORD dwFlags) {
  KspCall call("VerifySignature");
  if (call.active()) {
    call.args() = {{"hProvider", hProvider},
                   {"hKey", hKey},
                   {"pPaddingInfo", PaddingInfoValue(dwFlags, pPaddingInfo)},
                   {"pbHashValue", HexValue(pbHashValue, cbHashValue)},
                   {"cbHashValue", cbHashValue},
                   {"pbSignature", HexValue(pbSignature, cbSignature)},
                   {"cbSignature", cbSignature},
                   {"dwFlags", dwFlags}};
  }
  return AtBoundary(call, NoOutputs, [&]() -> Status {
    SIGNUM_ASSIGN_OR_RETURN(auto key, RequireKey(hProvider, hKey));
    if (pbHashValue == nullptr || cbHashValue == 0 || pbSignature == nullptr || cbSignature == 0) {
      return NteError(NTE_INVALID_PARAMETER, "no hash value or no signature");
    }
    SIGNUM_RETURN_IF_ERROR(CheckKnownFlags(dwFlags, kSignatureFlags));
    const DWORD padding = dwFlags & kPaddingFlags;
    if (padding == 0 || pPaddingInfo == nullptr) {
      return NteError(NTE_INVALID_PARAMETER, "no padding flag or no padding info");
    }
    if (padding != NCRYPT_PAD_PKCS1_FLAG && padding != NCRYPT_PAD_PSS_FLAG) {
      return NteError(NTE_NOT_SUPPORTED, "padding " + Hex(padding) + ": PKCS#1 and PSS only");
    }
    // PKCS#1 with no algorithm id over a DigestInfo is the same signature as PKCS#1 naming the
    // hash over the bare digest; say it that way, since not every BCrypt (Wine's) verifies
    // without an OID.
    ByteView hash_value(pbHashValue, cbHashValue);
    BCRYPT_PKCS1_PADDING_INFO named_pkcs1{};
    std::wstring algorithm_id;
    Bytes bare_digest;
    if (padding == NCRYPT_PAD_PKCS1_FLAG &&
        static_cast<const BCRYPT_PKCS1_PADDING_INFO*>(pPaddingInfo)->pszAlgId == nullptr) {
      auto parsed = ParseDigestInfo(hash_value);
      const std::string_view cng_id =
          parsed.ok() ? GetHashInfo(parsed->hash).cng_algorithm_id : std::string_view();
      if (!cng_id.empty()) {
        algorithm_id.assign(cng_id.begin(), cng_id.end());
        named_pkcs1.pszAlgId = algorithm_id.c_str();
        bare_digest = std::move(parsed->digest);
        pPaddingInfo = &named_pkcs1;
        hash_value = bare_digest;
      }
    }

    SIGNUM_ASSIGN_OR_RETURN(bool verified,
                            VerifyRsaSignature(key->certificate->components, pPaddingInfo, padding,
                                               hash_value, ByteView(pbSignature, cbSignature)));
    if (verified) return Status::Ok();
    return NteError(NTE_BAD_SIGNATURE, "the signature does not verify with the key");
  });
}

// ---- what a remote signing key cannot do ---------------------------------------------------

SECURITY_STATUS WINAPI CreatePersistedKey(NCRYPT_PROV_HANDLE hProvider, NCRYPT_KEY_HANDLE* phKey,
                                          LPCWSTR /*pszAlgId*/, LPCWSTR /*pszKeyName*/,
                                          DWORD /*dwLegacyKeySpec*/, DWORD /*dwFlags*/) {
  return AtBoundary("CreatePersistedKey", [&]() -> Status {
    SIGNUM_RETURN_IF_ERROR(RequireProvider(hProvider));
    if (phKey == nullptr) return NullArgument("phKey");
    return NteError(NTE_NOT_SUPPORTED, "keys are created on the Signum server");
  });
}

SECURITY_STATUS WINAPI ImportKey(NCRYPT_PROV_HANDLE hProvider, NCRYPT_KEY_HANDLE /*hImportKey*/,
                                 LPCWSTR /*pszBlobType*/, NCryptBufferDesc* /*pParameterList*/,
                                 NCRYPT_KEY_HANDLE* phKey, PBYTE /*pbData*/, DWORD /*cbData*/,
                                 DWORD /*dwFlags*/) {
  return AtBoundary("ImportKey", [&]() -> Status {
    SIGNUM_RETURN_IF_ERROR(RequireProvider(hProvider));
    if (phKey == nullptr) return NullArgument("phKey");
    return NteError(NTE_NOT_SUPPORTED, "keys live in the Signum server's HSM, none is imported");
  });
}

// For calls whose only job here is to say "not for these keys" (why) once the handles are
// checked.
SECURITY_STATUS KeyOperationNotSupported(const char* entry, NCRYPT_PROV_HANDLE provider,
                                         NCRYPT_KEY_HANDLE key, const char* why) {
  KspCall call(entry);
  if (call.active()) call.args() = {{"hProvider", provider}, {"hKey", key}};
  return AtBoundary(call, NoOutputs, [&]() -> Status {
    SIGNUM_RETURN_IF_ERROR(RequireKey(provider, key).status());
    return NteError(NTE_NOT_SUPPORTED, why);
  });
}

SECURITY_STATUS WINAPI FinalizeKey(NCRYPT_PROV_HANDLE hProvider, NCRYPT_KEY_HANDLE hKey,
                                   DWORD /*dwFlags*/) {
  return KeyOperationNotSupported("FinalizeKey", hProvider, hKey,
                                  "only CreatePersistedKey's keys need finalizing, and there are "
                                  "none");
}

SECURITY_STATUS WINAPI DeleteKey(NCRYPT_PROV_HANDLE hProvider, NCRYPT_KEY_HANDLE hKey,
                                 DWORD /*dwFlags*/) {
  // The handle stays valid (free it with FreeKey).
  return KeyOperationNotSupported("DeleteKey", hProvider, hKey,
                                  "the key belongs to the Signum server");
}

SECURITY_STATUS WINAPI Encrypt(NCRYPT_PROV_HANDLE hProvider, NCRYPT_KEY_HANDLE hKey,
                               PBYTE /*pbInput*/, DWORD /*cbInput*/, VOID* /*pPaddingInfo*/,
                               PBYTE /*pbOutput*/, DWORD /*cbOutput*/, DWORD* /*pcbResult*/,
                               DWORD /*dwFlags*/) {
  return KeyOperationNotSupported("Encrypt", hProvider, hKey, "signing keys only");
}

SECURITY_STATUS WINAPI Decrypt(NCRYPT_PROV_HANDLE hProvider, NCRYPT_KEY_HANDLE hKey,
                               PBYTE /*pbInput*/, DWORD /*cbInput*/, VOID* /*pPaddingInfo*/,
                               PBYTE /*pbOutput*/, DWORD /*cbOutput*/, DWORD* /*pcbResult*/,
                               DWORD /*dwFlags*/) {
  return KeyOperationNotSupported("Decrypt", hProvider, hKey, "signing keys only");
}

SECURITY_STATUS WINAPI PromptUser(NCRYPT_PROV_HANDLE hProvider, NCRYPT_KEY_HANDLE hKey,
                                  LPCWSTR /*pszOperation*/, DWORD /*dwFlags*/) {
  return KeyOperationNotSupported("PromptUser", hProvider, hKey, "this provider has no UI");
}

SECURITY_STATUS WINAPI SecretAgreement(NCRYPT_PROV_HANDLE hProvider, NCRYPT_KEY_HANDLE hPrivKey,
                                       NCRYPT_KEY_HANDLE /*hPubKey*/,
                                       NCRYPT_SECRET_HANDLE* /*phAgreedSecret*/,
                                       DWORD /*dwFlags*/) {
  return KeyOperationNotSupported("SecretAgreement", hProvider, hPrivKey,
                                  "RSA keys do no secret agreement");
}

// SecretAgreement never succeeds, so no secret handle is ever live.
Status NoSecretHandle(NCRYPT_PROV_HANDLE provider) {
  SIGNUM_RETURN_IF_ERROR(RequireProvider(provider));
  return NteError(NTE_INVALID_HANDLE, "no secret handle is ever open (no secret agreement)");
}

SECURITY_STATUS WINAPI DeriveKey(NCRYPT_PROV_HANDLE hProvider,
                                 NCRYPT_SECRET_HANDLE /*hSharedSecret*/, LPCWSTR /*pwszKDF*/,
                                 NCryptBufferDesc* /*pParameterList*/, PBYTE /*pbDerivedKey*/,
                                 DWORD /*cbDerivedKey*/, DWORD* /*pcbResult*/, ULONG /*dwFlags*/) {
  return AtBoundary("DeriveKey", [&] { return NoSecretHandle(hProvider); });
}

SECURITY_STATUS WINAPI FreeSecret(NCRYPT_PROV_HANDLE hProvider,
                                  NCRYPT_SECRET_HANDLE /*hSharedSecret*/) {
  return AtBoundary("FreeSecret", [&] { return NoSecretHandle(hProvider); });
}

SECURITY_STATUS WINAPI KeyDerivation(NCRYPT_PROV_HANDLE hProvider, NCRYPT_KEY_HANDLE hKey,
                                     NCryptBufferDesc* /*pParameterList*/, PUCHAR /*pbDerivedKey*/,
                                     DWORD /*cbDerivedKey*/, DWORD* /*pcbResult*/,
                                     ULONG /*dwFlags*/) {
  return KeyOperationNotSupported("KeyDerivation", hProvider, hKey, "signing keys only");
}

SECURITY_STATUS WINAPI CreateClaim(NCRYPT_PROV_HANDLE hProvider, NCRYPT_KEY_HANDLE hSubjectKey,
                                   NCRYPT_KEY_HANDLE /*hAuthorityKey*/, DWORD /*dwClaimType*/,
                                   NCryptBufferDesc* /*pParameterList*/, PBYTE /*pbClaimBlob*/,
                                   DWORD /*cbClaimBlob*/, DWORD* /*pcbResult*/, DWORD /*dwFlags*/) {
  return KeyOperationNotSupported("CreateClaim", hProvider, hSubjectKey,
                                  "claims are TPM attestation; these keys are in an HSM");
}

SECURITY_STATUS WINAPI VerifyClaim(NCRYPT_PROV_HANDLE hProvider, NCRYPT_KEY_HANDLE hSubjectKey,
                                   NCRYPT_KEY_HANDLE /*hAuthorityKey*/, DWORD /*dwClaimType*/,
                                   NCryptBufferDesc* /*pParameterList*/, PBYTE /*pbClaimBlob*/,
                                   DWORD /*cbClaimBlob*/, NCryptBufferDesc* /*pOutput*/,
                                   DWORD /*dwFlags*/) {
  return KeyOperationNotSupported("VerifyClaim", hProvider, hSubjectKey,
                                  "claims are TPM attestation; these keys are in an HSM");
}

// Version 1.0: the base interface. Every slot is filled anyway (KeyDerivation and the claims
// answer NTE_NOT_SUPPORTED), since whether Windows' ncrypt tolerates NULL slots cannot be tested
// here (windows-recipes.md section 3.2).
NCRYPT_KEY_STORAGE_FUNCTION_TABLE kFunctionTable = {
    NCRYPT_KEY_STORAGE_INTERFACE_VERSION,
    OpenProvider,
    OpenKey,
    CreatePersistedKey,
    GetProviderProperty,
    GetKeyProperty,
    SetProviderProperty,
    SetKeyProperty,
    FinalizeKey,
    DeleteKey,
    FreeProvider,
    FreeKey,
    FreeBuffer,
    Encrypt,
    Decrypt,
    IsAlgSupported,
    EnumAlgorithms,
    EnumKeys,
    ImportKey,
    ExportKey,
    SignHash,
    VerifySignature,
    PromptUser,
    NotifyChangeKey,
    SecretAgreement,
    DeriveKey,
    FreeSecret,
    KeyDerivation,
    CreateClaim,
    VerifyClaim,
};

}  // namespace
}  // namespace signum::cng::ksp

// The DLL's one export (signumksp.def keeps it undecorated on i686 too).
extern "C" NTSTATUS WINAPI
GetKeyStorageInterface(LPCWSTR /*pszProviderName*/,
                       NCRYPT_KEY_STORAGE_FUNCTION_TABLE** ppFunctionTable, DWORD /*dwFlags*/) {
  return signum::cng::ksp::AtBoundary("GetKeyStorageInterface", [&]() -> signum::Status {
    if (ppFunctionTable == nullptr) return signum::cng::ksp::NullArgument("ppFunctionTable");
    *ppFunctionTable = &signum::cng::ksp::kFunctionTable;
    return signum::Status::Ok();
  });
}

// Keeps the declaration and the ksp_iface.h type in step.
static_assert(std::is_same_v<decltype(&GetKeyStorageInterface), GetKeyStorageInterfaceFn>);

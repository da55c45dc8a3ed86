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
#include <exception>
#include <memory>
#include <new>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

#include "ksp_objects.h"
#include "signum/cng/rsa_public_key.h"
#include "signum/cng/ksp_iface.h"
#include "signum/cng/names.h"
#include "signum/cng/nte_status.h"
#include "signum/cng/provider_runtime.h"
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

SECURITY_STATUS Fail(const char* entry, const Status& status) {
  Trace(kComponent, std::string(entry) + ": " + status.ToString());
  return ToSecurityStatus(status);
}

// No C++ exception may cross the C ABI into ncrypt.dll.
template <typename Body>
SECURITY_STATUS Guarded(const char* entry, Body&& body) {
  try {
    return body();
  } catch (const std::bad_alloc&) {
    return NTE_NO_MEMORY;
  } catch (const std::exception& e) {
    Trace(kComponent, std::string(entry) + ": exception: " + e.what());
    return NTE_FAIL;
  } catch (...) {
    Trace(kComponent, std::string(entry) + ": unknown exception");
    return NTE_FAIL;
  }
}

// The size-query / too-small / copy convention shared by every call that returns bytes.
SECURITY_STATUS WriteOutput(ByteView value, PBYTE output, DWORD output_size, DWORD* result_size) {
  if (result_size == nullptr) return NTE_INVALID_PARAMETER;
  *result_size = static_cast<DWORD>(value.size());
  if (output == nullptr) return ERROR_SUCCESS;
  if (output_size < value.size()) return NTE_BUFFER_TOO_SMALL;
  if (!value.empty()) std::memcpy(output, value.data(), value.size());
  return ERROR_SUCCESS;
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
  return Guarded("OpenProvider", [&]() -> SECURITY_STATUS {
    if (phProvider == nullptr) return NTE_INVALID_PARAMETER;
    if (dwFlags & ~kOpenFlags) return NTE_BAD_FLAGS;
    // ncrypt passes the name the provider was registered under (names.h kKspName); the provider
    // serves the same keys whatever it is called, so the name is only traced. Opening does not
    // contact the agent: an unreachable agent is reported by the calls that need it.
    Trace(kComponent, "OpenProvider(" + provider::Utf8FromWide(View(pszProviderName)) + ")");
    *phProvider = HandleRegistry::Instance().AddProvider(ProviderObject{dwFlags});
    return ERROR_SUCCESS;
  });
}

SECURITY_STATUS WINAPI FreeProvider(NCRYPT_PROV_HANDLE hProvider) {
  return Guarded("FreeProvider", [&]() -> SECURITY_STATUS {
    return HandleRegistry::Instance().RemoveProvider(hProvider) ? ERROR_SUCCESS
                                                                : NTE_INVALID_HANDLE;
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

SECURITY_STATUS WINAPI GetProviderProperty(NCRYPT_PROV_HANDLE hProvider, LPCWSTR pszProperty,
                                           PBYTE pbOutput, DWORD cbOutput, DWORD* pcbResult,
                                           DWORD dwFlags) {
  return Guarded("GetProviderProperty", [&]() -> SECURITY_STATUS {
    if (!HandleRegistry::Instance().FindProvider(hProvider)) return NTE_INVALID_HANDLE;
    if (pszProperty == nullptr || pcbResult == nullptr) return NTE_INVALID_PARAMETER;
    if (dwFlags & ~kGetPropertyFlags) return NTE_BAD_FLAGS;
    std::optional<Bytes> value = ProviderProperty(pszProperty);
    if (!value) return NTE_NOT_SUPPORTED;
    return WriteOutput(*value, pbOutput, cbOutput, pcbResult);
  });
}

// Properties callers set for UI purposes; accepted and ignored (this provider never shows UI).
bool IsIgnoredUiProperty(std::wstring_view name, DWORD size) {
  if (name == NCRYPT_WINDOW_HANDLE_PROPERTY) return size == sizeof(HWND);
  return name == NCRYPT_USE_CONTEXT_PROPERTY;
}

SECURITY_STATUS WINAPI SetProviderProperty(NCRYPT_PROV_HANDLE hProvider, LPCWSTR pszProperty,
                                           PBYTE pbInput, DWORD cbInput, DWORD dwFlags) {
  return Guarded("SetProviderProperty", [&]() -> SECURITY_STATUS {
    if (!HandleRegistry::Instance().FindProvider(hProvider)) return NTE_INVALID_HANDLE;
    if (pszProperty == nullptr || (pbInput == nullptr && cbInput != 0)) {
      return NTE_INVALID_PARAMETER;
    }
    if (dwFlags & ~kSetPropertyFlags) return NTE_BAD_FLAGS;
    return IsIgnoredUiProperty(pszProperty, cbInput) ? ERROR_SUCCESS : NTE_NOT_SUPPORTED;
  });
}

SECURITY_STATUS WINAPI IsAlgSupported(NCRYPT_PROV_HANDLE hProvider, LPCWSTR pszAlgId,
                                      DWORD dwFlags) {
  return Guarded("IsAlgSupported", [&]() -> SECURITY_STATUS {
    if (!HandleRegistry::Instance().FindProvider(hProvider)) return NTE_INVALID_HANDLE;
    if (pszAlgId == nullptr) return NTE_INVALID_PARAMETER;
    if (dwFlags & ~NCRYPT_SILENT_FLAG) return NTE_BAD_FLAGS;
    return View(pszAlgId) == NCRYPT_RSA_ALGORITHM ? ERROR_SUCCESS : NTE_NOT_SUPPORTED;
  });
}

SECURITY_STATUS WINAPI EnumAlgorithms(NCRYPT_PROV_HANDLE hProvider, DWORD dwAlgClass,
                                      DWORD* pdwAlgCount, NCryptAlgorithmName** ppAlgList,
                                      DWORD dwFlags) {
  return Guarded("EnumAlgorithms", [&]() -> SECURITY_STATUS {
    if (!HandleRegistry::Instance().FindProvider(hProvider)) return NTE_INVALID_HANDLE;
    if (pdwAlgCount == nullptr || ppAlgList == nullptr) return NTE_INVALID_PARAMETER;
    if (dwFlags & ~NCRYPT_SILENT_FLAG) return NTE_BAD_FLAGS;
    constexpr DWORD kKnownClasses =
        NCRYPT_CIPHER_OPERATION | NCRYPT_HASH_OPERATION | NCRYPT_ASYMMETRIC_ENCRYPTION_OPERATION |
        NCRYPT_SECRET_AGREEMENT_OPERATION | NCRYPT_SIGNATURE_OPERATION | NCRYPT_RNG_OPERATION |
        BCRYPT_KEY_DERIVATION_OPERATION;  // ncrypt.h names it only for Windows 8+ targets
    if (dwAlgClass & ~kKnownClasses) return NTE_INVALID_PARAMETER;
    // The one algorithm: RSA, for signatures. 0 asks for every class.
    if (dwAlgClass != 0 && !(dwAlgClass & NCRYPT_SIGNATURE_OPERATION)) return NTE_NOT_SUPPORTED;
    const std::wstring_view name = NCRYPT_RSA_ALGORITHM;
    const size_t name_bytes = (name.size() + 1) * sizeof(wchar_t);
    void* block =
        BufferRegistry::Instance().AllocateBlock(sizeof(NCryptAlgorithmName) + name_bytes);
    if (block == nullptr) return NTE_NO_MEMORY;
    auto* entry = static_cast<NCryptAlgorithmName*>(block);
    auto* text = reinterpret_cast<wchar_t*>(entry + 1);
    std::memcpy(text, name.data(), name.size() * sizeof(wchar_t));
    entry->pszName = text;
    entry->dwClass = NCRYPT_SIGNATURE_INTERFACE;
    entry->dwAlgOperations = NCRYPT_SIGNATURE_OPERATION;
    entry->dwFlags = 0;
    *pdwAlgCount = 1;
    *ppAlgList = entry;
    return ERROR_SUCCESS;
  });
}

SECURITY_STATUS WINAPI EnumKeys(NCRYPT_PROV_HANDLE hProvider, LPCWSTR /*pszScope*/,
                                NCryptKeyName** ppKeyName, PVOID* ppEnumState, DWORD dwFlags) {
  // The scope (a smart-card reader for card KSPs) does not apply: one set of keys is served.
  return Guarded("EnumKeys", [&]() -> SECURITY_STATUS {
    if (!HandleRegistry::Instance().FindProvider(hProvider)) return NTE_INVALID_HANDLE;
    if (ppKeyName == nullptr || ppEnumState == nullptr) return NTE_INVALID_PARAMETER;
    if (dwFlags & ~kOpenFlags) return NTE_BAD_FLAGS;
    BufferRegistry& buffers = BufferRegistry::Instance();
    EnumKeysState* state = nullptr;
    if (*ppEnumState == nullptr) {
      auto certificates = Context().Certificates();
      if (!certificates.ok()) return Fail("EnumKeys", certificates.status());
      auto fresh = std::make_unique<EnumKeysState>();
      for (const auto& certificate : (*certificates)->certificates) {
        if (IsWindowsKey(*certificate)) fresh->keys.push_back(certificate);
      }
      fresh->machine_keys = (dwFlags & NCRYPT_MACHINE_KEY_FLAG) != 0;
      // Nothing to list: no state is handed out, so there is nothing for the caller to free.
      if (fresh->keys.empty()) return NTE_NO_MORE_ITEMS;
      state = fresh.get();
      *ppEnumState = buffers.AddEnumState(std::move(fresh));
    } else {
      state = buffers.FindEnumState(*ppEnumState);
      if (state == nullptr) return NTE_INVALID_PARAMETER;
    }
    if (state->next >= state->keys.size()) return NTE_NO_MORE_ITEMS;
    const provider::ProviderCertificate& certificate = *state->keys[state->next];

    // One block: the NCryptKeyName, then its two strings.
    const std::wstring name = provider::WideFromUtf8(certificate.id);
    const std::wstring_view algorithm = NCRYPT_RSA_ALGORITHM;
    const size_t name_bytes = (name.size() + 1) * sizeof(wchar_t);
    const size_t algorithm_bytes = (algorithm.size() + 1) * sizeof(wchar_t);
    void* block = buffers.AllocateBlock(sizeof(NCryptKeyName) + name_bytes + algorithm_bytes);
    if (block == nullptr) return NTE_NO_MEMORY;
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
    return ERROR_SUCCESS;
  });
}

SECURITY_STATUS WINAPI FreeBuffer(PVOID pvInput) {
  return Guarded("FreeBuffer", [&]() -> SECURITY_STATUS {
    if (pvInput == nullptr) return ERROR_SUCCESS;  // like free(NULL)
    return BufferRegistry::Instance().Free(pvInput) ? ERROR_SUCCESS : NTE_INVALID_PARAMETER;
  });
}

SECURITY_STATUS WINAPI NotifyChangeKey(NCRYPT_PROV_HANDLE hProvider, HANDLE* phEvent,
                                       DWORD /*dwFlags*/) {
  return Guarded("NotifyChangeKey", [&]() -> SECURITY_STATUS {
    if (!HandleRegistry::Instance().FindProvider(hProvider)) return NTE_INVALID_HANDLE;
    if (phEvent == nullptr) return NTE_INVALID_PARAMETER;
    return NTE_NOT_SUPPORTED;  // the key list changes on the server, with no event to signal
  });
}

// ---- keys ------------------------------------------------------------------------------------

SECURITY_STATUS WINAPI OpenKey(NCRYPT_PROV_HANDLE hProvider, NCRYPT_KEY_HANDLE* phKey,
                               LPCWSTR pszKeyName, DWORD dwLegacyKeySpec, DWORD dwFlags) {
  return Guarded("OpenKey", [&]() -> SECURITY_STATUS {
    if (!HandleRegistry::Instance().FindProvider(hProvider)) return NTE_INVALID_HANDLE;
    if (phKey == nullptr || pszKeyName == nullptr || *pszKeyName == L'\0') {
      return NTE_INVALID_PARAMETER;
    }
    // 0 for CNG callers; AT_SIGNATURE / AT_KEYEXCHANGE from callers coming from CryptoAPI
    // (CERT_KEY_PROV_INFO.dwKeySpec). The same key answers to all three (F28).
    if (dwLegacyKeySpec != 0 && dwLegacyKeySpec != AT_SIGNATURE &&
        dwLegacyKeySpec != AT_KEYEXCHANGE) {
      return NTE_INVALID_PARAMETER;
    }
    if (dwFlags & ~kOpenFlags) return NTE_BAD_FLAGS;
    // The certificate id (any case) or the label; EC certificates are not keys here.
    auto certificate = FindWindowsKey(Context(), provider::Utf8FromWide(pszKeyName));
    if (!certificate.ok()) return Fail("OpenKey", certificate.status());
    KeyObject key;
    key.provider = hProvider;
    key.certificate = *certificate;
    key.legacy_key_spec = dwLegacyKeySpec;
    // The agent serves one user's certificates; a machine-key open sees the same keys and is
    // told so in the Key Type property.
    key.machine_key = (dwFlags & NCRYPT_MACHINE_KEY_FLAG) != 0;
    *phKey = HandleRegistry::Instance().AddKey(std::move(key));
    return ERROR_SUCCESS;
  });
}

SECURITY_STATUS WINAPI FreeKey(NCRYPT_PROV_HANDLE hProvider, NCRYPT_KEY_HANDLE hKey) {
  return Guarded("FreeKey", [&]() -> SECURITY_STATUS {
    return HandleRegistry::Instance().RemoveKey(hProvider, hKey) ? ERROR_SUCCESS
                                                                 : NTE_INVALID_HANDLE;
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
  return Guarded("GetKeyProperty", [&]() -> SECURITY_STATUS {
    auto key = HandleRegistry::Instance().FindKey(hProvider, hKey);
    if (!key) return NTE_INVALID_HANDLE;
    if (pszProperty == nullptr || pcbResult == nullptr) return NTE_INVALID_PARAMETER;
    if (dwFlags & ~kGetPropertyFlags) return NTE_BAD_FLAGS;
    std::optional<Bytes> value = KeyProperty(pszProperty, hProvider, *key);
    if (!value) return NTE_NOT_SUPPORTED;
    return WriteOutput(*value, pbOutput, cbOutput, pcbResult);
  });
}

SECURITY_STATUS WINAPI SetKeyProperty(NCRYPT_PROV_HANDLE hProvider, NCRYPT_KEY_HANDLE hKey,
                                      LPCWSTR pszProperty, PBYTE pbInput, DWORD cbInput,
                                      DWORD dwFlags) {
  return Guarded("SetKeyProperty", [&]() -> SECURITY_STATUS {
    if (!HandleRegistry::Instance().FindKey(hProvider, hKey)) return NTE_INVALID_HANDLE;
    if (pszProperty == nullptr || (pbInput == nullptr && cbInput != 0)) {
      return NTE_INVALID_PARAMETER;
    }
    if (dwFlags & ~kSetPropertyFlags) return NTE_BAD_FLAGS;
    // Everything else describes the key, which the server owns: read-only here.
    return IsIgnoredUiProperty(pszProperty, cbInput) ? ERROR_SUCCESS : NTE_NOT_SUPPORTED;
  });
}

// Public blobs only; the private key never leaves the HSM (Export Policy 0). Private blob types
// get NTE_NOT_SUPPORTED, as Microsoft's providers answer for a non-exportable key.
SECURITY_STATUS WINAPI ExportKey(NCRYPT_PROV_HANDLE hProvider, NCRYPT_KEY_HANDLE hKey,
                                 NCRYPT_KEY_HANDLE hExportKey, LPCWSTR pszBlobType,
                                 NCryptBufferDesc* /*pParameterList*/, PBYTE pbOutput,
                                 DWORD cbOutput, DWORD* pcbResult, DWORD dwFlags) {
  return Guarded("ExportKey", [&]() -> SECURITY_STATUS {
    auto key = HandleRegistry::Instance().FindKey(hProvider, hKey);
    if (!key) return NTE_INVALID_HANDLE;
    if (pszBlobType == nullptr || pcbResult == nullptr) return NTE_INVALID_PARAMETER;
    if (dwFlags & ~NCRYPT_SILENT_FLAG) return NTE_BAD_FLAGS;
    const std::wstring_view blob_type = pszBlobType;
    if (blob_type != BCRYPT_RSAPUBLIC_BLOB && blob_type != BCRYPT_PUBLIC_KEY_BLOB) {
      return NTE_NOT_SUPPORTED;
    }
    // A public blob is not wrapped: there is no export key to encrypt it under.
    if (hExportKey != 0) return NTE_INVALID_PARAMETER;
    auto blob = BuildRsaPublicBlob(key->certificate->components);
    if (!blob.ok()) return Fail("ExportKey", blob.status());
    return WriteOutput(*blob, pbOutput, cbOutput, pcbResult);
  });
}

// The digest and scheme a SignHash call asks for, from its padding flag and padding info.
// Errors are SECURITY_STATUS values already.
struct SignRequest {
  provider::DigestToSign digest;
  SECURITY_STATUS error = ERROR_SUCCESS;
};

SignRequest ParseSignRequest(DWORD padding, const void* padding_info, ByteView input) {
  SignRequest request;
  auto fail = [&](SECURITY_STATUS code) {
    request.error = code;
    return request;
  };
  if (padding == 0 || padding_info == nullptr) return fail(NTE_INVALID_PARAMETER);
  if (padding != NCRYPT_PAD_PKCS1_FLAG && padding != NCRYPT_PAD_PSS_FLAG) {
    // Two paddings at once is a malformed call; a single other one is a real CNG padding the
    // agent cannot do.
    return fail((padding & (padding - 1)) != 0 ? NTE_INVALID_PARAMETER : NTE_NOT_SUPPORTED);
  }
  if (input.empty()) return fail(NTE_INVALID_PARAMETER);

  if (padding == NCRYPT_PAD_PKCS1_FLAG) {
    const auto* info = static_cast<const BCRYPT_PKCS1_PADDING_INFO*>(padding_info);
    request.digest.scheme = SignatureScheme::kRsaPkcs1;
    if (info->pszAlgId == nullptr) {
      // No algorithm id: the caller built the DigestInfo itself (signtool /ds, F28). Only a
      // DigestInfo can be signed through the agent; raw PKCS#1 over other data (TLS 1.0's
      // MD5+SHA-1) cannot.
      auto parsed = ParseDigestInfo(input);
      if (!parsed.ok()) return fail(NTE_NOT_SUPPORTED);
      request.digest.hash = parsed->hash;
      request.digest.digest = std::move(parsed->digest);
      return request;
    }
    auto hash = HashForCngAlgorithmId(provider::Utf8FromWide(info->pszAlgId));
    if (!hash) return fail(NTE_NOT_SUPPORTED);  // MD5, MD2, ...: not Signum hashes
    request.digest.hash = *hash;
  } else {
    const auto* info = static_cast<const BCRYPT_PSS_PADDING_INFO*>(padding_info);
    if (info->pszAlgId == nullptr) return fail(NTE_INVALID_PARAMETER);
    auto hash = HashForCngAlgorithmId(provider::Utf8FromWide(info->pszAlgId));
    if (!hash) return fail(NTE_NOT_SUPPORTED);
    request.digest.scheme = SignatureScheme::kRsaPss;
    request.digest.hash = *hash;
    request.digest.pss_salt_length = info->cbSalt;
  }
  if (input.size() != GetHashInfo(request.digest.hash).digest_size) {
    return fail(NTE_INVALID_PARAMETER);
  }
  request.digest.digest.assign(input.begin(), input.end());
  return request;
}

SECURITY_STATUS WINAPI SignHash(NCRYPT_PROV_HANDLE hProvider, NCRYPT_KEY_HANDLE hKey,
                                VOID* pPaddingInfo, PBYTE pbHashValue, DWORD cbHashValue,
                                PBYTE pbSignature, DWORD cbSignature, DWORD* pcbResult,
                                DWORD dwFlags) {
  return Guarded("SignHash", [&]() -> SECURITY_STATUS {
    auto key = HandleRegistry::Instance().FindKey(hProvider, hKey);
    if (!key) return NTE_INVALID_HANDLE;
    if (pcbResult == nullptr) return NTE_INVALID_PARAMETER;
    if (dwFlags & ~kSignatureFlags) return NTE_BAD_FLAGS;
    const provider::ProviderCertificate& certificate = *key->certificate;
    const DWORD signature_size = static_cast<DWORD>(certificate.key_spec.SignatureSize());
    // Size query: answered from the key alone, before the padding is looked at, because some
    // callers ask for the size without padding information.
    if (pbSignature == nullptr) {
      *pcbResult = signature_size;
      return ERROR_SUCCESS;
    }
    if (pbHashValue == nullptr && cbHashValue != 0) return NTE_INVALID_PARAMETER;
    SignRequest request =
        ParseSignRequest(dwFlags & kPaddingFlags, pPaddingInfo, ByteView(pbHashValue, cbHashValue));
    if (request.error != ERROR_SUCCESS) return request.error;
    Status valid = provider::ValidateDigestToSign(certificate.key_spec, request.digest);
    if (!valid.ok()) return Fail("SignHash", valid);
    if (cbSignature < signature_size) {
      *pcbResult = signature_size;
      return NTE_BUFFER_TOO_SMALL;
    }
    auto signature = Context().signer().SignDigest(certificate, request.digest);
    if (!signature.ok()) return Fail("SignHash", signature.status());
    // Big-endian, as CNG returns RSA signatures (the CSP reverses them; this does not).
    return WriteOutput(*signature, pbSignature, cbSignature, pcbResult);
  });
}

// Verification is local (the public key is in the certificate), through the platform's BCrypt,
// which takes the same padding flags and padding info structures as SignHash.
SECURITY_STATUS WINAPI VerifySignature(NCRYPT_PROV_HANDLE hProvider, NCRYPT_KEY_HANDLE hKey,
                                       VOID* pPaddingInfo, PBYTE pbHashValue, DWORD cbHashValue,
                                       PBYTE pbSignature, DWORD cbSignature, DWORD dwFlags) {
  return Guarded("VerifySignature", [&]() -> SECURITY_STATUS {
    auto key = HandleRegistry::Instance().FindKey(hProvider, hKey);
    if (!key) return NTE_INVALID_HANDLE;
    if (pbHashValue == nullptr || cbHashValue == 0 || pbSignature == nullptr || cbSignature == 0) {
      return NTE_INVALID_PARAMETER;
    }
    if (dwFlags & ~kSignatureFlags) return NTE_BAD_FLAGS;
    const DWORD padding = dwFlags & kPaddingFlags;
    if (padding == 0 || pPaddingInfo == nullptr) return NTE_INVALID_PARAMETER;
    if (padding != NCRYPT_PAD_PKCS1_FLAG && padding != NCRYPT_PAD_PSS_FLAG) {
      return NTE_NOT_SUPPORTED;
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

    auto verified = VerifyRsaSignature(key->certificate->components, pPaddingInfo, padding,
                                       hash_value, ByteView(pbSignature, cbSignature));
    if (!verified.ok()) return Fail("VerifySignature", verified.status());
    return *verified ? ERROR_SUCCESS : NTE_BAD_SIGNATURE;
  });
}

// ---- what a remote signing key cannot do ---------------------------------------------------

SECURITY_STATUS WINAPI CreatePersistedKey(NCRYPT_PROV_HANDLE hProvider, NCRYPT_KEY_HANDLE* phKey,
                                          LPCWSTR /*pszAlgId*/, LPCWSTR /*pszKeyName*/,
                                          DWORD /*dwLegacyKeySpec*/, DWORD /*dwFlags*/) {
  return Guarded("CreatePersistedKey", [&]() -> SECURITY_STATUS {
    if (!HandleRegistry::Instance().FindProvider(hProvider)) return NTE_INVALID_HANDLE;
    if (phKey == nullptr) return NTE_INVALID_PARAMETER;
    return NTE_NOT_SUPPORTED;  // keys are created on the server (signum-util / its API)
  });
}

SECURITY_STATUS WINAPI ImportKey(NCRYPT_PROV_HANDLE hProvider, NCRYPT_KEY_HANDLE /*hImportKey*/,
                                 LPCWSTR /*pszBlobType*/, NCryptBufferDesc* /*pParameterList*/,
                                 NCRYPT_KEY_HANDLE* phKey, PBYTE /*pbData*/, DWORD /*cbData*/,
                                 DWORD /*dwFlags*/) {
  return Guarded("ImportKey", [&]() -> SECURITY_STATUS {
    if (!HandleRegistry::Instance().FindProvider(hProvider)) return NTE_INVALID_HANDLE;
    if (phKey == nullptr) return NTE_INVALID_PARAMETER;
    return NTE_NOT_SUPPORTED;
  });
}

// For calls whose only job here is to say "not for these keys" once the handles are checked.
SECURITY_STATUS KeyOperationNotSupported(const char* entry, NCRYPT_PROV_HANDLE provider,
                                         NCRYPT_KEY_HANDLE key) {
  return Guarded(entry, [&]() -> SECURITY_STATUS {
    if (!HandleRegistry::Instance().FindKey(provider, key)) return NTE_INVALID_HANDLE;
    return NTE_NOT_SUPPORTED;
  });
}

SECURITY_STATUS WINAPI FinalizeKey(NCRYPT_PROV_HANDLE hProvider, NCRYPT_KEY_HANDLE hKey,
                                   DWORD /*dwFlags*/) {
  // Only CreatePersistedKey's keys need finalizing, and there are none.
  return KeyOperationNotSupported("FinalizeKey", hProvider, hKey);
}

SECURITY_STATUS WINAPI DeleteKey(NCRYPT_PROV_HANDLE hProvider, NCRYPT_KEY_HANDLE hKey,
                                 DWORD /*dwFlags*/) {
  // The key belongs to the server; the handle stays valid (free it with FreeKey).
  return KeyOperationNotSupported("DeleteKey", hProvider, hKey);
}

SECURITY_STATUS WINAPI Encrypt(NCRYPT_PROV_HANDLE hProvider, NCRYPT_KEY_HANDLE hKey,
                               PBYTE /*pbInput*/, DWORD /*cbInput*/, VOID* /*pPaddingInfo*/,
                               PBYTE /*pbOutput*/, DWORD /*cbOutput*/, DWORD* /*pcbResult*/,
                               DWORD /*dwFlags*/) {
  return KeyOperationNotSupported("Encrypt", hProvider, hKey);  // signing keys only
}

SECURITY_STATUS WINAPI Decrypt(NCRYPT_PROV_HANDLE hProvider, NCRYPT_KEY_HANDLE hKey,
                               PBYTE /*pbInput*/, DWORD /*cbInput*/, VOID* /*pPaddingInfo*/,
                               PBYTE /*pbOutput*/, DWORD /*cbOutput*/, DWORD* /*pcbResult*/,
                               DWORD /*dwFlags*/) {
  return KeyOperationNotSupported("Decrypt", hProvider, hKey);
}

SECURITY_STATUS WINAPI PromptUser(NCRYPT_PROV_HANDLE hProvider, NCRYPT_KEY_HANDLE hKey,
                                  LPCWSTR /*pszOperation*/, DWORD /*dwFlags*/) {
  return KeyOperationNotSupported("PromptUser", hProvider, hKey);  // no UI, ever
}

SECURITY_STATUS WINAPI SecretAgreement(NCRYPT_PROV_HANDLE hProvider, NCRYPT_KEY_HANDLE hPrivKey,
                                       NCRYPT_KEY_HANDLE /*hPubKey*/,
                                       NCRYPT_SECRET_HANDLE* /*phAgreedSecret*/,
                                       DWORD /*dwFlags*/) {
  return KeyOperationNotSupported("SecretAgreement", hProvider, hPrivKey);  // RSA: no agreement
}

SECURITY_STATUS WINAPI DeriveKey(NCRYPT_PROV_HANDLE hProvider,
                                 NCRYPT_SECRET_HANDLE /*hSharedSecret*/, LPCWSTR /*pwszKDF*/,
                                 NCryptBufferDesc* /*pParameterList*/, PBYTE /*pbDerivedKey*/,
                                 DWORD /*cbDerivedKey*/, DWORD* /*pcbResult*/, ULONG /*dwFlags*/) {
  return Guarded("DeriveKey", [&]() -> SECURITY_STATUS {
    // SecretAgreement never succeeds, so no secret handle is ever live.
    if (!HandleRegistry::Instance().FindProvider(hProvider)) return NTE_INVALID_HANDLE;
    return NTE_INVALID_HANDLE;
  });
}

SECURITY_STATUS WINAPI FreeSecret(NCRYPT_PROV_HANDLE hProvider,
                                  NCRYPT_SECRET_HANDLE /*hSharedSecret*/) {
  return Guarded("FreeSecret", [&]() -> SECURITY_STATUS {
    if (!HandleRegistry::Instance().FindProvider(hProvider)) return NTE_INVALID_HANDLE;
    return NTE_INVALID_HANDLE;  // as DeriveKey: no secret handle is ever live
  });
}

SECURITY_STATUS WINAPI KeyDerivation(NCRYPT_PROV_HANDLE hProvider, NCRYPT_KEY_HANDLE hKey,
                                     NCryptBufferDesc* /*pParameterList*/, PUCHAR /*pbDerivedKey*/,
                                     DWORD /*cbDerivedKey*/, DWORD* /*pcbResult*/,
                                     ULONG /*dwFlags*/) {
  return KeyOperationNotSupported("KeyDerivation", hProvider, hKey);
}

SECURITY_STATUS WINAPI CreateClaim(NCRYPT_PROV_HANDLE hProvider, NCRYPT_KEY_HANDLE hSubjectKey,
                                   NCRYPT_KEY_HANDLE /*hAuthorityKey*/, DWORD /*dwClaimType*/,
                                   NCryptBufferDesc* /*pParameterList*/, PBYTE /*pbClaimBlob*/,
                                   DWORD /*cbClaimBlob*/, DWORD* /*pcbResult*/, DWORD /*dwFlags*/) {
  return KeyOperationNotSupported("CreateClaim", hProvider, hSubjectKey);  // TPM attestation
}

SECURITY_STATUS WINAPI VerifyClaim(NCRYPT_PROV_HANDLE hProvider, NCRYPT_KEY_HANDLE hSubjectKey,
                                   NCRYPT_KEY_HANDLE /*hAuthorityKey*/, DWORD /*dwClaimType*/,
                                   NCryptBufferDesc* /*pParameterList*/, PBYTE /*pbClaimBlob*/,
                                   DWORD /*cbClaimBlob*/, NCryptBufferDesc* /*pOutput*/,
                                   DWORD /*dwFlags*/) {
  return KeyOperationNotSupported("VerifyClaim", hProvider, hSubjectKey);
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
  if (ppFunctionTable == nullptr) return NTE_INVALID_PARAMETER;
  *ppFunctionTable = &signum::cng::ksp::kFunctionTable;
  return 0;
}

// Keeps the declaration and the ksp_iface.h type in step.
static_assert(std::is_same_v<decltype(&GetKeyStorageInterface), GetKeyStorageInterfaceFn>);

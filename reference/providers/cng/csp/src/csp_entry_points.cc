// signumcsp.dll: the CryptoAPI entry points (csp_iface.h), a thin ABI layer over
// provider::ProviderContext (SharedProviderContext("signumcsp")). Containers are the agent's RSA
// certificates; each has one key, AT_SIGNATURE. Hashing is local (BCrypt); only digests go to
// the agent. Decisions where CryptoAPI leaves room, each with the documented error code:
//   - CPAcquireContext: container = certificate id (any case) or label, an optional SafeNet-style
//     "[{{PIN}}]=" prefix is dropped (the agent authenticates; there is no PIN); NULL/empty = the
//     first RSA certificate the agent lists. CRYPT_VERIFYCONTEXT ignores the container and never
//     contacts the agent (hashing, random, enumeration). CRYPT_NEWKEYSET: NTE_EXISTS for an
//     existing container, else NTE_PERM (keys are made on the Signum server); CRYPT_DELETEKEYSET:
//     NTE_PERM (never deleted from here), NTE_BAD_KEYSET if unknown. Unknown container or an EC
//     certificate: NTE_BAD_KEYSET. Agent unreachable: ToSecurityStatus (NTE_DEVICE_NOT_READY).
//   - PROV_RSA_FULL and PROV_RSA_AES, one registered name each (names.h); PP_NAME / PP_PROVTYPE
//     answer with the name and type the context was acquired under. Other types:
//     NTE_PROV_TYPE_NO_MATCH.
//   - Keys: AT_SIGNATURE only. AT_KEYEXCHANGE (and any other key spec) is NTE_NO_KEY, in
//     CPGetUserKey and CPSignHash alike: Signum keys are signing keys.
//   - CPSignHash: PKCS#1 v1.5 with the DigestInfo, little-endian (CryptoAPI order).
//     CRYPT_NOHASHOID / CRYPT_X931_FORMAT: NTE_BAD_FLAGS (the server always signs a DigestInfo).
//   - Key material is not exportable: PUBLICKEYBLOB only, private blobs NTE_BAD_KEY_STATE.
//   - No session keys: CPGenKey/CPDeriveKey NTE_BAD_ALGID, CPImportKey NTE_BAD_TYPE,
//     CPEncrypt/CPDecrypt NTE_BAD_ALGID (an RSA_SIGN key), CPHashSessionKey NTE_BAD_KEY.
//   - Handles are table entries (handle_table.h): NTE_BAD_UID / NTE_BAD_KEY / NTE_BAD_HASH.
// Each CP* export only calls a function returning Status (each code above an NteError or
// Win32Error with its reason) and converts it once at the ABI boundary (AtBoundary), tracing
// failures with their reasons.
#include "signum/cng/csp_iface.h"
// bcrypt.h needs windows.h's types first (csp_iface.h).
#include <bcrypt.h>

#include <algorithm>
#include <cstring>
#include <mutex>
#include <string>
#include <utility>

#include "csp_objects.h"
#include "signum/cng/call_record.h"
#include "signum/cng/handle_table.h"
#include "signum/cng/names.h"
#include "signum/cng/nte_status.h"
#include "signum/cng/provider_runtime.h"
#include "signum/provider/provider_context.h"
#include "signum/provider/wide_string.h"

namespace signum::cng::csp {
namespace {

constexpr DWORD kCspVersion = 0x0100;         // PP_VERSION: major 1, minor 0
constexpr DWORD kRsaKeySizeIncrement = 1024;  // 2048, 3072, 4096

HandleTable<Provider>& Providers() {
  static HandleTable<Provider> table;
  return table;
}
HandleTable<Key>& Keys() {
  static HandleTable<Key> table;
  return table;
}
HandleTable<Hash>& Hashes() {
  static HandleTable<Hash> table;
  return table;
}

// A call of this provider as SIGNUM_CNG_RECORD records it (call_record.h): each CP* export puts
// its arguments into args() when active(), and says what it wrote in its outputs function.
class CspCall : public CallRecord {
 public:
  explicit CspCall(const char* fn) : CallRecord("csp", fn, ReturnConvention::kBoolAndLastError) {}
};

// Every entry point's one exit: the body returns a Status, converted once (nte_status.h: a
// failure is traced with its reason; call_record.h: the call is recorded) into TRUE, or FALSE
// with the code in SetLastError.
template <typename Outputs, typename Body>
BOOL AtBoundary(CallRecord& call, Outputs&& outputs, Body&& body) noexcept {
  const SECURITY_STATUS code =
      ReturnAtAbiBoundary(call, std::forward<Outputs>(outputs), std::forward<Body>(body));
  if (code == ERROR_SUCCESS) return TRUE;
  SetLastError(static_cast<DWORD>(code));
  return FALSE;
}
// For the calls recorded by their result and handles alone (args: a function filling them).
template <typename Body, typename Args>
BOOL AtBoundary(const char* entry, Args&& args, Body&& body) noexcept {
  CspCall call(entry);
  if (call.active()) {
    try {
      args(call.args());
    } catch (...) {
    }
  }
  return AtBoundary(call, NoOutputs, std::forward<Body>(body));
}

// The outputs of the calls that follow CopyOut's convention.
auto SizedOutput(const char* buffer_name, const BYTE* buffer, const char* length_name,
                 const DWORD* length) {
  return [=](nlohmann::json& out, SECURITY_STATUS code) {
    DescribeSizedOutput(out, code, ERROR_MORE_DATA, buffer_name, buffer, length_name, length);
  };
}
// A handle a call hands out, on success.
auto HandleOutput(const char* name, const ULONG_PTR* handle) {
  return [=](nlohmann::json& out, SECURITY_STATUS code) {
    if (code == ERROR_SUCCESS) out[name] = *handle;
  };
}
// An in/out length argument as the caller passed it (null for a NULL pointer).
nlohmann::json LengthIn(const DWORD* length) {
  return length == nullptr ? nlohmann::json(nullptr) : nlohmann::json(*length);
}

Status NullArgument(const char* names) {
  return Win32Error(ERROR_INVALID_PARAMETER, std::string(names) + ": a required pointer is NULL");
}

// A param this call does not know (PP_*, KP_*, HP_*, blob type).
Status UnknownParam(const char* kind, DWORD value) {
  return NteError(NTE_BAD_TYPE,
                  std::string(kind) + " " + std::to_string(value) + " is not supported here");
}

Status MoreData(DWORD given, size_t needed) {
  return Win32Error(ERROR_MORE_DATA, "buffer of " + std::to_string(given) + " bytes, " +
                                         std::to_string(needed) + " needed");
}

// CryptoAPI's output convention: out == NULL asks for the size (OK); a smaller *out_len is
// ERROR_MORE_DATA; both report the size needed in *out_len.
Status CopyOut(const void* value, size_t size, BYTE* out, DWORD* out_len) {
  if (out_len == nullptr) return NullArgument("pcbDataLen");
  const DWORD needed = static_cast<DWORD>(size);
  if (out == nullptr) {
    *out_len = needed;
    return Status::Ok();
  }
  if (*out_len < needed) {
    const DWORD given = *out_len;
    *out_len = needed;
    return MoreData(given, needed);
  }
  if (size > 0) std::memcpy(out, value, size);
  *out_len = needed;
  return Status::Ok();
}
Status CopyOutBytes(ByteView value, BYTE* out, DWORD* out_len) {
  return CopyOut(value.data(), value.size(), out, out_len);
}
Status CopyOutDword(DWORD value, BYTE* out, DWORD* out_len) {
  return CopyOut(&value, sizeof(value), out, out_len);
}
// ANSI string with its terminating NUL (the size counts it).
Status CopyOutString(const std::string& value, BYTE* out, DWORD* out_len) {
  return CopyOut(value.c_str(), value.size() + 1, out, out_len);
}

Status UnknownContext(HCRYPTPROV handle) {
  return NteError(NTE_BAD_UID, "context handle " + std::to_string(handle) + " is not acquired");
}
Result<std::shared_ptr<Provider>> RequireProvider(HCRYPTPROV handle) {
  auto context = Providers().Find(handle);
  if (context != nullptr) return context;
  return UnknownContext(handle);
}
Result<std::shared_ptr<Key>> RequireKey(HCRYPTPROV owner, HCRYPTKEY handle) {
  auto key = Keys().Find(handle);
  if (key != nullptr && key->owner == owner) return key;
  return NteError(NTE_BAD_KEY, "key handle " + std::to_string(handle) +
                                   " does not belong to context " + std::to_string(owner));
}
Result<std::shared_ptr<Hash>> RequireHash(HCRYPTPROV owner, HCRYPTHASH handle) {
  auto hash = Hashes().Find(handle);
  if (hash != nullptr && hash->owner == owner) return hash;
  return NteError(NTE_BAD_HASH, "hash handle " + std::to_string(handle) +
                                    " does not belong to context " + std::to_string(owner));
}

// The container's signature key, the only key here; NTE_NO_KEY for any other key spec and in a
// verify context.
Status RequireSignatureKey(const Provider& context, DWORD key_spec) {
  if (key_spec != AT_SIGNATURE) {
    return NteError(NTE_NO_KEY, "key spec " + std::to_string(key_spec) +
                                    ": Signum keys are signing keys (AT_SIGNATURE)");
  }
  if (context.certificate == nullptr) {
    return NteError(NTE_NO_KEY, "a CRYPT_VERIFYCONTEXT context has no key");
  }
  return Status::Ok();
}

void CopyName(const std::string& name, CHAR* out, size_t capacity, DWORD* out_len) {
  const size_t n = std::min(name.size(), capacity - 1);
  std::memcpy(out, name.data(), n);
  out[n] = '\0';
  *out_len = static_cast<DWORD>(n + 1);
}

// --- CPAcquireContext / CPReleaseContext ---

// Once used, the DLL stays loaded until the process exits. advapi32 unloads a CSP when its last
// context is released; every reload would create another SharedProviderContext (never destroyed,
// provider_runtime.h: its idle agent connections would leak) and fetch the certificate list again.
void PinThisModule() {
  static std::once_flag once;
  std::call_once(once, [] {
    HMODULE self = nullptr;
    if (!GetModuleHandleExW(GET_MODULE_HANDLE_EX_FLAG_FROM_ADDRESS | GET_MODULE_HANDLE_EX_FLAG_PIN,
                            reinterpret_cast<LPCWSTR>(&PinThisModule), &self)) {
      Trace("csp", "cannot pin signumcsp.dll: error " + std::to_string(GetLastError()));
    }
  });
}

Status AcquireContext(HCRYPTPROV* out, LPCSTR container_argument, DWORD flags,
                      PVTableProvStruc vtable) {
  if (out == nullptr) return NullArgument("phProv");
  constexpr DWORD kKnownFlags = CRYPT_VERIFYCONTEXT | CRYPT_NEWKEYSET | CRYPT_DELETEKEYSET |
                                CRYPT_MACHINE_KEYSET | CRYPT_SILENT |
                                CRYPT_DEFAULT_CONTAINER_OPTIONAL;
  SIGNUM_RETURN_IF_ERROR(CheckKnownFlags(flags, kKnownFlags));
  const bool verify_context = (flags & CRYPT_VERIFYCONTEXT) == CRYPT_VERIFYCONTEXT;
  const bool create = (flags & CRYPT_NEWKEYSET) != 0;
  const bool remove = (flags & CRYPT_DELETEKEYSET) != 0;
  if (((flags & CRYPT_VERIFYCONTEXT) != 0 && !verify_context) ||
      (verify_context && (create || remove)) || (create && remove)) {
    return NteError(NTE_BAD_FLAGS, "dwFlags " + Hex(flags) +
                                       " combines CRYPT_VERIFYCONTEXT, CRYPT_NEWKEYSET and "
                                       "CRYPT_DELETEKEYSET in a way that means nothing");
  }
  DWORD provider_type = PROV_RSA_FULL;  // a version-1 table does not say
  if (vtable != nullptr && vtable->Version >= 2) provider_type = vtable->dwProvType;
  if (!IsSupportedProviderType(provider_type)) {
    return NteError(NTE_PROV_TYPE_NO_MATCH, "provider type " + std::to_string(provider_type) +
                                                ": PROV_RSA_FULL and PROV_RSA_AES only");
  }

  auto context = std::make_shared<Provider>();
  context->provider_type = provider_type;
  // The name advapi32 matched against the registry (or a direct caller chose); older tables
  // do not carry it, then the name registered for the type.
  context->provider_name =
      vtable != nullptr && vtable->Version >= 3 && vtable->pszProvName != nullptr
          ? std::string(vtable->pszProvName)
          : RegisteredNameForType(provider_type);
  context->verify_context = verify_context;
  if (!verify_context) {
    const std::string container =
        ContainerNameWithoutPin(container_argument != nullptr ? container_argument : "");
    const std::string operation = "container '" + container + "'";
    auto certificate = ResolveContainer(container);
    if (create) {
      if (certificate.ok()) {
        return NteError(NTE_EXISTS, operation + ": CRYPT_NEWKEYSET for an existing container");
      }
      if (certificate.status().code() == ErrorCode::kNotFound) {
        return NteError(NTE_PERM,
                        operation + ": CRYPT_NEWKEYSET: keys are created on the Signum server");
      }
      return certificate.status().WithContext(operation);
    }
    if (!certificate.ok()) return certificate.status().WithContext(operation);
    if (remove) {
      return NteError(NTE_PERM,
                      operation + ": CRYPT_DELETEKEYSET: keys are deleted on the Signum server");
    }
    context->certificate = *certificate;
  }
  PinThisModule();
  *out = Providers().Add(std::move(context));
  return Status::Ok();
}

Status ReleaseContext(HCRYPTPROV handle, DWORD flags) {
  if (Providers().Remove(handle) == nullptr) return UnknownContext(handle);
  Keys().RemoveIf([handle](const Key& key) { return key.owner == handle; });
  Hashes().RemoveIf([handle](const Hash& hash) { return hash.owner == handle; });
  // Released regardless (advapi32 frees its side whatever we say), as Microsoft's CSPs do.
  return CheckKnownFlags(flags, 0);
}

// --- Provider parameters ---

Status EnumerateContainers(Provider& context, bool first, BYTE* out, DWORD* out_len) {
  std::lock_guard lock(context.mu);
  if (first || context.container_snapshot.empty()) {
    SIGNUM_ASSIGN_OR_RETURN(context.container_snapshot, ContainerNames());
    context.next_container = first ? 0 : context.next_container;
  }
  if (context.next_container >= context.container_snapshot.size()) {
    return Win32Error(
        ERROR_NO_MORE_ITEMS,
        "all " + std::to_string(context.container_snapshot.size()) + " containers listed");
  }
  // Size queries and ERROR_MORE_DATA report the longest name, so one buffer serves the loop.
  size_t longest = 0;
  for (const auto& name : context.container_snapshot) longest = std::max(longest, name.size());
  const std::string& name = context.container_snapshot[context.next_container];
  if (out_len == nullptr) return NullArgument("pcbDataLen");
  if (out == nullptr || *out_len < name.size() + 1) {
    const bool size_query = out == nullptr;
    const DWORD given = *out_len;
    *out_len = static_cast<DWORD>(longest + 1);
    return size_query ? Status::Ok() : MoreData(given, longest + 1);
  }
  SIGNUM_RETURN_IF_ERROR(CopyOutString(name, out, out_len));
  ++context.next_container;
  return Status::Ok();
}

Status EnumerateAlgorithms(Provider& context, bool first, bool extended, BYTE* out,
                           DWORD* out_len) {
  std::lock_guard lock(context.mu);
  size_t& next = extended ? context.next_algorithm_ex : context.next_algorithm;
  if (first) next = 0;
  const auto& algorithms = CspAlgorithms();
  if (next >= algorithms.size()) {
    return Win32Error(ERROR_NO_MORE_ITEMS,
                      "all " + std::to_string(algorithms.size()) + " algorithms listed");
  }
  const CspAlgorithm& algorithm = algorithms[next];
  if (extended) {
    PROV_ENUMALGS_EX entry{};
    entry.aiAlgid = algorithm.alg_id;
    entry.dwDefaultLen = algorithm.default_bits;
    entry.dwMinLen = algorithm.min_bits;
    entry.dwMaxLen = algorithm.max_bits;
    entry.dwProtocols = 0;
    CopyName(algorithm.name, entry.szName, sizeof(entry.szName), &entry.dwNameLen);
    CopyName(algorithm.long_name, entry.szLongName, sizeof(entry.szLongName), &entry.dwLongNameLen);
    SIGNUM_RETURN_IF_ERROR(CopyOut(&entry, sizeof(entry), out, out_len));
  } else {
    PROV_ENUMALGS entry{};
    entry.aiAlgid = algorithm.alg_id;
    entry.dwBitLen = algorithm.default_bits;
    CopyName(algorithm.name, entry.szName, sizeof(entry.szName), &entry.dwNameLen);
    SIGNUM_RETURN_IF_ERROR(CopyOut(&entry, sizeof(entry), out, out_len));
  }
  if (out != nullptr) ++next;
  return Status::Ok();
}

Status GetProvParam(HCRYPTPROV handle, DWORD param, BYTE* out, DWORD* out_len, DWORD flags) {
  SIGNUM_ASSIGN_OR_RETURN(auto context, RequireProvider(handle));
  if (out_len == nullptr) return NullArgument("pcbDataLen");
  SIGNUM_RETURN_IF_ERROR(CheckKnownFlags(flags, CRYPT_FIRST));
  const bool first = (flags & CRYPT_FIRST) != 0;
  switch (param) {
    case PP_NAME:
      return CopyOutString(context->provider_name, out, out_len);
    case PP_VERSION:
      return CopyOutDword(kCspVersion, out, out_len);
    case PP_IMPTYPE:
      // Keys in an HSM behind the server, hashing in software here.
      return CopyOutDword(CRYPT_IMPL_MIXED, out, out_len);
    case PP_PROVTYPE:
      return CopyOutDword(context->provider_type, out, out_len);
    case PP_CONTAINER:
    case PP_UNIQUE_CONTAINER:
      // The canonical name (the certificate id), whichever name the caller used.
      if (context->certificate == nullptr) {
        return NteError(NTE_BAD_KEYSET, "a CRYPT_VERIFYCONTEXT context has no container");
      }
      return CopyOutString(context->certificate->id, out, out_len);
    case PP_KEYSPEC:
      return CopyOutDword(AT_SIGNATURE, out, out_len);
    case PP_SIG_KEYSIZE_INC:
      return CopyOutDword(kRsaKeySizeIncrement, out, out_len);
    case PP_KEYX_KEYSIZE_INC:
      return CopyOutDword(0, out, out_len);  // no key-exchange keys
    case PP_ENUMCONTAINERS:
      return EnumerateContainers(*context, first, out, out_len);
    case PP_ENUMALGS:
      return EnumerateAlgorithms(*context, first, /*extended=*/false, out, out_len);
    case PP_ENUMALGS_EX:
      return EnumerateAlgorithms(*context, first, /*extended=*/true, out, out_len);
    default:
      return UnknownParam("dwParam", param);
  }
}

Status SetProvParam(HCRYPTPROV handle, DWORD param, const BYTE* data, DWORD flags) {
  SIGNUM_RETURN_IF_ERROR(RequireProvider(handle).status());
  SIGNUM_RETURN_IF_ERROR(CheckKnownFlags(flags, 0));
  switch (param) {
    case PP_CLIENT_HWND:  // the CSP never shows UI
      return Status::Ok();
    case PP_KEYEXCHANGE_PIN:
    case PP_SIGNATURE_PIN:
      // Accepted and ignored like the "[{{PIN}}]=" container prefix: the agent authenticates.
      if (data == nullptr) return NullArgument("pbData");
      return Status::Ok();
    default:
      return UnknownParam("dwParam", param);
  }
}

// --- Keys ---

Status GetUserKey(HCRYPTPROV handle, DWORD key_spec, HCRYPTKEY* out) {
  SIGNUM_ASSIGN_OR_RETURN(auto context, RequireProvider(handle));
  if (out == nullptr) return NullArgument("phUserKey");
  SIGNUM_RETURN_IF_ERROR(RequireSignatureKey(*context, key_spec));
  auto key = std::make_shared<Key>();
  key->owner = handle;
  key->certificate = context->certificate;
  *out = Keys().Add(std::move(key));
  return Status::Ok();
}

Status GetKeyParam(HCRYPTPROV handle, HCRYPTKEY key_handle, DWORD param, BYTE* out, DWORD* out_len,
                   DWORD flags) {
  SIGNUM_RETURN_IF_ERROR(RequireProvider(handle).status());
  SIGNUM_ASSIGN_OR_RETURN(auto key, RequireKey(handle, key_handle));
  if (out_len == nullptr) return NullArgument("pcbDataLen");
  SIGNUM_RETURN_IF_ERROR(CheckKnownFlags(flags, 0));
  const provider::ProviderCertificate& certificate = *key->certificate;
  switch (param) {
    case KP_ALGID:
      return CopyOutDword(CALG_RSA_SIGN, out, out_len);
    case KP_KEYLEN:
    case KP_BLOCKLEN:  // RSA: the modulus size in bits, as Microsoft's CSPs answer
      return CopyOutDword(static_cast<DWORD>(certificate.key_spec.rsa_bits), out, out_len);
    case KP_PERMISSIONS:
      return CopyOutDword(CRYPT_READ, out, out_len);  // not exportable, not writable
    case KP_CERTIFICATE:
      return CopyOutBytes(certificate.certificate.Der(), out, out_len);
    default:
      return UnknownParam("dwParam", param);
  }
}

Status ExportKey(HCRYPTPROV handle, HCRYPTKEY key_handle, DWORD blob_type, DWORD flags, BYTE* out,
                 DWORD* out_len) {
  SIGNUM_RETURN_IF_ERROR(RequireProvider(handle).status());
  SIGNUM_ASSIGN_OR_RETURN(auto key, RequireKey(handle, key_handle));
  if (out_len == nullptr) return NullArgument("pcbDataLen");
  SIGNUM_RETURN_IF_ERROR(CheckKnownFlags(flags, 0));
  switch (blob_type) {
    case PUBLICKEYBLOB: {
      SIGNUM_ASSIGN_OR_RETURN(Bytes blob, RsaPublicKeyBlob(*key->certificate));
      return CopyOutBytes(blob, out, out_len);
    }
    case PRIVATEKEYBLOB:
    case PLAINTEXTKEYBLOB:
      return NteError(NTE_BAD_KEY_STATE, "the private key never leaves the HSM");
    default:
      return UnknownParam("dwBlobType", blob_type);
  }
}

// --- Hashes ---

Status CreateHash(HCRYPTPROV handle, ALG_ID alg_id, HCRYPTKEY key_handle, DWORD flags,
                  HCRYPTHASH* out) {
  SIGNUM_RETURN_IF_ERROR(RequireProvider(handle).status());
  if (out == nullptr) return NullArgument("phHash");
  SIGNUM_RETURN_IF_ERROR(CheckKnownFlags(flags, 0));
  if (key_handle != 0) return NteError(NTE_BAD_KEY, "no keyed hashes (HMAC, MAC)");
  const std::optional<HashAlgorithm> algorithm = HashForCapiAlgId(alg_id);
  const std::string unsupported = "ALG_ID " + Hex(alg_id) + " is not a supported hash";
  if (!algorithm) return NteError(NTE_BAD_ALGID, unsupported);
  auto digest = provider::DigestContext::Create(*algorithm);
  if (!digest.ok()) {
    if (digest.status().code() == ErrorCode::kUnimplemented) {
      return NteError(NTE_BAD_ALGID, unsupported + ": " + digest.status().message());
    }
    return digest.status();
  }
  auto hash = std::make_shared<Hash>();
  hash->owner = handle;
  hash->algorithm = *algorithm;
  hash->running.emplace(std::move(digest).value());
  *out = Hashes().Add(std::move(hash));
  return Status::Ok();
}

Status HashData(HCRYPTPROV handle, HCRYPTHASH hash_handle, const BYTE* data, DWORD size,
                DWORD flags) {
  SIGNUM_RETURN_IF_ERROR(RequireProvider(handle).status());
  SIGNUM_ASSIGN_OR_RETURN(auto hash, RequireHash(handle, hash_handle));
  SIGNUM_RETURN_IF_ERROR(CheckKnownFlags(flags, 0));  // CRYPT_USERDATA: no such input device
  if (data == nullptr && size != 0) return NullArgument("pbData");
  std::lock_guard lock(hash->mu);
  if (hash->value || !hash->running) {
    return NteError(NTE_BAD_HASH_STATE, "the hash value was already read or set");
  }
  SIGNUM_RETURN_IF_ERROR(hash->running->Update(ByteView(data, size)));
  hash->data_hashed = true;
  return Status::Ok();
}

Status SetHashParam(HCRYPTPROV handle, HCRYPTHASH hash_handle, DWORD param, const BYTE* data,
                    DWORD flags) {
  SIGNUM_RETURN_IF_ERROR(RequireProvider(handle).status());
  SIGNUM_ASSIGN_OR_RETURN(auto hash, RequireHash(handle, hash_handle));
  SIGNUM_RETURN_IF_ERROR(CheckKnownFlags(flags, 0));
  if (param != HP_HASHVAL) return UnknownParam("dwParam", param);
  if (data == nullptr) return NullArgument("pbData");
  // A precomputed digest of the hash's own length (the caller hashed elsewhere).
  const size_t size = GetHashInfo(hash->algorithm).digest_size;
  std::lock_guard lock(hash->mu);
  hash->value = Bytes(data, data + size);
  hash->running.reset();
  return Status::Ok();
}

Status GetHashParam(HCRYPTPROV handle, HCRYPTHASH hash_handle, DWORD param, BYTE* out,
                    DWORD* out_len, DWORD flags) {
  SIGNUM_RETURN_IF_ERROR(RequireProvider(handle).status());
  SIGNUM_ASSIGN_OR_RETURN(auto hash, RequireHash(handle, hash_handle));
  if (out_len == nullptr) return NullArgument("pcbDataLen");
  SIGNUM_RETURN_IF_ERROR(CheckKnownFlags(flags, 0));
  const HashInfo& info = GetHashInfo(hash->algorithm);
  switch (param) {
    case HP_ALGID:
      return CopyOutDword(info.capi_alg_id, out, out_len);
    case HP_HASHSIZE:
      return CopyOutDword(static_cast<DWORD>(info.digest_size), out, out_len);
    case HP_HASHVAL: {
      // A size query leaves the hash open; reading the value finishes it.
      const DWORD size = static_cast<DWORD>(info.digest_size);
      if (out == nullptr || *out_len < size) {
        const bool size_query = out == nullptr;
        const DWORD given = *out_len;
        *out_len = size;
        return size_query ? Status::Ok() : MoreData(given, size);
      }
      std::lock_guard lock(hash->mu);
      SIGNUM_ASSIGN_OR_RETURN(Bytes value, hash->ValueLocked());
      return CopyOutBytes(value, out, out_len);
    }
    default:
      return UnknownParam("dwParam", param);
  }
}

// CPDuplicateHash's and CPDuplicateKey's arguments besides the handles.
Status CheckDuplicateArguments(const DWORD* reserved, const void* out, const char* out_name,
                               DWORD flags) {
  if (reserved != nullptr) return Win32Error(ERROR_INVALID_PARAMETER, "pdwReserved is not NULL");
  if (out == nullptr) return NullArgument(out_name);
  return CheckKnownFlags(flags, 0);
}

Status DuplicateHash(HCRYPTPROV handle, HCRYPTHASH hash_handle, DWORD* reserved, DWORD flags,
                     HCRYPTHASH* out) {
  SIGNUM_RETURN_IF_ERROR(RequireProvider(handle).status());
  SIGNUM_ASSIGN_OR_RETURN(auto hash, RequireHash(handle, hash_handle));
  SIGNUM_RETURN_IF_ERROR(CheckDuplicateArguments(reserved, out, "phHash", flags));
  auto copy = std::make_shared<Hash>();
  copy->owner = handle;
  copy->algorithm = hash->algorithm;
  {
    std::lock_guard lock(hash->mu);
    if (hash->value) {
      copy->value = hash->value;
    } else if (hash->running) {
      // Mid-stream too: both hashes continue from the data hashed so far.
      SIGNUM_ASSIGN_OR_RETURN(auto digest, hash->running->Clone());
      copy->running.emplace(std::move(digest));
    } else {
      SIGNUM_ASSIGN_OR_RETURN(auto digest, provider::DigestContext::Create(hash->algorithm));
      copy->running.emplace(std::move(digest));
    }
    copy->data_hashed = hash->data_hashed;
  }
  *out = Hashes().Add(std::move(copy));
  return Status::Ok();
}

// --- Signatures ---

Status SignHash(HCRYPTPROV handle, HCRYPTHASH hash_handle, DWORD key_spec, DWORD flags,
                BYTE* signature, DWORD* signature_len) {
  SIGNUM_ASSIGN_OR_RETURN(auto context, RequireProvider(handle));
  SIGNUM_ASSIGN_OR_RETURN(auto hash, RequireHash(handle, hash_handle));
  SIGNUM_RETURN_IF_ERROR(RequireSignatureKey(*context, key_spec));
  // CRYPT_NOHASHOID / CRYPT_X931_FORMAT among them: the server always signs a DigestInfo.
  SIGNUM_RETURN_IF_ERROR(CheckKnownFlags(flags, 0));
  if (signature_len == nullptr) return NullArgument("pcbSigLen");
  const provider::ProviderCertificate& certificate = *context->certificate;
  const size_t size = certificate.key_spec.SignatureSize();
  if (signature == nullptr || *signature_len < size) {
    const bool size_query = signature == nullptr;
    const DWORD given = *signature_len;
    *signature_len = static_cast<DWORD>(size);
    return size_query ? Status::Ok() : MoreData(given, size);
  }

  provider::DigestToSign request;
  request.scheme = SignatureScheme::kRsaPkcs1;
  request.hash = hash->algorithm;
  {
    std::lock_guard lock(hash->mu);
    SIGNUM_ASSIGN_OR_RETURN(request.digest, hash->ValueLocked());
  }
  auto signed_digest =
      SharedProviderContext(kCspClientName).signer().SignDigest(certificate, request);
  if (!signed_digest.ok()) return signed_digest.status().WithContext(certificate.label);
  // The agent returns PKCS#1 octets (big-endian); CryptoAPI hands out little-endian.
  std::reverse_copy(signed_digest->begin(), signed_digest->end(), signature);
  *signature_len = static_cast<DWORD>(signed_digest->size());
  return Status::Ok();
}

Status VerifySignature(HCRYPTPROV handle, HCRYPTHASH hash_handle, const BYTE* signature,
                       DWORD signature_len, HCRYPTKEY key_handle, DWORD flags) {
  SIGNUM_RETURN_IF_ERROR(RequireProvider(handle).status());
  SIGNUM_ASSIGN_OR_RETURN(auto hash, RequireHash(handle, hash_handle));
  SIGNUM_ASSIGN_OR_RETURN(auto key, RequireKey(handle, key_handle));
  SIGNUM_RETURN_IF_ERROR(CheckKnownFlags(flags, 0));
  if (signature == nullptr && signature_len != 0) return NullArgument("pbSignature");
  const size_t expected_len = key->certificate->key_spec.SignatureSize();
  if (signature_len != expected_len) {
    return NteError(NTE_BAD_SIGNATURE, "signature of " + std::to_string(signature_len) +
                                           " bytes, the key's are " + std::to_string(expected_len));
  }
  Bytes digest;
  {
    std::lock_guard lock(hash->mu);
    SIGNUM_ASSIGN_OR_RETURN(digest, hash->ValueLocked());
  }
  Bytes big_endian(signature, signature + signature_len);
  std::reverse(big_endian.begin(), big_endian.end());
  Status verified = VerifyRsaPkcs1(*key->certificate, hash->algorithm, digest, big_endian);
  if (verified.code() == ErrorCode::kInvalidArgument) {
    return NteError(NTE_BAD_SIGNATURE, verified.message());
  }
  return verified;
}

// No session keys to hash: the only keys here sign.
Status HashSessionKey(HCRYPTPROV handle, HCRYPTHASH hash_handle) {
  SIGNUM_RETURN_IF_ERROR(RequireProvider(handle).status());
  SIGNUM_RETURN_IF_ERROR(RequireHash(handle, hash_handle).status());
  return NteError(NTE_BAD_KEY, "the only keys here are signature keys, not session keys");
}

// After the handles are checked.
Status NoSessionKeys(HCRYPTKEY* out, const char* why) {
  if (out == nullptr) return NullArgument("phKey");
  return NteError(NTE_BAD_ALGID, why);
}

Status SignatureKeyCannotCipher(HCRYPTPROV handle, HCRYPTKEY key_handle) {
  SIGNUM_RETURN_IF_ERROR(RequireProvider(handle).status());
  SIGNUM_RETURN_IF_ERROR(RequireKey(handle, key_handle).status());
  return NteError(NTE_BAD_ALGID, "a CALG_RSA_SIGN key neither encrypts nor decrypts");
}

// --- What a remote signing key cannot do, and handle bookkeeping ---

Status GenKey(HCRYPTPROV handle, HCRYPTKEY* out) {
  SIGNUM_RETURN_IF_ERROR(RequireProvider(handle).status());
  return NoSessionKeys(out, "keys are generated on the Signum server, never here");
}

Status DeriveKey(HCRYPTPROV handle, HCRYPTHASH base_data, HCRYPTKEY* out) {
  SIGNUM_RETURN_IF_ERROR(RequireProvider(handle).status());
  SIGNUM_RETURN_IF_ERROR(RequireHash(handle, base_data).status());
  return NoSessionKeys(out, "no session keys");
}

Status DestroyKey(HCRYPTPROV handle, HCRYPTKEY key_handle) {
  SIGNUM_RETURN_IF_ERROR(RequireProvider(handle).status());
  SIGNUM_RETURN_IF_ERROR(RequireKey(handle, key_handle).status());
  Keys().Remove(key_handle);
  return Status::Ok();
}

Status SetKeyParam(HCRYPTPROV handle, HCRYPTKEY key_handle, DWORD param) {
  SIGNUM_RETURN_IF_ERROR(RequireProvider(handle).status());
  SIGNUM_RETURN_IF_ERROR(RequireKey(handle, key_handle).status());
  // Nothing about a server key is settable here (KP_CERTIFICATE comes from the server).
  return UnknownParam("dwParam", param);
}

Status ImportKey(HCRYPTPROV handle, HCRYPTKEY* out) {
  SIGNUM_RETURN_IF_ERROR(RequireProvider(handle).status());
  if (out == nullptr) return NullArgument("phKey");
  return NteError(NTE_BAD_TYPE, "no key blob type is importable");
}

Status DuplicateKey(HCRYPTPROV handle, HCRYPTKEY key_handle, DWORD* reserved, DWORD flags,
                    HCRYPTKEY* out) {
  SIGNUM_RETURN_IF_ERROR(RequireProvider(handle).status());
  SIGNUM_ASSIGN_OR_RETURN(auto key, RequireKey(handle, key_handle));
  SIGNUM_RETURN_IF_ERROR(CheckDuplicateArguments(reserved, out, "phKey", flags));
  *out = Keys().Add(std::make_shared<Key>(*key));
  return Status::Ok();
}

Status DestroyHash(HCRYPTPROV handle, HCRYPTHASH hash_handle) {
  SIGNUM_RETURN_IF_ERROR(RequireProvider(handle).status());
  SIGNUM_RETURN_IF_ERROR(RequireHash(handle, hash_handle).status());
  Hashes().Remove(hash_handle);
  return Status::Ok();
}

Status GenRandom(HCRYPTPROV handle, DWORD size, BYTE* buffer) {
  SIGNUM_RETURN_IF_ERROR(RequireProvider(handle).status());
  if (buffer == nullptr && size != 0) return NullArgument("pbBuffer");
  if (size == 0) return Status::Ok();
  const NTSTATUS generated =
      BCryptGenRandom(nullptr, buffer, size, BCRYPT_USE_SYSTEM_PREFERRED_RNG);
  if (generated < 0) {
    return NteError(NTE_FAIL,
                    "BCryptGenRandom: NTSTATUS " + Hex(static_cast<unsigned long>(generated)));
  }
  return Status::Ok();
}

}  // namespace
}  // namespace signum::cng::csp

using namespace signum::cng::csp;  // NOLINT: the C entry points below only forward
using namespace signum::cng;       // NOLINT: and describe their calls (call_record.h)

extern "C" {

// Each export records its call (call_record.h): arguments by their csp_iface.h names, handles as
// numbers, secrets (PINs) as their length; the PIN prefix of a container name is cut off.

BOOL WINAPI CPAcquireContext(HCRYPTPROV* phProv, LPCSTR szContainer, DWORD dwFlags,
                             signum::cng::PVTableProvStruc pVTable) {
  CspCall call("CPAcquireContext");
  if (call.active()) {
    auto& args = call.args();
    if (szContainer == nullptr) {
      args["szContainer"] = nullptr;
    } else {
      const std::string container = ContainerNameWithoutPin(szContainer);
      args["szContainer"] = container;
      // "[{{PIN}}]=" around the PIN: 7 characters.
      const size_t prefix = std::strlen(szContainer) - container.size();
      if (prefix > 0) args["container_pin"] = RedactedValue(prefix - 7);
    }
    args["dwFlags"] = dwFlags;
    if (pVTable == nullptr) {
      args["pVTable"] = nullptr;
    } else {
      args["pVTable"] = {{"Version", pVTable->Version}};
      if (pVTable->Version >= 2) args["pVTable"]["dwProvType"] = pVTable->dwProvType;
      if (pVTable->Version >= 3) args["pVTable"]["pszProvName"] = TextValue(pVTable->pszProvName);
    }
  }
  return AtBoundary(call, HandleOutput("phProv", phProv),
                    [&] { return AcquireContext(phProv, szContainer, dwFlags, pVTable); });
}

BOOL WINAPI CPReleaseContext(HCRYPTPROV hProv, DWORD dwFlags) {
  return AtBoundary(
      "CPReleaseContext",
      [&](nlohmann::json& args) {
        args = {{"hProv", hProv}, {"dwFlags", dwFlags}};
      },
      [&] { return ReleaseContext(hProv, dwFlags); });
}

BOOL WINAPI CPGetProvParam(HCRYPTPROV hProv, DWORD dwParam, BYTE* pbData, DWORD* pcbDataLen,
                           DWORD dwFlags) {
  CspCall call("CPGetProvParam");
  if (call.active()) {
    call.args() = {{"hProv", hProv},
                   {"dwParam", dwParam},
                   {"pbData", BufferValue(pbData)},
                   {"pcbDataLen", LengthIn(pcbDataLen)},
                   {"dwFlags", dwFlags}};
  }
  return AtBoundary(call, SizedOutput("pbData", pbData, "pcbDataLen", pcbDataLen),
                    [&] { return GetProvParam(hProv, dwParam, pbData, pcbDataLen, dwFlags); });
}

BOOL WINAPI CPSetProvParam(HCRYPTPROV hProv, DWORD dwParam, const BYTE* pbData, DWORD dwFlags) {
  return AtBoundary(
      "CPSetProvParam",
      [&](nlohmann::json& args) {
        args = {{"hProv", hProv}, {"dwParam", dwParam}, {"dwFlags", dwFlags}};
        // The PINs are NUL-terminated strings; anything else (PP_CLIENT_HWND) is an address.
        const bool pin = dwParam == PP_KEYEXCHANGE_PIN || dwParam == PP_SIGNATURE_PIN;
        args["pbData"] = pin && pbData != nullptr
                             ? RedactedValue(std::strlen(reinterpret_cast<const char*>(pbData)))
                             : nlohmann::json{{"null", pbData == nullptr}};
      },
      [&] { return SetProvParam(hProv, dwParam, pbData, dwFlags); });
}

BOOL WINAPI CPGenKey(HCRYPTPROV hProv, ALG_ID Algid, DWORD dwFlags, HCRYPTKEY* phKey) {
  return AtBoundary(
      "CPGenKey",
      [&](nlohmann::json& args) {
        args = {{"hProv", hProv}, {"Algid", Algid}, {"dwFlags", dwFlags}};
      },
      [&] { return GenKey(hProv, phKey); });
}

BOOL WINAPI CPDeriveKey(HCRYPTPROV hProv, ALG_ID Algid, HCRYPTHASH hBaseData, DWORD dwFlags,
                        HCRYPTKEY* phKey) {
  return AtBoundary(
      "CPDeriveKey",
      [&](nlohmann::json& args) {
        args = {{"hProv", hProv}, {"Algid", Algid}, {"hBaseData", hBaseData}, {"dwFlags", dwFlags}};
      },
      [&] { return DeriveKey(hProv, hBaseData, phKey); });
}

BOOL WINAPI CPDestroyKey(HCRYPTPROV hProv, HCRYPTKEY hKey) {
  return AtBoundary(
      "CPDestroyKey",
      [&](nlohmann::json& args) {
        args = {{"hProv", hProv}, {"hKey", hKey}};
      },
      [&] { return DestroyKey(hProv, hKey); });
}

BOOL WINAPI CPSetKeyParam(HCRYPTPROV hProv, HCRYPTKEY hKey, DWORD dwParam, const BYTE*,
                          DWORD dwFlags) {
  return AtBoundary(
      "CPSetKeyParam",
      [&](nlohmann::json& args) {
        args = {{"hProv", hProv}, {"hKey", hKey}, {"dwParam", dwParam}, {"dwFlags", dwFlags}};
      },
      [&] { return SetKeyParam(hProv, hKey, dwParam); });
}

BOOL WINAPI CPGetKeyParam(HCRYPTPROV hProv, HCRYPTKEY hKey, DWORD dwParam, BYTE* pbData,
                          DWORD* pcbDataLen, DWORD dwFlags) {
  CspCall call("CPGetKeyParam");
  if (call.active()) {
    call.args() = {{"hProv", hProv},
                   {"hKey", hKey},
                   {"dwParam", dwParam},
                   {"pbData", BufferValue(pbData)},
                   {"pcbDataLen", LengthIn(pcbDataLen)},
                   {"dwFlags", dwFlags}};
  }
  return AtBoundary(call, SizedOutput("pbData", pbData, "pcbDataLen", pcbDataLen),
                    [&] { return GetKeyParam(hProv, hKey, dwParam, pbData, pcbDataLen, dwFlags); });
}

BOOL WINAPI CPExportKey(HCRYPTPROV hProv, HCRYPTKEY hKey, HCRYPTKEY hPubKey, DWORD dwBlobType,
                        DWORD dwFlags, BYTE* pbData, DWORD* pcbDataLen) {
  CspCall call("CPExportKey");
  if (call.active()) {
    call.args() = {{"hProv", hProv},
                   {"hKey", hKey},
                   {"hPubKey", hPubKey},
                   {"dwBlobType", dwBlobType},
                   {"dwFlags", dwFlags},
                   {"pbData", BufferValue(pbData)},
                   {"pcbDataLen", LengthIn(pcbDataLen)}};
  }
  return AtBoundary(call, SizedOutput("pbData", pbData, "pcbDataLen", pcbDataLen), [&] {
    return ExportKey(hProv, hKey, dwBlobType, dwFlags, pbData, pcbDataLen);
  });
}

BOOL WINAPI CPImportKey(HCRYPTPROV hProv, const BYTE*, DWORD dwDataLen, HCRYPTKEY hPubKey,
                        DWORD dwFlags, HCRYPTKEY* phKey) {
  // The blob itself is not recorded: it may be a private key.
  return AtBoundary(
      "CPImportKey",
      [&](nlohmann::json& args) {
        args = {{"hProv", hProv},
                {"pbData", RedactedValue(dwDataLen)},
                {"dwDataLen", dwDataLen},
                {"hPubKey", hPubKey},
                {"dwFlags", dwFlags}};
      },
      [&] { return ImportKey(hProv, phKey); });
}

BOOL WINAPI CPEncrypt(HCRYPTPROV hProv, HCRYPTKEY hKey, HCRYPTHASH, BOOL, DWORD, BYTE*, DWORD*,
                      DWORD) {
  return AtBoundary(
      "CPEncrypt",
      [&](nlohmann::json& args) {
        args = {{"hProv", hProv}, {"hKey", hKey}};
      },
      [&] { return SignatureKeyCannotCipher(hProv, hKey); });
}

BOOL WINAPI CPDecrypt(HCRYPTPROV hProv, HCRYPTKEY hKey, HCRYPTHASH, BOOL, DWORD, BYTE*, DWORD*) {
  return AtBoundary(
      "CPDecrypt",
      [&](nlohmann::json& args) {
        args = {{"hProv", hProv}, {"hKey", hKey}};
      },
      [&] { return SignatureKeyCannotCipher(hProv, hKey); });
}

BOOL WINAPI CPCreateHash(HCRYPTPROV hProv, ALG_ID Algid, HCRYPTKEY hKey, DWORD dwFlags,
                         HCRYPTHASH* phHash) {
  CspCall call("CPCreateHash");
  if (call.active()) {
    call.args() = {{"hProv", hProv}, {"Algid", Algid}, {"hKey", hKey}, {"dwFlags", dwFlags}};
  }
  return AtBoundary(call, HandleOutput("phHash", phHash),
                    [&] { return CreateHash(hProv, Algid, hKey, dwFlags, phHash); });
}

BOOL WINAPI CPHashData(HCRYPTPROV hProv, HCRYPTHASH hHash, const BYTE* pbData, DWORD cbDataLen,
                       DWORD dwFlags) {
  return AtBoundary(
      "CPHashData",
      [&](nlohmann::json& args) {
        args = {{"hProv", hProv},
                {"hHash", hHash},
                {"pbData", HexValue(pbData, cbDataLen)},
                {"cbDataLen", cbDataLen},
                {"dwFlags", dwFlags}};
      },
      [&] { return HashData(hProv, hHash, pbData, cbDataLen, dwFlags); });
}

BOOL WINAPI CPHashSessionKey(HCRYPTPROV hProv, HCRYPTHASH hHash, HCRYPTKEY hKey, DWORD dwFlags) {
  return AtBoundary(
      "CPHashSessionKey",
      [&](nlohmann::json& args) {
        args = {{"hProv", hProv}, {"hHash", hHash}, {"hKey", hKey}, {"dwFlags", dwFlags}};
      },
      [&] { return HashSessionKey(hProv, hHash); });
}

BOOL WINAPI CPSetHashParam(HCRYPTPROV hProv, HCRYPTHASH hHash, DWORD dwParam, const BYTE* pbData,
                           DWORD dwFlags) {
  return AtBoundary(
      "CPSetHashParam",
      [&](nlohmann::json& args) {
        args = {{"hProv", hProv}, {"hHash", hHash}, {"dwParam", dwParam}, {"dwFlags", dwFlags}};
        // HP_HASHVAL's value is as long as the hash's digest; CryptoAPI passes no length.
        const auto hash = Hashes().Find(hHash);
        args["pbData"] = dwParam == HP_HASHVAL && hash != nullptr
                             ? HexValue(pbData, GetHashInfo(hash->algorithm).digest_size)
                             : nlohmann::json{{"null", pbData == nullptr}};
      },
      [&] { return SetHashParam(hProv, hHash, dwParam, pbData, dwFlags); });
}

BOOL WINAPI CPGetHashParam(HCRYPTPROV hProv, HCRYPTHASH hHash, DWORD dwParam, BYTE* pbData,
                           DWORD* pcbDataLen, DWORD dwFlags) {
  CspCall call("CPGetHashParam");
  if (call.active()) {
    call.args() = {{"hProv", hProv},
                   {"hHash", hHash},
                   {"dwParam", dwParam},
                   {"pbData", BufferValue(pbData)},
                   {"pcbDataLen", LengthIn(pcbDataLen)},
                   {"dwFlags", dwFlags}};
  }
  return AtBoundary(call, SizedOutput("pbData", pbData, "pcbDataLen", pcbDataLen), [&] {
    return GetHashParam(hProv, hHash, dwParam, pbData, pcbDataLen, dwFlags);
  });
}

BOOL WINAPI CPSignHash(HCRYPTPROV hProv, HCRYPTHASH hHash, DWORD dwKeySpec, LPCWSTR szDescription,
                       DWORD dwFlags, BYTE* pbSignature, DWORD* pcbSigLen) {
  CspCall call("CPSignHash");
  if (call.active()) {
    call.args() = {{"hProv", hProv},
                   {"hHash", hHash},
                   {"dwKeySpec", dwKeySpec},
                   {"szDescription", TextValue(szDescription)},
                   {"dwFlags", dwFlags},
                   {"pbSignature", BufferValue(pbSignature)},
                   {"pcbSigLen", LengthIn(pcbSigLen)}};
  }
  return AtBoundary(call, SizedOutput("pbSignature", pbSignature, "pcbSigLen", pcbSigLen), [&] {
    return SignHash(hProv, hHash, dwKeySpec, dwFlags, pbSignature, pcbSigLen);
  });
}

BOOL WINAPI CPVerifySignature(HCRYPTPROV hProv, HCRYPTHASH hHash, const BYTE* pbSignature,
                              DWORD cbSigLen, HCRYPTKEY hPubKey, LPCWSTR szDescription,
                              DWORD dwFlags) {
  return AtBoundary(
      "CPVerifySignature",
      [&](nlohmann::json& args) {
        args = {{"hProv", hProv},
                {"hHash", hHash},
                {"pbSignature", HexValue(pbSignature, cbSigLen)},
                {"cbSigLen", cbSigLen},
                {"hPubKey", hPubKey},
                {"szDescription", TextValue(szDescription)},
                {"dwFlags", dwFlags}};
      },
      [&] { return VerifySignature(hProv, hHash, pbSignature, cbSigLen, hPubKey, dwFlags); });
}

BOOL WINAPI CPDestroyHash(HCRYPTPROV hProv, HCRYPTHASH hHash) {
  return AtBoundary(
      "CPDestroyHash",
      [&](nlohmann::json& args) {
        args = {{"hProv", hProv}, {"hHash", hHash}};
      },
      [&] { return DestroyHash(hProv, hHash); });
}

BOOL WINAPI CPGenRandom(HCRYPTPROV hProv, DWORD cbLen, BYTE* pbBuffer) {
  // The random bytes are not recorded: callers use them as secrets (session keys, nonces).
  return AtBoundary(
      "CPGenRandom",
      [&](nlohmann::json& args) {
        args = {{"hProv", hProv}, {"cbLen", cbLen}};
      },
      [&] { return GenRandom(hProv, cbLen, pbBuffer); });
}

BOOL WINAPI CPGetUserKey(HCRYPTPROV hProv, DWORD dwKeySpec, HCRYPTKEY* phUserKey) {
  CspCall call("CPGetUserKey");
  if (call.active()) call.args() = {{"hProv", hProv}, {"dwKeySpec", dwKeySpec}};
  return AtBoundary(call, HandleOutput("phUserKey", phUserKey),
                    [&] { return GetUserKey(hProv, dwKeySpec, phUserKey); });
}

BOOL WINAPI CPDuplicateHash(HCRYPTPROV hProv, HCRYPTHASH hHash, DWORD* pdwReserved, DWORD dwFlags,
                            HCRYPTHASH* phHash) {
  CspCall call("CPDuplicateHash");
  if (call.active()) call.args() = {{"hProv", hProv}, {"hHash", hHash}, {"dwFlags", dwFlags}};
  return AtBoundary(call, HandleOutput("phHash", phHash),
                    [&] { return DuplicateHash(hProv, hHash, pdwReserved, dwFlags, phHash); });
}

BOOL WINAPI CPDuplicateKey(HCRYPTPROV hProv, HCRYPTKEY hKey, DWORD* pdwReserved, DWORD dwFlags,
                           HCRYPTKEY* phKey) {
  CspCall call("CPDuplicateKey");
  if (call.active()) call.args() = {{"hProv", hProv}, {"hKey", hKey}, {"dwFlags", dwFlags}};
  return AtBoundary(call, HandleOutput("phKey", phKey),
                    [&] { return DuplicateKey(hProv, hKey, pdwReserved, dwFlags, phKey); });
}

}  // extern "C"

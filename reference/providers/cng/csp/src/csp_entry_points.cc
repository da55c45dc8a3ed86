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
#include "signum/cng/csp_iface.h"
// bcrypt.h needs windows.h's types first (csp_iface.h).
#include <bcrypt.h>

#include <algorithm>
#include <cstring>
#include <exception>
#include <mutex>
#include <new>
#include <string>

#include "csp_objects.h"
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

BOOL Fail(HRESULT code) {
  SetLastError(static_cast<DWORD>(code));
  return FALSE;
}
BOOL FailWin32(DWORD code) {
  SetLastError(code);
  return FALSE;
}
BOOL FailWith(const Status& status, const std::string& operation) {
  Trace("csp", operation + ": " + status.ToString());
  return Fail(ToSecurityStatus(status));
}

// No C++ exception may cross into the caller's C code.
template <typename Body>
BOOL Guarded(const char* operation, Body&& body) noexcept {
  try {
    return body();
  } catch (const std::bad_alloc&) {
    return Fail(NTE_NO_MEMORY);
  } catch (const std::exception& e) {
    Trace("csp", std::string(operation) + ": unexpected exception: " + e.what());
    return Fail(NTE_FAIL);
  } catch (...) {
    Trace("csp", std::string(operation) + ": unexpected exception");
    return Fail(NTE_FAIL);
  }
}

// CryptoAPI's output convention: out == NULL asks for the size (TRUE); a smaller *out_len is
// ERROR_MORE_DATA (FALSE); both report the size needed in *out_len.
BOOL CopyOut(const void* value, size_t size, BYTE* out, DWORD* out_len) {
  if (out_len == nullptr) return FailWin32(ERROR_INVALID_PARAMETER);
  const DWORD needed = static_cast<DWORD>(size);
  if (out == nullptr) {
    *out_len = needed;
    return TRUE;
  }
  if (*out_len < needed) {
    *out_len = needed;
    return FailWin32(ERROR_MORE_DATA);
  }
  if (size > 0) std::memcpy(out, value, size);
  *out_len = needed;
  return TRUE;
}
BOOL CopyOutBytes(ByteView value, BYTE* out, DWORD* out_len) {
  return CopyOut(value.data(), value.size(), out, out_len);
}
BOOL CopyOutDword(DWORD value, BYTE* out, DWORD* out_len) {
  return CopyOut(&value, sizeof(value), out, out_len);
}
// ANSI string with its terminating NUL (the size counts it).
BOOL CopyOutString(const std::string& value, BYTE* out, DWORD* out_len) {
  return CopyOut(value.c_str(), value.size() + 1, out, out_len);
}

std::shared_ptr<Key> FindKey(HCRYPTPROV owner, HCRYPTKEY handle) {
  auto key = Keys().Find(handle);
  return key != nullptr && key->owner == owner ? key : nullptr;
}
std::shared_ptr<Hash> FindHash(HCRYPTPROV owner, HCRYPTHASH handle) {
  auto hash = Hashes().Find(handle);
  return hash != nullptr && hash->owner == owner ? hash : nullptr;
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

BOOL AcquireContext(HCRYPTPROV* out, LPCSTR container_argument, DWORD flags,
                    PVTableProvStruc vtable) {
  if (out == nullptr) return FailWin32(ERROR_INVALID_PARAMETER);
  constexpr DWORD kKnownFlags = CRYPT_VERIFYCONTEXT | CRYPT_NEWKEYSET | CRYPT_DELETEKEYSET |
                                CRYPT_MACHINE_KEYSET | CRYPT_SILENT |
                                CRYPT_DEFAULT_CONTAINER_OPTIONAL;
  if ((flags & ~kKnownFlags) != 0) return Fail(NTE_BAD_FLAGS);
  const bool verify_context = (flags & CRYPT_VERIFYCONTEXT) == CRYPT_VERIFYCONTEXT;
  const bool create = (flags & CRYPT_NEWKEYSET) != 0;
  const bool remove = (flags & CRYPT_DELETEKEYSET) != 0;
  if (((flags & CRYPT_VERIFYCONTEXT) != 0 && !verify_context) ||
      (verify_context && (create || remove)) || (create && remove)) {
    return Fail(NTE_BAD_FLAGS);
  }
  DWORD provider_type = PROV_RSA_FULL;  // a version-1 table does not say
  if (vtable != nullptr && vtable->Version >= 2) provider_type = vtable->dwProvType;
  if (!IsSupportedProviderType(provider_type)) return Fail(NTE_PROV_TYPE_NO_MATCH);

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
    const std::string operation = "CPAcquireContext('" + container + "')";
    auto certificate = ResolveContainer(container);
    if (create) {
      if (certificate.ok()) return Fail(NTE_EXISTS);
      if (certificate.status().code() == ErrorCode::kNotFound) {
        Trace("csp", operation + ": CRYPT_NEWKEYSET: keys are created on the Signum server");
        return Fail(NTE_PERM);
      }
      return FailWith(certificate.status(), operation);
    }
    if (!certificate.ok()) return FailWith(certificate.status(), operation);
    if (remove) {
      Trace("csp", operation + ": CRYPT_DELETEKEYSET: keys are deleted on the Signum server");
      return Fail(NTE_PERM);
    }
    context->certificate = *certificate;
  }
  PinThisModule();
  *out = Providers().Add(std::move(context));
  return TRUE;
}

BOOL ReleaseContext(HCRYPTPROV handle, DWORD flags) {
  if (Providers().Remove(handle) == nullptr) return Fail(NTE_BAD_UID);
  Keys().RemoveIf([handle](const Key& key) { return key.owner == handle; });
  Hashes().RemoveIf([handle](const Hash& hash) { return hash.owner == handle; });
  // Released regardless (advapi32 frees its side whatever we say), as Microsoft's CSPs do.
  if (flags != 0) return Fail(NTE_BAD_FLAGS);
  return TRUE;
}

// --- Provider parameters ---

BOOL EnumerateContainers(Provider& context, bool first, BYTE* out, DWORD* out_len) {
  std::lock_guard lock(context.mu);
  if (first || context.container_snapshot.empty()) {
    auto names = ContainerNames();
    if (!names.ok()) return FailWith(names.status(), "PP_ENUMCONTAINERS");
    context.container_snapshot = std::move(names).value();
    context.next_container = first ? 0 : context.next_container;
  }
  if (context.next_container >= context.container_snapshot.size()) {
    return FailWin32(ERROR_NO_MORE_ITEMS);
  }
  // Size queries and ERROR_MORE_DATA report the longest name, so one buffer serves the loop.
  size_t longest = 0;
  for (const auto& name : context.container_snapshot) longest = std::max(longest, name.size());
  const std::string& name = context.container_snapshot[context.next_container];
  if (out_len == nullptr) return FailWin32(ERROR_INVALID_PARAMETER);
  if (out == nullptr || *out_len < name.size() + 1) {
    const bool size_query = out == nullptr;
    *out_len = static_cast<DWORD>(longest + 1);
    return size_query ? TRUE : FailWin32(ERROR_MORE_DATA);
  }
  BOOL copied = CopyOutString(name, out, out_len);
  if (copied) ++context.next_container;
  return copied;
}

BOOL EnumerateAlgorithms(Provider& context, bool first, bool extended, BYTE* out, DWORD* out_len) {
  std::lock_guard lock(context.mu);
  size_t& next = extended ? context.next_algorithm_ex : context.next_algorithm;
  if (first) next = 0;
  const auto& algorithms = CspAlgorithms();
  if (next >= algorithms.size()) return FailWin32(ERROR_NO_MORE_ITEMS);
  const CspAlgorithm& algorithm = algorithms[next];
  BOOL copied;
  if (extended) {
    PROV_ENUMALGS_EX entry{};
    entry.aiAlgid = algorithm.alg_id;
    entry.dwDefaultLen = algorithm.default_bits;
    entry.dwMinLen = algorithm.min_bits;
    entry.dwMaxLen = algorithm.max_bits;
    entry.dwProtocols = 0;
    CopyName(algorithm.name, entry.szName, sizeof(entry.szName), &entry.dwNameLen);
    CopyName(algorithm.long_name, entry.szLongName, sizeof(entry.szLongName), &entry.dwLongNameLen);
    copied = CopyOut(&entry, sizeof(entry), out, out_len);
  } else {
    PROV_ENUMALGS entry{};
    entry.aiAlgid = algorithm.alg_id;
    entry.dwBitLen = algorithm.default_bits;
    CopyName(algorithm.name, entry.szName, sizeof(entry.szName), &entry.dwNameLen);
    copied = CopyOut(&entry, sizeof(entry), out, out_len);
  }
  if (copied && out != nullptr) ++next;
  return copied;
}

BOOL GetProvParam(HCRYPTPROV handle, DWORD param, BYTE* out, DWORD* out_len, DWORD flags) {
  auto context = Providers().Find(handle);
  if (context == nullptr) return Fail(NTE_BAD_UID);
  if (out_len == nullptr) return FailWin32(ERROR_INVALID_PARAMETER);
  if ((flags & ~static_cast<DWORD>(CRYPT_FIRST)) != 0) return Fail(NTE_BAD_FLAGS);
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
      if (context->certificate == nullptr) return Fail(NTE_BAD_KEYSET);  // verify context
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
      return Fail(NTE_BAD_TYPE);
  }
}

BOOL SetProvParam(HCRYPTPROV handle, DWORD param, const BYTE* data, DWORD flags) {
  if (Providers().Find(handle) == nullptr) return Fail(NTE_BAD_UID);
  if (flags != 0) return Fail(NTE_BAD_FLAGS);
  switch (param) {
    case PP_CLIENT_HWND:  // the CSP never shows UI
      return TRUE;
    case PP_KEYEXCHANGE_PIN:
    case PP_SIGNATURE_PIN:
      // Accepted and ignored like the "[{{PIN}}]=" container prefix: the agent authenticates.
      if (data == nullptr) return FailWin32(ERROR_INVALID_PARAMETER);
      return TRUE;
    default:
      return Fail(NTE_BAD_TYPE);
  }
}

// --- Keys ---

BOOL GetUserKey(HCRYPTPROV handle, DWORD key_spec, HCRYPTKEY* out) {
  auto context = Providers().Find(handle);
  if (context == nullptr) return Fail(NTE_BAD_UID);
  if (out == nullptr) return FailWin32(ERROR_INVALID_PARAMETER);
  if (key_spec != AT_SIGNATURE || context->certificate == nullptr) return Fail(NTE_NO_KEY);
  auto key = std::make_shared<Key>();
  key->owner = handle;
  key->certificate = context->certificate;
  *out = Keys().Add(std::move(key));
  return TRUE;
}

BOOL GetKeyParam(HCRYPTPROV handle, HCRYPTKEY key_handle, DWORD param, BYTE* out, DWORD* out_len,
                 DWORD flags) {
  if (Providers().Find(handle) == nullptr) return Fail(NTE_BAD_UID);
  auto key = FindKey(handle, key_handle);
  if (key == nullptr) return Fail(NTE_BAD_KEY);
  if (out_len == nullptr) return FailWin32(ERROR_INVALID_PARAMETER);
  if (flags != 0) return Fail(NTE_BAD_FLAGS);
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
      return Fail(NTE_BAD_TYPE);
  }
}

BOOL ExportKey(HCRYPTPROV handle, HCRYPTKEY key_handle, DWORD blob_type, DWORD flags, BYTE* out,
               DWORD* out_len) {
  if (Providers().Find(handle) == nullptr) return Fail(NTE_BAD_UID);
  auto key = FindKey(handle, key_handle);
  if (key == nullptr) return Fail(NTE_BAD_KEY);
  if (out_len == nullptr) return FailWin32(ERROR_INVALID_PARAMETER);
  if (flags != 0) return Fail(NTE_BAD_FLAGS);
  switch (blob_type) {
    case PUBLICKEYBLOB: {
      auto blob = RsaPublicKeyBlob(*key->certificate);
      if (!blob.ok()) return FailWith(blob.status(), "CPExportKey(PUBLICKEYBLOB)");
      return CopyOutBytes(*blob, out, out_len);
    }
    case PRIVATEKEYBLOB:
    case PLAINTEXTKEYBLOB:
      return Fail(NTE_BAD_KEY_STATE);  // the private key never leaves the HSM
    default:
      return Fail(NTE_BAD_TYPE);
  }
}

// --- Hashes ---

BOOL CreateHash(HCRYPTPROV handle, ALG_ID alg_id, HCRYPTKEY key_handle, DWORD flags,
                HCRYPTHASH* out) {
  if (Providers().Find(handle) == nullptr) return Fail(NTE_BAD_UID);
  if (out == nullptr) return FailWin32(ERROR_INVALID_PARAMETER);
  if (flags != 0) return Fail(NTE_BAD_FLAGS);
  if (key_handle != 0) return Fail(NTE_BAD_KEY);  // no keyed hashes (HMAC, MAC)
  const std::optional<HashAlgorithm> algorithm = HashForCapiAlgId(alg_id);
  if (!algorithm) return Fail(NTE_BAD_ALGID);
  auto digest = provider::DigestContext::Create(*algorithm);
  if (!digest.ok()) {
    if (digest.status().code() == ErrorCode::kUnimplemented) return Fail(NTE_BAD_ALGID);
    return FailWith(digest.status(), "CPCreateHash");
  }
  auto hash = std::make_shared<Hash>();
  hash->owner = handle;
  hash->algorithm = *algorithm;
  hash->running.emplace(std::move(digest).value());
  *out = Hashes().Add(std::move(hash));
  return TRUE;
}

BOOL HashData(HCRYPTPROV handle, HCRYPTHASH hash_handle, const BYTE* data, DWORD size,
              DWORD flags) {
  if (Providers().Find(handle) == nullptr) return Fail(NTE_BAD_UID);
  auto hash = FindHash(handle, hash_handle);
  if (hash == nullptr) return Fail(NTE_BAD_HASH);
  if (flags != 0) return Fail(NTE_BAD_FLAGS);  // CRYPT_USERDATA: no such input device
  if (data == nullptr && size != 0) return FailWin32(ERROR_INVALID_PARAMETER);
  std::lock_guard lock(hash->mu);
  if (hash->value || !hash->running) return Fail(NTE_BAD_HASH_STATE);
  Status status = hash->running->Update(ByteView(data, size));
  if (!status.ok()) return FailWith(status, "CPHashData");
  hash->data_hashed = true;
  return TRUE;
}

BOOL SetHashParam(HCRYPTPROV handle, HCRYPTHASH hash_handle, DWORD param, const BYTE* data,
                  DWORD flags) {
  if (Providers().Find(handle) == nullptr) return Fail(NTE_BAD_UID);
  auto hash = FindHash(handle, hash_handle);
  if (hash == nullptr) return Fail(NTE_BAD_HASH);
  if (flags != 0) return Fail(NTE_BAD_FLAGS);
  if (param != HP_HASHVAL) return Fail(NTE_BAD_TYPE);
  if (data == nullptr) return FailWin32(ERROR_INVALID_PARAMETER);
  // A precomputed digest of the hash's own length (the caller hashed elsewhere).
  const size_t size = GetHashInfo(hash->algorithm).digest_size;
  std::lock_guard lock(hash->mu);
  hash->value = Bytes(data, data + size);
  hash->running.reset();
  return TRUE;
}

BOOL GetHashParam(HCRYPTPROV handle, HCRYPTHASH hash_handle, DWORD param, BYTE* out, DWORD* out_len,
                  DWORD flags) {
  if (Providers().Find(handle) == nullptr) return Fail(NTE_BAD_UID);
  auto hash = FindHash(handle, hash_handle);
  if (hash == nullptr) return Fail(NTE_BAD_HASH);
  if (out_len == nullptr) return FailWin32(ERROR_INVALID_PARAMETER);
  if (flags != 0) return Fail(NTE_BAD_FLAGS);
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
        *out_len = size;
        return size_query ? TRUE : FailWin32(ERROR_MORE_DATA);
      }
      std::lock_guard lock(hash->mu);
      auto value = hash->ValueLocked();
      if (!value.ok()) return FailWith(value.status(), "CPGetHashParam(HP_HASHVAL)");
      return CopyOutBytes(*value, out, out_len);
    }
    default:
      return Fail(NTE_BAD_TYPE);
  }
}

BOOL DuplicateHash(HCRYPTPROV handle, HCRYPTHASH hash_handle, DWORD* reserved, DWORD flags,
                   HCRYPTHASH* out) {
  if (Providers().Find(handle) == nullptr) return Fail(NTE_BAD_UID);
  auto hash = FindHash(handle, hash_handle);
  if (hash == nullptr) return Fail(NTE_BAD_HASH);
  if (reserved != nullptr || out == nullptr) return FailWin32(ERROR_INVALID_PARAMETER);
  if (flags != 0) return Fail(NTE_BAD_FLAGS);
  auto copy = std::make_shared<Hash>();
  copy->owner = handle;
  copy->algorithm = hash->algorithm;
  {
    std::lock_guard lock(hash->mu);
    if (hash->value) {
      copy->value = hash->value;
    } else if (hash->running) {
      // Mid-stream too: both hashes continue from the data hashed so far.
      auto digest = hash->running->Clone();
      if (!digest.ok()) return FailWith(digest.status(), "CPDuplicateHash");
      copy->running.emplace(std::move(digest).value());
    } else {
      auto digest = provider::DigestContext::Create(hash->algorithm);
      if (!digest.ok()) return FailWith(digest.status(), "CPDuplicateHash");
      copy->running.emplace(std::move(digest).value());
    }
    copy->data_hashed = hash->data_hashed;
  }
  *out = Hashes().Add(std::move(copy));
  return TRUE;
}

// --- Signatures ---

BOOL SignHash(HCRYPTPROV handle, HCRYPTHASH hash_handle, DWORD key_spec, DWORD flags,
              BYTE* signature, DWORD* signature_len) {
  auto context = Providers().Find(handle);
  if (context == nullptr) return Fail(NTE_BAD_UID);
  auto hash = FindHash(handle, hash_handle);
  if (hash == nullptr) return Fail(NTE_BAD_HASH);
  if (key_spec != AT_SIGNATURE || context->certificate == nullptr) return Fail(NTE_NO_KEY);
  if (flags != 0) return Fail(NTE_BAD_FLAGS);
  if (signature_len == nullptr) return FailWin32(ERROR_INVALID_PARAMETER);
  const provider::ProviderCertificate& certificate = *context->certificate;
  const size_t size = certificate.key_spec.SignatureSize();
  if (signature == nullptr || *signature_len < size) {
    const bool size_query = signature == nullptr;
    *signature_len = static_cast<DWORD>(size);
    return size_query ? TRUE : FailWin32(ERROR_MORE_DATA);
  }

  provider::DigestToSign request;
  request.scheme = SignatureScheme::kRsaPkcs1;
  request.hash = hash->algorithm;
  {
    std::lock_guard lock(hash->mu);
    auto value = hash->ValueLocked();
    if (!value.ok()) return FailWith(value.status(), "CPSignHash");
    request.digest = std::move(value).value();
  }
  auto signed_digest =
      SharedProviderContext(kCspClientName).signer().SignDigest(certificate, request);
  if (!signed_digest.ok()) {
    return FailWith(signed_digest.status(), "CPSignHash(" + certificate.label + ")");
  }
  // The agent returns PKCS#1 octets (big-endian); CryptoAPI hands out little-endian.
  std::reverse_copy(signed_digest->begin(), signed_digest->end(), signature);
  *signature_len = static_cast<DWORD>(signed_digest->size());
  return TRUE;
}

BOOL VerifySignature(HCRYPTPROV handle, HCRYPTHASH hash_handle, const BYTE* signature,
                     DWORD signature_len, HCRYPTKEY key_handle, DWORD flags) {
  if (Providers().Find(handle) == nullptr) return Fail(NTE_BAD_UID);
  auto hash = FindHash(handle, hash_handle);
  if (hash == nullptr) return Fail(NTE_BAD_HASH);
  auto key = FindKey(handle, key_handle);
  if (key == nullptr) return Fail(NTE_BAD_KEY);
  if (flags != 0) return Fail(NTE_BAD_FLAGS);
  if (signature == nullptr && signature_len != 0) return FailWin32(ERROR_INVALID_PARAMETER);
  if (signature_len != key->certificate->key_spec.SignatureSize()) {
    return Fail(NTE_BAD_SIGNATURE);
  }
  Bytes digest;
  {
    std::lock_guard lock(hash->mu);
    auto value = hash->ValueLocked();
    if (!value.ok()) return FailWith(value.status(), "CPVerifySignature");
    digest = std::move(value).value();
  }
  Bytes big_endian(signature, signature + signature_len);
  std::reverse(big_endian.begin(), big_endian.end());
  Status verified = VerifyRsaPkcs1(*key->certificate, hash->algorithm, digest, big_endian);
  if (verified.code() == ErrorCode::kInvalidArgument) return Fail(NTE_BAD_SIGNATURE);
  if (!verified.ok()) return FailWith(verified, "CPVerifySignature");
  return TRUE;
}

}  // namespace
}  // namespace signum::cng::csp

using namespace signum::cng::csp;  // NOLINT: the C entry points below only forward

extern "C" {

BOOL WINAPI CPAcquireContext(HCRYPTPROV* phProv, LPCSTR szContainer, DWORD dwFlags,
                             signum::cng::PVTableProvStruc pVTable) {
  return Guarded("CPAcquireContext",
                 [&] { return AcquireContext(phProv, szContainer, dwFlags, pVTable); });
}

BOOL WINAPI CPReleaseContext(HCRYPTPROV hProv, DWORD dwFlags) {
  return Guarded("CPReleaseContext", [&] { return ReleaseContext(hProv, dwFlags); });
}

BOOL WINAPI CPGetProvParam(HCRYPTPROV hProv, DWORD dwParam, BYTE* pbData, DWORD* pcbDataLen,
                           DWORD dwFlags) {
  return Guarded("CPGetProvParam",
                 [&] { return GetProvParam(hProv, dwParam, pbData, pcbDataLen, dwFlags); });
}

BOOL WINAPI CPSetProvParam(HCRYPTPROV hProv, DWORD dwParam, const BYTE* pbData, DWORD dwFlags) {
  return Guarded("CPSetProvParam", [&] { return SetProvParam(hProv, dwParam, pbData, dwFlags); });
}

BOOL WINAPI CPGenKey(HCRYPTPROV hProv, ALG_ID, DWORD, HCRYPTKEY* phKey) {
  return Guarded("CPGenKey", [&] {
    if (Providers().Find(hProv) == nullptr) return Fail(NTE_BAD_UID);
    if (phKey == nullptr) return FailWin32(ERROR_INVALID_PARAMETER);
    return Fail(NTE_BAD_ALGID);  // keys are generated on the Signum server, never here
  });
}

BOOL WINAPI CPDeriveKey(HCRYPTPROV hProv, ALG_ID, HCRYPTHASH hBaseData, DWORD, HCRYPTKEY* phKey) {
  return Guarded("CPDeriveKey", [&] {
    if (Providers().Find(hProv) == nullptr) return Fail(NTE_BAD_UID);
    if (FindHash(hProv, hBaseData) == nullptr) return Fail(NTE_BAD_HASH);
    if (phKey == nullptr) return FailWin32(ERROR_INVALID_PARAMETER);
    return Fail(NTE_BAD_ALGID);  // no session keys
  });
}

BOOL WINAPI CPDestroyKey(HCRYPTPROV hProv, HCRYPTKEY hKey) {
  return Guarded("CPDestroyKey", [&] {
    if (Providers().Find(hProv) == nullptr) return Fail(NTE_BAD_UID);
    if (FindKey(hProv, hKey) == nullptr) return Fail(NTE_BAD_KEY);
    Keys().Remove(hKey);
    return TRUE;
  });
}

BOOL WINAPI CPSetKeyParam(HCRYPTPROV hProv, HCRYPTKEY hKey, DWORD, const BYTE*, DWORD) {
  return Guarded("CPSetKeyParam", [&] {
    if (Providers().Find(hProv) == nullptr) return Fail(NTE_BAD_UID);
    if (FindKey(hProv, hKey) == nullptr) return Fail(NTE_BAD_KEY);
    // Nothing about a server key is settable here (KP_CERTIFICATE comes from the server).
    return Fail(NTE_BAD_TYPE);
  });
}

BOOL WINAPI CPGetKeyParam(HCRYPTPROV hProv, HCRYPTKEY hKey, DWORD dwParam, BYTE* pbData,
                          DWORD* pcbDataLen, DWORD dwFlags) {
  return Guarded("CPGetKeyParam",
                 [&] { return GetKeyParam(hProv, hKey, dwParam, pbData, pcbDataLen, dwFlags); });
}

BOOL WINAPI CPExportKey(HCRYPTPROV hProv, HCRYPTKEY hKey, HCRYPTKEY, DWORD dwBlobType,
                        DWORD dwFlags, BYTE* pbData, DWORD* pcbDataLen) {
  return Guarded("CPExportKey",
                 [&] { return ExportKey(hProv, hKey, dwBlobType, dwFlags, pbData, pcbDataLen); });
}

BOOL WINAPI CPImportKey(HCRYPTPROV hProv, const BYTE*, DWORD, HCRYPTKEY, DWORD, HCRYPTKEY* phKey) {
  return Guarded("CPImportKey", [&] {
    if (Providers().Find(hProv) == nullptr) return Fail(NTE_BAD_UID);
    if (phKey == nullptr) return FailWin32(ERROR_INVALID_PARAMETER);
    return Fail(NTE_BAD_TYPE);  // no key blob type is importable
  });
}

BOOL WINAPI CPEncrypt(HCRYPTPROV hProv, HCRYPTKEY hKey, HCRYPTHASH, BOOL, DWORD, BYTE*, DWORD*,
                      DWORD) {
  return Guarded("CPEncrypt", [&] {
    if (Providers().Find(hProv) == nullptr) return Fail(NTE_BAD_UID);
    if (FindKey(hProv, hKey) == nullptr) return Fail(NTE_BAD_KEY);
    return Fail(NTE_BAD_ALGID);  // CALG_RSA_SIGN does not encrypt
  });
}

BOOL WINAPI CPDecrypt(HCRYPTPROV hProv, HCRYPTKEY hKey, HCRYPTHASH, BOOL, DWORD, BYTE*, DWORD*) {
  return Guarded("CPDecrypt", [&] {
    if (Providers().Find(hProv) == nullptr) return Fail(NTE_BAD_UID);
    if (FindKey(hProv, hKey) == nullptr) return Fail(NTE_BAD_KEY);
    return Fail(NTE_BAD_ALGID);  // CALG_RSA_SIGN does not decrypt
  });
}

BOOL WINAPI CPCreateHash(HCRYPTPROV hProv, ALG_ID Algid, HCRYPTKEY hKey, DWORD dwFlags,
                         HCRYPTHASH* phHash) {
  return Guarded("CPCreateHash", [&] { return CreateHash(hProv, Algid, hKey, dwFlags, phHash); });
}

BOOL WINAPI CPHashData(HCRYPTPROV hProv, HCRYPTHASH hHash, const BYTE* pbData, DWORD cbDataLen,
                       DWORD dwFlags) {
  return Guarded("CPHashData", [&] { return HashData(hProv, hHash, pbData, cbDataLen, dwFlags); });
}

BOOL WINAPI CPHashSessionKey(HCRYPTPROV hProv, HCRYPTHASH hHash, HCRYPTKEY, DWORD) {
  return Guarded("CPHashSessionKey", [&] {
    if (Providers().Find(hProv) == nullptr) return Fail(NTE_BAD_UID);
    if (FindHash(hProv, hHash) == nullptr) return Fail(NTE_BAD_HASH);
    return Fail(NTE_BAD_KEY);  // the only keys here are signature keys, not session keys
  });
}

BOOL WINAPI CPSetHashParam(HCRYPTPROV hProv, HCRYPTHASH hHash, DWORD dwParam, const BYTE* pbData,
                           DWORD dwFlags) {
  return Guarded("CPSetHashParam",
                 [&] { return SetHashParam(hProv, hHash, dwParam, pbData, dwFlags); });
}

BOOL WINAPI CPGetHashParam(HCRYPTPROV hProv, HCRYPTHASH hHash, DWORD dwParam, BYTE* pbData,
                           DWORD* pcbDataLen, DWORD dwFlags) {
  return Guarded("CPGetHashParam",
                 [&] { return GetHashParam(hProv, hHash, dwParam, pbData, pcbDataLen, dwFlags); });
}

BOOL WINAPI CPSignHash(HCRYPTPROV hProv, HCRYPTHASH hHash, DWORD dwKeySpec, LPCWSTR, DWORD dwFlags,
                       BYTE* pbSignature, DWORD* pcbSigLen) {
  return Guarded("CPSignHash", [&] {
    return SignHash(hProv, hHash, dwKeySpec, dwFlags, pbSignature, pcbSigLen);
  });
}

BOOL WINAPI CPVerifySignature(HCRYPTPROV hProv, HCRYPTHASH hHash, const BYTE* pbSignature,
                              DWORD cbSigLen, HCRYPTKEY hPubKey, LPCWSTR, DWORD dwFlags) {
  return Guarded("CPVerifySignature", [&] {
    return VerifySignature(hProv, hHash, pbSignature, cbSigLen, hPubKey, dwFlags);
  });
}

BOOL WINAPI CPDestroyHash(HCRYPTPROV hProv, HCRYPTHASH hHash) {
  return Guarded("CPDestroyHash", [&] {
    if (Providers().Find(hProv) == nullptr) return Fail(NTE_BAD_UID);
    if (FindHash(hProv, hHash) == nullptr) return Fail(NTE_BAD_HASH);
    Hashes().Remove(hHash);
    return TRUE;
  });
}

BOOL WINAPI CPGenRandom(HCRYPTPROV hProv, DWORD cbLen, BYTE* pbBuffer) {
  return Guarded("CPGenRandom", [&] {
    if (Providers().Find(hProv) == nullptr) return Fail(NTE_BAD_UID);
    if (pbBuffer == nullptr && cbLen != 0) return FailWin32(ERROR_INVALID_PARAMETER);
    if (cbLen == 0) return TRUE;
    if (BCryptGenRandom(nullptr, pbBuffer, cbLen, BCRYPT_USE_SYSTEM_PREFERRED_RNG) < 0) {
      return Fail(NTE_FAIL);
    }
    return TRUE;
  });
}

BOOL WINAPI CPGetUserKey(HCRYPTPROV hProv, DWORD dwKeySpec, HCRYPTKEY* phUserKey) {
  return Guarded("CPGetUserKey", [&] { return GetUserKey(hProv, dwKeySpec, phUserKey); });
}

BOOL WINAPI CPDuplicateHash(HCRYPTPROV hProv, HCRYPTHASH hHash, DWORD* pdwReserved, DWORD dwFlags,
                            HCRYPTHASH* phHash) {
  return Guarded("CPDuplicateHash",
                 [&] { return DuplicateHash(hProv, hHash, pdwReserved, dwFlags, phHash); });
}

BOOL WINAPI CPDuplicateKey(HCRYPTPROV hProv, HCRYPTKEY hKey, DWORD* pdwReserved, DWORD dwFlags,
                           HCRYPTKEY* phKey) {
  return Guarded("CPDuplicateKey", [&] {
    if (Providers().Find(hProv) == nullptr) return Fail(NTE_BAD_UID);
    auto key = FindKey(hProv, hKey);
    if (key == nullptr) return Fail(NTE_BAD_KEY);
    if (pdwReserved != nullptr || phKey == nullptr) return FailWin32(ERROR_INVALID_PARAMETER);
    if (dwFlags != 0) return Fail(NTE_BAD_FLAGS);
    *phKey = Keys().Add(std::make_shared<Key>(*key));
    return TRUE;
  });
}

}  // extern "C"

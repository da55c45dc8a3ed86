// The objects behind signumksp.dll's handles and buffers. ncrypt.dll (or any caller of the
// function table) hands back whatever integer it was given, stale or not, so a handle is an
// opaque number looked up in a registry of live objects, never a pointer that is dereferenced:
// a freed, foreign or made-up handle is NTE_INVALID_HANDLE, not a crash. Buffers the provider
// returns (EnumKeys, EnumAlgorithms) are recorded the same way, so FreeBuffer only frees what this
// provider allocated.
#pragma once

#include <windows.h>
// A block of its own: ncrypt.h needs windows.h's types.
#include <ncrypt.h>

#include <cstddef>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "signum/cng/handle_table.h"
#include "signum/provider/provider_certificate.h"

namespace signum::cng::ksp {

struct ProviderObject {
  DWORD open_flags = 0;  // NCRYPT_SILENT_FLAG / NCRYPT_MACHINE_KEY_FLAG as given to OpenProvider
};

struct KeyObject {
  NCRYPT_PROV_HANDLE provider = 0;  // the provider handle the key was opened through
  std::shared_ptr<const provider::ProviderCertificate> certificate;
  DWORD legacy_key_spec = 0;  // 0, AT_SIGNATURE or AT_KEYEXCHANGE as given to OpenKey
  bool machine_key = false;   // opened with NCRYPT_MACHINE_KEY_FLAG
};

// EnumKeys' state: the key names as listed when the enumeration started, and the next index.
struct EnumKeysState {
  std::vector<std::shared_ptr<const provider::ProviderCertificate>> keys;
  size_t next = 0;
  bool machine_keys = false;
};

// Live provider and key handles (signum/cng/handle_table.h: numbers from one counter, never
// reused while the process runs, never 0, so a key handle passed as a provider handle is simply
// not found), plus the rule that a key is used only through the provider that opened it.
class HandleRegistry {
 public:
  static HandleRegistry& Instance();

  NCRYPT_PROV_HANDLE AddProvider(ProviderObject provider);
  NCRYPT_KEY_HANDLE AddKey(KeyObject key);
  // Copies, so no lock is held while the caller talks to the agent.
  std::shared_ptr<const ProviderObject> FindProvider(NCRYPT_PROV_HANDLE handle) const;
  // The key only if it is live, was opened through `provider` and that provider is still live.
  std::shared_ptr<const KeyObject> FindKey(NCRYPT_PROV_HANDLE provider,
                                           NCRYPT_KEY_HANDLE key) const;
  bool RemoveProvider(NCRYPT_PROV_HANDLE handle);
  bool RemoveKey(NCRYPT_PROV_HANDLE provider, NCRYPT_KEY_HANDLE key);

 private:
  HandleTable<const ProviderObject> providers_;
  HandleTable<const KeyObject> keys_;
};

// Memory handed to the caller, released through the table's FreeBuffer.
class BufferRegistry {
 public:
  static BufferRegistry& Instance();

  // A zeroed block of `size` bytes (the caller fills it before returning it), nullptr if out of
  // memory.
  void* AllocateBlock(size_t size);
  // An enumeration state handed out as an opaque PVOID.
  void* AddEnumState(std::unique_ptr<EnumKeysState> state);
  // The state if `pointer` is a live one of ours; the registry keeps owning it.
  EnumKeysState* FindEnumState(void* pointer);
  // Frees a block or an enumeration state; false if `pointer` is not one this provider handed out.
  bool Free(void* pointer);

 private:
  std::mutex mutex_;
  std::map<void*, std::unique_ptr<std::byte[]>> blocks_;
  std::map<void*, std::unique_ptr<EnumKeysState>> enum_states_;
};

}  // namespace signum::cng::ksp

#include "ksp_objects.h"

#include <new>
#include <utility>

namespace signum::cng::ksp {

HandleRegistry& HandleRegistry::Instance() {
  // Never destroyed: ncrypt may call FreeKey/FreeProvider from another DLL's teardown after this
  // DLL's static destructors would have run.
  static HandleRegistry* registry = new HandleRegistry();
  return *registry;
}

NCRYPT_PROV_HANDLE HandleRegistry::AddProvider(ProviderObject provider) {
  return providers_.Add(std::make_shared<const ProviderObject>(provider));
}

NCRYPT_KEY_HANDLE HandleRegistry::AddKey(KeyObject key) {
  return keys_.Add(std::make_shared<const KeyObject>(std::move(key)));
}

std::shared_ptr<const ProviderObject> HandleRegistry::FindProvider(
    NCRYPT_PROV_HANDLE handle) const {
  return providers_.Find(handle);
}

std::shared_ptr<const KeyObject> HandleRegistry::FindKey(NCRYPT_PROV_HANDLE provider,
                                                         NCRYPT_KEY_HANDLE key) const {
  if (!providers_.Find(provider)) return nullptr;
  auto found = keys_.Find(key);
  if (!found || found->provider != provider) return nullptr;
  return found;
}

bool HandleRegistry::RemoveProvider(NCRYPT_PROV_HANDLE handle) {
  return providers_.Remove(handle) != nullptr;
}

bool HandleRegistry::RemoveKey(NCRYPT_PROV_HANDLE provider, NCRYPT_KEY_HANDLE key) {
  // FreeKey after FreeProvider still releases the key (ncrypt's teardown order is not ours to
  // choose), but only with the provider handle it was opened through.
  auto found = keys_.Find(key);
  if (!found || found->provider != provider) return false;
  return keys_.Remove(key) != nullptr;
}

BufferRegistry& BufferRegistry::Instance() {
  static BufferRegistry* registry = new BufferRegistry();
  return *registry;
}

void* BufferRegistry::AllocateBlock(size_t size) {
  std::unique_ptr<std::byte[]> block(new (std::nothrow) std::byte[size == 0 ? 1 : size]());
  if (!block) return nullptr;
  void* pointer = block.get();
  std::lock_guard lock(mutex_);
  blocks_[pointer] = std::move(block);
  return pointer;
}

void* BufferRegistry::AddEnumState(std::unique_ptr<EnumKeysState> state) {
  void* pointer = state.get();
  std::lock_guard lock(mutex_);
  enum_states_[pointer] = std::move(state);
  return pointer;
}

EnumKeysState* BufferRegistry::FindEnumState(void* pointer) {
  std::lock_guard lock(mutex_);
  auto it = enum_states_.find(pointer);
  return it == enum_states_.end() ? nullptr : it->second.get();
}

bool BufferRegistry::Free(void* pointer) {
  std::lock_guard lock(mutex_);
  if (blocks_.erase(pointer) == 1) return true;
  return enum_states_.erase(pointer) == 1;
}

}  // namespace signum::cng::ksp

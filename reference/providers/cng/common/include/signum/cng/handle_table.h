// The Windows providers' handles (KSP: NCRYPT_PROV_HANDLE, NCRYPT_KEY_HANDLE; CSP: HCRYPTPROV,
// HCRYPTKEY, HCRYPTHASH) are numbers looked up in a table, never pointers: a stale, foreign or
// made-up handle from the caller is then an NTE_INVALID_HANDLE / NTE_BAD_UID / NTE_BAD_KEY /
// NTE_BAD_HASH answer instead of a crash. Numbers come from one counter shared by all tables of a
// DLL (never 0, never reused), so a key handle passed where a hash handle belongs is not found
// either.
#pragma once

#include <windows.h>

#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <vector>

namespace signum::cng {

inline ULONG_PTR NextHandleValue() {
  static std::atomic<ULONG_PTR> next{0x5100};
  return next.fetch_add(0x10);
}

template <typename T>
class HandleTable {
 public:
  ULONG_PTR Add(std::shared_ptr<T> object) {
    const ULONG_PTR handle = NextHandleValue();
    std::lock_guard lock(mu_);
    objects_.emplace(handle, std::move(object));
    return handle;
  }

  // Null when handle is not in this table. Objects are shared, so one removed while another
  // thread uses it stays alive until that use ends.
  std::shared_ptr<T> Find(ULONG_PTR handle) const {
    std::lock_guard lock(mu_);
    auto it = objects_.find(handle);
    return it == objects_.end() ? nullptr : it->second;
  }

  // The removed object, null when handle was not in this table.
  std::shared_ptr<T> Remove(ULONG_PTR handle) {
    std::lock_guard lock(mu_);
    auto it = objects_.find(handle);
    if (it == objects_.end()) return nullptr;
    std::shared_ptr<T> object = std::move(it->second);
    objects_.erase(it);
    return object;
  }

  // Removes every object for which belongs(object) is true (a released provider's keys/hashes).
  template <typename Predicate>
  void RemoveIf(Predicate belongs) {
    std::vector<std::shared_ptr<T>> removed;  // destroyed outside the lock
    std::lock_guard lock(mu_);
    for (auto it = objects_.begin(); it != objects_.end();) {
      if (belongs(*it->second)) {
        removed.push_back(std::move(it->second));
        it = objects_.erase(it);
      } else {
        ++it;
      }
    }
  }

 private:
  mutable std::mutex mu_;
  std::map<ULONG_PTR, std::shared_ptr<T>> objects_;
};

}  // namespace signum::cng

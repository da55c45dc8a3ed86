// The live view of the state file: an immutable snapshot (state + credential index + compiled
// policies) that request handlers share, reloaded when the file changes on disk (the admin CLI
// edits it while the server runs).
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <string>

#include "auth.h"
#include "policy.h"
#include "state.h"

namespace signum::server {

struct StateSnapshot {
  ServerState state;
  Authenticator authenticator;
  PolicyEngine policy;
};

Result<std::shared_ptr<const StateSnapshot>> BuildSnapshot(ServerState state);

class StateStore {
 public:
  static Result<std::unique_ptr<StateStore>> Open(const std::string& path);

  // The current snapshot. Checks the file's mtime/size at most once per second and reloads when it
  // changed; a file that fails to load keeps the previous snapshot (and logs why).
  std::shared_ptr<const StateSnapshot> Current();

  // Load the newest file, apply mutate, validate (policies compile), save atomically, swap in.
  Status Update(const std::function<Status(ServerState&)>& mutate);

  const std::string& path() const { return path_; }

 private:
  explicit StateStore(std::string path) : path_(std::move(path)) {}
  Status ReloadLocked();
  std::string path_;
  std::mutex mu_;
  std::shared_ptr<const StateSnapshot> current_;
  std::chrono::steady_clock::time_point last_check_{};
  long long loaded_mtime_ns_ = -1;
  long long loaded_size_ = -1;
  unsigned long long loaded_inode_ = 0;
};

}  // namespace signum::server

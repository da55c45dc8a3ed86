// The live state snapshot, reloaded when the file changes and replaced atomically on Update.
//
// Update() serialises writers twice: mu_ within this process, and an flock(2) on "<path>.lock"
// across processes (the admin CLI and the server both edit the file), so a read-modify-write
// never loses a concurrent one.
#include "state_store.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <exception>

#include "signum/core/log.h"

namespace signum::server {
namespace {

constexpr auto kCheckInterval = std::chrono::seconds(1);

// What tells us the file changed. The inode is part of it: SaveState replaces the file by
// rename, and two saves within one timestamp tick with equal sizes ("alice" -> "carol") would
// otherwise look identical.
struct FileStamp {
  long long mtime_ns = -1;
  long long size = -1;
  unsigned long long inode = 0;
};

std::optional<FileStamp> Stat(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return std::nullopt;
  FileStamp stamp;
  stamp.mtime_ns = static_cast<long long>(st.st_mtim.tv_sec) * 1000000000LL + st.st_mtim.tv_nsec;
  stamp.size = static_cast<long long>(st.st_size);
  stamp.inode = static_cast<unsigned long long>(st.st_ino);
  return stamp;
}

// An exclusive flock(2) on a side file, released when the object dies.
class CrossProcessLock {
 public:
  static Result<CrossProcessLock> Acquire(const std::string& path) {
    int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) {
      return InternalError("cannot open lock file " + path + ": " + std::strerror(errno));
    }
    while (::flock(fd, LOCK_EX) != 0) {
      if (errno == EINTR) continue;
      const int err = errno;
      ::close(fd);
      return InternalError("cannot lock " + path + ": " + std::strerror(err));
    }
    return CrossProcessLock(fd);
  }
  CrossProcessLock(CrossProcessLock&& other) noexcept : fd_(other.fd_) { other.fd_ = -1; }
  CrossProcessLock& operator=(CrossProcessLock&&) = delete;
  ~CrossProcessLock() {
    if (fd_ >= 0) ::close(fd_);  // closing releases the flock
  }

 private:
  explicit CrossProcessLock(int fd) : fd_(fd) {}
  int fd_;
};

}  // namespace

Result<std::shared_ptr<const StateSnapshot>> BuildSnapshot(ServerState state) {
  try {
    SIGNUM_RETURN_IF_ERROR(ValidateState(state));
    SIGNUM_ASSIGN_OR_RETURN(PolicyEngine policy, PolicyEngine::Compile(state.policies));
    Authenticator authenticator(state);
    return std::shared_ptr<const StateSnapshot>(std::make_shared<const StateSnapshot>(
        StateSnapshot{std::move(state), std::move(authenticator), std::move(policy)}));
  } catch (const std::exception& e) {
    return InternalError(std::string("building state snapshot: ") + e.what());
  }
}

Result<std::unique_ptr<StateStore>> StateStore::Open(const std::string& path) {
  try {
    std::unique_ptr<StateStore> store(new StateStore(path));
    std::lock_guard<std::mutex> lock(store->mu_);
    SIGNUM_RETURN_IF_ERROR(store->ReloadLocked());
    return store;
  } catch (const std::exception& e) {
    return InternalError("opening state " + path + ": " + e.what());
  }
}

// Loads the file into a new snapshot. The file's stamp is remembered even when loading fails, so
// a broken file is reported once rather than every second, and retried when it changes again.
Status StateStore::ReloadLocked() {
  last_check_ = std::chrono::steady_clock::now();
  const std::optional<FileStamp> stamp = Stat(path_);  // before reading: a later edit is seen
  if (!stamp) {
    return NotFoundError("state file " + path_ + ": " + std::strerror(errno));
  }
  loaded_mtime_ns_ = stamp->mtime_ns;
  loaded_size_ = stamp->size;
  loaded_inode_ = stamp->inode;
  SIGNUM_ASSIGN_OR_RETURN(ServerState state, LoadState(path_));
  SIGNUM_ASSIGN_OR_RETURN(current_, BuildSnapshot(std::move(state)));
  return Status::Ok();
}

std::shared_ptr<const StateSnapshot> StateStore::Current() {
  std::lock_guard<std::mutex> lock(mu_);
  const auto now = std::chrono::steady_clock::now();
  if (now - last_check_ < kCheckInterval) return current_;
  last_check_ = now;
  const std::optional<FileStamp> stamp = Stat(path_);
  if (!stamp) {
    SIGNUM_LOG_WARN("state", "cannot stat " << path_ << ": " << std::strerror(errno)
                                            << "; keeping the loaded state");
    return current_;
  }
  if (stamp->mtime_ns == loaded_mtime_ns_ && stamp->size == loaded_size_ &&
      stamp->inode == loaded_inode_) {
    return current_;
  }
  try {
    Status status = ReloadLocked();
    if (status.ok()) {
      SIGNUM_LOG_INFO("state", "reloaded " << path_);
    } else {
      SIGNUM_LOG_ERROR("state", "keeping the previous state: " << status.ToString());
    }
  } catch (const std::exception& e) {
    SIGNUM_LOG_ERROR("state", "keeping the previous state: " << e.what());
  }
  return current_;
}

Status StateStore::Update(const std::function<Status(ServerState&)>& mutate) {
  try {
    std::lock_guard<std::mutex> lock(mu_);
    SIGNUM_ASSIGN_OR_RETURN(CrossProcessLock file_lock, CrossProcessLock::Acquire(path_ + ".lock"));
    SIGNUM_ASSIGN_OR_RETURN(ServerState state, LoadState(path_));
    SIGNUM_RETURN_IF_ERROR(mutate(state));
    SIGNUM_ASSIGN_OR_RETURN(std::shared_ptr<const StateSnapshot> snapshot,
                            BuildSnapshot(std::move(state)));
    SIGNUM_RETURN_IF_ERROR(SaveState(path_, snapshot->state));
    if (const std::optional<FileStamp> stamp = Stat(path_)) {
      loaded_mtime_ns_ = stamp->mtime_ns;
      loaded_size_ = stamp->size;
      loaded_inode_ = stamp->inode;
    }
    current_ = std::move(snapshot);
    last_check_ = std::chrono::steady_clock::now();
    return Status::Ok();
  } catch (const std::exception& e) {
    return InternalError("updating state " + path_ + ": " + e.what());
  }
}

}  // namespace signum::server

// The hash-chained audit log.
//
// Record (one line, keys in nlohmann's sorted order, no whitespace, '\n'-terminated):
//   {"event":{...},"hash":"<hex>","prev":"<hex>","seq":N,"time":"2026-11-27T09:30:00.123Z"}
// hash = hex SHA-256( prev || canonical JSON of {"event","prev","seq","time"} ), where canonical
// JSON is nlohmann's dump() without whitespace (keys sorted, UTF-8 as is, invalid UTF-8 replaced
// by U+FFFD). The first record's prev is 64 zeros.
//
// Group commit: Append formats its record and assigns seq/prev under mu, so queue order is chain
// order, and queues the line. A caller that finds no flush in progress becomes the leader: it
// takes every queued line, writes them with one write(2) (O_APPEND) and one fdatasync(2), marks
// them durable and wakes the followers whose records it flushed. Followers that find their record
// still queued after a flush elect a new leader among themselves. N concurrent appends therefore
// cost about one fdatasync.
//
// The head file "<path>.head" ({"hash":"...","seq":N}) is rewritten with WriteFileAtomically
// (write, fsync, rename, fsync the directory) by a background thread, not by Append: an Append
// returns as soon as its record is fdatasync'd, and the head writer wakes after each flush and
// rewrites the head once for everything that became durable meanwhile. So the head is updated
// after every flush when appends are sparse, and less often (coalescing flushes) under load; its
// two fsyncs never add to an Append's latency. The head is never ahead of the durable log; it may
// lag behind it (by the records flushed during the last head write, e.g. at a crash), which
// verification accepts: a log longer than its head is fine, a shorter one is a truncated tail.
// Destroying the AuditLog writes a final head covering every record. The head thread writes the
// same head to AuditOptions::head_copy_path too.
//
// Failed writes: the leader knows the file's length after the last durable record
// (durable_size); when write(2) or fdatasync(2) fails it cuts the file back to that length, so no
// torn record stays behind to break the chain, and fails its batch and every record queued behind
// it (they were chained to the failed ones); seq and prev go back to the last durable record. If
// even the cut fails, the next leader repeats it before writing. The next Append after a failure
// first queues an "audit-outage" record (since when, how many records were refused, the error).
#include "audit.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <algorithm>
#include <fstream>
#include <optional>
#include <thread>

#include "signum/core/posix_platform.h"
#include "signum/core/crypto.h"
#include "signum/core/files.h"
#include "signum/core/log.h"
#include "state.h"

namespace signum::server {
namespace {

using nlohmann::json;

const std::string kZeroHash(64, '0');

std::string Sha256Hex(std::string_view a, std::string_view b) {
  Hasher hasher(HashAlgorithm::kSha256);
  hasher.Update(AsBytes(a));
  hasher.Update(AsBytes(b));
  return HexEncode(hasher.Final());
}

std::string Dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

// Canonical JSON of {event, prev, seq, time} without building a json object: the keys are already
// in nlohmann's order and prev/time need no escaping. Equals Dump() of the object (tested).
std::string CanonicalBody(std::string_view event_json, std::string_view prev, uint64_t seq,
                          std::string_view time) {
  std::string out;
  out.reserve(event_json.size() + prev.size() + time.size() + 48);
  out += "{\"event\":";
  out += event_json;
  out += ",\"prev\":\"";
  out += prev;
  out += "\",\"seq\":";
  out += std::to_string(seq);
  out += ",\"time\":\"";
  out += time;
  out += "\"}";
  return out;
}

std::string RecordLine(std::string_view event_json, std::string_view hash, std::string_view prev,
                       uint64_t seq, std::string_view time) {
  std::string out;
  out.reserve(event_json.size() + hash.size() + prev.size() + time.size() + 64);
  out += "{\"event\":";
  out += event_json;
  out += ",\"hash\":\"";
  out += hash;
  out += "\",\"prev\":\"";
  out += prev;
  out += "\",\"seq\":";
  out += std::to_string(seq);
  out += ",\"time\":\"";
  out += time;
  out += "\"}\n";
  return out;
}

// RFC 3339 UTC with milliseconds: "2026-11-27T09:30:00.123Z".
std::string NowWithMillis() {
  using namespace std::chrono;
  const auto now = system_clock::now();
  const auto secs = floor<seconds>(now);
  const auto millis = duration_cast<milliseconds>(now - secs).count();
  std::string text = FormatTimestamp(secs);  // ends in 'Z'
  char frac[8];
  std::snprintf(frac, sizeof(frac), ".%03d", static_cast<int>(millis));
  text.insert(text.size() - 1, frac);
  return text;
}

std::string Errno(std::string_view what, const std::string& path) {
  return std::string(what) + " " + path + ": " + std::strerror(errno);
}

Status WriteAllAndSync(int fd, const std::string& data, const std::string& path) {
  size_t off = 0;
  while (off < data.size()) {
    const ssize_t n = ::write(fd, data.data() + off, data.size() - off);
    if (n < 0) {
      if (errno == EINTR) continue;
      return InternalError(Errno("writing audit log", path));
    }
    off += static_cast<size_t>(n);
  }
  if (posix::SyncFileData(fd) != 0) return InternalError(Errno("fdatasync of audit log", path));
  return Status::Ok();
}

void SyncParentDirectory(const std::string& path) {
  const size_t slash = path.find_last_of('/');
  const std::string dir =
      slash == std::string::npos ? "." : (slash == 0 ? "/" : path.substr(0, slash));
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return;
  (void)::fsync(fd);
  ::close(fd);
}

struct Head {
  uint64_t seq = 0;
  std::string hash;
};

// The head file, if there is one.
Result<std::optional<Head>> ReadHead(const std::string& head_path) {
  struct stat st {};
  if (::stat(head_path.c_str(), &st) != 0) {
    if (errno == ENOENT) return std::optional<Head>();
    return DataLossError(Errno("cannot read audit head file", head_path));
  }
  std::ifstream in(head_path, std::ios::binary);
  if (!in) return DataLossError(Errno("cannot read audit head file", head_path));
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object() || !j.contains("seq") || !j.contains("hash") ||
      !j["seq"].is_number_unsigned() || !j["hash"].is_string()) {
    return DataLossError("audit head file " + head_path +
                         " is not {\"seq\":N,\"hash\":\"...\"} (edited or corrupted)");
  }
  return std::optional<Head>(Head{j["seq"].get<uint64_t>(), j["hash"].get<std::string>()});
}

// Verifies the first `length` bytes of the log (all of it by default) against the head file and
// its copy (when head_copy_path is set).
Result<AuditVerifyReport> Verify(const std::string& path, const std::string& head_copy_path = "",
                                 uint64_t length = UINT64_MAX) {
  struct Anchor {
    std::string name;
    std::optional<Head> head;
  };
  std::vector<Anchor> anchors;
  AuditVerifyReport report;
  for (const std::string& anchor_path : {path + ".head", head_copy_path}) {
    if (anchor_path.empty()) continue;
    SIGNUM_ASSIGN_OR_RETURN(std::optional<Head> head, ReadHead(anchor_path));
    const std::string name = (anchors.empty() ? "head file " : "head copy ") + anchor_path;
    if (!head) report.anchors_missing.push_back(name + ": missing");
    anchors.push_back(Anchor{name, head});
  }
  std::ifstream in;
  struct stat st {};
  if (::stat(path.c_str(), &st) == 0) {
    in.open(path, std::ios::binary);
    if (!in) return DataLossError(Errno("cannot read audit log", path));
  } else if (errno != ENOENT) {
    return DataLossError(Errno("cannot read audit log", path));
  }

  std::string line;
  uint64_t line_no = 0;
  uint64_t last_seq = 0;
  uint64_t consumed = 0;
  std::string last_hash = kZeroHash;
  while (consumed < length && in && std::getline(in, line)) {
    ++line_no;
    consumed += line.size() + 1;
    const std::string where = "line " + std::to_string(line_no) + ": ";
    if (in.eof()) {
      return DataLossError(where + "incomplete last line without a trailing newline (a crash " +
                           "during a write?)");
    }
    const json rec = json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (rec.is_discarded() || !rec.is_object()) {
      return DataLossError(where + "not a JSON object (record edited or corrupted)");
    }
    if (rec.size() != 5 || !rec.contains("seq") || !rec.contains("time") || !rec.contains("prev") ||
        !rec.contains("event") || !rec.contains("hash")) {
      return DataLossError(where + "expected exactly seq, time, prev, event and hash " +
                           "(record edited or corrupted)");
    }
    if (!rec["seq"].is_number_unsigned() || !rec["time"].is_string() || !rec["prev"].is_string() ||
        !rec["hash"].is_string()) {
      return DataLossError(where + "seq, time, prev or hash has the wrong type " +
                           "(record edited or corrupted)");
    }
    const uint64_t seq = rec["seq"].get<uint64_t>();
    const std::string& prev = rec["prev"].get_ref<const std::string&>();
    const std::string& hash = rec["hash"].get_ref<const std::string&>();
    if (seq != last_seq + 1) {
      return DataLossError(where + "seq " + std::to_string(seq) + " follows " +
                           std::to_string(last_seq) + " (record dropped or reordered)");
    }
    if (prev != last_hash) {
      if (line_no == 1) {
        return DataLossError(where + "prev of the first record is not 64 zeros " +
                             "(records dropped from the start?)");
      }
      return DataLossError(where + "prev does not match line " + std::to_string(line_no - 1) +
                           "'s hash");
    }
    const json body = {
        {"seq", rec["seq"]}, {"time", rec["time"]}, {"prev", rec["prev"]}, {"event", rec["event"]}};
    if (Sha256Hex(prev, Dump(body)) != hash) {
      return DataLossError(where + "hash mismatch (record edited)");
    }
    for (const Anchor& anchor : anchors) {
      if (anchor.head && anchor.head->seq == seq && anchor.head->hash != hash) {
        return DataLossError(where + "hash does not match the " + anchor.name +
                             " (log rewritten?)");
      }
    }
    if (rec["event"].is_object() && rec["event"].value("type", "") == "server-start") {
      ++report.server_starts;
    }
    last_seq = seq;
    last_hash = hash;
  }
  if (in.bad()) return DataLossError(Errno("error reading audit log", path));
  for (const Anchor& anchor : anchors) {
    if (!anchor.head) continue;
    if (anchor.head->seq > last_seq) {
      return DataLossError("log ends at seq " + std::to_string(last_seq) + " but the " +
                           anchor.name + " says " + std::to_string(anchor.head->seq) +
                           " (tail truncated)");
    }
    report.anchors_checked.push_back(anchor.name + " (seq " + std::to_string(anchor.head->seq) +
                                     ")");
  }
  report.records = last_seq;
  report.last_hash = last_seq == 0 ? std::string() : last_hash;
  return report;
}


// Where the final line of the log starts and why it is torn (a crash mid-write), if it is: no
// trailing newline, or a complete line that is not JSON. A last line that is JSON but wrong is
// not torn, it is for Verify to judge.
struct TornTail {
  uint64_t offset = 0;
  std::string reason;
};

Result<std::optional<TornTail>> FindTornTail(const std::string& path, uint64_t size) {
  if (size == 0) return std::optional<TornTail>();
  const int rfd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (rfd < 0) return InternalError(Errno("cannot read audit log", path));
  // Reads backwards in chunks until the start of the last line (and its end newline, if any).
  const bool ends_with_newline = [&] {
    char last = 0;
    return ::pread(rfd, &last, 1, static_cast<off_t>(size - 1)) == 1 && last == '\n';
  }();
  const uint64_t search_end = ends_with_newline ? size - 1 : size;
  uint64_t line_start = 0;
  std::string last_line;  // reversed chunks, prepended
  constexpr uint64_t kChunk = 64 * 1024;
  for (uint64_t end = search_end; end > 0;) {
    const uint64_t begin = end > kChunk ? end - kChunk : 0;
    std::string chunk(end - begin, '\0');
    if (::pread(rfd, chunk.data(), chunk.size(), static_cast<off_t>(begin)) !=
        static_cast<ssize_t>(chunk.size())) {
      ::close(rfd);
      return InternalError(Errno("cannot read audit log", path));
    }
    const size_t nl = chunk.find_last_of('\n');
    if (nl != std::string::npos) {
      line_start = begin + nl + 1;
      last_line.insert(0, chunk.substr(nl + 1));
      break;
    }
    last_line.insert(0, chunk);
    end = begin;
  }
  ::close(rfd);
  if (!ends_with_newline) {
    return std::optional<TornTail>(TornTail{line_start, "no trailing newline"});
  }
  if (json::parse(last_line, nullptr, /*allow_exceptions=*/false).is_discarded()) {
    return std::optional<TornTail>(TornTail{line_start, "last line is not JSON"});
  }
  return std::optional<TornTail>();
}

// "20261127T093000.123Z", for file names.
std::string CompactNow() {
  std::string text = NowWithMillis();
  text.erase(std::remove(text.begin(), text.end(), '-'), text.end());
  text.erase(std::remove(text.begin(), text.end(), ':'), text.end());
  return text;
}

}  // namespace

class AuditLog::Impl {
 public:
  // One Append waiting for its record to be flushed (lives on the caller's stack).
  struct Waiter {
    bool done = false;
    Status result;
  };

  ~Impl() {
    if (head_thread.joinable()) {
      {
        std::lock_guard<std::mutex> lock(mu);
        stopping = true;
      }
      head_changed.notify_all();
      head_thread.join();  // after a last head write covering every durable record
    }
    if (fd >= 0) ::close(fd);
  }

  // Writes the head (and its copy) for the newest durable record; called with mu held (and
  // released inside). Returns false if a write failed.
  bool WriteHeadLocked(std::unique_lock<std::mutex>& lock) {
    const uint64_t seq = durable_seq;
    const json j = {{"seq", seq}, {"hash", durable_hash}};
    lock.unlock();
    Status status = WriteFileAtomically(path + ".head", j.dump() + "\n", 0600);
    if (status.ok() && !options.head_copy_path.empty()) {
      status = WriteFileAtomically(options.head_copy_path, j.dump() + "\n", 0600);
    }
    lock.lock();
    if (!status.ok()) {
      if (status.message() != last_head_error) {
        SIGNUM_LOG_ERROR("audit", "cannot update the head file (a truncated tail after seq "
                                      << head_seq << " would go unnoticed): " << status.ToString());
        last_head_error = status.message();
      }
      return false;
    }
    last_head_error.clear();
    head_seq = seq;
    return true;
  }

  // The head writer: whenever records became durable, rewrites the head once for all of them.
  void HeadThreadMain() {
    std::unique_lock<std::mutex> lock(mu);
    for (;;) {
      head_changed.wait(lock, [&] { return stopping || durable_seq > head_seq; });
      if (durable_seq > head_seq) {
        if (WriteHeadLocked(lock)) {
          if (options.head_interval_ms > 0) {
            head_changed.wait_for(lock, std::chrono::milliseconds(options.head_interval_ms),
                                  [&] { return stopping; });
          }
          continue;  // more may have become durable meanwhile
        }
        if (stopping) return;
        head_changed.wait_for(lock, std::chrono::seconds(1), [&] { return stopping; });
        continue;  // retry (once more when stopping)
      }
      if (stopping) return;
    }
  }

  // Queues one record chained to the newest queued one; called with mu held.
  void QueueLocked(const std::string& event_json, Waiter* waiter) {
    const uint64_t seq = next_seq++;
    const std::string time = NowWithMillis();
    const std::string hash = Sha256Hex(last_hash, CanonicalBody(event_json, last_hash, seq, time));
    pending += RecordLine(event_json, hash, last_hash, seq, time);
    pending_waiters.push_back(waiter);
    last_hash = hash;
  }

  // Cuts the file back to its last durable record; called without mu by the leader only.
  Status CutBackToDurable(uint64_t size) {
    if (::ftruncate(fd, static_cast<off_t>(size)) != 0 || ::fdatasync(fd) != 0) {
      return InternalError(Errno("cannot cut the failed write off audit log", path));
    }
    return Status::Ok();
  }

  // One leader's flush of everything queued; called with mu held (released while writing).
  void FlushLocked(std::unique_lock<std::mutex>& lock) {
    flushing = true;
    std::string batch;
    batch.swap(pending);
    std::vector<Waiter*> batch_waiters;
    batch_waiters.swap(pending_waiters);
    const uint64_t batch_seq = next_seq - 1;
    const std::string batch_hash = last_hash;
    const uint64_t size_before = durable_size;
    const bool cut_first = tail_dirty;
    lock.unlock();
    Status status = cut_first ? CutBackToDurable(size_before) : Status::Ok();
    bool dirty = cut_first && !status.ok();
    if (status.ok()) {
      status = WriteAllAndSync(fd, batch, path);
      // Whatever part of the batch reached the file must go, or the chain breaks at it.
      if (!status.ok()) dirty = !CutBackToDurable(size_before).ok();
    }
    lock.lock();
    flushing = false;
    tail_dirty = dirty;
    if (status.ok()) {
      durable_seq = batch_seq;
      durable_hash = batch_hash;
      durable_size = size_before + batch.size();
      ++syncs;
      if (!failure.ok()) {
        SIGNUM_LOG_INFO("audit", "audit log writable again after " << refused_records
                                                                    << " refused records");
      }
      failure = Status::Ok();
      refused_records = 0;
      outage_record_queued = false;
      for (Waiter* w : batch_waiters) {
        if (w != nullptr) w->done = true;
      }
      head_changed.notify_one();
    } else {
      if (failure.ok()) {
        failure_since = NowWithMillis();
        SIGNUM_LOG_ERROR("audit", "audit write failed (records refused until a write succeeds): "
                                      << status.ToString());
      }
      failure = UnavailableError("audit log cannot be written: " + status.message());
      // The records queued meanwhile were chained to the failed ones: they fail too.
      for (std::vector<Waiter*>* waiters : {&batch_waiters, &pending_waiters}) {
        for (Waiter* w : *waiters) {
          if (w == nullptr) continue;
          w->done = true;
          w->result = failure;
          ++refused_records;
        }
      }
      pending.clear();
      pending_waiters.clear();
      next_seq = durable_seq + 1;
      last_hash = durable_seq == 0 ? kZeroHash : durable_hash;
      outage_record_queued = false;
    }
    flushed.notify_all();
  }

  Status AppendJson(const std::string& event_json) {
    std::unique_lock<std::mutex> lock(mu);
    if (!failure.ok() && !outage_record_queued) {
      // Recovering: the chain says first what was refused while the log could not be written.
      const json outage = {{"type", "audit-outage"},
                           {"since", failure_since},
                           {"refused_records", refused_records},
                           {"error", failure.message()}};
      QueueLocked(Dump(outage), nullptr);
      outage_record_queued = true;
    }
    Waiter me;
    QueueLocked(event_json, &me);
    while (!me.done) {
      if (flushing) {
        flushed.wait(lock);
        continue;
      }
      FlushLocked(lock);  // leader: everything queued so far, including this record
    }
    return me.result;
  }

  std::string path;
  AuditOptions options;
  int fd = -1;

  mutable std::mutex mu;
  std::condition_variable flushed;
  uint64_t next_seq = 1;                // seq of the next record
  std::string last_hash;                // hash of the newest queued record: the next record's prev
  std::string pending;                  // queued lines, not yet written
  std::vector<Waiter*> pending_waiters;  // their Appends (nullptr for the outage record)
  bool flushing = false;                // a leader is writing
  uint64_t durable_seq = 0;             // newest record on disk
  std::string durable_hash;
  uint64_t durable_size = 0;  // file length after durable_seq
  bool tail_dirty = false;    // a failed write could not be cut off yet
  Status failure;             // the last write's error until a write succeeds
  std::string failure_since;
  uint64_t refused_records = 0;
  bool outage_record_queued = false;
  std::chrono::steady_clock::time_point last_probe{};
  uint64_t syncs = 0;

  std::condition_variable head_changed;
  std::thread head_thread;
  bool stopping = false;
  uint64_t head_seq = 0;  // newest seq the head file holds
  std::string last_head_error;
};

Result<std::unique_ptr<AuditLog>> AuditLog::Open(const std::string& path, AuditOptions options) {
  try {
    auto impl = std::make_unique<Impl>();
    impl->path = path;
    impl->options = options;
    impl->fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
    if (impl->fd < 0) return InternalError(Errno("cannot open audit log", path));
    if (::flock(impl->fd, LOCK_EX | LOCK_NB) != 0) {
      if (errno == EWOULDBLOCK) {
        return FailedPreconditionError("audit log " + path + " is in use by another process");
      }
      return InternalError(Errno("cannot lock audit log", path));
    }
    struct stat st {};
    if (::fstat(impl->fd, &st) != 0) return InternalError(Errno("cannot stat audit log", path));
    const uint64_t size = static_cast<uint64_t>(st.st_size);
    // A torn final record (a crash in the middle of a write, never acknowledged) is moved aside,
    // but only once everything before it verifies: damage anywhere else is refused.
    SIGNUM_ASSIGN_OR_RETURN(std::optional<TornTail> torn, FindTornTail(path, size));
    const uint64_t verified_length = torn ? torn->offset : size;
    auto verified = Verify(path, options.head_copy_path, verified_length);
    if (!verified.ok()) {
      return DataLossError("refusing to extend audit log " + path + ": " +
                           verified.status().message() +
                           (torn ? " (and its last line is torn: " + torn->reason + ")" : ""));
    }
    std::optional<json> tail_event;
    if (torn) {
      std::string torn_bytes(size - torn->offset, '\0');
      const int rfd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
      const bool read_ok =
          rfd >= 0 && ::pread(rfd, torn_bytes.data(), torn_bytes.size(),
                              static_cast<off_t>(torn->offset)) ==
                          static_cast<ssize_t>(torn_bytes.size());
      if (rfd >= 0) ::close(rfd);
      if (!read_ok) return InternalError(Errno("cannot read the torn tail of audit log", path));
      const std::string recovery_path = path + ".torn-" + CompactNow();
      SIGNUM_RETURN_IF_ERROR(WriteFileAtomically(recovery_path, torn_bytes, 0600));
      SIGNUM_RETURN_IF_ERROR(impl->CutBackToDurable(torn->offset));
      SIGNUM_LOG_WARN("audit", "audit log " << path << " ended with a torn record ("
                                            << torn->reason << ", " << torn_bytes.size()
                                            << " bytes); moved to " << recovery_path);
      tail_event = json{{"type", "audit-tail-recovered"},
                        {"reason", torn->reason},
                        {"bytes", torn_bytes.size()},
                        {"sha256", Sha256Hex(torn_bytes, "")},
                        {"recovery_file", recovery_path}};
    }
    SyncParentDirectory(path);  // the file may have just been created
    impl->next_seq = verified->records + 1;
    impl->last_hash = verified->records == 0 ? kZeroHash : verified->last_hash;
    impl->durable_seq = verified->records;
    impl->durable_hash = verified->last_hash;
    impl->durable_size = verified_length;
    const bool head_missing = verified->records > 0 && !verified->tail_checked();
    {
      std::unique_lock<std::mutex> lock(impl->mu);
      if (verified->records > 0) {
        auto head = ReadHead(path + ".head");
        if (head.ok() && head->has_value() && (*head)->seq == verified->records) {
          impl->head_seq = (*head)->seq;
        } else {
          impl->WriteHeadLocked(lock);
        }
      }
    }
    impl->head_thread = std::thread([d = impl.get()] { d->HeadThreadMain(); });

    std::unique_ptr<AuditLog> log(new AuditLog());
    log->impl_ = std::move(impl);
    if (tail_event) SIGNUM_RETURN_IF_ERROR(log->Append(*tail_event));
    if (head_missing) {
      // The chain keeps the fact that records before this one were not anchored when it opened:
      // a tail cut before this point could not have been detected.
      SIGNUM_LOG_WARN("audit", "audit log " << path << " has no head file (nor copy): its last "
                                            << verified->records << " records are unanchored");
      SIGNUM_RETURN_IF_ERROR(log->Append(json{{"type", "audit-head-missing"},
                                              {"records", verified->records},
                                              {"missing", verified->anchors_missing}}));
    }
    return log;
  } catch (const std::exception& e) {
    return InternalError("opening audit log " + path + ": " + e.what());
  }
}

AuditLog::~AuditLog() = default;

Status AuditLog::Append(nlohmann::json event) {
  try {
    if (event.is_discarded()) return InvalidArgumentError("audit event is not a JSON value");
    return impl_->AppendJson(Dump(event));
  } catch (const std::exception& e) {
    return InternalError(std::string("audit append: ") + e.what());
  }
}

Status AuditLog::health() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->failure;
}

Status AuditLog::Probe() {
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    if (impl_->failure.ok()) return Status::Ok();
    const auto now = std::chrono::steady_clock::now();
    if (now - impl_->last_probe < std::chrono::seconds(1)) return impl_->failure;
    impl_->last_probe = now;
  }
  // Succeeds only once the disk takes writes again; the outage record goes first.
  (void)Append(json{{"type", "audit-probe"}});
  return health();
}

uint64_t AuditLog::records() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->durable_seq;
}

uint64_t AuditLog::syncs() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->syncs;
}

Result<AuditVerifyReport> VerifyAuditLog(const std::string& path,
                                         const std::string& head_copy_path) {
  try {
    return Verify(path, head_copy_path);
  } catch (const std::exception& e) {
    return InternalError("verifying audit log " + path + ": " + e.what());
  }
}

std::string SourceAddressOf(const std::string& peer) {
  if (!peer.empty() && peer.front() == '[') {
    const size_t close = peer.find(']');
    return close == std::string::npos ? peer : peer.substr(1, close - 1);
  }
  const size_t colon = peer.rfind(':');
  return colon == std::string::npos ? peer : peer.substr(0, colon);
}

FailureAuditAggregator::FailureAuditAggregator(AuditLog& log, std::string summary_type,
                                               std::chrono::milliseconds interval,
                                               size_t max_sources)
    : log_(log),
      summary_type_(std::move(summary_type)),
      interval_(interval),
      max_sources_(max_sources) {
  flusher_ = std::thread([this] {
    std::unique_lock<std::mutex> lock(mu_);
    while (!stopping_) {
      wake_.wait_for(lock, interval_ / 2, [this] { return stopping_; });
      lock.unlock();
      FlushEnded();
      lock.lock();
    }
  });
}

FailureAuditAggregator::~FailureAuditAggregator() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  wake_.notify_all();
  flusher_.join();
  FlushEnded(/*all=*/true);
}

Status FailureAuditAggregator::Record(const std::string& source, const nlohmann::json& event) {
  const auto now = std::chrono::steady_clock::now();
  std::optional<json> ended_summary;
  {
    std::lock_guard<std::mutex> lock(mu_);
    std::string key = source;
    if (!windows_.count(key) && windows_.size() >= max_sources_) key = "*";
    auto [it, fresh] = windows_.try_emplace(key);
    Window& w = it->second;
    if (!fresh && now - w.start < interval_) {
      ++w.counted;  // written with the interval's summary, not one fsync per attempt
      w.last = event;
      return Status::Ok();
    }
    // A new interval for this source; the previous one's summary, if FlushEnded has not written
    // it yet, goes first.
    if (!fresh && w.counted > 0) ended_summary = SummaryLocked(it->first, w);
    w = Window{now, NowWithMillis(), 0, event};
  }
  if (ended_summary) {
    Status s = log_.Append(std::move(*ended_summary));
    if (!s.ok()) return s;
  }
  return log_.Append(event);
}

json FailureAuditAggregator::SummaryLocked(const std::string& source, const Window& w) const {
  return json{{"type", summary_type_}, {"source", source},     {"count", w.counted},
              {"from", w.first_time},  {"to", NowWithMillis()}, {"last", w.last}};
}

void FailureAuditAggregator::FlushEnded(bool all) {
  const auto now = std::chrono::steady_clock::now();
  std::vector<json> summaries;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto it = windows_.begin(); it != windows_.end();) {
      Window& w = it->second;
      if (!all && now - w.start < interval_) {
        ++it;
        continue;
      }
      if (w.counted > 0) summaries.push_back(SummaryLocked(it->first, w));
      it = windows_.erase(it);
    }
  }
  for (json& summary : summaries) {
    Status s = log_.Append(std::move(summary));
    if (!s.ok()) SIGNUM_LOG_ERROR("audit", "cannot write " << summary_type_ << " summary: " << s.ToString());
  }
}

}  // namespace signum::server

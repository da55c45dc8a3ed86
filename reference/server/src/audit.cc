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
// Destroying the AuditLog writes a final head covering every record.
#include "audit.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <optional>
#include <thread>

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
  if (::fdatasync(fd) != 0) return InternalError(Errno("fdatasync of audit log", path));
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

Result<AuditVerifyReport> Verify(const std::string& path) {
  const std::string head_path = path + ".head";
  SIGNUM_ASSIGN_OR_RETURN(std::optional<Head> head, ReadHead(head_path));

  AuditVerifyReport report;
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
  std::string last_hash = kZeroHash;
  while (in && std::getline(in, line)) {
    ++line_no;
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
    if (head && head->seq == seq && head->hash != hash) {
      return DataLossError(where + "hash does not match the head file " + head_path +
                           " (log rewritten?)");
    }
    last_seq = seq;
    last_hash = hash;
  }
  if (in.bad()) return DataLossError(Errno("error reading audit log", path));
  if (head && head->seq > last_seq) {
    return DataLossError("log ends at seq " + std::to_string(last_seq) + " but head says " +
                         std::to_string(head->seq) + " (tail truncated)");
  }
  report.records = last_seq;
  report.last_hash = last_seq == 0 ? std::string() : last_hash;
  return report;
}

}  // namespace

class AuditLog::Impl {
 public:
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

  // Writes the head for the newest durable record; called with mu held (and released inside).
  // Returns false if the write failed.
  bool WriteHeadLocked(std::unique_lock<std::mutex>& lock) {
    const uint64_t seq = durable_seq;
    const json j = {{"seq", seq}, {"hash", durable_hash}};
    lock.unlock();
    Status status = WriteFileAtomically(path + ".head", j.dump() + "\n", 0600);
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
        if (WriteHeadLocked(lock)) continue;  // more may have become durable meanwhile
        if (stopping) return;
        head_changed.wait_for(lock, std::chrono::seconds(1), [&] { return stopping; });
        continue;  // retry (once more when stopping)
      }
      if (stopping) return;
    }
  }

  std::string path;
  int fd = -1;

  mutable std::mutex mu;
  std::condition_variable flushed;
  uint64_t next_seq = 1;     // seq of the next record
  std::string last_hash;     // hash of the newest queued record: the next record's prev
  std::string pending;       // queued lines, not yet written
  bool flushing = false;     // a leader is writing
  uint64_t durable_seq = 0;  // newest record on disk
  std::string durable_hash;
  Status failure;  // sticky: once a write fails the log takes no more records
  uint64_t syncs = 0;

  std::condition_variable head_changed;
  std::thread head_thread;
  bool stopping = false;
  uint64_t head_seq = 0;  // newest seq the head file holds
  std::string last_head_error;
};

Result<std::unique_ptr<AuditLog>> AuditLog::Open(const std::string& path) {
  try {
    auto impl = std::make_unique<Impl>();
    impl->path = path;
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
    if (st.st_size > 0) {
      // A line is written with its '\n'; a missing one means a crash in the middle of a write.
      const int rfd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
      if (rfd < 0) return InternalError(Errno("cannot read audit log", path));
      char last = 0;
      const ssize_t n = ::pread(rfd, &last, 1, st.st_size - 1);
      ::close(rfd);
      if (n != 1) return InternalError(Errno("cannot read audit log", path));
      if (last != '\n') {
        return DataLossError(
            "audit log " + path + " ends with an incomplete record (no trailing newline; the " +
            "server probably crashed while writing it). That record was never acknowledged. " +
            "Inspect the text after the last newline, then cut it off (e.g. truncate the file " +
            "to just after its last '\\n') and run audit-verify before restarting.");
      }
    }
    auto verified = Verify(path);
    if (!verified.ok()) {
      return DataLossError("refusing to extend audit log " + path + ": " +
                           verified.status().message());
    }
    SyncParentDirectory(path);  // the file may have just been created
    impl->next_seq = verified->records + 1;
    impl->last_hash = verified->records == 0 ? kZeroHash : verified->last_hash;
    impl->durable_seq = verified->records;
    impl->durable_hash = verified->last_hash;
    // Make sure a head exists (logs written before the head existed, or a head write that
    // failed): from now on a truncated tail is detectable.
    {
      std::unique_lock<std::mutex> lock(impl->mu);
      if (verified->records > 0) {
        // A log whose head is missing (written before heads existed, or lost): from now on a
        // truncated tail is detectable.
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
    return log;
  } catch (const std::exception& e) {
    return InternalError("opening audit log " + path + ": " + e.what());
  }
}

AuditLog::~AuditLog() = default;

Status AuditLog::Append(nlohmann::json event) {
  try {
    if (event.is_discarded()) return InvalidArgumentError("audit event is not a JSON value");
    const std::string event_json = Dump(event);
    Impl& d = *impl_;

    std::unique_lock<std::mutex> lock(d.mu);
    if (!d.failure.ok()) return d.failure;
    const uint64_t seq = d.next_seq++;
    const std::string time = NowWithMillis();
    const std::string hash =
        Sha256Hex(d.last_hash, CanonicalBody(event_json, d.last_hash, seq, time));
    d.pending += RecordLine(event_json, hash, d.last_hash, seq, time);
    d.last_hash = hash;

    while (d.durable_seq < seq && d.failure.ok()) {
      if (d.flushing) {
        d.flushed.wait(lock);
        continue;
      }
      // Leader: flush everything queued so far (including this record).
      d.flushing = true;
      std::string batch;
      batch.swap(d.pending);
      const uint64_t batch_seq = d.next_seq - 1;
      const std::string batch_hash = d.last_hash;
      lock.unlock();
      Status status = WriteAllAndSync(d.fd, batch, d.path);
      lock.lock();
      d.flushing = false;
      if (status.ok()) {
        d.durable_seq = batch_seq;
        d.durable_hash = batch_hash;
        ++d.syncs;
        d.head_changed.notify_one();
      } else {
        d.failure = Status(status.code(),
                           "audit log is unusable after a failed write: " + status.message());
        SIGNUM_LOG_ERROR("audit", d.failure.message());
      }
      d.flushed.notify_all();
    }
    return d.durable_seq >= seq ? Status::Ok() : d.failure;
  } catch (const std::exception& e) {
    return InternalError(std::string("audit append: ") + e.what());
  }
}

uint64_t AuditLog::records() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->durable_seq;
}

uint64_t AuditLog::syncs() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->syncs;
}

Result<AuditVerifyReport> VerifyAuditLog(const std::string& path) {
  try {
    return Verify(path);
  } catch (const std::exception& e) {
    return InternalError("verifying audit log " + path + ": " + e.what());
  }
}

}  // namespace signum::server

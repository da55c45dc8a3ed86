// The audit log: one JSON line per decision, hash-chained to the previous line, fsync'd before
// the answer leaves. Restarting continues the chain; `signum-server audit-verify` finds any edit,
// drop or reorder.
//
// Line format: {"seq":N,"time":"...","prev":"<hex sha256 of previous line's hash>","event":{...},
//               "hash":"<hex sha256 over prev || canonical JSON of {seq,time,prev,event}>"}
// The first record's prev is 64 zeros. A sidecar "<path>.head" holds the last seq and hash so a
// truncated tail is detected too; AuditOptions::head_copy_path keeps a second copy of it elsewhere
// (next to the state file), so deleting one file does not make a cut tail undetectable.
//
// A write that fails (disk full, I/O error) is rolled back (the file is cut back to its last
// complete record) and refused; the log is unhealthy (health()) until a later write succeeds, which
// first records the outage in the chain. There is no sticky failure: each append retries.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "signum/core/status.h"

namespace signum::server {

struct AuditOptions {
  // A second copy of the head file, kept in another directory (the server uses the state file's):
  // empty = none.
  std::string head_copy_path;
  // Least time between two head rewrites. Each rewrite is two atomic file replacements (write,
  // fsync, rename, fsync the directory, for the head and its copy); rewriting after every flush
  // put four fsyncs beside every sparse record's fdatasync, and on ext4 they share one journal,
  // so the disk path ran at half its durable limit (docs/performance.md). With an interval the
  // head lags the log by at most this much (plus one write) under any load; verification accepts
  // a log longer than its head, and the final head at shutdown covers every record. 0 = after
  // every flush.
  int head_interval_ms = 0;
};

class AuditLog {
 public:
  // Opens (creating if needed) and verifies the log so new records continue the chain. A log that
  // fails verification is refused (kDataLoss) rather than extended, with one exception: a torn
  // final record (no trailing newline, or a last line that is not JSON: a crash mid-write) is moved
  // aside into "<path>.torn-<time>" and an "audit-tail-recovered" record says so. A missing head
  // (with records in the log) is recorded as "audit-head-missing".
  static Result<std::unique_ptr<AuditLog>> Open(const std::string& path, AuditOptions options = {});
  ~AuditLog();

  // Appends one record and returns after it is on disk. Concurrent callers share fsyncs (group
  // commit), so throughput does not collapse under load. A failed write is rolled back and
  // returned; the next Append tries again.
  Status Append(nlohmann::json event);
  // Ok, or kUnavailable with the error of the last write while the log cannot be written.
  Status health() const;
  // While unhealthy: tries a write (at most once a second) so that health() notices by itself
  // that space came back. Returns health().
  Status Probe();
  uint64_t records() const;
  // fdatasync(2) calls on the log so far; with group commit, concurrent appends share them.
  uint64_t syncs() const;

 private:
  AuditLog() = default;
  class Impl;
  std::unique_ptr<Impl> impl_;
};

struct AuditVerifyReport {
  uint64_t records = 0;
  std::string last_hash;
  // What the tail was checked against ("head file <path> (seq N)") and what could not be
  // ("head file <path>: missing"). With no anchor checked, a cut tail cannot be detected.
  std::vector<std::string> anchors_checked;
  std::vector<std::string> anchors_missing;
  uint64_t server_starts = 0;  // "server-start" records in the chain
  bool tail_checked() const { return !anchors_checked.empty(); }
};
// kDataLoss naming the first bad line (edit, drop, reorder, truncation vs. the head file or its
// copy). head_copy_path: the copy the server keeps (AuditOptions), empty = not checked.
Result<AuditVerifyReport> VerifyAuditLog(const std::string& path,
                                         const std::string& head_copy_path = "");

// Audits repeated failures (authentication, TLS client certificates) without letting a flood turn
// into one fsync'd record per attempt: the first failure from a source address in an interval is
// recorded at once, as the caller built it; later ones in the same interval are only counted, and
// one summary record {"type":<summary_type>,"source":...,"count":N,"from":...,"to":...,"last":...}
// per source is written when the interval ends. At most max_sources addresses are tracked; beyond
// that failures are counted under the source "*".
class FailureAuditAggregator {
 public:
  FailureAuditAggregator(AuditLog& log, std::string summary_type,
                         std::chrono::milliseconds interval, size_t max_sources = 4096);
  ~FailureAuditAggregator();  // writes the pending summaries

  // Records one failure from source (an address without port). Returns the audit's status when
  // the failure was written now (the caller fails closed on it), Ok when it was counted.
  Status Record(const std::string& source, const nlohmann::json& event);
  // Writes the summaries of every interval that has ended (the background thread calls it).
  void FlushEnded(bool all = false);

 private:
  struct Window {
    std::chrono::steady_clock::time_point start;
    std::string first_time;  // wall clock of the first failure in the interval
    uint64_t counted = 0;    // failures after the first, not yet written
    nlohmann::json last;
  };
  nlohmann::json SummaryLocked(const std::string& source, const Window& w) const;
  AuditLog& log_;
  const std::string summary_type_;
  const std::chrono::milliseconds interval_;
  const size_t max_sources_;
  std::mutex mu_;
  std::condition_variable wake_;
  bool stopping_ = false;
  std::map<std::string, Window> windows_;
  std::thread flusher_;
};

// "127.0.0.1:5555" -> "127.0.0.1", "[::1]:5555" -> "::1".
std::string SourceAddressOf(const std::string& peer);

}  // namespace signum::server

// The audit log: one JSON line per decision, hash-chained to the previous line, fsync'd before
// the answer leaves. Restarting continues the chain; `signum-server audit-verify` finds any edit,
// drop or reorder.
//
// Line format: {"seq":N,"time":"...","prev":"<hex sha256 of previous line's hash>","event":{...},
//               "hash":"<hex sha256 over prev || canonical JSON of {seq,time,prev,event}>"}
// The first record's prev is 64 zeros. A sidecar "<path>.head" holds the last seq and hash so a
// truncated tail is detected too.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>

#include <nlohmann/json.hpp>

#include "signum/core/status.h"

namespace signum::server {

class AuditLog {
 public:
  // Opens (creating if needed) and verifies the tail so new records continue the chain. A log
  // that fails verification is refused (kDataLoss) rather than extended.
  static Result<std::unique_ptr<AuditLog>> Open(const std::string& path);
  ~AuditLog();

  // Appends one record and returns after it is on disk. Concurrent callers share fsyncs (group
  // commit), so throughput does not collapse under load.
  Status Append(nlohmann::json event);
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
};
// kDataLoss naming the first bad line (edit, drop, reorder, truncation vs. the head file).
Result<AuditVerifyReport> VerifyAuditLog(const std::string& path);

}  // namespace signum::server

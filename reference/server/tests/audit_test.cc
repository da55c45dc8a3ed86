// The hash-chained audit log: append/verify, reopen, every kind of tampering, crash leftovers and
// group commit under concurrency.
#include "audit.h"

#include <gtest/gtest.h>
#include <sched.h>
#include <sys/mount.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>
#include <vector>

#include "signum/core/crypto.h"
#include "signum/testing/status_matchers.h"
#include "signum/testing/temp_dir.h"

namespace signum::server {
namespace {

using ::signum::testing::StatusIs;

using nlohmann::json;
using signum::testing::TempDir;

std::vector<std::string> ReadLines(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::vector<std::string> lines;
  std::string line;
  while (std::getline(in, line)) lines.push_back(line);
  return lines;
}

void WriteLines(const std::string& path, const std::vector<std::string>& lines) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  for (const std::string& line : lines) out << line << '\n';
}

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

json Event(int i) {
  return {{"type", "sign"},
          {"user", "alice"},
          {"certificate", "rsa-2048"},
          {"allowed", i % 3 != 0},
          {"i", i},
          {"context", {{"process", "signtool.exe"}, {"pid", 1000 + i}}}};
}

// Writes n records to a fresh log at path.
void WriteLog(const std::string& path, int n) {
  auto log = AuditLog::Open(path);
  ASSERT_OK(log);
  for (int i = 1; i <= n; ++i) ASSERT_OK((*log)->Append(Event(i)));
}

std::string Sha256Hex(const std::string& text) {
  return HexEncode(Digest(HashAlgorithm::kSha256, AsBytes(text)));
}

// The documented hash, computed independently of audit.cc.
std::string ExpectedHash(const json& rec) {
  const json body = {
      {"seq", rec["seq"]}, {"time", rec["time"]}, {"prev", rec["prev"]}, {"event", rec["event"]}};
  return Sha256Hex(rec["prev"].get<std::string>() + body.dump());
}

void ExpectDataLoss(const std::string& path, const std::string& message) {
  auto report = VerifyAuditLog(path);
  ASSERT_FALSE(report.ok()) << "tampering not detected";
  EXPECT_THAT(report, StatusIs(ErrorCode::kDataLoss));
  EXPECT_NE(report.status().message().find(message), std::string::npos)
      << report.status().message();
  // And the server refuses to extend it.
  auto log = AuditLog::Open(path);
  ASSERT_THAT(log, StatusIs(ErrorCode::kDataLoss));
  EXPECT_NE(log.status().message().find(message), std::string::npos) << log.status().message();
}

TEST(AuditLog, AppendAndVerify) {
  TempDir dir;
  const std::string path = dir.File("audit.log");
  {
    auto log = AuditLog::Open(path);
    ASSERT_OK(log);
    EXPECT_EQ((*log)->records(), 0u);
    for (int i = 1; i <= 10; ++i) ASSERT_OK((*log)->Append(Event(i)));
    EXPECT_EQ((*log)->records(), 10u);
    EXPECT_EQ((*log)->syncs(), 10u);  // sequential appends: one fdatasync each
  }
  const std::string text = ReadAll(path);
  ASSERT_FALSE(text.empty());
  EXPECT_EQ(text.back(), '\n');

  const std::vector<std::string> lines = ReadLines(path);
  ASSERT_EQ(lines.size(), 10u);
  std::string prev(64, '0');
  for (size_t i = 0; i < lines.size(); ++i) {
    SCOPED_TRACE(lines[i]);
    const json rec = json::parse(lines[i]);
    EXPECT_EQ(rec.dump(), lines[i]);  // lines are canonical JSON themselves
    EXPECT_EQ(rec["seq"], i + 1);
    EXPECT_EQ(rec["prev"], prev);
    EXPECT_EQ(rec["event"], Event(static_cast<int>(i + 1)));
    EXPECT_EQ(rec["hash"], ExpectedHash(rec));
    const std::string time = rec["time"];
    EXPECT_EQ(time.size(), 24u) << time;  // 2026-11-27T09:30:00.123Z
    EXPECT_EQ(time.back(), 'Z');
    prev = rec["hash"];
  }

  auto report = VerifyAuditLog(path);
  ASSERT_OK(report);
  EXPECT_EQ(report->records, 10u);
  EXPECT_EQ(report->last_hash, prev);

  const json head = json::parse(ReadAll(path + ".head"));
  EXPECT_EQ(head["seq"], 10);
  EXPECT_EQ(head["hash"], prev);
}

TEST(AuditLog, OddEventsStayVerifiable) {
  TempDir dir;
  const std::string path = dir.File("audit.log");
  {
    auto log = AuditLog::Open(path);
    ASSERT_OK(log);
    ASSERT_OK((*log)->Append({{"zeta", 1}, {"alpha", {{"y", 2}, {"x", 1}}}}));
    ASSERT_OK((*log)->Append({{"text", "caf\xc3\xa9 \xe2\x9c\x93 \"quoted\" \\ \n tab\t"}}));
    ASSERT_OK((*log)->Append({{"invalid_utf8", std::string("\xff\xfe bad")}}));
    ASSERT_OK((*log)->Append({{"float", 0.1}, {"big", 18446744073709551615ull}, {"neg", -5}}));
    ASSERT_OK((*log)->Append(json::array({1, "two", nullptr})));
    ASSERT_OK((*log)->Append("just a string"));
  }
  auto report = VerifyAuditLog(path);
  ASSERT_OK(report);
  EXPECT_EQ(report->records, 6u);
}

TEST(AuditLog, EmptyOrMissingLogHasNoRecords) {
  TempDir dir;
  auto missing = VerifyAuditLog(dir.File("nothing.log"));
  ASSERT_OK(missing);
  EXPECT_EQ(missing->records, 0u);
  std::ofstream(dir.File("empty.log")).close();
  auto empty = VerifyAuditLog(dir.File("empty.log"));
  ASSERT_OK(empty);
  EXPECT_EQ(empty->records, 0u);
  auto log = AuditLog::Open(dir.File("empty.log"));
  ASSERT_OK(log);
  ASSERT_OK((*log)->Append(Event(1)));
  EXPECT_EQ(json::parse(ReadLines(dir.File("empty.log"))[0])["seq"], 1);
}

TEST(AuditLog, ReopenContinuesTheChain) {
  TempDir dir;
  const std::string path = dir.File("audit.log");
  WriteLog(path, 5);
  {
    auto log = AuditLog::Open(path);
    ASSERT_OK(log);
    EXPECT_EQ((*log)->records(), 5u);
    for (int i = 6; i <= 8; ++i) ASSERT_OK((*log)->Append(Event(i)));
    EXPECT_EQ((*log)->records(), 8u);
  }
  const std::vector<std::string> lines = ReadLines(path);
  ASSERT_EQ(lines.size(), 8u);
  EXPECT_EQ(json::parse(lines[5])["seq"], 6);
  EXPECT_EQ(json::parse(lines[5])["prev"], json::parse(lines[4])["hash"]);
  auto report = VerifyAuditLog(path);
  ASSERT_OK(report);
  EXPECT_EQ(report->records, 8u);
}

TEST(AuditLog, SecondWriterIsRefused) {
  TempDir dir;
  const std::string path = dir.File("audit.log");
  auto first = AuditLog::Open(path);
  ASSERT_OK(first);
  auto second = AuditLog::Open(path);
  ASSERT_THAT(second, StatusIs(ErrorCode::kFailedPrecondition));
}

TEST(AuditTamper, EditedEventIsDetectedWithLineNumber) {
  TempDir dir;
  const std::string path = dir.File("audit.log");
  WriteLog(path, 10);
  std::vector<std::string> lines = ReadLines(path);
  const size_t pos = lines[6].find("alice");
  ASSERT_NE(pos, std::string::npos);
  lines[6][pos] = 'A';  // "Alice": still valid JSON
  WriteLines(path, lines);
  ExpectDataLoss(path, "line 7: hash mismatch (record edited)");
}

TEST(AuditTamper, EditedButUnparseableLineIsDetected) {
  TempDir dir;
  const std::string path = dir.File("audit.log");
  WriteLog(path, 4);
  std::vector<std::string> lines = ReadLines(path);
  lines[2][0] = '[';
  WriteLines(path, lines);
  ExpectDataLoss(path, "line 3: ");
}

TEST(AuditTamper, DroppedLineIsDetected) {
  TempDir dir;
  const std::string path = dir.File("audit.log");
  WriteLog(path, 10);
  std::vector<std::string> lines = ReadLines(path);
  lines.erase(lines.begin() + 4);  // seq 5
  WriteLines(path, lines);
  ExpectDataLoss(path, "line 5: seq 6 follows 4 (record dropped or reordered)");
}

TEST(AuditTamper, DroppedFirstLineIsDetected) {
  TempDir dir;
  const std::string path = dir.File("audit.log");
  WriteLog(path, 3);
  std::vector<std::string> lines = ReadLines(path);
  lines.erase(lines.begin());
  WriteLines(path, lines);
  ExpectDataLoss(path, "line 1: seq 2 follows 0");
}

TEST(AuditTamper, SwappedLinesAreDetected) {
  TempDir dir;
  const std::string path = dir.File("audit.log");
  WriteLog(path, 10);
  std::vector<std::string> lines = ReadLines(path);
  std::swap(lines[3], lines[4]);
  WriteLines(path, lines);
  ExpectDataLoss(path, "line 4: seq 5 follows 3 (record dropped or reordered)");
}

TEST(AuditTamper, RehashedEditBreaksTheNextPrev) {
  TempDir dir;
  const std::string path = dir.File("audit.log");
  WriteLog(path, 10);
  std::vector<std::string> lines = ReadLines(path);
  // A careful forger edits line 4 and recomputes its hash; line 5 still names the old one.
  json rec = json::parse(lines[3]);
  rec["event"]["allowed"] = true;
  rec["event"]["user"] = "mallory";
  rec["hash"] = ExpectedHash(rec);
  lines[3] = rec.dump();
  WriteLines(path, lines);
  ExpectDataLoss(path, "line 5: prev does not match line 4's hash");
}

TEST(AuditTamper, TruncatedTailIsDetectedThroughTheHead) {
  TempDir dir;
  const std::string path = dir.File("audit.log");
  WriteLog(path, 10);
  std::vector<std::string> lines = ReadLines(path);
  lines.pop_back();
  WriteLines(path, lines);  // a perfectly valid chain of 9 records
  ExpectDataLoss(path, "log ends at seq 9 but the head file " + path + ".head says 10 (tail truncated)");

  // Deleting the whole log is a truncation too.
  ASSERT_EQ(::unlink(path.c_str()), 0);
  ExpectDataLoss(path, "log ends at seq 0 but the head file " + path + ".head says 10 (tail truncated)");
}

TEST(AuditTamper, RewrittenLogDoesNotMatchTheHead) {
  TempDir dir;
  const std::string path = dir.File("audit.log");
  const std::string other = dir.File("other.log");
  WriteLog(path, 3);
  {
    auto log = AuditLog::Open(other);  // a different, internally valid chain
    ASSERT_OK(log);
    for (int i = 0; i < 3; ++i) ASSERT_OK((*log)->Append({{"forged", i}}));
  }
  std::ifstream src(other, std::ios::binary);
  std::ofstream(path, std::ios::binary | std::ios::trunc) << src.rdbuf();
  ExpectDataLoss(path, "hash does not match the head file");
}

// The files next to path whose name starts with path's name + suffix.
std::vector<std::string> SiblingsWithPrefix(const std::string& path, const std::string& suffix) {
  std::vector<std::string> found;
  const std::filesystem::path p(path);
  for (const auto& entry : std::filesystem::directory_iterator(p.parent_path())) {
    if (entry.path().filename().string().starts_with(p.filename().string() + suffix))
      found.push_back(entry.path().string());
  }
  return found;
}

TEST(AuditCrash, PartialLastLineIsMovedAsideRecordedAndTheServerStarts) {
  TempDir dir;
  const std::string path = dir.File("audit.log");
  WriteLog(path, 5);
  const std::string torn = R"({"event":{"type":"sign","us)";  // crash in the middle of a write
  std::ofstream(path, std::ios::binary | std::ios::app) << torn;
  // audit-verify still reports it; opening moves it aside instead of refusing to start.
  auto report = VerifyAuditLog(path);
  ASSERT_FALSE(report.ok());
  EXPECT_NE(report.status().message().find("line 6: incomplete last line"), std::string::npos)
      << report.status().message();

  auto log = AuditLog::Open(path);
  ASSERT_OK(log);
  const std::vector<std::string> recovery = SiblingsWithPrefix(path, ".torn-");
  ASSERT_EQ(recovery.size(), 1u);
  EXPECT_EQ(ReadAll(recovery[0]), torn);
  ASSERT_OK((*log)->Append(Event(7)));
  EXPECT_EQ((*log)->records(), 7u);  // 5, the recovery record, the new one
  log->reset();
  const std::vector<std::string> lines = ReadLines(path);
  ASSERT_EQ(lines.size(), 7u);
  const json recovered = json::parse(lines[5])["event"];
  EXPECT_EQ(recovered["type"], "audit-tail-recovered");
  EXPECT_EQ(recovered["reason"], "no trailing newline");
  EXPECT_EQ(recovered["bytes"], torn.size());
  EXPECT_EQ(recovered["recovery_file"], recovery[0]);
  EXPECT_OK(VerifyAuditLog(path));
}

TEST(AuditCrash, UnparseableCompleteLastLineIsMovedAsideToo) {
  TempDir dir;
  const std::string path = dir.File("audit.log");
  WriteLog(path, 3);
  std::ofstream(path, std::ios::binary | std::ios::app) << "{\"event\":\x01garbage\n";
  auto log = AuditLog::Open(path);
  ASSERT_OK(log);
  log->reset();
  EXPECT_EQ(json::parse(ReadLines(path)[3])["event"]["reason"], "last line is not JSON");
  EXPECT_OK(VerifyAuditLog(path));
}

TEST(AuditCrash, CorruptionBeforeATornTailStillRefusesToStart) {
  TempDir dir;
  const std::string path = dir.File("audit.log");
  WriteLog(path, 5);
  std::vector<std::string> lines = ReadLines(path);
  lines[1].replace(lines[1].find("alice"), 5, "mallo");
  WriteLines(path, lines);
  std::ofstream(path, std::ios::binary | std::ios::app) << R"({"event":{"ty)";
  auto log = AuditLog::Open(path);
  ASSERT_THAT(log, StatusIs(ErrorCode::kDataLoss));
  EXPECT_NE(log.status().message().find("line 2: hash mismatch"), std::string::npos)
      << log.status().message();
  EXPECT_TRUE(SiblingsWithPrefix(path, ".torn-").empty());  // nothing was touched
}

TEST(AuditCrash, HeadLaggingBehindTheLogIsFine) {
  // A crash between the log's fdatasync and the head rewrite leaves the head one batch behind.
  TempDir dir;
  const std::string path = dir.File("audit.log");
  WriteLog(path, 3);
  const std::string old_head = ReadAll(path + ".head");
  {
    auto log = AuditLog::Open(path);
    ASSERT_OK(log);
    ASSERT_OK((*log)->Append(Event(4)));
  }
  std::ofstream(path + ".head", std::ios::binary | std::ios::trunc) << old_head;
  auto report = VerifyAuditLog(path);
  ASSERT_OK(report);
  EXPECT_EQ(report->records, 4u);
  // Reopening brings the head up to date.
  ASSERT_OK(AuditLog::Open(path));
  EXPECT_EQ(json::parse(ReadAll(path + ".head"))["seq"], 4);
}

TEST(AuditLog, ConcurrentAppendsShareFsyncs) {
  TempDir dir;
  const std::string path = dir.File("audit.log");
  constexpr int kThreads = 8;
  constexpr int kPerThread = 200;
  auto log = AuditLog::Open(path);
  ASSERT_OK(log);
  AuditLog& audit = **log;

  const auto start = std::chrono::steady_clock::now();
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        if (!audit.Append({{"thread", t}, {"i", i}}).ok()) ++failures;
      }
    });
  }
  for (std::thread& th : threads) th.join();
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(audit.records(), static_cast<uint64_t>(kThreads * kPerThread));
  const uint64_t syncs = audit.syncs();
  std::printf(
      "[   INFO   ] %d appends from %d threads in %.3f s (%.0f/s), %llu fdatasyncs "
      "(%.1f records per sync)\n",
      kThreads * kPerThread, kThreads, seconds, kThreads * kPerThread / seconds,
      static_cast<unsigned long long>(syncs),
      static_cast<double>(kThreads * kPerThread) / static_cast<double>(syncs));
  EXPECT_LT(syncs, static_cast<uint64_t>(kThreads * kPerThread));
  (*log).reset();  // the final head write

  auto report = VerifyAuditLog(path);
  ASSERT_OK(report);
  EXPECT_EQ(report->records, static_cast<uint64_t>(kThreads * kPerThread));
  EXPECT_EQ(json::parse(ReadAll(path + ".head"))["seq"], kThreads * kPerThread);

  // Every thread's records are in its own order.
  std::vector<int> next(kThreads, 0);
  for (const std::string& line : ReadLines(path)) {
    const json rec = json::parse(line);
    const int t = rec["event"]["thread"];
    EXPECT_EQ(rec["event"]["i"], next[t]);
    next[t] = rec["event"]["i"].get<int>() + 1;
  }
}

// A tiny tmpfs in a private mount namespace of this (single-threaded at this point) test process:
// a real ENOSPC, invisible to the rest of the machine and gone when the process exits.
class TinyFilesystem {
 public:
  // Empty reason() = mounted.
  explicit TinyFilesystem(const std::string& dir, const std::string& size) : dir_(dir) {
    if (::unshare(CLONE_NEWNS) != 0) {
      reason_ = std::string("unshare(CLONE_NEWNS): ") + std::strerror(errno) +
                " (needs root or CAP_SYS_ADMIN, and a single-threaded process)";
      return;
    }
    if (::mount("none", "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0 ||
        ::mount("tmpfs", dir.c_str(), "tmpfs", 0, ("size=" + size + ",mode=0700").c_str()) != 0) {
      reason_ = std::string("mounting a tmpfs: ") + std::strerror(errno);
      return;
    }
    mounted_ = true;
  }
  ~TinyFilesystem() {
    if (mounted_) ::umount2(dir_.c_str(), MNT_DETACH);
  }
  const std::string& reason() const { return reason_; }

 private:
  std::string dir_;
  std::string reason_;
  bool mounted_ = false;
};

// The disk fills while the server audits: every refused write leaves the file ending with a
// complete, chained record; the log reports itself unhealthy; once space is freed the very next
// append succeeds (no restart) and the chain says what happened.
TEST(AuditDiskFull, FailedWritesRollBackAndTheLogRecoversWhenSpaceReturns) {
  TempDir dir;
  const std::string mount_point = dir.File("tiny");
  ASSERT_TRUE(std::filesystem::create_directory(mount_point));
  TinyFilesystem fs(mount_point, "64k");
  if (!fs.reason().empty()) GTEST_SKIP() << "no private tmpfs: " << fs.reason();
  const std::string path = mount_point + "/audit.log";
  const std::string ballast = mount_point + "/ballast";
  std::ofstream(ballast, std::ios::binary) << std::string(24 * 1024, 'x');

  auto log = AuditLog::Open(path);
  ASSERT_OK(log);
  json big = Event(0);
  big["padding"] = std::string(300, 'p');  // records of ~500 bytes; the head files use blocks too
  int accepted = 0;
  Status refused;
  for (int i = 1; i <= 1000 && refused.ok(); ++i) {
    big["i"] = i;
    refused = (*log)->Append(big);
    if (refused.ok()) ++accepted;
  }
  ASSERT_FALSE(refused.ok()) << "64 KiB never filled up";
  EXPECT_THAT(refused, StatusIs(ErrorCode::kUnavailable)) << refused.ToString();
  EXPECT_GT(accepted, 10);
  EXPECT_EQ((*log)->records(), static_cast<uint64_t>(accepted));
  EXPECT_FALSE((*log)->health().ok());
  // Still full: refused again, still rolled back.
  EXPECT_FALSE((*log)->Append(Event(1)).ok());
  EXPECT_FALSE((*log)->Probe().ok());
  std::string text = ReadAll(path);
  ASSERT_FALSE(text.empty());
  EXPECT_EQ(text.back(), '\n') << "a torn record stayed behind";
  EXPECT_EQ(ReadLines(path).size(), static_cast<size_t>(accepted));
  auto report = VerifyAuditLog(path);
  ASSERT_OK(report);
  EXPECT_EQ(report->records, static_cast<uint64_t>(accepted));

  // Space comes back: the next append works, without a restart.
  ASSERT_EQ(::unlink(ballast.c_str()), 0);
  ASSERT_OK((*log)->Append(Event(2)));
  EXPECT_OK((*log)->health());
  log->reset();
  const std::vector<std::string> lines = ReadLines(path);
  ASSERT_EQ(lines.size(), static_cast<size_t>(accepted) + 2);
  const json outage = json::parse(lines[accepted])["event"];
  EXPECT_EQ(outage["type"], "audit-outage");
  EXPECT_EQ(outage["refused_records"], 3);  // the two Appends and the probe
  EXPECT_EQ(json::parse(lines.back())["event"]["i"], 2);
  report = VerifyAuditLog(path);
  ASSERT_OK(report);
  EXPECT_OK(AuditLog::Open(path));  // and it restarts without any hand repair
}

// With head_interval_ms the head is rewritten at most that often (sparse appends no longer pay
// two atomic rewrites each, docs/performance.md), it never runs ahead of the log, and the final
// head when the log closes covers every record.
TEST(AuditHead, RewritesAtMostOncePerIntervalAndCoversEverythingAtClose) {
  TempDir dir;
  const std::string path = dir.File("audit.log");
  auto head_seq = [&]() -> int64_t {
    std::ifstream in(path + ".head");
    auto j = json::parse(in, nullptr, false);
    return j.is_discarded() ? -1 : j.value("seq", int64_t{-1});
  };
  {
    auto log = AuditLog::Open(path, AuditOptions{"", /*head_interval_ms=*/60000});
    ASSERT_OK(log);
    ASSERT_OK((*log)->Append(Event(1)));
    const uint64_t first = (*log)->records();
    // The first flush's head comes at once (bounded wait for the head thread).
    for (int i = 0; i < 500 && head_seq() != static_cast<int64_t>(first); ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    ASSERT_EQ(head_seq(), static_cast<int64_t>(first));
    for (int i = 2; i <= 6; ++i) ASSERT_OK((*log)->Append(Event(i)));
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    EXPECT_EQ(head_seq(), static_cast<int64_t>(first)) << "rewritten inside the interval";
    EXPECT_OK(VerifyAuditLog(path));  // a log longer than its head verifies
  }
  auto report = VerifyAuditLog(path);
  ASSERT_OK(report);
  EXPECT_EQ(head_seq(), static_cast<int64_t>(report->records)) << "the final head covers all";
}

// A head file deleted together with a cut tail: with the copy the server keeps elsewhere the cut
// is still found; without any anchor, verification says that it could not check the tail.
TEST(AuditTamper, DeletedHeadAndCutTailIsCaughtByTheHeadCopy) {
  TempDir dir;
  const std::string path = dir.File("audit.log");
  const std::string copy = dir.File("state.json.audit-head");
  {
    auto log = AuditLog::Open(path, AuditOptions{copy});
    ASSERT_OK(log);
    for (int i = 1; i <= 10; ++i) ASSERT_OK((*log)->Append(Event(i)));
  }
  auto intact = VerifyAuditLog(path, copy);
  ASSERT_OK(intact);
  EXPECT_EQ(intact->anchors_checked.size(), 2u);

  ASSERT_EQ(::unlink((path + ".head").c_str()), 0);
  std::vector<std::string> lines = ReadLines(path);
  lines.resize(7);
  WriteLines(path, lines);
  auto cut = VerifyAuditLog(path, copy);
  ASSERT_FALSE(cut.ok());
  EXPECT_NE(cut.status().message().find("head copy " + copy + " says 10 (tail truncated)"),
            std::string::npos)
      << cut.status().message();
  EXPECT_FALSE(AuditLog::Open(path, AuditOptions{copy}).ok());

  auto unanchored = VerifyAuditLog(path);
  ASSERT_OK(unanchored);
  EXPECT_FALSE(unanchored->tail_checked());
  ASSERT_EQ(unanchored->anchors_missing.size(), 1u);
  EXPECT_NE(unanchored->anchors_missing[0].find("missing"), std::string::npos);

  // Opening without any anchor records that in the chain, for good.
  {
    auto log = AuditLog::Open(path);
    ASSERT_OK(log);
  }
  EXPECT_EQ(json::parse(ReadLines(path).back())["event"]["type"], "audit-head-missing");
}

// A flood of failures from one address costs two records per interval, not one per attempt.
TEST(FailureAuditAggregator, AFloodIsCountedNotWrittenOneByOne) {
  TempDir dir;
  const std::string path = dir.File("audit.log");
  auto log = AuditLog::Open(path);
  ASSERT_OK(log);
  {
    FailureAuditAggregator failures(**log, "auth-failures", std::chrono::milliseconds(300));
    for (int i = 0; i < 1000; ++i) {
      ASSERT_OK(failures.Record("127.0.0.1", {{"type", "authentication"}, {"i", i}}));
    }
    ASSERT_OK(failures.Record("::1", {{"type", "authentication"}, {"i", -1}}));
    EXPECT_EQ((*log)->records(), 2u);  // the first from each source, at once
    // The interval ends: the summary is written by itself.
    for (int i = 0; i < 50 && (*log)->records() < 3; ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    EXPECT_EQ((*log)->records(), 3u);
  }
  log->reset();
  const std::vector<std::string> lines = ReadLines(path);
  ASSERT_EQ(lines.size(), 3u);
  const json summary = json::parse(lines[2])["event"];
  EXPECT_EQ(summary["type"], "auth-failures");
  EXPECT_EQ(summary["source"], "127.0.0.1");
  EXPECT_EQ(summary["count"], 999);
  EXPECT_EQ(summary["last"]["i"], 999);
  EXPECT_EQ(SourceAddressOf("127.0.0.1:5555"), "127.0.0.1");
  EXPECT_EQ(SourceAddressOf("[::1]:5555"), "::1");
}

}  // namespace
}  // namespace signum::server

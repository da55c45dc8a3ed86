// The trace format v1 envelope both replayers read (signum/core/trace_file.h).
#include "signum/core/trace_file.h"

#include <gtest/gtest.h>

#include "signum/core/files.h"
#include "signum/testing/status_matchers.h"
#include "signum/testing/temp_dir.h"

namespace signum::trace_file {
namespace {

using ::signum::testing::StatusIs;
using ::signum::testing::TempDir;

constexpr const char* kHeader = R"({"v":1,"kind":"signum-pkcs11-trace","pid":7})";
constexpr const char* kCall = R"({"v":1,"seq":1,"fn":"C_Initialize","args":{},"rv":{"value":0},"out":{}})";

std::string Write(TempDir& dir, const std::string& name, const std::string& text) {
  const std::string path = dir.File(name);
  EXPECT_TRUE(WriteFileAtomically(path, text).ok());
  return path;
}

TEST(TraceFileTest, ReadsTheHeaderAndEveryCallWithItsLine) {
  TempDir dir;
  const std::string path = Write(dir, "t.jsonl", std::string(kHeader) + "\n\n" + kCall + "\n");
  auto trace = Read(path, "signum-pkcs11-trace", {"fn", "args", "rv", "out"});
  ASSERT_TRUE(trace.ok()) << trace.status().ToString();
  EXPECT_EQ(trace->header["pid"], 7);
  ASSERT_EQ(trace->calls.size(), 1u);
  EXPECT_EQ(trace->calls[0].line, 3u);  // the blank line counts
  EXPECT_EQ(trace->calls[0].j["fn"], "C_Initialize");
}

TEST(TraceFileTest, RefusesWhatItCannotReadWithFileAndLine) {
  TempDir dir;
  const std::string v2 = Write(dir, "v2.jsonl", R"({"v":2,"kind":"signum-pkcs11-trace"})"
                                                "\n");
  auto trace = Read(v2, "signum-pkcs11-trace", {});
  EXPECT_THAT(trace, StatusIs(ErrorCode::kInvalidArgument));
  EXPECT_EQ(trace.status().message(),
            v2 + ":1: trace format version 2 is not supported by this reader (supported: 1)");

  const std::string cng = Write(dir, "k.jsonl", std::string(kHeader) + "\n");
  EXPECT_NE(Read(cng, "signum-cng-trace", {}).status().message().find("not a signum-cng-trace header"),
            std::string::npos);

  const std::string no_field = Write(dir, "f.jsonl", std::string(kHeader) + "\n" + kCall + "\n");
  EXPECT_NE(Read(no_field, "signum-pkcs11-trace", {"seq", "thread"}).status().message().find(
                ":2: call without \"thread\""),
            std::string::npos);

  const std::string garbage = Write(dir, "g.jsonl", "not json\n");
  EXPECT_THAT(Read(garbage, "signum-pkcs11-trace", {}), StatusIs(ErrorCode::kInvalidArgument));
  const std::string empty = Write(dir, "e.jsonl", "");
  EXPECT_NE(Read(empty, "signum-pkcs11-trace", {}).status().message().find("empty trace"),
            std::string::npos);
  EXPECT_THAT(Read(dir.File("absent.jsonl"), "signum-pkcs11-trace", {}),
              StatusIs(ErrorCode::kNotFound));
}

}  // namespace
}  // namespace signum::trace_file

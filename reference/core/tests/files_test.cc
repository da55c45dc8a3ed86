#include "signum/core/files.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>

#include "signum/testing/status_matchers.h"
#include "signum/testing/temp_dir.h"

namespace signum {
namespace {

using ::signum::testing::StatusIs;

TEST(FilesTest, AtomicWriteReplacesContentAndLeavesNoTemporary) {
  testing::TempDir dir;
  const std::string path = dir.File("state.json");
  ASSERT_OK(WriteFileAtomically(path, "one"));
  ASSERT_OK(WriteFileAtomically(path, "two", 0600));
  auto content = ReadFile(path);
  ASSERT_OK(content);
  EXPECT_EQ(*content, "two");
  struct stat st {};
  ASSERT_EQ(stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  int entries = 0;
  for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator(dir.path())) ++entries;
  EXPECT_EQ(entries, 1);
}

TEST(FilesTest, MissingFileIsNotFoundAndNamesThePath) {
  auto r = ReadFile("/nonexistent/signum/file");
  ASSERT_THAT(r, StatusIs(ErrorCode::kNotFound));
  EXPECT_NE(r.status().message().find("/nonexistent/signum/file"), std::string::npos);
}

TEST(FilesTest, SecretFileTrimsOneNewline) {
  testing::TempDir dir;
  ASSERT_OK(WriteFileAtomically(dir.File("pin"), "1234\n"));
  EXPECT_EQ(*ReadSecretFile(dir.File("pin")), "1234");
}

TEST(FilesTest, ResolvePath) {
  EXPECT_EQ(ResolvePath("/etc/signum", "server.crt"), "/etc/signum/server.crt");
  EXPECT_EQ(ResolvePath("/etc/signum", "/abs/x"), "/abs/x");
  EXPECT_EQ(ResolvePath("/etc/signum", "../x"), "/etc/x");
}

}  // namespace
}  // namespace signum

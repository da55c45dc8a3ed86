// A temporary directory removed (recursively) when the object dies.
#pragma once

#include <string>

namespace signum::testing {

class TempDir {
 public:
  explicit TempDir(const std::string& prefix = "signum-test");
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }
  std::string File(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

}  // namespace signum::testing

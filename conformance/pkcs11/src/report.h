// Results of a run: every check's status after the expectations file and the check's grade
// (grades.h) are applied, printed as a summary and written as JUnit XML and a JSON summary.
//   pass, skip; fail: a required check failed (or any check with --strict); warn: a spec-level
//   check failed (a deviation: reported, not a failure); xfail / xpass: the expectations file.
#pragma once

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "suite.h"

namespace signum::conformance {

struct CheckRecord {
  std::string name;    // "Area.Check"
  std::string status;  // pass | fail | warn | skip | xfail | xpass
  std::string level;   // required | spec
  std::string reason;  // failure text, skip reason, or the expectation's reason
  std::vector<std::string> notes;
  double seconds = 0;
};

class ResultCollector : public ::testing::EmptyTestEventListener {
 public:
  void OnTestEnd(const ::testing::TestInfo& info) override;
  const std::vector<CheckRecord>& records() const { return records_; }
  int Count(std::string_view status) const;
  // True when nothing failed and no expected failure passed (warnings do not count).
  bool Passed() const { return Count("fail") == 0 && Count("xpass") == 0; }
  void PrintSummary() const;
  Status WriteJunit(const std::string& path) const;
  Status WriteSummary(const std::string& path) const;

 private:
  std::vector<CheckRecord> records_;
};

}  // namespace signum::conformance

// What each check protects, defined once: the real callers that break when it fails (with the
// upstream threads that show it) and its level. The report grades outcomes with it, --grades
// prints it, and a test keeps CHECKS.md in step with it.
//
//   required: a named caller breaks when the check fails. A failure fails the run.
//   spec:     the letter of the PKCS#11 spec; no known caller depends on it. A failure is a
//             deviation: a warning by default, a failure with --strict.
#pragma once

#include <string_view>
#include <vector>

namespace signum::conformance {

enum class Level { kRequired, kSpec };
std::string_view LevelName(Level level);

struct CheckGrade {
  std::string_view check;    // "Area.Check", as in CHECKS.md
  Level level;
  std::string_view callers;  // who breaks, comma-separated; for spec checks who reads it at all
  std::string_view threads;  // upstream evidence and catalogue entries (F-numbers), may be empty
};

const std::vector<CheckGrade>& CheckGrades();
// nullptr for a check without a grade (a test forbids that; the report treats it as required).
const CheckGrade* FindGrade(std::string_view check);

}  // namespace signum::conformance

#include "report.h"

#include <cstdio>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>

#include "grades.h"

namespace signum::conformance {

namespace {

// The first line of each failure, enough to see what broke without the source locations.
std::string FailureText(const ::testing::TestResult& result) {
  std::string text;
  for (int i = 0; i < result.total_part_count(); ++i) {
    const auto& part = result.GetTestPartResult(i);
    if (!part.failed()) continue;
    std::string message = part.message();
    if (!text.empty()) text += " | ";
    text += message.size() > 600 ? message.substr(0, 600) + "..." : message;
  }
  return text;
}

std::string SkipText(const ::testing::TestResult& result) {
  for (int i = 0; i < result.total_part_count(); ++i) {
    const auto& part = result.GetTestPartResult(i);
    if (part.skipped()) return part.message();
  }
  return "";
}

std::string XmlEscape(std::string_view text) {
  std::string out;
  for (char c : text) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\n': out += "&#10;"; break;
      default:
        if (static_cast<unsigned char>(c) < 0x20 && c != '\t') {
          out += '?';
        } else {
          out += c;
        }
    }
  }
  return out;
}

}  // namespace

void ResultCollector::OnTestEnd(const ::testing::TestInfo& info) {
  const Suite& suite = TheSuite();
  CheckRecord record;
  record.name = std::string(info.test_suite_name()) + "." + info.name();
  record.notes = TakeNotes();
  const auto& result = *info.result();
  record.seconds = static_cast<double>(result.elapsed_time()) / 1000.0;
  const Expectation* expected =
      suite.expectations.ExpectedFailure(record.name, suite.options.profile);
  const CheckGrade* grade = FindGrade(record.name);
  const Level level = grade ? grade->level : Level::kRequired;
  record.level = LevelName(level);
  if (result.Failed()) {
    if (expected) {
      record.status = "xfail";
      record.reason = "expected failure: " + expected->reason + "; observed: " + FailureText(result);
    } else if (level == Level::kSpec && !suite.options.strict) {
      record.status = "warn";
      record.reason = "spec deviation (no known caller breaks; --strict fails it): " +
                      FailureText(result);
    } else {
      record.status = "fail";
      record.reason = FailureText(result);
    }
    if (!grade) record.reason += " [this check has no grade in grades.cc]";
  } else if (result.Skipped()) {
    record.status = "skip";
    record.reason = SkipText(result);
    if (record.reason.empty()) record.reason = "skipped without a reason";
  } else if (expected) {
    record.status = "xpass";
    record.reason = "listed as an expected failure (" + expected->reason +
                    ") but passed: update the expectations file";
  } else {
    record.status = "pass";
  }
  if (record.status != "pass") {
    std::printf("[ %-5s    ] %s: %s\n", record.status.c_str(), record.name.c_str(),
                record.reason.c_str());
  }
  for (const auto& note : record.notes) {
    std::printf("[ note     ] %s: %s\n", record.name.c_str(), note.c_str());
  }
  std::fflush(stdout);
  records_.push_back(std::move(record));
}

int ResultCollector::Count(std::string_view status) const {
  int n = 0;
  for (const auto& r : records_) n += r.status == status ? 1 : 0;
  return n;
}

void ResultCollector::PrintSummary() const {
  const Suite& suite = TheSuite();
  std::printf("\n==== signum-conformance-pkcs11: module %s, token '%s' (slot %lu), profile %s\n",
              suite.options.module_path.c_str(), suite.token_label.c_str(), suite.slot,
              std::string(ProfileName(suite.options.profile)).c_str());
  // Skips grouped by reason: a skip is not a pass, so each one is shown.
  std::map<std::string, std::vector<std::string>> skips;
  for (const auto& r : records_) {
    if (r.status == "skip") skips[r.reason].push_back(r.name);
  }
  for (const auto& [reason, names] : skips) {
    std::printf("skipped because %s:\n", reason.c_str());
    for (const auto& n : names) std::printf("    %s\n", n.c_str());
  }
  for (const char* status : {"warn", "xfail", "xpass", "fail"}) {
    for (const auto& r : records_) {
      if (r.status == status) std::printf("%s: %s: %s\n", status, r.name.c_str(), r.reason.c_str());
    }
  }
  std::printf(
      "checks: %zu  pass: %d  fail: %d  warn: %d  skip: %d  xfail: %d  xpass: %d  => %s%s\n",
      records_.size(), Count("pass"), Count("fail"), Count("warn"), Count("skip"), Count("xfail"),
      Count("xpass"), Passed() ? "PASSED" : "FAILED",
      suite.options.strict ? " (strict: spec deviations fail)" : "");
  std::fflush(stdout);
}

Status ResultCollector::WriteJunit(const std::string& path) const {
  std::ofstream out(path);
  if (!out) return UnavailableError("cannot write " + path);
  std::map<std::string, std::vector<const CheckRecord*>> by_area;
  for (const auto& r : records_) by_area[r.name.substr(0, r.name.find('.'))].push_back(&r);
  out << "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";
  out << "<testsuites name=\"signum-conformance-pkcs11\" tests=\"" << records_.size()
      << "\" failures=\"" << Count("fail") + Count("xpass") << "\" skipped=\""
      << Count("skip") + Count("xfail") << "\">\n";
  for (const auto& [area, records] : by_area) {
    int failures = 0, skipped = 0;
    for (const auto* r : records) {
      failures += (r->status == "fail" || r->status == "xpass") ? 1 : 0;
      skipped += (r->status == "skip" || r->status == "xfail") ? 1 : 0;
    }
    out << "  <testsuite name=\"" << XmlEscape(area) << "\" tests=\"" << records.size()
        << "\" failures=\"" << failures << "\" skipped=\"" << skipped << "\">\n";
    for (const auto* r : records) {
      out << "    <testcase classname=\"" << XmlEscape(area) << "\" name=\""
          << XmlEscape(r->name.substr(r->name.find('.') + 1)) << "\" time=\"" << r->seconds
          << "\">";
      if (r->status == "fail" || r->status == "xpass") {
        out << "<failure message=\"" << XmlEscape(r->status + ": " + r->reason) << "\"/>";
      } else if (r->status == "skip" || r->status == "xfail") {
        out << "<skipped message=\"" << XmlEscape(r->status + ": " + r->reason) << "\"/>";
      }
      // A warning is a passed test case that says what deviated.
      if (!r->notes.empty() || r->status == "warn") {
        std::string notes = r->status == "warn" ? "warn: " + r->reason + "\n" : "";
        for (const auto& n : r->notes) notes += n + "\n";
        out << "<system-out>" << XmlEscape(notes) << "</system-out>";
      }
      out << "</testcase>\n";
    }
    out << "  </testsuite>\n";
  }
  out << "</testsuites>\n";
  return out ? Status::Ok() : UnavailableError("writing " + path + " failed");
}

Status ResultCollector::WriteSummary(const std::string& path) const {
  const Suite& suite = TheSuite();
  nlohmann::json json;
  json["module"] = suite.options.module_path;
  json["library"] = suite.library_description;
  json["token"] = suite.token_label;
  json["slot"] = suite.slot;
  json["profile"] = ProfileName(suite.options.profile);
  json["expectations"] = suite.options.expect_path;
  json["counts"] = {{"total", records_.size()}, {"pass", Count("pass")},   {"fail", Count("fail")},
                    {"warn", Count("warn")},     {"skip", Count("skip")},   {"xfail", Count("xfail")},
                    {"xpass", Count("xpass")}};
  json["strict"] = suite.options.strict;
  json["passed"] = Passed();
  json["checks"] = nlohmann::json::array();
  for (const auto& r : records_) {
    nlohmann::json entry{
        {"name", r.name}, {"status", r.status}, {"level", r.level}, {"reason", r.reason}};
    if (const CheckGrade* grade = FindGrade(r.name)) entry["callers"] = grade->callers;
    if (!r.notes.empty()) entry["notes"] = r.notes;
    json["checks"].push_back(std::move(entry));
  }
  std::ofstream out(path);
  if (!out) return UnavailableError("cannot write " + path);
  out << json.dump(2) << "\n";
  return out ? Status::Ok() : UnavailableError("writing " + path + " failed");
}

}  // namespace signum::conformance

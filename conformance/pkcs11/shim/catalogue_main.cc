// signum-defect-catalogue: prints the defect catalogue (defect_catalogue.h) as JSON, for the
// defect test and for people choosing a SIGNUM_SHIM_DEFECT.
#include <iostream>
#include <nlohmann/json.hpp>

#include "defect_catalogue.h"

int main() {
  nlohmann::json defects = nlohmann::json::array();
  for (const auto& d : signum::conformance::DefectCatalogue()) {
    auto names = [](const std::vector<std::string_view>& checks) {
      nlohmann::json out = nlohmann::json::array();
      for (std::string_view c : checks) out.push_back(std::string(c));
      return out;
    };
    defects.push_back(
        {{"name", std::string(d.name)},
         {"description", std::string(d.description)},
         {"evidence", std::string(d.evidence)},
         {"failing_checks",
          {{"provider", names(d.failing_provider_checks)}, {"hsm", names(d.failing_hsm_checks)}}}});
  }
  std::cout << nlohmann::json{{"defects", defects}}.dump(2) << "\n";
  return 0;
}

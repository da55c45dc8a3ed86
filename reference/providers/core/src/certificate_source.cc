#include "signum/provider/certificate_source.h"

#include <utility>

namespace signum::provider {

CertificateSource::CertificateSource(Loader loader, std::chrono::milliseconds retry_interval)
    : loader_(std::move(loader)), retry_interval_(retry_interval) {}

Result<std::shared_ptr<const CertificateSet>> CertificateSource::LoadLocked(bool refresh) {
  last_attempt_ = std::chrono::steady_clock::now();
  auto response = loader_(refresh);
  if (!response.ok()) {
    last_error_ = response.status().WithContext("listing certificates");
    return *last_error_;
  }
  current_ = std::make_shared<const CertificateSet>(BuildCertificateSet(*response));
  last_error_.reset();
  ++generation_;
  return current_;
}

Result<std::shared_ptr<const CertificateSet>> CertificateSource::Get() {
  std::lock_guard lock(mu_);
  if (current_) return current_;
  if (last_error_.has_value() &&
      std::chrono::steady_clock::now() - last_attempt_ < retry_interval_) {
    return *last_error_;
  }
  return LoadLocked(/*refresh=*/false);
}

Result<std::shared_ptr<const CertificateSet>> CertificateSource::Refresh() {
  std::lock_guard lock(mu_);
  // A failed load leaves current_ alone: the previous set stays in service.
  return LoadLocked(/*refresh=*/true);
}

uint64_t CertificateSource::generation() const {
  std::lock_guard lock(mu_);
  return generation_;
}

}  // namespace signum::provider

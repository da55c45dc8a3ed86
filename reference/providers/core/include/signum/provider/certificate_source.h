// The certificate list a provider serves, fetched from the agent once and cached for the life of
// one provider initialisation (C_Initialize .. C_Finalize for PKCS#11), like kmsp11 caches its key
// ring: finding objects must never wait for the network. Refresh() fetches again on request.
//
// When a load fails (agent not running, server unreachable) the source holds no certificates and
// remembers the error; the next Get() tries again, but at most once per retry interval, so a tool
// that enumerates objects in a loop does not hammer an absent agent and never waits long.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>

#include "signum/core/status.h"
#include "signum/core/wire.h"
#include "signum/provider/provider_certificate.h"

namespace signum::provider {

class CertificateSource {
 public:
  // Fetches the list; refresh = true asks the agent to bypass its own cache too.
  using Loader = std::function<Result<wire::CertificateListResponse>(bool refresh)>;

  explicit CertificateSource(Loader loader,
                             std::chrono::milliseconds retry_interval = std::chrono::seconds(1));

  // The cached set, loading it on first use (or again after a failed load, rate-limited). An
  // error means there is no usable list right now; the caller shows no certificates.
  Result<std::shared_ptr<const CertificateSet>> Get();
  // Fetches again (agent cache bypassed). On failure the previous set stays in place.
  Result<std::shared_ptr<const CertificateSet>> Refresh();

  // How many successful loads so far (tests and traces).
  uint64_t generation() const;

 private:
  Result<std::shared_ptr<const CertificateSet>> LoadLocked(bool refresh);

  const Loader loader_;
  const std::chrono::milliseconds retry_interval_;
  mutable std::mutex mu_;  // held across a load so concurrent first users share one fetch
  std::shared_ptr<const CertificateSet> current_;
  std::optional<Status> last_error_;
  std::chrono::steady_clock::time_point last_attempt_{};
  uint64_t generation_ = 0;
};

}  // namespace signum::provider

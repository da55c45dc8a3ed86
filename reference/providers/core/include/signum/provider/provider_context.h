// What every agent-backed provider holds, whatever its ABI: the agent connection pool, the signer
// (with this process's caller context) and the cached certificate list, plus lookup of a signing
// certificate by the names tools use for keys. The Windows KSP and CSP share one per process
// (reference/providers/cng/common); each is a thin ABI layer over this.
#pragma once

#include <memory>
#include <string_view>

#include "signum/core/status.h"
#include "signum/provider/agent_pool.h"
#include "signum/provider/certificate_source.h"
#include "signum/provider/provider_certificate.h"
#include "signum/provider/signer.h"

namespace signum::provider {

class ProviderContext {
 public:
  explicit ProviderContext(AgentPoolOptions options);
  ProviderContext(const ProviderContext&) = delete;
  ProviderContext& operator=(const ProviderContext&) = delete;

  // The cached list (loaded on first use; a failed load is retried at most once a second). An
  // error means no list is available now (agent unreachable: kUnavailable naming the endpoint).
  Result<std::shared_ptr<const CertificateSet>> Certificates();
  // Asks the agent again, bypassing its cache too.
  Result<std::shared_ptr<const CertificateSet>> Refresh();

  // A signing certificate by key name: its id (the SHA-1 thumbprint, 40 hex digits, any case)
  // or its label ("rsa-2048"), ignoring case. kNotFound names the key; a load failure is
  // returned as is. The certificate stays valid after a refresh replaces the set.
  Result<std::shared_ptr<const ProviderCertificate>> FindCertificate(std::string_view name);

  Signer& signer() { return signer_; }
  AgentConnectionPool& pool() { return pool_; }

 private:
  AgentConnectionPool pool_;
  Signer signer_;
  CertificateSource source_;
};

}  // namespace signum::provider

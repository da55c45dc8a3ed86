#include "signum/provider/provider_context.h"

#include <utility>

#include "signum/provider/process_context.h"

namespace signum::provider {
namespace {

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  auto lower = [](char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; };
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (lower(a[i]) != lower(b[i])) return false;
  }
  return true;
}

}  // namespace

ProviderContext::ProviderContext(AgentPoolOptions options)
    : pool_(std::move(options)),
      signer_(&pool_, CurrentProcessContext()),
      source_([this](bool refresh) { return pool_.ListCertificates(refresh); }) {}

Result<std::shared_ptr<const CertificateSet>> ProviderContext::Certificates() {
  return source_.Get();
}

Result<std::shared_ptr<const CertificateSet>> ProviderContext::Refresh() {
  return source_.Refresh();
}

Result<std::shared_ptr<const ProviderCertificate>> ProviderContext::FindCertificate(
    std::string_view name) {
  SIGNUM_ASSIGN_OR_RETURN(std::shared_ptr<const CertificateSet> set, Certificates());
  // Ids first: a label that happens to look like another certificate's id must not shadow it.
  for (const auto& certificate : set->certificates) {
    if (EqualsIgnoreCase(certificate->id, name)) return certificate;
  }
  for (const auto& certificate : set->certificates) {
    if (EqualsIgnoreCase(certificate->label, name)) return certificate;
  }
  return NotFoundError("no signing certificate with id or label '" + std::string(name) + "'");
}

}  // namespace signum::provider

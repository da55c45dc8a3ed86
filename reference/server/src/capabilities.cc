#include "capabilities.h"

#include "signum/core/log.h"

namespace signum::server {

KeyCapabilityRegistry::KeyCapabilityRegistry(HsmBackend& hsm, std::chrono::seconds retry_interval)
    : hsm_(hsm), retry_interval_(retry_interval) {}

void KeyCapabilityRegistry::DiscoverAll(const ServerState& state) {
  for (const CertificateRecord& certificate : state.certificates) For(certificate);
}

std::optional<SignatureCapabilities> KeyCapabilityRegistry::For(
    const CertificateRecord& certificate) {
  std::shared_ptr<Entry> entry;
  {
    std::lock_guard<std::mutex> lock(entries_mu_);
    std::shared_ptr<Entry>& slot = entries_[certificate.key_id_hex];
    if (!slot) slot = std::make_shared<Entry>();
    entry = slot;
  }
  std::lock_guard<std::mutex> lock(entry->mu);
  if (entry->known) return entry->known;
  if (entry->failed_at && std::chrono::steady_clock::now() - *entry->failed_at < retry_interval_) {
    return std::nullopt;
  }
  Probe(certificate, *entry);
  return entry->known;
}

void KeyCapabilityRegistry::Probe(const CertificateRecord& certificate, Entry& entry) {
  const std::string key = "key " + certificate.key_id_hex + " (certificate '" + certificate.label +
                          "', " + certificate.key_spec.Name() + ")";
  auto fail = [&](const Status& status) {
    entry.failed_at = std::chrono::steady_clock::now();
    SIGNUM_LOG_WARN("capabilities", key << ": cannot learn what it can sign with, retrying in "
                                        << retry_interval_.count()
                                        << " s; until then only the policies limit what is "
                                           "offered: "
                                        << status.ToString());
  };
  auto key_id = HexDecode(certificate.key_id_hex);
  if (!key_id.ok()) return fail(key_id.status());
  // Verified against the certificate's key: it is what clients verify with.
  auto public_key = certificate.certificate.GetPublicKey();
  if (!public_key.ok()) return fail(public_key.status().WithContext("the certificate's key"));
  auto probe = hsm_.ProbeCapabilities(*key_id, *public_key);
  if (!probe.ok()) return fail(probe.status());
  entry.known = probe->can_sign;
  entry.failed_at.reset();
  std::string missing;
  for (const std::string& reason : probe->missing)
    missing += (missing.empty() ? "" : "; ") + reason;
  SIGNUM_LOG_INFO("capabilities", key << " can sign with " << probe->can_sign.ToString()
                                      << (missing.empty() ? "" : " | cannot: " + missing));
}

}  // namespace signum::server

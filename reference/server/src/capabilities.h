// What each certificate's HSM key can sign with, learned by probing the HSM
// (HsmBackend::ProbeCapabilities) and kept in memory for the life of the server process.
//
// Not persisted, on purpose: what a key can do depends on the module, its version and its
// configuration, which can all change between two runs of the server (a vendor upgrade, another
// module path in server.json). A stale answer on disk would bring back the very failure this
// prevents (a scheme promised, then refused by the HSM after the tool committed to it), while
// probing costs one signature per (scheme, hash), about ten per key, once per start.
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "hsm_backend.h"
#include "state.h"

namespace signum::server {

class KeyCapabilityRegistry {
 public:
  static constexpr std::chrono::seconds kDefaultRetryInterval{30};

  explicit KeyCapabilityRegistry(HsmBackend& hsm,
                                 std::chrono::seconds retry_interval = kDefaultRetryInterval);

  // Probes the key of every certificate (server start). One log line per key, at info level.
  void DiscoverAll(const ServerState& state);

  // What the certificate's key can sign with. A key not probed yet (a certificate enrolled while
  // the server runs) is probed now, once: concurrent callers wait for that probe. nullopt when the
  // probe failed for a reason that says nothing about the key (HSM unreachable, key missing or
  // refused); it is retried on use once retry_interval has passed, and until then callers fall
  // back on what the policies allow.
  std::optional<SignatureCapabilities> For(const CertificateRecord& certificate);

 private:
  struct Entry {
    std::mutex mu;  // held while probing, so one probe per key at a time
    std::optional<SignatureCapabilities> known;
    std::optional<std::chrono::steady_clock::time_point> failed_at;
  };
  void Probe(const CertificateRecord& certificate, Entry& entry);

  HsmBackend& hsm_;
  const std::chrono::seconds retry_interval_;
  std::mutex entries_mu_;
  std::map<std::string, std::shared_ptr<Entry>> entries_;  // by hex CKA_ID
};

}  // namespace signum::server

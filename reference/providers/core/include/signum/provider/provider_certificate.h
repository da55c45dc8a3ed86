// The certificates a provider exposes, as the agent lists them: one ProviderCertificate per
// signing certificate (parsed once, with its chain and key description), and the set of them that
// a provider serves for the life of one initialisation. Nothing here knows about PKCS#11, CNG or
// CryptoTokenKit; each ABI layer maps these onto its own objects.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "signum/core/algorithms.h"
#include "signum/core/bytes.h"
#include "signum/core/status.h"
#include "signum/core/wire.h"
#include "signum/provider/certificate_info.h"
#include "signum/provider/public_key_components.h"

namespace signum::provider {

struct ProviderCertificate {
  std::string id;     // the server's id: lowercase hex SHA-1 thumbprint of the certificate
  Bytes thumbprint;   // the same 20 bytes in binary (PKCS#11 CKA_ID, like Signum's own token)
  std::string label;  // the server's label, e.g. "rsa-2048"
  CertificateInfo certificate;
  std::vector<CertificateInfo> chain;  // issuing CA first, root last
  KeySpec key_spec;
  // Modulus/exponent or EC point, read from the certificate's DER (public_key_components.h):
  // what tokens show as CKA_MODULUS / CKA_EC_POINT and CNG as its public key blobs.
  PublicKeyComponents components;
  // What the caller's policies allow on this certificate, as the server reported it when the list
  // was fetched. Informational: the server decides at signing time (the list may be stale).
  std::vector<SignatureScheme> schemes;
  std::vector<HashAlgorithm> hashes;
  // The exact (scheme, hash) pairs the server offers on this certificate (the caller's policies
  // intersected with what the HSM key can do), limited to pairs that fit the key; nullopt from a
  // server that predates capabilities.
  std::optional<SignatureCapabilities> capabilities;

  bool AllowsScheme(SignatureScheme scheme) const;
  bool AllowsHash(HashAlgorithm hash) const;
  // What a provider may offer for signing with this certificate: the capabilities, or, from a
  // server that did not send them, every pair that fits the key (as providers did before).
  SignatureCapabilities Signable() const;
};

// Parses and cross-checks one entry of the agent's list: the PEM must parse, the id must be the
// certificate's thumbprint and the key description must match the certificate's key.
Result<ProviderCertificate> ProviderCertificateFromEntry(const wire::CertificateEntry& entry);

// Everything a provider serves between a load and the next refresh.
struct CertificateSet {
  // Signing certificates in the agent's order, each id once.
  std::vector<std::shared_ptr<const ProviderCertificate>> certificates;
  // CA certificates from every chain, each once (by thumbprint) and never one that is also a
  // signing certificate, in first-seen order. Tools such as jarsigner build the chain they embed
  // from what the token serves.
  std::vector<CertificateInfo> authorities;
  // Entries that could not be used, with the reason (reported in traces; never fatal).
  std::vector<std::string> skipped;

  const ProviderCertificate* FindById(std::string_view id) const;
};

CertificateSet BuildCertificateSet(const wire::CertificateListResponse& response);

}  // namespace signum::provider

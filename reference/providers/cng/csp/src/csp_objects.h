// What the CSP's handles stand for, and the pure pieces of its ABI (container names, key blobs,
// the algorithm list) kept apart from the entry points in csp_entry_points.cc.
#pragma once

#include <windows.h>
// wincrypt.h needs windows.h's types first.
#include <wincrypt.h>

#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "signum/core/algorithms.h"
#include "signum/core/bytes.h"
#include "signum/core/status.h"
#include "signum/provider/digest.h"
#include "signum/provider/provider_certificate.h"

namespace signum::cng::csp {

// Sent in the agent handshake (SharedProviderContext).
inline constexpr char kCspClientName[] = "signumcsp";

// The provider types the CSP answers to: PROV_RSA_FULL and PROV_RSA_AES. advapi32 routes a name
// only to the type registered for it, so the DLL is registered once per type (kCspRegistrations,
// names.h); a caller that loads the DLL directly may ask for either.
bool IsSupportedProviderType(DWORD type);

// The name the CSP is registered under for a supported type (PP_NAME when the caller's
// VTableProvStruc does not carry the name it used).
std::string RegisteredNameForType(DWORD type);

// An HCRYPTPROV: one acquired context.
struct Provider {
  // The name and type the context was acquired under (PP_NAME, PP_PROVTYPE), copied from the
  // caller's VTableProvStruc: the same DLL answers to both registrations.
  std::string provider_name;
  DWORD provider_type = PROV_RSA_FULL;
  // CRYPT_VERIFYCONTEXT: hashing, random, enumeration; no key.
  bool verify_context = false;
  // The container's certificate; null in a verify context.
  std::shared_ptr<const provider::ProviderCertificate> certificate;

  // Enumeration positions (PP_ENUMCONTAINERS, PP_ENUMALGS, PP_ENUMALGS_EX), reset by CRYPT_FIRST.
  std::mutex mu;
  std::vector<std::string> container_snapshot;
  size_t next_container = 0;
  size_t next_algorithm = 0;
  size_t next_algorithm_ex = 0;
};

// An HCRYPTKEY: the container's signature key.
struct Key {
  HCRYPTPROV owner = 0;
  std::shared_ptr<const provider::ProviderCertificate> certificate;
};

// An HCRYPTHASH. Data is hashed locally (provider::DigestContext, BCrypt underneath) until the
// value is read, set (HP_HASHVAL) or signed; then the hash is finished and takes no more data.
struct Hash {
  HCRYPTPROV owner = 0;
  HashAlgorithm algorithm = HashAlgorithm::kSha256;
  std::mutex mu;
  std::optional<provider::DigestContext> running;
  std::optional<Bytes> value;
  bool data_hashed = false;

  // The value, finishing the running digest on first use. Caller holds mu.
  Result<Bytes> ValueLocked();
};

// The container a caller names: the certificate id (SHA-1 hex, any case) or label. A PIN written
// in front in the SafeNet form "[{{PIN}}]=container" (signtool /kc users do this) is dropped:
// the agent authenticates the user, the CSP has no PIN. Empty means the default container.
std::string ContainerNameWithoutPin(std::string_view container);

// The certificate a container name selects: by id or label; empty = the first RSA certificate
// the agent lists. kNotFound for unknown names and for EC certificates (this CSP serves RSA keys
// only; EC keys are the KSP's). Agent errors are returned as they are.
Result<std::shared_ptr<const provider::ProviderCertificate>> ResolveContainer(
    std::string_view container);
// The container names PP_ENUMCONTAINERS lists: the ids of the agent's RSA certificates.
Result<std::vector<std::string>> ContainerNames();

// PUBLICKEYBLOB (BLOBHEADER, RSAPUBKEY "RSA1", modulus little-endian) of an RSA certificate, with
// aiKeyAlg CALG_RSA_SIGN. kInvalidArgument if the exponent does not fit the blob's DWORD.
Result<Bytes> RsaPublicKeyBlob(const provider::ProviderCertificate& certificate);

// RSA PKCS#1 v1.5 verification with the platform's BCrypt; signature big-endian.
// kInvalidArgument when the signature does not verify.
Status VerifyRsaPkcs1(const provider::ProviderCertificate& certificate, HashAlgorithm hash,
                      ByteView digest, ByteView signature);

// The algorithms PP_ENUMALGS / PP_ENUMALGS_EX list, in order: the hashes CryptoAPI has an ALG_ID
// for, then CALG_RSA_SIGN.
struct CspAlgorithm {
  ALG_ID alg_id;
  DWORD default_bits, min_bits, max_bits;
  std::string name;       // "SHA-256", "RSA_SIGN" (what Microsoft's CSPs call them)
  std::string long_name;  // "Secure Hash Algorithm (SHA-256)"
};
const std::vector<CspAlgorithm>& CspAlgorithms();

}  // namespace signum::cng::csp

#include "mechanisms.h"

#include <algorithm>

namespace signum::pkcs11 {
namespace {

std::vector<Mechanism> BuildTable() {
  std::vector<Mechanism> table;
  const SignatureMechanism rsa_pkcs1{KeyType::kRsa, SignatureScheme::kRsaPkcs1};
  const SignatureMechanism rsa_pss{KeyType::kRsa, SignatureScheme::kRsaPss};
  const SignatureMechanism ecdsa{KeyType::kEc, SignatureScheme::kEcdsa};
  table.push_back({CKM_RSA_PKCS, std::nullopt, rsa_pkcs1});
  for (const HashInfo& h : AllHashes()) table.push_back({h.ckm_rsa_pkcs, h.algorithm, rsa_pkcs1});
  table.push_back({CKM_RSA_PKCS_PSS, std::nullopt, rsa_pss});
  for (const HashInfo& h : AllHashes()) table.push_back({h.ckm_rsa_pss, h.algorithm, rsa_pss});
  table.push_back({CKM_ECDSA, std::nullopt, ecdsa});
  for (const HashInfo& h : AllHashes()) table.push_back({h.ckm_ecdsa, h.algorithm, ecdsa});
  for (const HashInfo& h : AllHashes()) table.push_back({h.ckm_digest, h.algorithm, std::nullopt});
  return table;
}

const std::vector<Mechanism>& Table() {
  static const std::vector<Mechanism>* table = new std::vector<Mechanism>(BuildTable());
  return *table;
}

// Key sizes Signum supports (algorithms.h SupportedKeySpecs), in bits.
std::pair<CK_ULONG, CK_ULONG> KeySizeRange(KeyType type) {
  CK_ULONG lo = 0, hi = 0;
  for (const KeySpec& spec : SupportedKeySpecs()) {
    if (spec.type != type) continue;
    const auto bits = static_cast<CK_ULONG>(spec.Bits());
    lo = lo == 0 ? bits : std::min(lo, bits);
    hi = std::max(hi, bits);
  }
  return {lo, hi};
}

}  // namespace

std::span<const Mechanism> AllMechanisms() { return Table(); }

const Mechanism* FindMechanism(CK_MECHANISM_TYPE type) {
  for (const Mechanism& m : Table()) {
    if (m.type == type) return &m;
  }
  return nullptr;
}

CK_MECHANISM_INFO InfoFor(const Mechanism& mechanism) {
  CK_MECHANISM_INFO info{};
  if (mechanism.is_digest()) {
    // Computed locally with OpenSSL; the key size fields are unused for digests (left 0).
    info.flags = CKF_DIGEST;
    return info;
  }
  const KeyType key_type = mechanism.signature->key_type;
  const auto [lo, hi] = KeySizeRange(key_type);
  info.ulMinKeySize = lo;
  info.ulMaxKeySize = hi;
  // Verification runs locally against the public key (OpenSSL); signing in the HSM, but not in a
  // device attached to this host, hence no CKF_HW.
  info.flags = CKF_SIGN | CKF_VERIFY;
  if (key_type == KeyType::kEc) {
    info.flags |= CKF_EC_F_P | CKF_EC_NAMEDCURVE | CKF_EC_UNCOMPRESS;
  }
  return info;
}

std::vector<CK_MECHANISM_TYPE> MechanismsFor(KeyType key_type) {
  std::vector<CK_MECHANISM_TYPE> out;
  for (const Mechanism& m : Table()) {
    if (m.signature.has_value() && m.signature->key_type == key_type) out.push_back(m.type);
  }
  return out;
}

bool CanSignWith(const Mechanism& mechanism, const SignatureCapabilities& signable) {
  if (mechanism.is_digest()) return false;
  const SignatureScheme scheme = mechanism.signature->scheme;
  return mechanism.hash ? signable.Allows(scheme, *mechanism.hash) : signable.AllowsScheme(scheme);
}

std::vector<CK_MECHANISM_TYPE> SigningMechanismsFor(const SignatureCapabilities& signable) {
  std::vector<CK_MECHANISM_TYPE> out;
  for (const Mechanism& m : Table()) {
    if (CanSignWith(m, signable)) out.push_back(m.type);
  }
  return out;
}

}  // namespace signum::pkcs11

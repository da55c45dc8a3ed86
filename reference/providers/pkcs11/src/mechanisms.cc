#include "mechanisms.h"

#include <algorithm>

namespace signum::pkcs11 {
namespace {

std::vector<Mechanism> BuildTable() {
  std::vector<Mechanism> table;
  table.push_back({CKM_RSA_PKCS, KeyType::kRsa, SignatureScheme::kRsaPkcs1, std::nullopt});
  for (const HashInfo& h : AllHashes()) {
    table.push_back({h.ckm_rsa_pkcs, KeyType::kRsa, SignatureScheme::kRsaPkcs1, h.algorithm});
  }
  table.push_back({CKM_RSA_PKCS_PSS, KeyType::kRsa, SignatureScheme::kRsaPss, std::nullopt});
  for (const HashInfo& h : AllHashes()) {
    table.push_back({h.ckm_rsa_pss, KeyType::kRsa, SignatureScheme::kRsaPss, h.algorithm});
  }
  table.push_back({CKM_ECDSA, KeyType::kEc, SignatureScheme::kEcdsa, std::nullopt});
  for (const HashInfo& h : AllHashes()) {
    table.push_back({h.ckm_ecdsa, KeyType::kEc, SignatureScheme::kEcdsa, h.algorithm});
  }
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
  const auto [lo, hi] = KeySizeRange(mechanism.key_type);
  info.ulMinKeySize = lo;
  info.ulMaxKeySize = hi;
  // Verification runs locally against the public key (OpenSSL); signing in the HSM, but not in a
  // device attached to this host, hence no CKF_HW.
  info.flags = CKF_SIGN | CKF_VERIFY;
  if (mechanism.key_type == KeyType::kEc) {
    info.flags |= CKF_EC_F_P | CKF_EC_NAMEDCURVE | CKF_EC_UNCOMPRESS;
  }
  return info;
}

std::vector<CK_MECHANISM_TYPE> MechanismsFor(KeyType key_type) {
  std::vector<CK_MECHANISM_TYPE> out;
  for (const Mechanism& m : Table()) {
    if (m.key_type == key_type) out.push_back(m.type);
  }
  return out;
}

}  // namespace signum::pkcs11

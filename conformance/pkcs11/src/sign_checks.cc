// Mechanisms, RsaSign, RsaPss and EcdsaSign checks (CHECKS.md). Every signature is verified with
// OpenSSL against the certificate's public key (SigningCheck::SignCase).
#include <algorithm>

#include "suite.h"

namespace signum::conformance {
namespace {

class Mechanisms : public KeyedCheck {
 protected:
  std::vector<CK_MECHANISM_TYPE> List() {
    CK_ULONG count = 0;
    EXPECT_RV(CKR_OK, f()->C_GetMechanismList(slot(), nullptr, &count));
    std::vector<CK_MECHANISM_TYPE> list(count + 1);
    EXPECT_RV(CKR_OK, f()->C_GetMechanismList(slot(), list.data(), &count));
    list.resize(count);
    return list;
  }
};

class RsaSign : public SigningCheck {};
class RsaPss : public SigningCheck {};
class EcdsaSign : public SigningCheck {};

// RSA and ECDSA signing mechanisms Signum knows (signum/core/algorithms.h).
std::vector<CK_MECHANISM_TYPE> SigningMechanisms(bool hash_and_sign_only) {
  std::vector<CK_MECHANISM_TYPE> out;
  if (!hash_and_sign_only) out = {CKM_RSA_PKCS, CKM_RSA_PKCS_PSS, CKM_ECDSA};
  for (const HashInfo& h : AllHashes()) {
    out.push_back(h.ckm_rsa_pkcs);
    out.push_back(h.ckm_rsa_pss);
    out.push_back(h.ckm_ecdsa);
  }
  return out;
}

TEST_F(Mechanisms, ListTwoCallProtocol) {
  CK_ULONG count = 0;
  ASSERT_RV(CKR_OK, f()->C_GetMechanismList(slot(), nullptr, &count));
  ASSERT_GE(count, 1u);
  std::vector<CK_MECHANISM_TYPE> list(count + 3);
  CK_ULONG small = count - 1;
  EXPECT_RV(CKR_BUFFER_TOO_SMALL, f()->C_GetMechanismList(slot(), list.data(), &small));
  EXPECT_EQ(small, count);
  CK_ULONG large = count + 3;
  ASSERT_RV(CKR_OK, f()->C_GetMechanismList(slot(), list.data(), &large));
  EXPECT_EQ(large, count);
}

TEST_F(Mechanisms, NoDuplicates) {
  auto list = List();
  std::sort(list.begin(), list.end());
  for (size_t i = 1; i < list.size(); ++i) {
    EXPECT_NE(list[i], list[i - 1]) << MechanismName(list[i]) << " is listed twice";
  }
}

TEST_F(Mechanisms, InfoAvailableAndConsistent) {
  for (CK_MECHANISM_TYPE m : List()) {
    CK_MECHANISM_INFO info{};
    const CK_RV rv = f()->C_GetMechanismInfo(slot(), m, &info);
    EXPECT_RV(CKR_OK, rv) << " for " << MechanismName(m);
    if (rv != CKR_OK) continue;
    if (info.ulMaxKeySize != 0) {
      EXPECT_LE(info.ulMinKeySize, info.ulMaxKeySize) << MechanismName(m);
    }
  }
  CK_MECHANISM_INFO info{};
  EXPECT_RV(CKR_MECHANISM_INVALID,
            f()->C_GetMechanismInfo(slot(), CKM_VENDOR_DEFINED | 0x7E57, &info));
}

TEST_F(Mechanisms, SigningMechanismsHaveSignFlag) {
  int seen = 0;
  for (CK_MECHANISM_TYPE m : SigningMechanisms(false)) {
    if (!IsAdvertised(m)) continue;
    ++seen;
    CK_MECHANISM_INFO info{};
    ASSERT_RV(CKR_OK, f()->C_GetMechanismInfo(slot(), m, &info));
    EXPECT_TRUE(info.flags & CKF_SIGN) << MechanismName(m) << " lacks CKF_SIGN";
    EXPECT_TRUE(info.flags & CKF_VERIFY) << MechanismName(m) << " lacks CKF_VERIFY";
  }
  for (CK_MECHANISM_TYPE m : SigningMechanisms(true)) {
    if (!IsAdvertised(m)) continue;
    CK_MECHANISM_INFO info{};
    ASSERT_RV(CKR_OK, f()->C_GetMechanismInfo(slot(), m, &info));
    EXPECT_FALSE(info.flags & (CKF_ENCRYPT | CKF_DECRYPT | CKF_WRAP | CKF_UNWRAP))
        << MechanismName(m) << " is hash-and-sign but claims encryption or wrapping";
  }
  if (seen == 0) GTEST_SKIP() << "the token lists no RSA or ECDSA signing mechanism";
}

TEST_F(Mechanisms, KeySizesWithinAdvertisedRange) {
  for (const auto& key : keys_) {
    const int bits = KeyBits(key);
    for (CK_MECHANISM_TYPE m : SigningMechanisms(false)) {
      if (!IsAdvertised(m)) continue;
      const bool rsa_mechanism = m != CKM_ECDSA && std::none_of(AllHashes().begin(), AllHashes().end(),
                                                               [&](const HashInfo& h) {
                                                                 return h.ckm_ecdsa == m;
                                                               });
      if (rsa_mechanism != (key.key_type == CKK_RSA)) continue;
      CK_MECHANISM_INFO info{};
      ASSERT_RV(CKR_OK, f()->C_GetMechanismInfo(slot(), m, &info));
      if (info.ulMaxKeySize == 0) continue;  // no size limits claimed
      EXPECT_TRUE(CK_ULONG(bits) >= info.ulMinKeySize && CK_ULONG(bits) <= info.ulMaxKeySize)
          << key.Name() << " (" << bits << " bits) is outside " << MechanismName(m) << "'s "
          << info.ulMinKeySize << ".." << info.ulMaxKeySize;
    }
  }
}

TEST_F(Mechanisms, UnadvertisedMechanismRejected) {
  std::vector<CK_MECHANISM_TYPE> unlisted = {CKM_VENDOR_DEFINED | 0x7E57};
  if (!IsAdvertised(CKM_MD5_RSA_PKCS)) unlisted.push_back(CKM_MD5_RSA_PKCS);
  for (const auto& key : keys_) {
    for (CK_MECHANISM_TYPE m : unlisted) {
      if (m == CKM_MD5_RSA_PKCS && key.key_type != CKK_RSA) continue;
      CK_MECHANISM mechanism{m, nullptr, 0};
      const CK_SESSION_HANDLE session = OpenSession();
      EXPECT_RV(CKR_MECHANISM_INVALID, f()->C_SignInit(session, &mechanism, key.private_key))
          << " for " << MechanismName(m) << " with " << key.Name();
      f()->C_CloseSession(session);
    }
  }
}

// --- RSA PKCS#1 v1.5 -------------------------------------------------------------------------------

const Bytes& Message() {
  static const Bytes message = [] {
    Bytes m(1000);
    for (size_t i = 0; i < m.size(); ++i) m[i] = static_cast<uint8_t>(i * 7 + 3);
    return m;
  }();
  return message;
}

TEST_F(RsaSign, RawPkcsOverDigestInfo) {
  if (!IsAdvertised(CKM_RSA_PKCS)) GTEST_SKIP() << "CKM_RSA_PKCS is not advertised";
  for (const auto& key : keys_) {
    if (key.key_type != CKK_RSA) continue;
    for (const HashInfo& h : AllHashes()) {
      const Bytes digest = Digest(h.algorithm, Message());
      ASSERT_OK_AND_ASSIGN(Bytes digest_info, BuildDigestInfo(h.algorithm, digest));
      SignCase(key, {CKM_RSA_PKCS, nullptr, 0}, digest_info, SignatureScheme::kRsaPkcs1,
               h.algorithm, digest, "DigestInfo(" + std::string(h.name) + ")");
    }
  }
  FinishCases("no RSA keys on the token");
}

TEST_F(RsaSign, RawPkcsInputTooLongIsDataLenRange) {
  if (!IsAdvertised(CKM_RSA_PKCS)) GTEST_SKIP() << "CKM_RSA_PKCS is not advertised";
  int ran = 0;
  for (const auto& key : keys_) {
    if (key.key_type != CKK_RSA || !key.verify_key) continue;
    ++ran;
    const size_t k = key.verify_key->spec().SignatureSize();
    const Bytes input(k - 10, 0x5a);
    SignOutcome outcome = SignSinglePart(session_, {CKM_RSA_PKCS, nullptr, 0}, key.private_key, input);
    EXPECT_EQ(CkRvName(outcome.rv), CkRvName(CKR_DATA_LEN_RANGE))
        << key.Name() << ": " << (k - 10) << " bytes into CKM_RSA_PKCS (" << outcome.step << ")";
  }
  if (ran == 0) GTEST_SKIP() << "no RSA keys on the token";
}

TEST_F(RsaSign, HashAndSign) {
  for (const auto& key : keys_) {
    if (key.key_type != CKK_RSA) continue;
    for (const HashInfo& h : AllHashes()) {
      if (!IsAdvertised(h.ckm_rsa_pkcs)) continue;
      SignCase(key, {h.ckm_rsa_pkcs, nullptr, 0}, Message(), SignatureScheme::kRsaPkcs1,
               h.algorithm, Digest(h.algorithm, Message()), "");
    }
  }
  FinishCases("no RSA key with an advertised CKM_SHA*_RSA_PKCS");
}

TEST_F(RsaSign, MultipartMatchesSinglePart) {
  Bytes big(1024 * 1024 + 200);
  for (size_t i = 0; i < big.size(); ++i) big[i] = static_cast<uint8_t>(i ^ (i >> 8));
  const std::vector<size_t> small_chunks = {0, 1, 63, 64};
  const std::vector<size_t> mib_chunks = {1024 * 1024};
  for (const auto& key : keys_) {
    if (key.key_type != CKK_RSA) continue;
    for (const HashInfo& h : AllHashes()) {
      if (!IsAdvertised(h.ckm_rsa_pkcs)) continue;
      for (const auto* chunks : {&small_chunks, &mib_chunks}) {
        const Bytes& data = chunks == &small_chunks ? Message() : big;
        const std::string what = chunks == &small_chunks ? "chunks 0/1/63/64" : "chunks of 1 MiB";
        const Bytes digest = Digest(h.algorithm, data);
        Bytes single, multi;
        const int before = ran_;
        SignCase(key, {h.ckm_rsa_pkcs, nullptr, 0}, data, SignatureScheme::kRsaPkcs1, h.algorithm,
                 digest, "single-part", &single);
        SignCase(key, {h.ckm_rsa_pkcs, nullptr, 0}, data, SignatureScheme::kRsaPkcs1, h.algorithm,
                 digest, what, &multi, chunks);
        if (ran_ - before == 2 && !single.empty() && !multi.empty()) {
          EXPECT_EQ(Hex(single), Hex(multi)) << key.Name() << " " << MechanismName(h.ckm_rsa_pkcs)
                                             << ": multi-part (" << what << ") differs from single-part";
        }
      }
    }
  }
  FinishCases("no RSA key with an advertised CKM_SHA*_RSA_PKCS");
}

// --- RSA-PSS -----------------------------------------------------------------------------------------

CK_RSA_PKCS_PSS_PARAMS PssParams(const HashInfo& h) {
  return {h.ckm_digest, h.ckg_mgf, h.digest_size};
}

TEST_F(RsaPss, RawPssOverDigest) {
  if (!IsAdvertised(CKM_RSA_PKCS_PSS)) GTEST_SKIP() << "CKM_RSA_PKCS_PSS is not advertised";
  for (const auto& key : keys_) {
    if (key.key_type != CKK_RSA) continue;
    for (const HashInfo& h : AllHashes()) {
      CK_RSA_PKCS_PSS_PARAMS params = PssParams(h);
      const Bytes digest = Digest(h.algorithm, Message());
      SignCase(key, {CKM_RSA_PKCS_PSS, &params, sizeof params}, digest, SignatureScheme::kRsaPss,
               h.algorithm, digest, "over a " + std::string(h.name) + " digest, sLen=hLen");
    }
  }
  FinishCases("no RSA keys on the token");
}

TEST_F(RsaPss, HashAndSign) {
  for (const auto& key : keys_) {
    if (key.key_type != CKK_RSA) continue;
    for (const HashInfo& h : AllHashes()) {
      if (!IsAdvertised(h.ckm_rsa_pss)) continue;
      CK_RSA_PKCS_PSS_PARAMS params = PssParams(h);
      SignCase(key, {h.ckm_rsa_pss, &params, sizeof params}, Message(), SignatureScheme::kRsaPss,
               h.algorithm, Digest(h.algorithm, Message()), "sLen=hLen");
    }
  }
  FinishCases("no RSA key with an advertised CKM_SHA*_RSA_PKCS_PSS");
}

TEST_F(RsaPss, MultipartVerifies) {
  if (!IsAdvertised(CKM_SHA256_RSA_PKCS_PSS)) {
    GTEST_SKIP() << "CKM_SHA256_RSA_PKCS_PSS is not advertised";
  }
  const std::vector<size_t> chunks = {0, 1, 63, 64};
  const HashInfo& h = GetHashInfo(HashAlgorithm::kSha256);
  for (const auto& key : keys_) {
    if (key.key_type != CKK_RSA) continue;
    CK_RSA_PKCS_PSS_PARAMS params = PssParams(h);
    SignCase(key, {h.ckm_rsa_pss, &params, sizeof params}, Message(), SignatureScheme::kRsaPss,
             h.algorithm, Digest(h.algorithm, Message()), "chunks 0/1/63/64", nullptr, &chunks);
  }
  FinishCases("no RSA keys on the token");
}

TEST_F(RsaPss, MismatchedParamsRejectedAtInit) {
  if (!IsAdvertised(CKM_SHA256_RSA_PKCS_PSS)) {
    GTEST_SKIP() << "CKM_SHA256_RSA_PKCS_PSS is not advertised";
  }
  const TokenKey* rsa = nullptr;
  for (const auto& key : keys_) {
    if (key.key_type == CKK_RSA) rsa = &key;
  }
  if (!rsa) GTEST_SKIP() << "no RSA keys on the token";
  struct Case {
    const char* what;
    CK_RSA_PKCS_PSS_PARAMS params;
    CK_ULONG length;
  };
  const Case cases[] = {
      {"hashAlg SHA-384 for CKM_SHA256_RSA_PKCS_PSS", {CKM_SHA384, CKG_MGF1_SHA384, 48}, sizeof(CK_RSA_PKCS_PSS_PARAMS)},
      {"MGF1-SHA-384 with SHA-256", {CKM_SHA256, CKG_MGF1_SHA384, 32}, sizeof(CK_RSA_PKCS_PSS_PARAMS)},
      {"ulParameterLen one short", {CKM_SHA256, CKG_MGF1_SHA256, 32}, sizeof(CK_RSA_PKCS_PSS_PARAMS) - 1},
  };
  for (const auto& c : cases) {
    CK_RSA_PKCS_PSS_PARAMS params = c.params;
    CK_MECHANISM mechanism{CKM_SHA256_RSA_PKCS_PSS, &params, c.length};
    const CK_SESSION_HANDLE session = OpenSession();
    EXPECT_RV(CKR_MECHANISM_PARAM_INVALID, f()->C_SignInit(session, &mechanism, rsa->private_key))
        << " for " << c.what;
    f()->C_CloseSession(session);
  }
  if (IsAdvertised(CKM_RSA_PKCS_PSS)) {
    CK_RSA_PKCS_PSS_PARAMS params{CKM_SHA256, CKG_MGF1_SHA512, 32};
    CK_MECHANISM mechanism{CKM_RSA_PKCS_PSS, &params, sizeof params};
    const CK_SESSION_HANDLE session = OpenSession();
    EXPECT_RV(CKR_MECHANISM_PARAM_INVALID, f()->C_SignInit(session, &mechanism, rsa->private_key))
        << " for CKM_RSA_PKCS_PSS with SHA-256 and MGF1-SHA-512";
    f()->C_CloseSession(session);
  }
}

// --- ECDSA ---------------------------------------------------------------------------------------------

std::optional<EcCurve> CurveOf(const TokenKey& key) {
  if (key.key_type != CKK_EC || !key.verify_key) return std::nullopt;
  return key.verify_key->spec().curve;
}

// The hash whose digest is as long as the curve's order, else the longest shorter one.
HashAlgorithm CurveHash(EcCurve curve) {
  switch (curve) {
    case EcCurve::kP256: return HashAlgorithm::kSha256;
    case EcCurve::kP384: return HashAlgorithm::kSha384;
    case EcCurve::kP521: return HashAlgorithm::kSha512;
  }
  return HashAlgorithm::kSha256;
}

TEST_F(EcdsaSign, RawSignatureIsTwiceOrderLength) {
  if (!IsAdvertised(CKM_ECDSA)) GTEST_SKIP() << "CKM_ECDSA is not advertised";
  for (const auto& key : keys_) {
    auto curve = CurveOf(key);
    if (!curve) continue;
    const HashAlgorithm hash = CurveHash(*curve);
    const Bytes digest = Digest(hash, Message());
    Bytes signature;
    SignCase(key, {CKM_ECDSA, nullptr, 0}, digest, SignatureScheme::kEcdsa, hash, digest,
             std::string(HashName(hash)) + " digest", &signature);
    if (!signature.empty()) {
      EXPECT_EQ(signature.size(), 2 * GetCurveInfo(*curve).field_size)
          << key.Name() << ": raw r||s must be exactly twice the field size";
    }
  }
  FinishCases("no EC keys on the token");
}

TEST_F(EcdsaSign, HashLongerThanCurve) {
  if (!IsAdvertised(CKM_ECDSA)) GTEST_SKIP() << "CKM_ECDSA is not advertised";
  for (const auto& key : keys_) {
    auto curve = CurveOf(key);
    if (!curve || GetCurveInfo(*curve).field_size >= 64) continue;
    const Bytes digest = Digest(HashAlgorithm::kSha512, Message());
    SignCase(key, {CKM_ECDSA, nullptr, 0}, digest, SignatureScheme::kEcdsa, HashAlgorithm::kSha512,
             digest, "SHA-512 digest (longer than the curve)");
  }
  FinishCases("no EC key on a curve shorter than 512 bits");
}

TEST_F(EcdsaSign, HashShorterThanCurve) {
  if (!IsAdvertised(CKM_ECDSA)) GTEST_SKIP() << "CKM_ECDSA is not advertised";
  for (const auto& key : keys_) {
    auto curve = CurveOf(key);
    if (!curve || GetCurveInfo(*curve).field_size <= 32) continue;
    const Bytes digest = Digest(HashAlgorithm::kSha256, Message());
    SignCase(key, {CKM_ECDSA, nullptr, 0}, digest, SignatureScheme::kEcdsa, HashAlgorithm::kSha256,
             digest, "SHA-256 digest (shorter than the curve)");
  }
  FinishCases("no EC key on a curve longer than 256 bits");
}

TEST_F(EcdsaSign, RepeatedSignaturesAllVerify) {
  if (!IsAdvertised(CKM_ECDSA)) GTEST_SKIP() << "CKM_ECDSA is not advertised";
  constexpr int kRepetitions = 40;
  for (const auto& key : keys_) {
    auto curve = CurveOf(key);
    if (!curve) continue;
    const HashAlgorithm hash = CurveHash(*curve);
    for (int i = 0; i < kRepetitions && !HasFailure(); ++i) {
      const std::string text = "repetition " + std::to_string(i);
      const Bytes digest = Digest(hash, AsBytes(text));
      Bytes signature;
      SignCase(key, {CKM_ECDSA, nullptr, 0}, digest, SignatureScheme::kEcdsa, hash, digest, text,
               &signature);
      if (!signature.empty()) { EXPECT_EQ(signature.size(), 2 * GetCurveInfo(*curve).field_size); }
    }
  }
  FinishCases("no EC keys on the token");
}

TEST_F(EcdsaSign, HashAndSign) {
  for (const auto& key : keys_) {
    if (!CurveOf(key)) continue;
    for (const HashInfo& h : AllHashes()) {
      if (!IsAdvertised(h.ckm_ecdsa)) continue;
      SignCase(key, {h.ckm_ecdsa, nullptr, 0}, Message(), SignatureScheme::kEcdsa, h.algorithm,
               Digest(h.algorithm, Message()), "");
    }
  }
  FinishCases("no EC key with an advertised CKM_ECDSA_SHA*");
}

TEST_F(EcdsaSign, MultipartVerifies) {
  if (!IsAdvertised(CKM_ECDSA_SHA256)) GTEST_SKIP() << "CKM_ECDSA_SHA256 is not advertised";
  const std::vector<size_t> chunks = {0, 1, 63, 64};
  for (const auto& key : keys_) {
    if (!CurveOf(key)) continue;
    SignCase(key, {CKM_ECDSA_SHA256, nullptr, 0}, Message(), SignatureScheme::kEcdsa,
             HashAlgorithm::kSha256, Digest(HashAlgorithm::kSha256, Message()),
             "chunks 0/1/63/64", nullptr, &chunks);
  }
  FinishCases("no EC keys on the token");
}

}  // namespace
}  // namespace signum::conformance

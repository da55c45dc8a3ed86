// hsm profile only: KeyGen, Handles and HsmSessions checks (CHECKS.md). Every object created here
// is labelled "signum-conformance-<random>" and deleted; leftovers of crashed runs are deleted
// before the first check.
#include <algorithm>

#include "signum/testing/status_matchers.h"
#include "suite.h"

namespace signum::conformance {
namespace {

constexpr std::string_view kLabelPrefix = "signum-conformance-";

class HsmCheck : public Pkcs11Check {
 protected:
  void SetUp() override {
    Pkcs11Check::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    session_ = OpenSession(true, true);
    ASSERT_NE(session_, CK_INVALID_HANDLE);
    static bool cleaned = false;
    if (!cleaned) {
      cleaned = true;
      DeleteLeftovers();
    }
  }
  void DeleteLeftovers() {
    auto all = FindObjects(session_, Template());
    if (!all.ok()) return;
    int deleted = 0;
    for (CK_OBJECT_HANDLE h : *all) {
      auto label = GetAttribute(session_, h, CKA_LABEL);
      if (label.ok() && ToString(*label).rfind(kLabelPrefix, 0) == 0 &&
          f()->C_DestroyObject(session_, h) == CKR_OK) {
        ++deleted;
      }
    }
    if (deleted) Note("deleted " + std::to_string(deleted) + " objects left by an earlier run");
  }
  CK_SESSION_HANDLE session_ = CK_INVALID_HANDLE;
};

class KeyGen : public HsmCheck {
 protected:
  void Generate(KeySpec spec) {
    if (!pin()) GTEST_SKIP() << "key generation needs a user PIN";
    const CK_MECHANISM_TYPE mechanism =
        spec.type == KeyType::kRsa ? CKM_RSA_PKCS_KEY_PAIR_GEN : CKM_EC_KEY_PAIR_GEN;
    if (!IsAdvertised(mechanism)) GTEST_SKIP() << MechanismName(mechanism) << " is not advertised";
    CK_MECHANISM_INFO info{};
    ASSERT_RV(CKR_OK, f()->C_GetMechanismInfo(slot(), mechanism, &info));
    if (info.ulMaxKeySize != 0 &&
        (CK_ULONG(spec.Bits()) < info.ulMinKeySize || CK_ULONG(spec.Bits()) > info.ulMaxKeySize)) {
      GTEST_SKIP() << spec.Name() << " is outside " << MechanismName(mechanism) << "'s "
                   << info.ulMinKeySize << ".." << info.ulMaxKeySize;
    }
    const std::string label = std::string(kLabelPrefix) + Hex(RandomBytes(6));
    const Bytes id = RandomBytes(8);
    Template pub, priv;
    pub.AddUlong(CKA_CLASS, CKO_PUBLIC_KEY).AddBool(CKA_TOKEN, true).AddBool(CKA_VERIFY, true)
        .AddString(CKA_LABEL, label).Add(CKA_ID, id);
    if (spec.type == KeyType::kRsa) {
      const uint8_t exponent[] = {0x01, 0x00, 0x01};
      pub.AddUlong(CKA_MODULUS_BITS, CK_ULONG(spec.rsa_bits)).Add(CKA_PUBLIC_EXPONENT, exponent);
    } else {
      pub.Add(CKA_EC_PARAMS, GetCurveInfo(spec.curve).params_der);
    }
    priv.AddUlong(CKA_CLASS, CKO_PRIVATE_KEY).AddBool(CKA_TOKEN, true).AddBool(CKA_PRIVATE, true)
        .AddBool(CKA_SENSITIVE, true).AddBool(CKA_EXTRACTABLE, false).AddBool(CKA_SIGN, true)
        .AddString(CKA_LABEL, label).Add(CKA_ID, id);
    CK_MECHANISM m{mechanism, nullptr, 0};
    TokenKey key;
    key.label = label;
    key.id = id;
    key.key_type = spec.type == KeyType::kRsa ? CKK_RSA : CKK_EC;
    ASSERT_RV(CKR_OK, f()->C_GenerateKeyPair(session_, &m, pub.data(), pub.size(), priv.data(),
                                             priv.size(), &key.public_key_handle, &key.private_key));
    Check(spec, key);
    EXPECT_RV(CKR_OK, f()->C_DestroyObject(session_, key.private_key));
    EXPECT_RV(CKR_OK, f()->C_DestroyObject(session_, key.public_key_handle));
    auto left = FindObjects(session_, Template().AddString(CKA_LABEL, label));
    ASSERT_OK(left);
    EXPECT_TRUE(left->empty()) << "generated objects were not deleted";
  }

  // What Signum needs decides: generated on the token, usable for signing, and the private value
  // never leaves. The custody attributes must read as asked; the history attributes (ALWAYS_/
  // NEVER_/LOCAL) must not contradict it where the module keeps them; a private value that is
  // refused with CKR_ATTRIBUTE_TYPE_INVALID instead of CKR_ATTRIBUTE_SENSITIVE (tpm2-pkcs11, F50)
  // is a deviation for Attributes.SensitiveValueIsAttributeSensitive, not a failed generation.
  void Check(KeySpec spec, TokenKey& key) {
    for (auto [type, want] : {std::pair{CKA_SENSITIVE, true}, std::pair{CKA_EXTRACTABLE, false},
                              std::pair{CKA_SIGN, true}, std::pair{CKA_TOKEN, true},
                              std::pair{CKA_PRIVATE, true}}) {
      auto value = GetBool(session_, key.private_key, type);
      ASSERT_OK(value) << AttributeName(type);
      EXPECT_EQ(*value, want) << AttributeName(type) << " of the generated private key";
    }
    for (auto [type, want] : {std::pair{CKA_ALWAYS_SENSITIVE, true},
                              std::pair{CKA_NEVER_EXTRACTABLE, true}, std::pair{CKA_LOCAL, true}}) {
      auto value = GetBool(session_, key.private_key, type);
      if (!value.ok()) {
        Note("deviation: " + AttributeName(type) + " of a generated key is unreadable (" +
             value.status().ToString() + ")");
        continue;
      }
      EXPECT_EQ(*value, want) << AttributeName(type) << " of the generated private key";
    }
    const CK_ATTRIBUTE_TYPE secret = spec.type == KeyType::kRsa ? CKA_PRIVATE_EXPONENT : CKA_VALUE;
    Bytes buffer(1024);
    CK_ATTRIBUTE a{secret, buffer.data(), buffer.size()};
    const CK_RV rv = f()->C_GetAttributeValue(session_, key.private_key, &a, 1);
    EXPECT_TRUE(rv == CKR_ATTRIBUTE_SENSITIVE || rv == CKR_ATTRIBUTE_TYPE_INVALID)
        << AttributeName(secret) << " of the generated key: " << CkRvName(rv)
        << " (the value must not leave the token)";
    EXPECT_EQ(a.ulValueLen, CK_UNAVAILABLE_INFORMATION);
    if (rv == CKR_ATTRIBUTE_TYPE_INVALID) {
      Note("deviation: " + AttributeName(secret) +
           " answered CKR_ATTRIBUTE_TYPE_INVALID (spec: CKR_ATTRIBUTE_SENSITIVE); the value "
           "does not leave the token (F50)");
    }
    auto pub = PublicKeyFromObject(session_, key.public_key_handle);
    ASSERT_OK(pub);
    EXPECT_EQ(pub->spec(), spec) << "generated " << pub->spec().Name();
    key.verify_key = *pub;
    auto recipe = DefaultRecipe(key);
    if (!recipe) {
      Note("no advertised mechanism to sign with a generated " + spec.Name() + " key");
      return;
    }
    ASSERT_OK(SignAndVerify(session_, key, *recipe, AsBytes("generated key")));
  }
};

TEST_F(KeyGen, Rsa2048) { Generate({KeyType::kRsa, 2048, EcCurve::kP256}); }
TEST_F(KeyGen, Rsa3072) { Generate({KeyType::kRsa, 3072, EcCurve::kP256}); }
TEST_F(KeyGen, Rsa4096) { Generate({KeyType::kRsa, 4096, EcCurve::kP256}); }
TEST_F(KeyGen, EcP256) { Generate({KeyType::kEc, 0, EcCurve::kP256}); }
TEST_F(KeyGen, EcP384) { Generate({KeyType::kEc, 0, EcCurve::kP384}); }
TEST_F(KeyGen, EcP521) { Generate({KeyType::kEc, 0, EcCurve::kP521}); }

class Handles : public HsmCheck {
 protected:
  // After `disturb`, the old handle is invalid or still the same object; re-finding by CKA_ID
  // signs.
  void Exercise(const std::function<void()>& disturb) {
    auto keys = KeysOrFail(session_);
    if (HasFailure()) return;
    if (keys.empty()) GTEST_SKIP() << "no private keys on the token";
    const auto signing = SigningKeysPerType(keys);
    if (signing.empty()) GTEST_SKIP() << "no key has an advertised signing mechanism";
    for (const auto& [key, recipe] : signing) {
      const Status status = SignAndVerify(session_, key, recipe, AsBytes("before"));
      ASSERT_OK(status) << key.Name();
    }
    disturb();
    if (HasFatalFailure()) return;
    for (const auto& [key, recipe] : signing) {
      SCOPED_TRACE(key.Name());
      Refind(key, recipe);
    }
  }
  void Refind(const TokenKey& key, const SignRecipe& recipe) {
    // Room for a longer CKA_ID: a stale handle may now name an object with a different one.
    Bytes id(key.id.size() + 8);
    CK_ATTRIBUTE a{CKA_ID, id.data(), static_cast<CK_ULONG>(id.size())};
    const CK_RV rv = f()->C_GetAttributeValue(session_, key.private_key, &a, 1);
    if (rv == CKR_OK) {
      ASSERT_LE(a.ulValueLen, id.size()) << "C_GetAttributeValue(CKA_ID) of the old handle "
                                            "returned CKR_OK with a length beyond the buffer";
      id.resize(a.ulValueLen);
      EXPECT_EQ(Hex(id), Hex(key.id)) << "the old handle now names a different object";
      Note(key.Name() + ": the old handle stayed valid");
    } else if (rv == CKR_BUFFER_TOO_SMALL) {
      ADD_FAILURE() << "the old handle now names a different object (longer CKA_ID)";
    } else {
      EXPECT_RV(CKR_OBJECT_HANDLE_INVALID, rv) << " (the old handle after the disturbance)";
      Note(key.Name() + ": the old handle became invalid: " + CkRvName(rv));
    }
    ASSERT_OK_AND_ASSIGN(auto found, FindObjects(session_, Template()
                                                               .AddUlong(CKA_CLASS, CKO_PRIVATE_KEY)
                                                               .Add(CKA_ID, key.id)));
    ASSERT_EQ(found.size(), 1u) << "re-finding " << key.Name() << " by CKA_ID";
    TokenKey again = key;
    again.private_key = found.front();
    ASSERT_OK(SignAndVerify(session_, again, recipe, AsBytes("after")));
  }
};

TEST_F(Handles, RefindByIdAfterLastSessionCloses) {
  Exercise([&] {
    ASSERT_RV(CKR_OK, f()->C_CloseAllSessions(slot()));
    session_ = OpenSession(true, true);
    ASSERT_NE(session_, CK_INVALID_HANDLE);
  });
}

TEST_F(Handles, RefindByIdAfterLogout) {
  if (!pin() || !LoginRequired()) GTEST_SKIP() << "needs a PIN and a token with CKF_LOGIN_REQUIRED";
  Exercise([&] {
    ASSERT_RV(CKR_OK, f()->C_Logout(session_));
    ASSERT_RV(CKR_OK, f()->C_Login(session_, CKU_USER,
                                   PinBytes(*pin()),
                                   pin()->size()));
  });
}

class HsmSessions : public HsmCheck {};

TEST_F(HsmSessions, ReLoginAfterLogout) {
  if (!pin() || !LoginRequired()) GTEST_SKIP() << "needs a PIN and a token with CKF_LOGIN_REQUIRED";
  auto keys = KeysOrFail(session_);
  if (HasFailure()) return;
  if (keys.empty()) GTEST_SKIP() << "no private keys on the token";
  const auto signing = SigningKeysPerType(keys);
  if (signing.empty()) GTEST_SKIP() << "no key has an advertised signing mechanism";
  for (const auto& [key, recipe] : signing) {
    const Status status = SignAndVerify(session_, key, recipe, AsBytes("first login"));
    ASSERT_OK(status) << key.Name();
  }
  ASSERT_RV(CKR_OK, f()->C_Logout(session_));
  for (const auto& [key, recipe] : signing) {
    const Status logged_out = SignAndVerify(session_, key, recipe, AsBytes("logged out"));
    EXPECT_FALSE(logged_out.ok()) << key.Name() << ": signing succeeded after C_Logout";
  }
  ASSERT_RV(CKR_OK, f()->C_Login(session_, CKU_USER,
                                 PinBytes(*pin()),
                                 pin()->size()));
  auto again = KeysOrFail(session_);
  if (HasFailure()) return;
  for (const auto& [key, recipe] : signing) {
    const auto it = std::find_if(again.begin(), again.end(),
                                 [&](const TokenKey& k) { return k.id == key.id; });
    if (it == again.end()) {
      ADD_FAILURE() << key.Name() << " is not found after the second login";
      continue;
    }
    const Status status = SignAndVerify(session_, *it, recipe, AsBytes("second login"));
    EXPECT_OK(status) << key.Name() << " after the second login";
  }
}

TEST_F(HsmSessions, ManyThreadsManySessions) {
  auto all = KeysOrFail(session_);
  if (HasFailure()) return;
  std::vector<TokenKey> keys;
  std::vector<SignRecipe> recipes;
  for (const auto& key : all) {
    auto recipe = DefaultRecipe(key);
    if (recipe && keys.size() < 4) {
      keys.push_back(key);
      recipes.push_back(*recipe);
    }
  }
  if (keys.empty()) GTEST_SKIP() << "no private key with an advertised signing mechanism";
  ASSERT_OK(SignConcurrently(keys, recipes, 16, 4, /*session_per_signature=*/true));
}

}  // namespace
}  // namespace signum::conformance

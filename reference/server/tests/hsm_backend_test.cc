// HsmBackend against a real, throwaway SoftHSM2 token (no mocks). Every signature is verified
// independently with OpenSSL (signum::VerifyDigestSignature) against the public key that
// GenerateKeyPair reported.
#include "hsm_backend.h"

#include <gtest/gtest.h>

#include <atomic>
#include <map>
#include <thread>

#include "signum/testing/softhsm_token.h"
#include "signum/testing/status_matchers.h"

namespace signum::server {
namespace {

using ::signum::testing::StatusIs;

using ::signum::testing::SoftHsmToken;

constexpr char kLabel[] = "signum-hsm-test";
constexpr char kPin[] = "4711-signum";
constexpr size_t kPoolSize = 4;

bool Contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

// One token and one backend per test process, with one key per KeySpec generated on first use
// (RSA-4096 takes about a second; ctest runs every test in its own process, so generating only
// what a test needs keeps the suite fast). Torn down by the environment below, before exit, so
// C_Finalize runs while OpenSSL is still intact.
struct Shared {
  std::unique_ptr<SoftHsmToken> token;
  std::unique_ptr<HsmBackend> backend;
  std::map<std::string, HsmKey> keys;  // by KeySpec::Name()
};

Shared*& SharedState() {
  static Shared* shared = nullptr;
  return shared;
}

Shared& GetShared() {
  Shared*& shared = SharedState();
  if (shared == nullptr) {
    shared = new Shared;
    shared->token = std::make_unique<SoftHsmToken>(kLabel, kPin);
    auto backend =
        HsmBackend::Open(HsmConfig{shared->token->module_path(), kLabel, kPin, kPoolSize});
    if (!backend.ok()) {
      ADD_FAILURE() << backend.status().ToString();
      return *shared;
    }
    shared->backend = std::move(*backend);
  }
  return *shared;
}

class SharedEnvironment : public ::testing::Environment {
 public:
  void TearDown() override {
    Shared*& shared = SharedState();
    if (shared == nullptr) return;
    shared->backend.reset();
    shared->token.reset();
    delete shared;
    shared = nullptr;
  }
};
[[maybe_unused]] ::testing::Environment* const kEnvironment =
    ::testing::AddGlobalTestEnvironment(new SharedEnvironment);

class HsmBackendTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_NE(GetShared().backend, nullptr);
    backend_ = GetShared().backend.get();
  }

  const HsmKey& KeyFor(const KeySpec& spec) {
    auto& keys = GetShared().keys;
    auto it = keys.find(spec.Name());
    if (it == keys.end()) {
      auto key = backend_->GenerateKeyPair(spec, "test " + spec.Name());
      EXPECT_OK(key);
      if (!key.ok()) std::abort();
      it = keys.emplace(spec.Name(), std::move(*key)).first;
    }
    return it->second;
  }

  static KeySpec Spec(std::string_view name) { return ParseKeySpec(name).value(); }

  static Bytes DigestOf(HashAlgorithm hash, const std::string& text) {
    return Digest(hash, AsBytes(text));
  }

  // Signs with the backend and verifies with OpenSSL.
  void SignAndVerify(const HsmKey& key, SignatureScheme scheme, HashAlgorithm hash,
                     std::optional<size_t> salt = std::nullopt) {
    const Bytes digest = DigestOf(hash, "message for " + key.public_key.spec().Name() + " " +
                                            std::string(SchemeName(scheme)));
    auto signature = backend_->Sign(key.id, scheme, hash, digest, salt);
    ASSERT_OK(signature) << key.public_key.spec().Name() << " " << SchemeName(scheme) << " "
                         << HashName(hash);
    EXPECT_EQ(signature->size(), key.public_key.spec().SignatureSize());
    Status verified = VerifyDigestSignature(key.public_key, scheme, hash, digest, *signature, salt);
    EXPECT_OK(verified) << key.public_key.spec().Name() << " " << SchemeName(scheme) << " "
                        << HashName(hash);
  }

  // A session of our own on the backend's module, to poke at the token behind its back.
  Pkcs11Session OwnSession() {
    auto session = Pkcs11Session::Open(backend_->module(), backend_->slot(), true);
    EXPECT_OK(session);
    return std::move(session).value();
  }

  std::vector<CK_OBJECT_HANDLE> RawFind(Pkcs11Session& session, CK_OBJECT_CLASS cls,
                                        const Bytes& id) {
    auto found = session.FindObjects(
        {MakeAttribute(CKA_CLASS, &cls, sizeof cls), MakeAttribute(CKA_ID, id.data(), id.size())});
    EXPECT_OK(found);
    return found.ok() ? *found : std::vector<CK_OBJECT_HANDLE>{};
  }

  HsmBackend* backend_ = nullptr;
};

const HashAlgorithm kAllHashes[] = {HashAlgorithm::kSha1, HashAlgorithm::kSha224,
                                    HashAlgorithm::kSha256, HashAlgorithm::kSha384,
                                    HashAlgorithm::kSha512};
const SignatureScheme kAllSchemes[] = {SignatureScheme::kRsaPkcs1, SignatureScheme::kRsaPss,
                                       SignatureScheme::kEcdsa};

// --- Keys and signatures, per KeySpec ---------------------------------------------------------

class HsmSpecTest : public HsmBackendTest, public ::testing::WithParamInterface<KeySpec> {};

TEST_P(HsmSpecTest, GeneratedKeyIsSensitiveAndIdentifiedByItsPublicKey) {
  const HsmKey& key = KeyFor(GetParam());
  EXPECT_EQ(key.public_key.spec(), GetParam());
  EXPECT_EQ(key.id, key.public_key.KeyId());
  EXPECT_EQ(key.label, "test " + GetParam().Name());
  EXPECT_TRUE(key.sensitive);
  EXPECT_FALSE(key.extractable);

  // What is on the token, read with plain PKCS#11.
  Pkcs11Session session = OwnSession();
  std::vector<CK_OBJECT_HANDLE> priv = RawFind(session, CKO_PRIVATE_KEY, key.id);
  std::vector<CK_OBJECT_HANDLE> pub = RawFind(session, CKO_PUBLIC_KEY, key.id);
  ASSERT_EQ(priv.size(), 1u);
  ASSERT_EQ(pub.size(), 1u);
  EXPECT_TRUE(*session.GetBoolAttribute(priv[0], CKA_TOKEN));
  EXPECT_TRUE(*session.GetBoolAttribute(priv[0], CKA_PRIVATE));
  EXPECT_TRUE(*session.GetBoolAttribute(priv[0], CKA_SIGN));
  // A signing key and nothing else (SoftHSM2 has no module quirk that needs CKA_DECRYPT).
  EXPECT_FALSE(*session.GetBoolAttribute(priv[0], CKA_DECRYPT));
  EXPECT_FALSE(*session.GetBoolAttribute(priv[0], CKA_UNWRAP));
  EXPECT_FALSE(key.decrypt_left_to_module);
  EXPECT_TRUE(*session.GetBoolAttribute(priv[0], CKA_ALWAYS_SENSITIVE));
  EXPECT_TRUE(*session.GetBoolAttribute(priv[0], CKA_NEVER_EXTRACTABLE));
  EXPECT_TRUE(*session.GetBoolAttribute(pub[0], CKA_TOKEN));
  EXPECT_TRUE(*session.GetBoolAttribute(pub[0], CKA_VERIFY));
  EXPECT_EQ(ToString(*session.GetAttribute(pub[0], CKA_LABEL)), key.label);

  // FindKey reports the same public key (EC: from the public key object's CKA_EC_POINT).
  auto found = backend_->FindKey(key.id);
  ASSERT_OK(found);
  EXPECT_EQ(found->id, key.id);
  EXPECT_EQ(found->label, key.label);
  EXPECT_EQ(found->public_key.SpkiDer(), key.public_key.SpkiDer());
  EXPECT_TRUE(found->sensitive);
  EXPECT_FALSE(found->extractable);
}

TEST_P(HsmSpecTest, SignsWithEveryFittingSchemeAndHash) {
  const HsmKey& key = KeyFor(GetParam());
  int signatures = 0;
  for (SignatureScheme scheme : kAllSchemes) {
    if (!SchemeFitsKey(scheme, GetParam().type)) continue;
    for (HashAlgorithm hash : kAllHashes) {
      SignAndVerify(key, scheme, hash);
      ++signatures;
    }
  }
  EXPECT_EQ(signatures, GetParam().type == KeyType::kRsa ? 10 : 5);
}

TEST_P(HsmSpecTest, VerificationIsNotVacuous) {
  const HsmKey& key = KeyFor(GetParam());
  const SignatureScheme scheme =
      GetParam().type == KeyType::kRsa ? SignatureScheme::kRsaPkcs1 : SignatureScheme::kEcdsa;
  Bytes digest = DigestOf(HashAlgorithm::kSha256, "original");
  auto signature = backend_->Sign(key.id, scheme, HashAlgorithm::kSha256, digest);
  ASSERT_OK(signature);
  digest[0] ^= 1;
  EXPECT_FALSE(
      VerifyDigestSignature(key.public_key, scheme, HashAlgorithm::kSha256, digest, *signature)
          .ok());
}

TEST_P(HsmSpecTest, PssSaltLengths) {
  if (GetParam().type != KeyType::kRsa) GTEST_SKIP() << "PSS is RSA only";
  const HsmKey& key = KeyFor(GetParam());
  for (HashAlgorithm hash : {HashAlgorithm::kSha256, HashAlgorithm::kSha512}) {
    const size_t max = MaxPssSaltLength(GetParam().rsa_bits, hash);
    for (size_t salt : {size_t{0}, size_t{20}, max})
      SignAndVerify(key, SignatureScheme::kRsaPss, hash, salt);
    auto too_long =
        backend_->Sign(key.id, SignatureScheme::kRsaPss, hash, DigestOf(hash, "x"), max + 1);
    ASSERT_THAT(too_long, StatusIs(ErrorCode::kInvalidArgument));
    EXPECT_TRUE(Contains(too_long.status().message(), "at most " + std::to_string(max)))
        << too_long.status().message();
  }
}

TEST_P(HsmSpecTest, SchemeMustFitTheKey) {
  const HsmKey& key = KeyFor(GetParam());
  const Bytes digest = DigestOf(HashAlgorithm::kSha256, "x");
  for (SignatureScheme scheme : kAllSchemes) {
    if (SchemeFitsKey(scheme, GetParam().type)) continue;
    auto result = backend_->Sign(key.id, scheme, HashAlgorithm::kSha256, digest);
    ASSERT_THAT(result, StatusIs(ErrorCode::kInvalidArgument));
    EXPECT_EQ(result.status().message(),
              std::string(SchemeName(scheme)) +
                  (GetParam().type == KeyType::kRsa ? " on an RSA key" : " on an EC key"));
  }
}

TEST_P(HsmSpecTest, SignerForSignsWithTheHsmKey) {
  const HsmKey& key = KeyFor(GetParam());
  auto signer = backend_->SignerFor(key.id);
  ASSERT_OK(signer);
  EXPECT_EQ((*signer)->public_key().SpkiDer(), key.public_key.SpkiDer());
  const SignatureScheme scheme =
      GetParam().type == KeyType::kRsa ? SignatureScheme::kRsaPss : SignatureScheme::kEcdsa;
  const Bytes digest = DigestOf(HashAlgorithm::kSha384, "via signer");
  auto signature = (*signer)->SignDigest(scheme, HashAlgorithm::kSha384, digest, std::nullopt);
  ASSERT_OK(signature);
  EXPECT_OK(
      VerifyDigestSignature(key.public_key, scheme, HashAlgorithm::kSha384, digest, *signature));
}

INSTANTIATE_TEST_SUITE_P(AllSpecs, HsmSpecTest, ::testing::ValuesIn(SupportedKeySpecs()),
                         [](const ::testing::TestParamInfo<KeySpec>& info) {
                           std::string name = info.param.Name();
                           std::replace(name.begin(), name.end(), '-', '_');
                           return name;
                         });

// --- Errors
// ---------------------------------------------------------------------------------------

TEST_F(HsmBackendTest, WrongDigestLength) {
  const HsmKey& key = KeyFor(Spec("ec-p256"));
  const Bytes short_digest(31, 0xab);
  auto result =
      backend_->Sign(key.id, SignatureScheme::kEcdsa, HashAlgorithm::kSha256, short_digest);
  ASSERT_THAT(result, StatusIs(ErrorCode::kInvalidArgument));
  EXPECT_EQ(result.status().message(), "a sha256 digest has 32 bytes, got 31");
  auto sha1 = backend_->Sign(key.id, SignatureScheme::kEcdsa, HashAlgorithm::kSha1, Bytes(32));
  EXPECT_EQ(sha1.status().message(), "a sha1 digest has 20 bytes, got 32");
}

TEST_F(HsmBackendTest, UnknownKeyIdIsNotFound) {
  const Bytes digest = DigestOf(HashAlgorithm::kSha256, "x");
  const Bytes unknown = {0xde, 0xad, 0xbe, 0xef};
  auto result = backend_->Sign(unknown, SignatureScheme::kEcdsa, HashAlgorithm::kSha256, digest);
  ASSERT_THAT(result, StatusIs(ErrorCode::kNotFound));
  EXPECT_TRUE(Contains(result.status().message(), "deadbeef")) << result.status().message();
  EXPECT_THAT(backend_->FindKey(unknown), StatusIs(ErrorCode::kNotFound));
  EXPECT_THAT(backend_->SignerFor(unknown), StatusIs(ErrorCode::kNotFound));
  EXPECT_THAT(backend_->Sign({}, SignatureScheme::kEcdsa, HashAlgorithm::kSha256, digest),
              StatusIs(ErrorCode::kInvalidArgument));
}

TEST_F(HsmBackendTest, UnsupportedKeySpecIsRefused) {
  KeySpec rsa1024{KeyType::kRsa, 1024, EcCurve::kP256};
  auto key = backend_->GenerateKeyPair(rsa1024, "too small");
  ASSERT_THAT(key, StatusIs(ErrorCode::kInvalidArgument));
}

// Keys whose private half can leave the token are refused, whatever created them.
TEST_F(HsmBackendTest, NonSensitiveOrExtractableKeysAreRefused) {
  Pkcs11Session session = OwnSession();  // the token is logged in application-wide
  struct Case {
    Bytes id;
    bool sensitive;
    bool extractable;
    std::string why;
  };
  const Case cases[] = {
      {{0x5e, 0x01}, true, true, "CKA_EXTRACTABLE"},
      {{0x5e, 0x02}, false, false, "CKA_SENSITIVE"},
  };
  const ByteView p256 = GetCurveInfo(EcCurve::kP256).params_der;
  for (const Case& c : cases) {
    CK_BBOOL yes = CK_TRUE;
    CK_BBOOL sensitive = c.sensitive ? CK_TRUE : CK_FALSE;
    CK_BBOOL extractable = c.extractable ? CK_TRUE : CK_FALSE;
    std::vector<CK_ATTRIBUTE> pub_tmpl = {
        MakeAttribute(CKA_TOKEN, &yes, sizeof yes),
        MakeAttribute(CKA_VERIFY, &yes, sizeof yes),
        MakeAttribute(CKA_EC_PARAMS, p256.data(), p256.size()),
        MakeAttribute(CKA_ID, c.id.data(), c.id.size()),
    };
    std::vector<CK_ATTRIBUTE> priv_tmpl = {
        MakeAttribute(CKA_TOKEN, &yes, sizeof yes),
        MakeAttribute(CKA_PRIVATE, &yes, sizeof yes),
        MakeAttribute(CKA_SIGN, &yes, sizeof yes),
        MakeAttribute(CKA_SENSITIVE, &sensitive, sizeof sensitive),
        MakeAttribute(CKA_EXTRACTABLE, &extractable, sizeof extractable),
        MakeAttribute(CKA_ID, c.id.data(), c.id.size()),
    };
    CK_MECHANISM mech{CKM_EC_KEY_PAIR_GEN, nullptr, 0};
    CK_OBJECT_HANDLE pub, priv;
    ASSERT_EQ(session.fn()->C_GenerateKeyPair(
                  session.handle(), &mech, pub_tmpl.data(), static_cast<CK_ULONG>(pub_tmpl.size()),
                  priv_tmpl.data(), static_cast<CK_ULONG>(priv_tmpl.size()), &pub, &priv),
              static_cast<CK_RV>(CKR_OK));

    const Bytes digest = DigestOf(HashAlgorithm::kSha256, "x");
    for (int attempt = 0; attempt < 2; ++attempt) {  // the second time from the cache
      auto result = backend_->Sign(c.id, SignatureScheme::kEcdsa, HashAlgorithm::kSha256, digest);
      ASSERT_THAT(result, StatusIs(ErrorCode::kFailedPrecondition));
      EXPECT_TRUE(Contains(result.status().message(), c.why)) << result.status().message();
    }
    // FindKey still describes the key honestly.
    auto found = backend_->FindKey(c.id);
    ASSERT_OK(found);
    EXPECT_EQ(found->sensitive, c.sensitive);
    EXPECT_EQ(found->extractable, c.extractable);
    EXPECT_OK(backend_->DestroyKey(c.id));
  }
}

// --- Recovery
// -------------------------------------------------------------------------------------

// C_CloseAllSessions: every pooled session dies, the token is logged out and every handle is gone.
TEST_F(HsmBackendTest, RecoversFromCloseAllSessions) {
  const HsmKey& ec = KeyFor(Spec("ec-p256"));
  const HsmKey& rsa = KeyFor(Spec("rsa-2048"));
  SignAndVerify(ec, SignatureScheme::kEcdsa, HashAlgorithm::kSha256);  // handles cached
  const HsmStats before = backend_->stats();

  ASSERT_EQ(backend_->module()->functions()->C_CloseAllSessions(backend_->slot()),
            static_cast<CK_RV>(CKR_OK));

  SignAndVerify(ec, SignatureScheme::kEcdsa, HashAlgorithm::kSha256);
  const HsmStats after = backend_->stats();
  EXPECT_GT(after.session_reopens, before.session_reopens);
  // Every other pooled session is dead too and gets repaired when it is next used.
  for (size_t i = 0; i < 2 * kPoolSize; ++i) {
    SignAndVerify(i % 2 ? ec : rsa, i % 2 ? SignatureScheme::kEcdsa : SignatureScheme::kRsaPss,
                  HashAlgorithm::kSha384);
  }
  EXPECT_GE(backend_->stats().session_reopens, before.session_reopens + kPoolSize);
  EXPECT_OK(backend_->Check());
  EXPECT_OK(backend_->ListKeys());
}

// C_Logout from any session logs the whole token out and invalidates private-object handles.
TEST_F(HsmBackendTest, RecoversFromLogout) {
  const HsmKey& key = KeyFor(Spec("ec-p384"));
  SignAndVerify(key, SignatureScheme::kEcdsa, HashAlgorithm::kSha384);
  const HsmStats before = backend_->stats();
  {
    Pkcs11Session session = OwnSession();
    ASSERT_OK(session.Logout());
  }
  SignAndVerify(key, SignatureScheme::kEcdsa, HashAlgorithm::kSha384);
  EXPECT_GT(backend_->stats().relogins, before.relogins);
  EXPECT_EQ(backend_->stats().session_reopens, before.session_reopens);
}

// Logged out while no key handle is cached: an empty search must not read as "no such key".
TEST_F(HsmBackendTest, RecoversFromLogoutBeforeTheFirstLookup) {
  {
    Pkcs11Session session = OwnSession();
    ASSERT_OK(session.Logout());
  }
  auto keys = backend_->ListKeys();
  ASSERT_OK(keys);
  const HsmKey& key = KeyFor(Spec("ec-p256"));
  {
    Pkcs11Session session = OwnSession();
    ASSERT_OK(session.Logout());
  }
  auto found = backend_->FindKey(key.id);
  EXPECT_OK(found);
}

// Stale key handles: logout + login behind the backend's back leaves it logged in but with
// every cached private-key handle dead.
TEST_F(HsmBackendTest, RefindsStaleKeyHandles) {
  const HsmKey& key = KeyFor(Spec("rsa-2048"));
  SignAndVerify(key, SignatureScheme::kRsaPkcs1, HashAlgorithm::kSha256);
  const HsmStats before = backend_->stats();
  {
    Pkcs11Session session = OwnSession();
    ASSERT_OK(session.Logout());
    ASSERT_OK(session.Login(CKU_USER, kPin));
  }
  SignAndVerify(key, SignatureScheme::kRsaPkcs1, HashAlgorithm::kSha256);
  const HsmStats after = backend_->stats();
  EXPECT_GT(after.key_refinds, before.key_refinds);
  EXPECT_EQ(after.relogins, before.relogins);
  EXPECT_EQ(after.session_reopens, before.session_reopens);
}

// The key object is replaced by a copy with the same CKA_ID (new handle); the old handle is gone.
TEST_F(HsmBackendTest, RefindsAReplacedKeyObject) {
  auto key = backend_->GenerateKeyPair(Spec("ec-p256"), "replaced");
  ASSERT_OK(key);
  SignAndVerify(*key, SignatureScheme::kEcdsa, HashAlgorithm::kSha256);
  const HsmStats before = backend_->stats();
  {
    Pkcs11Session session = OwnSession();
    std::vector<CK_OBJECT_HANDLE> priv = RawFind(session, CKO_PRIVATE_KEY, key->id);
    ASSERT_EQ(priv.size(), 1u);
    const char label[] = "replaced (copy)";
    CK_ATTRIBUTE tmpl = MakeAttribute(CKA_LABEL, label, sizeof label - 1);
    CK_OBJECT_HANDLE copy;
    ASSERT_EQ(session.fn()->C_CopyObject(session.handle(), priv[0], &tmpl, 1, &copy),
              static_cast<CK_RV>(CKR_OK));
    ASSERT_EQ(session.fn()->C_DestroyObject(session.handle(), priv[0]), static_cast<CK_RV>(CKR_OK));
  }
  SignAndVerify(*key, SignatureScheme::kEcdsa, HashAlgorithm::kSha256);
  EXPECT_GT(backend_->stats().key_refinds, before.key_refinds);
  EXPECT_OK(backend_->DestroyKey(key->id));
}

// A session left with an operation running (here: a find that was never finalised) answers every
// other call with CKR_OPERATION_ACTIVE; the backend replaces the session.
TEST_F(HsmBackendTest, RecoversFromAnOperationLeftActive) {
  const HsmKey& key = KeyFor(Spec("ec-p256"));
  SignAndVerify(key, SignatureScheme::kEcdsa, HashAlgorithm::kSha256);
  const HsmStats before = backend_->stats();
  // The pooled sessions are private to the backend; SoftHSM's handles are small counters, so
  // find them by probing and start a find operation on each.
  CK_FUNCTION_LIST_PTR fn = backend_->module()->functions();
  int poisoned = 0;
  for (CK_SESSION_HANDLE h = 1; h < 100000; ++h) {
    CK_SESSION_INFO info;
    if (fn->C_GetSessionInfo(h, &info) != CKR_OK) continue;
    if (fn->C_FindObjectsInit(h, nullptr, 0) == CKR_OK) ++poisoned;
  }
  ASSERT_GE(poisoned, static_cast<int>(kPoolSize));
  for (size_t i = 0; i < kPoolSize; ++i) {
    SignAndVerify(key, SignatureScheme::kEcdsa, HashAlgorithm::kSha256);
  }
  EXPECT_GE(backend_->stats().session_reopens, before.session_reopens + kPoolSize);
}

// --- Concurrency
// ----------------------------------------------------------------------------------

TEST_F(HsmBackendTest, ConcurrentSigningOnAPoolOfFour) {
  const std::span<const KeySpec> specs = SupportedKeySpecs();
  for (const KeySpec& spec : specs) KeyFor(spec);  // generate before the threads start
  const uint64_t before = backend_->stats().signatures;
  constexpr int kThreads = 8;
  constexpr int kPerThread = 50;
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        const HsmKey& key = GetShared().keys.at(specs[(t + i) % specs.size()].Name());
        const HashAlgorithm hash = kAllHashes[i % 5];
        const SignatureScheme scheme =
            key.public_key.type() == KeyType::kEc
                ? SignatureScheme::kEcdsa
                : (i % 2 ? SignatureScheme::kRsaPss : SignatureScheme::kRsaPkcs1);
        const Bytes digest =
            Digest(hash, AsBytes("thread " + std::to_string(t) + " n " + std::to_string(i)));
        auto signature = backend_->Sign(key.id, scheme, hash, digest);
        if (!signature.ok() ||
            !VerifyDigestSignature(key.public_key, scheme, hash, digest, *signature).ok()) {
          failures++;
        }
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(backend_->stats().signatures, before + kThreads * kPerThread);
}

// SoftHSM2 does everything Signum asks: the probe finds every pair of the key's type.
TEST_F(HsmBackendTest, ProbeFindsEverythingSoftHsmCanDo) {
  for (const char* name : {"rsa-2048", "ec-p256"}) {
    const HsmKey& key = KeyFor(Spec(name));
    const HsmStats before = backend_->stats();
    auto probe = backend_->ProbeCapabilities(key.id, key.public_key);
    ASSERT_OK(probe) << name;
    EXPECT_EQ(probe->can_sign, SignatureCapabilities::AllFor(key.public_key.type()))
        << name << ": " << probe->can_sign.ToString();
    EXPECT_TRUE(probe->missing.empty()) << name << ": " << probe->missing.front();
    const HsmStats after = backend_->stats();
    EXPECT_EQ(after.signatures, before.signatures) << "probes are not user signatures";
    EXPECT_EQ(after.probe_signatures - before.probe_signatures, probe->can_sign.Pairs().size());
  }
}

// serialize_calls: the same results, one module call at a time (the pool is still used).
TEST_F(HsmBackendTest, SerializedCallsSignConcurrently) {
  const HsmKey& key = KeyFor(Spec("ec-p256"));
  HsmConfig config{GetShared().token->module_path(), kLabel, kPin, kPoolSize};
  config.serialize_calls = true;
  auto serialized = HsmBackend::Open(config);
  ASSERT_OK(serialized);
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 20; ++i) {
        const Bytes digest = DigestOf(HashAlgorithm::kSha256, std::to_string(t * 100 + i));
        auto signature =
            (*serialized)->Sign(key.id, SignatureScheme::kEcdsa, HashAlgorithm::kSha256, digest);
        if (!signature.ok() || !VerifyDigestSignature(key.public_key, SignatureScheme::kEcdsa,
                                                      HashAlgorithm::kSha256, digest, *signature)
                                    .ok()) {
          failures++;
        }
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ((*serialized)->stats().signatures, 160u);
  EXPECT_OK((*serialized)->Check());
}

// More callers than sessions: they queue for the one session instead of failing.
TEST_F(HsmBackendTest, CallersWaitForAFreeSession) {
  const HsmKey& key = KeyFor(Spec("ec-p256"));
  GetShared();  // the token exists
  auto small = HsmBackend::Open(HsmConfig{GetShared().token->module_path(), kLabel, kPin, 1});
  ASSERT_OK(small);
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 20; ++i) {
        const Bytes digest =
            Digest(HashAlgorithm::kSha256, AsBytes(std::to_string(t) + "/" + std::to_string(i)));
        auto signature =
            (*small)->Sign(key.id, SignatureScheme::kEcdsa, HashAlgorithm::kSha256, digest);
        if (!signature.ok() || !VerifyDigestSignature(key.public_key, SignatureScheme::kEcdsa,
                                                      HashAlgorithm::kSha256, digest, *signature)
                                    .ok()) {
          failures++;
        }
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ((*small)->stats().signatures, 80u);
}

// --- Open
// -----------------------------------------------------------------------------------------

TEST_F(HsmBackendTest, WrongPinIsUnauthenticatedAndNotEchoed) {
  // Login state is per token and process: while the shared backend is logged in, C_Login answers
  // CKR_USER_ALREADY_LOGGED_IN without looking at the PIN. Log the token out first (the shared
  // backend logs in again when it is next used).
  {
    Pkcs11Session session = OwnSession();
    ASSERT_OK(session.Logout());
  }
  const std::string wrong_pin = "not-the-pin-31337";
  auto backend =
      HsmBackend::Open(HsmConfig{GetShared().token->module_path(), kLabel, wrong_pin, 2});
  ASSERT_FALSE(backend.ok());
  const Status& status = backend.status();
  EXPECT_THAT(status, StatusIs(ErrorCode::kUnauthenticated));
  EXPECT_EQ(status.ck_rv(), std::optional<unsigned long>(CKR_PIN_INCORRECT));
  EXPECT_TRUE(Contains(status.message(), "CKR_PIN_INCORRECT")) << status.message();
  EXPECT_TRUE(Contains(status.message(), "login to token 'signum-hsm-test' failed"))
      << status.message();
  EXPECT_TRUE(Contains(status.message(), GetShared().token->module_path())) << status.message();
  EXPECT_FALSE(Contains(status.message(), wrong_pin)) << status.message();
  EXPECT_FALSE(Contains(status.message(), kPin)) << status.message();
  // The shared backend is unaffected.
  EXPECT_OK(backend_->Check());
}

TEST_F(HsmBackendTest, UnknownTokenLabelIsNotFound) {
  auto backend =
      HsmBackend::Open(HsmConfig{GetShared().token->module_path(), "no-such-token", kPin, 2});
  ASSERT_THAT(backend, StatusIs(ErrorCode::kNotFound));
  EXPECT_TRUE(Contains(backend.status().message(),
                       "token 'no-such-token' not found (tokens: signum-hsm-test)"))
      << backend.status().message();
  EXPECT_TRUE(Contains(backend.status().message(), "HSM module ")) << backend.status().message();
}

TEST_F(HsmBackendTest, MissingModuleIsNamed) {
  auto backend = HsmBackend::Open(HsmConfig{"/nonexistent/libhsm.so", kLabel, kPin, 2});
  ASSERT_THAT(backend, StatusIs(ErrorCode::kNotFound));
  EXPECT_TRUE(Contains(backend.status().message(), "HSM module /nonexistent/libhsm.so"))
      << backend.status().message();
}

TEST_F(HsmBackendTest, Check) { EXPECT_OK(backend_->Check()); }

// --- Key management
// -------------------------------------------------------------------------------

TEST_F(HsmBackendTest, ListKeysReturnsEveryKey) {
  for (const KeySpec& spec : SupportedKeySpecs()) KeyFor(spec);
  auto keys = backend_->ListKeys();
  ASSERT_OK(keys);
  for (const auto& [name, key] : GetShared().keys) {
    auto it = std::find_if(keys->begin(), keys->end(),
                           [&wanted = key.id](const HsmKey& listed) { return listed.id == wanted; });
    ASSERT_NE(it, keys->end()) << name;
    EXPECT_EQ(it->label, key.label);
    EXPECT_EQ(it->public_key.SpkiDer(), key.public_key.SpkiDer()) << name;
    EXPECT_TRUE(it->sensitive);
    EXPECT_FALSE(it->extractable);
  }
}

TEST_F(HsmBackendTest, StoreCertificate) {
  const HsmKey& key = KeyFor(Spec("ec-p256"));
  // A self-signed certificate made by the HSM key itself (SignerFor).
  auto signer = backend_->SignerFor(key.id);
  ASSERT_OK(signer);
  CertificateTemplate tmpl;
  tmpl.subject = {{"CN", "Signum HSM test"}, {"O", "Signum Harness"}};
  auto cert = IssueCertificate(tmpl, key.public_key, std::nullopt, **signer);
  ASSERT_OK(cert);

  ASSERT_OK(backend_->StoreCertificate(key.id, "test cert", *cert));
  Pkcs11Session session = OwnSession();
  std::vector<CK_OBJECT_HANDLE> certs = RawFind(session, CKO_CERTIFICATE, key.id);
  ASSERT_EQ(certs.size(), 1u);
  EXPECT_EQ(*session.GetAttribute(certs[0], CKA_VALUE), cert->Der());
  EXPECT_EQ(*session.GetAttribute(certs[0], CKA_SUBJECT), cert->SubjectDer());
  EXPECT_EQ(*session.GetAttribute(certs[0], CKA_ISSUER), cert->IssuerDer());
  EXPECT_EQ(*session.GetAttribute(certs[0], CKA_SERIAL_NUMBER), cert->SerialDer());
  EXPECT_EQ(ToString(*session.GetAttribute(certs[0], CKA_LABEL)), "test cert");
  EXPECT_EQ(*session.GetUlongAttribute(certs[0], CKA_CERTIFICATE_TYPE),
            static_cast<CK_ULONG>(CKC_X_509));
  EXPECT_TRUE(*session.GetBoolAttribute(certs[0], CKA_TOKEN));
  EXPECT_FALSE(*session.GetBoolAttribute(certs[0], CKA_PRIVATE));

  // Storing again replaces it.
  auto second = IssueCertificate(tmpl, key.public_key, std::nullopt, **signer);
  ASSERT_OK(second);
  ASSERT_OK(backend_->StoreCertificate(key.id, "test cert", *second));
  certs = RawFind(session, CKO_CERTIFICATE, key.id);
  ASSERT_EQ(certs.size(), 1u);
  EXPECT_EQ(*session.GetAttribute(certs[0], CKA_VALUE), second->Der());

  // Not for another key, nor for a key that is not there.
  const HsmKey& other = KeyFor(Spec("ec-p384"));
  Status mismatch = backend_->StoreCertificate(other.id, "wrong", *cert);
  EXPECT_THAT(mismatch, StatusIs(ErrorCode::kInvalidArgument)) << mismatch.ToString();
  EXPECT_TRUE(RawFind(session, CKO_CERTIFICATE, other.id).empty());
  EXPECT_THAT(backend_->StoreCertificate(Bytes{1, 2, 3}, "none", *cert),
              StatusIs(ErrorCode::kNotFound));
}

TEST_F(HsmBackendTest, DestroyKeyRemovesEveryObject) {
  auto key = backend_->GenerateKeyPair(Spec("ec-p256"), "doomed");
  ASSERT_OK(key);
  auto software = SoftwareKey::Generate(Spec("ec-p256"));
  ASSERT_OK(software);
  CertificateTemplate ca_tmpl;
  ca_tmpl.subject = {{"CN", "doomed CA"}};
  ca_tmpl.role = CertificateRole::kRootCa;
  auto ca = IssueCertificate(ca_tmpl, (*software)->public_key(), std::nullopt, **software);
  ASSERT_OK(ca);
  CertificateTemplate tmpl;
  tmpl.subject = {{"CN", "doomed"}};
  auto cert = IssueCertificate(tmpl, key->public_key, *ca, **software);
  ASSERT_OK(cert);
  ASSERT_OK(backend_->StoreCertificate(key->id, "doomed", *cert));
  SignAndVerify(*key, SignatureScheme::kEcdsa, HashAlgorithm::kSha256);  // cached handle

  ASSERT_OK(backend_->DestroyKey(key->id));
  Pkcs11Session session = OwnSession();
  auto left = session.FindObjects({MakeAttribute(CKA_ID, key->id.data(), key->id.size())});
  ASSERT_OK(left);
  EXPECT_TRUE(left->empty());
  EXPECT_THAT(backend_->FindKey(key->id), StatusIs(ErrorCode::kNotFound));
  EXPECT_THAT(backend_
                  ->Sign(key->id, SignatureScheme::kEcdsa, HashAlgorithm::kSha256,
                         DigestOf(HashAlgorithm::kSha256, "x"))
                  .status(),
              StatusIs(ErrorCode::kNotFound));
  EXPECT_THAT(backend_->DestroyKey(key->id), StatusIs(ErrorCode::kNotFound));
}

}  // namespace
}  // namespace signum::server

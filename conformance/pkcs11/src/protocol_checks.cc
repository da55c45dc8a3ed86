// SignProtocol, Errors and Fork checks (CHECKS.md).
#include <functional>

#include "suite.h"

namespace signum::conformance {
namespace {

constexpr CK_SESSION_HANDLE kBogusSession = 0x7FFF1234;
constexpr CK_OBJECT_HANDLE kBogusObject = 0x7FFF4321;

// A key, the simplest advertised way to sign with it, and the prepared input.
struct Prepared {
  TokenKey key;
  SignRecipe recipe;
  CK_RSA_PKCS_PSS_PARAMS pss{};
  Bytes input;
  Bytes digest;
  CK_MECHANISM Mechanism() const {
    return {recipe.mechanism, nullptr, 0};  // default recipes never use PSS
  }
  Status Verify(ByteView signature) const {
    return VerifyDigestSignature(*key.verify_key, recipe.scheme, recipe.hash, digest, signature);
  }
};

class ProtocolCheck : public KeyedCheck {
 protected:
  // For every key type present, its first key with a default recipe (hash_and_sign: only recipes
  // that take data, for multi-part operations), in ListKeys order.
  std::vector<Prepared> PrepareEach(bool hash_and_sign, ByteView message) {
    std::vector<TokenKey> usable;
    std::vector<SignRecipe> recipes;
    for (const auto& key : keys_) {
      std::optional<SignRecipe> recipe = DefaultRecipe(key);
      if (hash_and_sign) {
        recipe.reset();
        if (key.key_type == CKK_RSA && IsAdvertised(CKM_SHA256_RSA_PKCS)) {
          recipe = SignRecipe{CKM_SHA256_RSA_PKCS, true, HashAlgorithm::kSha256,
                              SignatureScheme::kRsaPkcs1};
        } else if (key.key_type == CKK_EC && IsAdvertised(CKM_ECDSA_SHA256)) {
          recipe = SignRecipe{CKM_ECDSA_SHA256, true, HashAlgorithm::kSha256,
                              SignatureScheme::kEcdsa};
        }
      }
      if (!recipe || !key.verify_key) continue;
      usable.push_back(key);
      recipes.push_back(*recipe);
    }
    std::vector<Prepared> out;
    for (const TokenKey* key : OnePerKeyType(usable)) {
      const SignRecipe& recipe = recipes[static_cast<size_t>(key - usable.data())];
      Prepared p{*key, recipe, {}, {}, Digest(recipe.hash, message)};
      if (recipe.hash_and_sign) {
        p.input.assign(message.begin(), message.end());
      } else if (recipe.scheme == SignatureScheme::kRsaPkcs1) {
        p.input = BuildDigestInfo(recipe.hash, p.digest).value();
      } else {
        p.input = p.digest;
      }
      out.push_back(std::move(p));
    }
    return out;
  }
  // The first of PrepareEach: for checks where the key is only a means (NULL probes, bad handles).
  std::optional<Prepared> Prepare(bool hash_and_sign, ByteView message) {
    auto each = PrepareEach(hash_and_sign, message);
    if (each.empty()) return std::nullopt;
    return each.front();
  }
  // Runs body once per key type (PrepareEach), each in a fresh session so a failure with one key
  // cannot leave an operation behind for the next; skips when there is no such key.
  void ForEachKeyType(bool hash_and_sign, const std::function<void(const Prepared&)>& body) {
    const auto prepared = PrepareEach(hash_and_sign, AsBytes("sign protocol"));
    if (prepared.empty()) {
      GTEST_SKIP() << (hash_and_sign ? "no key with an advertised CKM_SHA256_RSA_PKCS or "
                                       "CKM_ECDSA_SHA256 (multi-part)"
                                     : "no key with an advertised signing mechanism");
    }
    for (size_t i = 0; i < prepared.size(); ++i) {
      if (i > 0) {
        // The earlier session stays open until the check ends: closing the session that logged
        // in is Login.OneLoginServesManySignaturesAndSessions's subject, not these checks'.
        session_ = OpenSession();
        ASSERT_NE(session_, CK_INVALID_HANDLE);
      }
      SCOPED_TRACE(prepared[i].key.Name());
      body(prepared[i]);
    }
  }
  size_t ExpectedLength(const Prepared& p) { return p.key.verify_key->spec().SignatureSize(); }
};

class SignProtocol : public ProtocolCheck {};
class Errors : public ProtocolCheck {};
class Fork : public ProtocolCheck {};

#define PREPARE_OR_SKIP(var, hash_and_sign)                                                    \
  auto var##_opt = Prepare(hash_and_sign, AsBytes("sign protocol"));                          \
  if (!var##_opt) {                                                                           \
    GTEST_SKIP() << (hash_and_sign ? "no key with an advertised CKM_SHA256_RSA_PKCS or "      \
                                     "CKM_ECDSA_SHA256 (multi-part)"                          \
                                   : "no key with an advertised signing mechanism");          \
  }                                                                                           \
  const Prepared& var = *var##_opt

TEST_F(SignProtocol, NullBufferReturnsLengthAndKeepsOperation) {
  ForEachKeyType(false, [&](const Prepared& p) {
    CK_MECHANISM m = p.Mechanism();
    ASSERT_RV(CKR_OK, f()->C_SignInit(session_, &m, p.key.private_key));
    Bytes input = p.input;
    CK_ULONG length = 0;
    ASSERT_RV(CKR_OK, f()->C_Sign(session_, input.data(), input.size(), nullptr, &length));
    ASSERT_EQ(length, ExpectedLength(p)) << "length query for " << p.key.Name();
    Bytes signature(length);
    ASSERT_RV(CKR_OK, f()->C_Sign(session_, input.data(), input.size(), signature.data(), &length))
        << " (the length query must keep the operation)";
    ASSERT_LE(length, signature.size());
    signature.resize(length);
    ASSERT_OK(p.Verify(signature));
  });
}

TEST_F(SignProtocol, BufferTooSmallKeepsOperation) {
  ForEachKeyType(false, [&](const Prepared& p) {
    CK_MECHANISM m = p.Mechanism();
    ASSERT_RV(CKR_OK, f()->C_SignInit(session_, &m, p.key.private_key));
    Bytes input = p.input;
    Bytes signature(ExpectedLength(p));
    CK_ULONG length = signature.size() - 1;
    ASSERT_RV(CKR_BUFFER_TOO_SMALL,
              f()->C_Sign(session_, input.data(), input.size(), signature.data(), &length));
    EXPECT_EQ(length, ExpectedLength(p)) << "CKR_BUFFER_TOO_SMALL must report the length";
    length = signature.size();
    ASSERT_RV(CKR_OK, f()->C_Sign(session_, input.data(), input.size(), signature.data(), &length))
        << " (CKR_BUFFER_TOO_SMALL must keep the operation)";
    ASSERT_LE(length, signature.size());
    signature.resize(length);
    ASSERT_OK(p.Verify(signature));
  });
}

TEST_F(SignProtocol, SuccessEndsOperation) {
  ForEachKeyType(false, [&](const Prepared& p) {
    SignOutcome outcome = SignSinglePart(session_, p.Mechanism(), p.key.private_key, p.input);
    ASSERT_RV(CKR_OK, outcome.rv) << " at " << outcome.step;
    Bytes input = p.input;
    Bytes signature(ExpectedLength(p));
    CK_ULONG length = signature.size();
    EXPECT_RV(CKR_OPERATION_NOT_INITIALIZED,
              f()->C_Sign(session_, input.data(), input.size(), signature.data(), &length));
    CK_MECHANISM m = p.Mechanism();
    EXPECT_RV(CKR_OK, f()->C_SignInit(session_, &m, p.key.private_key));
  });
}

TEST_F(SignProtocol, SignFinalLengthQueryKeepsOperation) {
  ForEachKeyType(true, [&](const Prepared& p) {
    CK_MECHANISM m = p.Mechanism();
    ASSERT_RV(CKR_OK, f()->C_SignInit(session_, &m, p.key.private_key));
    Bytes input = p.input;
    ASSERT_RV(CKR_OK, f()->C_SignUpdate(session_, input.data(), input.size()));
    CK_ULONG length = 0;
    ASSERT_RV(CKR_OK, f()->C_SignFinal(session_, nullptr, &length));
    EXPECT_EQ(length, ExpectedLength(p));
    Bytes signature(ExpectedLength(p));
    length = signature.size() - 1;
    ASSERT_RV(CKR_BUFFER_TOO_SMALL, f()->C_SignFinal(session_, signature.data(), &length));
    EXPECT_EQ(length, ExpectedLength(p));
    length = signature.size();
    ASSERT_RV(CKR_OK, f()->C_SignFinal(session_, signature.data(), &length));
    ASSERT_LE(length, signature.size());
    signature.resize(length);
    ASSERT_OK(p.Verify(signature));
    EXPECT_RV(CKR_OPERATION_NOT_INITIALIZED, f()->C_SignFinal(session_, nullptr, &length));
  });
}

TEST_F(SignProtocol, FailedGetOperationStateKeepsOperation) {
  // F41: OpenSSL's pkcs11-provider calls C_GetOperationState in the middle of a digest-sign (to
  // duplicate the context); osslsigncode and the kernel's sign-file then failed where a module's
  // refusal also ended the operation. Whatever C_GetOperationState answers (modules may refuse,
  // CKR_STATE_UNSAVEABLE / CKR_FUNCTION_NOT_SUPPORTED), the signature goes on and verifies.
  ForEachKeyType(false, [&](const Prepared& p) {
    CK_MECHANISM m = p.Mechanism();
    ASSERT_RV(CKR_OK, f()->C_SignInit(session_, &m, p.key.private_key));
    Bytes input = p.input;
    const size_t half = p.recipe.hash_and_sign ? input.size() / 2 : 0;
    if (p.recipe.hash_and_sign) {
      ASSERT_RV(CKR_OK, f()->C_SignUpdate(session_, input.data(), static_cast<CK_ULONG>(half)));
    }
    CK_ULONG state_length = 0;
    CK_RV rv = f()->C_GetOperationState(session_, nullptr, &state_length);
    std::string answered = CkRvName(rv);
    if (rv == CKR_OK && state_length > 0 && state_length < (1u << 20)) {
      Bytes state(state_length);
      rv = f()->C_GetOperationState(session_, state.data(), &state_length);
      answered += ", then " + CkRvName(rv) + " with a buffer";
    }
    Note(p.key.Name() + ": C_GetOperationState answered " + answered);
    Bytes signature(ExpectedLength(p));
    CK_ULONG length = signature.size();
    if (p.recipe.hash_and_sign) {
      ASSERT_RV(CKR_OK, f()->C_SignUpdate(session_, input.data() + half,
                                          static_cast<CK_ULONG>(input.size() - half)))
          << " after C_GetOperationState answered " << answered;
      ASSERT_RV(CKR_OK, f()->C_SignFinal(session_, signature.data(), &length))
          << " after C_GetOperationState answered " << answered;
    } else {
      ASSERT_RV(CKR_OK,
                f()->C_Sign(session_, input.data(), input.size(), signature.data(), &length))
          << " after C_GetOperationState answered " << answered;
    }
    ASSERT_LE(length, signature.size());
    signature.resize(length);
    ASSERT_OK(p.Verify(signature));
  });
}

TEST_F(SignProtocol, SignInitWhileActiveIsOperationActive) {
  ForEachKeyType(false, [&](const Prepared& p) {
    CK_MECHANISM m = p.Mechanism();
    ASSERT_RV(CKR_OK, f()->C_SignInit(session_, &m, p.key.private_key));
    EXPECT_RV(CKR_OPERATION_ACTIVE, f()->C_SignInit(session_, &m, p.key.private_key));
    Bytes input = p.input;
    Bytes signature(ExpectedLength(p));
    CK_ULONG length = signature.size();
    ASSERT_RV(CKR_OK, f()->C_Sign(session_, input.data(), input.size(), signature.data(), &length))
        << " (the active operation must survive the rejected C_SignInit)";
    ASSERT_LE(length, signature.size());
    signature.resize(length);
    ASSERT_OK(p.Verify(signature));
  });
}

TEST_F(SignProtocol, SignWithoutInitIsNotInitialized) {
  CK_BYTE data[32] = {1};
  CK_BYTE signature[512];
  CK_ULONG length = sizeof signature;
  EXPECT_RV(CKR_OPERATION_NOT_INITIALIZED,
            f()->C_Sign(session_, data, sizeof data, signature, &length));
  EXPECT_RV(CKR_OPERATION_NOT_INITIALIZED, f()->C_SignUpdate(session_, data, sizeof data));
  length = sizeof signature;
  EXPECT_RV(CKR_OPERATION_NOT_INITIALIZED, f()->C_SignFinal(session_, signature, &length));
}

TEST_F(SignProtocol, ErrorEndsOperation) {
  if (!IsAdvertised(CKM_RSA_PKCS)) GTEST_SKIP() << "CKM_RSA_PKCS is not advertised";
  const TokenKey* rsa = nullptr;
  for (const auto& key : keys_) {
    if (key.key_type == CKK_RSA && key.verify_key) {
      rsa = &key;
      break;
    }
  }
  if (!rsa) GTEST_SKIP() << "no RSA keys on the token";
  const size_t k = rsa->verify_key->spec().SignatureSize();
  CK_MECHANISM m{CKM_RSA_PKCS, nullptr, 0};
  ASSERT_RV(CKR_OK, f()->C_SignInit(session_, &m, rsa->private_key));
  Bytes too_long(k, 0x5a);
  Bytes signature(k);
  CK_ULONG length = k;
  // Input longer than k-11 fails (the code is RsaSign.RawPkcsInputTooLongIsDataLenRange's
  // business); what matters here is that the failure ends the operation.
  const CK_RV failed =
      f()->C_Sign(session_, too_long.data(), too_long.size(), signature.data(), &length);
  ASSERT_TRUE(failed != CKR_OK && failed != CKR_BUFFER_TOO_SMALL)
      << "C_Sign with " << k << " bytes into CKM_RSA_PKCS returned " << CkRvName(failed);
  Note("the failing C_Sign returned " + CkRvName(failed));
  const Bytes digest = Digest(HashAlgorithm::kSha256, AsBytes("after an error"));
  Bytes digest_info = BuildDigestInfo(HashAlgorithm::kSha256, digest).value();
  length = k;
  EXPECT_RV(CKR_OPERATION_NOT_INITIALIZED,
            f()->C_Sign(session_, digest_info.data(), digest_info.size(), signature.data(), &length))
      << " (an error other than CKR_BUFFER_TOO_SMALL must end the operation)";
  ASSERT_RV(CKR_OK, f()->C_SignInit(session_, &m, rsa->private_key));
  length = k;
  ASSERT_RV(CKR_OK,
            f()->C_Sign(session_, digest_info.data(), digest_info.size(), signature.data(), &length));
  ASSERT_LE(length, signature.size());
  signature.resize(length);
  ASSERT_OK(VerifyDigestSignature(*rsa->verify_key, SignatureScheme::kRsaPkcs1,
                                  HashAlgorithm::kSha256, digest, signature));
}

// --- Errors --------------------------------------------------------------------------------------

TEST_F(Errors, InvalidSlotId) {
  CK_ULONG count = 0;
  ASSERT_RV(CKR_OK, f()->C_GetSlotList(CK_FALSE, nullptr, &count));
  std::vector<CK_SLOT_ID> slots(count + 1);
  ASSERT_RV(CKR_OK, f()->C_GetSlotList(CK_FALSE, slots.data(), &count));
  slots.resize(count);
  CK_SLOT_ID bogus = 0x7531;
  while (std::find(slots.begin(), slots.end(), bogus) != slots.end()) ++bogus;
  CK_SLOT_INFO slot_info{};
  EXPECT_RV(CKR_SLOT_ID_INVALID, f()->C_GetSlotInfo(bogus, &slot_info));
  CK_TOKEN_INFO token_info{};
  EXPECT_RV(CKR_SLOT_ID_INVALID, f()->C_GetTokenInfo(bogus, &token_info));
  EXPECT_RV(CKR_SLOT_ID_INVALID, f()->C_GetMechanismList(bogus, nullptr, &count));
  CK_SESSION_HANDLE session = CK_INVALID_HANDLE;
  EXPECT_RV(CKR_SLOT_ID_INVALID,
            f()->C_OpenSession(bogus, CKF_SERIAL_SESSION, nullptr, nullptr, &session));
}

TEST_F(Errors, InvalidSessionHandle) {
  for (CK_SESSION_HANDLE bogus : {kBogusSession, CK_SESSION_HANDLE(CK_INVALID_HANDLE)}) {
    CK_SESSION_INFO info{};
    EXPECT_RV(CKR_SESSION_HANDLE_INVALID, f()->C_GetSessionInfo(bogus, &info));
    EXPECT_RV(CKR_SESSION_HANDLE_INVALID, f()->C_FindObjectsInit(bogus, nullptr, 0));
    EXPECT_RV(CKR_SESSION_HANDLE_INVALID, f()->C_CloseSession(bogus));
    CK_ATTRIBUTE a{CKA_CLASS, nullptr, 0};
    EXPECT_RV(CKR_SESSION_HANDLE_INVALID, f()->C_GetAttributeValue(bogus, keys_[0].private_key, &a, 1));
  }
}

TEST_F(Errors, InvalidObjectHandle) {
  for (CK_OBJECT_HANDLE bogus : {kBogusObject, CK_OBJECT_HANDLE(CK_INVALID_HANDLE)}) {
    CK_ATTRIBUTE a{CKA_CLASS, nullptr, 0};
    EXPECT_RV(CKR_OBJECT_HANDLE_INVALID, f()->C_GetAttributeValue(session_, bogus, &a, 1));
  }
}

TEST_F(Errors, InvalidKeyHandleAtSignInit) {
  PREPARE_OR_SKIP(p, false);
  CK_MECHANISM m = p.Mechanism();
  const CK_RV rv = f()->C_SignInit(session_, &m, kBogusObject);
  EXPECT_TRUE(rv == CKR_KEY_HANDLE_INVALID || rv == CKR_OBJECT_HANDLE_INVALID)
      << "C_SignInit with an unknown key returned " << CkRvName(rv);
}

TEST_F(Errors, KeyTypeInconsistentAtSignInit) {
  const TokenKey* rsa = nullptr;
  const TokenKey* ec = nullptr;
  for (const auto& key : keys_) {
    if (key.key_type == CKK_RSA) rsa = &key;
    if (key.key_type == CKK_EC) ec = &key;
  }
  int ran = 0;
  const CK_MECHANISM_TYPE rsa_mech = IsAdvertised(CKM_RSA_PKCS) ? CKM_RSA_PKCS : CKM_SHA256_RSA_PKCS;
  const CK_MECHANISM_TYPE ec_mech = IsAdvertised(CKM_ECDSA) ? CKM_ECDSA : CKM_ECDSA_SHA256;
  if (ec && IsAdvertised(rsa_mech)) {
    ++ran;
    CK_MECHANISM m{rsa_mech, nullptr, 0};
    const CK_SESSION_HANDLE session = OpenSession();
    EXPECT_RV(CKR_KEY_TYPE_INCONSISTENT, f()->C_SignInit(session, &m, ec->private_key))
        << " for " << MechanismName(rsa_mech) << " with " << ec->Name();
    f()->C_CloseSession(session);
  }
  if (rsa && IsAdvertised(ec_mech)) {
    ++ran;
    CK_MECHANISM m{ec_mech, nullptr, 0};
    const CK_SESSION_HANDLE session = OpenSession();
    EXPECT_RV(CKR_KEY_TYPE_INCONSISTENT, f()->C_SignInit(session, &m, rsa->private_key))
        << " for " << MechanismName(ec_mech) << " with " << rsa->Name();
    f()->C_CloseSession(session);
  }
  if (ran == 0) GTEST_SKIP() << "needs RSA and EC keys with their mechanisms advertised";
}

TEST_F(Errors, PublicKeyCannotSign) {
  int ran = 0;
  ForEachKeyType(false, [&](const Prepared& p) {
    for (CK_OBJECT_HANDLE object : {p.key.public_key_handle, p.key.certificate_handle}) {
      if (object == CK_INVALID_HANDLE) continue;
      ++ran;
      CK_MECHANISM m = p.Mechanism();
      const CK_RV rv = f()->C_SignInit(session_, &m, object);
      EXPECT_TRUE(rv == CKR_KEY_FUNCTION_NOT_PERMITTED || rv == CKR_KEY_TYPE_INCONSISTENT ||
                  rv == CKR_KEY_HANDLE_INVALID)
          << "C_SignInit on "
          << (object == p.key.public_key_handle ? "the public key" : "the certificate") << " of "
          << p.key.Name() << " returned " << CkRvName(rv);
      if (rv == CKR_OK) {
        CK_ULONG length = 0;
        f()->C_SignFinal(session_, nullptr, &length);
        f()->C_CloseSession(session_);
        session_ = OpenSession();
      }
    }
  });
  if (ran == 0 && !IsSkipped()) GTEST_SKIP() << "no public-key or certificate object";
}

// One NULL-argument probe: what to call, run in a child that prepared a session and a key.
struct ChildContext {
  CK_FUNCTION_LIST_PTR f;
  CK_SLOT_ID slot;
  CK_SESSION_HANDLE session;
  const Prepared* p;
  const Prepared* multipart;  // may be NULL
};
struct Probe {
  std::string name;
  std::function<CK_RV(ChildContext&)> call;
  std::vector<CK_RV> also_allowed;
  bool login = true;
  bool needs_multipart = false;
};

TEST_F(Errors, NullArgumentSweep) {
  PREPARE_OR_SKIP(p, false);
  auto multipart = Prepare(true, AsBytes("sign protocol"));
  CK_TOKEN_INFO token{};
  ASSERT_RV(CKR_OK, f()->C_GetTokenInfo(slot(), &token));
  const bool has_rng = token.flags & CKF_RNG;
  auto& module = TheSuite().module;
  std::vector<Probe> probes = {
      {"C_GetInfo(NULL)", [](ChildContext& c) { return c.f->C_GetInfo(nullptr); }, {}},
      {"C_GetSlotList(pulCount=NULL)",
       [](ChildContext& c) { return c.f->C_GetSlotList(CK_TRUE, nullptr, nullptr); }, {}},
      {"C_GetSlotInfo(pInfo=NULL)", [](ChildContext& c) { return c.f->C_GetSlotInfo(c.slot, nullptr); }, {}},
      {"C_GetTokenInfo(pInfo=NULL)", [](ChildContext& c) { return c.f->C_GetTokenInfo(c.slot, nullptr); }, {}},
      {"C_GetMechanismList(pulCount=NULL)",
       [](ChildContext& c) { return c.f->C_GetMechanismList(c.slot, nullptr, nullptr); }, {}},
      {"C_GetMechanismInfo(pInfo=NULL)",
       [](ChildContext& c) { return c.f->C_GetMechanismInfo(c.slot, c.p->recipe.mechanism, nullptr); }, {}},
      {"C_OpenSession(phSession=NULL)",
       [](ChildContext& c) {
         return c.f->C_OpenSession(c.slot, CKF_SERIAL_SESSION, nullptr, nullptr, nullptr);
       }, {}},
      {"C_GetSessionInfo(pInfo=NULL)",
       [](ChildContext& c) { return c.f->C_GetSessionInfo(c.session, nullptr); }, {}},
      {"C_Login(pPin=NULL, ulPinLen=4)",
       [](ChildContext& c) { return c.f->C_Login(c.session, CKU_USER, nullptr, 4); }, {}, false},
      {"C_FindObjectsInit(pTemplate=NULL, ulCount=1)",
       [](ChildContext& c) { return c.f->C_FindObjectsInit(c.session, nullptr, 1); }, {}},
      {"C_FindObjects(phObject=NULL)",
       [](ChildContext& c) {
         c.f->C_FindObjectsInit(c.session, nullptr, 0);
         CK_ULONG count = 0;
         return c.f->C_FindObjects(c.session, nullptr, 1, &count);
       }, {}},
      {"C_FindObjects(pulObjectCount=NULL)",
       [](ChildContext& c) {
         c.f->C_FindObjectsInit(c.session, nullptr, 0);
         CK_OBJECT_HANDLE h;
         return c.f->C_FindObjects(c.session, &h, 1, nullptr);
       }, {}},
      {"C_GetAttributeValue(pTemplate=NULL, ulCount=1)",
       [](ChildContext& c) {
         return c.f->C_GetAttributeValue(c.session, c.p->key.private_key, nullptr, 1);
       }, {}},
      {"C_GetObjectSize(pulSize=NULL)",
       [](ChildContext& c) { return c.f->C_GetObjectSize(c.session, c.p->key.private_key, nullptr); },
       {CKR_FUNCTION_NOT_SUPPORTED}},
      {"C_SignInit(pMechanism=NULL)",
       [](ChildContext& c) { return c.f->C_SignInit(c.session, nullptr, c.p->key.private_key); }, {}},
      {"C_Sign(pData=NULL, ulDataLen=32)",
       [](ChildContext& c) {
         CK_MECHANISM m = c.p->Mechanism();
         c.f->C_SignInit(c.session, &m, c.p->key.private_key);
         CK_BYTE sig[1024];
         CK_ULONG len = sizeof sig;
         return c.f->C_Sign(c.session, nullptr, 32, sig, &len);
       }, {}},
      {"C_Sign(pulSignatureLen=NULL)",
       [](ChildContext& c) {
         CK_MECHANISM m = c.p->Mechanism();
         c.f->C_SignInit(c.session, &m, c.p->key.private_key);
         Bytes input = c.p->input;
         CK_BYTE sig[1024];
         return c.f->C_Sign(c.session, input.data(), input.size(), sig, nullptr);
       }, {}},
      {"C_SignUpdate(pPart=NULL, ulPartLen=16)",
       [](ChildContext& c) {
         CK_MECHANISM m = c.multipart->Mechanism();
         c.f->C_SignInit(c.session, &m, c.multipart->key.private_key);
         return c.f->C_SignUpdate(c.session, nullptr, 16);
       }, {}, true, true},
      {"C_SignFinal(pulSignatureLen=NULL)",
       [](ChildContext& c) {
         CK_MECHANISM m = c.multipart->Mechanism();
         c.f->C_SignInit(c.session, &m, c.multipart->key.private_key);
         CK_BYTE part[4] = {1, 2, 3, 4};
         c.f->C_SignUpdate(c.session, part, sizeof part);
         CK_BYTE sig[1024];
         return c.f->C_SignFinal(c.session, sig, nullptr);
       }, {}, true, true},
      {"C_VerifyInit(pMechanism=NULL)",
       [](ChildContext& c) {
         const CK_OBJECT_HANDLE key = c.p->key.public_key_handle != CK_INVALID_HANDLE
                                          ? c.p->key.public_key_handle
                                          : c.p->key.private_key;
         return c.f->C_VerifyInit(c.session, nullptr, key);
       }, {CKR_FUNCTION_NOT_SUPPORTED}},
      {"C_GenerateRandom(pRandomData=NULL, ulRandomLen=16)",
       [](ChildContext& c) { return c.f->C_GenerateRandom(c.session, nullptr, 16); },
       has_rng ? std::vector<CK_RV>{} : std::vector<CK_RV>{CKR_RANDOM_NO_RNG, CKR_FUNCTION_NOT_SUPPORTED}},
  };
  if (module.get_interface_list) {
    probes.push_back({"C_GetInterfaceList(pulCount=NULL)",
                      [&module](ChildContext&) { return module.get_interface_list(nullptr, nullptr); }, {}});
  }
  if (module.get_interface) {
    probes.push_back({"C_GetInterface(ppInterface=NULL)",
                      [&module](ChildContext&) { return module.get_interface(nullptr, nullptr, nullptr, 0); },
                      {}});
  }
  int ran = 0;
  for (const Probe& probe : probes) {
    if (probe.needs_multipart && !multipart) {
      Note("skipped probe " + probe.name + ": no multi-part signing mechanism");
      continue;
    }
    ++ran;
    ChildOutcome child = RunInChild(
        [&](std::string& message) {
          CK_C_INITIALIZE_ARGS args{};
          args.flags = CKF_OS_LOCKING_OK;
          ApplyInitArgs(args);
          CK_RV rv = f()->C_Initialize(&args);
          if (rv != CKR_OK && rv != CKR_CRYPTOKI_ALREADY_INITIALIZED) {
            message = "child C_Initialize: " + CkRvName(rv);
            return 2;
          }
          ChildContext c{f(), slot(), CK_INVALID_HANDLE, &p, multipart ? &*multipart : nullptr};
          rv = f()->C_OpenSession(slot(), CKF_SERIAL_SESSION, nullptr, nullptr, &c.session);
          if (rv != CKR_OK) {
            message = "child C_OpenSession: " + CkRvName(rv);
            return 2;
          }
          if (!probe.login) {
            f()->C_Logout(c.session);  // the forked state may be logged in (SoftHSM)
          } else if (pin() && LoginRequired()) {
            rv = f()->C_Login(c.session, CKU_USER, PinBytes(*pin()),
                              pin()->size());
            if (rv != CKR_OK && rv != CKR_USER_ALREADY_LOGGED_IN) {
              message = "child C_Login: " + CkRvName(rv);
              return 2;
            }
          }
          // Handles found by the parent may differ in a re-initialised child: find again.
          auto keys = ListKeys(c.session);
          Prepared child_p = p;
          std::optional<Prepared> child_multi = multipart;
          if (keys.ok()) {
            for (const auto& k : *keys) {
              if (k.id == p.key.id) child_p.key = k;
              if (child_multi && k.id == child_multi->key.id) child_multi->key = k;
            }
          }
          c.p = &child_p;
          c.multipart = child_multi ? &*child_multi : nullptr;
          rv = probe.call(c);
          message = CkRvName(rv);
          if (rv == CKR_ARGUMENTS_BAD) return 0;
          for (CK_RV allowed : probe.also_allowed) {
            if (rv == allowed) return 0;
          }
          return 1;
        },
        30);
    EXPECT_TRUE(child.exited && child.exit_code == 0)
        << probe.name << ": expected CKR_ARGUMENTS_BAD; " << child.Describe();
  }
  Note(std::to_string(ran) + " NULL-argument probes, each in its own child process");
}

// --- Fork ----------------------------------------------------------------------------------------

// In a forked child: initialise (OK or ALREADY_INITIALIZED both fine), log in, find the key by
// CKA_ID and sign; 0 when the signature verifies.
int SignInChild(Pkcs11Check& check, CK_FUNCTION_LIST_PTR fl, const Prepared& p,
                const std::optional<std::string>& pin, bool login_required, std::string& message) {
  (void)check;
  CK_C_INITIALIZE_ARGS args{};
  args.flags = CKF_OS_LOCKING_OK;
  ApplyInitArgs(args);
  CK_RV rv = fl->C_Initialize(&args);
  if (rv != CKR_OK && rv != CKR_CRYPTOKI_ALREADY_INITIALIZED) {
    message = "C_Initialize in the child: " + CkRvName(rv);
    return 1;
  }
  message = "child C_Initialize: " + CkRvName(rv);
  CK_SESSION_HANDLE session = CK_INVALID_HANDLE;
  rv = fl->C_OpenSession(TheSuite().slot, CKF_SERIAL_SESSION, nullptr, nullptr, &session);
  if (rv != CKR_OK) {
    message += "; C_OpenSession: " + CkRvName(rv);
    return 1;
  }
  if (pin && login_required) {
    rv = fl->C_Login(session, CKU_USER, PinBytes(*pin),
                     pin->size());
    if (rv != CKR_OK && rv != CKR_USER_ALREADY_LOGGED_IN) {
      message += "; C_Login: " + CkRvName(rv);
      return 1;
    }
  }
  auto found = FindObjects(session, Template().AddUlong(CKA_CLASS, CKO_PRIVATE_KEY).Add(CKA_ID, p.key.id));
  if (!found.ok() || found->size() != 1) {
    message += "; finding the key by CKA_ID failed";
    return 1;
  }
  TokenKey key = p.key;
  key.private_key = found->front();
  const Status status = SignAndVerify(session, key, p.recipe, AsBytes("signed in a child"));
  if (!status.ok()) {
    message += "; " + status.ToString();
    return 1;
  }
  return 0;
}

TEST_F(Fork, ChildReinitializesAndSigns) {
  const bool login_required = LoginRequired();
  ForEachKeyType(false, [&](const Prepared& p) {
    ChildOutcome child = RunInChild([&](std::string& message) {
      return SignInChild(*this, f(), p, pin(), login_required, message);
    });
    EXPECT_TRUE(child.exited && child.exit_code == 0) << child.Describe();
    Note(p.key.Name() + ": " + child.message);
    ASSERT_OK(SignAndVerify(session_, p.key, p.recipe, AsBytes("parent after fork")));
  });
}

TEST_F(Fork, ChildFinalizeLeavesParentWorking) {
  ForEachKeyType(false, [&](const Prepared& p) {
    ChildOutcome child = RunInChild([&](std::string& message) {
      message = "child C_Finalize: " + CkRvName(f()->C_Finalize(nullptr));
      return 0;
    });
    EXPECT_TRUE(child.exited && child.exit_code == 0) << child.Describe();
    Note(p.key.Name() + ": " + child.message);
    CK_SESSION_INFO info{};
    EXPECT_RV(CKR_OK, f()->C_GetSessionInfo(session_, &info));
    ASSERT_OK(SignAndVerify(session_, p.key, p.recipe, AsBytes("parent after child finalize")));
  });
}

TEST_F(Fork, DuringMultipartOperation) {
  ForEachKeyType(true, [&](const Prepared& p) {
    CK_MECHANISM m = p.Mechanism();
    ASSERT_RV(CKR_OK, f()->C_SignInit(session_, &m, p.key.private_key));
    Bytes input = p.input;
    const size_t half = input.size() / 2;
    ASSERT_RV(CKR_OK, f()->C_SignUpdate(session_, input.data(), half));
    ChildOutcome child = RunInChild([&](std::string& message) {
      // Whatever the module answers for the inherited operation, the child must not crash.
      const CK_RV update = f()->C_SignUpdate(session_, input.data() + half, input.size() - half);
      CK_BYTE signature[1024];
      CK_ULONG length = sizeof signature;
      const CK_RV final_rv = f()->C_SignFinal(session_, signature, &length);
      message = "child C_SignUpdate: " + CkRvName(update) + ", C_SignFinal: " + CkRvName(final_rv);
      return 0;
    });
    EXPECT_TRUE(child.exited && child.exit_code == 0) << child.Describe();
    Note(p.key.Name() + ": " + child.message);
    ASSERT_RV(CKR_OK, f()->C_SignUpdate(session_, input.data() + half, input.size() - half));
    CK_ULONG length = 0;
    ASSERT_RV(CKR_OK, f()->C_SignFinal(session_, nullptr, &length));
    ASSERT_EQ(length, ExpectedLength(p)) << "length query";
    Bytes signature(length);
    ASSERT_RV(CKR_OK, f()->C_SignFinal(session_, signature.data(), &length));
    ASSERT_LE(length, signature.size());
    signature.resize(length);
    ASSERT_OK(p.Verify(signature));
  });
}

}  // namespace
}  // namespace signum::conformance

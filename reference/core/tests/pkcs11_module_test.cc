// Pkcs11Module / Pkcs11Session against a real, throwaway SoftHSM2 token (no mocks).
#include "signum/core/pkcs11_module.h"

#include <dlfcn.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>

#include "signum/testing/softhsm_token.h"
#include "signum/testing/status_matchers.h"
#include "signum/testing/temp_dir.h"

// OpenSC's pkcs11-spy leaks 16 bytes per process whatever its caller does (reproduced with a bare
// dlopen + C_GetFunctionList + C_Initialize + C_Finalize); keep it out of LeakSanitizer's report
// in the SIGNUM_SANITIZE build.
#if defined(__SANITIZE_ADDRESS__)
extern "C" const char* __lsan_default_suppressions() { return "leak:pkcs11-spy.so\n"; }
#endif

namespace signum {
namespace {

using ::signum::testing::StatusIs;

using ::signum::testing::SoftHsmToken;
using ::signum::testing::TempDir;

constexpr char kLibc[] = "/lib/x86_64-linux-gnu/libc.so.6";
constexpr char kSpy[] = "/usr/lib/x86_64-linux-gnu/pkcs11-spy.so";
constexpr char kOpenSc[] = "/usr/lib/x86_64-linux-gnu/opensc-pkcs11.so";

bool Contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

class Pkcs11ModuleTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto module = Pkcs11Module::Load(token_.module_path());
    ASSERT_OK(module);
    module_ = *module;
    auto slot = module_->FindSlotByTokenLabel(token_.label());
    ASSERT_OK(slot);
    slot_ = *slot;
  }

  Pkcs11Session OpenRw() {
    auto session = Pkcs11Session::Open(module_, slot_, /*read_write=*/true);
    EXPECT_OK(session);
    return std::move(session).value();
  }

  Pkcs11Session OpenLoggedIn() {
    Pkcs11Session session = OpenRw();
    Status login = session.Login(CKU_USER, token_.pin());
    EXPECT_OK(login);
    return session;
  }

  // Raw C_GenerateKeyPair, the way any PKCS#11 client would do it (no Signum helpers).
  void GenerateEcKey(Pkcs11Session& session, const Bytes& id, CK_OBJECT_HANDLE* pub,
                     CK_OBJECT_HANDLE* priv) {
    // DER OID of prime256v1, the CKA_EC_PARAMS value for P-256.
    static const CK_BYTE kP256[] = {0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07};
    CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
    const char label[] = "module-test-ec";
    std::vector<CK_ATTRIBUTE> pub_tmpl = {
        MakeAttribute(CKA_TOKEN, &yes, sizeof yes),
        MakeAttribute(CKA_VERIFY, &yes, sizeof yes),
        MakeAttribute(CKA_EC_PARAMS, kP256, sizeof kP256),
        MakeAttribute(CKA_ID, id.data(), id.size()),
        MakeAttribute(CKA_LABEL, label, sizeof label - 1),
    };
    std::vector<CK_ATTRIBUTE> priv_tmpl = {
        MakeAttribute(CKA_TOKEN, &yes, sizeof yes),
        MakeAttribute(CKA_PRIVATE, &yes, sizeof yes),
        MakeAttribute(CKA_SENSITIVE, &yes, sizeof yes),
        MakeAttribute(CKA_EXTRACTABLE, &no, sizeof no),
        MakeAttribute(CKA_SIGN, &yes, sizeof yes),
        MakeAttribute(CKA_ID, id.data(), id.size()),
        MakeAttribute(CKA_LABEL, label, sizeof label - 1),
    };
    CK_MECHANISM mech{CKM_EC_KEY_PAIR_GEN, nullptr, 0};
    CK_RV rv = session.fn()->C_GenerateKeyPair(
        session.handle(), &mech, pub_tmpl.data(), static_cast<CK_ULONG>(pub_tmpl.size()),
        priv_tmpl.data(), static_cast<CK_ULONG>(priv_tmpl.size()), pub, priv);
    ASSERT_EQ(rv, static_cast<CK_RV>(CKR_OK)) << CkRvName(rv);
  }

  void GenerateRsaKey(Pkcs11Session& session, const Bytes& id, CK_OBJECT_HANDLE* pub,
                      CK_OBJECT_HANDLE* priv) {
    CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
    CK_ULONG bits = 2048;
    const CK_BYTE exponent[] = {0x01, 0x00, 0x01};
    std::vector<CK_ATTRIBUTE> pub_tmpl = {
        MakeAttribute(CKA_TOKEN, &no, sizeof no),
        MakeAttribute(CKA_VERIFY, &yes, sizeof yes),
        MakeAttribute(CKA_MODULUS_BITS, &bits, sizeof bits),
        MakeAttribute(CKA_PUBLIC_EXPONENT, exponent, sizeof exponent),
        MakeAttribute(CKA_ID, id.data(), id.size()),
    };
    std::vector<CK_ATTRIBUTE> priv_tmpl = {
        MakeAttribute(CKA_TOKEN, &no, sizeof no),
        MakeAttribute(CKA_PRIVATE, &yes, sizeof yes),
        MakeAttribute(CKA_SENSITIVE, &yes, sizeof yes),
        MakeAttribute(CKA_SIGN, &yes, sizeof yes),
        MakeAttribute(CKA_ID, id.data(), id.size()),
    };
    CK_MECHANISM mech{CKM_RSA_PKCS_KEY_PAIR_GEN, nullptr, 0};
    CK_RV rv = session.fn()->C_GenerateKeyPair(
        session.handle(), &mech, pub_tmpl.data(), static_cast<CK_ULONG>(pub_tmpl.size()),
        priv_tmpl.data(), static_cast<CK_ULONG>(priv_tmpl.size()), pub, priv);
    ASSERT_EQ(rv, static_cast<CK_RV>(CKR_OK)) << CkRvName(rv);
  }

  SoftHsmToken token_;
  std::shared_ptr<Pkcs11Module> module_;
  CK_SLOT_ID slot_ = 0;
};

TEST_F(Pkcs11ModuleTest, LoadsSoftHsm) {
  ASSERT_NE(module_->functions(), nullptr);
  EXPECT_EQ(module_->path(), token_.module_path());
  // SoftHSM 2.6.1 is a PKCS#11 2.40 module: no C_GetInterface, so no 3.0 list.
  EXPECT_EQ(module_->functions_3_0(), nullptr);
  CK_INFO info = module_->info();
  EXPECT_EQ(info.cryptokiVersion.major, 2);
  EXPECT_EQ(TrimPadded(info.manufacturerID, sizeof info.manufacturerID), "SoftHSM");
}

TEST_F(Pkcs11ModuleTest, LoadingTheSameLibraryTwiceSharesOneInstance) {
  auto again = Pkcs11Module::Load(token_.module_path());
  ASSERT_OK(again);
  EXPECT_EQ(again->get(), module_.get());
  // Through the symlink's target: the same library, so the same instance.
  auto real = Pkcs11Module::Load("/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so");
  ASSERT_OK(real);
  EXPECT_EQ(real->get(), module_.get());
}

TEST_F(Pkcs11ModuleTest, SlotsAndTokenInfo) {
  auto slots = module_->SlotsWithTokens();
  ASSERT_OK(slots);
  // SoftHSM always offers one more (uninitialised) token after the initialised ones.
  EXPECT_GE(slots->size(), 2u);
  EXPECT_NE(std::find(slots->begin(), slots->end(), slot_), slots->end());

  auto info = module_->TokenInfo(slot_);
  ASSERT_OK(info);
  EXPECT_EQ(TrimPadded(info->label, sizeof info->label), token_.label());
  EXPECT_NE(info->flags & CKF_TOKEN_INITIALIZED, 0u);
  EXPECT_NE(info->flags & CKF_LOGIN_REQUIRED, 0u);
  EXPECT_NE(info->flags & CKF_USER_PIN_INITIALIZED, 0u);
}

TEST_F(Pkcs11ModuleTest, UnknownTokenLabelListsTheAvailableOnes) {
  auto slot = module_->FindSlotByTokenLabel("no-such-token");
  ASSERT_THAT(slot, StatusIs(ErrorCode::kNotFound));
  EXPECT_EQ(slot.status().message(), "token 'no-such-token' not found (tokens: signum-test)");
}

TEST_F(Pkcs11ModuleTest, MechanismList) {
  auto mechanisms = module_->Mechanisms(slot_);
  ASSERT_OK(mechanisms);
  auto has = [&](CK_MECHANISM_TYPE m) {
    return std::find(mechanisms->begin(), mechanisms->end(), m) != mechanisms->end();
  };
  EXPECT_TRUE(has(CKM_RSA_PKCS));
  EXPECT_TRUE(has(CKM_RSA_PKCS_PSS));
  EXPECT_TRUE(has(CKM_ECDSA));
  EXPECT_TRUE(has(CKM_RSA_PKCS_KEY_PAIR_GEN));
  EXPECT_TRUE(has(CKM_EC_KEY_PAIR_GEN));
  // The SoftHSM 2.6.1 gap every Signum component works around: hash-then-CKM_ECDSA only.
  EXPECT_FALSE(has(CKM_ECDSA_SHA256));
}

TEST_F(Pkcs11ModuleTest, MechanismsOfAnUnknownSlot) {
  auto mechanisms = module_->Mechanisms(0xdeadbeef);
  ASSERT_FALSE(mechanisms.ok());
  EXPECT_EQ(mechanisms.status().ck_rv(), std::optional<unsigned long>(CKR_SLOT_ID_INVALID));
}

TEST_F(Pkcs11ModuleTest, OpensReadOnlyAndReadWriteSessions) {
  auto ro = Pkcs11Session::Open(module_, slot_, /*read_write=*/false);
  ASSERT_OK(ro);
  auto ro_info = ro->Info();
  ASSERT_OK(ro_info);
  EXPECT_EQ(ro_info->state, static_cast<CK_STATE>(CKS_RO_PUBLIC_SESSION));
  EXPECT_EQ(ro_info->slotID, slot_);
  EXPECT_EQ(ro->slot(), slot_);

  auto rw = Pkcs11Session::Open(module_, slot_, /*read_write=*/true);
  ASSERT_OK(rw);
  auto rw_info = rw->Info();
  ASSERT_OK(rw_info);
  EXPECT_EQ(rw_info->state, static_cast<CK_STATE>(CKS_RW_PUBLIC_SESSION));
  EXPECT_NE(rw_info->flags & CKF_RW_SESSION, 0u);
  EXPECT_NE(ro->handle(), rw->handle());
}

TEST_F(Pkcs11ModuleTest, SessionsCloseThemselvesAndMove) {
  CK_SESSION_HANDLE handle;
  {
    Pkcs11Session a = OpenRw();
    handle = a.handle();
    Pkcs11Session b = std::move(a);
    EXPECT_EQ(b.handle(), handle);
    EXPECT_EQ(a.handle(), static_cast<CK_SESSION_HANDLE>(CK_INVALID_HANDLE));  // NOLINT: moved
    CK_SESSION_INFO info;
    EXPECT_EQ(module_->functions()->C_GetSessionInfo(handle, &info), static_cast<CK_RV>(CKR_OK));
  }
  CK_SESSION_INFO info;
  EXPECT_EQ(module_->functions()->C_GetSessionInfo(handle, &info),
            static_cast<CK_RV>(CKR_SESSION_HANDLE_INVALID));
}

TEST_F(Pkcs11ModuleTest, WrongPinIsUnauthenticated) {
  Pkcs11Session session = OpenRw();
  Status status = session.Login(CKU_USER, "0000");
  ASSERT_THAT(status, StatusIs(ErrorCode::kUnauthenticated));
  EXPECT_EQ(status.ck_rv(), std::optional<unsigned long>(CKR_PIN_INCORRECT));
  EXPECT_TRUE(Contains(status.message(), "CKR_PIN_INCORRECT")) << status.message();
  EXPECT_EQ(status.message(), "C_Login: CKR_PIN_INCORRECT (0xa0)");
}

TEST_F(Pkcs11ModuleTest, LoginLogout) {
  Pkcs11Session session = OpenRw();
  ASSERT_OK(session.Login(CKU_USER, token_.pin()));
  auto info = session.Info();
  ASSERT_OK(info);
  EXPECT_EQ(info->state, static_cast<CK_STATE>(CKS_RW_USER_FUNCTIONS));
  // A second login (here: from another session of the same application) is tolerated.
  Pkcs11Session other = OpenRw();
  Status again = other.Login(CKU_USER, token_.pin());
  EXPECT_OK(again);
  EXPECT_OK(session.Logout());
  info = session.Info();
  ASSERT_OK(info);
  EXPECT_EQ(info->state, static_cast<CK_STATE>(CKS_RW_PUBLIC_SESSION));
  EXPECT_EQ(other.Info()->state, static_cast<CK_STATE>(CKS_RW_PUBLIC_SESSION));  // token-wide
}

TEST_F(Pkcs11ModuleTest, FindOnEmptyToken) {
  Pkcs11Session session = OpenLoggedIn();
  auto all = session.FindObjects({});
  ASSERT_OK(all);
  EXPECT_TRUE(all->empty());
  CK_OBJECT_CLASS cls = CKO_PRIVATE_KEY;
  auto keys = session.FindObjects({MakeAttribute(CKA_CLASS, &cls, sizeof cls)});
  ASSERT_OK(keys);
  EXPECT_TRUE(keys->empty());
  // The find operation was finalised: another one can start right away.
  EXPECT_OK(session.FindObjects({}));
}

TEST_F(Pkcs11ModuleTest, FindReturnsMoreThanOneChunk) {
  Pkcs11Session session = OpenRw();
  CK_OBJECT_CLASS cls = CKO_DATA;
  CK_BBOOL no = CK_FALSE;  // SoftHSM makes objects CKA_PRIVATE unless told otherwise
  const char app[] = "signum-chunk-test";
  constexpr int kCount = 150;  // > 2 chunks of 64
  for (int i = 0; i < kCount; ++i) {
    std::string value = "object " + std::to_string(i);
    std::vector<CK_ATTRIBUTE> tmpl = {
        MakeAttribute(CKA_CLASS, &cls, sizeof cls),
        MakeAttribute(CKA_TOKEN, &no, sizeof no),
        MakeAttribute(CKA_PRIVATE, &no, sizeof no),
        MakeAttribute(CKA_APPLICATION, app, sizeof app - 1),
        MakeAttribute(CKA_VALUE, value.data(), value.size()),
    };
    CK_OBJECT_HANDLE handle;
    ASSERT_EQ(session.fn()->C_CreateObject(session.handle(), tmpl.data(),
                                           static_cast<CK_ULONG>(tmpl.size()), &handle),
              static_cast<CK_RV>(CKR_OK));
  }
  auto found = session.FindObjects({MakeAttribute(CKA_APPLICATION, app, sizeof app - 1)});
  ASSERT_OK(found);
  EXPECT_EQ(found->size(), static_cast<size_t>(kCount));
  std::vector<CK_OBJECT_HANDLE> sorted = *found;
  std::sort(sorted.begin(), sorted.end());
  EXPECT_EQ(std::unique(sorted.begin(), sorted.end()), sorted.end());
}

TEST_F(Pkcs11ModuleTest, GeneratedEcKeyAttributesAndSignature) {
  Pkcs11Session session = OpenLoggedIn();
  const Bytes id = {0xec, 0x01};
  CK_OBJECT_HANDLE pub = CK_INVALID_HANDLE, priv = CK_INVALID_HANDLE;
  ASSERT_NO_FATAL_FAILURE(GenerateEcKey(session, id, &pub, &priv));

  CK_OBJECT_CLASS cls = CKO_PRIVATE_KEY;
  auto found = session.FindObjects(
      {MakeAttribute(CKA_CLASS, &cls, sizeof cls), MakeAttribute(CKA_ID, id.data(), id.size())});
  ASSERT_OK(found);
  ASSERT_EQ(found->size(), 1u);
  EXPECT_EQ((*found)[0], priv);

  auto got_id = session.GetAttribute(priv, CKA_ID);
  ASSERT_OK(got_id);
  EXPECT_EQ(*got_id, id);
  auto label = session.GetAttribute(priv, CKA_LABEL);
  ASSERT_OK(label);
  EXPECT_EQ(ToString(*label), "module-test-ec");
  auto key_type = session.GetUlongAttribute(priv, CKA_KEY_TYPE);
  ASSERT_OK(key_type);
  EXPECT_EQ(*key_type, static_cast<CK_ULONG>(CKK_EC));
  auto sign = session.GetBoolAttribute(priv, CKA_SIGN);
  ASSERT_OK(sign);
  EXPECT_TRUE(*sign);
  auto extractable = session.GetBoolAttribute(priv, CKA_EXTRACTABLE);
  ASSERT_OK(extractable);
  EXPECT_FALSE(*extractable);
  // GetBoolAttribute on a CK_ULONG attribute is a size mismatch, not garbage.
  EXPECT_FALSE(session.GetBoolAttribute(priv, CKA_KEY_TYPE).ok());

  // SoftHSM: CKA_EC_POINT only on the public key, as a DER OCTET STRING (04 41 04 X Y).
  auto no_point = session.GetAttribute(priv, CKA_EC_POINT);
  ASSERT_THAT(no_point, StatusIs(ErrorCode::kNotFound));
  EXPECT_EQ(no_point.status().ck_rv(), std::optional<unsigned long>(CKR_ATTRIBUTE_TYPE_INVALID));
  auto point = session.GetAttribute(pub, CKA_EC_POINT);
  ASSERT_OK(point);
  ASSERT_EQ(point->size(), 67u);
  EXPECT_EQ((*point)[0], 0x04);
  EXPECT_EQ((*point)[1], 0x41);
  EXPECT_EQ((*point)[2], 0x04);

  // The private value is sensitive.
  auto value = session.GetAttribute(priv, CKA_VALUE);
  ASSERT_FALSE(value.ok());
  EXPECT_EQ(value.status().ck_rv(), std::optional<unsigned long>(CKR_ATTRIBUTE_SENSITIVE));

  // CKM_ECDSA over a 32-byte digest -> raw r||s; the token verifies its own signature.
  Bytes digest(32);
  for (size_t i = 0; i < digest.size(); ++i) digest[i] = static_cast<uint8_t>(i * 7 + 1);
  CK_MECHANISM ecdsa{CKM_ECDSA, nullptr, 0};
  auto signature = session.Sign(ecdsa, priv, digest);
  ASSERT_OK(signature);
  EXPECT_EQ(signature->size(), 64u);
  ASSERT_EQ(session.fn()->C_VerifyInit(session.handle(), &ecdsa, pub), static_cast<CK_RV>(CKR_OK));
  EXPECT_EQ(
      session.fn()->C_Verify(session.handle(), digest.data(), static_cast<CK_ULONG>(digest.size()),
                             signature->data(), static_cast<CK_ULONG>(signature->size())),
      static_cast<CK_RV>(CKR_OK));
}

TEST_F(Pkcs11ModuleTest, RsaSignatureAndMechanismErrors) {
  Pkcs11Session session = OpenLoggedIn();
  const Bytes id = {0x0a};
  CK_OBJECT_HANDLE pub = CK_INVALID_HANDLE, priv = CK_INVALID_HANDLE;
  ASSERT_NO_FATAL_FAILURE(GenerateRsaKey(session, id, &pub, &priv));

  const Bytes data = {'h', 'e', 'l', 'l', 'o'};
  CK_MECHANISM mech{CKM_SHA256_RSA_PKCS, nullptr, 0};
  auto signature = session.Sign(mech, priv, data);
  ASSERT_OK(signature);
  EXPECT_EQ(signature->size(), 256u);
  ASSERT_EQ(session.fn()->C_VerifyInit(session.handle(), &mech, pub), static_cast<CK_RV>(CKR_OK));
  EXPECT_EQ(session.fn()->C_Verify(session.handle(), const_cast<CK_BYTE_PTR>(data.data()),
                                   static_cast<CK_ULONG>(data.size()), signature->data(),
                                   static_cast<CK_ULONG>(signature->size())),
            static_cast<CK_RV>(CKR_OK));

  // PSS without its parameters. (Note: SoftHSM 2.6.1 does *not* refuse CKM_ECDSA on an RSA key,
  // so callers must check mechanism against key type themselves.)
  CK_MECHANISM pss{CKM_RSA_PKCS_PSS, nullptr, 0};
  auto wrong = session.Sign(pss, priv, data);
  ASSERT_THAT(wrong, StatusIs(ErrorCode::kInvalidArgument));
  EXPECT_EQ(wrong.status().ck_rv(), std::optional<unsigned long>(CKR_ARGUMENTS_BAD));
  EXPECT_TRUE(Contains(wrong.status().message(), "C_SignInit(CKM_RSA_PKCS_PSS)"))
      << wrong.status().message();

  // A stale object handle.
  auto stale = session.Sign(mech, 0x7fffffff, data);
  ASSERT_THAT(stale, StatusIs(ErrorCode::kNotFound));

  // The session is usable after each failure (no operation left active).
  EXPECT_OK(session.Sign(mech, priv, data));
}

TEST_F(Pkcs11ModuleTest, LoadingANonexistentPathNamesThePath) {
  auto module = Pkcs11Module::Load("/nonexistent/libnothing.so");
  ASSERT_THAT(module, StatusIs(ErrorCode::kNotFound));
  EXPECT_TRUE(Contains(module.status().message(), "/nonexistent/libnothing.so"))
      << module.status().message();
}

TEST_F(Pkcs11ModuleTest, LoadingAnUnloadableFileNamesThePath) {
  TempDir dir;
  const std::string path = dir.File("not-a-library.so");
  std::ofstream(path) << "this is not an ELF file\n";
  auto module = Pkcs11Module::Load(path);
  ASSERT_FALSE(module.ok());
  EXPECT_TRUE(Contains(module.status().message(), path)) << module.status().message();
}

TEST_F(Pkcs11ModuleTest, LoadingANonPkcs11LibraryNamesTheMissingSymbol) {
  auto module = Pkcs11Module::Load(kLibc);
  ASSERT_THAT(module, StatusIs(ErrorCode::kInvalidArgument));
  EXPECT_TRUE(Contains(module.status().message(), "C_GetFunctionList"))
      << module.status().message();
  EXPECT_TRUE(Contains(module.status().message(), kLibc)) << module.status().message();
}

// OpenSC's PKCS#11 module is a 3.0 module: C_GetInterface("PKCS 11") gives a 3.0 list. (Without
// a reader it still initialises and reports no tokens.)
TEST_F(Pkcs11ModuleTest, UsesThe30InterfaceWhenExported) {
  auto opensc = Pkcs11Module::Load(kOpenSc);
  ASSERT_OK(opensc);
  ASSERT_NE((*opensc)->functions_3_0(), nullptr);
  EXPECT_EQ(static_cast<void*>((*opensc)->functions()),
            static_cast<void*>((*opensc)->functions_3_0()));
  EXPECT_EQ((*opensc)->functions_3_0()->version.major, 3);
  EXPECT_NE((*opensc)->functions_3_0()->C_SessionCancel, nullptr);  // a 3.0-only entry point
  EXPECT_EQ((*opensc)->info().cryptokiVersion.major, 3);
  EXPECT_OK((*opensc)->SlotsWithTokens());
  EXPECT_FALSE((*opensc)->FindSlotByTokenLabel(token_.label()).ok());
}

// OpenSC's pkcs11-spy exports C_GetInterface, but in front of a 2.40 module it refuses a 3.0
// request and offers a 2.x list, so the loader falls back to C_GetFunctionList.
TEST_F(Pkcs11ModuleTest, SpyInFrontOfSoftHsm) {
  module_.reset();  // the spy initialises (and finalises) SoftHSM itself
  TempDir dir;
  setenv("PKCS11SPY", token_.module_path().c_str(), 1);
  setenv("PKCS11SPY_OUTPUT", dir.File("spy.log").c_str(), 1);
  {
    auto spy = Pkcs11Module::Load(kSpy);
    ASSERT_OK(spy);
    EXPECT_EQ((*spy)->functions_3_0(), nullptr);
    auto slot = (*spy)->FindSlotByTokenLabel(token_.label());
    ASSERT_OK(slot);
    EXPECT_EQ(*slot, slot_);
    auto session = Pkcs11Session::Open(*spy, *slot, false);
    ASSERT_OK(session);
  }
  unsetenv("PKCS11SPY");
  unsetenv("PKCS11SPY_OUTPUT");
  std::ifstream log(dir.File("spy.log"));
  std::stringstream text;
  text << log.rdbuf();
  EXPECT_TRUE(Contains(text.str(), "C_GetTokenInfo")) << text.str().substr(0, 2000);
  EXPECT_TRUE(Contains(text.str(), "C_Finalize")) << text.str().substr(0, 2000);
}

// Someone else in the process initialised the module: Load accepts
// CKR_CRYPTOKI_ALREADY_INITIALIZED and leaves C_Finalize to them.
TEST_F(Pkcs11ModuleTest, AlreadyInitializedByAnotherUser) {
  module_.reset();  // finalises SoftHSM
  void* handle = dlopen(token_.module_path().c_str(), RTLD_NOW | RTLD_LOCAL);
  ASSERT_NE(handle, nullptr);
  auto get_function_list =
      reinterpret_cast<CK_C_GetFunctionList>(dlsym(handle, "C_GetFunctionList"));
  ASSERT_NE(get_function_list, nullptr);
  CK_FUNCTION_LIST_PTR fn = nullptr;
  ASSERT_EQ(get_function_list(&fn), static_cast<CK_RV>(CKR_OK));
  CK_C_INITIALIZE_ARGS args{};
  args.flags = CKF_OS_LOCKING_OK;
  ASSERT_EQ(fn->C_Initialize(&args), static_cast<CK_RV>(CKR_OK));
  {
    auto module = Pkcs11Module::Load(token_.module_path());
    ASSERT_OK(module);
    EXPECT_OK((*module)->FindSlotByTokenLabel(token_.label()));
  }
  // Still initialised: the module object did not call C_Finalize.
  CK_ULONG count = 0;
  EXPECT_EQ(fn->C_GetSlotList(CK_TRUE, nullptr, &count), static_cast<CK_RV>(CKR_OK));
  EXPECT_EQ(fn->C_Finalize(nullptr), static_cast<CK_RV>(CKR_OK));
  dlclose(handle);
}

TEST(Pkcs11NamesTest, CkRvNames) {
  EXPECT_EQ(CkRvName(CKR_OK), "CKR_OK");
  EXPECT_EQ(CkRvName(CKR_PIN_INCORRECT), "CKR_PIN_INCORRECT");
  EXPECT_EQ(CkRvName(CKR_SESSION_HANDLE_INVALID), "CKR_SESSION_HANDLE_INVALID");
  EXPECT_EQ(CkRvName(CKR_BUFFER_TOO_SMALL), "CKR_BUFFER_TOO_SMALL");
  EXPECT_EQ(CkRvName(CKR_CRYPTOKI_ALREADY_INITIALIZED), "CKR_CRYPTOKI_ALREADY_INITIALIZED");
  EXPECT_EQ(CkRvName(CKR_OPERATION_CANCEL_FAILED), "CKR_OPERATION_CANCEL_FAILED");  // 3.0
  EXPECT_EQ(CkRvName(CKR_VENDOR_DEFINED), "CKR_VENDOR_DEFINED");
  EXPECT_EQ(CkRvName(0x80000123UL), "CKR_0x80000123");
  EXPECT_EQ(CkRvName(0x999UL), "CKR_0x999");
}

TEST(Pkcs11NamesTest, MechanismAndAttributeNames) {
  EXPECT_EQ(MechanismName(CKM_RSA_PKCS), "CKM_RSA_PKCS");
  EXPECT_EQ(MechanismName(CKM_SHA256_RSA_PKCS), "CKM_SHA256_RSA_PKCS");
  EXPECT_EQ(MechanismName(CKM_SHA384_RSA_PKCS_PSS), "CKM_SHA384_RSA_PKCS_PSS");
  EXPECT_EQ(MechanismName(CKM_ECDSA), "CKM_ECDSA");
  EXPECT_EQ(MechanismName(CKM_EC_KEY_PAIR_GEN), "CKM_EC_KEY_PAIR_GEN");  // not the old alias
  EXPECT_EQ(MechanismName(CKM_SHA_1), "CKM_SHA_1");
  EXPECT_EQ(MechanismName(0x80001234UL), "CKM_0x80001234");
  EXPECT_EQ(AttributeName(CKA_EC_PARAMS), "CKA_EC_PARAMS");  // not CKA_ECDSA_PARAMS
  EXPECT_EQ(AttributeName(CKA_EC_POINT), "CKA_EC_POINT");
  EXPECT_EQ(AttributeName(CKA_ALWAYS_AUTHENTICATE), "CKA_ALWAYS_AUTHENTICATE");
  EXPECT_EQ(AttributeName(CKA_ALLOWED_MECHANISMS), "CKA_ALLOWED_MECHANISMS");
  EXPECT_EQ(AttributeName(0x80000001UL), "CKA_0x80000001");
}

TEST(Pkcs11NamesTest, CkStatusMapping) {
  EXPECT_OK(CkStatus(CKR_OK, "x"));
  struct Case {
    CK_RV rv;
    ErrorCode code;
  };
  const Case cases[] = {
      {CKR_PIN_INCORRECT, ErrorCode::kUnauthenticated},
      {CKR_PIN_INVALID, ErrorCode::kUnauthenticated},
      {CKR_PIN_LEN_RANGE, ErrorCode::kUnauthenticated},
      {CKR_PIN_EXPIRED, ErrorCode::kUnauthenticated},
      {CKR_PIN_LOCKED, ErrorCode::kUnauthenticated},
      {CKR_USER_NOT_LOGGED_IN, ErrorCode::kFailedPrecondition},
      {CKR_SESSION_HANDLE_INVALID, ErrorCode::kUnavailable},
      {CKR_SESSION_CLOSED, ErrorCode::kUnavailable},
      {CKR_DEVICE_REMOVED, ErrorCode::kUnavailable},
      {CKR_TOKEN_NOT_PRESENT, ErrorCode::kUnavailable},
      {CKR_DEVICE_ERROR, ErrorCode::kUnavailable},
      {CKR_CRYPTOKI_NOT_INITIALIZED, ErrorCode::kUnavailable},
      {CKR_ARGUMENTS_BAD, ErrorCode::kInvalidArgument},
      {CKR_DATA_INVALID, ErrorCode::kInvalidArgument},
      {CKR_DATA_LEN_RANGE, ErrorCode::kInvalidArgument},
      {CKR_MECHANISM_INVALID, ErrorCode::kInvalidArgument},
      {CKR_MECHANISM_PARAM_INVALID, ErrorCode::kInvalidArgument},
      {CKR_KEY_TYPE_INCONSISTENT, ErrorCode::kInvalidArgument},
      {CKR_OBJECT_HANDLE_INVALID, ErrorCode::kNotFound},
      {CKR_KEY_HANDLE_INVALID, ErrorCode::kNotFound},
      {CKR_HOST_MEMORY, ErrorCode::kResourceExhausted},
      {CKR_DEVICE_MEMORY, ErrorCode::kResourceExhausted},
      {CKR_GENERAL_ERROR, ErrorCode::kInternal},
      {CKR_FUNCTION_FAILED, ErrorCode::kInternal},
      {0x80000123UL, ErrorCode::kInternal},
  };
  for (const Case& c : cases) {
    Status status = CkStatus(c.rv, "C_Something");
    EXPECT_EQ(status.code(), c.code) << CkRvName(c.rv);
    EXPECT_EQ(status.ck_rv(), std::optional<unsigned long>(c.rv));
    EXPECT_TRUE(Contains(status.message(), "C_Something: " + CkRvName(c.rv))) << status.message();
  }
  EXPECT_EQ(CkStatus(CKR_DEVICE_ERROR, "C_Sign").message(), "C_Sign: CKR_DEVICE_ERROR (0x30)");
}

TEST(Pkcs11NamesTest, PaddedStrings) {
  CK_UTF8CHAR field[8];
  CopyPadded("abc", field, sizeof field);
  EXPECT_EQ(std::string(reinterpret_cast<char*>(field), sizeof field), "abc     ");
  EXPECT_EQ(TrimPadded(field, sizeof field), "abc");
  CopyPadded("0123456789", field, sizeof field);
  EXPECT_EQ(TrimPadded(field, sizeof field), "01234567");
  // A multi-byte UTF-8 character that does not fit is left out whole.
  CopyPadded("abcdefg\xc3\xa9", field, sizeof field);
  EXPECT_EQ(TrimPadded(field, sizeof field), "abcdefg");
  const CK_UTF8CHAR nul_padded[6] = {'x', 'y', 0, 0, 0, 0};
  EXPECT_EQ(TrimPadded(nul_padded, sizeof nul_padded), "xy");
  CK_ATTRIBUTE attr = MakeAttribute(CKA_LABEL, "hi", 2);
  EXPECT_EQ(attr.type, static_cast<CK_ATTRIBUTE_TYPE>(CKA_LABEL));
  EXPECT_EQ(attr.ulValueLen, 2u);
}

}  // namespace
}  // namespace signum

// Info, Interface, Init, Threads, Session and Login checks (CHECKS.md).
#include <atomic>
#include <cstring>
#include <functional>
#include <map>
#include <mutex>
#include <thread>

#include "signum/testing/status_matchers.h"
#include "suite.h"

namespace signum::conformance {
namespace {

// Fixed-width text fields: printable, right-padded with spaces, never NUL (pkcs11test
// IsSpacePadded; F20).
void ExpectSpacePadded(const CK_UTF8CHAR* field, size_t width, const char* what) {
  for (size_t i = 0; i < width; ++i) {
    const unsigned char c = field[i];
    if (c == 0) {
      ADD_FAILURE() << what << " has a NUL byte at offset " << i << " (must be space-padded)";
      return;
    }
    if (c < 0x20 || c == 0x7f) {
      ADD_FAILURE() << what << " has control byte 0x" << std::hex << int(c) << " at offset "
                    << std::dec << i;
      return;
    }
  }
}

class Info : public Pkcs11Check {};
class Interface : public Pkcs11Check {};
class Init : public Pkcs11Check {};
class Threads : public Pkcs11Check {};
class Session : public Pkcs11Check {};
class Login : public Pkcs11Check {
 protected:
  void SetUp() override {
    Pkcs11Check::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    if (!pin()) GTEST_SKIP() << "no PIN given (--pin, --pin-file or SIGNUM_CONFORMANCE_PIN)";
    if (!LoginRequired()) GTEST_SKIP() << "the token does not set CKF_LOGIN_REQUIRED";
  }
  CK_RV LoginWith(CK_SESSION_HANDLE session, const std::string& pin_value) {
    return f()->C_Login(session, CKU_USER,
                        PinBytes(pin_value),
                        static_cast<CK_ULONG>(pin_value.size()));
  }
  CK_STATE StateOf(CK_SESSION_HANDLE session) {
    CK_SESSION_INFO info{};
    EXPECT_RV(CKR_OK, f()->C_GetSessionInfo(session, &info));
    return info.state;
  }
};

TEST_F(Info, LibraryInfoIsSpacePadded) {
  CK_INFO info{};
  ASSERT_RV(CKR_OK, f()->C_GetInfo(&info));
  EXPECT_TRUE(info.cryptokiVersion.major == 2 || info.cryptokiVersion.major == 3)
      << "cryptokiVersion " << int(info.cryptokiVersion.major) << "."
      << int(info.cryptokiVersion.minor);
  ExpectSpacePadded(info.manufacturerID, sizeof info.manufacturerID, "CK_INFO.manufacturerID");
  ExpectSpacePadded(info.libraryDescription, sizeof info.libraryDescription,
                    "CK_INFO.libraryDescription");
  EXPECT_EQ(info.flags, 0u) << "CK_INFO.flags is reserved and must be 0";
}

TEST_F(Info, SlotListTwoCallProtocol) {
  CK_ULONG count = 0;
  ASSERT_RV(CKR_OK, f()->C_GetSlotList(CK_TRUE, nullptr, &count));
  ASSERT_GE(count, 1u);
  std::vector<CK_SLOT_ID> slots(count + 3);
  CK_ULONG small = count - 1;
  EXPECT_RV(CKR_BUFFER_TOO_SMALL, f()->C_GetSlotList(CK_TRUE, slots.data(), &small));
  EXPECT_EQ(small, count) << "CKR_BUFFER_TOO_SMALL must report the needed count";
  CK_ULONG large = count + 3;
  ASSERT_RV(CKR_OK, f()->C_GetSlotList(CK_TRUE, slots.data(), &large));
  EXPECT_EQ(large, count);
  slots.resize(large);
  EXPECT_NE(std::find(slots.begin(), slots.end(), slot()), slots.end())
      << "the selected slot is not in C_GetSlotList(tokenPresent=TRUE)";
  CK_ULONG all = 0;
  ASSERT_RV(CKR_OK, f()->C_GetSlotList(CK_FALSE, nullptr, &all));
  EXPECT_GE(all, count) << "fewer slots than slots with a token";
}

TEST_F(Info, SlotInfoIsSpacePadded) {
  CK_SLOT_INFO info{};
  ASSERT_RV(CKR_OK, f()->C_GetSlotInfo(slot(), &info));
  ExpectSpacePadded(info.slotDescription, sizeof info.slotDescription, "slotDescription");
  ExpectSpacePadded(info.manufacturerID, sizeof info.manufacturerID, "slot manufacturerID");
  EXPECT_EQ(info.flags & ~CK_FLAGS(CKF_TOKEN_PRESENT | CKF_REMOVABLE_DEVICE | CKF_HW_SLOT), 0u)
      << "undefined slot flags 0x" << std::hex << info.flags;
  EXPECT_TRUE(info.flags & CKF_TOKEN_PRESENT);
}

TEST_F(Info, TokenInfoIsSpacePadded) {
  CK_TOKEN_INFO info{};
  ASSERT_RV(CKR_OK, f()->C_GetTokenInfo(slot(), &info));
  ExpectSpacePadded(info.label, sizeof info.label, "token label");
  ExpectSpacePadded(info.manufacturerID, sizeof info.manufacturerID, "token manufacturerID");
  ExpectSpacePadded(info.model, sizeof info.model, "token model");
  ExpectSpacePadded(info.serialNumber, sizeof info.serialNumber, "token serialNumber");
  const CK_FLAGS defined =
      CKF_RNG | CKF_WRITE_PROTECTED | CKF_LOGIN_REQUIRED | CKF_USER_PIN_INITIALIZED |
      CKF_RESTORE_KEY_NOT_NEEDED | CKF_CLOCK_ON_TOKEN | CKF_PROTECTED_AUTHENTICATION_PATH |
      CKF_DUAL_CRYPTO_OPERATIONS | CKF_TOKEN_INITIALIZED | CKF_SECONDARY_AUTHENTICATION |
      CKF_USER_PIN_COUNT_LOW | CKF_USER_PIN_FINAL_TRY | CKF_USER_PIN_LOCKED |
      CKF_USER_PIN_TO_BE_CHANGED | CKF_SO_PIN_COUNT_LOW | CKF_SO_PIN_FINAL_TRY |
      CKF_SO_PIN_LOCKED | CKF_SO_PIN_TO_BE_CHANGED | CKF_ERROR_STATE;
  EXPECT_EQ(info.flags & ~defined, 0u) << "undefined token flags 0x" << std::hex
                                       << (info.flags & ~defined);
  EXPECT_TRUE(info.flags & CKF_TOKEN_INITIALIZED) << "CKF_TOKEN_INITIALIZED not set";
  EXPECT_LE(info.ulMinPinLen, info.ulMaxPinLen);
}

TEST_F(Info, TokenInfoWithoutSlotList) {
  // The fixture only called C_Initialize; no C_GetSlotList in this initialisation (F19).
  CK_TOKEN_INFO info{};
  ASSERT_RV(CKR_OK, f()->C_GetTokenInfo(slot(), &info));
  EXPECT_EQ(TrimPadded(info.label, sizeof info.label), TheSuite().token_label);
}

// The fields callers derive a token's identity from (gnupg-pkcs11-scd's card serial, p11-kit and
// NSS token URIs), as one printable string.
std::string TokenIdentity(const CK_TOKEN_INFO& info) {
  return "label='" + TrimPadded(info.label, sizeof info.label) + "' manufacturer='" +
         TrimPadded(info.manufacturerID, sizeof info.manufacturerID) + "' model='" +
         TrimPadded(info.model, sizeof info.model) + "' serial='" +
         TrimPadded(info.serialNumber, sizeof info.serialNumber) + "'";
}

TEST_F(Info, TokenIdentityStableAcrossProcesses) {
  // F48: gpg asked for "another card" when these changed between runs. Compared across calls,
  // a login, a re-initialisation and another process (a forked child that initialises again).
  CK_TOKEN_INFO info{};
  ASSERT_RV(CKR_OK, f()->C_GetTokenInfo(slot(), &info));
  const std::string first = TokenIdentity(info);
  ASSERT_RV(CKR_OK, f()->C_GetTokenInfo(slot(), &info));
  EXPECT_EQ(TokenIdentity(info), first) << "second C_GetTokenInfo";
  const CK_SESSION_HANDLE session = OpenSession();
  ASSERT_NE(session, CK_INVALID_HANDLE);
  ASSERT_RV(CKR_OK, f()->C_GetTokenInfo(slot(), &info));
  EXPECT_EQ(TokenIdentity(info), first) << "with a (logged-in) session open";
  ASSERT_RV(CKR_OK, Finalize());
  CK_C_INITIALIZE_ARGS args{};
  args.flags = CKF_OS_LOCKING_OK;
  ASSERT_RV(CKR_OK, Initialize(&args));
  ASSERT_RV(CKR_OK, f()->C_GetTokenInfo(slot(), &info));
  EXPECT_EQ(TokenIdentity(info), first) << "after C_Finalize and C_Initialize";
  ChildOutcome child = RunInChild(
      [&](std::string& message) {
        CK_C_INITIALIZE_ARGS child_args{};
        child_args.flags = CKF_OS_LOCKING_OK;
        ApplyInitArgs(child_args);
        const CK_RV init = f()->C_Initialize(&child_args);
        if (init != CKR_OK && init != CKR_CRYPTOKI_ALREADY_INITIALIZED) {
          message = "C_Initialize in the child: " + CkRvName(init);
          return 2;
        }
        CK_TOKEN_INFO child_info{};
        const CK_RV rv = f()->C_GetTokenInfo(TheSuite().slot, &child_info);
        if (rv != CKR_OK) {
          message = "C_GetTokenInfo in the child: " + CkRvName(rv);
          return 2;
        }
        message = TokenIdentity(child_info);
        return 0;
      },
      30);
  ASSERT_TRUE(child.exited && child.exit_code == 0) << child.Describe();
  EXPECT_EQ(child.message, first) << "in another process";
}

// --- Interface -----------------------------------------------------------------------------------

TEST_F(Interface, GetFunctionListIsStable) {
  CK_FUNCTION_LIST_PTR first = nullptr, second = nullptr;
  ASSERT_RV(CKR_OK, TheSuite().module.get_function_list(&first));
  ASSERT_RV(CKR_OK, TheSuite().module.get_function_list(&second));
  ASSERT_NE(first, nullptr);
  ASSERT_NE(second, nullptr);
  EXPECT_EQ(std::memcmp(first, second, sizeof(CK_FUNCTION_LIST)), 0)
      << "C_GetFunctionList returned different tables";
  EXPECT_TRUE(first->version.major == 2 || first->version.major == 3)
      << "function list version " << int(first->version.major) << "."
      << int(first->version.minor);
}

TEST_F(Interface, FunctionListHasEveryFunction) {
  // CK_FUNCTION_LIST is the version followed by 68 function pointers in spec order.
  const CK_FUNCTION_LIST* list = f();
  constexpr size_t kCount = (sizeof(CK_FUNCTION_LIST) - offsetof(CK_FUNCTION_LIST, C_Initialize)) /
                            sizeof(void*);
  static_assert(kCount == 68);
  const auto* slots = reinterpret_cast<const unsigned char*>(&list->C_Initialize);
  for (size_t i = 0; i < kCount; ++i) {
    void* entry = nullptr;
    std::memcpy(&entry, slots + i * sizeof(void*), sizeof entry);
    EXPECT_NE(entry, nullptr) << "function list entry " << i << " (after C_Initialize) is NULL";
  }
}

// Probes that hand the module a NULL or bad pointer run in a forked child (like
// Errors.NullArgumentSweep): modules that dereference it (p11-kit's client module does for
// C_GetFunctionList(NULL)) then fail the check with "crashed (signal N)" instead of ending the run.
void ExpectArgumentsBadInChild(const std::string& what, const std::function<CK_RV()>& probe) {
  ChildOutcome child = RunInChild(
      [&](std::string& message) {
        const CK_RV rv = probe();
        message = what + " returned " + CkRvName(rv);
        return rv == CKR_ARGUMENTS_BAD ? 0 : 1;
      },
      30);
  EXPECT_TRUE(child.exited && child.exit_code == 0)
      << what << ": expected CKR_ARGUMENTS_BAD; " << child.Describe();
}

TEST_F(Interface, GetFunctionListNullIsArgumentsBad) {
  ExpectArgumentsBadInChild("C_GetFunctionList(NULL)",
                            [] { return TheSuite().module.get_function_list(nullptr); });
}

TEST_F(Interface, GetInterfaceListTwoCallProtocol) {
  auto get_list = TheSuite().module.get_interface_list;
  if (!get_list) GTEST_SKIP() << "the module does not export C_GetInterfaceList (PKCS#11 < 3.0)";
  CK_ULONG count = 0;
  ASSERT_RV(CKR_OK, get_list(nullptr, &count));
  ASSERT_GE(count, 1u);
  std::vector<CK_INTERFACE> interfaces(count + 2);
  CK_ULONG small = count - 1;
  EXPECT_RV(CKR_BUFFER_TOO_SMALL, get_list(interfaces.data(), &small));
  EXPECT_EQ(small, count);
  CK_ULONG large = count + 2;
  ASSERT_RV(CKR_OK, get_list(interfaces.data(), &large));
  ASSERT_EQ(large, count);
  bool has_pkcs11 = false;
  for (CK_ULONG i = 0; i < count; ++i) {
    ASSERT_NE(interfaces[i].pInterfaceName, nullptr);
    ASSERT_NE(interfaces[i].pFunctionList, nullptr);
    const std::string name(reinterpret_cast<const char*>(interfaces[i].pInterfaceName));
    if (name == "PKCS 11") has_pkcs11 = true;
    EXPECT_EQ(interfaces[i].flags & ~CK_FLAGS(CKF_INTERFACE_FORK_SAFE), 0u)
        << name << ": undefined interface flags";
  }
  EXPECT_TRUE(has_pkcs11) << "no \"PKCS 11\" interface in C_GetInterfaceList";
}

TEST_F(Interface, GetInterfaceReturnsVersion3) {
  auto get = TheSuite().module.get_interface;
  if (!get) GTEST_SKIP() << "the module does not export C_GetInterface (PKCS#11 < 3.0)";
  CK_INTERFACE_PTR def = nullptr;
  ASSERT_RV(CKR_OK, get(nullptr, nullptr, &def, 0));
  ASSERT_NE(def, nullptr);
  ASSERT_NE(def->pFunctionList, nullptr);
  CK_INTERFACE_PTR v3 = nullptr;
  CK_VERSION version{3, 0};
  CK_UTF8CHAR name[] = "PKCS 11";
  ASSERT_RV(CKR_OK, get(name, &version, &v3, 0));
  ASSERT_NE(v3, nullptr);
  auto* list = static_cast<CK_FUNCTION_LIST_3_0*>(v3->pFunctionList);
  ASSERT_NE(list, nullptr);
  EXPECT_EQ(list->version.major, 3);
  EXPECT_EQ(list->version.minor, 0);
  constexpr size_t kCount =
      (sizeof(CK_FUNCTION_LIST_3_0) - offsetof(CK_FUNCTION_LIST_3_0, C_Initialize)) /
      sizeof(void*);
  static_assert(kCount == 92);
  const auto* slots = reinterpret_cast<const unsigned char*>(&list->C_Initialize);
  for (size_t i = 0; i < kCount; ++i) {
    void* entry = nullptr;
    std::memcpy(&entry, slots + i * sizeof(void*), sizeof entry);
    EXPECT_NE(entry, nullptr) << "3.0 function list entry " << i << " is NULL";
  }
}

// --- Init ----------------------------------------------------------------------------------------

CK_RV DummyCreateMutex(CK_VOID_PTR_PTR) { return CKR_OK; }
CK_RV DummyMutex(CK_VOID_PTR) { return CKR_OK; }

TEST_F(Init, CallsBeforeInitializeAreNotInitialized) {
  ASSERT_RV(CKR_OK, Finalize());
  CK_INFO info{};
  EXPECT_RV(CKR_CRYPTOKI_NOT_INITIALIZED, f()->C_GetInfo(&info));
  CK_ULONG count = 0;
  EXPECT_RV(CKR_CRYPTOKI_NOT_INITIALIZED, f()->C_GetSlotList(CK_TRUE, nullptr, &count));
  CK_SLOT_INFO slot_info{};
  EXPECT_RV(CKR_CRYPTOKI_NOT_INITIALIZED, f()->C_GetSlotInfo(slot(), &slot_info));
  CK_TOKEN_INFO token_info{};
  EXPECT_RV(CKR_CRYPTOKI_NOT_INITIALIZED, f()->C_GetTokenInfo(slot(), &token_info));
  EXPECT_RV(CKR_CRYPTOKI_NOT_INITIALIZED, f()->C_GetMechanismList(slot(), nullptr, &count));
  CK_SESSION_HANDLE session = CK_INVALID_HANDLE;
  EXPECT_RV(CKR_CRYPTOKI_NOT_INITIALIZED,
            f()->C_OpenSession(slot(), CKF_SERIAL_SESSION, nullptr, nullptr, &session));
  EXPECT_RV(CKR_CRYPTOKI_NOT_INITIALIZED, f()->C_CloseAllSessions(slot()));
  EXPECT_RV(CKR_CRYPTOKI_NOT_INITIALIZED, f()->C_Finalize(nullptr));
}

TEST_F(Init, DoubleInitializeIsAlreadyInitialized) {
  CK_C_INITIALIZE_ARGS args{};
  args.flags = CKF_OS_LOCKING_OK;
  EXPECT_RV(CKR_CRYPTOKI_ALREADY_INITIALIZED, f()->C_Initialize(&args));
  EXPECT_RV(CKR_CRYPTOKI_ALREADY_INITIALIZED, f()->C_Initialize(nullptr));
}

TEST_F(Init, DoubleFinalizeIsNotInitialized) {
  ASSERT_RV(CKR_OK, Finalize());
  EXPECT_RV(CKR_CRYPTOKI_NOT_INITIALIZED, f()->C_Finalize(nullptr));
}

TEST_F(Init, FinalizeReservedNonNullIsArgumentsBad) {
  // pReserved = (void*)1 is a bad pointer: probed in a child. The child re-initialises first
  // (a module may require that after fork) and then checks the rejected call changed nothing.
  ChildOutcome child = RunInChild(
      [&](std::string& message) {
        CK_C_INITIALIZE_ARGS args{};
        args.flags = CKF_OS_LOCKING_OK;
        ApplyInitArgs(args);
        const CK_RV init = f()->C_Initialize(&args);
        if (init != CKR_OK && init != CKR_CRYPTOKI_ALREADY_INITIALIZED) {
          message = "child C_Initialize: " + CkRvName(init);
          return 2;
        }
        const CK_RV rv = f()->C_Finalize(reinterpret_cast<CK_VOID_PTR>(1));
        message = "C_Finalize((void*)1) returned " + CkRvName(rv);
        if (rv != CKR_ARGUMENTS_BAD) return 1;
        CK_INFO info{};
        const CK_RV after = f()->C_GetInfo(&info);
        if (after != CKR_OK) {
          message += "; then C_GetInfo returned " + CkRvName(after) +
                     " (the rejected C_Finalize finalised the module)";
          return 1;
        }
        return 0;
      },
      30);
  EXPECT_TRUE(child.exited && child.exit_code == 0)
      << "expected CKR_ARGUMENTS_BAD and a module still initialised; " << child.Describe();
}

TEST_F(Init, InitArgsReservedNonNullAccepted) {
  // The spec says pReserved must be NULL; the hosts say otherwise (F49): p11-kit passes its
  // module's x-init-reserved string there, NSS its module parameters (the field NSS calls
  // LibraryParameters). A module that refuses is skipped by p11-kit and so by all of GnuTLS.
  // Accepting is not enough: the module must then work, so one key of each type signs.
  ASSERT_RV(CKR_OK, Finalize());
  char parameters[] = "configdir='sql:/nonexistent' certPrefix='' keyPrefix='' secmod='secmod.db'";
  CK_C_INITIALIZE_ARGS args{};
  args.flags = CKF_OS_LOCKING_OK;
  args.pReserved = parameters;
  const CK_RV rv = f()->C_Initialize(&args);
  if (rv == CKR_OK) {
    ASSERT_RV(CKR_OK, Finalize());
  }
  ASSERT_EQ(CkRvName(rv), CkRvName(CKR_OK))
      << "C_Initialize(CKF_OS_LOCKING_OK, pReserved = a parameter string): p11-kit skips a module "
         "that refuses it ('module failed to initialize, skipping'), and so do GnuTLS and NSS";
  // Now as the run's own initialisation (which may carry --init-args in the same field).
  CK_C_INITIALIZE_ARGS own{};
  own.flags = CKF_OS_LOCKING_OK;
  ASSERT_RV(CKR_OK, Initialize(&own));
  CK_TOKEN_INFO info{};
  ASSERT_RV(CKR_OK, f()->C_GetTokenInfo(slot(), &info));
  const CK_SESSION_HANDLE session = OpenSession();
  ASSERT_NE(session, CK_INVALID_HANDLE);
  auto keys = KeysOrFail(session);
  if (HasFailure()) return;
  for (const auto& [key, recipe] : SigningKeysPerType(keys)) {
    const Status status = SignAndVerify(session, key, recipe, AsBytes("p11-kit initialised me"));
    EXPECT_OK(status) << key.Name();
  }
}

TEST_F(Init, InitArgsPartialMutexCallbacksIsArgumentsBad) {
  ASSERT_RV(CKR_OK, Finalize());
  CK_C_INITIALIZE_ARGS args{};
  args.CreateMutex = DummyCreateMutex;
  args.LockMutex = DummyMutex;
  EXPECT_RV(CKR_ARGUMENTS_BAD, Initialize(&args));
}

TEST_F(Init, InitArgsNoFlagsNoCallbacksSucceeds) {
  ASSERT_RV(CKR_OK, Finalize());
  CK_C_INITIALIZE_ARGS args{};
  EXPECT_RV(CKR_OK, Initialize(&args));
}

TEST_F(Init, InitArgsOsLockingSucceeds) {
  ASSERT_RV(CKR_OK, Finalize());
  CK_C_INITIALIZE_ARGS args{};
  args.flags = CKF_OS_LOCKING_OK;
  EXPECT_RV(CKR_OK, Initialize(&args));
  CK_TOKEN_INFO info{};
  EXPECT_RV(CKR_OK, f()->C_GetTokenInfo(slot(), &info));
}

TEST_F(Init, ReinitializeAfterFinalizeWorks) {
  for (int cycle = 0; cycle < 3; ++cycle) {
    SCOPED_TRACE("cycle " + std::to_string(cycle));
    if (cycle > 0) {
      CK_C_INITIALIZE_ARGS args{};
      args.flags = CKF_OS_LOCKING_OK;
      ASSERT_RV(CKR_OK, Initialize(&args));
    }
    const CK_SESSION_HANDLE session = OpenSession();
    ASSERT_NE(session, CK_INVALID_HANDLE);
    auto keys = KeysOrFail(session);
    if (HasFailure()) return;
    if (keys.empty()) GTEST_SKIP() << "no private keys on the token to sign with";
    const auto signing = SigningKeysPerType(keys);
    if (signing.empty()) GTEST_SKIP() << "no key has an advertised signing mechanism";
    for (const auto& [key, recipe] : signing) {
      const Status status = SignAndVerify(session, key, recipe, AsBytes("reinitialise"));
      EXPECT_OK(status) << key.Name();
    }
    ASSERT_RV(CKR_OK, Finalize());
  }
}

// --- Threads -------------------------------------------------------------------------------------

}  // namespace

Status SignConcurrently(const std::vector<TokenKey>& keys,
                        const std::vector<SignRecipe>& recipes, int threads, int per_thread,
                        bool session_per_signature) {
  CK_FUNCTION_LIST_PTR fl = TheSuite().module.functions;
  std::mutex mutex;
  std::vector<std::string> errors;
  std::atomic<int> signatures{0};
  auto worker = [&](int index) {
    CK_SESSION_HANDLE session = CK_INVALID_HANDLE;
    for (int i = 0; i < per_thread; ++i) {
      if (session == CK_INVALID_HANDLE) {
        const CK_RV rv = fl->C_OpenSession(TheSuite().slot, CKF_SERIAL_SESSION, nullptr, nullptr,
                                           &session);
        if (rv != CKR_OK) {
          std::lock_guard lock(mutex);
          errors.push_back("thread " + std::to_string(index) + ": C_OpenSession: " + CkRvName(rv));
          return;
        }
      }
      const size_t k = static_cast<size_t>(index + i) % keys.size();
      const std::string message = "thread " + std::to_string(index) + " #" + std::to_string(i);
      const Status status = SignAndVerify(session, keys[k], recipes[k], AsBytes(message));
      if (!status.ok()) {
        std::lock_guard lock(mutex);
        errors.push_back(message + ": " + status.ToString());
      } else {
        ++signatures;
      }
      if (session_per_signature) {
        fl->C_CloseSession(session);
        session = CK_INVALID_HANDLE;
      }
    }
    if (session != CK_INVALID_HANDLE) fl->C_CloseSession(session);
  };
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) pool.emplace_back(worker, t);
  for (auto& t : pool) t.join();
  if (!errors.empty()) {
    std::string text = std::to_string(errors.size()) + " of " +
                       std::to_string(threads * per_thread) + " concurrent signatures failed: ";
    for (size_t i = 0; i < errors.size() && i < 5; ++i) text += (i ? "; " : "") + errors[i];
    return InternalError(text);
  }
  Note(std::to_string(signatures.load()) + " signatures from " + std::to_string(threads) +
       " threads verified");
  return Status::Ok();
}

namespace {

TEST_F(Threads, ConcurrentSigningWithOsLocking) {
  const CK_SESSION_HANDLE session = OpenSession();  // holds the login for all threads
  ASSERT_NE(session, CK_INVALID_HANDLE);
  auto all = KeysOrFail(session);
  if (HasFailure()) return;
  std::vector<TokenKey> keys;
  std::vector<SignRecipe> recipes;
  for (const auto& key : all) {
    auto recipe = DefaultRecipe(key);
    if (recipe && std::count_if(keys.begin(), keys.end(), [&](const TokenKey& k) {
                    return k.key_type == key.key_type;
                  }) < 2) {
      keys.push_back(key);
      recipes.push_back(*recipe);
    }
  }
  if (keys.empty()) GTEST_SKIP() << "no private key with an advertised signing mechanism";
  ASSERT_OK(SignConcurrently(keys, recipes, 8, 6, false));
}

TEST_F(Threads, ConcurrentSigningAfterNullInit) {
  // A crash must not take the suite with it: the whole run happens in a child, which initialises
  // the module itself (the parent finalises first so the child starts from scratch).
  ASSERT_RV(CKR_OK, Finalize());
  ChildOutcome child = RunInChild([&](std::string& message) {
    CK_RV rv = f()->C_Initialize(nullptr);
    if (rv != CKR_OK) {
      message = "C_Initialize(NULL): " + CkRvName(rv);
      return 1;
    }
    CK_SESSION_HANDLE session = CK_INVALID_HANDLE;
    rv = f()->C_OpenSession(slot(), CKF_SERIAL_SESSION, nullptr, nullptr, &session);
    if (rv != CKR_OK) {
      message = "C_OpenSession: " + CkRvName(rv);
      return 1;
    }
    if (pin() && LoginRequired()) {
      rv = f()->C_Login(session, CKU_USER, PinBytes(*pin()),
                        static_cast<CK_ULONG>(pin()->size()));
      if (rv != CKR_OK) {
        message = "C_Login: " + CkRvName(rv);
        return 1;
      }
    }
    auto all = ListKeys(session);
    if (!all.ok()) {
      message = all.status().ToString();
      return 1;
    }
    std::vector<TokenKey> keys;
    std::vector<SignRecipe> recipes;
    for (const auto& key : *all) {
      auto recipe = DefaultRecipe(key);
      if (recipe && keys.size() < 4) {
        keys.push_back(key);
        recipes.push_back(*recipe);
      }
    }
    if (keys.empty()) {
      message = "no keys";
      return 3;
    }
    Status status = SignConcurrently(keys, recipes, 8, 6, false);
    if (!status.ok()) {
      message = status.ToString();
      return 1;
    }
    return 0;
  });
  if (child.exited && child.exit_code == 3) GTEST_SKIP() << "no private key to sign with";
  EXPECT_TRUE(child.exited && child.exit_code == 0) << child.Describe();
}

// --- Session -------------------------------------------------------------------------------------

TEST_F(Session, ReadOnlySessionInfo) {
  const CK_SESSION_HANDLE session = OpenSession(false, false);
  ASSERT_NE(session, CK_INVALID_HANDLE);
  CK_SESSION_INFO info{};
  ASSERT_RV(CKR_OK, f()->C_GetSessionInfo(session, &info));
  EXPECT_EQ(info.slotID, slot());
  EXPECT_EQ(info.state, CKS_RO_PUBLIC_SESSION);
  EXPECT_EQ(info.flags, CK_FLAGS(CKF_SERIAL_SESSION));
}

TEST_F(Session, ReadWriteSessionInfo) {
  const CK_SESSION_HANDLE session = OpenSession(true, false);
  ASSERT_NE(session, CK_INVALID_HANDLE);
  CK_SESSION_INFO info{};
  ASSERT_RV(CKR_OK, f()->C_GetSessionInfo(session, &info));
  EXPECT_EQ(info.slotID, slot());
  EXPECT_EQ(info.state, CKS_RW_PUBLIC_SESSION);
  EXPECT_EQ(info.flags, CK_FLAGS(CKF_SERIAL_SESSION | CKF_RW_SESSION));
}

TEST_F(Session, SerialFlagRequired) {
  CK_SESSION_HANDLE session = CK_INVALID_HANDLE;
  EXPECT_RV(CKR_SESSION_PARALLEL_NOT_SUPPORTED,
            f()->C_OpenSession(slot(), 0, nullptr, nullptr, &session));
}

TEST_F(Session, ClosedSessionHandleIsInvalid) {
  const CK_SESSION_HANDLE session = OpenSession(false, false);
  ASSERT_NE(session, CK_INVALID_HANDLE);
  ASSERT_RV(CKR_OK, f()->C_CloseSession(session));
  CK_SESSION_INFO info{};
  EXPECT_RV(CKR_SESSION_HANDLE_INVALID, f()->C_GetSessionInfo(session, &info));
  EXPECT_RV(CKR_SESSION_HANDLE_INVALID, f()->C_CloseSession(session));
}

TEST_F(Session, CloseAllSessionsInvalidatesEveryHandle) {
  std::vector<CK_SESSION_HANDLE> sessions;
  for (int i = 0; i < 4; ++i) {
    sessions.push_back(OpenSession(i % 2 == 0, false));
    ASSERT_NE(sessions.back(), CK_INVALID_HANDLE);
  }
  ASSERT_RV(CKR_OK, f()->C_CloseAllSessions(slot()));
  for (CK_SESSION_HANDLE s : sessions) {
    CK_SESSION_INFO info{};
    EXPECT_RV(CKR_SESSION_HANDLE_INVALID, f()->C_GetSessionInfo(s, &info));
  }
  EXPECT_RV(CKR_SLOT_ID_INVALID, f()->C_CloseAllSessions(slot() + 0x7531));
}

TEST_F(Session, ReadWriteSessionCanSign) {
  const CK_SESSION_HANDLE session = OpenSession(true, true);
  ASSERT_NE(session, CK_INVALID_HANDLE);
  auto keys = KeysOrFail(session);
  if (HasFailure()) return;
  if (keys.empty()) GTEST_SKIP() << "no private keys on the token to sign with";
  int signed_count = 0;
  for (const auto& key : keys) {
    auto recipe = DefaultRecipe(key);
    if (!recipe) continue;
    const Status status = SignAndVerify(session, key, *recipe, AsBytes("read-write"));
    EXPECT_OK(status) << key.Name();
    ++signed_count;
  }
  if (signed_count == 0) GTEST_SKIP() << "no key has an advertised signing mechanism";
}

// --- Login ---------------------------------------------------------------------------------------

TEST_F(Login, WrongPinIsPinIncorrect) {
  const CK_SESSION_HANDLE session = OpenSession(false, false);
  ASSERT_NE(session, CK_INVALID_HANDLE);
  const std::string wrong = *pin() + "x";
  EXPECT_RV(CKR_PIN_INCORRECT, LoginWith(session, wrong));
  EXPECT_EQ(StateOf(session), CKS_RO_PUBLIC_SESSION);
  EXPECT_RV(CKR_OK, LoginWith(session, *pin()));
}

TEST_F(Login, StateIsSharedAcrossSessions) {
  const CK_SESSION_HANDLE ro = OpenSession(false, false);
  const CK_SESSION_HANDLE rw = OpenSession(true, false);
  ASSERT_NE(ro, CK_INVALID_HANDLE);
  ASSERT_NE(rw, CK_INVALID_HANDLE);
  ASSERT_RV(CKR_OK, LoginWith(ro, *pin()));
  EXPECT_EQ(StateOf(ro), CKS_RO_USER_FUNCTIONS);
  EXPECT_EQ(StateOf(rw), CKS_RW_USER_FUNCTIONS);
  const CK_SESSION_HANDLE later = OpenSession(false, false);
  EXPECT_EQ(StateOf(later), CKS_RO_USER_FUNCTIONS) << "a session opened after login";
}

TEST_F(Login, SecondLoginIsAlreadyLoggedIn) {
  const CK_SESSION_HANDLE session = OpenSession(false, false);
  ASSERT_NE(session, CK_INVALID_HANDLE);
  ASSERT_RV(CKR_OK, LoginWith(session, *pin()));
  EXPECT_RV(CKR_USER_ALREADY_LOGGED_IN, LoginWith(session, *pin()));
}

TEST_F(Login, LogoutEndsUserStateAndSecondLogoutFails) {
  const CK_SESSION_HANDLE a = OpenSession(false, false);
  const CK_SESSION_HANDLE b = OpenSession(true, false);
  ASSERT_RV(CKR_OK, LoginWith(a, *pin()));
  ASSERT_RV(CKR_OK, f()->C_Logout(b));
  EXPECT_EQ(StateOf(a), CKS_RO_PUBLIC_SESSION);
  EXPECT_EQ(StateOf(b), CKS_RW_PUBLIC_SESSION);
  EXPECT_RV(CKR_USER_NOT_LOGGED_IN, f()->C_Logout(a));
}

TEST_F(Login, PrivateKeysHiddenBeforeLogin) {
  const CK_SESSION_HANDLE session = OpenSession(false, false);
  ASSERT_NE(session, CK_INVALID_HANDLE);
  ASSERT_OK_AND_ASSIGN(auto objects, FindObjects(session, Template()));
  for (CK_OBJECT_HANDLE object : objects) {
    auto is_private = GetBool(session, object, CKA_PRIVATE);
    ASSERT_OK(is_private);
    EXPECT_FALSE(*is_private) << "object " << object << " has CKA_PRIVATE=TRUE before login";
  }
  ASSERT_RV(CKR_OK, LoginWith(session, *pin()));
  ASSERT_OK_AND_ASSIGN(auto keys, FindObjects(session, Template().AddUlong(CKA_CLASS, CKO_PRIVATE_KEY)));
  Note(std::to_string(objects.size()) + " objects before login, " + std::to_string(keys.size()) +
       " private keys after");
}

TEST_F(Login, OneLoginServesManySignaturesAndSessions) {
  // F33: jsign's second signature failed with CKR_USER_NOT_LOGGED_IN. One login must serve many
  // signatures, in the session that logged in and in others, and must outlive the closing of the
  // session that logged in while another session stays open (the login is per token, not per
  // session: SunPKCS11 closes pooled sessions freely).
  const CK_SESSION_HANDLE login_session = OpenSession(false, false);
  const CK_SESSION_HANDLE other = OpenSession(false, false);
  ASSERT_NE(login_session, CK_INVALID_HANDLE);
  ASSERT_NE(other, CK_INVALID_HANDLE);
  ASSERT_RV(CKR_OK, LoginWith(login_session, *pin()));
  auto keys = KeysOrFail(login_session);
  if (HasFailure()) return;
  const auto signing = SigningKeysPerType(keys);
  if (signing.empty()) GTEST_SKIP() << "no key has an advertised signing mechanism";
  auto sign_three = [&](CK_SESSION_HANDLE session, const char* where) {
    for (const auto& [key, recipe] : signing) {
      for (int i = 0; i < 3; ++i) {
        const Status status = SignAndVerify(session, key, recipe, AsBytes("one login"));
        EXPECT_OK(status) << key.Name() << ", signature " << i + 1 << " " << where;
      }
    }
  };
  sign_three(login_session, "in the session that logged in");
  sign_three(other, "in another session");
  ASSERT_RV(CKR_OK, f()->C_CloseSession(login_session));
  EXPECT_EQ(StateOf(other), CKS_RO_USER_FUNCTIONS)
      << "closing the session that called C_Login logged the token out";
  sign_three(other, "after the session that logged in was closed");
}

TEST_F(Login, WrongPinSetsCountLowFlag) {
  // CKF_USER_PIN_COUNT_LOW: "an incorrect user login PIN has been entered at least once since
  // the last successful authentication" (FINAL_TRY and LOCKED say more); a successful login
  // clears them. Callers warn from these before a lockout. Uses one PIN retry, then logs in.
  const CK_SESSION_HANDLE session = OpenSession(false, false);
  ASSERT_NE(session, CK_INVALID_HANDLE);
  constexpr CK_FLAGS kPinFlags = CKF_USER_PIN_COUNT_LOW | CKF_USER_PIN_FINAL_TRY |
                                 CKF_USER_PIN_LOCKED;
  CK_TOKEN_INFO info{};
  ASSERT_RV(CKR_OK, f()->C_GetTokenInfo(slot(), &info));
  if (info.flags & CKF_USER_PIN_LOCKED) GTEST_SKIP() << "the user PIN is locked";
  ASSERT_RV(CKR_PIN_INCORRECT, LoginWith(session, *pin() + "x"));
  ASSERT_RV(CKR_OK, f()->C_GetTokenInfo(slot(), &info));
  EXPECT_NE(info.flags & kPinFlags, 0u)
      << "after a wrong PIN none of CKF_USER_PIN_COUNT_LOW/FINAL_TRY/LOCKED is set (flags 0x"
      << std::hex << info.flags << ")";
  const bool locked = (info.flags & CKF_USER_PIN_LOCKED) != 0;
  const CK_RV login = LoginWith(session, *pin());
  if (locked) {
    EXPECT_EQ(CkRvName(login), CkRvName(CKR_PIN_LOCKED)) << "the flags say CKF_USER_PIN_LOCKED";
    return;
  }
  ASSERT_RV(CKR_OK, login);
  ASSERT_RV(CKR_OK, f()->C_GetTokenInfo(slot(), &info));
  EXPECT_EQ(info.flags & kPinFlags, 0u)
      << "a successful login did not clear the PIN retry flags (flags 0x" << std::hex
      << info.flags << ")";
}

TEST_F(Login, SoLoginWithReadOnlySessionIsReadOnlyExists) {
  // §5.6.8: with a read-only session open, C_Login(CKU_SO) is CKR_SESSION_READ_ONLY_EXISTS,
  // decided before the PIN is looked at. A module that checks the PIN first would spend an SO
  // PIN retry here, so the hsm profile (vendors' tokens) does not run it.
  if (profile() == Profile::kHsm) {
    GTEST_SKIP() << "not run on an HSM: a module that checks the PIN first would use an SO PIN "
                    "retry";
  }
  const CK_SESSION_HANDLE ro = OpenSession(false, false);
  ASSERT_NE(ro, CK_INVALID_HANDLE);
  const std::string not_the_so_pin = "signum-conformance-not-an-so-pin";
  EXPECT_RV(CKR_SESSION_READ_ONLY_EXISTS,
            f()->C_Login(ro, CKU_SO, PinBytes(not_the_so_pin),
                         static_cast<CK_ULONG>(not_the_so_pin.size())));
}

TEST_F(Login, InvalidUserTypeRejected) {
  const CK_SESSION_HANDLE session = OpenSession(false, false);
  ASSERT_NE(session, CK_INVALID_HANDLE);
  EXPECT_RV(CKR_USER_TYPE_INVALID,
            f()->C_Login(session, 99, PinBytes(*pin()),
                         static_cast<CK_ULONG>(pin()->size())));
}

}  // namespace
}  // namespace signum::conformance

// libsignumpkcs11.so through dlopen with no agent running: everything that must work (or fail
// cleanly) without one. The ABI and its function lists, C_Initialize/C_Finalize semantics, token
// and slot information, mechanisms, sessions, the PIN policy, a read-only token, the NULL-argument
// sweep, fork, the exported symbols, the call trace, and digesting (local: no agent needed).
// Signing is covered end to end in provider_e2e_test.cc against a real agent, server and SoftHSM2.
#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/preprocessor/cat.hpp>
#include <boost/preprocessor/punctuation/comma_if.hpp>
#include <boost/preprocessor/seq/for_each_i.hpp>
#include <boost/preprocessor/tuple/size.hpp>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <thread>

#include "functions.h"
#include "module_test_util.h"
#include "recorded_trace.h"
#include "signum/core/encoding.h"
#include "signum/core/files.h"
#include "signum/testing/temp_dir.h"

namespace signum::pkcs11::testing {
namespace {

using signum::testing::TempDir;

// Every test starts from the same environment: an agent socket that does not exist, no PIN, the
// default label, no trace.
class NoAgentTest : public ::testing::Test {
 protected:
  NoAgentTest()
      : dir_("signum-p11-noagent"),
        socket_("SIGNUM_AGENT_SOCKET", dir_.File("absent.sock")),
        tcp_("SIGNUM_AGENT_TCP", std::nullopt),
        pin_("SIGNUM_PKCS11_PIN", std::nullopt),
        label_("SIGNUM_TOKEN_LABEL", std::nullopt),
        trace_("SIGNUM_PKCS11_TRACE", std::nullopt),
        record_("SIGNUM_PKCS11_RECORD", std::nullopt) {}

  TempDir dir_;
  ScopedEnv socket_, tcp_, pin_, label_, trace_, record_;
};

// --- The ABI -----------------------------------------------------------------------------------

TEST_F(NoAgentTest, FunctionListsAreCompleteAndShareTheirFunctions) {
  Module& m = Module::Get();
  EXPECT_EQ(m.f->version.major, 2);
  EXPECT_EQ(m.f->version.minor, 40);
  EXPECT_EQ(m.f3->version.major, 3);
  EXPECT_EQ(m.f3->version.minor, 0);
  // Every slot of both lists is filled, and the 2.40 list is the 3.0 list's prefix.
  auto* p2 = reinterpret_cast<void* const*>(&m.f->C_Initialize);
  auto* p3 = reinterpret_cast<void* const*>(&m.f3->C_Initialize);
  const size_t n2 =
      (sizeof(CK_FUNCTION_LIST) - offsetof(CK_FUNCTION_LIST, C_Initialize)) / sizeof(void*);
  const size_t n3 =
      (sizeof(CK_FUNCTION_LIST_3_0) - offsetof(CK_FUNCTION_LIST_3_0, C_Initialize)) / sizeof(void*);
  EXPECT_EQ(n2, 68u);
  EXPECT_EQ(n3, 92u);
  for (size_t i = 0; i < n3; ++i) EXPECT_NE(p3[i], nullptr) << i;
  for (size_t i = 0; i < n2; ++i) EXPECT_EQ(p2[i], p3[i]) << i;
  // The list entries are the exported symbols themselves.
  EXPECT_EQ(reinterpret_cast<void*>(m.f3->C_Sign), ::dlsym(m.handle, "C_Sign"));
  EXPECT_EQ(reinterpret_cast<void*>(m.f3->C_MessageVerifyFinal),
            ::dlsym(m.handle, "C_MessageVerifyFinal"));
}

TEST_F(NoAgentTest, InterfacesOffer30And240) {
  CK_ULONG count = 0;
  ASSERT_RV(CKR_OK, F()->C_GetInterfaceList(nullptr, &count));
  ASSERT_EQ(count, 2u);
  CK_INTERFACE list[2];
  CK_ULONG small = 1;
  EXPECT_RV(CKR_BUFFER_TOO_SMALL, F()->C_GetInterfaceList(list, &small));
  EXPECT_EQ(small, 2u);
  ASSERT_RV(CKR_OK, F()->C_GetInterfaceList(list, &count));
  for (const CK_INTERFACE& i : list) {
    EXPECT_STREQ(reinterpret_cast<const char*>(i.pInterfaceName), "PKCS 11");
    EXPECT_EQ(i.flags, 0u);  // not CKF_INTERFACE_FORK_SAFE: children initialise again
  }
  EXPECT_EQ(static_cast<CK_FUNCTION_LIST_3_0_PTR>(list[0].pFunctionList)->version.major, 3);
  EXPECT_EQ(static_cast<CK_FUNCTION_LIST_PTR>(list[1].pFunctionList)->version.minor, 40);

  auto name = reinterpret_cast<CK_UTF8CHAR_PTR>(const_cast<char*>("PKCS 11"));
  CK_INTERFACE_PTR iface = nullptr;
  ASSERT_RV(CKR_OK, F()->C_GetInterface(nullptr, nullptr, &iface, 0));
  EXPECT_EQ(static_cast<CK_FUNCTION_LIST_PTR>(iface->pFunctionList)->version.major, 3);
  CK_VERSION v240{2, 40};
  ASSERT_RV(CKR_OK, F()->C_GetInterface(name, &v240, &iface, 0));
  EXPECT_EQ(iface->pFunctionList, Module::Get().f);
  CK_VERSION v31{3, 1};
  EXPECT_RV(CKR_ARGUMENTS_BAD, F()->C_GetInterface(name, &v31, &iface, 0));
  auto other = reinterpret_cast<CK_UTF8CHAR_PTR>(const_cast<char*>("Vendor"));
  EXPECT_RV(CKR_ARGUMENTS_BAD, F()->C_GetInterface(other, nullptr, &iface, 0));
  EXPECT_RV(CKR_ARGUMENTS_BAD, F()->C_GetInterface(name, nullptr, &iface, CKF_INTERFACE_FORK_SAFE));
  EXPECT_RV(CKR_ARGUMENTS_BAD, F()->C_GetInterface(name, nullptr, nullptr, 0));
  EXPECT_RV(CKR_ARGUMENTS_BAD, F()->C_GetFunctionList(nullptr));
}

TEST_F(NoAgentTest, OnlyCFunctionsAreExported) {
  FILE* nm = ::popen((std::string("nm -D --defined-only ") + kModulePath).c_str(), "r");
  ASSERT_NE(nm, nullptr);
  std::set<std::string> exported;
  char line[1024];
  while (std::fgets(line, sizeof line, nm) != nullptr) {
    std::istringstream fields(line);
    std::string address, type, name;
    fields >> address >> type >> name;
    if (name.empty()) continue;
    EXPECT_EQ(name.rfind("C_", 0), 0u)
        << "exported symbol that is not a PKCS#11 function: " << name;
    exported.insert(name);
  }
  ASSERT_EQ(::pclose(nm), 0);
  std::set<std::string> expected;
#define SIGNUM_TEST_NAME(Name, Since, Support, Args) expected.insert("C_" #Name);
  SIGNUM_PKCS11_FUNCTIONS(SIGNUM_TEST_NAME)
#undef SIGNUM_TEST_NAME
  EXPECT_EQ(exported, expected);
}

// --- C_Initialize / C_Finalize -------------------------------------------------------------------

TEST_F(NoAgentTest, NothingWorksBeforeInitialize) {
  CK_INFO info;
  EXPECT_RV(CKR_CRYPTOKI_NOT_INITIALIZED, F()->C_GetInfo(&info));
  CK_ULONG count = 0;
  EXPECT_RV(CKR_CRYPTOKI_NOT_INITIALIZED, F()->C_GetSlotList(CK_TRUE, nullptr, &count));
  EXPECT_RV(CKR_CRYPTOKI_NOT_INITIALIZED, F()->C_Finalize(nullptr));
  CK_SESSION_HANDLE h;
  EXPECT_RV(CKR_CRYPTOKI_NOT_INITIALIZED,
            F()->C_OpenSession(1, CKF_SERIAL_SESSION, nullptr, nullptr, &h));
  EXPECT_RV(CKR_CRYPTOKI_NOT_INITIALIZED, F()->C_EncryptInit(1, nullptr, 1));  // even stubs
}

TEST_F(NoAgentTest, InitializeArgumentsAsHostsPassThem) {
  // F49: p11-kit and NSS pass parameters in pReserved; it is accepted and never read.
  char parameters[] = "x-init-reserved for p11-kit";
  CK_C_INITIALIZE_ARGS args{};
  args.flags = CKF_OS_LOCKING_OK;
  args.pReserved = parameters;
  EXPECT_RV(CKR_OK, F()->C_Initialize(&args));
  EXPECT_RV(CKR_OK, F()->C_Finalize(nullptr));
  CK_C_INITIALIZE_ARGS single_threaded{};  // flags 0, no callbacks: the caller promises one thread
  EXPECT_RV(CKR_OK, F()->C_Initialize(&single_threaded));
  EXPECT_RV(CKR_OK, F()->C_Finalize(nullptr));

  auto create = [](CK_VOID_PTR_PTR) -> CK_RV { return CKR_OK; };
  auto other = [](CK_VOID_PTR) -> CK_RV { return CKR_OK; };
  CK_C_INITIALIZE_ARGS callbacks{};
  callbacks.CreateMutex = create;
  callbacks.DestroyMutex = other;
  callbacks.LockMutex = other;
  callbacks.UnlockMutex = other;
  // Application mutexes only (no CKF_OS_LOCKING_OK): the module cannot honour that (as p11-kit).
  EXPECT_RV(CKR_CANT_LOCK, F()->C_Initialize(&callbacks));
  CK_C_INITIALIZE_ARGS partial = callbacks;
  partial.UnlockMutex = nullptr;
  EXPECT_RV(CKR_ARGUMENTS_BAD, F()->C_Initialize(&partial));
  callbacks.flags = CKF_OS_LOCKING_OK;
  ASSERT_RV(CKR_OK, F()->C_Initialize(&callbacks));
  EXPECT_RV(CKR_CRYPTOKI_ALREADY_INITIALIZED, F()->C_Initialize(nullptr));
  int dummy = 0;
  EXPECT_RV(CKR_ARGUMENTS_BAD, F()->C_Finalize(&dummy));  // C_Finalize's pReserved stays NULL-only
  EXPECT_RV(CKR_OK, F()->C_Finalize(nullptr));
  EXPECT_RV(CKR_CRYPTOKI_NOT_INITIALIZED, F()->C_Finalize(nullptr));

  CK_C_INITIALIZE_ARGS no_threads{};
  no_threads.flags = CKF_LIBRARY_CANT_CREATE_OS_THREADS;  // fine: the module creates none
  ASSERT_RV(CKR_OK, F()->C_Initialize(&no_threads));
  EXPECT_RV(CKR_OK, F()->C_Finalize(nullptr));
  ASSERT_RV(CKR_OK, F()->C_Initialize(nullptr));
  EXPECT_RV(CKR_OK, F()->C_Finalize(nullptr));
}

TEST_F(NoAgentTest, SessionsDoNotSurviveFinalize) {
  CK_SESSION_HANDLE h;
  {
    Initialized init;
    h = OpenSession();
  }
  Initialized again;
  CK_SESSION_INFO info;
  EXPECT_RV(CKR_SESSION_HANDLE_INVALID, F()->C_GetSessionInfo(h, &info));
}

// --- Library, slot and token ---------------------------------------------------------------------

void ExpectSpacePadded(const CK_UTF8CHAR* field, size_t width, const std::string& text) {
  const std::string f = Field(field, width);
  EXPECT_EQ(f.find('\0'), std::string::npos) << "NUL in \"" << f << "\"";
  ASSERT_LE(text.size(), width);
  EXPECT_EQ(f, text + std::string(width - text.size(), ' '));
}

TEST_F(NoAgentTest, InfoSlotAndTokenAreSpacePadded) {
  Initialized init;
  // F19: straight after C_Initialize, no C_GetSlotList first.
  CK_TOKEN_INFO token;
  ASSERT_RV(CKR_OK, F()->C_GetTokenInfo(1, &token));
  ExpectSpacePadded(token.label, sizeof token.label, "Signum");
  ExpectSpacePadded(token.manufacturerID, sizeof token.manufacturerID, "Signum Harness");
  ExpectSpacePadded(token.model, sizeof token.model, "signum-agent");
  ExpectSpacePadded(token.serialNumber, sizeof token.serialNumber, "1");
  EXPECT_EQ(token.flags &
                (CKF_TOKEN_INITIALIZED | CKF_USER_PIN_INITIALIZED | CKF_RNG | CKF_WRITE_PROTECTED),
            CKF_TOKEN_INITIALIZED | CKF_USER_PIN_INITIALIZED | CKF_RNG | CKF_WRITE_PROTECTED);
  EXPECT_EQ(token.flags & CKF_LOGIN_REQUIRED, 0u);
  EXPECT_EQ(token.flags & CKF_PROTECTED_AUTHENTICATION_PATH, 0u);
  EXPECT_LE(token.ulMinPinLen, token.ulMaxPinLen);
  EXPECT_EQ(token.ulSessionCount, 0u);

  CK_INFO info;
  ASSERT_RV(CKR_OK, F()->C_GetInfo(&info));
  EXPECT_EQ(info.cryptokiVersion.major, 3);
  ExpectSpacePadded(info.manufacturerID, sizeof info.manufacturerID, "Signum Harness");
  ExpectSpacePadded(info.libraryDescription, sizeof info.libraryDescription,
                    "Signum PKCS#11 provider");
  EXPECT_EQ(info.flags, 0u);

  CK_ULONG count = 0;
  ASSERT_RV(CKR_OK, F()->C_GetSlotList(CK_TRUE, nullptr, &count));
  ASSERT_EQ(count, 1u);
  CK_SLOT_ID slots[4];
  CK_ULONG zero = 0;
  EXPECT_RV(CKR_BUFFER_TOO_SMALL, F()->C_GetSlotList(CK_FALSE, slots, &zero));
  EXPECT_EQ(zero, 1u);
  count = 4;
  ASSERT_RV(CKR_OK, F()->C_GetSlotList(CK_TRUE, slots, &count));
  ASSERT_EQ(count, 1u);
  EXPECT_EQ(slots[0], 1u);  // like Signum's own token

  CK_SLOT_INFO slot;
  ASSERT_RV(CKR_OK, F()->C_GetSlotInfo(1, &slot));
  EXPECT_TRUE(slot.flags & CKF_TOKEN_PRESENT);
  ExpectSpacePadded(slot.manufacturerID, sizeof slot.manufacturerID, "Signum Harness");
  EXPECT_EQ(Field(slot.slotDescription, sizeof slot.slotDescription).find('\0'), std::string::npos);
  EXPECT_RV(CKR_SLOT_ID_INVALID, F()->C_GetSlotInfo(0, &slot));
  EXPECT_RV(CKR_SLOT_ID_INVALID, F()->C_GetTokenInfo(2, &token));
}

TEST_F(NoAgentTest, TokenLabelFromTheEnvironmentIsPaddedAndCutAtAUtf8Boundary) {
  const std::string exact(32, 'L');
  {
    ScopedEnv label("SIGNUM_TOKEN_LABEL", exact);
    Initialized init;
    CK_TOKEN_INFO token;
    ASSERT_RV(CKR_OK, F()->C_GetTokenInfo(1, &token));
    EXPECT_EQ(Field(token.label, 32), exact);
  }
  {
    ScopedEnv label("SIGNUM_TOKEN_LABEL", "Build Farm " + std::string(30, 'x'));
    Initialized init;
    CK_TOKEN_INFO token;
    ASSERT_RV(CKR_OK, F()->C_GetTokenInfo(1, &token));
    EXPECT_EQ(Field(token.label, 32), ("Build Farm " + std::string(30, 'x')).substr(0, 32));
  }
  {
    // 31 ASCII bytes + "é" (2 bytes): the cut must not split the character.
    const std::string text = std::string(31, 'a') + "\xC3\xA9";
    ScopedEnv label("SIGNUM_TOKEN_LABEL", text);
    Initialized init;
    CK_TOKEN_INFO token;
    ASSERT_RV(CKR_OK, F()->C_GetTokenInfo(1, &token));
    EXPECT_EQ(Field(token.label, 32), std::string(31, 'a') + " ");
  }
  {
    const std::string text = "Signum \xE2\x9C\x93 token";  // a 3-byte character fits whole
    ScopedEnv label("SIGNUM_TOKEN_LABEL", text);
    Initialized init;
    CK_TOKEN_INFO token;
    ASSERT_RV(CKR_OK, F()->C_GetTokenInfo(1, &token));
    EXPECT_EQ(Field(token.label, 32), text + std::string(32 - text.size(), ' '));
  }
}

TEST_F(NoAgentTest, MechanismListAndInfoAgree) {
  Initialized init;
  CK_ULONG count = 0;
  ASSERT_RV(CKR_OK, F()->C_GetMechanismList(1, nullptr, &count));
  std::vector<CK_MECHANISM_TYPE> list(count);
  CK_ULONG small = 1;
  EXPECT_RV(CKR_BUFFER_TOO_SMALL, F()->C_GetMechanismList(1, list.data(), &small));
  EXPECT_EQ(small, count);
  ASSERT_RV(CKR_OK, F()->C_GetMechanismList(1, list.data(), &count));
  EXPECT_EQ(count, 23u);
  std::set<CK_MECHANISM_TYPE> unique(list.begin(), list.end());
  EXPECT_EQ(unique.size(), list.size()) << "duplicates in the mechanism list (F31)";
  for (CK_MECHANISM_TYPE m : list) {
    CK_MECHANISM_INFO info;
    ASSERT_RV(CKR_OK, F()->C_GetMechanismInfo(1, m, &info)) << MechanismName(m);
    // Each mechanism is either a signature one or a digest one.
    EXPECT_NE((info.flags & CKF_SIGN) != 0, (info.flags & CKF_DIGEST) != 0) << MechanismName(m);
    EXPECT_LE(info.ulMinKeySize, info.ulMaxKeySize);
  }
  for (CK_MECHANISM_TYPE m :
       {CKM_RSA_PKCS, CKM_SHA256_RSA_PKCS, CKM_RSA_PKCS_PSS, CKM_ECDSA, CKM_ECDSA_SHA512}) {
    EXPECT_EQ(unique.count(m), 1u) << MechanismName(m);
  }
  // The digests SunPKCS11 looks for before it offers RSASSA-PSS (as SoftHSM2 lists them).
  for (CK_MECHANISM_TYPE m : {CKM_SHA_1, CKM_SHA224, CKM_SHA256, CKM_SHA384, CKM_SHA512}) {
    EXPECT_EQ(unique.count(m), 1u) << MechanismName(m);
    CK_MECHANISM_INFO info;
    ASSERT_RV(CKR_OK, F()->C_GetMechanismInfo(1, m, &info)) << MechanismName(m);
    EXPECT_EQ(info.flags, static_cast<CK_FLAGS>(CKF_DIGEST)) << MechanismName(m);
    EXPECT_EQ(info.ulMinKeySize, 0u);
    EXPECT_EQ(info.ulMaxKeySize, 0u);
  }
  CK_MECHANISM_INFO info;
  EXPECT_RV(CKR_MECHANISM_INVALID, F()->C_GetMechanismInfo(1, CKM_RSA_X_509, &info));
  EXPECT_RV(CKR_SLOT_ID_INVALID, F()->C_GetMechanismInfo(7, CKM_RSA_PKCS, &info));
}

// --- Sessions, read-only token ---------------------------------------------------------------

TEST_F(NoAgentTest, ReadOnlyAndReadWriteSessionsOpenOnAWriteProtectedToken) {
  Initialized init;
  CK_SESSION_HANDLE ro = OpenSession(false), rw = OpenSession(true);
  EXPECT_NE(ro, rw);
  CK_SESSION_INFO info;
  ASSERT_RV(CKR_OK, F()->C_GetSessionInfo(ro, &info));
  EXPECT_EQ(info.state, CKS_RO_PUBLIC_SESSION);
  EXPECT_EQ(info.slotID, 1u);
  ASSERT_RV(CKR_OK, F()->C_GetSessionInfo(rw, &info));
  EXPECT_EQ(info.state, CKS_RW_PUBLIC_SESSION);
  EXPECT_TRUE(info.flags & CKF_RW_SESSION);
  CK_TOKEN_INFO token;
  ASSERT_RV(CKR_OK, F()->C_GetTokenInfo(1, &token));
  EXPECT_EQ(token.ulSessionCount, 2u);
  EXPECT_EQ(token.ulRwSessionCount, 1u);

  CK_OBJECT_CLASS klass = CKO_DATA;
  CK_ATTRIBUTE tmpl[] = {{CKA_CLASS, &klass, sizeof klass}};
  CK_OBJECT_HANDLE obj;
  EXPECT_RV(CKR_SESSION_READ_ONLY, F()->C_CreateObject(ro, tmpl, 1, &obj));
  EXPECT_RV(CKR_TOKEN_WRITE_PROTECTED, F()->C_CreateObject(rw, tmpl, 1, &obj));  // F18
  CK_MECHANISM gen{CKM_RSA_PKCS_KEY_PAIR_GEN, nullptr, 0};
  CK_OBJECT_HANDLE pub, priv;
  EXPECT_RV(CKR_TOKEN_WRITE_PROTECTED,
            F()->C_GenerateKeyPair(rw, &gen, tmpl, 1, tmpl, 1, &pub, &priv));
  EXPECT_RV(CKR_SESSION_READ_ONLY, F()->C_GenerateKey(ro, &gen, tmpl, 1, &obj));

  CK_SESSION_HANDLE h;
  EXPECT_RV(CKR_SESSION_PARALLEL_NOT_SUPPORTED, F()->C_OpenSession(1, 0, nullptr, nullptr, &h));
  EXPECT_RV(CKR_SLOT_ID_INVALID, F()->C_OpenSession(0, CKF_SERIAL_SESSION, nullptr, nullptr, &h));
  EXPECT_RV(CKR_OK, F()->C_CloseSession(ro));
  EXPECT_RV(CKR_SESSION_HANDLE_INVALID, F()->C_CloseSession(ro));
  EXPECT_RV(CKR_OK, F()->C_CloseAllSessions(1));
  EXPECT_RV(CKR_SESSION_HANDLE_INVALID, F()->C_GetSessionInfo(rw, &info));
}

TEST_F(NoAgentTest, UnsupportedFunctionsSaySo) {
  Initialized init;
  CK_SESSION_HANDLE s = OpenSession();
  CK_MECHANISM m{CKM_SHA256, nullptr, 0};
  EXPECT_RV(CKR_FUNCTION_NOT_SUPPORTED, F()->C_EncryptInit(s, &m, 1));
  CK_ULONG len = 0;
  EXPECT_RV(CKR_FUNCTION_NOT_SUPPORTED, F()->C_GetOperationState(s, nullptr, &len));  // F14
  // Also while an operation (a digest) is active: its state is never exported or imported.
  ASSERT_RV(CKR_OK, F()->C_DigestInit(s, &m));
  EXPECT_RV(CKR_FUNCTION_NOT_SUPPORTED, F()->C_GetOperationState(s, nullptr, &len));
  CK_BYTE state[8] = {};
  EXPECT_RV(CKR_FUNCTION_NOT_SUPPORTED, F()->C_SetOperationState(s, state, sizeof state, 0, 0));
  EXPECT_RV(CKR_FUNCTION_NOT_SUPPORTED, F()->C_MessageSignInit(s, &m, 1));
  CK_BYTE seed[4] = {};
  EXPECT_RV(CKR_RANDOM_SEED_NOT_SUPPORTED, F()->C_SeedRandom(s, seed, 4));
  CK_BYTE random[64] = {};
  ASSERT_RV(CKR_OK, F()->C_GenerateRandom(s, random, sizeof random));
  EXPECT_NE(std::count(random, random + 64, 0), 64);
  EXPECT_RV(CKR_FUNCTION_NOT_PARALLEL, F()->C_GetFunctionStatus(s));
  CK_SLOT_ID slot;
  EXPECT_RV(CKR_NO_EVENT, F()->C_WaitForSlotEvent(CKF_DONT_BLOCK, &slot, nullptr));
}

// --- Digesting: local, no key, no agent, no login ------------------------------------------------

// The reference: OpenSSL's one-shot EVP_Digest by name, not the module's code path (Hasher).
Bytes OpenSslDigest(const char* name, const Bytes& data) {
  const EVP_MD* md = EVP_get_digestbyname(name);
  if (md == nullptr) throw std::runtime_error(std::string("no OpenSSL digest ") + name);
  Bytes out(EVP_MAX_MD_SIZE);
  unsigned int len = 0;
  if (EVP_Digest(data.data(), data.size(), out.data(), &len, md, nullptr) != 1) {
    throw std::runtime_error("EVP_Digest failed");
  }
  out.resize(len);
  return out;
}

struct DigestCase {
  CK_MECHANISM_TYPE mechanism;
  const char* openssl_name;
  size_t size;
};
constexpr DigestCase kDigestCases[] = {{CKM_SHA_1, "SHA1", 20},
                                       {CKM_SHA224, "SHA224", 28},
                                       {CKM_SHA256, "SHA256", 32},
                                       {CKM_SHA384, "SHA384", 48},
                                       {CKM_SHA512, "SHA512", 64}};

Bytes Pattern(size_t n) {
  Bytes b(n);
  for (size_t i = 0; i < n; ++i) b[i] = static_cast<uint8_t>((i * 131 + 7) & 0xff);
  return b;
}

// C_Digest with the two-call protocol.
Bytes SinglePartDigest(CK_SESSION_HANDLE s, CK_MECHANISM_TYPE type, ByteView input) {
  Bytes data(input.begin(), input.end());
  CK_MECHANISM m{type, nullptr, 0};
  EXPECT_RV(CKR_OK, F()->C_DigestInit(s, &m));
  CK_ULONG len = 0;
  EXPECT_RV(CKR_OK, F()->C_Digest(s, data.data(), data.size(), nullptr, &len));
  Bytes out(len);
  EXPECT_RV(CKR_OK, F()->C_Digest(s, data.data(), data.size(), out.data(), &len));
  out.resize(len);
  return out;
}

// C_DigestUpdate in parts of the given sizes (cycled), then C_DigestFinal.
Bytes MultiPartDigest(CK_SESSION_HANDLE s, CK_MECHANISM_TYPE type, Bytes data,
                      const std::vector<size_t>& parts) {
  CK_MECHANISM m{type, nullptr, 0};
  EXPECT_RV(CKR_OK, F()->C_DigestInit(s, &m));
  size_t offset = 0;
  for (size_t i = 0; offset < data.size() || i == 0; ++i) {
    const size_t n = std::min(parts[i % parts.size()], data.size() - offset);
    EXPECT_RV(CKR_OK, F()->C_DigestUpdate(s, n == 0 ? nullptr : data.data() + offset, n));
    offset += n;
  }
  CK_ULONG len = 0;
  EXPECT_RV(CKR_OK, F()->C_DigestFinal(s, nullptr, &len));
  Bytes out(len);
  EXPECT_RV(CKR_OK, F()->C_DigestFinal(s, out.data(), &len));
  out.resize(len);
  return out;
}

TEST_F(NoAgentTest, DigestsMatchOpenSslSingleAndMultiPart) {
  // Checked-PIN mode and no C_Login: digesting needs no key, so no login either.
  ScopedEnv pin_env("SIGNUM_PKCS11_PIN", "1234");
  Initialized init;
  CK_SESSION_HANDLE s = OpenSession();
  for (const DigestCase& c : kDigestCases) {
    for (size_t size : {size_t{0}, size_t{1}, size_t{63}, size_t{64}, size_t{1} << 20}) {
      SCOPED_TRACE(std::string(c.openssl_name) + " over " + std::to_string(size) + " bytes");
      const Bytes data = Pattern(size);
      const Bytes expected = OpenSslDigest(c.openssl_name, data);
      ASSERT_EQ(expected.size(), c.size);
      EXPECT_EQ(HexEncode(SinglePartDigest(s, c.mechanism, data)), HexEncode(expected));
      EXPECT_EQ(HexEncode(MultiPartDigest(s, c.mechanism, data, {size})), HexEncode(expected));
      // Parts that straddle the 64/128-byte block boundaries, including empty parts.
      EXPECT_EQ(HexEncode(MultiPartDigest(s, c.mechanism, data, {1, 0, 63, 64, 4093})),
                HexEncode(expected));
    }
  }
  // A known answer too, in case OpenSSL and the module ever shared a mistake: SHA-256("abc").
  EXPECT_EQ(HexEncode(SinglePartDigest(s, CKM_SHA256, AsBytes("abc"))),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  CK_SESSION_INFO info;
  ASSERT_RV(CKR_OK, F()->C_GetSessionInfo(s, &info));
  EXPECT_EQ(info.state, CKS_RO_PUBLIC_SESSION);
}

TEST_F(NoAgentTest, DigestLengthProtocolKeepsTheOperationUntilSuccess) {
  Initialized init;
  CK_SESSION_HANDLE s = OpenSession();
  Bytes data;
  for (char c : std::string("length protocol")) data.push_back(static_cast<uint8_t>(c));
  const Bytes expected = OpenSslDigest("SHA384", data);
  CK_MECHANISM m{CKM_SHA384, nullptr, 0};

  // C_Digest: NULL buffer -> length; pData may be NULL for the probe.
  ASSERT_RV(CKR_OK, F()->C_DigestInit(s, &m));
  CK_ULONG len = 0;
  EXPECT_RV(CKR_OK, F()->C_Digest(s, nullptr, 0, nullptr, &len));
  EXPECT_EQ(len, 48u);
  Bytes out(64, 0xee);
  len = 47;  // one short: CKR_BUFFER_TOO_SMALL, the length, the buffer untouched, op kept
  EXPECT_RV(CKR_BUFFER_TOO_SMALL, F()->C_Digest(s, data.data(), data.size(), out.data(), &len));
  EXPECT_EQ(len, 48u);
  EXPECT_EQ(out, Bytes(64, 0xee));
  len = out.size();  // a bigger buffer is fine: the length says how much was written
  ASSERT_RV(CKR_OK, F()->C_Digest(s, data.data(), data.size(), out.data(), &len));
  EXPECT_EQ(len, 48u);
  EXPECT_EQ(HexEncode(ByteView(out.data(), len)), HexEncode(expected));
  // Success ended it.
  EXPECT_RV(CKR_OPERATION_NOT_INITIALIZED,
            F()->C_Digest(s, data.data(), data.size(), out.data(), &len));
  EXPECT_RV(CKR_OPERATION_NOT_INITIALIZED, F()->C_DigestFinal(s, out.data(), &len));

  // C_DigestFinal: the same.
  ASSERT_RV(CKR_OK, F()->C_DigestInit(s, &m));
  ASSERT_RV(CKR_OK, F()->C_DigestUpdate(s, data.data(), data.size()));
  len = 0;
  EXPECT_RV(CKR_OK, F()->C_DigestFinal(s, nullptr, &len));
  EXPECT_EQ(len, 48u);
  len = 0;
  EXPECT_RV(CKR_BUFFER_TOO_SMALL, F()->C_DigestFinal(s, out.data(), &len));
  EXPECT_EQ(len, 48u);
  ASSERT_RV(CKR_OK, F()->C_DigestFinal(s, out.data(), &len));
  EXPECT_EQ(HexEncode(ByteView(out.data(), len)), HexEncode(expected));
  EXPECT_RV(CKR_OPERATION_NOT_INITIALIZED, F()->C_DigestFinal(s, out.data(), &len));
  EXPECT_RV(CKR_OPERATION_NOT_INITIALIZED, F()->C_DigestUpdate(s, out.data(), 1));
}

TEST_F(NoAgentTest, DigestOperationRules) {
  Initialized init;
  CK_SESSION_HANDLE s = OpenSession(), other = OpenSession();
  CK_MECHANISM sha256{CKM_SHA256, nullptr, 0}, sha1{CKM_SHA_1, nullptr, 0};
  CK_BYTE out[64];
  CK_ULONG len = sizeof out;
  CK_BYTE abc[] = {'a', 'b', 'c'};

  // Nothing active: CKR_OPERATION_NOT_INITIALIZED everywhere.
  EXPECT_RV(CKR_OPERATION_NOT_INITIALIZED, F()->C_Digest(s, abc, 3, out, &len));
  EXPECT_RV(CKR_OPERATION_NOT_INITIALIZED, F()->C_DigestUpdate(s, abc, 3));
  EXPECT_RV(CKR_OPERATION_NOT_INITIALIZED, F()->C_DigestKey(s, 12345));
  EXPECT_RV(CKR_OPERATION_NOT_INITIALIZED, F()->C_DigestFinal(s, out, &len));

  // Arguments, handles and mechanisms.
  EXPECT_RV(CKR_ARGUMENTS_BAD, F()->C_DigestInit(s, nullptr));
  CK_MECHANISM null_param{CKM_SHA256, nullptr, 4};
  EXPECT_RV(CKR_ARGUMENTS_BAD, F()->C_DigestInit(s, &null_param));
  EXPECT_RV(CKR_SESSION_HANDLE_INVALID, F()->C_DigestInit(0x7777, &sha256));
  EXPECT_RV(CKR_SESSION_HANDLE_INVALID, F()->C_Digest(0x7777, abc, 3, out, &len));
  EXPECT_RV(CKR_SESSION_HANDLE_INVALID, F()->C_DigestUpdate(0x7777, abc, 3));
  EXPECT_RV(CKR_SESSION_HANDLE_INVALID, F()->C_DigestKey(0x7777, 1));
  EXPECT_RV(CKR_SESSION_HANDLE_INVALID, F()->C_DigestFinal(0x7777, out, &len));
  CK_MECHANISM md5{CKM_MD5, nullptr, 0}, sign{CKM_SHA256_RSA_PKCS, nullptr, 0};
  EXPECT_RV(CKR_MECHANISM_INVALID, F()->C_DigestInit(s, &md5));
  EXPECT_RV(CKR_MECHANISM_INVALID, F()->C_DigestInit(s, &sign));
  CK_BYTE param[4] = {};
  CK_MECHANISM with_param{CKM_SHA256, param, sizeof param};
  EXPECT_RV(CKR_MECHANISM_PARAM_INVALID, F()->C_DigestInit(s, &with_param));

  // A second Init: CKR_OPERATION_ACTIVE, and the first operation (SHA-256) is untouched.
  ASSERT_RV(CKR_OK, F()->C_DigestInit(s, &sha256));
  EXPECT_RV(CKR_OPERATION_ACTIVE, F()->C_DigestInit(s, &sha1));
  // Operations are per session: another session digests on its own.
  ASSERT_RV(CKR_OK, F()->C_DigestInit(other, &sha1));
  len = sizeof out;
  ASSERT_RV(CKR_OK, F()->C_Digest(other, abc, 3, out, &len));
  EXPECT_EQ(HexEncode(ByteView(out, len)), HexEncode(OpenSslDigest("SHA1", Bytes(abc, abc + 3))));
  len = sizeof out;
  ASSERT_RV(CKR_OK, F()->C_Digest(s, abc, 3, out, &len));
  EXPECT_EQ(HexEncode(ByteView(out, len)),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");

  // Errors that end the operation.
  auto ended = [&](const char* what) {
    SCOPED_TRACE(what);
    CK_ULONG l = sizeof out;
    EXPECT_RV(CKR_OPERATION_NOT_INITIALIZED, F()->C_DigestFinal(s, out, &l));
  };
  ASSERT_RV(CKR_OK, F()->C_DigestInit(s, &sha256));
  EXPECT_RV(CKR_ARGUMENTS_BAD, F()->C_Digest(s, abc, 3, out, nullptr));
  ended("C_Digest with pulDigestLen NULL");
  ASSERT_RV(CKR_OK, F()->C_DigestInit(s, &sha256));
  len = sizeof out;
  EXPECT_RV(CKR_ARGUMENTS_BAD, F()->C_Digest(s, nullptr, 3, out, &len));
  ended("C_Digest with pData NULL and a length");
  ASSERT_RV(CKR_OK, F()->C_DigestInit(s, &sha256));
  EXPECT_RV(CKR_ARGUMENTS_BAD, F()->C_DigestUpdate(s, nullptr, 3));
  ended("C_DigestUpdate with pPart NULL and a length");
  ASSERT_RV(CKR_OK, F()->C_DigestInit(s, &sha256));
  EXPECT_RV(CKR_ARGUMENTS_BAD, F()->C_DigestFinal(s, out, nullptr));
  ended("C_DigestFinal with pulDigestLen NULL");
  ASSERT_RV(CKR_OK, F()->C_DigestInit(s, &sha256));
  ASSERT_RV(CKR_OK, F()->C_DigestUpdate(s, abc, 3));
  len = sizeof out;
  EXPECT_RV(CKR_OPERATION_NOT_INITIALIZED, F()->C_Digest(s, abc, 3, out, &len));
  ended("C_Digest after C_DigestUpdate");
  ASSERT_RV(CKR_OK, F()->C_DigestInit(s, &sha256));
  EXPECT_RV(CKR_KEY_HANDLE_INVALID, F()->C_DigestKey(s, 12345));
  ended("C_DigestKey with a handle that is no key");
  ASSERT_RV(CKR_OK, F()->C_DigestInit(s, &sha256));
  EXPECT_RV(CKR_OK, F()->C_SessionCancel(s, CKF_DIGEST));
  ended("C_SessionCancel(CKF_DIGEST)");
  // C_SessionCancel for other operations leaves a digest alone.
  ASSERT_RV(CKR_OK, F()->C_DigestInit(s, &sha256));
  EXPECT_RV(CKR_OK, F()->C_SessionCancel(s, CKF_SIGN | CKF_VERIFY | CKF_FIND_OBJECTS));
  len = sizeof out;
  EXPECT_RV(CKR_OK, F()->C_Digest(s, abc, 3, out, &len));

  // A closed session takes its operation with it.
  ASSERT_RV(CKR_OK, F()->C_DigestInit(other, &sha256));
  ASSERT_RV(CKR_OK, F()->C_CloseSession(other));
  EXPECT_RV(CKR_SESSION_HANDLE_INVALID, F()->C_DigestUpdate(other, abc, 3));
}

// --- No agent: a token with no objects, quickly --------------------------------------------------

TEST_F(NoAgentTest, AnAbsentAgentShowsNoObjectsAndDoesNotHang) {
  Initialized init;
  CK_SESSION_HANDLE s = OpenSession();
  const auto start = std::chrono::steady_clock::now();
  EXPECT_TRUE(Find(s, {}).empty());
  CK_OBJECT_CLASS klass = CKO_PRIVATE_KEY;
  EXPECT_TRUE(Find(s, {{CKA_CLASS, &klass, sizeof klass}}).empty());
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(2));
  CK_TOKEN_INFO token;
  EXPECT_RV(CKR_OK, F()->C_GetTokenInfo(1, &token));
  // Handles that were never issued are invalid.
  CK_ATTRIBUTE a{CKA_LABEL, nullptr, 0};
  EXPECT_RV(CKR_OBJECT_HANDLE_INVALID, F()->C_GetAttributeValue(s, 12345, &a, 1));
  CK_MECHANISM m{CKM_ECDSA, nullptr, 0};
  EXPECT_RV(CKR_KEY_HANDLE_INVALID, F()->C_SignInit(s, &m, 12345));
  EXPECT_RV(CKR_KEY_HANDLE_INVALID, F()->C_SignInit(s, &m, s));  // a session handle is no key
}

TEST_F(NoAgentTest, ABrokenTcpConfigurationAlsoShowsNoObjects) {
  ScopedEnv socket("SIGNUM_AGENT_SOCKET", std::nullopt);
  ScopedEnv tcp("SIGNUM_AGENT_TCP", "127.0.0.1:1");
  ScopedEnv secret("SIGNUM_AGENT_SECRET_FILE", dir_.File("missing-secret"));
  Initialized init;
  CK_SESSION_HANDLE s = OpenSession();
  EXPECT_TRUE(Find(s, {}).empty());
}

// --- Login policy -------------------------------------------------------------------------------

TEST_F(NoAgentTest, WithoutAConfiguredPinAnyPinLogsIn) {
  Initialized init;
  CK_SESSION_HANDLE s = OpenSession();
  auto pin = reinterpret_cast<CK_UTF8CHAR_PTR>(const_cast<char*>("whatever"));
  EXPECT_RV(CKR_ARGUMENTS_BAD, F()->C_Login(s, CKU_USER, nullptr, 0));
  // SO: a read-only session is open, which decides first (§5.6.8); from R/W sessions only, the
  // token has no SO at all.
  EXPECT_RV(CKR_SESSION_READ_ONLY_EXISTS, F()->C_Login(s, CKU_SO, pin, 8));
  CK_SESSION_HANDLE rw = CK_INVALID_HANDLE;
  ASSERT_RV(CKR_OK, F()->C_CloseSession(s));
  ASSERT_RV(CKR_OK, F()->C_OpenSession(1, CKF_SERIAL_SESSION | CKF_RW_SESSION, nullptr, nullptr,
                                       &rw));
  EXPECT_RV(CKR_PIN_LOCKED, F()->C_Login(rw, CKU_SO, pin, 8));
  ASSERT_RV(CKR_OK, F()->C_CloseSession(rw));
  s = OpenSession();
  EXPECT_RV(CKR_USER_TYPE_INVALID, F()->C_Login(s, 42, pin, 8));
  // No operation active: context-specific login is "improper use" (F24).
  EXPECT_RV(CKR_OPERATION_NOT_INITIALIZED, F()->C_Login(s, CKU_CONTEXT_SPECIFIC, pin, 8));
  EXPECT_RV(CKR_USER_NOT_LOGGED_IN, F()->C_Logout(s));
  ASSERT_RV(CKR_OK, F()->C_Login(s, CKU_USER, pin, 8));
  EXPECT_RV(CKR_USER_ALREADY_LOGGED_IN, F()->C_Login(s, CKU_USER, pin, 8));
  CK_SESSION_INFO info;
  ASSERT_RV(CKR_OK, F()->C_GetSessionInfo(s, &info));
  EXPECT_EQ(info.state, CKS_RO_USER_FUNCTIONS);
  // Login state is per application: a new session is logged in too.
  CK_SESSION_HANDLE s2 = OpenSession(true);
  ASSERT_RV(CKR_OK, F()->C_GetSessionInfo(s2, &info));
  EXPECT_EQ(info.state, CKS_RW_USER_FUNCTIONS);
  EXPECT_RV(CKR_OK, F()->C_Logout(s));
  ASSERT_RV(CKR_OK, F()->C_GetSessionInfo(s2, &info));
  EXPECT_EQ(info.state, CKS_RW_PUBLIC_SESSION);
  // C_LoginUser without a user name is C_Login.
  EXPECT_RV(CKR_OK, F()->C_LoginUser(s, CKU_USER, pin, 8, nullptr, 0));
  // Closing the last session logs out.
  EXPECT_RV(CKR_OK, F()->C_CloseAllSessions(1));
  CK_SESSION_HANDLE s3 = OpenSession();
  ASSERT_RV(CKR_OK, F()->C_GetSessionInfo(s3, &info));
  EXPECT_EQ(info.state, CKS_RO_PUBLIC_SESSION);
}

TEST_F(NoAgentTest, AConfiguredPinIsChecked) {
  ScopedEnv pin_env("SIGNUM_PKCS11_PIN", "correct horse");
  Initialized init;
  CK_TOKEN_INFO token;
  ASSERT_RV(CKR_OK, F()->C_GetTokenInfo(1, &token));
  EXPECT_TRUE(token.flags & CKF_LOGIN_REQUIRED);
  CK_SESSION_HANDLE s = OpenSession();
  auto wrong = reinterpret_cast<CK_UTF8CHAR_PTR>(const_cast<char*>("correct horsf"));
  auto right = reinterpret_cast<CK_UTF8CHAR_PTR>(const_cast<char*>("correct horse"));
  EXPECT_RV(CKR_PIN_INCORRECT, F()->C_Login(s, CKU_USER, wrong, 13));
  EXPECT_RV(CKR_PIN_INCORRECT, F()->C_Login(s, CKU_USER, right, 12));
  EXPECT_RV(CKR_PIN_INCORRECT, F()->C_Login(s, CKU_USER, right, 0));
  EXPECT_RV(CKR_OK, F()->C_Login(s, CKU_USER, right, 13));
}

// --- NULL arguments
// --------------------------------------------------------------------------------

// Every function with every argument zero (NULL pointers, handle 0, count 0) must return an error
// and never crash (F32). Generated from the same table as the module, so no function is missed.
#define SIGNUM_TEST_ZERO_ARGS(Args) BOOST_PP_SEQ_FOR_EACH_I(SIGNUM_TEST_ZERO_, ~, Args)
#define SIGNUM_TEST_ZERO_(r, data, i, elem) \
  BOOST_PP_COMMA_IF(i) BOOST_PP_CAT(SIGNUM_TEST_ZERO_, BOOST_PP_TUPLE_SIZE(elem)) elem
#define SIGNUM_TEST_ZERO_3(k, t1, n1) \
  t1 {}
#define SIGNUM_TEST_ZERO_5(k, t1, n1, t2, n2) \
  t1{}, t2 {}
#define SIGNUM_TEST_ZERO_7(k, t1, n1, t2, n2, t3, n3) \
  t1{}, t2{}, t3 {}

std::map<std::string, CK_RV> CallEverythingWithZeros() {
  std::map<std::string, CK_RV> results;
  CK_FUNCTION_LIST_3_0_PTR f = F();
#define SIGNUM_TEST_CALL(Name, Since, Support, Args)                            \
  if (std::string(#Name) != "Initialize" && std::string(#Name) != "Finalize") { \
    results["C_" #Name] = f->C_##Name(SIGNUM_TEST_ZERO_ARGS(Args));             \
  }
  SIGNUM_PKCS11_FUNCTIONS(SIGNUM_TEST_CALL)
#undef SIGNUM_TEST_CALL
  return results;
}

TEST_F(NoAgentTest, EveryFunctionSurvivesAllZeroArguments) {
  for (bool initialised : {false, true}) {
    std::optional<Initialized> init;
    if (initialised) init.emplace();
    for (const auto& [name, rv] : CallEverythingWithZeros()) {
      SCOPED_TRACE(name + (initialised ? " (initialised)" : " (not initialised)"));
      EXPECT_NE(rv, CKR_OK);
      EXPECT_NE(rv, CKR_GENERAL_ERROR);
      if (!initialised && name != "C_GetFunctionList" && name != "C_GetInterfaceList" &&
          name != "C_GetInterface") {
        EXPECT_RV(CKR_CRYPTOKI_NOT_INITIALIZED, rv);
      }
    }
  }
}

TEST_F(NoAgentTest, NullPointersWithValidHandlesAreArgumentsBad) {
  Initialized init;
  CK_SESSION_HANDLE s = OpenSession(true);
  CK_ULONG n = 1;
  CK_OBJECT_HANDLE obj;
  CK_MECHANISM mech{CKM_RSA_PKCS, nullptr, 0};
  CK_ATTRIBUTE attr{CKA_CLASS, nullptr, 0};
  EXPECT_RV(CKR_ARGUMENTS_BAD, F()->C_GetInfo(nullptr));
  EXPECT_RV(CKR_ARGUMENTS_BAD, F()->C_GetSlotList(CK_TRUE, nullptr, nullptr));
  EXPECT_RV(CKR_ARGUMENTS_BAD, F()->C_GetSlotInfo(1, nullptr));
  EXPECT_RV(CKR_ARGUMENTS_BAD, F()->C_GetTokenInfo(1, nullptr));
  EXPECT_RV(CKR_ARGUMENTS_BAD, F()->C_GetMechanismList(1, nullptr, nullptr));
  EXPECT_RV(CKR_ARGUMENTS_BAD, F()->C_GetMechanismInfo(1, CKM_RSA_PKCS, nullptr));
  EXPECT_RV(CKR_ARGUMENTS_BAD,
            F()->C_OpenSession(1, CKF_SERIAL_SESSION, nullptr, nullptr, nullptr));
  EXPECT_RV(CKR_ARGUMENTS_BAD, F()->C_GetSessionInfo(s, nullptr));
  EXPECT_RV(CKR_ARGUMENTS_BAD, F()->C_Login(s, CKU_USER, nullptr, 4));
  EXPECT_RV(CKR_ARGUMENTS_BAD, F()->C_CreateObject(s, nullptr, 1, &obj));
  EXPECT_RV(CKR_ARGUMENTS_BAD, F()->C_CreateObject(s, &attr, 1, nullptr));
  EXPECT_RV(CKR_ARGUMENTS_BAD, F()->C_CopyObject(s, 1, nullptr, 1, &obj));
  EXPECT_RV(CKR_ARGUMENTS_BAD, F()->C_GetObjectSize(s, 1, nullptr));
  EXPECT_RV(CKR_ARGUMENTS_BAD, F()->C_GetAttributeValue(s, 1, nullptr, 1));
  EXPECT_RV(CKR_ARGUMENTS_BAD, F()->C_SetAttributeValue(s, 1, nullptr, 1));
  EXPECT_RV(CKR_ARGUMENTS_BAD, F()->C_FindObjectsInit(s, nullptr, 1));
  CK_ATTRIBUTE null_value{CKA_LABEL, nullptr, 5};
  EXPECT_RV(CKR_ARGUMENTS_BAD, F()->C_FindObjectsInit(s, &null_value, 1));
  ASSERT_RV(CKR_OK, F()->C_FindObjectsInit(s, nullptr, 0));
  EXPECT_RV(CKR_ARGUMENTS_BAD, F()->C_FindObjects(s, nullptr, 1, &n));
  EXPECT_RV(CKR_ARGUMENTS_BAD, F()->C_FindObjects(s, &obj, 1, nullptr));
  EXPECT_RV(CKR_OK, F()->C_FindObjectsFinal(s));
  EXPECT_RV(CKR_ARGUMENTS_BAD, F()->C_SignInit(s, nullptr, 1));
  CK_MECHANISM bad_param{CKM_RSA_PKCS_PSS, nullptr, 40};
  EXPECT_RV(CKR_ARGUMENTS_BAD, F()->C_SignInit(s, &bad_param, 1));
  EXPECT_RV(CKR_ARGUMENTS_BAD, F()->C_VerifyInit(s, nullptr, 1));
  EXPECT_RV(CKR_ARGUMENTS_BAD, F()->C_GenerateKey(s, nullptr, nullptr, 0, &obj));
  EXPECT_RV(CKR_ARGUMENTS_BAD, F()->C_GenerateKey(s, &mech, nullptr, 0, nullptr));
  EXPECT_RV(CKR_ARGUMENTS_BAD,
            F()->C_GenerateKeyPair(s, &mech, nullptr, 0, nullptr, 0, nullptr, &obj));
  EXPECT_RV(CKR_ARGUMENTS_BAD, F()->C_GenerateRandom(s, nullptr, 16));
  EXPECT_RV(CKR_ARGUMENTS_BAD, F()->C_SeedRandom(s, nullptr, 16));
  EXPECT_RV(CKR_ARGUMENTS_BAD, F()->C_WaitForSlotEvent(CKF_DONT_BLOCK, nullptr, nullptr));
  EXPECT_RV(CKR_ARGUMENTS_BAD, F()->C_LoginUser(s, CKU_USER, nullptr, 0, nullptr, 0));
  EXPECT_RV(CKR_ARGUMENTS_BAD, F()->C_GetInterfaceList(nullptr, nullptr));
  // Signing functions without an operation: the operation check comes first (they may end it).
  EXPECT_RV(CKR_OPERATION_NOT_INITIALIZED, F()->C_Sign(s, nullptr, 0, nullptr, nullptr));
  EXPECT_RV(CKR_OPERATION_NOT_INITIALIZED, F()->C_SignFinal(s, nullptr, nullptr));
  EXPECT_RV(CKR_OPERATION_NOT_INITIALIZED, F()->C_Verify(s, nullptr, 0, nullptr, 0));
}

// --- Threads and fork
// --------------------------------------------------------------------------------

TEST_F(NoAgentTest, ConcurrentSessionsAfterInitializeWithNullArgs) {
  Initialized init;  // NULL args: the module still locks (F15)
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < 16; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 200; ++i) {
        CK_SESSION_HANDLE h;
        if (F()->C_OpenSession(1, CKF_SERIAL_SESSION, nullptr, nullptr, &h) != CKR_OK) ++failures;
        CK_TOKEN_INFO token;
        if (F()->C_GetTokenInfo(1, &token) != CKR_OK) ++failures;
        CK_ULONG count = 0;
        if (F()->C_FindObjectsInit(h, nullptr, 0) != CKR_OK) ++failures;
        CK_OBJECT_HANDLE o;
        if (F()->C_FindObjects(h, &o, 1, &count) != CKR_OK) ++failures;
        if (F()->C_FindObjectsFinal(h) != CKR_OK) ++failures;
        if (F()->C_CloseSession(h) != CKR_OK) ++failures;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0);
}

// The child reports failures through its exit status (gtest assertions do not cross fork()).
int ChildAfterFork(CK_SESSION_HANDLE inherited) {
  int failures = 0;
  CK_INFO info;
  CK_SESSION_INFO session_info;
  if (F()->C_GetInfo(&info) != CKR_CRYPTOKI_NOT_INITIALIZED) failures |= 1;
  if (F()->C_GetSessionInfo(inherited, &session_info) != CKR_CRYPTOKI_NOT_INITIALIZED)
    failures |= 2;
  if (F()->C_Finalize(nullptr) != CKR_CRYPTOKI_NOT_INITIALIZED) failures |= 4;
  if (F()->C_Initialize(nullptr) != CKR_OK) failures |= 8;
  if (F()->C_GetSessionInfo(inherited, &session_info) != CKR_SESSION_HANDLE_INVALID) failures |= 16;
  CK_SESSION_HANDLE h;
  if (F()->C_OpenSession(1, CKF_SERIAL_SESSION, nullptr, nullptr, &h) != CKR_OK) failures |= 32;
  if (F()->C_Finalize(nullptr) != CKR_OK) failures |= 64;
  return failures;
}

TEST_F(NoAgentTest, AForkedChildMustInitializeAgainAndTheParentIsUndisturbed) {
  Initialized init;
  CK_SESSION_HANDLE s = OpenSession();
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) ::_exit(ChildAfterFork(s));
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0) << "child failure bits " << WEXITSTATUS(status);
  CK_SESSION_INFO info;
  EXPECT_RV(CKR_OK, F()->C_GetSessionInfo(s, &info));
  CK_INFO lib;
  EXPECT_RV(CKR_OK, F()->C_GetInfo(&lib));
}

// --- Trace
// ------------------------------------------------------------------------------------------

TEST_F(NoAgentTest, TraceRecordsCallsButNeverThePin) {
  const std::string file = dir_.File("trace.log");
  {
    ScopedEnv trace("SIGNUM_PKCS11_TRACE", file);
    Initialized init;
    CK_SESSION_HANDLE s = OpenSession();
    const std::string secret = "s3cr3t-PIN-value";
    auto pin = reinterpret_cast<CK_UTF8CHAR_PTR>(const_cast<char*>(secret.c_str()));
    EXPECT_RV(CKR_OK, F()->C_Login(s, CKU_USER, pin, secret.size()));
    EXPECT_TRUE(Find(s, {}).empty());
    CK_ATTRIBUTE a{CKA_LABEL, nullptr, 0};
    EXPECT_RV(CKR_OBJECT_HANDLE_INVALID, F()->C_GetAttributeValue(s, 99, &a, 1));
  }
  {
    // Tracing follows the environment at C_Initialize: off again now.
    Initialized init;
    CK_TOKEN_INFO token;
    EXPECT_RV(CKR_OK, F()->C_GetTokenInfo(1, &token));
  }
  const std::string text = ReadFile(file).value();
  EXPECT_NE(text.find("C_Initialize ["), std::string::npos) << text;
  EXPECT_NE(text.find("  IN: pInitArgs = NULL"), std::string::npos) << text;
  EXPECT_NE(text.find("C_Initialize = CKR_OK"), std::string::npos) << text;
  EXPECT_NE(text.find("pid=" + std::to_string(::getpid())), std::string::npos) << text;
  EXPECT_NE(text.find("  IN: userType = CKU_USER"), std::string::npos) << text;
  EXPECT_NE(text.find("  IN: pPin = <16 bytes>"), std::string::npos) << text;
  EXPECT_EQ(text.find("s3cr3t"), std::string::npos) << "the PIN leaked into the trace";
  EXPECT_NE(text.find("C_Login = CKR_OK"), std::string::npos) << text;
  EXPECT_NE(text.find("C_GetAttributeValue = CKR_OBJECT_HANDLE_INVALID"), std::string::npos)
      << text;
  EXPECT_NE(text.find("  ERROR: "), std::string::npos) << text;
  // Why the search found nothing is in the record.
  EXPECT_NE(text.find("  NOTE: UNAVAILABLE"), std::string::npos) << text;
  EXPECT_NE(text.find("absent.sock"), std::string::npos) << text;
  EXPECT_EQ(text.find("C_GetTokenInfo"), std::string::npos)
      << "traced after tracing was switched off";
}

// SIGNUM_PKCS11_RECORD follows the environment at each C_Initialize like the text trace; a forked
// child that initialises again appends to the same file under its own pid (one header); a file
// that cannot be opened fails no call.
TEST_F(NoAgentTest, RecordFollowsEachInitializeAndAForkedChildAppendsToTheSameTrace) {
  const std::string first = dir_.File("first.jsonl"), second = dir_.File("second.jsonl");
  pid_t child = 0;
  {
    ScopedEnv record("SIGNUM_PKCS11_RECORD", first);
    Initialized init;
    CK_SESSION_HANDLE s = OpenSession();
    EXPECT_TRUE(Find(s, {}).empty());
    child = ::fork();
    ASSERT_GE(child, 0);
    if (child == 0) ::_exit(ChildAfterFork(s));
    int status = 0;
    ASSERT_EQ(::waitpid(child, &status, 0), child);
    ASSERT_TRUE(WIFEXITED(status));
    EXPECT_EQ(WEXITSTATUS(status), 0) << "child failure bits " << WEXITSTATUS(status);
  }
  {
    ScopedEnv record("SIGNUM_PKCS11_RECORD", second);
    Initialized init;
    CK_TOKEN_INFO token;
    EXPECT_RV(CKR_OK, F()->C_GetTokenInfo(1, &token));
  }
  {
    ScopedEnv record("SIGNUM_PKCS11_RECORD", dir_.File("no-such-dir/trace.jsonl"));
    Initialized init;
    CK_INFO info;
    EXPECT_RV(CKR_OK, F()->C_GetInfo(&info));
  }

  const RecordedTrace parent_and_child = ReadRecordedTrace(first);
  EXPECT_EQ(parent_and_child.header["pid"], static_cast<long>(::getpid()));
  std::map<long, std::vector<std::string>> by_pid;
  for (const auto& call : parent_and_child.calls) {
    by_pid[call["pid"].get<long>()].push_back(call["fn"].get<std::string>());
  }
  ASSERT_EQ(by_pid.count(child), 1u) << parent_and_child.bytes;
  EXPECT_EQ(by_pid[child],
            (std::vector<std::string>{"C_GetInfo", "C_GetSessionInfo", "C_Finalize", "C_Initialize",
                                      "C_GetSessionInfo", "C_OpenSession", "C_Finalize"}));
  EXPECT_EQ(by_pid[::getpid()].front(), "C_Initialize");
  EXPECT_EQ(by_pid[::getpid()].back(), "C_Finalize");
  // Why the search found nothing: the note the module knows.
  const auto searches = parent_and_child.Calls("C_FindObjectsInit", CKR_OK);
  ASSERT_EQ(searches.size(), 1u);
  EXPECT_NE(searches[0].value("note", "").find("absent.sock"), std::string::npos) << searches[0];
  // A failure carries its reason (the child's calls before its C_Initialize).
  const auto refused = parent_and_child.Calls("C_GetInfo", CKR_CRYPTOKI_NOT_INITIALIZED);
  ASSERT_EQ(refused.size(), 1u);
  EXPECT_FALSE(refused[0].value("error", "").empty()) << refused[0];

  const RecordedTrace after = ReadRecordedTrace(second);
  EXPECT_EQ(after.Functions(),
            (std::vector<std::string>{"C_Initialize", "C_GetTokenInfo", "C_Finalize"}));
}

}  // namespace
}  // namespace signum::pkcs11::testing

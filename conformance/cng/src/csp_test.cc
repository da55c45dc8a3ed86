// signum_cng_csp_test: layer (c) of the CNG conformance suite. signumcsp.dll driven through
// Wine's REAL advapi32 and crypt32 (CryptAcquireContext, CryptGetUserKey, CryptSignHash,
// CryptSignMessage with CERT_KEY_PROV_INFO), against a real signum-agent. The suite registers the
// CSP in its (throwaway) Wine prefix under both its names (kCspName as PROV_RSA_FULL, kCspAesName
// as PROV_RSA_AES), unregisters it at the end and checks both are gone.
//
// Every signature is written to SIGNUM_CNG_OUTPUT_DIR/manifest.tsv with its message and
// certificate (rsa-pkcs1-le for CryptSignHash output, cms for CryptSignMessage); run-wine-suite.sh
// verifies each one with native OpenSSL. Wine is the caller, never the judge: the tests here check
// return codes and CryptoAPI conventions.
//
// Where advapi32 validates a handle before the CSP sees it (Wine dereferences HCRYPTPROV as its
// own structure), bad handles are tested by calling the DLL's CP* exports directly.
//
// Environment (run-wine-suite.sh): SIGNUM_AGENT_TCP, SIGNUM_AGENT_SECRET_FILE,
// SIGNUM_CNG_OUTPUT_DIR, SIGNUM_CNG_BIN_DIR (where signumcsp.dll is).
#include <windows.h>
// wincrypt.h needs windows.h's types first.
#include <gtest/gtest.h>
#include <wincrypt.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstring>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "signum/agent/agent_client.h"
#include "signum/cng/csp_iface.h"
#include "signum/cng/names.h"
#include "signum/cng/registration.h"
#include "signum/provider/wide_string.h"
#include "signum/testing/status_matchers.h"
#include "suite_support.h"

namespace signum::cng {
namespace {

using ::signum::testing::StatusIs;

using provider::Utf8FromWide;

constexpr char kChildModeVariable[] = "SIGNUM_CSP_TEST_CHILD";
constexpr char kChildAgentUnreachable[] = "agent-unreachable";

// The hashes CryptoAPI callers use, spelled from wincrypt.h (the test's own expectations).
struct HashCase {
  ALG_ID alg_id;
  const char* name;  // manifest / openssl name
  DWORD size;
  const char* oid;
};
constexpr HashCase kHashes[] = {
    {CALG_SHA1, "sha1", 20, szOID_OIWSEC_sha1},
    {CALG_SHA_256, "sha256", 32, szOID_NIST_sha256},
    {CALG_SHA_384, "sha384", 48, "2.16.840.1.101.3.4.2.2"},
    {CALG_SHA_512, "sha512", 64, szOID_NIST_sha512},
};

std::string Upper(std::string text) {
  std::transform(text.begin(), text.end(), text.begin(),
                 [](unsigned char c) { return std::toupper(c); });
  return text;
}

// ok must be FALSE with GetLastError() == expected (read right after the call).
::testing::AssertionResult FailsWith(BOOL ok, HRESULT expected_code) {
  const DWORD error = GetLastError();
  const DWORD expected = static_cast<DWORD>(expected_code);
  if (ok)
    return ::testing::AssertionFailure() << "succeeded; expected " << Win32ErrorName(expected);
  if (error != expected) {
    return ::testing::AssertionFailure()
           << "failed with " << Win32ErrorName(error) << ", expected " << Win32ErrorName(expected);
  }
  return ::testing::AssertionSuccess();
}
::testing::AssertionResult Succeeds(BOOL ok) {
  const DWORD error = GetLastError();
  if (ok) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "failed with " << Win32ErrorName(error);
}

// --- RAII for CryptoAPI handles (released in reverse order of declaration) ---
struct ProviderHandle {
  HCRYPTPROV h = 0;
  ~ProviderHandle() {
    if (h != 0) CryptReleaseContext(h, 0);
  }
};
struct HashHandle {
  HCRYPTHASH h = 0;
  ~HashHandle() {
    if (h != 0) CryptDestroyHash(h);
  }
};
struct KeyHandle {
  HCRYPTKEY h = 0;
  ~KeyHandle() {
    if (h != 0) CryptDestroyKey(h);
  }
};
struct CertificateHandle {
  PCCERT_CONTEXT h = nullptr;
  ~CertificateHandle() {
    if (h != nullptr) CertFreeCertificateContext(h);
  }
};

// --- What the agent lists (read independently of the CSP, through the agent client) ---
struct AgentCertificate {
  std::string id, label;
  KeyType type = KeyType::kRsa;
  int bits = 0;
  Bytes der;
  std::vector<Bytes> chain_der;  // issuing CA first, root last
};

struct Suite {
  bool child = false;
  std::string skip_reason;
  std::string output_dir;
  std::wstring dll_path;
  std::vector<AgentCertificate> rsa;  // in the agent's order
  std::vector<AgentCertificate> ec;
  bool registered = false;
};
Suite& TheSuite() {
  static Suite suite;
  return suite;
}

class CspEnvironment : public ::testing::Environment {
 public:
  void SetUp() override {
    Suite& suite = TheSuite();
    suite.child = !EnvironmentValue(kChildModeVariable).empty();
    if (suite.child) return;  // the parent registered the CSP and unregisters it
    if (EnvironmentValue("SIGNUM_AGENT_TCP").empty() ||
        EnvironmentValue("SIGNUM_CNG_OUTPUT_DIR").empty() ||
        EnvironmentValue("SIGNUM_CNG_BIN_DIR").empty()) {
      suite.skip_reason =
          "SIGNUM_AGENT_TCP / SIGNUM_CNG_OUTPUT_DIR / SIGNUM_CNG_BIN_DIR not set: this program is "
          "driven by conformance/cng/run-wine-suite.sh";
      return;
    }
    suite.output_dir = EnvironmentValue("SIGNUM_CNG_OUTPUT_DIR");
    suite.dll_path = ProviderDllPath(kCspDllName);

    auto endpoint = agent::AgentEndpointFromEnvironment();
    ASSERT_OK(endpoint);
    endpoint->unix_socket.clear();  // Windows: TCP only
    auto client = agent::AgentClient::Connect(*endpoint, "signum_cng_csp_test/0.1", 10000);
    ASSERT_OK(client);
    auto list = (*client)->ListCertificates(/*refresh=*/true);
    ASSERT_OK(list);
    for (const auto& entry : list->certificates) {
      AgentCertificate certificate{
          entry.id, entry.label, entry.key.type, entry.key.bits, PemToDer(entry.certificate_pem),
          {}};
      ASSERT_FALSE(certificate.der.empty()) << entry.label << ": certificate PEM unreadable";
      for (const auto& pem : entry.chain_pem) certificate.chain_der.push_back(PemToDer(pem));
      (certificate.type == KeyType::kRsa ? suite.rsa : suite.ec).push_back(std::move(certificate));
    }
    ASSERT_FALSE(suite.rsa.empty()) << "the agent lists no RSA certificate";

    Status registered = RegisterCsp(suite.dll_path);
    ASSERT_OK(registered);
    suite.registered = true;
  }

  void TearDown() override {
    Suite& suite = TheSuite();
    if (!suite.registered) return;
    Status unregistered = UnregisterCsp();
    EXPECT_OK(unregistered);
    auto image = RegisteredCspImage();
    EXPECT_FALSE(image.ok()) << "still registered after UnregisterCsp";
    EXPECT_THAT(image, StatusIs(ErrorCode::kNotFound)) << image.status().ToString();
    // advapi32 no longer finds the provider under either name.
    for (const CspRegistration& registration : kCspRegistrations) {
      const std::string name = Utf8FromWide(registration.name);
      auto one = RegisteredCspImage(registration);
      EXPECT_THAT(one, StatusIs(ErrorCode::kNotFound)) << name << ": " << one.status().ToString();
      HCRYPTPROV provider = 0;
      EXPECT_TRUE(FailsWith(CryptAcquireContextW(&provider, nullptr, registration.name,
                                                 registration.type, CRYPT_VERIFYCONTEXT),
                            NTE_KEYSET_NOT_DEF))
          << name;
    }
  }
};
[[maybe_unused]] const auto* const kEnvironment =
    ::testing::AddGlobalTestEnvironment(new CspEnvironment);

// --- CryptoAPI helpers ---
BOOL Acquire(ProviderHandle* provider, const std::string& container, DWORD flags = 0,
             DWORD type = PROV_RSA_FULL, const wchar_t* provider_name = kCspName) {
  const std::wstring wide = WidenAscii(container);
  return CryptAcquireContextW(&provider->h, container.empty() ? nullptr : wide.c_str(),
                              provider_name, type, flags);
}

std::string ProvString(HCRYPTPROV provider, DWORD param) {
  DWORD size = 0;
  if (!CryptGetProvParam(provider, param, nullptr, &size, 0))
    return "<error " + Win32ErrorName(GetLastError()) + ">";
  std::string value(size, '\0');
  if (!CryptGetProvParam(provider, param, reinterpret_cast<BYTE*>(value.data()), &size, 0)) {
    return "<error " + Win32ErrorName(GetLastError()) + ">";
  }
  value.resize(strnlen(value.c_str(), value.size()));
  return value;
}
DWORD ProvDword(HCRYPTPROV provider, DWORD param) {
  DWORD value = 0, size = sizeof(value);
  EXPECT_TRUE(
      Succeeds(CryptGetProvParam(provider, param, reinterpret_cast<BYTE*>(&value), &size, 0)))
      << "param " << param;
  EXPECT_EQ(size, sizeof(DWORD));
  return value;
}
DWORD KeyDword(HCRYPTKEY key, DWORD param) {
  DWORD value = 0, size = sizeof(value);
  EXPECT_TRUE(Succeeds(CryptGetKeyParam(key, param, reinterpret_cast<BYTE*>(&value), &size, 0)))
      << "param " << param;
  return value;
}

class CspTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (TheSuite().child) GTEST_SKIP() << "child process: runs only its own test";
    if (!TheSuite().skip_reason.empty()) GTEST_SKIP() << TheSuite().skip_reason;
    ASSERT_TRUE(TheSuite().registered) << "the CSP could not be registered (see the environment)";
  }
  const Suite& suite() const { return TheSuite(); }
  SignatureManifest Manifest() const { return SignatureManifest(TheSuite().output_dir); }
};

// --- Registration ---

TEST_F(CspTest, RegistrationIsListedByCryptEnumProviders) {
  auto image = RegisteredCspImage();
  ASSERT_OK(image);
  EXPECT_EQ(*image, suite().dll_path);
  for (const CspRegistration& registration : kCspRegistrations) {
    auto one = RegisteredCspImage(registration);
    ASSERT_OK(one);
    EXPECT_EQ(*one, suite().dll_path);
  }
  // Both names, each with its own type; Microsoft's own names are not ours to list.
  std::map<std::wstring, DWORD> listed;
  for (DWORD index = 0;; ++index) {
    DWORD type = 0, size = 0;
    if (!CryptEnumProvidersW(index, nullptr, 0, &type, nullptr, &size)) {
      EXPECT_EQ(GetLastError(), static_cast<DWORD>(ERROR_NO_MORE_ITEMS));
      break;
    }
    std::wstring name(size / sizeof(wchar_t), L'\0');
    ASSERT_TRUE(Succeeds(CryptEnumProvidersW(index, nullptr, 0, &type, name.data(), &size)));
    name.resize(wcsnlen(name.c_str(), name.size()));
    listed[name] = type;
    ASSERT_LE(listed.size(), 100u) << "the enumeration does not end";
  }
  EXPECT_EQ(listed.count(kCspName), 1u) << "CryptEnumProviders does not list kCspName";
  EXPECT_EQ(listed[kCspName], static_cast<DWORD>(PROV_RSA_FULL));
  EXPECT_EQ(listed.count(kCspAesName), 1u) << "CryptEnumProviders does not list kCspAesName";
  EXPECT_EQ(listed[kCspAesName], static_cast<DWORD>(PROV_RSA_AES));
}

// --- CryptAcquireContext ---

TEST_F(CspTest, AcquiresEveryRsaContainerByIdAndLabel) {
  for (const AgentCertificate& certificate : suite().rsa) {
    for (const std::string& name : {certificate.id, Upper(certificate.id), certificate.label}) {
      SCOPED_TRACE(name);
      ProviderHandle provider;
      ASSERT_TRUE(Succeeds(Acquire(&provider, name)));
      // The canonical name is the id, whichever name the caller used.
      EXPECT_EQ(ProvString(provider.h, PP_CONTAINER), certificate.id);
      EXPECT_EQ(ProvString(provider.h, PP_UNIQUE_CONTAINER), certificate.id);
      EXPECT_EQ(ProvDword(provider.h, PP_PROVTYPE), static_cast<DWORD>(PROV_RSA_FULL));
    }
  }
}

TEST_F(CspTest, SafeNetPinPrefixInTheContainerNameIsIgnored) {
  const AgentCertificate& certificate = suite().rsa.front();
  ProviderHandle provider;
  ASSERT_TRUE(Succeeds(Acquire(&provider, "[{{1234}}]=" + certificate.label)));
  EXPECT_EQ(ProvString(provider.h, PP_CONTAINER), certificate.id);
}

TEST_F(CspTest, NullContainerIsTheFirstRsaCertificate) {
  ProviderHandle provider;
  ASSERT_TRUE(Succeeds(Acquire(&provider, "")));
  EXPECT_EQ(ProvString(provider.h, PP_CONTAINER), suite().rsa.front().id);
}

TEST_F(CspTest, UnknownAndEcContainersAreBadKeyset) {
  ProviderHandle provider;
  EXPECT_TRUE(FailsWith(Acquire(&provider, "no-such-container"), NTE_BAD_KEYSET));
  EXPECT_TRUE(FailsWith(Acquire(&provider, std::string(40, '0')), NTE_BAD_KEYSET));
  for (const AgentCertificate& certificate : suite().ec) {
    SCOPED_TRACE(certificate.label);
    EXPECT_TRUE(FailsWith(Acquire(&provider, certificate.label), NTE_BAD_KEYSET))
        << "the CSP serves RSA keys only";
  }
}

TEST_F(CspTest, KeysetsCannotBeCreatedOrDeleted) {
  const AgentCertificate& certificate = suite().rsa.front();
  ProviderHandle provider;
  EXPECT_TRUE(FailsWith(Acquire(&provider, certificate.id, CRYPT_NEWKEYSET), NTE_EXISTS));
  EXPECT_TRUE(FailsWith(Acquire(&provider, "a-new-container", CRYPT_NEWKEYSET), NTE_PERM));
  EXPECT_TRUE(FailsWith(Acquire(&provider, certificate.id, CRYPT_DELETEKEYSET), NTE_PERM));
  EXPECT_TRUE(
      FailsWith(Acquire(&provider, "no-such-container", CRYPT_DELETEKEYSET), NTE_BAD_KEYSET));
  EXPECT_TRUE(FailsWith(Acquire(&provider, certificate.id, 0x4000), NTE_BAD_FLAGS));
  // Flags Windows callers pass routinely are accepted.
  ProviderHandle silent;
  EXPECT_TRUE(Succeeds(Acquire(&silent, certificate.id, CRYPT_SILENT | CRYPT_MACHINE_KEYSET)));
}

TEST_F(CspTest, EachNameAnswersOnlyToItsRegisteredType) {
  // advapi32 compares the requested type with the one registered for the name before loading the
  // DLL: that is why the CSP has one name per type.
  const std::string& container = suite().rsa.front().id;
  ProviderHandle provider;
  EXPECT_TRUE(
      FailsWith(Acquire(&provider, container, 0, PROV_RSA_AES, kCspName), NTE_PROV_TYPE_NO_MATCH));
  EXPECT_TRUE(FailsWith(Acquire(&provider, container, 0, PROV_RSA_FULL, kCspAesName),
                        NTE_PROV_TYPE_NO_MATCH));
  for (const CspRegistration& registration : kCspRegistrations) {
    SCOPED_TRACE(Utf8FromWide(registration.name));
    EXPECT_TRUE(FailsWith(Acquire(&provider, container, 0, PROV_DSS, registration.name),
                          NTE_PROV_TYPE_NO_MATCH));
    ProviderHandle verify_context;
    EXPECT_TRUE(Succeeds(
        Acquire(&verify_context, "", CRYPT_VERIFYCONTEXT, registration.type, registration.name)));
  }
}

// --- Provider parameters ---

TEST_F(CspTest, ProviderParameters) {
  ProviderHandle provider;
  ASSERT_TRUE(Succeeds(Acquire(&provider, suite().rsa.front().id)));
  // PP_NAME with the size conventions: NULL buffer = size, too small = ERROR_MORE_DATA.
  const std::string expected_name(kCspName, kCspName + wcslen(kCspName));
  DWORD size = 0;
  ASSERT_TRUE(Succeeds(CryptGetProvParam(provider.h, PP_NAME, nullptr, &size, 0)));
  EXPECT_EQ(size, expected_name.size() + 1);
  std::string name(size, '\0');
  DWORD small = 4;
  EXPECT_TRUE(FailsWith(
      CryptGetProvParam(provider.h, PP_NAME, reinterpret_cast<BYTE*>(name.data()), &small, 0),
      ERROR_MORE_DATA));
  EXPECT_EQ(small, size);
  EXPECT_EQ(ProvString(provider.h, PP_NAME), expected_name);

  EXPECT_NE(ProvDword(provider.h, PP_VERSION), 0u);
  EXPECT_EQ(ProvDword(provider.h, PP_IMPTYPE), static_cast<DWORD>(CRYPT_IMPL_MIXED));
  EXPECT_EQ(ProvDword(provider.h, PP_KEYSPEC), static_cast<DWORD>(AT_SIGNATURE));
  EXPECT_EQ(ProvDword(provider.h, PP_SIG_KEYSIZE_INC), 1024u);
  DWORD value = 0;
  size = sizeof(value);
  EXPECT_TRUE(
      FailsWith(CryptGetProvParam(provider.h, 0x7777, reinterpret_cast<BYTE*>(&value), &size, 0),
                NTE_BAD_TYPE));
}

TEST_F(CspTest, EnumeratesContainers) {
  ProviderHandle provider;
  ASSERT_TRUE(Succeeds(Acquire(&provider, "", CRYPT_VERIFYCONTEXT)));
  DWORD max_size = 0;
  ASSERT_TRUE(
      Succeeds(CryptGetProvParam(provider.h, PP_ENUMCONTAINERS, nullptr, &max_size, CRYPT_FIRST)));
  EXPECT_EQ(max_size, 41u) << "ids are 40 hex digits plus NUL";
  std::set<std::string> listed;
  std::string buffer(max_size, '\0');
  for (DWORD flags = CRYPT_FIRST;; flags = 0) {
    DWORD size = max_size;
    if (!CryptGetProvParam(provider.h, PP_ENUMCONTAINERS, reinterpret_cast<BYTE*>(buffer.data()),
                           &size, flags)) {
      EXPECT_EQ(GetLastError(), static_cast<DWORD>(ERROR_NO_MORE_ITEMS));
      break;
    }
    listed.insert(std::string(buffer.c_str()));
    ASSERT_LE(listed.size(), 100u) << "the enumeration does not end";
  }
  std::set<std::string> expected;
  for (const AgentCertificate& certificate : suite().rsa) expected.insert(certificate.id);
  EXPECT_EQ(listed, expected);
}

TEST_F(CspTest, EnumeratesAlgorithms) {
  ProviderHandle provider;
  ASSERT_TRUE(Succeeds(Acquire(&provider, "", CRYPT_VERIFYCONTEXT)));
  std::map<ALG_ID, PROV_ENUMALGS_EX> extended;
  for (DWORD flags = CRYPT_FIRST;; flags = 0) {
    PROV_ENUMALGS_EX entry{};
    DWORD size = sizeof(entry);
    if (!CryptGetProvParam(provider.h, PP_ENUMALGS_EX, reinterpret_cast<BYTE*>(&entry), &size,
                           flags)) {
      EXPECT_EQ(GetLastError(), static_cast<DWORD>(ERROR_NO_MORE_ITEMS));
      break;
    }
    EXPECT_EQ(size, sizeof(entry));
    extended[entry.aiAlgid] = entry;
    ASSERT_LE(extended.size(), 50u);
  }
  for (const HashCase& hash : kHashes) {
    ASSERT_TRUE(extended.count(hash.alg_id)) << hash.name;
    EXPECT_EQ(extended[hash.alg_id].dwDefaultLen, hash.size * 8) << hash.name;
  }
  ASSERT_TRUE(extended.count(CALG_RSA_SIGN));
  EXPECT_EQ(extended[CALG_RSA_SIGN].dwMinLen, 2048u);
  EXPECT_EQ(extended[CALG_RSA_SIGN].dwMaxLen, 4096u);
  EXPECT_STREQ(extended[CALG_RSA_SIGN].szName, "RSA_SIGN");

  std::set<ALG_ID> plain;
  for (DWORD flags = CRYPT_FIRST;; flags = 0) {
    PROV_ENUMALGS entry{};
    DWORD size = sizeof(entry);
    if (!CryptGetProvParam(provider.h, PP_ENUMALGS, reinterpret_cast<BYTE*>(&entry), &size, flags))
      break;
    plain.insert(entry.aiAlgid);
    ASSERT_LE(plain.size(), 50u);
  }
  EXPECT_EQ(plain.size(), extended.size());
}

// --- CRYPT_VERIFYCONTEXT: hashing without a key ---

TEST_F(CspTest, VerifyContextHashesWithoutAKey) {
  ProviderHandle provider;
  ASSERT_TRUE(Succeeds(Acquire(&provider, "", CRYPT_VERIFYCONTEXT)));
  // FIPS 180-2 test vector: SHA-256("abc").
  const Bytes expected = {0xba, 0x78, 0x16, 0xbf, 0x8f, 0x01, 0xcf, 0xea, 0x41, 0x41, 0x40,
                          0xde, 0x5d, 0xae, 0x22, 0x23, 0xb0, 0x03, 0x61, 0xa3, 0x96, 0x17,
                          0x7a, 0x9c, 0xb4, 0x10, 0xff, 0x61, 0xf2, 0x00, 0x15, 0xad};
  HashHandle hash;
  ASSERT_TRUE(Succeeds(CryptCreateHash(provider.h, CALG_SHA_256, 0, 0, &hash.h)));
  ASSERT_TRUE(Succeeds(CryptHashData(hash.h, reinterpret_cast<const BYTE*>("ab"), 2, 0)));
  ASSERT_TRUE(Succeeds(CryptHashData(hash.h, reinterpret_cast<const BYTE*>("c"), 1, 0)));
  DWORD algorithm = 0, size = sizeof(algorithm);
  ASSERT_TRUE(
      Succeeds(CryptGetHashParam(hash.h, HP_ALGID, reinterpret_cast<BYTE*>(&algorithm), &size, 0)));
  EXPECT_EQ(algorithm, static_cast<DWORD>(CALG_SHA_256));
  DWORD hash_size = 0;
  size = sizeof(hash_size);
  ASSERT_TRUE(Succeeds(
      CryptGetHashParam(hash.h, HP_HASHSIZE, reinterpret_cast<BYTE*>(&hash_size), &size, 0)));
  EXPECT_EQ(hash_size, 32u);
  Bytes digest(32);
  size = 0;
  ASSERT_TRUE(Succeeds(CryptGetHashParam(hash.h, HP_HASHVAL, nullptr, &size, 0)));
  EXPECT_EQ(size, 32u);
  size = 16;
  EXPECT_TRUE(
      FailsWith(CryptGetHashParam(hash.h, HP_HASHVAL, digest.data(), &size, 0), ERROR_MORE_DATA));
  size = 32;
  ASSERT_TRUE(Succeeds(CryptGetHashParam(hash.h, HP_HASHVAL, digest.data(), &size, 0)));
  EXPECT_EQ(digest, expected);
  // A finished hash takes no more data.
  EXPECT_TRUE(FailsWith(CryptHashData(hash.h, reinterpret_cast<const BYTE*>("d"), 1, 0),
                        NTE_BAD_HASH_STATE));

  KeyHandle key;
  EXPECT_TRUE(FailsWith(CryptGetUserKey(provider.h, AT_SIGNATURE, &key.h), NTE_NO_KEY));
  BYTE random[32] = {};
  EXPECT_TRUE(Succeeds(CryptGenRandom(provider.h, sizeof(random), random)));
  EXPECT_NE(std::count(std::begin(random), std::end(random), 0), 32);
}

TEST_F(CspTest, UnsupportedHashAlgorithmsAreBadAlgid) {
  ProviderHandle provider;
  ASSERT_TRUE(Succeeds(Acquire(&provider, "", CRYPT_VERIFYCONTEXT)));
  HashHandle hash;
  EXPECT_TRUE(FailsWith(CryptCreateHash(provider.h, CALG_MD5, 0, 0, &hash.h), NTE_BAD_ALGID));
  EXPECT_TRUE(
      FailsWith(CryptCreateHash(provider.h, CALG_SSL3_SHAMD5, 0, 0, &hash.h), NTE_BAD_ALGID));
  EXPECT_TRUE(FailsWith(CryptCreateHash(provider.h, CALG_RSA_SIGN, 0, 0, &hash.h), NTE_BAD_ALGID));
}

// --- Keys ---

TEST_F(CspTest, UserKeyParametersAndCertificate) {
  for (const AgentCertificate& certificate : suite().rsa) {
    SCOPED_TRACE(certificate.label);
    ProviderHandle provider;
    ASSERT_TRUE(Succeeds(Acquire(&provider, certificate.id)));
    KeyHandle exchange;
    EXPECT_TRUE(FailsWith(CryptGetUserKey(provider.h, AT_KEYEXCHANGE, &exchange.h), NTE_NO_KEY))
        << "Signum keys are signature keys";
    KeyHandle key;
    ASSERT_TRUE(Succeeds(CryptGetUserKey(provider.h, AT_SIGNATURE, &key.h)));
    EXPECT_EQ(KeyDword(key.h, KP_ALGID), static_cast<DWORD>(CALG_RSA_SIGN));
    EXPECT_EQ(KeyDword(key.h, KP_KEYLEN), static_cast<DWORD>(certificate.bits));
    EXPECT_EQ(KeyDword(key.h, KP_PERMISSIONS) & CRYPT_EXPORT, 0u);

    DWORD size = 0;
    ASSERT_TRUE(Succeeds(CryptGetKeyParam(key.h, KP_CERTIFICATE, nullptr, &size, 0)));
    EXPECT_EQ(size, certificate.der.size());
    Bytes der(size);
    DWORD small = 8;
    EXPECT_TRUE(
        FailsWith(CryptGetKeyParam(key.h, KP_CERTIFICATE, der.data(), &small, 0), ERROR_MORE_DATA));
    EXPECT_EQ(small, size);
    ASSERT_TRUE(Succeeds(CryptGetKeyParam(key.h, KP_CERTIFICATE, der.data(), &size, 0)));
    EXPECT_EQ(der, certificate.der) << "KP_CERTIFICATE is not the agent's certificate";

    // PUBLICKEYBLOB: the certificate's key as crypt32 decodes it (aiKeyAlg aside).
    CertificateHandle context;
    context.h = CertCreateCertificateContext(X509_ASN_ENCODING, certificate.der.data(),
                                             static_cast<DWORD>(certificate.der.size()));
    ASSERT_NE(context.h, nullptr);
    const CRYPT_BIT_BLOB& public_key = context.h->pCertInfo->SubjectPublicKeyInfo.PublicKey;
    DWORD decoded_size = 0;
    ASSERT_TRUE(
        Succeeds(CryptDecodeObject(X509_ASN_ENCODING, RSA_CSP_PUBLICKEYBLOB, public_key.pbData,
                                   public_key.cbData, 0, nullptr, &decoded_size)));
    Bytes decoded(decoded_size);
    ASSERT_TRUE(
        Succeeds(CryptDecodeObject(X509_ASN_ENCODING, RSA_CSP_PUBLICKEYBLOB, public_key.pbData,
                                   public_key.cbData, 0, decoded.data(), &decoded_size)));
    DWORD blob_size = 0;
    ASSERT_TRUE(Succeeds(CryptExportKey(key.h, 0, PUBLICKEYBLOB, 0, nullptr, &blob_size)));
    Bytes blob(blob_size);
    ASSERT_TRUE(Succeeds(CryptExportKey(key.h, 0, PUBLICKEYBLOB, 0, blob.data(), &blob_size)));
    ASSERT_EQ(blob.size(), decoded.size());
    BLOBHEADER header;
    std::memcpy(&header, blob.data(), sizeof(header));
    EXPECT_EQ(header.bType, PUBLICKEYBLOB);
    EXPECT_EQ(header.aiKeyAlg, static_cast<ALG_ID>(CALG_RSA_SIGN));
    EXPECT_TRUE(
        std::equal(blob.begin() + sizeof(header), blob.end(), decoded.begin() + sizeof(header)))
        << "RSAPUBKEY/modulus differ from the certificate's key";
    DWORD private_size = 0;
    EXPECT_TRUE(FailsWith(CryptExportKey(key.h, 0, PRIVATEKEYBLOB, 0, nullptr, &private_size),
                          NTE_BAD_KEY_STATE));
  }
}

// --- CryptSignHash ---

struct SignedHash {
  Bytes digest;
  Bytes signature;  // little-endian, as CryptoAPI returns it
};

SignedHash SignMessage(HCRYPTPROV provider, const HashCase& hash_case, const Bytes& message,
                       size_t signature_size) {
  SignedHash result;
  HashHandle hash;
  EXPECT_TRUE(Succeeds(CryptCreateHash(provider, hash_case.alg_id, 0, 0, &hash.h)));
  // In two parts: CryptHashData is multi-part.
  const DWORD half = static_cast<DWORD>(message.size() / 2);
  EXPECT_TRUE(Succeeds(CryptHashData(hash.h, message.data(), half, 0)));
  EXPECT_TRUE(Succeeds(
      CryptHashData(hash.h, message.data() + half, static_cast<DWORD>(message.size()) - half, 0)));
  DWORD size = 0;
  EXPECT_TRUE(Succeeds(CryptSignHashW(hash.h, AT_SIGNATURE, nullptr, 0, nullptr, &size)));
  EXPECT_EQ(size, signature_size) << "size query";
  result.signature.resize(signature_size);
  DWORD small = static_cast<DWORD>(signature_size - 1);
  EXPECT_TRUE(
      FailsWith(CryptSignHashW(hash.h, AT_SIGNATURE, nullptr, 0, result.signature.data(), &small),
                ERROR_MORE_DATA));
  EXPECT_EQ(small, signature_size);
  size = static_cast<DWORD>(result.signature.size());
  EXPECT_TRUE(
      Succeeds(CryptSignHashW(hash.h, AT_SIGNATURE, nullptr, 0, result.signature.data(), &size)));
  EXPECT_EQ(size, signature_size);
  result.digest.resize(hash_case.size);
  size = hash_case.size;
  EXPECT_TRUE(Succeeds(CryptGetHashParam(hash.h, HP_HASHVAL, result.digest.data(), &size, 0)));
  return result;
}

TEST_F(CspTest, SignHashEveryRsaKeyEveryHash) {
  for (const AgentCertificate& certificate : suite().rsa) {
    ProviderHandle provider;
    ASSERT_TRUE(Succeeds(Acquire(&provider, certificate.id)));
    KeyHandle key;
    ASSERT_TRUE(Succeeds(CryptGetUserKey(provider.h, AT_SIGNATURE, &key.h)));
    const size_t signature_size = static_cast<size_t>(certificate.bits) / 8;
    for (const HashCase& hash_case : kHashes) {
      SCOPED_TRACE(certificate.label + " " + hash_case.name);
      const Bytes message = BcryptRandomBytes(777);
      SignedHash signed_hash = SignMessage(provider.h, hash_case, message, signature_size);
      if (HasFailure()) return;
      const std::string name = "signhash-" + certificate.label + "-" + hash_case.name;
      Manifest().Add(name, "rsa-pkcs1-le", hash_case.name, message, signed_hash.signature,
                     certificate.der);

      // HP_HASHVAL: the same digest set directly gives the same (deterministic) signature.
      HashHandle precomputed;
      ASSERT_TRUE(Succeeds(CryptCreateHash(provider.h, hash_case.alg_id, 0, 0, &precomputed.h)));
      ASSERT_TRUE(
          Succeeds(CryptSetHashParam(precomputed.h, HP_HASHVAL, signed_hash.digest.data(), 0)));
      Bytes again(signature_size);
      DWORD size = static_cast<DWORD>(again.size());
      ASSERT_TRUE(
          Succeeds(CryptSignHashW(precomputed.h, AT_SIGNATURE, nullptr, 0, again.data(), &size)));
      EXPECT_EQ(again, signed_hash.signature) << "HP_HASHVAL path signs differently";

      // The CSP's own CryptVerifySignature (BCrypt) agrees, and rejects a changed signature.
      EXPECT_TRUE(
          Succeeds(CryptVerifySignatureW(precomputed.h, again.data(), size, key.h, nullptr, 0)));
      again[again.size() / 2] ^= 0x01;
      EXPECT_TRUE(
          FailsWith(CryptVerifySignatureW(precomputed.h, again.data(), size, key.h, nullptr, 0),
                    NTE_BAD_SIGNATURE));
    }
  }
}

// What .NET Framework's RSACryptoServiceProvider (CspParameters) and SHA-2 aware tools do: ask
// for PROV_RSA_AES by name through advapi32.
TEST_F(CspTest, ProvRsaAesNameSignsThroughAdvapi32) {
  const std::string expected_name(kCspAesName, kCspAesName + wcslen(kCspAesName));
  for (const AgentCertificate& certificate : suite().rsa) {
    ProviderHandle provider;
    ASSERT_TRUE(Succeeds(Acquire(&provider, certificate.label, 0, PROV_RSA_AES, kCspAesName)));
    EXPECT_EQ(ProvString(provider.h, PP_NAME), expected_name);
    EXPECT_EQ(ProvDword(provider.h, PP_PROVTYPE), static_cast<DWORD>(PROV_RSA_AES));
    EXPECT_EQ(ProvString(provider.h, PP_CONTAINER), certificate.id);
    KeyHandle key;
    ASSERT_TRUE(Succeeds(CryptGetUserKey(provider.h, AT_SIGNATURE, &key.h)));
    const size_t signature_size = static_cast<size_t>(certificate.bits) / 8;
    for (const HashCase& hash_case : kHashes) {
      if (hash_case.alg_id == CALG_SHA1) continue;  // the SHA-2 family is what PROV_RSA_AES is for
      SCOPED_TRACE(certificate.label + " " + hash_case.name);
      const Bytes message = BcryptRandomBytes(555);
      SignedHash signed_hash = SignMessage(provider.h, hash_case, message, signature_size);
      if (HasFailure()) return;
      Manifest().Add("aes-signhash-" + certificate.label + "-" + hash_case.name, "rsa-pkcs1-le",
                     hash_case.name, message, signed_hash.signature, certificate.der);
    }
  }
}

TEST_F(CspTest, SignHashRejectsWhatItCannotDo) {
  const AgentCertificate& certificate = suite().rsa.front();
  ProviderHandle provider;
  ASSERT_TRUE(Succeeds(Acquire(&provider, certificate.id)));
  HashHandle hash;
  ASSERT_TRUE(Succeeds(CryptCreateHash(provider.h, CALG_SHA_256, 0, 0, &hash.h)));
  ASSERT_TRUE(Succeeds(CryptHashData(hash.h, reinterpret_cast<const BYTE*>("x"), 1, 0)));
  Bytes signature(certificate.bits / 8);
  DWORD size = static_cast<DWORD>(signature.size());
  EXPECT_TRUE(FailsWith(CryptSignHashW(hash.h, AT_KEYEXCHANGE, nullptr, 0, signature.data(), &size),
                        NTE_NO_KEY));
  size = static_cast<DWORD>(signature.size());
  EXPECT_TRUE(FailsWith(
      CryptSignHashW(hash.h, AT_SIGNATURE, nullptr, CRYPT_NOHASHOID, signature.data(), &size),
      NTE_BAD_FLAGS))
      << "the server always signs a DigestInfo";

  ProviderHandle verify_context;
  ASSERT_TRUE(Succeeds(Acquire(&verify_context, "", CRYPT_VERIFYCONTEXT)));
  HashHandle keyless;
  ASSERT_TRUE(Succeeds(CryptCreateHash(verify_context.h, CALG_SHA_256, 0, 0, &keyless.h)));
  size = static_cast<DWORD>(signature.size());
  EXPECT_TRUE(FailsWith(
      CryptSignHashW(keyless.h, AT_SIGNATURE, nullptr, 0, signature.data(), &size), NTE_NO_KEY));
  KeyHandle generated;
  EXPECT_TRUE(FailsWith(CryptGenKey(provider.h, AT_SIGNATURE, 0, &generated.h), NTE_BAD_ALGID));
}

TEST_F(CspTest, DuplicatesHashesAndKeys) {
  const AgentCertificate& certificate = suite().rsa.front();
  ProviderHandle provider;
  ASSERT_TRUE(Succeeds(Acquire(&provider, certificate.id)));
  const Bytes message = BcryptRandomBytes(100);
  // A fresh hash duplicates into an independent one; a finished hash keeps its value; a hash in
  // mid-stream duplicates its running state.
  HashHandle fresh, fresh_copy;
  ASSERT_TRUE(Succeeds(CryptCreateHash(provider.h, CALG_SHA_256, 0, 0, &fresh.h)));
  ASSERT_TRUE(Succeeds(CryptDuplicateHash(fresh.h, nullptr, 0, &fresh_copy.h)));
  for (HCRYPTHASH hash : {fresh.h, fresh_copy.h}) {
    ASSERT_TRUE(
        Succeeds(CryptHashData(hash, message.data(), static_cast<DWORD>(message.size()), 0)));
  }
  Bytes first(32), second(32);
  DWORD size = 32;
  ASSERT_TRUE(Succeeds(CryptGetHashParam(fresh.h, HP_HASHVAL, first.data(), &size, 0)));
  HashHandle finished_copy;
  ASSERT_TRUE(Succeeds(CryptDuplicateHash(fresh.h, nullptr, 0, &finished_copy.h)));
  size = 32;
  ASSERT_TRUE(Succeeds(CryptGetHashParam(fresh_copy.h, HP_HASHVAL, second.data(), &size, 0)));
  EXPECT_EQ(first, second);
  size = 32;
  ASSERT_TRUE(Succeeds(CryptGetHashParam(finished_copy.h, HP_HASHVAL, second.data(), &size, 0)));
  EXPECT_EQ(first, second);

  // Mid-stream: the copy continues from the data hashed so far, independently of the original.
  const DWORD half = static_cast<DWORD>(message.size() / 2);
  HashHandle mid, mid_copy;
  ASSERT_TRUE(Succeeds(CryptCreateHash(provider.h, CALG_SHA_256, 0, 0, &mid.h)));
  ASSERT_TRUE(Succeeds(CryptHashData(mid.h, message.data(), half, 0)));
  ASSERT_TRUE(Succeeds(CryptDuplicateHash(mid.h, nullptr, 0, &mid_copy.h)));
  ASSERT_TRUE(Succeeds(
      CryptHashData(mid.h, message.data() + half, static_cast<DWORD>(message.size()) - half, 0)));
  const BYTE other[] = {'x'};
  ASSERT_TRUE(Succeeds(CryptHashData(mid_copy.h, other, 1, 0)));
  size = 32;
  ASSERT_TRUE(Succeeds(CryptGetHashParam(mid.h, HP_HASHVAL, second.data(), &size, 0)));
  EXPECT_EQ(first, second) << "the original still hashes the whole message";
  size = 32;
  ASSERT_TRUE(Succeeds(CryptGetHashParam(mid_copy.h, HP_HASHVAL, second.data(), &size, 0)));
  EXPECT_NE(first, second) << "the copy hashed other data after the split";

  KeyHandle key, key_copy;
  ASSERT_TRUE(Succeeds(CryptGetUserKey(provider.h, AT_SIGNATURE, &key.h)));
  ASSERT_TRUE(Succeeds(CryptDuplicateKey(key.h, nullptr, 0, &key_copy.h)));
  EXPECT_EQ(KeyDword(key_copy.h, KP_KEYLEN), static_cast<DWORD>(certificate.bits));
}

TEST_F(CspTest, PinParametersAreAcceptedAndIgnored) {
  // As with the "[{{PIN}}]=" container prefix: the agent authenticates, the CSP has no PIN.
  ProviderHandle provider;
  ASSERT_TRUE(Succeeds(Acquire(&provider, suite().rsa.front().id)));
  const char pin[] = "1234";
  EXPECT_TRUE(Succeeds(
      CryptSetProvParam(provider.h, PP_SIGNATURE_PIN, reinterpret_cast<const BYTE*>(pin), 0)));
  EXPECT_TRUE(Succeeds(
      CryptSetProvParam(provider.h, PP_KEYEXCHANGE_PIN, reinterpret_cast<const BYTE*>(pin), 0)));
  EXPECT_TRUE(FailsWith(
      CryptSetProvParam(provider.h, PP_NAME, reinterpret_cast<const BYTE*>(pin), 0), NTE_BAD_TYPE));
}

// --- CryptSignMessage (crypt32) with CERT_KEY_PROV_INFO pointing at the CSP ---

TEST_F(CspTest, CryptSignMessageThroughKeyProvInfo) {
  size_t index = 0;
  for (const AgentCertificate& certificate : suite().rsa) {
    const HashCase& hash_case = kHashes[1 + index++ % 3];  // SHA-256/384/512 across the keys
    SCOPED_TRACE(certificate.label + " " + hash_case.name);
    CertificateHandle signer;
    signer.h = CertCreateCertificateContext(X509_ASN_ENCODING | PKCS_7_ASN_ENCODING,
                                            certificate.der.data(),
                                            static_cast<DWORD>(certificate.der.size()));
    ASSERT_NE(signer.h, nullptr);
    std::wstring container = WidenAscii(certificate.id);
    std::wstring provider_name = kCspName;
    CRYPT_KEY_PROV_INFO info{};
    info.pwszContainerName = container.data();
    info.pwszProvName = provider_name.data();
    info.dwProvType = PROV_RSA_FULL;
    info.dwKeySpec = AT_SIGNATURE;
    ASSERT_TRUE(Succeeds(
        CertSetCertificateContextProperty(signer.h, CERT_KEY_PROV_INFO_PROP_ID, 0, &info)));

    // The chain goes into the message so OpenSSL can build the path to the demo root.
    std::vector<CertificateHandle> chain(certificate.chain_der.size());
    std::vector<PCCERT_CONTEXT> message_certificates = {signer.h};
    for (size_t i = 0; i < chain.size(); ++i) {
      chain[i].h =
          CertCreateCertificateContext(X509_ASN_ENCODING, certificate.chain_der[i].data(),
                                       static_cast<DWORD>(certificate.chain_der[i].size()));
      ASSERT_NE(chain[i].h, nullptr);
      message_certificates.push_back(chain[i].h);
    }
    CRYPT_SIGN_MESSAGE_PARA para{};
    para.cbSize = sizeof(para);
    para.dwMsgEncodingType = X509_ASN_ENCODING | PKCS_7_ASN_ENCODING;
    para.pSigningCert = signer.h;
    para.HashAlgorithm.pszObjId = const_cast<LPSTR>(hash_case.oid);
    para.cMsgCert = static_cast<DWORD>(message_certificates.size());
    para.rgpMsgCert = message_certificates.data();

    const Bytes message = BcryptRandomBytes(1500);
    const BYTE* contents[] = {message.data()};
    DWORD content_sizes[] = {static_cast<DWORD>(message.size())};
    for (BOOL detached : {TRUE, FALSE}) {
      DWORD size = 0;
      ASSERT_TRUE(
          Succeeds(CryptSignMessage(&para, detached, 1, contents, content_sizes, nullptr, &size)));
      Bytes signed_message(size);
      ASSERT_TRUE(Succeeds(CryptSignMessage(&para, detached, 1, contents, content_sizes,
                                            signed_message.data(), &size)));
      signed_message.resize(size);
      const std::string name = std::string("signmessage-") +
                               (detached ? "detached-" : "embedded-") + certificate.label + "-" +
                               hash_case.name;
      Manifest().Add(name, "cms", hash_case.name,
                     detached ? std::optional<ByteView>(message) : std::nullopt, signed_message,
                     certificate.der);
    }
  }
}

// --- The DLL's own checks, called directly (advapi32 would stop bad handles first) ---

class CspDirect : public CspTest {
 protected:
  void SetUp() override {
    CspTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    module_ = LoadLibraryW(suite().dll_path.c_str());
    ASSERT_NE(module_, nullptr) << "LoadLibrary(signumcsp.dll): " << Win32ErrorName(GetLastError());
  }
  void TearDown() override {
    if (module_ != nullptr) FreeLibrary(module_);
  }
  template <typename F>
  F Get(const char* name) {
    return reinterpret_cast<F>(reinterpret_cast<void*>(GetProcAddress(module_, name)));
  }
  HMODULE module_ = nullptr;
};

TEST_F(CspDirect, ExportsEveryEntryPoint) {
  for (const char* name : kRequiredCspExports) {
    EXPECT_NE(GetProcAddress(module_, name), nullptr) << name;
  }
  for (const char* name : kOptionalCspExports) {
    EXPECT_NE(GetProcAddress(module_, name), nullptr) << name;
  }
}

TEST_F(CspDirect, BadHandlesAreRejectedWithTheirCodes) {
  auto acquire = Get<PFN_CPAcquireContext>("CPAcquireContext");
  auto release = Get<PFN_CPReleaseContext>("CPReleaseContext");
  auto get_prov_param = Get<PFN_CPGetProvParam>("CPGetProvParam");
  auto get_user_key = Get<PFN_CPGetUserKey>("CPGetUserKey");
  auto get_key_param = Get<PFN_CPGetKeyParam>("CPGetKeyParam");
  auto create_hash = Get<PFN_CPCreateHash>("CPCreateHash");
  auto get_hash_param = Get<PFN_CPGetHashParam>("CPGetHashParam");
  auto destroy_hash = Get<PFN_CPDestroyHash>("CPDestroyHash");
  auto destroy_key = Get<PFN_CPDestroyKey>("CPDestroyKey");
  ASSERT_TRUE(acquire && release && get_prov_param && get_user_key && get_key_param &&
              create_hash && get_hash_param && destroy_hash && destroy_key);

  DWORD value = 0, size = sizeof(value);
  EXPECT_TRUE(
      FailsWith(get_prov_param(0xdead0, PP_PROVTYPE, reinterpret_cast<BYTE*>(&value), &size, 0),
                NTE_BAD_UID));
  std::string name = "Signum";
  VTableProvStruc table{3, nullptr, nullptr, PROV_RSA_FULL, nullptr, 0, name.data()};
  HCRYPTPROV provider = 0;
  ASSERT_TRUE(Succeeds(acquire(&provider, suite().rsa.front().id.c_str(), 0, &table)));
  HCRYPTKEY key = 0;
  ASSERT_TRUE(Succeeds(get_user_key(provider, AT_SIGNATURE, &key)));
  HCRYPTHASH hash = 0;
  ASSERT_TRUE(Succeeds(create_hash(provider, CALG_SHA_256, 0, 0, &hash)));

  size = sizeof(value);
  EXPECT_TRUE(FailsWith(
      get_key_param(provider, key + 1, KP_KEYLEN, reinterpret_cast<BYTE*>(&value), &size, 0),
      NTE_BAD_KEY));
  size = sizeof(value);
  EXPECT_TRUE(
      FailsWith(get_key_param(provider, hash, KP_KEYLEN, reinterpret_cast<BYTE*>(&value), &size, 0),
                NTE_BAD_KEY))
      << "a hash handle is not a key handle";
  size = sizeof(value);
  EXPECT_TRUE(
      FailsWith(get_hash_param(provider, key, HP_ALGID, reinterpret_cast<BYTE*>(&value), &size, 0),
                NTE_BAD_HASH))
      << "a key handle is not a hash handle";
  EXPECT_TRUE(FailsWith(create_hash(provider, CALG_SHA_256, key, 0, &hash), NTE_BAD_KEY))
      << "no keyed hashes";
  // Handles of one context are not valid with another.
  HCRYPTPROV other = 0;
  ASSERT_TRUE(Succeeds(acquire(&other, nullptr, CRYPT_VERIFYCONTEXT, &table)));
  size = sizeof(value);
  EXPECT_TRUE(
      FailsWith(get_key_param(other, key, KP_KEYLEN, reinterpret_cast<BYTE*>(&value), &size, 0),
                NTE_BAD_KEY));
  EXPECT_TRUE(Succeeds(release(other, 0)));

  EXPECT_TRUE(Succeeds(destroy_hash(provider, hash)));
  EXPECT_TRUE(FailsWith(destroy_hash(provider, hash), NTE_BAD_HASH)) << "destroyed twice";
  EXPECT_TRUE(Succeeds(destroy_key(provider, key)));
  EXPECT_TRUE(FailsWith(destroy_key(provider, key), NTE_BAD_KEY)) << "destroyed twice";
  EXPECT_TRUE(Succeeds(release(provider, 0)));
  size = sizeof(value);
  EXPECT_TRUE(
      FailsWith(get_prov_param(provider, PP_PROVTYPE, reinterpret_cast<BYTE*>(&value), &size, 0),
                NTE_BAD_UID))
      << "a released context";
  EXPECT_TRUE(FailsWith(release(provider, 0), NTE_BAD_UID)) << "released twice";
}

TEST_F(CspDirect, ProvRsaAesContextSigns) {
  auto acquire = Get<PFN_CPAcquireContext>("CPAcquireContext");
  auto release = Get<PFN_CPReleaseContext>("CPReleaseContext");
  auto get_prov_param = Get<PFN_CPGetProvParam>("CPGetProvParam");
  auto create_hash = Get<PFN_CPCreateHash>("CPCreateHash");
  auto hash_data = Get<PFN_CPHashData>("CPHashData");
  auto sign_hash = Get<PFN_CPSignHash>("CPSignHash");
  auto destroy_hash = Get<PFN_CPDestroyHash>("CPDestroyHash");
  ASSERT_TRUE(acquire && release && get_prov_param && create_hash && hash_data && sign_hash &&
              destroy_hash);

  const AgentCertificate& certificate = suite().rsa.front();
  std::string name = "Signum";
  VTableProvStruc table{3, nullptr, nullptr, PROV_RSA_AES, nullptr, 0, name.data()};
  HCRYPTPROV provider = 0;
  ASSERT_TRUE(Succeeds(acquire(&provider, certificate.label.c_str(), 0, &table)));
  DWORD type = 0, size = sizeof(type);
  EXPECT_TRUE(
      Succeeds(get_prov_param(provider, PP_PROVTYPE, reinterpret_cast<BYTE*>(&type), &size, 0)));
  EXPECT_EQ(type, static_cast<DWORD>(PROV_RSA_AES));
  const Bytes message = BcryptRandomBytes(333);
  HCRYPTHASH hash = 0;
  ASSERT_TRUE(Succeeds(create_hash(provider, CALG_SHA_256, 0, 0, &hash)));
  ASSERT_TRUE(
      Succeeds(hash_data(provider, hash, message.data(), static_cast<DWORD>(message.size()), 0)));
  Bytes signature(certificate.bits / 8);
  size = static_cast<DWORD>(signature.size());
  ASSERT_TRUE(
      Succeeds(sign_hash(provider, hash, AT_SIGNATURE, nullptr, 0, signature.data(), &size)));
  Manifest().Add("direct-prov-rsa-aes-" + certificate.label + "-sha256", "rsa-pkcs1-le", "sha256",
                 message, signature, certificate.der);
  EXPECT_TRUE(Succeeds(destroy_hash(provider, hash)));
  EXPECT_TRUE(Succeeds(release(provider, 0)));

  table.dwProvType = PROV_DSS;
  EXPECT_TRUE(
      FailsWith(acquire(&provider, certificate.label.c_str(), 0, &table), NTE_PROV_TYPE_NO_MATCH));

  // PP_NAME is the name the caller used (VTableProvStruc v3); a v2 table carries no name, then it
  // is the name registered for the type.
  const auto name_of = [&](const VTableProvStruc& caller_table) {
    VTableProvStruc copy = caller_table;
    HCRYPTPROV context = 0;
    std::string value(128, '\0');
    DWORD value_size = static_cast<DWORD>(value.size());
    EXPECT_TRUE(Succeeds(acquire(&context, nullptr, CRYPT_VERIFYCONTEXT, &copy)));
    EXPECT_TRUE(Succeeds(
        get_prov_param(context, PP_NAME, reinterpret_cast<BYTE*>(value.data()), &value_size, 0)));
    EXPECT_TRUE(Succeeds(release(context, 0)));
    return std::string(value.c_str());
  };
  EXPECT_EQ(name_of({3, nullptr, nullptr, PROV_RSA_AES, nullptr, 0, name.data()}), name);
  EXPECT_EQ(name_of({2, nullptr, nullptr, PROV_RSA_AES, nullptr, 0, nullptr}),
            Utf8FromWide(kCspAesName));
  EXPECT_EQ(name_of({2, nullptr, nullptr, PROV_RSA_FULL, nullptr, 0, nullptr}),
            Utf8FromWide(kCspName));
}

// --- Agent unreachable: a child process of this program with a dead agent address ---

TEST_F(CspTest, AgentUnreachableGivesACleanError) {
  // The child inherits our environment with these changes; its gtest output lands in our log.
  const ChildRun child = RunThisProgramAsChild(
      L"--gtest_also_run_disabled_tests --gtest_filter=CspChild.DISABLED_AgentUnreachable",
      {{"SIGNUM_AGENT_TCP", "127.0.0.1:1"},  // nothing listens on port 1
       {kChildModeVariable, kChildAgentUnreachable}},
      120000, ChildOutput::kInherit);
  ASSERT_TRUE(child.started) << "failed with " << Win32ErrorName(child.start_error);
  ASSERT_TRUE(child.finished) << "the child hung";
  EXPECT_EQ(child.exit_code, 0u) << "the child's checks failed (its output is above)";
}

// Runs only in the child (DISABLED_ unless asked for): the DLL is loaded in this process for the
// first time with an agent address where nothing listens.
TEST(CspChild, DISABLED_AgentUnreachable) {
  ASSERT_EQ(EnvironmentValue(kChildModeVariable), kChildAgentUnreachable)
      << "run by AgentUnreachableGivesACleanError";
  const auto started = std::chrono::steady_clock::now();
  ProviderHandle provider;
  EXPECT_TRUE(FailsWith(Acquire(&provider, "rsa-2048"), NTE_DEVICE_NOT_READY));
  EXPECT_TRUE(FailsWith(Acquire(&provider, ""), NTE_DEVICE_NOT_READY));
  // No agent needed for a verify context: hashing still works; enumeration reports the agent.
  ProviderHandle verify_context;
  ASSERT_TRUE(Succeeds(Acquire(&verify_context, "", CRYPT_VERIFYCONTEXT)));
  HashHandle hash;
  EXPECT_TRUE(Succeeds(CryptCreateHash(verify_context.h, CALG_SHA_256, 0, 0, &hash.h)));
  DWORD size = 0;
  EXPECT_TRUE(
      FailsWith(CryptGetProvParam(verify_context.h, PP_ENUMCONTAINERS, nullptr, &size, CRYPT_FIRST),
                NTE_DEVICE_NOT_READY));
  const auto elapsed = std::chrono::steady_clock::now() - started;
  EXPECT_LT(elapsed, std::chrono::seconds(30)) << "an absent agent must fail fast";
}

}  // namespace
}  // namespace signum::cng

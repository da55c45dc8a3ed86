// signum_cng_fake_agent_test: signumksp.dll (its function table, as ncrypt.dll drives it) and
// signumcsp.dll (its CP* exports, as advapi32 drives them) against signum-fake-agent instead of a
// deployment: no signum-server, no signum-agent, no SoftHSM2, seconds instead of a minute. The
// fake agent's certificate labels script its answers (docs/testing.md); this program checks that
//   - the key list (KSP EnumKeys, CSP PP_ENUMCONTAINERS) is exactly the agent's RSA certificates,
//     in its order; its EC certificate is no key here (both providers are RSA only);
//   - ok-rsa-2048 signs PKCS#1 v1.5 and PSS (KSP) and PKCS#1 (CSP), and Windows' own BCrypt
//     verifies every signature with the certificate's key (and rejects it tampered);
//   - every scripted failure comes back as the exact code kErrorCases names (nte_status.h's
//     table; NTE_FAIL for a signature the provider refuses itself), without handing out a byte,
//     and the next call through the same provider handle signs again (reconnecting after a
//     dropped or timed-out connection); `slow` fails after the providers' timeout, the others
//     at once.
//   - SIGNUM_CNG_RECORD records a KSP session (open provider, open key, properties, PKCS#1 and
//     PSS signatures) and a CSP session (acquire context, user key, hashes set and fed, signatures)
//     call by call with no PIN in the file, the recorded signatures the ones the calls returned;
//     signum-cng-replay.exe replays each trace against the same DLLs and agent with exit 0, names
//     SignHash / CPSignHash when the trace's key is edited to the `deny` one (exit 1), and refuses
//     a version-2 header (exit 2).
// Every accepted signature also goes to SIGNUM_CNG_OUTPUT_DIR/manifest.tsv for native OpenSSL.
//
// Environment (conformance/cng/run-fake-agent-suite.sh): SIGNUM_FAKE_AGENT_DIR (the agent's
// directory: certificates.tsv and the PEMs), SIGNUM_AGENT_TCP and SIGNUM_AGENT_SECRET_FILE (read by
// the providers), SIGNUM_CNG_TIMEOUT_MS (the providers' agent timeout), SIGNUM_CNG_OUTPUT_DIR,
// SIGNUM_CNG_BIN_DIR.
#include <windows.h>
// A block of its own: these need windows.h's types, so formatting must not reorder them.
#include <bcrypt.h>
#include <gtest/gtest.h>
#include <ncrypt.h>
#include <wincrypt.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <string>
#include <type_traits>
#include <vector>

#include "signum/cng/csp_iface.h"
#include "signum/cng/ksp_iface.h"
#include "signum/cng/names.h"
#include "signum/cng/nte_status.h"
#include "signum/core/algorithms.h"
#include "signum/core/encoding.h"
#include "suite_support.h"

namespace signum::cng {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

// ---- the expectations (this program's own, spelled from winerror.h) -----------------------------

// Each scripted label of signum-fake-agent and the code a sign request for it must return, from
// the KSP as SECURITY_STATUS and from the CSP through GetLastError.
struct ErrorCase {
  const char* label;
  HRESULT code;
};
constexpr ErrorCase kErrorCases[] = {
    // The agent's error replies, through nte_status.h's one table.
    {"deny", NTE_PERM},                                  // PERMISSION_DENIED
    {"unavailable", NTE_DEVICE_NOT_READY},               // UNAVAILABLE
    {"error-invalid-argument", NTE_INVALID_PARAMETER},   // INVALID_ARGUMENT
    {"error-not-found", NTE_BAD_KEYSET},                 // NOT_FOUND
    {"error-already-exists", NTE_FAIL},                  // ALREADY_EXISTS (no row: NTE_FAIL)
    {"error-unauthenticated", NTE_PERM},                 // UNAUTHENTICATED
    {"error-resource-exhausted", NTE_DEVICE_NOT_READY},  // RESOURCE_EXHAUSTED
    {"error-failed-precondition", NTE_BAD_KEY_STATE},    // FAILED_PRECONDITION
    {"error-deadline-exceeded", NTE_DEVICE_NOT_READY},   // DEADLINE_EXCEEDED
    {"error-unimplemented", NTE_NOT_SUPPORTED},          // UNIMPLEMENTED
    {"error-data-loss", NTE_FAIL},                       // DATA_LOSS
    {"error-internal", NTE_FAIL},                        // INTERNAL
    // What the provider refuses itself: a signature that does not verify with the certificate's
    // key (DATA_LOSS), one of the wrong length (INTERNAL).
    {"forged", NTE_FAIL},
    {"short", NTE_FAIL},
    // The connection: closed unanswered (UNAVAILABLE, after the pool's one retry on a kept
    // connection), no answer within SIGNUM_CNG_TIMEOUT_MS (DEADLINE_EXCEEDED).
    {"drop", NTE_DEVICE_NOT_READY},
    {"slow", NTE_DEVICE_NOT_READY},
};
constexpr char kOkRsa[] = "ok-rsa-2048";
constexpr char kOkEc[] = "ok-ec-p256";

// ---- what signum-fake-agent serves (its certificates.tsv)
// ----------------------------------------

struct Served {
  std::string label, id, spec, behaviour;
  Bytes der;
};

std::string ReadTextFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

struct AgentFiles {
  std::string error;  // why the agent's files cannot be used
  std::vector<Served> served;
};

const AgentFiles& Files() {
  static const AgentFiles files = [] {
    AgentFiles f;
    const std::string dir = EnvironmentValue("SIGNUM_FAKE_AGENT_DIR");
    if (dir.empty()) {
      f.error =
          "SIGNUM_FAKE_AGENT_DIR is not set: run this program with "
          "conformance/cng/run-fake-agent-suite.sh (ctest -R signum_cng_fake_agent_wine)";
      return f;
    }
    std::istringstream table(ReadTextFile(dir + "\\certificates.tsv"));
    for (std::string line; std::getline(table, line);) {
      if (line.empty() || line[0] == '#') continue;
      std::vector<std::string> fields;
      std::istringstream columns(line);
      for (std::string field; std::getline(columns, field, '\t');) fields.push_back(field);
      if (fields.size() != 5) {
        f.error = "malformed certificates.tsv line: " + line;
        return f;
      }
      Served served{fields[0], fields[1], fields[2], fields[3],
                    PemToDer(ReadTextFile(dir + "\\" + fields[4]))};
      if (served.der.empty()) {
        f.error = "cannot read the certificate " + fields[4];
        return f;
      }
      f.served.push_back(std::move(served));
    }
    if (f.served.empty()) f.error = "no certificates in " + dir + "\\certificates.tsv";
    return f;
  }();
  return files;
}

const Served& Cert(const std::string& label) {
  static const Served missing;
  for (const Served& served : Files().served) {
    if (served.label == label) return served;
  }
  ADD_FAILURE() << "signum-fake-agent serves no certificate labelled " << label;
  return missing;
}

// The providers' agent timeout (they read the same variable), which `slow` must exceed.
int ClientTimeoutMs() { return std::atoi(EnvironmentValue("SIGNUM_CNG_TIMEOUT_MS").c_str()); }

// ---- Windows' own verdict on a signature
// ----------------------------------------------------------

// The certificate's public key imported by crypt32 into bcrypt, and BCryptVerifySignature: no
// provider code is involved. A tampered copy must be rejected, or the check proves nothing.
::testing::AssertionResult VerifiedByWindows(const Served& cert, void* padding_info, ULONG flags,
                                             const Bytes& digest, const Bytes& signature) {
  PCCERT_CONTEXT context = CertCreateCertificateContext(X509_ASN_ENCODING, cert.der.data(),
                                                        static_cast<DWORD>(cert.der.size()));
  if (context == nullptr)
    return ::testing::AssertionFailure() << "crypt32 cannot parse " << cert.label;
  BCRYPT_KEY_HANDLE key = nullptr;
  const BOOL imported = CryptImportPublicKeyInfoEx2(
      X509_ASN_ENCODING, &context->pCertInfo->SubjectPublicKeyInfo, 0, nullptr, &key);
  CertFreeCertificateContext(context);
  if (!imported) {
    return ::testing::AssertionFailure() << "CryptImportPublicKeyInfoEx2(" << cert.label
                                         << "): " << Win32ErrorName(GetLastError());
  }
  const auto verify = [&](Bytes candidate) {
    return BCryptVerifySignature(key, padding_info, const_cast<PUCHAR>(digest.data()),
                                 static_cast<ULONG>(digest.size()), candidate.data(),
                                 static_cast<ULONG>(candidate.size()), flags);
  };
  const NTSTATUS genuine = verify(signature);
  Bytes tampered = signature;
  if (!tampered.empty()) tampered[tampered.size() / 2] ^= 0x01;
  const NTSTATUS forged = verify(tampered);
  BCryptDestroyKey(key);
  if (genuine != 0) {
    return ::testing::AssertionFailure()
           << "BCryptVerifySignature rejects the signature of " << cert.label << ": status "
           << Hex(static_cast<unsigned long>(genuine));
  }
  if (forged == 0) return ::testing::AssertionFailure() << "BCrypt also accepts it tampered";
  return ::testing::AssertionSuccess();
}

const SignatureManifest& Manifest() {
  static const SignatureManifest manifest(EnvironmentValue("SIGNUM_CNG_OUTPUT_DIR"));
  return manifest;
}

bool AllBytesAre(const Bytes& bytes, uint8_t value) {
  return std::all_of(bytes.begin(), bytes.end(), [value](uint8_t b) { return b == value; });
}

class FakeAgentEnvironment : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(Files().error.empty()) << Files().error;
    ASSERT_FALSE(EnvironmentValue("SIGNUM_AGENT_TCP").empty()) << "SIGNUM_AGENT_TCP not set";
    ASSERT_GE(ClientTimeoutMs(), 100) << "SIGNUM_CNG_TIMEOUT_MS not set";
    ASSERT_FALSE(EnvironmentValue("SIGNUM_CNG_OUTPUT_DIR").empty())
        << "SIGNUM_CNG_OUTPUT_DIR not set: every signature is also verified by native OpenSSL";
  }
  // `slow` costs the providers' timeout (and less than a further 3 s); every other failure is
  // answered without waiting for it.
  static void ExpectDuration(const char* label, milliseconds elapsed) {
    const int timeout = ClientTimeoutMs();
    if (std::string(label) == "slow") {
      EXPECT_GE(elapsed.count(), timeout - 50) << "failed before the timeout";
      EXPECT_LE(elapsed.count(), timeout + 3000) << "the timeout did not bound the wait";
    } else {
      EXPECT_LT(elapsed.count(), timeout) << "a scripted answer must not wait for the timeout";
    }
  }
};

// The scripted labels are exactly those this program has an expectation for, so a label added to
// signum-fake-agent without one here fails.
TEST_F(FakeAgentEnvironment, EveryServedLabelHasAnExpectation) {
  std::set<std::string> expected = {kOkRsa, kOkEc};
  for (const ErrorCase& c : kErrorCases) expected.insert(c.label);
  std::set<std::string> served;
  for (const Served& s : Files().served) served.insert(s.label);
  EXPECT_EQ(served, expected);
}

// ---- signumksp.dll through its function table
// -----------------------------------------------------

NCRYPT_KEY_STORAGE_FUNCTION_TABLE* KspTable(std::string* error) {
  static std::string load_error;
  static NCRYPT_KEY_STORAGE_FUNCTION_TABLE* const table = [] {
    NCRYPT_KEY_STORAGE_FUNCTION_TABLE* loaded = nullptr;
    const std::wstring path = ProviderDllPath(kKspDllName);
    HMODULE module = LoadLibraryW(path.c_str());  // never freed: the KSP's context is per process
    auto entry = module == nullptr
                     ? nullptr
                     : reinterpret_cast<GetKeyStorageInterfaceFn>(reinterpret_cast<void*>(
                           GetProcAddress(module, SIGNUM_KSP_ENTRY_POINT_NAME)));
    if (entry == nullptr || entry(kKspName, &loaded, 0) != 0) {
      load_error = "cannot load " + NarrowAscii(path) +
                   " and its function table: " + Win32ErrorName(GetLastError());
      return static_cast<NCRYPT_KEY_STORAGE_FUNCTION_TABLE*>(nullptr);
    }
    return loaded;
  }();
  *error = load_error;
  return table;
}

struct KspSignature {
  SECURITY_STATUS status = -1;
  Bytes signature;
  milliseconds elapsed{0};
};

class FakeAgentKsp : public FakeAgentEnvironment {
 protected:
  void SetUp() override {
    FakeAgentEnvironment::SetUp();
    if (HasFatalFailure()) return;
    std::string error;
    t_ = KspTable(&error);
    ASSERT_NE(t_, nullptr) << error;
    ASSERT_NTE(t_->OpenProvider(&provider_, kKspName, 0), ERROR_SUCCESS);
  }
  void TearDown() override {
    if (t_ == nullptr) return;
    for (NCRYPT_KEY_HANDLE key : keys_) {
      EXPECT_NTE(t_->FreeKey(provider_, key), ERROR_SUCCESS);
    }
    if (provider_ != 0) {
      EXPECT_NTE(t_->FreeProvider(provider_), ERROR_SUCCESS);
    }
  }

  NCRYPT_KEY_HANDLE Open(const std::string& label) {
    NCRYPT_KEY_HANDLE key = 0;
    EXPECT_NTE(t_->OpenKey(provider_, &key, WidenAscii(label).c_str(), 0, 0), ERROR_SUCCESS)
        << "OpenKey(" << label << ")";
    if (key != 0) keys_.push_back(key);
    return key;
  }

  // SignHash after its size query; on failure the output buffer must be untouched (0xAA).
  KspSignature Sign(NCRYPT_KEY_HANDLE key, void* padding, DWORD flags, const Bytes& digest) {
    KspSignature result;
    DWORD size = 0;
    PBYTE input = const_cast<PBYTE>(digest.data());
    const DWORD input_size = static_cast<DWORD>(digest.size());
    EXPECT_NTE(t_->SignHash(provider_, key, padding, input, input_size, nullptr, 0, &size, flags),
               ERROR_SUCCESS);
    EXPECT_EQ(size, 256u) << "an RSA-2048 signature";
    Bytes buffer(size, 0xAA);
    DWORD written = 0;
    const auto start = Clock::now();
    result.status = t_->SignHash(provider_, key, padding, input, input_size, buffer.data(), size,
                                 &written, flags);
    result.elapsed = std::chrono::duration_cast<milliseconds>(Clock::now() - start);
    if (result.status == ERROR_SUCCESS) {
      EXPECT_EQ(written, size);
      buffer.resize(written);
      result.signature = std::move(buffer);
    } else {
      EXPECT_TRUE(AllBytesAre(buffer, 0xAA)) << "a failed SignHash wrote into the output buffer";
    }
    return result;
  }

  // A genuine PKCS#1 SHA-256 signature by ok-rsa-2048, verified by BCrypt; listed for OpenSSL
  // too when named (the ones between failures are BCrypt's only: OpenSSL costs ~0.1 s each).
  void ExpectOkSignature(const char* manifest_name = nullptr) {
    const Bytes message = BcryptRandomBytes(100);
    const Bytes digest = BcryptDigest(HashAlgorithm::kSha256, message);
    BCRYPT_PKCS1_PADDING_INFO pkcs1{BCRYPT_SHA256_ALGORITHM};
    const KspSignature ok = Sign(ok_key(), &pkcs1, NCRYPT_PAD_PKCS1_FLAG, digest);
    ASSERT_NTE(ok.status, ERROR_SUCCESS);
    EXPECT_TRUE(VerifiedByWindows(Cert(kOkRsa), &pkcs1, BCRYPT_PAD_PKCS1, digest, ok.signature));
    if (manifest_name != nullptr) {
      Manifest().Add(manifest_name, "rsa-pkcs1", HashAlgorithm::kSha256, message, ok.signature,
                     Cert(kOkRsa).der);
    }
  }

  NCRYPT_KEY_HANDLE ok_key() {
    if (ok_key_ == 0) ok_key_ = Open(kOkRsa);
    return ok_key_;
  }

  NCRYPT_KEY_STORAGE_FUNCTION_TABLE* t_ = nullptr;
  NCRYPT_PROV_HANDLE provider_ = 0;
  NCRYPT_KEY_HANDLE ok_key_ = 0;
  std::vector<NCRYPT_KEY_HANDLE> keys_;
};

TEST_F(FakeAgentKsp, EnumeratesExactlyTheAgentsRsaCertificatesInItsOrder) {
  std::vector<std::string> expected;
  for (const Served& s : Files().served) {
    if (s.spec.rfind("rsa-", 0) == 0) expected.push_back(s.id);
  }
  std::vector<std::string> listed;
  PVOID state = nullptr;
  for (int i = 0; i < 100; ++i) {
    NCryptKeyName* name = nullptr;
    const SECURITY_STATUS status = t_->EnumKeys(provider_, nullptr, &name, &state, 0);
    if (status == NTE_NO_MORE_ITEMS) break;
    ASSERT_NTE(status, ERROR_SUCCESS);
    listed.push_back(NarrowAscii(name->pszName));
    EXPECT_NTE(t_->FreeBuffer(name), ERROR_SUCCESS);
  }
  if (state != nullptr) {
    EXPECT_NTE(t_->FreeBuffer(state), ERROR_SUCCESS);
  }
  EXPECT_EQ(listed, expected);
  EXPECT_EQ(std::count(listed.begin(), listed.end(), Cert(kOkEc).id), 0);

  // The key's certificate is the one the agent serves.
  DWORD size = 0;
  const NCRYPT_KEY_HANDLE key = ok_key();
  ASSERT_NTE(t_->GetKeyProperty(provider_, key, NCRYPT_CERTIFICATE_PROPERTY, nullptr, 0, &size, 0),
             ERROR_SUCCESS);
  Bytes der(size);
  ASSERT_NTE(
      t_->GetKeyProperty(provider_, key, NCRYPT_CERTIFICATE_PROPERTY, der.data(), size, &size, 0),
      ERROR_SUCCESS);
  EXPECT_EQ(der, Cert(kOkRsa).der);

  // The EC certificate is no key of the KSP (RSA only, signumksp.cc), by label or by id.
  for (const std::string& name : {std::string(kOkEc), Cert(kOkEc).id}) {
    NCRYPT_KEY_HANDLE ec = 0;
    EXPECT_NTE(t_->OpenKey(provider_, &ec, WidenAscii(name).c_str(), 0, 0), NTE_BAD_KEYSET) << name;
  }
}

TEST_F(FakeAgentKsp, SignsPkcs1AndPssAndWindowsVerifiesEverySignature) {
  const NCRYPT_KEY_HANDLE key = ok_key();
  ASSERT_NE(key, 0u);
  for (HashAlgorithm hash :
       {HashAlgorithm::kSha256, HashAlgorithm::kSha384, HashAlgorithm::kSha512}) {
    const std::wstring algorithm = WidenAscii(GetHashInfo(hash).cng_algorithm_id);
    const std::string base = "ksp-" + std::string(HashName(hash));
    SCOPED_TRACE(base);
    const Bytes message = BcryptRandomBytes(333);
    const Bytes digest = BcryptDigest(hash, message);

    BCRYPT_PKCS1_PADDING_INFO pkcs1{algorithm.c_str()};
    const KspSignature signed_pkcs1 = Sign(key, &pkcs1, NCRYPT_PAD_PKCS1_FLAG, digest);
    ASSERT_NTE(signed_pkcs1.status, ERROR_SUCCESS);
    EXPECT_TRUE(
        VerifiedByWindows(Cert(kOkRsa), &pkcs1, BCRYPT_PAD_PKCS1, digest, signed_pkcs1.signature));
    Manifest().Add(base + "-pkcs1", "rsa-pkcs1", hash, message, signed_pkcs1.signature,
                   Cert(kOkRsa).der);

    const ULONG salt = static_cast<ULONG>(GetHashInfo(hash).digest_size);
    BCRYPT_PSS_PADDING_INFO pss{algorithm.c_str(), salt};
    const KspSignature signed_pss = Sign(key, &pss, NCRYPT_PAD_PSS_FLAG, digest);
    ASSERT_NTE(signed_pss.status, ERROR_SUCCESS);
    EXPECT_TRUE(
        VerifiedByWindows(Cert(kOkRsa), &pss, BCRYPT_PAD_PSS, digest, signed_pss.signature));
    Manifest().Add(base + "-pss", "rsa-pss", hash, message, signed_pss.signature, Cert(kOkRsa).der,
                   std::to_string(salt));
  }
}

TEST_F(FakeAgentKsp, EachScriptedFailureIsItsCodeAndTheProviderHandleSignsNext) {
  ExpectOkSignature("ksp-before-failures");  // a kept connection, as a long-lived caller has
  for (const ErrorCase& c : kErrorCases) {
    SCOPED_TRACE(c.label);
    const NCRYPT_KEY_HANDLE key = Open(c.label);
    ASSERT_NE(key, 0u);
    const Bytes digest = BcryptDigest(HashAlgorithm::kSha256, BcryptRandomBytes(64));
    BCRYPT_PKCS1_PADDING_INFO pkcs1{BCRYPT_SHA256_ALGORITHM};
    const KspSignature failed = Sign(key, &pkcs1, NCRYPT_PAD_PKCS1_FLAG, digest);
    EXPECT_NTE(failed.status, static_cast<SECURITY_STATUS>(c.code));
    ExpectDuration(c.label, failed.elapsed);
    // The same provider handle, the next call: signs (reconnecting when the connection died).
    ExpectOkSignature();
  }
}

// ---- signumcsp.dll through its CP* exports
// ---------------------------------------------------------

// The CSP's entry points, or why they cannot be had (error: empty when all are there).
struct CspUnderTest : CspEntryPoints {
  std::string error;
};

const CspUnderTest& Csp() {
  static const CspUnderTest csp = [] {
    CspUnderTest f;
    const std::wstring path = ProviderDllPath(kCspDllName);
    HMODULE module = LoadLibraryW(path.c_str());  // never freed (the CSP pins itself anyway)
    if (module == nullptr) {
      f.error = "LoadLibrary(" + NarrowAscii(path) + "): " + Win32ErrorName(GetLastError());
      return f;
    }
    std::string missing;
    static_cast<CspEntryPoints&>(f) = ResolveCspEntryPoints(module, &missing);
    if (!missing.empty()) f.error = "no " + missing;
    return f;
  }();
  return csp;
}

struct CspSignature {
  DWORD error = 0;  // ERROR_SUCCESS or GetLastError() of the failing call
  Bytes signature;  // big-endian (reversed from CryptoAPI's order)
  milliseconds elapsed{0};
};

class FakeAgentCsp : public FakeAgentEnvironment {
 protected:
  void SetUp() override {
    FakeAgentEnvironment::SetUp();
    if (HasFatalFailure()) return;
    ASSERT_TRUE(Csp().error.empty()) << Csp().error;
  }
  void TearDown() override {
    for (HCRYPTPROV context : contexts_) {
      EXPECT_TRUE(Csp().release(context, 0));
    }
  }

  // CPAcquireContext as advapi32 calls it (a version-3 table); returns its GetLastError().
  DWORD Acquire(const std::string& container, HCRYPTPROV* context) {
    std::string name = NarrowAscii(kCspName);
    VTableProvStruc table{3, nullptr, nullptr, PROV_RSA_FULL, nullptr, 0, name.data()};
    *context = 0;
    if (!Csp().acquire(context, container.c_str(), 0, &table)) return GetLastError();
    contexts_.push_back(*context);
    return ERROR_SUCCESS;
  }

  // SHA-256 of message signed with the context's AT_SIGNATURE key (CPCreateHash, CPHashData,
  // CPSignHash after its size query). On failure the output buffer must be untouched.
  static CspSignature Sign(HCRYPTPROV context, const Bytes& message) {
    CspSignature result;
    const CspUnderTest& csp = Csp();
    HCRYPTHASH hash = 0;
    if (!csp.create_hash(context, CALG_SHA_256, 0, 0, &hash) ||
        !csp.hash_data(context, hash, message.data(), static_cast<DWORD>(message.size()), 0)) {
      result.error = GetLastError();
      ADD_FAILURE() << "hashing failed: " << Win32ErrorName(result.error);
      return result;
    }
    DWORD size = 0;
    EXPECT_TRUE(csp.sign_hash(context, hash, AT_SIGNATURE, nullptr, 0, nullptr, &size))
        << "size query: " << Win32ErrorName(GetLastError());
    EXPECT_EQ(size, 256u) << "an RSA-2048 signature";
    Bytes buffer(size, 0xAA);
    const auto start = Clock::now();
    const BOOL ok = csp.sign_hash(context, hash, AT_SIGNATURE, nullptr, 0, buffer.data(), &size);
    result.error = ok ? ERROR_SUCCESS : GetLastError();
    result.elapsed = std::chrono::duration_cast<milliseconds>(Clock::now() - start);
    EXPECT_TRUE(csp.destroy_hash(context, hash));
    if (ok) {
      buffer.resize(size);
      result.signature.assign(buffer.rbegin(), buffer.rend());
    } else {
      EXPECT_TRUE(AllBytesAre(buffer, 0xAA)) << "a failed CPSignHash wrote into the output buffer";
    }
    return result;
  }

  // A genuine signature by ok-rsa-2048 through `context`, verified by BCrypt; when named, listed
  // for OpenSSL too (in CryptoAPI's little-endian order, as the CSP returned it).
  void ExpectOkSignature(HCRYPTPROV context, const char* manifest_name = nullptr) {
    const Bytes message = BcryptRandomBytes(100);
    const CspSignature ok = Sign(context, message);
    ASSERT_EQ(ok.error, static_cast<DWORD>(ERROR_SUCCESS)) << Win32ErrorName(ok.error);
    BCRYPT_PKCS1_PADDING_INFO pkcs1{BCRYPT_SHA256_ALGORITHM};
    EXPECT_TRUE(VerifiedByWindows(Cert(kOkRsa), &pkcs1, BCRYPT_PAD_PKCS1,
                                  BcryptDigest(HashAlgorithm::kSha256, message), ok.signature));
    if (manifest_name != nullptr) {
      const Bytes little_endian(ok.signature.rbegin(), ok.signature.rend());
      Manifest().Add(manifest_name, "rsa-pkcs1-le", HashAlgorithm::kSha256, message, little_endian,
                     Cert(kOkRsa).der);
    }
  }

  std::vector<HCRYPTPROV> contexts_;
};

TEST_F(FakeAgentCsp, ContainersAreExactlyTheAgentsRsaCertificatesAndTheEcOneIsNone) {
  HCRYPTPROV context = 0;
  ASSERT_EQ(Acquire(kOkRsa, &context), static_cast<DWORD>(ERROR_SUCCESS));
  std::vector<std::string> expected, listed;
  for (const Served& s : Files().served) {
    if (s.spec.rfind("rsa-", 0) == 0) expected.push_back(s.id);
  }
  DWORD flags = CRYPT_FIRST;
  for (int i = 0; i < 100; ++i, flags = 0) {  // 0: the next one (CryptGetProvParam)
    char name[256] = {};
    DWORD size = sizeof name;
    if (!Csp().get_prov_param(context, PP_ENUMCONTAINERS, reinterpret_cast<BYTE*>(name), &size,
                              flags)) {
      EXPECT_EQ(GetLastError(), static_cast<DWORD>(ERROR_NO_MORE_ITEMS));
      break;
    }
    listed.push_back(name);
  }
  EXPECT_EQ(listed, expected);

  HCRYPTPROV ec = 0;
  EXPECT_EQ(Acquire(kOkEc, &ec), static_cast<DWORD>(NTE_BAD_KEYSET))
      << "the CSP is PROV_RSA_FULL: an EC certificate is no container";
}

TEST_F(FakeAgentCsp, EachScriptedFailureIsItsCodeAndTheNextSignatureVerifies) {
  HCRYPTPROV ok = 0;
  ASSERT_EQ(Acquire(kOkRsa, &ok), static_cast<DWORD>(ERROR_SUCCESS));
  ExpectOkSignature(ok, "csp-before-failures");
  for (const ErrorCase& c : kErrorCases) {
    SCOPED_TRACE(c.label);
    // Acquiring needs only the (cached) list; the scripted answer comes with the signature.
    HCRYPTPROV context = 0;
    ASSERT_EQ(Acquire(c.label, &context), static_cast<DWORD>(ERROR_SUCCESS));
    const CspSignature failed = Sign(context, BcryptRandomBytes(64));
    EXPECT_EQ(failed.error, static_cast<DWORD>(c.code))
        << Win32ErrorName(failed.error) << ", expected "
        << Win32ErrorName(static_cast<DWORD>(c.code));
    ExpectDuration(c.label, failed.elapsed);
    // The failed context stays usable for what needs no agent; the next signature works.
    HCRYPTKEY key = 0;
    EXPECT_TRUE(Csp().get_user_key(context, AT_SIGNATURE, &key)) << Win32ErrorName(GetLastError());
    if (key != 0) {
      EXPECT_TRUE(Csp().destroy_key(context, key));
    }
    ExpectOkSignature(ok);
  }
}

// ---- SIGNUM_CNG_RECORD and signum-cng-replay.exe
// --------------------------------------------------

// SIGNUM_CNG_RECORD set for one scope; the providers read it at every call.
class RecordingTo {
 public:
  explicit RecordingTo(const std::string& path) {
    std::remove(path.c_str());
    SetEnvironmentVariableA("SIGNUM_CNG_RECORD", path.c_str());
  }
  ~RecordingTo() { SetEnvironmentVariableA("SIGNUM_CNG_RECORD", nullptr); }
  RecordingTo(const RecordingTo&) = delete;
  RecordingTo& operator=(const RecordingTo&) = delete;
};

struct RecordedTrace {
  std::string text;
  nlohmann::json header;
  std::vector<nlohmann::json> calls;
  std::vector<std::string> functions() const {
    std::vector<std::string> names;
    for (const auto& call : calls) names.push_back(call.value("fn", ""));
    return names;
  }
  // The n-th recorded call of fn (from 0); null when there is none.
  nlohmann::json Call(const std::string& fn, size_t n = 0) const {
    for (const auto& call : calls) {
      if (call.value("fn", "") == fn && n-- == 0) return call;
    }
    ADD_FAILURE() << "no call " << fn << " in the trace";
    return nullptr;
  }
  // The recorded calls of fn that wrote a signature (not size queries).
  std::vector<nlohmann::json> Signatures(const std::string& fn) const {
    std::vector<nlohmann::json> found;
    for (const auto& call : calls) {
      if (call.value("fn", "") == fn && call.at("out").contains("pbSignature")) {
        found.push_back(call);
      }
    }
    return found;
  }
};

RecordedTrace ReadTrace(const std::string& path) {
  RecordedTrace trace;
  trace.text = ReadTextFile(path);
  std::istringstream lines(trace.text);
  for (std::string line; std::getline(lines, line);) {
    nlohmann::json parsed = nlohmann::json::parse(line, nullptr, false);
    EXPECT_FALSE(parsed.is_discarded()) << "not JSON: " << line;
    if (parsed.is_discarded()) continue;
    EXPECT_EQ(parsed.value("v", 0), 1) << line;
    if (trace.header.is_null()) {
      trace.header = std::move(parsed);
    } else {
      trace.calls.push_back(std::move(parsed));
    }
  }
  return trace;
}

std::string TraceFile(const std::string& name) {
  return EnvironmentValue("SIGNUM_CNG_OUTPUT_DIR") + "\\" + name;
}

void WriteText(const std::string& path, const std::string& text) {
  WriteBinaryFile(path, ByteView(reinterpret_cast<const uint8_t*>(text.data()), text.size()));
}

std::string Replaced(std::string text, const std::string& from, const std::string& to) {
  size_t at = 0, count = 0;
  while ((at = text.find(from, at)) != std::string::npos) {
    text.replace(at, from.size(), to);
    at += to.size();
    ++count;
  }
  EXPECT_GT(count, 0u) << "'" << from << "' is not in the trace";
  return text;
}

// signum-cng-replay.exe (beside the providers) on a trace: its exit code and output.
ChildRun Replay(const std::string& trace) {
  const ChildRun run =
      RunProgram(ProviderDllPath(L"signum-cng-replay.exe"), WidenAscii("\"" + trace + "\""), {},
                 60000, ChildOutput::kCapture);
  EXPECT_TRUE(run.started) << "signum-cng-replay.exe: " << Win32ErrorName(run.start_error);
  EXPECT_TRUE(run.finished) << run.output;
  std::cout << "signum-cng-replay " << trace << ": exit " << run.exit_code << "\n" << run.output;
  return run;
}

// The three verdicts every recorded session must get: it replays (0, with its signatures
// verified), the same trace with the key edited to `deny` diverges at the first signature
// (entry point first_sign, 1), and a version-2 header is refused (2).
void ExpectReplayVerdicts(const RecordedTrace& trace, const std::string& path,
                          const std::string& key_argument, const std::string& first_sign) {
  const ChildRun matched = Replay(path);
  EXPECT_EQ(matched.exit_code, 0u) << matched.output;
  EXPECT_NE(matched.output.find(" 0 diverged, 0 not replayed"), std::string::npos)
      << matched.output;
  const std::string verified =
      std::to_string(trace.Signatures(first_sign).size()) + " signatures verified";
  EXPECT_NE(matched.output.find(verified), std::string::npos) << matched.output;

  const std::string denied_path = path + ".deny.jsonl";
  WriteText(denied_path, Replaced(trace.text, "\"" + key_argument + "\":\"" + kOkRsa + "\"",
                                  "\"" + key_argument + "\":\"deny\""));
  const ChildRun denied = Replay(denied_path);
  EXPECT_EQ(denied.exit_code, 1u) << denied.output;
  const auto signatures = trace.Signatures(first_sign);
  ASSERT_FALSE(signatures.empty());
  const std::string named =
      "first divergence: #" + std::to_string(signatures.front().value("seq", 0)) + " " + first_sign;
  EXPECT_NE(denied.output.find(named), std::string::npos) << denied.output;
  EXPECT_NE(denied.output.find("NTE_PERM"), std::string::npos) << denied.output;

  const std::string v2_path = path + ".v2.jsonl";
  const std::string first_line = trace.text.substr(0, trace.text.find('\n'));
  WriteText(v2_path,
            Replaced(first_line, "\"v\":1", "\"v\":2") + trace.text.substr(first_line.size()));
  const ChildRun refused = Replay(v2_path);
  EXPECT_EQ(refused.exit_code, 2u) << refused.output;
  EXPECT_NE(refused.output.find("version 2 is not supported"), std::string::npos) << refused.output;
}

std::string Utf16Hex(std::string_view ascii) {
  const std::wstring wide = WidenAscii(ascii);
  return HexEncode(
      ByteView(reinterpret_cast<const uint8_t*>(wide.data()), wide.size() * sizeof(wchar_t)));
}

TEST_F(FakeAgentEnvironment, KspSessionIsRecordedAndReplays) {
  std::string error;
  NCRYPT_KEY_STORAGE_FUNCTION_TABLE* t = KspTable(&error);  // loaded before recording starts
  ASSERT_NE(t, nullptr) << error;
  const std::string path = TraceFile("ksp-session.jsonl");
  const std::string pin = "ksp-pin-4711";
  const Bytes message = BcryptRandomBytes(200);
  const Bytes digest = BcryptDigest(HashAlgorithm::kSha256, message);
  BCRYPT_PKCS1_PADDING_INFO pkcs1{BCRYPT_SHA256_ALGORITHM};
  BCRYPT_PSS_PADDING_INFO pss{BCRYPT_SHA256_ALGORITHM, 32};
  Bytes digest_info = BuildDigestInfo(HashAlgorithm::kSha256, digest).value();
  Bytes pkcs1_signature(256), pss_signature(256), digest_info_signature(256), blob;
  {
    RecordingTo recording(path);
    NCRYPT_PROV_HANDLE provider = 0;
    NCRYPT_KEY_HANDLE key = 0;
    ASSERT_NTE(t->OpenProvider(&provider, kKspName, 0), ERROR_SUCCESS);
    NCryptKeyName* listed = nullptr;
    PVOID enumeration = nullptr;
    EXPECT_NTE(t->EnumKeys(provider, nullptr, &listed, &enumeration, 0), ERROR_SUCCESS);
    EXPECT_NTE(t->FreeBuffer(listed), ERROR_SUCCESS);
    EXPECT_NTE(t->FreeBuffer(enumeration), ERROR_SUCCESS);
    DWORD algorithm_count = 0;
    NCryptAlgorithmName* algorithms = nullptr;
    EXPECT_NTE(
        t->EnumAlgorithms(provider, NCRYPT_SIGNATURE_OPERATION, &algorithm_count, &algorithms, 0),
        ERROR_SUCCESS);
    EXPECT_NTE(t->FreeBuffer(algorithms), ERROR_SUCCESS);
    DWORD size = 0;
    EXPECT_NTE(t->GetProviderProperty(provider, NCRYPT_NAME_PROPERTY, nullptr, 0, &size, 0),
               ERROR_SUCCESS);
    Bytes name(size);
    EXPECT_NTE(t->GetProviderProperty(provider, NCRYPT_NAME_PROPERTY, name.data(), size, &size, 0),
               ERROR_SUCCESS);
    ASSERT_NTE(t->OpenKey(provider, &key, WidenAscii(kOkRsa).c_str(), 0, 0), ERROR_SUCCESS);
    DWORD bits = 0;
    EXPECT_NTE(t->GetKeyProperty(provider, key, NCRYPT_LENGTH_PROPERTY,
                                 reinterpret_cast<PBYTE>(&bits), sizeof bits, &size, 0),
               ERROR_SUCCESS);
    // A PIN a caller sets (this provider has none to take): never written to the trace.
    std::wstring wide_pin = WidenAscii(pin);
    EXPECT_NTE(t->SetKeyProperty(provider, key, NCRYPT_PIN_PROPERTY,
                                 reinterpret_cast<PBYTE>(wide_pin.data()),
                                 static_cast<DWORD>(wide_pin.size() * sizeof(wchar_t)), 0),
               NTE_NOT_SUPPORTED);
    EXPECT_NTE(t->ExportKey(provider, key, 0, BCRYPT_RSAPUBLIC_BLOB, nullptr, nullptr, 0, &size, 0),
               ERROR_SUCCESS);
    blob.resize(size);
    EXPECT_NTE(
        t->ExportKey(provider, key, 0, BCRYPT_RSAPUBLIC_BLOB, nullptr, blob.data(), size, &size, 0),
        ERROR_SUCCESS);
    PBYTE hash = const_cast<PBYTE>(digest.data());
    EXPECT_NTE(
        t->SignHash(provider, key, &pkcs1, hash, 32, nullptr, 0, &size, NCRYPT_PAD_PKCS1_FLAG),
        ERROR_SUCCESS);
    EXPECT_NTE(t->SignHash(provider, key, &pkcs1, hash, 32, pkcs1_signature.data(), 256, &size,
                           NCRYPT_PAD_PKCS1_FLAG),
               ERROR_SUCCESS);
    EXPECT_NTE(t->SignHash(provider, key, &pss, hash, 32, pss_signature.data(), 256, &size,
                           NCRYPT_PAD_PSS_FLAG),
               ERROR_SUCCESS);
    // signtool /ds: PKCS#1 without an algorithm id over the DigestInfo the caller built.
    BCRYPT_PKCS1_PADDING_INFO no_algorithm{nullptr};
    EXPECT_NTE(t->SignHash(provider, key, &no_algorithm, digest_info.data(),
                           static_cast<DWORD>(digest_info.size()), digest_info_signature.data(),
                           256, &size, NCRYPT_PAD_PKCS1_FLAG),
               ERROR_SUCCESS);
    EXPECT_NTE(t->VerifySignature(provider, key, &pkcs1, hash, 32, pkcs1_signature.data(), 256,
                                  NCRYPT_PAD_PKCS1_FLAG),
               ERROR_SUCCESS);
    EXPECT_NTE(t->FreeKey(provider, key), ERROR_SUCCESS);
    EXPECT_NTE(t->FreeProvider(provider), ERROR_SUCCESS);
  }
  EXPECT_TRUE(VerifiedByWindows(Cert(kOkRsa), &pkcs1, BCRYPT_PAD_PKCS1, digest, pkcs1_signature));
  EXPECT_TRUE(VerifiedByWindows(Cert(kOkRsa), &pss, BCRYPT_PAD_PSS, digest, pss_signature));
  EXPECT_EQ(digest_info_signature, pkcs1_signature) << "PKCS#1 v1.5 is deterministic";
  Manifest().Add("recorded-ksp-pkcs1", "rsa-pkcs1", HashAlgorithm::kSha256, message,
                 pkcs1_signature, Cert(kOkRsa).der);
  Manifest().Add("recorded-ksp-pss", "rsa-pss", HashAlgorithm::kSha256, message, pss_signature,
                 Cert(kOkRsa).der, "32");

  RecordedTrace trace = ReadTrace(path);
  EXPECT_EQ(trace.header.value("kind", ""), "signum-cng-trace");
  EXPECT_EQ(trace.header.value("recorder", ""), "signumksp.dll");
  EXPECT_EQ(trace.header.value("pid", 0UL), GetCurrentProcessId());
  EXPECT_EQ(trace.functions(), (std::vector<std::string>{"OpenProvider",
                                                         "EnumKeys",
                                                         "FreeBuffer",
                                                         "FreeBuffer",
                                                         "EnumAlgorithms",
                                                         "FreeBuffer",
                                                         "GetProviderProperty",
                                                         "GetProviderProperty",
                                                         "OpenKey",
                                                         "GetKeyProperty",
                                                         "SetKeyProperty",
                                                         "ExportKey",
                                                         "ExportKey",
                                                         "SignHash",
                                                         "SignHash",
                                                         "SignHash",
                                                         "SignHash",
                                                         "VerifySignature",
                                                         "FreeKey",
                                                         "FreeProvider"}));
  for (size_t i = 0; i < trace.calls.size(); ++i) {
    EXPECT_EQ(trace.calls[i].value("seq", 0u), i + 1) << trace.calls[i].dump();
  }
  // Nothing of the PIN, as text or UTF-16; its length only.
  EXPECT_EQ(trace.text.find(pin), std::string::npos);
  EXPECT_EQ(trace.text.find(Utf16Hex(pin)), std::string::npos);
  nlohmann::json set_pin = trace.Call("SetKeyProperty");
  EXPECT_EQ(set_pin["args"]["pbInput"],
            (nlohmann::json{{"redacted", true}, {"length", pin.size() * 2}}));
  EXPECT_EQ(set_pin["rv"]["name"], "NTE_NOT_SUPPORTED");
  EXPECT_EQ(trace.Call("OpenKey")["args"]["pszKeyName"], kOkRsa);
  EXPECT_EQ(trace.Call("GetKeyProperty")["out"]["pcbResult"], 4);
  nlohmann::json listed = trace.Call("EnumKeys")["out"];
  EXPECT_EQ(listed["ppKeyName"]["pszName"], Cert(kOkRsa).id);
  // The buffers are given back by the addresses they were handed out at.
  EXPECT_EQ(trace.Call("FreeBuffer", 0)["args"]["pvInput"], listed["ppKeyName"]["address"]);
  EXPECT_EQ(trace.Call("FreeBuffer", 1)["args"]["pvInput"], listed["ppEnumState"]);
  EXPECT_EQ(trace.Call("FreeBuffer", 2)["args"]["pvInput"],
            trace.Call("EnumAlgorithms")["out"]["ppAlgList"]);
  EXPECT_EQ(trace.Call("ExportKey", 1)["out"]["pbOutput"], HexEncode(blob));

  auto signatures = trace.Signatures("SignHash");
  ASSERT_EQ(signatures.size(), 3u);
  EXPECT_EQ(signatures[0]["args"]["pPaddingInfo"],
            (nlohmann::json{{"type", "pkcs1"}, {"pszAlgId", "SHA256"}}));
  EXPECT_EQ(signatures[2]["args"]["pPaddingInfo"],
            (nlohmann::json{{"type", "pkcs1"}, {"pszAlgId", nullptr}}));
  EXPECT_EQ(signatures[2]["args"]["pbHashValue"], HexEncode(digest_info));
  EXPECT_EQ(trace.Call("VerifySignature")["args"]["pbSignature"], HexEncode(pkcs1_signature));
  EXPECT_EQ(signatures[1]["args"]["pPaddingInfo"],
            (nlohmann::json{{"type", "pss"}, {"pszAlgId", "SHA256"}, {"cbSalt", 32}}));
  EXPECT_EQ(signatures[0]["args"]["pbHashValue"], HexEncode(digest));
  EXPECT_EQ(signatures[0]["rv"], (nlohmann::json{{"name", "ERROR_SUCCESS"}, {"value", 0}}));
  EXPECT_EQ(signatures[0]["out"]["pbSignature"], HexEncode(pkcs1_signature));
  EXPECT_EQ(signatures[1]["out"]["pbSignature"], HexEncode(pss_signature));

  ExpectReplayVerdicts(trace, path, "pszKeyName", "SignHash");
}

TEST_F(FakeAgentEnvironment, CspSessionIsRecordedAndReplays) {
  const CspUnderTest& csp = Csp();
  ASSERT_TRUE(csp.error.empty()) << csp.error;
  const std::string path = TraceFile("csp-session.jsonl");
  const std::string pin = "csp-pin-0815";
  const Bytes set_message = BcryptRandomBytes(120), hashed_message = BcryptRandomBytes(90);
  const Bytes set_digest = BcryptDigest(HashAlgorithm::kSha256, set_message);
  Bytes set_signature(256), hashed_signature(256);  // little-endian, as CryptoAPI returns them
  Bytes hashed_value(32);
  {
    RecordingTo recording(path);
    std::string provider_name = NarrowAscii(kCspName);
    VTableProvStruc table{3, nullptr, nullptr, PROV_RSA_FULL, nullptr, 0, provider_name.data()};
    HCRYPTPROV context = 0;
    // The SafeNet-style PIN prefix signtool /kc users write; the CSP drops it.
    const std::string container = "[{{" + pin + "}}]=" + kOkRsa;
    ASSERT_TRUE(csp.acquire(&context, container.c_str(), 0, &table))
        << Win32ErrorName(GetLastError());
    EXPECT_TRUE(csp.set_prov_param(context, PP_SIGNATURE_PIN,
                                   reinterpret_cast<const BYTE*>(pin.c_str()), 0));
    DWORD size = 0;
    EXPECT_TRUE(csp.get_prov_param(context, PP_NAME, nullptr, &size, 0));
    Bytes name(size);
    EXPECT_TRUE(csp.get_prov_param(context, PP_NAME, name.data(), &size, 0));
    HCRYPTKEY key = 0;
    ASSERT_TRUE(csp.get_user_key(context, AT_SIGNATURE, &key)) << Win32ErrorName(GetLastError());
    DWORD bits = 0;
    size = sizeof bits;
    EXPECT_TRUE(
        csp.get_key_param(context, key, KP_KEYLEN, reinterpret_cast<BYTE*>(&bits), &size, 0));
    size = 0;
    EXPECT_TRUE(csp.export_key(context, key, 0, PUBLICKEYBLOB, 0, nullptr, &size));
    // A value set (HP_HASHVAL, as signtool does), then data hashed by the CSP.
    HCRYPTHASH hash = 0;
    ASSERT_TRUE(csp.create_hash(context, CALG_SHA_256, 0, 0, &hash));
    EXPECT_TRUE(csp.set_hash_param(context, hash, HP_HASHVAL, set_digest.data(), 0));
    size = 0;
    EXPECT_TRUE(csp.sign_hash(context, hash, AT_SIGNATURE, nullptr, 0, nullptr, &size));
    EXPECT_TRUE(csp.sign_hash(context, hash, AT_SIGNATURE, nullptr, 0, set_signature.data(), &size))
        << Win32ErrorName(GetLastError());
    EXPECT_TRUE(csp.destroy_hash(context, hash));
    ASSERT_TRUE(csp.create_hash(context, CALG_SHA_256, 0, 0, &hash));
    EXPECT_TRUE(csp.hash_data(context, hash, hashed_message.data(),
                              static_cast<DWORD>(hashed_message.size()), 0));
    size = static_cast<DWORD>(hashed_value.size());
    EXPECT_TRUE(csp.get_hash_param(context, hash, HP_HASHVAL, hashed_value.data(), &size, 0));
    size = 256;
    EXPECT_TRUE(
        csp.sign_hash(context, hash, AT_SIGNATURE, nullptr, 0, hashed_signature.data(), &size))
        << Win32ErrorName(GetLastError());
    EXPECT_TRUE(csp.verify_signature(context, hash, hashed_signature.data(), 256, key, nullptr, 0))
        << Win32ErrorName(GetLastError());
    EXPECT_TRUE(csp.destroy_hash(context, hash));
    EXPECT_TRUE(csp.destroy_key(context, key));
    EXPECT_TRUE(csp.release(context, 0));
  }
  BCRYPT_PKCS1_PADDING_INFO pkcs1{BCRYPT_SHA256_ALGORITHM};
  for (const auto& [signature, message] :
       {std::pair{&set_signature, &set_message}, std::pair{&hashed_signature, &hashed_message}}) {
    const Bytes big_endian(signature->rbegin(), signature->rend());
    EXPECT_TRUE(VerifiedByWindows(Cert(kOkRsa), &pkcs1, BCRYPT_PAD_PKCS1,
                                  BcryptDigest(HashAlgorithm::kSha256, *message), big_endian));
  }
  Manifest().Add("recorded-csp-hashval", "rsa-pkcs1-le", HashAlgorithm::kSha256, set_message,
                 set_signature, Cert(kOkRsa).der);
  Manifest().Add("recorded-csp-hashdata", "rsa-pkcs1-le", HashAlgorithm::kSha256, hashed_message,
                 hashed_signature, Cert(kOkRsa).der);

  RecordedTrace trace = ReadTrace(path);
  EXPECT_EQ(trace.header.value("kind", ""), "signum-cng-trace");
  EXPECT_EQ(trace.header.value("recorder", ""), "signumcsp.dll");
  EXPECT_EQ(trace.functions(),
            (std::vector<std::string>{
                "CPAcquireContext",  "CPSetProvParam", "CPGetProvParam", "CPGetProvParam",
                "CPGetUserKey",      "CPGetKeyParam",  "CPExportKey",    "CPCreateHash",
                "CPSetHashParam",    "CPSignHash",     "CPSignHash",     "CPDestroyHash",
                "CPCreateHash",      "CPHashData",     "CPGetHashParam", "CPSignHash",
                "CPVerifySignature", "CPDestroyHash",  "CPDestroyKey",   "CPReleaseContext"}));
  EXPECT_EQ(trace.text.find(pin), std::string::npos) << "the PIN is in the trace";
  nlohmann::json acquire = trace.calls.at(0);
  EXPECT_EQ(acquire["args"]["szContainer"], kOkRsa);
  EXPECT_EQ(acquire["args"]["container_pin"],
            (nlohmann::json{{"redacted", true}, {"length", pin.size()}}));
  EXPECT_EQ(acquire["args"]["pVTable"]["dwProvType"], PROV_RSA_FULL);
  EXPECT_EQ(acquire["rv"],
            (nlohmann::json{{"name", "ERROR_SUCCESS"}, {"value", 0}, {"returned", true}}));
  EXPECT_EQ(trace.Call("CPSetProvParam")["args"]["pbData"],
            (nlohmann::json{{"redacted", true}, {"length", pin.size()}}));
  EXPECT_EQ(trace.Call("CPGetKeyParam")["out"]["pcbDataLen"], 4);
  EXPECT_EQ(trace.Call("CPSetHashParam")["args"]["pbData"], HexEncode(set_digest));
  EXPECT_EQ(trace.Call("CPHashData")["args"]["pbData"], HexEncode(hashed_message));
  EXPECT_EQ(hashed_value, BcryptDigest(HashAlgorithm::kSha256, hashed_message));
  EXPECT_EQ(trace.Call("CPGetHashParam")["out"]["pbData"], HexEncode(hashed_value));

  auto signatures = trace.Signatures("CPSignHash");
  ASSERT_EQ(signatures.size(), 2u);
  EXPECT_EQ(signatures[0]["out"]["pbSignature"], HexEncode(set_signature));
  EXPECT_EQ(signatures[1]["out"]["pbSignature"], HexEncode(hashed_signature));

  ExpectReplayVerdicts(trace, path, "szContainer", "CPSignHash");
}

}  // namespace
}  // namespace signum::cng

// signum_cng_ncrypt_api_test: layer (b) of the CNG suite. signumksp.dll driven through the public
// NCrypt* API, exactly as an application calls it. Under Wine the NCrypt* calls go to our
// test-only ncrypt.dll (conformance/cng/router, loaded with WINEDLLOVERRIDES=ncrypt=n), so every
// result here is "through our router", our model of Microsoft's dispatcher, not Microsoft's. On a
// Windows runner the same program, copied alone, runs against Microsoft's ncrypt.dll: it detects
// which one it got, says so, and asserts router-only conventions (codes for unregistered names,
// made-up and freed handles) only through the router.
//
// What it covers: registration (RegisterKsp into the throwaway prefix's HKLM unless a KSP is
// registered already, the registered and an unregistered provider name, unregistering and
// registering again); EnumKeys against the agent's own list; OpenKey by id, by label and with
// each legacy key spec; the key properties tools read, with size queries and too-small buffers;
// UI properties callers set; SignHash with PKCS#1 v1.5 (SHA-1 where the policy allows it,
// SHA-256/384/512, and with a NULL algorithm id over a DigestInfo) and PSS (SHA-256/384/512) for
// RSA 2048/3072/4096; the public blob against the platform's own; publishing the certificates in
// CurrentUser\My / LocalMachine\My with CERT_KEY_PROV_INFO and removing them (restored if they
// were there before); negative cases (unknown and EC keys, bad and freed handles, wrong buffer and
// digest sizes, unsupported paddings and blob types, a server policy refusal as NTE_PERM).
// Not here: CryptAcquireCertificatePrivateKey on the installed certificates (Wine's crypt32 never
// calls ncrypt and answers CRYPT_E_NO_KEY_PROPERTY: Windows runner only).
//
// Wine is the caller, never the judge: every signature is written with its message and the
// certificate to SIGNUM_CNG_OUTPUT_DIR/manifest.tsv and verified by native OpenSSL
// (conformance/cng/run-wine-suite.sh).
//
// Environment (set by run-wine-suite.sh): SIGNUM_AGENT_TCP, SIGNUM_AGENT_SECRET_FILE,
// SIGNUM_CNG_OUTPUT_DIR, SIGNUM_CNG_BIN_DIR (where signumksp.dll is), SIGNUM_CNG_ROOT_CA.
#include <windows.h>
// A block of its own: these need windows.h's types first.
#include <bcrypt.h>
#include <gtest/gtest.h>
#include <ncrypt.h>
#include <wincrypt.h>

#include <cwctype>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "signum/cng/names.h"
#include "signum/cng/nte_status.h"
#include "signum/cng/provider_runtime.h"
#include "signum/cng/registration.h"
#include "signum/core/algorithms.h"
#include "signum/core/encoding.h"
#include "signum/core/files.h"
#include "signum/provider/wide_string.h"
#include "signum/testing/status_matchers.h"
#include "suite_support.h"

namespace signum::cng {
namespace {

using ::signum::testing::StatusIs;

using provider::Utf8FromWide;
using provider::WideFromUtf8;

// ---- shared state: the agent's list, the output directory, the manifest ----------------------

struct RsaKey {
  std::shared_ptr<const provider::ProviderCertificate> certificate;
};

class Suite : public ::testing::Environment {
 public:
  static Suite* instance;
  std::string skip_reason;
  std::string output_dir;  // Windows path
  std::optional<SignatureManifest> manifest;
  // The KSP image this run uses: the one already registered (a Windows machine set up by
  // signum-util, which this suite must leave as it found it), else SIGNUM_CNG_BIN_DIR\signumksp.dll
  // registered here (a fresh Wine prefix).
  std::wstring ksp_image;
  // Whether NCrypt* reaches our test-only router (Wine, or Windows with the router beside the
  // program) or Microsoft's ncrypt.dll (the program copied alone on Windows).
  bool through_our_router = false;
  std::string dispatcher;
  std::vector<RsaKey> rsa_keys;  // from the agent directly (not through the KSP)
  std::vector<std::shared_ptr<const provider::ProviderCertificate>> all_certificates;

  void SetUp() override {
    for (const char* name : {"SIGNUM_AGENT_TCP", "SIGNUM_AGENT_SECRET_FILE",
                             "SIGNUM_CNG_OUTPUT_DIR", "SIGNUM_CNG_BIN_DIR"}) {
      if (EnvironmentValue(name).empty()) {
        skip_reason = std::string(name) +
                      " not set: this program is run by conformance/cng/run-wine-suite.sh "
                      "(bin/ncrypt-router, WINEDLLOVERRIDES=ncrypt=n) or a Windows runner";
        return;
      }
    }
    output_dir = EnvironmentValue("SIGNUM_CNG_OUTPUT_DIR");
    CreateDirectoryA(output_dir.c_str(), nullptr);
    manifest.emplace(output_dir);
    manifest->Clear();  // this run's signatures only
    through_our_router = NcryptIsOurRouter();
    dispatcher = through_our_router ? "through our router (conformance/cng/router)"
                                    : "through Microsoft's ncrypt.dll";
    ::testing::Test::RecordProperty("ncrypt_dispatcher", dispatcher);
    std::cout << "NCrypt calls go " << dispatcher << "\n";
    auto existing = RegisteredKspImage();
    if (existing.ok()) {
      ksp_image = *existing;
    } else {
      ksp_image = WideFromUtf8(EnvironmentValue("SIGNUM_CNG_BIN_DIR")) + L"\\" + kKspDllName;
      ASSERT_NE(GetFileAttributesW(ksp_image.c_str()), INVALID_FILE_ATTRIBUTES)
          << Utf8FromWide(ksp_image) << " does not exist";
      Status registered = RegisterKsp(ksp_image);
      ASSERT_OK(registered);
    }

    // The agent's list, over this process's own connection: what the KSP must show.
    auto set = SharedProviderContext("signum_cng_ncrypt_api_test").Certificates();
    ASSERT_OK(set);
    for (const auto& c : (*set)->certificates) {
      all_certificates.push_back(c);
      if (c->key_spec.type != KeyType::kRsa) continue;
      rsa_keys.push_back(RsaKey{c});
    }
    std::set<int> sizes;
    for (const RsaKey& k : rsa_keys) sizes.insert(k.certificate->key_spec.rsa_bits);
    for (int bits : {2048, 3072, 4096}) {
      ASSERT_TRUE(sizes.count(bits)) << "the agent lists no RSA-" << bits
                                     << " certificate (the demo seed has rsa-2048/3072/4096)";
    }
  }

  // Our router is the ncrypt.dll beside this program (it is built into bin/ncrypt-router/ with it).
  static bool NcryptIsOurRouter() {
    HMODULE ncrypt = GetModuleHandleW(L"ncrypt.dll");
    wchar_t module_path[MAX_PATH] = {};
    if (ncrypt == nullptr || GetModuleFileNameW(ncrypt, module_path, MAX_PATH) == 0) return false;
    auto directory = [](std::wstring path) {
      path.resize(path.find_last_of(L"\\/") + 1);
      for (wchar_t& c : path) c = towlower(c);
      return path;
    };
    return directory(module_path) == directory(ThisProgramPath());
  }
};
Suite* Suite::instance = nullptr;

// ---- RAII handles and property helpers ------------------------------------------------------

class Handle {
 public:
  Handle() = default;
  explicit Handle(NCRYPT_HANDLE h) : h_(h) {}
  ~Handle() { reset(); }
  Handle(const Handle&) = delete;
  Handle& operator=(const Handle&) = delete;
  Handle(Handle&& other) noexcept : h_(other.release()) {}
  NCRYPT_HANDLE* out() {
    reset();
    return &h_;
  }
  NCRYPT_HANDLE get() const { return h_; }
  NCRYPT_HANDLE release() {
    NCRYPT_HANDLE h = h_;
    h_ = 0;
    return h;
  }
  void reset() {
    if (h_ != 0) {
      EXPECT_NTE(NCryptFreeObject(h_), ERROR_SUCCESS);
    }
    h_ = 0;
  }

 private:
  NCRYPT_HANDLE h_ = 0;
};

SECURITY_STATUS GetProperty(NCRYPT_HANDLE h, LPCWSTR name, Bytes* out) {
  DWORD size = 0;
  SECURITY_STATUS status = NCryptGetProperty(h, name, nullptr, 0, &size, 0);
  if (status != ERROR_SUCCESS) return status;
  out->assign(size, 0);
  status = NCryptGetProperty(h, name, out->data(), size, &size, 0);
  if (status == ERROR_SUCCESS) out->resize(size);
  return status;
}

std::wstring AsString(const Bytes& value) {
  std::wstring s(reinterpret_cast<const wchar_t*>(value.data()), value.size() / sizeof(wchar_t));
  while (!s.empty() && s.back() == L'\0') s.pop_back();
  return s;
}

DWORD AsDword(const Bytes& value) {
  EXPECT_EQ(value.size(), sizeof(DWORD));
  DWORD d = 0;
  if (value.size() == sizeof(DWORD)) memcpy(&d, value.data(), sizeof d);
  return d;
}

class NcryptApi : public ::testing::Test {
 protected:
  void SetUp() override {
    suite_ = Suite::instance;
    if (!suite_->skip_reason.empty()) GTEST_SKIP() << suite_->skip_reason;
    ASSERT_FALSE(suite_->rsa_keys.empty()) << "suite setup failed";
    ASSERT_NTE(NCryptOpenStorageProvider(provider_.out(), kKspName, 0), ERROR_SUCCESS)
        << "through our router";
  }

  Handle OpenKey(const std::string& name, DWORD legacy_key_spec = 0, DWORD flags = 0) {
    Handle key;
    const std::wstring wide = WideFromUtf8(name);
    EXPECT_NTE(NCryptOpenKey(provider_.get(), key.out(), wide.c_str(), legacy_key_spec, flags),
               ERROR_SUCCESS)
        << name;
    return key;
  }

  // Signs digest(message) with the given padding; checks the size-query and too-small
  // conventions on the way, and records the signature for OpenSSL.
  void SignAndRecord(const RsaKey& key, const std::string& name, DWORD padding, void* padding_info,
                     const char* kind, HashAlgorithm hash, ByteView to_sign, ByteView message,
                     const std::string& param, Bytes* signature_out = nullptr) {
    Handle handle = OpenKey(key.certificate->id);
    const DWORD expected = static_cast<DWORD>(key.certificate->key_spec.SignatureSize());
    Bytes input(to_sign.begin(), to_sign.end());
    DWORD size = 0;
    ASSERT_NTE(NCryptSignHash(handle.get(), padding_info, input.data(),
                              static_cast<DWORD>(input.size()), nullptr, 0, &size, padding),
               ERROR_SUCCESS)
        << name << ": size query";
    ASSERT_EQ(size, expected) << name;
    Bytes signature(size);
    DWORD too_small_size = 0;
    EXPECT_NTE(
        NCryptSignHash(handle.get(), padding_info, input.data(), static_cast<DWORD>(input.size()),
                       signature.data(), size - 1, &too_small_size, padding),
        NTE_BUFFER_TOO_SMALL)
        << name;
    ASSERT_NTE(
        NCryptSignHash(handle.get(), padding_info, input.data(), static_cast<DWORD>(input.size()),
                       signature.data(), size, &size, padding),
        ERROR_SUCCESS)
        << name << " (through our router)";
    ASSERT_EQ(size, expected) << name;
    // The KSP's own VerifySignature accepts it and rejects a flipped bit (its conventions; the
    // judge of the signature itself is OpenSSL).
    EXPECT_NTE(
        NCryptVerifySignature(handle.get(), padding_info, input.data(),
                              static_cast<DWORD>(input.size()), signature.data(), size, padding),
        ERROR_SUCCESS)
        << name;
    Bytes tampered = signature;
    tampered[tampered.size() / 2] ^= 0x01;
    EXPECT_NTE(
        NCryptVerifySignature(handle.get(), padding_info, input.data(),
                              static_cast<DWORD>(input.size()), tampered.data(), size, padding),
        NTE_BAD_SIGNATURE)
        << name;
    suite_->manifest->Add(name, kind, hash, message, signature, key.certificate->certificate.Der(),
                          param);
    if (signature_out != nullptr) *signature_out = signature;
  }

  Suite* suite_ = nullptr;
  Handle provider_;
};

// SHA-1 only where the server's policy allows it for that certificate (the demo's does); the
// SHA-2 hashes always (a refusal fails the test).
const HashAlgorithm kHashes[] = {HashAlgorithm::kSha1, HashAlgorithm::kSha256,
                                 HashAlgorithm::kSha384, HashAlgorithm::kSha512};
bool SignsWith(const provider::ProviderCertificate& certificate, HashAlgorithm hash) {
  return hash != HashAlgorithm::kSha1 || certificate.AllowsHash(hash);
}

std::wstring CngAlgorithmId(HashAlgorithm hash) {
  return WideFromUtf8(GetHashInfo(hash).cng_algorithm_id);
}

// ---- provider ---------------------------------------------------------------------------------

TEST_F(NcryptApi, OpensTheRegisteredProviderAndRefusesAnUnregisteredName) {
  Bytes name;
  ASSERT_NTE(GetProperty(provider_.get(), NCRYPT_NAME_PROPERTY, &name), ERROR_SUCCESS);
  EXPECT_EQ(Utf8FromWide(AsString(name)), Utf8FromWide(kKspName));
  EXPECT_FALSE(NCryptIsKeyHandle(provider_.get())) << "a provider handle is not a key handle";

  Handle unregistered;
  const SECURITY_STATUS status =
      NCryptOpenStorageProvider(unregistered.out(), L"Signum No Such Provider", 0);
  if (suite_->through_our_router) {
    EXPECT_NTE(status, NTE_PROV_DLL_NOT_FOUND) << suite_->dispatcher;
    EXPECT_NTE(NCryptOpenStorageProvider(nullptr, kKspName, 0), NTE_INVALID_PARAMETER);
  } else {
    // Microsoft's code for an unknown name is what this run records, not what it asserts.
    EXPECT_NE(status, ERROR_SUCCESS) << "an unregistered provider name opened";
    RecordProperty("unregistered_provider_status", SecurityStatusName(status));
  }
  EXPECT_EQ(unregistered.get(), 0u);
}

TEST_F(NcryptApi, AlgorithmsAreRsaSigningOnly) {
  EXPECT_NTE(NCryptIsAlgSupported(provider_.get(), NCRYPT_RSA_ALGORITHM, 0), ERROR_SUCCESS);
  EXPECT_NTE(NCryptIsAlgSupported(provider_.get(), NCRYPT_ECDSA_P256_ALGORITHM, 0),
             NTE_NOT_SUPPORTED);
  DWORD count = 0;
  NCryptAlgorithmName* list = nullptr;
  ASSERT_NTE(NCryptEnumAlgorithms(provider_.get(), NCRYPT_SIGNATURE_OPERATION, &count, &list, 0),
             ERROR_SUCCESS);
  ASSERT_NE(list, nullptr);
  std::set<std::string> names;
  for (DWORD i = 0; i < count; ++i) names.insert(Utf8FromWide(list[i].pszName));
  EXPECT_TRUE(names.count("RSA")) << "EnumAlgorithms(SIGNATURE) lacks RSA";
  EXPECT_NTE(NCryptFreeBuffer(list), ERROR_SUCCESS);
}

// ---- keys -------------------------------------------------------------------------------------

TEST_F(NcryptApi, EnumKeysListsExactlyTheAgentsRsaKeys) {
  std::set<std::string> listed;
  void* state = nullptr;
  for (int guard = 0; guard < 1000; ++guard) {
    NCryptKeyName* key_name = nullptr;
    const SECURITY_STATUS status =
        NCryptEnumKeys(provider_.get(), nullptr, &key_name, &state, NCRYPT_SILENT_FLAG);
    if (status == NTE_NO_MORE_ITEMS) break;
    ASSERT_NTE(status, ERROR_SUCCESS);
    ASSERT_NE(key_name, nullptr);
    EXPECT_EQ(Utf8FromWide(key_name->pszAlgid), "RSA");
    EXPECT_TRUE(listed.insert(Utf8FromWide(key_name->pszName)).second)
        << "listed twice: " << Utf8FromWide(key_name->pszName);
    EXPECT_NTE(NCryptFreeBuffer(key_name), ERROR_SUCCESS);
  }
  ASSERT_NE(state, nullptr) << "EnumKeys handed out no enumeration state";
  EXPECT_NTE(NCryptFreeBuffer(state), ERROR_SUCCESS);
  std::set<std::string> expected;
  for (const RsaKey& k : suite_->rsa_keys) expected.insert(k.certificate->id);
  EXPECT_EQ(listed, expected) << "EnumKeys must list the agent's RSA certificates by id";
}

TEST_F(NcryptApi, OpensEachRsaKeyByIdAndByLabelWithItsProperties) {
  for (const RsaKey& k : suite_->rsa_keys) {
    const auto& c = *k.certificate;
    SCOPED_TRACE(c.label);
    for (const std::string& name : {c.id, c.label}) {
      Handle key = OpenKey(name);
      ASSERT_NE(key.get(), 0u);
      EXPECT_TRUE(NCryptIsKeyHandle(key.get()));
      Bytes value;
      ASSERT_NTE(GetProperty(key.get(), NCRYPT_LENGTH_PROPERTY, &value), ERROR_SUCCESS);
      EXPECT_EQ(AsDword(value), static_cast<DWORD>(c.key_spec.rsa_bits));
      ASSERT_NTE(GetProperty(key.get(), NCRYPT_ALGORITHM_GROUP_PROPERTY, &value), ERROR_SUCCESS);
      EXPECT_EQ(Utf8FromWide(AsString(value)), "RSA");
      ASSERT_NTE(GetProperty(key.get(), NCRYPT_ALGORITHM_PROPERTY, &value), ERROR_SUCCESS);
      EXPECT_EQ(Utf8FromWide(AsString(value)), "RSA");
      ASSERT_NTE(GetProperty(key.get(), NCRYPT_EXPORT_POLICY_PROPERTY, &value), ERROR_SUCCESS);
      EXPECT_EQ(AsDword(value), 0u) << "the private key never leaves the HSM";
      ASSERT_NTE(GetProperty(key.get(), NCRYPT_KEY_USAGE_PROPERTY, &value), ERROR_SUCCESS);
      EXPECT_TRUE(AsDword(value) & NCRYPT_ALLOW_SIGNING_FLAG);
      ASSERT_NTE(GetProperty(key.get(), NCRYPT_UNIQUE_NAME_PROPERTY, &value), ERROR_SUCCESS);
      EXPECT_EQ(Utf8FromWide(AsString(value)), c.id) << "the unique name is the certificate id";
      ASSERT_NTE(GetProperty(key.get(), NCRYPT_CERTIFICATE_PROPERTY, &value), ERROR_SUCCESS);
      EXPECT_EQ(value, c.certificate.Der()) << "SmartCardKeyCertificate is the certificate DER";

      // Size query, too small, exact.
      DWORD size = 0;
      ASSERT_NTE(NCryptGetProperty(key.get(), NCRYPT_CERTIFICATE_PROPERTY, nullptr, 0, &size, 0),
                 ERROR_SUCCESS);
      EXPECT_EQ(size, c.certificate.Der().size());
      Bytes small(8);
      EXPECT_NTE(NCryptGetProperty(key.get(), NCRYPT_CERTIFICATE_PROPERTY, small.data(),
                                   static_cast<DWORD>(small.size()), &size, 0),
                 NTE_BUFFER_TOO_SMALL);
    }
    // The legacy key specs CryptoAPI callers pass (CERT_KEY_PROV_INFO.dwKeySpec) open the same key.
    for (DWORD spec : {static_cast<DWORD>(AT_SIGNATURE), static_cast<DWORD>(AT_KEYEXCHANGE)}) {
      Handle key = OpenKey(c.id, spec, NCRYPT_SILENT_FLAG);
      EXPECT_NE(key.get(), 0u) << "dwLegacyKeySpec " << spec;
    }
  }
}

TEST_F(NcryptApi, ExportsThePublicBlobOfTheCertificatesKey) {
  for (const RsaKey& k : suite_->rsa_keys) {
    const auto& c = *k.certificate;
    SCOPED_TRACE(c.label);
    Handle key = OpenKey(c.id);
    DWORD size = 0;
    ASSERT_NTE(NCryptExportKey(key.get(), 0, BCRYPT_RSAPUBLIC_BLOB, nullptr, nullptr, 0, &size, 0),
               ERROR_SUCCESS);
    Bytes blob(size);
    EXPECT_NTE(NCryptExportKey(key.get(), 0, BCRYPT_RSAPUBLIC_BLOB, nullptr, blob.data(), size - 1,
                               &size, 0),
               NTE_BUFFER_TOO_SMALL);
    ASSERT_NTE(
        NCryptExportKey(key.get(), 0, BCRYPT_RSAPUBLIC_BLOB, nullptr, blob.data(), size, &size, 0),
        ERROR_SUCCESS);
    blob.resize(size);
    ASSERT_GE(blob.size(), sizeof(BCRYPT_RSAKEY_BLOB));
    BCRYPT_RSAKEY_BLOB header;
    memcpy(&header, blob.data(), sizeof header);
    EXPECT_EQ(header.Magic, static_cast<ULONG>(BCRYPT_RSAPUBLIC_MAGIC));
    EXPECT_EQ(header.BitLength, static_cast<ULONG>(c.key_spec.rsa_bits));

    // The same blob as the platform builds from the certificate's SubjectPublicKeyInfo.
    const Bytes platform_blob = PlatformRsaPublicBlob(c.certificate.Der());
    ASSERT_FALSE(platform_blob.empty());
    EXPECT_EQ(HexEncode(blob), HexEncode(platform_blob));

    // The private key is not exportable.
    EXPECT_NTE(NCryptExportKey(key.get(), 0, BCRYPT_RSAPRIVATE_BLOB, nullptr, nullptr, 0, &size, 0),
               NTE_NOT_SUPPORTED);
  }
}

// ---- signatures (verified by OpenSSL from manifest.tsv) -----------------------------------------

TEST_F(NcryptApi, SignsPkcs1WithEveryHashAndWithANullAlgorithmId) {
  for (const RsaKey& k : suite_->rsa_keys) {
    for (HashAlgorithm hash : kHashes) {
      if (!SignsWith(*k.certificate, hash)) continue;
      const std::string tag = k.certificate->label + "-pkcs1-" + std::string(HashName(hash));
      SCOPED_TRACE(tag);
      const Bytes message = BcryptRandomBytes(777);
      const Bytes digest = BcryptDigest(hash, message);
      const std::wstring alg = CngAlgorithmId(hash);
      BCRYPT_PKCS1_PADDING_INFO info{alg.c_str()};
      Bytes with_alg;
      SignAndRecord(k, tag, NCRYPT_PAD_PKCS1_FLAG, &info, "rsa-pkcs1", hash, digest, message, "-",
                    &with_alg);
      // NULL algorithm id: the caller hands over the DigestInfo (signtool /dg flows, F28).
      auto digest_info = BuildDigestInfo(hash, digest);
      ASSERT_OK(digest_info);
      BCRYPT_PKCS1_PADDING_INFO no_alg{nullptr};
      Bytes without_alg;
      SignAndRecord(k, tag + "-nullalg", NCRYPT_PAD_PKCS1_FLAG, &no_alg, "rsa-pkcs1", hash,
                    *digest_info, message, "-", &without_alg);
      // PKCS#1 v1.5 is deterministic: both paths sign the same encoded message.
      EXPECT_EQ(HexEncode(with_alg), HexEncode(without_alg));
    }
  }
}

TEST_F(NcryptApi, SignsPssWithEveryHash) {
  for (const RsaKey& k : suite_->rsa_keys) {
    for (HashAlgorithm hash : kHashes) {
      if (hash == HashAlgorithm::kSha1) continue;  // see RefusalsByServerPolicyAreNtePerm

      const std::string tag = k.certificate->label + "-pss-" + std::string(HashName(hash));
      SCOPED_TRACE(tag);
      const Bytes message = BcryptRandomBytes(555);
      const Bytes digest = BcryptDigest(hash, message);
      const std::wstring alg = CngAlgorithmId(hash);
      const ULONG salt = static_cast<ULONG>(GetHashInfo(hash).digest_size);
      BCRYPT_PSS_PADDING_INFO info{alg.c_str(), salt};
      SignAndRecord(k, tag, NCRYPT_PAD_PSS_FLAG, &info, "rsa-pss", hash, digest, message,
                    std::to_string(salt));
    }
  }
}

// The demo's policy allows SHA-1 with PKCS#1 v1.5 only (reference/server provisioning): the
// server's refusal reaches the caller as NTE_PERM, at SignHash, not as a signature.
TEST_F(NcryptApi, RefusalsByServerPolicyAreNtePerm) {
  const RsaKey& k = suite_->rsa_keys.front();
  Handle key = OpenKey(k.certificate->id);
  const Bytes message = BcryptRandomBytes(100);
  Bytes digest = BcryptDigest(HashAlgorithm::kSha1, message);  // NCryptSignHash takes PBYTE
  BCRYPT_PSS_PADDING_INFO info{BCRYPT_SHA1_ALGORITHM, 20};
  Bytes signature(k.certificate->key_spec.SignatureSize());
  DWORD size = 0;
  EXPECT_NTE(NCryptSignHash(key.get(), &info, digest.data(), static_cast<DWORD>(digest.size()),
                            signature.data(), static_cast<DWORD>(signature.size()), &size,
                            NCRYPT_PAD_PSS_FLAG),
             NTE_PERM)
      << "RSA-PSS with SHA-1";
}

// ---- properties callers set ------------------------------------------------------------------

TEST_F(NcryptApi, AcceptsUiPropertiesAndRefusesToChangeTheKey) {
  // signtool and certreq set these before signing; the provider shows no UI and accepts them.
  auto set_ui_properties = [](NCRYPT_HANDLE object) {
    HWND window = nullptr;
    wchar_t use_context[] = L"Signing with Signum (ncrypt_api_test)";
    EXPECT_NTE(NCryptSetProperty(object, NCRYPT_WINDOW_HANDLE_PROPERTY,
                                 reinterpret_cast<PBYTE>(&window), sizeof window, 0),
               ERROR_SUCCESS);
    EXPECT_NTE(NCryptSetProperty(object, NCRYPT_USE_CONTEXT_PROPERTY,
                                 reinterpret_cast<PBYTE>(use_context), sizeof use_context, 0),
               ERROR_SUCCESS);
  };
  set_ui_properties(provider_.get());
  Handle key = OpenKey(suite_->rsa_keys.front().certificate->id);
  set_ui_properties(key.get());
  DWORD length = 1024;
  EXPECT_NTE(NCryptSetProperty(key.get(), NCRYPT_LENGTH_PROPERTY, reinterpret_cast<PBYTE>(&length),
                               sizeof length, 0),
             NTE_NOT_SUPPORTED)
      << "the key belongs to the server";
}

// ---- negative cases ---------------------------------------------------------------------------

TEST_F(NcryptApi, UnknownAndNonRsaKeysAreBadKeyset) {
  Handle key;
  EXPECT_NTE(NCryptOpenKey(provider_.get(), key.out(), L"no-such-key", 0, 0), NTE_BAD_KEYSET);
  EXPECT_NTE(
      NCryptOpenKey(provider_.get(), key.out(), L"0000000000000000000000000000000000000000", 0, 0),
      NTE_BAD_KEYSET);
  EXPECT_NTE(NCryptOpenKey(provider_.get(), key.out(), L"", 0, 0), NTE_INVALID_PARAMETER);
  EXPECT_NTE(NCryptOpenKey(provider_.get(), nullptr, L"rsa-2048", 0, 0), NTE_INVALID_PARAMETER);
  // The KSP serves RSA keys only (issue 6); the agent's EC certificates are not its keys.
  for (const auto& c : suite_->all_certificates) {
    if (c->key_spec.type == KeyType::kRsa) continue;
    const std::wstring id = WideFromUtf8(c->id);
    EXPECT_NTE(NCryptOpenKey(provider_.get(), key.out(), id.c_str(), 0, 0), NTE_BAD_KEYSET)
        << c->label;
  }
  EXPECT_EQ(key.get(), 0u);
}

TEST_F(NcryptApi, BadAndFreedHandlesAreInvalidHandle) {
  // Made-up and freed handles are only safe to pass to a dispatcher that looks handles up rather
  // than dereferencing them; whether Microsoft's does is not documented.
  if (!suite_->through_our_router) {
    GTEST_SKIP() << "made-up and freed handles are checked through our router only";
  }
  const RsaKey& k = suite_->rsa_keys.front();
  Bytes digest(32, 0x5a);
  BCRYPT_PKCS1_PADDING_INFO info{BCRYPT_SHA256_ALGORITHM};
  DWORD size = 0;
  const NCRYPT_KEY_HANDLE made_up = 0x12345678;
  EXPECT_NTE(
      NCryptSignHash(made_up, &info, digest.data(), 32, nullptr, 0, &size, NCRYPT_PAD_PKCS1_FLAG),
      NTE_INVALID_HANDLE);
  EXPECT_NTE(NCryptGetProperty(made_up, NCRYPT_LENGTH_PROPERTY, nullptr, 0, &size, 0),
             NTE_INVALID_HANDLE);
  EXPECT_NTE(NCryptFreeObject(made_up), NTE_INVALID_HANDLE);
  EXPECT_FALSE(NCryptIsKeyHandle(made_up));
  Handle key;
  EXPECT_NTE(NCryptOpenKey(made_up, key.out(), L"rsa-2048", 0, 0), NTE_INVALID_HANDLE);
  // A provider handle where a key handle belongs.
  EXPECT_NTE(NCryptSignHash(provider_.get(), &info, digest.data(), 32, nullptr, 0, &size,
                            NCRYPT_PAD_PKCS1_FLAG),
             NTE_INVALID_HANDLE);

  Handle opened = OpenKey(k.certificate->id);
  const NCRYPT_KEY_HANDLE freed = opened.release();
  ASSERT_NTE(NCryptFreeObject(freed), ERROR_SUCCESS);
  EXPECT_FALSE(NCryptIsKeyHandle(freed));
  EXPECT_NTE(
      NCryptSignHash(freed, &info, digest.data(), 32, nullptr, 0, &size, NCRYPT_PAD_PKCS1_FLAG),
      NTE_INVALID_HANDLE);
  EXPECT_NTE(NCryptFreeObject(freed), NTE_INVALID_HANDLE) << "double free";
}

TEST_F(NcryptApi, WrongDigestSizesAndUnsupportedPaddingsAreRefused) {
  const RsaKey& k = suite_->rsa_keys.front();
  Handle key = OpenKey(k.certificate->id);
  Bytes signature(k.certificate->key_spec.SignatureSize());
  DWORD size = 0;
  auto sign = [&](void* info, Bytes digest, DWORD flags) {
    return NCryptSignHash(key.get(), info, digest.data(), static_cast<DWORD>(digest.size()),
                          signature.data(), static_cast<DWORD>(signature.size()), &size, flags);
  };
  BCRYPT_PKCS1_PADDING_INFO sha256{BCRYPT_SHA256_ALGORITHM};
  EXPECT_NTE(sign(&sha256, Bytes(31, 1), NCRYPT_PAD_PKCS1_FLAG), NTE_INVALID_PARAMETER)
      << "a 31-byte SHA-256 digest";
  EXPECT_NTE(sign(&sha256, Bytes(48, 1), NCRYPT_PAD_PKCS1_FLAG), NTE_INVALID_PARAMETER)
      << "a SHA-384-sized digest named SHA-256";
  BCRYPT_PKCS1_PADDING_INFO md5{BCRYPT_MD5_ALGORITHM};
  EXPECT_NTE(sign(&md5, Bytes(16, 1), NCRYPT_PAD_PKCS1_FLAG), NTE_NOT_SUPPORTED);
  BCRYPT_PKCS1_PADDING_INFO no_alg{nullptr};
  EXPECT_NTE(sign(&no_alg, Bytes(36, 1), NCRYPT_PAD_PKCS1_FLAG), NTE_NOT_SUPPORTED)
      << "raw PKCS#1 over something that is not a DigestInfo (TLS 1.0 MD5+SHA-1)";
  BCRYPT_OAEP_PADDING_INFO oaep{BCRYPT_SHA256_ALGORITHM, nullptr, 0};
  EXPECT_NTE(sign(&oaep, Bytes(32, 1), NCRYPT_PAD_OAEP_FLAG), NTE_NOT_SUPPORTED);
  EXPECT_NTE(sign(nullptr, Bytes(32, 1), 0), NTE_INVALID_PARAMETER) << "no padding at all";
  EXPECT_NTE(sign(&sha256, Bytes(32, 1), NCRYPT_PAD_PKCS1_FLAG | NCRYPT_PAD_PSS_FLAG),
             NTE_INVALID_PARAMETER);
  // Keys live on the server: no creation, no deletion through the KSP; the handle survives a
  // refused delete.
  Handle created;
  EXPECT_NTE(NCryptCreatePersistedKey(provider_.get(), created.out(), NCRYPT_RSA_ALGORITHM,
                                      L"new-key", 0, 0),
             NTE_NOT_SUPPORTED);
  EXPECT_NTE(NCryptDeleteKey(key.get(), 0), NTE_NOT_SUPPORTED);
  EXPECT_TRUE(NCryptIsKeyHandle(key.get()));
}

// ---- certificate stores (registration.h) -------------------------------------------------------

// The CERT_KEY_PROV_INFO of the certificate with this SHA-1 in <location>\My; empty if absent.
TEST_F(NcryptApi, InstallsCertificatesWithKeyProvInfoAndRemovesThem) {
  provider::ProviderContext& context = SharedProviderContext("signum_cng_ncrypt_api_test");
  struct Case {
    ProviderKind kind;
    StoreLocation location;
    DWORD location_flag;
    std::string provider;
    DWORD provider_type, key_spec;
    // Roots only into LocalMachine\Root: adding to CurrentUser\Root makes Windows ask the user
    // (a dialog no CI job can answer).
    bool roots;
  };
  const Case cases[] = {
      {ProviderKind::kKsp, StoreLocation::kCurrentUser, CERT_SYSTEM_STORE_CURRENT_USER,
       Utf8FromWide(kKspName), 0, 0, false},
      {ProviderKind::kCsp, StoreLocation::kLocalMachine, CERT_SYSTEM_STORE_LOCAL_MACHINE,
       Utf8FromWide(kCspName), PROV_RSA_FULL, AT_SIGNATURE, true},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.provider);
    // A machine set up with signum-util (the Windows job) already has them: put them back after.
    bool installed_before = false;
    for (const RsaKey& k : suite_->rsa_keys) {
      const ProvInfo info = FindInStore(c.location_flag, L"My", k.certificate->id);
      installed_before = installed_before || (info.has_info && info.provider == c.provider);
    }
    // Twice: the second call replaces, it does not duplicate.
    for (int round = 0; round < 2; ++round) {
      auto installed = InstallCertificates(context, c.kind, c.location, c.roots);
      ASSERT_OK(installed);
      std::set<std::string> expected, got(installed->begin(), installed->end());
      for (const RsaKey& k : suite_->rsa_keys) expected.insert(k.certificate->id);
      EXPECT_EQ(got, expected) << "both providers serve the agent's RSA keys, each once";
    }
    for (const RsaKey& k : suite_->rsa_keys) {
      const ProvInfo info = FindInStore(c.location_flag, L"My", k.certificate->id);
      ASSERT_TRUE(info.found) << k.certificate->label << " not in My";
      ASSERT_TRUE(info.has_info) << k.certificate->label << " has no CERT_KEY_PROV_INFO";
      EXPECT_EQ(info.provider, c.provider);
      EXPECT_EQ(info.container, k.certificate->id);
      EXPECT_EQ(info.provider_type, c.provider_type);
      EXPECT_EQ(info.key_spec, c.key_spec);
      EXPECT_EQ(info.flags, 0u);
      // Its chain: intermediates in CA, the root in Root (when asked for).
      for (const auto& authority : k.certificate->chain) {
        const bool root = authority.SubjectDer() == authority.IssuerDer();
        if (root && !c.roots) continue;
        EXPECT_TRUE(
            FindInStore(c.location_flag, root ? L"Root" : L"CA", authority.Sha1ThumbprintHex())
                .found)
            << authority.Subject();
      }
    }
    auto removed = RemoveInstalledCertificates(c.kind, c.location);
    ASSERT_OK(removed);
    EXPECT_EQ(*removed, static_cast<int>(suite_->rsa_keys.size()));
    for (const RsaKey& k : suite_->rsa_keys) {
      EXPECT_FALSE(FindInStore(c.location_flag, L"My", k.certificate->id).found)
          << k.certificate->label << " still in My after removal";
    }
    auto again = RemoveInstalledCertificates(c.kind, c.location);
    ASSERT_OK(again);
    EXPECT_EQ(*again, 0);
    if (installed_before) {
      auto restored = InstallCertificates(context, c.kind, c.location, /*install_roots=*/false);
      EXPECT_OK(restored);
    }
  }
}

// What signtool /sha1 and .NET do with a store certificate: CERT_KEY_PROV_INFO -> crypt32 ->
// ncrypt -> our KSP. Wine's crypt32 never calls ncrypt (it answers CRYPT_E_NO_KEY_PROPERTY), so
// this runs only against Microsoft's crypt32 and ncrypt.dll.
TEST_F(NcryptApi, StoreCertificateReachesTheKeyThroughCryptAcquireCertificatePrivateKey) {
  if (suite_->through_our_router) {
    GTEST_SKIP() << "CryptAcquireCertificatePrivateKey with a KSP key: Windows runner only (Wine's "
                    "crypt32 does not call ncrypt)";
  }
  provider::ProviderContext& context = SharedProviderContext("signum_cng_ncrypt_api_test");
  const RsaKey& k = suite_->rsa_keys.front();
  const bool installed_before =
      FindInStore(CERT_SYSTEM_STORE_CURRENT_USER, L"My", k.certificate->id).provider ==
      Utf8FromWide(kKspName);
  auto installed =
      InstallCertificates(context, ProviderKind::kKsp, StoreLocation::kCurrentUser, false);
  ASSERT_OK(installed);

  HCERTSTORE store =
      CertOpenStore(CERT_STORE_PROV_SYSTEM_W, 0, 0, CERT_SYSTEM_STORE_CURRENT_USER, L"My");
  ASSERT_NE(store, nullptr);
  auto thumbprint = HexDecode(k.certificate->id);
  CRYPT_HASH_BLOB blob{static_cast<DWORD>(thumbprint->size()), thumbprint->data()};
  PCCERT_CONTEXT certificate =
      CertFindCertificateInStore(store, X509_ASN_ENCODING, 0, CERT_FIND_SHA1_HASH, &blob, nullptr);
  ASSERT_NE(certificate, nullptr);
  HCRYPTPROV_OR_NCRYPT_KEY_HANDLE key = 0;
  DWORD key_spec = 0;
  BOOL caller_frees = FALSE;
  const BOOL acquired = CryptAcquireCertificatePrivateKey(
      certificate, CRYPT_ACQUIRE_ONLY_NCRYPT_KEY_FLAG | CRYPT_ACQUIRE_SILENT_FLAG, nullptr, &key,
      &key_spec, &caller_frees);
  const DWORD error = acquired ? 0 : GetLastError();
  CertFreeCertificateContext(certificate);
  CertCloseStore(store, 0);
  if (acquired) {
    EXPECT_EQ(key_spec, static_cast<DWORD>(CERT_NCRYPT_KEY_SPEC));
    const Bytes message = BcryptRandomBytes(300);
    Bytes digest = BcryptDigest(HashAlgorithm::kSha256, message);  // NCryptSignHash takes PBYTE
    BCRYPT_PKCS1_PADDING_INFO info{BCRYPT_SHA256_ALGORITHM};
    Bytes signature(k.certificate->key_spec.SignatureSize());
    DWORD size = 0;
    EXPECT_NTE(NCryptSignHash(key, &info, digest.data(), static_cast<DWORD>(digest.size()),
                              signature.data(), static_cast<DWORD>(signature.size()), &size,
                              NCRYPT_PAD_PKCS1_FLAG),
               ERROR_SUCCESS);
    if (size == signature.size()) {
      suite_->manifest->Add(k.certificate->label + "-crypt32-acquired-pkcs1-sha256", "rsa-pkcs1",
                            HashAlgorithm::kSha256, message, signature,
                            k.certificate->certificate.Der());
    }
    if (caller_frees) NCryptFreeObject(key);
  }
  if (!installed_before) {
    EXPECT_OK(RemoveInstalledCertificates(ProviderKind::kKsp, StoreLocation::kCurrentUser));
  }
  ASSERT_TRUE(acquired) << "CryptAcquireCertificatePrivateKey failed: " << Win32ErrorName(error);
}

// ---- registration (last: it unregisters and registers again) ------------------------------------

TEST_F(NcryptApi, UnregisteredProviderCannotBeOpenedAndRegistersAgain) {
  auto image = RegisteredKspImage();
  ASSERT_OK(image);
  EXPECT_EQ(Utf8FromWide(*image), Utf8FromWide(suite_->ksp_image));
  provider_.reset();

  ASSERT_OK(UnregisterKsp());
  auto gone = RegisteredKspImage();
  ASSERT_THAT(gone, StatusIs(ErrorCode::kNotFound)) << gone.status().ToString();
  Handle provider;
  const SECURITY_STATUS status = NCryptOpenStorageProvider(provider.out(), kKspName, 0);
  if (suite_->through_our_router) {
    EXPECT_NTE(status, NTE_PROV_DLL_NOT_FOUND) << suite_->dispatcher;
  } else {
    EXPECT_NE(status, ERROR_SUCCESS) << "an unregistered KSP opened";
    RecordProperty("unregistered_ksp_status", SecurityStatusName(status));
  }
  EXPECT_OK(UnregisterKsp()) << "unregistering twice is not an error";

  Status again = RegisterKsp(suite_->ksp_image);  // as it was before this test
  ASSERT_OK(again);
  EXPECT_NTE(NCryptOpenStorageProvider(provider.out(), kKspName, 0), ERROR_SUCCESS);
}

}  // namespace
}  // namespace signum::cng

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  signum::cng::Suite::instance = new signum::cng::Suite();
  ::testing::AddGlobalTestEnvironment(signum::cng::Suite::instance);
  return RUN_ALL_TESTS();
}

// signum_cng_ksp_table_test: conformance layer (a). Loads signumksp.dll with LoadLibrary, takes
// its function table from GetKeyStorageInterface and drives every one of the 29 entry points
// directly, as ncrypt.dll would: enumeration, opening keys by id / label / unknown name, legacy key
// specs and flags, every property with the size-query / too-small / exact conventions, bad
// handles, unsupported operations, public key export, and SignHash with PKCS#1 v1.5 (with and
// without an algorithm id) and PSS for RSA 2048/3072/4096 x SHA-1/256/384/512 (SHA-1 with PSS is
// refused by the demo policy and must come back as NTE_PERM).
//
// Wine is the caller, never the judge: every signature is written with its message and the
// certificate (as the KSP returned it) to SIGNUM_CNG_OUTPUT_DIR, listed in manifest.tsv, and
// verified by native OpenSSL (conformance/cng/run-wine-suite.sh). The tests here only check
// return codes and conventions.
//
// Environment (set by run-wine-suite.sh): SIGNUM_AGENT_TCP, SIGNUM_AGENT_SECRET_FILE (read by the
// KSP itself), SIGNUM_CNG_OUTPUT_DIR, SIGNUM_CNG_BIN_DIR (default: this program's directory).
// The demo deployment's keys are labelled rsa-2048, rsa-3072, rsa-4096, ec-p256, ec-p384, ec-p521.
#include <windows.h>  // WIN32_LEAN_AND_MEAN (signum_cng_common): no old winsock.h inside
// A block of its own: these need windows.h's types, so formatting must not reorder them.
#include <bcrypt.h>
#include <gtest/gtest.h>
#include <ncrypt.h>
#include <wincrypt.h>
#include <winsock2.h>
#include <ws2tcpip.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <cwctype>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "signum/cng/ksp_iface.h"
#include "signum/cng/names.h"
#include "signum/cng/nte_status.h"
#include "signum/core/algorithms.h"
#include "signum/testing/status_matchers.h"
#include "suite_support.h"

namespace signum::cng {
namespace {

// ---- the DLL ---------------------------------------------------------------------------------

struct LoadedKsp {
  HMODULE module = nullptr;
  NCRYPT_KEY_STORAGE_FUNCTION_TABLE* table = nullptr;
  NTSTATUS status = -1;
  std::string error;
};

// Loaded once per process, like ncrypt does; never unloaded (the KSP's context is process-wide).
const LoadedKsp& Ksp() {
  static const LoadedKsp loaded = [] {
    LoadedKsp ksp;
    const std::wstring path = ProviderDllPath(kKspDllName);
    ksp.module = LoadLibraryW(path.c_str());
    if (ksp.module == nullptr) {
      ksp.error = "LoadLibrary(" + std::string(path.begin(), path.end()) +
                  ") failed: " + std::to_string(GetLastError());
      return ksp;
    }
    auto entry = reinterpret_cast<GetKeyStorageInterfaceFn>(
        reinterpret_cast<void*>(GetProcAddress(ksp.module, SIGNUM_KSP_ENTRY_POINT_NAME)));
    if (entry == nullptr) {
      ksp.error = "signumksp.dll does not export " SIGNUM_KSP_ENTRY_POINT_NAME;
      return ksp;
    }
    ksp.status = entry(kKspName, &ksp.table, 0);
    if (ksp.status != 0 || ksp.table == nullptr) ksp.error = "GetKeyStorageInterface failed";
    return ksp;
  }();
  return loaded;
}

bool AgentConfigured() { return !EnvironmentValue("SIGNUM_AGENT_TCP").empty(); }

// ---- platform helpers (Windows' own bcrypt/crypt32, independent of the KSP) ------------------

struct RsaPublicKey {
  ULONG magic = 0, bits = 0;
  Bytes exponent, modulus;  // big-endian, leading zeros stripped
};

Bytes StripLeadingZeros(Bytes bytes) {
  auto first = std::find_if(bytes.begin(), bytes.end(), [](uint8_t b) { return b != 0; });
  return Bytes(first, bytes.end());
}

RsaPublicKey ParseRsaPublicBlob(const Bytes& blob) {
  RsaPublicKey key;
  BCRYPT_RSAKEY_BLOB header{};
  if (blob.size() < sizeof(header)) return key;
  std::memcpy(&header, blob.data(), sizeof(header));
  if (blob.size() != sizeof(header) + header.cbPublicExp + header.cbModulus) return key;
  key.magic = header.Magic;
  key.bits = header.BitLength;
  auto exponent = blob.begin() + sizeof(header);
  key.exponent = StripLeadingZeros(Bytes(exponent, exponent + header.cbPublicExp));
  key.modulus = StripLeadingZeros(Bytes(exponent + header.cbPublicExp, blob.end()));
  return key;
}

// ---- the size-query / too-small / exact convention -------------------------------------------

// get(output, output_size, &result_size) is one call of a property/export entry point.
template <typename Get>
Bytes CheckedOutput(Get get, const std::string& what) {
  SCOPED_TRACE(what);
  DWORD size = 0xFFFFFFFF;
  EXPECT_NTE(get(nullptr, 0, &size), ERROR_SUCCESS);  // size query
  if (size == 0xFFFFFFFF || size > (1u << 20)) {
    ADD_FAILURE() << "the size query returned no size";
    return {};
  }
  if (size > 0) {
    Bytes small(size - 1);
    DWORD reported = 0;
    EXPECT_NTE(get(small.data(), size - 1, &reported), NTE_BUFFER_TOO_SMALL);
    EXPECT_EQ(reported, size) << "a too-small buffer must report the size needed";
  }
  Bytes larger(size + 16, 0xAA);
  DWORD written = 0;
  EXPECT_NTE(get(larger.data(), size + 16, &written), ERROR_SUCCESS);
  EXPECT_EQ(written, size) << "a larger buffer must report the bytes written";
  Bytes exact(size);
  written = 0;
  EXPECT_NTE(get(exact.data(), size, &written), ERROR_SUCCESS);
  EXPECT_EQ(written, size);
  EXPECT_TRUE(std::equal(exact.begin(), exact.end(), larger.begin())) << "values differ";
  return exact;
}

std::wstring AsWideString(const Bytes& value) {
  if (value.size() < sizeof(wchar_t) || value.size() % sizeof(wchar_t) != 0) {
    ADD_FAILURE() << "not a UTF-16 string of " << value.size() << " bytes";
    return {};
  }
  const auto* text = reinterpret_cast<const wchar_t*>(value.data());
  const size_t length = value.size() / sizeof(wchar_t) - 1;
  EXPECT_EQ(text[length], L'\0') << "string properties include their terminating NUL";
  return std::wstring(text, length);
}

DWORD AsDword(const Bytes& value) {
  DWORD dword = 0;
  EXPECT_EQ(value.size(), sizeof(DWORD));
  if (value.size() == sizeof(DWORD)) std::memcpy(&dword, value.data(), sizeof(DWORD));
  return dword;
}

// ---- fixtures --------------------------------------------------------------------------------

constexpr wchar_t kUnknownKey[] = L"0000000000000000000000000000000000000000";
const std::vector<std::wstring> kRsaLabels = {L"rsa-2048", L"rsa-3072", L"rsa-4096"};
const std::vector<std::wstring> kEcLabels = {L"ec-p256", L"ec-p384", L"ec-p521"};
const std::vector<HashAlgorithm> kHashes = {HashAlgorithm::kSha1, HashAlgorithm::kSha256,
                                            HashAlgorithm::kSha384, HashAlgorithm::kSha512};

class KspTable : public ::testing::Test {
 protected:
  void SetUp() override {
    const LoadedKsp& ksp = Ksp();
    ASSERT_NE(ksp.table, nullptr) << ksp.error;
    t_ = ksp.table;
    ASSERT_NTE(t_->OpenProvider(&provider_, kKspName, 0), ERROR_SUCCESS);
  }
  void TearDown() override {
    for (NCRYPT_KEY_HANDLE key : keys_) {
      EXPECT_NTE(t_->FreeKey(provider_, key), ERROR_SUCCESS);
    }
    if (provider_ != 0) {
      EXPECT_NTE(t_->FreeProvider(provider_), ERROR_SUCCESS);
    }
  }

  // Opens a key that stays open until TearDown.
  NCRYPT_KEY_HANDLE Open(const std::wstring& name, DWORD legacy_spec = 0, DWORD flags = 0) {
    NCRYPT_KEY_HANDLE key = 0;
    SECURITY_STATUS status = t_->OpenKey(provider_, &key, name.c_str(), legacy_spec, flags);
    EXPECT_NTE(status, ERROR_SUCCESS) << "OpenKey(" << NarrowAscii(name) << ")";
    if (status == ERROR_SUCCESS) keys_.push_back(key);
    return key;
  }

  Bytes KeyProperty(NCRYPT_KEY_HANDLE key, const wchar_t* property, DWORD flags = 0) {
    return CheckedOutput(
        [&](PBYTE out, DWORD size, DWORD* result) {
          return t_->GetKeyProperty(provider_, key, property, out, size, result, flags);
        },
        "GetKeyProperty(" + NarrowAscii(property) + ", flags " + std::to_string(flags) + ")");
  }

  Bytes ProviderProperty(const wchar_t* property, DWORD flags = 0) {
    return CheckedOutput(
        [&](PBYTE out, DWORD size, DWORD* result) {
          return t_->GetProviderProperty(provider_, property, out, size, result, flags);
        },
        "GetProviderProperty(" + NarrowAscii(property) + ")");
  }

  NCRYPT_KEY_STORAGE_FUNCTION_TABLE* t_ = nullptr;
  NCRYPT_PROV_HANDLE provider_ = 0;
  std::vector<NCRYPT_KEY_HANDLE> keys_;
};

// Tests that need the agent (keys, signatures).
class KspWithAgent : public KspTable {
 protected:
  void SetUp() override {
    if (!AgentConfigured()) {
      GTEST_SKIP() << "SIGNUM_AGENT_TCP not set: keys come from a running signum-agent "
                      "(conformance/cng/run-wine-suite.sh provides one)";
    }
    KspTable::SetUp();
  }
};

// ---- the table itself ------------------------------------------------------------------------

TEST(KspInterface, ExportsTheFullTable) {
  const LoadedKsp& ksp = Ksp();
  ASSERT_NE(ksp.table, nullptr) << ksp.error;
  EXPECT_EQ(ksp.status, 0);
  EXPECT_EQ(ksp.table->Version.MajorVersion, 1);
  EXPECT_EQ(ksp.table->Version.MinorVersion, 0);
  // Every one of the 29 slots is a function (Windows' tolerance of NULL slots is untestable here).
  const auto* slots =
      reinterpret_cast<void* const*>(reinterpret_cast<const char*>(ksp.table) +
                                     offsetof(NCRYPT_KEY_STORAGE_FUNCTION_TABLE, OpenProvider));
  for (int slot = 0; slot < 29; ++slot) EXPECT_NE(slots[slot], nullptr) << "slot " << slot + 1;

  auto entry = reinterpret_cast<GetKeyStorageInterfaceFn>(
      reinterpret_cast<void*>(GetProcAddress(ksp.module, SIGNUM_KSP_ENTRY_POINT_NAME)));
  ASSERT_NE(entry, nullptr);
  EXPECT_NE(entry(kKspName, nullptr, 0), 0) << "a NULL table pointer must fail";
  NCRYPT_KEY_STORAGE_FUNCTION_TABLE* again = nullptr;
  EXPECT_EQ(entry(kKspName, &again, 0), 0);
  EXPECT_EQ(again, ksp.table) << "one static table";
}

// ---- provider --------------------------------------------------------------------------------

TEST_F(KspTable, OpenProviderChecksArgumentsAndFlags) {
  EXPECT_NTE(t_->OpenProvider(nullptr, kKspName, 0), NTE_INVALID_PARAMETER);
  NCRYPT_PROV_HANDLE other = 0;
  EXPECT_NTE(t_->OpenProvider(&other, kKspName, 0x1000), NTE_BAD_FLAGS);
  for (DWORD flags : {DWORD{NCRYPT_SILENT_FLAG}, DWORD{NCRYPT_MACHINE_KEY_FLAG},
                      DWORD{NCRYPT_SILENT_FLAG | NCRYPT_MACHINE_KEY_FLAG}}) {
    ASSERT_NTE(t_->OpenProvider(&other, kKspName, flags), ERROR_SUCCESS) << "flags " << flags;
    EXPECT_NE(other, 0u);
    EXPECT_NE(other, provider_) << "every open is a new handle";
    EXPECT_NTE(t_->FreeProvider(other), ERROR_SUCCESS);
    EXPECT_NTE(t_->FreeProvider(other), NTE_INVALID_HANDLE) << "freed twice";
  }
}

TEST_F(KspTable, ProviderProperties) {
  EXPECT_EQ(AsWideString(ProviderProperty(NCRYPT_NAME_PROPERTY)), std::wstring(kKspName));
  EXPECT_EQ(AsDword(ProviderProperty(NCRYPT_VERSION_PROPERTY)), 0x00010000u);
  EXPECT_EQ(AsDword(ProviderProperty(NCRYPT_IMPL_TYPE_PROPERTY)), DWORD{NCRYPT_IMPL_HARDWARE_FLAG});
  EXPECT_EQ(AsDword(ProviderProperty(NCRYPT_MAX_NAME_LENGTH_PROPERTY)),
            DWORD{NCRYPT_MAX_KEY_NAME_LENGTH});
  // With the flags Windows allows on a get.
  EXPECT_EQ(AsWideString(ProviderProperty(NCRYPT_NAME_PROPERTY, NCRYPT_PERSIST_ONLY_FLAG)),
            std::wstring(kKspName));
  EXPECT_EQ(AsWideString(ProviderProperty(NCRYPT_NAME_PROPERTY, NCRYPT_SILENT_FLAG)),
            std::wstring(kKspName));

  DWORD size = 0;
  BYTE buffer[512];
  for (const wchar_t* unsupported :
       {NCRYPT_SECURITY_DESCR_SUPPORT_PROPERTY, NCRYPT_SECURITY_DESCR_PROPERTY,
        NCRYPT_LENGTH_PROPERTY, L"No Such Property"}) {
    EXPECT_NTE(t_->GetProviderProperty(provider_, unsupported, buffer, sizeof(buffer), &size, 0),
               NTE_NOT_SUPPORTED)
        << NarrowAscii(unsupported);
  }
  EXPECT_NTE(t_->GetProviderProperty(provider_, nullptr, buffer, sizeof(buffer), &size, 0),
             NTE_INVALID_PARAMETER);
  EXPECT_NTE(
      t_->GetProviderProperty(provider_, NCRYPT_NAME_PROPERTY, buffer, sizeof(buffer), nullptr, 0),
      NTE_INVALID_PARAMETER);
  EXPECT_NTE(t_->GetProviderProperty(provider_, NCRYPT_NAME_PROPERTY, buffer, sizeof(buffer), &size,
                                     0x00100000),
             NTE_BAD_FLAGS);
}

TEST_F(KspTable, SetProviderPropertyAcceptsOnlyUiHints) {
  HWND window = nullptr;
  EXPECT_NTE(t_->SetProviderProperty(provider_, NCRYPT_WINDOW_HANDLE_PROPERTY,
                                     reinterpret_cast<PBYTE>(&window), sizeof(window), 0),
             ERROR_SUCCESS);
  const wchar_t context[] = L"signing a test file";
  EXPECT_NTE(t_->SetProviderProperty(provider_, NCRYPT_USE_CONTEXT_PROPERTY,
                                     reinterpret_cast<PBYTE>(const_cast<wchar_t*>(context)),
                                     sizeof(context), 0),
             ERROR_SUCCESS);
  DWORD value = 1;
  EXPECT_NTE(t_->SetProviderProperty(provider_, NCRYPT_NAME_PROPERTY,
                                     reinterpret_cast<PBYTE>(&value), sizeof(value), 0),
             NTE_NOT_SUPPORTED);
  EXPECT_NTE(t_->SetProviderProperty(provider_, nullptr, reinterpret_cast<PBYTE>(&value),
                                     sizeof(value), 0),
             NTE_INVALID_PARAMETER);
  EXPECT_NTE(t_->SetProviderProperty(provider_, NCRYPT_WINDOW_HANDLE_PROPERTY,
                                     reinterpret_cast<PBYTE>(&window), sizeof(window), 0x100000),
             NTE_BAD_FLAGS);
}

TEST_F(KspTable, AlgorithmsAreRsaSignaturesOnly) {
  EXPECT_NTE(t_->IsAlgSupported(provider_, NCRYPT_RSA_ALGORITHM, 0), ERROR_SUCCESS);
  EXPECT_NTE(t_->IsAlgSupported(provider_, NCRYPT_RSA_ALGORITHM, NCRYPT_SILENT_FLAG),
             ERROR_SUCCESS);
  EXPECT_NTE(t_->IsAlgSupported(provider_, BCRYPT_ECDSA_P256_ALGORITHM, 0), NTE_NOT_SUPPORTED);
  EXPECT_NTE(t_->IsAlgSupported(provider_, BCRYPT_AES_ALGORITHM, 0), NTE_NOT_SUPPORTED);
  EXPECT_NTE(t_->IsAlgSupported(provider_, nullptr, 0), NTE_INVALID_PARAMETER);
  EXPECT_NTE(t_->IsAlgSupported(provider_, NCRYPT_RSA_ALGORITHM, 0x100000), NTE_BAD_FLAGS);

  for (DWORD algorithm_class : {DWORD{0}, DWORD{NCRYPT_SIGNATURE_OPERATION}}) {
    DWORD count = 0;
    NCryptAlgorithmName* list = nullptr;
    ASSERT_NTE(t_->EnumAlgorithms(provider_, algorithm_class, &count, &list, 0), ERROR_SUCCESS);
    ASSERT_EQ(count, 1u);
    ASSERT_NE(list, nullptr);
    EXPECT_EQ(std::wstring(list[0].pszName), NCRYPT_RSA_ALGORITHM);
    EXPECT_EQ(list[0].dwClass, DWORD{NCRYPT_SIGNATURE_INTERFACE});
    EXPECT_EQ(list[0].dwAlgOperations, DWORD{NCRYPT_SIGNATURE_OPERATION});
    EXPECT_NTE(t_->FreeBuffer(list), ERROR_SUCCESS);
    EXPECT_NTE(t_->FreeBuffer(list), NTE_INVALID_PARAMETER) << "freed twice";
  }
  DWORD count = 0;
  NCryptAlgorithmName* list = nullptr;
  EXPECT_NTE(t_->EnumAlgorithms(provider_, NCRYPT_CIPHER_OPERATION, &count, &list, 0),
             NTE_NOT_SUPPORTED);
  EXPECT_NTE(t_->EnumAlgorithms(provider_, 0x80000000, &count, &list, 0), NTE_INVALID_PARAMETER);
  EXPECT_NTE(t_->EnumAlgorithms(provider_, 0, nullptr, &list, 0), NTE_INVALID_PARAMETER);
  EXPECT_NTE(t_->EnumAlgorithms(provider_, 0, &count, nullptr, 0), NTE_INVALID_PARAMETER);
  EXPECT_NTE(t_->EnumAlgorithms(provider_, 0, &count, &list, 0x100000), NTE_BAD_FLAGS);
}

TEST_F(KspTable, FreeBufferRejectsForeignPointers) {
  EXPECT_NTE(t_->FreeBuffer(nullptr), ERROR_SUCCESS);
  int not_ours = 0;
  EXPECT_NTE(t_->FreeBuffer(&not_ours), NTE_INVALID_PARAMETER);
}

// ---- bad handles, checked before anything else -----------------------------------------------

TEST_F(KspTable, MadeUpHandlesAreInvalidNotDereferenced) {
  BYTE buffer[64] = {};
  DWORD size = 0;
  NCRYPT_KEY_HANDLE key = 0;
  NCryptKeyName* name = nullptr;
  PVOID state = nullptr;
  BCRYPT_PKCS1_PADDING_INFO pkcs1{BCRYPT_SHA256_ALGORITHM};
  const std::vector<ULONG_PTR> bad = {0, 1, 0xDEADBEEF, static_cast<ULONG_PTR>(-1),
                                      reinterpret_cast<ULONG_PTR>(&buffer)};
  for (ULONG_PTR h : bad) {
    SCOPED_TRACE("handle " + std::to_string(h));
    // As a provider handle.
    EXPECT_NTE(t_->OpenKey(h, &key, L"rsa-2048", 0, 0), NTE_INVALID_HANDLE);
    EXPECT_NTE(t_->CreatePersistedKey(h, &key, NCRYPT_RSA_ALGORITHM, L"x", 0, 0),
               NTE_INVALID_HANDLE);
    EXPECT_NTE(t_->GetProviderProperty(h, NCRYPT_NAME_PROPERTY, buffer, sizeof(buffer), &size, 0),
               NTE_INVALID_HANDLE);
    EXPECT_NTE(t_->SetProviderProperty(h, NCRYPT_USE_CONTEXT_PROPERTY, buffer, 2, 0),
               NTE_INVALID_HANDLE);
    EXPECT_NTE(t_->FreeProvider(h), NTE_INVALID_HANDLE);
    EXPECT_NTE(t_->IsAlgSupported(h, NCRYPT_RSA_ALGORITHM, 0), NTE_INVALID_HANDLE);
    DWORD count = 0;
    NCryptAlgorithmName* algorithms = nullptr;
    EXPECT_NTE(t_->EnumAlgorithms(h, 0, &count, &algorithms, 0), NTE_INVALID_HANDLE);
    EXPECT_NTE(t_->EnumKeys(h, nullptr, &name, &state, 0), NTE_INVALID_HANDLE);
    EXPECT_NTE(t_->ImportKey(h, 0, BCRYPT_RSAPUBLIC_BLOB, nullptr, &key, buffer, sizeof(buffer), 0),
               NTE_INVALID_HANDLE);
    HANDLE event = nullptr;
    EXPECT_NTE(t_->NotifyChangeKey(h, &event, 0), NTE_INVALID_HANDLE);
    EXPECT_NTE(t_->FreeSecret(h, 1), NTE_INVALID_HANDLE);
    EXPECT_NTE(t_->DeriveKey(h, 1, BCRYPT_KDF_HASH, nullptr, buffer, sizeof(buffer), &size, 0),
               NTE_INVALID_HANDLE);
    // As a key handle, with a live provider.
    EXPECT_NTE(
        t_->GetKeyProperty(provider_, h, NCRYPT_LENGTH_PROPERTY, buffer, sizeof(buffer), &size, 0),
        NTE_INVALID_HANDLE);
    EXPECT_NTE(t_->SetKeyProperty(provider_, h, NCRYPT_USE_CONTEXT_PROPERTY, buffer, 2, 0),
               NTE_INVALID_HANDLE);
    EXPECT_NTE(t_->FinalizeKey(provider_, h, 0), NTE_INVALID_HANDLE);
    EXPECT_NTE(t_->DeleteKey(provider_, h, 0), NTE_INVALID_HANDLE);
    EXPECT_NTE(t_->FreeKey(provider_, h), NTE_INVALID_HANDLE);
    EXPECT_NTE(t_->Encrypt(provider_, h, buffer, 32, nullptr, buffer, sizeof(buffer), &size,
                           NCRYPT_PAD_PKCS1_FLAG),
               NTE_INVALID_HANDLE);
    EXPECT_NTE(t_->Decrypt(provider_, h, buffer, 32, nullptr, buffer, sizeof(buffer), &size,
                           NCRYPT_PAD_PKCS1_FLAG),
               NTE_INVALID_HANDLE);
    EXPECT_NTE(t_->ExportKey(provider_, h, 0, BCRYPT_RSAPUBLIC_BLOB, nullptr, buffer,
                             sizeof(buffer), &size, 0),
               NTE_INVALID_HANDLE);
    EXPECT_NTE(t_->SignHash(provider_, h, &pkcs1, buffer, 32, buffer, sizeof(buffer), &size,
                            NCRYPT_PAD_PKCS1_FLAG),
               NTE_INVALID_HANDLE);
    EXPECT_NTE(t_->VerifySignature(provider_, h, &pkcs1, buffer, 32, buffer, sizeof(buffer),
                                   NCRYPT_PAD_PKCS1_FLAG),
               NTE_INVALID_HANDLE);
    EXPECT_NTE(t_->PromptUser(provider_, h, L"sign", 0), NTE_INVALID_HANDLE);
    NCRYPT_SECRET_HANDLE secret = 0;
    EXPECT_NTE(t_->SecretAgreement(provider_, h, h, &secret, 0), NTE_INVALID_HANDLE);
    EXPECT_NTE(t_->KeyDerivation(provider_, h, nullptr, buffer, sizeof(buffer), &size, 0),
               NTE_INVALID_HANDLE);
    EXPECT_NTE(t_->CreateClaim(provider_, h, 0, 0, nullptr, buffer, sizeof(buffer), &size, 0),
               NTE_INVALID_HANDLE);
    EXPECT_NTE(t_->VerifyClaim(provider_, h, 0, 0, nullptr, buffer, sizeof(buffer), nullptr, 0),
               NTE_INVALID_HANDLE);
  }
  // The provider handle is not a key handle.
  EXPECT_NTE(t_->GetKeyProperty(provider_, provider_, NCRYPT_LENGTH_PROPERTY, buffer,
                                sizeof(buffer), &size, 0),
             NTE_INVALID_HANDLE);
}

// ---- keys ------------------------------------------------------------------------------------

TEST_F(KspWithAgent, EnumeratesTheRsaKeys) {
  std::set<std::wstring> expected;
  for (const auto& label : kRsaLabels) {
    NCRYPT_KEY_HANDLE key = Open(label);
    ASSERT_NE(key, 0u);
    expected.insert(AsWideString(KeyProperty(key, NCRYPT_NAME_PROPERTY)));
  }
  for (DWORD flags : {DWORD{0}, DWORD{NCRYPT_SILENT_FLAG}, DWORD{NCRYPT_MACHINE_KEY_FLAG}}) {
    SCOPED_TRACE("EnumKeys flags " + std::to_string(flags));
    std::set<std::wstring> listed;
    PVOID state = nullptr;
    for (int i = 0; i < 1000; ++i) {
      NCryptKeyName* name = nullptr;
      SECURITY_STATUS status = t_->EnumKeys(provider_, nullptr, &name, &state, flags);
      if (status == NTE_NO_MORE_ITEMS) break;
      ASSERT_NTE(status, ERROR_SUCCESS);
      ASSERT_NE(name, nullptr);
      EXPECT_TRUE(listed.insert(name->pszName).second)
          << "listed twice: " << NarrowAscii(name->pszName);
      EXPECT_EQ(std::wstring(name->pszAlgid), NCRYPT_RSA_ALGORITHM);
      EXPECT_EQ(name->dwLegacyKeySpec, DWORD{AT_SIGNATURE});
      EXPECT_EQ(name->dwFlags, flags & NCRYPT_MACHINE_KEY_FLAG);
      // Every listed name opens, as an RSA key.
      NCRYPT_KEY_HANDLE key = Open(name->pszName);
      EXPECT_EQ(AsWideString(KeyProperty(key, NCRYPT_ALGORITHM_GROUP_PROPERTY)),
                NCRYPT_RSA_ALGORITHM_GROUP);
      EXPECT_NTE(t_->FreeBuffer(name), ERROR_SUCCESS);
    }
    ASSERT_NE(state, nullptr);
    // The end stays the end.
    NCryptKeyName* name = nullptr;
    EXPECT_NTE(t_->EnumKeys(provider_, nullptr, &name, &state, flags), NTE_NO_MORE_ITEMS);
    EXPECT_NTE(t_->FreeBuffer(state), ERROR_SUCCESS);
    for (const auto& id : expected)
      EXPECT_TRUE(listed.contains(id)) << NarrowAscii(id) << " missing";
  }
  // Argument checks.
  NCryptKeyName* name = nullptr;
  PVOID state = nullptr;
  EXPECT_NTE(t_->EnumKeys(provider_, nullptr, nullptr, &state, 0), NTE_INVALID_PARAMETER);
  EXPECT_NTE(t_->EnumKeys(provider_, nullptr, &name, nullptr, 0), NTE_INVALID_PARAMETER);
  EXPECT_NTE(t_->EnumKeys(provider_, nullptr, &name, &state, 0x100000), NTE_BAD_FLAGS);
  int not_a_state = 0;
  state = &not_a_state;
  EXPECT_NTE(t_->EnumKeys(provider_, nullptr, &name, &state, 0), NTE_INVALID_PARAMETER);
}

TEST_F(KspWithAgent, OpensByIdLabelAndAnyCase) {
  NCRYPT_KEY_HANDLE by_label = Open(L"rsa-2048");
  ASSERT_NE(by_label, 0u);
  const std::wstring id = AsWideString(KeyProperty(by_label, NCRYPT_NAME_PROPERTY));
  ASSERT_EQ(id.size(), 40u) << "the key name is the certificate's SHA-1 id";
  EXPECT_TRUE(std::all_of(id.begin(), id.end(), [](wchar_t c) {
    return std::iswdigit(c) || (c >= L'a' && c <= L'f');
  })) << "lowercase hex";
  std::wstring upper = id;
  for (auto& c : upper) c = static_cast<wchar_t>(std::towupper(c));
  for (const std::wstring& name : {id, upper}) {
    NCRYPT_KEY_HANDLE key = Open(name);
    ASSERT_NE(key, 0u);
    EXPECT_NE(key, by_label) << "every open is a new handle";
    EXPECT_EQ(AsWideString(KeyProperty(key, NCRYPT_NAME_PROPERTY)), id) << "canonical name";
  }
}

TEST_F(KspWithAgent, UnknownAndEcKeysAreBadKeyset) {
  NCRYPT_KEY_HANDLE key = 0;
  EXPECT_NTE(t_->OpenKey(provider_, &key, kUnknownKey, 0, 0), NTE_BAD_KEYSET);
  EXPECT_NTE(t_->OpenKey(provider_, &key, L"no-such-label", 0, 0), NTE_BAD_KEYSET);
  // RSA only: EC certificates the agent lists are not keys of this provider.
  for (const auto& label : kEcLabels) {
    EXPECT_NTE(t_->OpenKey(provider_, &key, label.c_str(), 0, 0), NTE_BAD_KEYSET)
        << NarrowAscii(label);
  }
  EXPECT_NTE(t_->OpenKey(provider_, &key, nullptr, 0, 0), NTE_INVALID_PARAMETER);
  EXPECT_NTE(t_->OpenKey(provider_, &key, L"", 0, 0), NTE_INVALID_PARAMETER);
  EXPECT_NTE(t_->OpenKey(provider_, nullptr, L"rsa-2048", 0, 0), NTE_INVALID_PARAMETER);
}

TEST_F(KspWithAgent, LegacyKeySpecsAndFlags) {
  for (DWORD spec : {DWORD{0}, DWORD{AT_SIGNATURE}, DWORD{AT_KEYEXCHANGE}}) {
    for (DWORD flags : {DWORD{0}, DWORD{NCRYPT_SILENT_FLAG}, DWORD{NCRYPT_MACHINE_KEY_FLAG},
                        DWORD{NCRYPT_SILENT_FLAG | NCRYPT_MACHINE_KEY_FLAG}}) {
      SCOPED_TRACE("spec " + std::to_string(spec) + " flags " + std::to_string(flags));
      NCRYPT_KEY_HANDLE key = Open(L"rsa-2048", spec, flags);
      ASSERT_NE(key, 0u);
      EXPECT_EQ(AsDword(KeyProperty(key, NCRYPT_KEY_TYPE_PROPERTY)),
                flags & NCRYPT_MACHINE_KEY_FLAG);
    }
  }
  NCRYPT_KEY_HANDLE key = 0;
  EXPECT_NTE(t_->OpenKey(provider_, &key, L"rsa-2048", 3, 0), NTE_INVALID_PARAMETER);
  EXPECT_NTE(t_->OpenKey(provider_, &key, L"rsa-2048", 0, 0x100000), NTE_BAD_FLAGS);
  EXPECT_NTE(t_->OpenKey(provider_, &key, L"rsa-2048", 0, NCRYPT_OVERWRITE_KEY_FLAG),
             NTE_BAD_FLAGS);
}

TEST_F(KspWithAgent, KeyHandlesAreBoundToTheirProviderAndFreedOnce) {
  NCRYPT_KEY_HANDLE key = 0;
  ASSERT_NTE(t_->OpenKey(provider_, &key, L"rsa-3072", 0, 0), ERROR_SUCCESS);
  NCRYPT_PROV_HANDLE other = 0;
  ASSERT_NTE(t_->OpenProvider(&other, kKspName, 0), ERROR_SUCCESS);
  DWORD size = 0;
  BYTE buffer[16];
  EXPECT_NTE(
      t_->GetKeyProperty(other, key, NCRYPT_LENGTH_PROPERTY, buffer, sizeof(buffer), &size, 0),
      NTE_INVALID_HANDLE)
      << "a key opened through another provider handle";
  EXPECT_NTE(t_->FreeKey(other, key), NTE_INVALID_HANDLE);
  EXPECT_NTE(t_->FreeProvider(other), ERROR_SUCCESS);
  EXPECT_NTE(t_->FreeKey(provider_, key), ERROR_SUCCESS);
  EXPECT_NTE(t_->FreeKey(provider_, key), NTE_INVALID_HANDLE) << "freed twice";
  EXPECT_NTE(
      t_->GetKeyProperty(provider_, key, NCRYPT_LENGTH_PROPERTY, buffer, sizeof(buffer), &size, 0),
      NTE_INVALID_HANDLE)
      << "a freed key";

  // Provider freed before its key (ncrypt's teardown order is not the provider's to choose): the
  // key can no longer be used, but it can still be freed, once.
  ASSERT_NTE(t_->OpenProvider(&other, kKspName, 0), ERROR_SUCCESS);
  ASSERT_NTE(t_->OpenKey(other, &key, L"rsa-3072", 0, 0), ERROR_SUCCESS);
  EXPECT_NTE(t_->FreeProvider(other), ERROR_SUCCESS);
  EXPECT_NTE(
      t_->GetKeyProperty(other, key, NCRYPT_LENGTH_PROPERTY, buffer, sizeof(buffer), &size, 0),
      NTE_INVALID_HANDLE);
  EXPECT_NTE(t_->FreeKey(other, key), ERROR_SUCCESS);
  EXPECT_NTE(t_->FreeKey(other, key), NTE_INVALID_HANDLE);
}

class KspKeyProperties : public KspWithAgent,
                         public ::testing::WithParamInterface<std::tuple<std::wstring, DWORD>> {};

TEST_P(KspKeyProperties, AllPropertiesToolsRead) {
  const auto& [label, flags] = GetParam();
  NCRYPT_KEY_HANDLE key = Open(label);
  ASSERT_NE(key, 0u);
  const int bits = std::stoi(NarrowAscii(label.substr(4)));

  EXPECT_EQ(AsWideString(KeyProperty(key, NCRYPT_ALGORITHM_GROUP_PROPERTY, flags)), L"RSA");
  EXPECT_EQ(AsWideString(KeyProperty(key, NCRYPT_ALGORITHM_PROPERTY, flags)), L"RSA");
  EXPECT_EQ(AsDword(KeyProperty(key, NCRYPT_LENGTH_PROPERTY, flags)), DWORD(bits));
  const Bytes lengths_value = KeyProperty(key, NCRYPT_LENGTHS_PROPERTY, flags);
  ASSERT_EQ(lengths_value.size(), sizeof(NCRYPT_SUPPORTED_LENGTHS));
  NCRYPT_SUPPORTED_LENGTHS lengths;
  std::memcpy(&lengths, lengths_value.data(), sizeof(lengths));
  EXPECT_EQ(lengths.dwMinLength, 2048u);
  EXPECT_EQ(lengths.dwMaxLength, 4096u);
  EXPECT_EQ(lengths.dwIncrement, 1024u);
  EXPECT_EQ(lengths.dwDefaultLength, DWORD(bits));
  EXPECT_EQ(AsDword(KeyProperty(key, NCRYPT_BLOCK_LENGTH_PROPERTY, flags)), DWORD(bits / 8));
  EXPECT_EQ(AsDword(KeyProperty(key, NCRYPT_KEY_USAGE_PROPERTY, flags)),
            DWORD{NCRYPT_ALLOW_SIGNING_FLAG});
  EXPECT_EQ(AsDword(KeyProperty(key, NCRYPT_EXPORT_POLICY_PROPERTY, flags)), 0u);
  const std::wstring name = AsWideString(KeyProperty(key, NCRYPT_NAME_PROPERTY, flags));
  EXPECT_EQ(AsWideString(KeyProperty(key, NCRYPT_UNIQUE_NAME_PROPERTY, flags)), name);
  EXPECT_EQ(AsDword(KeyProperty(key, NCRYPT_KEY_TYPE_PROPERTY, flags)), 0u);
  EXPECT_EQ(AsDword(KeyProperty(key, NCRYPT_IMPL_TYPE_PROPERTY, flags)),
            DWORD{NCRYPT_IMPL_HARDWARE_FLAG});
  const Bytes provider_value = KeyProperty(key, NCRYPT_PROVIDER_HANDLE_PROPERTY, flags);
  ASSERT_EQ(provider_value.size(), sizeof(NCRYPT_PROV_HANDLE));
  NCRYPT_PROV_HANDLE provider = 0;
  std::memcpy(&provider, provider_value.data(), sizeof(provider));
  EXPECT_EQ(provider, provider_);
  const Bytes policy_value = KeyProperty(key, NCRYPT_UI_POLICY_PROPERTY, flags);
  ASSERT_EQ(policy_value.size(), sizeof(NCRYPT_UI_POLICY));
  NCRYPT_UI_POLICY policy;
  std::memcpy(&policy, policy_value.data(), sizeof(policy));
  EXPECT_EQ(policy.dwVersion, 1u);
  EXPECT_EQ(policy.dwFlags, 0u);
  EXPECT_EQ(policy.pszCreationTitle, nullptr);
  EXPECT_EQ(policy.pszFriendlyName, nullptr);
  EXPECT_EQ(policy.pszDescription, nullptr);

  // The certificate: crypt32 parses it, its SHA-1 is the key name, its key has these bits.
  const Bytes certificate = KeyProperty(key, NCRYPT_CERTIFICATE_PROPERTY, flags);
  EXPECT_EQ(WidenAscii(Sha1Hex(certificate)), name);
  const RsaPublicKey certificate_key = ParseRsaPublicBlob(PlatformRsaPublicBlob(certificate));
  EXPECT_EQ(certificate_key.bits, ULONG(bits));

  DWORD size = 0;
  BYTE buffer[64];
  for (const wchar_t* unsupported : {NCRYPT_SECURITY_DESCR_PROPERTY, NCRYPT_LAST_MODIFIED_PROPERTY,
                                     NCRYPT_PIN_PROPERTY, L"No Such Property"}) {
    EXPECT_NTE(
        t_->GetKeyProperty(provider_, key, unsupported, buffer, sizeof(buffer), &size, flags),
        NTE_NOT_SUPPORTED)
        << NarrowAscii(unsupported);
  }
  EXPECT_NTE(t_->GetKeyProperty(provider_, key, nullptr, buffer, sizeof(buffer), &size, flags),
             NTE_INVALID_PARAMETER);
  EXPECT_NTE(t_->GetKeyProperty(provider_, key, NCRYPT_LENGTH_PROPERTY, buffer, sizeof(buffer),
                                nullptr, flags),
             NTE_INVALID_PARAMETER);
  EXPECT_NTE(t_->GetKeyProperty(provider_, key, NCRYPT_LENGTH_PROPERTY, buffer, sizeof(buffer),
                                &size, flags | 0x00100000),
             NTE_BAD_FLAGS);
}

INSTANTIATE_TEST_SUITE_P(RsaKeys, KspKeyProperties,
                         ::testing::Combine(::testing::ValuesIn(kRsaLabels),
                                            ::testing::Values(DWORD{0},
                                                              DWORD{NCRYPT_PERSIST_ONLY_FLAG},
                                                              DWORD{NCRYPT_SILENT_FLAG})),
                         [](const auto& info) {
                           std::string name = NarrowAscii(std::get<0>(info.param));
                           name.erase(std::remove(name.begin(), name.end(), '-'), name.end());
                           const DWORD flags = std::get<1>(info.param);
                           return name + (flags == 0                          ? ""
                                          : flags == NCRYPT_PERSIST_ONLY_FLAG ? "_PersistOnly"
                                                                              : "_Silent");
                         });

TEST_F(KspWithAgent, KeysAreReadOnlyAndSignOnly) {
  NCRYPT_KEY_HANDLE key = Open(L"rsa-2048");
  ASSERT_NE(key, 0u);
  BYTE buffer[512] = {};
  DWORD size = 0;
  DWORD value = 4096;
  EXPECT_NTE(t_->SetKeyProperty(provider_, key, NCRYPT_LENGTH_PROPERTY,
                                reinterpret_cast<PBYTE>(&value), sizeof(value), 0),
             NTE_NOT_SUPPORTED);
  EXPECT_NTE(
      t_->SetKeyProperty(provider_, key, NCRYPT_EXPORT_POLICY_PROPERTY,
                         reinterpret_cast<PBYTE>(&value), sizeof(value), NCRYPT_PERSIST_FLAG),
      NTE_NOT_SUPPORTED);
  HWND window = nullptr;
  EXPECT_NTE(t_->SetKeyProperty(provider_, key, NCRYPT_WINDOW_HANDLE_PROPERTY,
                                reinterpret_cast<PBYTE>(&window), sizeof(window), 0),
             ERROR_SUCCESS);
  EXPECT_NTE(t_->SetKeyProperty(provider_, key, NCRYPT_WINDOW_HANDLE_PROPERTY,
                                reinterpret_cast<PBYTE>(&window), sizeof(window), 0x100000),
             NTE_BAD_FLAGS);

  NCRYPT_KEY_HANDLE created = 0;
  EXPECT_NTE(t_->CreatePersistedKey(provider_, &created, NCRYPT_RSA_ALGORITHM, L"new-key", 0, 0),
             NTE_NOT_SUPPORTED);
  EXPECT_NTE(t_->ImportKey(provider_, 0, BCRYPT_RSAPUBLIC_BLOB, nullptr, &created, buffer,
                           sizeof(buffer), 0),
             NTE_NOT_SUPPORTED);
  EXPECT_NTE(t_->FinalizeKey(provider_, key, 0), NTE_NOT_SUPPORTED);
  EXPECT_NTE(t_->DeleteKey(provider_, key, 0), NTE_NOT_SUPPORTED);
  EXPECT_NTE(t_->Encrypt(provider_, key, buffer, 32, nullptr, buffer, sizeof(buffer), &size,
                         NCRYPT_PAD_PKCS1_FLAG),
             NTE_NOT_SUPPORTED);
  EXPECT_NTE(t_->Decrypt(provider_, key, buffer, 256, nullptr, buffer, sizeof(buffer), &size,
                         NCRYPT_PAD_PKCS1_FLAG),
             NTE_NOT_SUPPORTED);
  EXPECT_NTE(t_->PromptUser(provider_, key, L"sign", 0), NTE_NOT_SUPPORTED);
  HANDLE event = nullptr;
  EXPECT_NTE(t_->NotifyChangeKey(provider_, &event, NCRYPT_REGISTER_NOTIFY_FLAG),
             NTE_NOT_SUPPORTED);
  NCRYPT_SECRET_HANDLE secret = 0;
  EXPECT_NTE(t_->SecretAgreement(provider_, key, key, &secret, 0), NTE_NOT_SUPPORTED);
  EXPECT_NTE(
      t_->DeriveKey(provider_, 1, BCRYPT_KDF_HASH, nullptr, buffer, sizeof(buffer), &size, 0),
      NTE_INVALID_HANDLE)
      << "no secret handle is ever live";
  EXPECT_NTE(t_->FreeSecret(provider_, 1), NTE_INVALID_HANDLE);
  EXPECT_NTE(t_->KeyDerivation(provider_, key, nullptr, buffer, sizeof(buffer), &size, 0),
             NTE_NOT_SUPPORTED);
  EXPECT_NTE(t_->CreateClaim(provider_, key, 0, 0, nullptr, buffer, sizeof(buffer), &size, 0),
             NTE_NOT_SUPPORTED);
  EXPECT_NTE(t_->VerifyClaim(provider_, key, 0, 0, nullptr, buffer, sizeof(buffer), nullptr, 0),
             NTE_NOT_SUPPORTED);
  // After DeleteKey failed the handle is still live.
  EXPECT_EQ(AsDword(KeyProperty(key, NCRYPT_LENGTH_PROPERTY)), 2048u);
}

// ---- export ----------------------------------------------------------------------------------

TEST_F(KspWithAgent, ExportsTheCertificatesPublicKey) {
  for (const auto& label : kRsaLabels) {
    SCOPED_TRACE(NarrowAscii(label));
    NCRYPT_KEY_HANDLE key = Open(label);
    ASSERT_NE(key, 0u);
    const Bytes certificate = KeyProperty(key, NCRYPT_CERTIFICATE_PROPERTY);
    const RsaPublicKey expected = ParseRsaPublicBlob(PlatformRsaPublicBlob(certificate));
    ASSERT_FALSE(expected.modulus.empty());

    for (const wchar_t* blob_type : {BCRYPT_RSAPUBLIC_BLOB, BCRYPT_PUBLIC_KEY_BLOB}) {
      const Bytes blob = CheckedOutput(
          [&](PBYTE out, DWORD size, DWORD* result) {
            return t_->ExportKey(provider_, key, 0, blob_type, nullptr, out, size, result,
                                 NCRYPT_SILENT_FLAG);
          },
          "ExportKey(" + NarrowAscii(blob_type) + ")");
      BCRYPT_RSAKEY_BLOB header{};
      ASSERT_GE(blob.size(), sizeof(header));
      std::memcpy(&header, blob.data(), sizeof(header));
      EXPECT_EQ(header.cbPrime1, 0u);
      EXPECT_EQ(header.cbPrime2, 0u);
      EXPECT_NE(blob[sizeof(header)], 0) << "no leading zero in the exponent";
      EXPECT_NE(blob[sizeof(header) + header.cbPublicExp], 0) << "no leading zero in the modulus";
      const RsaPublicKey exported = ParseRsaPublicBlob(blob);
      EXPECT_EQ(exported.magic, ULONG{BCRYPT_RSAPUBLIC_MAGIC});
      EXPECT_EQ(exported.bits, expected.bits);
      EXPECT_EQ(exported.exponent, expected.exponent);
      EXPECT_EQ(exported.modulus, expected.modulus);
    }
    BYTE buffer[16];
    DWORD size = 0;
    for (const wchar_t* private_blob :
         {BCRYPT_RSAPRIVATE_BLOB, BCRYPT_RSAFULLPRIVATE_BLOB, BCRYPT_PRIVATE_KEY_BLOB,
          LEGACY_RSAPRIVATE_BLOB, NCRYPT_PKCS8_PRIVATE_KEY_BLOB, NCRYPT_OPAQUETRANSPORT_BLOB}) {
      EXPECT_NTE(t_->ExportKey(provider_, key, 0, private_blob, nullptr, nullptr, 0, &size, 0),
                 NTE_NOT_SUPPORTED)
          << NarrowAscii(private_blob);
    }
    EXPECT_NTE(t_->ExportKey(provider_, key, 0, nullptr, nullptr, buffer, sizeof(buffer), &size, 0),
               NTE_INVALID_PARAMETER);
    EXPECT_NTE(t_->ExportKey(provider_, key, 0, BCRYPT_RSAPUBLIC_BLOB, nullptr, buffer,
                             sizeof(buffer), nullptr, 0),
               NTE_INVALID_PARAMETER);
    EXPECT_NTE(
        t_->ExportKey(provider_, key, key, BCRYPT_RSAPUBLIC_BLOB, nullptr, nullptr, 0, &size, 0),
        NTE_INVALID_PARAMETER)
        << "public blobs are not wrapped";
    EXPECT_NTE(t_->ExportKey(provider_, key, 0, BCRYPT_RSAPUBLIC_BLOB, nullptr, nullptr, 0, &size,
                             0x100000),
               NTE_BAD_FLAGS);
  }
}

// ---- signatures ------------------------------------------------------------------------------

class KspSignHash : public KspWithAgent,
                    public ::testing::WithParamInterface<std::tuple<std::wstring, HashAlgorithm>> {
 protected:
  // SignHash with the conventions checked on the way: size query, too-small buffer, exact.
  Bytes Sign(NCRYPT_KEY_HANDLE key, void* padding, DWORD flags, const Bytes& input,
             DWORD modulus_bytes) {
    DWORD size = 0;
    EXPECT_NTE(t_->SignHash(provider_, key, padding, const_cast<PBYTE>(input.data()),
                            static_cast<DWORD>(input.size()), nullptr, 0, &size, flags),
               ERROR_SUCCESS);
    EXPECT_EQ(size, modulus_bytes) << "size query";
    Bytes small(modulus_bytes - 1);
    size = 0;
    EXPECT_NTE(t_->SignHash(provider_, key, padding, const_cast<PBYTE>(input.data()),
                            static_cast<DWORD>(input.size()), small.data(),
                            static_cast<DWORD>(small.size()), &size, flags),
               NTE_BUFFER_TOO_SMALL);
    EXPECT_EQ(size, modulus_bytes) << "too-small buffer";
    Bytes signature(modulus_bytes);
    size = 0;
    SECURITY_STATUS status = t_->SignHash(provider_, key, padding, const_cast<PBYTE>(input.data()),
                                          static_cast<DWORD>(input.size()), signature.data(),
                                          static_cast<DWORD>(signature.size()), &size, flags);
    EXPECT_NTE(status, ERROR_SUCCESS);
    if (status != ERROR_SUCCESS) return {};
    EXPECT_EQ(size, modulus_bytes);
    // The provider's own VerifySignature agrees (OpenSSL is the judge; this checks the entry).
    EXPECT_NTE(t_->VerifySignature(provider_, key, padding, const_cast<PBYTE>(input.data()),
                                   static_cast<DWORD>(input.size()), signature.data(), size, flags),
               ERROR_SUCCESS);
    Bytes tampered = signature;
    tampered[tampered.size() / 2] ^= 0x01;
    EXPECT_NTE(t_->VerifySignature(provider_, key, padding, const_cast<PBYTE>(input.data()),
                                   static_cast<DWORD>(input.size()), tampered.data(),
                                   static_cast<DWORD>(tampered.size()), flags),
               NTE_BAD_SIGNATURE);
    return signature;
  }
};

TEST_P(KspSignHash, Pkcs1AndPss) {
  const auto& [label, hash] = GetParam();
  NCRYPT_KEY_HANDLE key = Open(label);
  ASSERT_NE(key, 0u);
  const DWORD modulus_bytes = AsDword(KeyProperty(key, NCRYPT_LENGTH_PROPERTY)) / 8;
  const std::string dir = EnvironmentValue("SIGNUM_CNG_OUTPUT_DIR");
  ASSERT_FALSE(dir.empty()) << "SIGNUM_CNG_OUTPUT_DIR not set: every signature must be verified "
                               "by native OpenSSL (run-wine-suite.sh sets it)";
  const SignatureManifest manifest(dir);
  // The certificate as the KSP returns it: OpenSSL verifies against exactly that.
  const Bytes certificate = KeyProperty(key, NCRYPT_CERTIFICATE_PROPERTY);

  const std::wstring algorithm_id = WidenAscii(GetHashInfo(hash).cng_algorithm_id);
  const std::string base = NarrowAscii(label) + "-" + std::string(HashName(hash));
  const Bytes message = BcryptRandomBytes(777);
  const Bytes digest = BcryptDigest(hash, message);

  {  // PKCS#1 v1.5 with the algorithm id.
    SCOPED_TRACE("PKCS#1 v1.5, pszAlgId " + NarrowAscii(algorithm_id));
    BCRYPT_PKCS1_PADDING_INFO pkcs1{algorithm_id.c_str()};
    const Bytes signature = Sign(key, &pkcs1, NCRYPT_PAD_PKCS1_FLAG, digest, modulus_bytes);
    ASSERT_FALSE(signature.empty());
    manifest.Add(base + "-pkcs1", "rsa-pkcs1", hash, message, signature, certificate);
  }
  {  // PKCS#1 v1.5 with a NULL algorithm id: the caller passes the DigestInfo (signtool /ds).
    SCOPED_TRACE("PKCS#1 v1.5, pszAlgId NULL, DigestInfo input");
    BCRYPT_PKCS1_PADDING_INFO pkcs1{nullptr};
    auto digest_info = BuildDigestInfo(hash, digest);
    ASSERT_OK(digest_info);
    const Bytes signature =
        Sign(key, &pkcs1, NCRYPT_PAD_PKCS1_FLAG | NCRYPT_SILENT_FLAG, *digest_info, modulus_bytes);
    ASSERT_FALSE(signature.empty());
    manifest.Add(base + "-pkcs1-nullalg", "rsa-pkcs1", hash, message, signature, certificate);
  }
  for (ULONG salt : {ULONG(GetHashInfo(hash).digest_size), ULONG{0}}) {  // PSS
    SCOPED_TRACE("PSS, salt " + std::to_string(salt));
    BCRYPT_PSS_PADDING_INFO pss{algorithm_id.c_str(), salt};
    if (hash == HashAlgorithm::kSha1) {
      // The demo policy allows SHA-1 only with PKCS#1 v1.5 (provisioning.cc,
      // "release-legacy-sha1"): the server's refusal must reach the caller as NTE_PERM.
      Bytes signature(modulus_bytes);
      DWORD size = 0;
      EXPECT_NTE(t_->SignHash(provider_, key, &pss, const_cast<PBYTE>(digest.data()),
                              static_cast<DWORD>(digest.size()), signature.data(),
                              static_cast<DWORD>(signature.size()), &size, NCRYPT_PAD_PSS_FLAG),
                 NTE_PERM);
      continue;
    }
    const Bytes signature = Sign(key, &pss, NCRYPT_PAD_PSS_FLAG, digest, modulus_bytes);
    ASSERT_FALSE(signature.empty());
    manifest.Add(base + "-pss-salt" + std::to_string(salt), "rsa-pss", hash, message, signature,
                 certificate, std::to_string(salt));
  }
}

INSTANTIATE_TEST_SUITE_P(RsaKeysTimesHashes, KspSignHash,
                         ::testing::Combine(::testing::ValuesIn(kRsaLabels),
                                            ::testing::ValuesIn(kHashes)),
                         [](const auto& info) {
                           std::string name = NarrowAscii(std::get<0>(info.param)) + "_" +
                                              std::string(HashName(std::get<1>(info.param)));
                           name.erase(std::remove(name.begin(), name.end(), '-'), name.end());
                           return name;
                         });

TEST_F(KspWithAgent, SignHashRejectsWhatItCannotSign) {
  NCRYPT_KEY_HANDLE key = Open(L"rsa-2048");
  ASSERT_NE(key, 0u);
  Bytes digest = BcryptDigest(HashAlgorithm::kSha256, BcryptRandomBytes(100));
  Bytes signature(256);
  DWORD size = 0;
  auto sign = [&](void* padding, ByteView input, DWORD flags) {
    return t_->SignHash(provider_, key, padding, const_cast<PBYTE>(input.data()),
                        static_cast<DWORD>(input.size()), signature.data(),
                        static_cast<DWORD>(signature.size()), &size, flags);
  };
  BCRYPT_PKCS1_PADDING_INFO pkcs1{BCRYPT_SHA256_ALGORITHM};
  BCRYPT_PSS_PADDING_INFO pss{BCRYPT_SHA256_ALGORITHM, 32};
  BCRYPT_OAEP_PADDING_INFO oaep{BCRYPT_SHA256_ALGORITHM, nullptr, 0};

  // No padding: malformed for RSA.
  EXPECT_NTE(sign(nullptr, digest, 0), NTE_INVALID_PARAMETER);
  EXPECT_NTE(sign(&pkcs1, digest, 0), NTE_INVALID_PARAMETER);
  EXPECT_NTE(sign(nullptr, digest, NCRYPT_PAD_PKCS1_FLAG), NTE_INVALID_PARAMETER);
  EXPECT_NTE(sign(nullptr, digest, NCRYPT_PAD_PSS_FLAG), NTE_INVALID_PARAMETER);
  // Paddings CNG defines that the agent cannot do.
  EXPECT_NTE(sign(&pkcs1, digest, BCRYPT_PAD_NONE), NTE_NOT_SUPPORTED);
  EXPECT_NTE(sign(&oaep, digest, NCRYPT_PAD_OAEP_FLAG), NTE_NOT_SUPPORTED);
  EXPECT_NTE(sign(&pkcs1, digest, NCRYPT_PAD_PKCS1_FLAG | NCRYPT_PAD_PSS_FLAG),
             NTE_INVALID_PARAMETER);
  // Hashes Signum does not sign, and a raw PKCS#1 input that is not a DigestInfo.
  BCRYPT_PKCS1_PADDING_INFO md5{BCRYPT_MD5_ALGORITHM};
  EXPECT_NTE(sign(&md5, Bytes(16, 1), NCRYPT_PAD_PKCS1_FLAG), NTE_NOT_SUPPORTED);
  BCRYPT_PKCS1_PADDING_INFO no_oid{nullptr};
  EXPECT_NTE(sign(&no_oid, Bytes(36, 1), NCRYPT_PAD_PKCS1_FLAG), NTE_NOT_SUPPORTED);
  // A digest of the wrong length for the named hash.
  EXPECT_NTE(sign(&pkcs1, Bytes(20, 1), NCRYPT_PAD_PKCS1_FLAG), NTE_INVALID_PARAMETER);
  EXPECT_NTE(sign(&pkcs1, Bytes(33, 1), NCRYPT_PAD_PKCS1_FLAG), NTE_INVALID_PARAMETER);
  EXPECT_NTE(sign(&pss, Bytes(48, 1), NCRYPT_PAD_PSS_FLAG), NTE_INVALID_PARAMETER);
  EXPECT_NTE(sign(&pkcs1, Bytes(), NCRYPT_PAD_PKCS1_FLAG), NTE_INVALID_PARAMETER);
  // PSS: a NULL algorithm id, and a salt longer than the modulus allows (256 - 32 - 2 = 222).
  BCRYPT_PSS_PADDING_INFO pss_no_alg{nullptr, 32};
  EXPECT_NTE(sign(&pss_no_alg, digest, NCRYPT_PAD_PSS_FLAG), NTE_INVALID_PARAMETER);
  BCRYPT_PSS_PADDING_INFO pss_big_salt{BCRYPT_SHA256_ALGORITHM, 223};
  EXPECT_NTE(sign(&pss_big_salt, digest, NCRYPT_PAD_PSS_FLAG), NTE_INVALID_PARAMETER);
  // Flags Windows does not define for SignHash, and a NULL result pointer.
  EXPECT_NTE(sign(&pkcs1, digest, NCRYPT_PAD_PKCS1_FLAG | 0x100000), NTE_BAD_FLAGS);
  EXPECT_NTE(t_->SignHash(provider_, key, &pkcs1, digest.data(), static_cast<DWORD>(digest.size()),
                          signature.data(), static_cast<DWORD>(signature.size()), nullptr,
                          NCRYPT_PAD_PKCS1_FLAG),
             NTE_INVALID_PARAMETER);
  // VerifySignature's own argument checks.
  EXPECT_NTE(
      t_->VerifySignature(provider_, key, &pkcs1, digest.data(), static_cast<DWORD>(digest.size()),
                          nullptr, 0, NCRYPT_PAD_PKCS1_FLAG),
      NTE_INVALID_PARAMETER);
  EXPECT_NTE(
      t_->VerifySignature(provider_, key, &pkcs1, digest.data(), static_cast<DWORD>(digest.size()),
                          signature.data(), static_cast<DWORD>(signature.size()), 0),
      NTE_INVALID_PARAMETER);
  EXPECT_NTE(
      t_->VerifySignature(provider_, key, &pkcs1, digest.data(), static_cast<DWORD>(digest.size()),
                          signature.data(), static_cast<DWORD>(signature.size()), BCRYPT_PAD_NONE),
      NTE_NOT_SUPPORTED);
}

// ---- agent unreachable -----------------------------------------------------------------------

// The KSP's context is process-wide and already connected in this process, so the unreachable
// agent is shown in a child: this same program, run with --agent-unreachable-child and
// SIGNUM_AGENT_TCP pointing at a loopback port that is bound but not listening (connections are
// refused). The child exits 0 only if every call returned the expected code without crashing.
constexpr char kChildSwitch[] = "--agent-unreachable-child";

int RunAgentUnreachableChild() {
  const LoadedKsp& ksp = Ksp();
  if (ksp.table == nullptr) {
    std::printf("child: %s\n", ksp.error.c_str());
    return 2;
  }
  auto* t = ksp.table;
  int failures = 0;
  auto check = [&](const char* what, SECURITY_STATUS actual, SECURITY_STATUS expected) {
    std::printf("child: %s -> %s (expected %s)\n", what, SecurityStatusName(actual).c_str(),
                SecurityStatusName(expected).c_str());
    if (actual != expected) ++failures;
  };
  NCRYPT_PROV_HANDLE provider = 0;
  check("OpenProvider", t->OpenProvider(&provider, kKspName, 0), ERROR_SUCCESS);
  NCRYPT_KEY_HANDLE key = 0;
  check("OpenKey(rsa-2048)", t->OpenKey(provider, &key, L"rsa-2048", 0, 0), NTE_DEVICE_NOT_READY);
  NCryptKeyName* name = nullptr;
  PVOID state = nullptr;
  check("EnumKeys", t->EnumKeys(provider, nullptr, &name, &state, 0), NTE_DEVICE_NOT_READY);
  check("OpenKey again", t->OpenKey(provider, &key, L"rsa-2048", 0, NCRYPT_SILENT_FLAG),
        NTE_DEVICE_NOT_READY);
  DWORD size = 0;
  BYTE buffer[256];
  check("GetProviderProperty(Name)",
        t->GetProviderProperty(provider, NCRYPT_NAME_PROPERTY, buffer, sizeof(buffer), &size, 0),
        ERROR_SUCCESS);
  check("FreeProvider", t->FreeProvider(provider), ERROR_SUCCESS);
  std::printf("child: %d unexpected result(s)\n", failures);
  std::fflush(stdout);
  return failures == 0 ? 0 : 1;
}

// A loopback TCP socket bound to a free port and not listening, held while the child runs.
class RefusingPort {
 public:
  RefusingPort() {
    WSADATA data;
    WSAStartup(MAKEWORD(2, 2), &data);
    socket_ = ::socket(AF_INET, SOCK_STREAM, IPPROTO_TCP);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    address.sin_port = 0;
    int length = sizeof(address);
    if (socket_ != INVALID_SOCKET &&
        ::bind(socket_, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0 &&
        ::getsockname(socket_, reinterpret_cast<sockaddr*>(&address), &length) == 0) {
      port_ = ntohs(address.sin_port);
    }
  }
  ~RefusingPort() {
    if (socket_ != INVALID_SOCKET) closesocket(socket_);
    WSACleanup();
  }
  int port() const { return port_; }

 private:
  SOCKET socket_ = INVALID_SOCKET;
  int port_ = 0;
};

TEST(KspAgentUnreachable, CallsReturnNteCodesWithoutCrashing) {
  if (EnvironmentValue("SIGNUM_AGENT_SECRET_FILE").empty()) {
    GTEST_SKIP() << "SIGNUM_AGENT_SECRET_FILE not set: the child must fail on the connection "
                    "alone, with a valid configuration otherwise (run-wine-suite.sh sets it)";
  }
  RefusingPort port;
  ASSERT_NE(port.port(), 0) << "no loopback port to refuse connections";
  const std::string endpoint = "127.0.0.1:" + std::to_string(port.port());

  // The child inherits this process's environment with SIGNUM_AGENT_TCP changed; this process's
  // KSP context has read its configuration already and is not affected.
  const ChildRun child = RunThisProgramAsChild(
      WidenAscii(kChildSwitch), {{"SIGNUM_AGENT_TCP", endpoint}}, 60000, ChildOutput::kCapture);
  ASSERT_TRUE(child.started) << "CreateProcess failed: " << Win32ErrorName(child.start_error);
  const std::string& output = child.output;
  ASSERT_TRUE(child.finished) << "the child did not finish\n" << output;
  EXPECT_EQ(child.exit_code, 0u) << "agent " << endpoint << " (refusing):\n" << output;
  EXPECT_NE(output.find("child: 0 unexpected result(s)"), std::string::npos) << output;
  std::printf("%s", output.c_str());
}

}  // namespace
}  // namespace signum::cng

int main(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    if (std::string(argv[i]) == signum::cng::kChildSwitch) {
      return signum::cng::RunAgentUnreachableChild();
    }
  }
  ::testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}

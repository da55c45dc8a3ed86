#include "suite_support.h"

// A block of its own: bcrypt.h needs windows.h's types first.
#include <bcrypt.h>
#include <wincrypt.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <optional>
#include <utility>

#include "signum/cng/nte_status.h"
#include "signum/core/encoding.h"
#include "signum/provider/wide_string.h"

namespace signum::cng {

std::string EnvironmentValue(const char* name) {
  const char* value = std::getenv(name);
  return value != nullptr ? value : "";
}

std::wstring WidenAscii(std::string_view ascii) { return std::wstring(ascii.begin(), ascii.end()); }

std::string NarrowAscii(std::wstring_view ascii) { return std::string(ascii.begin(), ascii.end()); }

std::wstring ThisProgramPath() {
  wchar_t path[MAX_PATH] = {};
  GetModuleFileNameW(nullptr, path, MAX_PATH);
  return path;
}

std::wstring ThisProgramDirectory() {
  std::wstring path = ThisProgramPath();
  path.resize(path.find_last_of(L"\\/"));
  return path;
}

std::wstring ProviderDllPath(std::wstring_view dll_name) {
  std::wstring dir = WidenAscii(EnvironmentValue("SIGNUM_CNG_BIN_DIR"));
  if (dir.empty()) dir = ThisProgramDirectory();
  return dir + L"\\" + std::wstring(dll_name);
}

Bytes BcryptDigest(HashAlgorithm hash, ByteView data) {
  const std::wstring algorithm = WidenAscii(GetHashInfo(hash).cng_algorithm_id);
  BCRYPT_ALG_HANDLE alg = nullptr;
  BCRYPT_HASH_HANDLE handle = nullptr;
  Bytes digest(GetHashInfo(hash).digest_size);
  EXPECT_EQ(BCryptOpenAlgorithmProvider(&alg, algorithm.c_str(), nullptr, 0), 0);
  EXPECT_EQ(BCryptCreateHash(alg, &handle, nullptr, 0, nullptr, 0, 0), 0);
  EXPECT_EQ(
      BCryptHashData(handle, const_cast<PUCHAR>(data.data()), static_cast<ULONG>(data.size()), 0),
      0);
  EXPECT_EQ(BCryptFinishHash(handle, digest.data(), static_cast<ULONG>(digest.size()), 0), 0);
  BCryptDestroyHash(handle);
  BCryptCloseAlgorithmProvider(alg, 0);
  return digest;
}

Bytes BcryptRandomBytes(size_t size) {
  Bytes out(size);
  EXPECT_EQ(BCryptGenRandom(nullptr, out.data(), static_cast<ULONG>(size),
                            BCRYPT_USE_SYSTEM_PREFERRED_RNG),
            0);
  return out;
}

std::string Sha1Hex(ByteView data) {
  std::string hex;
  char byte[3];
  for (uint8_t b : BcryptDigest(HashAlgorithm::kSha1, data)) {
    std::snprintf(byte, sizeof(byte), "%02x", b);
    hex += byte;
  }
  return hex;
}

Bytes PemToDer(const std::string& pem) {
  DWORD size = 0;
  if (!CryptStringToBinaryA(pem.c_str(), 0, CRYPT_STRING_BASE64HEADER, nullptr, &size, nullptr,
                            nullptr)) {
    return {};
  }
  Bytes der(size);
  if (!CryptStringToBinaryA(pem.c_str(), 0, CRYPT_STRING_BASE64HEADER, der.data(), &size, nullptr,
                            nullptr)) {
    return {};
  }
  der.resize(size);
  return der;
}

Bytes PlatformRsaPublicBlob(ByteView certificate_der) {
  PCCERT_CONTEXT cert = CertCreateCertificateContext(X509_ASN_ENCODING, certificate_der.data(),
                                                     static_cast<DWORD>(certificate_der.size()));
  if (cert == nullptr) {
    ADD_FAILURE() << "crypt32 cannot parse the certificate";
    return {};
  }
  BCRYPT_KEY_HANDLE key = nullptr;
  Bytes blob;
  if (!CryptImportPublicKeyInfoEx2(X509_ASN_ENCODING, &cert->pCertInfo->SubjectPublicKeyInfo, 0,
                                   nullptr, &key)) {
    ADD_FAILURE() << "CryptImportPublicKeyInfoEx2 failed: " << Win32ErrorName(GetLastError());
  } else {
    ULONG size = 0;
    EXPECT_EQ(BCryptExportKey(key, nullptr, BCRYPT_RSAPUBLIC_BLOB, nullptr, 0, &size, 0), 0);
    blob.resize(size);
    EXPECT_EQ(BCryptExportKey(key, nullptr, BCRYPT_RSAPUBLIC_BLOB, blob.data(), size, &size, 0), 0);
    blob.resize(size);
    BCryptDestroyKey(key);
  }
  CertFreeCertificateContext(cert);
  return blob;
}

::testing::AssertionResult IsStatus(const char* expr, const char* /*expected_expr*/,
                                    SECURITY_STATUS actual, SECURITY_STATUS expected) {
  if (actual == expected) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << expr << " returned " << SecurityStatusName(actual)
                                       << ", expected " << SecurityStatusName(expected);
}

std::string Win32ErrorName(DWORD error) {
  struct Named {
    DWORD code;
    const char* name;
  };
  // The plain Win32 codes CryptoAPI/CNG callers see; NTE_* come from SecurityStatusName.
  static constexpr Named kNames[] = {
      {ERROR_INVALID_HANDLE, "ERROR_INVALID_HANDLE"},
      {ERROR_NOT_SUPPORTED, "ERROR_NOT_SUPPORTED"},
      {ERROR_INVALID_PARAMETER, "ERROR_INVALID_PARAMETER"},
      {ERROR_BUSY, "ERROR_BUSY"},
      {ERROR_MORE_DATA, "ERROR_MORE_DATA"},
      {ERROR_NO_MORE_ITEMS, "ERROR_NO_MORE_ITEMS"},
      {static_cast<DWORD>(CRYPT_E_NOT_FOUND), "CRYPT_E_NOT_FOUND"},
      {static_cast<DWORD>(CRYPT_E_NO_KEY_PROPERTY), "CRYPT_E_NO_KEY_PROPERTY"},
  };
  // SecurityStatusName: "NTE_PERM (0x80090010)", or the bare hex value of a code it does not name.
  const std::string named_or_hex = SecurityStatusName(static_cast<SECURITY_STATUS>(error));
  for (const Named& n : kNames) {
    if (n.code == error) return std::string(n.name) + " (" + named_or_hex + ")";
  }
  return named_or_hex;
}

namespace {

// Sets name=value in this process's environment block (what CreateProcess hands down) and puts
// the previous value, or its absence, back on destruction.
class ScopedEnvironmentVariable {
 public:
  ScopedEnvironmentVariable(std::string name, const std::string& value) : name_(std::move(name)) {
    const DWORD size = GetEnvironmentVariableA(name_.c_str(), nullptr, 0);
    if (size > 0) {
      std::string previous(size, '\0');
      previous.resize(GetEnvironmentVariableA(name_.c_str(), previous.data(), size));
      previous_ = std::move(previous);
    }
    SetEnvironmentVariableA(name_.c_str(), value.c_str());
  }
  ~ScopedEnvironmentVariable() {
    SetEnvironmentVariableA(name_.c_str(), previous_ ? previous_->c_str() : nullptr);
  }
  ScopedEnvironmentVariable(const ScopedEnvironmentVariable&) = delete;
  ScopedEnvironmentVariable& operator=(const ScopedEnvironmentVariable&) = delete;

 private:
  std::string name_;
  std::optional<std::string> previous_;
};

}  // namespace

ChildRun RunThisProgramAsChild(std::wstring_view arguments,
                               const std::vector<std::pair<std::string, std::string>>& environment,
                               DWORD timeout_ms, ChildOutput output) {
  return RunProgram(ThisProgramPath(), arguments, environment, timeout_ms, output);
}

ChildRun RunProgram(const std::wstring& program, std::wstring_view arguments,
                    const std::vector<std::pair<std::string, std::string>>& environment,
                    DWORD timeout_ms, ChildOutput output) {
  ChildRun run;
  HANDLE read_end = nullptr, write_end = nullptr;
  STARTUPINFOW startup{};
  startup.cb = sizeof(startup);
  startup.dwFlags = STARTF_USESTDHANDLES;
  startup.hStdInput = GetStdHandle(STD_INPUT_HANDLE);
  if (output == ChildOutput::kCapture) {
    SECURITY_ATTRIBUTES inherit{sizeof(inherit), nullptr, TRUE};
    if (!CreatePipe(&read_end, &write_end, &inherit, 0)) {
      run.start_error = GetLastError();
      return run;
    }
    SetHandleInformation(read_end, HANDLE_FLAG_INHERIT, 0);
    startup.hStdOutput = write_end;
    startup.hStdError = write_end;
  } else {
    startup.hStdOutput = GetStdHandle(STD_OUTPUT_HANDLE);
    startup.hStdError = GetStdHandle(STD_ERROR_HANDLE);
  }
  std::wstring command = L"\"" + program + L"\" " + std::wstring(arguments);
  PROCESS_INFORMATION process{};
  {
    std::vector<std::unique_ptr<ScopedEnvironmentVariable>> changed;
    for (const auto& [name, value] : environment) {
      changed.push_back(std::make_unique<ScopedEnvironmentVariable>(name, value));
    }
    // Wine now and then fails to start a process at all (CreateProcess: ERROR_INTERNAL_ERROR,
    // seen once in a clean CI run, while another Wine suite ran beside it); that says nothing
    // about the program, which has not run yet, so the start is tried again, twice at most.
    for (int attempt = 0; attempt < 3; ++attempt) {
      run.started = CreateProcessW(nullptr, command.data(), nullptr, nullptr, TRUE, 0, nullptr,
                                   nullptr, &startup, &process);
      run.start_error = run.started ? 0 : GetLastError();
      if (run.started || run.start_error != ERROR_INTERNAL_ERROR) break;
      Sleep(200);
    }
  }
  if (write_end != nullptr) CloseHandle(write_end);  // the child holds its own copy
  if (run.started && read_end != nullptr) {
    char chunk[512];
    DWORD got = 0;
    while (ReadFile(read_end, chunk, sizeof(chunk), &got, nullptr) && got > 0) {
      run.output.append(chunk, got);
    }
  }
  if (read_end != nullptr) CloseHandle(read_end);
  if (!run.started) return run;
  run.finished = WaitForSingleObject(process.hProcess, timeout_ms) == WAIT_OBJECT_0;
  if (!run.finished) TerminateProcess(process.hProcess, 1);
  GetExitCodeProcess(process.hProcess, &run.exit_code);
  CloseHandle(process.hThread);
  CloseHandle(process.hProcess);
  return run;
}

ProvInfo FindInStore(DWORD location, const wchar_t* store_name, const std::string& sha1_hex) {
  ProvInfo result;
  HCERTSTORE store = CertOpenStore(CERT_STORE_PROV_SYSTEM_W, 0, 0,
                                   location | CERT_STORE_OPEN_EXISTING_FLAG, store_name);
  if (store == nullptr) return result;
  auto hash = HexDecode(sha1_hex);
  CRYPT_HASH_BLOB blob{static_cast<DWORD>(hash->size()), hash->data()};
  PCCERT_CONTEXT context =
      CertFindCertificateInStore(store, X509_ASN_ENCODING, 0, CERT_FIND_SHA1_HASH, &blob, nullptr);
  if (context != nullptr) {
    result.found = true;
    DWORD size = 0;
    if (CertGetCertificateContextProperty(context, CERT_KEY_PROV_INFO_PROP_ID, nullptr, &size)) {
      Bytes buffer(size);
      if (CertGetCertificateContextProperty(context, CERT_KEY_PROV_INFO_PROP_ID, buffer.data(),
                                            &size)) {
        const auto* info = reinterpret_cast<const CRYPT_KEY_PROV_INFO*>(buffer.data());
        result.has_info = true;
        result.provider = info->pwszProvName ? provider::Utf8FromWide(info->pwszProvName) : "";
        result.container = info->pwszContainerName ? provider::Utf8FromWide(info->pwszContainerName) : "";
        result.provider_type = info->dwProvType;
        result.key_spec = info->dwKeySpec;
        result.flags = info->dwFlags;
      }
    }
    CertFreeCertificateContext(context);
  }
  CertCloseStore(store, 0);
  return result;
}

void WriteBinaryFile(const std::string& path, ByteView content) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(content.data()),
            static_cast<std::streamsize>(content.size()));
  ASSERT_TRUE(out.good()) << "cannot write " << path;
}

SignatureManifest::SignatureManifest(std::string dir) : dir_(std::move(dir)) {}

void SignatureManifest::Clear() const {
  std::ofstream manifest(dir_ + "\\manifest.tsv", std::ios::trunc | std::ios::binary);
  ASSERT_TRUE(manifest.good()) << "cannot write " << dir_ << "\\manifest.tsv";
}

void SignatureManifest::Add(const std::string& name, std::string_view kind, std::string_view hash,
                            std::optional<ByteView> message, ByteView signature,
                            ByteView certificate, std::string_view param) const {
  const std::string message_file = message ? name + ".msg" : std::string("-");
  if (message) WriteBinaryFile(dir_ + "\\" + message_file, *message);
  WriteBinaryFile(dir_ + "\\" + name + ".sig", signature);
  WriteBinaryFile(dir_ + "\\" + name + ".cer", certificate);
  std::ofstream manifest(dir_ + "\\manifest.tsv", std::ios::app | std::ios::binary);
  manifest << name << '\t' << kind << '\t' << hash << '\t' << message_file << '\t' << name
           << ".sig\t" << name << ".cer\t" << param << '\n';
  ASSERT_TRUE(manifest.good()) << "cannot write " << dir_ << "\\manifest.tsv";
}

}  // namespace signum::cng

// The helpers every Windows conformance program (agent_test, ksp_table_test, ncrypt_api_test,
// csp_test) needs, in one place. They are test-side code on purpose: hashing and random bytes come
// from Windows' own bcrypt, never from the provider core, so the suites do not check the
// providers with the providers' code; and every signature goes to one manifest.tsv writer, the
// format conformance/cng/verify-manifest.sh reads with native OpenSSL (docs: windows.md).
#pragma once

#include <windows.h>
// A block of its own: ncrypt.h needs windows.h's types first (SECURITY_STATUS).
#include <gtest/gtest.h>
#include <ncrypt.h>

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "signum/core/algorithms.h"
#include "signum/core/bytes.h"

namespace signum::cng {

// ---- environment and locations -----------------------------------------------------------------

// The value of an environment variable, "" when unset: run-wine-suite.sh configures the programs
// only through the environment, and "not set" means "not driven by the suite" (the tests skip).
std::string EnvironmentValue(const char* name);

// ASCII <-> UTF-16 for labels, ids and algorithm names (all ASCII); not a UTF-8 conversion.
std::wstring WidenAscii(std::string_view ascii);
std::string NarrowAscii(std::wstring_view ascii);

// This program's own path and directory (a child run of the same program; the default bin dir).
std::wstring ThisProgramPath();
std::wstring ThisProgramDirectory();

// Where the provider DLLs are: SIGNUM_CNG_BIN_DIR, else this program's directory (they are built
// side by side into <tree>/bin); dll_name is e.g. kKspDllName.
std::wstring ProviderDllPath(std::wstring_view dll_name);

// ---- platform crypto: Windows' own bcrypt, independent of the provider core ---------------------

// The digest of data through BCryptHash with the algorithm's CNG id; OpenSSL recomputes it from
// the message file when verifying, so the providers' digest code is never the only witness.
Bytes BcryptDigest(HashAlgorithm hash, ByteView data);
// Random test messages, from the system RNG.
Bytes BcryptRandomBytes(size_t size);
// Lowercase hex SHA-1 (certificate thumbprints, the KSP's key names).
std::string Sha1Hex(ByteView data);
// The DER of the first PEM block, decoded by crypt32 (CryptStringToBinary); empty if it does not
// decode. The agent hands certificates out as PEM; Windows APIs take DER.
Bytes PemToDer(const std::string& pem);
// The BCRYPT_RSAPUBLIC_BLOB the platform builds from a certificate's SubjectPublicKeyInfo
// (crypt32 + bcrypt): what a provider's exported public key must equal. Empty, with a gtest
// failure, when the platform cannot parse or import it.
Bytes PlatformRsaPublicBlob(ByteView certificate_der);

// ---- certificate stores -----------------------------------------------------------------------

// What crypt32 itself says about a certificate in a system store (by SHA-1 thumbprint, hex in
// any case): whether it is there and, if it carries CERT_KEY_PROV_INFO, which provider and
// container it names. Read this way, not through signum-util's own output.
struct ProvInfo {
  bool found = false;
  bool has_info = false;
  std::string provider, container;  // UTF-8
  DWORD provider_type = 0, key_spec = 0, flags = 0;
};
// location: CERT_SYSTEM_STORE_CURRENT_USER or CERT_SYSTEM_STORE_LOCAL_MACHINE.
ProvInfo FindInStore(DWORD location, const wchar_t* store_name, const std::string& sha1_hex);

// ---- return codes printed by name ---------------------------------------------------------------

// Gtest predicate formatter: "expr returned NTE_PERM (0x80090010), expected ERROR_SUCCESS (...)".
::testing::AssertionResult IsStatus(const char* expr, const char* expected_expr,
                                    SECURITY_STATUS actual, SECURITY_STATUS expected);
#define EXPECT_NTE(expr, expected) EXPECT_PRED_FORMAT2(::signum::cng::IsStatus, expr, expected)
#define ASSERT_NTE(expr, expected) ASSERT_PRED_FORMAT2(::signum::cng::IsStatus, expr, expected)

// A GetLastError() value (or an HRESULT) by name where it is one CryptoAPI/CNG callers see
// (NTE_*, ERROR_MORE_DATA, ...), with its hex value; other codes as hex only.
std::string Win32ErrorName(DWORD error);

// ---- child processes ---------------------------------------------------------------------------

// The providers' context is process-wide and already connected in the test process, so the
// "agent unreachable" cases run in a fresh child of this same program; the signum-util suite runs
// the real signum-util.exe. Some environment variables are changed for the child (and restored
// here as they were).
enum class ChildOutput { kInherit, kCapture };
struct ChildRun {
  bool started = false;
  DWORD start_error = 0;  // GetLastError() when the child could not be started
  bool finished = false;  // exited within the timeout (otherwise it was terminated)
  DWORD exit_code = 0xFFFFFFFF;
  std::string output;  // its stdout and stderr, with ChildOutput::kCapture
};
ChildRun RunProgram(const std::wstring& program, std::wstring_view arguments,
                    const std::vector<std::pair<std::string, std::string>>& environment,
                    DWORD timeout_ms, ChildOutput output);
ChildRun RunThisProgramAsChild(std::wstring_view arguments,
                               const std::vector<std::pair<std::string, std::string>>& environment,
                               DWORD timeout_ms, ChildOutput output);

// ---- files and the signature manifest -----------------------------------------------------------

// Writes content to path (binary, truncated); a gtest failure when it cannot.
void WriteBinaryFile(const std::string& path, ByteView content);

// SIGNUM_CNG_OUTPUT_DIR/manifest.tsv: one signature per line, TAB-separated, files relative to
// the directory: name kind hash message signature certificate param (windows.md;
// verify-manifest.sh). Each Add writes <name>.msg, <name>.sig and <name>.cer beside it.
class SignatureManifest {
 public:
  explicit SignatureManifest(std::string dir);

  const std::string& dir() const { return dir_; }
  // Empties manifest.tsv, so that it lists this run's signatures only.
  void Clear() const;
  // kind: rsa-pkcs1 | rsa-pss | rsa-pkcs1-le | ecdsa-p1363 | cms. message: what was hashed (not
  // the digest), or nullopt for a cms signature that embeds its content ('-' in the manifest).
  // certificate: the signer's certificate, DER or PEM. param: the PSS salt length, else "-".
  void Add(const std::string& name, std::string_view kind, std::string_view hash,
           std::optional<ByteView> message, ByteView signature, ByteView certificate,
           std::string_view param = "-") const;
  void Add(const std::string& name, std::string_view kind, HashAlgorithm hash,
           std::optional<ByteView> message, ByteView signature, ByteView certificate,
           std::string_view param = "-") const {
    Add(name, kind, HashName(hash), message, signature, certificate, param);
  }

 private:
  std::string dir_;
};

}  // namespace signum::cng

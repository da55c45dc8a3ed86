// The shared machinery of signum-conformance-pkcs11: the module under test (dlopen'd once, driven
// through its raw function list so every C_* call is the suite's own), the selected token, the
// expectations file, the base fixture every check derives from, and helpers for keys and signing.
#pragma once

#include <gtest/gtest.h>

#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "signum/core/algorithms.h"
#include "signum/core/crypto.h"
#include "signum/core/pkcs11.h"
#include "signum/core/pkcs11_module.h"
#include "signum/core/x509.h"
#include "signum/testing/status_matchers.h"

namespace signum::conformance {

enum class Profile { kProvider, kHsm };
std::string_view ProfileName(Profile profile);

// Known deviations of one module: checks expected to fail (xfail) and checks that do not apply
// because the module does not claim the feature (reported as skips with the reason).
struct Expectation {
  std::string check;
  std::string reason;
  std::optional<Profile> profile;  // unset: both profiles
};
struct Expectations {
  std::string module;
  std::vector<Expectation> expected_failures;
  std::vector<Expectation> not_applicable;
  static Result<Expectations> Load(const std::string& path);
  const Expectation* ExpectedFailure(std::string_view check, Profile profile) const;
  const Expectation* NotApplicable(std::string_view check, Profile profile) const;
};

struct Options {
  std::string module_path;
  std::optional<std::string> token_label;
  std::optional<CK_SLOT_ID> slot;
  std::optional<std::string> pin;
  Profile profile = Profile::kProvider;
  std::optional<Bytes> key_id;
  std::optional<std::string> key_label;
  std::string junit_path, summary_path, expect_path;
  bool strict = false;  // spec-level deviations fail the run too (default: warnings)
  // Passed as CK_C_INITIALIZE_ARGS.pReserved to every C_Initialize, for modules that read their
  // parameters there (as NSS passes them); unset: NULL.
  std::optional<std::string> init_args;
};

// The module under test. Never dlclose'd: modules linked against OpenSSL (SoftHSM2) do not
// survive unloading in an OpenSSL-using process.
struct ModuleUnderTest {
  void* handle = nullptr;
  CK_C_GetFunctionList get_function_list = nullptr;
  CK_C_GetInterfaceList get_interface_list = nullptr;  // NULL before PKCS#11 3.0
  CK_C_GetInterface get_interface = nullptr;
  CK_FUNCTION_LIST_PTR functions = nullptr;
};

struct Suite {
  Options options;
  Expectations expectations;
  ModuleUnderTest module;
  CK_SLOT_ID slot = 0;
  std::string token_label;
  std::string library_description;  // for the summary
};
Suite& TheSuite();
// dlopen, resolve the entry points, pick the slot (initialises and finalises once).
Status PrepareSuite(Suite& suite);
// Puts --init-args into args.pReserved when that is NULL. Every C_Initialize the suite makes
// with arguments goes through it (Pkcs11Check::Initialize does).
void ApplyInitArgs(CK_C_INITIALIZE_ARGS& args);

// Notes attached to the running check (policy refusals, what was covered); the reporter prints
// them and writes them into the summary.
void Note(const std::string& text);
std::vector<std::string> TakeNotes();

// --- Small PKCS#11 helpers over the raw function list ---------------------------------------
#define EXPECT_RV(expected, expr) \
  EXPECT_EQ(::signum::CkRvName(expr), ::signum::CkRvName(expected)) << #expr
#define ASSERT_RV(expected, expr) \
  ASSERT_EQ(::signum::CkRvName(expr), ::signum::CkRvName(expected)) << #expr
// ASSERT_OK / ASSERT_OK_AND_ASSIGN come from signum/testing/status_matchers.h.

// A template attribute that owns its value.
class Template {
 public:
  Template& Add(CK_ATTRIBUTE_TYPE type, ByteView value);
  Template& AddUlong(CK_ATTRIBUTE_TYPE type, CK_ULONG value);
  Template& AddBool(CK_ATTRIBUTE_TYPE type, bool value);
  Template& AddString(CK_ATTRIBUTE_TYPE type, std::string_view value);
  CK_ATTRIBUTE* data();
  CK_ULONG size() const { return static_cast<CK_ULONG>(types_.size()); }

 private:
  std::vector<CK_ATTRIBUTE_TYPE> types_;
  std::vector<Bytes> values_;
  std::vector<CK_ATTRIBUTE> attributes_;
};

Result<std::vector<CK_OBJECT_HANDLE>> FindObjects(CK_SESSION_HANDLE session, Template tmpl,
                                                  CK_ULONG batch = 64);
Result<Bytes> GetAttribute(CK_SESSION_HANDLE session, CK_OBJECT_HANDLE object,
                           CK_ATTRIBUTE_TYPE type);
Result<CK_ULONG> GetUlong(CK_SESSION_HANDLE session, CK_OBJECT_HANDLE object,
                          CK_ATTRIBUTE_TYPE type);
Result<bool> GetBool(CK_SESSION_HANDLE session, CK_OBJECT_HANDLE object, CK_ATTRIBUTE_TYPE type);
std::string Hex(ByteView bytes);
// C_Login takes a non-const pointer it never writes through.
inline CK_UTF8CHAR_PTR PinBytes(const std::string& pin) {
  return reinterpret_cast<CK_UTF8CHAR_PTR>(const_cast<char*>(pin.data()));
}
Bytes FromUlong(CK_ULONG value);

// A private key on the token with what belongs to it.
struct TokenKey {
  CK_OBJECT_HANDLE private_key = CK_INVALID_HANDLE;
  Bytes id;
  std::string label;
  CK_KEY_TYPE key_type = CKK_RSA;
  std::optional<Certificate> certificate;
  CK_OBJECT_HANDLE certificate_handle = CK_INVALID_HANDLE;
  CK_OBJECT_HANDLE public_key_handle = CK_INVALID_HANDLE;
  // From the certificate, else from the public-key object: what signatures are verified with.
  std::optional<PublicKey> verify_key;
  std::string Name() const;  // "rsa-2048" or the hex id
};
// Every private key (after the --key-id/--key-label filters) with its certificate and public key
// found by CKA_ID, in a fixed order (RSA before EC, then by label, then by id): modules return
// objects in any order (SoftHSM2's varies from run to run) and checks must not depend on it.
Result<std::vector<TokenKey>> ListKeys(CK_SESSION_HANDLE session);
// The first key (in ListKeys order) of every key type present: what checks about "a key" cover,
// so a defect that hits one key type only fails them every time.
std::vector<const TokenKey*> OnePerKeyType(const std::vector<TokenKey>& keys);
// The public key held by a public-key (or private-key) object's public components.
Result<PublicKey> PublicKeyFromObject(CK_SESSION_HANDLE session, CK_OBJECT_HANDLE object);

// One signing operation's outcome.
struct SignOutcome {
  CK_RV rv = CKR_OK;
  Bytes signature;
  std::string step;  // the call that failed
};
SignOutcome SignSinglePart(CK_SESSION_HANDLE session, CK_MECHANISM mechanism,
                           CK_OBJECT_HANDLE key, ByteView data);
// chunk_sizes cycle until the data is used up; a 0 means one empty C_SignUpdate.
SignOutcome SignMultiPart(CK_SESSION_HANDLE session, CK_MECHANISM mechanism,
                          CK_OBJECT_HANDLE key, ByteView data,
                          const std::vector<size_t>& chunk_sizes);

// The simplest advertised way to sign with a key, for checks about something else.
struct SignRecipe {
  CK_MECHANISM_TYPE mechanism = 0;
  bool hash_and_sign = false;  // false: the input is a digest (ECDSA) or DigestInfo (RSA)
  HashAlgorithm hash = HashAlgorithm::kSha256;
  SignatureScheme scheme = SignatureScheme::kRsaPkcs1;
};
// Signs `message` with the recipe and verifies the signature with OpenSSL.
Status SignAndVerify(CK_SESSION_HANDLE session, const TokenKey& key, const SignRecipe& recipe,
                     ByteView message);

// threads x per_thread signatures, each thread with its own session (or a new session per
// signature), key i signed with recipes[i]; every signature verified. The login must be held by
// a session that stays open.
Status SignConcurrently(const std::vector<TokenKey>& keys, const std::vector<SignRecipe>& recipes,
                        int threads, int per_thread, bool session_per_signature);

// What a forked child reports back.
struct ChildOutcome {
  bool exited = false;
  int exit_code = -1;
  int signal = 0;
  bool timed_out = false;
  std::string message;
  std::string Describe() const;
};
// Runs body in a forked child; body returns its exit code and may fill `message`.
ChildOutcome RunInChild(const std::function<int(std::string& message)>& body,
                        int timeout_seconds = 60);

// Base fixture: applies the expectations' "not applicable" entries, initialises the module with
// OS locking before each check and finalises it after, so checks start from the same state.
class Pkcs11Check : public ::testing::Test {
 protected:
  void SetUp() override;
  void TearDown() override;

  CK_FUNCTION_LIST_PTR f() const { return TheSuite().module.functions; }
  CK_SLOT_ID slot() const { return TheSuite().slot; }
  Profile profile() const { return TheSuite().options.profile; }
  const std::optional<std::string>& pin() const { return TheSuite().options.pin; }

  // Sets pReserved to --init-args when the caller left it NULL.
  CK_RV Initialize(CK_C_INITIALIZE_ARGS* args);
  CK_RV Finalize();
  bool LoginRequired();
  // Opens a session and logs the user in when the token needs it and a PIN is known.
  CK_SESSION_HANDLE OpenSession(bool read_write = false, bool login = true);
  // The mechanisms the token lists for the slot.
  const std::set<CK_MECHANISM_TYPE>& Advertised();
  bool IsAdvertised(CK_MECHANISM_TYPE mechanism) { return Advertised().count(mechanism) > 0; }
  std::optional<SignRecipe> DefaultRecipe(const TokenKey& key);
  // Keys of the token (GTEST_SKIP()s in the caller's place is impossible, so callers check empty).
  std::vector<TokenKey> KeysOrFail(CK_SESSION_HANDLE session);
  // For each key type present, its first key that has a public key to verify with and an
  // advertised default recipe (OnePerKeyType's choice among the signable keys).
  struct SigningKey {
    TokenKey key;
    SignRecipe recipe;
  };
  std::vector<SigningKey> SigningKeysPerType(const std::vector<TokenKey>& keys);
  // Counts policy refusals (CKR_FUNCTION_REJECTED) and ran cases for the skip decision.
  void Refused(const std::string& what);
  int refused_ = 0;

 private:
  bool initialized_ = false;
  std::optional<std::set<CK_MECHANISM_TYPE>> advertised_;
};

// A fixture with a logged-in session and the token's keys (skip when there are none).
class KeyedCheck : public Pkcs11Check {
 protected:
  void SetUp() override {
    Pkcs11Check::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    session_ = OpenSession();
    ASSERT_NE(session_, CK_INVALID_HANDLE);
    keys_ = KeysOrFail(session_);
    if (HasFailure()) return;
    if (keys_.empty()) {
      GTEST_SKIP() << (pin() ? "no private keys on the token"
                             : "no private keys visible (no PIN given)");
    }
  }
  // On a bare HSM (hsm profile) the token may hold no certificates at all.
  bool SkipWithoutCertificates() {
    if (profile() != Profile::kHsm) return false;
    for (const auto& k : keys_) {
      if (k.certificate) return false;
    }
    return true;
  }
  std::set<CK_OBJECT_HANDLE> Search(Template tmpl) {
    auto found = FindObjects(session_, std::move(tmpl));
    EXPECT_TRUE(found.ok()) << found.status().ToString();
    return found.ok() ? std::set<CK_OBJECT_HANDLE>(found->begin(), found->end())
                      : std::set<CK_OBJECT_HANDLE>{};
  }
  CK_SESSION_HANDLE session_ = CK_INVALID_HANDLE;
  std::vector<TokenKey> keys_;
};

// Runs one signing case: signs, treats CKR_FUNCTION_REJECTED as a policy refusal, expects success
// otherwise and verifies the signature with OpenSSL. Counts what ran for FinishCases().
class SigningCheck : public KeyedCheck {
 protected:
  // input: what C_Sign gets; digest: what the signature is over (for verification).
  void SignCase(const TokenKey& key, CK_MECHANISM mechanism, ByteView input,
                SignatureScheme scheme, HashAlgorithm hash, ByteView digest,
                const std::string& what, Bytes* signature = nullptr,
                const std::vector<size_t>* chunks = nullptr);
  // Skips (with the reason) when no case ran.
  void FinishCases(const std::string& reason_if_none);
  int ran_ = 0;
};

// Key size in bits as PKCS#11 mechanism info counts it (RSA modulus bits, EC curve bits).
int KeyBits(const TokenKey& key);
std::optional<KeySpec> SpecOf(const TokenKey& key);

}  // namespace signum::conformance

#include "suite.h"

#include <dlfcn.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <sstream>
#include <tuple>

#include "signum/testing/status_matchers.h"

namespace signum::conformance {

std::string_view ProfileName(Profile profile) {
  return profile == Profile::kHsm ? "hsm" : "provider";
}

Suite& TheSuite() {
  static Suite* suite = new Suite();  // lives until exit, never destroyed (children fork from it)
  return *suite;
}

// --- Expectations -----------------------------------------------------------------------------

Result<Expectations> Expectations::Load(const std::string& path) {
  std::ifstream in(path);
  if (!in) return NotFoundError("cannot read expectations file " + path);
  nlohmann::json json = nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
  if (json.is_discarded() || !json.is_object()) {
    return InvalidArgumentError(path + ": not a JSON object");
  }
  Expectations result;
  result.module = json.value("module", "");
  auto read_list = [&](const char* key, std::vector<Expectation>& out) -> Status {
    if (!json.contains(key)) return Status::Ok();
    if (!json[key].is_array()) return InvalidArgumentError(path + ": '" + key + "' is not a list");
    for (const auto& entry : json[key]) {
      if (!entry.is_object() || !entry.contains("check") || !entry["check"].is_string() ||
          !entry.contains("reason") || !entry["reason"].is_string()) {
        return InvalidArgumentError(path + ": every '" + key +
                                    "' entry needs string fields 'check' and 'reason'");
      }
      Expectation e;
      e.check = entry["check"];
      e.reason = entry["reason"];
      if (entry.contains("bug") && entry["bug"].is_string()) {
        e.reason += " (" + entry["bug"].get<std::string>() + ")";
      }
      if (entry.contains("profile")) {
        const std::string p = entry.value("profile", "");
        if (p == "hsm") {
          e.profile = Profile::kHsm;
        } else if (p == "provider") {
          e.profile = Profile::kProvider;
        } else {
          return InvalidArgumentError(path + ": profile must be 'provider' or 'hsm'");
        }
      }
      out.push_back(std::move(e));
    }
    return Status::Ok();
  };
  SIGNUM_RETURN_IF_ERROR(read_list("expected_failures", result.expected_failures));
  SIGNUM_RETURN_IF_ERROR(read_list("not_applicable", result.not_applicable));
  return result;
}

namespace {
const Expectation* FindExpectation(const std::vector<Expectation>& list, std::string_view check,
                                   Profile profile) {
  for (const auto& e : list) {
    if (e.check == check && (!e.profile || *e.profile == profile)) return &e;
  }
  return nullptr;
}
}  // namespace

const Expectation* Expectations::ExpectedFailure(std::string_view check, Profile profile) const {
  return FindExpectation(expected_failures, check, profile);
}
const Expectation* Expectations::NotApplicable(std::string_view check, Profile profile) const {
  return FindExpectation(not_applicable, check, profile);
}

// --- Module and slot ----------------------------------------------------------------------------

void ApplyInitArgs(CK_C_INITIALIZE_ARGS& args) {
  const auto& init_args = TheSuite().options.init_args;
  if (args.pReserved == nullptr && init_args) {
    args.pReserved = const_cast<char*>(init_args->c_str());  // read-only for the module
  }
}

Status PrepareSuite(Suite& suite) {
  ModuleUnderTest& m = suite.module;
  m.handle = dlopen(suite.options.module_path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!m.handle) return NotFoundError(std::string("dlopen: ") + dlerror());
  m.get_function_list =
      reinterpret_cast<CK_C_GetFunctionList>(dlsym(m.handle, "C_GetFunctionList"));
  m.get_interface_list =
      reinterpret_cast<CK_C_GetInterfaceList>(dlsym(m.handle, "C_GetInterfaceList"));
  m.get_interface = reinterpret_cast<CK_C_GetInterface>(dlsym(m.handle, "C_GetInterface"));
  if (!m.get_function_list) {
    return NotFoundError(suite.options.module_path + " does not export C_GetFunctionList");
  }
  CK_RV rv = m.get_function_list(&m.functions);
  if (rv != CKR_OK || !m.functions) return CkStatus(rv, "C_GetFunctionList");

  CK_C_INITIALIZE_ARGS args{};
  args.flags = CKF_OS_LOCKING_OK;
  ApplyInitArgs(args);
  rv = m.functions->C_Initialize(&args);
  if (rv != CKR_OK) return CkStatus(rv, "C_Initialize");
  auto finish = [&](Status status) {
    m.functions->C_Finalize(nullptr);
    return status;
  };
  CK_INFO info{};
  if (m.functions->C_GetInfo(&info) == CKR_OK) {
    suite.library_description =
        TrimPadded(info.manufacturerID, sizeof info.manufacturerID) + " " +
        TrimPadded(info.libraryDescription, sizeof info.libraryDescription) + " " +
        std::to_string(info.libraryVersion.major) + "." +
        std::to_string(info.libraryVersion.minor);
  }
  CK_ULONG count = 0;
  rv = m.functions->C_GetSlotList(CK_TRUE, nullptr, &count);
  if (rv != CKR_OK) return finish(CkStatus(rv, "C_GetSlotList"));
  std::vector<CK_SLOT_ID> slots(count + 1);
  rv = m.functions->C_GetSlotList(CK_TRUE, slots.data(), &count);
  if (rv != CKR_OK) return finish(CkStatus(rv, "C_GetSlotList"));
  slots.resize(count);
  std::vector<std::pair<CK_SLOT_ID, std::string>> tokens;
  for (CK_SLOT_ID id : slots) {
    CK_TOKEN_INFO token{};
    if (m.functions->C_GetTokenInfo(id, &token) != CKR_OK) continue;
    tokens.emplace_back(id, TrimPadded(token.label, sizeof token.label));
  }
  const Options& o = suite.options;
  std::optional<std::pair<CK_SLOT_ID, std::string>> chosen;
  for (const auto& t : tokens) {
    if ((o.slot && t.first == *o.slot) || (o.token_label && t.second == *o.token_label)) {
      chosen = t;
      break;
    }
  }
  if (!o.slot && !o.token_label) {
    if (tokens.size() != 1) {
      return finish(InvalidArgumentError(std::to_string(tokens.size()) +
                                         " slots hold a token: choose one with --token or --slot"));
    }
    chosen = tokens.front();
  }
  if (!chosen) {
    std::string known;
    for (const auto& t : tokens) known += " '" + t.second + "' (slot " + std::to_string(t.first) + ")";
    return finish(NotFoundError("no such token; the module has:" + known));
  }
  suite.slot = chosen->first;
  suite.token_label = chosen->second;
  return finish(Status::Ok());
}

// --- Notes --------------------------------------------------------------------------------------

namespace {
std::mutex notes_mutex;
std::vector<std::string>& NotesStorage() {
  static auto* notes = new std::vector<std::string>();
  return *notes;
}
}  // namespace

void Note(const std::string& text) {
  std::lock_guard lock(notes_mutex);
  NotesStorage().push_back(text);
}
std::vector<std::string> TakeNotes() {
  std::lock_guard lock(notes_mutex);
  std::vector<std::string> out;
  out.swap(NotesStorage());
  return out;
}

// --- Templates and attributes ----------------------------------------------------------------

Template& Template::Add(CK_ATTRIBUTE_TYPE type, ByteView value) {
  types_.push_back(type);
  values_.emplace_back(value.begin(), value.end());
  return *this;
}
Template& Template::AddUlong(CK_ATTRIBUTE_TYPE type, CK_ULONG value) {
  return Add(type, FromUlong(value));
}
Template& Template::AddBool(CK_ATTRIBUTE_TYPE type, bool value) {
  const CK_BBOOL b = value ? CK_TRUE : CK_FALSE;
  return Add(type, ByteView(&b, 1));
}
Template& Template::AddString(CK_ATTRIBUTE_TYPE type, std::string_view value) {
  return Add(type, AsBytes(value));
}
CK_ATTRIBUTE* Template::data() {
  attributes_.clear();
  for (size_t i = 0; i < types_.size(); ++i) {
    attributes_.push_back(CK_ATTRIBUTE{types_[i], values_[i].empty() ? nullptr : values_[i].data(),
                                       static_cast<CK_ULONG>(values_[i].size())});
  }
  return attributes_.empty() ? nullptr : attributes_.data();
}

Bytes FromUlong(CK_ULONG value) {
  Bytes out(sizeof value);
  std::memcpy(out.data(), &value, sizeof value);
  return out;
}

std::string Hex(ByteView bytes) { return HexEncode(bytes); }

Result<std::vector<CK_OBJECT_HANDLE>> FindObjects(CK_SESSION_HANDLE session, Template tmpl,
                                                  CK_ULONG batch) {
  CK_FUNCTION_LIST_PTR f = TheSuite().module.functions;
  CK_RV rv = f->C_FindObjectsInit(session, tmpl.data(), tmpl.size());
  if (rv != CKR_OK) return CkStatus(rv, "C_FindObjectsInit");
  std::vector<CK_OBJECT_HANDLE> out;
  std::vector<CK_OBJECT_HANDLE> buffer(batch);
  for (;;) {
    CK_ULONG found = 0;
    rv = f->C_FindObjects(session, buffer.data(), batch, &found);
    if (rv != CKR_OK) {
      f->C_FindObjectsFinal(session);
      return CkStatus(rv, "C_FindObjects");
    }
    if (found > batch) {
      f->C_FindObjectsFinal(session);
      return InternalError("C_FindObjects returned more handles than asked for");
    }
    out.insert(out.end(), buffer.begin(), buffer.begin() + static_cast<std::ptrdiff_t>(found));
    if (found == 0) break;
  }
  rv = f->C_FindObjectsFinal(session);
  if (rv != CKR_OK) return CkStatus(rv, "C_FindObjectsFinal");
  return out;
}

namespace {
// No attribute a signing token holds (certificates included) comes near this; a larger length is
// garbage (a stale handle, an uninitialised field) and must not become an allocation.
constexpr CK_ULONG kMaxAttributeLength = 1 << 20;
}  // namespace

Result<Bytes> GetAttribute(CK_SESSION_HANDLE session, CK_OBJECT_HANDLE object,
                           CK_ATTRIBUTE_TYPE type) {
  CK_FUNCTION_LIST_PTR f = TheSuite().module.functions;
  const std::string what = "C_GetAttributeValue(" + AttributeName(type) + ")";
  CK_ATTRIBUTE a{type, nullptr, 0};
  CK_RV rv = f->C_GetAttributeValue(session, object, &a, 1);
  if (rv != CKR_OK) return CkStatus(rv, what);
  if (a.ulValueLen == CK_UNAVAILABLE_INFORMATION) {
    return InternalError(what + ": CKR_OK with CK_UNAVAILABLE_INFORMATION");
  }
  if (a.ulValueLen > kMaxAttributeLength) {
    return InternalError(what + ": CKR_OK with an implausible length " +
                         std::to_string(a.ulValueLen));
  }
  const CK_ULONG size = a.ulValueLen;
  Bytes value(size);
  a.pValue = value.empty() ? nullptr : value.data();
  rv = f->C_GetAttributeValue(session, object, &a, 1);
  if (rv != CKR_OK) return CkStatus(rv, what + " (reading the value)");
  if (a.ulValueLen == CK_UNAVAILABLE_INFORMATION || a.ulValueLen > size) {
    return InternalError(what + ": the length query said " + std::to_string(size) +
                         " bytes, reading the value said " +
                         (a.ulValueLen == CK_UNAVAILABLE_INFORMATION
                              ? std::string("CK_UNAVAILABLE_INFORMATION")
                              : std::to_string(a.ulValueLen)));
  }
  value.resize(a.ulValueLen);
  return value;
}

Result<CK_ULONG> GetUlong(CK_SESSION_HANDLE session, CK_OBJECT_HANDLE object,
                          CK_ATTRIBUTE_TYPE type) {
  SIGNUM_ASSIGN_OR_RETURN(Bytes value, GetAttribute(session, object, type));
  if (value.size() != sizeof(CK_ULONG)) {
    return InternalError(AttributeName(type) + " has " + std::to_string(value.size()) +
                         " bytes, not a CK_ULONG");
  }
  CK_ULONG out;
  std::memcpy(&out, value.data(), sizeof out);
  return out;
}

Result<bool> GetBool(CK_SESSION_HANDLE session, CK_OBJECT_HANDLE object, CK_ATTRIBUTE_TYPE type) {
  SIGNUM_ASSIGN_OR_RETURN(Bytes value, GetAttribute(session, object, type));
  if (value.size() != 1) {
    return InternalError(AttributeName(type) + " has " + std::to_string(value.size()) +
                         " bytes, not a CK_BBOOL");
  }
  return value[0] != CK_FALSE;
}

// --- Keys ----------------------------------------------------------------------------------------

std::string TokenKey::Name() const { return label.empty() ? "id " + Hex(id) : label; }

Result<PublicKey> PublicKeyFromObject(CK_SESSION_HANDLE session, CK_OBJECT_HANDLE object) {
  SIGNUM_ASSIGN_OR_RETURN(CK_ULONG key_type, GetUlong(session, object, CKA_KEY_TYPE));
  if (key_type == CKK_RSA) {
    SIGNUM_ASSIGN_OR_RETURN(Bytes modulus, GetAttribute(session, object, CKA_MODULUS));
    SIGNUM_ASSIGN_OR_RETURN(Bytes exponent, GetAttribute(session, object, CKA_PUBLIC_EXPONENT));
    return PublicKey::FromRsaComponents(modulus, exponent);
  }
  if (key_type == CKK_EC) {
    SIGNUM_ASSIGN_OR_RETURN(Bytes params, GetAttribute(session, object, CKA_EC_PARAMS));
    SIGNUM_ASSIGN_OR_RETURN(Bytes point_der, GetAttribute(session, object, CKA_EC_POINT));
    const auto curve = CurveFromParamsDer(params);
    if (!curve) return InvalidArgumentError("CKA_EC_PARAMS " + Hex(params) + " is no known curve");
    SIGNUM_ASSIGN_OR_RETURN(Bytes point, UnwrapEcPointOctetString(point_der));
    return PublicKey::FromEcPoint(*curve, point);
  }
  return UnimplementedError("key type " + std::to_string(key_type) + " is neither RSA nor EC");
}

Result<std::vector<TokenKey>> ListKeys(CK_SESSION_HANDLE session) {
  const Options& o = TheSuite().options;
  SIGNUM_ASSIGN_OR_RETURN(auto privates,
                          FindObjects(session, Template().AddUlong(CKA_CLASS, CKO_PRIVATE_KEY)));
  std::vector<TokenKey> keys;
  for (CK_OBJECT_HANDLE handle : privates) {
    TokenKey key;
    key.private_key = handle;
    SIGNUM_ASSIGN_OR_RETURN(key.id, GetAttribute(session, handle, CKA_ID));
    auto label = GetAttribute(session, handle, CKA_LABEL);
    if (label.ok()) key.label = ToString(*label);
    SIGNUM_ASSIGN_OR_RETURN(key.key_type, GetUlong(session, handle, CKA_KEY_TYPE));
    if (key.key_type != CKK_RSA && key.key_type != CKK_EC) continue;  // not ours to judge
    if (o.key_id && key.id != *o.key_id) continue;
    if (o.key_label && key.label != *o.key_label) continue;
    if (key.label.rfind("signum-conformance-", 0) == 0) continue;  // hsm profile's own keys
    SIGNUM_ASSIGN_OR_RETURN(
        auto certs, FindObjects(session, Template()
                                             .AddUlong(CKA_CLASS, CKO_CERTIFICATE)
                                             .Add(CKA_ID, key.id)));
    if (!certs.empty()) {
      key.certificate_handle = certs.front();
      SIGNUM_ASSIGN_OR_RETURN(Bytes der, GetAttribute(session, certs.front(), CKA_VALUE));
      SIGNUM_ASSIGN_OR_RETURN(auto cert, Certificate::FromDer(der));
      key.certificate = cert;
      SIGNUM_ASSIGN_OR_RETURN(auto pub, cert.GetPublicKey());
      key.verify_key = pub;
    }
    SIGNUM_ASSIGN_OR_RETURN(
        auto pubs, FindObjects(session, Template()
                                            .AddUlong(CKA_CLASS, CKO_PUBLIC_KEY)
                                            .Add(CKA_ID, key.id)));
    if (!pubs.empty()) key.public_key_handle = pubs.front();
    if (!key.verify_key && key.public_key_handle != CK_INVALID_HANDLE) {
      SIGNUM_ASSIGN_OR_RETURN(auto pub, PublicKeyFromObject(session, key.public_key_handle));
      key.verify_key = pub;
    }
    if (!key.verify_key) {
      auto pub = PublicKeyFromObject(session, handle);
      if (pub.ok()) key.verify_key = *pub;
    }
    keys.push_back(std::move(key));
  }
  // CKK_RSA (0) sorts before CKK_EC (3).
  std::sort(keys.begin(), keys.end(), [](const TokenKey& a, const TokenKey& b) {
    return std::tie(a.key_type, a.label, a.id) < std::tie(b.key_type, b.label, b.id);
  });
  return keys;
}

std::vector<const TokenKey*> OnePerKeyType(const std::vector<TokenKey>& keys) {
  std::vector<const TokenKey*> out;
  for (const TokenKey& key : keys) {
    const bool seen = std::any_of(out.begin(), out.end(), [&](const TokenKey* k) {
      return k->key_type == key.key_type;
    });
    if (!seen) out.push_back(&key);
  }
  return out;
}

std::optional<KeySpec> SpecOf(const TokenKey& key) {
  if (!key.verify_key) return std::nullopt;
  return key.verify_key->spec();
}

int KeyBits(const TokenKey& key) {
  auto spec = SpecOf(key);
  return spec ? spec->Bits() : 0;
}

// --- Signing -------------------------------------------------------------------------------------

namespace {
// No signature of a key the suite handles (RSA up to 16384 bits, EC up to P-521) is longer.
constexpr CK_ULONG kMaxSignatureLength = 2048;
// A length the module reported with CKR_OK that cannot be right: the suite must not size a buffer
// by it. The outcome then carries CKR_GENERAL_ERROR with the module's real answer in `step`.
bool ImplausibleLength(SignOutcome& out, const std::string& step, CK_ULONG length,
                       CK_ULONG limit) {
  if (length <= limit) return false;
  out.rv = CKR_GENERAL_ERROR;
  out.step = step + " returned CKR_OK with length " +
             (length == CK_UNAVAILABLE_INFORMATION ? std::string("CK_UNAVAILABLE_INFORMATION")
                                                   : std::to_string(length)) +
             " (limit " + std::to_string(limit) + "); reported as";
  return true;
}
}  // namespace

SignOutcome SignSinglePart(CK_SESSION_HANDLE session, CK_MECHANISM mechanism,
                           CK_OBJECT_HANDLE key, ByteView data) {
  CK_FUNCTION_LIST_PTR f = TheSuite().module.functions;
  SignOutcome out;
  out.rv = f->C_SignInit(session, &mechanism, key);
  if (out.rv != CKR_OK) {
    out.step = "C_SignInit";
    return out;
  }
  Bytes input(data.begin(), data.end());
  CK_ULONG length = 0;
  out.rv = f->C_Sign(session, input.empty() ? nullptr : input.data(),
                     static_cast<CK_ULONG>(input.size()), nullptr, &length);
  if (out.rv != CKR_OK) {
    out.step = "C_Sign (length query)";
    return out;
  }
  if (ImplausibleLength(out, "C_Sign (length query)", length, kMaxSignatureLength)) return out;
  out.signature.resize(length);
  const CK_ULONG buffer_size = length;
  out.rv = f->C_Sign(session, input.empty() ? nullptr : input.data(),
                     static_cast<CK_ULONG>(input.size()), out.signature.data(), &length);
  if (out.rv != CKR_OK) {
    out.step = "C_Sign";
    return out;
  }
  if (ImplausibleLength(out, "C_Sign", length, buffer_size)) return out;
  out.signature.resize(length);
  return out;
}

SignOutcome SignMultiPart(CK_SESSION_HANDLE session, CK_MECHANISM mechanism,
                          CK_OBJECT_HANDLE key, ByteView data,
                          const std::vector<size_t>& chunk_sizes) {
  CK_FUNCTION_LIST_PTR f = TheSuite().module.functions;
  SignOutcome out;
  out.rv = f->C_SignInit(session, &mechanism, key);
  if (out.rv != CKR_OK) {
    out.step = "C_SignInit";
    return out;
  }
  Bytes input(data.begin(), data.end());
  static CK_BYTE empty_input = 0;
  size_t offset = 0;
  size_t i = 0;
  do {
    const size_t size = std::min(chunk_sizes[i % chunk_sizes.size()], input.size() - offset);
    out.rv = f->C_SignUpdate(session, input.empty() ? &empty_input : input.data() + offset,
                             static_cast<CK_ULONG>(size));
    if (out.rv != CKR_OK) {
      out.step = "C_SignUpdate(" + std::to_string(size) + " bytes)";
      return out;
    }
    offset += size;
    ++i;
  } while ((offset < input.size() || i < chunk_sizes.size()) &&
           i <= input.size() + chunk_sizes.size());
  CK_ULONG length = 0;
  out.rv = f->C_SignFinal(session, nullptr, &length);
  if (out.rv != CKR_OK) {
    out.step = "C_SignFinal (length query)";
    return out;
  }
  if (ImplausibleLength(out, "C_SignFinal (length query)", length, kMaxSignatureLength)) {
    return out;
  }
  out.signature.resize(length);
  const CK_ULONG buffer_size = length;
  out.rv = f->C_SignFinal(session, out.signature.data(), &length);
  if (out.rv != CKR_OK) {
    out.step = "C_SignFinal";
    return out;
  }
  if (ImplausibleLength(out, "C_SignFinal", length, buffer_size)) return out;
  out.signature.resize(length);
  return out;
}

Status SignAndVerify(CK_SESSION_HANDLE session, const TokenKey& key, const SignRecipe& recipe,
                     ByteView message) {
  if (!key.verify_key) return FailedPreconditionError(key.Name() + ": no public key to verify with");
  const HashInfo& hash = GetHashInfo(recipe.hash);
  const Bytes digest = Digest(recipe.hash, message);
  Bytes input;
  if (recipe.hash_and_sign) {
    input.assign(message.begin(), message.end());
  } else if (recipe.scheme == SignatureScheme::kRsaPkcs1) {
    SIGNUM_ASSIGN_OR_RETURN(input, BuildDigestInfo(recipe.hash, digest));
  } else {
    input = digest;
  }
  CK_RSA_PKCS_PSS_PARAMS pss{hash.ckm_digest, hash.ckg_mgf, hash.digest_size};
  CK_MECHANISM mechanism{recipe.mechanism, nullptr, 0};
  if (recipe.scheme == SignatureScheme::kRsaPss) {
    mechanism.pParameter = &pss;
    mechanism.ulParameterLen = sizeof pss;
  }
  SignOutcome outcome = SignSinglePart(session, mechanism, key.private_key, input);
  if (outcome.rv != CKR_OK) {
    return CkStatus(outcome.rv, outcome.step + " " + MechanismName(recipe.mechanism) + " with " +
                                    key.Name());
  }
  return VerifyDigestSignature(*key.verify_key, recipe.scheme, recipe.hash, digest,
                               outcome.signature);
}

// --- Children ------------------------------------------------------------------------------------

std::string ChildOutcome::Describe() const {
  std::string out;
  if (timed_out) {
    out = "child timed out";
  } else if (signal) {
    out = "crashed (signal " + std::to_string(signal) + ", " + strsignal(signal) + ")";
  } else {
    out = "child exited with " + std::to_string(exit_code);
  }
  if (!message.empty()) out += ": " + message;
  return out;
}

ChildOutcome RunInChild(const std::function<int(std::string& message)>& body,
                        int timeout_seconds) {
  ChildOutcome outcome;
  int fds[2];
  if (pipe(fds) != 0) {
    outcome.message = "pipe failed";
    return outcome;
  }
  std::fflush(stdout);
  std::fflush(stderr);
  const pid_t pid = fork();
  if (pid < 0) {
    close(fds[0]);
    close(fds[1]);
    outcome.message = "fork failed";
    return outcome;
  }
  if (pid == 0) {
    close(fds[0]);
    std::string message;
    int code = 99;
    try {
      code = body(message);
    } catch (const std::exception& e) {
      message = std::string("exception: ") + e.what();
    }
    ssize_t ignored = write(fds[1], message.data(), message.size());
    (void)ignored;
    _exit(code);  // no atexit handlers: the parent owns the module's process-wide state
  }
  close(fds[1]);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_seconds);
  char buffer[4096];
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      outcome.timed_out = true;
      kill(pid, SIGKILL);
      break;
    }
    pollfd p{fds[0], POLLIN, 0};
    if (poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
    const ssize_t n = read(fds[0], buffer, sizeof buffer);
    if (n <= 0) break;
    outcome.message.append(buffer, static_cast<size_t>(n));
  }
  close(fds[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  if (WIFEXITED(status)) {
    outcome.exited = true;
    outcome.exit_code = WEXITSTATUS(status);
  } else if (WIFSIGNALED(status)) {
    outcome.signal = WTERMSIG(status);
  }
  return outcome;
}

// --- Base fixture --------------------------------------------------------------------------------

void Pkcs11Check::SetUp() {
  const auto* test = ::testing::UnitTest::GetInstance()->current_test_info();
  const std::string name = std::string(test->test_suite_name()) + "." + test->name();
  if (const Expectation* na = TheSuite().expectations.NotApplicable(name, profile())) {
    GTEST_SKIP() << "not applicable to this module: " << na->reason;
  }
  CK_C_INITIALIZE_ARGS args{};
  args.flags = CKF_OS_LOCKING_OK;
  ASSERT_RV(CKR_OK, Initialize(&args));
}

void Pkcs11Check::TearDown() {
  if (initialized_) {
    f()->C_CloseAllSessions(slot());
    EXPECT_RV(CKR_OK, Finalize());
  }
}

CK_RV Pkcs11Check::Initialize(CK_C_INITIALIZE_ARGS* args) {
  if (args != nullptr) ApplyInitArgs(*args);
  const CK_RV rv = f()->C_Initialize(args);
  if (rv == CKR_OK || rv == CKR_CRYPTOKI_ALREADY_INITIALIZED) initialized_ = true;
  return rv;
}

CK_RV Pkcs11Check::Finalize() {
  const CK_RV rv = f()->C_Finalize(nullptr);
  if (rv == CKR_OK || rv == CKR_CRYPTOKI_NOT_INITIALIZED) initialized_ = false;
  advertised_.reset();
  return rv;
}

bool Pkcs11Check::LoginRequired() {
  CK_TOKEN_INFO info{};
  if (f()->C_GetTokenInfo(slot(), &info) != CKR_OK) return false;
  return (info.flags & CKF_LOGIN_REQUIRED) != 0;
}

CK_SESSION_HANDLE Pkcs11Check::OpenSession(bool read_write, bool login) {
  CK_SESSION_HANDLE session = CK_INVALID_HANDLE;
  const CK_FLAGS flags = CKF_SERIAL_SESSION | (read_write ? CKF_RW_SESSION : 0);
  const CK_RV rv = f()->C_OpenSession(slot(), flags, nullptr, nullptr, &session);
  if (rv != CKR_OK) {
    ADD_FAILURE() << "C_OpenSession: " << CkRvName(rv);
    return CK_INVALID_HANDLE;
  }
  if (login && pin() && LoginRequired()) {
    const CK_RV login_rv =
        f()->C_Login(session, CKU_USER, PinBytes(*pin()),
                     static_cast<CK_ULONG>(pin()->size()));
    if (login_rv != CKR_OK && login_rv != CKR_USER_ALREADY_LOGGED_IN) {
      ADD_FAILURE() << "C_Login: " << CkRvName(login_rv);
    }
  }
  return session;
}

const std::set<CK_MECHANISM_TYPE>& Pkcs11Check::Advertised() {
  if (!advertised_) {
    advertised_.emplace();
    CK_ULONG count = 0;
    if (f()->C_GetMechanismList(slot(), nullptr, &count) == CKR_OK) {
      std::vector<CK_MECHANISM_TYPE> list(count + 1);
      // A count beyond the buffer would read past it: then nothing counts as advertised (and
      // Mechanisms.ListTwoCallProtocol reports the module).
      if (f()->C_GetMechanismList(slot(), list.data(), &count) == CKR_OK && count <= list.size()) {
        advertised_->insert(list.begin(), list.begin() + static_cast<std::ptrdiff_t>(count));
      }
    }
  }
  return *advertised_;
}

std::optional<SignRecipe> Pkcs11Check::DefaultRecipe(const TokenKey& key) {
  if (key.key_type == CKK_RSA) {
    if (IsAdvertised(CKM_SHA256_RSA_PKCS)) {
      return SignRecipe{CKM_SHA256_RSA_PKCS, true, HashAlgorithm::kSha256,
                        SignatureScheme::kRsaPkcs1};
    }
    if (IsAdvertised(CKM_RSA_PKCS)) {
      return SignRecipe{CKM_RSA_PKCS, false, HashAlgorithm::kSha256, SignatureScheme::kRsaPkcs1};
    }
  } else if (key.key_type == CKK_EC) {
    if (IsAdvertised(CKM_ECDSA)) {
      return SignRecipe{CKM_ECDSA, false, HashAlgorithm::kSha256, SignatureScheme::kEcdsa};
    }
    if (IsAdvertised(CKM_ECDSA_SHA256)) {
      return SignRecipe{CKM_ECDSA_SHA256, true, HashAlgorithm::kSha256, SignatureScheme::kEcdsa};
    }
  }
  return std::nullopt;
}

std::vector<TokenKey> Pkcs11Check::KeysOrFail(CK_SESSION_HANDLE session) {
  auto keys = ListKeys(session);
  if (!keys.ok()) {
    ADD_FAILURE() << "listing the token's keys: " << keys.status().ToString();
    return {};
  }
  return std::move(keys).value();
}

std::vector<Pkcs11Check::SigningKey> Pkcs11Check::SigningKeysPerType(
    const std::vector<TokenKey>& keys) {
  std::vector<TokenKey> signable;
  for (const TokenKey& key : keys) {
    auto recipe = key.verify_key ? DefaultRecipe(key) : std::nullopt;
    if (recipe) signable.push_back(key);
  }
  std::vector<SigningKey> out;
  for (const TokenKey* key : OnePerKeyType(signable)) out.push_back({*key, *DefaultRecipe(*key)});
  return out;
}

void Pkcs11Check::Refused(const std::string& what) {
  ++refused_;
  Note("refused by the token's policy (CKR_FUNCTION_REJECTED), not a defect: " + what);
}

}  // namespace signum::conformance

namespace signum::conformance {

void SigningCheck::SignCase(const TokenKey& key, CK_MECHANISM mechanism, ByteView input,
                            SignatureScheme scheme, HashAlgorithm hash, ByteView digest,
                            const std::string& what, Bytes* signature,
                            const std::vector<size_t>* chunks) {
  const std::string name = key.Name() + " " + MechanismName(mechanism.mechanism) + " " + what;
  SignOutcome outcome = chunks ? SignMultiPart(session_, mechanism, key.private_key, input, *chunks)
                               : SignSinglePart(session_, mechanism, key.private_key, input);
  // Raw CKM_RSA_PKCS_PSS carries its hash in the parameters, so a token without PSS over some
  // hash can only say so at C_SignInit, with CKR_MECHANISM_PARAM_INVALID: the caller can still
  // choose another (refusing at C_Sign, after it committed, stays a failure). SHA-256 is the one
  // hash every caller uses, so it must sign.
  if (outcome.rv == CKR_MECHANISM_PARAM_INVALID && outcome.step == "C_SignInit" &&
      mechanism.mechanism == CKM_RSA_PKCS_PSS && hash != HashAlgorithm::kSha256) {
    Note("not offered by the token (C_SignInit: CKR_MECHANISM_PARAM_INVALID): " + name);
    return;
  }
  if (outcome.rv == CKR_FUNCTION_REJECTED) {
    Refused(name);
    // A refusal must end the operation like any other error.
    CK_ULONG length = 0;
    const CK_RV after = f()->C_SignFinal(session_, nullptr, &length);
    EXPECT_EQ(CkRvName(after), CkRvName(CKR_OPERATION_NOT_INITIALIZED))
        << name << ": the refused operation is still active";
    return;
  }
  ++ran_;
  if (outcome.rv != CKR_OK) {
    ADD_FAILURE() << name << ": " << outcome.step << ": " << CkRvName(outcome.rv);
    return;
  }
  if (!key.verify_key) {
    ADD_FAILURE() << name << ": no public key to verify with";
    return;
  }
  const Status verified =
      VerifyDigestSignature(*key.verify_key, scheme, hash, digest, outcome.signature);
  EXPECT_OK(verified) << name;
  if (signature) *signature = std::move(outcome.signature);
}

void SigningCheck::FinishCases(const std::string& reason_if_none) {
  if (ran_ > 0 || HasFailure()) return;
  if (refused_ > 0) {
    GTEST_SKIP() << "every case was refused by the token's policy (CKR_FUNCTION_REJECTED)";
  }
  GTEST_SKIP() << reason_if_none;
}

}  // namespace signum::conformance

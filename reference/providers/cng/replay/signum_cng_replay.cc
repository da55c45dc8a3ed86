// signum-cng-replay: replays a trace of the Windows providers (kind "signum-cng-trace", format v1,
// docs/trace-format.md "Windows providers (KSP/CSP)") against signumksp.dll / signumcsp.dll and
// compares every call's result and output lengths with the recording (issue 14).
//
//   signum-cng-replay TRACE [--ksp DLL] [--csp DLL]
//
// The DLLs are loaded as ncrypt.dll and advapi32 load them (LoadLibrary, GetKeyStorageInterface /
// the CP* exports; default: the ones beside this program) and driven directly. Handles are the
// recording's: each recorded provider, key, context and hash handle is mapped to the one its
// replayed call got (providers and keys are opened again by name and container, hashes created
// and fed anew). Signatures are judged by verifying them with Windows' BCrypt against the public
// key of the certificate the replayed key reports (RSA-PSS and ECDSA are randomized); a PKCS#1
// v1.5 signature must also equal the recorded one byte for byte when the recorded one verifies
// with the same key (the trace was recorded against that key).
//
// Exit status: 0 every call matched, 1 a divergence (the first one is printed with the calls
// around it), 2 the trace or a DLL could not be used (unknown version or kind, malformed line).
// Buffers the KSP hands out (EnumKeys, EnumAlgorithms) are mapped by their recorded addresses and
// freed with FreeBuffer as recorded. Calls whose inputs the trace does not hold (recorded by their
// handles only, parameters whose value is not recorded) are counted as not replayed, with the
// reason, and change no exit status.
#include <windows.h>
// A block of its own: these need windows.h's types, so formatting must not reorder them.
#include <bcrypt.h>
#include <ncrypt.h>
#include <wincrypt.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "signum/cng/call_record.h"
#include "signum/cng/csp_iface.h"
#include "signum/cng/ksp_iface.h"
#include "signum/cng/names.h"
#include "signum/cng/nte_status.h"
#include "signum/core/algorithms.h"
#include "signum/core/encoding.h"
#include "signum/core/trace_file.h"

namespace signum::cng {
namespace {

using json = nlohmann::json;

// The trace or a DLL cannot be used: exit 2.
struct Unusable {
  std::string message;
};

struct Call : trace_file::Record {
  DWORD recorded_code() const { return code<DWORD>(); }
};

// ---- reading the trace ------------------------------------------------------------------------

// The envelope is core's (trace_file.h): version 1 only, the header of kind signum-cng-trace.
std::vector<Call> LoadTrace(const std::string& path) {
  Result<trace_file::TraceFile> trace =
      trace_file::Read(path, kCngTraceKind, {"fn", "args", "rv", "out"});
  if (!trace.ok()) throw Unusable{trace.status().message()};
  std::vector<Call> calls;
  for (trace_file::Record& record : trace->calls) {
    calls.push_back(Call{std::move(record)});
  }
  return calls;
}

Bytes HexArg(const json& value) {
  if (!value.is_string()) return {};
  Result<Bytes> bytes = HexDecode(value.get<std::string>());
  if (!bytes.ok()) throw Unusable{"bad hex in the trace: " + bytes.status().message()};
  return std::move(bytes).value();
}

std::wstring Wide(const std::string& utf8) {
  if (utf8.empty()) return {};
  const int n =
      MultiByteToWideChar(CP_UTF8, 0, utf8.data(), static_cast<int>(utf8.size()), nullptr, 0);
  std::wstring wide(n, L'\0');
  MultiByteToWideChar(CP_UTF8, 0, utf8.data(), static_cast<int>(utf8.size()), wide.data(), n);
  return wide;
}

// A recorded string argument: nullopt for null.
std::optional<std::wstring> WideArg(const json& value) {
  if (!value.is_string()) return std::nullopt;
  return Wide(value.get<std::string>());
}
const wchar_t* Pointer(const std::optional<std::wstring>& text) {
  return text ? text->c_str() : nullptr;
}

bool WantsBuffer(const json& value) { return value.is_object() && value.value("buffer", false); }

std::string CodeText(DWORD code, const std::string& name = "") {
  char hex[16];
  std::snprintf(hex, sizeof hex, "0x%08lx", static_cast<unsigned long>(code));
  return name.empty() ? std::string(hex) : name + " (" + hex + ")";
}

// "#15 SignHash(hProvider=1, ...) -> ERROR_SUCCESS", long values shortened.
std::string Describe(const Call& c) {
  std::ostringstream s;
  s << "#" << c.j.value("seq", 0) << " " << c.fn() << "(";
  bool first = true;
  for (const auto& [name, value] : c.args().items()) {
    s << (first ? "" : ", ") << name << "=";
    first = false;
    const std::string text = value.is_string() ? value.get<std::string>() : value.dump();
    s << (text.size() > 24 ? text.substr(0, 24) + "..." : text);
  }
  s << ") -> " << c.j.at("rv").value("name", CodeText(c.recorded_code()));
  return s.str();
}

// ---- Windows' own verdict on a signature ------------------------------------------------------

Result<Bytes> PlatformDigest(const wchar_t* algorithm, ByteView data) {
  BCRYPT_ALG_HANDLE provider = nullptr;
  BCRYPT_HASH_HANDLE hash = nullptr;
  DWORD size = 0, written = 0;
  Bytes digest;
  bool ok = BCryptOpenAlgorithmProvider(&provider, algorithm, nullptr, 0) == 0 &&
            BCryptGetProperty(provider, BCRYPT_HASH_LENGTH, reinterpret_cast<PUCHAR>(&size),
                              sizeof size, &written, 0) == 0 &&
            BCryptCreateHash(provider, &hash, nullptr, 0, nullptr, 0, 0) == 0 &&
            BCryptHashData(hash, const_cast<PUCHAR>(data.data()), static_cast<ULONG>(data.size()),
                           0) == 0;
  if (ok) {
    digest.resize(size);
    ok = BCryptFinishHash(hash, digest.data(), size, 0) == 0;
  }
  if (hash != nullptr) BCryptDestroyHash(hash);
  if (provider != nullptr) BCryptCloseAlgorithmProvider(provider, 0);
  if (!ok) return Status(ErrorCode::kInternal, "BCrypt cannot hash with this algorithm");
  return digest;
}

// BCryptVerifySignature with the public key of certificate (DER), imported by crypt32.
bool VerifiedByPlatform(ByteView certificate, void* padding_info, ULONG flags, ByteView digest,
                        ByteView signature) {
  PCCERT_CONTEXT context = CertCreateCertificateContext(X509_ASN_ENCODING, certificate.data(),
                                                        static_cast<DWORD>(certificate.size()));
  if (context == nullptr) return false;
  BCRYPT_KEY_HANDLE key = nullptr;
  const BOOL imported = CryptImportPublicKeyInfoEx2(
      X509_ASN_ENCODING, &context->pCertInfo->SubjectPublicKeyInfo, 0, nullptr, &key);
  CertFreeCertificateContext(context);
  if (!imported) return false;
  const NTSTATUS verified = BCryptVerifySignature(
      key, padding_info, const_cast<PUCHAR>(digest.data()), static_cast<ULONG>(digest.size()),
      const_cast<PUCHAR>(signature.data()), static_cast<ULONG>(signature.size()), flags);
  BCryptDestroyKey(key);
  return verified == 0;
}

// What a signature call asked for, in BCrypt's terms.
struct SignatureRequest {
  std::wstring algorithm;  // BCrypt hash id; empty for none (ECDSA)
  ULONG flags = 0;         // BCRYPT_PAD_*
  ULONG salt = 0;
  Bytes digest;
};

// verdict: "" when signature verifies with the certificate's key and, for PKCS#1 v1.5, equals
// the recorded signature whenever that one verifies with the same key.
std::string JudgeSignature(ByteView certificate, SignatureRequest request, ByteView signature,
                           const Bytes& recorded) {
  if (certificate.empty()) return "no certificate for the key to verify its signature with";
  BCRYPT_PKCS1_PADDING_INFO pkcs1{request.algorithm.c_str()};
  BCRYPT_PSS_PADDING_INFO pss{request.algorithm.c_str(), request.salt};
  void* padding = request.flags == BCRYPT_PAD_PKCS1 ? static_cast<void*>(&pkcs1)
                  : request.flags == BCRYPT_PAD_PSS ? static_cast<void*>(&pss)
                                                    : nullptr;
  if (!VerifiedByPlatform(certificate, padding, request.flags, request.digest, signature)) {
    return "the replayed signature does not verify with the key's certificate (BCrypt)";
  }
  if (request.flags == BCRYPT_PAD_PKCS1 && !recorded.empty() &&
      VerifiedByPlatform(certificate, padding, request.flags, request.digest, recorded) &&
      Bytes(signature.begin(), signature.end()) != recorded) {
    return "the PKCS#1 v1.5 signature differs from the recorded one made with the same key";
  }
  return "";
}

// ---- the replayer ------------------------------------------------------------------------------

std::wstring BesideThisProgram(const wchar_t* name) {
  wchar_t path[MAX_PATH] = {};
  GetModuleFileNameW(nullptr, path, MAX_PATH);
  std::wstring directory(path);
  const size_t slash = directory.find_last_of(L"\\/");
  directory.resize(slash == std::wstring::npos ? 0 : slash + 1);
  return directory + name;
}

std::string Narrow(const std::wstring& wide) {
  std::string text;
  for (wchar_t c : wide) text += c < 128 ? static_cast<char>(c) : '?';
  return text;
}

HMODULE Load(const std::wstring& path) {
  HMODULE module = LoadLibraryW(path.c_str());
  if (module == nullptr) {
    throw Unusable{"cannot load " + Narrow(path) + ": error " + std::to_string(GetLastError())};
  }
  return module;
}

class Replayer {
 public:
  Replayer(std::wstring ksp_path, std::wstring csp_path)
      : ksp_path_(std::move(ksp_path)), csp_path_(std::move(csp_path)) {}

  // What became of a call: "" matched, "skip: why" not replayed, otherwise the divergence.
  std::string ReplayOne(const Call& call) {
    current_ = &call;
    const std::string fn = call.fn();
    if (fn.rfind("CP", 0) == 0) return ReplayCsp(fn);
    return ReplayKsp(fn);
  }

  size_t signatures_verified() const { return signatures_verified_; }

 private:
  const json& Arg(const char* name) const { return current_->args().at(name); }
  DWORD Dword(const char* name) const { return Arg(name).get<DWORD>(); }

  // The replayed result against the recorded one.
  std::string CompareCode(DWORD replayed) const {
    const DWORD recorded = current_->recorded_code();
    if (replayed == recorded) return "";
    return "returned " + CodeText(replayed, CodeName(static_cast<SECURITY_STATUS>(replayed))) +
           ", recorded " + CodeText(recorded, current_->j.at("rv").value("name", ""));
  }
  // An output length against the recorded one (when the recording has it).
  std::string CompareLength(const char* name, DWORD replayed) const {
    const json& out = current_->out();
    if (!out.contains(name)) return "";
    const DWORD recorded = out.at(name).get<DWORD>();
    if (recorded == replayed) return "";
    return std::string(name) + " " + std::to_string(replayed) + ", recorded " +
           std::to_string(recorded);
  }
  std::string CompareCodeAndLength(DWORD replayed, const char* name, DWORD length) const {
    std::string verdict = CompareCode(replayed);
    if (verdict.empty() &&
        (replayed == ERROR_SUCCESS || replayed == static_cast<DWORD>(NTE_BUFFER_TOO_SMALL) ||
         replayed == ERROR_MORE_DATA)) {
      verdict = CompareLength(name, length);
    }
    return verdict;
  }

  // A recorded handle -> the live one (0, which every call refuses, for one never handed out).
  static ULONG_PTR Mapped(const std::map<ULONG_PTR, ULONG_PTR>& handles, const json& recorded) {
    const auto found = handles.find(recorded.get<ULONG_PTR>());
    return found == handles.end() ? 0 : found->second;
  }
  void MapOutput(std::map<ULONG_PTR, ULONG_PTR>& handles, const char* name, DWORD code,
                 ULONG_PTR live) {
    if (code == ERROR_SUCCESS && current_->out().contains(name)) {
      handles[current_->out().at(name).get<ULONG_PTR>()] = live;
    }
  }

  // ---- KSP ----

  NCRYPT_KEY_STORAGE_FUNCTION_TABLE* Ksp() {
    if (ksp_ == nullptr) {
      HMODULE module = Load(ksp_path_);
      auto entry = reinterpret_cast<GetKeyStorageInterfaceFn>(
          reinterpret_cast<void*>(GetProcAddress(module, SIGNUM_KSP_ENTRY_POINT_NAME)));
      if (entry == nullptr || entry(kKspName, &ksp_, 0) != 0 || ksp_ == nullptr) {
        throw Unusable{Narrow(ksp_path_) + ": no key storage function table"};
      }
    }
    return ksp_;
  }

  NCRYPT_PROV_HANDLE Provider() const { return Mapped(ksp_providers_, Arg("hProvider")); }
  // A recorded buffer address -> the buffer the replayed call handed out (NULL for 0).
  PVOID LiveBuffer(const json& recorded) const {
    const auto found = buffers_.find(recorded.get<uintptr_t>());
    return found == buffers_.end() ? nullptr : found->second;
  }
  NCRYPT_KEY_HANDLE Key() const { return Mapped(ksp_keys_, Arg("hKey")); }

  // The certificate of a live key, asked for on the side (not part of the trace).
  Bytes KspCertificate(NCRYPT_PROV_HANDLE provider, NCRYPT_KEY_HANDLE key) {
    DWORD size = 0;
    if (Ksp()->GetKeyProperty(provider, key, NCRYPT_CERTIFICATE_PROPERTY, nullptr, 0, &size, 0) !=
        0) {
      return {};
    }
    Bytes der(size);
    if (Ksp()->GetKeyProperty(provider, key, NCRYPT_CERTIFICATE_PROPERTY, der.data(), size, &size,
                              0) != 0) {
      return {};
    }
    der.resize(size);
    return der;
  }

  // The padding structure a KSP signature call carried, rebuilt for the replay.
  struct Padding {
    std::optional<std::wstring> algorithm;
    BCRYPT_PKCS1_PADDING_INFO pkcs1{};
    BCRYPT_PSS_PADDING_INFO pss{};
    void* info = nullptr;
  };
  void RebuildPadding(const json& recorded, Padding& padding) {
    if (!recorded.is_object()) return;
    const std::string type = recorded.value("type", "");
    padding.algorithm = WideArg(recorded.value("pszAlgId", json()));
    if (type == "pkcs1") {
      padding.pkcs1.pszAlgId = Pointer(padding.algorithm);
      padding.info = &padding.pkcs1;
    } else if (type == "pss") {
      padding.pss.pszAlgId = Pointer(padding.algorithm);
      padding.pss.cbSalt = recorded.value("cbSalt", 0UL);
      padding.info = &padding.pss;
    } else {
      throw Unusable{"padding " + type + " is not replayed"};
    }
  }

  // What BCrypt needs to verify a KSP signature over hash_value.
  static std::optional<SignatureRequest> KspRequest(const json& padding, const Bytes& hash_value) {
    SignatureRequest request;
    request.digest = hash_value;
    if (!padding.is_object()) return request;  // no padding: ECDSA
    const std::string type = padding.value("type", "");
    const json algorithm = padding.value("pszAlgId", json());
    if (type == "pss") {
      request.flags = BCRYPT_PAD_PSS;
      request.salt = padding.value("cbSalt", 0UL);
    } else if (type == "pkcs1") {
      request.flags = BCRYPT_PAD_PKCS1;
    } else {
      return std::nullopt;
    }
    if (algorithm.is_string()) {
      request.algorithm = Wide(algorithm.get<std::string>());
    } else {
      // PKCS#1 over a DigestInfo the caller built (signtool /ds): BCrypt takes the named hash.
      auto parsed = ParseDigestInfo(hash_value);
      if (!parsed.ok()) return std::nullopt;
      const std::string_view id = GetHashInfo(parsed->hash).cng_algorithm_id;
      request.algorithm = Wide(std::string(id));
      request.digest = parsed->digest;
    }
    return request;
  }

  // GetProviderProperty, GetKeyProperty, ExportKey: the size-query convention.
  template <typename Get>
  std::string SizedKspCall(Get&& get) {
    const DWORD capacity = Dword("cbOutput");
    Bytes buffer(WantsBuffer(Arg("pbOutput")) ? std::max<DWORD>(capacity, 1) : 0);
    DWORD result = 0;
    const DWORD code = get(buffer.empty() ? nullptr : buffer.data(), capacity, &result);
    return CompareCodeAndLength(code, "pcbResult", result);
  }

  std::string ReplayKsp(const std::string& fn) {
    NCRYPT_KEY_STORAGE_FUNCTION_TABLE* t = Ksp();
    if (fn == "GetKeyStorageInterface") return CompareCode(ERROR_SUCCESS);  // loading called it
    if (fn == "OpenProvider") {
      NCRYPT_PROV_HANDLE handle = 0;
      const auto name = WideArg(Arg("pszProviderName"));
      const DWORD code = t->OpenProvider(&handle, Pointer(name), Dword("dwFlags"));
      MapOutput(ksp_providers_, "phProvider", code, handle);
      return CompareCode(code);
    }
    if (fn == "FreeProvider") return CompareCode(t->FreeProvider(Provider()));
    if (fn == "OpenKey") {
      NCRYPT_KEY_HANDLE handle = 0;
      const auto name = WideArg(Arg("pszKeyName"));
      const DWORD code = t->OpenKey(Provider(), &handle, Pointer(name), Dword("dwLegacyKeySpec"),
                                    Dword("dwFlags"));
      MapOutput(ksp_keys_, "phKey", code, handle);
      return CompareCode(code);
    }
    if (fn == "FreeKey") return CompareCode(t->FreeKey(Provider(), Key()));
    if (fn == "GetProviderProperty") {
      const auto property = WideArg(Arg("pszProperty"));
      return SizedKspCall([&](PBYTE out, DWORD capacity, DWORD* result) {
        return t->GetProviderProperty(Provider(), Pointer(property), out, capacity, result,
                                      Dword("dwFlags"));
      });
    }
    if (fn == "GetKeyProperty") {
      const auto property = WideArg(Arg("pszProperty"));
      return SizedKspCall([&](PBYTE out, DWORD capacity, DWORD* result) {
        return t->GetKeyProperty(Provider(), Key(), Pointer(property), out, capacity, result,
                                 Dword("dwFlags"));
      });
    }
    if (fn == "ExportKey") {
      const auto blob_type = WideArg(Arg("pszBlobType"));
      const NCRYPT_KEY_HANDLE export_key = Mapped(ksp_keys_, Arg("hExportKey"));
      return SizedKspCall([&](PBYTE out, DWORD capacity, DWORD* result) {
        return t->ExportKey(Provider(), Key(), export_key, Pointer(blob_type), nullptr, out,
                            capacity, result, Dword("dwFlags"));
      });
    }
    if (fn == "SetProviderProperty" || fn == "SetKeyProperty") {
      const auto property = WideArg(Arg("pszProperty"));
      // A secret (a PIN) is not in the trace: zeros of its length stand in for it.
      Bytes input =
          Arg("pbInput").is_object() ? Bytes(Dword("cbInput"), 0) : HexArg(Arg("pbInput"));
      const PBYTE data = Arg("pbInput").is_null() ? nullptr : input.data();
      const DWORD code = fn == "SetProviderProperty"
                             ? t->SetProviderProperty(Provider(), Pointer(property), data,
                                                      Dword("cbInput"), Dword("dwFlags"))
                             : t->SetKeyProperty(Provider(), Key(), Pointer(property), data,
                                                 Dword("cbInput"), Dword("dwFlags"));
      return CompareCode(code);
    }
    if (fn == "IsAlgSupported") {
      const auto algorithm = WideArg(Arg("pszAlgId"));
      return CompareCode(t->IsAlgSupported(Provider(), Pointer(algorithm), Dword("dwFlags")));
    }
    if (fn == "EnumKeys") {
      // The recorded state and key name addresses map to the replay's buffers, like handles.
      const json& recorded_state = Arg("ppEnumState");
      PVOID state = recorded_state.is_null() ? nullptr : LiveBuffer(recorded_state);
      const auto scope = WideArg(Arg("pszScope"));
      NCryptKeyName* name = nullptr;
      const DWORD code = t->EnumKeys(Provider(), Pointer(scope), &name,
                                     recorded_state.is_null() ? nullptr : &state, Dword("dwFlags"));
      const json& out = current_->out();
      if (out.contains("ppEnumState")) buffers_[out.at("ppEnumState").get<uintptr_t>()] = state;
      if (code == ERROR_SUCCESS && out.contains("ppKeyName")) {
        buffers_[out.at("ppKeyName").at("address").get<uintptr_t>()] = name;
      }
      return CompareCode(code);
    }
    if (fn == "EnumAlgorithms") {
      DWORD count = 0;
      NCryptAlgorithmName* list = nullptr;
      const DWORD code =
          t->EnumAlgorithms(Provider(), Dword("dwAlgClass"), &count, &list, Dword("dwFlags"));
      if (code == ERROR_SUCCESS && current_->out().contains("ppAlgList")) {
        buffers_[current_->out().at("ppAlgList").get<uintptr_t>()] = list;
      }
      std::string verdict = CompareCode(code);
      return verdict.empty() && code == ERROR_SUCCESS ? CompareLength("pdwAlgCount", count)
                                                      : verdict;
    }
    if (fn == "FreeBuffer") {
      const json& address = Arg("pvInput");
      if (address.get<uintptr_t>() != 0 && buffers_.count(address.get<uintptr_t>()) == 0) {
        return "skip: FreeBuffer of a buffer no replayed call handed out";
      }
      const DWORD code = t->FreeBuffer(LiveBuffer(address));
      buffers_.erase(address.get<uintptr_t>());
      return CompareCode(code);
    }
    if (fn == "SignHash" || fn == "VerifySignature") return ReplayKspSignature(fn);
    return "skip: " + fn + " is recorded by its handles only";
  }

  std::string ReplayKspSignature(const std::string& fn) {
    NCRYPT_KEY_STORAGE_FUNCTION_TABLE* t = Ksp();
    Padding padding;
    RebuildPadding(Arg("pPaddingInfo"), padding);
    Bytes hash_value = HexArg(Arg("pbHashValue"));
    const PBYTE hash = Arg("pbHashValue").is_null() ? nullptr : hash_value.data();
    const NCRYPT_PROV_HANDLE provider = Provider();
    const NCRYPT_KEY_HANDLE key = Key();
    if (fn == "VerifySignature") {
      Bytes signature = HexArg(Arg("pbSignature"));
      return CompareCode(
          t->VerifySignature(provider, key, padding.info, hash, Dword("cbHashValue"),
                             Arg("pbSignature").is_null() ? nullptr : signature.data(),
                             Dword("cbSignature"), Dword("dwFlags")));
    }
    const DWORD capacity = Dword("cbSignature");
    const bool wants_signature = WantsBuffer(Arg("pbSignature"));
    Bytes signature(wants_signature ? std::max<DWORD>(capacity, 1) : 0);
    DWORD result = 0;
    const DWORD code = t->SignHash(provider, key, padding.info, hash, Dword("cbHashValue"),
                                   wants_signature ? signature.data() : nullptr, capacity, &result,
                                   Dword("dwFlags"));
    std::string verdict = CompareCodeAndLength(code, "pcbResult", result);
    if (!verdict.empty() || code != ERROR_SUCCESS || !wants_signature) return verdict;
    signature.resize(result);
    const auto request = KspRequest(Arg("pPaddingInfo"), hash_value);
    if (!request) return "skip: a signature with this padding cannot be verified here";
    verdict = JudgeSignature(KspCertificate(provider, key), *request, signature,
                             HexArg(current_->out().value("pbSignature", json())));
    if (verdict.empty()) ++signatures_verified_;
    return verdict;
  }

  // ---- CSP ----

  const CspEntryPoints& Csp() {
    if (!csp_) {
      std::string missing;
      CspEntryPoints f = ResolveCspEntryPoints(Load(csp_path_), &missing);
      if (!missing.empty()) throw Unusable{Narrow(csp_path_) + " does not export " + missing};
      csp_ = f;
    }
    return *csp_;
  }

  // BOOL + GetLastError() as one code, as the trace records it.
  static DWORD CspCode(BOOL returned) { return returned ? ERROR_SUCCESS : GetLastError(); }

  HCRYPTPROV Context() const { return Mapped(csp_contexts_, Arg("hProv")); }
  HCRYPTKEY CspKey(const char* name = "hKey") const { return Mapped(csp_keys_, Arg(name)); }
  HCRYPTHASH CspHash() const { return Mapped(csp_hashes_, Arg("hHash")); }

  // The recorded data of a hash (recorded handle): what CPSignHash's signature is over.
  struct HashInput {
    ALG_ID algorithm = 0;
    std::optional<Bytes> value;  // HP_HASHVAL
    Bytes data;                  // CPHashData, concatenated
  };

  Bytes CspCertificate(HCRYPTPROV context) {
    const CspEntryPoints& f = Csp();
    HCRYPTKEY key = 0;
    if (!f.get_user_key(context, AT_SIGNATURE, &key)) return {};
    DWORD size = 0;
    Bytes der;
    if (f.get_key_param(context, key, KP_CERTIFICATE, nullptr, &size, 0)) {
      der.resize(size);
      if (!f.get_key_param(context, key, KP_CERTIFICATE, der.data(), &size, 0)) der.clear();
      der.resize(std::min<size_t>(der.size(), size));
    }
    f.destroy_key(context, key);
    return der;
  }

  // CPGetProvParam, CPGetKeyParam, CPGetHashParam, CPExportKey: CryptoAPI's size convention, the
  // caller's *pcbDataLen as recorded.
  template <typename Get>
  std::string SizedCspCall(const char* buffer_name, const char* length_name, Get&& get) {
    const json& length_in = Arg(length_name);
    DWORD length = length_in.is_null() ? 0 : length_in.get<DWORD>();
    Bytes buffer(WantsBuffer(Arg(buffer_name)) ? std::max<DWORD>(length, 1) : 0);
    const DWORD code = CspCode(
        get(buffer.empty() ? nullptr : buffer.data(), length_in.is_null() ? nullptr : &length));
    return CompareCodeAndLength(code, length_name, length);
  }

  std::string ReplayCsp(const std::string& fn) {
    const CspEntryPoints& f = Csp();
    if (fn == "CPAcquireContext") {
      const json& container = Arg("szContainer");
      const std::string name = container.is_string() ? container.get<std::string>() : "";
      // A recorded PIN prefix is not in the trace; the CSP ignores it anyway (csp_objects.h).
      const json& table = Arg("pVTable");
      std::string provider_name = table.is_object() ? table.value("pszProvName", "") : "";
      VTableProvStruc vtable{};
      vtable.Version = table.is_object() ? table.value("Version", 3UL) : 0;
      vtable.dwProvType = table.is_object() ? table.value("dwProvType", 0UL) : 0;
      vtable.pszProvName = provider_name.empty() ? nullptr : provider_name.data();
      HCRYPTPROV handle = 0;
      const DWORD code =
          CspCode(f.acquire(&handle, container.is_string() ? name.c_str() : nullptr,
                            Dword("dwFlags"), table.is_object() ? &vtable : nullptr));
      MapOutput(csp_contexts_, "phProv", code, handle);
      return CompareCode(code);
    }
    if (fn == "CPReleaseContext")
      return CompareCode(CspCode(f.release(Context(), Dword("dwFlags"))));
    if (fn == "CPGetProvParam") {
      return SizedCspCall("pbData", "pcbDataLen", [&](BYTE* out, DWORD* length) {
        return f.get_prov_param(Context(), Dword("dwParam"), out, length, Dword("dwFlags"));
      });
    }
    if (fn == "CPSetProvParam") {
      // PINs are not in the trace (an empty one stands in); PP_CLIENT_HWND: no window here.
      const json& data = Arg("pbData");
      const bool redacted = data.value("redacted", false);
      static const char kNoPin[] = "";
      HWND no_window = nullptr;
      const BYTE* input = data.value("null", false) ? nullptr
                          : redacted                ? reinterpret_cast<const BYTE*>(kNoPin)
                                                    : reinterpret_cast<const BYTE*>(&no_window);
      return CompareCode(
          CspCode(f.set_prov_param(Context(), Dword("dwParam"), input, Dword("dwFlags"))));
    }
    if (fn == "CPGetUserKey") {
      HCRYPTKEY key = 0;
      const DWORD code = CspCode(f.get_user_key(Context(), Dword("dwKeySpec"), &key));
      MapOutput(csp_keys_, "phUserKey", code, key);
      return CompareCode(code);
    }
    if (fn == "CPGetKeyParam") {
      return SizedCspCall("pbData", "pcbDataLen", [&](BYTE* out, DWORD* length) {
        return f.get_key_param(Context(), CspKey(), Dword("dwParam"), out, length,
                               Dword("dwFlags"));
      });
    }
    if (fn == "CPExportKey") {
      return SizedCspCall("pbData", "pcbDataLen", [&](BYTE* out, DWORD* length) {
        return f.export_key(Context(), CspKey(), CspKey("hPubKey"), Dword("dwBlobType"),
                            Dword("dwFlags"), out, length);
      });
    }
    if (fn == "CPDestroyKey") return CompareCode(CspCode(f.destroy_key(Context(), CspKey())));
    if (fn == "CPDuplicateKey") {
      HCRYPTKEY key = 0;
      const DWORD code =
          CspCode(f.duplicate_key(Context(), CspKey(), nullptr, Dword("dwFlags"), &key));
      MapOutput(csp_keys_, "phKey", code, key);
      return CompareCode(code);
    }
    if (fn == "CPCreateHash") {
      HCRYPTHASH hash = 0;
      const DWORD code =
          CspCode(f.create_hash(Context(), Dword("Algid"), CspKey(), Dword("dwFlags"), &hash));
      MapOutput(csp_hashes_, "phHash", code, hash);
      if (code == ERROR_SUCCESS) hash_inputs_[hash] = HashInput{Dword("Algid"), {}, {}};
      return CompareCode(code);
    }
    if (fn == "CPDuplicateHash") {
      HCRYPTHASH copy = 0;
      const HCRYPTHASH hash = CspHash();
      const DWORD code =
          CspCode(f.duplicate_hash(Context(), hash, nullptr, Dword("dwFlags"), &copy));
      MapOutput(csp_hashes_, "phHash", code, copy);
      if (code == ERROR_SUCCESS) hash_inputs_[copy] = hash_inputs_[hash];
      return CompareCode(code);
    }
    if (fn == "CPHashData") {
      Bytes data = HexArg(Arg("pbData"));
      const HCRYPTHASH hash = CspHash();
      const DWORD code =
          CspCode(f.hash_data(Context(), hash, Arg("pbData").is_null() ? nullptr : data.data(),
                              Dword("cbDataLen"), Dword("dwFlags")));
      if (code == ERROR_SUCCESS) {
        Bytes& all = hash_inputs_[hash].data;
        all.insert(all.end(), data.begin(), data.end());
      }
      return CompareCode(code);
    }
    if (fn == "CPSetHashParam") {
      const json& data = Arg("pbData");
      if (!data.is_string() && !data.value("null", false)) {
        return "skip: CPSetHashParam of a parameter whose value is not recorded";
      }
      Bytes value = HexArg(data);
      const HCRYPTHASH hash = CspHash();
      const DWORD code =
          CspCode(f.set_hash_param(Context(), hash, Dword("dwParam"),
                                   data.is_string() ? value.data() : nullptr, Dword("dwFlags")));
      if (code == ERROR_SUCCESS && Dword("dwParam") == HP_HASHVAL) hash_inputs_[hash].value = value;
      return CompareCode(code);
    }
    if (fn == "CPGetHashParam") {
      return SizedCspCall("pbData", "pcbDataLen", [&](BYTE* out, DWORD* length) {
        return f.get_hash_param(Context(), CspHash(), Dword("dwParam"), out, length,
                                Dword("dwFlags"));
      });
    }
    if (fn == "CPSignHash") return ReplayCspSignHash();
    if (fn == "CPVerifySignature") {
      Bytes signature = HexArg(Arg("pbSignature"));
      const auto description = WideArg(Arg("szDescription"));
      return CompareCode(CspCode(f.verify_signature(
          Context(), CspHash(), Arg("pbSignature").is_null() ? nullptr : signature.data(),
          Dword("cbSigLen"), CspKey("hPubKey"), Pointer(description), Dword("dwFlags"))));
    }
    if (fn == "CPDestroyHash") {
      const HCRYPTHASH hash = CspHash();
      const DWORD code = CspCode(f.destroy_hash(Context(), hash));
      if (code == ERROR_SUCCESS) hash_inputs_.erase(hash);
      return CompareCode(code);
    }
    if (fn == "CPGenRandom") {
      Bytes buffer(std::max<DWORD>(Dword("cbLen"), 1));
      return CompareCode(CspCode(f.gen_random(Context(), Dword("cbLen"), buffer.data())));
    }
    return "skip: " + fn + " is recorded by its handles only";
  }

  std::string ReplayCspSignHash() {
    const CspEntryPoints& f = Csp();
    const HCRYPTPROV context = Context();
    const HCRYPTHASH hash = CspHash();
    const json& length_in = Arg("pcbSigLen");
    DWORD length = length_in.is_null() ? 0 : length_in.get<DWORD>();
    const bool wants_signature = WantsBuffer(Arg("pbSignature"));
    Bytes signature(wants_signature ? std::max<DWORD>(length, 1) : 0);
    const auto description = WideArg(Arg("szDescription"));
    const DWORD code = CspCode(f.sign_hash(
        context, hash, Dword("dwKeySpec"), Pointer(description), Dword("dwFlags"),
        wants_signature ? signature.data() : nullptr, length_in.is_null() ? nullptr : &length));
    std::string verdict = CompareCodeAndLength(code, "pcbSigLen", length);
    if (!verdict.empty() || code != ERROR_SUCCESS || !wants_signature) return verdict;
    signature.resize(length);

    // PKCS#1 v1.5 over the hash's value, little-endian as CryptoAPI hands it out.
    const HashInput& input = hash_inputs_[hash];
    const auto algorithm = HashForCapiAlgId(input.algorithm);
    if (!algorithm) return "skip: a signature over ALG_ID " + CodeText(input.algorithm);
    SignatureRequest request;
    request.algorithm = Wide(std::string(GetHashInfo(*algorithm).cng_algorithm_id));
    request.flags = BCRYPT_PAD_PKCS1;
    if (input.value) {
      request.digest = *input.value;
    } else {
      auto digest = PlatformDigest(request.algorithm.c_str(), input.data);
      if (!digest.ok()) return "cannot hash the recorded data: " + digest.status().message();
      request.digest = *digest;
    }
    const Bytes big_endian(signature.rbegin(), signature.rend());
    Bytes recorded = HexArg(current_->out().value("pbSignature", json()));
    std::reverse(recorded.begin(), recorded.end());
    verdict = JudgeSignature(CspCertificate(context), request, big_endian, recorded);
    if (verdict.empty()) ++signatures_verified_;
    return verdict;
  }

  std::wstring ksp_path_, csp_path_;
  const Call* current_ = nullptr;
  NCRYPT_KEY_STORAGE_FUNCTION_TABLE* ksp_ = nullptr;
  std::optional<CspEntryPoints> csp_;
  std::map<ULONG_PTR, ULONG_PTR> ksp_providers_, ksp_keys_;
  std::map<uintptr_t, PVOID> buffers_;  // EnumKeys' states and names, EnumAlgorithms' lists
  std::map<ULONG_PTR, ULONG_PTR> csp_contexts_, csp_keys_, csp_hashes_;
  std::map<HCRYPTHASH, HashInput> hash_inputs_;  // by live handle
  size_t signatures_verified_ = 0;
};

// The calls around index (two before, two after), as recorded.
void PrintContext(const std::vector<Call>& calls, size_t index) {
  const size_t from = index >= 2 ? index - 2 : 0;
  const size_t to = std::min(calls.size(), index + 3);
  for (size_t i = from; i < to; ++i) {
    std::cout << (i == index ? "  > " : "    ") << Describe(calls[i]) << "\n";
  }
}

[[noreturn]] void Usage(const std::string& why) {
  std::cerr << "signum-cng-replay: " << why << "\n"
            << "usage: signum-cng-replay TRACE [--ksp DLL] [--csp DLL]\n"
            << "  TRACE: a signum-cng-trace (SIGNUM_CNG_RECORD, docs/trace-format.md)\n"
            << "  --ksp/--csp: the providers to replay against (default: beside this program)\n";
  std::exit(trace_file::kReplayUnusable);
}

int Run(int argc, char** argv) {
  std::string trace;
  std::wstring ksp = BesideThisProgram(kKspDllName), csp = BesideThisProgram(kCspDllName);
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if ((a == "--ksp" || a == "--csp") && i + 1 < argc) {
      (a == "--ksp" ? ksp : csp) = Wide(argv[++i]);
    } else if (!a.empty() && a[0] == '-') {
      Usage("unknown option " + a);
    } else if (trace.empty()) {
      trace = a;
    } else {
      Usage("one trace only");
    }
  }
  if (trace.empty()) Usage("no trace given");
  // The replayed providers must not record this replay (into the very trace it reads, maybe).
  SetEnvironmentVariableA("SIGNUM_CNG_RECORD", nullptr);

  std::vector<Call> calls;
  try {
    calls = LoadTrace(trace);
  } catch (const Unusable& unusable) {
    std::cout << "signum-cng-replay: " << unusable.message << "\n";
    return trace_file::kReplayUnusable;
  }
  Replayer replayer(ksp, csp);
  size_t matched = 0, skipped = 0, diverged = 0;
  std::optional<size_t> first;
  std::vector<std::string> verdicts;
  for (size_t i = 0; i < calls.size(); ++i) {
    std::string verdict;
    try {
      verdict = replayer.ReplayOne(calls[i]);
    } catch (const Unusable& unusable) {
      std::cout << "signum-cng-replay: cannot replay " << Describe(calls[i]) << " (trace line "
                << calls[i].line << "): " << unusable.message << "\nsummary: " << i
                << " calls replayed, " << matched << " matched, " << diverged << " diverged\n";
      return trace_file::kReplayUnusable;
    } catch (const std::exception& error) {
      std::cout << "signum-cng-replay: malformed call " << Describe(calls[i]) << " (trace line "
                << calls[i].line << "): " << error.what() << "\n";
      return trace_file::kReplayUnusable;
    }
    if (verdict.empty()) {
      ++matched;
    } else if (verdict.rfind("skip: ", 0) == 0) {
      ++skipped;
      std::cout << "not replayed: #" << calls[i].j.value("seq", 0) << " " << verdict.substr(6)
                << "\n";
    } else {
      ++diverged;
      if (!first) first = i;
    }
    verdicts.push_back(std::move(verdict));
  }
  if (first) {
    const Call& c = calls[*first];
    std::cout << "first divergence: #" << c.j.value("seq", 0) << " " << c.fn() << " (trace line "
              << c.line << "): " << verdicts[*first] << "\n";
    PrintContext(calls, *first);
  }
  std::cout << "summary: " << calls.size() << " calls, " << matched << " matched, " << diverged
            << " diverged, " << skipped << " not replayed; " << replayer.signatures_verified()
            << " signatures verified by BCrypt\n";
  return first ? trace_file::kReplayDiverged : trace_file::kReplayMatched;
}

}  // namespace
}  // namespace signum::cng

int main(int argc, char** argv) { return signum::cng::Run(argc, argv); }

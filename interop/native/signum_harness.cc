// signum_harness: the interop runner's native half, as a Python module (pybind11).
//
//   Deployment   a running Signum deployment (reference/deployment), also a context manager
//   Token        a PKCS#11 token read through reference/core's module loader: the HSM directly,
//                or the Signum token through libsignumpkcs11.so
//   verify_*     independent signature and chain verification with reference/core (OpenSSL)
//   certificate_info
//
// Failures of the system under test come back as values ((ok, message) tuples); misuse and
// failures to reach anything raise signum_harness.Error carrying the Status text.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>
#include <stdlib.h>

#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "signum/core/algorithms.h"
#include "signum/core/crypto.h"
#include "signum/core/pkcs11_module.h"
#include "signum/core/x509.h"
#include "signum/deployment/deployment.h"

namespace py = pybind11;

namespace signum::harness {
namespace {

using deployment::Deployment;
using deployment::DeploymentOptions;
using deployment::DeploymentState;

// Raised as signum_harness.Error (a RuntimeError).
class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

void Check(const Status& status) {
  if (!status.ok()) throw Error(status.ToString());
}
template <typename T>
T Value(Result<T> result) {
  if (!result.ok()) throw Error(result.status().ToString());
  return std::move(result).value();
}
template <typename T>
T Value(Result<T> result, const std::string& context) {
  if (!result.ok()) throw Error(result.status().WithContext(context).ToString());
  return std::move(result).value();
}

Bytes ToBytes(const py::bytes& b) {
  std::string s = b;
  return Bytes(s.begin(), s.end());
}

// --- Deployment -----------------------------------------------------------------------------------

class PyDeployment {
 public:
  PyDeployment(std::optional<std::string> dir, std::string user, std::vector<std::string> keys,
               std::optional<std::string> vendor_module, std::optional<std::string> vendor_token,
               std::optional<std::string> vendor_pin_file,
               std::map<std::string, std::string> vendor_env, bool agent_tcp, bool detached,
               int start_timeout_seconds) {
    DeploymentOptions o;
    o.directory = dir.value_or("");
    o.user = std::move(user);
    o.keys = std::move(keys);
    o.agent_tcp = agent_tcp;
    o.detached = detached;
    o.start_timeout_ms = start_timeout_seconds * 1000;
    if (vendor_module || vendor_token || vendor_pin_file || !vendor_env.empty()) {
      o.vendor_hsm = deployment::VendorHsm{vendor_module.value_or(""), vendor_token.value_or(""),
                                           vendor_pin_file.value_or(""), std::move(vendor_env)};
    }
    deployment_ = Value(Deployment::Create(std::move(o)));
  }

  Deployment& d() const {
    if (!deployment_) throw Error("FAILED_PRECONDITION: the deployment was closed");
    return *deployment_;
  }

  void Up() {
    Status s;
    {
      py::gil_scoped_release release;
      s = d().Up();
    }
    Check(s);
  }
  void Down() {
    Status s;
    {
      py::gil_scoped_release release;
      s = d().Down();
    }
    Check(s);
  }
  // Stops the processes unless detached, removes an owned temporary directory.
  void Close() {
    py::gil_scoped_release release;
    deployment_.reset();
  }

  py::dict StatusDict() {
    DeploymentState s;
    {
      py::gil_scoped_release release;
      s = d().State();
    }
    py::dict out;
    out["healthy"] = s.healthy();
    out["server_pid"] = s.server_pid;
    out["agent_pid"] = s.agent_pid;
    out["server_url"] = s.server_url;
    out["agent_socket"] = s.agent_socket;
    out["agent_answered"] = s.agent_answered;
    out["agent_error"] = s.agent_error;
    out["agent_endpoint"] = s.agent_endpoint;
    out["agent_name"] = s.agent_name;
    out["server_reachable"] = s.server_reachable;
    out["user"] = s.user;
    out["certificates"] = s.certificates;
    out["message"] = s.message;
    return out;
  }

  std::map<std::string, std::string> Env() const { return Value(d().Env()); }
  std::map<std::string, std::string> HsmBaselineEnv() const { return Value(d().HsmBaselineEnv()); }

 private:
  std::unique_ptr<Deployment> deployment_;
};

// --- Token ------------------------------------------------------------------------------------------

// One loaded instance per module path: a second C_Initialize/C_Finalize pair on the same module
// would pull it from under the first Token.
std::shared_ptr<Pkcs11Module> LoadModule(const std::string& path) {
  static std::map<std::string, std::weak_ptr<Pkcs11Module>> loaded;
  if (auto existing = loaded[path].lock()) return existing;
  auto module = Value(Pkcs11Module::Load(path), "loading " + path);
  loaded[path] = module;
  return module;
}

std::string ClassName(CK_ULONG klass) {
  switch (klass) {
    case CKO_CERTIFICATE: return "certificate";
    case CKO_PRIVATE_KEY: return "private_key";
    case CKO_PUBLIC_KEY: return "public_key";
    case CKO_SECRET_KEY: return "secret_key";
    case CKO_DATA: return "data";
    default: return "CKO_" + std::to_string(klass);
  }
}

// key_type, bits and curve of a KeySpec into a dict.
void PutKeySpec(py::dict& out, const KeySpec& spec) {
  out["key_type"] = std::string(KeyTypeName(spec.type));
  out["bits"] = spec.Bits();
  out["curve"] = spec.type == KeyType::kEc ? py::object(py::str(std::string(GetCurveInfo(spec.curve).name)))
                                           : py::object(py::none());
  out["key_spec"] = spec.Name();
}

class PyToken {
 public:
  PyToken(const std::string& module, const std::string& token_label,
          std::optional<std::string> pin, const std::map<std::string, std::string>& env)
      : label_(token_label) {
    // Modules read their configuration (SOFTHSM2_CONF, SIGNUM_AGENT_SOCKET, ...) at
    // C_Initialize, i.e. when a module path is loaded first in this process.
    for (const auto& [name, value] : env) ::setenv(name.c_str(), value.c_str(), 1);
    module_ = LoadModule(module);
    const CK_SLOT_ID slot = Value(module_->FindSlotByTokenLabel(token_label),
                                  "token '" + token_label + "' in " + module);
    session_.emplace(Value(Pkcs11Session::Open(module_, slot, /*read_write=*/false)));
    if (pin) Check(session_->Login(CKU_USER, *pin).WithContext("login to '" + token_label + "'"));
  }

  Pkcs11Session& session() {
    if (!session_) throw Error("FAILED_PRECONDITION: the token was closed");
    return *session_;
  }

  void Close() {
    session_.reset();
    module_.reset();
  }

  py::list Objects() {
    Pkcs11Session& s = session();
    py::list out;
    for (CK_OBJECT_HANDLE object : Value(s.FindObjects({}))) out.append(Describe(s, object));
    return out;
  }

  // The certificate whose CKA_LABEL equals label_or_id, else whose CKA_ID (hex) does, as PEM.
  std::string CertificatePem(const std::string& label_or_id) {
    Pkcs11Session& s = session();
    CK_OBJECT_CLASS klass = CKO_CERTIFICATE;
    std::vector<CK_OBJECT_HANDLE> found = Value(s.FindObjects(
        {MakeAttribute(CKA_CLASS, &klass, sizeof klass),
         MakeAttribute(CKA_LABEL, label_or_id.data(), label_or_id.size())}));
    if (found.empty()) {
      auto id = HexDecode(label_or_id);
      if (id.ok() && !id->empty()) {
        found = Value(s.FindObjects({MakeAttribute(CKA_CLASS, &klass, sizeof klass),
                                     MakeAttribute(CKA_ID, id->data(), id->size())}));
      }
    }
    if (found.empty()) {
      throw Error("NOT_FOUND: no certificate labelled or with id '" + label_or_id +
                  "' on token '" + label_ + "'");
    }
    Bytes der = Value(s.GetAttribute(found.front(), CKA_VALUE));
    return Value(Certificate::FromDer(der)).Pem();
  }

 private:
  py::dict Describe(Pkcs11Session& s, CK_OBJECT_HANDLE object) {
    py::dict d;
    const CK_ULONG klass = Value(s.GetUlongAttribute(object, CKA_CLASS));
    d["handle"] = object;
    d["class"] = ClassName(klass);
    auto label = s.GetAttribute(object, CKA_LABEL);
    d["label"] = label.ok() ? ToString(*label) : std::string();
    auto id = s.GetAttribute(object, CKA_ID);
    d["id"] = id.ok() ? HexEncode(*id) : std::string();
    d["key_type"] = py::none();
    d["bits"] = py::none();
    d["curve"] = py::none();
    if (klass == CKO_CERTIFICATE) {
      Bytes der = Value(s.GetAttribute(object, CKA_VALUE), "CKA_VALUE of a certificate");
      Certificate cert = Value(Certificate::FromDer(der));
      d["certificate_pem"] = cert.Pem();
      d["subject"] = cert.Subject();
      if (auto spec = cert.GetKeySpec(); spec.ok()) PutKeySpec(d, *spec);
    } else if (klass == CKO_PRIVATE_KEY || klass == CKO_PUBLIC_KEY) {
      auto key_type = s.GetUlongAttribute(object, CKA_KEY_TYPE);
      if (key_type.ok() && *key_type == CKK_RSA) {
        d["key_type"] = "rsa";
        if (auto bits = s.GetUlongAttribute(object, CKA_MODULUS_BITS); bits.ok()) {
          d["bits"] = *bits;
        } else if (auto modulus = s.GetAttribute(object, CKA_MODULUS); modulus.ok()) {
          size_t skip = 0;
          while (skip < modulus->size() && (*modulus)[skip] == 0) ++skip;
          d["bits"] = (modulus->size() - skip) * 8;
        }
      } else if (key_type.ok() && *key_type == CKK_EC) {
        d["key_type"] = "ec";
        if (auto params = s.GetAttribute(object, CKA_EC_PARAMS); params.ok()) {
          if (auto curve = CurveFromParamsDer(*params)) {
            d["curve"] = std::string(GetCurveInfo(*curve).name);
            d["bits"] = GetCurveInfo(*curve).bits;
          }
        }
      } else if (key_type.ok()) {
        d["key_type"] = "CKK_" + std::to_string(*key_type);
      }
    }
    return d;
  }

  std::string label_;
  std::shared_ptr<Pkcs11Module> module_;
  std::optional<Pkcs11Session> session_;
};

// --- Verification -------------------------------------------------------------------------------

py::tuple Outcome(const Status& s) {
  return py::make_tuple(s.ok(), s.ok() ? std::string("ok") : s.ToString());
}

// ECDSA signatures arrive raw (r||s, PKCS#11) or DER (X.509/CMS, `openssl dgst`); core verifies raw.
Result<Bytes> EcdsaRaw(const PublicKey& key, ByteView signature) {
  const size_t field = GetCurveInfo(key.spec().curve).field_size;
  if (signature.size() == 2 * field) return Bytes(signature.begin(), signature.end());
  return EcdsaDerToRaw(signature, field);
}

Status VerifyDigest(const std::string& cert_pem, const std::string& scheme_name,
                    const std::string& hash_name, ByteView digest, ByteView signature,
                    long pss_salt) {
  Certificate cert = Value(Certificate::FromPem(cert_pem), "certificate");
  PublicKey key = Value(cert.GetPublicKey(), "certificate's key");
  SignatureScheme scheme = Value(ParseSignatureScheme(scheme_name));
  HashAlgorithm hash = Value(ParseHashAlgorithm(hash_name));
  std::optional<size_t> salt;
  if (pss_salt >= 0) salt = static_cast<size_t>(pss_salt);
  if (scheme == SignatureScheme::kEcdsa && key.type() == KeyType::kEc) {
    SIGNUM_ASSIGN_OR_RETURN(Bytes raw, EcdsaRaw(key, signature));
    return VerifyDigestSignature(key, scheme, hash, digest, raw, salt);
  }
  return VerifyDigestSignature(key, scheme, hash, digest, signature, salt);
}

py::tuple VerifyDigestSignaturePy(const std::string& cert_pem, const std::string& scheme,
                                  const std::string& hash, const py::bytes& digest,
                                  const py::bytes& signature, long pss_salt) {
  return Outcome(VerifyDigest(cert_pem, scheme, hash, ToBytes(digest), ToBytes(signature), pss_salt));
}

py::tuple VerifyMessageSignaturePy(const std::string& cert_pem, const std::string& scheme,
                                   const std::string& hash, const py::bytes& message,
                                   const py::bytes& signature, long pss_salt) {
  const Bytes digest = Digest(Value(ParseHashAlgorithm(hash)), ToBytes(message));
  return Outcome(VerifyDigest(cert_pem, scheme, hash, digest, ToBytes(signature), pss_salt));
}

// Every certificate in a PEM string or a list of PEM strings.
std::vector<Certificate> CertificatesFrom(const py::object& pems, const std::string& what) {
  std::vector<std::string> texts;
  if (py::isinstance<py::str>(pems)) {
    texts.push_back(pems.cast<std::string>());
  } else if (!pems.is_none()) {
    texts = pems.cast<std::vector<std::string>>();
  }
  std::vector<Certificate> out;
  for (const std::string& text : texts) {
    for (Certificate& c : Value(Certificate::AllFromPem(text), what)) out.push_back(std::move(c));
  }
  return out;
}

py::tuple VerifyChainPy(const std::string& cert_pem, const py::object& chain_pems,
                        const py::object& root_pems, bool code_signing) {
  Certificate leaf = Value(Certificate::FromPem(cert_pem), "certificate");
  std::vector<Certificate> chain = CertificatesFrom(chain_pems, "chain");
  std::vector<Certificate> roots = CertificatesFrom(root_pems, "root");
  if (roots.empty()) throw Error("INVALID_ARGUMENT: no trusted root given");
  return Outcome(VerifyCertificateChain(leaf, chain, roots, code_signing));
}

long long UnixSeconds(std::chrono::system_clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::seconds>(t.time_since_epoch()).count();
}

py::dict CertificateInfoPy(const std::string& pem) {
  Certificate cert = Value(Certificate::FromPem(pem), "certificate");
  py::dict d;
  d["subject"] = cert.Subject();
  d["issuer"] = cert.Issuer();
  d["common_name"] = cert.SubjectCommonName();
  d["serial"] = cert.SerialHex();
  d["sha1"] = cert.Sha1ThumbprintHex();
  d["sha256"] = HexEncode(cert.Sha256Fingerprint());
  d["not_before"] = UnixSeconds(cert.NotBefore());
  d["not_after"] = UnixSeconds(cert.NotAfter());
  d["is_ca"] = cert.IsCa();
  d["code_signing"] = cert.HasCodeSigningUsage();
  PutKeySpec(d, Value(cert.GetKeySpec(), "certificate's key"));
  return d;
}

}  // namespace
}  // namespace signum::harness

PYBIND11_MODULE(signum_harness, m) {
  using namespace signum::harness;
  m.doc() = "Signum Harness native helpers: deployments, PKCS#11 tokens, independent verification";
  py::register_exception<Error>(m, "Error", PyExc_RuntimeError);

  py::class_<PyDeployment>(m, "Deployment")
      .def(py::init<std::optional<std::string>, std::string, std::vector<std::string>,
                    std::optional<std::string>, std::optional<std::string>,
                    std::optional<std::string>, std::map<std::string, std::string>, bool, bool,
                    int>(),
           py::arg("dir") = py::none(), py::arg("user") = "release",
           py::arg("keys") = std::vector<std::string>(), py::arg("vendor_module") = py::none(),
           py::arg("vendor_token") = py::none(), py::arg("vendor_pin_file") = py::none(),
           py::arg("vendor_env") = std::map<std::string, std::string>(),
           py::arg("agent_tcp") = true, py::arg("detached") = false,
           py::arg("start_timeout") = 30)
      .def("up", &PyDeployment::Up, "init-demo if needed, start server and agent, write env.sh")
      .def("down", &PyDeployment::Down, "stop agent and server (by their PID files)")
      .def("close", &PyDeployment::Close,
           "forget the deployment: stops it unless detached, removes an owned temporary dir")
      .def("status", &PyDeployment::StatusDict)
      .def("env", &PyDeployment::Env, "the variables of env.sh")
      .def("hsm_baseline_env", &PyDeployment::HsmBaselineEnv,
           "the variables of hsm-baseline.env.sh (direct-HSM baseline, holds the HSM PIN)")
      .def("path", [](const PyDeployment& p, const std::string& rel) { return p.d().File(rel); })
      .def_property_readonly("dir", [](const PyDeployment& p) { return p.d().dir(); })
      .def_property_readonly("root_ca", [](const PyDeployment& p) { return p.d().root_ca(); })
      .def_property_readonly("chain", [](const PyDeployment& p) { return p.d().chain(); })
      .def_property_readonly("env_file", [](const PyDeployment& p) { return p.d().env_file(); })
      .def_property_readonly("hsm_baseline_env_file",
                             [](const PyDeployment& p) { return p.d().hsm_baseline_env_file(); })
      .def_property_readonly("agent_socket",
                             [](const PyDeployment& p) { return p.d().agent_socket(); })
      .def_property_readonly("token_pin_file",
                             [](const PyDeployment& p) { return p.d().token_pin_file(); })
      .def_property_readonly("hsm_pin_file",
                             [](const PyDeployment& p) { return Value(p.d().hsm_pin_file()); })
      .def_property_readonly("pkcs11_module",
                             [](const PyDeployment& p) { return p.d().binaries().pkcs11_module; })
      .def_property_readonly("logs_dir", [](const PyDeployment& p) { return p.d().logs_dir(); })
      .def("__enter__",
           [](PyDeployment& p) -> PyDeployment& {
             p.Up();
             return p;
           },
           py::return_value_policy::reference)
      .def("__exit__", [](PyDeployment& p, const py::object&, const py::object&,
                          const py::object&) {
        p.Down();
        p.Close();
      });

  py::class_<PyToken>(m, "Token")
      .def(py::init<const std::string&, const std::string&, std::optional<std::string>,
                    const std::map<std::string, std::string>&>(),
           py::arg("module"), py::arg("token_label"), py::arg("pin") = py::none(),
           py::arg("env") = std::map<std::string, std::string>())
      .def("objects", &PyToken::Objects,
           "every visible object: {class, label, id (hex), key_type, bits, curve, handle, and "
           "for certificates certificate_pem, subject, key_spec}")
      .def("certificate", &PyToken::CertificatePem, py::arg("label_or_id"),
           "PEM of the certificate with this CKA_LABEL (or hex CKA_ID)")
      .def("close", &PyToken::Close)
      .def("__enter__", [](PyToken& t) -> PyToken& { return t; },
           py::return_value_policy::reference)
      .def("__exit__", [](PyToken& t, const py::object&, const py::object&, const py::object&) {
        t.Close();
      });

  m.def("verify_digest_signature", &VerifyDigestSignaturePy, py::arg("cert_pem"),
        py::arg("scheme"), py::arg("hash"), py::arg("digest"), py::arg("signature"),
        py::arg("pss_salt") = -1,
        "(ok, message): scheme rsa-pkcs1|rsa-pss|ecdsa, hash sha1..sha512; ECDSA raw or DER; "
        "pss_salt -1 = digest length");
  m.def("verify_message_signature", &VerifyMessageSignaturePy, py::arg("cert_pem"),
        py::arg("scheme"), py::arg("hash"), py::arg("message"), py::arg("signature"),
        py::arg("pss_salt") = -1, "(ok, message): like verify_digest_signature over hash(message)");
  m.def("verify_chain", &VerifyChainPy, py::arg("cert_pem"), py::arg("chain_pems"),
        py::arg("root_pem"), py::arg("code_signing") = false,
        "(ok, message): cert chains through chain_pems (PEM str or list) to root_pem only");
  m.def("certificate_info", &CertificateInfoPy, py::arg("pem"));
  m.def("binary_paths", []() {
    auto b = signum::deployment::BinaryPaths::FromBuild();
    return std::map<std::string, std::string>{{"build_dir", b.build_dir},
                                              {"server", b.server},
                                              {"agent", b.agent},
                                              {"pkcs11_module", b.pkcs11_module}};
  });
}

#include "signum/core/x509.h"

#include "openssl_ptr.h"

#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <ctime>

namespace signum {
namespace {

using namespace internal;  // OpenSslPtr, BioPtr, BnPtr, MemBio, BioToString, Fatal, OpenSslError
using X509Ptr = OpenSslPtr<X509, X509_free>;
using X509ReqPtr = OpenSslPtr<X509_REQ, X509_REQ_free>;
using X509NamePtr = OpenSslPtr<X509_NAME, X509_NAME_free>;
using X509AlgorPtr = OpenSslPtr<X509_ALGOR, X509_ALGOR_free>;
using Asn1IntegerPtr = OpenSslPtr<ASN1_INTEGER, ASN1_INTEGER_free>;
using GeneralNamesPtr = OpenSslPtr<GENERAL_NAMES, GENERAL_NAMES_free>;
using X509StorePtr = OpenSslPtr<X509_STORE, X509_STORE_free>;
using X509StoreCtxPtr = OpenSslPtr<X509_STORE_CTX, X509_STORE_CTX_free>;
// The stack only borrows its certificates.
using X509StackPtr = OpenSslPtr<STACK_OF(X509), [](STACK_OF(X509) * p) { sk_X509_free(p); }>;
using OpenSslStringPtr = OpenSslPtr<unsigned char, [](unsigned char* p) { OPENSSL_free(p); }>;

// i2d_* functions share this shape; the template keeps the buffer handling in one place.
template <typename T>
Bytes ToDer(const T* obj, int (*i2d)(const T*, unsigned char**)) {
  unsigned char* der = nullptr;
  const int len = i2d(obj, &der);
  if (len <= 0) Fatal("DER encoding");
  Bytes out(der, der + len);
  OPENSSL_free(der);
  return out;
}

std::string Asn1StringToUtf8(const ASN1_STRING* s) {
  unsigned char* utf8 = nullptr;
  const int len = ASN1_STRING_to_UTF8(&utf8, s);
  if (len < 0) {
    ERR_clear_error();
    return {};
  }
  OpenSslStringPtr owned(utf8);
  return std::string(reinterpret_cast<const char*>(utf8), static_cast<size_t>(len));
}

std::string NameToString(const X509_NAME* name) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio) Fatal("BIO_new");
  // RFC 2253 minus ESC_MSB: UTF-8 stays readable instead of turning into \C3\A9 (RFC 4514
  // allows raw UTF-8).
  const unsigned long flags = XN_FLAG_RFC2253 & ~static_cast<unsigned long>(ASN1_STRFLGS_ESC_MSB);
  if (X509_NAME_print_ex(bio.get(), name, 0, flags) < 0) Fatal("X509_NAME_print_ex");
  return BioToString(bio.get());
}

DistinguishedName NameToPairs(const X509_NAME* name) {
  DistinguishedName out;
  const int count = X509_NAME_entry_count(name);
  for (int i = 0; i < count; ++i) {
    const X509_NAME_ENTRY* entry = X509_NAME_get_entry(name, i);
    const ASN1_OBJECT* obj = X509_NAME_ENTRY_get_object(entry);
    const int nid = OBJ_obj2nid(obj);
    std::string attr;
    if (nid != NID_undef && OBJ_nid2sn(nid) != nullptr) {
      attr = OBJ_nid2sn(nid);
    } else {
      char buf[128];
      const int len = OBJ_obj2txt(buf, sizeof(buf), obj, 1);
      attr = len > 0 ? std::string(buf, std::min(static_cast<size_t>(len), sizeof(buf) - 1)) : "?";
    }
    out.emplace_back(std::move(attr), Asn1StringToUtf8(X509_NAME_ENTRY_get_data(entry)));
  }
  return out;
}

Result<X509NamePtr> PairsToName(const DistinguishedName& dn) {
  X509NamePtr name(X509_NAME_new());
  if (!name) return OpenSslError(ErrorCode::kInternal, "X509_NAME_new");
  for (const auto& [attr, value] : dn) {
    if (value.size() > static_cast<size_t>(INT_MAX)) return InvalidArgumentError("value too long");
    if (X509_NAME_add_entry_by_txt(name.get(), attr.c_str(), MBSTRING_UTF8,
                                   reinterpret_cast<const unsigned char*>(value.data()),
                                   static_cast<int>(value.size()), -1, 0) != 1) {
      return OpenSslError(ErrorCode::kInvalidArgument,
                          "cannot use " + attr + "=" + value + " in a distinguished name");
    }
  }
  return name;
}

std::chrono::system_clock::time_point Asn1TimeToTimePoint(const ASN1_TIME* t) {
  struct tm tm = {};
  if (t == nullptr || ASN1_TIME_to_tm(t, &tm) != 1) {
    ERR_clear_error();
    return {};
  }
  using namespace std::chrono;
  const sys_days date = year{tm.tm_year + 1900} / month{static_cast<unsigned>(tm.tm_mon + 1)} /
                        day{static_cast<unsigned>(tm.tm_mday)};
  return system_clock::time_point(date) + hours{tm.tm_hour} + minutes{tm.tm_min} +
         seconds{tm.tm_sec};
}

struct SignatureAlgorithm {
  int nid;
  int param_type;  // V_ASN1_NULL for RSA (RFC 4055 §5), V_ASN1_UNDEF for ECDSA (RFC 5758 §3.2)
  SignatureScheme scheme;
};

Result<SignatureAlgorithm> SignatureAlgorithmFor(KeyType type, HashAlgorithm hash) {
  const int md_nid = EVP_MD_get_type(EvpMd(hash));
  const int pkey_nid = type == KeyType::kRsa ? NID_rsaEncryption : NID_X9_62_id_ecPublicKey;
  int sig_nid = NID_undef;
  if (OBJ_find_sigid_by_algs(&sig_nid, md_nid, pkey_nid) != 1 || sig_nid == NID_undef) {
    ERR_clear_error();
    return InvalidArgumentError("no X.509 signature algorithm for " +
                                std::string(KeyTypeName(type)) + " with " +
                                std::string(HashName(hash)));
  }
  if (type == KeyType::kRsa)
    return SignatureAlgorithm{sig_nid, V_ASN1_NULL, SignatureScheme::kRsaPkcs1};
  return SignatureAlgorithm{sig_nid, V_ASN1_UNDEF, SignatureScheme::kEcdsa};
}

// Points an AlgorithmIdentifier at `alg`. The OBJ_nid2obj objects are static, so handing
// ownership to the X509_ALGOR is safe.
Status SetAlgorithm(X509_ALGOR* target, const SignatureAlgorithm& alg) {
  if (X509_ALGOR_set0(target, OBJ_nid2obj(alg.nid), alg.param_type, nullptr) != 1) {
    return OpenSslError(ErrorCode::kInternal, "cannot set the signature algorithm");
  }
  return Status::Ok();
}

Result<Bytes> AlgorithmDer(const SignatureAlgorithm& alg) {
  X509AlgorPtr algor(X509_ALGOR_new());
  if (!algor) return OpenSslError(ErrorCode::kInternal, "X509_ALGOR_new");
  SIGNUM_RETURN_IF_ERROR(SetAlgorithm(algor.get(), alg));
  return ToDer<X509_ALGOR>(algor.get(), i2d_X509_ALGOR);
}

// Signs DER to-be-signed bytes with any signer and returns the signature as X.509 wants it
// (ECDSA in DER, not the raw r||s signers produce).
Result<Bytes> SignTbs(DigestSigner& signer, const SignatureAlgorithm& alg, HashAlgorithm hash,
                      ByteView tbs) {
  const Bytes digest = Digest(hash, tbs);
  Result<Bytes> sig = signer.SignDigest(alg.scheme, hash, digest, std::nullopt);
  if (!sig.ok()) return sig.status().WithContext("signer");
  if (alg.scheme == SignatureScheme::kEcdsa) {
    Result<Bytes> der = EcdsaRawToDer(*sig);
    if (!der.ok()) return der.status().WithContext("signer returned a malformed ECDSA signature");
    return der;
  }
  return sig;
}

// Certificate and CertificationRequest share the shape SEQUENCE { tbs, AlgorithmIdentifier,
// BIT STRING }. Assembling it by hand avoids writing into OpenSSL's const outer fields.
Bytes AssembleSigned(ByteView tbs, ByteView algorithm_der, ByteView signature) {
  Bytes bits;
  bits.reserve(signature.size() + 1);
  bits.push_back(0x00);  // no unused bits
  bits.insert(bits.end(), signature.begin(), signature.end());
  Bytes content(tbs.begin(), tbs.end());
  content.insert(content.end(), algorithm_der.begin(), algorithm_der.end());
  AppendDerTlv(content, 0x03, bits);
  Bytes out;
  AppendDerTlv(out, 0x30, content);
  return out;
}

Status AddExtension(X509* x, X509V3_CTX* ctx, int nid, const std::string& value) {
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, ctx, nid, value.c_str());
  if (ext == nullptr) {
    return OpenSslError(ErrorCode::kInternal,
                        std::string("cannot build extension ") + OBJ_nid2sn(nid) + "=" + value);
  }
  const int ok = X509_add_ext(x, ext, -1);
  X509_EXTENSION_free(ext);
  if (ok != 1) return OpenSslError(ErrorCode::kInternal, "cannot add an extension");
  return Status::Ok();
}

bool IsIa5(std::string_view s) {
  for (char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x21 || u > 0x7e) return false;
  }
  return !s.empty();
}

Status AddGeneralName(GENERAL_NAMES* names, int type, const std::string& value) {
  GENERAL_NAME* gn = GENERAL_NAME_new();
  if (gn == nullptr) return OpenSslError(ErrorCode::kInternal, "GENERAL_NAME_new");
  ASN1_STRING* data = nullptr;
  if (type == GEN_IPADD) {
    data = a2i_IPADDRESS(value.c_str());
    if (data == nullptr) {
      GENERAL_NAME_free(gn);
      ERR_clear_error();
      return InvalidArgumentError("'" + value + "' is not an IPv4 or IPv6 address");
    }
  } else {
    if (!IsIa5(value)) {
      GENERAL_NAME_free(gn);
      return InvalidArgumentError("'" + value + "' is not a valid DNS name or email address");
    }
    data = ASN1_IA5STRING_new();
    if (data == nullptr ||
        ASN1_STRING_set(data, value.data(), static_cast<int>(value.size())) != 1) {
      ASN1_STRING_free(data);
      GENERAL_NAME_free(gn);
      return OpenSslError(ErrorCode::kInternal, "ASN1_STRING_set");
    }
  }
  GENERAL_NAME_set0_value(gn, type, data);
  if (sk_GENERAL_NAME_push(names, gn) <= 0) {
    GENERAL_NAME_free(gn);
    return OpenSslError(ErrorCode::kInternal, "sk_GENERAL_NAME_push");
  }
  return Status::Ok();
}

// Built directly rather than through the "DNS:a,IP:b" config syntax so that no value can
// smuggle in extra names with a comma.
Status AddSubjectAltNames(X509* x, const CertificateTemplate& tmpl) {
  if (tmpl.dns_names.empty() && tmpl.ip_addresses.empty() && tmpl.emails.empty()) {
    return Status::Ok();
  }
  GeneralNamesPtr names(sk_GENERAL_NAME_new_null());
  if (!names) return OpenSslError(ErrorCode::kInternal, "sk_GENERAL_NAME_new_null");
  for (const std::string& dns : tmpl.dns_names) {
    SIGNUM_RETURN_IF_ERROR(AddGeneralName(names.get(), GEN_DNS, dns));
  }
  for (const std::string& ip : tmpl.ip_addresses) {
    SIGNUM_RETURN_IF_ERROR(AddGeneralName(names.get(), GEN_IPADD, ip));
  }
  for (const std::string& email : tmpl.emails) {
    SIGNUM_RETURN_IF_ERROR(AddGeneralName(names.get(), GEN_EMAIL, email));
  }
  // RFC 5280 §4.2.1.6: critical when the subject is empty.
  const int critical = tmpl.subject.empty() ? 1 : 0;
  if (X509_add1_ext_i2d(x, NID_subject_alt_name, names.get(), critical, X509V3_ADD_DEFAULT) != 1) {
    return OpenSslError(ErrorCode::kInternal, "cannot add subjectAltName");
  }
  return Status::Ok();
}

Status AddRoleExtensions(X509* x, X509* issuer_cert, const CertificateTemplate& tmpl,
                         KeyType subject_key_type) {
  X509V3_CTX ctx = {};
  X509V3_set_ctx(&ctx, issuer_cert != nullptr ? issuer_cert : x, x, nullptr, nullptr, 0);
  // AKI comes from the issuer's SKI; an issuer certificate without one just gets no AKI.
  const bool add_aki = issuer_cert != nullptr &&
                       X509_get_ext_by_NID(issuer_cert, NID_subject_key_identifier, -1) >= 0;
  std::string basic_constraints = "critical,CA:FALSE";
  std::string key_usage = "critical,digitalSignature";
  std::string extended_key_usage;
  switch (tmpl.role) {
    case CertificateRole::kRootCa:
      basic_constraints = "critical,CA:TRUE";
      key_usage = "critical,keyCertSign,cRLSign";
      break;
    case CertificateRole::kIntermediateCa:
      basic_constraints = "critical,CA:TRUE,pathlen:0";
      key_usage = "critical,keyCertSign,cRLSign";
      break;
    case CertificateRole::kCodeSigning:
      // emailProtection too: jarsigner, cosign and gpgsm look for it next to codeSigning.
      extended_key_usage = "codeSigning,emailProtection";
      break;
    case CertificateRole::kTlsServer:
      // keyEncipherment only means something for RSA key transport.
      if (subject_key_type == KeyType::kRsa) key_usage += ",keyEncipherment";
      extended_key_usage = "serverAuth";
      break;
    case CertificateRole::kTlsClient:
      extended_key_usage = "clientAuth";
      break;
  }
  SIGNUM_RETURN_IF_ERROR(AddExtension(x, &ctx, NID_basic_constraints, basic_constraints));
  SIGNUM_RETURN_IF_ERROR(AddExtension(x, &ctx, NID_key_usage, key_usage));
  if (!extended_key_usage.empty()) {
    SIGNUM_RETURN_IF_ERROR(AddExtension(x, &ctx, NID_ext_key_usage, extended_key_usage));
  }
  SIGNUM_RETURN_IF_ERROR(AddExtension(x, &ctx, NID_subject_key_identifier, "hash"));
  if (add_aki) {
    SIGNUM_RETURN_IF_ERROR(AddExtension(x, &ctx, NID_authority_key_identifier, "keyid:always"));
  }
  return AddSubjectAltNames(x, tmpl);
}

Result<Asn1IntegerPtr> RandomSerial() {
  Bytes serial = RandomBytes(16);
  // Positive (RFC 5280 §4.1.2.2) and a full 16 bytes long.
  serial[0] &= 0x7f;
  if (serial[0] == 0) serial[0] = 0x01;
  BnPtr bn(BN_bin2bn(serial.data(), static_cast<int>(serial.size()), nullptr));
  if (!bn) return OpenSslError(ErrorCode::kInternal, "BN_bin2bn");
  Asn1IntegerPtr out(BN_to_ASN1_INTEGER(bn.get(), nullptr));
  if (!out) return OpenSslError(ErrorCode::kInternal, "BN_to_ASN1_INTEGER");
  return out;
}

// A small DN scanner: splits on unescaped separators and handles backslash escapes, including
// the RFC 4514 "\XX" hex form in the comma syntax.
Result<DistinguishedName> ScanDistinguishedName(std::string_view text, bool slash_syntax) {
  const char separator = slash_syntax ? '/' : ',';
  auto hex_value = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  DistinguishedName out;
  std::string attr;
  std::string value;
  bool in_value = false;
  size_t value_keep = 0;  // length of value without unescaped trailing spaces
  auto finish = [&](size_t pos) -> Status {
    value.resize(value_keep);
    size_t a = attr.find_first_not_of(" \t");
    size_t b = attr.find_last_not_of(" \t");
    attr = a == std::string::npos ? "" : attr.substr(a, b - a + 1);
    if (!in_value || attr.empty()) {
      return InvalidArgumentError("distinguished name component ending at offset " +
                                  std::to_string(pos) + " is not attribute=value");
    }
    if (value.empty()) return InvalidArgumentError("empty value for attribute " + attr);
    if (OBJ_txt2nid(attr.c_str()) == NID_undef) {
      ERR_clear_error();
      return InvalidArgumentError("unknown distinguished name attribute '" + attr + "'");
    }
    out.emplace_back(std::move(attr), std::move(value));
    attr.clear();
    value.clear();
    in_value = false;
    value_keep = 0;
    return Status::Ok();
  };
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '\\') {
      if (i + 1 >= text.size()) return InvalidArgumentError("distinguished name ends with '\\'");
      char literal = text[i + 1];
      ++i;
      if (!slash_syntax && i + 1 < text.size() && hex_value(text[i]) >= 0 &&
          hex_value(text[i + 1]) >= 0) {
        literal = static_cast<char>((hex_value(text[i]) << 4) | hex_value(text[i + 1]));
        ++i;
      }
      std::string& target = in_value ? value : attr;
      target += literal;
      if (in_value) value_keep = value.size();
      continue;
    }
    if (c == separator) {
      SIGNUM_RETURN_IF_ERROR(finish(i));
      continue;
    }
    if (c == '=' && !in_value) {
      in_value = true;
      continue;
    }
    if (!slash_syntax && c == '+') {
      return InvalidArgumentError("multi-valued RDNs ('+') are not supported");
    }
    if (in_value) {
      if (value.empty() && (c == ' ' || c == '\t')) continue;
      if (value.empty() && c == '#' && !slash_syntax) {
        return InvalidArgumentError("hex-encoded ('#') attribute values are not supported");
      }
      value += c;
      if (c != ' ' && c != '\t') value_keep = value.size();
    } else {
      attr += c;
    }
  }
  SIGNUM_RETURN_IF_ERROR(finish(text.size()));
  return out;
}

}  // namespace

// --- Certificate ------------------------------------------------------------------------------

Result<Certificate> Certificate::FromDer(ByteView der) {
  ERR_clear_error();
  const unsigned char* p = der.data();
  X509* raw = d2i_X509(nullptr, &p, static_cast<long>(der.size()));
  if (raw == nullptr) return OpenSslError(ErrorCode::kInvalidArgument, "not a DER certificate");
  std::shared_ptr<X509> x509(raw, X509_free);
  if (p != der.data() + der.size()) {
    return InvalidArgumentError("trailing bytes after the DER certificate");
  }
  return Certificate(std::move(x509));
}

Result<Certificate> Certificate::FromPem(std::string_view pem) {
  ERR_clear_error();
  BioPtr bio = MemBio(pem);
  if (!bio) return OpenSslError(ErrorCode::kInternal, "cannot create BIO");
  X509* raw = PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr);
  if (raw == nullptr) {
    return OpenSslError(ErrorCode::kInvalidArgument, "no PEM certificate could be read");
  }
  return Certificate(std::shared_ptr<X509>(raw, X509_free));
}

Result<std::vector<Certificate>> Certificate::AllFromPem(std::string_view pem) {
  ERR_clear_error();
  BioPtr bio = MemBio(pem);
  if (!bio) return OpenSslError(ErrorCode::kInternal, "cannot create BIO");
  std::vector<Certificate> out;
  while (true) {
    X509* raw = PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr);
    if (raw == nullptr) {
      const unsigned long err = ERR_peek_last_error();
      // Running out of PEM blocks is how the loop ends; anything else is a broken block.
      if (!out.empty() && ERR_GET_LIB(err) == ERR_LIB_PEM &&
          ERR_GET_REASON(err) == PEM_R_NO_START_LINE) {
        ERR_clear_error();
        break;
      }
      return OpenSslError(ErrorCode::kInvalidArgument,
                          out.empty() ? "no PEM certificate could be read"
                                      : "PEM certificate #" + std::to_string(out.size() + 1) +
                                            " could not be read");
    }
    out.push_back(Certificate(std::shared_ptr<X509>(raw, X509_free)));
  }
  return out;
}

Bytes Certificate::Der() const { return ToDer<X509>(x509_.get(), i2d_X509); }

std::string Certificate::Pem() const {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio || PEM_write_bio_X509(bio.get(), x509_.get()) != 1) Fatal("PEM_write_bio_X509");
  return BioToString(bio.get());
}

std::string Certificate::Subject() const { return NameToString(X509_get_subject_name(get())); }

std::string Certificate::Issuer() const { return NameToString(X509_get_issuer_name(get())); }

std::string Certificate::SubjectCommonName() const {
  const X509_NAME* name = X509_get_subject_name(get());
  // The last CN is the most specific one (DER order runs from the root of the name tree).
  int index = -1;
  for (int i = X509_NAME_get_index_by_NID(name, NID_commonName, -1); i >= 0;
       i = X509_NAME_get_index_by_NID(name, NID_commonName, i)) {
    index = i;
  }
  if (index < 0) return {};
  return Asn1StringToUtf8(X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, index)));
}

Bytes Certificate::SubjectDer() const {
  return ToDer<X509_NAME>(X509_get_subject_name(get()), i2d_X509_NAME);
}

Bytes Certificate::IssuerDer() const {
  return ToDer<X509_NAME>(X509_get_issuer_name(get()), i2d_X509_NAME);
}

Bytes Certificate::SerialDer() const {
  return ToDer<ASN1_INTEGER>(X509_get0_serialNumber(get()), i2d_ASN1_INTEGER);
}

std::string Certificate::SerialHex() const {
  BnPtr bn(ASN1_INTEGER_to_BN(X509_get0_serialNumber(get()), nullptr));
  if (!bn) Fatal("ASN1_INTEGER_to_BN");
  Bytes magnitude(static_cast<size_t>(BN_num_bytes(bn.get())));
  BN_bn2bin(bn.get(), magnitude.data());
  if (magnitude.empty()) magnitude.push_back(0);
  return HexEncode(magnitude);
}

Bytes Certificate::SpkiDer() const {
  return ToDer<X509_PUBKEY>(X509_get_X509_PUBKEY(get()), i2d_X509_PUBKEY);
}

Result<PublicKey> Certificate::GetPublicKey() const {
  EVP_PKEY* pkey = X509_get0_pubkey(get());
  if (pkey == nullptr) {
    return OpenSslError(ErrorCode::kInvalidArgument, "certificate public key cannot be decoded");
  }
  return PublicKey::FromEvpPkey(pkey);
}

Result<KeySpec> Certificate::GetKeySpec() const {
  SIGNUM_ASSIGN_OR_RETURN(PublicKey key, GetPublicKey());
  return key.spec();
}

Bytes Certificate::Sha1Thumbprint() const { return Digest(HashAlgorithm::kSha1, Der()); }

std::string Certificate::Sha1ThumbprintHex() const { return HexEncode(Sha1Thumbprint()); }

Bytes Certificate::Sha256Fingerprint() const { return Digest(HashAlgorithm::kSha256, Der()); }

std::chrono::system_clock::time_point Certificate::NotBefore() const {
  return Asn1TimeToTimePoint(X509_get0_notBefore(get()));
}

std::chrono::system_clock::time_point Certificate::NotAfter() const {
  return Asn1TimeToTimePoint(X509_get0_notAfter(get()));
}

bool Certificate::IsCa() const { return (X509_get_extension_flags(get()) & EXFLAG_CA) != 0; }

bool Certificate::HasCodeSigningUsage() const {
  // Without the extension OpenSSL reports "all usages"; Signum wants it spelled out.
  if ((X509_get_extension_flags(get()) & EXFLAG_XKUSAGE) == 0) return false;
  return (X509_get_extended_key_usage(get()) & XKU_CODE_SIGN) != 0;
}

std::string CertificatesToPem(const std::vector<Certificate>& certs) {
  std::string out;
  for (const Certificate& c : certs) out += c.Pem();
  return out;
}

Status VerifyCertificateChain(const Certificate& leaf,
                              const std::vector<Certificate>& intermediates,
                              const std::vector<Certificate>& trusted_roots,
                              bool require_code_signing) {
  ERR_clear_error();
  if (trusted_roots.empty()) return InvalidArgumentError("no trusted root certificates given");
  X509StorePtr store(X509_STORE_new());
  X509StackPtr untrusted(sk_X509_new_null());
  X509StoreCtxPtr ctx(X509_STORE_CTX_new());
  if (!store || !untrusted || !ctx) return OpenSslError(ErrorCode::kInternal, "out of memory");
  for (const Certificate& root : trusted_roots) {
    if (X509_STORE_add_cert(store.get(), root.get()) != 1) {
      // The same root twice is harmless.
      const unsigned long err = ERR_peek_last_error();
      if (ERR_GET_REASON(err) != X509_R_CERT_ALREADY_IN_HASH_TABLE) {
        return OpenSslError(ErrorCode::kInternal, "cannot add a trusted root");
      }
      ERR_clear_error();
    }
  }
  for (const Certificate& inter : intermediates) {
    if (sk_X509_push(untrusted.get(), inter.get()) <= 0) {
      return OpenSslError(ErrorCode::kInternal, "out of memory");
    }
  }
  if (X509_STORE_CTX_init(ctx.get(), store.get(), leaf.get(), untrusted.get()) != 1) {
    return OpenSslError(ErrorCode::kInternal, "X509_STORE_CTX_init");
  }
  // OpenSSL has no codeSigning purpose; the EKU is checked below instead.
  X509_STORE_CTX_set_purpose(ctx.get(), X509_PURPOSE_ANY);
  if (X509_verify_cert(ctx.get()) != 1) {
    const int err = X509_STORE_CTX_get_error(ctx.get());
    std::string message = "certificate chain of '" + leaf.Subject() +
                          "' does not verify: " + X509_verify_cert_error_string(err);
    const X509* current = X509_STORE_CTX_get_current_cert(ctx.get());
    if (current != nullptr) {
      message += " (at depth " + std::to_string(X509_STORE_CTX_get_error_depth(ctx.get())) + ", '" +
                 NameToString(X509_get_subject_name(current)) + "')";
    }
    ERR_clear_error();
    return InvalidArgumentError(std::move(message));
  }
  if (require_code_signing && !leaf.HasCodeSigningUsage()) {
    return InvalidArgumentError("certificate '" + leaf.Subject() +
                                "' has no codeSigning extended key usage");
  }
  return Status::Ok();
}

// --- Names ------------------------------------------------------------------------------------

Result<DistinguishedName> ParseDistinguishedName(std::string_view text) {
  const size_t first = text.find_first_not_of(" \t");
  if (first == std::string_view::npos) return InvalidArgumentError("empty distinguished name");
  text.remove_prefix(first);
  if (text[0] == '/') {
    // OpenSSL -subj style lists RDNs in DER order.
    return ScanDistinguishedName(text.substr(1), true);
  }
  // RFC 4514 strings list the most specific RDN first, the reverse of DER order; reversing here
  // makes ParseDistinguishedName(cert.Subject()) describe the same name as the certificate.
  SIGNUM_ASSIGN_OR_RETURN(DistinguishedName dn, ScanDistinguishedName(text, false));
  std::reverse(dn.begin(), dn.end());
  return dn;
}

// --- CSRs -------------------------------------------------------------------------------------

Result<Bytes> BuildCsrDer(const DistinguishedName& subject, DigestSigner& signer,
                          HashAlgorithm hash) {
  ERR_clear_error();
  if (subject.empty()) return InvalidArgumentError("a CSR needs a subject");
  const PublicKey& key = signer.public_key();
  SIGNUM_ASSIGN_OR_RETURN(SignatureAlgorithm alg, SignatureAlgorithmFor(key.type(), hash));
  SIGNUM_ASSIGN_OR_RETURN(X509NamePtr name, PairsToName(subject));
  X509ReqPtr req(X509_REQ_new());
  if (!req || X509_REQ_set_version(req.get(), X509_REQ_VERSION_1) != 1 ||
      X509_REQ_set_subject_name(req.get(), name.get()) != 1 ||
      X509_REQ_set_pubkey(req.get(), key.get()) != 1) {
    return OpenSslError(ErrorCode::kInternal, "cannot build the CSR");
  }
  unsigned char* tbs_buf = nullptr;
  const int tbs_len = i2d_re_X509_REQ_tbs(req.get(), &tbs_buf);
  if (tbs_len <= 0) return OpenSslError(ErrorCode::kInternal, "cannot encode the CSR body");
  const Bytes tbs(tbs_buf, tbs_buf + tbs_len);
  OPENSSL_free(tbs_buf);

  SIGNUM_ASSIGN_OR_RETURN(Bytes signature, SignTbs(signer, alg, hash, tbs));
  SIGNUM_ASSIGN_OR_RETURN(Bytes alg_der, AlgorithmDer(alg));
  Bytes der = AssembleSigned(tbs, alg_der, signature);

  // A signer that answers with the wrong key or garbage must not yield a CSR.
  const unsigned char* p = der.data();
  X509ReqPtr parsed(d2i_X509_REQ(nullptr, &p, static_cast<long>(der.size())));
  if (!parsed || X509_REQ_verify(parsed.get(), key.get()) != 1) {
    return OpenSslError(ErrorCode::kInternal,
                        "the signer's signature over the CSR does not verify");
  }
  return der;
}

std::string CsrDerToPem(ByteView csr_der) { return PemEncode("CERTIFICATE REQUEST", csr_der); }

Result<ParsedCsr> ParseAndVerifyCsr(std::string_view pem_or_der) {
  ERR_clear_error();
  X509ReqPtr req;
  if (pem_or_der.find("-----BEGIN") != std::string_view::npos) {
    BioPtr bio = MemBio(pem_or_der);
    if (!bio) return OpenSslError(ErrorCode::kInternal, "cannot create BIO");
    req.reset(PEM_read_bio_X509_REQ(bio.get(), nullptr, nullptr, nullptr));
    if (!req) return OpenSslError(ErrorCode::kInvalidArgument, "no PEM CSR could be read");
  } else {
    const ByteView der = AsBytes(pem_or_der);
    const unsigned char* p = der.data();
    req.reset(d2i_X509_REQ(nullptr, &p, static_cast<long>(der.size())));
    if (!req) return OpenSslError(ErrorCode::kInvalidArgument, "not a DER or PEM CSR");
    if (p != der.data() + der.size()) return InvalidArgumentError("trailing bytes after the CSR");
  }
  EVP_PKEY* pkey = X509_REQ_get0_pubkey(req.get());
  if (pkey == nullptr) {
    return OpenSslError(ErrorCode::kInvalidArgument, "the CSR's public key cannot be decoded");
  }
  SIGNUM_ASSIGN_OR_RETURN(PublicKey key, PublicKey::FromEvpPkey(pkey));
  if (X509_REQ_verify(req.get(), pkey) != 1) {
    return OpenSslError(ErrorCode::kInvalidArgument, "the CSR's self-signature does not verify");
  }
  const X509_NAME* name = X509_REQ_get_subject_name(req.get());
  return ParsedCsr{NameToPairs(name), NameToString(name), std::move(key)};
}

// --- Issuing ----------------------------------------------------------------------------------

Result<Certificate> IssueCertificate(const CertificateTemplate& tmpl, const PublicKey& subject_key,
                                     const std::optional<Certificate>& issuer,
                                     DigestSigner& issuer_signer) {
  ERR_clear_error();
  constexpr HashAlgorithm kHash = HashAlgorithm::kSha256;
  if (tmpl.validity_days <= 0 || tmpl.validity_days > 36500) {
    return InvalidArgumentError("validity_days must be between 1 and 36500, got " +
                                std::to_string(tmpl.validity_days));
  }
  if (tmpl.subject.empty() && tmpl.dns_names.empty() && tmpl.ip_addresses.empty() &&
      tmpl.emails.empty()) {
    return InvalidArgumentError("a certificate needs a subject or a subjectAltName");
  }
  const PublicKey& signer_key = issuer_signer.public_key();
  if (issuer.has_value()) {
    SIGNUM_ASSIGN_OR_RETURN(PublicKey issuer_key, issuer->GetPublicKey());
    if (EVP_PKEY_eq(issuer_key.get(), signer_key.get()) != 1) {
      ERR_clear_error();
      return InvalidArgumentError("the issuer signer's key is not the key of issuer '" +
                                  issuer->Subject() + "'");
    }
    if (!issuer->IsCa()) {
      return InvalidArgumentError("issuer '" + issuer->Subject() + "' is not a CA certificate");
    }
  } else if (EVP_PKEY_eq(subject_key.get(), signer_key.get()) != 1) {
    ERR_clear_error();
    return InvalidArgumentError("a self-signed certificate must be signed with the subject's key");
  }
  SIGNUM_ASSIGN_OR_RETURN(SignatureAlgorithm alg, SignatureAlgorithmFor(signer_key.type(), kHash));
  SIGNUM_ASSIGN_OR_RETURN(X509NamePtr subject, PairsToName(tmpl.subject));
  SIGNUM_ASSIGN_OR_RETURN(Asn1IntegerPtr serial, RandomSerial());

  X509Ptr x(X509_new());
  if (!x || X509_set_version(x.get(), X509_VERSION_3) != 1 ||
      X509_set_serialNumber(x.get(), serial.get()) != 1 ||
      X509_set_subject_name(x.get(), subject.get()) != 1 ||
      X509_set_issuer_name(x.get(), issuer.has_value() ? X509_get_subject_name(issuer->get())
                                                       : subject.get()) != 1 ||
      X509_set_pubkey(x.get(), subject_key.get()) != 1) {
    return OpenSslError(ErrorCode::kInternal, "cannot build the certificate");
  }
  // Five minutes of slack for verifiers whose clocks run behind.
  if (X509_gmtime_adj(X509_getm_notBefore(x.get()), -5 * 60) == nullptr ||
      X509_time_adj_ex(X509_getm_notAfter(x.get()), tmpl.validity_days, 0, nullptr) == nullptr) {
    return OpenSslError(ErrorCode::kInternal, "cannot set the validity period");
  }
  SIGNUM_RETURN_IF_ERROR(AddRoleExtensions(x.get(), issuer.has_value() ? issuer->get() : nullptr,
                                           tmpl, subject_key.type()));

  // OpenSSL 3.0 offers no setter for the TBS signature field other than writing through the
  // const pointer; it is a plain member of the X509 we own, and i2d_re_X509_tbs re-encodes it.
  SIGNUM_RETURN_IF_ERROR(SetAlgorithm(const_cast<X509_ALGOR*>(X509_get0_tbs_sigalg(x.get())), alg));
  unsigned char* tbs_buf = nullptr;
  const int tbs_len = i2d_re_X509_tbs(x.get(), &tbs_buf);
  if (tbs_len <= 0) return OpenSslError(ErrorCode::kInternal, "cannot encode the TBS certificate");
  const Bytes tbs(tbs_buf, tbs_buf + tbs_len);
  OPENSSL_free(tbs_buf);

  SIGNUM_ASSIGN_OR_RETURN(Bytes signature, SignTbs(issuer_signer, alg, kHash, tbs));
  SIGNUM_ASSIGN_OR_RETURN(Bytes alg_der, AlgorithmDer(alg));
  SIGNUM_ASSIGN_OR_RETURN(Certificate cert,
                          Certificate::FromDer(AssembleSigned(tbs, alg_der, signature)));
  // A signer that answers with the wrong key or garbage must not yield a certificate.
  if (X509_verify(cert.get(), signer_key.get()) != 1) {
    return OpenSslError(ErrorCode::kInternal,
                        "the signer's signature over the certificate does not verify");
  }
  return cert;
}

}  // namespace signum

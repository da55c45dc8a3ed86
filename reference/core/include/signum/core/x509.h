// X.509 certificates and requests: parsing for what tools and tokens need (subject, issuer,
// serial, SPKI, key type and size, SHA-1 thumbprint), and building CSRs and certificates with
// any DigestSigner, so an HSM key can sign its own CSR and the demo CA can issue certificates.
#pragma once

#include <openssl/x509.h>

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "signum/core/crypto.h"

namespace signum {

class Certificate {
 public:
  static Result<Certificate> FromDer(ByteView der);
  static Result<Certificate> FromPem(std::string_view pem);  // the first certificate in pem
  static Result<std::vector<Certificate>> AllFromPem(std::string_view pem);  // every certificate

  X509* get() const { return x509_.get(); }
  Bytes Der() const;
  std::string Pem() const;

  std::string Subject() const;  // RFC 2253, e.g. "CN=Signum Demo RSA-2048,O=Signum Harness Demo"
  std::string Issuer() const;
  std::string SubjectCommonName() const;  // empty if none
  Bytes SubjectDer() const;               // DER Name (CKA_SUBJECT)
  Bytes IssuerDer() const;                // DER Name (CKA_ISSUER)
  Bytes SerialDer() const;                // DER INTEGER (CKA_SERIAL_NUMBER)
  std::string SerialHex() const;          // lowercase hex of the serial's magnitude
  Bytes SpkiDer() const;
  Result<PublicKey> GetPublicKey() const;
  Result<KeySpec> GetKeySpec() const;
  Bytes Sha1Thumbprint() const;           // SHA-1 of the DER: what signtool /sha1 and Signum show
  std::string Sha1ThumbprintHex() const;  // lowercase, no separators
  Bytes Sha256Fingerprint() const;
  std::chrono::system_clock::time_point NotBefore() const;
  std::chrono::system_clock::time_point NotAfter() const;
  bool IsCa() const;
  bool HasCodeSigningUsage() const;  // extendedKeyUsage contains codeSigning

 private:
  explicit Certificate(std::shared_ptr<X509> x509) : x509_(std::move(x509)) {}
  std::shared_ptr<X509> x509_;
};

std::string CertificatesToPem(const std::vector<Certificate>& certs);

// Verifies that leaf chains to one of trusted_roots through intermediates (X509_verify_cert),
// optionally for the codeSigning purpose. The error names what failed.
Status VerifyCertificateChain(const Certificate& leaf,
                              const std::vector<Certificate>& intermediates,
                              const std::vector<Certificate>& trusted_roots,
                              bool require_code_signing = false);

// A distinguished name as ordered (attribute, value) pairs, e.g. {{"CN","x"},{"O","y"}}.
using DistinguishedName = std::vector<std::pair<std::string, std::string>>;
// Parses "/CN=x/O=y" (OpenSSL -subj style) or "CN=x,O=y".
Result<DistinguishedName> ParseDistinguishedName(std::string_view text);

// A PKCS#10 request signed by `signer` (SHA-256; PKCS#1 v1.5 for RSA, ECDSA for EC).
Result<Bytes> BuildCsrDer(const DistinguishedName& subject, DigestSigner& signer,
                          HashAlgorithm hash = HashAlgorithm::kSha256);
std::string CsrDerToPem(ByteView csr_der);
struct ParsedCsr {
  DistinguishedName subject;
  std::string subject_text;  // RFC 2253
  PublicKey public_key;
};
// Parses a PEM or DER CSR and checks its self-signature.
Result<ParsedCsr> ParseAndVerifyCsr(std::string_view pem_or_der);

enum class CertificateRole { kRootCa, kIntermediateCa, kCodeSigning, kTlsServer, kTlsClient };

struct CertificateTemplate {
  DistinguishedName subject;
  CertificateRole role = CertificateRole::kCodeSigning;
  int validity_days = 825;
  std::vector<std::string> dns_names;     // subjectAltName dNSName (TLS server)
  std::vector<std::string> ip_addresses;  // subjectAltName iPAddress, "127.0.0.1", "::1"
  std::vector<std::string> emails;        // subjectAltName rfc822Name (cosign wants one)
};

// Issues a certificate for `subject_key` with the extensions of `tmpl.role`, signed by
// `issuer_signer`. issuer == nullopt means self-signed (then issuer_signer must own subject_key).
// Serial numbers are random 16-byte positives. Signature hash is SHA-256.
Result<Certificate> IssueCertificate(const CertificateTemplate& tmpl, const PublicKey& subject_key,
                                     const std::optional<Certificate>& issuer,
                                     DigestSigner& issuer_signer);

}  // namespace signum

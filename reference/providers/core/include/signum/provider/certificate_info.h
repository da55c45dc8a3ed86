// A certificate as providers need it, parsed from its DER by a small bounded reader (der_reader.h)
// that builds everywhere a provider does: with OpenSSL on Linux and macOS, and with mingw-w64 for
// the Windows KSP/CSP, where no OpenSSL exists. Only what providers show is extracted: the DER
// itself, serial, issuer and subject (as DER and for display), validity and the
// SubjectPublicKeyInfo. Signatures and extensions are not checked here: the agent's list comes
// from the server, which issued or imported the certificate; providers only present it.
#pragma once

#include <chrono>
#include <string>
#include <string_view>

#include "signum/core/bytes.h"
#include "signum/core/status.h"

namespace signum::provider {

class CertificateInfo {
 public:
  // The DER X.509 certificate; anything that is not a well-formed v1..v3 certificate is
  // kInvalidArgument naming the field that failed.
  static Result<CertificateInfo> FromDer(ByteView der);
  // The first "-----BEGIN CERTIFICATE-----" block of pem.
  static Result<CertificateInfo> FromPem(std::string_view pem);

  const Bytes& Der() const { return der_; }
  const Bytes& SerialDer() const { return serial_der_; }    // DER INTEGER (CKA_SERIAL_NUMBER)
  const Bytes& IssuerDer() const { return issuer_der_; }    // DER Name (CKA_ISSUER)
  const Bytes& SubjectDer() const { return subject_der_; }  // DER Name (CKA_SUBJECT)
  const Bytes& SpkiDer() const { return spki_der_; }        // DER SubjectPublicKeyInfo
  // RFC 2253 order and short names (CN, O, OU, C, L, ST, emailAddress; other types as dotted
  // OIDs), e.g. "CN=Signum Demo RSA-2048,O=Signum Harness Demo".
  std::string Subject() const;
  std::string Issuer() const;
  std::string SubjectCommonName() const;  // the last CN in the subject, empty if none
  std::chrono::system_clock::time_point NotBefore() const { return not_before_; }
  std::chrono::system_clock::time_point NotAfter() const { return not_after_; }
  // SHA-1 of the DER (digest.h's platform hash): what signtool /sha1 and Signum show.
  Bytes Sha1Thumbprint() const;
  std::string Sha1ThumbprintHex() const;  // lowercase, no separators

 private:
  Bytes der_, serial_der_, issuer_der_, subject_der_, spki_der_;
  std::chrono::system_clock::time_point not_before_{}, not_after_{};
};

// Renders a DER Name the way CertificateInfo::Subject() does (also for CA names).
Result<std::string> NameToString(ByteView name_der);
// The last commonName of a DER Name, empty if it has none.
Result<std::string> NameCommonName(ByteView name_der);

}  // namespace signum::provider

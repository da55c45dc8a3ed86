// The suite's judge: OpenSSL alone, against the certificate, never the token's own code. Both
// drivers (Linux and macOS, where Homebrew's OpenSSL 3 is linked) use it.
#pragma once

#include <optional>
#include <string>

#include "signum/core/algorithms.h"
#include "signum/core/bytes.h"

namespace signum::conformance::ctk {

struct CertificateFacts {
  Bytes der;
  Bytes sha1;  // the thumbprint
  KeyType type = KeyType::kRsa;
  int bits = 0;
  // Security.framework's external representation: RSAPublicKey DER, or the uncompressed EC point.
  Bytes public_key_data;
};

// nullopt (with the reason in *error) when OpenSSL cannot read the DER certificate.
std::optional<CertificateFacts> ReadCertificate(ByteView der, std::string* error);

// Empty when `signature` verifies with the certificate's key over `digest` (EVP_PKEY_verify):
// PKCS#1 v1.5 with `hash`; PSS with MGF1(`hash`) and a salt of exactly the hash's length; ECDSA
// as DER X9.62 (raw r||s does not verify). Otherwise what failed.
std::string VerifySignature(ByteView certificate_der, SignatureScheme scheme, HashAlgorithm hash,
                            ByteView digest, ByteView signature);

// Empty when `signature` is canonical DER ECDSA-Sig-Value (decodes and re-encodes to the same
// bytes); otherwise why not (e.g. "64 bytes that are not DER: raw r||s?").
std::string CheckCanonicalEcdsaDer(ByteView signature);

}  // namespace signum::conformance::ctk

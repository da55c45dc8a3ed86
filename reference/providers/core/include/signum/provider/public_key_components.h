// The public parts of a certificate's key, read straight from the DER SubjectPublicKeyInfo by the
// providers' own bounded DER reader (der_reader.h), never through an EVP_PKEY, so the Windows
// providers (no OpenSSL there) get the same answer as the Linux ones.
//
// Why not signum::PublicKey's getters: a provider runs inside someone else's process, and that
// process may have made an OpenSSL ENGINE the default for RSA/EC (`openssl -engine pkcs11 ...`
// does exactly that). Keys parsed there become legacy, engine-bound EVP_PKEYs whose components
// cannot be exported through the provider API, and the getters fail. Tokens must still show
// CKA_MODULUS / CKA_EC_POINT (and CNG its key blobs) in such processes.
#pragma once

#include "signum/core/algorithms.h"
#include "signum/core/bytes.h"
#include "signum/core/status.h"

namespace signum::provider {

struct PublicKeyComponents {
  KeySpec spec;
  Bytes rsa_modulus;          // big-endian, no leading zero (RSA)
  Bytes rsa_public_exponent;  // big-endian (RSA)
  Bytes ec_point;             // X9.62 uncompressed point 04||X||Y (EC)
};

// RSA (rsaEncryption) and EC (id-ecPublicKey on a named curve Signum supports, uncompressed
// point); anything else is kInvalidArgument.
Result<PublicKeyComponents> ParseSubjectPublicKeyInfo(ByteView spki_der);

}  // namespace signum::provider

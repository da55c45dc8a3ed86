// A certificate's RSA public key in CNG's terms, shared by both Windows providers: the BCrypt
// public blob (what the KSP's ExportKey returns) and local signature verification through the
// platform's BCrypt (the KSP's VerifySignature, the CSP's CPVerifySignature).
#pragma once

#include <windows.h>

#include "signum/core/bytes.h"
#include "signum/core/status.h"
#include "signum/provider/public_key_components.h"

namespace signum::cng {

// BCRYPT_RSAKEY_BLOB header (BCRYPT_RSAPUBLIC_MAGIC), then the public exponent and the modulus,
// both big-endian. kInvalidArgument if the components are not an RSA key.
Result<Bytes> BuildRsaPublicBlob(const provider::PublicKeyComponents& components);

// padding_flag BCRYPT_PAD_PKCS1 with a BCRYPT_PKCS1_PADDING_INFO naming the hash, or
// BCRYPT_PAD_PSS with a BCRYPT_PSS_PADDING_INFO; hash is the digest. true: the signature verifies;
// false: it does not. Errors: not an RSA key or a malformed padding/hash (kInvalidArgument),
// BCrypt lacks the padding or hash (kUnimplemented).
Result<bool> VerifyRsaSignature(const provider::PublicKeyComponents& components,
                                const void* padding_info, ULONG padding_flag, ByteView hash,
                                ByteView signature);

}  // namespace signum::cng

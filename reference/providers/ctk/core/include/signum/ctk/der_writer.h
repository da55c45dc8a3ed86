// The few DER encodings the CTK token hands to macOS, written here because the portable core
// carries no OpenSSL: ECDSA-Sig-Value (X9.62 / RFC 3279 §2.2.3, what SecKeyCreateSignature returns
// for the …X962… algorithms; F57) and RSAPublicKey (RFC 8017 A.1.1, Security.framework's external
// representation of an RSA public key, TKTokenKeychainKey.publicKeyData).
#pragma once

#include "signum/core/bytes.h"
#include "signum/core/status.h"

namespace signum::ctk {

// A DER INTEGER holding the unsigned big-endian `magnitude` (leading zeros dropped, a 0x00 added
// when the high bit is set; zero is 02 01 00).
Bytes DerUnsignedInteger(ByteView magnitude);
// A DER SEQUENCE around already-encoded `content`.
Bytes DerSequence(ByteView content);

// r||s (two equal halves, as the agent returns ECDSA) -> SEQUENCE { INTEGER r, INTEGER s }.
// kInternal for an empty or odd-length input.
Result<Bytes> EcdsaRawToX962Der(ByteView raw);
// SEQUENCE { INTEGER modulus, INTEGER publicExponent }.
Bytes RsaPublicKeyDer(ByteView modulus, ByteView public_exponent);

}  // namespace signum::ctk

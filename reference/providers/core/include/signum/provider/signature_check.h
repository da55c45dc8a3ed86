// The provider's own check of every signature the agent returns, before a tool sees it.
//
// The agent is another process reached over a socket: if it is not the agent (another user's
// process on a stolen socket path or TCP port) or it is broken, its "signature" must not reach the
// tool, which would embed it in a binary, a JAR or a CMS blob and ship it. The provider already
// holds the certificate, so it verifies the signature against the certificate's key over the
// digest it asked for. Per platform like hashing: OpenSSL on Linux and macOS
// (signature_check_openssl.cc), BCrypt on Windows (signature_check_bcrypt.cc).
#pragma once

#include "signum/core/bytes.h"
#include "signum/core/status.h"
#include "signum/provider/provider_certificate.h"
#include "signum/provider/signer.h"

namespace signum::provider {

// OK when `signature` (raw: PKCS#1 v1.5 / PSS octets, ECDSA r||s) verifies over request.digest
// with the certificate's public key. Otherwise kDataLoss naming the certificate, the scheme and
// what failed (PKCS#11 CKR_DEVICE_ERROR, CNG NTE_INTERNAL_ERROR): never handed to the caller.
Status CheckReturnedSignature(const ProviderCertificate& certificate, const DigestToSign& request,
                              ByteView signature);

// The per-platform half (signature_check_openssl.cc, signature_check_bcrypt.cc): true when the
// signature verifies, false when it does not, an error when it cannot be checked at all.
Result<bool> SignatureVerifiesWithCertificateKey(const ProviderCertificate& certificate,
                                                 const DigestToSign& request, ByteView signature);

}  // namespace signum::provider

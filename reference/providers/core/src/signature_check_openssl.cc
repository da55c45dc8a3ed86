// SignatureVerifiesWithCertificateKey on Linux and macOS: core's PublicKey and
// VerifyDigestSignature, which work in a library context of Signum's own. The provider runs inside
// other programs' processes, and an OpenSSL host may have set an engine as its default RSA/EC
// implementation (openssl -engine pkcs11, libp11): in the default context the check would go
// through that engine, i.e. back into this very module, or fail (see PublicKey in crypto.h).
#include "signum/core/crypto.h"
#include "signum/provider/signature_check.h"

namespace signum::provider {

Result<bool> SignatureVerifiesWithCertificateKey(const ProviderCertificate& certificate,
                                                 const DigestToSign& request, ByteView signature) {
  auto key = PublicKey::FromSpkiDer(certificate.certificate.SpkiDer());
  if (!key.ok()) return key.status().WithContext("OpenSSL cannot read the certificate's key");
  const Status verified = VerifyDigestSignature(*key, request.scheme, request.hash, request.digest,
                                                signature, request.pss_salt_length);
  // kInvalidArgument is OpenSSL's "does not verify" (wrong bytes or length); anything else means
  // the check itself could not run.
  if (verified.ok()) return true;
  if (verified.code() == ErrorCode::kInvalidArgument) return false;
  return verified;
}

}  // namespace signum::provider

// CheckReturnedSignature on Linux and macOS: OpenSSL through signum_core's verifier (the same one
// the tests use as the independent judge).
#include "signum/core/crypto.h"
#include "signum/provider/signature_check.h"

namespace signum::provider {

Status CheckReturnedSignature(const ProviderCertificate& certificate, const DigestToSign& request,
                              ByteView signature) {
  const PublicKeyComponents& key = certificate.components;
  Result<PublicKey> public_key =
      certificate.key_spec.type == KeyType::kRsa
          ? PublicKey::FromRsaComponents(key.rsa_modulus, key.rsa_public_exponent)
          : PublicKey::FromEcPoint(certificate.key_spec.curve, key.ec_point);
  const std::string what = std::string(SchemeName(request.scheme)) + "/" +
                           std::string(HashName(request.hash)) + " signature for '" +
                           certificate.label + "'";
  if (!public_key.ok()) {
    return DataLossError("cannot check the " + what + ": the certificate's key: " +
                         public_key.status().message());
  }
  Status verified = VerifyDigestSignature(*public_key, request.scheme, request.hash,
                                          request.digest, signature, request.pss_salt_length);
  if (!verified.ok()) {
    return DataLossError("signum-agent returned a " + what +
                         " that does not verify with the certificate's key (" +
                         verified.message() +
                         "); not returned to the caller. Is the process on the agent's socket "
                         "really signum-agent?");
  }
  return Status::Ok();
}

}  // namespace signum::provider

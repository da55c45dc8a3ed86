// CheckReturnedSignature: what a failed check means, worded once for every platform; the check
// itself is per platform (SignatureVerifiesWithCertificateKey).
#include "signum/provider/signature_check.h"

#include <string>

namespace signum::provider {

Status CheckReturnedSignature(const ProviderCertificate& certificate, const DigestToSign& request,
                              ByteView signature) {
  const std::string what = std::string(SchemeName(request.scheme)) + "/" +
                           std::string(HashName(request.hash)) + " signature for '" +
                           certificate.label + "'";
  Result<bool> verifies = SignatureVerifiesWithCertificateKey(certificate, request, signature);
  if (!verifies.ok()) {
    return DataLossError("cannot check the " + what + ": " + verifies.status().message());
  }
  if (!*verifies) {
    return DataLossError("signum-agent returned a " + what +
                         " that does not verify with the certificate's key; not returned to the "
                         "caller. Is the process at the agent's endpoint really signum-agent?");
  }
  return Status::Ok();
}

}  // namespace signum::provider

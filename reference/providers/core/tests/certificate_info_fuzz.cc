// libFuzzer target for the providers' own DER reading: certificates and public keys arrive from
// the agent and are parsed inside every signing tool's process, on every platform (see
// reference/core/CMakeLists.txt for how SIGNUM_FUZZ targets are built).
#include <cstddef>
#include <cstdint>

#include "signum/provider/certificate_info.h"
#include "signum/provider/public_key_components.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const signum::ByteView input(data, size);
  auto certificate = signum::provider::CertificateInfo::FromDer(input);
  if (certificate.ok()) {
    (void)certificate->Subject();
    (void)certificate->Issuer();
    (void)certificate->SubjectCommonName();
    (void)signum::provider::ParseSubjectPublicKeyInfo(certificate->SpkiDer());
  }
  (void)signum::provider::ParseSubjectPublicKeyInfo(input);
  (void)signum::provider::NameToString(input);
  return 0;
}

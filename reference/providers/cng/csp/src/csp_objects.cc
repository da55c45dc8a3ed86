#include "csp_objects.h"

// bcrypt.h needs windows.h's types first (csp_objects.h).
#include <bcrypt.h>

#include <algorithm>
#include <cstring>
#include <iterator>

#include "signum/cng/names.h"
#include "signum/cng/provider_runtime.h"
#include "signum/cng/rsa_public_key.h"
#include "signum/provider/provider_context.h"
#include "signum/provider/wide_string.h"

namespace signum::cng::csp {
namespace {

constexpr DWORD kRsa1Magic = 0x31415352;  // "RSA1": RSAPUBKEY of a public key blob

}  // namespace

bool IsSupportedProviderType(DWORD type) {
  return std::any_of(std::begin(kCspRegistrations), std::end(kCspRegistrations),
                     [type](const CspRegistration& registration) { return registration.type == type; });
}

std::string RegisteredNameForType(DWORD type) {
  for (const CspRegistration& registration : kCspRegistrations) {
    if (registration.type == type) return provider::Utf8FromWide(registration.name);  // ASCII
  }
  return provider::Utf8FromWide(kCspName);
}

Result<Bytes> Hash::ValueLocked() {
  if (!value) {
    if (!running) return InternalError("hash has neither a value nor a running digest");
    SIGNUM_ASSIGN_OR_RETURN(Bytes digest, running->Finish());
    running.reset();
    value = std::move(digest);
  }
  return *value;
}

std::string ContainerNameWithoutPin(std::string_view container) {
  constexpr std::string_view kPinStart = "[{{";
  constexpr std::string_view kPinEnd = "}}]=";
  if (container.starts_with(kPinStart)) {
    const size_t end = container.find(kPinEnd, kPinStart.size());
    if (end != std::string_view::npos) container.remove_prefix(end + kPinEnd.size());
  }
  return std::string(container);
}

Result<std::shared_ptr<const provider::ProviderCertificate>> ResolveContainer(
    std::string_view container) {
  provider::ProviderContext& context = SharedProviderContext(kCspClientName);
  if (container.empty()) {
    SIGNUM_ASSIGN_OR_RETURN(auto certificates, context.Certificates());
    auto keys = WindowsKeys(*certificates);
    if (keys.empty()) {
      return NotFoundError("the agent lists no RSA certificate for the default container");
    }
    return keys.front();
  }
  return FindWindowsKey(context, container);
}

Result<std::vector<std::string>> ContainerNames() {
  SIGNUM_ASSIGN_OR_RETURN(auto certificates, SharedProviderContext(kCspClientName).Certificates());
  std::vector<std::string> names;
  for (const auto& key : WindowsKeys(*certificates)) names.push_back(key->id);
  return names;
}

Result<Bytes> RsaPublicKeyBlob(const provider::ProviderCertificate& certificate) {
  const provider::PublicKeyComponents& key = certificate.components;
  if (certificate.key_spec.type != KeyType::kRsa || key.rsa_modulus.empty()) {
    return InvalidArgumentError("not an RSA key");
  }
  const size_t modulus_size = certificate.key_spec.SignatureSize();
  if (key.rsa_modulus.size() > modulus_size) {
    return InvalidArgumentError("the modulus is longer than the key size");
  }
  // The exponent without leading zeros must fit RSAPUBKEY.pubexp.
  auto exponent_begin = std::find_if(key.rsa_public_exponent.begin(), key.rsa_public_exponent.end(),
                                     [](uint8_t b) { return b; });
  if (key.rsa_public_exponent.end() - exponent_begin > 4) {
    return InvalidArgumentError("the public exponent does not fit a PUBLICKEYBLOB");
  }
  DWORD exponent = 0;
  for (auto it = exponent_begin; it != key.rsa_public_exponent.end(); ++it) {
    exponent = (exponent << 8) | *it;
  }

  BLOBHEADER header{};
  header.bType = PUBLICKEYBLOB;
  header.bVersion = CUR_BLOB_VERSION;
  header.reserved = 0;
  header.aiKeyAlg = CALG_RSA_SIGN;
  RSAPUBKEY rsa{};
  rsa.magic = kRsa1Magic;
  rsa.bitlen = static_cast<DWORD>(certificate.key_spec.rsa_bits);
  rsa.pubexp = exponent;

  Bytes blob(sizeof(header) + sizeof(rsa) + modulus_size, 0);
  std::memcpy(blob.data(), &header, sizeof(header));
  std::memcpy(blob.data() + sizeof(header), &rsa, sizeof(rsa));
  // CryptoAPI stores integers little-endian; the missing high bytes stay zero.
  std::reverse_copy(key.rsa_modulus.begin(), key.rsa_modulus.end(),
                    blob.begin() + sizeof(header) + sizeof(rsa));
  return blob;
}

Status VerifyRsaPkcs1(const provider::ProviderCertificate& certificate, HashAlgorithm hash,
                      ByteView digest, ByteView signature) {
  const provider::PublicKeyComponents& key = certificate.components;
  if (certificate.key_spec.type != KeyType::kRsa) return InvalidArgumentError("not an RSA key");
  const std::string_view algorithm_id = GetHashInfo(hash).cng_algorithm_id;
  if (algorithm_id.empty()) return UnimplementedError("no CNG name for this hash");
  const std::wstring wide_algorithm_id(algorithm_id.begin(), algorithm_id.end());  // ASCII
  BCRYPT_PKCS1_PADDING_INFO padding{wide_algorithm_id.c_str()};
  SIGNUM_ASSIGN_OR_RETURN(bool verified, VerifyRsaSignature(key, &padding, BCRYPT_PAD_PKCS1,
                                                            digest, signature));
  if (!verified) return InvalidArgumentError("signature does not verify");
  return Status::Ok();
}

const std::vector<CspAlgorithm>& CspAlgorithms() {
  static const std::vector<CspAlgorithm> algorithms = [] {
    std::vector<CspAlgorithm> list;
    for (const HashInfo& hash : AllHashes()) {
      if (hash.capi_alg_id == 0 || hash.cng_algorithm_id.size() < 4) continue;
      // "SHA256" -> "SHA-256", as Microsoft's providers name them.
      const std::string name = "SHA-" + std::string(hash.cng_algorithm_id.substr(3));
      const DWORD bits = static_cast<DWORD>(hash.digest_size * 8);
      list.push_back(
          {hash.capi_alg_id, bits, bits, bits, name, "Secure Hash Algorithm (" + name + ")"});
    }
    DWORD min_bits = 0, max_bits = 0;
    for (const KeySpec& spec : SupportedKeySpecs()) {
      if (spec.type != KeyType::kRsa) continue;
      const DWORD bits = static_cast<DWORD>(spec.rsa_bits);
      min_bits = min_bits == 0 ? bits : std::min(min_bits, bits);
      max_bits = std::max(max_bits, bits);
    }
    list.push_back({CALG_RSA_SIGN, min_bits, min_bits, max_bits, "RSA_SIGN", "RSA Signature"});
    return list;
  }();
  return algorithms;
}

}  // namespace signum::cng::csp

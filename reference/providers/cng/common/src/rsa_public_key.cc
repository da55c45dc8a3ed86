#include "signum/cng/rsa_public_key.h"

// A block of its own: bcrypt.h needs windows.h's types.
#include <bcrypt.h>

#include <bit>
#include <cstring>

namespace signum::cng {
namespace {

constexpr NTSTATUS kStatusInvalidSignature = static_cast<NTSTATUS>(0xC000A000L);
constexpr NTSTATUS kStatusNotSupported = static_cast<NTSTATUS>(0xC00000BBL);

}  // namespace

Result<Bytes> BuildRsaPublicBlob(const provider::PublicKeyComponents& components) {
  const Bytes& modulus = components.rsa_modulus;
  const Bytes& exponent = components.rsa_public_exponent;
  if (components.spec.type != KeyType::kRsa || modulus.empty() || exponent.empty() ||
      modulus.front() == 0) {
    return InvalidArgumentError("not an RSA public key");
  }
  BCRYPT_RSAKEY_BLOB header{};
  header.Magic = BCRYPT_RSAPUBLIC_MAGIC;
  // The exact bit length of the modulus (no leading zero byte: public_key_components.h).
  header.BitLength = static_cast<ULONG>((modulus.size() - 1) * 8 + std::bit_width(modulus.front()));
  header.cbPublicExp = static_cast<ULONG>(exponent.size());
  header.cbModulus = static_cast<ULONG>(modulus.size());
  Bytes blob(sizeof(header) + exponent.size() + modulus.size());
  std::memcpy(blob.data(), &header, sizeof(header));
  std::memcpy(blob.data() + sizeof(header), exponent.data(), exponent.size());
  std::memcpy(blob.data() + sizeof(header) + exponent.size(), modulus.data(), modulus.size());
  return blob;
}

Result<bool> VerifyRsaSignature(const provider::PublicKeyComponents& components,
                                const void* padding_info, ULONG padding_flag, ByteView hash,
                                ByteView signature) {
  SIGNUM_ASSIGN_OR_RETURN(Bytes blob, BuildRsaPublicBlob(components));
  BCRYPT_ALG_HANDLE algorithm = nullptr;
  if (!BCRYPT_SUCCESS(BCryptOpenAlgorithmProvider(&algorithm, BCRYPT_RSA_ALGORITHM, nullptr, 0))) {
    return InternalError("BCryptOpenAlgorithmProvider(RSA) failed");
  }
  BCRYPT_KEY_HANDLE key = nullptr;
  NTSTATUS status = BCryptImportKeyPair(algorithm, nullptr, BCRYPT_RSAPUBLIC_BLOB, &key,
                                        blob.data(), static_cast<ULONG>(blob.size()), 0);
  if (BCRYPT_SUCCESS(status)) {
    status = BCryptVerifySignature(key, const_cast<void*>(padding_info),
                                   const_cast<PUCHAR>(hash.data()), static_cast<ULONG>(hash.size()),
                                   const_cast<PUCHAR>(signature.data()),
                                   static_cast<ULONG>(signature.size()), padding_flag);
    BCryptDestroyKey(key);
  }
  BCryptCloseAlgorithmProvider(algorithm, 0);
  if (BCRYPT_SUCCESS(status)) return true;
  if (status == kStatusInvalidSignature) return false;
  if (status == kStatusNotSupported) {
    return UnimplementedError("BCrypt does not verify this padding or hash");
  }
  return InvalidArgumentError("BCryptVerifySignature rejected the padding info or hash");
}

}  // namespace signum::cng

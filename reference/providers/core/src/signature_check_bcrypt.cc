// SignatureVerifiesWithCertificateKey on Windows: BCrypt, from the public key components the provider already
// parsed out of the certificate (the KSP/CSP bring no crypto library into their host processes).
#include <windows.h>
// bcrypt.h needs windows.h's types first.
#include <bcrypt.h>

#include <cstdio>
#include <cstring>
#include <string>

#include "signum/provider/signature_check.h"
#include "signum/provider/wide_string.h"

namespace signum::provider {
namespace {

bool Ok(NTSTATUS status) { return status >= 0; }

std::string NtStatusText(NTSTATUS status) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "NTSTATUS 0x%08lx", static_cast<unsigned long>(status));
  return buf;
}

void Append(Bytes& out, const void* data, size_t size) {
  const auto* p = static_cast<const uint8_t*>(data);
  out.insert(out.end(), p, p + size);
}

// BCRYPT_RSAPUBLIC_BLOB: header, exponent, modulus (big-endian).
Bytes RsaPublicBlob(const PublicKeyComponents& key, size_t bits) {
  BCRYPT_RSAKEY_BLOB header{};
  header.Magic = BCRYPT_RSAPUBLIC_MAGIC;
  header.BitLength = static_cast<ULONG>(bits);
  header.cbPublicExp = static_cast<ULONG>(key.rsa_public_exponent.size());
  header.cbModulus = static_cast<ULONG>(key.rsa_modulus.size());
  Bytes blob;
  Append(blob, &header, sizeof header);
  Append(blob, key.rsa_public_exponent.data(), key.rsa_public_exponent.size());
  Append(blob, key.rsa_modulus.data(), key.rsa_modulus.size());
  return blob;
}

struct EcdsaNames {
  const wchar_t* algorithm;
  ULONG public_magic;
};
Result<EcdsaNames> EcdsaNamesFor(EcCurve curve) {
  switch (curve) {
    case EcCurve::kP256:
      return EcdsaNames{BCRYPT_ECDSA_P256_ALGORITHM, BCRYPT_ECDSA_PUBLIC_P256_MAGIC};
    case EcCurve::kP384:
      return EcdsaNames{BCRYPT_ECDSA_P384_ALGORITHM, BCRYPT_ECDSA_PUBLIC_P384_MAGIC};
    case EcCurve::kP521:
      return EcdsaNames{BCRYPT_ECDSA_P521_ALGORITHM, BCRYPT_ECDSA_PUBLIC_P521_MAGIC};
  }
  return UnimplementedError("no BCrypt ECDSA algorithm for this curve");
}

// BCRYPT_ECCPUBLIC_BLOB: header, X, Y (each the field size) from the point 04||X||Y.
Result<Bytes> EcPublicBlob(const PublicKeyComponents& key, EcCurve curve, ULONG magic) {
  const size_t field = GetCurveInfo(curve).field_size;
  if (key.ec_point.size() != 1 + 2 * field || key.ec_point[0] != 0x04) {
    return InvalidArgumentError("the certificate's EC point is not an uncompressed point");
  }
  BCRYPT_ECCKEY_BLOB header{};
  header.dwMagic = magic;
  header.cbKey = static_cast<ULONG>(field);
  Bytes blob;
  Append(blob, &header, sizeof header);
  Append(blob, key.ec_point.data() + 1, 2 * field);
  return blob;
}

class KeyHandles {
 public:
  ~KeyHandles() {
    if (key != nullptr) BCryptDestroyKey(key);
    if (algorithm != nullptr) BCryptCloseAlgorithmProvider(algorithm, 0);
  }
  BCRYPT_ALG_HANDLE algorithm = nullptr;
  BCRYPT_KEY_HANDLE key = nullptr;
};

}  // namespace

Result<bool> SignatureVerifiesWithCertificateKey(const ProviderCertificate& certificate,
                                                 const DigestToSign& request, ByteView signature) {
  auto cannot_check = [](const std::string& why) { return InternalError(why); };
  const bool rsa = certificate.key_spec.type == KeyType::kRsa;
  KeyHandles handles;
  Bytes blob;
  const wchar_t* blob_type = rsa ? BCRYPT_RSAPUBLIC_BLOB : BCRYPT_ECCPUBLIC_BLOB;
  const wchar_t* algorithm = BCRYPT_RSA_ALGORITHM;
  if (rsa) {
    blob = RsaPublicBlob(certificate.components, certificate.key_spec.rsa_bits);
  } else {
    auto names = EcdsaNamesFor(certificate.key_spec.curve);
    if (!names.ok()) return cannot_check(names.status().message());
    algorithm = names->algorithm;
    auto ec_blob = EcPublicBlob(certificate.components, certificate.key_spec.curve,
                                names->public_magic);
    if (!ec_blob.ok()) return cannot_check(ec_blob.status().message());
    blob = std::move(*ec_blob);
  }
  NTSTATUS status = BCryptOpenAlgorithmProvider(&handles.algorithm, algorithm, nullptr, 0);
  if (!Ok(status)) return cannot_check("BCryptOpenAlgorithmProvider: " + NtStatusText(status));
  status = BCryptImportKeyPair(handles.algorithm, nullptr, blob_type, &handles.key, blob.data(),
                               static_cast<ULONG>(blob.size()), 0);
  if (!Ok(status)) return cannot_check("BCryptImportKeyPair: " + NtStatusText(status));

  Bytes input(request.digest.begin(), request.digest.end());
  void* padding = nullptr;
  ULONG flags = 0;
  BCRYPT_PKCS1_PADDING_INFO pkcs1{nullptr};
  BCRYPT_PSS_PADDING_INFO pss{nullptr, 0};
  std::wstring hash_id;
  if (request.scheme == SignatureScheme::kRsaPkcs1) {
    // With the hash named where BCrypt has it (Wine's bcrypt requires it); SHA-224 only as a
    // whole DigestInfo with no algorithm named.
    const HashInfo& hash = GetHashInfo(request.hash);
    if (!hash.cng_algorithm_id.empty()) {
      hash_id = WideFromUtf8(hash.cng_algorithm_id);
      pkcs1.pszAlgId = hash_id.c_str();
    } else {
      auto digest_info = BuildDigestInfo(request.hash, request.digest);
      if (!digest_info.ok()) return cannot_check(digest_info.status().message());
      input = std::move(*digest_info);
    }
    padding = &pkcs1;
    flags = BCRYPT_PAD_PKCS1;
  } else if (request.scheme == SignatureScheme::kRsaPss) {
    const HashInfo& hash = GetHashInfo(request.hash);
    if (hash.cng_algorithm_id.empty()) {
      return cannot_check(std::string(hash.name) + " is not available from Windows BCrypt");
    }
    hash_id = WideFromUtf8(hash.cng_algorithm_id);
    pss.pszAlgId = hash_id.c_str();
    pss.cbSalt = static_cast<ULONG>(request.pss_salt_length.value_or(hash.digest_size));
    padding = &pss;
    flags = BCRYPT_PAD_PSS;
  }
  status = BCryptVerifySignature(handles.key, padding, input.data(),
                                 static_cast<ULONG>(input.size()),
                                 const_cast<uint8_t*>(signature.data()),
                                 static_cast<ULONG>(signature.size()), flags);
  // STATUS_INVALID_SIGNATURE (and, for a wrong length, STATUS_INVALID_PARAMETER): does not verify.
  return Ok(status);
}

}  // namespace signum::provider

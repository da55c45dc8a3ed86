#include "signum/provider/public_key_components.h"

#include <algorithm>
#include <string>

#include "signum/provider/der_reader.h"

namespace signum::provider {
namespace {

// OBJECT IDENTIFIER contents (RFC 8017 A.1 rsaEncryption, RFC 5480 id-ecPublicKey).
constexpr uint8_t kRsaEncryption[] = {0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01};
constexpr uint8_t kIdEcPublicKey[] = {0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01};

bool Equals(ByteView a, ByteView b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin());
}

size_t BitLength(const Bytes& big_endian) {
  if (big_endian.empty()) return 0;
  size_t bits = (big_endian.size() - 1) * 8;
  for (uint8_t top = big_endian[0]; top != 0; top >>= 1) ++bits;
  return bits;
}

}  // namespace

Result<PublicKeyComponents> ParseSubjectPublicKeyInfo(ByteView spki_der) {
  if (spki_der.empty()) return InvalidArgumentError("empty SubjectPublicKeyInfo");
  // SubjectPublicKeyInfo ::= SEQUENCE { algorithm AlgorithmIdentifier, subjectPublicKey BIT STRING }
  DerReader top(spki_der);
  SIGNUM_ASSIGN_OR_RETURN(DerElement spki, top.Expect(der::kSequence, "SubjectPublicKeyInfo"));
  SIGNUM_RETURN_IF_ERROR(top.ExpectEnd("SubjectPublicKeyInfo"));
  DerReader fields(spki.content);
  SIGNUM_ASSIGN_OR_RETURN(DerElement algorithm,
                          fields.Expect(der::kSequence, "SubjectPublicKeyInfo algorithm"));
  SIGNUM_ASSIGN_OR_RETURN(DerElement bits,
                          fields.Expect(der::kBitString, "SubjectPublicKeyInfo key"));
  SIGNUM_RETURN_IF_ERROR(fields.ExpectEnd("SubjectPublicKeyInfo"));
  if (bits.content.size() < 2 || bits.content[0] != 0) {
    return InvalidArgumentError("SubjectPublicKeyInfo has no key");
  }
  const ByteView key = bits.content.subspan(1);  // whole octets: no unused bits

  DerReader alg(algorithm.content);
  SIGNUM_ASSIGN_OR_RETURN(DerElement oid,
                          alg.Expect(der::kObjectIdentifier, "public key algorithm"));
  PublicKeyComponents out;
  if (Equals(oid.content, kRsaEncryption)) {
    // Parameters are NULL (or, tolerated, absent).
    if (!alg.empty()) SIGNUM_RETURN_IF_ERROR(alg.Expect(der::kNull, "RSA parameters").status());
    SIGNUM_RETURN_IF_ERROR(alg.ExpectEnd("RSA algorithm"));
    // RSAPublicKey ::= SEQUENCE { modulus INTEGER, publicExponent INTEGER } (RFC 8017 A.1.1)
    DerReader key_reader(key);
    SIGNUM_ASSIGN_OR_RETURN(DerElement seq,
                            key_reader.Expect(der::kSequence, "RSA public key"));
    SIGNUM_RETURN_IF_ERROR(key_reader.ExpectEnd("RSA public key"));
    DerReader ints(seq.content);
    SIGNUM_ASSIGN_OR_RETURN(DerElement n, ints.Expect(der::kInteger, "RSA modulus"));
    SIGNUM_ASSIGN_OR_RETURN(DerElement e, ints.Expect(der::kInteger, "RSA exponent"));
    SIGNUM_RETURN_IF_ERROR(ints.ExpectEnd("RSA public key"));
    SIGNUM_ASSIGN_OR_RETURN(out.rsa_modulus, PositiveIntegerBytes(n, "RSA public key: modulus"));
    SIGNUM_ASSIGN_OR_RETURN(out.rsa_public_exponent,
                            PositiveIntegerBytes(e, "RSA public key: exponent"));
    out.spec.type = KeyType::kRsa;
    out.spec.rsa_bits = static_cast<int>(BitLength(out.rsa_modulus));
    return out;
  }
  if (Equals(oid.content, kIdEcPublicKey)) {
    if (alg.PeekTag() != der::kObjectIdentifier) {
      return InvalidArgumentError("EC key without a named curve");
    }
    SIGNUM_ASSIGN_OR_RETURN(DerElement curve_oid, alg.Next("EC curve"));
    SIGNUM_RETURN_IF_ERROR(alg.ExpectEnd("EC algorithm"));
    std::optional<EcCurve> curve = CurveFromParamsDer(curve_oid.encoding);
    if (!curve) return InvalidArgumentError("EC key on a curve Signum does not support");
    const size_t field = GetCurveInfo(*curve).field_size;
    if (key.size() != 1 + 2 * field || key[0] != 0x04) {
      return InvalidArgumentError("EC public key is not an uncompressed point on " +
                                  std::string(GetCurveInfo(*curve).name));
    }
    out.spec.type = KeyType::kEc;
    out.spec.curve = *curve;
    out.ec_point.assign(key.begin(), key.end());
    return out;
  }
  auto name = ObjectIdentifierToString(oid.content);
  return InvalidArgumentError("unsupported public key algorithm " +
                              (name.ok() ? *name : std::string("(malformed OID)")));
}

}  // namespace signum::provider

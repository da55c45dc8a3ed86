#include "signum/provider/public_key_components.h"

#include <openssl/asn1.h>
#include <openssl/bn.h>
#include <openssl/objects.h>
#include <openssl/x509.h>

#include <climits>
#include <memory>

namespace signum::provider {
namespace {

struct X509PubkeyDeleter {
  void operator()(X509_PUBKEY* p) const { X509_PUBKEY_free(p); }
};
struct AsnSequenceDeleter {
  void operator()(ASN1_SEQUENCE_ANY* p) const { sk_ASN1_TYPE_pop_free(p, ASN1_TYPE_free); }
};
struct BnDeleter {
  void operator()(BIGNUM* p) const { BN_free(p); }
};

Result<Bytes> IntegerBytes(const ASN1_TYPE* t, const char* what) {
  if (t == nullptr || t->type != V_ASN1_INTEGER) {
    return InvalidArgumentError(std::string("RSA public key: ") + what + " is not an INTEGER");
  }
  std::unique_ptr<BIGNUM, BnDeleter> bn(ASN1_INTEGER_to_BN(t->value.integer, nullptr));
  if (!bn || BN_is_negative(bn.get()) || BN_is_zero(bn.get())) {
    return InvalidArgumentError(std::string("RSA public key: bad ") + what);
  }
  Bytes out(static_cast<size_t>(BN_num_bytes(bn.get())));
  BN_bn2bin(bn.get(), out.data());
  return out;
}

size_t BitLength(const Bytes& big_endian) {
  if (big_endian.empty()) return 0;
  size_t bits = (big_endian.size() - 1) * 8;
  for (uint8_t top = big_endian[0]; top != 0; top >>= 1) ++bits;
  return bits;
}

}  // namespace

Result<PublicKeyComponents> ParseSubjectPublicKeyInfo(ByteView spki_der) {
  if (spki_der.empty() || spki_der.size() > INT_MAX) {
    return InvalidArgumentError("empty SubjectPublicKeyInfo");
  }
  const unsigned char* p = spki_der.data();
  std::unique_ptr<X509_PUBKEY, X509PubkeyDeleter> spki(
      d2i_X509_PUBKEY(nullptr, &p, static_cast<long>(spki_der.size())));
  if (!spki) return InvalidArgumentError("SubjectPublicKeyInfo does not parse");
  ASN1_OBJECT* algorithm = nullptr;
  const unsigned char* key = nullptr;
  int key_len = 0;
  X509_ALGOR* algor = nullptr;
  if (X509_PUBKEY_get0_param(&algorithm, &key, &key_len, &algor, spki.get()) != 1 ||
      key == nullptr || key_len <= 0) {
    return InvalidArgumentError("SubjectPublicKeyInfo has no key");
  }
  PublicKeyComponents out;
  const int nid = OBJ_obj2nid(algorithm);
  if (nid == NID_rsaEncryption) {
    // RSAPublicKey ::= SEQUENCE { modulus INTEGER, publicExponent INTEGER } (RFC 8017 A.1.1)
    const unsigned char* q = key;
    std::unique_ptr<ASN1_SEQUENCE_ANY, AsnSequenceDeleter> seq(
        d2i_ASN1_SEQUENCE_ANY(nullptr, &q, key_len));
    if (!seq || sk_ASN1_TYPE_num(seq.get()) != 2) {
      return InvalidArgumentError("RSA public key is not SEQUENCE { n, e }");
    }
    SIGNUM_ASSIGN_OR_RETURN(out.rsa_modulus,
                            IntegerBytes(sk_ASN1_TYPE_value(seq.get(), 0), "modulus"));
    SIGNUM_ASSIGN_OR_RETURN(out.rsa_public_exponent,
                            IntegerBytes(sk_ASN1_TYPE_value(seq.get(), 1), "exponent"));
    out.spec.type = KeyType::kRsa;
    out.spec.rsa_bits = static_cast<int>(BitLength(out.rsa_modulus));
    return out;
  }
  if (nid == NID_X9_62_id_ecPublicKey) {
    int param_type = 0;
    const void* param = nullptr;
    X509_ALGOR_get0(nullptr, &param_type, &param, algor);
    if (param_type != V_ASN1_OBJECT || param == nullptr) {
      return InvalidArgumentError("EC key without a named curve");
    }
    unsigned char* params_der = nullptr;
    const int params_len = i2d_ASN1_OBJECT(static_cast<const ASN1_OBJECT*>(param), &params_der);
    if (params_len <= 0) return InvalidArgumentError("EC curve OID does not encode");
    const Bytes params(params_der, params_der + params_len);
    OPENSSL_free(params_der);
    std::optional<EcCurve> curve = CurveFromParamsDer(params);
    if (!curve) return InvalidArgumentError("EC key on a curve Signum does not support");
    const size_t field = GetCurveInfo(*curve).field_size;
    if (static_cast<size_t>(key_len) != 1 + 2 * field || key[0] != 0x04) {
      return InvalidArgumentError("EC public key is not an uncompressed point on " +
                                  std::string(GetCurveInfo(*curve).name));
    }
    out.spec.type = KeyType::kEc;
    out.spec.curve = *curve;
    out.ec_point.assign(key, key + key_len);
    return out;
  }
  return InvalidArgumentError("unsupported public key algorithm " +
                              std::string(nid == NID_undef ? "(unknown)" : OBJ_nid2sn(nid)));
}

}  // namespace signum::provider

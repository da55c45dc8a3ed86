// The CryptoTokenKit and Security.framework names and values the CTK provider needs, written from
// Apple's public documentation (developer.apple.com: "TKError.Code", "TKTokenOperation",
// "SecKeyAlgorithm", "TKTokenKeychainKey.keyType") — never copied from the SDK's headers, which
// do not exist on the machines that build and test the portable core. The macOS layer
// (reference/providers/ctk/macos) maps these to the SDK's own symbols; the portable core and the
// Linux conformance driver use them as they are.
#pragma once

#include <string_view>

namespace signum::ctk {

// TKErrorCode (NS_ERROR_ENUM in TKErrorDomain, NSInteger). The documented values.
enum class TkErrorCode : long {
  kNotImplemented = -1,
  kCommunicationError = -2,
  kCorruptedData = -3,
  kCanceledByUser = -4,
  kAuthenticationFailed = -5,
  kObjectNotFound = -6,
  kTokenNotFound = -7,
  kBadParameter = -8,
  kAuthenticationNeeded = -9,
};

// "TKErrorCodeBadParameter"; unknown values as "TKErrorCode(<n>)".
std::string TkErrorCodeName(TkErrorCode code);

// TKTokenOperation (NSInteger).
enum class TokenOperation : long {
  kNone = 0,
  kReadData = 1,
  kSignData = 2,
  kDecryptData = 3,
  kPerformKeyExchange = 4,
};

// The TKTokenKeychainKey.keyType values a token may declare (kSecAttrKeyTypeRSA,
// kSecAttrKeyTypeECSECPrimeRandom); the macOS layer uses the SDK's constants of these names.
enum class KeychainKeyType { kRsa, kEcSecPrimeRandom };
std::string_view KeychainKeyTypeConstantName(KeychainKeyType type);

// How an algorithm's input reaches the token, which decides what the token does with it.
enum class AlgorithmInput {
  kDigest,           // a digest of exactly the named hash's length (F57: never hashed again)
  kMessage,          // data: the token hashes it (locally; only the digest goes to the agent)
  kDigestInfo,       // RSASignatureDigestPKCS1v15Raw: a DER DigestInfo the caller built
  kAnyLengthDigest,  // ECDSASignatureDigestX962: a digest of any length (X9.62 truncation rules)
  kRawRsa,           // RSASignatureRaw: the caller padded; needs raw RSA, which the server lacks
  kRawEcdsaOutput,   // the RFC 4754 variants: raw r||s out, which Apple deprecated; X9.62 only
  kNotSigning,       // encryption and key exchange: the token's keys only sign
};

enum class AlgorithmKey { kRsa, kEc };
enum class AlgorithmScheme { kNone, kRsaPkcs1, kRsaPss, kEcdsa };
enum class AlgorithmHash { kNone, kSha1, kSha224, kSha256, kSha384, kSha512 };

// Every SecKeyAlgorithm the token is asked about, as X(name-after-kSecKeyAlgorithm, key, scheme,
// hash, input). The constant is "kSecKeyAlgorithm" #name; the macOS layer expands the same list
// into the SDK's CFStringRef symbols, so one list decides both sides. Apple's names, Apple's order.
#define SIGNUM_CTK_SEC_KEY_ALGORITHMS(X)                                      \
  X(RSASignatureRaw, kRsa, kNone, kNone, kRawRsa)                             \
  X(RSASignatureDigestPKCS1v15Raw, kRsa, kRsaPkcs1, kNone, kDigestInfo)       \
  X(RSASignatureDigestPKCS1v15SHA1, kRsa, kRsaPkcs1, kSha1, kDigest)          \
  X(RSASignatureDigestPKCS1v15SHA224, kRsa, kRsaPkcs1, kSha224, kDigest)      \
  X(RSASignatureDigestPKCS1v15SHA256, kRsa, kRsaPkcs1, kSha256, kDigest)      \
  X(RSASignatureDigestPKCS1v15SHA384, kRsa, kRsaPkcs1, kSha384, kDigest)      \
  X(RSASignatureDigestPKCS1v15SHA512, kRsa, kRsaPkcs1, kSha512, kDigest)      \
  X(RSASignatureMessagePKCS1v15SHA1, kRsa, kRsaPkcs1, kSha1, kMessage)        \
  X(RSASignatureMessagePKCS1v15SHA224, kRsa, kRsaPkcs1, kSha224, kMessage)    \
  X(RSASignatureMessagePKCS1v15SHA256, kRsa, kRsaPkcs1, kSha256, kMessage)    \
  X(RSASignatureMessagePKCS1v15SHA384, kRsa, kRsaPkcs1, kSha384, kMessage)    \
  X(RSASignatureMessagePKCS1v15SHA512, kRsa, kRsaPkcs1, kSha512, kMessage)    \
  X(RSASignatureDigestPSSSHA1, kRsa, kRsaPss, kSha1, kDigest)                 \
  X(RSASignatureDigestPSSSHA224, kRsa, kRsaPss, kSha224, kDigest)             \
  X(RSASignatureDigestPSSSHA256, kRsa, kRsaPss, kSha256, kDigest)             \
  X(RSASignatureDigestPSSSHA384, kRsa, kRsaPss, kSha384, kDigest)             \
  X(RSASignatureDigestPSSSHA512, kRsa, kRsaPss, kSha512, kDigest)             \
  X(RSASignatureMessagePSSSHA1, kRsa, kRsaPss, kSha1, kMessage)               \
  X(RSASignatureMessagePSSSHA224, kRsa, kRsaPss, kSha224, kMessage)           \
  X(RSASignatureMessagePSSSHA256, kRsa, kRsaPss, kSha256, kMessage)           \
  X(RSASignatureMessagePSSSHA384, kRsa, kRsaPss, kSha384, kMessage)           \
  X(RSASignatureMessagePSSSHA512, kRsa, kRsaPss, kSha512, kMessage)           \
  X(ECDSASignatureRFC4754, kEc, kEcdsa, kNone, kRawEcdsaOutput)               \
  X(ECDSASignatureDigestX962, kEc, kEcdsa, kNone, kAnyLengthDigest)           \
  X(ECDSASignatureDigestX962SHA1, kEc, kEcdsa, kSha1, kDigest)                \
  X(ECDSASignatureDigestX962SHA224, kEc, kEcdsa, kSha224, kDigest)            \
  X(ECDSASignatureDigestX962SHA256, kEc, kEcdsa, kSha256, kDigest)            \
  X(ECDSASignatureDigestX962SHA384, kEc, kEcdsa, kSha384, kDigest)            \
  X(ECDSASignatureDigestX962SHA512, kEc, kEcdsa, kSha512, kDigest)            \
  X(ECDSASignatureMessageX962SHA1, kEc, kEcdsa, kSha1, kMessage)              \
  X(ECDSASignatureMessageX962SHA224, kEc, kEcdsa, kSha224, kMessage)          \
  X(ECDSASignatureMessageX962SHA256, kEc, kEcdsa, kSha256, kMessage)          \
  X(ECDSASignatureMessageX962SHA384, kEc, kEcdsa, kSha384, kMessage)          \
  X(ECDSASignatureMessageX962SHA512, kEc, kEcdsa, kSha512, kMessage)          \
  X(ECDSASignatureDigestRFC4754SHA256, kEc, kEcdsa, kSha256, kRawEcdsaOutput) \
  X(RSAEncryptionRaw, kRsa, kNone, kNone, kNotSigning)                        \
  X(RSAEncryptionPKCS1, kRsa, kNone, kNone, kNotSigning)                      \
  X(RSAEncryptionOAEPSHA256, kRsa, kNone, kNone, kNotSigning)                 \
  X(ECDHKeyExchangeStandard, kEc, kNone, kNone, kNotSigning)

// One enumerator per SecKeyAlgorithm above, plus kUnknown for any other constant macOS passes.
enum class SecKeyAlgorithm {
#define SIGNUM_CTK_ENUMERATOR(name, key, scheme, hash, input) k##name,
  SIGNUM_CTK_SEC_KEY_ALGORITHMS(SIGNUM_CTK_ENUMERATOR)
#undef SIGNUM_CTK_ENUMERATOR
      kUnknown,
};

}  // namespace signum::ctk

// sha256.h against OpenSSL for random keys and messages of every length around the block and
// padding boundaries (the published vectors are in sha256_test.cc).
#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>

#include <random>

#include "signum/core/encoding.h"
#include "signum/core/sha256.h"

namespace signum {
namespace {

Bytes RandomData(std::mt19937& rng, size_t n) {
  Bytes out(n);
  for (auto& b : out) b = static_cast<uint8_t>(rng());
  return out;
}

TEST(Sha256OpenSslTest, RandomInputsMatchOpenSsl) {
  std::mt19937 rng(20261205);
  for (int round = 0; round < 2000; ++round) {
    // Lengths 0..300 (every boundary) and some larger ones.
    const size_t message_size = round < 301 ? static_cast<size_t>(round) : rng() % 5000;
    const size_t key_size = rng() % 200;
    const Bytes message = RandomData(rng, message_size);
    const Bytes key = RandomData(rng, key_size);

    uint8_t expected_hash[SHA256_DIGEST_LENGTH];
    SHA256(message.data(), message.size(), expected_hash);
    EXPECT_EQ(HexEncode(Sha256Of(message)), HexEncode(ByteView(expected_hash)))
        << "message of " << message_size << " bytes";

    uint8_t expected_mac[EVP_MAX_MD_SIZE];
    unsigned int mac_size = 0;
    ASSERT_NE(HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()), message.data(),
                   message.size(), expected_mac, &mac_size),
              nullptr);
    ASSERT_EQ(mac_size, kSha256Bytes);
    EXPECT_EQ(HexEncode(HmacSha256(key, message)), HexEncode(ByteView(expected_mac, mac_size)))
        << "key of " << key_size << " bytes, message of " << message_size << " bytes";
  }
}

}  // namespace
}  // namespace signum

// SHA-256 and HMAC-SHA256 (sha256.h) against the published vectors: FIPS 180-4's examples (NIST
// CSRC "SHA256.pdf", "SHA2_Additional.pdf") and RFC 4231 §4. Also built into the mingw tree's
// protocol test, so the Windows build's arithmetic is checked too (sha256_openssl_test.cc adds
// random inputs against OpenSSL on Linux).
#include "signum/core/sha256.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <string>

#include "signum/core/encoding.h"

namespace signum {
namespace {

std::string HexOf(const Sha256Digest& d) { return HexEncode(d); }
Bytes Repeat(uint8_t byte, size_t n) { return Bytes(n, byte); }

TEST(Sha256Test, FipsExamples) {
  EXPECT_EQ(HexOf(Sha256Of(AsBytes(""))),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(HexOf(Sha256Of(AsBytes("abc"))),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(HexOf(Sha256Of(AsBytes("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"))),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  EXPECT_EQ(HexOf(Sha256Of(AsBytes(
                "abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopq"
                "klmnopqrlmnopqrsmnopqrstnopqrstu"))),
            "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1");
  EXPECT_EQ(HexOf(Sha256Of(Repeat('a', 1000000))),
            "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

// Padding boundaries: 55 bytes fit one block with the length, 56..63 need a second block.
TEST(Sha256Test, IncrementalUpdatesMatchOneShotAcrossBlockBoundaries) {
  Bytes data;
  for (size_t i = 0; i < 300; ++i) data.push_back(static_cast<uint8_t>(i * 7 + 3));
  for (size_t size : {0, 1, 55, 56, 57, 63, 64, 65, 119, 120, 128, 200, 300}) {
    const ByteView message(data.data(), size);
    const Sha256Digest whole = Sha256Of(message);
    for (size_t step : {1, 3, 63, 64, 65}) {
      Sha256 h;
      for (size_t at = 0; at < size; at += step) {
        h.Update(message.subspan(at, std::min(step, size - at)));
      }
      EXPECT_EQ(HexOf(h.Final()), HexOf(whole)) << "size " << size << " step " << step;
    }
  }
}

TEST(HmacSha256Test, Rfc4231Vectors) {
  // Test case 1
  EXPECT_EQ(HexOf(HmacSha256(Repeat(0x0b, 20), AsBytes("Hi There"))),
            "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");
  // 2: a key shorter than the output
  EXPECT_EQ(HexOf(HmacSha256(AsBytes("Jefe"), AsBytes("what do ya want for nothing?"))),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
  // 3
  EXPECT_EQ(HexOf(HmacSha256(Repeat(0xaa, 20), Repeat(0xdd, 50))),
            "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe");
  // 4
  Bytes key4;
  for (uint8_t b = 0x01; b <= 0x19; ++b) key4.push_back(b);
  EXPECT_EQ(HexOf(HmacSha256(key4, Repeat(0xcd, 50))),
            "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b");
  // 5: truncated to 128 bits
  EXPECT_EQ(HexOf(HmacSha256(Repeat(0x0c, 20), AsBytes("Test With Truncation"))).substr(0, 32),
            "a3b6167473100ee06e0c796c2955552b");
  // 6 and 7: a key longer than the block is hashed first
  EXPECT_EQ(HexOf(HmacSha256(Repeat(0xaa, 131),
                             AsBytes("Test Using Larger Than Block-Size Key - Hash Key First"))),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");
  EXPECT_EQ(HexOf(HmacSha256(
                Repeat(0xaa, 131),
                AsBytes("This is a test using a larger than block-size key and a larger than "
                        "block-size data. The key needs to be hashed before being used by the "
                        "HMAC algorithm."))),
            "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2");
}

TEST(HmacSha256Test, KeyOfExactlyOneBlockIsUsedAsIs) {
  // 64 bytes: padded with nothing, not hashed. Differs from the hashed-key result.
  const Bytes key = Repeat(0x42, 64);
  const Sha256Digest hashed_key = Sha256Of(key);
  EXPECT_NE(HexOf(HmacSha256(key, AsBytes("m"))), HexOf(HmacSha256(hashed_key, AsBytes("m"))));
  // 65 bytes: hashed first, so it equals the HMAC under its hash.
  const Bytes long_key = Repeat(0x42, 65);
  EXPECT_EQ(HexOf(HmacSha256(long_key, AsBytes("m"))),
            HexOf(HmacSha256(Sha256Of(long_key), AsBytes("m"))));
}

TEST(ConstantTimeEqualTest, ComparesContentsAndLength) {
  EXPECT_TRUE(ConstantTimeEqual(AsBytes(""), AsBytes("")));
  EXPECT_TRUE(ConstantTimeEqual(AsBytes("abc"), AsBytes("abc")));
  EXPECT_FALSE(ConstantTimeEqual(AsBytes("abc"), AsBytes("abd")));
  EXPECT_FALSE(ConstantTimeEqual(AsBytes("abc"), AsBytes("xbc")));
  EXPECT_FALSE(ConstantTimeEqual(AsBytes("abc"), AsBytes("abcd")));
}

}  // namespace
}  // namespace signum

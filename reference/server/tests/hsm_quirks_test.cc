// kModuleQuirks (hsm_backend.cc) against the CK_INFO each module really returns from C_GetInfo,
// byte for byte: a row keyed on a name the module never reports is a quirk that silently never
// applies. openCryptoki's row once said library "openCryptoki" while the module says "Meta PKCS11
// LIBRARY", so signum-server called its soft token from several threads at once and crashed in
// libpkcs11_sw.so (docs/conformance-pkcs11.md).
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <string>

#include "hsm_backend.h"

namespace signum::server {
namespace {

// Copies value into a CK_INFO string field, the rest filled with `fill` (' ' is what PKCS#11
// asks for; some modules leave NULs, as openCryptoki does in CK_SLOT_INFO).
template <size_t N>
void Put(CK_UTF8CHAR (&field)[N], const std::string& value, char fill) {
  std::memset(field, fill, N);
  std::memcpy(field, value.data(), std::min(value.size(), N));
}

CK_INFO Info(const std::string& manufacturer, const std::string& description, char fill,
             CK_BYTE major = 1, CK_BYTE minor = 0) {
  CK_INFO info{};
  info.cryptokiVersion = {2, 20};
  Put(info.manufacturerID, manufacturer, fill);
  Put(info.libraryDescription, description, fill);
  info.libraryVersion = {major, minor};
  return info;
}

// libopencryptoki.so 3.8.1 (Debian 3.8.1+dfsg-3.2, behind pkcsslotd), C_GetInfo as it returns it:
// manufacturerID "IBM", libraryDescription "Meta PKCS11 LIBRARY", both space-padded, library
// version 3.8, cryptokiVersion 2.20 (pkcs11-tool -I: "Manufacturer IBM", "Library Meta PKCS11
// LIBRARY (ver 3.8)").
CK_INFO OpenCryptoki381() {
  return Info("IBM", "Meta PKCS11 LIBRARY", ' ', 3, 8);
}

TEST(ModuleQuirks, OpenCryptokiIsCalledOneThreadAtATime) {
  const ModuleQuirks quirks = QuirksFor(OpenCryptoki381());
  EXPECT_EQ(quirks.name, "openCryptoki");
  EXPECT_TRUE(quirks.serialize_calls);
  EXPECT_FALSE(quirks.raw_rsa_sign_needs_decrypt);
  // The same, NUL-filled (as openCryptoki fills its CK_SLOT_INFO strings).
  EXPECT_TRUE(QuirksFor(Info("IBM", "Meta PKCS11 LIBRARY", '\0', 3, 8)).serialize_calls);
}

TEST(ModuleQuirks, WhatFollowsTheFirstNulIsNotPartOfTheString) {
  CK_INFO info = Info("IBM", "Meta PKCS11 LIBRARY", '\0', 3, 8);
  // Garbage after the terminating NUL (a module that only writes the terminator).
  info.manufacturerID[10] = 'x';
  info.libraryDescription[25] = 'y';
  EXPECT_TRUE(QuirksFor(info).serialize_calls);
}

TEST(ModuleQuirks, Tpm2Pkcs11SignsRawRsaThroughDecrypt) {
  // tpm2-pkcs11 pads with spaces; its row takes any library description.
  const ModuleQuirks quirks = QuirksFor(Info("tpm2-software.github.io", "TPM2.0 Cryptoki", ' '));
  EXPECT_EQ(quirks.name, "tpm2-pkcs11");
  EXPECT_TRUE(quirks.raw_rsa_sign_needs_decrypt);
  EXPECT_FALSE(quirks.serialize_calls);
}

TEST(ModuleQuirks, OtherModulesHaveNone) {
  for (const CK_INFO& info : {
           Info("SoftHSM", "Implementation of PKCS11", ' ', 2, 6),
           Info("OpenSC Project", "OpenSC smartcard framework", ' '),
           // Near misses: the manufacturer must match exactly, the description as a prefix.
           Info("IBM Corp.", "Meta PKCS11 LIBRARY", ' '),
           Info("IBM", "openCryptoki", ' '),
           Info("", "", '\0'),
       }) {
    const ModuleQuirks quirks = QuirksFor(info);
    EXPECT_TRUE(quirks.name.empty()) << quirks.name;
    EXPECT_FALSE(quirks.serialize_calls);
    EXPECT_FALSE(quirks.raw_rsa_sign_needs_decrypt);
  }
}

}  // namespace
}  // namespace signum::server

#include "signum/core/command_line_redaction.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace signum::redaction {
namespace {

struct ArgvCase {
  std::vector<std::string> argv;
  std::vector<std::string> redacted;
};

class RedactArgumentsTest : public ::testing::TestWithParam<ArgvCase> {};

TEST_P(RedactArgumentsTest, HidesTheSecretAndKeepsTheFlag) {
  std::vector<std::string> argv = GetParam().argv;
  RedactArguments(argv);
  EXPECT_EQ(argv, GetParam().redacted);
}

INSTANTIATE_TEST_SUITE_P(
    ArgvShapes, RedactArgumentsTest,
    ::testing::Values(
        // pkcs11-tool and friends: separate and '=' forms, short -p only for pkcs11-tool.
        ArgvCase{{"pkcs11-tool", "--login", "--pin", "21531068", "-O"},
                 {"pkcs11-tool", "--login", "--pin", "***", "-O"}},
        ArgvCase{{"/usr/bin/pkcs11-tool", "--pin=21531068", "-O"},
                 {"/usr/bin/pkcs11-tool", "--pin=***", "-O"}},
        ArgvCase{{"pkcs11-tool", "-l", "-p", "1234", "--sign"},
                 {"pkcs11-tool", "-l", "-p", "***", "--sign"}},
        ArgvCase{{"pkcs11-tool", "-p1234", "--sign"}, {"pkcs11-tool", "-p***", "--sign"}},
        ArgvCase{{"ssh", "-p", "2222", "host"}, {"ssh", "-p", "2222", "host"}},
        ArgvCase{{"pkcs11-tool", "--init-pin", "--so-pin", "87654321", "--new-pin=1111"},
                 {"pkcs11-tool", "--init-pin", "--so-pin", "***", "--new-pin=***"}},
        ArgvCase{{"pkcs11-tool", "--change-pin", "--pin", "1", "--new-pin", "2"},
                 {"pkcs11-tool", "--change-pin", "--pin", "***", "--new-pin", "***"}},
        ArgvCase{{"tool", "--so-pin=9", "--pin"}, {"tool", "--so-pin=***", "--pin"}},
        // A value that looks like a flag is still the value, and is not read as a flag.
        ArgvCase{{"tool", "--pin", "--pin", "x"}, {"tool", "--pin", "***", "x"}},
        ArgvCase{{"tool", "--pin", "with space"}, {"tool", "--pin", "***"}},
        ArgvCase{{"tool", "--pinned", "x", "--pin-file", "f"},
                 {"tool", "--pinned", "x", "--pin-file", "f"}},
        // keytool, jarsigner, jsign.
        ArgvCase{{"keytool", "-list", "-storepass", "changeit", "-keypass", "secret"},
                 {"keytool", "-list", "-storepass", "***", "-keypass", "***"}},
        ArgvCase{{"jarsigner", "-keystore", "NONE", "-storetype", "PKCS11", "-storepass", "1234",
                  "app.jar", "alias"},
                 {"jarsigner", "-keystore", "NONE", "-storetype", "PKCS11", "-storepass", "***",
                  "app.jar", "alias"}},
        ArgvCase{{"java", "-jar", "jsign.jar", "--storepass", "1234", "--keypass=5678", "a.exe"},
                 {"java", "-jar", "jsign.jar", "--storepass", "***", "--keypass=***", "a.exe"}},
        ArgvCase{{"jarsigner", "-storepass:env", "PIN_VAR", "a.jar"},
                 {"jarsigner", "-storepass:env", "PIN_VAR", "a.jar"}},
        // openssl and osslsigncode.
        ArgvCase{{"openssl", "pkcs12", "-in", "a.p12", "-passin", "pass:hunter2", "-passout",
                  "pass:x"},
                 {"openssl", "pkcs12", "-in", "a.p12", "-passin", "***", "-passout", "***"}},
        ArgvCase{{"osslsigncode", "sign", "-pkcs11module", "m.so", "-pass", "1234", "-in", "a.exe"},
                 {"osslsigncode", "sign", "-pkcs11module", "m.so", "-pass", "***", "-in", "a.exe"}},
        ArgvCase{{"tool", "--password", "p", "--key-password=k", "--key-password", "k2"},
                 {"tool", "--password", "***", "--key-password=***", "--key-password", "***"}},
        // signtool: /p only there, any case; the executable may be a Windows path.
        ArgvCase{{"C:\\Program Files\\Kits\\signtool.exe", "sign", "/f", "a.pfx", "/p", "pw", "a.exe"},
                 {"C:\\Program Files\\Kits\\signtool.exe", "sign", "/f", "a.pfx", "/p", "***",
                  "a.exe"}},
        ArgvCase{{"SignTool.EXE", "sign", "/P", "pw"}, {"SignTool.EXE", "sign", "/P", "***"}},
        ArgvCase{{"robocopy", "/p", "x"}, {"robocopy", "/p", "x"}},
        // PKCS#11 URIs: path (';') and query ('?', '&') attributes, inside other arguments.
        ArgvCase{{"openssl", "dgst", "-sign", "pkcs11:token=Signum;object=rsa;pin-value=1234"},
                 {"openssl", "dgst", "-sign", "pkcs11:token=Signum;object=rsa;pin-value=***"}},
        ArgvCase{{"cosign", "sign", "--key=pkcs11:object=ec?module-path=/m.so&pin-value=99&x=y"},
                 {"cosign", "sign", "--key=pkcs11:object=ec?module-path=/m.so&pin-value=***&x=y"}},
        ArgvCase{{"tool", "pkcs11:pin-value=1;pin-source=file:/pin.txt;object=a"},
                 {"tool", "pkcs11:pin-value=***;pin-source=***;object=a"}},
        ArgvCase{{"tool", "pkcs11:object=a;xpin-value=1"}, {"tool", "pkcs11:object=a;xpin-value=1"}},
        // Edge shapes: a flag at the end, only argv[0], nothing to hide.
        ArgvCase{{"tool", "--pin"}, {"tool", "--pin"}},
        ArgvCase{{"--pin"}, {"--pin"}},
        ArgvCase{{"signtool", "sign", "/fd", "sha256", "/sha1", "ABCD", "a.exe"},
                 {"signtool", "sign", "/fd", "sha256", "/sha1", "ABCD", "a.exe"}}));

TEST(RedactArguments, EmptyArgvStaysEmpty) {
  std::vector<std::string> argv;
  RedactArguments(argv);
  EXPECT_TRUE(argv.empty());
}

TEST(RedactArguments, RulesAreData) {
  // A table of one's own (e.g. a vendor CLI) works without code changes.
  constexpr SecretArgumentRule kVendorRules[] = {{"vendor-cli", "--hsm-auth", ValueForm::kAfterEquals}};
  std::vector<std::string> argv{"vendor-cli", "--hsm-auth=abc", "--pin", "1"};
  RedactArguments(argv, kVendorRules);
  EXPECT_EQ(argv, (std::vector<std::string>{"vendor-cli", "--hsm-auth=***", "--pin", "1"}));
}

TEST(RedactedCommandLineFromNulSeparated, SplitsRedactsAndJoins) {
  using namespace std::string_literals;
  EXPECT_EQ(RedactedCommandLineFromNulSeparated("pkcs11-tool\0--pin\0" "12 34\0-O\0"s),
            "pkcs11-tool --pin *** -O");
  EXPECT_EQ(RedactedCommandLineFromNulSeparated("a\0\0b"s), "a  b");
  EXPECT_EQ(RedactedCommandLineFromNulSeparated(""s), "");
  EXPECT_EQ(RedactedCommandLineFromNulSeparated("\0\0"s), "");
  EXPECT_EQ(RedactedCommandLineFromNulSeparated("tool\0--pin=1\0"s), "tool --pin=***");
}

TEST(RedactCommandLine, JoinedLinesKeepTheirSpellingAroundTheSecret) {
  EXPECT_EQ(RedactCommandLine("pkcs11-tool --login --pin 21531068 -O"),
            "pkcs11-tool --login --pin *** -O");
  EXPECT_EQ(RedactCommandLine("pkcs11-tool  --pin=1234\t-O "), "pkcs11-tool  --pin=***\t-O ");
  EXPECT_EQ(RedactCommandLine("osslsigncode sign -in a.exe"), "osslsigncode sign -in a.exe");
  EXPECT_EQ(RedactCommandLine(""), "");
}

TEST(RedactCommandLine, WindowsQuotingHidesTheWholeValue) {
  EXPECT_EQ(RedactCommandLine(R"("C:\Program Files\signtool.exe" sign /p "my secret" /fd sha256 a.exe)"),
            R"("C:\Program Files\signtool.exe" sign /p *** /fd sha256 a.exe)");
  EXPECT_EQ(RedactCommandLine(R"(tool "--pin=a b" x)"), R"(tool --pin=*** x)");
  EXPECT_EQ(RedactCommandLine(R"(tool --pin "a\"b c" x)"), R"(tool --pin *** x)");
  EXPECT_EQ(RedactCommandLine(R"(tool --key "pkcs11:object=a b;pin-value=1 2" x)"),
            R"(tool --key "pkcs11:object=a b;pin-value=***" x)");
  // An unterminated quote runs to the end, value included.
  EXPECT_EQ(RedactCommandLine(R"(tool --pin "1234)"), "tool --pin ***");
}

TEST(RedactCommandLine, IsIdempotent) {
  for (const char* line : {"pkcs11-tool --pin 1 -p 2 --so-pin=3", R"(signtool sign /p "a b")",
                           "tool pkcs11:pin-value=1?pin-source=x"}) {
    const std::string once = RedactCommandLine(line);
    EXPECT_EQ(RedactCommandLine(once), once) << line;
  }
  // The agent redacts a claimed line the provider has already redacted from its argv.
  using namespace std::string_literals;
  const std::string from_provider =
      RedactedCommandLineFromNulSeparated("pkcs11-tool\0--pin\0a b\0-p\0" "2\0--so-pin=3"s);
  EXPECT_EQ(from_provider, "pkcs11-tool --pin *** -p *** --so-pin=***");
  EXPECT_EQ(RedactCommandLine(from_provider), from_provider);
}

}  // namespace
}  // namespace signum::redaction

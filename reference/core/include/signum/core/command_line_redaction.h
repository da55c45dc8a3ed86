// Secrets out of the caller's command line before it leaves the client. The command line goes to
// the server with every signature and into its hash-chained audit log, which cannot be redacted
// afterwards; tools happily take PINs and passwords as arguments (pkcs11-tool --pin 1234).
//
// What is redacted is data: kSecretArgumentRules below (documented in docs/agent.md, "Caller
// identity"). A value is replaced by kRedactedValue and its flag is kept, so the audit log still
// shows which tool ran with which options.
#pragma once

#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace signum::redaction {

inline constexpr std::string_view kRedactedValue = "***";

// How a secret follows its flag in argv.
enum class ValueForm {
  kNextArgument,      // --pin 1234        (the whole next argument)
  kAfterEquals,       // --pin=1234        (the text after the first '=')
  kAttached,          // -p1234            (the text after the flag, getopt short option style)
  kUriAttribute,      // pkcs11:...;pin-value=1234  (anywhere in an argument, up to ';' '?' '&')
};

struct SecretArgumentRule {
  std::string_view tool;  // executable basename without ".exe" (case-insensitive); empty = any
  std::string_view flag;  // as typed; for kUriAttribute the attribute name with its '='
  ValueForm form;
  bool ignore_case = false;  // Windows tools (signtool) accept /P as /p
};

// The table. A flag that takes a secret in both "--x v" and "--x=v" forms has two rows.
inline constexpr SecretArgumentRule kSecretArgumentRules[] = {
    // PKCS#11 PINs: pkcs11-tool, p11tool, cosign/sigstore helpers, many vendor CLIs.
    {"", "--pin", ValueForm::kNextArgument},
    {"", "--pin", ValueForm::kAfterEquals},
    {"", "--so-pin", ValueForm::kNextArgument},
    {"", "--so-pin", ValueForm::kAfterEquals},
    {"", "--new-pin", ValueForm::kNextArgument},
    {"", "--new-pin", ValueForm::kAfterEquals},
    {"pkcs11-tool", "-p", ValueForm::kNextArgument},
    {"pkcs11-tool", "-p", ValueForm::kAttached},
    // Passwords: generic, jsign (--storepass/--keypass), keytool/jarsigner (single dash).
    {"", "--password", ValueForm::kNextArgument},
    {"", "--password", ValueForm::kAfterEquals},
    {"", "--key-password", ValueForm::kNextArgument},
    {"", "--key-password", ValueForm::kAfterEquals},
    {"", "--storepass", ValueForm::kNextArgument},
    {"", "--storepass", ValueForm::kAfterEquals},
    {"", "--keypass", ValueForm::kNextArgument},
    {"", "--keypass", ValueForm::kAfterEquals},
    {"", "-storepass", ValueForm::kNextArgument},
    {"", "-keypass", ValueForm::kNextArgument},
    // openssl (-pass/-passin/-passout pass:SECRET, also env:/file: which are harmless to hide)
    // and osslsigncode (-pass SECRET).
    {"", "-pass", ValueForm::kNextArgument},
    {"", "-passin", ValueForm::kNextArgument},
    {"", "-passout", ValueForm::kNextArgument},
    // signtool /p PASSWORD (the .pfx password).
    {"signtool", "/p", ValueForm::kNextArgument, true},
    // RFC 7512 URIs wherever they appear (--key=pkcs11:...?pin-value=, -key "pkcs11:...;...").
    {"", "pin-value=", ValueForm::kUriAttribute},
    {"", "pin-source=", ValueForm::kUriAttribute},
};

// Redacts argv in place (argv[0] names the tool for tool-specific rules). Rules run on the
// arguments as the program received them, so a value containing spaces is hidden whole.
void RedactArguments(std::vector<std::string>& argv,
                     std::span<const SecretArgumentRule> rules = kSecretArgumentRules);

// /proc/PID/cmdline (arguments separated and possibly ended by NUL) -> the redacted arguments
// joined by spaces, the form the agent and the providers send.
std::string RedactedCommandLineFromNulSeparated(std::string_view raw);

// A command line already joined (a client's claim, Windows GetCommandLineW): split on blanks,
// double quotes grouping as Windows does, redacted, and put back with the original separators.
// Idempotent, so redacting a line twice (provider, then agent) is harmless.
std::string RedactCommandLine(std::string_view command_line);

}  // namespace signum::redaction

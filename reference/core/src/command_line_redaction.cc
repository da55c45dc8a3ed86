#include "signum/core/encoding.h"
#include "signum/core/command_line_redaction.h"

#include <algorithm>
#include <cctype>
#include <optional>

namespace signum::redaction {
namespace {

bool StartsWith(std::string_view text, std::string_view prefix, bool ignore_case) {
  if (text.size() < prefix.size()) return false;
  const std::string_view head = text.substr(0, prefix.size());
  return ignore_case ? EqualsIgnoringAsciiCase(head, prefix) : head == prefix;
}

size_t Find(std::string_view text, std::string_view needle, size_t from, bool ignore_case) {
  if (!ignore_case) return text.find(needle, from);
  for (size_t i = from; i + needle.size() <= text.size(); ++i) {
    if (StartsWith(text.substr(i), needle, true)) return i;
  }
  return std::string_view::npos;
}

// "C:\Tools\signtool.exe" and "/usr/bin/signtool" both name "signtool".
std::string_view ToolName(std::string_view argv0) {
  const size_t slash = argv0.find_last_of("/\\");
  if (slash != std::string_view::npos) argv0.remove_prefix(slash + 1);
  constexpr std::string_view kExe = ".exe";
  if (argv0.size() > kExe.size() && EqualsIgnoringAsciiCase(argv0.substr(argv0.size() - kExe.size()), kExe)) {
    argv0.remove_suffix(kExe.size());
  }
  return argv0;
}

bool AppliesToTool(const SecretArgumentRule& rule, std::string_view tool) {
  return rule.tool.empty() || EqualsIgnoringAsciiCase(rule.tool, tool);
}

// pin-value=SECRET inside a URI: the attribute starts the argument or follows a URI separator, and
// its value runs to the next attribute separator.
void RedactUriAttribute(std::string& argument, const SecretArgumentRule& rule) {
  size_t from = 0;
  while (from < argument.size()) {
    const size_t at = Find(argument, rule.flag, from, rule.ignore_case);
    if (at == std::string::npos) break;
    const bool at_attribute_start = at == 0 || std::string_view(";?&:\"'").find(argument[at - 1]) !=
                                                   std::string_view::npos;
    const size_t value_begin = at + rule.flag.size();
    if (!at_attribute_start) {
      from = value_begin;
      continue;
    }
    size_t value_end = argument.find_first_of(";?&\"'", value_begin);
    if (value_end == std::string::npos) value_end = argument.size();
    argument.replace(value_begin, value_end - value_begin, kRedactedValue);
    from = value_begin + kRedactedValue.size();
  }
}

// Applies every rule to argument `index`; returns true when the next argument is a secret value.
bool RedactOne(std::string& argument, std::string_view tool,
               std::span<const SecretArgumentRule> rules) {
  bool next_is_secret = false;
  for (const SecretArgumentRule& rule : rules) {
    if (!AppliesToTool(rule, tool)) continue;
    switch (rule.form) {
      case ValueForm::kNextArgument:
        if (argument.size() == rule.flag.size() && StartsWith(argument, rule.flag, rule.ignore_case)) {
          next_is_secret = true;
        }
        break;
      case ValueForm::kAfterEquals:
        if (argument.size() > rule.flag.size() && StartsWith(argument, rule.flag, rule.ignore_case) &&
            argument[rule.flag.size()] == '=') {
          argument.replace(rule.flag.size() + 1, std::string::npos, kRedactedValue);
        }
        break;
      case ValueForm::kAttached:
        if (argument.size() > rule.flag.size() && StartsWith(argument, rule.flag, rule.ignore_case)) {
          argument.replace(rule.flag.size(), std::string::npos, kRedactedValue);
        }
        break;
      case ValueForm::kUriAttribute:
        RedactUriAttribute(argument, rule);
        break;
    }
  }
  return next_is_secret;
}

// One blank-separated token of a joined command line: where it is, and its text with Windows
// quoting removed ("a b" -> a b, \" -> ").
struct Token {
  size_t begin = 0;
  size_t end = 0;
  std::string text;
};

std::vector<Token> Tokenize(std::string_view line) {
  std::vector<Token> tokens;
  size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && (line[i] == ' ' || line[i] == '\t')) ++i;
    if (i == line.size()) break;
    Token token;
    token.begin = i;
    bool quoted = false;
    while (i < line.size() && (quoted || (line[i] != ' ' && line[i] != '\t'))) {
      if (line[i] == '\\') {
        // CommandLineToArgvW: 2n backslashes + quote -> n backslashes and a quote that groups;
        // 2n+1 -> n backslashes and a literal quote; backslashes elsewhere are literal.
        size_t run = 0;
        while (i < line.size() && line[i] == '\\') ++run, ++i;
        if (i < line.size() && line[i] == '"') {
          token.text.append(run / 2, '\\');
          if (run % 2 == 1) {
            token.text += '"';
            ++i;
          }
        } else {
          token.text.append(run, '\\');
        }
        continue;
      }
      if (line[i] == '"') {
        quoted = !quoted;
      } else {
        token.text += line[i];
      }
      ++i;
    }
    token.end = i;
    tokens.push_back(std::move(token));
  }
  return tokens;
}

// A redacted token written back: quoted only when its text needs it.
std::string Requote(std::string_view text) {
  if (text.find_first_of(" \t\"") == std::string_view::npos && !text.empty()) return std::string(text);
  std::string out = "\"";
  for (char c : text) {
    if (c == '"') out += '\\';
    out += c;
  }
  out += '"';
  return out;
}

}  // namespace

void RedactArguments(std::vector<std::string>& argv, std::span<const SecretArgumentRule> rules) {
  if (argv.empty()) return;
  const std::string tool(ToolName(argv[0]));
  for (size_t i = 1; i < argv.size(); ++i) {
    if (RedactOne(argv[i], tool, rules) && i + 1 < argv.size()) {
      argv[++i] = kRedactedValue;  // the value is never itself read as a flag
    }
  }
}

std::string RedactedCommandLineFromNulSeparated(std::string_view raw) {
  while (!raw.empty() && raw.back() == '\0') raw.remove_suffix(1);
  if (raw.empty()) return {};
  std::vector<std::string> argv;
  size_t start = 0;
  while (start <= raw.size()) {  // "a\0\0b" keeps its empty argument
    const size_t nul = raw.find('\0', start);
    const size_t end = nul == std::string_view::npos ? raw.size() : nul;
    argv.emplace_back(raw.substr(start, end - start));
    start = end + 1;
  }
  RedactArguments(argv);
  std::string joined = argv.front();
  for (size_t i = 1; i < argv.size(); ++i) joined.append(" ").append(argv[i]);
  return joined;
}

std::string RedactCommandLine(std::string_view command_line) {
  const std::vector<Token> tokens = Tokenize(command_line);
  std::vector<std::string> argv;
  argv.reserve(tokens.size());
  for (const Token& token : tokens) argv.push_back(token.text);
  RedactArguments(argv);
  std::string out;
  size_t copied = 0;
  for (size_t i = 0; i < tokens.size(); ++i) {
    if (argv[i] == tokens[i].text) continue;  // untouched tokens keep their exact spelling
    out.append(command_line.substr(copied, tokens[i].begin - copied));
    out += Requote(argv[i]);
    copied = tokens[i].end;
  }
  out.append(command_line.substr(copied));
  return out;
}

}  // namespace signum::redaction

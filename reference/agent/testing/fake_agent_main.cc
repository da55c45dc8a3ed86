// signum-fake-agent: FakeAgent as a program, for clients that cannot run it in-process (the
// Windows providers under Wine, tools started as child processes). It listens on loopback TCP with
// the protocol-2 challenge-response, like signum-agent's TCP mode, and serves a fixed set of
// certificates from a throwaway TestPki whose labels script how their sign requests are answered
// (kLabels below; docs/testing.md lists them). Everything a client needs is written to DIR:
//   env.sh            SIGNUM_AGENT_SOCKET (nowhere), SIGNUM_AGENT_TCP, SIGNUM_AGENT_SECRET_FILE
//   agent.secret      the 64 hex digits of the handshake secret
//   certificates.tsv  label, certificate id, key spec, behaviour, leaf PEM (relative to DIR), in
//                     the order the agent lists them
//   leaves/LABEL.pem, ca/root.pem, ca/issuing.pem
// then "ready" is printed on stdout. It runs until SIGTERM/SIGINT, end of file on stdin (unless
// --ignore-stdin) or --max-seconds, whichever comes first.
//
//   signum-fake-agent --dir DIR [--max-seconds 300] [--slow-ms 5000] [--ignore-stdin]
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <functional>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "signum/agent/fake_agent.h"
#include "signum/core/files.h"
#include "signum/core/x509.h"
#include "signum/testing/test_pki.h"

namespace signum::agent::testing {
namespace {

using std::chrono::milliseconds;
using Script = FakeAgent::CertificateScript;

struct Options {
  std::string dir;
  int max_seconds = 300;
  int slow_ms = 5000;
  bool ignore_stdin = false;
};

// One served certificate: its label (the script's name), key spec and what its sign requests get.
// A scripted certificate is always rsa-2048 (the KSP and the CSP serve RSA keys only).
struct Label {
  std::string label;
  std::string spec;
  std::string behaviour;                     // for certificates.tsv and the log
  std::function<Script(FakeAgent&)> script;  // empty: the genuine signature
};

Script FailWith(ErrorCode code, std::string label) {
  return {.handler = [code, label](const wire::SignRequest&) -> Result<Bytes> {
    return Status(code, "fake agent: sign requests for '" + label + "' fail with " +
                            std::string(ErrorCodeName(code)));
  }};
}

// "error-failed-precondition" for kFailedPrecondition.
std::string ErrorLabel(ErrorCode code) {
  std::string name(ErrorCodeName(code));
  std::transform(name.begin(), name.end(), name.begin(), [](char c) {
    return c == '_' ? '-' : static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  });
  return "error-" + name;
}

std::vector<Label> Labels(const Options& options) {
  std::vector<Label> labels = {
      {"ok-rsa-2048", "rsa-2048", "genuine signature", {}},
      {"ok-ec-p256", "ec-p256", "genuine signature", {}},
      {"deny", "rsa-2048", "PERMISSION_DENIED",
       [](FakeAgent&) { return FailWith(ErrorCode::kPermissionDenied, "deny"); }},
      {"unavailable", "rsa-2048", "UNAVAILABLE",
       [](FakeAgent&) { return FailWith(ErrorCode::kUnavailable, "unavailable"); }},
  };
  // Every other error code the protocol carries, one certificate each.
  for (int i = static_cast<int>(ErrorCode::kInvalidArgument);
       i <= static_cast<int>(ErrorCode::kInternal); ++i) {
    const auto code = static_cast<ErrorCode>(i);
    if (code == ErrorCode::kPermissionDenied || code == ErrorCode::kUnavailable) continue;
    const std::string label = ErrorLabel(code);
    labels.push_back({label, "rsa-2048", std::string(ErrorCodeName(code)),
                      [code, label](FakeAgent&) { return FailWith(code, label); }});
  }
  labels.push_back({"forged", "rsa-2048", "right-length signature with its last byte flipped",
                    [](FakeAgent& agent) {
                      return Script{.handler = [&agent](const wire::SignRequest& r) {
                        Result<Bytes> signature = agent.SignWithKey(r);
                        if (signature.ok() && !signature->empty()) signature->back() ^= 0x01;
                        return signature;
                      }};
                    }});
  labels.push_back(
      {"short", "rsa-2048", "genuine signature without its last byte", [](FakeAgent& agent) {
         return Script{.handler = [&agent](const wire::SignRequest& r) {
           Result<Bytes> signature = agent.SignWithKey(r);
           if (signature.ok() && !signature->empty()) signature->pop_back();
           return signature;
         }};
       }});
  const int slow_ms = options.slow_ms;
  labels.push_back({"slow", "rsa-2048",
                    "genuine signature after " + std::to_string(slow_ms) + " ms",
                    [slow_ms](FakeAgent&) { return Script{.delay = milliseconds(slow_ms)}; }});
  labels.push_back({"drop", "rsa-2048", "connection closed unanswered",
                    [](FakeAgent&) { return Script{.disconnect = true}; }});
  return labels;
}

[[noreturn]] void Usage(const std::string& problem) {
  std::cerr << "signum-fake-agent: " << problem << "\n"
            << "usage: signum-fake-agent --dir DIR [--max-seconds N] [--slow-ms N] "
               "[--ignore-stdin]\n";
  std::exit(2);
}

Options ParseOptions(int argc, char** argv) {
  Options options;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    const auto value = [&]() -> std::string {
      if (i + 1 >= argc) Usage(arg + " needs a value");
      return argv[++i];
    };
    const auto number = [&](int min, int max) {
      const std::string text = value();
      char* end = nullptr;
      const long n = std::strtol(text.c_str(), &end, 10);
      if (end == text.c_str() || *end != '\0' || n < min || n > max) {
        Usage(arg + " " + text + ": not a number in " + std::to_string(min) + ".." +
              std::to_string(max));
      }
      return static_cast<int>(n);
    };
    if (arg == "--dir") {
      options.dir = value();
    } else if (arg == "--max-seconds") {
      options.max_seconds = number(1, 86400);
    } else if (arg == "--slow-ms") {
      options.slow_ms = number(1, 600000);
    } else if (arg == "--ignore-stdin") {
      options.ignore_stdin = true;
    } else {
      Usage("unknown argument " + arg);
    }
  }
  if (options.dir.empty()) Usage("--dir is required");
  return options;
}

// SIGTERM/SIGINT reach the main loop through a pipe (the only async-signal-safe hand-over).
int g_signal_pipe[2] = {-1, -1};
void OnSignal(int) {
  const int saved = errno;
  const char byte = 1;
  [[maybe_unused]] const ssize_t n = ::write(g_signal_pipe[1], &byte, 1);
  errno = saved;
}

Status Prepare(const std::string& dir) {
  std::error_code error;
  for (const char* sub : {"", "/leaves", "/ca"}) {
    std::filesystem::create_directories(dir + sub, error);
    if (error) return UnavailableError("cannot create " + dir + sub + ": " + error.message());
  }
  // The secret lives here: this user's only, as signum-agent keeps its own directory.
  if (::chmod(dir.c_str(), 0700) != 0) {
    return UnavailableError("chmod 0700 " + dir + ": " + std::strerror(errno));
  }
  return Status::Ok();
}

// Waits for the first of: a signal, end of file on stdin, the deadline. Returns why.
std::string WaitForTheEnd(const Options& options) {
  const auto deadline =
      std::chrono::steady_clock::now() + std::chrono::seconds(options.max_seconds);
  bool watch_stdin = !options.ignore_stdin;
  for (;;) {
    const auto left =
        std::chrono::duration_cast<milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return "--max-seconds reached";
    pollfd fds[2] = {{g_signal_pipe[0], POLLIN, 0}, {STDIN_FILENO, POLLIN, 0}};
    const int n =
        ::poll(fds, watch_stdin ? 2 : 1, static_cast<int>(std::min<long long>(left.count(), 1000)));
    if (n < 0 && errno != EINTR) return std::string("poll failed: ") + std::strerror(errno);
    if (n <= 0) continue;
    if (fds[0].revents != 0) return "signal";
    if (watch_stdin && fds[1].revents != 0) {
      char buffer[256];
      const ssize_t got = ::read(STDIN_FILENO, buffer, sizeof buffer);
      if (got == 0) return "end of stdin";
      if (got < 0 && errno != EINTR && errno != EAGAIN) {
        return std::string("stdin: ") + std::strerror(errno);
      }
    }
  }
}

int Run(const Options& options) {
  if (::pipe(g_signal_pipe) != 0) {
    std::cerr << "signum-fake-agent: pipe: " << std::strerror(errno) << "\n";
    return 1;
  }
  struct sigaction action {};
  action.sa_handler = OnSignal;
  sigemptyset(&action.sa_mask);
  sigaction(SIGTERM, &action, nullptr);
  sigaction(SIGINT, &action, nullptr);
  signal(SIGPIPE, SIG_IGN);

  const auto fail = [](const Status& status) {
    std::cerr << "signum-fake-agent: " << status.ToString() << "\n";
    return 1;
  };
  if (Status prepared = Prepare(options.dir); !prepared.ok()) return fail(prepared);
  auto started = FakeAgent::Start(
      {.dir = options.dir, .unix_socket = false, .tcp = true, .name = "signum-fake-agent/1"});
  if (!started.ok()) return fail(started.status());
  FakeAgent& agent = **started;

  const signum::testing::TestPki pki;
  // The ok-* certificates get a key each; the scripted ones share one RSA key (their answers are
  // the script's, and one key generation instead of sixteen keeps the start under a second).
  auto shared_key = SoftwareKey::Generate(*ParseKeySpec("rsa-2048"));
  if (!shared_key.ok()) return fail(shared_key.status());
  const std::shared_ptr<SoftwareKey> scripted_key = std::move(shared_key).value();
  std::string table = "# label\tid\tkey spec\tbehaviour\tcertificate\n";
  for (const Label& label : Labels(options)) {
    wire::CertificateEntry entry;
    if (label.script) {
      entry = pki.Leaf(label.label, *scripted_key);
      agent.AddCertificate(entry, scripted_key);
      agent.ScriptCertificate(entry.id, label.script(agent));
    } else {
      entry = agent.AddLeaf(pki, label.label, label.spec);
    }
    const std::string pem = "leaves/" + label.label + ".pem";
    if (Status s = WriteFileAtomically(options.dir + "/" + pem, entry.certificate_pem, 0644);
        !s.ok()) {
      return fail(s);
    }
    table += label.label + "\t" + entry.id + "\t" + label.spec + "\t" + label.behaviour + "\t" +
             pem + "\n";
  }
  std::string env;
  for (const auto& [name, value] : agent.Environment())
    env += "export " + name + "=" + value + "\n";
  for (const auto& [path, content] :
       {std::pair{std::string("/ca/root.pem"), pki.root().Pem()},
        std::pair{std::string("/ca/issuing.pem"), pki.issuing().Pem()},
        std::pair{std::string("/certificates.tsv"), table},
        std::pair{std::string("/env.sh"), env}}) {
    if (Status s = WriteFileAtomically(options.dir + path, content, 0644); !s.ok()) return fail(s);
  }

  std::cout << "ready" << std::endl;
  const std::string why = WaitForTheEnd(options);
  std::cerr << "signum-fake-agent: stopping (" << why << ") after " << agent.connections()
            << " connections, " << agent.requests(FakeAgent::MessageType::kSign)
            << " sign requests\n";
  return 0;  // ~FakeAgent stops listening and cuts delayed answers short
}

}  // namespace
}  // namespace signum::agent::testing

int main(int argc, char** argv) {
  return signum::agent::testing::Run(signum::agent::testing::ParseOptions(argc, argv));
}

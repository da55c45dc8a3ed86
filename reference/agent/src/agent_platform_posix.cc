// agent_platform.h on Linux and macOS.
#include <pthread.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <thread>

#include "agent_platform.h"

namespace signum::agent {
namespace {

sigset_t TerminationSignals() {
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGHUP);
  return signals;
}

}  // namespace

std::string DirName(const std::string& path) {
  const size_t slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

// Existing directories are left as they are (the socket itself is 0600, which is what protects
// it; the socket's directory is checked separately, transport::CheckPrivateDirectory).
Status MakePrivateDirectory(const std::string& dir) {
  if (dir.empty() || dir == "/" || dir == ".") return Status::Ok();
  struct stat st {};
  if (::stat(dir.c_str(), &st) == 0) {
    if (!S_ISDIR(st.st_mode))
      return FailedPreconditionError(dir + " exists and is not a directory");
    return Status::Ok();
  }
  SIGNUM_RETURN_IF_ERROR(MakePrivateDirectory(DirName(dir)));
  if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) {
    return FailedPreconditionError("cannot create directory " + dir + ": " + std::strerror(errno));
  }
  return Status::Ok();
}

std::string AgentUserName() { return std::to_string(::geteuid()); }

std::string LocalHostname() {
  char name[256] = {};
  if (::gethostname(name, sizeof name - 1) != 0) return "localhost";
  return name;
}

long CurrentProcessId() { return static_cast<long>(::getpid()); }

void BlockTerminationSignals() {
  const sigset_t signals = TerminationSignals();
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  ::signal(SIGPIPE, SIG_IGN);
}

void StopOnTerminationRequest(std::function<void(const std::string& why)> stop) {
  // Signals are taken by this one thread with sigwait(), so no handler ever runs in the middle
  // of a request.
  std::thread([stop = std::move(stop)] {
    const sigset_t signals = TerminationSignals();
    int sig = 0;
    while (sigwait(&signals, &sig) == 0) {
      if (sig == SIGHUP) continue;  // no reload yet; do not die on a closed terminal
      stop(std::string("received ") + strsignal(sig));
      return;
    }
  }).detach();
}

// The sigwait thread has returned after its one stop (or still waits, harmlessly: the process is
// about to end).
void AgentStopped() {}

}  // namespace signum::agent

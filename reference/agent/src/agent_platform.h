// What signum-agent does its own way on each system, beside the sockets (agent_socket.h):
// agent_platform_posix.cc (Linux, macOS) and agent_platform_windows.cc.
#pragma once

#include <functional>
#include <string>

#include "signum/core/status.h"

namespace signum::agent {

// The directory part of a path ("." for a bare name); '/' and, on Windows, '\' separate.
std::string DirName(const std::string& path);

// Creates dir and its missing parents for this user only (0700 on POSIX; on Windows under
// %LOCALAPPDATA%, whose ACL is the user's). An existing directory is left as it is.
Status MakePrivateDirectory(const std::string& dir);

// The user the agent serves, for its default agent id: the uid, or DOMAIN\user on Windows.
std::string AgentUserName();
std::string LocalHostname();
long CurrentProcessId();

// POSIX: blocks SIGTERM/SIGINT/SIGHUP in the calling thread and every thread it creates after,
// so that only StopOnTerminationRequest's thread sees them; call before starting threads.
void BlockTerminationSignals();
// Calls stop once, with the reason, when the user or the system asks the agent to end: SIGTERM or
// SIGINT (SIGHUP is ignored), Ctrl+C / Ctrl+Break / console close / logoff on Windows.
void StopOnTerminationRequest(std::function<void(const std::string& why)> stop);
// Run() has returned and its cleanup is done: a later request calls nothing, and on Windows a
// console-close, logoff or shutdown event (after which the system ends the process as soon as the
// handler returns) waits for this before returning.
void AgentStopped();

}  // namespace signum::agent

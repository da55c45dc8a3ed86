// The per-OS socket layer under AgentClient (agent_client.cc holds the one protocol
// implementation): transport_posix.cc (Unix socket + TCP) and transport_windows.cc (Winsock TCP).
// Every call is bounded by the caller's deadline; sockets are non-blocking, so a silent agent
// can never freeze the host application.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "signum/core/status.h"

namespace signum::agent::transport {

using Clock = std::chrono::steady_clock;

// A connected stream socket: a POSIX file descriptor or a Winsock SOCKET (INVALID_SOCKET is
// ~0, which is also -1 here).
using Handle = std::intptr_t;
inline constexpr Handle kNoHandle = -1;

// Connected and non-blocking. Unreachable -> kUnavailable naming the endpoint.
Result<Handle> ConnectUnix(const std::string& path, Clock::time_point deadline);
Result<Handle> ConnectTcp(const std::string& host, uint16_t port, Clock::time_point deadline);

Status SendAll(Handle socket, std::string_view data, Clock::time_point deadline);
// Waits for and reads up to `capacity` bytes; 0 means the agent closed the connection.
Result<size_t> ReceiveSome(Handle socket, char* out, size_t capacity, Clock::time_point deadline);
// True when something (data or end of stream) can be read right now without waiting.
bool ReadableNow(Handle socket);
void Close(Handle socket);

// POSIX: the directory that holds the agent's socket is this user's alone: a real directory (not
// a symlink), owned by geteuid(), no group or other permissions. Otherwise another local user
// could have put a socket there and served a fake agent (it would receive command lines and
// digests, and answer with forged signatures). kPermissionDenied naming the owner and the mode.
Status CheckPrivateDirectory(const std::string& dir);

// "127.x.y.z" or "::1".
bool IsLoopbackHost(const std::string& host);
// The platform's default agent socket, or "" where this client has no Unix socket (Windows).
std::string DefaultAgentSocketPath();
// Where the agent keeps its files when not told otherwise: the socket's directory, or
// %LOCALAPPDATA%\Signum on Windows (agent.secret and agent.port of the TCP endpoint).
std::string DefaultAgentDirectory();

}  // namespace signum::agent::transport

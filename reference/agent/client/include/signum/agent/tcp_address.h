// The agent's loopback TCP address, parsed the same way by every transport. Included by
// transport_posix.cc and transport_windows.cc after their own socket headers (BSD sockets or
// Winsock), which both provide sockaddr_in/in6, htons and inet_pton.
#pragma once

#include <cstdint>
#include <string>

#include "signum/core/status.h"

namespace signum::agent::transport {

struct TcpAddress {
  sockaddr_storage storage{};
  int length = 0;
  int family = AF_INET;
  const sockaddr* get() const { return reinterpret_cast<const sockaddr*>(&storage); }
};

// A numeric IPv4 or IPv6 address (no name lookup: the agent listens on loopback only).
inline Result<TcpAddress> ParseTcpAddress(const std::string& host, uint16_t port) {
  TcpAddress address;
  if (host.find(':') != std::string::npos) {
    auto* a6 = reinterpret_cast<sockaddr_in6*>(&address.storage);
    a6->sin6_family = address.family = AF_INET6;
    a6->sin6_port = htons(port);
    if (inet_pton(AF_INET6, host.c_str(), &a6->sin6_addr) != 1) {
      return InvalidArgumentError("invalid agent address " + host);
    }
    address.length = sizeof *a6;
  } else {
    auto* a4 = reinterpret_cast<sockaddr_in*>(&address.storage);
    a4->sin_family = AF_INET;
    a4->sin_port = htons(port);
    if (inet_pton(AF_INET, host.c_str(), &a4->sin_addr) != 1) {
      return InvalidArgumentError("invalid agent address " + host);
    }
    address.length = sizeof *a4;
  }
  return address;
}

// "127.x.y.z" or "::1".
inline bool IsLoopbackAddress(const std::string& host) {
  if (host == "::1") return true;
  in_addr a{};
  if (inet_pton(AF_INET, host.c_str(), &a) != 1) return false;
  return (ntohl(a.s_addr) >> 24) == 127;
}

}  // namespace signum::agent::transport

// What `signum-util list` prints, on Linux and on Windows alike: one block per signing certificate
// the agent offers (as the providers see them, provider::CertificateSet), then the entries the
// providers would skip, with the reason.
#pragma once

#include <chrono>
#include <ostream>
#include <string>

#include "signum/provider/provider_certificate.h"

namespace signum::agent {

void PrintCertificateListing(std::ostream& out, const provider::CertificateSet& set);

// "2026-11-27 15:04:05 UTC"
std::string FormatUtcTime(std::chrono::system_clock::time_point time);
// A thumbprint as signtool and certmgr show it: upper-case hex.
std::string UpperHex(std::string hex);

}  // namespace signum::agent

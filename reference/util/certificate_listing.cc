#include "certificate_listing.h"

#include <ctime>

namespace signum::agent {

std::string FormatUtcTime(std::chrono::system_clock::time_point time) {
  const std::time_t secs = std::chrono::system_clock::to_time_t(time);
  std::tm tm{};
#ifdef _WIN32
  gmtime_s(&tm, &secs);
#else
  gmtime_r(&secs, &tm);
#endif
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S UTC", &tm);
  return buf;
}

std::string UpperHex(std::string hex) {
  for (char& c : hex) c = static_cast<char>(c >= 'a' && c <= 'z' ? c - 'a' + 'A' : c);
  return hex;
}

void PrintCertificateListing(std::ostream& out, const provider::CertificateSet& set) {
  out << set.certificates.size() << " certificate(s)\n";
  for (const auto& c : set.certificates) {
    std::string schemes, hashes;
    for (SignatureScheme s : c->schemes) {
      schemes += (schemes.empty() ? "" : ", ") + std::string(SchemeName(s));
    }
    for (HashAlgorithm h : c->hashes) {
      hashes += (hashes.empty() ? "" : ", ") + std::string(HashName(h));
    }
    out << "\n"
        << (c->label.empty() ? c->id : c->label) << "\n"
        << "  id:               " << c->id << "\n"
        << "  label:            " << c->label << "\n"
        << "  subject:          " << c->certificate.Subject() << "\n"
        << "  issuer:           " << c->certificate.Issuer() << "\n"
        << "  valid from:       " << FormatUtcTime(c->certificate.NotBefore()) << "\n"
        << "  valid until:      " << FormatUtcTime(c->certificate.NotAfter()) << "\n"
        << "  SHA-1 thumbprint: " << UpperHex(c->id) << "\n"
        << "  algorithm:        " << c->key_spec.Name()
        << " (schemes: " << (schemes.empty() ? "none" : schemes)
        << "; hashes: " << (hashes.empty() ? "none" : hashes) << ")\n";
    // The exact pairs, where the server says (the projections above may combine more).
    if (c->capabilities) out << "  can sign with:     " << c->capabilities->ToString() << "\n";
  }
  for (const std::string& skipped : set.skipped) out << "\nskipped: " << skipped << "\n";
}

}  // namespace signum::agent

#include "signum/provider/certificate_info.h"

#include <array>
#include <cstdio>
#include <utility>
#include <vector>

#include "signum/core/encoding.h"
#include "signum/provider/der_reader.h"
#include "signum/provider/digest.h"

namespace signum::provider {
namespace {

// Short names as OpenSSL's RFC 2253 printing uses them; other attribute types print as OIDs.
constexpr std::array<std::pair<std::string_view, std::string_view>, 12> kAttributeNames = {{
    {"2.5.4.3", "CN"},
    {"2.5.4.5", "serialNumber"},
    {"2.5.4.6", "C"},
    {"2.5.4.7", "L"},
    {"2.5.4.8", "ST"},
    {"2.5.4.9", "street"},
    {"2.5.4.10", "O"},
    {"2.5.4.11", "OU"},
    {"2.5.4.12", "title"},
    {"1.2.840.113549.1.9.1", "emailAddress"},
    {"0.9.2342.19200300.100.1.1", "UID"},
    {"0.9.2342.19200300.100.1.25", "DC"},
}};
constexpr std::string_view kCommonNameOid = "2.5.4.3";

void AppendUtf8(std::string& out, uint32_t cp) {
  if (cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) cp = 0xfffd;
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xc0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3f));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xe0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
    out += static_cast<char>(0x80 | (cp & 0x3f));
  } else {
    out += static_cast<char>(0xf0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3f));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
    out += static_cast<char>(0x80 | (cp & 0x3f));
  }
}

// A directory string as UTF-8; types that are not strings print as '#' + hex DER (RFC 2253 §2.4).
std::string AttributeValueText(const DerElement& value) {
  const ByteView c = value.content;
  std::string out;
  switch (value.tag) {
    case der::kUtf8String:
    case der::kPrintableString:
    case der::kIa5String:
      return std::string(c.begin(), c.end());
    case der::kTeletexString:  // in practice Latin-1
      for (uint8_t b : c) AppendUtf8(out, b);
      return out;
    case der::kBmpString:
      for (size_t i = 0; i + 1 < c.size(); i += 2) AppendUtf8(out, (c[i] << 8) | c[i + 1]);
      return out;
    case der::kUniversalString:
      for (size_t i = 0; i + 3 < c.size(); i += 4) {
        AppendUtf8(out, (uint32_t{c[i]} << 24) | (c[i + 1] << 16) | (c[i + 2] << 8) | c[i + 3]);
      }
      return out;
    default:
      return "#" + HexEncode(value.encoding);
  }
}

std::string EscapeRfc2253(std::string_view value) {
  std::string out;
  for (size_t i = 0; i < value.size(); ++i) {
    const char ch = value[i];
    const bool special = ch == ',' || ch == '+' || ch == '"' || ch == '\\' || ch == '<' ||
                         ch == '>' || ch == ';' || (i == 0 && (ch == '#' || ch == ' ')) ||
                         (i + 1 == value.size() && ch == ' ');
    if (special) out += '\\';
    out += ch;
  }
  return out;
}

struct Attribute {
  std::string type;  // dotted OID
  std::string value;
};

// Name ::= SEQUENCE OF RelativeDistinguishedName (SET OF AttributeTypeAndValue), in DER order.
Result<std::vector<std::vector<Attribute>>> ParseName(ByteView name_der) {
  DerReader outer(name_der);
  SIGNUM_ASSIGN_OR_RETURN(DerElement name, outer.Expect(der::kSequence, "Name"));
  SIGNUM_RETURN_IF_ERROR(outer.ExpectEnd("Name"));
  std::vector<std::vector<Attribute>> rdns;
  DerReader rdn_reader(name.content);
  while (!rdn_reader.empty()) {
    SIGNUM_ASSIGN_OR_RETURN(DerElement rdn, rdn_reader.Expect(der::kSet, "Name RDN"));
    std::vector<Attribute> attributes;
    DerReader atv_reader(rdn.content);
    while (!atv_reader.empty()) {
      SIGNUM_ASSIGN_OR_RETURN(DerElement atv, atv_reader.Expect(der::kSequence, "Name attribute"));
      DerReader fields(atv.content);
      SIGNUM_ASSIGN_OR_RETURN(DerElement type,
                              fields.Expect(der::kObjectIdentifier, "Name attribute type"));
      SIGNUM_ASSIGN_OR_RETURN(DerElement value, fields.Next("Name attribute value"));
      SIGNUM_RETURN_IF_ERROR(fields.ExpectEnd("Name attribute"));
      SIGNUM_ASSIGN_OR_RETURN(std::string oid, ObjectIdentifierToString(type.content));
      attributes.push_back({std::move(oid), AttributeValueText(value)});
    }
    if (attributes.empty()) return InvalidArgumentError("Name: empty RDN");
    rdns.push_back(std::move(attributes));
  }
  return rdns;
}

// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil).
int64_t DaysFromCivil(int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const unsigned yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<int64_t>(doe) - 719468;
}

// UTCTime YYMMDDHHMMSSZ or GeneralizedTime YYYYMMDDHHMMSSZ, the only forms RFC 5280 allows.
Result<std::chrono::system_clock::time_point> ParseTime(const DerElement& t, const char* what) {
  const std::string s(t.content.begin(), t.content.end());
  size_t year_digits = 0;
  if (t.tag == der::kUtcTime) year_digits = 2;
  if (t.tag == der::kGeneralizedTime) year_digits = 4;
  if (year_digits == 0 || s.size() != year_digits + 11 || s.back() != 'Z') {
    return InvalidArgumentError(std::string(what) + ": not an RFC 5280 time: " + s);
  }
  for (size_t i = 0; i + 1 < s.size(); ++i) {
    if (s[i] < '0' || s[i] > '9') {
      return InvalidArgumentError(std::string(what) + ": not an RFC 5280 time: " + s);
    }
  }
  auto num = [&](size_t pos, size_t len) { return std::stoi(s.substr(pos, len)); };
  int year = num(0, year_digits);
  if (year_digits == 2) year += year >= 50 ? 1900 : 2000;  // RFC 5280 §4.1.2.5.1
  const size_t p = year_digits;
  const int month = num(p, 2), day = num(p + 2, 2), hour = num(p + 4, 2), minute = num(p + 6, 2),
            second = num(p + 8, 2);
  if (month < 1 || month > 12 || day < 1 || day > 31 || hour > 23 || minute > 59 || second > 60) {
    return InvalidArgumentError(std::string(what) + ": not a valid date: " + s);
  }
  const int64_t seconds = DaysFromCivil(year, static_cast<unsigned>(month),
                                        static_cast<unsigned>(day)) * 86400 +
                          hour * 3600 + minute * 60 + second;
  return std::chrono::system_clock::time_point(std::chrono::seconds(seconds));
}

std::string RenderName(const std::vector<std::vector<Attribute>>& rdns) {
  std::string out;
  // RFC 2253 writes the most specific RDN first: the reverse of the DER order.
  for (auto rdn = rdns.rbegin(); rdn != rdns.rend(); ++rdn) {
    if (!out.empty()) out += ',';
    bool first = true;
    for (const Attribute& a : *rdn) {
      if (!first) out += '+';
      first = false;
      std::string_view type = a.type;
      for (const auto& [oid, name] : kAttributeNames) {
        if (oid == a.type) type = name;
      }
      out += std::string(type) + "=" + EscapeRfc2253(a.value);
    }
  }
  return out;
}

}  // namespace

Result<std::string> NameToString(ByteView name_der) {
  SIGNUM_ASSIGN_OR_RETURN(auto rdns, ParseName(name_der));
  return RenderName(rdns);
}

Result<std::string> NameCommonName(ByteView name_der) {
  SIGNUM_ASSIGN_OR_RETURN(auto rdns, ParseName(name_der));
  std::string cn;
  for (const auto& rdn : rdns) {
    for (const Attribute& a : rdn) {
      if (a.type == kCommonNameOid) cn = a.value;
    }
  }
  return cn;
}

Result<CertificateInfo> CertificateInfo::FromDer(ByteView der_bytes) {
  // Certificate ::= SEQUENCE { tbsCertificate, signatureAlgorithm, signatureValue } (RFC 5280)
  DerReader top(der_bytes);
  SIGNUM_ASSIGN_OR_RETURN(DerElement certificate, top.Expect(der::kSequence, "certificate"));
  SIGNUM_RETURN_IF_ERROR(top.ExpectEnd("certificate"));
  DerReader parts(certificate.content);
  SIGNUM_ASSIGN_OR_RETURN(DerElement tbs, parts.Expect(der::kSequence, "tbsCertificate"));
  SIGNUM_RETURN_IF_ERROR(parts.Expect(der::kSequence, "signatureAlgorithm").status());
  SIGNUM_RETURN_IF_ERROR(parts.Expect(der::kBitString, "signatureValue").status());
  SIGNUM_RETURN_IF_ERROR(parts.ExpectEnd("certificate"));

  DerReader fields(tbs.content);
  if (fields.PeekTag() == der::kContextConstructed0) {
    SIGNUM_RETURN_IF_ERROR(fields.Next("certificate version").status());
  }
  CertificateInfo info;
  SIGNUM_ASSIGN_OR_RETURN(DerElement serial, fields.Expect(der::kInteger, "certificate serial"));
  SIGNUM_RETURN_IF_ERROR(fields.Expect(der::kSequence, "certificate signature").status());
  SIGNUM_ASSIGN_OR_RETURN(DerElement issuer, fields.Expect(der::kSequence, "certificate issuer"));
  SIGNUM_ASSIGN_OR_RETURN(DerElement validity,
                          fields.Expect(der::kSequence, "certificate validity"));
  SIGNUM_ASSIGN_OR_RETURN(DerElement subject,
                          fields.Expect(der::kSequence, "certificate subject"));
  SIGNUM_ASSIGN_OR_RETURN(DerElement spki,
                          fields.Expect(der::kSequence, "certificate subjectPublicKeyInfo"));
  // The rest (unique ids, extensions) is not needed by any provider.

  DerReader times(validity.content);
  SIGNUM_ASSIGN_OR_RETURN(DerElement not_before, times.Next("certificate notBefore"));
  SIGNUM_ASSIGN_OR_RETURN(DerElement not_after, times.Next("certificate notAfter"));
  SIGNUM_RETURN_IF_ERROR(times.ExpectEnd("certificate validity"));
  SIGNUM_ASSIGN_OR_RETURN(info.not_before_, ParseTime(not_before, "certificate notBefore"));
  SIGNUM_ASSIGN_OR_RETURN(info.not_after_, ParseTime(not_after, "certificate notAfter"));
  // Names must parse, so Subject() and friends cannot fail later.
  SIGNUM_RETURN_IF_ERROR(ParseName(issuer.encoding).status());
  SIGNUM_RETURN_IF_ERROR(ParseName(subject.encoding).status());

  info.der_.assign(certificate.encoding.begin(), certificate.encoding.end());
  info.serial_der_.assign(serial.encoding.begin(), serial.encoding.end());
  info.issuer_der_.assign(issuer.encoding.begin(), issuer.encoding.end());
  info.subject_der_.assign(subject.encoding.begin(), subject.encoding.end());
  info.spki_der_.assign(spki.encoding.begin(), spki.encoding.end());
  return info;
}

Result<CertificateInfo> CertificateInfo::FromPem(std::string_view pem) {
  SIGNUM_ASSIGN_OR_RETURN(std::vector<Bytes> blocks, PemDecodeAll(pem, "CERTIFICATE"));
  if (blocks.empty()) return InvalidArgumentError("no PEM certificate block");
  return FromDer(blocks.front());
}

std::string CertificateInfo::Subject() const { return NameToString(subject_der_).value(); }
std::string CertificateInfo::Issuer() const { return NameToString(issuer_der_).value(); }
std::string CertificateInfo::SubjectCommonName() const {
  return NameCommonName(subject_der_).value();
}

Bytes CertificateInfo::Sha1Thumbprint() const {
  // SHA-1 is available from every platform's library; a failure here is a broken platform.
  return ComputeDigest(HashAlgorithm::kSha1, der_).value();
}

std::string CertificateInfo::Sha1ThumbprintHex() const { return HexEncode(Sha1Thumbprint()); }

}  // namespace signum::provider

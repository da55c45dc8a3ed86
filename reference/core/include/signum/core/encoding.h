// Text encodings of binary values (base64, hex). Plain C++ with no OpenSSL, so the agent protocol
// and the Windows providers (built with mingw-w64) can use them; crypto.h includes this header
// for the callers that always used them from there.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "signum/core/bytes.h"
#include "signum/core/status.h"

namespace signum {

std::string Base64Encode(ByteView data);            // standard alphabet, padded (RFC 4648 §4)
Result<Bytes> Base64Decode(std::string_view text);  // strict: rejects junk, accepts no whitespace
std::string HexEncode(ByteView data);               // lowercase
// ASCII-only case folding: never the C locale's idea of case (a host program may have set
// another locale with setlocale(), and protocol names, header names and hex are ASCII).
std::string AsciiLower(std::string_view text);
bool EqualsIgnoringAsciiCase(std::string_view a, std::string_view b);

// HTTP/1.1 syntax (RFC 9110 §5.6.2, §5.5), for the client and the server alike: a token (method,
// header name) and a field value without CR, LF or NUL (which would split or end a header).
bool IsHttpToken(std::string_view text);
bool IsSafeHttpFieldValue(std::string_view text);

// RFC 7468 text: "-----BEGIN <label>-----", base64 in 64-character lines, "-----END <label>-----".
std::string PemEncode(std::string_view label, ByteView der);
// Every "-----BEGIN <label>-----" block of text, decoded, in order (whitespace inside a block is
// ignored; text between blocks is not read). A block that does not end or does not decode is an
// error naming its position; no block at all is an empty list, for the caller to judge.
Result<std::vector<Bytes>> PemDecodeAll(std::string_view text, std::string_view label);
Result<Bytes> HexDecode(std::string_view hex);  // accepts upper/lowercase, optional ':' separators

// Text from outside (a /proc command line holds any bytes) made fit for JSON and for the server's
// length limits: invalid UTF-8 sequences become '?', and truncation never splits a character.
std::string ToValidUtf8(std::string_view text);
std::string TruncateUtf8(std::string_view valid_utf8, size_t max_bytes);

}  // namespace signum

// RAII owners and error helpers for the OpenSSL objects reference/core uses (internal to core):
// one definition instead of a deleter struct and a Fatal()/OpenSslError() per file.
#pragma once

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/crypto.h>

#include <climits>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>

#include "signum/core/crypto.h"
#include "signum/core/status.h"

namespace signum::internal {

// OpenSslPtr<X509, X509_free>: unique ownership with OpenSSL's own free function (a lambda where
// the free function is a macro, as sk_X509_free and OPENSSL_free are).
template <auto Free>
struct OpenSslDeleter {
  template <typename T>
  void operator()(T* p) const {
    Free(p);
  }
};
template <typename T, auto Free>
using OpenSslPtr = std::unique_ptr<T, OpenSslDeleter<Free>>;

using BioPtr = OpenSslPtr<BIO, BIO_free_all>;
using BnPtr = OpenSslPtr<BIGNUM, BN_free>;

// For failures that only happen when OpenSSL is out of memory or misbuilt on an already-valid
// structure: no caller could recover, and returning wrong bytes silently would be worse.
[[noreturn]] inline void Fatal(const char* what) {
  std::fprintf(stderr, "signum: fatal OpenSSL failure in %s: %s\n", what,
               DrainOpenSslErrors().c_str());
  std::abort();
}

// A Status with `what` and OpenSSL's queued errors (drained).
inline Status OpenSslError(ErrorCode code, std::string what) {
  std::string errors = DrainOpenSslErrors();
  if (!errors.empty()) what += ": " + errors;
  return Status(code, std::move(what));
}

// A read-only memory BIO over text (not copied: text must outlive it); null when too large.
inline BioPtr MemBio(std::string_view text) {
  if (text.size() > static_cast<size_t>(INT_MAX)) return nullptr;
  return BioPtr(BIO_new_mem_buf(text.data(), static_cast<int>(text.size())));
}

// What a memory BIO holds.
inline std::string BioToString(BIO* bio) {
  char* data = nullptr;
  const long len = BIO_get_mem_data(bio, &data);
  if (len <= 0 || data == nullptr) return {};
  return std::string(data, static_cast<size_t>(len));
}

}  // namespace signum::internal

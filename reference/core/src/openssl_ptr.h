// RAII owners for the OpenSSL objects more than one core file uses (internal to reference/core).
#pragma once

#include <openssl/bio.h>
#include <openssl/bn.h>

#include <memory>

namespace signum::internal {

struct BioDeleter {
  void operator()(BIO* p) const { BIO_free_all(p); }
};
struct BnDeleter {
  void operator()(BIGNUM* p) const { BN_free(p); }
};
using BioPtr = std::unique_ptr<BIO, BioDeleter>;
using BnPtr = std::unique_ptr<BIGNUM, BnDeleter>;

}  // namespace signum::internal

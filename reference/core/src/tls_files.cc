#include "signum/core/tls_files.h"

#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "signum/core/crypto.h"

namespace signum {
namespace {

int NoPassphrase(char*, int, int, void*) { return 0; }

}  // namespace

Status CheckReadableFile(std::string_view what, const std::string& path) {
  if (path.empty()) return InvalidArgumentError(std::string(what) + " file not configured");
  if (::access(path.c_str(), R_OK) != 0) {
    return NotFoundError("cannot read " + std::string(what) + " file " + path + ": " +
                         std::strerror(errno));
  }
  return Status::Ok();
}

void RefusePassphrases(SSL_CTX* ctx) { SSL_CTX_set_default_passwd_cb(ctx, NoPassphrase); }

Status UseCertificateAndKey(SSL_CTX* ctx, std::string_view role, const std::string& chain_file,
                            const std::string& key_file) {
  const std::string r(role);
  SIGNUM_RETURN_IF_ERROR(CheckReadableFile(r + " certificate chain", chain_file));
  if (SSL_CTX_use_certificate_chain_file(ctx, chain_file.c_str()) != 1) {
    return InvalidArgumentError("cannot load " + r + " certificate chain from " + chain_file +
                                ": " + DrainOpenSslErrors());
  }
  SIGNUM_RETURN_IF_ERROR(CheckReadableFile(r + " private key", key_file));
  if (SSL_CTX_use_PrivateKey_file(ctx, key_file.c_str(), SSL_FILETYPE_PEM) != 1) {
    return InvalidArgumentError("cannot load " + r + " private key from " + key_file + ": " +
                                DrainOpenSslErrors());
  }
  if (SSL_CTX_check_private_key(ctx) != 1) {
    return InvalidArgumentError(r + " private key " + key_file + " does not match certificate " +
                                chain_file + ": " + DrainOpenSslErrors());
  }
  return Status::Ok();
}

}  // namespace signum

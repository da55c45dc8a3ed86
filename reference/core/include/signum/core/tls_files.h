// Loading TLS credentials into an OpenSSL SSL_CTX, shared by the HTTPS server and client so both
// report missing, unreadable, encrypted or mismatched files the same way.
#pragma once

#include <openssl/ssl.h>

#include <string>
#include <string_view>

#include "signum/core/status.h"

namespace signum {

// kNotFound naming `what` and the path when the file cannot be read; kInvalidArgument when empty.
Status CheckReadableFile(std::string_view what, const std::string& path);

// Never prompt on a terminal for a passphrase: encrypted keys simply fail to load.
void RefusePassphrases(SSL_CTX* ctx);

// Loads a PEM certificate chain and its private key and checks that they belong together.
// `role` names them in errors: "server" -> "cannot load server certificate chain from X: ...".
Status UseCertificateAndKey(SSL_CTX* ctx, std::string_view role, const std::string& chain_file,
                            const std::string& key_file);

}  // namespace signum

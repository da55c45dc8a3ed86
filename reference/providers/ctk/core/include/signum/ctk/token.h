// The token and its sessions, as CryptoTokenKit drives them, with no Apple type in sight:
//
//   TKTokenDriver  -> (the macOS layer's driver makes one Token per token configuration)
//   TKToken        -> Token: the agent connection pool, signer and cached certificate list
//                     (provider::ProviderContext), and the keychain contents built from it
//   TKTokenSession -> TokenSession: supportsOperation:usingKey:algorithm: and
//                     signData:usingKey:algorithm:error:, one Signum sign request per signData
//
// The macOS layer (reference/providers/ctk/macos) forwards each delegate call here unchanged and
// turns the TkOutcome into an NSData or an NSError; the Linux conformance driver
// (conformance/ctk) calls the same functions in the order macOS does. Sessions are independent
// and may sign concurrently (codesign runs in parallel; F57's errSecInternalComponent).
#pragma once

#include <memory>

#include "signum/core/bytes.h"
#include "signum/core/status.h"
#include "signum/ctk/ctk_iface.h"
#include "signum/ctk/key_algorithms.h"
#include "signum/ctk/keychain_contents.h"
#include "signum/ctk/tk_error.h"
#include "signum/provider/agent_pool.h"
#include "signum/provider/provider_context.h"

namespace signum::ctk {

class TokenSession;

class Token {
 public:
  explicit Token(provider::AgentPoolOptions options);
  Token(const Token&) = delete;
  Token& operator=(const Token&) = delete;

  // The keychain contents from the agent's list (cached by the provider context: enumerating
  // never waits on the network after the first load). Agent unreachable: kUnavailable.
  Result<KeychainContents> KeychainItems();
  // Asks the agent again, bypassing its cache too (signum-util keychain --add does).
  Result<KeychainContents> RefreshKeychainItems();

  // TKTokenDelegate createSessionWithError: — cheap; a session holds no connection of its own.
  std::unique_ptr<TokenSession> CreateSession();

  provider::ProviderContext& context() { return context_; }

 private:
  provider::ProviderContext context_;
};

class TokenSession {
 public:
  explicit TokenSession(Token* token) : token_(token) {}

  // tokenSession:supportsOperation:usingKey:algorithm: — YES only for kSignData with a key of
  // this token and a target algorithm the key signs with (key_algorithms.h). Never fails: an
  // unknown key, an unreachable agent or an error is NO, as CTK expects from a BOOL.
  bool SupportsOperation(TokenOperation operation, ByteView key_object_id,
                         const KeyAlgorithmRequest& algorithm);

  // tokenSession:signData:usingKey:algorithm:error: — the signature in the format of the target
  // algorithm: PKCS#1 v1.5 / PSS octets for RSA, DER X9.62 for ECDSA. Input rules per algorithm
  // (ctk_iface.h AlgorithmInput): a …Digest…SHA* input must have that hash's length and is signed
  // as is (F57), a …Message… input is hashed here.
  Result<Bytes> SignData(ByteView data, ByteView key_object_id,
                         const KeyAlgorithmRequest& algorithm);

  // The same, through the TKError boundary (what the macOS layer and the conformance driver call).
  TkOutcome<Bytes> SignDataAtBoundary(ByteView data, ByteView key_object_id,
                                      const KeyAlgorithmRequest& algorithm) noexcept;

 private:
  Result<std::shared_ptr<const provider::ProviderCertificate>> FindKey(ByteView key_object_id);
  Token* token_;
};

}  // namespace signum::ctk

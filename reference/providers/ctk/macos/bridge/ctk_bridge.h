// The only place the CTK core's types meet Apple's: SecKeyAlgorithm constants <-> the core's enum,
// TKTokenKeyAlgorithm -> KeyAlgorithmRequest, TkError -> NSError (TKErrorDomain), bytes <-> NSData,
// keychain contents -> TKTokenKeychainItem objects, and the agent endpoint a token configuration
// carries. Objective-C++; built only on macOS (NOT compiled on the Linux machines that build and
// test the core: see docs/ctk.md).
#pragma once

#import <CryptoTokenKit/CryptoTokenKit.h>
#import <Foundation/Foundation.h>
#import <Security/Security.h>

#include "signum/ctk/key_algorithms.h"
#include "signum/ctk/keychain_contents.h"
#include "signum/ctk/tk_error.h"
#include "signum/provider/agent_pool.h"

namespace signum::ctk::apple {

// The SDK's constant for one of ours (nullptr for kUnknown).
::SecKeyAlgorithm SdkAlgorithm(SecKeyAlgorithm algorithm);
// The request as CTK hands it over: the target (isAlgorithm:) and every listed algorithm the
// framework used on the way (supportsAlgorithm:). An unlisted target is kUnknown.
KeyAlgorithmRequest RequestFrom(TKTokenKeyAlgorithm* algorithm);

NSData* DataFrom(ByteView bytes);
Bytes BytesFrom(NSData* data);
// Object IDs are NSData holding the 20-byte thumbprint (keychain_contents.h); anything else is
// an ID this token never issued and yields no bytes (so lookups fail as ObjectNotFound).
Bytes ObjectIdBytes(id object_id);

NSError* ErrorFrom(const TkError& error);

// The items `signum-util keychain --add` writes into the token configuration: a
// TKTokenKeychainCertificate and a TKTokenKeychainKey (signing only) per certificate.
NSArray<TKTokenKeychainItem*>* KeychainItemsFrom(const KeychainContents& contents);

// The agent endpoint travels in TKTokenConfiguration.configurationData as JSON
// {"tcp": "127.0.0.1:PORT", "secret": "<hex>"}: the sandboxed extension cannot read the agent's
// socket or secret file (docs/ctk.md, "The extension's channel to the agent").
NSData* ConfigurationDataFor(const agent::AgentEndpoint& endpoint);
provider::AgentPoolOptions PoolOptionsFrom(NSData* configuration_data);

}  // namespace signum::ctk::apple

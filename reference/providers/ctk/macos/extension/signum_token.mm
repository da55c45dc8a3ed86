// The Signum token extension (com.apple.ctk-tokens): TKTokenDriver -> TKToken -> TKTokenSession,
// each forwarding to the portable core (reference/providers/ctk/core) and converting at the
// TKError boundary. A persistent token: its keychain items come from the token configuration that
// `signum-util keychain --add` wrote (bridge/ctk_bridge.h), not from a card.
//
// Source only on the machines that build the rest of Signum: NOT compiled on Linux (docs/ctk.md).
#import <CryptoTokenKit/CryptoTokenKit.h>
#import <Foundation/Foundation.h>
#import <os/log.h>

#include <memory>

#import "ctk_bridge.h"
#include "signum/ctk/token.h"

using signum::ctk::Token;
using signum::ctk::TokenOperation;
using signum::ctk::TokenSession;
namespace apple = signum::ctk::apple;

@interface SignumToken : TKToken <TKTokenDelegate>
- (instancetype)initWithTokenDriver:(TKTokenDriver*)driver
                      configuration:(TKTokenConfiguration*)configuration;
- (Token*)core;
@end

@interface SignumTokenSession : TKTokenSession <TKTokenSessionDelegate>
- (instancetype)initWithSignumToken:(SignumToken*)token;
@end

@interface SignumTokenDriver : TKTokenDriver <TKTokenDriverDelegate>
@end

@implementation SignumTokenDriver

- (instancetype)init {
  if (self = [super init]) self.delegate = self;
  return self;
}

// One token per configuration (instance ID "signum" unless `keychain --add --instance` said so).
- (TKToken*)tokenDriver:(TKTokenDriver*)driver
    tokenForConfiguration:(TKTokenConfiguration*)configuration
                    error:(NSError**)error {
  return [[SignumToken alloc] initWithTokenDriver:self configuration:configuration];
}

@end

@implementation SignumToken {
  std::unique_ptr<Token> _core;
}

- (instancetype)initWithTokenDriver:(TKTokenDriver*)driver
                      configuration:(TKTokenConfiguration*)configuration {
  if (self = [super initWithTokenDriver:driver instanceID:configuration.instanceID]) {
    _core = std::make_unique<Token>(apple::PoolOptionsFrom(configuration.configurationData));
    [self.keychainContents fillWithItems:configuration.keychainItems];
    self.delegate = self;
  }
  return self;
}

- (Token*)core {
  return _core.get();
}

- (TKTokenSession*)token:(TKToken*)token createSessionWithError:(NSError**)error {
  return [[SignumTokenSession alloc] initWithSignumToken:self];
}

@end

@implementation SignumTokenSession {
  std::unique_ptr<TokenSession> _core;
}

- (instancetype)initWithSignumToken:(SignumToken*)token {
  if (self = [super initWithToken:token]) {
    _core = [token core]->CreateSession();
    self.delegate = self;
  }
  return self;
}

- (BOOL)tokenSession:(TKTokenSession*)session
    supportsOperation:(TKTokenOperation)operation
             usingKey:(TKTokenObjectID)keyObjectID
            algorithm:(TKTokenKeyAlgorithm*)algorithm {
  return _core->SupportsOperation(static_cast<TokenOperation>(operation),
                                  apple::ObjectIdBytes(keyObjectID), apple::RequestFrom(algorithm));
}

- (NSData*)tokenSession:(TKTokenSession*)session
               signData:(NSData*)dataToSign
               usingKey:(TKTokenObjectID)keyObjectID
              algorithm:(TKTokenKeyAlgorithm*)algorithm
                  error:(NSError**)error {
  const signum::Bytes data = apple::BytesFrom(dataToSign);
  auto outcome = _core->SignDataAtBoundary(data, apple::ObjectIdBytes(keyObjectID),
                                           apple::RequestFrom(algorithm));
  if (outcome.ok()) return apple::DataFrom(*outcome.value);
  os_log_error(OS_LOG_DEFAULT, "signum-ctk: %{public}s", outcome.error->description.c_str());
  if (error != nullptr) *error = apple::ErrorFrom(*outcome.error);
  return nil;
}

@end

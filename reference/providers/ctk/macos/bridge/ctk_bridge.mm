#import "ctk_bridge.h"

#include <string>

#include "signum/core/encoding.h"

namespace signum::ctk::apple {

::SecKeyAlgorithm SdkAlgorithm(SecKeyAlgorithm algorithm) {
  switch (algorithm) {
#define SIGNUM_CTK_SDK_CASE(name, key, scheme, hash, input) \
  case SecKeyAlgorithm::k##name:                            \
    return kSecKeyAlgorithm##name;
    SIGNUM_CTK_SEC_KEY_ALGORITHMS(SIGNUM_CTK_SDK_CASE)
#undef SIGNUM_CTK_SDK_CASE
    case SecKeyAlgorithm::kUnknown:
      break;
  }
  return nullptr;
}

KeyAlgorithmRequest RequestFrom(TKTokenKeyAlgorithm* algorithm) {
  SecKeyAlgorithm target = SecKeyAlgorithm::kUnknown;
  std::vector<SecKeyAlgorithm> used;
  for (const KeyAlgorithmInfo& info : AllKeyAlgorithms()) {
    ::SecKeyAlgorithm sdk = SdkAlgorithm(info.algorithm);
    if ([algorithm isAlgorithm:sdk]) {
      target = info.algorithm;
    } else if ([algorithm supportsAlgorithm:sdk]) {
      used.push_back(info.algorithm);
    }
  }
  return KeyAlgorithmRequest(target, std::move(used));
}

NSData* DataFrom(ByteView bytes) { return [NSData dataWithBytes:bytes.data() length:bytes.size()]; }

Bytes BytesFrom(NSData* data) {
  if (data == nil) return {};
  const auto* begin = static_cast<const uint8_t*>(data.bytes);
  return Bytes(begin, begin + data.length);
}

Bytes ObjectIdBytes(id object_id) {
  return [object_id isKindOfClass:[NSData class]] ? BytesFrom(static_cast<NSData*>(object_id))
                                                  : Bytes();
}

NSError* ErrorFrom(const TkError& error) {
  return [NSError errorWithDomain:TKErrorDomain
                             code:static_cast<NSInteger>(error.code)
                         userInfo:@{
                           NSLocalizedDescriptionKey : @(error.description.c_str())
                         }];
}

NSArray<TKTokenKeychainItem*>* KeychainItemsFrom(const KeychainContents& contents) {
  NSMutableArray<TKTokenKeychainItem*>* items = [NSMutableArray array];
  for (size_t i = 0; i < contents.certificates.size() && i < contents.keys.size(); ++i) {
    const KeychainCertificateItem& certificate_item = contents.certificates[i];
    const KeychainKeyItem& key_item = contents.keys[i];
    SecCertificateRef certificate = SecCertificateCreateWithData(
        kCFAllocatorDefault, (__bridge CFDataRef)DataFrom(certificate_item.der));
    if (certificate == nullptr) continue;  // the core parsed it; Security.framework should too
    NSData* object_id = DataFrom(certificate_item.object_id);
    TKTokenKeychainCertificate* certificate_object =
        [[TKTokenKeychainCertificate alloc] initWithCertificate:certificate objectID:object_id];
    certificate_object.label = @(certificate_item.label.c_str());
    TKTokenKeychainKey* key_object = [[TKTokenKeychainKey alloc] initWithCertificate:certificate
                                                                            objectID:object_id];
    CFRelease(certificate);
    key_object.label = @(key_item.label.c_str());
    key_object.canSign = key_item.can_sign;
    key_object.canDecrypt = key_item.can_decrypt;
    key_object.canPerformKeyExchange = key_item.can_perform_key_exchange;
    key_object.suitableForLogin = key_item.suitable_for_login;
    // Signing needs no further authentication in the token: the agent holds the credential and
    // the server's policy decides (TKTokenKeychainItem.constraints: YES = always allowed).
    key_object.constraints = @{@(TKTokenOperationSignData) : @YES};
    [items addObject:certificate_object];
    [items addObject:key_object];
  }
  return items;
}

NSData* ConfigurationDataFor(const agent::AgentEndpoint& endpoint) {
  NSDictionary* json = @{
    @"tcp" : @((endpoint.tcp_host + ":" + std::to_string(endpoint.tcp_port)).c_str()),
    @"secret" : @(endpoint.secret.c_str()),
  };
  return [NSJSONSerialization dataWithJSONObject:json options:0 error:nil];
}

provider::AgentPoolOptions PoolOptionsFrom(NSData* configuration_data) {
  provider::AgentPoolOptions options;
  options.client_name = "signum-ctk-token";
  NSDictionary* json = configuration_data == nil
                           ? nil
                           : [NSJSONSerialization JSONObjectWithData:configuration_data
                                                             options:0
                                                               error:nil];
  NSString* tcp = [json isKindOfClass:[NSDictionary class]] ? json[@"tcp"] : nil;
  NSString* secret = [json isKindOfClass:[NSDictionary class]] ? json[@"secret"] : nil;
  if (![tcp isKindOfClass:[NSString class]] || ![secret isKindOfClass:[NSString class]]) {
    options.endpoint = UnavailableError(
        "the token configuration names no agent endpoint: run `signum-util keychain --add` while "
        "signum-agent listens on loopback TCP");
    return options;
  }
  agent::AgentEndpoint endpoint;
  Status parsed =
      agent::ParseLoopbackAddress(tcp.UTF8String, &endpoint.tcp_host, &endpoint.tcp_port);
  if (!parsed.ok()) {
    options.endpoint = parsed;
    return options;
  }
  endpoint.secret = secret.UTF8String;
  options.endpoint = endpoint;
  return options;
}

}  // namespace signum::ctk::apple

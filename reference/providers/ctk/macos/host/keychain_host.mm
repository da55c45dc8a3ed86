// signum-token-host: signum-token-host.app's executable, the host side of the token. Only the app
// that hosts a token extension may change that token's configuration (TKTokenDriverConfiguration
// .driverConfigurations is empty for every other caller), so `signum-util keychain ...` on macOS
// runs this program:
//
//   signum-token-host keychain --add [--instance ID]     the agent's certificates -> token items
//   signum-token-host keychain --remove [--instance ID]
//   signum-token-host keychain --list
//
// --add reads the agent's list through the CTK core (the same keychain contents the Linux tests
// check), writes one certificate and one key item per certificate into the configuration, and the
// agent's loopback TCP endpoint + secret into configurationData for the sandboxed extension.
// The agent must listen on TCP (SIGNUM_AGENT_TCP and SIGNUM_AGENT_SECRET_FILE, as env.sh sets).
//
// Source only on Linux: NOT compiled there (docs/ctk.md).
#import <CryptoTokenKit/CryptoTokenKit.h>
#import <Foundation/Foundation.h>

#include <cstdio>
#include <string>

#import "ctk_bridge.h"
#include "signum/agent/agent_client.h"
#include "signum/core/encoding.h"
#include "signum/ctk/token.h"

namespace {

NSString* const kClassId =
    @"org.signum-harness.token";  // extension/Info.plist com.apple.ctk.class-id

int Usage() {
  std::fprintf(stderr, "usage: signum-token-host keychain --add|--remove|--list [--instance ID]\n");
  return 2;
}

TKTokenDriverConfiguration* Driver() {
  TKTokenDriverConfiguration* driver = TKTokenDriverConfiguration.driverConfigurations[kClassId];
  if (driver == nil) {
    std::fprintf(stderr,
                 "signum-token-host: no token driver %s in this app: is SignumToken.appex in "
                 "Contents/PlugIns and registered (pluginkit -a)?\n",
                 kClassId.UTF8String);
  }
  return driver;
}

int Add(NSString* instance) {
  TKTokenDriverConfiguration* driver = Driver();
  if (driver == nil) return 1;
  auto endpoint = signum::agent::AgentEndpointFromEnvironment();
  if (!endpoint.ok() || endpoint->tcp_port == 0 || endpoint->secret.empty()) {
    std::fprintf(
        stderr,
        "signum-token-host: the token extension reaches the agent over loopback TCP; set "
        "SIGNUM_AGENT_TCP and SIGNUM_AGENT_SECRET_FILE (source the deployment's env.sh)%s%s\n",
        endpoint.ok() ? "" : ": ", endpoint.ok() ? "" : endpoint.status().ToString().c_str());
    return 1;
  }
  signum::provider::AgentPoolOptions options;
  options.endpoint = *endpoint;
  options.client_name = "signum-token-host";
  signum::ctk::Token token(options);
  auto contents = token.RefreshKeychainItems();
  if (!contents.ok()) {
    std::fprintf(stderr, "signum-token-host: %s\n", contents.status().ToString().c_str());
    return 1;
  }
  for (const std::string& skipped : contents->skipped) {
    std::fprintf(stderr, "skipped: %s\n", skipped.c_str());
  }
  TKTokenConfiguration* configuration = [driver addTokenConfigurationForTokenInstanceID:instance];
  configuration.configurationData = signum::ctk::apple::ConfigurationDataFor(*endpoint);
  configuration.keychainItems = signum::ctk::apple::KeychainItemsFrom(*contents);
  for (const auto& key : contents->keys) {
    std::printf("added %s %s (%s %d)\n", signum::HexEncode(key.object_id).c_str(),
                key.label.c_str(),
                std::string(signum::ctk::KeychainKeyTypeConstantName(key.key_type)).c_str(),
                key.key_size_in_bits);
  }
  std::printf("token %s:%s has %zu identities\n", kClassId.UTF8String, instance.UTF8String,
              contents->keys.size());
  return 0;
}

int Remove(NSString* instance) {
  TKTokenDriverConfiguration* driver = Driver();
  if (driver == nil) return 1;
  [driver removeTokenConfigurationForTokenInstanceID:instance];
  std::printf("removed token %s:%s\n", kClassId.UTF8String, instance.UTF8String);
  return 0;
}

int List() {
  TKTokenDriverConfiguration* driver = Driver();
  if (driver == nil) return 1;
  for (NSString* instance in driver.tokenConfigurations) {
    TKTokenConfiguration* configuration = driver.tokenConfigurations[instance];
    std::printf("token %s:%s\n", kClassId.UTF8String, instance.UTF8String);
    for (TKTokenKeychainItem* item in configuration.keychainItems) {
      const signum::Bytes id = signum::ctk::apple::ObjectIdBytes(item.objectID);
      std::printf("  %s %s %s\n", [item isKindOfClass:[TKTokenKeychainKey class]] ? "key " : "cert",
                  signum::HexEncode(id).c_str(), item.label.UTF8String ?: "");
    }
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  @autoreleasepool {
    if (argc < 3 || std::string(argv[1]) != "keychain") return Usage();
    NSString* instance = @"signum";
    for (int i = 3; i + 1 < argc; i += 2) {
      if (std::string(argv[i]) != "--instance") return Usage();
      instance = @(argv[i + 1]);
    }
    const std::string command = argv[2];
    if (command == "--add") return Add(instance);
    if (command == "--remove") return Remove(instance);
    if (command == "--list") return List();
    return Usage();
  }
}

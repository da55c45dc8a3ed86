// The real signing path for end-to-end tests: a demo deployment (`signum-server init-demo` on a
// fresh SoftHSM2 token) with a running signum-server and signum-agent, stopped by their PIDs.
// Nothing in the path is mocked. The deployment itself is reference/deployment's; this adapter
// only turns its Status results into exceptions (gtest fixtures have no other way to fail setup).
#pragma once

#include <memory>
#include <stdexcept>
#include <string>

#include "signum/core/files.h"  // ReadFile, which the tests use beside the deployment
#include "signum/deployment/deployment.h"

namespace signum::pkcs11::testing {

class Deployment {
 public:
  explicit Deployment(const std::string& user = "release") {
    deployment::DeploymentOptions options;
    options.user = user;
    options.agent_tcp = false;  // the tests reach the agent over its socket only
    deployment_ = Check(deployment::Deployment::Create(std::move(options)));
    Check(deployment_->Initialize());
  }

  const std::string& root() const { return deployment_->dir(); }
  std::string agent_socket() const { return deployment_->agent_socket(); }
  // A scratch file inside the deployment directory (removed with it).
  std::string File(const std::string& name) const { return deployment_->File(name); }

  void StartServer() { Check(deployment_->StartServer()); }
  void StopServer() { Check(deployment_->StopServer()); }
  void StartAgent() { Check(deployment_->StartAgent()); }
  void StopAgent() { Check(deployment_->StopAgent()); }

 private:
  static void Check(const Status& s) {
    if (!s.ok()) throw std::runtime_error(s.ToString());
  }
  template <typename T>
  static T Check(Result<T> r) {
    if (!r.ok()) throw std::runtime_error(r.status().ToString());
    return std::move(r).value();
  }

  std::unique_ptr<deployment::Deployment> deployment_;
};

}  // namespace signum::pkcs11::testing

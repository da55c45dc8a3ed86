// The signum-server command line: serve, init-demo, audit-verify and the administration commands
// (keys, CSRs, certificates, users, tokens, client certificates, policies).
#pragma once

namespace signum::server {

int RunServerCli(int argc, char** argv);

}  // namespace signum::server

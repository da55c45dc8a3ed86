// signum-bench --pkcs11: one signature's cost through four PKCS#11 paths, side by side in one run
// (issue 12's table), each driven exactly as a signing tool drives its module (C_SignInit + C_Sign
// on a session of its own per signer):
//   softhsm       SoftHSM2 directly (the baseline: the HSM's own cost);
//   p11-kit       p11-kit-client.so -> `p11-kit server` (Unix socket) -> SoftHSM2: the peer, PKCS#11
//                 remoting with no policy, audit or TLS;
//   signum-tmpfs  libsignumpkcs11.so -> signum-agent -> signum-server (HTTPS) -> SoftHSM2, the
//                 deployment on /dev/shm: every cost of the path but the audit's fsync;
//   signum-disk   the same on disk: the audit is fdatasync'd before each answer, as in production.
// The run builds both deployments itself (or uses one named by --deployment for the signum paths),
// measures the audit filesystem's fdatasync latency, and prints ratios and issue 12's targets
// with "met"/"missed". Prints figures; it is not a pass/fail test.
#pragma once

#include <string>
#include <vector>

namespace signum::bench {

struct Pkcs11PathsOptions {
  std::vector<std::string> paths = {"softhsm", "p11-kit", "signum-tmpfs", "signum-disk"};
  std::vector<std::string> keys = {"rsa-2048", "ec-p256"};
  std::vector<int> concurrency = {1, 4, 16, 64};
  double seconds = 3.0;  // per cell
  // Signers are separate processes (each loads the module and opens its own session) rather than
  // threads of one process sharing the module.
  bool processes = false;
  // Leave the deployments running and print where they are (for profiling them afterwards).
  bool keep = false;
  // Exactly this many signatures per signer instead of `seconds` (for instruction counts).
  uint64_t signatures = 0;
  // Commands the deployments' server and agent run under (profiling: valgrind, strace).
  std::vector<std::string> server_wrapper;
  std::vector<std::string> agent_wrapper;
  std::string tmpfs_dir = "/dev/shm";  // where the tmpfs deployment goes
  std::string disk_dir;                // where the disk one goes (default: $TMPDIR or /var/tmp)
};

int RunPkcs11Paths(const Pkcs11PathsOptions& options);

}  // namespace signum::bench

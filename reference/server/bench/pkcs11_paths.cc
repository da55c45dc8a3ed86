// signum-bench --pkcs11 (see pkcs11_paths.h). Every cell runs in processes of its own: a module
// reads its environment once at C_Initialize (SOFTHSM2_CONF, SIGNUM_AGENT_SOCKET,
// P11_KIT_SERVER_ADDRESS), and the four paths need different ones, so the parent never loads a
// module; it forks one child per cell (threads mode) or one per signer (processes mode), starts
// them together and collects their latencies over a pipe.
#include "pkcs11_paths.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <boost/process.hpp>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <thread>

#include "signum/core/posix_platform.h"
#include "signum/core/algorithms.h"
#include "signum/core/crypto.h"
#include "signum/core/files.h"
#include "signum/core/pkcs11_module.h"
#include "signum/core/x509.h"
#include "signum/deployment/deployment.h"

namespace signum::bench {
namespace {

namespace bp = boost::process;
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using Env = std::map<std::string, std::string>;

// How a signer reaches one path's module.
struct Path {
  std::string name;
  Env env;  // set in the child before the module is loaded
  std::string module;
  std::string token_label;
  std::string pin;
};

struct Cell {
  bool measured = false;
  double per_second = 0;
  double p50_ms = 0;
  double p99_ms = 0;
  uint64_t errors = 0;
  std::string error;  // why the cell could not run
};

// --- the signer side (child processes) ------------------------------------------------------

Result<CK_OBJECT_HANDLE> FindPrivateKey(Pkcs11Session& session, const std::string& label) {
  CK_OBJECT_CLASS cls = CKO_PRIVATE_KEY;
  std::vector<CK_ATTRIBUTE> tmpl = {MakeAttribute(CKA_CLASS, &cls, sizeof cls),
                                    MakeAttribute(CKA_LABEL, label.data(), label.size())};
  SIGNUM_ASSIGN_OR_RETURN(std::vector<CK_OBJECT_HANDLE> found, session.FindObjects(tmpl));
  if (found.empty()) return NotFoundError("no private key labelled '" + label + "'");
  return found.front();
}

// The public key of the certificate labelled `label` on the token: what every path's signatures
// are checked against (the demo stores the certificate beside its key under the same label).
Result<PublicKey> CertificateKey(Pkcs11Session& session, const std::string& label) {
  CK_OBJECT_CLASS cls = CKO_CERTIFICATE;
  std::vector<CK_ATTRIBUTE> tmpl = {MakeAttribute(CKA_CLASS, &cls, sizeof cls),
                                    MakeAttribute(CKA_LABEL, label.data(), label.size())};
  SIGNUM_ASSIGN_OR_RETURN(std::vector<CK_OBJECT_HANDLE> found, session.FindObjects(tmpl));
  if (found.empty()) return NotFoundError("no certificate labelled '" + label + "'");
  SIGNUM_ASSIGN_OR_RETURN(Bytes der, session.GetAttribute(found.front(), CKA_VALUE));
  SIGNUM_ASSIGN_OR_RETURN(Certificate certificate, Certificate::FromDer(der));
  return certificate.GetPublicKey();
}

// The whole buffer through read(2) or write(2), across short transfers and EINTR.
template <typename Buffer, typename Transfer>
bool TransferAll(int fd, Buffer* data, size_t size, Transfer transfer) {
  auto* p = reinterpret_cast<std::conditional_t<std::is_const_v<Buffer>, const char, char>*>(data);
  while (size > 0) {
    const ssize_t n = transfer(fd, p, size);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    p += n;
    size -= static_cast<size_t>(n);
  }
  return true;
}
bool WriteAll(int fd, const void* data, size_t size) { return TransferAll(fd, data, size, ::write); }
bool ReadAll(int fd, void* data, size_t size) { return TransferAll(fd, data, size, ::read); }

// Wire format child -> parent: a status line length + text ("" = ready), then after the run:
// uint64 errors, uint64 count, count doubles (latencies in ms).
void SendText(int fd, const std::string& text) {
  const uint32_t n = static_cast<uint32_t>(text.size());
  WriteAll(fd, &n, sizeof n);
  WriteAll(fd, text.data(), n);
}

// Runs in the child: loads the module, opens `threads` sessions, reports ready, waits for the go
// byte, signs until `seconds` have passed, sends the latencies. Never returns.
[[noreturn]] void SignerProcess(const Path& path, const std::string& key_label,
                                const KeySpec& spec, int threads, double seconds,
                                uint64_t signatures, int report_fd, int go_fd) {
  for (const auto& [name, value] : path.env) ::setenv(name.c_str(), value.c_str(), 1);
  auto fail = [&](const Status& status) {
    SendText(report_fd, path.name + ": " + status.ToString());
    ::_exit(1);
  };
  auto module = Pkcs11Module::Load(path.module);
  if (!module.ok()) fail(module.status());
  auto slot = (*module)->FindSlotByTokenLabel(path.token_label);
  if (!slot.ok()) fail(slot.status());
  std::vector<Pkcs11Session> sessions;
  for (int i = 0; i < threads; ++i) {
    auto session = Pkcs11Session::Open(*module, *slot, false);
    if (!session.ok()) fail(session.status());
    if (i == 0) {
      Status login = session->Login(CKU_USER, path.pin);
      if (!login.ok()) fail(login);
    }
    sessions.push_back(std::move(session).value());
  }
  auto key = FindPrivateKey(sessions.front(), key_label);
  if (!key.ok()) fail(key.status());
  auto public_key = CertificateKey(sessions.front(), key_label);
  if (!public_key.ok()) fail(public_key.status());
  SendText(report_fd, "");  // ready
  char go = 0;
  if (!ReadAll(go_fd, &go, 1)) ::_exit(1);

  std::vector<std::vector<double>> latencies(threads);
  // Each signer's last (digest, signature): verified after the interval, outside the timing.
  std::vector<std::pair<Bytes, Bytes>> last(threads);
  std::atomic<uint64_t> errors{0};
  const auto deadline =
      Clock::now() + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
  std::vector<std::thread> workers;
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&, t] {
      const CK_MECHANISM mechanism{spec.type == KeyType::kRsa ? CKM_RSA_PKCS : CKM_ECDSA, nullptr,
                                   0};
      const std::string tag = std::to_string(::getpid()) + "/" + std::to_string(t) + "/";
      // Bounded by the deadline, or by the count when one is given.
      for (uint64_t i = 0; signatures > 0 ? i < signatures : Clock::now() < deadline; ++i) {
        const Bytes digest = Digest(HashAlgorithm::kSha256, AsBytes(tag + std::to_string(i)));
        const Bytes input = spec.type == KeyType::kRsa
                                ? BuildDigestInfo(HashAlgorithm::kSha256, digest).value()
                                : digest;
        const auto t0 = Clock::now();
        Result<Bytes> signature = sessions[t].Sign(mechanism, *key, input);
        latencies[t].push_back(
            std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
        if (!signature.ok()) {
          ++errors;
        } else {
          last[t] = {digest, std::move(signature).value()};
        }
      }
    });
  }
  for (auto& w : workers) w.join();
  // A path that answers fast with wrong signatures is no path: each signer's last signature must
  // verify with the certificate's key (OpenSSL), or the cell reports an error.
  const SignatureScheme scheme =
      spec.type == KeyType::kRsa ? SignatureScheme::kRsaPkcs1 : SignatureScheme::kEcdsa;
  for (const auto& [digest, signature] : last)
    if (!signature.empty() &&
        !VerifyDigestSignature(*public_key, scheme, HashAlgorithm::kSha256, digest, signature).ok())
      ++errors;
  std::vector<double> all;
  for (auto& l : latencies) all.insert(all.end(), l.begin(), l.end());
  const uint64_t error_count = errors, count = all.size();
  WriteAll(report_fd, &error_count, sizeof error_count);
  WriteAll(report_fd, &count, sizeof count);
  WriteAll(report_fd, all.data(), all.size() * sizeof(double));
  ::_exit(0);  // no destructors: the module's C_Finalize is not what is measured
}

// --- the parent side ------------------------------------------------------------------------

// One cell: `signers` signers of `key_label` on `path`, as threads of one child or as processes.
Cell MeasureCell(const Path& path, const std::string& key_label, const KeySpec& spec, int signers,
                 bool processes, double seconds, uint64_t signatures) {
  Cell cell;
  const int children = processes ? signers : 1;
  const int threads_each = processes ? 1 : signers;
  int go[2];
  if (::pipe2(go, O_CLOEXEC) != 0) {
    cell.error = "pipe failed";
    return cell;
  }
  struct Child {
    pid_t pid = 0;
    int report_fd = -1;
  };
  std::vector<Child> started;
  for (int c = 0; c < children; ++c) {
    int report[2];
    if (::pipe2(report, O_CLOEXEC) != 0) break;
    std::fflush(stdout);
    const pid_t pid = ::fork();
    if (pid == 0) {
      ::close(report[0]);
      ::close(go[1]);
      SignerProcess(path, key_label, spec, threads_each, seconds, signatures, report[1], go[0]);
    }
    ::close(report[1]);
    if (pid < 0) {
      ::close(report[0]);
      break;
    }
    started.push_back({pid, report[0]});
  }
  ::close(go[0]);
  // Everyone ready (or failed) before the clock starts.
  for (const Child& child : started) {
    uint32_t n = 0;
    std::string text;
    if (!ReadAll(child.report_fd, &n, sizeof n)) {
      cell.error = path.name + ": a signer died while starting";
      continue;
    }
    text.resize(n);
    ReadAll(child.report_fd, text.data(), n);
    if (!text.empty()) cell.error = text;
  }
  if (static_cast<int>(started.size()) != children && cell.error.empty())
    cell.error = "could not start every signer";
  const std::string go_bytes(started.size(), 'g');
  const auto start = Clock::now();
  if (cell.error.empty()) WriteAll(go[1], go_bytes.data(), go_bytes.size());
  ::close(go[1]);  // a child that is not told to go sees EOF and exits
  std::vector<double> all;
  for (const Child& child : started) {
    uint64_t errors = 0, count = 0;
    if (cell.error.empty() && ReadAll(child.report_fd, &errors, sizeof errors) &&
        ReadAll(child.report_fd, &count, sizeof count)) {
      std::vector<double> l(count);
      if (ReadAll(child.report_fd, l.data(), count * sizeof(double))) {
        all.insert(all.end(), l.begin(), l.end());
        cell.errors += errors;
      }
    }
    ::close(child.report_fd);
    int wstatus = 0;
    ::waitpid(child.pid, &wstatus, 0);  // our own child, by PID
  }
  const double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
  if (!cell.error.empty() || all.empty()) {
    if (cell.error.empty()) cell.error = "no signature in the interval";
    return cell;
  }
  std::sort(all.begin(), all.end());
  cell.measured = true;
  cell.per_second = static_cast<double>(all.size() - cell.errors) / elapsed;
  cell.p50_ms = all[all.size() / 2];
  cell.p99_ms = all[std::min(all.size() - 1, all.size() * 99 / 100)];
  return cell;
}

// p50 of append-and-fdatasync on `dir`'s filesystem: what one durable audit record costs there.
Result<double> FdatasyncP50Ms(const std::string& dir) {
  const std::string file = dir + "/.bench-fdatasync";
  const int fd = ::open(file.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0600);
  if (fd < 0) return InternalError("cannot create " + file);
  const std::string record(300, 'a');  // about one audit line
  std::vector<double> samples;
  for (int i = 0; i < 200; ++i) {
    const auto t0 = Clock::now();
    if (!WriteAll(fd, record.data(), record.size()) || posix::SyncFileData(fd) != 0) break;
    samples.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
  }
  ::close(fd);
  ::unlink(file.c_str());
  if (samples.empty()) return InternalError("fdatasync failed on " + dir);
  std::sort(samples.begin(), samples.end());
  return samples[samples.size() / 2];
}

// A demo deployment with the bench's keys, sized for `max_signers` concurrent requests.
Result<std::unique_ptr<deployment::Deployment>> StartDeployment(const std::string& parent,
                                                                const Pkcs11PathsOptions& bench,
                                                                int max_signers) {
  std::string pattern = parent + "/signum-bench-XXXXXX";
  if (::mkdtemp(pattern.data()) == nullptr) return InternalError("cannot create a directory in " + parent);
  deployment::DeploymentOptions options;
  options.directory = pattern + "/demo";
  options.keys = bench.keys;
  options.agent_tcp = false;
  options.detached = bench.keep;
  options.server_wrapper = bench.server_wrapper;
  options.agent_wrapper = bench.agent_wrapper;
  if (!bench.server_wrapper.empty() || !bench.agent_wrapper.empty())
    options.start_timeout_ms = 300000;  // valgrind starts slowly
  SIGNUM_ASSIGN_OR_RETURN(auto d, deployment::Deployment::Create(options));
  SIGNUM_RETURN_IF_ERROR(d->Initialize());
  // One server worker and HSM session per signer at the highest concurrency; quiet logs.
  SIGNUM_ASSIGN_OR_RETURN(std::string text, ReadFile(d->server_config()));
  nlohmann::json config = nlohmann::json::parse(text);
  config["threads"] = std::max(2, max_signers);
  config["hsm"]["sessions"] = std::max(2, max_signers);
  config["log"]["level"] = "warning";
  SIGNUM_RETURN_IF_ERROR(WriteFileAtomically(d->server_config(), config.dump(2)));
  SIGNUM_RETURN_IF_ERROR(d->Up());
  return d;
}

std::string Fixed(double v, int precision) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.*f", precision, v);
  return buf;
}

}  // namespace

int RunPkcs11Paths(const Pkcs11PathsOptions& options) {
  auto wants = [&](const std::string& name) {
    return std::find(options.paths.begin(), options.paths.end(), name) != options.paths.end();
  };
  const int max_signers = *std::max_element(options.concurrency.begin(), options.concurrency.end());
  const std::string disk_parent =
      !options.disk_dir.empty() ? options.disk_dir
                                : (std::getenv("TMPDIR") ? std::getenv("TMPDIR") : "/var/tmp");

  // The deployments: tmpfs always (its SoftHSM2 token is the direct and p11-kit paths' HSM too).
  std::printf("# signum-bench --pkcs11: starting deployments (tmpfs: %s, disk: %s) ...\n",
              options.tmpfs_dir.c_str(), disk_parent.c_str());
  std::fflush(stdout);
  auto tmpfs = StartDeployment(options.tmpfs_dir, options, max_signers);
  if (!tmpfs.ok()) {
    std::fprintf(stderr, "tmpfs deployment: %s\n", tmpfs.status().ToString().c_str());
    return 1;
  }
  std::unique_ptr<deployment::Deployment> disk;
  if (wants("signum-disk")) {
    auto d = StartDeployment(disk_parent, options, max_signers);
    if (!d.ok()) {
      std::fprintf(stderr, "disk deployment: %s\n", d.status().ToString().c_str());
      return 1;
    }
    disk = std::move(d).value();
  }

  auto hsm_env = (*tmpfs)->HsmBaselineEnv();
  auto tmpfs_env = (*tmpfs)->Env();
  if (!hsm_env.ok() || !tmpfs_env.ok()) {
    std::fprintf(stderr, "deployment environment: %s\n",
                 (!hsm_env.ok() ? hsm_env.status() : tmpfs_env.status()).ToString().c_str());
    return 1;
  }
  std::vector<Path> paths;
  Env module_env;  // SOFTHSM2_CONF and whatever else the HSM module reads
  for (const auto& [name, value] : *hsm_env)
    if (name.rfind("SIGNUM_", 0) != 0) module_env[name] = value;
  const Path softhsm{"softhsm", module_env, (*hsm_env)["SIGNUM_HSM_MODULE"],
                     (*hsm_env)["SIGNUM_HSM_TOKEN_LABEL"], (*hsm_env)["SIGNUM_HSM_PIN"]};
  if (wants("softhsm")) paths.push_back(softhsm);

  // p11-kit's remoting in front of the same token; ours to start and to stop (by PID).
  std::unique_ptr<bp::child> p11kit_server;
  const std::string p11kit_socket = (*tmpfs)->dir() + "/run/bench-p11kit.sock";
  if (wants("p11-kit")) {
    fs::remove(p11kit_socket);
    bp::environment env = boost::this_process::environment();
    for (const auto& [name, value] : module_env) env[name] = value;
    p11kit_server = std::make_unique<bp::child>(
        bp::search_path("p11-kit"), "server", "-f", "-n", p11kit_socket, "--provider",
        softhsm.module, "pkcs11:token=" + softhsm.token_label, env, bp::std_out > bp::null,
        bp::std_err > bp::null);
    for (int i = 0; i < 100 && !fs::exists(p11kit_socket); ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    paths.push_back({"p11-kit",
                     {{"P11_KIT_SERVER_ADDRESS", "unix:path=" + p11kit_socket}},
                     "/usr/lib/x86_64-linux-gnu/pkcs11/p11-kit-client.so",
                     softhsm.token_label,
                     softhsm.pin});
  }
  auto signum_path = [&](const std::string& name, const Env& env) {
    Env e = env;
    Path p{name, {}, e["SIGNUM_PKCS11_MODULE"], e["SIGNUM_TOKEN_LABEL"], e["SIGNUM_PIN"]};
    for (const char* v : {"SIGNUM_AGENT_SOCKET", "SIGNUM_AGENT_TCP", "SIGNUM_AGENT_SECRET_FILE"})
      if (e.count(v)) p.env[v] = e[v];
    return p;
  };
  if (wants("signum-tmpfs")) paths.push_back(signum_path("signum-tmpfs", *tmpfs_env));
  if (disk) {
    auto disk_env = disk->Env();
    if (!disk_env.ok()) {
      std::fprintf(stderr, "disk deployment environment: %s\n",
                   disk_env.status().ToString().c_str());
      return 1;
    }
    paths.push_back(signum_path("signum-disk", *disk_env));
  }

  // The audit filesystems' fsync cost: the durable limit is n signatures per fdatasync.
  auto fsync_disk = disk ? FdatasyncP50Ms(disk->File("audit")) : Result<double>(0.0);
  auto fsync_tmpfs = FdatasyncP50Ms((*tmpfs)->File("audit"));
  std::printf(
      "# %.1f s per cell, %u cores, signers as %s; C_Sign with CKM_RSA_PKCS over a SHA-256 "
      "DigestInfo / CKM_ECDSA over a SHA-256 digest\n"
      "# fdatasync p50 (300-byte appends): disk %s ms, tmpfs %s ms\n",
      options.seconds, std::thread::hardware_concurrency(),
      options.processes ? "processes" : "threads of one process",
      disk && fsync_disk.ok() ? Fixed(*fsync_disk, 3).c_str() : "-",
      fsync_tmpfs.ok() ? Fixed(*fsync_tmpfs, 3).c_str() : "?");
  if (options.keep) {
    std::printf("# deployments kept: %s%s%s\n", (*tmpfs)->dir().c_str(), disk ? " and " : "",
                disk ? disk->dir().c_str() : "");
  }
  std::printf("%-9s %3s", "key", "n");
  for (const Path& p : paths) std::printf(" | %-12s %7s %7s %7s", p.name.c_str(), "/s", "p50", "p99");
  std::printf("\n");

  // results[key][n][path]
  std::map<std::string, std::map<int, std::map<std::string, Cell>>> results;
  for (const std::string& label : options.keys) {
    auto spec = ParseKeySpec(label);
    if (!spec.ok()) {
      std::fprintf(stderr, "%s\n", spec.status().ToString().c_str());
      continue;
    }
    for (int n : options.concurrency) {
      std::printf("%-9s %3d", label.c_str(), n);
      std::fflush(stdout);
      for (const Path& p : paths) {
        Cell cell = MeasureCell(p, label, *spec, n, options.processes, options.seconds,
                                options.signatures);
        results[label][n][p.name] = cell;
        if (cell.measured) {
          std::printf(" | %-12s %7.0f %7.2f %7.2f", cell.errors ? "(errors!)" : "", cell.per_second,
                      cell.p50_ms, cell.p99_ms);
        } else {
          std::printf(" | %-12s %23s", "(failed)", "");
          std::fprintf(stderr, "%s %d %s: %s\n", label.c_str(), n, p.name.c_str(),
                       cell.error.c_str());
        }
        std::fflush(stdout);
      }
      std::printf("\n");
    }
  }

  // Ratios and issue 12's targets.
  std::printf("\n# ratios and targets (added p50 = path p50 - softhsm p50)\n");
  auto get = [&](const std::string& key, int n, const std::string& path) -> const Cell* {
    auto k = results.find(key);
    if (k == results.end()) return nullptr;
    auto c = k->second.find(n);
    if (c == k->second.end()) return nullptr;
    auto p = c->second.find(path);
    return p != c->second.end() && p->second.measured ? &p->second : nullptr;
  };
  auto verdict = [](bool met) { return met ? "met" : "MISSED"; };
  for (const std::string& key : options.keys) {
    for (int n : options.concurrency) {
      const Cell* direct = get(key, n, "softhsm");
      const Cell* p11 = get(key, n, "p11-kit");
      const Cell* tm = get(key, n, "signum-tmpfs");
      const Cell* dk = get(key, n, "signum-disk");
      std::printf("%-9s %3d:", key.c_str(), n);
      if (direct && p11) std::printf("  p11-kit/direct %.2f", p11->per_second / direct->per_second);
      if (direct && tm) std::printf("  tmpfs/direct %.2f", tm->per_second / direct->per_second);
      if (p11 && tm) std::printf("  tmpfs/p11-kit %.2f", tm->per_second / p11->per_second);
      if (direct && p11 && tm) {
        std::printf("  added p50 ms: p11-kit %.3f, tmpfs %.3f", p11->p50_ms - direct->p50_ms,
                    tm->p50_ms - direct->p50_ms);
      }
      if (dk && tm && fsync_disk.ok() && *fsync_disk > 0) {
        // Concurrent signers share fsyncs (group commit): n in flight can be made durable per
        // fdatasync, and no faster than the path itself without fsync (tmpfs).
        const double durable_limit = std::min(tm->per_second, n * 1000.0 / *fsync_disk);
        std::printf("  disk/durable-limit %.2f (limit %.0f/s)", dk->per_second / durable_limit,
                    durable_limit);
      }
      std::printf("\n");
    }
  }
  std::printf("\n# targets\n");
  for (const char* key : {"rsa-2048", "ec-p256"}) {
    const Cell* direct = get(key, 1, "softhsm");
    const Cell* p11 = get(key, 1, "p11-kit");
    const Cell* tm = get(key, 1, "signum-tmpfs");
    if (direct && p11 && tm) {
      const double ours = tm->p50_ms - direct->p50_ms, theirs = p11->p50_ms - direct->p50_ms;
      std::printf("%-9s 1 signer, tmpfs added p50 <= p11-kit's: %.3f vs %.3f ms: %s\n", key, ours,
                  theirs, verdict(ours <= theirs));
    }
  }
  if (const Cell *p11 = get("ec-p256", 4, "p11-kit"), *tm = get("ec-p256", 4, "signum-tmpfs");
      p11 && tm) {
    std::printf("ec-p256   4 signers, tmpfs >= p11-kit: %.0f vs %.0f/s: %s\n", tm->per_second,
                p11->per_second, verdict(tm->per_second >= p11->per_second));
  }
  if (const Cell *direct = get("rsa-2048", 4, "softhsm"), *tm = get("rsa-2048", 4, "signum-tmpfs");
      direct && tm) {
    std::printf("rsa-2048  4 signers, tmpfs >= 0.90 x direct: %.2f: %s\n",
                tm->per_second / direct->per_second,
                verdict(tm->per_second >= 0.9 * direct->per_second));
  }
  if (fsync_disk.ok() && *fsync_disk > 0) {
    for (const std::string& key : options.keys) {
      for (int n : options.concurrency) {
        const Cell* tm = get(key, n, "signum-tmpfs");
        const Cell* dk = get(key, n, "signum-disk");
        if (!tm || !dk) continue;
        const double limit = std::min(tm->per_second, n * 1000.0 / *fsync_disk);
        std::printf("%-9s %2d signers, disk >= 0.90 x durable limit (%.0f/s): %.2f: %s\n",
                    key.c_str(), n, limit, dk->per_second / limit,
                    verdict(dk->per_second >= 0.9 * limit));
      }
    }
  }

  if (p11kit_server) {
    ::kill(p11kit_server->id(), SIGTERM);  // the p11-kit server this run started, by PID
    p11kit_server->wait();
    fs::remove(p11kit_socket);
  }
  if (options.keep) return 0;
  // The deployments stop with their objects; their directories go too.
  const std::string tmpfs_root = fs::path((*tmpfs)->dir()).parent_path();
  const std::string disk_root = disk ? fs::path(disk->dir()).parent_path().string() : "";
  (*tmpfs).reset();
  disk.reset();
  std::error_code ignored;
  fs::remove_all(tmpfs_root, ignored);
  if (!disk_root.empty()) fs::remove_all(disk_root, ignored);
  return 0;
}

}  // namespace signum::bench

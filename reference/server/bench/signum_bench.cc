// signum-bench: signatures per second and latency percentiles for RSA-2048, RSA-4096 and ECDSA
// P-256 at 1, 2, 4 and 8 concurrent signers,
//   (a) directly on the HSM through PKCS#11 (HsmBackend, one session per signer), and
//   (b) through signum-server's HTTPS API (one keep-alive connection per signer),
// side by side with the ratio b/a. Prints figures; it is not a pass/fail test.
//
// By default it builds a throwaway demo deployment (signum-server init-demo) and starts the
// server itself; --config uses an existing deployment whose server is already running.
// --hsm-serialize measures with one call at a time into the module (server.json hsm.serialize),
// in both columns.
#include <signal.h>

#include <algorithm>
#include <atomic>
#include <boost/process.hpp>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "config.h"
#include "pkcs11_paths.h"
#include "hsm_backend.h"
#include "signum/core/crypto.h"
#include "signum/core/files.h"
#include "signum/core/https_client.h"
#include "signum/core/pkcs11_module.h"
#include "signum/core/wire.h"
#include "state.h"

namespace signum::bench {
namespace {

namespace bp = boost::process;
using nlohmann::json;
using Clock = std::chrono::steady_clock;

}  // namespace

struct Options {
  bool pkcs11 = false;        // the four PKCS#11 paths side by side (pkcs11_paths.h)
  Pkcs11PathsOptions paths;   // their options
  std::string config;         // existing deployment (server must be running)
  std::string server_binary;  // default: signum-server next to this binary
  double seconds = 2.0;       // per measurement cell
  std::vector<int> concurrency = {1, 2, 4, 8};
  std::vector<std::string> keys = {"rsa-2048", "rsa-4096", "ec-p256"};
  bool hsm_serialize = false;  // init-demo --hsm-serialize, and the direct column serialised too
};

namespace {

struct Cell {
  double per_second = 0;
  double p50_ms = 0;
  double p99_ms = 0;
  uint64_t errors = 0;
};

// Runs `signers` threads, each calling sign() in a loop until the deadline; sign() returns false
// on error. Every loop is bounded by the deadline.
template <typename MakeSigner>
Cell Measure(int signers, double seconds, MakeSigner make_signer) {
  std::vector<std::vector<double>> latencies(signers);
  std::atomic<uint64_t> errors{0};
  std::vector<std::thread> threads;
  const auto start = Clock::now();
  const auto deadline =
      start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
  for (int t = 0; t < signers; ++t) {
    threads.emplace_back([&, t] {
      auto sign = make_signer(t);
      uint64_t i = 0;
      while (Clock::now() < deadline) {
        const auto t0 = Clock::now();
        if (!sign(i++)) ++errors;
        latencies[t].push_back(
            std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
      }
    });
  }
  for (auto& th : threads) th.join();
  const double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
  std::vector<double> all;
  for (auto& l : latencies) all.insert(all.end(), l.begin(), l.end());
  Cell cell;
  cell.errors = errors;
  if (all.empty()) return cell;
  std::sort(all.begin(), all.end());
  cell.per_second = static_cast<double>(all.size() - errors) / elapsed;
  cell.p50_ms = all[all.size() / 2];
  cell.p99_ms = all[std::min(all.size() - 1, all.size() * 99 / 100)];
  return cell;
}

SignatureScheme SchemeFor(const KeySpec& spec) {
  return spec.type == KeyType::kRsa ? SignatureScheme::kRsaPkcs1 : SignatureScheme::kEcdsa;
}

}  // namespace

std::vector<std::string> SplitCsv(const std::string& list) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= list.size()) {
    size_t comma = std::min(list.find(',', start), list.size());
    if (comma > start) out.push_back(list.substr(start, comma - start));
    start = comma + 1;
  }
  return out;
}

// "valgrind --tool=callgrind" -> {"valgrind", "--tool=callgrind"} (no quoting: profiler flags).
std::vector<std::string> SplitWords(const std::string& text) {
  std::vector<std::string> out;
  std::string word;
  for (char c : text + " ") {
    if (c == ' ') {
      if (!word.empty()) out.push_back(word);
      word.clear();
    } else {
      word += c;
    }
  }
  return out;
}

namespace {

int Run(const Options& options, const std::string& self_path) {
  // 1. A deployment and a running server.
  std::optional<std::string> temp_dir;
  std::unique_ptr<bp::child> server;
  std::string config_path = options.config;
  const std::string server_binary =
      !options.server_binary.empty()
          ? options.server_binary
          : (std::filesystem::path(self_path).parent_path() / "signum-server").string();
  if (config_path.empty()) {
    char pattern[] = "/tmp/signum-bench-XXXXXX";
    if (!mkdtemp(pattern)) return 1;
    temp_dir = pattern;
    const std::string demo = *temp_dir + "/demo";
    std::cout << "# building a demo deployment in " << demo << " ..." << std::endl;
    std::vector<std::string> init_args = {"init-demo", demo, "--keys", "rsa-2048,rsa-4096,ec-p256"};
    if (options.hsm_serialize) init_args.push_back("--hsm-serialize");
    int rc = bp::system(server_binary, bp::args = init_args, bp::std_out > bp::null);
    if (rc != 0) {
      std::cerr << "init-demo failed\n";
      return 1;
    }
    config_path = demo + "/server.json";
    // One server worker and HSM session per signer at the highest concurrency.
    json cfg = json::parse(*ReadFile(config_path));
    const int max_signers =
        *std::max_element(options.concurrency.begin(), options.concurrency.end());
    cfg["threads"] = max_signers;
    cfg["hsm"]["sessions"] = max_signers;
    cfg["log"]["level"] = "warning";
    if (!WriteFileAtomically(config_path, cfg.dump(2)).ok()) return 1;
    server = std::make_unique<bp::child>(server_binary, "serve", "--config", config_path,
                                         bp::std_out > bp::null,
                                         bp::std_err > demo + "/logs/stderr.log");
  }
  auto config = server::LoadServerConfig(config_path);
  if (!config.ok()) {
    std::cerr << config.status().ToString() << "\n";
    return 1;
  }
  auto state = server::LoadState(config->state_file);
  if (!state.ok()) {
    std::cerr << state.status().ToString() << "\n";
    return 1;
  }
  const std::string root = config->config_dir;
  auto token = ReadSecretFile(root + "/credentials/release.token");
  if (!token.ok()) {
    std::cerr << token.status().ToString() << "\n";
    return 1;
  }
  HttpsClientConfig client_config;
  client_config.host = "127.0.0.1";
  client_config.port = config->https.port;
  client_config.ca_file = root + "/ca/root.pem";
  client_config.bearer_token = *token;
  for (int i = 0; i < 300; ++i) {  // wait (bounded) until the server answers
    auto c = HttpsClient::Create(client_config);
    if (c.ok()) {
      auto r = (*c)->Get("/v1/health");
      if (r.ok() && r->status == 200) break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }

  auto hsm_config = server::ResolveHsmConfig(*config);
  if (!hsm_config.ok()) {
    std::cerr << hsm_config.status().ToString() << "\n";
    return 1;
  }
  hsm_config->pool_size = *std::max_element(options.concurrency.begin(), options.concurrency.end());
  hsm_config->serialize_calls = hsm_config->serialize_calls || options.hsm_serialize;
  auto hsm = server::HsmBackend::Open(*hsm_config);
  if (!hsm.ok()) {
    std::cerr << hsm.status().ToString() << "\n";
    return 1;
  }

  std::printf(
      "# signum-bench: %.1f s per cell, %u cores; direct = HsmBackend over PKCS#11 in-process,\n"
      "# https = signum-server API over TLS with keep-alive (policy + audit fsync included)%s\n",
      options.seconds, std::thread::hardware_concurrency(),
      hsm_config->serialize_calls ? ";\n# HSM calls serialised (hsm.serialize)" : "");
  std::printf("%-9s %4s | %10s %8s %8s | %10s %8s %8s | %6s\n", "key", "n", "direct/s", "p50 ms",
              "p99 ms", "https/s", "p50 ms", "p99 ms", "b/a");
  for (const std::string& label : options.keys) {
    const server::CertificateRecord* cert = state->FindCertificate(label);
    if (!cert) {
      std::printf("%-9s (no such certificate in the deployment)\n", label.c_str());
      continue;
    }
    const Bytes key_id = HexDecode(cert->key_id_hex).value();
    const SignatureScheme scheme = SchemeFor(cert->key_spec);
    for (int n : options.concurrency) {
      Cell direct = Measure(n, options.seconds, [&](int t) {
        return [&, t](uint64_t i) {
          Bytes digest =
              Digest(HashAlgorithm::kSha256, AsBytes(std::to_string(t) + "/" + std::to_string(i)));
          return (*hsm)->Sign(key_id, scheme, HashAlgorithm::kSha256, digest).ok();
        };
      });
      Cell https = Measure(n, options.seconds, [&](int t) {
        auto client = std::shared_ptr<HttpsClient>(HttpsClient::Create(client_config).value());
        return [&, client, t](uint64_t i) {
          wire::SignRequest req;
          req.certificate_id = cert->id;
          req.scheme = scheme;
          req.hash = HashAlgorithm::kSha256;
          req.digest =
              Digest(HashAlgorithm::kSha256, AsBytes(std::to_string(t) + "/" + std::to_string(i)));
          req.context.process = "signum-bench";
          auto r = client->Post(std::string(wire::kSignPath), wire::ToJson(req).dump());
          return r.ok() && r->status == 200;
        };
      });
      std::printf("%-9s %4d | %10.0f %8.2f %8.2f | %10.0f %8.2f %8.2f | %6.2f%s\n", label.c_str(),
                  n, direct.per_second, direct.p50_ms, direct.p99_ms, https.per_second,
                  https.p50_ms, https.p99_ms,
                  direct.per_second > 0 ? https.per_second / direct.per_second : 0.0,
                  direct.errors + https.errors ? "  (errors!)" : "");
      std::fflush(stdout);
    }
  }

  if (server) {
    ::kill(server->id(), SIGTERM);  // the server this run started, by PID
    server->wait();
  }
  if (temp_dir) std::filesystem::remove_all(*temp_dir);
  return 0;
}

}  // namespace

int RunBench(const Options& options, const std::string& self_path) {
  return options.pkcs11 ? RunPkcs11Paths(options.paths) : Run(options, self_path);
}

}  // namespace signum::bench

int main(int argc, char** argv) {
  signum::bench::Options options;
  bool keys_given = false, concurrency_given = false, seconds_given = false;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() -> std::string { return i + 1 < argc ? argv[++i] : ""; };
    if (a == "--pkcs11") {
      options.pkcs11 = true;
    } else if (a == "--paths") {
      options.paths.paths = signum::bench::SplitCsv(next());
    } else if (a == "--processes") {
      options.paths.processes = true;
    } else if (a == "--keep") {
      options.paths.keep = true;
    } else if (a == "--signatures") {
      options.paths.signatures = std::stoull(next());
    } else if (a == "--wrap-server") {
      options.paths.server_wrapper = signum::bench::SplitWords(next());
    } else if (a == "--wrap-agent") {
      options.paths.agent_wrapper = signum::bench::SplitWords(next());
    } else if (a == "--disk-dir") {
      options.paths.disk_dir = next();
    } else if (a == "--config") {
      options.config = next();
    } else if (a == "--server") {
      options.server_binary = next();
    } else if (a == "--seconds") {
      options.seconds = std::stod(next());
      seconds_given = true;
    } else if (a == "--hsm-serialize") {
      options.hsm_serialize = true;
    } else if (a == "--keys") {
      options.keys = signum::bench::SplitCsv(next());
      keys_given = true;
    } else if (a == "--concurrency") {
      options.concurrency.clear();
      for (const std::string& n : signum::bench::SplitCsv(next()))
        options.concurrency.push_back(std::stoi(n));
      concurrency_given = true;
    } else {
      std::cerr
          << "usage: signum-bench [--config server.json] [--server PATH] [--seconds S]\n"
             "                    [--keys rsa-2048,rsa-4096,ec-p256] [--concurrency 1,2,4,8]\n"
             "                    [--hsm-serialize]\n"
             "       signum-bench --pkcs11 [--paths softhsm,p11-kit,signum-tmpfs,signum-disk]\n"
             "                    [--keys rsa-2048,ec-p256] [--concurrency 1,4,16,64] [--seconds S]\n"
             "                    [--processes] [--keep] [--disk-dir DIR] [--signatures N]\n"
             "                    [--wrap-server 'valgrind --tool=callgrind'] [--wrap-agent CMD]\n";
      return 2;
    }
  }
  if (keys_given) options.paths.keys = options.keys;
  if (concurrency_given) options.paths.concurrency = options.concurrency;
  if (seconds_given) options.paths.seconds = options.seconds;
  return signum::bench::RunBench(options, argv[0]);
}

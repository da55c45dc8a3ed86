// signum_cng_bench: signing latency and throughput through each Windows path against the real
// agent, RSA-2048 and RSA-4096 with SHA-256 PKCS#1 v1.5:
//   agent  agent::AgentClient over Winsock (the floor every provider sits on),
//   ksp    signumksp.dll through its function table (GetKeyStorageInterface, OpenKey by label,
//          SignHash),
//   csp    signumcsp.dll through the system's advapi32 (registered into the prefix,
//          CryptAcquireContext by label, CryptCreateHash/CryptHashData/CryptSignHash).
// Each path signs N messages with one thread, then with 4 threads that each hold their own
// handles; the table (like signum-bench's) gives signatures/s, p50/p99 latency and each path's
// overhead against the agent direct. A benchmark that prints figures, not a test: no speed is
// asserted. Every loop is bounded by the iteration count and by --seconds per cell.
//
// The first signature of each path and key goes to SIGNUM_CNG_OUTPUT_DIR/manifest.tsv, so
// run-wine-suite.sh verifies it with native OpenSSL (the signatures measured are real ones).
// Exit status: 0 when every signature of every cell succeeded, 1 otherwise.
//
// Environment (run-wine-suite.sh): SIGNUM_AGENT_TCP, SIGNUM_AGENT_SECRET_FILE,
// SIGNUM_CNG_OUTPUT_DIR, SIGNUM_CNG_BIN_DIR. Options: --iterations N (RSA-2048; RSA-4096 runs
// N/4), --seconds S (bound per cell).
#include <windows.h>  // WIN32_LEAN_AND_MEAN (signum_cng_common): no old winsock.h inside
// A block of its own: these need windows.h's types, so formatting must not reorder them.
#include <bcrypt.h>
#include <ncrypt.h>
#include <wincrypt.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "signum/agent/agent_client.h"
#include "signum/cng/ksp_iface.h"
#include "signum/cng/names.h"
#include "signum/cng/registration.h"
#include "suite_support.h"

namespace signum::cng {
namespace {

using Clock = std::chrono::steady_clock;

struct Options {
  int iterations = 200;  // per cell for RSA-2048; RSA-4096 runs a quarter of it
  double seconds = 10;   // bound per cell: run-wine-suite.sh gives the program 300 s in all
};

// One signer per thread, with its own handles; Sign returns the signature as the path returns
// it (big-endian for agent and KSP, little-endian for CryptoAPI), or an error.
class Signer {
 public:
  virtual ~Signer() = default;
  virtual Result<Bytes> Sign(ByteView message) = 0;
};

// ---- path 1: the agent directly ----------------------------------------------------------------

class AgentSigner : public Signer {
 public:
  static Result<std::unique_ptr<Signer>> Create(const agent::AgentEndpoint& endpoint,
                                                const std::string& certificate_id) {
    SIGNUM_ASSIGN_OR_RETURN(auto client,
                            agent::AgentClient::Connect(endpoint, "signum_cng_bench/0.1", 30000));
    return std::unique_ptr<Signer>(new AgentSigner(std::move(client), certificate_id));
  }
  Result<Bytes> Sign(ByteView message) override {
    agent_protocol::SignRequest request;
    request.certificate_id = certificate_id_;
    request.scheme = SignatureScheme::kRsaPkcs1;
    request.hash = HashAlgorithm::kSha256;
    request.digest = BcryptDigest(HashAlgorithm::kSha256, message);
    request.context.process = "signum_cng_bench.exe";
    return client_->Sign(request);
  }

 private:
  AgentSigner(std::unique_ptr<agent::AgentClient> client, std::string certificate_id)
      : client_(std::move(client)), certificate_id_(std::move(certificate_id)) {}
  std::unique_ptr<agent::AgentClient> client_;
  std::string certificate_id_;
};

// ---- path 2: the KSP's function table ------------------------------------------------------------

Status StatusFromNte(const std::string& what, SECURITY_STATUS status) {
  return Status(ErrorCode::kInternal,
                what + " returned " + Win32ErrorName(static_cast<DWORD>(status)));
}

// Loaded once per process and never unloaded, as ncrypt does (the KSP's context is process-wide).
Result<NCRYPT_KEY_STORAGE_FUNCTION_TABLE*> KspTable() {
  static const Result<NCRYPT_KEY_STORAGE_FUNCTION_TABLE*> table =
      []() -> Result<NCRYPT_KEY_STORAGE_FUNCTION_TABLE*> {
    const std::wstring path = ProviderDllPath(kKspDllName);
    HMODULE module = LoadLibraryW(path.c_str());
    if (module == nullptr) {
      return Status(ErrorCode::kNotFound,
                    "LoadLibrary(" + NarrowAscii(path) + ") failed: " +
                        Win32ErrorName(GetLastError()));
    }
    auto entry = reinterpret_cast<GetKeyStorageInterfaceFn>(
        reinterpret_cast<void*>(GetProcAddress(module, SIGNUM_KSP_ENTRY_POINT_NAME)));
    if (entry == nullptr) {
      return Status(ErrorCode::kNotFound, "no " SIGNUM_KSP_ENTRY_POINT_NAME " export");
    }
    NCRYPT_KEY_STORAGE_FUNCTION_TABLE* functions = nullptr;
    if (entry(kKspName, &functions, 0) != 0 || functions == nullptr) {
      return Status(ErrorCode::kInternal, "GetKeyStorageInterface failed");
    }
    return functions;
  }();
  return table;
}

class KspSigner : public Signer {
 public:
  static Result<std::unique_ptr<Signer>> Create(const std::string& label) {
    SIGNUM_ASSIGN_OR_RETURN(NCRYPT_KEY_STORAGE_FUNCTION_TABLE * table, KspTable());
    std::unique_ptr<KspSigner> signer(new KspSigner(table));
    SECURITY_STATUS status = table->OpenProvider(&signer->provider_, kKspName, 0);
    if (status != ERROR_SUCCESS) return StatusFromNte("OpenProvider", status);
    const std::wstring name = WidenAscii(label);
    status = table->OpenKey(signer->provider_, &signer->key_, name.c_str(), 0, 0);
    if (status != ERROR_SUCCESS) return StatusFromNte("OpenKey(" + label + ")", status);
    return std::unique_ptr<Signer>(std::move(signer));
  }
  ~KspSigner() override {
    if (key_ != 0) table_->FreeKey(provider_, key_);
    if (provider_ != 0) table_->FreeProvider(provider_);
  }
  Result<Bytes> Sign(ByteView message) override {
    Bytes digest = BcryptDigest(HashAlgorithm::kSha256, message);
    BCRYPT_PKCS1_PADDING_INFO pkcs1{BCRYPT_SHA256_ALGORITHM};
    Bytes signature(512);  // RSA-4096's size: the largest key measured
    DWORD size = 0;
    SECURITY_STATUS status = table_->SignHash(
        provider_, key_, &pkcs1, digest.data(), static_cast<DWORD>(digest.size()),
        signature.data(), static_cast<DWORD>(signature.size()), &size, NCRYPT_PAD_PKCS1_FLAG);
    if (status != ERROR_SUCCESS) return StatusFromNte("SignHash", status);
    signature.resize(size);
    return signature;
  }

 private:
  explicit KspSigner(NCRYPT_KEY_STORAGE_FUNCTION_TABLE* table) : table_(table) {}
  NCRYPT_KEY_STORAGE_FUNCTION_TABLE* table_;
  NCRYPT_PROV_HANDLE provider_ = 0;
  NCRYPT_KEY_HANDLE key_ = 0;
};

// ---- path 3: the CSP through advapi32 --------------------------------------------------------------

Status LastErrorStatus(const std::string& what) {
  return Status(ErrorCode::kInternal, what + " failed: " + Win32ErrorName(GetLastError()));
}

class CspSigner : public Signer {
 public:
  static Result<std::unique_ptr<Signer>> Create(const std::string& label) {
    std::unique_ptr<CspSigner> signer(new CspSigner);
    const std::wstring container = WidenAscii(label);
    if (!CryptAcquireContextW(&signer->provider_, container.c_str(), kCspName, PROV_RSA_FULL, 0)) {
      return LastErrorStatus("CryptAcquireContext(" + label + ")");
    }
    return std::unique_ptr<Signer>(std::move(signer));
  }
  ~CspSigner() override {
    if (provider_ != 0) CryptReleaseContext(provider_, 0);
  }
  Result<Bytes> Sign(ByteView message) override {
    HCRYPTHASH hash = 0;
    if (!CryptCreateHash(provider_, CALG_SHA_256, 0, 0, &hash)) {
      return LastErrorStatus("CryptCreateHash");
    }
    Result<Bytes> result = SignWith(hash, message);
    CryptDestroyHash(hash);
    return result;
  }

 private:
  static Result<Bytes> SignWith(HCRYPTHASH hash, ByteView message) {
    if (!CryptHashData(hash, message.data(), static_cast<DWORD>(message.size()), 0)) {
      return LastErrorStatus("CryptHashData");
    }
    DWORD size = 0;
    if (!CryptSignHashW(hash, AT_SIGNATURE, nullptr, 0, nullptr, &size)) {
      return LastErrorStatus("CryptSignHash (size)");
    }
    Bytes signature(size);
    if (!CryptSignHashW(hash, AT_SIGNATURE, nullptr, 0, signature.data(), &size)) {
      return LastErrorStatus("CryptSignHash");
    }
    signature.resize(size);
    return signature;
  }
  HCRYPTPROV provider_ = 0;
};

// Registers the CSP into this prefix (or machine) for the benchmark, and removes it again.
class CspRegistrationScope {
 public:
  CspRegistrationScope() : status_(RegisterCsp(ProviderDllPath(kCspDllName))) {}
  ~CspRegistrationScope() {
    if (!status_.ok()) return;
    Status removed = UnregisterCsp();
    if (!removed.ok()) std::fprintf(stderr, "UnregisterCsp: %s\n", removed.ToString().c_str());
  }
  const Status& status() const { return status_; }

 private:
  Status status_;
};

// ---- measurement ---------------------------------------------------------------------------------

struct Cell {
  int signatures = 0;  // successful ones
  int errors = 0;
  std::string first_error;
  double per_second = 0;
  double p50_ms = 0;
  double p99_ms = 0;
  Bytes first_message, first_signature;  // thread 0's first signature
};

// Runs one thread per signer (handles made beforehand, outside the clock); together they make
// `total` signatures, each stopping early at the deadline.
Cell Measure(std::vector<std::unique_ptr<Signer>>& signers, int total, double seconds) {
  const int threads = static_cast<int>(signers.size());
  std::vector<std::vector<double>> latencies(threads);
  std::vector<int> errors(threads, 0);
  std::vector<std::string> first_errors(threads);
  Cell cell;
  std::vector<std::thread> workers;
  const auto start = Clock::now();
  const auto deadline =
      start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
  for (int t = 0; t < threads; ++t) {
    const int share = total / threads + (t < total % threads ? 1 : 0);
    workers.emplace_back([&, t, share] {
      for (int i = 0; i < share && Clock::now() < deadline; ++i) {
        const std::string text = "signum_cng_bench thread " + std::to_string(t) + " signature " +
                                 std::to_string(i);
        const Bytes message(text.begin(), text.end());
        const auto t0 = Clock::now();
        Result<Bytes> signature = signers[t]->Sign(message);
        const double ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
        if (!signature.ok()) {
          if (errors[t]++ == 0) first_errors[t] = signature.status().ToString();
          continue;
        }
        latencies[t].push_back(ms);
        if (t == 0 && i == 0) {
          cell.first_message = message;
          cell.first_signature = *signature;
        }
      }
    });
  }
  for (auto& worker : workers) worker.join();
  const double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
  std::vector<double> all;
  for (int t = 0; t < threads; ++t) {
    all.insert(all.end(), latencies[t].begin(), latencies[t].end());
    cell.errors += errors[t];
    if (cell.first_error.empty()) cell.first_error = first_errors[t];
  }
  cell.signatures = static_cast<int>(all.size());
  if (all.empty()) return cell;
  std::sort(all.begin(), all.end());
  cell.per_second = static_cast<double>(all.size()) / elapsed;
  cell.p50_ms = all[all.size() / 2];
  cell.p99_ms = all[std::min(all.size() - 1, all.size() * 99 / 100)];
  return cell;
}

struct Path {
  const char* name;
  const char* manifest_kind;  // how the path's signature bytes are laid out
  std::function<Result<std::unique_ptr<Signer>>(const wire::CertificateEntry&)> make_signer;
};

bool ParseOptions(int argc, char** argv, Options* options) {
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg.rfind("--gtest_", 0) == 0) continue;  // run-wine-suite.sh passes gtest's options
    if ((arg == "--iterations" || arg == "--seconds") && i + 1 < argc) {
      const double value = std::atof(argv[++i]);
      if (value <= 0) return false;
      if (arg == "--iterations") options->iterations = static_cast<int>(value);
      if (arg == "--seconds") options->seconds = value;
      continue;
    }
    return false;
  }
  return true;
}

int Run(const Options& options) {
  const std::string output_dir = EnvironmentValue("SIGNUM_CNG_OUTPUT_DIR");
  if (EnvironmentValue("SIGNUM_AGENT_TCP").empty() || output_dir.empty()) {
    std::fprintf(stderr,
                 "SIGNUM_AGENT_TCP / SIGNUM_CNG_OUTPUT_DIR not set: run through "
                 "conformance/cng/run-wine-suite.sh\n");
    return 1;
  }
  auto endpoint = agent::AgentEndpointFromEnvironment();
  if (!endpoint.ok()) {
    std::fprintf(stderr, "agent endpoint: %s\n", endpoint.status().ToString().c_str());
    return 1;
  }
  endpoint->unix_socket.clear();  // Windows: TCP only
  auto lister = agent::AgentClient::Connect(*endpoint, "signum_cng_bench/0.1", 30000);
  if (!lister.ok()) {
    std::fprintf(stderr, "agent: %s\n", lister.status().ToString().c_str());
    return 1;
  }
  auto list = (*lister)->ListCertificates(/*refresh=*/true);
  if (!list.ok()) {
    std::fprintf(stderr, "ListCertificates: %s\n", list.status().ToString().c_str());
    return 1;
  }

  CspRegistrationScope csp_registration;
  const std::vector<Path> paths = {
      {"agent", "rsa-pkcs1",
       [&](const wire::CertificateEntry& c) { return AgentSigner::Create(*endpoint, c.id); }},
      {"ksp", "rsa-pkcs1", [](const wire::CertificateEntry& c) { return KspSigner::Create(c.label); }},
      {"csp", "rsa-pkcs1-le",
       [&](const wire::CertificateEntry& c) -> Result<std::unique_ptr<Signer>> {
         SIGNUM_RETURN_IF_ERROR(csp_registration.status());
         return CspSigner::Create(c.label);
       }},
  };
  const SignatureManifest manifest(output_dir);
  manifest.Clear();
  struct KeyRun {
    const char* label;
    int iterations;
  };
  const KeyRun keys[] = {{"rsa-2048", options.iterations},
                         {"rsa-4096", std::max(1, options.iterations / 4)}};
  const int thread_counts[] = {1, 4};

  std::printf(
      "# signum_cng_bench: RSA PKCS#1 v1.5 SHA-256 against the real agent (loopback TCP), "
      "%u cores;\n"
      "# n signatures per cell (bounded by %.0f s), threads with their own handles; "
      "x agent = signatures/s relative to the agent direct, +p50 = added median latency\n",
      std::thread::hardware_concurrency(), options.seconds);
  std::printf("%-6s %-9s %7s %5s | %10s %8s %8s | %8s %8s\n", "path", "key", "threads", "n",
              "sigs/s", "p50 ms", "p99 ms", "x agent", "+p50 ms");
  bool failed = false;
  for (const KeyRun& key : keys) {
    const wire::CertificateEntry* certificate = nullptr;
    for (const auto& entry : list->certificates) {
      if (entry.label == key.label) certificate = &entry;
    }
    if (certificate == nullptr) {
      std::printf("%-6s %-9s (no such certificate in the deployment)\n", "-", key.label);
      failed = true;
      continue;
    }
    const Bytes certificate_der = PemToDer(certificate->certificate_pem);
    const size_t signature_size = static_cast<size_t>(certificate->key.bits) / 8;
    for (int threads : thread_counts) {
      std::optional<Cell> agent_cell;
      for (const Path& path : paths) {
        std::vector<std::unique_ptr<Signer>> signers;
        Status setup;
        for (int t = 0; t < threads && setup.ok(); ++t) {
          auto signer = path.make_signer(*certificate);
          if (signer.ok()) {
            signers.push_back(std::move(*signer));
          } else {
            setup = signer.status();
          }
        }
        if (!setup.ok()) {
          std::printf("%-6s %-9s %7d  setup failed: %s\n", path.name, key.label, threads,
                      setup.ToString().c_str());
          failed = true;
          continue;
        }
        const Cell cell = Measure(signers, key.iterations, options.seconds);
        signers.clear();
        std::string ratio = "-", added = "-";
        if (std::string(path.name) == "agent") {
          agent_cell = cell;
        } else if (agent_cell && agent_cell->per_second > 0) {
          char text[32];
          std::snprintf(text, sizeof(text), "%.2f", cell.per_second / agent_cell->per_second);
          ratio = text;
          std::snprintf(text, sizeof(text), "%+.2f", cell.p50_ms - agent_cell->p50_ms);
          added = text;
        }
        std::printf("%-6s %-9s %7d %5d | %10.1f %8.2f %8.2f | %8s %8s%s\n", path.name, key.label,
                    threads, cell.signatures, cell.per_second, cell.p50_ms, cell.p99_ms,
                    ratio.c_str(), added.c_str(), cell.errors ? "  (errors!)" : "");
        if (cell.errors) {
          std::printf("       %d error(s), first: %s\n", cell.errors, cell.first_error.c_str());
          failed = true;
        }
        if (cell.signatures == 0) failed = true;
        if (threads == 1 && !cell.first_signature.empty()) {
          if (cell.first_signature.size() != signature_size) {
            std::printf("       %s: signature of %zu bytes, expected %zu\n", path.name,
                        cell.first_signature.size(), signature_size);
            failed = true;
          }
          manifest.Add(std::string(path.name) + "-" + key.label, path.manifest_kind,
                       HashAlgorithm::kSha256, ByteView(cell.first_message), cell.first_signature,
                       certificate_der);
        }
        std::fflush(stdout);
      }
    }
  }
  // SignatureManifest reports write failures as gtest failures; none may have happened.
  if (::testing::UnitTest::GetInstance()->ad_hoc_test_result().Failed()) failed = true;
  std::printf("%s\n", failed ? "FAILED: see the lines above" : "all signatures succeeded");
  return failed ? 1 : 0;
}

}  // namespace
}  // namespace signum::cng

int main(int argc, char** argv) {
  signum::cng::Options options;
  if (!signum::cng::ParseOptions(argc, argv, &options)) {
    std::fprintf(stderr, "usage: %s [--iterations N] [--seconds S]\n", argv[0]);
    return 2;
  }
  return signum::cng::Run(options);
}

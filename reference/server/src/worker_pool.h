// Threads for work that must overlap a blocking call of the requesting thread: the audit record's
// fdatasync runs on a worker while the request thread waits for the HSM's signature.
//
// std::async(std::launch::async) made a thread per signature (clone, a fresh stack, exit): tens of
// microseconds on every request. A WorkerPool keeps its threads: a task goes to an idle worker; a
// new worker is started only when none is idle, up to `max_threads`, and then stays for later
// tasks. Past the bound, tasks queue (the bound is the server's max in-flight signatures, so a
// request never waits for another request's audit). Destruction runs what is queued and joins.
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <future>
#include <mutex>
#include <thread>
#include <vector>

#include "signum/core/status.h"

namespace signum::server {

class WorkerPool {
 public:
  explicit WorkerPool(size_t max_threads);
  ~WorkerPool();
  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;

  // Runs `task` on a worker; the future carries its Status.
  std::future<Status> Submit(std::function<Status()> task);

  size_t threads() const;  // started so far (for tests)

 private:
  void Work();

  const size_t max_threads_;
  mutable std::mutex mu_;
  std::condition_variable ready_;
  struct Job {
    std::function<Status()> run;
    std::promise<Status> done;
  };
  std::deque<Job> queue_;
  std::vector<std::thread> threads_;
  size_t idle_ = 0;
  bool stopping_ = false;
};

}  // namespace signum::server

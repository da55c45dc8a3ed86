#include "worker_pool.h"

#include <algorithm>

namespace signum::server {

WorkerPool::WorkerPool(size_t max_threads) : max_threads_(std::max<size_t>(1, max_threads)) {}

WorkerPool::~WorkerPool() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  ready_.notify_all();
  for (std::thread& t : threads_) t.join();
}

std::future<Status> WorkerPool::Submit(std::function<Status()> task) {
  Job job{std::move(task), {}};
  std::future<Status> result = job.done.get_future();
  {
    std::lock_guard lock(mu_);
    queue_.push_back(std::move(job));
    // Every queued task beyond the idle workers wants a worker of its own, while the bound allows.
    if (queue_.size() > idle_ && threads_.size() < max_threads_) {
      threads_.emplace_back([this] { Work(); });
    }
  }
  ready_.notify_one();
  return result;
}

size_t WorkerPool::threads() const {
  std::lock_guard lock(mu_);
  return threads_.size();
}

void WorkerPool::Work() {
  std::unique_lock lock(mu_);
  ++idle_;
  while (true) {
    ready_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
    if (queue_.empty()) return;  // stopping, and nothing left to run
    Job job = std::move(queue_.front());
    queue_.pop_front();
    --idle_;
    lock.unlock();
    Status status = job.run();
    lock.lock();
    // Idle again before the submitter learns the result, so its next task finds this worker.
    ++idle_;
    lock.unlock();
    job.done.set_value(std::move(status));
    lock.lock();
  }
}

}  // namespace signum::server

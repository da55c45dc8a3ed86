// WorkerPool: the audit record's fdatasync overlaps the HSM signature on a kept thread (no thread
// per request), never more threads than the bound, and nothing queued is lost at shutdown.
#include "worker_pool.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <future>
#include <latch>
#include <vector>

#include "signum/testing/status_matchers.h"

namespace signum::server {
namespace {

using ::signum::testing::StatusIs;

TEST(WorkerPoolTest, SequentialTasksReuseOneThread) {
  WorkerPool pool(8);
  for (int i = 0; i < 50; ++i) {
    EXPECT_OK(pool.Submit([] { return Status::Ok(); }).get());
  }
  EXPECT_EQ(pool.threads(), 1u);
}

TEST(WorkerPoolTest, ConcurrentTasksEachGetAThreadUpToTheBound) {
  WorkerPool pool(4);
  std::latch all_started(4);
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  std::vector<std::future<Status>> results;
  for (int i = 0; i < 4; ++i) {
    results.push_back(pool.Submit([&] {
      all_started.count_down();
      released.wait();
      return Status::Ok();
    }));
  }
  // Four blocked tasks ran at once: each had a thread (a queue would deadlock here; bounded wait).
  std::thread waiter([&] { all_started.wait(); });
  waiter.join();
  EXPECT_EQ(pool.threads(), 4u);
  // A fifth task over the bound queues until a worker is free.
  std::future<Status> fifth = pool.Submit([] { return InternalError("fifth ran"); });
  EXPECT_EQ(fifth.wait_for(std::chrono::milliseconds(50)), std::future_status::timeout);
  release.set_value();
  for (auto& r : results) EXPECT_OK(r.get());
  EXPECT_THAT(fifth.get(), StatusIs(ErrorCode::kInternal));
  EXPECT_EQ(pool.threads(), 4u);
}

TEST(WorkerPoolTest, DestructionRunsWhatIsQueued) {
  std::atomic<int> ran{0};
  std::vector<std::future<Status>> results;
  {
    WorkerPool pool(1);
    for (int i = 0; i < 20; ++i) {
      results.push_back(pool.Submit([&] {
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
        ++ran;
        return Status::Ok();
      }));
    }
  }
  EXPECT_EQ(ran.load(), 20);
  for (auto& r : results) EXPECT_OK(r.get());
}

}  // namespace
}  // namespace signum::server

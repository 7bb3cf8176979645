#include "sync/spin_lock.h"

#include <gtest/gtest.h>

#include <thread>
#include <vector>

#include "sync/std_sync.h"

namespace hpcalloc {
namespace {

TEST(SpinLock, TryLockFailsWhileHeld) {
  SpinLock<StdSync> lock;
  EXPECT_FALSE(lock.is_locked_relaxed());
  EXPECT_TRUE(lock.try_lock());
  EXPECT_TRUE(lock.is_locked_relaxed());
  EXPECT_FALSE(lock.try_lock());
  lock.unlock();
  EXPECT_TRUE(lock.try_lock());
  lock.unlock();
}

TEST(SpinLock, GuardReleasesOnScopeExit) {
  SpinLock<StdSync> lock;
  {
    LockGuard guard(lock);
    EXPECT_TRUE(lock.is_locked_relaxed());
  }
  EXPECT_FALSE(lock.is_locked_relaxed());
}

TEST(SpinLock, KnowsWhetherTheCallerHoldsIt) {
  SpinLock<StdSync> lock;
  EXPECT_FALSE(lock.held_by_caller());
  lock.lock();
  EXPECT_TRUE(lock.held_by_caller());
  bool other_thread_sees_itself_as_holder = true;
  std::thread([&] { other_thread_sees_itself_as_holder = lock.held_by_caller(); }).join();
  EXPECT_FALSE(other_thread_sees_itself_as_holder);
  lock.unlock();
  EXPECT_FALSE(lock.held_by_caller());
  std::thread([&] {
    EXPECT_TRUE(lock.try_lock());
    EXPECT_TRUE(lock.held_by_caller());
    lock.unlock();
  }).join();
}

// Functional check on real threads; the memory-order proof is the Relacy
// model (model/spin_lock_model.cpp) and the TSan build.
TEST(SpinLock, CountsExactlyUnderContention) {
  SpinLock<StdSync> lock;
  long counter = 0;
  constexpr int kThreads = 4;
  constexpr int kIncrements = 20000;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < kIncrements; ++i) {
        LockGuard guard(lock);
        ++counter;
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(counter, long{kThreads} * kIncrements);
}

}  // namespace
}  // namespace hpcalloc

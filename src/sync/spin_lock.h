// SpinLock: a test-and-test-and-set lock on the Sync policy, for the short
// critical sections outside the fast path (pool of heaps, memory sources,
// fork). Lock-free structures are preferred; where a lock is needed it is this
// one, so the model checker runs the same code as production.
//
// The lock word holds its holder's identity (never 0) instead of a plain 1,
// written by the very CAS that takes the lock: so held_by_caller() answers
// exactly, with no window between taking the lock and recording who has it.
// The fork handlers need that answer to tell a lock this thread holds (a fork
// from a signal handler that interrupted it inside the allocator) from a lock
// another thread holds (wait for it). The identity is the address of a
// thread-local byte: unique among live threads, and nonzero. Under the model
// checker every simulated thread runs on one OS thread, so they share one
// identity; mutual exclusion does not depend on it (only on 0 vs nonzero),
// and the models never ask held_by_caller().
//
// Orders is a policy only so that model/ can instantiate a deliberately
// broken twin (see SpinLockOrders below); production code never passes it.
#pragma once

#include <atomic>
#include <cstdint>

#include "sync/sync_policy.h"

namespace hpcalloc {

struct SpinLockOrders {
  // Taking the lock acquires: it synchronises with the release in unlock() of
  // the previous holder, so its writes are visible inside our section.
  static constexpr std::memory_order kAcquire = std::memory_order_acquire;
  // Releasing publishes the section's writes to the next acquirer.
  static constexpr std::memory_order kRelease = std::memory_order_release;
};

namespace spin_lock_detail {
// Its address names the calling thread (see the top comment).
inline thread_local char holder_marker;
}  // namespace spin_lock_detail

template <SyncPolicy Sync, class Orders = SpinLockOrders>
class SpinLock {
 public:
  constexpr SpinLock() : holder_(0) {}
  SpinLock(const SpinLock&) = delete;
  SpinLock& operator=(const SpinLock&) = delete;

  void lock() {
    const std::uintptr_t self = caller();
    for (;;) {
      std::uintptr_t expected = 0;
      // Failure is relaxed: nothing is read under a lock we did not get.
      if (holder_.compare_exchange_strong(expected, self, Orders::kAcquire,
                                          std::memory_order_relaxed)) {
        return;
      }
      // Poll with plain loads so waiters do not bounce the line with RMWs;
      // relaxed is enough because the CAS above re-acquires.
      while (holder_.load(std::memory_order_relaxed) != 0) Sync::spin_pause();
    }
  }

  bool try_lock() {
    // Relaxed pre-check avoids an RMW on a held lock; the CAS acquires.
    std::uintptr_t expected = 0;
    return holder_.load(std::memory_order_relaxed) == 0 &&
           holder_.compare_exchange_strong(expected, caller(), Orders::kAcquire,
                                           std::memory_order_relaxed);
  }

  void unlock() { holder_.store(0, Orders::kRelease); }

  // For fork handlers and assertions only: the answer may be stale at once.
  bool is_locked_relaxed() const { return holder_.load(std::memory_order_relaxed) != 0; }

  // Whether the calling thread holds this lock. Exact, unlike
  // is_locked_relaxed(): relaxed suffices because only this thread ever
  // writes its own identity, and a thread always reads its own latest write
  // to a location (or a later one, which is not its identity: another
  // thread's, or 0 once released).
  bool held_by_caller() const { return holder_.load(std::memory_order_relaxed) == caller(); }

 private:
  static std::uintptr_t caller() {
    return reinterpret_cast<std::uintptr_t>(&spin_lock_detail::holder_marker);
  }

  typename Sync::template Atomic<std::uintptr_t> holder_;
};

// Scoped holder; works with any lock that has lock()/unlock().
template <class Lock>
class LockGuard {
 public:
  explicit LockGuard(Lock& lock) : lock_(lock) { lock_.lock(); }
  ~LockGuard() { lock_.unlock(); }
  LockGuard(const LockGuard&) = delete;
  LockGuard& operator=(const LockGuard&) = delete;

 private:
  Lock& lock_;
};

}  // namespace hpcalloc

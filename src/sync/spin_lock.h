// SpinLock: a test-and-test-and-set lock on the Sync policy, for the short
// critical sections outside the fast path (pool of heaps, memory sources,
// fork). Lock-free structures are preferred; where a lock is needed it is this
// one, so the model checker runs the same code as production.
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

template <SyncPolicy Sync, class Orders = SpinLockOrders>
class SpinLock {
 public:
  constexpr SpinLock() : locked_(0) {}
  SpinLock(const SpinLock&) = delete;
  SpinLock& operator=(const SpinLock&) = delete;

  void lock() {
    while (locked_.exchange(1, Orders::kAcquire) != 0) {
      // Poll with plain loads so waiters do not bounce the line with RMWs;
      // relaxed is enough because the exchange above re-acquires.
      while (locked_.load(std::memory_order_relaxed) != 0) Sync::spin_pause();
    }
  }

  bool try_lock() {
    // Relaxed pre-check avoids an RMW on a held lock; the exchange acquires.
    return locked_.load(std::memory_order_relaxed) == 0 &&
           locked_.exchange(1, Orders::kAcquire) == 0;
  }

  void unlock() { locked_.store(0, Orders::kRelease); }

  // For fork handlers and assertions only: the answer may be stale at once.
  bool is_locked_relaxed() const { return locked_.load(std::memory_order_relaxed) != 0; }

 private:
  typename Sync::template Atomic<std::uint32_t> locked_;
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

// StdSync: the production synchronisation policy, a thin layer over
// std::atomic that only removes the defaulted orders and operators (see
// sync_policy.h). Every method is a forced-inline forward: the fast path must
// compile to exactly what std::atomic would. The integer RMWs exist only for
// integral T (they are instantiated on use).
#pragma once

#include <atomic>
#include <type_traits>

#include "sync/sync_policy.h"

namespace hpcalloc {

struct StdSync {
  template <class T>
  class Atomic {
   public:
    constexpr Atomic() noexcept : value_{} {}
    constexpr explicit Atomic(T initial) noexcept : value_{initial} {}
    Atomic(const Atomic&) = delete;
    Atomic& operator=(const Atomic&) = delete;

    [[gnu::always_inline]] T load(std::memory_order mo) const noexcept { return value_.load(mo); }
    [[gnu::always_inline]] void store(T v, std::memory_order mo) noexcept { value_.store(v, mo); }
    [[gnu::always_inline]] T exchange(T v, std::memory_order mo) noexcept {
      return value_.exchange(v, mo);
    }
    [[gnu::always_inline]] bool compare_exchange_weak(T& expected, T desired,
                                                      std::memory_order success,
                                                      std::memory_order failure) noexcept {
      return value_.compare_exchange_weak(expected, desired, success, failure);
    }
    [[gnu::always_inline]] bool compare_exchange_strong(T& expected, T desired,
                                                        std::memory_order success,
                                                        std::memory_order failure) noexcept {
      return value_.compare_exchange_strong(expected, desired, success, failure);
    }
    [[gnu::always_inline]] T fetch_add(T v, std::memory_order mo) noexcept {
      return value_.fetch_add(v, mo);
    }
    [[gnu::always_inline]] T fetch_sub(T v, std::memory_order mo) noexcept {
      return value_.fetch_sub(v, mo);
    }
    [[gnu::always_inline]] T fetch_or(T v, std::memory_order mo) noexcept {
      return value_.fetch_or(v, mo);
    }
    [[gnu::always_inline]] T fetch_and(T v, std::memory_order mo) noexcept {
      return value_.fetch_and(v, mo);
    }

   private:
    std::atomic<T> value_;
  };

  // A plain field: same layout as T, so it can overlay memory that holds a T
  // (the link word at the start of a freed block).
  template <class T>
  class Var {
   public:
    constexpr Var() noexcept : value_{} {}
    constexpr explicit Var(T initial) noexcept : value_{initial} {}
    [[gnu::always_inline]] T load() const noexcept { return value_; }
    [[gnu::always_inline]] void store(T v) noexcept { value_ = v; }

   private:
    T value_;
  };

  [[gnu::always_inline]] static void fence(std::memory_order mo) noexcept {
    std::atomic_thread_fence(mo);
  }

  [[gnu::always_inline]] static void spin_pause() noexcept {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    asm volatile("yield");
#endif
  }
};

static_assert(SyncPolicy<StdSync>);
static_assert(sizeof(StdSync::Var<void*>) == sizeof(void*));
static_assert(sizeof(StdSync::Atomic<void*>) == sizeof(void*));

}  // namespace hpcalloc

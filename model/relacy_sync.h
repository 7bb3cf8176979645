// RelacySync: the Sync policy that runs production headers under the Relacy
// Race Detector (Debian relacy-dev). Every operation takes a defaulted
// std::source_location, evaluated at the *caller*, and hands it to Relacy as
// its debug info, so a race report names the line of production code.
//
// Include this after every standard and project header of the translation
// unit. It includes Relacy's individual headers, never relacy.hpp or
// relacy_std.hpp: those #define malloc, free, new, delete, assert, errno and
// the memory_order_* names. Relacy still replaces the global operator
// new/delete for the whole program, so a model test is its own executable.
// Relacy atomics can only be constructed inside a running test: model-checked
// structures are members of the rl::test_suite.
#pragma once

#include <atomic>
#include <source_location>
#include <type_traits>

#include "sync/sync_policy.h"

// Relacy's headers must come in this order.
// clang-format off
#include <relacy/base.hpp>
#include <relacy/context.hpp>
#include <relacy/context_base_impl.hpp>
#include <relacy/backoff.hpp>
#include <relacy/atomic_fence.hpp>
#include <relacy/atomic.hpp>
#include <relacy/var.hpp>
#include <relacy/test_suite.hpp>
#include <relacy/dyn_thread.hpp>
// Not used by us, but the context instantiates their data types.
#include <relacy/stdlib/mutex.hpp>
#include <relacy/stdlib/condition_variable.hpp>
#include <relacy/stdlib/semaphore.hpp>
#include <relacy/stdlib/event.hpp>
// clang-format on

namespace hpcalloc::model {

using Where = std::source_location;

inline rl::memory_order to_relacy(std::memory_order mo) {
  switch (mo) {
    case std::memory_order_relaxed: return rl::mo_relaxed;
    case std::memory_order_consume: return rl::mo_consume;
    case std::memory_order_acquire: return rl::mo_acquire;
    case std::memory_order_release: return rl::mo_release;
    case std::memory_order_acq_rel: return rl::mo_acq_rel;
    case std::memory_order_seq_cst: return rl::mo_seq_cst;
  }
  return rl::mo_seq_cst;
}

inline rl::debug_info to_relacy(const Where& where) {
  return rl::debug_info(where.function_name(), where.file_name(), where.line());
}

struct RelacySync {
  template <class T>
  class Atomic {
   public:
    // Relacy reports loads of never-stored atomics, so default to T{}.
    explicit Atomic(T initial = T{}, Where w = Where::current()) {
      value_.store(initial, rl::mo_relaxed, to_relacy(w));
    }
    Atomic(const Atomic&) = delete;
    Atomic& operator=(const Atomic&) = delete;

    T load(std::memory_order mo, Where w = Where::current()) const {
      return value_.load(to_relacy(mo), to_relacy(w));
    }
    void store(T v, std::memory_order mo, Where w = Where::current()) {
      value_.store(v, to_relacy(mo), to_relacy(w));
    }
    T exchange(T v, std::memory_order mo, Where w = Where::current()) {
      return value_.exchange(v, to_relacy(mo), to_relacy(w));
    }
    bool compare_exchange_weak(T& expected, T desired, std::memory_order success,
                               std::memory_order failure, Where w = Where::current()) {
      const rl::debug_info info = to_relacy(w);
      return value_.compare_exchange_weak(expected, desired, to_relacy(success), info,
                                          to_relacy(failure), info);
    }
    bool compare_exchange_strong(T& expected, T desired, std::memory_order success,
                                 std::memory_order failure, Where w = Where::current()) {
      const rl::debug_info info = to_relacy(w);
      return value_.compare_exchange_strong(expected, desired, to_relacy(success), info,
                                            to_relacy(failure), info);
    }
    T fetch_add(T v, std::memory_order mo, Where w = Where::current()) {
      return value_.fetch_add(v, to_relacy(mo), to_relacy(w));
    }
    T fetch_sub(T v, std::memory_order mo, Where w = Where::current()) {
      return value_.fetch_sub(v, to_relacy(mo), to_relacy(w));
    }
    T fetch_or(T v, std::memory_order mo, Where w = Where::current()) {
      return value_.fetch_or(v, to_relacy(mo), to_relacy(w));
    }
    T fetch_and(T v, std::memory_order mo, Where w = Where::current()) {
      return value_.fetch_and(v, to_relacy(mo), to_relacy(w));
    }

   private:
    rl::atomic<T> value_;
  };

  template <class T>
  class Var {
   public:
    explicit Var(T initial = T{}) : value_(initial) {}
    T load(Where w = Where::current()) const { return value_(to_relacy(w)); }
    void store(T v, Where w = Where::current()) { value_(to_relacy(w)) = v; }

   private:
    rl::var<T> value_;
  };

  static void fence(std::memory_order mo, Where w = Where::current()) {
    rl::atomic_thread_fence(to_relacy(mo), to_relacy(w));
  }

  // A spin-wait iteration: tells the scheduler this thread is waiting for
  // another, so full search does not explore the spin forever.
  static void spin_pause(Where w = Where::current()) { rl::yield(1, to_relacy(w)); }
};

static_assert(SyncPolicy<RelacySync>);

}  // namespace hpcalloc::model

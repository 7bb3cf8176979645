// The synchronisation policy every lock-free structure is written against.
//
// A policy S provides:
//   S::Atomic<T>  atomics whose every operation names its memory order (no
//                 defaulted seq_cst, no operators), so the orders in the code
//                 are the ones the model checker explores;
//   S::Var<T>     a plain shared field (a freed block's link) with explicit
//                 load/store, so the model checker sees races on it too;
//   S::fence(mo)  a standalone fence;
//   S::spin_pause() what a spin-wait does between polls (a CPU pause in
//                 production, a yield point under the model checker).
// StdSync (std::atomic) is production; model/relacy_sync.h is the Relacy
// Race Detector's. Policies may take extra defaulted parameters (Relacy takes
// the caller's source location); callers never pass them.
#pragma once

#include <atomic>
#include <concepts>
#include <cstdint>

namespace hpcalloc {

template <class S>
concept SyncPolicy = requires(typename S::template Atomic<std::uintptr_t>& word,
                              typename S::template Atomic<void*>& pointer,
                              typename S::template Var<std::uintptr_t>& var, std::uintptr_t value,
                              std::uintptr_t& expected, void* p, void*& expected_p) {
  { word.load(std::memory_order_acquire) } -> std::same_as<std::uintptr_t>;
  word.store(value, std::memory_order_release);
  { word.exchange(value, std::memory_order_acq_rel) } -> std::same_as<std::uintptr_t>;
  {
    word.compare_exchange_weak(expected, value, std::memory_order_acq_rel,
                               std::memory_order_acquire)
    } -> std::same_as<bool>;
  {
    word.compare_exchange_strong(expected, value, std::memory_order_acq_rel,
                                 std::memory_order_acquire)
    } -> std::same_as<bool>;
  { word.fetch_add(value, std::memory_order_relaxed) } -> std::same_as<std::uintptr_t>;
  { word.fetch_sub(value, std::memory_order_relaxed) } -> std::same_as<std::uintptr_t>;
  { word.fetch_or(value, std::memory_order_relaxed) } -> std::same_as<std::uintptr_t>;
  { word.fetch_and(value, std::memory_order_relaxed) } -> std::same_as<std::uintptr_t>;
  { pointer.load(std::memory_order_acquire) } -> std::same_as<void*>;
  { pointer.exchange(p, std::memory_order_acq_rel) } -> std::same_as<void*>;
  {
    pointer.compare_exchange_strong(expected_p, p, std::memory_order_acq_rel,
                                    std::memory_order_acquire)
    } -> std::same_as<bool>;
  { var.load() } -> std::same_as<std::uintptr_t>;
  var.store(value);
  S::fence(std::memory_order_seq_cst);
  S::spin_pause();
};

}  // namespace hpcalloc

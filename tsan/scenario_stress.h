// What the stress programs that run a model's scenario on real threads share
// (remote_free_queue_stress, remote_frees_stress, heap_pool_stress): a
// checker that counts failed scenario checks and prints the first, and the
// loop that runs a fresh scenario `iterations` times and stops at the first
// failure.
#pragma once

#include <atomic>
#include <cstdio>
#include <memory>

#include "model/scenarios/std_thread_runner.h"

namespace hpcalloc::stress {

struct CountingChecker {
  static inline std::atomic<unsigned> failures{0};
  static void check(bool ok, const char* what) {
    if (!ok && failures.fetch_add(1, std::memory_order_relaxed) == 0) {
      std::fprintf(stderr, "FAIL: %s\n", what);
    }
  }
};

// Runs Scenario (built with CountingChecker) `iterations` times on
// std::threads; false, with "FAIL after N iterations", at the first failure.
template <class Scenario>
bool run_iterations(unsigned iterations) {
  for (unsigned i = 0; i < iterations; ++i) {
    auto scenario = std::make_unique<Scenario>();
    scenarios::run_with_std_threads(*scenario);
    if (CountingChecker::failures.load(std::memory_order_relaxed) != 0) {
      std::fprintf(stderr, "FAIL after %u iterations\n", i + 1);
      return false;
    }
  }
  return true;
}

}  // namespace hpcalloc::stress

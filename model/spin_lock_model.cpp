// Relacy model of sync/spin_lock.h: N threads each increment a plain shared
// counter (a Sync::Var, so Relacy checks it for races) inside the lock, twice.
// Mutual exclusion and the acquire/release pairing are what make the final
// count exact and the accesses race-free. The broken twins weaken one order
// each; Relacy must report the data race they open.
#include <atomic>

#include "model/model_runner.h"
#include "sync/spin_lock.h"

namespace hpcalloc::model {
namespace {

struct RelaxedAcquire {
  static constexpr std::memory_order kAcquire = std::memory_order_relaxed;  // BROKEN
  static constexpr std::memory_order kRelease = std::memory_order_release;
};
struct RelaxedRelease {
  static constexpr std::memory_order kAcquire = std::memory_order_acquire;
  static constexpr std::memory_order kRelease = std::memory_order_relaxed;  // BROKEN
};

template <unsigned kThreads, class Orders>
struct CounterUnderLock : rl::test_suite<CounterUnderLock<kThreads, Orders>, kThreads> {
  static constexpr int kRounds = 2;

  SpinLock<RelacySync, Orders> lock;
  RelacySync::Var<int> counter{0};

  void thread(unsigned /*index*/) {
    for (int round = 0; round < kRounds; ++round) {
      lock.lock();
      counter.store(counter.load() + 1);
      lock.unlock();
    }
    // try_lock must never succeed while another thread holds the lock.
    if (lock.try_lock()) {
      counter.store(counter.load() + 1);
      lock.unlock();
    } else {
      lock.lock();
      counter.store(counter.load() + 1);
      lock.unlock();
    }
  }

  void after() { RL_ASSERT(counter.load() == static_cast<int>(kThreads) * (kRounds + 1)); }
};

const ModelCheck kChecks[] = {
    {"two_threads_full_search", &run_relacy<CounterUnderLock<2, SpinLockOrders>>, rl::sched_full, 0,
     rl::test_result_success},
    {"three_threads_context_bound_2", &run_relacy<CounterUnderLock<3, SpinLockOrders>>,
     rl::sched_bound, 2, rl::test_result_success},
    {"broken_relaxed_acquire_is_caught", &run_relacy<CounterUnderLock<2, RelaxedAcquire>>,
     rl::sched_full, 0, rl::test_result_data_race},
    {"broken_relaxed_release_is_caught", &run_relacy<CounterUnderLock<2, RelaxedRelease>>,
     rl::sched_full, 0, rl::test_result_data_race},
};

}  // namespace
}  // namespace hpcalloc::model

int main(int argc, char** argv) {
  using namespace hpcalloc::model;
  return run_model_checks(kChecks, sizeof kChecks / sizeof kChecks[0], argc, argv);
}

// Relacy model of mem/heap_pool.h running the production HeapPool and the
// production RemoteFrees with a model heap (model/scenarios/
// heap_pool_scenario.h, shared with tsan/heap_pool_stress.cpp): a thread
// exits (its heap is trimmed and pooled) while another frees blocks of that
// heap in carriers and has the pool drain it when it finds it pooled, and a
// third thread starts and adopts a heap. Checks: frees into a pooled heap do
// not wait for a thread to start or exit; every block freed exactly once
// with its payload; every carrier home; heaps made only at need; no race on
// a heap's owner state or the pool's lists.
// A variant adds a background decay pass over the pooled heaps
// (HeapPool::decay_pooled) on the sender's thread.
// Broken twins (each must be caught): the decay pass walking the pooled
// heaps without the pool's lock, pooling before the exit's trim
// (adoption before the queue is drained), the stand-in draining without the
// pool's lock, a relaxed pool lock, and a release/acquire handshake between
// a push and the pooling instead of seq_cst (frees stranded in a pooled
// heap).
#include "model/scenarios/heap_pool_scenario.h"

#include "model/model_runner.h"
#include "model/scenarios/relacy_runner.h"

namespace hpcalloc::model {
namespace {

using namespace scenarios;

template <unsigned kBlocks, bool kAdopter, class Protocol = HeapPoolProtocol,
          class Policy = RemoteFreesPolicy, bool kDecayer = false>
using ExitFreeAdopt = RelacyRunner<
    HeapPoolScenario<RelacySync, RelacyChecker, kBlocks, kAdopter, Protocol, Policy, kDecayer>>;
// ... with a background decay pass over the pooled heaps on the sender's
// thread (after its frees), racing the pooling and the adoption.
template <unsigned kBlocks, class Protocol = HeapPoolProtocol>
using ExitFreeDecayAdopt = ExitFreeAdopt<kBlocks, true, Protocol, RemoteFreesPolicy, true>;

const ModelCheck kChecks[] = {
    // The exiting owner and a thread freeing two of its blocks (one carrier)
    // while it is pooled: every interleaving (~4 s).
    {"exit_while_freeing_two_threads_full_search", &run_relacy<ExitFreeAdopt<2, false>>,
     rl::sched_full, 0, rl::test_result_success},
    // ... and a thread that starts meanwhile and adopts the heap (or makes a
    // new one if it comes first): three blocks (two carriers), and one.
    {"exit_free_adopt_three_threads_context_bound_3", &run_relacy<ExitFreeAdopt<3, true>>,
     rl::sched_bound, 3, rl::test_result_success},
    {"exit_free_adopt_one_block_three_threads_context_bound_3", &run_relacy<ExitFreeAdopt<1, true>>,
     rl::sched_bound, 3, rl::test_result_success},
    {"exit_free_decay_adopt_three_threads_context_bound_3", &run_relacy<ExitFreeDecayAdopt<1>>,
     rl::sched_bound, 3, rl::test_result_success},
    {"broken_decay_without_lock_is_caught", &run_relacy<ExitFreeDecayAdopt<1, DecayWithoutLock>>,
     rl::sched_full, 0, rl::test_result_data_race},
    {"broken_adoption_before_the_drain_is_caught",
     &run_relacy<ExitFreeAdopt<1, true, PoolsBeforeTrim>>, rl::sched_full, 0,
     rl::test_result_data_race},
    {"broken_stand_in_without_lock_is_caught",
     &run_relacy<ExitFreeAdopt<1, true, StandInWithoutLock>>, rl::sched_full, 0,
     rl::test_result_data_race},
    {"broken_relaxed_pool_lock_is_caught", &run_relacy<ExitFreeAdopt<1, true, RelaxedPoolLock>>,
     rl::sched_full, 0, rl::test_result_data_race},
    {"broken_release_acquire_handshake_is_caught",
     &run_relacy<ExitFreeAdopt<1, false, HeapPoolProtocol, ReleaseAcquireHandshake>>,
     rl::sched_full, 0, rl::test_result_user_assert_failed},
};

}  // namespace
}  // namespace hpcalloc::model

int main(int argc, char** argv) {
  using namespace hpcalloc::model;
  return run_model_checks(kChecks, sizeof kChecks / sizeof kChecks[0], argc, argv);
}

// Relacy model of ds/remote_free_queue.h. Producers write a block's payload
// (a plain Sync::Var) and push it; the owner takes the list and reads every
// payload. Checks: every pushed block is drained exactly once (none lost,
// none twice), and the payloads and links are race-free. Broken twins weaken
// the push's release, the take's acquire, or take with load + store instead
// of one exchange; Relacy must catch each. The scenario's body is shared with
// tsan/remote_free_queue_stress.cpp (model/scenarios/).
#include "model/scenarios/remote_free_queue_scenario.h"

#include "model/model_runner.h"
#include "model/scenarios/relacy_runner.h"

namespace hpcalloc::model {
namespace {

using scenarios::LoadThenStoreTake;
using scenarios::RelaxedPush;
using scenarios::RelaxedTake;

// Threads 0..kProducers-1 push kPerProducer blocks each; the last thread is
// the owner, which drains kDrains times while they run; after() drains the
// rest and checks every block was seen exactly once with its payload.
template <unsigned kProducers, unsigned kPerProducer, unsigned kDrains, class Orders,
          unsigned kChain = 1>
using ProducersAndOwner =
    RelacyRunner<scenarios::RemoteFreeQueueScenario<RelacySync, RelacyChecker, kProducers,
                                                    kPerProducer, kDrains, Orders, kChain>>;

const ModelCheck kChecks[] = {
    {"one_producer_full_search", &run_relacy<ProducersAndOwner<1, 3, 3, RemoteFreeQueueOrders>>,
     rl::sched_full, 0, rl::test_result_success},
    {"two_producers_full_search", &run_relacy<ProducersAndOwner<2, 1, 2, RemoteFreeQueueOrders>>,
     rl::sched_full, 0, rl::test_result_success},
    {"two_producers_two_blocks_context_bound_3",
     &run_relacy<ProducersAndOwner<2, 2, 2, RemoteFreeQueueOrders>>, rl::sched_bound, 3,
     rl::test_result_success},
    // Chains of two (push_chain: the heaps' batched remote frees).
    {"two_producers_chains_of_two_context_bound_3",
     &run_relacy<ProducersAndOwner<2, 2, 2, RemoteFreeQueueOrders, 2>>, rl::sched_bound, 3,
     rl::test_result_success},
    {"three_producers_context_bound_2",
     &run_relacy<ProducersAndOwner<3, 1, 2, RemoteFreeQueueOrders>>, rl::sched_bound, 2,
     rl::test_result_success},
    {"broken_relaxed_push_is_caught", &run_relacy<ProducersAndOwner<1, 2, 2, RelaxedPush>>,
     rl::sched_full, 0, rl::test_result_data_race},
    {"broken_relaxed_take_is_caught", &run_relacy<ProducersAndOwner<1, 2, 2, RelaxedTake>>,
     rl::sched_full, 0, rl::test_result_data_race},
    {"broken_relaxed_chain_push_is_caught", &run_relacy<ProducersAndOwner<1, 2, 2, RelaxedPush, 2>>,
     rl::sched_full, 0, rl::test_result_data_race},
    {"broken_load_then_store_take_is_caught",
     &run_relacy<ProducersAndOwner<2, 1, 2, LoadThenStoreTake>>, rl::sched_full, 0,
     rl::test_result_user_assert_failed},
};

}  // namespace
}  // namespace hpcalloc::model

int main(int argc, char** argv) {
  using namespace hpcalloc::model;
  return run_model_checks(kChecks, sizeof kChecks / sizeof kChecks[0], argc, argv);
}

// Relacy model of mem/remote_frees.h, the remote-free protocol: senders
// batch frees of the owner's blocks and push them in carriers (or alone,
// without memory for a carrier), the owner drains, frees what each carrier
// lists and hands the carrier straight back, and each sender drains its
// carriers home. The scenario (model/scenarios/remote_frees_scenario.h) is
// shared with tsan/remote_frees_stress.cpp. Checks: every block freed exactly
// once with its payload, a block freed twice reported exactly once, every
// carrier home once, no carrier allocated while draining, no race on
// payloads, carrier words or links.
// Broken twins (each must be caught): a carrier pushed untagged (the owner
// takes it for a block), a chain without the duplicate check (p, q, p loses
// q), a drain that frees carriers through the batch (it allocates while
// draining: the old protocol), a relaxed push (carrier words race), a
// kPushAll drain that leaves held carriers where they are (never home).
#include "model/scenarios/remote_frees_scenario.h"

#include "model/model_runner.h"
#include "model/scenarios/relacy_runner.h"

namespace hpcalloc::model {
namespace {

using namespace scenarios;

template <unsigned kSenders, unsigned kPerSender, unsigned kDrains,
          class Policy = RemoteFreesPolicy, bool kCarriers = true, bool kDuplicate = false,
          unsigned kCapacity = 2>
using Senders = RelacyRunner<RemoteFreesScenario<RelacySync, RelacyChecker, kSenders, kPerSender,
                                                 kDrains, Policy, kCarriers, kDuplicate, kCapacity>>;

const ModelCheck kChecks[] = {
    // One sender and the owner (two threads), every interleaving: a full
    // batch of two and a batch of one, each in a carrier; the owner drains
    // twice while they fly, the sender drains once for its carriers.
    {"carriers_two_threads_full_search", &run_relacy<Senders<1, 3, 2>>, rl::sched_full, 0,
     rl::test_result_success},
    // The same with carriers held two at a time: the second carrier's
    // return sends both home from inside the owner's drain.
    {"held_returns_two_threads_full_search", &run_relacy<Senders<1, 3, 2, TwoHeldReturns>>,
     rl::sched_full, 0, rl::test_result_success},
    // A duplicate inside one carrier (p, q, p with room for three) and across
    // two carriers (batches of two).
    {"duplicate_in_a_carrier_two_threads_full_search",
     &run_relacy<Senders<1, 2, 1, RemoteFreesPolicy, true, true, 3>>, rl::sched_full, 0,
     rl::test_result_success},
    {"duplicate_across_carriers_two_threads_full_search",
     &run_relacy<Senders<1, 2, 1, RemoteFreesPolicy, true, true, 2>>, rl::sched_full, 0,
     rl::test_result_success},
    // Out of memory: blocks travel alone, the duplicate reported by the sender.
    {"duplicate_without_carriers_two_threads_full_search",
     &run_relacy<Senders<1, 2, 1, RemoteFreesPolicy, false, true, 3>>, rl::sched_full, 0,
     rl::test_result_success},
    // Two senders and the owner (three threads).
    {"carriers_three_threads_context_bound_3", &run_relacy<Senders<2, 2, 2>>, rl::sched_bound, 3,
     rl::test_result_success},
    {"held_returns_three_threads_context_bound_3",
     &run_relacy<Senders<2, 2, 2, TwoHeldReturns>>, rl::sched_bound, 3, rl::test_result_success},
    {"duplicate_three_threads_context_bound_3",
     &run_relacy<Senders<2, 2, 1, RemoteFreesPolicy, true, true, 3>>, rl::sched_bound, 3,
     rl::test_result_success},
    {"without_carriers_three_threads_context_bound_3",
     &run_relacy<Senders<2, 2, 1, RemoteFreesPolicy, false>>, rl::sched_bound, 3,
     rl::test_result_success},
    {"broken_untagged_carrier_is_caught", &run_relacy<Senders<1, 2, 1, UntaggedCarriers>>,
     rl::sched_full, 0, rl::test_result_user_assert_failed},
    {"broken_duplicate_not_detected_is_caught",
     &run_relacy<Senders<1, 2, 1, UncheckedChains, false, true, 3>>, rl::sched_full, 0,
     rl::test_result_user_assert_failed},
    {"broken_drain_that_allocates_is_caught",
     &run_relacy<Senders<1, 2, 1, DrainFreesCarriersThroughBatch, true, false, 1>>,
     rl::sched_full, 0,
     rl::test_result_user_assert_failed},
    {"broken_relaxed_carrier_push_is_caught", &run_relacy<Senders<1, 2, 1, RelaxedCarrierPush>>,
     rl::sched_full, 0, rl::test_result_data_race},
    {"broken_held_returns_stranded_is_caught",
     &run_relacy<Senders<1, 2, 1, HeldReturnsStranded>>, rl::sched_full, 0,
     rl::test_result_user_assert_failed},
};

}  // namespace
}  // namespace hpcalloc::model

int main(int argc, char** argv) {
  using namespace hpcalloc::model;
  return run_model_checks(kChecks, sizeof kChecks / sizeof kChecks[0], argc, argv);
}

// ThreadSanitizer stress of mem/remote_frees.h: the senders/owner scenario of
// the Relacy model (model/scenarios/remote_frees_scenario.h, the same body)
// on real threads with StdSync: four senders free 64 blocks each of the
// owner in batches of 8 carried in carriers, one of them freeing a block
// twice inside a batch (p, q, p), while the owner drains and the carriers
// come home; then the same without carriers (out of memory: the sender
// reports the duplicate). TSan checks payloads, carrier words and links for
// races; the scenario checks every block arrives exactly once, the
// duplicate is reported exactly once and every carrier comes home. Any TSan
// report (halt_on_error=1 in ctest) or failed check fails the test.
//
//   remote_frees_stress                 the production protocol
//   remote_frees_stress --broken NAME   a broken twin (untagged_carriers,
//                                       unchecked_chains, drain_allocates,
//                                       relaxed_push, stranded_returns),
//                                       which must fail
#include <atomic>
#include <cstdio>
#include <cstring>
#include <memory>
#include <thread>

#include "model/scenarios/remote_frees_scenario.h"
#include "sync/std_sync.h"
#include "tsan/scenario_stress.h"

namespace {

using namespace hpcalloc;
using stress::CountingChecker;

template <class Policy, bool kCarriers>
using Scenario = scenarios::RemoteFreesScenario<StdSync, CountingChecker, 4, 64, 200, Policy,
                                                kCarriers, /*kDuplicate=*/true,
                                                /*kCapacity=*/8>;

// The model's owner drains a fixed 200 times. On a busy machine it could
// finish those before a sender ran, leaving every batch to after(), on the
// main thread, ordered after the senders by their join: then a broken
// push (relaxed_push) raced with nothing and went unseen (it did, with
// both cores busy). Here the owner keeps draining until every block has
// arrived, so it takes the senders' batches itself, with no order between
// their writes and its reads but the queue's own. A broken twin that loses
// blocks would keep it waiting: once every sender has finished it drains
// kDrainsAfterSenders more times and stops (after() reports the loss). The
// senders count themselves with relaxed atomics, which TSan does not take
// for an order, so the count hides no race.
template <class Policy, bool kCarriers>
struct Stress : Scenario<Policy, kCarriers> {
  using Base = Scenario<Policy, kCarriers>;
  static constexpr unsigned kDrainsAfterSenders = 64;
  std::atomic<unsigned> senders_done{0};

  unsigned arrived() const {
    unsigned n = 0;
    for (const auto& f : this->freed) n += f.load() != 0 ? 1 : 0;
    return n;
  }
  void thread(unsigned index) {
    if (index != Base::kOwner) {
      Base::thread(index);
      senders_done.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    unsigned after_senders = 0;
    while (arrived() < Base::kBlocks) {
      this->ends[Base::kOwner].drain(Returns::kHold);
      if (senders_done.load(std::memory_order_relaxed) == Base::kSenders &&
          ++after_senders > kDrainsAfterSenders) {
        break;
      }
      std::this_thread::yield();
    }
  }
};

template <class Policy, bool kCarriers = true>
int run(unsigned iterations) {
  if (!stress::run_iterations<Stress<Policy, kCarriers>>(iterations)) return 1;
  std::printf("remote_frees_stress: %u iterations of %u blocks (%s), no failure\n", iterations,
              Stress<Policy, kCarriers>::kBlocks, kCarriers ? "carriers" : "alone");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  constexpr unsigned kIterations = 300;
  if (argc == 3 && std::strcmp(argv[1], "--broken") == 0) {
    using namespace scenarios;
    const char* twin = argv[2];
    if (std::strcmp(twin, "untagged_carriers") == 0) return run<UntaggedCarriers>(kIterations);
    if (std::strcmp(twin, "unchecked_chains") == 0) return run<UncheckedChains, false>(kIterations);
    if (std::strcmp(twin, "drain_allocates") == 0) {
      return run<DrainFreesCarriersThroughBatch>(kIterations);
    }
    if (std::strcmp(twin, "relaxed_push") == 0) return run<RelaxedCarrierPush>(kIterations);
    if (std::strcmp(twin, "stranded_returns") == 0) return run<HeldReturnsStranded>(kIterations);
  }
  if (argc != 1) {
    std::fprintf(stderr,
                 "usage: %s [--broken "
                 "untagged_carriers|unchecked_chains|drain_allocates|relaxed_push|"
                 "stranded_returns]\n",
                 argv[0]);
    return 2;
  }
  if (const int failed = run<RemoteFreesPolicy>(kIterations); failed != 0) return failed;
  return run<RemoteFreesPolicy, false>(kIterations);
}

// ThreadSanitizer stress of ds/remote_free_queue.h: the producers/owner
// scenario of the Relacy model (model/scenarios/remote_free_queue_scenario.h,
// the same body) on real threads with StdSync, with many blocks and many
// iterations, where Relacy explores every interleaving of a few. TSan checks
// the links and payloads for races; the scenario checks that every block is
// taken exactly once with its payload. Any TSan report (halt_on_error=1 in
// ctest) or failed check fails the test.
//
//   remote_free_queue_stress                 the production queue
//   remote_free_queue_stress --broken NAME   a broken twin (relaxed_push,
//                                            relaxed_take, load_then_store_take),
//                                            which must fail: a demonstration
//                                            that the stress can catch them
#include <atomic>
#include <cstdio>
#include <cstring>
#include <memory>

#include "model/scenarios/remote_free_queue_scenario.h"
#include "sync/std_sync.h"
#include "tsan/scenario_stress.h"

namespace {

using namespace hpcalloc;
using stress::CountingChecker;

// Four producers push 2000 blocks each (one at a time, or in chains of
// kChain as the heaps batch their remote frees) while the owner drains 20000
// times (mostly finding the queue empty, so drains interleave with pushes).
template <class Orders, unsigned kChain = 1>
using Stress =
    scenarios::RemoteFreeQueueScenario<StdSync, CountingChecker, 4, 2000, 20000, Orders, kChain>;

template <class Orders, unsigned kChain = 1>
int run(unsigned iterations) {
  if (!stress::run_iterations<Stress<Orders, kChain>>(iterations)) return 1;
  std::printf("remote_free_queue_stress: %u iterations of %u blocks in chains of %u, no failure\n",
              iterations, Stress<Orders, kChain>::kBlocks, kChain);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  constexpr unsigned kIterations = 1000;
  if (argc == 3 && std::strcmp(argv[1], "--broken") == 0) {
    if (std::strcmp(argv[2], "relaxed_push") == 0) return run<scenarios::RelaxedPush>(kIterations);
    if (std::strcmp(argv[2], "relaxed_take") == 0) return run<scenarios::RelaxedTake>(kIterations);
    if (std::strcmp(argv[2], "load_then_store_take") == 0) {
      return run<scenarios::LoadThenStoreTake>(kIterations);
    }
  }
  if (argc != 1) {
    std::fprintf(stderr, "usage: %s [--broken relaxed_push|relaxed_take|load_then_store_take]\n",
                 argv[0]);
    return 2;
  }
  if (const int failed = run<RemoteFreeQueueOrders>(kIterations); failed != 0) return failed;
  return run<RemoteFreeQueueOrders, 8>(kIterations / 2);
}

// ThreadSanitizer stress of mem/heap_pool.h: the exit/free/adopt scenario of
// the Relacy model (model/scenarios/heap_pool_scenario.h, the same body, the
// production HeapPool and RemoteFrees over a model heap) on real threads: a
// thread exits while another frees 64 of its blocks in carriers (having the
// pool drain the heap once it finds it pooled) and a third starts and
// adopts; the sender then runs a background decay pass over the pooled
// heaps (HeapPool::decay_pooled). TSan checks the heaps' owner state and the pool's lists for
// races; the scenario checks nothing waits in a pooled heap, every block arrives once and every
// carrier comes home.
//
//   heap_pool_stress                 the production protocol
//   heap_pool_stress --broken NAME   a broken twin (pools_before_trim,
//                                    stand_in_without_lock,
//                                    relaxed_pool_lock,
//                                    decay_without_lock), which must fail.
// The model's fourth twin (a release/acquire handshake) needs a store
// buffer to fail, which TSan does not simulate: it is the model's alone.
#include <atomic>
#include <cstdio>
#include <cstring>
#include <memory>

#include "model/scenarios/heap_pool_scenario.h"
#include "sync/std_sync.h"
#include "tsan/scenario_stress.h"

namespace {

using namespace hpcalloc;
using stress::CountingChecker;

template <class Protocol>
using Stress = scenarios::HeapPoolScenario<StdSync, CountingChecker, 64, /*kAdopter=*/true,
                                           Protocol, RemoteFreesPolicy, /*kDecayer=*/true>;

template <class Protocol>
int run(unsigned iterations) {
  if (!stress::run_iterations<Stress<Protocol>>(iterations)) return 1;
  std::printf("heap_pool_stress: %u iterations, no failure\n", iterations);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  constexpr unsigned kIterations = 2000;
  if (argc == 3 && std::strcmp(argv[1], "--broken") == 0) {
    using namespace scenarios;
    const char* twin = argv[2];
    if (std::strcmp(twin, "pools_before_trim") == 0) return run<PoolsBeforeTrim>(kIterations);
    if (std::strcmp(twin, "stand_in_without_lock") == 0) {
      return run<StandInWithoutLock>(kIterations);
    }
    if (std::strcmp(twin, "relaxed_pool_lock") == 0) return run<RelaxedPoolLock>(kIterations);
    if (std::strcmp(twin, "decay_without_lock") == 0) return run<DecayWithoutLock>(kIterations);
  }
  if (argc != 1) {
    std::fprintf(stderr,
                 "usage: %s [--broken pools_before_trim|stand_in_without_lock|relaxed_pool_lock|"
                 "decay_without_lock]\n",
                 argv[0]);
    return 2;
  }
  return run<HeapPoolProtocol>(kIterations);
}

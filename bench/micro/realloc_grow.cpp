// Micro benchmark of realloc growing one block step by step, the pattern of a
// vector or string buffer appended to, beside glibc running the same loop
// (micro_api.h). Arguments {start, end, step}: the block starts at `start`
// bytes and grows by `step` per iteration; past `end` it is freed and a new
// one started (that malloc + free is part of the cost). The three ranges reach
// the three ways hpcalloc grows a block: within or across small classes,
// into the free neighbour of a medium chunk, and by mremap of a huge mapping.
// Items per second count realloc calls.
#include <benchmark/benchmark.h>

#include <cstddef>

#include "micro_api.h"

namespace hpcalloc::bench {
namespace {

template <MallocApi Api>
void realloc_grow(benchmark::State& state) {
  const auto start = static_cast<std::size_t>(state.range(0));
  const auto end = static_cast<std::size_t>(state.range(1));
  const auto step = static_cast<std::size_t>(state.range(2));
  std::size_t size = start;
  void* p = Api::malloc(size);
  for (auto _ : state) {
    size += step;
    if (size > end) {
      Api::free(p);
      size = start;
      p = Api::malloc(size);
    } else {
      p = Api::realloc(p, size);
    }
    benchmark::DoNotOptimize(p);
  }
  Api::free(p);
  state.SetItemsProcessed(state.iterations());
}

void grow_ranges(benchmark::internal::Benchmark* b) {
  b->ArgNames({"start", "end", "step"});
  b->Args({16, 1024, 16});                // small classes
  b->Args({2048, 512 << 10, 2048});       // medium chunks
  b->Args({2 << 20, 64 << 20, 1 << 20});  // huge mappings
}

BENCHMARK_TEMPLATE(realloc_grow, Hpcalloc)->Apply(grow_ranges);
BENCHMARK_TEMPLATE(realloc_grow, Glibc)->Apply(grow_ranges);

}  // namespace
}  // namespace hpcalloc::bench

BENCHMARK_MAIN();

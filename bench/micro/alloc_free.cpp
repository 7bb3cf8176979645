// Micro benchmarks of the single-thread fast paths of the prefixed API, each
// beside glibc's malloc running the same loop (micro_api.h):
//   malloc_free             p = malloc(size); free(p): the per-thread cache hit
//   malloc_free_sized       the same pair, freed with free_sized(p, size)
//   batch_malloc_then_free  malloc `count` 64-byte blocks, then free them in
//                           order: fills and drains the cache, reaching the
//                           runs behind it
//   calloc_free             calloc(1, size); free: the zeroing on top of a pair
// Items per second count malloc + free pairs. Sizes cover small classes
// (<= 1 KiB), medium chunks and a huge mapping (4 MiB).
#include <benchmark/benchmark.h>

#include <cstddef>
#include <vector>

#include "micro_api.h"

namespace hpcalloc::bench {
namespace {

template <MallocApi Api>
void malloc_free_sized(benchmark::State& state) {
  const auto size = static_cast<std::size_t>(state.range(0));
  for (auto _ : state) {
    void* p = Api::malloc(size);
    benchmark::DoNotOptimize(p);
    Api::free_sized(p, size);
  }
  state.SetItemsProcessed(state.iterations());
}

template <MallocApi Api>
void batch_malloc_then_free(benchmark::State& state) {
  constexpr std::size_t kBlockSize = 64;
  std::vector<void*> blocks(static_cast<std::size_t>(state.range(0)));
  for (auto _ : state) {
    for (void*& block : blocks) {
      block = Api::malloc(kBlockSize);
      benchmark::DoNotOptimize(block);
    }
    for (void* block : blocks) Api::free(block);
  }
  state.SetItemsProcessed(state.iterations() * state.range(0));
}

template <MallocApi Api>
void calloc_free(benchmark::State& state) {
  const auto size = static_cast<std::size_t>(state.range(0));
  for (auto _ : state) {
    void* p = Api::calloc(1, size);
    benchmark::DoNotOptimize(p);
    Api::free(p);
  }
  state.SetItemsProcessed(state.iterations());
}

void pair_sizes(benchmark::internal::Benchmark* b) {
  for (long size : {16, 64, 256, 1024, 4096, 65536, 4 << 20}) b->Arg(size);
}

BENCHMARK_TEMPLATE(malloc_free, Hpcalloc)->Apply(pair_sizes);
BENCHMARK_TEMPLATE(malloc_free, Glibc)->Apply(pair_sizes);
BENCHMARK_TEMPLATE(malloc_free_sized, Hpcalloc)->Arg(16)->Arg(256)->Arg(4096);
BENCHMARK_TEMPLATE(malloc_free_sized, Glibc)->Arg(16)->Arg(256)->Arg(4096);
BENCHMARK_TEMPLATE(batch_malloc_then_free, Hpcalloc)->Arg(16)->Arg(100)->Arg(1000)->Arg(10000);
BENCHMARK_TEMPLATE(batch_malloc_then_free, Glibc)->Arg(16)->Arg(100)->Arg(1000)->Arg(10000);
BENCHMARK_TEMPLATE(calloc_free, Hpcalloc)->Arg(64)->Arg(4096)->Arg(65536);
BENCHMARK_TEMPLATE(calloc_free, Glibc)->Arg(64)->Arg(4096)->Arg(65536);

}  // namespace
}  // namespace hpcalloc::bench

BENCHMARK_MAIN();

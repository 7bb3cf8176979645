// The two allocators every micro benchmark runs against, as policies of one
// shape: hpcalloc's prefixed API (linked statically, next to glibc) and
// glibc's own malloc, the reference a reader compares each number with. The
// benchmarks are templates over `MallocApi`, so both instantiations measure
// the same loop. glibc 2.36 has no free_sized; its policy frees plainly.
#ifndef HPCALLOC_BENCH_MICRO_API_H
#define HPCALLOC_BENCH_MICRO_API_H

#include <concepts>
#include <cstddef>
#include <cstdlib>

#include <benchmark/benchmark.h>

#include "api/hpcalloc.h"

namespace hpcalloc::bench {

template <typename Api>
concept MallocApi = requires(void* p, std::size_t size) {
  { Api::malloc(size) } -> std::same_as<void*>;
  { Api::calloc(size, size) } -> std::same_as<void*>;
  { Api::realloc(p, size) } -> std::same_as<void*>;
  { Api::free(p) } -> std::same_as<void>;
  { Api::free_sized(p, size) } -> std::same_as<void>;
};

struct Hpcalloc {
  static void* malloc(std::size_t size) { return hpc_malloc(size); }
  static void* calloc(std::size_t count, std::size_t size) { return hpc_calloc(count, size); }
  static void* realloc(void* p, std::size_t size) { return hpc_realloc(p, size); }
  static void free(void* p) { hpc_free(p); }
  static void free_sized(void* p, std::size_t size) { hpc_free_sized(p, size); }
};

struct Glibc {
  static void* malloc(std::size_t size) { return std::malloc(size); }
  static void* calloc(std::size_t count, std::size_t size) { return std::calloc(count, size); }
  static void* realloc(void* p, std::size_t size) { return std::realloc(p, size); }
  static void free(void* p) { std::free(p); }
  static void free_sized(void* p, std::size_t) { std::free(p); }
};

static_assert(MallocApi<Hpcalloc> && MallocApi<Glibc>);

// malloc + free of state.range(0) bytes, repeated: the same-thread fast
// path (alloc_free.cpp on one thread, cross_thread.cpp on two as a baseline).
template <MallocApi Api>
void malloc_free(benchmark::State& state) {
  const auto size = static_cast<std::size_t>(state.range(0));
  for (auto _ : state) {
    void* p = Api::malloc(size);
    benchmark::DoNotOptimize(p);
    Api::free(p);
  }
  state.SetItemsProcessed(state.iterations());
}

}  // namespace hpcalloc::bench

#endif  // HPCALLOC_BENCH_MICRO_API_H

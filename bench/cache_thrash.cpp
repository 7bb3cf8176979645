// Berger's cache-thrash (Hoard, ASPLOS 2000): active false sharing. Every
// thread repeatedly allocates a small object, writes it many times and frees
// it. An allocator that carves concurrent threads' small objects out of the
// same cache line makes the threads' writes fight over that line; per-thread
// heaps or runs keep each thread's writes on its own lines.
#include "workload_common.h"

using hpcalloc::bench::allocate;
using hpcalloc::bench::scribble;

int main(int argc, char** argv) {
  hpcalloc::bench::Options options(
      "cache_thrash",
      "Berger's cache-thrash (active false sharing): each thread repeatedly allocates a\n"
      "small object, writes it many times and frees it.");
  std::uint64_t object_size = 8;
  std::uint64_t iterations = 1000;
  std::uint64_t repetitions = 300000;
  options.add_count("object-size", &object_size, "bytes per object");
  options.add_count("iterations", &iterations, "allocate/write/free cycles per thread at scale 1");
  options.add_count("repetitions", &repetitions, "times each byte is written per cycle");
  options.parse(argc, argv);
  if (object_size == 0 || repetitions == 0) {
    std::fprintf(stderr, "bench_cache_thrash: object-size and repetitions must be >= 1\n");
    return 2;
  }
  iterations = options.scaled(iterations);
  const auto threads = static_cast<unsigned>(options.threads);

  const double seconds = hpcalloc::bench::run_threads(threads, [&](unsigned t) {
    for (std::uint64_t i = 0; i < iterations; ++i) {
      void* object = allocate(object_size);
      scribble(object, object_size, repetitions, t);
      std::free(object);
    }
  });

  const std::uint64_t ops = std::uint64_t{threads} * iterations;
  hpcalloc::bench::print_result("cache_thrash", threads, seconds, ops);
  return 0;
}

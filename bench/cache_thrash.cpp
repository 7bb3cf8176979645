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
  const hpcalloc::bench::FalseSharingConfig config =
      hpcalloc::bench::parse_false_sharing(options, argc, argv);
  const std::size_t object_size = config.object_size;
  const std::uint64_t iterations = config.iterations;
  const std::uint64_t repetitions = config.repetitions;
  const unsigned threads = config.threads;

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

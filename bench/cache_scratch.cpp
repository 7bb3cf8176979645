// Berger's cache-scratch (Hoard, ASPLOS 2000): passive false sharing. The main
// thread allocates one small object per thread, so the objects sit next to
// each other, likely in one cache line. Each thread frees its object and then
// repeatedly allocates an object of the same size, writes it many times and
// frees it. An allocator that hands a thread back the block it just freed
// keeps that thread writing into a cache line the other threads write too;
// one that returns the freed block to its owner's heap (or never mixes
// threads' blocks in a line) lets every thread write a private line.
#include <vector>

#include "workload_common.h"

using hpcalloc::bench::allocate;
using hpcalloc::bench::check_block;
using hpcalloc::bench::scribble;
using hpcalloc::bench::stamp_block;

int main(int argc, char** argv) {
  hpcalloc::bench::Options options(
      "cache_scratch",
      "Berger's cache-scratch (passive false sharing): each thread frees a small object\n"
      "the main thread allocated next to the others', then allocates, writes and frees\n"
      "same-size objects.");
  const hpcalloc::bench::FalseSharingConfig config =
      hpcalloc::bench::parse_false_sharing(options, argc, argv);
  const std::size_t object_size = config.object_size;
  const std::uint64_t iterations = config.iterations;
  const std::uint64_t repetitions = config.repetitions;
  const unsigned threads = config.threads;

  // Allocated back to back by one thread: the neighbours the benchmark needs.
  std::vector<void*> initial(threads);
  for (unsigned t = 0; t < threads; ++t) {
    initial[t] = allocate(object_size);
    stamp_block(initial[t], object_size, t);
  }

  const double seconds = hpcalloc::bench::run_threads(threads, [&](unsigned t) {
    check_block(initial[t], object_size, t);
    std::free(initial[t]);
    for (std::uint64_t i = 0; i < iterations; ++i) {
      void* object = allocate(object_size);
      scribble(object, object_size, repetitions, t);
      std::free(object);
    }
  });

  const std::uint64_t ops = std::uint64_t{threads} * (iterations + 1);
  hpcalloc::bench::print_result("cache_scratch", threads, seconds, ops);
  return 0;
}

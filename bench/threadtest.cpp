// Hoard's threadtest (Berger et al., ASPLOS 2000): every thread, for many
// rounds, allocates a batch of same-size objects and then frees them all, in
// allocation order. Nothing is shared, so an allocator that scales should run
// as many threads as cores in the time one thread takes; a global lock or a
// shared free list shows up as time growing with the thread count. --work adds
// Hoard's optional busy loop per object, to dilute allocator time.
#include <vector>

#include "workload_common.h"

namespace {

using hpcalloc::bench::allocate;
using hpcalloc::bench::check_block;
using hpcalloc::bench::escape;
using hpcalloc::bench::stamp_block;

void spin(std::uint64_t iterations) {
  for (std::uint64_t i = 0; i < iterations; ++i) escape(&i);
}

}  // namespace

int main(int argc, char** argv) {
  hpcalloc::bench::Options options(
      "threadtest",
      "Hoard's threadtest: each thread allocates a batch of fixed-size objects, then\n"
      "frees them all, for many rounds.");
  std::uint64_t object_size = 64;
  std::uint64_t objects = 10000;
  std::uint64_t rounds = 2000;
  std::uint64_t work = 0;
  options.add_count("object-size", &object_size, "bytes per object");
  options.add_count("objects", &objects, "objects per thread per round");
  options.add_count("rounds", &rounds, "rounds per thread at scale 1");
  options.add_count("work", &work, "busy-loop iterations after each allocation and free");
  options.parse(argc, argv);
  if (object_size == 0 || objects == 0) {
    std::fprintf(stderr, "bench_threadtest: object-size and objects must be >= 1\n");
    return 2;
  }
  rounds = options.scaled(rounds);
  const auto threads = static_cast<unsigned>(options.threads);

  const double seconds = hpcalloc::bench::run_threads(threads, [&](unsigned t) {
    std::vector<void*> batch(objects);
    // The tag changes every round, so a block handed out twice within a round
    // or one whose stamp survives from an earlier round is caught.
    for (std::uint64_t r = 0; r < rounds; ++r) {
      const std::uint64_t tag = (r << 8) ^ t;
      for (void*& object : batch) {
        object = allocate(object_size);
        stamp_block(object, object_size, tag);
        spin(work);
      }
      for (void* object : batch) {
        check_block(object, object_size, tag);
        std::free(object);
        spin(work);
      }
    }
  });

  const std::uint64_t ops = std::uint64_t{threads} * rounds * objects;
  hpcalloc::bench::print_result("threadtest", threads, seconds, ops);
  return 0;
}

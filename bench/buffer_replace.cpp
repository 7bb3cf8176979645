// Large buffers replaced again and again (image or matrix buffers, I/O
// staging areas, a solver's work arrays resized between steps): the program
// keeps --buffers buffers of 5 to 25 MiB (shared out among the threads), and
// --replacements times (shared too) frees a random one and allocates a new
// one of a random size in its place, writing every byte of it (so every page of a fresh mapping
// faults in). An allocator that unmaps freed buffers and maps new ones pays the page faults on
// every replacement; one that keeps freed mappings for reuse (while the program is busy) does not.
// Each buffer's stamp is checked before it is freed.
#include <vector>

#include "workload_common.h"

namespace {

using hpcalloc::bench::allocate;
using hpcalloc::bench::check_block;
using hpcalloc::bench::Rng;
using hpcalloc::bench::stamp_block;

struct Buffer {
  void* p = nullptr;
  std::size_t size = 0;
  std::uint64_t tag = 0;
};

void fill(Buffer& b) {
  std::memset(b.p, static_cast<int>(b.tag & 0xff), b.size);
  stamp_block(b.p, b.size, b.tag);
}

}  // namespace

int main(int argc, char** argv) {
  hpcalloc::bench::Options options(
      "buffer_replace",
      "The threads keep --buffers large buffers (--min-bytes to --max-bytes) between them\n"
      "and replace a random one, filled, --replacements times.");
  std::uint64_t buffers = 20;
  std::uint64_t replacements = 2000;
  std::uint64_t min_bytes = std::uint64_t{5} << 20;
  std::uint64_t max_bytes = std::uint64_t{25} << 20;
  options.add_count("buffers", &buffers, "buffers kept, shared out among the threads");
  options.add_count("replacements", &replacements,
                    "replacements per run at scale 1, shared by the threads");
  options.add_count("min-bytes", &min_bytes, "smallest buffer");
  options.add_count("max-bytes", &max_bytes, "largest buffer");
  options.parse(argc, argv);
  if (buffers == 0 || min_bytes < 16 || max_bytes < min_bytes ||
      max_bytes - min_bytes >= (std::uint64_t{1} << 32)) {
    std::fprintf(stderr,
                 "bench_buffer_replace: need buffers >= 1, 16 <= min-bytes <= max-bytes "
                 "and max-bytes - min-bytes < 4 GiB\n");
    return 2;
  }
  const auto threads = static_cast<unsigned>(options.threads);
  const std::uint64_t per_thread = options.scaled(replacements) / threads;
  const std::uint64_t buffers_per_thread = buffers / threads > 0 ? buffers / threads : 1;

  const double seconds = hpcalloc::bench::run_threads(threads, [&](unsigned t) {
    Rng rng(options.seed, t);
    std::vector<Buffer> kept(buffers_per_thread);
    std::uint64_t serial = 0;
    auto make = [&](Buffer& b) {
      b.size = rng.between(min_bytes, max_bytes);
      b.tag = (++serial << 8) ^ t;
      b.p = allocate(b.size);
      fill(b);
    };
    for (Buffer& b : kept) make(b);
    for (std::uint64_t i = 0; i < per_thread; ++i) {
      Buffer& b = kept[rng.below(static_cast<std::uint32_t>(buffers_per_thread))];
      check_block(b.p, b.size, b.tag);
      std::free(b.p);
      make(b);
    }
    for (Buffer& b : kept) {
      check_block(b.p, b.size, b.tag);
      std::free(b.p);
    }
  });

  const std::uint64_t ops = (per_thread + 2 * buffers_per_thread) * threads;
  hpcalloc::bench::print_result("buffer_replace", threads, seconds, ops);
  return 0;
}

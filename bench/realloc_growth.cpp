// realloc growth, per thread, in two timed phases separated by a barrier:
//   vectors  groups of --vectors buffers grown together, round robin, from 16 B
//            to --vector-max by factors of 2 or 1.5 (each vector picks one),
//            each new tail filled as push_back would; growing them together
//            interleaves their blocks, so in-place growth is not free.
//   huge     --huge-buffers buffers grown one after another from 1 MiB to
//            --huge-max by --huge-growth per step, each new page touched. Here
//            an allocator that can remap pages (mremap) avoids copying.
// Content must survive every realloc: the first word and the last byte of the
// old content are checked after each step. --huge-max defaults to 32 MiB so
// that 16 threads, each briefly holding the old and the new buffer while a
// copying allocator moves it, stay near 1 GiB.
#include <algorithm>
#include <atomic>
#include <barrier>
#include <vector>

#include "workload_common.h"

namespace {

using hpcalloc::bench::allocate;
using hpcalloc::bench::fail_corruption;
using hpcalloc::bench::mix64;
using hpcalloc::bench::reallocate;
using hpcalloc::bench::Rng;

constexpr std::size_t kPage = 4096;

struct Config {
  std::uint64_t vectors;
  std::uint64_t vector_rounds;
  std::uint64_t vector_max;
  std::uint64_t huge_buffers;
  std::uint64_t huge_max;
  double huge_growth;
};

// A buffer whose first word is its identity and whose last written byte is
// `last`; enough to catch a realloc that moved the wrong bytes or too few.
struct Growing {
  unsigned char* data = nullptr;
  std::size_t size = 0;
  std::uint64_t id = 0;
  unsigned char last = 0;
  double factor = 2;
};

void start(Growing& g, std::size_t size, std::uint64_t id) {
  g.data = static_cast<unsigned char*>(allocate(size));
  g.size = size;
  g.id = id;
  std::memcpy(g.data, &id, sizeof id);
  g.last = static_cast<unsigned char>(mix64(id));
  std::memset(g.data + sizeof id, g.last, size - sizeof id);
}

void check(const Growing& g, std::size_t old_size) {
  std::uint64_t id;
  std::memcpy(&id, g.data, sizeof id);
  if (id != g.id || g.data[old_size - 1] != g.last) {
    fail_corruption("realloc did not preserve the old contents");
  }
}

// Grows g to new_size; fill = true writes the whole tail, false one byte per
// page (plus the last byte), which is what faults the new memory in.
void grow(Growing& g, std::size_t new_size, bool fill) {
  const std::size_t old_size = g.size;
  g.data = static_cast<unsigned char*>(reallocate(g.data, new_size));
  g.size = new_size;
  check(g, old_size);
  g.last = static_cast<unsigned char>(g.last + 1);
  if (fill) {
    std::memset(g.data + old_size, g.last, new_size - old_size);
  } else {
    for (std::size_t at = (old_size + kPage - 1) & ~(kPage - 1); at < new_size; at += kPage) {
      g.data[at] = g.last;
    }
    g.data[new_size - 1] = g.last;
  }
}

void finish(Growing& g) {
  check(g, g.size);
  std::free(g.data);
  g.data = nullptr;
}

std::uint64_t grow_vectors(Rng& rng, const Config& config, unsigned thread) {
  std::uint64_t ops = 0;
  std::vector<Growing> group(config.vectors);
  for (std::uint64_t round = 0; round < config.vector_rounds; ++round) {
    for (std::size_t v = 0; v < group.size(); ++v) {
      start(group[v], 16, (std::uint64_t{thread} << 48) ^ (round << 16) ^ v);
      group[v].factor = rng.chance(0.5) ? 2.0 : 1.5;
      ++ops;
    }
    for (bool growing = true; growing;) {
      growing = false;
      for (Growing& g : group) {
        if (g.size >= config.vector_max) continue;
        const auto next = static_cast<std::size_t>(static_cast<double>(g.size) * g.factor);
        grow(g, std::min<std::size_t>(next, config.vector_max), true);
        ++ops;
        growing = true;
      }
    }
    for (Growing& g : group) finish(g);
  }
  return ops;
}

std::uint64_t grow_huge(const Config& config, unsigned thread) {
  std::uint64_t ops = 0;
  for (std::uint64_t b = 0; b < config.huge_buffers; ++b) {
    Growing g;
    start(g, std::size_t{1} << 20, (std::uint64_t{thread} << 48) ^ (std::uint64_t{1} << 40) ^ b);
    ++ops;
    while (g.size < config.huge_max) {
      auto next = static_cast<std::size_t>(static_cast<double>(g.size) * config.huge_growth);
      next = std::min<std::size_t>((next + kPage - 1) & ~(kPage - 1), config.huge_max);
      grow(g, next, false);
      ++ops;
    }
    finish(g);
  }
  return ops;
}

}  // namespace

int main(int argc, char** argv) {
  hpcalloc::bench::Options options(
      "realloc_growth",
      "realloc growth: per thread, groups of vectors grown 2x/1.5x from 16 B, then a few\n"
      "huge buffers grown step by step from 1 MiB (where mremap pays off).");
  Config config{16, 60, 1 << 20, 8, 32 << 20, 1.25};
  options.add_count("vectors", &config.vectors, "vectors grown together in one group");
  options.add_count("vector-rounds", &config.vector_rounds, "groups per thread at scale 1");
  options.add_count("vector-max", &config.vector_max, "final vector size in bytes");
  options.add_count("huge-buffers", &config.huge_buffers, "huge buffers per thread at scale 1");
  options.add_count("huge-max", &config.huge_max, "final huge buffer size in bytes");
  options.add_real("huge-growth", &config.huge_growth, "size factor per huge realloc step");
  options.parse(argc, argv);
  if (config.vectors == 0 || config.vector_max < 16 || config.huge_max < (1 << 20) ||
      !(config.huge_growth > 1.0)) {
    std::fprintf(stderr,
                 "bench_realloc_growth: need vectors >= 1, vector-max >= 16, "
                 "huge-max >= 1M, huge-growth > 1\n");
    return 2;
  }
  config.vector_rounds = options.scaled(config.vector_rounds);
  config.huge_buffers = options.scaled(config.huge_buffers);
  const auto threads = static_cast<unsigned>(options.threads);

  std::chrono::steady_clock::time_point between_phases;
  std::barrier phase_gate(threads,
                          [&]() noexcept { between_phases = std::chrono::steady_clock::now(); });
  std::atomic<std::uint64_t> ops{0};
  const double seconds = hpcalloc::bench::run_threads(threads, [&](unsigned t) {
    Rng rng(options.seed, t);
    std::uint64_t mine = grow_vectors(rng, config, t);
    phase_gate.arrive_and_wait();
    mine += grow_huge(config, t);
    ops.fetch_add(mine, std::memory_order_relaxed);
  });
  const auto end_time = std::chrono::steady_clock::now();
  // Split run_threads' total at the phase barrier; end_time trails its own
  // end by microseconds.
  const double huge_seconds = hpcalloc::bench::seconds_between(between_phases, end_time);
  const double vector_seconds = seconds - huge_seconds;

  hpcalloc::bench::print_result("realloc_growth", threads, seconds, ops.load(),
                                {{"vector_seconds", hpcalloc::bench::fixed(vector_seconds, 6)},
                                 {"huge_seconds", hpcalloc::bench::fixed(huge_seconds, 6)}});
  return 0;
}

// A mixed-size churn in the spirit of mimalloc-bench's mstress: each thread
// runs rounds in which it allocates blocks drawn mostly small, sometimes
// medium (up to --max-medium) and rarely large (up to --max-large), frees
// random earlier blocks as it goes, and at the end of the round moves a few
// survivors into a long-lived set that persists across rounds while the rest
// are freed. A few blocks each round are swapped through a shared transfer
// array, so they are freed, or kept long-lived, by another thread. This mixes
// the allocator's small, medium and large paths, long- and short-lived
// objects, remote frees, and fresh pages (blocks above a page are touched on
// every page, as a real program would).
#include <atomic>
#include <vector>

#include "workload_common.h"

namespace {

using hpcalloc::bench::allocate;
using hpcalloc::bench::check_self_described_block;
using hpcalloc::bench::Rng;
using hpcalloc::bench::stamp_block;

constexpr std::size_t kPage = 4096;

struct Config {
  std::uint64_t rounds;
  std::uint64_t round_allocs;
  std::uint64_t retained;
  std::uint64_t transfer_slots;
  std::uint64_t max_small;
  std::uint64_t max_medium;
  std::uint64_t max_large;
  double medium_fraction;
  double large_fraction;
  double transfer_fraction;
  double retain_fraction;
};

std::size_t draw_size(Rng& rng, const Config& config) {
  const double u = rng.uniform();
  if (u < config.large_fraction) return rng.between(config.max_medium + 1, config.max_large);
  if (u < config.large_fraction + config.medium_fraction) {
    return rng.between(config.max_small + 1, config.max_medium);
  }
  return rng.between(16, config.max_small);
}

void* new_block(Rng& rng, const Config& config, std::uint64_t tag) {
  const std::size_t size = draw_size(rng, config);
  auto* block = static_cast<unsigned char*>(allocate(size));
  for (std::size_t offset = kPage; offset < size; offset += kPage) block[offset] = 1;
  stamp_block(block, size, tag);
  return block;
}

void release(void* block, const Config& config) {
  check_self_described_block(block, config.max_large);
  std::free(block);
}

// One thread's share of the work; returns the number of allocations made.
std::uint64_t run_thread(unsigned thread, std::uint64_t seed, const Config& config,
                         std::vector<std::atomic<void*>>& transfer) {
  Rng rng(seed, thread);
  std::vector<void*> retained(config.retained, nullptr);
  std::vector<void*> live;
  live.reserve(config.round_allocs);
  std::uint64_t tag = 0;
  const auto transfer_count = static_cast<std::uint32_t>(transfer.size());
  for (std::uint64_t round = 0; round < config.rounds; ++round) {
    for (std::uint64_t i = 0; i < config.round_allocs; ++i) {
      void* block = new_block(rng, config, ++tag);
      if (rng.chance(config.transfer_fraction)) {
        // acq_rel: release publishes this block's stamp to whoever takes it;
        // acquire makes the previous depositor's stamp visible to us.
        block = transfer[rng.below(transfer_count)].exchange(block, std::memory_order_acq_rel);
      }
      if (block != nullptr) live.push_back(block);
      if (!live.empty() && rng.chance(0.5)) {
        const std::size_t victim = rng.below(static_cast<std::uint32_t>(live.size()));
        release(live[victim], config);
        live[victim] = live.back();
        live.pop_back();
      }
    }
    for (void* block : live) {
      if (!retained.empty() && rng.chance(config.retain_fraction)) {
        void*& slot = retained[rng.below(static_cast<std::uint32_t>(retained.size()))];
        if (slot != nullptr) release(slot, config);
        slot = block;
      } else {
        release(block, config);
      }
    }
    live.clear();
  }
  for (void* block : retained) {
    if (block != nullptr) release(block, config);
  }
  return config.rounds * config.round_allocs;
}

}  // namespace

int main(int argc, char** argv) {
  hpcalloc::bench::Options options(
      "mstress",
      "Mixed-size churn (mostly small, some medium, rare large) with a long-lived set\n"
      "kept across rounds and blocks exchanged between threads through a shared array.");
  Config config{1500, 2000, 1000, 1024, 1024, 64 << 10, 4 << 20, 0.05, 0.002, 0.02, 0.1};
  options.add_count("rounds", &config.rounds, "rounds per thread at scale 1");
  options.add_count("round-allocs", &config.round_allocs, "allocations per round");
  options.add_count("retained", &config.retained, "long-lived slots per thread");
  options.add_count("transfer-slots", &config.transfer_slots, "slots of the shared array");
  options.add_count("max-small", &config.max_small, "largest small block (smallest is 16)");
  options.add_count("max-medium", &config.max_medium, "largest medium block");
  options.add_count("max-large", &config.max_large, "largest large block");
  options.add_real("medium-fraction", &config.medium_fraction, "share of medium allocations");
  options.add_real("large-fraction", &config.large_fraction, "share of large allocations");
  options.add_real("transfer-fraction", &config.transfer_fraction,
                   "share of new blocks swapped through the shared array");
  options.add_real("retain-fraction", &config.retain_fraction,
                   "share of a round's survivors moved into the long-lived set");
  options.parse(argc, argv);
  if (config.max_small < 16 || config.max_medium <= config.max_small ||
      config.max_large <= config.max_medium ||
      config.max_large - config.max_medium >= (1ull << 32) || config.transfer_slots == 0 ||
      config.medium_fraction < 0 || config.large_fraction < 0 ||
      config.medium_fraction + config.large_fraction > 1) {
    std::fprintf(stderr,
                 "bench_mstress: need 16 <= max-small < max-medium < max-large and "
                 "transfer-slots >= 1 and sane fractions\n");
    return 2;
  }
  config.rounds = options.scaled(config.rounds);
  const auto threads = static_cast<unsigned>(options.threads);

  std::vector<std::atomic<void*>> transfer(config.transfer_slots);
  std::atomic<std::uint64_t> ops{0};
  const double seconds = hpcalloc::bench::run_threads(threads, [&](unsigned t) {
    ops.fetch_add(run_thread(t, options.seed, config, transfer), std::memory_order_relaxed);
  });
  // The joins ordered every deposit before these loads.
  for (std::atomic<void*>& slot : transfer) {
    if (void* block = slot.load(std::memory_order_relaxed)) release(block, config);
  }
  hpcalloc::bench::print_result("mstress", threads, seconds, ops.load());
  return 0;
}

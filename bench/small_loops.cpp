// Small-object fast paths, thread-local only. For each size in --sizes every
// thread runs two loops back to back:
//   pairs   malloc immediately followed by free, --pairs times: the latency of
//           the thread cache's pop and push when one block is recycled;
//   batch   --batch blocks allocated, then all freed in allocation order,
//           --batches times: a cache that must hand out and take back many
//           blocks, so refills and flushes of its free lists show.
// Besides the totals the result line reports, per size, the mean nanoseconds
// per allocation of each loop (pair_ns_<size>, batch_ns_<size>), averaged over
// threads.
#include <algorithm>
#include <string>
#include <vector>

#include "workload_common.h"

namespace {

using hpcalloc::bench::allocate;
using hpcalloc::bench::check_block;
using hpcalloc::bench::stamp_block;
using Clock = std::chrono::steady_clock;

struct Config {
  std::vector<std::uint64_t> sizes;
  std::uint64_t pairs;
  std::uint64_t batch;
  std::uint64_t batches;
};

// Seconds one thread spent in each loop for one size.
struct SizeTimes {
  double pairs = 0;
  double batch = 0;
};

double pair_loop(std::size_t size, std::uint64_t pairs, std::uint64_t tag) {
  const auto start = Clock::now();
  for (std::uint64_t i = 0; i < pairs; ++i) {
    void* block = allocate(size);
    stamp_block(block, size, tag + i);
    check_block(block, size, tag + i);
    std::free(block);
  }
  return hpcalloc::bench::seconds_between(start, Clock::now());
}

double batch_loop(std::size_t size, const Config& config, std::uint64_t tag) {
  std::vector<void*> blocks(config.batch);
  const auto start = Clock::now();
  for (std::uint64_t b = 0; b < config.batches; ++b) {
    for (std::size_t i = 0; i < blocks.size(); ++i) {
      blocks[i] = allocate(size);
      stamp_block(blocks[i], size, tag + i);
    }
    for (std::size_t i = 0; i < blocks.size(); ++i) {
      check_block(blocks[i], size, tag + i);
      std::free(blocks[i]);
    }
    tag += blocks.size();
  }
  return hpcalloc::bench::seconds_between(start, Clock::now());
}

}  // namespace

int main(int argc, char** argv) {
  hpcalloc::bench::Options options(
      "small_loops",
      "Thread-local small-object loops: malloc/free pairs and batches of --batch blocks,\n"
      "for each size in --sizes.");
  Config config{{16, 32, 64, 128, 256, 512}, 2000000, 100, 20000};
  options.add_list("sizes", &config.sizes, "block sizes in bytes, comma-separated");
  options.add_count("pairs", &config.pairs, "malloc/free pairs per size per thread at scale 1");
  options.add_count("batch", &config.batch, "blocks held at once in the batch loop");
  options.add_count("batches", &config.batches, "batches per size per thread at scale 1");
  options.parse(argc, argv);
  // Each size names two result fields, so a repeated size would repeat keys.
  for (std::size_t s = 0; s < config.sizes.size(); ++s) {
    if (config.sizes[s] == 0 ||
        std::count(config.sizes.begin(), config.sizes.begin() + s, config.sizes[s]) != 0) {
      std::fprintf(stderr, "bench_small_loops: sizes must be >= 1 and distinct\n");
      return 2;
    }
  }
  if (config.batch == 0) {
    std::fprintf(stderr, "bench_small_loops: batch must be >= 1\n");
    return 2;
  }
  config.pairs = options.scaled(config.pairs);
  config.batches = options.scaled(config.batches);
  const auto threads = static_cast<unsigned>(options.threads);

  std::vector<std::vector<SizeTimes>> times(threads, std::vector<SizeTimes>(config.sizes.size()));
  const double seconds = hpcalloc::bench::run_threads(threads, [&](unsigned t) {
    // Only the stamps use the seed: the operation sequence is fixed by the
    // options, as in the original microbenchmarks.
    const std::uint64_t tag = hpcalloc::bench::mix64(options.seed + t);
    std::vector<SizeTimes> mine(config.sizes.size());
    for (std::size_t s = 0; s < config.sizes.size(); ++s) {
      mine[s].pairs = pair_loop(config.sizes[s], config.pairs, tag);
      mine[s].batch = batch_loop(config.sizes[s], config, tag);
    }
    times[t] = std::move(mine);
  });

  std::vector<hpcalloc::bench::Field> extra;
  const double pair_allocs = static_cast<double>(config.pairs);
  const double batch_allocs = static_cast<double>(config.batches * config.batch);
  for (std::size_t s = 0; s < config.sizes.size(); ++s) {
    double pairs = 0, batch = 0;
    for (const auto& per_thread : times) {
      pairs += per_thread[s].pairs;
      batch += per_thread[s].batch;
    }
    const std::string size = std::to_string(config.sizes[s]);
    extra.push_back(
        {"pair_ns_" + size, hpcalloc::bench::fixed(pairs / threads / pair_allocs * 1e9, 2)});
    extra.push_back(
        {"batch_ns_" + size, hpcalloc::bench::fixed(batch / threads / batch_allocs * 1e9, 2)});
  }
  const std::uint64_t ops =
      std::uint64_t{threads} * config.sizes.size() * (config.pairs + config.batches * config.batch);
  hpcalloc::bench::print_result("small_loops", threads, seconds, ops, extra);
  return 0;
}

// Larson & Krishnan's server simulation ("Memory Allocation for Long-Running
// Server Applications", ISMM 1998), shared by the workloads that differ only
// in how a block is obtained and given back (bench_larson: malloc/free;
// bench_larson_sized: operator new / sized operator delete). Each of --threads
// lineages owns an array of live blocks and repeatedly frees a random one and
// allocates a block of random size in its place. After every generation the
// array is handed to a newly created thread and the old thread exits, so the
// new thread frees blocks that a dead thread allocated: the cross-thread frees
// and orphaned per-thread state of a server whose worker threads come and go.
// The main thread allocates the initial blocks, so the first frees of every
// lineage are cross-thread too.
//
// Generation g of a lineage starts generation g+1 and stores its handle in
// handles[g+1] before it returns; the main thread joins handles[0], [1], ... in
// order, and join() makes each stored handle visible to it.
#pragma once

#include <concepts>
#include <thread>
#include <vector>

#include "workload_common.h"

namespace hpcalloc::bench::larson {

// How a workload obtains and returns blocks. release() is told the size the
// block was allocated with, which a sized deallocation passes on.
template <typename H>
concept BlockHeap = requires(std::size_t size, void* block) {
  { H::allocate(size) } -> std::same_as<void*>;
  { H::release(block, size) } -> std::same_as<void>;
};

struct Config {
  std::uint64_t slots;
  std::uint64_t min_size;
  std::uint64_t max_size;
  std::uint64_t generation_ops;
  std::uint64_t generations;
};

struct Slot {
  void* block;
  std::uint32_t size;
  std::uint32_t tag;
};

struct Lineage {
  Lineage(std::uint64_t seed, unsigned index) : rng(seed, index) {}

  Rng rng;  // travels with the slots, so the operation sequence is per lineage
  std::vector<Slot> slots;
  std::uint32_t next_tag = 0;
  std::vector<std::thread> handles;  // handles[g] runs generation g
};

template <BlockHeap Heap>
void fill_slot(Slot& slot, Lineage& lineage, const Config& config) {
  slot.size = static_cast<std::uint32_t>(lineage.rng.between(config.min_size, config.max_size));
  slot.tag = ++lineage.next_tag;
  slot.block = Heap::allocate(slot.size);
  stamp_block(slot.block, slot.size, slot.tag);
}

template <BlockHeap Heap>
void run_generation(Lineage* lineage, const Config* config, std::uint64_t generation) {
  Rng& rng = lineage->rng;
  const auto slot_count = static_cast<std::uint32_t>(lineage->slots.size());
  for (std::uint64_t i = 0; i < config->generation_ops; ++i) {
    Slot& slot = lineage->slots[rng.below(slot_count)];
    check_block(slot.block, slot.size, slot.tag);
    Heap::release(slot.block, slot.size);
    fill_slot<Heap>(slot, *lineage, *config);
  }
  if (generation + 1 < config->generations) {
    lineage->handles[generation + 1] =
        std::thread(run_generation<Heap>, lineage, config, generation + 1);
  }
}

// The whole program: options, the timed generations, the final check and the
// result line, reported under `workload`.
template <BlockHeap Heap>
int run(int argc, char** argv, const char* workload, const char* summary) {
  Options options(workload, summary);
  Config config{1000, 16, 1024, 20000, 800};
  options.add_count("slots", &config.slots, "live blocks per thread");
  options.add_count("min-size", &config.min_size, "smallest block in bytes");
  options.add_count("max-size", &config.max_size, "largest block in bytes");
  options.add_count("generation-ops", &config.generation_ops,
                    "free+malloc replacements by one thread before it hands over");
  options.add_count("generations", &config.generations,
                    "threads per lineage at scale 1 (the work scales with this)");
  options.parse(argc, argv);
  if (config.slots == 0 || config.min_size == 0 || config.min_size > config.max_size ||
      config.max_size - config.min_size >= (std::uint64_t{1} << 32)) {
    std::fprintf(stderr, "bench_%s: need slots >= 1 and 1 <= min-size <= max-size\n", workload);
    return 2;
  }
  config.generations = options.scaled(config.generations);
  const auto threads = static_cast<unsigned>(options.threads);

  std::vector<Lineage> lineages;
  lineages.reserve(threads);
  for (unsigned t = 0; t < threads; ++t) {
    Lineage& lineage = lineages.emplace_back(options.seed, t);
    lineage.slots.resize(config.slots);
    for (Slot& slot : lineage.slots) fill_slot<Heap>(slot, lineage, config);
    lineage.handles.resize(config.generations);
  }

  const auto start = std::chrono::steady_clock::now();
  for (Lineage& lineage : lineages) {
    lineage.handles[0] = std::thread(run_generation<Heap>, &lineage, &config, std::uint64_t{0});
  }
  for (Lineage& lineage : lineages) {
    for (std::thread& handle : lineage.handles) handle.join();
  }
  const double seconds = seconds_between(start, std::chrono::steady_clock::now());

  for (Lineage& lineage : lineages) {
    for (Slot& slot : lineage.slots) {
      check_block(slot.block, slot.size, slot.tag);
      Heap::release(slot.block, slot.size);
    }
  }
  const std::uint64_t ops = std::uint64_t{threads} * config.generations * config.generation_ops;
  print_result(workload, threads, seconds, ops,
               {{"threads_created", std::to_string(std::uint64_t{threads} * config.generations)}});
  return 0;
}

}  // namespace hpcalloc::bench::larson

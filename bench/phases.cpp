// A phased program (a server after a load peak, an HPC code between solver
// phases): does the allocator give memory back once the program goes idle?
//   grow   every thread allocates its share of about --grow-bytes of small
//          (16 B - 1 KiB), medium (1 - 256 KiB) and huge (1 - 16 MiB) blocks,
//          a third of the bytes each, and writes every byte of them;
//   free   90% of the blocks are freed, half of them by the thread that
//          allocated them and half by its neighbour (remote frees into a heap
//          whose owner will not allocate again soon);
//   idle   the threads sleep, each waking every --tick-ms for one small
//          malloc/free pair, while the main thread samples the process's
//          resident set (/proc/self/statm) 0 ms, 10 ms, 100 ms, 1 s and 5 s
//          after the free phase ended.
// Then the survivors are checked and freed. `seconds` covers grow and free
// only; the samples are extra fields (rss_0ms ... rss_5s, and live_bytes: the
// bytes still allocated during the idle phase), read by the bench runner as
// "RSS after idle". An allocator that keeps everything shows rss_5s near the
// peak; one that decays shows it falling towards live_bytes.
#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

#include "workload_common.h"

namespace {

using hpcalloc::bench::allocate;
using hpcalloc::bench::check_block;
using hpcalloc::bench::Rng;
using hpcalloc::bench::stamp_block;

struct Block {
  void* p;
  std::size_t size;
  std::uint64_t tag;
};

// Resident bytes of this process, from /proc/self/statm (no allocation).
std::uint64_t resident_bytes() {
  char text[128] = {};
  const int fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  const ssize_t n = read(fd, text, sizeof text - 1);
  close(fd);
  if (n <= 0) return 0;
  unsigned long size = 0, resident = 0;
  if (std::sscanf(text, "%lu %lu", &size, &resident) != 2) return 0;
  return std::uint64_t{resident} * static_cast<std::uint64_t>(sysconf(_SC_PAGESIZE));
}

// One block's size: a third of the bytes in each family. By count, small
// blocks dominate; the family is drawn with weights inverse to its mean size.
std::size_t draw_size(Rng& rng) {
  constexpr double kSmallMean = 520, kMediumMean = 131584, kHugeMean = 8.5 * 1048576;
  constexpr double kTotal = 1 / kSmallMean + 1 / kMediumMean + 1 / kHugeMean;
  const double u = rng.uniform() * kTotal;
  if (u < 1 / kSmallMean) return rng.between(16, 1024);
  if (u < 1 / kSmallMean + 1 / kMediumMean) return rng.between(1024, 256 * 1024);
  return rng.between(1 << 20, 16 << 20);
}

void fill(void* p, std::size_t size, std::uint64_t tag) {
  // Every byte written, so every page is resident; then the stamp.
  std::memset(p, static_cast<int>(tag & 0xff), size);
  stamp_block(p, size, tag);
}

}  // namespace

int main(int argc, char** argv) {
  hpcalloc::bench::Options options(
      "phases",
      "A phased program: grow to about --grow-bytes of small, medium and huge blocks across\n"
      "threads, free 90% of them, then idle while the resident set is sampled.");
  std::uint64_t grow_bytes = std::uint64_t{1} << 30;
  std::uint64_t tick_ms = 20;
  options.add_count("grow-bytes", &grow_bytes, "bytes allocated in the grow phase at scale 1");
  options.add_count("tick-ms", &tick_ms, "each idle thread's period between small allocations");
  options.parse(argc, argv);
  const auto threads = static_cast<unsigned>(options.threads);
  const std::uint64_t per_thread = options.scaled(grow_bytes) / threads;
  if (per_thread == 0 || tick_ms == 0) {
    std::fprintf(stderr, "bench_phases: grow-bytes per thread and tick-ms must be >= 1\n");
    return 2;
  }

  std::vector<std::vector<Block>> blocks(threads);
  std::vector<std::vector<Block>> kept(threads);
  std::atomic<bool> stop_idle{false};
  std::atomic<std::uint64_t> ops{0};
  std::barrier grown(threads);
  std::chrono::steady_clock::time_point free_end;
  std::barrier freed(threads,
                     [&free_end]() noexcept { free_end = std::chrono::steady_clock::now(); });

  std::vector<std::thread> idlers;
  const double seconds = hpcalloc::bench::run_threads(threads, [&](unsigned t) {
    Rng rng(options.seed, t);
    std::uint64_t local_ops = 0;
    for (std::uint64_t bytes = 0; bytes < per_thread; ++local_ops) {
      const std::size_t size = draw_size(rng);
      const std::uint64_t tag = (local_ops << 8) ^ t;
      void* p = allocate(size);
      fill(p, size, tag);
      blocks[t].push_back({p, size, tag});
      bytes += size;
    }
    grown.arrive_and_wait();
    // Free: thread t frees 90% of its own even-indexed blocks and of its
    // neighbour's odd-indexed ones; keeps the rest of its own even ones.
    const unsigned neighbour = (t + 1) % threads;
    Rng pick(options.seed ^ 0x5eed, t);
    auto free_block = [&](const Block& b) {
      check_block(b.p, b.size, b.tag);
      std::free(b.p);
      ++local_ops;
    };
    for (std::size_t i = 0; i < blocks[t].size(); i += 2) {
      if (pick.chance(0.9)) {
        free_block(blocks[t][i]);
      } else {
        kept[t].push_back(blocks[t][i]);
      }
    }
    for (std::size_t i = 1; i < blocks[neighbour].size(); i += 2) {
      // The neighbour's survivors stay with it: decided by its own index.
      Rng own(options.seed ^ 0x0dd, (std::uint64_t{neighbour} << 32) ^ i);
      if (own.chance(0.9)) {
        free_block(blocks[neighbour][i]);
      } else {
        kept[t].push_back(blocks[neighbour][i]);
      }
    }
    freed.arrive_and_wait();
    ops.fetch_add(local_ops, std::memory_order_relaxed);
  });

  // Idle: the worker threads are gone (run_threads joined them); fresh
  // threads take their place, each keeping a heap that allocates rarely.
  for (unsigned t = 0; t < threads; ++t) {
    idlers.emplace_back([&, t] {
      std::uint64_t n = 0;
      while (!stop_idle.load(std::memory_order_relaxed)) {
        void* p = allocate(64);
        stamp_block(p, 64, (n << 8) ^ t);
        check_block(p, 64, (n << 8) ^ t);
        std::free(p);
        ++n;
        std::this_thread::sleep_for(std::chrono::milliseconds(tick_ms));
      }
    });
  }
  std::uint64_t live_bytes = 0;
  for (const auto& list : kept) {
    for (const Block& b : list) live_bytes += b.size;
  }
  const std::pair<const char*, int> samples[] = {
      {"rss_0ms", 0}, {"rss_10ms", 10}, {"rss_100ms", 100}, {"rss_1s", 1000}, {"rss_5s", 5000}};
  std::vector<hpcalloc::bench::Field> fields;
  fields.push_back({"live_bytes", std::to_string(live_bytes)});
  for (const auto& [key, ms] : samples) {
    std::this_thread::sleep_until(free_end + std::chrono::milliseconds(ms));
    fields.push_back({key, std::to_string(resident_bytes())});
  }
  stop_idle.store(true, std::memory_order_relaxed);
  for (std::thread& idler : idlers) idler.join();
  for (const auto& list : kept) {
    for (const Block& b : list) {
      check_block(b.p, b.size, b.tag);
      std::free(b.p);
    }
  }
  hpcalloc::bench::print_result("phases", threads, seconds, ops.load(), fields);
  return 0;
}

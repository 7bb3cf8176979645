// ThreadSanitizer stress of the NUMA API (src/api/numa_api.cpp over
// mem/numa_heaps.h) racing with ordinary allocation on real threads, all
// roles at once:
//   rebinders  allocate, realloc and free bursts of 16 B .. 2 MiB (small,
//              medium, huge), call hpc_numa_rebind(0) and
//              hpc_numa_rebind(HPC_NUMA_MIGRATE) between bursts, keep blocks
//              alive across the rebinds and check them after each;
//   consumers  take blocks from a shared exchange array, hold a few while
//              their owners rebind or exit, ask hpc_numa_node_of() about them,
//              realloc some (a block of another heap), free them, and read
//              hpc_numa_node_stats() and hpc_stat("mapped_bytes") meanwhile;
//   on-node    allocates with hpc_malloc_on_node(size, 0) (the shared node
//              heap under its lock) and hands the blocks to the others;
//   churn      waves of short-lived threads that rebind before and after
//              allocating, publish blocks and exit: their heaps are pooled,
//              receive remote frees and are adopted by the next wave.
// Every block carries a header (size, seed, origin) and a pattern (the first
// 256 bytes, one byte per page, the last byte) checked whenever a thread
// takes, keeps or reallocs it. Any TSan report fails the test
// (halt_on_error=1 in ctest); so does a wrong pattern, node or return value.
//
// What a one-node machine exercises. hpc_numa_rebind() switches or migrates
// a heap only when the thread's node changed; on one node it always finds the
// heap already on the right source, so the pooling (rebind without
// migration) and ThreadHeap::migrate_to / MemorySource::hand_over paths are
// not run here: numa_heaps_test covers them on SimPal's simulated nodes one
// thread at a time, and numa_migrate_stress on two simulated nodes with
// threads racing them. What this test adds on any machine is TSan watching the
// concurrent readers (node_of's header reads, node_stats walking every
// source and the heap pool, the statistics) against allocation, remote
// frees, reallocs, the node heap's lock, rebind calls from threads with and
// without a heap, thread exit and heap adoption. On a machine with several
// nodes whose threads move (the scheduler moves them at will), the same
// program also races the migration and pooling paths; its checks hold there
// too (those that assume one node say so).
//
// The policy is HPCALLOC_NUMA's, read as the library reads it: under `off` a
// thread heap's blocks have no node (node_of answers -1); under the others
// they report a node of the machine. hpc_malloc_on_node's blocks are on the
// asked node under every policy.
#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <thread>
#include <vector>

#include "hpcalloc.h"

namespace {

// One run's size: about 0.3 s under TSan on two cores (main runs 4 by default).
constexpr int kRebinders = 2;
constexpr int kRebindRounds = 400;
constexpr int kBurst = 32;
constexpr int kKept = 12;  // blocks each rebinder keeps across rebinds
constexpr int kConsumers = 2;
constexpr int kHeld = 6;  // blocks each consumer holds at a time
constexpr int kOnNodeBlocks = 4000;
constexpr int kChurnWaves = 60;
constexpr int kChurnThreads = 3;
constexpr int kChurnBlocks = 32;
constexpr int kSlots = 32;
constexpr std::size_t kPage = 4096;
constexpr std::size_t kPatternEnd = 256;

enum Origin : std::uint32_t {
  kThreadHeap = 0xb10c0001,  // hpc_malloc / hpc_realloc
  kOnNode = 0xb10c0002,      // hpc_malloc_on_node(size, 0)
};

struct BlockHeader {
  std::size_t size;  // as last stamped (the size asked for)
  std::uint32_t seed;
  std::uint32_t origin;
};
static_assert(sizeof(BlockHeader) == 16);

std::atomic<int> g_failures{0};
std::mutex g_report_mutex;

void fail(const char* what, const void* p = nullptr) {
  // Only the first few are printed: one bug tends to fail every check after.
  // Relaxed: a count, read after every thread is joined.
  if (g_failures.fetch_add(1, std::memory_order_relaxed) < 20) {
    std::lock_guard<std::mutex> lock(g_report_mutex);
    std::fprintf(stderr, "FAIL: %s (block %p)\n", what, p);
  }
}

// What ran, for the summary (relaxed: read after every thread is joined).
std::atomic<unsigned> g_rebinds{0};
std::atomic<unsigned> g_node_queries{0};
std::atomic<unsigned> g_stats_reads{0};
std::atomic<unsigned> g_taken{0};

int g_node_count = 1;
bool g_policy_off = false;

// The shared exchange: a slot's acq_rel exchange carries the block's
// contents from the thread that put it there to the thread that takes it.
std::atomic<void*> g_slots[kSlots];

std::size_t size_for(std::uint32_t i) {
  switch (i % 16) {
    case 0: return 1025 + (i * 7919u) % (64u << 10);            // medium
    case 1: return (256u << 10) + (i * 4099u) % (768u << 10);   // large medium
    case 2: return (1u << 20) + 1 + (i * 12289u) % (1u << 20);  // huge, up to 2 MiB
    default: return 16 + (i * 37u) % 1009;                      // small, up to 1 KiB
  }
}

unsigned char pattern_byte(std::uint32_t seed, std::size_t i) {
  return static_cast<unsigned char>(seed * 7 + i + (i >> 12));
}

// Writes the header and the pattern of a block of `size` >= 16 bytes (a
// 16-byte block is all header).
void stamp(void* block, std::size_t size, std::uint32_t seed, Origin origin) {
  auto* p = static_cast<unsigned char*>(block);
  const BlockHeader header{size, seed, origin};
  std::memcpy(p, &header, sizeof header);
  for (std::size_t i = sizeof header; i < size && i < kPatternEnd; ++i) {
    p[i] = pattern_byte(seed, i);
  }
  for (std::size_t i = kPage; i < size; i += kPage) p[i] = pattern_byte(seed, i);
  if (size > sizeof header) p[size - 1] = pattern_byte(seed, size - 1);
}

// Checks a block's header and the pattern bytes below `valid` (what a
// realloc kept: min of the old and new sizes); *seed_out gets its seed.
bool check(const void* block, std::uint32_t* seed_out = nullptr, std::size_t valid = SIZE_MAX) {
  auto* p = static_cast<const unsigned char*>(block);
  BlockHeader header;
  std::memcpy(&header, p, sizeof header);
  if (header.origin != kThreadHeap && header.origin != kOnNode) return false;
  const std::size_t size = header.size;
  const std::size_t limit = size < valid ? size : valid;
  // Before reading up to `limit`: a corrupted size must not send us outside.
  if (size < sizeof header || hpc_malloc_usable_size(const_cast<void*>(block)) < limit) {
    return false;
  }
  for (std::size_t i = sizeof header; i < limit && i < kPatternEnd; ++i) {
    if (p[i] != pattern_byte(header.seed, i)) return false;
  }
  for (std::size_t i = kPage; i < limit; i += kPage) {
    if (p[i] != pattern_byte(header.seed, i)) return false;
  }
  if (size > sizeof header && size <= limit && p[size - 1] != pattern_byte(header.seed, size - 1)) {
    return false;
  }
  if (seed_out != nullptr) *seed_out = header.seed;
  return true;
}

Origin origin_of(const void* block) {
  BlockHeader header;
  std::memcpy(&header, block, sizeof header);
  return static_cast<Origin>(header.origin);
}

// The node hpc_numa_node_of must report for a live, checked block.
void check_node(const void* block) {
  const int node = hpc_numa_node_of(block);
  g_node_queries.fetch_add(1, std::memory_order_relaxed);
  if (origin_of(block) == kOnNode) {
    if (node != 0) {
      fail("hpc_numa_node_of: an hpc_malloc_on_node(.., 0) block is not on node 0", block);
    }
  } else if (g_policy_off) {
    if (node != -1) fail("hpc_numa_node_of: a thread heap's block has a node under off", block);
  } else if (node < 0 || node >= g_node_count) {
    fail("hpc_numa_node_of: a thread heap's block has no node of the machine", block);
  }
}

void check_and_free(void* block, const char* what) {
  if (block == nullptr) return;
  if (!check(block)) fail(what, block);
  hpc_free(block);
}

// Puts `block` in a slot; frees what was there (a block of another thread,
// most often).
void publish(void* block, unsigned slot) {
  // acq_rel: releases this block's contents, acquires the previous one's.
  void* previous = g_slots[slot % kSlots].exchange(block, std::memory_order_acq_rel);
  check_and_free(previous, "exchange: a taken block is corrupted");
}

// Reallocs a block (its own or another heap's) to `size`; checks what must
// have been kept and stamps the rest. The block to keep: the result, or
// `block` itself after a reported failure.
void* realloc_checked(void* block, std::size_t size) {
  std::uint32_t seed = 0;
  if (!check(block, &seed)) {
    fail("realloc: corrupted before", block);
    return block;
  }
  BlockHeader old;
  std::memcpy(&old, block, sizeof old);
  void* moved = hpc_realloc(block, size);
  if (moved == nullptr) {
    fail("hpc_realloc returned NULL", block);
    return block;
  }
  if (!check(moved, nullptr, old.size < size ? old.size : size)) {
    fail("realloc: contents lost", moved);
  }
  // Callers realloc only thread heaps' blocks: the result is the old heap's
  // (in place) or the caller's, a thread heap's either way.
  stamp(moved, size, seed, kThreadHeap);
  return moved;
}

void check_rebind(int flags) {
  const int node = hpc_numa_rebind(flags);
  g_rebinds.fetch_add(1, std::memory_order_relaxed);
  if (node < 0 || node >= g_node_count) fail("hpc_numa_rebind: not a node of the machine");
}

void rebinder(int id, std::atomic<int>* producers_left) {
  std::vector<void*> kept(kKept, nullptr);
  std::uint32_t seed = static_cast<std::uint32_t>(id + 1) << 24;
  for (int round = 0; round < kRebindRounds; ++round) {
    for (int j = 0; j < kBurst; ++j, ++seed) {
      const std::size_t size = size_for(seed);
      void*& keep = kept[seed % kKept];
      if (j % 5 == 4 && keep != nullptr) {
        keep = realloc_checked(keep, size_for(seed * 3 + 1));
        continue;
      }
      void* p = hpc_malloc(size);
      if (p == nullptr) {
        fail("hpc_malloc returned NULL");
        continue;
      }
      stamp(p, size, seed, kThreadHeap);
      switch (j % 3) {
        case 0: publish(p, seed * 5 + static_cast<unsigned>(id)); break;
        case 1:
          check_and_free(keep, "rebinder: a kept block is corrupted");
          keep = p;
          break;
        default: check_and_free(p, "rebinder: a fresh block is corrupted"); break;
      }
    }
    check_rebind(round % 2 == 0 ? 0 : HPC_NUMA_MIGRATE);
    for (void* p : kept) {
      if (p == nullptr) continue;
      if (!check(p)) fail("rebinder: a kept block changed across hpc_numa_rebind", p);
      check_node(p);
    }
    if (round % 16 == 0) {
      errno = 0;
      if (hpc_numa_rebind(2) != -1 || errno != EINVAL) fail("hpc_numa_rebind(2): not EINVAL");
    }
  }
  for (void* p : kept) check_and_free(p, "rebinder: a kept block is corrupted at the end");
  producers_left->fetch_sub(1, std::memory_order_release);  // pairs with the consumers' acquire
}

void on_node_allocator(std::atomic<int>* producers_left) {
  std::vector<void*> own;  // freed by this thread, which does not own the node heap
  for (std::uint32_t i = 0; i < kOnNodeBlocks; ++i) {
    const std::uint32_t seed = (0x10u << 24) + i;
    const std::size_t size = size_for(seed);
    void* p = hpc_malloc_on_node(size, 0);
    if (p == nullptr) {
      fail("hpc_malloc_on_node(size, 0) returned NULL");
      continue;
    }
    stamp(p, size, seed, kOnNode);
    check_node(p);
    if (i % 4 == 3) {
      own.push_back(p);
    } else {
      publish(p, seed * 3);
    }
    if (own.size() == 8) {
      for (void* q : own) check_and_free(q, "on-node: a held block is corrupted");
      own.clear();
    }
    if (i % 100 == 0) {
      errno = 0;
      if (hpc_malloc_on_node(16, g_node_count) != nullptr || errno != EINVAL) {
        fail("hpc_malloc_on_node(16, node_count): not EINVAL");
      }
    }
  }
  for (void* q : own) check_and_free(q, "on-node: a held block is corrupted at the end");
  producers_left->fetch_sub(1, std::memory_order_release);  // pairs with the consumers' acquire
}

void churn_thread(int wave, int t) {
  // No heap yet: rebind only reports the node; the first allocation attaches one.
  check_rebind(0);
  std::uint32_t seed = (0x20u << 24) + static_cast<std::uint32_t>(wave * 1000 + t * 100);
  for (int i = 0; i < kChurnBlocks; ++i, ++seed) {
    const std::size_t size = size_for(seed);
    void* p = hpc_malloc(size);
    if (p == nullptr) {
      fail("hpc_malloc returned NULL");
      continue;
    }
    stamp(p, size, seed, kThreadHeap);
    if (i == kChurnBlocks / 2) check_rebind(HPC_NUMA_MIGRATE);
    // Most blocks outlive the thread: freed into its pooled heap later.
    if (i % 4 == 0) {
      check_and_free(p, "churn: a fresh block is corrupted");
    } else {
      publish(p, seed * 11 + static_cast<unsigned>(t));
    }
  }
}

void churn_driver(std::atomic<int>* producers_left) {
  for (int wave = 0; wave < kChurnWaves; ++wave) {
    std::vector<std::thread> threads;
    for (int t = 0; t < kChurnThreads; ++t) threads.emplace_back(churn_thread, wave, t);
    for (auto& thread : threads) thread.join();
  }
  producers_left->fetch_sub(1, std::memory_order_release);  // pairs with the consumers' acquire
}

void read_numa_statistics() {
  g_stats_reads.fetch_add(1, std::memory_order_relaxed);
  struct hpc_numa_node_stats s {};
  if (hpc_numa_node_stats(0, &s) != 0) {
    fail("hpc_numa_node_stats(0) failed");
    return;
  }
  if (s.cached_bytes > s.mapped_bytes) fail("hpc_numa_node_stats: more cached than mapped");
  std::size_t mapped = 0;
  if (hpc_stat("mapped_bytes", &mapped) != 0) fail("hpc_stat(mapped_bytes) failed");
  if (g_node_count == 1) {
    // Nothing migrates on one node. A consumer holds a block, so something
    // is mapped (with migration a mapping is briefly counted nowhere).
    if (s.migrated_in != 0 || s.migrate_failures != 0) fail("one node: a mapping migrated");
    if (mapped == 0) fail("hpc_stat(mapped_bytes) is 0 while blocks are live");
  }
}

void consumer(int id, const std::atomic<int>* producers_left) {
  std::vector<void*> held(kHeld, nullptr);
  unsigned next = 0;
  unsigned taken = 0;
  for (;;) {
    // Read before the pass: a pass that finds nothing after every producer
    // finished has seen every block they published.
    const bool producers_done = producers_left->load(std::memory_order_acquire) == 0;
    bool found = false;
    for (unsigned i = 0; i < kSlots; ++i) {
      const unsigned slot = (i + static_cast<unsigned>(id) * 7) % kSlots;
      // acq_rel: acquires the block's contents from the thread that put it.
      void* p = g_slots[slot].exchange(nullptr, std::memory_order_acq_rel);
      if (p == nullptr) continue;
      found = true;
      if (!check(p)) {
        fail("consumer: a taken block is corrupted", p);
        continue;  // freeing a corrupted block could crash the report
      }
      check_node(p);
      ++taken;
      // realloc need not keep a block on its node: on-node blocks are not.
      if (taken % 4 == 0 && origin_of(p) == kThreadHeap) {
        p = realloc_checked(p, size_for(taken * 13 + 7));
      }
      if (taken % 8 == 0) read_numa_statistics();
      // Hold it while its owner goes on (rebinds, exits); free the oldest.
      void*& victim = held[next++ % kHeld];
      if (victim != nullptr) {
        if (!check(victim)) fail("consumer: a held block is corrupted", victim);
        check_node(victim);
        hpc_free(victim);
      }
      victim = p;
    }
    if (!found) {
      if (producers_done) break;
      std::this_thread::yield();
    }
  }
  for (void* p : held) check_and_free(p, "consumer: a held block is corrupted at the end");
  g_taken.fetch_add(taken, std::memory_order_relaxed);
}

std::size_t stat_or_fail(const char* name) {
  std::size_t value = 0;
  if (hpc_stat(name, &value) != 0) fail(name);
  return value;
}

// One run: every role on its own threads until the producers are done and
// the exchange is empty.
void run_every_role_at_once() {
  constexpr int kProducers = kRebinders + 2;  // + on-node allocator + churn driver
  std::atomic<int> producers_left{kProducers};
  std::vector<std::thread> threads;
  for (int i = 0; i < kConsumers; ++i) threads.emplace_back(consumer, i, &producers_left);
  for (int i = 0; i < kRebinders; ++i) threads.emplace_back(rebinder, i, &producers_left);
  threads.emplace_back(on_node_allocator, &producers_left);
  threads.emplace_back(churn_driver, &producers_left);
  for (auto& thread : threads) thread.join();
  // Every thread is joined: the joins already order their writes before these.
  for (auto& slot : g_slots) {
    check_and_free(slot.exchange(nullptr, std::memory_order_acquire),
                   "a leftover block is corrupted");
  }
}

}  // namespace

// numa_rebind_stress [RUNS]: RUNS whole runs one after the other (default 4,
// the ctest run: about 1.5 s under TSan on two cores); more for a soak. Each
// run starts every role on new threads, which adopt the last run's heaps.
int main(int argc, char** argv) {
  const int runs = argc == 2 ? std::atoi(argv[1]) : 4;
  if (argc > 2 || runs < 1) {
    std::fprintf(stderr, "usage: %s [RUNS >= 1]\n", argv[0]);
    return 2;
  }
  const char* policy = std::getenv("HPCALLOC_NUMA");
  g_policy_off = policy != nullptr && std::strcmp(policy, "off") == 0;
  g_node_count = hpc_numa_node_count();
  if (g_node_count < 1) fail("hpc_numa_node_count() < 1");
  const std::size_t heaps_before = stat_or_fail("heaps_created");

  for (int run = 0; run < runs; ++run) run_every_role_at_once();

  // Churn adopts pooled heaps: however many runs, each node's source has at
  // most as many heaps as threads alive at once (consumers, rebinders,
  // on-node and one wave; the churn driver never allocates) plus the node
  // heap, the fallback heap, main's and one spare.
  const std::size_t heaps = stat_or_fail("heaps_created") - heaps_before;
  const std::size_t per_node = kConsumers + kRebinders + 1 + kChurnThreads + 4;
  const std::size_t bound = per_node * static_cast<std::size_t>(g_node_count);
  if (heaps > bound) fail("thread churn: pooled heaps were not adopted");
  struct hpc_numa_node_stats s {};
  errno = 0;
  if (hpc_numa_node_stats(g_node_count, &s) != -1 || errno != EINVAL) {
    fail("hpc_numa_node_stats(node_count): not EINVAL");
  }

  const int failures = g_failures.load(std::memory_order_relaxed);
  if (failures != 0) {
    std::fprintf(stderr, "numa rebind stress: %d failures\n", failures);
    return 1;
  }
  std::printf(
      "numa rebind stress: %d run(s), %d node(s), policy %s: %u rebinds, %u blocks taken by "
      "consumers, %u node_of and %u statistics reads, %zu heaps for %d churn threads; all "
      "checks passed\n",
      runs, g_node_count, policy != nullptr ? policy : "first-touch (default)",
      g_rebinds.load(std::memory_order_relaxed), g_taken.load(std::memory_order_relaxed),
      g_node_queries.load(std::memory_order_relaxed), g_stats_reads.load(std::memory_order_relaxed),
      heaps, runs * kChurnWaves * kChurnThreads);
  return 0;
}

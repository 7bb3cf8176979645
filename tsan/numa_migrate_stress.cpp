// ThreadSanitizer stress of NUMA migration on a simulated two-node machine:
// a private allocator stack (SimPal with two nodes, SegmentRegistry,
// HeapPool, NumaHeaps over TinyConfig's geometry) driven by
//   movers     allocate bursts of small, medium and huge blocks, keep some
//              and publish others, then switch simulated node and follow
//              with NumaHeaps::rebind: with migration (ThreadHeap::migrate_to
//              handing every segment and huge mapping over with
//              MemorySource::hand_over), without it (the heap is pooled on
//              its old node, and the other mover may adopt it and migrate
//              it), or without moving at all;
//   consumers  take published blocks, hold a few while their heaps migrate,
//              ask node_of and node_of_heap about them again and again, read
//              node_stats, and free them (remote frees into heaps that may be
//              migrating at that moment).
// Every policy that places memory per node runs in turn (first-touch,
// preferred, bind), one run each by default.
//
// Why a simulated machine. On a one-node machine NumaHeaps::rebind always
// finds the heap already on the right source, so numa_rebind_stress, which
// drives the real platform, never reaches migrate_to, hand_over or the
// pooling on a node change there; numa_heaps_test runs them on SimPal, one
// thread at a time. This test races them: TSan watches the segment header's
// node (written by hand_over, read by node_of), the heap's published node,
// the sources' statistics and the heap pool against remote frees and readers.
//
// What is checked, whatever the interleaving:
// - contents: every block carries a header (size, seed, heap) and a pattern,
//   checked whenever a thread keeps, takes, holds or frees it;
// - node_of: the test keeps a placement word per heap (its node, or the two
//   nodes while it migrates, and a version), written by the heap's owner
//   around each migration. A reader loads it, calls node_of, and loads it
//   again: when neither load saw a change, node_of must answer exactly the
//   node of a settled heap, or one of the two nodes of a migrating one (a
//   segment's node changes once, old to new, while the block stays valid).
//   Memory-order argument at check_placement(). The owner also checks its
//   own heap's blocks exactly, and their simulated pages;
// - rebind: the heap it returns, that no migration fails (SimPal migrates
//   unless told to fail), node_of_heap of the result;
// - node_stats: nothing cached beyond what is mapped, no failures, migrated_in
//   never goes back; after a run, every heap's blocks were all given back.
// Any TSan report fails the test (halt_on_error=1 in ctest); any heap error
// report aborts (StderrReporter); a failed check makes the exit status 1.
#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <iterator>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "mem/heap_errors.h"
#include "mem/numa_heaps.h"
#include "mem/test_configs.h"
#include "pal/sim_pal.h"

namespace hpcalloc {
namespace {

// TinyConfig's geometry (64 KiB segments: many segments and huge mappings
// to hand over per migration) with a reporter that any thread may call:
// a double free or a foreign pointer aborts at once.
struct StressConfig : testing_configs::TinyConfig<SimPal> {
  using Reporter = StderrReporter;
};
using Numa = NumaHeaps<StressConfig>;
using Heap = Numa::Heap;
using Pool = Numa::Pool;
using Registry = Numa::Registry;

// One run: about 1 to 1.5 s under TSan on two cores (main runs 3 by default).
constexpr unsigned kNodes = 2;
constexpr int kMovers = 2;
constexpr int kConsumers = 2;
constexpr int kRounds = 5000;  // rebinds per mover
constexpr int kBurst = 12;     // allocations per round
constexpr int kKept = 8;       // blocks each mover keeps across rebinds
constexpr int kHeld = 6;       // blocks each consumer holds at a time
constexpr int kSlots = 16;
constexpr unsigned kMaxHeaps = 32;  // the pool needs far fewer (see rebind_action)
// Small, medium (TinyConfig: up to 16 KiB) and huge blocks.
constexpr std::size_t kSizes[] = {16, 200, 1000, 9000, 100000};
constexpr std::uint32_t kMagic = 0x6e756d61;

struct BlockHeader {
  std::uint32_t size;
  std::uint32_t seed;
  std::uint32_t heap;  // g_heaps index of the heap that allocated it
  std::uint32_t magic;
};
static_assert(sizeof(BlockHeader) == 16 && kSizes[0] >= sizeof(BlockHeader));

std::atomic<int> g_failures{0};
std::mutex g_report_mutex;

void fail(const char* what, const void* block = nullptr) {
  // Only the first few are printed: one bug tends to fail every check after.
  // Relaxed: a count, read after every thread is joined.
  if (g_failures.fetch_add(1, std::memory_order_relaxed) < 20) {
    std::lock_guard<std::mutex> lock(g_report_mutex);
    std::fprintf(stderr, "FAIL: %s (block %p)\n", what, block);
  }
}

// What ran, for the summary (relaxed: read after every thread is joined).
std::atomic<unsigned> g_migrations{0};
std::atomic<unsigned> g_switches{0};
std::atomic<unsigned> g_stays{0};
std::atomic<unsigned> g_exact_checks{0};      // the heap was settled
std::atomic<unsigned> g_migrating_checks{0};  // it was migrating
std::atomic<unsigned> g_loose_checks{0};      // the heap moved more than once meanwhile
std::atomic<unsigned> g_stats_reads{0};

// ---- Where each heap is: the test's own record --------------------------

// A heap's placement as its owner announces it, packed in one word.
struct Placement {
  unsigned node = 0;  // where its memory is, or is going while it migrates
  unsigned from = 0;  // while migrating: where it was
  bool migrating = false;
  std::uint32_t version = 0;  // +1 on every change

  std::uint32_t pack() const { return version << 9 | (migrating ? 1u << 8 : 0) | from << 4 | node; }
  static Placement unpack(std::uint32_t w) {
    return {w & 0xf, (w >> 4) & 0xf, ((w >> 8) & 1) != 0, w >> 9};
  }
  // The nodes node_of may answer while this placement holds, as a mask.
  unsigned nodes() const { return 1u << node | (migrating ? 1u << from : 0); }
};

struct TrackedHeap {
  std::atomic<const Heap*> heap{nullptr};
  std::atomic<std::uint32_t> placement{0};
};
TrackedHeap g_heaps[kMaxHeaps];

void reset_heap_table() {
  // Between runs, with no other thread alive.
  for (TrackedHeap& t : g_heaps) {
    t.heap.store(nullptr, std::memory_order_relaxed);
    t.placement.store(0, std::memory_order_relaxed);
  }
}

// The table index of `heap`, which the calling thread owns (has just been
// given by acquire_heap or rebind): registered on first sight, settled on
// its node. A heap has one owner at a time, and the pool's lock orders one
// owner's placement writes before the next one's.
unsigned tracked_index(const Heap* heap) {
  for (unsigned i = 0; i < kMaxHeaps; ++i) {
    // Acquire: pairs with the registering CAS, so the placement written
    // with it is visible (only matters to the same owner, but cheap).
    if (g_heaps[i].heap.load(std::memory_order_acquire) == heap) return i;
  }
  const Placement settled{Numa::node_of_heap(*heap), 0, false, 0};
  for (unsigned i = 0; i < kMaxHeaps; ++i) {
    const Heap* expected = nullptr;
    // The placement is stored first, then released with the claim.
    if (g_heaps[i].heap.load(std::memory_order_relaxed) != nullptr) continue;
    g_heaps[i].placement.store(settled.pack(), std::memory_order_relaxed);
    if (g_heaps[i].heap.compare_exchange_strong(expected, heap, std::memory_order_release,
                                                std::memory_order_relaxed)) {
      return i;
    }
  }
  std::fprintf(stderr, "FAIL: more than %u heaps: the pool stopped adopting\n", kMaxHeaps);
  std::abort();
}

// Checks what `read` (node_of of one of heap `t`'s blocks, or node_of_heap)
// answers against the placement loaded before and after it.
//
// Why this is exact. The owner moves a heap as: store the migrating
// placement with release, then a release fence; rebind (hand_over stores
// each segment's new node, migrate_to the heap's); store the settled
// placement with release. `before` is an acquire load: every node store of
// the migrations before the placement it saw happens-before `read`, which
// sees them or later ones. A later migration's node stores follow its
// release fence: if `read` saw one, that fence synchronises with the acquire
// fence below, and `after` sees that migration's placement or a later one.
// So `before == after` bounds the answer to that placement's nodes.
template <class Read>
void check_placement(const TrackedHeap& t, Read read, const char* what, const void* block) {
  const Placement before =
      Placement::unpack(t.placement.load(std::memory_order_acquire));  // the owner's release
  const int node = read();
  std::atomic_thread_fence(std::memory_order_acquire);  // pairs with the owner's release fence
  const Placement after = Placement::unpack(t.placement.load(std::memory_order_relaxed));
  unsigned allowed = (1u << kNodes) - 1;
  if (before.version == after.version) {
    allowed = before.nodes();
    std::atomic<unsigned>& counter = before.migrating ? g_migrating_checks : g_exact_checks;
    counter.fetch_add(1, std::memory_order_relaxed);
  } else if (after.version - before.version <= 2) {
    // The one placement in between, if any, has no node that neither of
    // these has.
    allowed = before.nodes() | after.nodes();
    g_migrating_checks.fetch_add(1, std::memory_order_relaxed);
  } else {
    g_loose_checks.fetch_add(1, std::memory_order_relaxed);
  }
  if (node < 0 || static_cast<unsigned>(node) >= kNodes || (allowed >> node & 1) == 0) {
    fail(what, block);
  }
}

// ---- Blocks ---------------------------------------------------------------

unsigned char pattern_byte(std::uint32_t seed, std::size_t i) {
  return static_cast<unsigned char>(seed * 131 + i * 7 + (i >> 8));
}

// The bytes a pattern covers: the first 256, one in 509, the last.
template <class Fn>
void for_pattern_bytes(std::size_t size, Fn fn) {
  for (std::size_t i = sizeof(BlockHeader); i < size && i < 256; ++i) fn(i);
  for (std::size_t i = 256; i < size; i += 509) fn(i);
  if (size > sizeof(BlockHeader)) fn(size - 1);
}

void stamp(void* block, std::size_t size, std::uint32_t seed, unsigned heap_index) {
  auto* p = static_cast<unsigned char*>(block);
  const BlockHeader header{static_cast<std::uint32_t>(size), seed, heap_index, kMagic};
  std::memcpy(p, &header, sizeof header);
  for_pattern_bytes(size, [&](std::size_t i) { p[i] = pattern_byte(seed, i); });
}

// The block's header when its contents are intact.
bool read_checked(const void* block, BlockHeader* out) {
  const auto* p = static_cast<const unsigned char*>(block);
  std::memcpy(out, p, sizeof *out);
  if (out->magic != kMagic || out->heap >= kMaxHeaps || out->size < sizeof *out ||
      out->size > kSizes[std::size(kSizes) - 1]) {
    return false;
  }
  bool ok = true;
  for_pattern_bytes(out->size, [&](std::size_t i) { ok &= p[i] == pattern_byte(out->seed, i); });
  return ok;
}

struct PrivateAllocator {
  explicit PrivateAllocator(NumaPolicy policy)
      : pal(SimPalOptions{.arena_size = std::size_t{1} << 30, .node_count = kNodes}) {
    SourceLimits limits;
    limits.numa_policy = policy;
    registry = std::make_unique<Registry>(pal);
    pool = std::make_unique<Pool>(pal, typename Pool::Context{*registry, reporter});
    numa = std::make_unique<Numa>(pal, *registry, *pool, limits);
  }
  ~PrivateAllocator() {
    pool->destroy_heaps();  // their segments go back to the sources,
    numa.reset();           // which unmap their caches
    pool.reset();
    registry.reset();
  }

  // A block of the calling thread's own heap: node_of and its simulated
  // pages say `node` (owner only: a reader asking SimPal would take its
  // lock, ordering it after the movers and hiding races from TSan).
  void check_own_block(const void* p, std::size_t size, unsigned node, const char* what) {
    const auto* c = static_cast<const char*>(p);
    if (numa->node_of(p) != static_cast<int>(node) || pal.page_info(c).node != node ||
        pal.page_info(c + size - 1).node != node) {
      fail(what, p);
    }
  }

  // A taken or held block: intact, and on a node its heap has been on.
  bool check_block(const void* p, const char* corrupted) {
    BlockHeader header;
    if (!read_checked(p, &header)) {
      fail(corrupted, p);
      return false;
    }
    const TrackedHeap& t = g_heaps[header.heap];
    check_placement(
        t, [&] { return numa->node_of(p); }, "node_of: not a node the block's heap was on", p);
    return true;
  }

  SimPal pal;
  StderrReporter reporter{true};
  std::unique_ptr<Registry> registry;
  std::unique_ptr<Pool> pool;
  std::unique_ptr<Numa> numa;
  std::atomic<void*> slots[kSlots] = {};
};

// ---- Movers -----------------------------------------------------------------

enum class Action { kMigrate, kSwitch, kStay };

// A cycle of five rounds: migrate there and back, switch there and back,
// stay. Each switch away from a node is matched by a switch back that adopts
// what it pooled, so the pool stays small; the two movers are out of phase.
Action rebind_action(int id, int round) {
  switch ((round + 2 * id) % 5) {
    case 0:
    case 1: return Action::kMigrate;
    case 2:
    case 3: return Action::kSwitch;
    default: return Action::kStay;
  }
}

// Frees a block the mover kept or took back from a slot, after checking it.
void check_and_free(PrivateAllocator& a, Heap* heap, void* p, const char* what) {
  if (p == nullptr) return;
  if (a.check_block(p, what)) heap->free(p);
}

// The owner moves `heap` to the calling thread's (new) node; see
// check_placement for why the placement is written this way.
Heap* rebind_checked(PrivateAllocator& a, Heap* heap, unsigned to, Action action, int round) {
  TrackedHeap& t = g_heaps[tracked_index(heap)];
  const Placement was = Placement::unpack(t.placement.load(std::memory_order_relaxed));
  const unsigned from = Numa::node_of_heap(*heap);
  if (was.migrating || was.node != from) fail("node_of_heap: not where its owner left it");
  const bool migrate = action == Action::kMigrate || (action == Action::kStay && round % 2 == 0);
  const bool moves = from != to && migrate;
  if (moves) {
    const Placement migrating{to, from, true, was.version + 1};
    // Release: pairs with readers' acquire load (the last migration's node
    // stores come before). The fence pairs with their acquire fence (the
    // node stores of this one come after).
    t.placement.store(migrating.pack(), std::memory_order_release);
    std::atomic_thread_fence(std::memory_order_release);
  }
  std::size_t failed = 0;
  Heap* next = a.numa->rebind(heap, migrate, &failed);
  if (next == nullptr) {
    fail("rebind: no heap for the new node (ENOMEM)");
    return heap;
  }
  if (failed != 0) fail("rebind: a migration failed on SimPal");
  if (moves) {
    const Placement settled{to, 0, false, was.version + 2};
    t.placement.store(settled.pack(), std::memory_order_release);  // pairs with readers' acquire
  }
  if ((next == heap) != (from == to || migrate)) fail("rebind: returned the wrong heap");
  if (Numa::node_of_heap(*next) != to) fail("rebind: the heap is not on the thread's node");
  const Placement now =
      Placement::unpack(g_heaps[tracked_index(next)].placement.load(std::memory_order_relaxed));
  if (now.migrating || now.node != to) fail("rebind: an adopted heap is not on the thread's node");
  std::atomic<unsigned>& counter = moves ? g_migrations : from != to ? g_switches : g_stays;
  counter.fetch_add(1, std::memory_order_relaxed);
  return next;
}

void mover(PrivateAllocator& a, int id, std::atomic<int>* movers_left) {
  unsigned node = static_cast<unsigned>(id) % kNodes;
  a.pal.set_current_node(static_cast<int>(node));
  Heap* heap = a.numa->acquire_heap();
  if (heap == nullptr) {
    fail("acquire_heap returned nullptr");
    movers_left->fetch_sub(1, std::memory_order_release);
    return;
  }
  std::vector<void*> kept(kKept, nullptr);
  std::uint32_t seed = static_cast<std::uint32_t>(id + 1) << 24;
  for (int round = 0; round < kRounds; ++round) {
    const unsigned own = tracked_index(heap);
    for (int j = 0; j < kBurst; ++j, ++seed) {
      const std::size_t size = kSizes[seed % std::size(kSizes)];
      void* p = heap->malloc(size);
      if (p == nullptr) {
        fail("malloc returned nullptr");
        continue;
      }
      stamp(p, size, seed, own);
      if (j % 4 == 0) a.check_own_block(p, size, node, "a fresh block is not on its heap's node");
      switch (j % 3) {
        case 0: {
          // acq_rel: releases this block's contents, acquires the previous one's.
          void* previous = a.slots[seed % kSlots].exchange(p, std::memory_order_acq_rel);
          check_and_free(a, heap, previous, "a slot's block is corrupted");
          break;
        }
        case 1: {
          void*& keep = kept[seed % kKept];
          check_and_free(a, heap, keep, "a kept block is corrupted");
          keep = p;
          break;
        }
        default: heap->free(p); break;
      }
    }
    const Action action = rebind_action(id, round);
    if (action != Action::kStay) node = (node + 1) % kNodes;
    a.pal.set_current_node(static_cast<int>(node));
    heap = rebind_checked(a, heap, node, action, round);
    // Kept blocks of this heap moved with it; those of pooled heaps, maybe
    // adopted and moved by the other mover, are checked as a reader would.
    const unsigned now = tracked_index(heap);
    for (void* p : kept) {
      if (p == nullptr || !a.check_block(p, "a kept block changed across rebind")) continue;
      BlockHeader header;
      std::memcpy(&header, p, sizeof header);
      if (header.heap == now) {
        a.check_own_block(p, header.size, node, "a kept block did not move with its heap");
      }
    }
  }
  for (void* p : kept) check_and_free(a, heap, p, "a kept block is corrupted at the end");
  a.pool->release(heap);
  movers_left->fetch_sub(1, std::memory_order_release);  // pairs with the consumers' acquire
}

// ---- Consumers --------------------------------------------------------------

struct StatsSeen {
  std::size_t migrated_in[kNodes] = {};
};

void read_node_stats(PrivateAllocator& a, StatsSeen* seen) {
  g_stats_reads.fetch_add(1, std::memory_order_relaxed);
  for (unsigned n = 0; n < kNodes; ++n) {
    NodeStats st;
    if (!a.numa->node_stats(n, &st)) {
      fail("node_stats refused a node of the machine");
      continue;
    }
    if (st.cached_bytes > st.mapped_bytes) fail("node_stats: more cached than mapped");
    if (st.migrate_failures != 0 || st.bind_failures != 0) fail("node_stats: a failure on SimPal");
    // Counted under the source's lock: one reader never sees it go back.
    if (st.migrated_in < seen->migrated_in[n]) fail("node_stats: migrated_in went back");
    seen->migrated_in[n] = st.migrated_in;
    // One snapshot under the pool's lock; each mover briefly holds two
    // heaps inside rebind.
    if (st.heaps > 2 * kMovers + kConsumers) fail("node_stats: more heaps attached than threads");
  }
  NodeStats ignored;
  if (a.numa->node_stats(kNodes, &ignored)) fail("node_stats accepted a node past the last");
}

void consumer(PrivateAllocator& a, int id, const std::atomic<int>* movers_left) {
  a.pal.set_current_node(id % static_cast<int>(kNodes));
  Heap* heap = a.numa->acquire_heap();
  if (heap == nullptr) {
    fail("acquire_heap returned nullptr");
    return;
  }
  std::vector<void*> held(kHeld, nullptr);
  StatsSeen seen;
  unsigned next = 0;
  unsigned taken = 0;
  for (;;) {
    // Read before the pass: a pass that finds nothing after every mover
    // finished has seen every block they published.
    const bool movers_done = movers_left->load(std::memory_order_acquire) == 0;
    bool found = false;
    for (unsigned i = 0; i < kSlots; ++i) {
      // acq_rel: acquires the block's contents from the mover that put it.
      void* p = a.slots[(i + static_cast<unsigned>(id) * 7) % kSlots].exchange(
          nullptr, std::memory_order_acq_rel);
      if (p == nullptr) continue;
      found = true;
      if (!a.check_block(p, "a taken block is corrupted")) continue;  // leaked: do not free
      if (++taken % 8 == 0) read_node_stats(a, &seen);
      // Hold it while its heap moves on; free the oldest (a remote free,
      // maybe into a heap that is migrating).
      void*& victim = held[next++ % kHeld];
      if (victim != nullptr && a.check_block(victim, "a held block is corrupted")) {
        heap->free(victim);
      }
      victim = p;
    }
    // Ask again about every held block: their heaps migrate meanwhile.
    for (void* p : held) {
      if (p == nullptr || !a.check_block(p, "a held block is corrupted")) continue;
      BlockHeader header;
      std::memcpy(&header, p, sizeof header);
      const TrackedHeap& t = g_heaps[header.heap];
      // Acquire: pairs with the registering CAS (the heap was registered
      // before its block was published, so this is never nullptr).
      const Heap* owner = t.heap.load(std::memory_order_acquire);
      check_placement(
          t, [&] { return static_cast<int>(Numa::node_of_heap(*owner)); },
          "node_of_heap: not a node the heap was on", p);
    }
    if (!found) {
      if (movers_done) break;
      std::this_thread::yield();
    }
  }
  for (void* p : held) {
    if (p != nullptr && a.check_block(p, "a held block is corrupted at the end")) heap->free(p);
  }
  a.pool->release(heap);
}

// ---- Runs -------------------------------------------------------------------

const char* policy_name(NumaPolicy policy) {
  switch (policy) {
    case NumaPolicy::kFirstTouch: return "first-touch";
    case NumaPolicy::kPreferred: return "preferred";
    case NumaPolicy::kBind: return "bind";
    default: return "off";
  }
}

void run_once(NumaPolicy policy) {
  reset_heap_table();
  PrivateAllocator a(policy);
  std::atomic<int> movers_left{kMovers};
  std::vector<std::thread> threads;
  for (int i = 0; i < kConsumers; ++i) threads.emplace_back(consumer, std::ref(a), i, &movers_left);
  for (int i = 0; i < kMovers; ++i) threads.emplace_back(mover, std::ref(a), i, &movers_left);
  for (auto& thread : threads) thread.join();

  // Every thread is joined: their writes are ordered before these reads.
  Heap* last = a.numa->acquire_heap();
  for (auto& slot : a.slots) {
    void* p = slot.exchange(nullptr, std::memory_order_relaxed);
    if (p != nullptr && a.check_block(p, "a leftover block is corrupted")) last->free(p);
  }
  a.pool->release(last);
  // Every block was freed: once the pooled heaps take their remote frees
  // back, none may still count one in use (a lost remote free would). Two
  // rounds: a heap's trim frees the carriers it drained back to their
  // senders, which may have been trimmed before it in the first round.
  a.pool->trim_pooled();
  a.pool->trim_pooled();
  a.pool->for_each([&](const Heap& heap, bool attached) {
    if (attached) fail("a heap is still attached after every thread released it");
    if (heap.stats().in_use() != 0) fail("a heap still counts blocks in use after the run");
  });
  std::size_t migrated_in = 0;
  for (unsigned n = 0; n < kNodes; ++n) {
    NodeStats st;
    a.numa->node_stats(n, &st);
    migrated_in += st.migrated_in;
  }
  if (migrated_in == 0) fail("no mapping was handed over: the migration paths did not run");
  std::printf("  %-11s %zu mappings handed over, %zu heaps\n", policy_name(policy), migrated_in,
              a.pool->counts().created);
}

}  // namespace
}  // namespace hpcalloc

// numa_migrate_stress [RUNS]: RUNS runs, cycling through the first-touch,
// preferred and bind policies (default 3: 3 to 5 s under TSan on two
// cores); more for a soak. Each run builds a fresh allocator stack.
int main(int argc, char** argv) {
  using namespace hpcalloc;
  const int runs = argc == 2 ? std::atoi(argv[1]) : 3;
  if (argc > 2 || runs < 1) {
    std::fprintf(stderr, "usage: %s [RUNS >= 1]\n", argv[0]);
    return 2;
  }
  constexpr NumaPolicy kPolicies[] = {NumaPolicy::kFirstTouch, NumaPolicy::kPreferred,
                                      NumaPolicy::kBind};
  std::printf("numa migrate stress: %u simulated nodes, %d movers, %d consumers\n", kNodes, kMovers,
              kConsumers);
  for (int run = 0; run < runs; ++run) run_once(kPolicies[run % std::size(kPolicies)]);

  const int failures = g_failures.load(std::memory_order_relaxed);
  if (failures != 0) {
    std::fprintf(stderr, "numa migrate stress: %d failures\n", failures);
    return 1;
  }
  std::printf(
      "numa migrate stress: %d run(s): %u migrations, %u switches, %u stays; node_of checks: "
      "%u settled, %u migrating, %u loose; %u statistics reads; all checks passed\n",
      runs, g_migrations.load(std::memory_order_relaxed),
      g_switches.load(std::memory_order_relaxed), g_stays.load(std::memory_order_relaxed),
      g_exact_checks.load(std::memory_order_relaxed),
      g_migrating_checks.load(std::memory_order_relaxed),
      g_loose_checks.load(std::memory_order_relaxed),
      g_stats_reads.load(std::memory_order_relaxed));
  return 0;
}

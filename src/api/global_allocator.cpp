// The process-wide allocator (global_allocator.h): one registry, one memory
// source per NUMA node and a pool of thread heaps, built on first use in
// static storage and never destroyed (threads and atexit handlers may
// allocate until the very end).
//
// Fast paths: the thread's heap comes from a thread_local pointer
// (initial-exec TLS in the preload library); malloc and same-heap free use
// it with no lock and no atomic read-modify-write. A thread gets a heap on
// its first allocation (adopting a pooled one when it can) and gives it back
// from a pthread key destructor. A free of another heap's block goes to that
// heap's lock-free remote-free queue.
//
// Initialisation is lazy and reentrancy-safe: nothing called while building
// the globals allocates; what may allocate (pthread_setspecific,
// pthread_atfork, dlsym) is called only once the allocator can serve it.
#include "api/global_allocator.h"

#include <dlfcn.h>
#include <fcntl.h>
#include <pthread.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstddef>
#include <new>

#include "api/production_config.h"
#include "base/base.h"
#include "mem/heap_pool.h"
#include "mem/memory_source.h"
#include "mem/thread_heap.h"
#include "sync/spin_lock.h"

namespace hpcalloc {
namespace {

using Config = ProductionConfig;
using Heap = ThreadHeap<Config>;
using Source = MemorySource<Config>;
using Registry = SegmentRegistry<Config>;
using Pool = HeapPool<Config>;
using Lock = SpinLock<StdSync>;

struct Settings {
  bool stats = false;
  const char* stats_file = nullptr;  // HPCALLOC_STATS_FILE: append the summary there
  bool abort_on_error = true;
  SourceLimits limits;
};

Settings read_settings() {
  static const char* const kOnError[] = {"abort", "warn"};
  static const char* const kNuma[] = {"off", "first-touch", "preferred", "bind"};
  Settings s;
  s.stats = env_bool("HPCALLOC_STATS", false);
  // Child processes inherit the variables; a file keeps the summaries out of
  // output other programs parse (a build tool reading uname's stderr).
  s.stats_file = std::getenv("HPCALLOC_STATS_FILE");
  if (s.stats_file != nullptr && s.stats_file[0] == '\0') s.stats_file = nullptr;
  if (s.stats_file != nullptr) s.stats = true;
  s.abort_on_error = env_choice("HPCALLOC_ON_ERROR", kOnError, 0) == 0;
  s.limits.cache_max_block = env_size("HPCALLOC_CACHE_MAX_BLOCK", s.limits.cache_max_block);
  s.limits.cache_max_total = env_size("HPCALLOC_CACHE_MAX_TOTAL", s.limits.cache_max_total);
  s.limits.decommit_cached = env_bool("HPCALLOC_DECOMMIT_CACHED", s.limits.decommit_cached);
  s.limits.numa_policy = static_cast<NumaPolicy>(env_choice("HPCALLOC_NUMA", kNuma, 0));
  return s;
}

struct Globals {
  explicit Globals(const Settings& s)
      : settings(s), reporter(s.abort_on_error), registry(pal), pool(pal, registry, reporter) {
    const unsigned nodes = pal.topology().node_count;
    node_count = nodes < Topology::kMaxNodes ? nodes : Topology::kMaxNodes;
    for (unsigned n = 0; n < node_count; ++n) {
      new (source_storage[n]) Source(pal, registry, n, s.limits);
    }
  }
  Source& source(unsigned node) {
    return *std::launder(reinterpret_cast<Source*>(source_storage[node < node_count ? node : 0]));
  }

  Settings settings;
  Config::Pal pal;
  StderrReporter reporter;
  Registry registry;
  Pool pool;
  unsigned node_count = 1;
  alignas(Source) unsigned char source_storage[Topology::kMaxNodes][sizeof(Source)];
  // Serves threads whose heap was already given back at exit.
  Lock fallback_lock;
  Heap* fallback_heap = nullptr;
  pthread_key_t key{};
  std::atomic<std::size_t> heapless_remote_pushed{0};
  // A duplicate of stderr taken at start-up for the exit summary: programs
  // (coreutils' close_stdout) may close fd 2 before our destructor runs.
  int stats_fd = STDERR_FILENO;
};

alignas(Globals) unsigned char g_storage[sizeof(Globals)];
std::atomic<Globals*> g_globals{nullptr};
constinit Lock g_init_lock;
// Set per library by CMake: see src/CMakeLists.txt.
std::atomic<bool> g_forward_foreign{HPCALLOC_FORWARD_FOREIGN != 0};
std::atomic<bool> g_atfork_registered{false};

thread_local Heap* tls_heap = nullptr;
// Passes of our key destructor so far in this (exiting) thread.
thread_local unsigned tls_exit_passes = 0;

// After this many destructor passes no new heap is attached: pthread runs at
// most PTHREAD_DESTRUCTOR_ITERATIONS passes, and a heap attached after the
// last would never be given back. Later allocations use the fallback heap.
constexpr unsigned kLastAttachPass = PTHREAD_DESTRUCTOR_ITERATIONS - 1;

Globals* globals() {
  // Acquire: pairs with the release in init(), so the globals are built.
  return g_globals.load(std::memory_order_acquire);
}

void thread_exit(void* value);
void prepare_fork();
void parent_after_fork();
void child_after_fork();

[[gnu::noinline]] Globals* init() {
  Globals* g = globals();
  if (g != nullptr) return g;
  g_init_lock.lock();
  g = g_globals.load(std::memory_order_relaxed);
  if (g == nullptr) {
    g = new (g_storage) Globals(read_settings());
    if (g->settings.stats && g->settings.stats_file == nullptr) {
      const int fd = fcntl(STDERR_FILENO, F_DUPFD_CLOEXEC, 3);
      if (fd >= 0) g->stats_fd = fd;
    }
    if (pthread_key_create(&g->key, thread_exit) != 0) {
      fatal("cannot create the thread-exit key (pthread_key_create)");
    }
    // Release: publishes the globals built above to globals()' acquire.
    g_globals.store(g, std::memory_order_release);
  }
  g_init_lock.unlock();
  // pthread_atfork may allocate: only now that we can serve it.
  if (!g_atfork_registered.exchange(true, std::memory_order_acq_rel)) {
    pthread_atfork(prepare_fork, parent_after_fork, child_after_fork);
  }
  return g;
}

Heap* attach_heap(Globals* g) {
  if (tls_exit_passes >= kLastAttachPass) return nullptr;
  const int node = g->pal.current_node();
  Heap* heap = g->pool.acquire(g->source(node < 0 ? 0u : static_cast<unsigned>(node)));
  if (heap == nullptr) return nullptr;
  // Set before pthread_setspecific, which may allocate (keys >= 32): that
  // reentrant call must find this heap rather than attach another.
  tls_heap = heap;
  pthread_setspecific(g->key, heap);
  return heap;
}

void thread_exit(void* value) {
  Heap* heap = static_cast<Heap*>(value);
  tls_heap = nullptr;
  ++tls_exit_passes;
  if (Globals* g = globals(); g != nullptr && heap != nullptr) g->pool.release(heap);
}

// Runs op on the calling thread's heap, attaching one on first use; threads
// past their exit use the shared fallback heap under its lock.
template <class Op>
[[gnu::noinline]] auto with_heap_slow(Op op) -> decltype(op(*tls_heap)) {
  Globals* g = init();
  if (Heap* heap = tls_heap; heap != nullptr) return op(*heap);  // attached reentrantly
  if (Heap* heap = attach_heap(g); heap != nullptr) return op(*heap);
  LockGuard guard(g->fallback_lock);
  if (g->fallback_heap == nullptr) g->fallback_heap = g->pool.acquire(g->source(0));
  if (g->fallback_heap == nullptr) {
    errno = ENOMEM;
    return decltype(op(*tls_heap)){};
  }
  return op(*g->fallback_heap);
}

template <class Op>
[[gnu::always_inline]] inline auto with_heap(Op op) -> decltype(op(*tls_heap)) {
  Heap* heap = tls_heap;
  if (__builtin_expect(heap != nullptr, 1)) return op(*heap);
  return with_heap_slow(op);
}

// ---- Pointers hpcalloc never returned ------------------------------------

template <class Fn>
Fn next_symbol(const char* name, std::atomic<Fn>& cache) {
  Fn fn = cache.load(std::memory_order_acquire);
  if (fn != nullptr) return fn;
  static thread_local bool resolving = false;
  if (resolving) return nullptr;  // dlsym freeing a foreign pointer: leak it
  resolving = true;
  fn = reinterpret_cast<Fn>(dlsym(RTLD_NEXT, name));
  resolving = false;
  cache.store(fn, std::memory_order_release);
  return fn;
}

using FreeFn = void (*)(void*);
using ReallocFn = void* (*)(void*, std::size_t);
using UsableSizeFn = std::size_t (*)(void*);
std::atomic<FreeFn> g_next_free{nullptr};
std::atomic<ReallocFn> g_next_realloc{nullptr};
std::atomic<UsableSizeFn> g_next_usable_size{nullptr};

[[gnu::cold]] void report(HeapError error, const char* operation, const void* p) {
  if (Globals* g = globals(); g != nullptr) {
    g->reporter.report(error, operation, p);
  } else {
    StderrReporter(true).report(error, operation, p);
  }
}

[[gnu::cold, gnu::noinline]] void free_foreign(void* p) {
  if (g_forward_foreign.load(std::memory_order_relaxed)) {
    if (FreeFn next = next_symbol("free", g_next_free); next != nullptr) next(p);
    return;
  }
  report(HeapError::kInvalidPointer, "free()", p);
}

[[gnu::cold, gnu::noinline]] void free_slow(void* p) {
  Globals* g = globals();
  SegmentHeader* segment = g != nullptr ? g->registry.lookup(p) : nullptr;
  if (segment == nullptr) {
    free_foreign(p);
    return;
  }
  if (segment->magic == SegmentHeader::kMagic && segment->owner != nullptr &&
      segment->kind != SegmentKind::kCached) {
    // A thread without a heap (exiting, or it never allocated): the block
    // goes to its owner's queue like any remote free.
    static_cast<Heap*>(segment->owner)->remote_free(p);
    g->heapless_remote_pushed.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  g->reporter.report(
      segment->magic == SegmentHeader::kMagic ? HeapError::kDoubleFree : HeapError::kInvalidPointer,
      "free()", p);
}

bool is_ours(const void* p) {
  Globals* g = globals();
  return g != nullptr && g->registry.lookup(p) != nullptr;
}

// ---- fork -------------------------------------------------------------------

// One fixed order: init lock, pool, fallback heap, sources by node. A lock
// that cannot be had within about a second is taken to be held by this very
// thread, interrupted by the signal handler that is forking (glibc deadlocks
// there; we do not): the child then resets what that lock protects instead
// of trusting it, and the parent leaves it to its holder.
struct ForkLocks {
  bool init = false;
  bool pool = false;
  bool fallback = false;
  bool sources[Topology::kMaxNodes] = {};
};
ForkLocks g_fork_locks;

template <class TryLock>
bool lock_bounded(TryLock try_lock) {
  for (unsigned long spins = 0; spins < (1ul << 26); ++spins) {
    if (try_lock()) return true;
    StdSync::spin_pause();
  }
  return false;
}

void prepare_fork() {
  g_fork_locks = ForkLocks{};
  g_fork_locks.init = lock_bounded([] { return g_init_lock.try_lock(); });
  Globals* g = globals();
  if (g == nullptr) return;
  g_fork_locks.pool = lock_bounded([g] { return g->pool.try_lock_for_fork(); });
  g_fork_locks.fallback = lock_bounded([g] { return g->fallback_lock.try_lock(); });
  for (unsigned n = 0; n < g->node_count; ++n) {
    g_fork_locks.sources[n] = lock_bounded([g, n] { return g->source(n).try_lock_for_fork(); });
  }
}

void parent_after_fork() {
  if (Globals* g = globals(); g != nullptr) {
    for (unsigned n = g->node_count; n-- > 0;) {
      if (g_fork_locks.sources[n]) g->source(n).unlock_after_fork();
    }
    if (g_fork_locks.fallback) g->fallback_lock.unlock();
    if (g_fork_locks.pool) g->pool.unlock_after_fork();
  }
  if (g_fork_locks.init) g_init_lock.unlock();
}

// The child has one thread. Heaps attached to threads (this one included:
// fork may come from a signal handler that interrupted it) may be
// mid-operation: abandon them all; this thread attaches a fresh heap on its
// next allocation. Pooled heaps were idle and stay adoptable.
void child_after_fork() {
  if (Globals* g = globals(); g != nullptr) {
    if (g_fork_locks.pool) {
      g->pool.abandon_attached_in_child();
      g->pool.unlock_after_fork();
    } else {
      g->pool.reset_in_child_after_fork();
    }
    g->fallback_heap = nullptr;  // it was attached too
    new (&g->fallback_lock) Lock();
    for (unsigned n = g->node_count; n-- > 0;) {
      if (g_fork_locks.sources[n]) {
        g->source(n).unlock_after_fork();
      } else {
        g->source(n).reset_in_child_after_fork();
      }
    }
  }
  tls_heap = nullptr;
  tls_exit_passes = 0;
  new (&g_init_lock) Lock();
}

// ---- Statistics ---------------------------------------------------------------

struct Snapshot {
  PoolCounts pool;
  HeapStats heaps;  // summed over every heap
  SourceStats sources;
  std::size_t heapless_remote_pushed = 0;
};

Snapshot snapshot(Globals* g) {
  // The calling thread's own figures can be exact.
  if (Heap* heap = tls_heap; heap != nullptr) heap->publish_stats();
  Snapshot s;
  s.pool = g->pool.counts();
  g->pool.for_each([&](const Heap& heap, bool) {
    const HeapStats h = heap.stats();
    s.heaps.small_in_use += h.small_in_use;
    s.heaps.medium_in_use += h.medium_in_use;
    s.heaps.huge_in_use += h.huge_in_use;
    s.heaps.huge_blocks += h.huge_blocks;
    s.heaps.requested += h.requested;
    s.heaps.remote_pushed += h.remote_pushed;
    s.heaps.remote_drained += h.remote_drained;
  });
  for (unsigned n = 0; n < g->node_count; ++n) {
    const SourceStats src = g->source(n).stats();
    s.sources.mapped_bytes += src.mapped_bytes;
    s.sources.cached_bytes += src.cached_bytes;
    s.sources.cached_mappings += src.cached_mappings;
    s.sources.cache_hits += src.cache_hits;
    s.sources.cache_misses += src.cache_misses;
    s.sources.os_reserves += src.os_reserves;
    s.sources.os_releases += src.os_releases;
    s.sources.remaps_in_place += src.remaps_in_place;
    s.sources.remaps_moved += src.remaps_moved;
    s.sources.bind_failures += src.bind_failures;
  }
  s.heapless_remote_pushed = g->heapless_remote_pushed.load(std::memory_order_relaxed);
  return s;
}

[[gnu::destructor]] void print_stats_at_exit() {
  Globals* g = globals();
  if (g == nullptr) {
    if (env_bool("HPCALLOC_STATS", false)) global::print_stats(STDERR_FILENO);
    return;
  }
  if (!g->settings.stats) return;
  if (g->settings.stats_file != nullptr) {
    const int fd = open(g->settings.stats_file, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) return;
    ReportLine line = report_line("stats: process ");
    line.dec(static_cast<std::uint64_t>(getpid())).text(" exiting");
    line.write_to(fd);
    global::print_stats(fd);
    close(fd);
    return;
  }
  global::print_stats(g->stats_fd);
}

}  // namespace

namespace global {

void* malloc(std::size_t size) noexcept {
  return with_heap([size](Heap& heap) { return heap.malloc(size); });
}

void* calloc(std::size_t count, std::size_t size) noexcept {
  return with_heap([count, size](Heap& heap) { return heap.calloc(count, size); });
}

void* memalign(std::size_t alignment, std::size_t size) noexcept {
  return with_heap([alignment, size](Heap& heap) { return heap.memalign(alignment, size); });
}

}  // namespace global

namespace {
// Everything but the common case of global::free().
[[gnu::noinline]] void free_general(void* p) noexcept {
  if (p == nullptr) return;
  Heap* heap = tls_heap;
  if (heap == nullptr) {
    free_slow(p);
    return;
  }
  SegmentHeader* segment = heap->find_segment(p);
  if (segment == nullptr) {
    free_foreign(p);
    return;
  }
  heap->free_in_segment(segment, p);
}
}  // namespace

namespace global {

void free(void* p) noexcept {
  // The common case inline: a small block of this thread's heap with room
  // in its cache. Every other case, including p == nullptr, goes to one
  // out-of-line call with the original argument, so this path needs no
  // saved registers.
  Heap* heap = tls_heap;
  if (__builtin_expect(heap != nullptr, 1)) {
    SegmentHeader* segment = heap->find_segment(p);
    if (__builtin_expect(segment != nullptr, 1) && heap->try_free_fast(segment, p)) return;
  }
  free_general(p);
}

void* realloc(void* p, std::size_t size) noexcept {
  if (p != nullptr && !is_ours(p)) {
    if (g_forward_foreign.load(std::memory_order_relaxed)) {
      if (ReallocFn next = next_symbol("realloc", g_next_realloc); next != nullptr) {
        return next(p, size);
      }
    }
    report(HeapError::kInvalidPointer, "realloc()", p);
    return nullptr;
  }
  return with_heap([p, size](Heap& heap) { return heap.realloc(p, size); });
}

std::size_t usable_size(const void* p) noexcept {
  if (p == nullptr) return 0;
  if (!is_ours(p)) {
    if (g_forward_foreign.load(std::memory_order_relaxed)) {
      if (UsableSizeFn next = next_symbol("malloc_usable_size", g_next_usable_size)) {
        return next(const_cast<void*>(p));
      }
    }
    report(HeapError::kInvalidPointer, "malloc_usable_size()", p);
    return 0;
  }
  return with_heap([p](Heap& heap) { return heap.usable_size(p); });
}

bool trim(std::size_t /*pad*/) {
  Globals* g = init();
  const std::size_t before = snapshot(g).sources.mapped_bytes;
  if (Heap* heap = tls_heap; heap != nullptr) heap->trim(false);
  g->pool.trim_pooled();
  for (unsigned n = 0; n < g->node_count; ++n) g->source(n).trim();
  return snapshot(g).sources.mapped_bytes < before;
}

Figures figures() {
  Figures f{};
  Globals* g = globals();
  if (g == nullptr) return f;
  const Snapshot s = snapshot(g);
  f.mapped = s.sources.mapped_bytes;
  f.huge_blocks = s.heaps.huge_blocks;
  f.huge_mapped = s.heaps.huge_in_use;
  f.in_use = s.heaps.in_use();
  f.free_bytes = f.mapped > f.in_use ? f.mapped - f.in_use : 0;
  f.cached = s.sources.cached_bytes;
  return f;
}

bool stat(const char* name, std::size_t* value) {
  Globals* g = init();
  const Snapshot s = snapshot(g);
  struct Entry {
    const char* name;
    std::size_t value;
  };
  const Entry entries[] = {
      {"heaps_created", s.pool.created},
      {"heaps_live", s.pool.attached},
      {"heaps_pooled", s.pool.pooled},
      {"heaps_abandoned", s.pool.abandoned},
      {"mapped_bytes", s.sources.mapped_bytes},
      {"cached_bytes", s.sources.cached_bytes},
      {"cached_mappings", s.sources.cached_mappings},
      {"in_use_bytes", s.heaps.in_use()},
      {"small_in_use_bytes", s.heaps.small_in_use},
      {"medium_in_use_bytes", s.heaps.medium_in_use},
      {"huge_in_use_bytes", s.heaps.huge_in_use},
      {"huge_blocks", s.heaps.huge_blocks},
      {"requested_bytes", s.heaps.requested},
      {"remote_frees_pushed", s.heaps.remote_pushed + s.heapless_remote_pushed},
      {"remote_frees_drained", s.heaps.remote_drained},
      {"cache_hits", s.sources.cache_hits},
      {"cache_misses", s.sources.cache_misses},
      {"os_reserves", s.sources.os_reserves},
      {"os_releases", s.sources.os_releases},
      {"remaps_in_place", s.sources.remaps_in_place},
      {"remaps_moved", s.sources.remaps_moved},
      {"numa_nodes", g->node_count},
  };
  for (const Entry& e : entries) {
    if (std::string_view(e.name) == name) {
      *value = e.value;
      return true;
    }
  }
  return false;
}

void print_stats(int fd) {
  Globals* g = globals();
  if (g == nullptr) {
    report_line("stats: no allocation was made").write_to(fd);
    return;
  }
  const Snapshot s = snapshot(g);
  ReportLine line = report_line("stats: heaps ");
  line.text("created ").dec(s.pool.created).text(", live ").dec(s.pool.attached);
  line.text(", pooled ").dec(s.pool.pooled).text(", abandoned at fork ").dec(s.pool.abandoned);
  line.write_to(fd);
  line = report_line("stats: bytes mapped ");
  line.dec(s.sources.mapped_bytes).text(", in use ").dec(s.heaps.in_use());
  line.text(" (small ").dec(s.heaps.small_in_use).text(", medium ").dec(s.heaps.medium_in_use);
  line.text(", huge ").dec(s.heaps.huge_in_use).text(" in ").dec(s.heaps.huge_blocks);
  line.text(" blocks), cached ").dec(s.sources.cached_bytes).text(" in ");
  line.dec(s.sources.cached_mappings).text(" mappings");
  line.write_to(fd);
  line = report_line("stats: requested (medium and huge) ");
  line.dec(s.heaps.requested).text(" bytes; remote frees pushed ");
  line.dec(s.heaps.remote_pushed + s.heapless_remote_pushed).text(", drained ");
  line.dec(s.heaps.remote_drained);
  line.write_to(fd);
  line = report_line("stats: os reserves ");
  line.dec(s.sources.os_reserves).text(", releases ").dec(s.sources.os_releases);
  line.text(", cache hits ")
      .dec(s.sources.cache_hits)
      .text(", misses ")
      .dec(s.sources.cache_misses);
  line.text(", mremap in place ").dec(s.sources.remaps_in_place).text(", moved ");
  line.dec(s.sources.remaps_moved).text(", numa nodes ").dec(g->node_count);
  line.write_to(fd);
  unsigned index = 0;
  g->pool.for_each([&](const Heap& heap, bool attached) {
    if (index++ >= 8) return;
    const HeapStats h = heap.stats();
    ReportLine l = report_line("stats: heap ");
    l.dec(index - 1).text(attached ? " (live)" : " (pooled)").text(": in use ").dec(h.in_use());
    l.text(", segments small ").dec(h.small_segments).text(" medium ").dec(h.medium_segments);
    l.text(", huge blocks ").dec(h.huge_blocks).text(", remote frees pushed ");
    l.dec(h.remote_pushed).text(", drained ").dec(h.remote_drained);
    l.write_to(fd);
  });
  if (index > 8) report_line("stats: ... and more heaps").write_to(fd);
}

void set_forward_foreign(bool forward) {
  g_forward_foreign.store(forward, std::memory_order_relaxed);
}

}  // namespace global
}  // namespace hpcalloc

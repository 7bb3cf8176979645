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
// Marked slow paths: the fork handlers must know whether a fork comes from
// a signal handler that interrupted this thread inside its heap (the child
// then cannot trust that heap). Every lock site says so exactly (the lock
// names its holder, sync/spin_lock.h); besides, the paths of this file that
// work on the thread's heap outside the malloc/free fast paths (attaching a
// heap, thread exit, heap-less free, trim, calloc, realloc, memalign) are
// marked with a SlowPathScope. Not marked, so a handler interrupting them
// is not seen: the inline fast paths of malloc and free and what they call
// inside the heap (caches, medium cache, refills, flushes, drains, medium
// and huge blocks) between lock sites: marking those would cost the common
// malloc/free instructions, or belongs in mem/thread_heap.h.
//
// Initialisation is lazy and reentrancy-safe: nothing called while building
// the globals allocates; what may allocate (pthread_setspecific,
// pthread_atfork, dlsym) is called only once the allocator can serve it
// (pthread_atfork, on the building thread, just before the globals are
// published: see init()).
#include "api/global_allocator.h"

#include <dlfcn.h>
#include <fcntl.h>
#include <pthread.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstddef>
#include <cstdlib>
#include <new>

#include "api/background_thread.h"
#include "api/fast_paths.h"
#include "api/foreign_pointers.h"
#include "api/globals.h"
#include "base/base.h"
#include "base/process_info.h"

namespace hpcalloc {
namespace internal {
namespace {

// The first NUMA placement failure of the process is reported on stderr.
constinit PlacementWarning g_placement_warning([](const ReportLine& line) { warn(line.view()); });

}  // namespace

StatsFormat read_stats_format() {
  const char* raw = env_value("HPCALLOC_STATS");
  if (raw == nullptr) return StatsFormat::kOff;
  const std::string_view value(raw);
  if (value == "json") return StatsFormat::kJson;
  if (value == "text") return StatsFormat::kText;
  bool on = false;
  if (!parse_bool(value, &on)) {
    detail::warn_bad_env("HPCALLOC_STATS", value, "0, 1, text or json; default 0");
    return StatsFormat::kOff;
  }
  return on ? StatsFormat::kText : StatsFormat::kOff;
}

namespace {

Settings read_settings() {
  static const char* const kOnError[] = {"abort", "warn"};
  // The order of NumaPolicy; first-touch is the default.
  static const char* const kNuma[] = {"off", "first-touch", "preferred", "bind"};
  Settings s;
  s.stats = read_stats_format();
  // Child processes inherit the variables; a file keeps the summaries out of
  // output other programs parse (a build tool reading uname's stderr).
  if (const char* file = env_value("HPCALLOC_STATS_FILE"); file != nullptr && file[0] != '\0') {
    const std::string_view name(file);
    if (name.size() < sizeof(s.stats_file)) {
      name.copy(s.stats_file, name.size());
      if (s.stats == StatsFormat::kOff) s.stats = StatsFormat::kText;
    } else {
      detail::warn_bad_env("HPCALLOC_STATS_FILE", name.substr(0, 64),
                           "a path shorter than 4096 bytes");
    }
  }
  s.abort_on_error = env_choice("HPCALLOC_ON_ERROR", kOnError, 0) == 0;
  s.limits.cache_max_block = env_size("HPCALLOC_CACHE_MAX_BLOCK", s.limits.cache_max_block);
  s.limits.cache_max_total = env_size("HPCALLOC_CACHE_MAX_TOTAL", s.limits.cache_max_total);
  // HPCALLOC_DECOMMIT_CACHED=1, from before decay had a delay, means 0.
  if (env_bool("HPCALLOC_DECOMMIT_CACHED", false)) s.limits.decay_ms = kDecayAtOnce;
  s.limits.decay_ms = env_delay_ms("HPCALLOC_DECAY_MS", s.limits.decay_ms);
  s.background_thread = env_bool("HPCALLOC_BACKGROUND_THREAD", false);
  // The order of ThpMode; default (no advice) is the default.
  static const char* const kThp[] = {"default", "never", "madvise", "always"};
  s.limits.thp = static_cast<ThpMode>(env_choice("HPCALLOC_THP", kThp, 0));
  s.limits.thp_split = env_bool("HPCALLOC_THP_SPLIT", false);
  s.limits.placement_warning = &g_placement_warning;
  s.limits.numa_policy = static_cast<NumaPolicy>(env_choice("HPCALLOC_NUMA", kNuma, 1));
  return s;
}

alignas(Globals) unsigned char g_storage[sizeof(Globals)];
// Never destroyed (threads and exit handlers use it to the end): a union
// member's destructor runs only when called.
union ProcessRegistry {
  constexpr ProcessRegistry() : registry() {}
  ~ProcessRegistry() {}
  Registry registry;
};
constinit ProcessRegistry g_registry;
std::atomic<Globals*> g_globals{nullptr};
constinit Lock g_init_lock;
// Set per library by CMake: see src/CMakeLists.txt.
std::atomic<bool> g_forward_foreign{HPCALLOC_FORWARD_FOREIGN != 0};

// The globals this thread is building and has not published yet (see init()).
thread_local Globals* tls_building = nullptr;
// Passes of our key destructor so far in this (exiting) thread.
thread_local unsigned tls_exit_passes = 0;
// Marked slow paths the calling thread is inside (see the top comment).
thread_local unsigned tls_slow_path_depth = 0;

// Marks its scope as a slow path for the fork handlers. The signal fences
// are compiler barriers only: a handler that reads the depth runs on this
// very thread, so program order is all it needs, and the fences keep the
// compiler from moving the scope's heap accesses outside the marked stretch.
class SlowPathScope {
 public:
  SlowPathScope() {
    ++tls_slow_path_depth;
    std::atomic_signal_fence(std::memory_order_seq_cst);
  }
  ~SlowPathScope() {
    std::atomic_signal_fence(std::memory_order_seq_cst);
    --tls_slow_path_depth;
  }
  SlowPathScope(const SlowPathScope&) = delete;
  SlowPathScope& operator=(const SlowPathScope&) = delete;
};

// After this many destructor passes no new heap is attached: pthread runs at
// most PTHREAD_DESTRUCTOR_ITERATIONS passes, and a heap attached after the
// last would never be given back. Later allocations use the fallback heap.
constexpr unsigned kLastAttachPass = PTHREAD_DESTRUCTOR_ITERATIONS - 1;

void thread_exit(void* value);

}  // namespace

constinit thread_local Heap* tls_heap = nullptr;  // fast_paths.h

Registry& process_registry(Config::Pal& pal) {
  g_registry.registry.attach_pal(pal);
  return g_registry.registry;
}

Globals* globals() {
  // Acquire: pairs with the release in init(), so the globals are built.
  Globals* g = g_globals.load(std::memory_order_acquire);
  // Before they are published only the thread building them sees them: it
  // allocates from them inside pthread_atfork (see init()).
  if (__builtin_expect(g == nullptr, 0)) return tls_building;
  return g;
}

Lock& init_lock() { return g_init_lock; }

Heap* calling_threads_heap() { return tls_heap; }

void set_calling_threads_heap(Heap* heap) {
  tls_heap = heap;
  if (Globals* g = globals(); g != nullptr) pthread_setspecific(g->key, heap);
}

void forget_calling_threads_heap() {
  tls_heap = nullptr;
  tls_exit_passes = 0;
}

bool calling_thread_in_slow_path() { return tls_slow_path_depth != 0; }

[[gnu::noinline]] Globals* init() {
  Globals* g = globals();
  if (g != nullptr) return g;
  g_init_lock.lock();
  g = g_globals.load(std::memory_order_relaxed);
  if (g == nullptr) {
    g = new (g_storage) Globals(read_settings());
    // A copy of stderr for the summary at exit (programs such as ls close
    // stderr in their own exit handlers), also when a statistics file is
    // named: it is where the summary goes if the file cannot be opened.
    if (g->settings.stats != StatsFormat::kOff) {
      const int fd = fcntl(STDERR_FILENO, F_DUPFD_CLOEXEC, 3);
      if (fd >= 0) g->stats_fd = fd;
    }
    if (pthread_key_create(&g->key, thread_exit) != 0) {
      fatal("cannot create the thread-exit key (pthread_key_create)");
    }
    // The fork handlers are registered before the globals are published:
    // every allocator lock lives in them, so no thread can hold one while a
    // fork would not run the handlers (a fork racing the first allocation
    // used to copy a lock another thread held into a child that then
    // waited for it forever). pthread_atfork may allocate: this thread is
    // served by the globals it is building (globals() shows it them), the
    // others wait for the init lock.
    tls_building = g;
    pthread_atfork(prepare_fork, parent_after_fork, child_after_fork);
    tls_building = nullptr;
    // Release: publishes the globals built above to globals()' acquire.
    g_globals.store(g, std::memory_order_release);
  }
  g_init_lock.unlock();
  return g;
}

namespace {

Heap* attach_heap(Globals* g) {
  if (tls_exit_passes >= kLastAttachPass) return nullptr;
  Heap* heap = g->numa.acquire_heap();
  if (heap == nullptr) return nullptr;
  // Set before pthread_setspecific, which may allocate (keys >= 32): that
  // reentrant call must find this heap rather than attach another.
  tls_heap = heap;
  pthread_setspecific(g->key, heap);
  // A fork's child restarts it here (api/background_thread.h).
  if (g->settings.background_thread) start_background_thread(g);
  return heap;
}

void thread_exit(void* value) {
  SlowPathScope slow_path;
  Heap* heap = static_cast<Heap*>(value);
  tls_heap = nullptr;
  ++tls_exit_passes;
  if (Globals* g = globals(); g != nullptr && heap != nullptr) g->pool.release(heap);
}

// Runs op on the calling thread's heap, attaching one on first use; threads
// past their exit use the shared fallback heap under its lock.
template <class Op>
[[gnu::noinline]] auto with_heap_slow(Op op) -> decltype(op(*tls_heap)) {
  SlowPathScope slow_path;
  Globals* g = init();
  if (Heap* heap = tls_heap; heap != nullptr) return op(*heap);  // attached reentrantly
  if (Heap* heap = attach_heap(g); heap != nullptr) return op(*heap);
  LockGuard guard(g->fallback_lock);
  if (g->fallback_heap == nullptr) g->fallback_heap = g->pool.acquire(g->numa.thread_source(0));
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

// Whether a pointer outside every segment goes to the next malloc: in the
// preload library, when it could be one of that malloc's blocks
// (api/foreign_pointers.h); everything else is reported here.
bool forward_foreign(const void* p) {
  return g_forward_foreign.load(std::memory_order_relaxed) && could_be_glibc_block(p);
}

[[gnu::cold, gnu::noinline]] void free_foreign(void* p, const char* call) {
  if (forward_foreign(p)) {
    if (FreeFn next = next_symbol("free", g_next_free); next != nullptr) next(p);
    return;
  }
  report(HeapError::kInvalidPointer, call, p);
}

[[gnu::cold, gnu::noinline]] void free_slow(void* p, const char* call) {
  Globals* g = globals();
  SegmentHeader* segment = g != nullptr ? g->registry.lookup(p) : nullptr;
  if (segment == nullptr) {
    free_foreign(p, call);
    return;
  }
  if (segment->is_live()) {
    // A thread without a heap (exiting, or it never allocated): the block
    // goes to its owner's queue like any remote free.
    // A pooled owner is drained by the pool at once (heap_pool.h).
    if (Heap* pooled = static_cast<Heap*>(segment->owner())->remote_free(p)) {
      g->pool.drain_pooled(pooled);
    }
    g->heapless_remote_pushed.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  g->reporter.report(segment->magic() == SegmentHeader::kMagic ? HeapError::kDoubleFree
                                                               : HeapError::kInvalidPointer,
                     call, p);
}

bool is_ours(const void* p) {
  Globals* g = globals();
  return g != nullptr && g->registry.lookup(p) != nullptr;
}

}  // namespace
}  // namespace internal

namespace global {

using namespace internal;

void* malloc(std::size_t size) noexcept { return malloc_inline(size); }

void* calloc(std::size_t count, std::size_t size) noexcept {
  SlowPathScope slow_path;
  return with_heap([count, size](Heap& heap) { return heap.calloc(count, size); });
}

void* memalign(std::size_t alignment, std::size_t size, const char* call) noexcept {
  SlowPathScope slow_path;
  return with_heap(
      [alignment, size, call](Heap& heap) { return heap.memalign(alignment, size, call); });
}

}  // namespace global

namespace internal {
namespace {
// free() of p != nullptr by the thread whose heap is `heap`, past the fast
// path: the owner's remote queue, a medium or huge block, a report.
void free_in_heap(Heap* heap, void* p, const char* call) noexcept {
  SegmentHeader* segment = heap->find_segment(p);
  if (segment == nullptr) {
    free_foreign(p, call);
    return;
  }
  heap->free_in_segment(segment, p, call);
}

// free() by a thread without a heap (p != nullptr).
[[gnu::noinline]] void free_without_heap(void* p, const char* call) noexcept {
  SlowPathScope slow_path;
  Heap* heap = tls_heap;  // attached since, reentrantly?
  if (heap == nullptr) {
    // A thread that frees without having allocated (a consumer) gets a heap
    // too, so its remote frees are batched like everyone's; a thread past
    // its exit, or before the globals exist, frees one by one.
    Globals* g = globals();
    if (g == nullptr || g->registry.lookup(p) == nullptr || (heap = attach_heap(g)) == nullptr) {
      free_slow(p, call);
      return;
    }
  }
  free_in_heap(heap, p, call);
}

}  // namespace

void* malloc_without_heap(std::size_t size) noexcept {
  return with_heap_slow([size](Heap& heap) { return heap.malloc(size); });
}

void free_slow_path(void* p, Heap* heap, const char* call) noexcept {
  if (p == nullptr) return;
  if (heap == nullptr) {
    free_without_heap(p, call);
    return;
  }
  free_in_heap(heap, p, call);
}

}  // namespace internal

namespace global {

void free(void* p) noexcept { free_inline(p, "free()"); }
void free(void* p, const char* call) noexcept { free_inline(p, call); }

void* realloc(void* p, std::size_t size) noexcept {
  SlowPathScope slow_path;
  if (p != nullptr && !is_ours(p)) {
    if (forward_foreign(p)) {
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
  if (Heap* heap = tls_heap; heap != nullptr) {
    if (const std::size_t size = heap->usable_size_fast(p); size != 0) return size;
  }
  if (p == nullptr) return 0;
  if (!is_ours(p)) {
    if (forward_foreign(p)) {
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
  SlowPathScope slow_path;
  Globals* g = init();
  auto mapped = [g] {
    std::size_t bytes = 0;
    for (unsigned i = 0; i < g->numa.source_count(); ++i) {
      bytes += g->numa.source_at(i).stats().mapped_bytes;
    }
    return bytes;
  };
  const std::size_t before = mapped();
  // Other threads' heaps: a request each honours at its next slow path
  // (ThreadHeap::decay_tick); only the owner may walk its heap.
  for (unsigned i = 0; i < g->numa.source_count(); ++i) g->numa.source_at(i).request_trim();
  if (Heap* heap = tls_heap; heap != nullptr) heap->trim(false);
  g->pool.trim_pooled();
  for (unsigned i = 0; i < g->numa.source_count(); ++i) g->numa.source_at(i).trim();
  return mapped() < before;
}

void set_forward_foreign(bool forward) {
  g_forward_foreign.store(forward, std::memory_order_relaxed);
}

}  // namespace global
}  // namespace hpcalloc

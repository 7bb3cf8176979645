// Internal to the process-wide allocator (not installed): the production
// instance's types, its one global object and the calls its three source
// files share. global_allocator.cpp owns the globals, the thread-local heap
// pointer and the entry points; fork_handlers.cpp the pthread_atfork
// handlers (fork_handlers.h); statistics.cpp the figures and the exit summary.
#pragma once

#include <pthread.h>
#include <unistd.h>

#include <atomic>
#include <cstddef>
#include <new>

#include "api/production_config.h"
#include "mem/memory_source.h"
#include "mem/numa_heaps.h"
#include "mem/thread_heap.h"
#include "mem/thread_heap_pool.h"
#include "sync/spin_lock.h"

namespace hpcalloc::internal {

using Config = FlavourConfig;
using Heap = ThreadHeap<Config>;
using Source = MemorySource<Config>;
using Registry = SegmentRegistry<Config>;
using Pool = ThreadHeapPool<Config>;
using Numa = NumaHeaps<Config>;
using Lock = SpinLock<StdSync>;

// HPCALLOC_STATS: no summary, the text one (1, text) or one JSON object
// (json).
enum class StatsFormat { kOff, kText, kJson };

// What HPCALLOC_STATS asks for (a malformed value: kOff, with a warning).
StatsFormat read_stats_format();

struct Settings {
  StatsFormat stats = StatsFormat::kOff;
  // HPCALLOC_STATS_FILE: append the summary there ("": none). A copy: the
  // environment's strings may be overwritten by then (redis writes its
  // process title over them).
  char stats_file[4096] = {};
  bool abort_on_error = true;
  bool background_thread = false;  // HPCALLOC_BACKGROUND_THREAD (api/background_thread.h)
  SourceLimits limits;
};

// The process-wide registry, constant-initialised in static storage (its
// 1 MiB root costs no page until used), attached to `pal` (Globals' ctor).
Registry& process_registry(Config::Pal& pal);

struct Globals {
  explicit Globals(const Settings& s)
      : settings(s),
        reporter(s.abort_on_error),
        registry(process_registry(pal)),
        pool(pal, {registry, reporter}),
        numa(pal, registry, pool, s.limits) {}

  Settings settings;
  Config::Pal pal;
  Config::Reporter reporter;  // counts its reports (hpc_stat "errors_reported")
  Registry& registry;         // in static storage of its own (process_registry)
  Pool pool;
  Numa numa;  // the memory sources, one per node (numa_heaps.h)
  // Serves threads whose heap was already given back at exit.
  Lock fallback_lock;
  Heap* fallback_heap = nullptr;
  pthread_key_t key{};
  std::atomic<std::size_t> heapless_remote_pushed{0};
  // A duplicate of stderr taken at start-up for the exit summary: programs
  // (coreutils' close_stdout) may close fd 2 before our destructor runs.
  int stats_fd = STDERR_FILENO;
};

// The globals once built (nullptr before the first allocation).
Globals* globals();
// The globals, building them on first use.
Globals* init();
// Held while the globals are built; fork handlers take it too.
Lock& init_lock();

// The calling thread's heap, or nullptr.
Heap* calling_threads_heap();
// The calling thread uses `heap` from now on (hpc_numa_rebind).
void set_calling_threads_heap(Heap* heap);
// Child after fork: the calling thread forgets its heap (abandoned).
void forget_calling_threads_heap();
// Whether the calling thread is inside one of the slow paths that
// global_allocator.cpp marks for the fork handlers (fork_handlers.h).
bool calling_thread_in_slow_path();

// Taken first by the fork handlers: forks are serialised (fork_handlers.h).
Lock& fork_lock();
// The pthread_atfork handlers (fork_handlers.cpp).
void prepare_fork();
void parent_after_fork();
void child_after_fork();

}  // namespace hpcalloc::internal

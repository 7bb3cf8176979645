// fork() handlers of the process-wide allocator, registered with
// pthread_atfork on first use (globals.h).
#include <cstddef>
#include <new>

#include "api/globals.h"

namespace hpcalloc::internal {
namespace {

// One fixed order: init lock, fallback heap, node heaps, pool, sources (the
// order in which allocation paths nest them). A lock
// that cannot be had within about a second is taken to be held by this very
// thread, interrupted by the signal handler that is forking (glibc deadlocks
// there; we do not): the child then resets what that lock protects instead
// of trusting it, and the parent leaves it to its holder.
struct ForkLocks {
  bool init = false;
  bool pool = false;
  bool fallback = false;
  bool node_heaps[Topology::kMaxNodes] = {};
  bool sources[2 * Topology::kMaxNodes] = {};
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

}  // namespace

void prepare_fork() {
  g_fork_locks = ForkLocks{};
  g_fork_locks.init = lock_bounded([] { return init_lock().try_lock(); });
  Globals* g = globals();
  if (g == nullptr) return;
  g_fork_locks.fallback = lock_bounded([g] { return g->fallback_lock.try_lock(); });
  for (unsigned n = 0; n < g->numa.node_count(); ++n) {
    g_fork_locks.node_heaps[n] = lock_bounded([g, n] { return g->numa.node_lock(n).try_lock(); });
  }
  g_fork_locks.pool = lock_bounded([g] { return g->pool.try_lock_for_fork(); });
  for (unsigned i = 0; i < g->numa.source_count(); ++i) {
    g_fork_locks.sources[i] =
        lock_bounded([g, i] { return g->numa.source_at(i).try_lock_for_fork(); });
  }
}

void parent_after_fork() {
  if (Globals* g = globals(); g != nullptr) {
    for (unsigned i = g->numa.source_count(); i-- > 0;) {
      if (g_fork_locks.sources[i]) g->numa.source_at(i).unlock_after_fork();
    }
    if (g_fork_locks.pool) g->pool.unlock_after_fork();
    for (unsigned n = g->numa.node_count(); n-- > 0;) {
      if (g_fork_locks.node_heaps[n]) g->numa.node_lock(n).unlock();
    }
    if (g_fork_locks.fallback) g->fallback_lock.unlock();
  }
  if (g_fork_locks.init) init_lock().unlock();
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
    g->numa.forget_node_heaps_in_child();  // attached too
    for (unsigned i = g->numa.source_count(); i-- > 0;) {
      if (g_fork_locks.sources[i]) {
        g->numa.source_at(i).unlock_after_fork();
      } else {
        g->numa.source_at(i).reset_in_child_after_fork();
      }
    }
  }
  forget_calling_threads_heap();
  new (&init_lock()) Lock();
}

}  // namespace hpcalloc::internal

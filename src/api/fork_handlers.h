// The fork() handlers of the process-wide allocator, as a template over
// where a fork's record lives (Records), so the TSan stress runs this very
// code with a deliberately broken twin (tsan/fork_handlers_stress.cpp).
// fork_handlers.cpp instantiates the production one and registers it with
// pthread_atfork on first use (globals.h).
//
// Locks. The prepare handler takes every allocator lock in one fixed order,
// the order in which allocation paths nest them: the fork lock, the init
// lock, the fallback heap's, the node heaps' (node order), the pool's, the
// memory sources' (index order). The parent handler releases what the
// prepare took; the child releases it too, or resets what a lock it did not
// take protects. Nothing is guessed from timeouts.
//
// Concurrent forks. The fork lock, taken first, serialises forks from
// several threads; besides, each fork's record of the locks it took belongs
// to the forking thread (production: thread-local, one per nesting level),
// so no fork can clear or overwrite another's, and the parent handler of
// each fork releases exactly what its own prepare took. (glibc 2.36 runs the
// handlers of concurrent forks at the same time: it drops its atfork lock
// around each handler.)
//
// A fork from a signal handler that interrupted this thread inside the
// allocator. Detected, not guessed: every lock names its holder
// (SpinLock::held_by_caller), and the paths of global_allocator.cpp that
// work on the thread's heap outside the malloc/free fast paths keep a
// thread-local depth (calling_thread_in_slow_path). When this thread holds
// one of the locks, the prepare does not wait for any lock, the fork lock
// included: a thread holding a lock earlier in the order may be waiting for
// the one this thread holds, which is released only when the handler
// returns, so waiting could deadlock. It takes what is free, and the child
// resets what every other lock protects (a half-done update, or a holder
// that does not exist in the child); the parent unlocks only what the
// prepare took. Not detected: a handler that interrupted this thread in a
// fast path, or inside its heap's own code between two lock sites (caches,
// medium cache, refills, flushes, drains, medium and huge blocks: see
// global_allocator.cpp's top comment); marking those would cost every
// malloc/free, or belongs in mem/thread_heap.h. The child then keeps a heap
// that operation left half-done, and an allocation the child makes before
// the handler returns may find, say, a cache count one off its list or a
// medium chunk half split. That is the price of keeping the forking thread's
// heap at all (abandoning it in every child, as before, strands it); such a
// fork is outside what POSIX promises (POSIX.1-2024 no longer lists fork()
// as async-signal-safe), and the undetected windows are a few instructions
// of the common paths plus the heap's lock-free slow paths.
//
// The child's heaps. It keeps the forking thread's heap (attached, with all
// its memory) unless the fork interrupted it as above: that thread was in
// fork(), not in the allocator. It keeps the fallback heap and the node
// heaps whose locks the prepare took: they are used only under those locks,
// so they were idle. Pooled heaps stay adoptable: they are touched only
// under the pool's lock, which the prepare held. The heaps attached to the
// other threads are abandoned (HeapPool::abandon_attached_in_child): those
// threads kept running while the kernel copied the address space and may
// have been anywhere in their heaps, fast paths included, which nothing
// marks; a consistency check cannot tell a heap caught mid-operation from a
// sound one, and walking or repairing one could follow a half-written link
// into live data. So they are neither adopted nor drained: their memory
// (what those threads held at the fork) stays as it was, and their queues
// are forsaken: frees of their blocks in the child are dropped by the
// sender (remote_frees.h), so no carrier of a heap the child uses is
// stranded with them (only carriers already in flight at the fork). That
// loss is bounded by what the parent's other threads held; a child that
// forks again while no other thread of its own is running abandons nothing
// more, so a chain of forks or a long-lived worker keeps a bounded number of
// heaps and reuses what it inherited (preload test fork_chain).
#pragma once

#include <cstdint>
#include <new>

#include "api/globals.h"
#include "base/report.h"

namespace hpcalloc::internal {

// What one fork's prepare handler did, for the parent and child handlers.
struct ForkRecord {
  Globals* globals = nullptr;  // as the prepare saw them (nullptr: not built yet)
  bool interrupted = false;    // this thread was inside the allocator (see above)
  // Locks the prepare took.
  bool fork_lock = false;
  bool init = false;
  bool fallback = false;
  bool pool = false;
  std::uint64_t node_locks = 0;   // bit n: node n's
  std::uint64_t sources[2] = {};  // source i: bit i % 64 of word i / 64

  static bool bit(std::uint64_t word, unsigned i) { return ((word >> i) & 1) != 0; }
  bool node_lock(unsigned n) const { return bit(node_locks, n); }
  bool source(unsigned i) const { return bit(sources[i / 64], i % 64); }
};
static_assert(Topology::kMaxNodes <= 64, "ForkRecord::node_locks has a bit per node");
static_assert(2 * Topology::kMaxNodes <= 128, "ForkRecord::sources has a bit per source");

// Records provides
//   static constexpr bool kSerialiseForks  the prepare takes the fork lock
//   static ForkRecord& begin()             the prepare's fresh record
//   static ForkRecord end()                the parent's or child's copy of
//                                          that fork's record, now released
template <class Records>
class ForkHandlers {
 public:
  static void prepare() {
    ForkRecord& r = Records::begin();
    const bool holds_a_lock = holds_allocator_lock(globals());
    r.interrupted = holds_a_lock || calling_thread_in_slow_path();
    // See the top comment: a thread holding one of the locks only tries.
    auto take = [holds_a_lock](auto lock, auto try_lock) {
      if (holds_a_lock) return try_lock();
      lock();
      return true;
    };
    if constexpr (Records::kSerialiseForks) {
      r.fork_lock = take([] { fork_lock().lock(); }, [] { return fork_lock().try_lock(); });
    }
    r.init = take([] { init_lock().lock(); }, [] { return init_lock().try_lock(); });
    // Read under the init lock: nobody publishes the globals meanwhile, so
    // the child finds the very globals this record describes.
    Globals* g = globals();
    r.globals = g;
    if (g == nullptr) return;
    r.fallback =
        take([g] { g->fallback_lock.lock(); }, [g] { return g->fallback_lock.try_lock(); });
    for (unsigned n = 0; n < g->numa.node_count(); ++n) {
      Lock& lock = g->numa.node_lock(n);
      if (take([&lock] { lock.lock(); }, [&lock] { return lock.try_lock(); })) {
        r.node_locks |= std::uint64_t{1} << n;
      }
    }
    r.pool = take([g] { g->pool.lock_for_fork(); }, [g] { return g->pool.try_lock_for_fork(); });
    for (unsigned i = 0; i < g->numa.source_count(); ++i) {
      Source& source = g->numa.source_at(i);
      if (take([&source] { source.lock_for_fork(); },
               [&source] { return source.try_lock_for_fork(); })) {
        r.sources[i / 64] |= std::uint64_t{1} << (i % 64);
      }
    }
  }

  static void parent() {
    const ForkRecord r = Records::end();
    if (Globals* g = r.globals; g != nullptr) {
      for (unsigned i = g->numa.source_count(); i-- > 0;) {
        if (r.source(i)) g->numa.source_at(i).unlock_after_fork();
      }
      if (r.pool) g->pool.unlock_after_fork();
      for (unsigned n = g->numa.node_count(); n-- > 0;) {
        if (r.node_lock(n)) g->numa.node_lock(n).unlock();
      }
      if (r.fallback) g->fallback_lock.unlock();
    }
    if (r.init) init_lock().unlock();
    if (r.fork_lock) fork_lock().unlock();
  }

  // The child has one thread, this one. Every lock is either taken by the
  // prepare (what it protects is consistent: keep it, release the lock) or
  // not (reset what it protects, start the lock afresh).
  static void child() {
    ForkRecord r = Records::end();
    Globals* g = globals();
    // Built by another thread after a prepare that could not take the init
    // lock: nothing of them was taken, so nothing is trusted.
    if (r.globals != g) r = ForkRecord{.globals = g, .interrupted = true};
    bool keep_own_heap = false;
    if (g != nullptr) {
      Heap* own = calling_threads_heap();
      keep_own_heap = own != nullptr && r.pool && !r.interrupted;
      // A heap used only under a lock the prepare took was idle.
      const bool keep_fallback = r.pool && r.fallback && g->fallback_heap != nullptr;
      auto keep_node = [&r, g](unsigned n) {
        return r.pool && r.node_lock(n) && g->numa.node_heap(n) != nullptr;
      };
      if (r.pool) {
        g->pool.abandon_attached_in_child([&](const Heap* heap) {
          if (heap == own) return keep_own_heap;
          if (heap == g->fallback_heap) return keep_fallback;
          for (unsigned n = 0; n < g->numa.node_count(); ++n) {
            if (heap == g->numa.node_heap(n)) return keep_node(n);
          }
          return false;
        });
        g->pool.unlock_after_fork();
      } else {
        g->pool.reset_in_child_after_fork();
      }
      if (!keep_fallback) g->fallback_heap = nullptr;  // abandoned with the others
      new (&g->fallback_lock) Lock();
      for (unsigned n = 0; n < Topology::kMaxNodes; ++n) {
        if (n < g->numa.node_count() && keep_node(n)) {
          g->numa.keep_node_heap_in_child(n);
        } else {
          g->numa.forget_node_heap_in_child(n);
        }
      }
      for (unsigned i = g->numa.source_count(); i-- > 0;) {
        if (r.source(i)) {
          g->numa.source_at(i).unlock_after_fork();
        } else {
          g->numa.source_at(i).reset_in_child_after_fork();
        }
      }
    }
    // A fresh heap is attached on this thread's next allocation.
    if (!keep_own_heap) forget_calling_threads_heap();
    new (&init_lock()) Lock();
    new (&fork_lock()) Lock();
  }

 private:
  // Whether the calling thread holds any of the allocator's locks.
  static bool holds_allocator_lock(Globals* g) {
    if (fork_lock().held_by_caller() || init_lock().held_by_caller()) return true;
    if (g == nullptr) return false;
    if (g->fallback_lock.held_by_caller() || g->pool.held_by_caller_for_fork()) return true;
    for (unsigned n = 0; n < g->numa.node_count(); ++n) {
      if (g->numa.node_lock(n).held_by_caller()) return true;
    }
    for (unsigned i = 0; i < g->numa.source_count(); ++i) {
      if (g->numa.source_at(i).held_by_caller_for_fork()) return true;
    }
    return false;
  }
};

}  // namespace hpcalloc::internal

// HeapPool: where thread heaps live. Heaps are never unmapped: a heap whose
// thread exits is trimmed (caches flushed, remote frees drained) and pooled;
// it keeps receiving remote frees for the blocks its thread handed out, and
// the next new thread adopts it instead of creating a heap. So the number of
// heaps is bounded by the peak number of threads, and an owner pointer
// stored in a segment header stays valid forever.
//
// Who drains a pooled heap. Its thread is gone, so the pool's lock stands in
// for the owner: whoever holds the lock may drain a pooled heap. A heap
// that sends frees to a pooled heap drains it (drain_pooled, through the
// stand-in hook every heap gets from its pool), so those frees never wait
// for another thread to start or exit, and thread exit and start do
// constant work under the lock (no walk of the pooled heaps). The heap's
// RemoteFrees says when a push went to an unattended queue, with the
// seq_cst handshake that guarantees a push racing the pooling is seen by
// one side (remote_frees.h).
//
// Heaps are carved from slabs reserved from the Pal. Every heap is on the
// all-heaps list (for statistics); pooled heaps are also on the pooled list.
// After fork() the child keeps the heaps it can trust (the forking thread's
// own, and those used only under a lock the fork handlers took: the caller
// names them) and abandons the other attached heaps: their threads do not
// exist in the child and may have been anywhere inside them, fast paths
// included, when the address space was copied (api/fork_handlers.h says why
// no check can tell). An abandoned heap is never pooled or adopted again,
// and its queue is forsaken (Heap::forsake()): frees of its blocks are
// dropped by their senders rather than stranding their carriers in a queue
// nobody drains. Pooled heaps stay adoptable.
//
// The pool is generic over the heap so the Relacy model runs this very code
// with a model heap (model/heap_pool_model.cpp). A Heap provides:
//   Heap::Source, Heap::Context, Heap(const Context&, Source&),
//   Source& source(), void drain_remote(),
//   void trim(bool release_cached, const char* operation),
//   void trim_at_exit() (the trim of a thread's exit),
//   void set_stand_in(void (*)(void* pool, Heap*), void* pool),
//   bool set_unattended() (true: frees arrived meanwhile; drain them),
//   void set_attended(), void forsake() (abandoned at a fork),
//   void decay_tick() (gives back what has been free for the decay delay).
// Protocol is a policy only so the model can build a broken twin.
#pragma once

#include <cerrno>
#include <cstddef>
#include <new>

#include "base/bits.h"
#include "sync/spin_lock.h"
#include "sync/sync_policy.h"

namespace hpcalloc {

struct PoolCounts {
  std::size_t created = 0;     // heaps ever built
  std::size_t attached = 0;    // in use by a thread
  std::size_t pooled = 0;      // waiting for a new thread
  std::size_t abandoned = 0;   // attached at a fork, in the child
  std::size_t slab_bytes = 0;  // reserved from the Pal for the heaps themselves
};

struct HeapPoolProtocol {
  // false: release() pools the heap first and trims it after, so an adopter
  // can take a heap whose queue its old thread is still draining (BROKEN).
  static constexpr bool kTrimBeforePooling = true;
  // false: the stand-in drains a pooled heap without the lock, racing with
  // an adopter (BROKEN).
  static constexpr bool kStandInLocks = true;
  // false: decay_pooled walks the pooled heaps without the lock, racing
  // with an adopter and with the list's updates (BROKEN).
  static constexpr bool kDecayLocks = true;
  using LockOrders = SpinLockOrders;
};

template <class Heap, SyncPolicy Sync, class SlabPal, class Protocol = HeapPoolProtocol>
class HeapPool {
 public:
  using Source = typename Heap::Source;
  using Context = typename Heap::Context;

  HeapPool(SlabPal& pal, const Context& context) : pal_(pal), context_(context) {}
  HeapPool(const HeapPool&) = delete;
  HeapPool& operator=(const HeapPool&) = delete;
  // The end of a private pool (tests, the model): every heap is destroyed,
  // live blocks or not. The process-wide pool is never destroyed.
  ~HeapPool() { destroy_heaps(); }
  void destroy_heaps() {
    for (Record* r = all_.load(); r != nullptr;) {
      Record* next = r->next_all.load();
      r->heap()->~Heap();
      r->~Record();
      r = next;
    }
    all_.store(nullptr);
    pooled_.store(nullptr);
  }

  // A heap for a new thread: a pooled heap of `source` if there is one (its
  // remote frees drained), else a new one. nullptr + ENOMEM without memory.
  Heap* acquire(Source& source) {
    Record* record = nullptr;
    {
      LockGuard guard(lock_);
      for (Record* r = pooled_.load(); r != nullptr; r = r->next_pooled.load()) {
        if (&r->heap()->source() == &source) {
          record = r;
          unlist_pooled(r);
          counts_add(pooled_count_, -1);
          record->heap()->set_attended();
          break;
        }
      }
      if (record == nullptr) record = new_record(source);
      if (record == nullptr) {
        errno = ENOMEM;
        return nullptr;
      }
      record->state.store(State::kAttached);
      counts_add(attached_, 1);
    }
    // Ours now: what was freed into it while pooled comes back.
    record->heap()->drain_remote();
    return record->heap();
  }

  // Thread exit: gives the heap back for adoption. Constant work under the
  // lock, plus draining the frees that raced with the pooling itself.
  void release(Heap* heap) {
    Record* record = Record::of(heap);
    if (record->state.load() != State::kAttached) return;  // abandoned at a fork
    if constexpr (Protocol::kTrimBeforePooling) heap->trim_at_exit();
    {
      LockGuard guard(lock_);
      record->state.store(State::kPooled);
      list_pooled(record);
      counts_add(attached_, -1);
      counts_add(pooled_count_, 1);
      // A free pushed after the trim but before the sender could see the
      // heap unattended: ours to drain, as the lock's holder.
      if (heap->set_unattended()) heap->drain_remote();
    }
    if constexpr (!Protocol::kTrimBeforePooling) heap->trim_at_exit();  // BROKEN
  }

  // The stand-in owner: drains `heap` if it is pooled (a heap that sent it
  // frees calls this through its stand-in hook).
  void drain_pooled(Heap* heap) {
    if constexpr (!Protocol::kStandInLocks) {
      heap->drain_remote();  // BROKEN: the heap may be adopted meanwhile
      return;
    }
    LockGuard guard(lock_);
    if (Record::of(heap)->state.load() == State::kPooled) heap->drain_remote();
  }

  PoolCounts counts() const {
    LockGuard guard(lock_);
    PoolCounts c;
    c.created = created_.load();
    c.attached = attached_.load();
    c.pooled = pooled_count_.load();
    c.abandoned = abandoned_.load();
    c.slab_bytes = slab_bytes_.load();
    return c;
  }

  // Calls fn(const Heap&, bool attached) for every heap (under the lock:
  // fn must not allocate through this pool).
  template <class Fn>
  void for_each(Fn fn) const {
    LockGuard guard(lock_);
    for (const Record* r = all_.load(); r != nullptr; r = r->next_all.load()) {
      fn(*r->heap(), r->state.load() == State::kAttached);
    }
  }

  // Trims every pooled heap (malloc_trim): they have no thread, so the
  // caller may do their owner's work under the lock.
  void trim_pooled() {
    LockGuard guard(lock_);
    for (Record* r = pooled_.load(); r != nullptr; r = r->next_pooled.load())
      r->heap()->trim(false, "malloc_trim()");
  }

  // Decay for heaps without a thread (the background thread,
  // api/background_thread.h): a pooled heap's pages freed since its pooling
  // (remote frees drained into it) otherwise wait for an adopter. The lock's
  // holder does the owner's work, as in drain_pooled; thread start and exit
  // wait meanwhile, which a decay pass keeps short (one pass per heap, its
  // work bounded like any owner's tick).
  void decay_pooled() {
    if constexpr (!Protocol::kDecayLocks) {
      for (Record* r = pooled_.load(); r != nullptr; r = r->next_pooled.load())
        r->heap()->decay_tick();  // BROKEN: an adopter may own the heap meanwhile
      return;
    }
    LockGuard guard(lock_);
    for (Record* r = pooled_.load(); r != nullptr; r = r->next_pooled.load())
      r->heap()->decay_tick();
  }

  // fork() (api/fork_handlers.h): the prepare handler takes the lock,
  // waiting for it, or only trying when this thread already holds one of
  // the allocator's locks (held_by_caller_for_fork: a fork from a signal
  // handler that interrupted it); whoever took it releases it after.
  void lock_for_fork() { lock_.lock(); }
  bool try_lock_for_fork() { return lock_.try_lock(); }
  bool held_by_caller_for_fork() const { return lock_.held_by_caller(); }
  void unlock_after_fork() { lock_.unlock(); }
  // The child, when the prepare took the lock (still held): pooled heaps
  // were idle (only touched under the lock) and stay adoptable; every
  // attached heap but those keep(const Heap*) names is abandoned.
  template <class Keep>
  void abandon_attached_in_child(Keep keep) {
    for (Record* r = all_.load(); r != nullptr; r = r->next_all.load()) {
      if (r->state.load() == State::kAttached && !keep(static_cast<const Heap*>(r->heap()))) {
        r->state.store(State::kAbandoned);
        r->heap()->forsake();
        counts_add(attached_, -1);
        counts_add(abandoned_, 1);
      }
    }
  }
  void abandon_attached_in_child() {
    abandon_attached_in_child([](const Heap*) { return false; });
  }
  // The child, when the prepare did not take the lock (a fork from a signal
  // handler that interrupted this thread inside the allocator: this thread
  // or another held it): the lists may be half-updated, so no heap is
  // trusted: every one is abandoned, and the lock starts free.
  void reset_in_child_after_fork() {
    new (&lock_) Lock();
    pooled_.store(nullptr);
    for (Record* r = all_.load(); r != nullptr; r = r->next_all.load()) {
      r->state.store(State::kAbandoned);
      r->heap()->forsake();
    }
    attached_.store(0);
    pooled_count_.store(0);
    abandoned_.store(created_.load());
  }

 private:
  using Lock = SpinLock<Sync, typename Protocol::LockOrders>;
  template <class T>
  using Var = typename Sync::template Var<T>;
  // A record's state (a plain integer: the model checker prints its values).
  struct State {
    static constexpr unsigned kAttached = 0;
    static constexpr unsigned kPooled = 1;
    static constexpr unsigned kAbandoned = 2;
  };

  // A heap and its pool bookkeeping, cache-line aligned. Every field but
  // the heap is the lock holder's (Var: the model checks that).
  struct alignas(64) Record {
    alignas(64) unsigned char storage[sizeof(Heap)];
    Var<Record*> next_all{nullptr};
    Var<Record*> next_pooled{nullptr};
    Var<Record*> prev_pooled{nullptr};
    Var<unsigned> state{State::kAttached};

    Heap* heap() { return std::launder(reinterpret_cast<Heap*>(storage)); }
    const Heap* heap() const { return std::launder(reinterpret_cast<const Heap*>(storage)); }
    static Record* of(Heap* heap) {
      return reinterpret_cast<Record*>(reinterpret_cast<unsigned char*>(heap) -
                                       offsetof(Record, storage));
    }
  };

  // Under the lock. Doubly linked so adoption unlinks in O(1).
  void list_pooled(Record* r) {
    Record* head = pooled_.load();
    r->prev_pooled.store(nullptr);
    r->next_pooled.store(head);
    if (head != nullptr) head->prev_pooled.store(r);
    pooled_.store(r);
  }
  void unlist_pooled(Record* r) {
    Record* prev = r->prev_pooled.load();
    Record* next = r->next_pooled.load();
    if (prev != nullptr) {
      prev->next_pooled.store(next);
    } else {
      pooled_.store(next);
    }
    if (next != nullptr) next->prev_pooled.store(prev);
  }
  static void counts_add(Var<std::size_t>& count, long delta) {
    count.store(count.load() + static_cast<std::size_t>(delta));
  }

  static void stand_in(void* pool, Heap* heap) { static_cast<HeapPool*>(pool)->drain_pooled(heap); }

  // Under the lock.
  Record* new_record(Source& source) {
    // Both null before the first slab: null minus null is defined, null + n is not.
    if (static_cast<std::size_t>(slab_end_ - slab_next_) < sizeof(Record)) {
      const std::size_t bytes = align_up(kRecordsPerSlab * sizeof(Record), pal_.page_size());
      auto* slab = static_cast<unsigned char*>(pal_.reserve(bytes, pal_.page_size()));
      if (slab == nullptr) return nullptr;
      counts_add(slab_bytes_, static_cast<long>(bytes));
      slab_next_ = slab;
      slab_end_ = slab + bytes;
    }
    Record* record = new (slab_next_) Record;
    slab_next_ += sizeof(Record);
    Heap* heap = new (record->storage) Heap(context_, source);
    heap->set_stand_in(&stand_in, this);
    record->next_all.store(all_.load());
    all_.store(record);
    counts_add(created_, 1);
    return record;
  }

  static constexpr std::size_t kRecordsPerSlab = 16;

  SlabPal& pal_;
  const Context context_;
  mutable Lock lock_;
  Var<Record*> all_{nullptr};
  Var<Record*> pooled_{nullptr};
  unsigned char* slab_next_ = nullptr;
  unsigned char* slab_end_ = nullptr;
  // PoolCounts, one Var each.
  Var<std::size_t> created_{0};
  Var<std::size_t> attached_{0};
  Var<std::size_t> pooled_count_{0};
  Var<std::size_t> abandoned_{0};
  Var<std::size_t> slab_bytes_{0};
};

}  // namespace hpcalloc

// HeapPool: where thread heaps live. Heaps are never unmapped: a heap whose
// thread exits is trimmed (caches flushed, remote frees drained) and pooled;
// it keeps receiving remote frees for the blocks its thread handed out, and
// the next new thread adopts it (draining them) instead of creating a heap.
// So the number of heaps is bounded by the peak number of threads, and an
// owner pointer stored in a segment header stays valid forever.
//
// Heaps are carved from slabs reserved from the Pal. Every heap is on the
// all-heaps list (for statistics); pooled heaps are also on the pooled list.
// After fork() the child abandons the heaps that were attached to threads
// (they may have been mid-operation in threads that do not exist in the
// child): they are never pooled or adopted again, and frees of their blocks
// just queue up. The pool's lists are under one SpinLock, taken only at
// thread start and exit, for statistics, and around fork.
#pragma once

#include <cerrno>
#include <cstddef>
#include <new>

#include "base/bits.h"
#include "mem/config.h"
#include "mem/memory_source.h"
#include "mem/thread_heap.h"
#include "sync/spin_lock.h"

namespace hpcalloc {

struct PoolCounts {
  std::size_t created = 0;    // heaps ever built
  std::size_t attached = 0;   // in use by a thread
  std::size_t pooled = 0;     // waiting for a new thread
  std::size_t abandoned = 0;  // attached at a fork, in the child
};

template <HeapConfig Config>
class HeapPool {
 public:
  using Heap = ThreadHeap<Config>;
  using Pal = typename Config::Pal;
  using Source = MemorySource<Config>;
  using Registry = SegmentRegistry<Config>;
  using Reporter = typename Config::Reporter;

  HeapPool(Pal& pal, Registry& registry, Reporter& reporter)
      : pal_(pal), registry_(registry), reporter_(reporter) {}
  HeapPool(const HeapPool&) = delete;
  HeapPool& operator=(const HeapPool&) = delete;

  // A heap for a new thread: a pooled heap of `source` if there is one (its
  // remote frees drained), else a new one. nullptr + ENOMEM without memory.
  Heap* acquire(Source& source) {
    Record* record = nullptr;
    {
      LockGuard guard(lock_);
      for (Record** link = &pooled_; *link != nullptr; link = &(*link)->next_pooled) {
        if (&(*link)->heap()->source() == &source) {
          record = *link;
          *link = record->next_pooled;
          counts_.pooled--;
          break;
        }
      }
      if (record == nullptr) record = new_record(source);
      if (record == nullptr) {
        errno = ENOMEM;
        return nullptr;
      }
      record->state = State::kAttached;
      counts_.attached++;
    }
    record->heap()->drain_remote();
    return record->heap();
  }

  // Thread exit: gives the heap back for adoption.
  void release(Heap* heap) {
    Record* record = Record::of(heap);
    if (record->state != State::kAttached) return;  // abandoned at a fork
    heap->trim(/*release_cached_mappings=*/false);
    LockGuard guard(lock_);
    // Blocks other threads freed into pooled heaps would otherwise wait for
    // an adopter: thread exits (and starts) take them back.
    for (Record* r = pooled_; r != nullptr; r = r->next_pooled) r->heap()->drain_remote();
    record->state = State::kPooled;
    record->next_pooled = pooled_;
    pooled_ = record;
    counts_.attached--;
    counts_.pooled++;
  }

  PoolCounts counts() const {
    LockGuard guard(lock_);
    return counts_;
  }

  // Calls fn(const Heap&, bool attached) for every heap (under the lock:
  // fn must not allocate through this pool).
  template <class Fn>
  void for_each(Fn fn) const {
    LockGuard guard(lock_);
    for (const Record* r = all_; r != nullptr; r = r->next_all) {
      fn(*r->heap(), r->state == State::kAttached);
    }
  }

  // Trims every pooled heap (malloc_trim): they have no thread, so the
  // caller may do their owner's work under the lock.
  void trim_pooled() {
    LockGuard guard(lock_);
    for (Record* r = pooled_; r != nullptr; r = r->next_pooled) r->heap()->trim(false);
  }

  // fork(): prepare takes the lock, the parent releases it, the child
  // releases it after abandoning the heaps that were attached to threads.
  void lock_for_fork() { lock_.lock(); }
  bool try_lock_for_fork() { return lock_.try_lock(); }
  void unlock_after_fork() { lock_.unlock(); }
  // The child's view when the lock could not be taken (a fork from a signal
  // handler that interrupted this thread inside it): the lists may be
  // half-updated, so no heap is trusted: every one is abandoned.
  void reset_in_child_after_fork() {
    new (&lock_) SpinLock<typename Config::Sync>();
    pooled_ = nullptr;
    for (Record* r = all_; r != nullptr; r = r->next_all) r->state = State::kAbandoned;
    counts_.attached = counts_.pooled = 0;
    counts_.abandoned = counts_.created;
  }
  void abandon_attached_in_child() {
    for (Record* r = all_; r != nullptr; r = r->next_all) {
      if (r->state == State::kAttached) {
        r->state = State::kAbandoned;
        counts_.attached--;
        counts_.abandoned++;
      }
    }
  }

 private:
  enum class State : unsigned char { kAttached, kPooled, kAbandoned };

  // A heap and its pool bookkeeping, cache-line aligned.
  struct alignas(64) Record {
    alignas(64) unsigned char storage[sizeof(Heap)];
    Record* next_all;
    Record* next_pooled;
    State state;

    Heap* heap() { return std::launder(reinterpret_cast<Heap*>(storage)); }
    const Heap* heap() const { return std::launder(reinterpret_cast<const Heap*>(storage)); }
    static Record* of(Heap* heap) {
      return reinterpret_cast<Record*>(reinterpret_cast<unsigned char*>(heap) -
                                       offsetof(Record, storage));
    }
  };
  static_assert(offsetof(Record, storage) == 0);

  // Under the lock.
  Record* new_record(Source& source) {
    // Both null before the first slab: null minus null is defined, null + n is not.
    if (static_cast<std::size_t>(slab_end_ - slab_next_) < sizeof(Record)) {
      const std::size_t bytes = align_up(kRecordsPerSlab * sizeof(Record), pal_.page_size());
      auto* slab = static_cast<unsigned char*>(pal_.reserve(bytes, pal_.page_size()));
      if (slab == nullptr) return nullptr;
      slab_next_ = slab;
      slab_end_ = slab + bytes;
    }
    Record* record = new (slab_next_) Record;
    slab_next_ += sizeof(Record);
    new (record->storage) Heap(registry_, source, reporter_);
    record->next_pooled = nullptr;
    record->next_all = all_;
    all_ = record;
    counts_.created++;
    return record;
  }

  static constexpr std::size_t kRecordsPerSlab = 16;

  Pal& pal_;
  Registry& registry_;
  Reporter& reporter_;
  mutable SpinLock<typename Config::Sync> lock_;
  Record* all_ = nullptr;
  Record* pooled_ = nullptr;
  unsigned char* slab_next_ = nullptr;
  unsigned char* slab_end_ = nullptr;
  PoolCounts counts_;
};

}  // namespace hpcalloc

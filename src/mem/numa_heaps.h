// NumaHeaps: the NUMA layer of the process-wide allocator, generic over the
// Config so the tests run it on SimPal with 2, 4 and 8 simulated nodes.
//
// Sources. With a per-node policy (first-touch, preferred, bind) there is
// one MemorySource per node, each with its own mapping cache; with `off`
// there is one source for every thread, which binds nothing and marks its
// memory "unplaced" (node_of() answers -1). hpc_malloc_on_node needs memory
// that really is on a node whatever the policy, so it has "placed" sources:
// the per-node sources themselves under preferred and bind, and under off or
// first-touch a second set that binds with MPOL_PREFERRED.
//
// Heaps. A thread's heap belongs to the source of the node the thread runs
// on when the heap is attached (HeapPool::acquire only hands out a pooled
// heap of that same source, so adopting never mixes nodes: a thread on
// another node gets a fresh heap instead). rebind() follows a thread that
// moved: without migration its heap is pooled (it keeps its node and its
// blocks; frees of them become remote frees) and the thread takes a heap of
// the new node; with migration the heap itself moves, its pages migrated
// with mbind(MPOL_MF_MOVE). Frees always go to the owning heap, whose
// segments go back to the source of the node they are on, so memory never
// crosses nodes through a cache.
//
// malloc_on_node() serves other threads' requests for a node from one
// shared heap per node under a lock (the caller's own heap when it already
// is that node's placed source); the blocks are freed like any other
// (remote frees to that heap, drained when it next allocates).
#pragma once

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <new>

#include "mem/config.h"
#include "mem/memory_source.h"
#include "mem/thread_heap.h"
#include "mem/thread_heap_pool.h"
#include "sync/spin_lock.h"

namespace hpcalloc {

// What hpc_numa_node_stats() reports for one node.
struct NodeStats {
  std::size_t mapped_bytes = 0;  // mapped by the node's sources, cache included
  std::size_t cached_bytes = 0;
  std::size_t in_use_bytes = 0;  // live blocks of heaps on the node (published figures)
  std::size_t heaps = 0;         // heaps attached to threads on the node
  std::size_t bind_failures = 0;
  std::size_t migrated_in = 0;
  std::size_t migrate_failures = 0;
};

template <HeapConfig Config>
class NumaHeaps {
 public:
  using Heap = ThreadHeap<Config>;
  using Source = MemorySource<Config>;
  using Pool = ThreadHeapPool<Config>;
  using Pal = typename Config::Pal;
  using Registry = SegmentRegistry<Config>;
  using Lock = SpinLock<typename Config::Sync>;
  static constexpr unsigned kMaxNodes = Topology::kMaxNodes;
  // The node recorded in the segments of the `off` policy's single source.
  static constexpr unsigned kUnplaced = 0xff;
  static_assert(kMaxNodes <= kUnplaced);

  NumaHeaps(Pal& pal, Registry& registry, Pool& pool, const SourceLimits& limits)
      : pal_(pal), registry_(registry), pool_(pool), policy_(limits.numa_policy) {
    const unsigned nodes = pal.topology().node_count;
    node_count_ = nodes == 0 ? 1 : (nodes < kMaxNodes ? nodes : kMaxNodes);
    if (policy_ == NumaPolicy::kOff) {
      new (storage_[source_count_++]) Source(pal, registry, kUnplaced, limits);
    } else {
      for (unsigned n = 0; n < node_count_; ++n) {
        new (storage_[source_count_++]) Source(pal, registry, n, limits);
      }
    }
    if (policy_ == NumaPolicy::kOff || policy_ == NumaPolicy::kFirstTouch) {
      SourceLimits placed = limits;
      placed.numa_policy = NumaPolicy::kPreferred;
      placed_first_ = source_count_;
      for (unsigned n = 0; n < node_count_; ++n) {
        new (storage_[source_count_++]) Source(pal, registry, n, placed);
      }
    }
  }
  NumaHeaps(const NumaHeaps&) = delete;
  NumaHeaps& operator=(const NumaHeaps&) = delete;
  ~NumaHeaps() {
    for (unsigned i = 0; i < source_count_; ++i) source_at(i).~Source();
  }

  unsigned node_count() const { return node_count_; }
  NumaPolicy policy() const { return policy_; }

  // Every source (statistics, trim, fork), 0 <= i < source_count().
  unsigned source_count() const { return source_count_; }
  Source& source_at(unsigned i) { return *std::launder(reinterpret_cast<Source*>(storage_[i])); }

  // The source of threads on `node`.
  Source& thread_source(unsigned node) {
    return source_at(policy_ == NumaPolicy::kOff ? 0 : clamp(node));
  }
  // The source whose memory is bound to `node`.
  Source& placed_source(unsigned node) { return source_at(placed_first_ + clamp(node)); }

  // The node the calling thread runs on now.
  unsigned current_node() {
    const int node = pal_.current_node();
    return node < 0 ? 0 : clamp(static_cast<unsigned>(node));
  }

  // The node whose memory `heap` serves (kUnplaced under `off`); any thread.
  static unsigned node_of_heap(const Heap& heap) { return heap.node(); }

  // A heap for a thread starting on its current node; nullptr + ENOMEM.
  Heap* acquire_heap() { return pool_.acquire(thread_source(current_node())); }

  // The heap the calling thread should use after moving to its current node
  // (see the top comment): `heap` itself when it already serves that node or
  // when it migrated; another one otherwise, `heap` then being pooled.
  // nullptr + ENOMEM when no new heap can be had: the caller keeps `heap`.
  // *failed_moves: mappings that could not be migrated.
  Heap* rebind(Heap* heap, bool migrate, std::size_t* failed_moves) {
    *failed_moves = 0;
    Source& target = thread_source(current_node());
    if (&heap->source() == &target) return heap;
    if (migrate) {
      *failed_moves = heap->migrate_to(target);
      return heap;
    }
    Heap* fresh = pool_.acquire(target);  // sets ENOMEM when it fails
    if (fresh == nullptr) return nullptr;
    pool_.release(heap);
    return fresh;
  }

  // A block of `size` bytes on `node` for a caller whose heap is `caller`
  // (nullptr when it has none). nullptr with EINVAL for a node the machine
  // does not have, ENOMEM without memory.
  void* malloc_on_node(std::size_t size, int node, Heap* caller) {
    if (node < 0 || static_cast<unsigned>(node) >= node_count_) {
      errno = EINVAL;
      return nullptr;
    }
    const auto n = static_cast<unsigned>(node);
    Source& source = placed_source(n);
    if (caller != nullptr && &caller->source() == &source) return caller->malloc(size);
    LockGuard guard(node_locks_[n]);
    if (node_heaps_[n] == nullptr) node_heaps_[n] = pool_.acquire(source);
    if (node_heaps_[n] == nullptr) {
      errno = ENOMEM;
      return nullptr;
    }
    return node_heaps_[n]->malloc(size);
  }

  // The node of the memory of a live block (or any address inside a live
  // mapping): -1 for a pointer hpcalloc does not hold and under `off`.
  int node_of(const void* p) {
    SegmentHeader* header = registry_.lookup(p);
    if (header == nullptr || !header->is_live()) {
      return -1;
    }
    const unsigned node = Source::node_of(header);
    return node == kUnplaced ? -1 : static_cast<int>(node);
  }

  // false for a node the machine does not have.
  bool node_stats(unsigned node, NodeStats* out) {
    if (node >= node_count_) return false;
    NodeStats s;
    for (unsigned i = 0; i < source_count_; ++i) {
      Source& source = source_at(i);
      if (source.node() != node) continue;
      const SourceStats st = source.stats();
      s.mapped_bytes += st.mapped_bytes;
      s.cached_bytes += st.cached_bytes;
      s.bind_failures += st.bind_failures;
      s.migrated_in += st.migrated_in;
      s.migrate_failures += st.migrate_failures;
    }
    pool_.for_each([&](const Heap& heap, bool attached) {
      if (node_of_heap(heap) != node) return;
      s.heaps += attached ? 1 : 0;
      s.in_use_bytes += heap.stats().in_use();
    });
    *out = s;
    return true;
  }

  // fork() (api/fork_handlers.h): the handlers take every node lock (in
  // node order, before the pool's lock: malloc_on_node takes the pool's lock
  // inside its own). A node heap is used only under its node's lock, so in
  // the child it is idle and kept when the prepare took that lock
  // (keep_node_heap_in_child); otherwise, and when the pool could not be
  // trusted, the child forgets it (forget_node_heap_in_child: abandoned with
  // the other attached heaps; a fresh one is made on the next request).
  Lock& node_lock(unsigned node) { return node_locks_[node]; }
  const Heap* node_heap(unsigned node) const { return node_heaps_[node]; }
  void keep_node_heap_in_child(unsigned node) { node_locks_[node].unlock(); }
  void forget_node_heap_in_child(unsigned node) {
    node_heaps_[node] = nullptr;
    new (&node_locks_[node]) Lock();
  }

 private:
  unsigned clamp(unsigned node) const { return node < node_count_ ? node : 0; }

  Pal& pal_;
  Registry& registry_;
  Pool& pool_;
  const NumaPolicy policy_;
  unsigned node_count_ = 1;
  unsigned source_count_ = 0;
  unsigned placed_first_ = 0;  // placed_source(n) is source_at(placed_first_ + n)
  alignas(Source) unsigned char storage_[2 * kMaxNodes][sizeof(Source)];
  Lock node_locks_[kMaxNodes];
  Heap* node_heaps_[kMaxNodes] = {};
};

}  // namespace hpcalloc

// Segments: the unit of memory a heap gets from its memory source. A segment
// is 2^kSegmentShift bytes (2 MiB in production), aligned to its size, and
// starts with a SegmentHeader; a huge block is one mapping of several segment
// slots with one header at its start. The region registry maps every slot of
// a mapping to its header, so any pointer finds its header in two loads.
//
// Invariants: a header is fully written before the registry publishes it
// (release store) and its kind/owner/node do not change while it is live;
// a header of kind kCached belongs to its memory source's cache, so a pointer
// into it is not a live block.
#pragma once

#include <atomic>
#include <concepts>
#include <cstddef>
#include <cstdint>

#include "ds/intrusive_list.h"

namespace hpcalloc {

enum class SegmentKind : std::uint8_t {
  kCached,  // in a memory source's cache, not owned by any heap
  kSmall,   // runs of small blocks (small_runs.h)
  kMedium,  // boundary-tagged chunks (medium_free_lists.h)
  kHuge,    // one block (huge_blocks.h)
};

struct SegmentHeader {
  static constexpr std::uint64_t kMagic = 0x68706361'6c6c6f63;  // "hpcalloc"

  // Read by any thread that frees, sizes or asks the node of a pointer,
  // while the owner or its source may rewrite them (a segment going into or
  // out of a source's cache, a migration): relaxed atomics, through the
  // accessors below. Relaxed is enough. A thread freeing a live block
  // learned of it through the program's own synchronisation with the thread
  // that allocated it, which wrote these fields before handing the block
  // out (and a header new from the OS is published by the registry's release
  // store). A thread racing a rewrite holds a stale pointer: a misuse
  // path, which needs some value, never a data race.
  std::uint64_t magic_word;
  SegmentKind kind_word;
  std::uint8_t node_word;    // NUMA node of the memory source it came from
  bool fresh;                // every byte after the header is still zero (new from the OS)
  std::uint8_t align_shift;  // kHuge: log2 of the alignment the block was asked for
  bool guarded;              // kHuge: the page below huge_block is a guard (inaccessible)
  bool huge_pages;           // advised MADV_HUGEPAGE (HPCALLOC_THP, memory_source.h)
  std::uint8_t reserved[2];
  void* owner_word;          // the heap allocating from it; fixed while live
  void* small_owner_word;    // owner when kind == kSmall, else nullptr: lets the free
                             // fast path test owner and kind with one compare
  std::size_t mapping_size;  // bytes mapped from this header (multiple of the segment size)
  void* huge_block;          // kHuge: the pointer handed out
  std::size_t huge_size;     // kHuge: usable bytes at huge_block
  // On one of its owner's lists (its small, medium or huge segments); null
  // links while on none, as the source hands it out (ds/intrusive_list.h).
  IntrusiveListNode<SegmentHeader> link;
  std::uint64_t freed_ms;  // kMedium, owner only: when a chunk last became free (decay); 0: none

  std::uint64_t magic() const { return load(magic_word); }
  SegmentKind kind() const { return load(kind_word); }
  unsigned node() const { return load(node_word); }
  void* owner() const { return load(owner_word); }
  void* small_owner() const { return load(small_owner_word); }

  void set_magic() { store(magic_word, kMagic); }
  void set_node(unsigned node) { store(node_word, static_cast<std::uint8_t>(node)); }
  // Hands the segment to `owner` as `kind` (nullptr and kCached: back in a
  // source's cache).
  void set_owner(SegmentKind kind, void* owner) {
    store(kind_word, kind);
    store(owner_word, owner);
    store(small_owner_word, kind == SegmentKind::kSmall ? owner : nullptr);
  }

  bool is_valid() const { return magic() == kMagic; }
  // Handed out to a heap (not in a source's cache, not a stale header).
  bool is_live() const {
    return magic() == kMagic && owner() != nullptr && kind() != SegmentKind::kCached;
  }

 private:
  template <class T>
  static T load(const T& field) {
    return std::atomic_ref<T>(const_cast<T&>(field)).load(std::memory_order_relaxed);
  }
  template <class T>
  static void store(T& field, T value) {
    std::atomic_ref<T>(field).store(value, std::memory_order_relaxed);
  }
};

static_assert(sizeof(SegmentHeader) % 16 == 0);

// Where a heap gets segments and huge mappings from (memory_source.h). The
// provider initialises and registers the header before returning it.
// decommit/commit give a range inside a segment back to the OS and take it
// again (the Pal's contract: false on failure, nothing changed).
template <class P>
concept SegmentProvider = requires(P& provider, SegmentHeader* segment, void* owner, void* p,
                                   std::size_t n) {
  { provider.acquire_segment(SegmentKind::kSmall, owner) } -> std::same_as<SegmentHeader*>;
  provider.release_segment(segment);
  { provider.decommit(p, n) } -> std::same_as<bool>;
  { provider.commit(p, n) } -> std::same_as<bool>;
  { provider.now_ms() } -> std::same_as<std::uint64_t>;  // the decay clock (mem/decay.h)
};

}  // namespace hpcalloc

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

#include <concepts>
#include <cstddef>
#include <cstdint>

namespace hpcalloc {

enum class SegmentKind : std::uint8_t {
  kCached,  // in a memory source's cache, not owned by any heap
  kSmall,   // runs of small blocks (small_runs.h)
  kMedium,  // boundary-tagged chunks (medium_free_lists.h)
  kHuge,    // one block (huge_blocks.h)
};

struct SegmentHeader {
  static constexpr std::uint64_t kMagic = 0x68706361'6c6c6f63;  // "hpcalloc"

  std::uint64_t magic;
  SegmentKind kind;
  std::uint8_t node;         // NUMA node of the memory source it came from
  bool fresh;                // every byte after the header is still zero (new from the OS)
  std::uint8_t align_shift;  // kHuge: log2 of the alignment the block was asked for
  std::uint8_t reserved[4];
  void* owner;               // the heap allocating from it; fixed while live
  void* small_owner;         // owner when kind == kSmall, else nullptr: lets the free
                             // fast path test owner and kind with one compare
  std::size_t mapping_size;  // bytes mapped from this header (multiple of the segment size)
  void* huge_block;          // kHuge: the pointer handed out
  std::size_t huge_size;     // kHuge: usable bytes at huge_block
  SegmentHeader* next;       // owner's or source's list links
  SegmentHeader* prev;
  std::uint64_t reserved_tail;  // keeps the header a multiple of 16 bytes

  bool is_valid() const { return magic == kMagic; }
  // Handed out to a heap (not in a source's cache, not a stale header).
  bool is_live() const {
    return magic == kMagic && owner != nullptr && kind != SegmentKind::kCached;
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
};

}  // namespace hpcalloc

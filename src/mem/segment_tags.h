// A heap's table of its own small segments, for the free fast path: is `p`
// in one of them, and which? One load and one compare, where the
// process-wide registry (ds/region_registry.h) takes two dependent loads,
// a range check and the segment header's owner: about ten instructions of
// every free (README, "Instructions per malloc+free pair").
//
// A segment is 2^kShift bytes, aligned to its size, so its tag is its
// address >> kShift, and every pointer into it has that tag too. The table
// is direct-mapped by the tag's low bits; an empty slot holds kNoTag, which
// no address has. A segment whose slot another holds is simply not found:
// its frees take the registry's path, correct and a little slower (the
// slow path puts it back, insert(), so a segment in use wins its slot).
//
// The invariant the fast path relies on: every tag in the table is a small
// segment the heap owns now. So a segment is erased before it leaves the
// heap (given back to its source, or the heap torn down), and inserted only
// while the heap owns it. No pointer the heap does not own can match: its
// tag is another segment's, or no segment's (foreign, null, non-canonical).
//
// Owner only, like the caches it guards: the owning thread reads and writes
// it; a pooled heap passes to its next thread through the pool's lock.
#pragma once

#include <cstddef>
#include <cstdint>

#include "mem/segment.h"

namespace hpcalloc {

template <unsigned kShift, unsigned kSlots = 256>
class SegmentTags {
  static_assert((kSlots & (kSlots - 1)) == 0, "slots are picked by the tag's low bits");

 public:
  static constexpr std::uintptr_t kNoTag = ~std::uintptr_t{0};

  SegmentTags() { clear(); }
  SegmentTags(const SegmentTags&) = delete;
  SegmentTags& operator=(const SegmentTags&) = delete;

  // Whether `p` lies in a segment of the table (then segment_of(p) is it).
  [[gnu::always_inline]] bool contains(const void* p) const {
    const std::uintptr_t tag = tag_of(p);
    return tags_[tag % kSlots] == tag;
  }
  // The segment `p` would lie in: a mask, no check.
  static SegmentHeader* segment_of(const void* p) {
    return reinterpret_cast<SegmentHeader*>(reinterpret_cast<std::uintptr_t>(p) &
                                            ~((std::uintptr_t{1} << kShift) - 1));
  }

  // `segment` (one the heap owns now) takes its slot from whichever held it.
  void insert(const SegmentHeader* segment) {
    const std::uintptr_t tag = tag_of(segment);
    tags_[tag % kSlots] = tag;
  }

  // Forgets `segment` (before it leaves the heap), if it holds its slot.
  void erase(const SegmentHeader* segment) {
    const std::uintptr_t tag = tag_of(segment);
    if (tags_[tag % kSlots] == tag) tags_[tag % kSlots] = kNoTag;
  }

  void clear() {
    for (std::uintptr_t& tag : tags_) tag = kNoTag;
  }

  // Test-only: whether every segment in the table satisfies `owned` (the
  // invariant above, checked by the heap's consistency walk).
  template <class Owned>
  bool all_owned(Owned owned) const {
    for (std::uintptr_t tag : tags_) {
      if (tag != kNoTag && !owned(reinterpret_cast<const SegmentHeader*>(tag << kShift))) {
        return false;
      }
    }
    return true;
  }

 private:
  static std::uintptr_t tag_of(const void* p) {
    return reinterpret_cast<std::uintptr_t>(p) >> kShift;
  }

  std::uintptr_t tags_[kSlots];
};

}  // namespace hpcalloc

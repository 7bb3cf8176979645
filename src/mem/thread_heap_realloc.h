// ThreadHeap::realloc (thread_heap.h): each kind resized in place where
// it can be (a small block within its class, a medium chunk into its free
// neighbour, a huge block by MemorySource::resize_huge), a growing medium
// block moved into a huge one, anything else allocate-copy-free.
#pragma once

#include <cstring>

#include "mem/thread_heap.h"

namespace hpcalloc {

template <HeapConfig Config>
void* ThreadHeap<Config>::realloc(void* p, std::size_t size) {
  const AllocatingCall call(*this, "realloc()");
  if (p == nullptr) return malloc(size);
  if (size == 0) {  // glibc: frees and returns nullptr
    free(p, "realloc()");
    return nullptr;
  }
  SegmentHeader* segment = live_segment(p, "realloc()");
  if (segment == nullptr) return nullptr;
  const std::size_t old_usable = usable_size_in(segment, p, "realloc()");
  if (old_usable == 0) return nullptr;  // reported
  if (size > kMaxRequest) {
    errno = ENOMEM;
    return nullptr;
  }
  // Another heap's block is never resized in place: its lists are its
  // owner's. Copy, then give the old block back through the owner's queue.
  if (segment->owner() != this) return realloc_by_copy(p, old_usable, size);
  switch (segment->kind()) {
    case SegmentKind::kSmall:
      // Stay while the block is at most twice what is needed.
      if (size <= old_usable && size * 2 >= old_usable) {
        small_.reseal(segment, p, size);  // secure flavour: the new size's seal
        return p;
      }
      break;
    case SegmentKind::kMedium:
      if (size > kSmallMax && size <= kMediumMax && medium_.try_resize(p, size)) {
        if (size < old_usable) medium_freed(segment);  // a tail became free
        publish_medium();
        return p;
      }
      if (grows_into_huge(size, old_usable)) return realloc_into_huge(p, old_usable, size);
      break;
    case SegmentKind::kHuge:
      // A huge block stays one down to kReallocToHugeMin (below kMediumMax),
      // so a block that grew into one is not copied back on the way.
      if (size >= kReallocToHugeMin) {
        // The list links live in the header, which moves with the pages:
        // unlink first, relink whatever header results.
        huge_blocks_.remove(segment);
        SegmentHeader* resized = segment;
        const std::size_t old_size = segment->huge_size;
        const bool ok = source_->resize_huge(resized, size);
        huge_blocks_.push_front(resized);
        if (ok) {
          sub(counter<&HeapStats::huge_in_use>(), old_size);
          add(counter<&HeapStats::huge_in_use>(), resized->huge_size);
          return resized->huge_block;
        }
      }
      break;
    case SegmentKind::kCached: break;
  }
  return realloc_by_copy(p, old_usable, size);
}

// A medium block that realloc grows past kReallocToHugeMin and cannot grow
// in place moves into a huge block (a mapping of its own): the buffer is
// likely to grow again (a vector, a string being built), and from then on it
// grows by mremap or into the cached pages after it, never by copying, and
// only its touched pages are resident. Medium growth by copying left each
// old chunk's pages resident until they decayed, and a segment held one
// chunk of 1 MiB: a group of vectors grown to 1 MiB together peaked at
// twice glibc's resident set (bench/realloc_growth.cpp). Each huge block is
// a kernel mapping or three (its guard page), so a heap already holding
// kMaxGrowingHuge huge blocks copies within its medium chunks instead, far
// from the process's mapping limit (vm.max_map_count, 65530 by default).
template <HeapConfig Config>
bool ThreadHeap<Config>::grows_into_huge(std::size_t size, std::size_t old_usable) {
  return size >= kReallocToHugeMin && size > old_usable &&
         counter<&HeapStats::huge_blocks>().load(std::memory_order_relaxed) < kMaxGrowingHuge;
}

template <HeapConfig Config>
void* ThreadHeap<Config>::realloc_into_huge(void* p, std::size_t old_usable, std::size_t size) {
  void* q = huge_allocate(size, 0);
  if (q == nullptr) return realloc_by_copy(p, old_usable, size);  // medium may still serve
  std::memcpy(q, p, old_usable);
  free(p, "realloc()");
  return q;
}

template <HeapConfig Config>
void* ThreadHeap<Config>::realloc_by_copy(void* p, std::size_t old_usable, std::size_t size) {
  void* q = malloc(size);
  if (q == nullptr) return nullptr;  // p untouched, errno = ENOMEM
  std::memcpy(q, p, old_usable < size ? old_usable : size);
  free(p, "realloc()");
  return q;
}

}  // namespace hpcalloc

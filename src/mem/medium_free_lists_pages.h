// The free pages of a medium region (medium_free_lists.h): what decay and
// trim give back to the OS from the inside of free chunks.
#pragma once

#include "mem/medium_free_lists.h"

namespace hpcalloc {

template <HeapErrorReporter Reporter, std::size_t kMaxRegionBytes>
template <class GiveBack>
void MediumFreeLists<Reporter, kMaxRegionBytes>::for_each_free_page_range(void* region_begin,
                                                                          std::size_t page_size,
                                                                          GiveBack give_back,
                                                                          const char* operation) {
  if (abandoned_) return;
  operation_ = operation;
  const auto* region = static_cast<const RegionRecord*>(region_begin);
  if (!region->tag_ok(keys_)) {
    corrupted(HeapError::kCorruptedChunkHeader, region_begin);
    return;
  }
  const Chunk* end = region->sentinel();
  for (const Chunk* c = region->first_chunk(); c < end;) {
    // Every header is checked before its size is trusted: a walk over a
    // forged or overwritten size would give back someone's live pages.
    if (!c->tag_ok(keys_) || c->size < medium::kMinChunkBytes ||
        c->size % medium::kChunkAlignment != 0 || c->size > end->address() - c->address()) {
      corrupted(HeapError::kCorruptedChunkHeader, c->user());
      return;
    }
    if (c->is_free()) {
      // The header, links and the rest of the first kMinChunkBytes stay.
      const std::uintptr_t begin = align_up(c->address() + medium::kMinChunkBytes, page_size);
      const std::uintptr_t stop = align_down(c->next()->address(), page_size);
      if (stop > begin) give_back(reinterpret_cast<char*>(begin), stop - begin);
    }
    c = c->next();
  }
}

}  // namespace hpcalloc

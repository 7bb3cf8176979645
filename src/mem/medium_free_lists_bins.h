// MediumFreeLists (medium_free_lists.h): putting free chunks in their bins
// and taking them out, and detaching regions, with the checks that keep a
// corrupted link from being followed or rewritten (see the top comment
// there and medium_chunk.h).
#pragma once

#include "mem/medium_free_lists.h"

namespace hpcalloc {

template <HeapErrorReporter Reporter, std::size_t kMaxRegionBytes>
void MediumFreeLists<Reporter, kMaxRegionBytes>::bin(Chunk* c) {
  HPCALLOC_ASSERT(c->is_free() && c->size >= medium::kMinChunkBytes);
  if (abandoned_) return;
  const unsigned b = medium::bin_index(c->size);
  Chunk* head = bins_[b];
  if (head != nullptr) {
    if (!checked_links(head)) return;
    if (prev_in_bin(head) != nullptr) {
      corrupted(HeapError::kCorruptedFreeList, head->user());
      return;
    }
    set_prev_link(head, c);
  } else {
    nonempty_[b / 64] |= std::uint64_t{1} << (b % 64);
  }
  set_links(c, head, nullptr);
  c->seal(keys_);
  bins_[b] = c;
  ++stats_.free_chunks;
  stats_.free_bytes += c->size;
}

template <HeapErrorReporter Reporter, std::size_t kMaxRegionBytes>
bool MediumFreeLists<Reporter, kMaxRegionBytes>::unbin(Chunk* c, bool header_checked) {
  if (abandoned_) return false;
  if (!header_checked && (!c->is_free() || !c->tag_ok(keys_))) {
    return corrupted(HeapError::kCorruptedFreeList, c->user());
  }
  if (!checked_links(c)) return false;
  const unsigned b = medium::bin_index(c->size);
  Chunk* next = next_in_bin(c);
  Chunk* prev = prev_in_bin(c);
  if (next != nullptr) {
    if (!checked_links(next)) return false;
    if (prev_in_bin(next) != c) {
      return corrupted(HeapError::kCorruptedFreeList, c->user());
    }
  }
  if (prev != nullptr) {
    if (!checked_links(prev)) return false;
    if (next_in_bin(prev) != c) {
      return corrupted(HeapError::kCorruptedFreeList, c->user());
    }
  } else if (bins_[b] != c) {
    return corrupted(HeapError::kCorruptedFreeList, c->user());
  }
  if (prev != nullptr) {
    set_next_link(prev, next);
  } else {
    bins_[b] = next;
    if (next == nullptr) nonempty_[b / 64] &= ~(std::uint64_t{1} << (b % 64));
  }
  if (next != nullptr) set_prev_link(next, prev);
  --stats_.free_chunks;
  stats_.free_bytes -= c->size;
  return true;
}

template <HeapErrorReporter Reporter, std::size_t kMaxRegionBytes>
bool MediumFreeLists<Reporter, kMaxRegionBytes>::detach(RegionRecord* region) {
  if (!region->tag_ok(keys_)) return corrupted(HeapError::kCorruptedChunkHeader, region);
  RegionRecord* next = region->next;
  RegionRecord* prev = region->prev;
  if ((next != nullptr && (!next->tag_ok(keys_) || next->prev != region)) ||
      (prev != nullptr ? !prev->tag_ok(keys_) || prev->next != region : regions_ != region)) {
    return corrupted(HeapError::kCorruptedChunkHeader, region);
  }
  if (prev != nullptr) {
    prev->next = next;
    prev->seal(keys_);
  } else {
    regions_ = next;
  }
  if (next != nullptr) {
    next->prev = prev;
    next->seal(keys_);
  }
  region->tag = 0;  // a second remove_region of it fails instead of corrupting
  --stats_.regions;
  stats_.region_bytes -= region->bytes;
  return true;
}

}  // namespace hpcalloc

// MediumFreeLists' consistency checker (medium_free_lists.h): a walk of every
// region and bin that checks every invariant and seal. O(chunks); for tests
// and the checked build's debugging only.
#pragma once

#include "mem/medium_free_lists.h"

namespace hpcalloc {

template <HeapErrorReporter Reporter, std::size_t kMaxRegionBytes>
const char* MediumFreeLists<Reporter, kMaxRegionBytes>::check_consistency_for_testing() const {
  Stats seen{};
  if (abandoned_) return "abandoned after a failed check";
  for (const RegionRecord* r = regions_; r != nullptr; r = r->next) {
    if (!r->tag_ok(keys_)) return "region record tag";
    if (r->next != nullptr && r->next->prev != r) return "region list links";
    if (r->prev == nullptr && r != regions_) return "region list head";
    if (++seen.regions > stats_.regions) return "more regions than counted (cycle?)";
    seen.region_bytes += r->bytes;
    const Chunk* end = r->sentinel();
    const Chunk* c = r->first_chunk();
    std::size_t prev_size = 0;
    bool prev_free = false;
    while (c < end) {
      if (!c->tag_ok(keys_)) return "chunk tag";
      if (c->state != medium::kStateFree && c->state != medium::kStateInUse) return "chunk state";
      if (c->flags != (prev_size == 0 ? medium::kFlagFirst : 0)) return "chunk flags";
      if (c->prev_size != prev_size) return "prev_size disagrees with previous chunk";
      if (!c->prev_ok(keys_)) return "boundary tag seal";
      if (c->size < medium::kMinChunkBytes || c->size % medium::kChunkAlignment != 0 ||
          c->size > kMaxChunkBytes) {
        return "chunk size";
      }
      if (c->next() > end) return "chunk overruns its region";
      if (c->is_free()) {
        if (prev_free) return "two neighbouring free chunks";
        ++seen.free_chunks;
        seen.free_bytes += c->size;
      }
      prev_free = c->is_free();
      prev_size = c->size;
      c = c->next();
    }
    if (!end->tag_ok(keys_) || end->size != 0 || end->state != medium::kStateInUse ||
        end->flags != medium::kFlagSentinel || end->prev_size != prev_size) {
      return "region sentinel";
    }
  }
  if (seen.regions != stats_.regions || seen.region_bytes != stats_.region_bytes) {
    return "region statistics";
  }
  if (seen.free_chunks != stats_.free_chunks || seen.free_bytes != stats_.free_bytes) {
    return "free chunk statistics";
  }
  std::size_t binned = 0;
  for (unsigned b = 0; b < kBitmapWords * 64; ++b) {
    const bool bit = (nonempty_[b / 64] >> (b % 64)) & 1;
    if (b >= kBinCount) {
      if (bit) return "bitmap bit beyond the last bin";
      continue;
    }
    if (bit != (bins_[b] != nullptr)) return "bitmap disagrees with bin";
    const Chunk* prev = nullptr;
    for (const Chunk* c = bins_[b]; c != nullptr; c = next_in_bin(c)) {
      if (++binned > seen.free_chunks) return "more binned chunks than free chunks";
      if (!c->tag_ok(keys_) || !c->is_free()) return "binned chunk not a free chunk (tag)";
      if (!links_ok(c)) return "binned chunk's link check word";
      if (prev_in_bin(c) != prev) return "bin back link";
      if (medium::bin_index(c->size) != b) return "chunk in the wrong bin";
      if (!inside_some_region(c)) return "binned chunk outside every region";
      if (!c->next()->tag_ok(keys_) || c->next()->prev_size != c->size) {
        return "binned chunk's next";
      }
      if (!c->is_first() && (!c->prev()->tag_ok(keys_) || c->prev()->size != c->prev_size)) {
        return "binned chunk's prev";
      }
      prev = c;
    }
  }
  if (binned != seen.free_chunks) return "free chunk missing from the bins";
  return nullptr;
}

template <HeapErrorReporter Reporter, std::size_t kMaxRegionBytes>
std::size_t MediumFreeLists<Reporter, kMaxRegionBytes>::largest_free_chunk_for_testing() const {
  std::size_t largest = 0;
  if (abandoned_) return 0;
  for (const RegionRecord* r = regions_; r != nullptr; r = r->next) {
    for (const Chunk* c = r->first_chunk(); c < r->sentinel(); c = c->next()) {
      if (c->is_free() && c->size > largest) largest = c->size;
    }
  }
  return largest;
}

}  // namespace hpcalloc

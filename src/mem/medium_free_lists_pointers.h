// How MediumFreeLists (medium_free_lists.h) judges a pointer a program hands
// back: live, freed (a double free, or a use of a freed block), not a chunk
// at all, or a live chunk whose neighbour's header was overwritten; and the
// one report each gets. Every check reads p's own sealed header before any
// neighbour, so garbage is rejected before a far read.
#pragma once

#include "mem/medium_free_lists.h"

namespace hpcalloc {

template <HeapErrorReporter Reporter, std::size_t kMaxRegionBytes>
bool MediumFreeLists<Reporter, kMaxRegionBytes>::accept(const void* p, bool own_header_checked) {
  const Classified found = classify(p, own_header_checked);
  switch (found.state) {
    case PointerState::kInUse: return true;
    case PointerState::kFree: reporter_.report(freed_block_error(operation_), operation_, p); break;
    case PointerState::kInvalid: reporter_.report(HeapError::kInvalidPointer, operation_, p); break;
    case PointerState::kCorruptedNeighbour:
      corrupted(HeapError::kCorruptedChunkHeader, found.corrupted);
      break;
  }
  return false;
}

template <HeapErrorReporter Reporter, std::size_t kMaxRegionBytes>
typename MediumFreeLists<Reporter, kMaxRegionBytes>::Classified
MediumFreeLists<Reporter, kMaxRegionBytes>::classify(const void* p, bool own_header_checked) const {
  if (!own_header_checked && (p == nullptr || !is_aligned(p, medium::kChunkAlignment))) {
    return {PointerState::kInvalid, nullptr};
  }
  const Chunk* c = Chunk::from_user(p);
  // A header that merging absorbed (p freed twice) lies in poisoned bytes.
  const Chunk header = load_unpoisoned(c);
  if (!own_header_checked) {
    if (!sealed_copy(c, header)) return {PointerState::kInvalid, nullptr};
    if (header.state == medium::kStateFree) return {PointerState::kFree, nullptr};
    if (header.state != medium::kStateInUse || (header.flags & ~medium::kFlagFirst) != 0 ||
        header.size < medium::kMinChunkBytes || header.size > kMaxChunkBytes ||
        header.size % medium::kChunkAlignment != 0) {
      return {PointerState::kInvalid, nullptr};
    }
  }
  const std::size_t size = header.size;
  const std::size_t prev_size = header.prev_size;
  if (header.prev_tag != header.prev_tag_for(c->address(), keys_) || prev_size > kMaxChunkBytes ||
      prev_size % medium::kChunkAlignment != 0 || (prev_size == 0) != c->is_first()) {
    return {PointerState::kCorruptedNeighbour, c};  // its own boundary tag
  }
  // next's own boundary tag need not pass its seal here: it must equal
  // c's sealed size, and its seal is checked when next is freed.
  const Chunk* next = c->next();
  if (!next->tag_ok(keys_) || next->prev_size != size) {
    return {PointerState::kCorruptedNeighbour, next};
  }
  if (!c->is_first()) {
    const Chunk* prev = c->prev();
    if (!prev->tag_ok(keys_) || prev->size != prev_size) {
      return {PointerState::kCorruptedNeighbour, prev};
    }
  }
  return {PointerState::kInUse, nullptr};
}

template <HeapErrorReporter Reporter, std::size_t kMaxRegionBytes>
bool MediumFreeLists<Reporter, kMaxRegionBytes>::sealed_copy(const Chunk* c,
                                                             const Chunk& header) const {
  return header.tag == header.tag_for(c->address(), keys_);
}

template <HeapErrorReporter Reporter, std::size_t kMaxRegionBytes>
std::size_t MediumFreeLists<Reporter, kMaxRegionBytes>::own_header_usable(
    const Chunk* c, const Chunk& header, const void* p, const char* operation) const {
  const bool sealed = c != nullptr && sealed_copy(c, header);
  if (!sealed || header.state != medium::kStateInUse || header.size < medium::kMinChunkBytes ||
      header.size > kMaxChunkBytes || (header.flags & ~medium::kFlagFirst) != 0) {
    reporter_.report(sealed && header.state == medium::kStateFree ? freed_block_error(operation)
                                                                  : HeapError::kInvalidPointer,
                     operation, p);
    return 0;
  }
  return header.size - medium::kChunkHeaderBytes;
}

}  // namespace hpcalloc

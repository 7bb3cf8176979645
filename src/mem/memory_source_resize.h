// Huge blocks resized by MemorySource (memory_source.h), for realloc:
// never by copying. Shrinking unmaps the tail. Growing tries, in order:
//   1. the cached mapping right after the block (the rest of the cached
//      mapping the block was cut from, say): taken into the block with no
//      system call, its pages already resident;
//   2. mremap in place, when the address space after the block is free;
//   3. moving the block's pages (mremap) to the front of the closest-fitting
//      resident cached mapping, whose other pages then serve the growth;
//   4. moving them to a new range, the rest of which resident cached
//      mappings fill (moved in, as assemble_from_cache does).
// So a buffer grown step by step (a vector, a file read into a growing
// buffer) reuses the pages of the buffers freed before it instead of
// faulting in new ones while theirs wait in the cache: the peak resident
// set stays near the live bytes. The block keeps its offset and alignment.
#pragma once

#include "base/sanitizer.h"
#include "mem/memory_source.h"

namespace hpcalloc {

template <HeapConfig Config>
bool MemorySource<Config>::resize_huge(SegmentHeader*& header, std::size_t new_bytes) {
  char* base = reinterpret_cast<char*>(header);
  const std::size_t offset =
      static_cast<std::size_t>(static_cast<char*>(header->huge_block) - base);
  std::size_t usable = 0;
  std::size_t new_map = 0;
  if (!huge_sizes(new_bytes, offset, &usable, &new_map)) return false;
  const std::size_t old_map = header->mapping_size;
  if (new_map <= old_map) {
    if (new_map < old_map) {
      registry_.clear(base + new_map, old_map - new_map);
      if (pal_.release(base + new_map, old_map - new_map)) {
        header->mapping_size = new_map;
        LockGuard guard(lock_);
        stats_.mapped_bytes -= old_map - new_map;
        ++stats_.os_releases;
      } else {
        registry_.assign(base + new_map, old_map - new_map, header);
      }
    }
    header->huge_size = usable;
    return true;
  }

  // 1. The cached neighbour (it has no guard page inside: see absorb).
  if (absorb_cached_neighbour(header, new_map) && header->mapping_size >= new_map) {
    header->huge_size = usable;
    return true;
  }
  const std::size_t have = header->mapping_size;

  // mremap works on one mapping of one protection: the guard page below
  // the block is made accessible for the remap and set again after it,
  // wherever the block then is.
  const std::size_t page = pal_.page_size();
  char* const guard_page = base + offset - page;
  const bool guarded = header->guarded && pal_.protect(guard_page, page, true);
  auto guard_again = [&](char* at) {
    auto* h = reinterpret_cast<SegmentHeader*>(at);
    h->guarded = guarded && pal_.protect(at + offset - page, page, false);
    if (guarded && !h->guarded) count(&SourceStats::guard_failures);
  };

  // 2. In place.
  if (pal_.remap_in_place(base, have, new_map)) {
    // The address space grown into may have held a freed huge block,
    // which ASan poisoned and its munmap did not clear (as in
    // reserve_mapping).
    unpoison_memory(base + have, new_map - have);
    if (registry_.assign(base + have, new_map - have, header)) {
      bind(base + have, new_map - have);
      header->mapping_size = new_map;
      header->huge_size = usable;
      guard_again(base);
      LockGuard guard(lock_);
      stats_.mapped_bytes += new_map - have;
      ++stats_.remaps_in_place;
      return true;
    }
    pal_.remap_in_place(base, new_map, have);  // shrinking back cannot fail
  }

  // 3. Into a resident cached mapping (segment-aligned, as the block's
  // offset needs unless it is aligned more), else 4. a new range with the
  // same offset and alignment, whose fresh pages cached ones replace where
  // there are any.
  CacheEntry cached{};
  char* target = nullptr;
  if (header->align_shift <= Config::kSegmentShift &&
      take_from_cache(new_map, &cached, /*resident_only=*/true)) {
    target = cut_for_growth(cached, new_map, header->huge_pages);
  }
  const bool into_cache = target != nullptr;
  if (!into_cache) target = reserve_mapping(new_map, std::size_t{1} << header->align_shift, offset);
  if (target == nullptr) {
    guard_again(base);
    errno = ENOMEM;
    return false;
  }
  // Register the target before the move (its header appears there with the
  // pages). A cached target's slots exist: that assign cannot fail. Only
  // the block's own pages move; the rest of the target serves the growth.
  // The old range's slots are cleared before the move, as every unmap
  // does: once its pages have moved, the kernel may give the range to
  // another thread's mmap at once, and a clear after the move could wipe
  // that thread's new registration (its live block then unknown: a realloc
  // of it was reported as a foreign pointer, 1 run in 80 of
  // bench_realloc_growth on a loaded machine). The block is its caller's,
  // in realloc: no other thread may look it up meanwhile.
  SegmentHeader* moved = reinterpret_cast<SegmentHeader*>(target);
  const bool registered = registry_.assign(target, new_map, moved);
  if (registered) registry_.clear(base, have);
  if (!registered || !pal_.remap_move(base, have, have, target)) {
    if (registered) registry_.assign(base, have, header);  // its slots exist: cannot fail
    // A failed move may have replaced the target's first pages with zeros
    // (LinuxPal::remap_move): a cached target is not cached again.
    unmap(target, new_map);
    guard_again(base);
    errno = ENOMEM;
    return false;
  }
  guard_again(target);
  std::size_t reused = into_cache ? new_map - have : 0;
  if (!into_cache) {
    bind(target + have, new_map - have);
    reused = fill_from_cache(target, have, new_map);
  }
  moved->mapping_size = new_map;
  moved->huge_block = target + offset;
  moved->huge_size = usable;
  header = moved;
  LockGuard guard(lock_);
  stats_.mapped_bytes -= have;
  ++stats_.remaps_moved;
  stats_.cache_grown_bytes += reused;
  return true;
}

// The resident cached mapping that starts where the block's mapping ends,
// taken into the block: as much as it needs to reach new_map, the rest
// staying cached. Its slots name the block from then on. Only an entry
// without a guard page of its own (a huge block's, inside it) is taken:
// lifting it would be a system call, and a guard in the middle of a block
// would fault. false when there is none.
template <HeapConfig Config>
bool MemorySource<Config>::absorb_cached_neighbour(SegmentHeader* header, std::size_t new_map) {
  char* const end = reinterpret_cast<char*>(header) + header->mapping_size;
  CacheEntry entry{};
  {
    LockGuard guard(lock_);
    unsigned found = cache_count_;
    for (unsigned i = 0; i < cache_count_; ++i) {
      if (cache_[i].base == end && !cache_[i].zeroed && cache_[i].guard == 0) found = i;
    }
    if (found == cache_count_) return false;
    entry = cache_[found];
    remove_locked(found);
    ++stats_.cache_hits;
  }
  const std::size_t need = new_map - header->mapping_size;
  if (entry.size > need) {
    keep_cached(entry.base + need, entry.size - need, entry.freed_ms, entry.huge_pages);
    entry.size = need;
  }
  // Part of a freed block that ASan may have poisoned; the block's now.
  unpoison_memory(entry.base, entry.size);
  if (limits_.thp != ThpMode::kDefault && entry.huge_pages != header->huge_pages) {
    pal_.advise_huge_pages(entry.base, entry.size, header->huge_pages);
  }
  registry_.assign(entry.base, entry.size, header);  // its slots exist: cannot fail
  header->mapping_size += entry.size;
  count(&SourceStats::cache_grown_bytes, entry.size);
  return true;
}

// A resident cached mapping cut to map_size bytes for a block to move its
// pages into (the rest stays cached), its guard page lifted, advised as
// the block is (huge_pages). nullptr, with the mapping unmapped, when the
// guard cannot be lifted.
template <HeapConfig Config>
char* MemorySource<Config>::cut_for_growth(CacheEntry entry, std::size_t map_size,
                                           bool huge_pages) {
  if (entry.guard != 0 && !pal_.protect(entry.base + entry.guard, pal_.page_size(), true)) {
    unmap(entry.base, entry.size);
    return nullptr;
  }
  if (entry.size > map_size) {
    keep_cached(entry.base + map_size, entry.size - map_size, entry.freed_ms, entry.huge_pages);
  }
  unpoison_memory(entry.base, map_size);
  if (limits_.thp != ThpMode::kDefault && entry.huge_pages != huge_pages) {
    pal_.advise_huge_pages(entry.base, map_size, huge_pages);
  }
  return entry.base;
}

}  // namespace hpcalloc

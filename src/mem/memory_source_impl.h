// The mapping and cache logic of MemorySource (memory_source.h).
#pragma once

#include "base/sanitizer.h"
#include "mem/memory_source.h"

namespace hpcalloc {

template <HeapConfig Config>
SegmentHeader* MemorySource<Config>::acquire_mapping(std::size_t map_size, std::size_t alignment,
                                                     std::size_t offset, std::size_t guard,
                                                     bool huge_block) {
  decay(pal_.now_ms());
  bool advise = false;
  const bool huge_pages = wants_huge_pages(huge_block, &advise);
  CacheEntry entry{};
  // Cached mappings are segment-aligned only; larger alignments map anew.
  if (alignment <= kSegmentSize && take_from_cache(map_size, &entry)) {
    bool usable = true;
    if (entry.zeroed && !pal_.commit(entry.base, entry.size)) usable = false;
    // A guard kept where the caller wants none is lifted; if that fails
    // (the program remapped or unmapped the page), the mapping has a hole.
    if (usable && entry.guard != 0 && entry.guard != guard &&
        !pal_.protect(entry.base + entry.guard, pal_.page_size(), true)) {
      usable = false;
    }
    if (usable) {
      if (entry.size > map_size && !entry.zeroed) {
        keep_cached(entry.base + map_size, entry.size - map_size, entry.freed_ms, entry.huge_pages);
        entry.size = map_size;
      } else if (entry.size > map_size) {
        // A decayed tail is only address space: unmap it. Unregister first
        // so its address space, once unmapped and reused by someone else,
        // is never attributed to us.
        char* tail = entry.base + map_size;
        const std::size_t tail_size = entry.size - map_size;
        registry_.clear(tail, tail_size);
        if (pal_.release(tail, tail_size)) {
          LockGuard guard(lock_);
          stats_.mapped_bytes -= tail_size;
          ++stats_.os_releases;
          entry.size = map_size;
        } else {
          // Still mapped and ours: its slots exist, so this cannot fail.
          registry_.assign(tail, tail_size, reinterpret_cast<SegmentHeader*>(entry.base));
        }
      }
      // Under HPCALLOC_THP=madvise a huge block's mapping may come back as
      // a segment, or the other way round.
      if (limits_.thp != ThpMode::kDefault && entry.huge_pages != huge_pages) {
        pal_.advise_huge_pages(entry.base, entry.size, huge_pages);
      }
      SegmentHeader* header = reinterpret_cast<SegmentHeader*>(entry.base);
      header->set_magic();
      header->set_node(node_);
      header->huge_pages = huge_pages;
      // A guard page reads as zero, but the block never includes it.
      header->fresh = entry.zeroed;
      header->guarded = entry.guard != 0 && entry.guard == guard;
      header->mapping_size = entry.size;
      header->link = {};
      return header;
    }
    unmap(entry.base, entry.size);
  } else if (alignment <= kSegmentSize) {
    if (SegmentHeader* header = assemble_from_cache(map_size, huge_block)) return header;
  }

  char* base = reserve_mapping(map_size, alignment, offset);
  if (base == nullptr) {
    errno = ENOMEM;
    return nullptr;
  }
  bind(base, map_size);
  // A hint, whole mappings only (advising part of one splits it).
  if (advise) pal_.advise_huge_pages(base, map_size, huge_pages);
  SegmentHeader* header = reinterpret_cast<SegmentHeader*>(base);
  header->set_magic();
  header->set_node(node_);
  header->huge_pages = huge_pages;
  header->fresh = true;
  header->guarded = false;
  header->mapping_size = map_size;
  header->link = {};
  // Publishes the header written above (the registry stores with release).
  if (!registry_.assign(base, map_size, header)) {
    if (pal_.release(base, map_size)) {
      LockGuard guard(lock_);
      stats_.mapped_bytes -= map_size;
      ++stats_.os_releases;
    }
    errno = ENOMEM;
    return nullptr;
  }
  return header;
}

template <HeapConfig Config>
char* MemorySource<Config>::reserve_mapping(std::size_t map_size, std::size_t alignment,
                                            std::size_t offset) {
  char* base = nullptr;
  if (alignment <= kSegmentSize) {
    base = static_cast<char*>(pal_.reserve(map_size, kSegmentSize));
  } else {
    // The block at base + offset must be aligned: over-reserve and trim.
    std::size_t raw_size = 0;
    if (!checked_add(map_size, alignment, &raw_size)) return nullptr;
    char* raw = static_cast<char*>(pal_.reserve(raw_size, kSegmentSize));
    if (raw == nullptr) return nullptr;
    const std::uintptr_t block =
        align_up(reinterpret_cast<std::uintptr_t>(raw) + offset, alignment);
    base = reinterpret_cast<char*>(block - offset);
    const std::size_t front = static_cast<std::size_t>(base - raw);
    const std::size_t back = raw_size - front - map_size;
    // A failed trim only wastes address space that nobody else can use.
    if (front != 0) pal_.release(raw, front);
    if (back != 0) pal_.release(base + map_size, back);
  }
  if (base != nullptr) {
    // New address space may have been a freed huge block's, poisoned; not
    // every ASan runtime clears poison in munmap (GCC 12's does not
    // intercept it), so clear it here.
    unpoison_memory(base, map_size);
    LockGuard guard(lock_);
    stats_.mapped_bytes += map_size;
    ++stats_.os_reserves;
  }
  return base;
}

template <HeapConfig Config>
bool MemorySource<Config>::take_from_cache(std::size_t map_size, CacheEntry* out,
                                           bool resident_only) {
  LockGuard guard(lock_);
  unsigned best = cache_count_;
  // Closest fit; among equals the newest (warmest).
  for (unsigned i = cache_count_; i-- > 0;) {
    const std::size_t size = cache_[i].size;
    if (resident_only && cache_[i].zeroed) continue;
    if (size >= map_size && (best == cache_count_ || size < cache_[best].size)) best = i;
  }
  if (best == cache_count_) {
    if (!resident_only) ++stats_.cache_misses;  // (a resize's probe is no request)
    return false;
  }
  *out = cache_[best];
  remove_locked(best);
  ++stats_.cache_hits;
  return true;
}

template <HeapConfig Config>
SegmentHeader* MemorySource<Config>::assemble_from_cache(std::size_t map_size, bool huge_block) {
  if (resident_cached_bytes() == 0) return nullptr;
  char* const target = reserve_mapping(map_size, kSegmentSize, 0);
  auto* const header = reinterpret_cast<SegmentHeader*>(target);
  // Registered before any page moves in, as a moved huge block is.
  if (target == nullptr || !registry_.assign(target, map_size, header)) {
    if (target != nullptr) unmap(target, map_size);
    return nullptr;
  }
  bind(target, map_size);
  const std::size_t filled = fill_from_cache(target, 0, map_size);
  // The moved pages keep their kernel mappings' advice: one call sets the
  // whole range's (HPCALLOC_THP).
  bool advise_new = false;
  const bool huge_pages = wants_huge_pages(huge_block, &advise_new);
  if (limits_.thp != ThpMode::kDefault) pal_.advise_huge_pages(target, map_size, huge_pages);
  // Written once the pages are in (the first piece brought its own).
  header->set_magic();
  header->set_node(node_);
  header->huge_pages = huge_pages;
  header->fresh = filled == 0;
  header->guarded = false;
  header->mapping_size = map_size;
  header->link = {};
  if (filled != 0) count(&SourceStats::cache_assembled_bytes, filled);
  return header;
}

template <HeapConfig Config>
std::size_t MemorySource<Config>::fill_from_cache(char* target, std::size_t from,
                                                  std::size_t map_size) {
  // The resident entries, largest first, until they cover the range.
  CacheEntry pieces[Config::kMappingCacheEntries];
  unsigned n = 0;
  {
    LockGuard guard(lock_);
    std::size_t covered = from;
    while (covered < map_size) {
      unsigned largest = cache_count_;
      for (unsigned i = 0; i < cache_count_; ++i) {
        if (!cache_[i].zeroed && (largest == cache_count_ || cache_[i].size > cache_[largest].size))
          largest = i;
      }
      if (largest == cache_count_) break;
      covered += cache_[largest].size;
      pieces[n++] = cache_[largest];
      remove_locked(largest);
    }
  }
  const std::size_t page = pal_.page_size();
  std::size_t filled = from;
  unsigned left = 0;  // pieces[0, left): what goes back to the cache
  for (unsigned i = 0; i < n; ++i) {
    CacheEntry piece = pieces[i];
    const std::size_t need = map_size - filled;
    // mremap moves one kernel mapping: a huge block's guard page splits
    // its mapping in three, so it is lifted first.
    if (need == 0 || (piece.guard != 0 && !pal_.protect(piece.base + piece.guard, page, true))) {
      pieces[left++] = piece;
      continue;
    }
    piece.guard = 0;
    const std::size_t move = piece.size < need ? piece.size : need;
    // What the range does not take stays cached, split off first so its
    // registry slots never name a header that moved away.
    if (piece.size > move) {
      keep_cached(piece.base + move, piece.size - move, piece.freed_ms, piece.huge_pages);
    }
    piece.size = move;
    registry_.clear(piece.base, move);
    if (!pal_.remap_move(piece.base, move, move, target + filled)) {
      // Unchanged: it goes back as it was.
      registry_.assign(piece.base, move, reinterpret_cast<SegmentHeader*>(piece.base));
      pieces[left++] = piece;
      continue;
    }
    filled += move;
    LockGuard guard(lock_);
    stats_.mapped_bytes -= move;
  }
  insert_all(pieces, left);
  return filled - from;
}

template <HeapConfig Config>
void MemorySource<Config>::keep_cached(char* base, std::size_t size, std::uint64_t freed_ms,
                                       bool huge_pages) {
  // Part of a freed huge block, which ASan may still have poisoned (as in
  // reserve_mapping: a cached range is read by nothing).
  unpoison_memory(base, size);
  auto* header = reinterpret_cast<SegmentHeader*>(base);
  header->set_magic();
  header->set_node(node_);
  header->set_owner(SegmentKind::kCached, nullptr);
  header->mapping_size = size;
  // Its slots named the mapping it was part of; still mapped and ours, so
  // they exist and this cannot fail.
  registry_.assign(base, size, header);
  header->huge_pages = huge_pages;
  const CacheEntry entry{base, size, false, 0, freed_ms, huge_pages};
  insert_all(&entry, 1);
}

template <HeapConfig Config>
void MemorySource<Config>::insert_all(const CacheEntry* entries, unsigned n) {
  if (n == 0) return;
  CacheEntry evicted[2 * Config::kMappingCacheEntries];
  unsigned evicted_count = 0;
  {
    LockGuard guard(lock_);
    // At most every entry there was and every one inserted is evicted.
    for (unsigned i = 0; i < n; ++i) insert_locked(entries[i], evicted, &evicted_count);
  }
  for (unsigned i = 0; i < evicted_count; ++i) unmap(evicted[i].base, evicted[i].size);
}

template <HeapConfig Config>
void MemorySource<Config>::remove_locked(unsigned index) {
  const CacheEntry& e = cache_[index];
  stats_.cached_bytes -= e.size;
  if (!e.zeroed) stats_.cached_resident_bytes -= e.size;
  --stats_.cached_mappings;
  for (unsigned i = index; i + 1 < cache_count_; ++i) cache_[i] = cache_[i + 1];
  --cache_count_;
}

template <HeapConfig Config>
void MemorySource<Config>::insert_locked(const CacheEntry& entry, CacheEntry* evicted,
                                         unsigned* evicted_count) {
  while (cache_count_ > 0 && (cache_count_ == Config::kMappingCacheEntries ||
                              stats_.cached_bytes + entry.size > limits_.cache_max_total)) {
    evicted[(*evicted_count)++] = cache_[0];  // the oldest
    remove_locked(0);
  }
  cache_[cache_count_++] = entry;
  stats_.cached_bytes += entry.size;
  if (!entry.zeroed) {
    stats_.cached_resident_bytes += entry.size;
    schedule_.pending(entry.freed_ms);
    due_hint_.store(schedule_.due_ms(), std::memory_order_relaxed);
  }
  ++stats_.cached_mappings;
}

template <HeapConfig Config>
void MemorySource<Config>::release_segment(SegmentHeader* header) {
  char* base = reinterpret_cast<char*>(header);
  const std::size_t size = header->mapping_size;
  const bool huge_pages = header->huge_pages;  // read before a decommit zeroes it
  // A huge block's guard page stays with its cached mapping (the next huge
  // block there most likely wants it at the same place; acquire_mapping
  // lifts it otherwise).
  const std::size_t guard_offset =
      header->huge_block != nullptr && header->guarded
          ? static_cast<std::size_t>(static_cast<char*>(header->huge_block) - base) -
                pal_.page_size()
          : 0;
  if (size <= limits_.cache_max_block && size <= limits_.cache_max_total &&
      node_of(header) == node_) {
    const std::uint64_t now = pal_.now_ms();
    bool zeroed = limits_.decay_ms == kDecayAtOnce && pal_.decommit(base, size);
    if (!zeroed) {
      header->set_owner(SegmentKind::kCached, nullptr);
    }
    CacheEntry evicted[Config::kMappingCacheEntries];
    unsigned evicted_count = 0;
    {
      LockGuard guard(lock_);
      if (zeroed) {
        stats_.decayed_bytes += size;
        ++stats_.decay_events;
      }
      insert_locked(CacheEntry{base, size, zeroed, guard_offset, now, huge_pages}, evicted,
                    &evicted_count);
    }
    for (unsigned i = 0; i < evicted_count; ++i) unmap(evicted[i].base, evicted[i].size);
    decay(now);
    return;
  }
  unmap(base, size);
}

template <HeapConfig Config>
void MemorySource<Config>::decay_cache(std::uint64_t now_ms) {
  CacheEntry expired[Config::kMappingCacheEntries];
  unsigned n = 0;
  {
    LockGuard guard(lock_);
    if (!schedule_.due(now_ms)) return;  // another thread ran the pass
    schedule_.passed(now_ms);
    for (unsigned i = 0; i < cache_count_;) {
      const CacheEntry& e = cache_[i];
      if (e.zeroed) {
        ++i;
      } else if (schedule_.expired(e.freed_ms, now_ms)) {
        expired[n++] = e;
        remove_locked(i);
      } else {
        schedule_.pending(e.freed_ms);
        ++i;
      }
    }
    due_hint_.store(schedule_.due_ms(), std::memory_order_relaxed);
  }
  if (n == 0) return;
  for (unsigned i = 0; i < n; ++i) {
    // A cached huge block may still be poisoned (ASan), and SimPal zeroes
    // by writing: nothing reads a cached mapping, so unpoisoning is safe.
    unpoison_memory(expired[i].base, expired[i].size);
    if (pal_.decommit(expired[i].base, expired[i].size)) {
      expired[i].zeroed = true;
    }
  }
  // Back in. A decayed entry goes in as the oldest: it holds only address
  // space, so it is the first to go when the limits need room. One whose
  // pages could not be given back goes in as it was, pending again. What
  // does not fit (others filled the cache meanwhile) is unmapped.
  CacheEntry evicted[2 * Config::kMappingCacheEntries];
  unsigned evicted_count = 0;
  {
    LockGuard guard(lock_);
    for (unsigned i = 0; i < n; ++i) {
      const CacheEntry& e = expired[i];
      if (!e.zeroed) {
        insert_locked(e, evicted, &evicted_count);
        continue;
      }
      stats_.decayed_bytes += e.size;
      ++stats_.decay_events;
      if (cache_count_ == Config::kMappingCacheEntries ||
          stats_.cached_bytes + e.size > limits_.cache_max_total) {
        evicted[evicted_count++] = e;
        continue;
      }
      for (unsigned j = cache_count_; j > 0; --j) cache_[j] = cache_[j - 1];
      cache_[0] = e;
      ++cache_count_;
      stats_.cached_bytes += e.size;
      ++stats_.cached_mappings;
    }
  }
  for (unsigned i = 0; i < evicted_count; ++i) unmap(evicted[i].base, evicted[i].size);
}

template <HeapConfig Config>
void MemorySource<Config>::trim() {
  CacheEntry taken[Config::kMappingCacheEntries];
  unsigned n = 0;
  {
    LockGuard guard(lock_);
    for (; n < cache_count_; ++n) taken[n] = cache_[n];
    cache_count_ = 0;
    stats_.cached_bytes = 0;
    stats_.cached_mappings = 0;
    stats_.cached_resident_bytes = 0;
    schedule_.passed(pal_.now_ms());
    due_hint_.store(kNothingDue, std::memory_order_relaxed);
  }
  std::size_t resident = 0;
  for (unsigned i = 0; i < n; ++i) {
    if (!taken[i].zeroed) resident += taken[i].size;
    unmap(taken[i].base, taken[i].size);
  }
  if (resident != 0) count_trimmed(resident);
}

template <HeapConfig Config>
void MemorySource<Config>::unmap(char* base, std::size_t size) {
  registry_.clear(base, size);
  if (pal_.release(base, size)) {
    LockGuard guard(lock_);
    stats_.mapped_bytes -= size;
    ++stats_.os_releases;
  }
  // else: the OS refused to unmap; the range stays mapped but unregistered
  // (unreachable, counted in mapped_bytes): nothing safer can be done.
}

template <HeapConfig Config>
void MemorySource<Config>::bind(char* base, std::size_t size) {
  // A fresh mapping carries no policy, so first-touch needs no call (and a
  // cached one keeps the policy of this same node's source).
  if (limits_.numa_policy == NumaPolicy::kOff || limits_.numa_policy == NumaPolicy::kFirstTouch) {
    return;
  }
  if (!pal_.bind(base, size, static_cast<int>(node_), limits_.numa_policy)) {
    const int error = errno;
    count(&SourceStats::bind_failures);
    if (limits_.placement_warning != nullptr)
      limits_.placement_warning->failed("mbind", node_, error);
  }
}

template <HeapConfig Config>
bool MemorySource<Config>::hand_over(SegmentHeader* header, MemorySource& to) {
  const std::size_t size = header->mapping_size;
  const bool moved = pal_.migrate(header, size, static_cast<int>(to.node_), to.limits_.numa_policy);
  const int error = errno;
  if (moved) {
    // node_of() readers on other threads see this relaxed store (segment.h).
    header->set_node(to.node_);
  }
  {
    LockGuard guard(lock_);
    stats_.mapped_bytes -= size;
  }
  {
    LockGuard guard(to.lock_);
    to.stats_.mapped_bytes += size;
    ++to.stats_.migrated_in;
    if (!moved) ++to.stats_.migrate_failures;
  }
  if (!moved && to.limits_.placement_warning != nullptr) {
    to.limits_.placement_warning->failed("mbind(MPOL_MF_MOVE)", to.node_, error);
  }
  return moved;
}

}  // namespace hpcalloc

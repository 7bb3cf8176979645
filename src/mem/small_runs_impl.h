// The slow paths of SmallRuns (small_runs.h): carriers coming home, sizing
// a block, tear-down, the checks of freed blocks and the reports of
// corrupted caches, refilling a class's cache from its runs, flushing a
// cache back to the bitmaps, starting and retiring runs, taking and giving
// back segments.
#pragma once

#include "mem/small_runs.h"

namespace hpcalloc {

// Carriers coming home, sizes, and tear-down.
template <HeapConfig Config, SegmentProvider Provider>
bool SmallRuns<Config, Provider>::deallocate_carrier(SegmentHeader* segment, void* block) {
  Segment* s = reinterpret_cast<Segment*>(segment);
  Run* run = &s->runs[run_index(s, block)];
  if (!is_slot_start(*run, offset_in_segment(s, block)) || run->size_class != kCarrierClass) {
    reporter_.report(HeapError::kCorruptedCarrier, "free()", block);
    return false;
  }
  if (looks_cached(block) || kChecked) {
    if (!check_allocated(*run, block, "free()")) return false;
  }
  // The carrier cache's own limit: its field is 0 (see the top comment), so
  // its room goes below zero with every carrier it holds.
  Cache& carriers = caches_[kCarrierClass];
  link_in_front(carriers, *run, block);
  if (carriers.count() > cache_limit(kCarrierClass)) {
    flush(kCarrierClass, cache_limit(kCarrierClass) / 2);
  }
  return true;
}

template <HeapConfig Config, SegmentProvider Provider>
std::size_t SmallRuns<Config, Provider>::usable_size_fast(const void* block) const {
  // The secure flavour answers with the sealed size, and the checked build
  // walks the cache: both take usable_size().
  if constexpr (kCanaryBytes != 0 || kChecked) return 0;
  if (!tags_.contains(block)) return 0;
  std::size_t in_slots = 0;
  const Run* run = slot_run(segment_of(block), block, &in_slots);
  if (run == nullptr || run->size_class == kCarrierClass) return 0;
  if (looks_freed(block) || test_bit(*run, slot_index(*run, in_slots))) return 0;
  return run->slot_size;
}

template <HeapConfig Config, SegmentProvider Provider>
std::size_t SmallRuns<Config, Provider>::usable_size(SegmentHeader* segment, const void* block,
                                                     const char* operation, bool owner_thread) {
  Run* run = validated_run(segment, block, operation);
  if (run == nullptr) return 0;
  // Programs that track their memory call this on every malloc and free
  // (redis): the cache walk that confirms a free block runs only for a
  // block whose words say it may be cached, not for every live one (it
  // made redis twice as slow).
  const bool freed = owner_thread ? free_in_bitmap(*run, block) ||
                                        (looks_freed(block) && is_free(*run, block, operation))
                                  : looks_freed(block) || free_in_bitmap_shared(*run, block);
  if (__builtin_expect(freed, 0)) {
    reporter_.report(HeapError::kUseOfFreedBlock, operation, block);
    return 0;
  }
  if constexpr (kCanaryBytes != 0) {
    // The size the block was sealed with: every byte of it is the user's.
    const std::size_t requested = hardening_.sealed_size(block, run->slot_size);
    if (requested == SIZE_MAX) {
      reporter_.report(HeapError::kBlockOverflow, operation, block);
      return 0;
    }
    return requested;
  }
  return run->slot_size;
}

template <HeapConfig Config, SegmentProvider Provider>
void SmallRuns<Config, Provider>::release_all() {
  // The other lists link runs and segments inside the memory given back:
  // they are forgotten, not unlinked.
  for (unsigned c = 0; c < kRunClasses; ++c) {
    caches_[c].head = nullptr;
    caches_[c].set_count(0);
    available_[c].forget_all();
  }
  with_free_runs_.forget_all();
  if constexpr (kQuarantine) hardening_.forget_all();
  tags_.clear();
  while (SegmentHeader* header = all_segments_.pop_front()) {
    lift_run_guards(reinterpret_cast<Segment*>(header));
    unpoison_memory(header, kSegmentSize);
    provider_->release_segment(header);
  }
  empty_segments_ = bytes_in_runs_ = out_of_bitmaps_bytes_ = 0;
}

template <HeapConfig Config, SegmentProvider Provider>
void SmallRuns<Config, Provider>::release_spare() {
  for (Segment* s : with_free_runs_) {
    if (s->free_runs == kAllRuns) {
      --empty_segments_;
      release_segment(s);  // unlinks s: the walk allows it
    }
  }
}

// The checks of freed blocks and the reports of corrupted caches.
template <HeapConfig Config, SegmentProvider Provider>
void SmallRuns<Config, Provider>::report_not_a_slot(const Run& run, const void* block,
                                                    const char* operation) {
  const bool retired_after_use = run.slot_size == 0 && run.slots_offset != 0;
  const bool carrier = run.slot_size != 0 && run.size_class == kCarrierClass;
  reporter_.report(
      retired_after_use || carrier ? freed_block_error(operation) : HeapError::kInvalidPointer,
      operation, block);
}

template <HeapConfig Config, SegmentProvider Provider>
bool SmallRuns<Config, Provider>::check_allocated(const Run& run, const void* block,
                                                  const char* operation) {
  if (!is_free(run, block, operation)) return true;
  reporter_.report(HeapError::kDoubleFree, operation, block);
  return false;
}

template <HeapConfig Config, SegmentProvider Provider>
bool SmallRuns<Config, Provider>::is_free(const Run& run, const void* block,
                                          const char* operation) {
  const Segment* s = segment_of(block);
  const std::size_t index = slot_index(run, offset_in_segment(s, block) - run.slots_offset);
  if (test_bit(run, index)) return true;
  // The whole quarantine, not only blocks whose marker is intact: a
  // block written after its free is still there.
  if constexpr (kQuarantine) {
    if (hardening_.in_quarantine(block)) return true;
  }
  Cache& cache = caches_[run.size_class];
  const void* p = cache.head;
  for (std::uint32_t i = 0; i < cache.count() && p != nullptr; ++i) {
    if (p == block) return true;
    bool ok = true;
    const void* next = next_checked(p, &ok);
    if (!ok) {
      abandon_cache(cache, p, operation);
      return false;
    }
    p = next;
  }
  return false;
}

template <HeapConfig Config, SegmentProvider Provider>
void SmallRuns<Config, Provider>::abandon_cache(Cache& cache, const void* corrupted,
                                                const char* operation) {
  reporter_.report(HeapError::kCorruptedSmallCache, operation, corrupted);
  cache.head = nullptr;
  cache.set_count(0);
}

template <HeapConfig Config, SegmentProvider Provider>
void* SmallRuns<Config, Provider>::refill_after_corruption(unsigned size_class,
                                                           const void* corrupted) {
  abandon_cache(caches_[size_class], corrupted, allocating_call_);
  return refill(size_class);
}

template <HeapConfig Config, SegmentProvider Provider>
bool SmallRuns<Config, Provider>::reachable_in_cache(const Run& run, const void* block) const {
  const Cache& cache = caches_[run.size_class];
  const void* p = cache.head;
  for (std::uint32_t i = 0; i < cache.count() && p != nullptr; ++i) {
    if (p == block) return true;
    bool ok = true;
    p = next_checked(p, &ok);
    if (!ok) return false;
  }
  return false;
}

template <HeapConfig Config, SegmentProvider Provider>
void* SmallRuns<Config, Provider>::refill(unsigned size_class) {
  if (refill_hook_ != nullptr) {
    // The owner takes back what other threads freed first (remote frees);
    // that may have refilled this very cache.
    refill_hook_(owner_);
    Cache& cache = caches_[size_class];
    if (void* block = cache.head; block != nullptr) {
      const std::uintptr_t link = word(block, 0);
      if (check_word_matches(block, link)) return pop(cache, block, link);
      abandon_cache(cache, block, allocating_call_);
    }
  }
  Run* run = available_[size_class].front();
  if (run == nullptr) {
    run = start_run(size_class);
    if (run == nullptr) {
      errno = ENOMEM;
      return nullptr;
    }
  }
  // Take up to kRefillBatch free slots, lowest addresses first; the first is
  // returned, the rest are linked in address order into the (empty) cache.
  Segment* s = segment_of(run);
  if (__builtin_expect(s->holes != 0, 0)) {
    // Pages inside this run were given back: take them again (free on
    // Linux; a platform that must be told fails the refill cleanly).
    const auto index = static_cast<unsigned>(run - s->runs);
    if ((s->holes >> index) & 1) {
      char* pages = nullptr;
      std::size_t bytes = 0;
      run_pages(s, index, &pages, &bytes);
      if (bytes != 0 && !provider_->commit(pages, bytes)) {
        errno = ENOMEM;
        return nullptr;
      }
      s->holes &= ~(std::uint64_t{1} << index);
    }
  }
  char* slots = reinterpret_cast<char*>(s) + run->slots_offset;
  const std::size_t slot_size = run->slot_size;
  unsigned batch = refill_batch(size_class);
  if (refills_[size_class] < kSlowStartSteps) {
    const unsigned slow = kFirstRefill << refills_[size_class]++;
    if (slow < batch) batch = slow;
  }
  const unsigned want = run->free_count < batch ? run->free_count : batch;
  HPCALLOC_ASSERT(want > 0);
  // The blocks are linked in address order, b0 -> b1 -> ... -> bn -> end,
  // behind a stand-in head (two words here) so that no block needs a test
  // of whether it is the first: b0 is returned, b1 on are the cache. b0
  // keeps its link word, as a block malloc pops from a cache does. The
  // keys are copied: the stores into the blocks could alias the members.
  const std::uintptr_t link_key = link_key_;
  const std::uintptr_t check_key = check_key_;
  std::uintptr_t head_words[2];
  void* last = head_words;
  unsigned taken = 0;
  for (std::size_t w = 0;; ++w) {  // want > 0: the first word is always read
    HPCALLOC_ASSERT(w < kBitmapWords);
    std::uint64_t bits = run->free_bits[w];
    char* base = slots + w * 64 * slot_size;
    while (bits != 0 && taken < want) {
      char* block = base + lowest_set_bit(bits) * slot_size;
      bits &= bits - 1;
      link_with_keys(last, block, link_key, check_key);
      last = block;
      ++taken;
    }
    store_bits(*run, w, bits);
    if (taken == want) break;
  }
  link_with_keys(last, nullptr, link_key, check_key);
  void* first = decode(head_words[0]);
  void* cached = decode(word(first, 0));  // nullptr when first is the only one
  set_word(first, 1, 0);                  // handed out: its words must not look cached
  caches_[size_class].head = cached;
  caches_[size_class].set_count(taken - 1);
  run->free_count -= taken;
  out_of_bitmaps_bytes_ += std::size_t{taken} * run->slot_size;
  if (run->free_count == 0) available_[size_class].remove(run);
  if constexpr (kHardening.random_slots) first = shuffle_refill(size_class, first);
  unpoison_memory(first, run->slot_size);
  return first;
}

template <HeapConfig Config, SegmentProvider Provider>
void SmallRuns<Config, Provider>::flush(unsigned size_class, unsigned keep, const char* operation) {
  Cache& cache = caches_[size_class];
  // The most recently freed blocks go, from the head; the `keep` oldest stay
  // cached. One walk, of the blocks that go, each block's words checked
  // before its link is followed (tcmalloc's thread cache also gives back
  // from the head; keeping the newest instead would need a second checked
  // walk, over the blocks that stay, to find where to cut). The walk is
  // bounded by the count.
  const std::uint32_t total = cache.count();
  if (keep > total) keep = total;
  void* rest = cache.head;
  // Blocks freed close together mostly share a run: each block's bit is set
  // on its own, but the run is found, and its count and list membership
  // settled, once per stretch of consecutive blocks of one run (runs are
  // kRunSize-aligned, so a block's address >> kRunShift names its run). The
  // blocks keep the cache key (a second free then finds the bit already
  // set). About 30 instructions a block: every block of a program that
  // frees more than a cache holds (threadtest, bignum's trees) comes here.
  // The keys are copied: the bitmap stores could alias the members, which
  // the compiler would then load again for every block.
  const std::uintptr_t link_key = link_key_;
  const std::uintptr_t check_key = check_key_;
  Segment* segment = nullptr;
  Run* run = nullptr;
  std::uintptr_t run_tag = 0;  // no run is at address 0
  const char* slots = nullptr;
  std::uint32_t marked = 0;
  std::uint32_t left = total;
  for (; left > keep; --left) {
    // next_checked(), with the keys in registers.
    const std::uintptr_t link = word(rest, 0);
    if (__builtin_expect(word(rest, 1) != (link ^ check_key), 0)) {
      // The blocks from here on leak (marked allocated); none is followed.
      reporter_.report(HeapError::kCorruptedSmallCache, operation, rest);
      rest = nullptr;
      left = 0;
      break;
    }
    const std::uintptr_t tag = reinterpret_cast<std::uintptr_t>(rest) >> Config::kRunShift;
    if (tag != run_tag) {
      if (run != nullptr) settle_run(segment, run, marked);
      segment = segment_of(rest);
      run = &segment->runs[run_index(segment, rest)];
      slots = reinterpret_cast<const char*>(segment) + run->slots_offset;
      run_tag = tag;
      marked = 0;
    }
    marked += mark_free(*run, slots, rest, operation) ? 1 : 0;
    rest = reinterpret_cast<void*>(link ^ link_key);
  }
  cache.head = rest;
  cache.set_count(left);
  if (run != nullptr) settle_run(segment, run, marked);
}

template <HeapConfig Config, SegmentProvider Provider>
bool SmallRuns<Config, Provider>::mark_free(Run& run, const char* slots, void* block,
                                            const char* operation) {
  const std::size_t index =
      run.divisor.quotient(static_cast<std::uint32_t>(static_cast<char*>(block) - slots));
  const std::uint64_t word = run.free_bits[index / 64];
  const std::uint64_t bit = std::uint64_t{1} << (index % 64);
  if (__builtin_expect((word & bit) != 0, 0)) {
    // Freed twice while cached: the second copy is dropped here.
    reporter_.report(HeapError::kDoubleFree, operation, block);
    return false;
  }
  store_bits(run, index / 64, word | bit);
  return true;
}

template <HeapConfig Config, SegmentProvider Provider>
void SmallRuns<Config, Provider>::settle_run(Segment* s, Run* run, std::uint32_t marked) {
  if (marked == 0) return;
  const bool listed = run->free_count != 0;  // see the invariants
  run->free_count += marked;
  out_of_bitmaps_bytes_ -= std::size_t{marked} * run->slot_size;
  if (run->free_count == run->slot_count) {
    if (listed) available_[run->size_class].remove(run);
    retire_run(s, run);
  } else {
    if (!listed) available_[run->size_class].push_front(run);
    if (schedule_.delay_ms() != kDecayNever) {
      // Free slots: their pages may decay (stamped by the next pass, so
      // no clock read here).
      const std::uint64_t bit = std::uint64_t{1} << (run - s->runs);
      s->holes_pending |= bit;
      s->holes_stamped &= ~bit;
      schedule_.pending_unstamped();
    }
  }
}

template <HeapConfig Config, SegmentProvider Provider>
typename SmallRuns<Config, Provider>::Run* SmallRuns<Config, Provider>::start_run(
    unsigned size_class) {
  Segment* s = with_free_runs_.front();
  if (s == nullptr) {
    SegmentHeader* header = provider_->acquire_segment(SegmentKind::kSmall, owner_);
    if (header == nullptr) return nullptr;
    s = reinterpret_cast<Segment*>(header);
    // A mapping from the source's cache may carry a huge block's poison.
    unpoison_memory(s, kSegmentSize);
    // The metadata after the header may hold a previous user's data; a
    // fresh mapping's is zero already, and writing it would make its pages
    // (about 20 KiB in production) resident before any run needs them.
    if (!header->fresh) {
      std::memset(reinterpret_cast<char*>(s) + sizeof(SegmentHeader), 0,
                  sizeof(Segment) - sizeof(SegmentHeader));
    }
    s->free_runs = kAllRuns;
    if (header->fresh) {
      // Never touched: no pages to give back (start_run's commit of a run
      // is free on Linux).
      s->decommitted = kAllRuns;
    } else if (schedule_.delay_ms() != kDecayNever) {
      // A cached segment's pages may all be resident: they decay from now.
      const std::uint64_t now = provider_->now_ms();
      for (unsigned r = 0; r < kRunsPerSegment; ++r) retired_at(s, r, now);
    }
    all_segments_.push_front(header);
    tags_.insert(header);
    ++empty_segments_;
    with_free_runs_.push_front(s);
  }
  const unsigned index = lowest_set_bit(s->free_runs);
  if (((s->decommitted | s->holes) >> index) & 1) {
    char* pages = nullptr;
    std::size_t bytes = 0;
    run_pages(s, index, &pages, &bytes);
    if (bytes != 0 && !provider_->commit(pages, bytes)) return nullptr;  // nothing changed yet
    s->decommitted &= ~(std::uint64_t{1} << index);
    s->holes &= ~(std::uint64_t{1} << index);
  }
  if (s->free_runs == kAllRuns) --empty_segments_;
  s->free_runs &= s->free_runs - 1;
  if (s->free_runs == 0) with_free_runs_.remove(s);

  Run* run = &s->runs[index];
  const std::size_t size = slot_size_of(size_class);
  const std::size_t begin = index == 0 ? kFirstSlotsOffset : index * kRunSize;
  const std::size_t end = (index + 1) * kRunSize - kRunGuardBytes;
  if constexpr (kRunGuardBytes != 0) guard_run(s, index);
  if constexpr (kZeroOnFree) {
    // A free slot is zero past its link words (small_block_hardening.h):
    // so is every slot of a new run, whatever the run held before.
    unpoison_memory(reinterpret_cast<char*>(s) + begin, end - begin);
    std::memset(reinterpret_cast<char*>(s) + begin, 0, end - begin);
  }
  run->slot_size = static_cast<std::uint32_t>(size);
  run->divisor = SlotDivisor::of(static_cast<std::uint32_t>(size));
  run->slots_offset = static_cast<std::uint32_t>(begin);
  run->slot_count = (end - begin) / size;
  run->free_count = static_cast<std::uint32_t>(run->slot_count);
  run->size_class = static_cast<std::uint8_t>(size_class);
  run->cache_offset = static_cast<std::uint16_t>(size_class * sizeof(Cache));
  for (std::size_t w = 0; w < kBitmapWords; ++w) {
    const std::size_t first = w * 64;
    const std::size_t n = run->slot_count > first ? run->slot_count - first : 0;
    store_bits(*run, w, n >= 64 ? ~std::uint64_t{0} : (std::uint64_t{1} << n) - 1);
  }
  bytes_in_runs_ += run->slot_count * size;
  if constexpr (kAddressSanitizer) {
    // A retired run's poison follows its old class's slot layout: redo it.
    char* slots = reinterpret_cast<char*>(s) + begin;
    unpoison_memory(slots, end - begin);
    for (std::size_t i = 0; i < run->slot_count; ++i) poison_free_slot(slots + i * size, size);
  }
  available_[size_class].push_front(run);
  return run;
}

template <HeapConfig Config, SegmentProvider Provider>
void SmallRuns<Config, Provider>::run_pages(Segment* s, unsigned index, char** begin,
                                            std::size_t* bytes) {
  constexpr std::size_t kPage = 4096;  // the smallest page we run on; larger pages still align
  const std::size_t first = index == 0 ? align_up(kFirstSlotsOffset, kPage) : index * kRunSize;
  const std::size_t end = (index + 1) * kRunSize - kRunGuardBytes;  // not the guard page
  *begin = reinterpret_cast<char*>(s) + first;
  *bytes = first < end ? end - first : 0;
}

template <HeapConfig Config, SegmentProvider Provider>
void SmallRuns<Config, Provider>::retire_run(Segment* s, Run* run) {
  bytes_in_runs_ -= run->slot_count * run->slot_size;
  run->slot_size = 0;
  run->slot_count = 0;
  run->free_count = 0;
  const unsigned index = static_cast<unsigned>(run - s->runs);
  if (s->free_runs == 0) with_free_runs_.push_front(s);
  s->free_runs |= std::uint64_t{1} << index;
  s->holes_pending &= ~(std::uint64_t{1} << index);  // the whole run decays now
  s->holes_stamped &= ~(std::uint64_t{1} << index);
  if (schedule_.delay_ms() != kDecayNever) retired_at(s, index, provider_->now_ms());
  if (s->free_runs == kAllRuns) {
    // Keep one empty segment so a workload at a segment boundary does not
    // map and unmap on every call.
    if (empty_segments_ >= 1) {
      release_segment(s);
    } else {
      ++empty_segments_;
    }
  }
}

template <HeapConfig Config, SegmentProvider Provider>
void SmallRuns<Config, Provider>::release_segment(Segment* s) {
  HPCALLOC_ASSERT(s->free_runs == kAllRuns);
  with_free_runs_.remove(s);
  all_segments_.remove(&s->header);
  tags_.erase(&s->header);
  lift_run_guards(s);
  // Free slots are poisoned; the segment leaves the heap addressable.
  unpoison_memory(s, kSegmentSize);
  provider_->release_segment(&s->header);
}

template <HeapConfig Config, SegmentProvider Provider>
bool SmallRuns<Config, Provider>::check_consistency_for_testing() const {
  std::size_t bytes = 0;
  std::size_t empties = 0;
  std::size_t segments = 0;
  for (const SegmentHeader* h : all_segments_) {
    const Segment* s = reinterpret_cast<const Segment*>(h);
    ++segments;
    if (h->kind() != SegmentKind::kSmall || h->owner() != owner_) return false;
    if (s->free_runs == kAllRuns) ++empties;
    if (with_free_runs_.is_linked(s) != (s->free_runs != 0)) return false;
    for (unsigned r = 0; r < kRunsPerSegment; ++r) {
      const Run& run = s->runs[r];
      const bool retired = (s->free_runs >> r) & 1;
      if (retired != (run.slot_size == 0)) return false;
      if (retired) continue;
      std::size_t free_bits = 0;
      for (std::size_t w = 0; w < kBitmapWords; ++w) free_bits += std::popcount(run.free_bits[w]);
      if (free_bits != run.free_count) return false;
      if (available_[run.size_class].is_linked(&run) != (run.free_count > 0)) return false;
      if (run.free_count == run.slot_count) return false;  // should have been retired
      bytes += run.slot_count * run.slot_size;
    }
  }
  for (unsigned c = 0; c < kRunClasses; ++c) {
    const std::uint32_t limit = cache_limit(c);  // the carrier cache's field is 0
    std::size_t n = 0;
    for (void* p = caches_[c].head; p != nullptr && n <= limit;) {
      bool ok = true;
      p = next_checked(p, &ok);
      if (!ok) return false;
      ++n;
    }
    if (n != caches_[c].count() || n > limit) return false;
    for (const Run* run : available_[c]) {
      if (run->size_class != c || run->free_count == 0) return false;
    }
  }
  const bool tags_owned = tags_.all_owned([this](const SegmentHeader* tagged) {
    for (const SegmentHeader* h : all_segments_) {
      if (h == tagged) return true;
    }
    return false;
  });
  return tags_owned && bytes == bytes_in_runs_ && segments == all_segments_.size() &&
         empties == empty_segments_;
}

}  // namespace hpcalloc

// The secure flavour's paths of SmallRuns (small_runs.h, mem/hardening.h):
// handing a block out (zero check, seal), freeing one (canary check, zero,
// quarantine), the quarantine's exit, shuffled refills and run guard pages.
// Compiled only for a Config that turns the features on.
#pragma once

#include "mem/small_runs.h"

namespace hpcalloc {

template <HeapConfig Config, SegmentProvider Provider>
void SmallRuns<Config, Provider>::hand_out(void* block, unsigned size_class,
                                           std::size_t requested) {
  const std::size_t slot = slot_size_of(size_class);
  if constexpr (kZeroOnFree) {
    // Zeroed when freed; anything else was written through a dangling
    // pointer since. The block's own data is lost, the heap is not: zero
    // it and go on (warn mode).
    if (!BlockHardening::is_zero_past_links(block, slot)) {
      reporter_.report(HeapError::kWriteAfterFree, allocating_call_, block);
      BlockHardening::zero_past_links(block, slot);
    }
  }
  // malloc(0) holds one byte, so that a live block's usable size is never
  // 0 (which the heap's callers read as "reported").
  if constexpr (kCanaryBytes != 0) hardening_.seal(block, slot, requested == 0 ? 1 : requested);
}

template <HeapConfig Config, SegmentProvider Provider>
bool SmallRuns<Config, Provider>::free_hardened(Run& run, void* block, bool suspect,
                                                const char* operation) {
  const std::size_t slot = run.slot_size;
  // A block that may be free already is looked up first (a freed block has
  // no seal to check); a live one's seal is checked before any walk of its
  // cache, so an overflow is blamed on the overflowing block, not on the
  // cached neighbour it reached.
  if (suspect && !check_allocated(run, block, operation)) return false;
  if constexpr (kCanaryBytes != 0) {
    if (hardening_.sealed_size(block, slot) == SIZE_MAX) {
      // No seal: a freed block whose words were overwritten since (so it
      // did not look free), freed again; or a live block overflowed, which
      // is freed all the same: what the overflow reached past its slot is
      // checked where it lies (a neighbour's link or seal). The cache walk
      // stops quietly at a corrupted link: that is the neighbour's report,
      // made when its cache is next used.
      if (!suspect && (hardening_.in_quarantine(block) || reachable_in_cache(run, block))) {
        reporter_.report(HeapError::kDoubleFree, operation, block);
        return false;
      }
      reporter_.report(HeapError::kBlockOverflow, operation, block);
      // A free block behind a corrupted link cannot be told from a live
      // one; under ASan its bytes are poisoned, and the writes below are
      // the allocator's own.
      unpoison_memory(block, slot);
    }
  }
  if (kChecked && !suspect && !check_allocated(run, block, operation)) return false;
  if constexpr (kZeroOnFree) BlockHardening::zero_past_links(block, slot);
  if constexpr (kQuarantine) {
    while (!hardening_.has_room_for(slot) && !hardening_.empty()) {
      release_oldest_quarantined(operation);
    }
    hardening_.mark_quarantined(block);
    hardening_.push(block, slot);
    poison_free_slot(block, slot);
    return true;
  }
  Cache& cache = caches_[run.size_class];
  push_to_cache(cache, run, block, operation);
  return true;
}

template <HeapConfig Config, SegmentProvider Provider>
void SmallRuns<Config, Provider>::release_oldest_quarantined(const char* operation) {
  std::size_t slot = 0;
  bool intact = false;
  void* block = hardening_.pop_checked(&slot, &intact);
  if (!intact) {
    // Written through a dangling pointer while quarantined: reported, and
    // the block is never handed out again (it stays allocated: a leak of
    // one slot, not a block with unknown contents in a cache).
    reporter_.report(HeapError::kWriteAfterFree, operation, block);
    return;
  }
  Segment* s = segment_of(block);
  Run& run = s->runs[run_index(s, block)];
  Cache& cache = caches_[run.size_class];
  push_to_cache(cache, run, block);
}

template <HeapConfig Config, SegmentProvider Provider>
void* SmallRuns<Config, Provider>::shuffle_refill(unsigned size_class, void* first) {
  // The refill linked its blocks in address order behind `first`; put the
  // batch in random order (the links were written just now: no check).
  void* blocks[kRefillBatch];
  Cache& cache = caches_[size_class];
  unsigned n = 0;
  blocks[n++] = first;
  for (void* p = cache.head; p != nullptr && n < kRefillBatch; p = decode(word(p, 0))) {
    blocks[n++] = p;
  }
  hardening_.shuffle(blocks, n);
  void* next = nullptr;
  for (unsigned i = n; i > 1; --i) {
    link_cached(blocks[i - 1], next);
    next = blocks[i - 1];
  }
  cache.head = next;
  set_word(blocks[0], 1, 0);  // handed out: its old words may look cached
  return blocks[0];
}

template <HeapConfig Config, SegmentProvider Provider>
void SmallRuns<Config, Provider>::guard_run(Segment* s, unsigned index) {
  const std::uint64_t bit = std::uint64_t{1} << index;
  if (s->guarded & bit) return;  // still there from the run's earlier life
  char* guard = reinterpret_cast<char*>(s) + (index + 1) * kRunSize - kRunGuardBytes;
  // A failed mprotect (the process's map count limit) leaves the run
  // without its guard, still correct.
  if (provider_->protect(guard, kRunGuardBytes, false)) s->guarded |= bit;
}

template <HeapConfig Config, SegmentProvider Provider>
void SmallRuns<Config, Provider>::lift_run_guards(Segment* s) {
  if constexpr (kRunGuardBytes != 0) {
    if (s->guarded != 0 && provider_->protect(s, kSegmentSize, true)) s->guarded = 0;
  }
}

}  // namespace hpcalloc

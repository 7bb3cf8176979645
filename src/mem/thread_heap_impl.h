// The slow paths of ThreadHeap (thread_heap.h): medium and huge blocks,
// calloc, memalign, trimming and tear-down (realloc: thread_heap_realloc.h).
#pragma once

#include "mem/thread_heap.h"

namespace hpcalloc {

template <HeapConfig Config>
ThreadHeap<Config>::~ThreadHeap() {
  flush_remote_batch(/*may_allocate=*/false);  // not from a dying heap
  small_.release_all();
  while (SegmentHeader* s = medium_segments_.pop_front()) {
    unpoison_memory(s, s->mapping_size);  // its free chunks are poisoned
    release_medium_segment(s);
  }
  while (SegmentHeader* s = huge_blocks_.pop_front()) source_->release_segment(s);
}

template <HeapConfig Config>
void* ThreadHeap<Config>::malloc_large(std::size_t size) {
  // Push what this heap holds for others, take back its own (both usually
  // nothing: two inline tests).
  flush_remote_batch();
  if (!remote_.empty_relaxed()) drain_remote(Returns::kHold);
  add(counter<&HeapStats::requested>(), size);
  if (size <= MediumCacheT::kMaxBytes) {
    const unsigned c = MediumCacheT::class_of(size);
    const void* corrupted = nullptr;
    if (void* p = medium_cache_.pop(c, &corrupted)) return p;
    if (__builtin_expect(corrupted != nullptr, 0)) {
      reporter_.report(HeapError::kCorruptedMediumCache, allocating_call_, corrupted);
    }
    // Rounded up to the class, so the block serves any request of it later.
    return medium_allocate(MediumCacheT::class_size(c), 0);
  }
  if (size <= kMediumMax) return medium_allocate(size, 0);
  return huge_allocate(size, 0);
}

template <HeapConfig Config>
void* ThreadHeap<Config>::medium_allocate(std::size_t size, std::size_t alignment) {
  // Medium requests can come one after another: the clock is read on every
  // eighth (decay_tick's cost, about 50 instructions, is then 6 a request).
  if (--medium_ticks_left_ == 0) {
    medium_ticks_left_ = kMediumRequestsPerTick;
    decay_tick();
  }
  for (int attempt = 0; attempt < 2; ++attempt) {
    // Lists that a failed check abandoned (after a report) serve nothing:
    // the request gets a mapping of its own, which is slower but never
    // touches what was corrupted.
    if (__builtin_expect(medium_.abandoned(), 0)) return huge_allocate(size, alignment);
    void* p = alignment == 0 ? medium_.allocate(size, allocating_call_)
                             : medium_.allocate_aligned(size, alignment, allocating_call_);
    if (p != nullptr) {
      publish_medium();
      return p;
    }
    if (medium_.abandoned()) return huge_allocate(size, alignment);  // just now
    // Nothing fits: one fresh segment always does (size, alignment checked
    // by the callers against the region size).
    if (attempt == 0 && !add_medium_segment()) break;
  }
  errno = ENOMEM;
  return nullptr;
}

template <HeapConfig Config>
bool ThreadHeap<Config>::add_medium_segment() {
  SegmentHeader* s = source_->acquire_segment(SegmentKind::kMedium, this);
  if (s == nullptr) return false;
  if constexpr (kMediumGuardBytes != 0) {
    // A failed mprotect leaves the segment unguarded, still correct.
    source_->protect(reinterpret_cast<char*>(s) + kSegmentSize - kMediumGuardBytes,
                     kMediumGuardBytes, false);
  }
  medium_segments_.push_front(s);
  medium_.add_region(reinterpret_cast<char*>(s) + kMediumRegionOffset, kMediumRegionBytes);
  // A cached segment may have all its pages resident: they decay from now.
  s->freed_ms = 0;
  if (!s->fresh) medium_freed(s);
  return true;
}

template <HeapConfig Config>
std::size_t ThreadHeap<Config>::give_back_medium_pages(SegmentHeader* s, const char* operation) {
  std::size_t bytes = 0;
  medium_.for_each_free_page_range(
      reinterpret_cast<char*>(s) + kMediumRegionOffset, source_->page_size(),
      [&](char* begin, std::size_t n) {
        // Free chunks are poisoned past their links, and a platform may
        // zero by writing (SimPal): nothing reads these pages meanwhile.
        unpoison_memory(begin, n);
        if (source_->decommit(begin, n)) bytes += n;
        poison_memory(begin, n);
      },
      operation);
  s->freed_ms = 0;
  return bytes;
}

template <HeapConfig Config>
void ThreadHeap<Config>::decay_medium(std::uint64_t now) {
  medium_schedule_.passed(now);
  std::size_t bytes = 0;
  for (SegmentHeader* s : medium_segments_) {
    if (s->freed_ms == 0) continue;
    if (s->freed_ms == kUnstamped) {
      s->freed_ms = now;
      medium_schedule_.pending(now);
    } else if (medium_schedule_.expired(s->freed_ms, now)) {
      bytes += give_back_medium_pages(s, allocating_call_);
    } else {
      medium_schedule_.pending(s->freed_ms);
    }
  }
  if (bytes != 0) source_->count_decayed(bytes);
}

template <HeapConfig Config>
void ThreadHeap<Config>::release_medium_region(void* region) {
  SegmentHeader* s =
      reinterpret_cast<SegmentHeader*>(static_cast<char*>(region) - kMediumRegionOffset);
  if (medium_segments_.size() == 1) {
    // Keep the heap's last medium segment: re-format it as one free chunk.
    medium_.add_region(region, kMediumRegionBytes);
    medium_freed(s);
    return;
  }
  medium_segments_.remove(s);
  release_medium_segment(s);
}

template <HeapConfig Config>
void* ThreadHeap<Config>::huge_allocate(std::size_t size, std::size_t alignment) {
  if (size > kMaxRequest) {
    errno = ENOMEM;
    return nullptr;
  }
  SegmentHeader* s = source_->acquire_huge(size, alignment < 16 ? 16 : alignment, this);
  if (s == nullptr) return nullptr;  // errno set by the source
  // A cached huge block's poison may cover any of the mapping, which the
  // block can later grow into in place (realloc): unpoison all of it.
  unpoison_memory(s, s->mapping_size);
  huge_blocks_.push_front(s);
  add(counter<&HeapStats::huge_in_use>(), s->huge_size);
  add(counter<&HeapStats::huge_blocks>(), 1);
  return s->huge_block;
}

template <HeapConfig Config>
void ThreadHeap<Config>::free_other(SegmentHeader* segment, void* p, const char* operation) {
  // Each header field loaded once (relaxed atomics: segment.h). A segment
  // this heap owns is live and valid (only its owner changes that).
  auto* const owner = static_cast<ThreadHeap*>(segment->owner());
  if (owner == this) {
    free_owned_large(segment, segment->kind(), p, operation);
    return;
  }
  const SegmentKind kind = segment->kind();
  if (__builtin_expect(owner == nullptr || kind == SegmentKind::kCached || !segment->is_valid(),
                       0)) {
    report_unowned(segment, p, operation);
    return;
  }
  // Another heap's block: its owner validates it when it drains. Batched
  // per owner (remote_frees.h); a push empties the batch, which then takes
  // any block.
  if (__builtin_expect(!remote_.try_add(&owner->remote_, p), 0)) {
    push_remote_batch(/*may_allocate=*/true);
    const bool added = remote_.try_add(&owner->remote_, p);
    HPCALLOC_ASSERT(added);
    (void)added;
  }
  // A huge block is megabytes of mapping: it goes at once rather than wait
  // in the batch for this thread's next slow path (a thread that frees and
  // then sleeps would keep it from its owner, its cache and decay). One
  // push per huge free costs little next to the mapping's own work.
  if (__builtin_expect(kind == SegmentKind::kHuge, 0)) push_remote_batch(/*may_allocate=*/true);
}

template <HeapConfig Config>
bool ThreadHeap<Config>::free_owned_large(SegmentHeader* segment, SegmentKind kind, void* p,
                                          const char* operation) {
  switch (kind) {
    case SegmentKind::kMedium: {
      if (!in_medium_region(segment, p)) {
        reporter_.report(HeapError::kInvalidPointer, operation, p);
        return false;
      }
      // Its own header is checked before caching it (reports a bad p); the
      // free lists check its neighbours too when it reaches them.
      const std::size_t usable = medium_.usable_size_own_header(p, operation);
      if (usable == 0) return false;
      if (__builtin_expect(in_medium_quarantine(p), 0)) {
        reporter_.report(freed_block_error(operation), operation, p);
        return false;
      }
      if (__builtin_expect(medium_cache_.looks_cached(p), 0)) {
        const auto found = medium_cache_.find(p, usable);
        if (found.corrupted != nullptr) {
          reporter_.report(HeapError::kCorruptedMediumCache, operation, found.corrupted);
        }
        if (found.found) {
          reporter_.report(freed_block_error(operation), operation, p);
          return false;
        }
      }
      if constexpr (kMediumQuarantine) {
        quarantine_medium(p, usable, operation);
        return true;
      }
      if constexpr (kZeroOnFree) MediumQuarantine::zero_past_links(p, usable);
      if (medium_cache_.push(p, usable)) return true;
      free_medium(p, operation, /*own_header_checked=*/true);
      return true;
    }
    case SegmentKind::kHuge:
      if (p != segment->huge_block) {
        reporter_.report(HeapError::kInvalidPointer, operation, p);
        return false;
      }
      huge_blocks_.remove(segment);
      sub(counter<&HeapStats::huge_in_use>(), segment->huge_size);
      sub(counter<&HeapStats::huge_blocks>(), 1);
      if constexpr (kPoisonCachedHuge) poison_memory(segment->huge_block, segment->huge_size);
      source_->release_segment(segment);
      return true;
    case SegmentKind::kSmall: return small_.deallocate(segment, p, operation);
    case SegmentKind::kCached:
      reporter_.report(freed_block_error(operation), operation, p);
      return false;
  }
  return false;
}

template <HeapConfig Config>
void ThreadHeap<Config>::quarantine_medium(void* p, std::size_t usable, const char* operation) {
  if constexpr (kZeroOnFree) MediumQuarantine::zero_past_links(p, usable);
  while (!medium_quarantine_.has_room_for(usable) && !medium_quarantine_.empty()) {
    release_oldest_medium(operation);
  }
  medium_quarantine_.mark_quarantined(p);
  medium_quarantine_.push(p, usable);
  poison_memory(static_cast<char*>(p) + MediumQuarantine::kLinkBytes,
                usable - MediumQuarantine::kLinkBytes);
}

template <HeapConfig Config>
void ThreadHeap<Config>::release_oldest_medium(const char* operation) {
  std::size_t usable = 0;
  bool intact = false;
  void* p = medium_quarantine_.pop_checked(&usable, &intact);
  if (!intact) {
    // Written through a dangling pointer while quarantined: never handed
    // out again (the chunk stays allocated).
    reporter_.report(HeapError::kWriteAfterFree, operation, p);
    return;
  }
  MediumQuarantine::clear_marker(p);
  if (!medium_cache_.push(p, usable)) free_medium(p, operation);
}

template <HeapConfig Config>
void ThreadHeap<Config>::free_medium(void* p, const char* operation, bool own_header_checked) {
  const auto result = medium_.free(p, operation, own_header_checked);
  if (result.emptied_region != nullptr) {
    release_medium_region(result.emptied_region);
  } else if (!medium_.abandoned()) {
    medium_freed(medium_segment_of(p));
  }
  publish_medium();
}

// The sending side's view of the heap: carriers are small blocks of its own.
template <HeapConfig Config>
struct ThreadHeap<Config>::CarrierSource {
  ThreadHeap& heap;
  bool may_allocate;

  typename decltype(remote_)::Word* allocate_carrier(unsigned words) {
    HPCALLOC_ASSERT(words * sizeof(void*) <= kCarrierBytesOf<Config>);
    (void)words;
    if (!may_allocate) return nullptr;
    // From the carrier runs, never a user's slot (small_runs.h).
    return static_cast<typename decltype(remote_)::Word*>(heap.small_.allocate_carrier());
  }
  void report_double_free(void* block) {
    heap.reporter_.report(HeapError::kDoubleFree, "free()", block);
  }
};

// The draining side's view: it can only free.
template <HeapConfig Config>
struct ThreadHeap<Config>::DrainReceiver {
  ThreadHeap& heap;

  bool free_block(void* block) { return heap.drain_one(block); }
  // One of the heap's own carriers, back from the heap it went to.
  void free_carrier(void* carrier) { heap.free_own_carrier(carrier); }
  void report_bad_carrier(void* carrier) {
    heap.reporter_.report(HeapError::kCorruptedCarrier, "free()", carrier);
  }
};

template <HeapConfig Config>
void ThreadHeap<Config>::push_remote_batch(bool may_allocate) {
  CarrierSource host{*this, may_allocate};
  const auto pushed = remote_.push(host);
  add(counter<&HeapStats::remote_pushed>(), pushed.blocks);
  after_push(pushed);
}

template <HeapConfig Config>
bool ThreadHeap<Config>::drain_one(void* p) {
  SegmentHeader* segment = registry_.lookup(p);
  // The common case first, with one header load: a small block of ours (a
  // header naming this heap is ours, so valid).
  if (__builtin_expect(segment != nullptr && segment->small_owner() == this, 1)) {
    // The checks of a free by the owner itself, no more: the fast half
    // first (it skips the bitmap, as that free does; see
    // try_deallocate_fast), then the full one when the cache is full.
    if (small_.try_deallocate_fast(segment, p)) return true;
    return small_.deallocate(segment, p);
  }
  if (segment == nullptr || segment->owner() != this || !segment->is_valid()) {
    report_unowned(segment, p, "free()");
    return false;
  }
  return free_owned_large(segment, segment->kind(), p);
}

template <HeapConfig Config>
void ThreadHeap<Config>::free_own_carrier(void* carrier) {
  SegmentHeader* segment = registry_.lookup(carrier);
  if (segment == nullptr || segment->small_owner() != this) {
    reporter_.report(HeapError::kCorruptedCarrier, "free()", carrier);
    return;
  }
  small_.deallocate_carrier(segment, carrier);
}

template <HeapConfig Config>
void ThreadHeap<Config>::drain_remote(Returns returns) {
  DrainReceiver receiver{*this};
  const std::size_t drained = remote_.drain(receiver, returns);
  if (drained == 0) return;
  add(counter<&HeapStats::remote_drained>(), drained);
  publish_small();
}

template <HeapConfig Config>
void* ThreadHeap<Config>::calloc(std::size_t count, std::size_t size) {
  const AllocatingCall call(*this, "calloc()");
  std::size_t total = 0;
  if (!checked_mul(count, size, &total) || total > kMaxRequest) {
    errno = ENOMEM;
    return nullptr;
  }
  if (total > kMediumMax) {
    void* p = huge_allocate(total, 0);
    if (p == nullptr) return nullptr;
    SegmentHeader* s = registry_.lookup(p);
    // Pages new from the OS are already zero: no memset of fresh memory.
    if (!s->fresh) std::memset(p, 0, total);
    s->fresh = false;
    return p;
  }
  void* p = malloc(total);
  if (p != nullptr) std::memset(p, 0, total);
  return p;
}

template <HeapConfig Config>
void* ThreadHeap<Config>::memalign(std::size_t alignment, std::size_t size, const char* call_name) {
  const AllocatingCall call(*this, call_name);
  HPCALLOC_ASSERT(is_pow2(alignment));
  if (alignment <= 16) return malloc(size);
  if (size > kMaxRequest) {
    errno = ENOMEM;
    return nullptr;
  }
  if (alignment <= kSmallMax && size <= kSmallMaxRequest) {
    return small_.allocate(Classes::class_of_aligned(size + kCanaryBytes, alignment), size);
  }
  // Medium when the worst case (size + alignment + a split-off gap) fits a
  // medium request; otherwise a huge block, which can align to anything.
  if (size <= kMediumMax && alignment <= kMediumMax && size + alignment <= kMediumMax) {
    return medium_allocate(size, alignment);
  }
  return huge_allocate(size, alignment);
}

template <HeapConfig Config>
std::size_t ThreadHeap<Config>::usable_size(const void* p) {
  if (p == nullptr) return 0;
  SegmentHeader* segment = live_segment(p, "malloc_usable_size()");
  if (segment == nullptr) return 0;
  return usable_size_in(segment, p, "malloc_usable_size()");
}

template <HeapConfig Config>
std::size_t ThreadHeap<Config>::usable_size_in(SegmentHeader* segment, const void* p,
                                               const char* operation) {
  // Each header field loaded once; the owner's heap object lives as long
  // as its segments (heaps are pooled, never freed, while they own any).
  auto* const owner = static_cast<ThreadHeap*>(segment->owner());
  switch (segment->kind()) {
    case SegmentKind::kSmall:
      // The owner's keys tell its cached blocks; only the owner may walk
      // its caches and read its bitmaps.
      return owner->small_.usable_size(segment, p, operation, owner == this);
    case SegmentKind::kMedium: {
      if (!in_medium_region(segment, p)) break;
      // The lists report a chunk that is not live (freed into them, or no
      // chunk at all); a live chunk may still be a block in its owner's
      // cache.
      if (owner == this) {
        const std::size_t usable = medium_.usable_size(p, operation);
        if (usable != 0 && in_medium_quarantine(p)) {
          reporter_.report(HeapError::kUseOfFreedBlock, operation, p);
          return 0;
        }
        if (usable == 0 || !medium_cache_.looks_cached(p)) return usable;
        const auto found = medium_cache_.find(p, usable);
        if (found.corrupted != nullptr) {
          reporter_.report(HeapError::kCorruptedMediumCache, operation, found.corrupted);
        }
        if (!found.found) return usable;
      } else {
        // Another heap's chunk: read only what its owner never writes while
        // the block is live (its own header), never its neighbours, which
        // the owner may be splitting or merging; a block in the owner's
        // cache is told by its words alone.
        const std::size_t usable = medium_.usable_size_of_live_block_shared(p, operation);
        bool quarantined = false;
        if constexpr (kMediumQuarantine) {
          quarantined = usable != 0 && owner->medium_quarantine_.looks_quarantined(p);
        }
        if (!quarantined && (usable == 0 || !owner->medium_cache_.looks_cached(p))) return usable;
      }
      reporter_.report(HeapError::kUseOfFreedBlock, operation, p);
      return 0;
    }
    case SegmentKind::kHuge:
      if (p == segment->huge_block) return segment->huge_size;
      break;
    case SegmentKind::kCached: break;
  }
  reporter_.report(HeapError::kInvalidPointer, operation, p);
  return 0;
}

template <HeapConfig Config>
void ThreadHeap<Config>::trim_impl(bool release_cached_mappings, const char* operation,
                                   bool give_back_pages) {
  flush_remote_batch();
  drain_remote();
  if constexpr (kMediumQuarantine) {
    while (!medium_quarantine_.empty()) release_oldest_medium(operation);
  }
  medium_cache_.flush([this, operation](void* p) { free_medium(p, operation); },
                      [this, operation](const void* corrupted) {
                        reporter_.report(HeapError::kCorruptedMediumCache, operation, corrupted);
                      });
  small_.flush_all(operation);
  small_.release_spare();
  if (give_back_pages) {
    give_back_free_pages(operation);
    trim_requests_seen_ = source_->trim_requests();  // this trim answers them
  }
  publish_small();
  if (release_cached_mappings) source_->trim();
}

template <HeapConfig Config>
void ThreadHeap<Config>::trim_at_exit() {
  trim_impl(false, "thread exit", /*give_back_pages=*/false);
  if (!partial_decay_) return;  // whole segments only (HPCALLOC_THP=always)
  // A heap holding much free memory (a thread that ends a phase) gives it
  // all back now: a pooled heap has no slow paths of its own, so without
  // the background thread its decay would wait for an adopter.
  const std::size_t free_bytes = small_.segment_count() * kSegmentSize -
                                 small_.out_of_bitmaps_bytes() + medium_.stats().free_bytes;
  if (free_bytes > kExitGiveBackBytes) {
    give_back_free_pages("thread exit");
    return;
  }
  // Retired runs (whole runs free, whose pages an adopter would touch
  // again only for a class that needs a new run) go back; holes and free
  // medium chunks wait for a decay pass.
  if (const std::size_t bytes = small_.decommit_retired_runs(/*holes_stay=*/true)) {
    source_->count_trimmed(bytes);
  }
  decay_tick();
}

template <HeapConfig Config>
void ThreadHeap<Config>::give_back_free_pages(const char* operation) {
  std::size_t trimmed = small_.decommit_retired_runs() + small_.punch_all_holes();
  for (SegmentHeader* s : medium_segments_) trimmed += give_back_medium_pages(s, operation);
  if (trimmed != 0) source_->count_trimmed(trimmed);
}

template <HeapConfig Config>
std::size_t ThreadHeap<Config>::migrate_to(Source& target) {
  if (&target == source_) return 0;
  std::size_t failed = 0;
  auto hand_over = [&](SegmentHeader* s) { failed += source_->hand_over(s, target) ? 0 : 1; };
  small_.for_each_segment(hand_over);
  for (SegmentHeader* s : medium_segments_) hand_over(s);
  for (SegmentHeader* s : huge_blocks_) hand_over(s);
  source_ = &target;
  trim_requests_seen_ = target.trim_requests();
  small_.set_provider(target);
  published_node_.store(target.node(), std::memory_order_relaxed);
  return failed;
}

template <HeapConfig Config>
HeapStats ThreadHeap<Config>::stats() const {
  HeapStats s;
  for (std::size_t i = 0; i < kHeapCounterCount; ++i) {
    s.*kHeapCounters[i] = counters_[i].load(std::memory_order_relaxed);
  }
  return s;
}

}  // namespace hpcalloc

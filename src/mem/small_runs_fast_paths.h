// The inline fast paths of SmallRuns (mem/small_runs.h): malloc's pop
// from a class's cache and free's push onto it, with their checks. Kept
// apart so the class reads as its interface; every line here is counted in
// the README's instructions per malloc+free pair.
#pragma once

namespace hpcalloc {

template <HeapConfig Config, SegmentProvider Provider>
inline void* SmallRuns<Config, Provider>::allocate_for(std::size_t requested) {
  Cache& cache = cache_for(requested);
  void* block = take(cache);
  if constexpr (kHardenedBlocks) {
    if (block != nullptr) hand_out(block, class_of_cache(cache), requested);
  }
  return block;
}

template <HeapConfig Config, SegmentProvider Provider>
inline void* SmallRuns<Config, Provider>::allocate_cached_for(std::size_t requested) {
  if constexpr (kHardenedBlocks) return nullptr;
  Cache& cache = cache_for(requested);
  void* block = cache.head;
  if (__builtin_expect(block == nullptr, 0)) return nullptr;
  const std::uintptr_t link = word(block, 0);
  if (__builtin_expect(!check_word_matches(block, link), 0)) return nullptr;
  return pop(cache, block, link);
}

template <HeapConfig Config, SegmentProvider Provider>
inline bool SmallRuns<Config, Provider>::try_deallocate_fast(SegmentHeader* segment, void* block) {
  // The checked build and the secure flavour check every free.
  if constexpr (kChecked || kHardenedFree) return false;
  Run* run = slot_run(reinterpret_cast<Segment*>(segment), block);
  if (run == nullptr) return false;
  // Not checked here (it costs 10% on small-block loops): whether the slot
  // is free in its bitmap, which a free of a stale pointer into a
  // restarted run can find; such a block is reported when a flush takes
  // it to its bitmap, and deallocate() (every other free) checks at once.
  // The cache's limit first: a carrier class's is 0, so a stale pointer
  // that now names one of this heap's carriers (in flight, its words
  // written by the heap it went to) leaves here before its words are
  // read, for deallocate() to reject by its run (tsan/misuse_race_stress).
  Cache& cache = cache_at(run->cache_offset);
  if (cache.room <= 0) return false;
  if (looks_cached(block)) return false;
  link_cached(block, cache.head);
  cache.head = block;
  --cache.room;
  poison_free_slot(block, run->slot_size);
  return true;
}

template <HeapConfig Config, SegmentProvider Provider>
inline void* SmallRuns<Config, Provider>::take(Cache& cache) {
  void* block = cache.head;
  if (__builtin_expect(block != nullptr, 1)) {
    const std::uintptr_t link = word(block, 0);
    if (__builtin_expect(!check_word_matches(block, link), 0)) {
      return refill_after_corruption(class_of_cache(cache), block);
    }
    return pop(cache, block, link);
  }
  return refill(class_of_cache(cache));
}

template <HeapConfig Config, SegmentProvider Provider>
inline void* SmallRuns<Config, Provider>::pop(Cache& cache, void* block, std::uintptr_t link) {
  cache.head = decode(link);
  set_word(block, 1, 0);
  ++cache.room;
  unpoison_memory(block, slot_size_of(class_of_cache(cache)));
  return block;
}

}  // namespace hpcalloc

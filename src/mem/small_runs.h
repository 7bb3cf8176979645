// Small blocks (<= kSmallMax) for one heap: runs of one size class inside
// small segments, each run with a bitmap of free slots and a count (the
// source of truth), fronted by a per-class cache of free blocks linked
// through their first word (what malloc pops and free pushes).
//
// The layout of a small segment and the arithmetic on it (which run, which
// slot): mem/small_segment_layout.h.
//
// Invariants: a block is in exactly one of {handed out, in a cache, free in
// its run's bitmap}; blocks in a cache are marked allocated in the bitmap, so
// a run whose bitmap is all free has no block anywhere else and can be
// retired; a segment whose runs are all retired goes back to the provider
// (one empty segment is kept to avoid thrashing at a boundary). A live run
// is on its class's list of runs with free slots exactly when its free count
// is not zero, and a segment is on the list of segments with retired runs
// exactly when it has one.
//
// Protected links: a cached block's first word is its link, encoded (the
// next block's address XOR the heap's link key), and its second word is a
// check word (the encoded link XOR the check key);
// both keys derive from the process secret (base/secret.h). Every walk of a
// cache (malloc's pop, a flush, a double-free search) checks a block's
// check word before it follows the block's link: a write into a freed block
// or an overflow from its neighbour is reported (kCorruptedSmallCache, at
// the overwritten block) and the cache is abandoned (its blocks leak),
// never followed. Forging a link needs the keys.
//
// Double frees: a block whose check word matches is in a cache (or was:
// see below), as glibc's tcache key says; free() of such a block searches
// the cache, so freeing a block twice is reported at once instead of
// linking it into its cache twice (which would hand it out to two owners).
// The words stay when a flush returns the block to its bitmap (only malloc
// clears the check word), so a later second free finds the bitmap bit set.
// A block that escapes that (its words overwritten by a use after free) is
// caught when it reaches its bitmap; the checked build also checks the
// bitmap on every free. Cache walks are bounded by the count, so no list
// shape can loop. realloc() and malloc_usable_size() of a freed block are
// reported the same way (kUseOfFreedBlock).
//
// Carriers: the heap's remote frees (remote_frees.h) travel in blocks of
// this heap, and those come from runs of their own (class kCarrierClass,
// after the user classes) whose slots are never handed to users. Were a
// carrier an ordinary block, a user's second free of a block whose slot had
// since become a carrier would free the carrier while it is in flight.
// Instead every user path rejects a carrier slot (validated_run), and the
// carrier cache's limit is 0 so the free fast path never takes one; only
// deallocate_carrier() frees them.
//
// ASan builds (base/sanitizer.h): a slot that is not handed out has every
// byte past its first 16 poisoned, whether it is cached or free in its
// bitmap; the first 16 stay addressable because the allocator itself keeps
// the cache link and key there. A slot is unpoisoned whole when it is handed
// out, and a segment is unpoisoned whole when it comes from or goes back to
// the provider, so memory outside the runs never carries stale poison.
#pragma once

#include <atomic>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "base/bits.h"
#include "base/check.h"
#include "base/sanitizer.h"
#include "base/secret.h"
#include "ds/intrusive_list.h"
#include "mem/config.h"
#include "mem/decay.h"
#include "mem/hardening.h"
#include "mem/segment.h"
#include "mem/segment_tags.h"
#include "mem/size_classes.h"
#include "mem/slot_divisor.h"
#include "mem/small_block_hardening.h"
#include "mem/small_segment_layout.h"

namespace hpcalloc {

template <HeapConfig Config, SegmentProvider Provider>
class SmallRuns : private SmallSegmentLayout<Config> {
  using Layout = SmallSegmentLayout<Config>;

 public:
  using Classes = SizeClasses<Config::kSmallMax>;
  using Reporter = typename Config::Reporter;
  using Layout::kFirstSlotsOffset;
  using Layout::kRunSize;
  using Layout::kRunsPerSegment;
  using Layout::kSegmentSize;
  static constexpr unsigned kClassCount = Classes::kClassCount;
  // The run class of carriers (see the top comment), and how many run
  // classes there are: the user classes, then carriers.
  static constexpr unsigned kCarrierClass = kClassCount;
  static constexpr unsigned kRunClasses = kClassCount + 1;
  // Whole cache lines: a carrier being filled by its sender never shares a
  // line with one its receiver is reading.
  static constexpr std::size_t kCarrierSlotBytes = align_up(kCarrierBytesOf<Config>, 64);
  static_assert(kCarrierSlotBytes <= Config::kSmallMax, "a carrier is a small block");
  static_assert(kRunClasses <= 256, "a run's class fits a byte");
  static constexpr std::size_t slot_size_of(unsigned run_class) {
    return run_class == kCarrierClass ? kCarrierSlotBytes : Classes::compute_class_size(run_class);
  }
  static constexpr unsigned kCacheCapacity = Config::kSmallCacheCapacity;
  static constexpr unsigned kRefillBatch = Config::kSmallRefillBatch;
  // A class's cache holds at most kCacheBytes of blocks (and at least a
  // sixteenth of kCacheCapacity, at most all of it): many small blocks, few
  // large ones, so a batch of a hundred 64-byte blocks never leaves the
  // cache while a thread's cached bytes stay bounded.
  static constexpr std::size_t kCacheBytes = std::size_t{32} << 10;
  static constexpr std::uint32_t cache_limit(unsigned size_class) {
    const std::size_t by_bytes = kCacheBytes / slot_size_of(size_class);
    const std::size_t floor = kCacheCapacity / 16 > 2 ? kCacheCapacity / 16 : 2;
    return static_cast<std::uint32_t>(
        by_bytes < floor ? floor : (by_bytes > kCacheCapacity ? kCacheCapacity : by_bytes));
  }
  // Blocks one refill takes: half the class's cache, at most kRefillBatch;
  // but a class's first refill in a heap takes kFirstRefill and each next
  // one twice as many until then (slow start): a refill writes a link into
  // each block it takes, so a full batch of 480-byte blocks made 16 KiB
  // resident for a program that wanted two blocks.
  static constexpr unsigned kFirstRefill = 4;
  static constexpr unsigned kSlowStartSteps = 5;
  static constexpr std::uint32_t refill_batch(unsigned size_class) {
    const std::uint32_t half = cache_limit(size_class) / 2;
    return half < kRefillBatch ? (half > 0 ? half : 1) : kRefillBatch;
  }

  static_assert(kRunSize <= (std::uint64_t{1} << 32), "slot offsets are 32-bit");

  // The secure flavour's features (mem/hardening.h); all off by default.
  static constexpr Hardening kHardening = hardening_of<Config>;
  using BlockHardening = SmallBlockHardening<kHardening>;
  // Bytes after each user block's requested size: the canary (and padding).
  static constexpr std::size_t kCanaryBytes = BlockHardening::kCanaryBytes;
  static constexpr bool kZeroOnFree = kHardening.zero_on_free;
  static constexpr bool kQuarantine = BlockHardening::kQuarantine;
  // Every free takes the checked path (deallocate()), never the fast one.
  static constexpr bool kHardenedFree =
      kCanaryBytes != 0 || kZeroOnFree || kQuarantine || kHardening.check_every_free;
  static constexpr bool kHardenedBlocks = kCanaryBytes != 0 || kZeroOnFree;
  // The inaccessible page at the end of every run (guard_runs).
  static constexpr std::size_t kRunGuardBytes = kHardening.guard_runs ? kGuardPageBytes : 0;
  static_assert(kRunGuardBytes == 0 || kRunSize >= 4 * kGuardPageBytes,
                "a run's guard page is a small part of it");

  SmallRuns(Provider& provider, Reporter& reporter, void* owner,
            std::uint64_t secret = process_secret())
      : provider_(&provider),
        reporter_(reporter),
        owner_(owner),
        link_key_(derive_key(secret, this, 0x6c696e6b)),
        check_key_(derive_key(secret, this, 0x636865636b)),
        hardening_(secret, this) {
    for (unsigned c = 0; c < kClassCount; ++c) caches_[c].room = caches_[c].limit = cache_limit(c);
    caches_[kCarrierClass].room = caches_[kCarrierClass].limit = 0;  // never the free fast path's
    for (std::size_t g = 0; g < Classes::kGranules; ++g) {
      cache_of_granules_[g] = &caches_[Classes::class_of(g * Classes::kGranule)];
    }
  }
  SmallRuns(const SmallRuns&) = delete;
  SmallRuns& operator=(const SmallRuns&) = delete;

  // A block of class `size_class` for a request of `requested` bytes
  // (requested + kCanaryBytes fits the class), or nullptr with errno = ENOMEM.
  [[gnu::always_inline]] void* allocate(unsigned size_class, std::size_t requested = 0) {
    void* block = take(caches_[size_class]);
    if constexpr (kHardenedBlocks) {
      if (block != nullptr) hand_out(block, size_class, requested);
    }
    return block;
  }
  // allocate() of the class that fits `requested` bytes (requested +
  // kCanaryBytes <= kSmallMax), malloc's: its cache straight from the
  // request's granules, one load where the class table and the cache's
  // address took four instructions.
  [[gnu::always_inline]] void* allocate_for(std::size_t requested);

  // allocate_for() when the class's cache has a block whose words pass
  // their check, else nullptr with nothing done (the secure flavour: always):
  // then call allocate_for(), which refills or reports. operator new's fast
  // path, which must keep the request past a failure to throw, and so
  // cannot tail-call its slow paths as malloc does.
  [[gnu::always_inline]] void* allocate_cached_for(std::size_t requested);

  // A carrier of kCarrierBytesOf<Config> bytes (see the top comment), or
  // nullptr with errno = ENOMEM. May run the refill hook (drain).
  void* allocate_carrier() { return take(caches_[kCarrierClass]); }

  // The fast half of deallocate(): pushes `block` onto its class's cache if
  // it is the start of a live slot, does not look cached (a possible double
  // free), and the cache has room.
  // Otherwise returns false and changes nothing: deallocate() then does the
  // full job. Written so that every exit is cheap: no call, no report, few
  // live registers.
  [[gnu::always_inline]] bool try_deallocate_fast(SegmentHeader* segment, void* block);

  // Frees `block`, which lies in `segment` (a small segment this heap owns).
  // Reports a pointer that is not the start of a slot of a live run, and a
  // block already free (false after a report), naming `operation` (the
  // call the program made: free(), or realloc() freeing the old block).
  [[gnu::always_inline]] bool deallocate(SegmentHeader* segment, void* block,
                                         const char* operation = "free()") {
    Run* run = validated_run(segment, block, operation);
    if (run == nullptr) return false;
    const bool suspect = free_in_bitmap(*run, block) || looks_freed(block);
    if constexpr (kHardenedFree) return free_hardened(*run, block, suspect, operation);
    if (__builtin_expect(suspect || kChecked, 0)) {
      if (!check_allocated(*run, block, operation)) return false;
    }
    Cache& cache = caches_[run->size_class];
    push_to_cache(cache, *run, block, operation);
    return true;
  }

  // The call that allocations serve until the next change (malloc() by
  // default; calloc(), realloc() and memalign() name themselves around the
  // allocations they make): what a report found on the way names.
  void set_allocating_call(const char* call) { allocating_call_ = call; }

  // Secure flavour: re-seals a live block for `requested` bytes (an
  // in-place realloc within its slot).
  void reseal(SegmentHeader* segment, void* block, std::size_t requested) {
    if constexpr (kCanaryBytes != 0) {
      Segment* s = reinterpret_cast<Segment*>(segment);
      hardening_.seal(block, s->runs[run_index(s, block)].slot_size,
                      requested == 0 ? 1 : requested);
    }
  }
  // The most a block of `slot_size` can hold in place (its usable size
  // before any request: the slot less its canary).
  static constexpr std::size_t capacity_of(std::size_t slot_size) {
    return slot_size - kCanaryBytes;
  }

  // Frees a carrier of this heap (back from the heap it went to). A block
  // that is not a live carrier slot is reported as corrupted metadata (a
  // carrier's words were overwritten) and left alone.
  bool deallocate_carrier(SegmentHeader* segment, void* block);

  // Usable size of a live block, or 0 (after a report) for an invalid or
  // freed one (`operation`: the call asking). `owner_thread`: the caller is
  // this heap's owner, who may read its caches and bitmaps; another thread
  // relies on the block's own words (a freed block's check word matches).
  // usable_size() by the owner of a live block in a tagged segment, with
  // the checks of that path but no registry lookup: programs that account
  // their memory ask on every malloc and free (redis). 0: no fast answer
  // (anything else, a freed block included): ask usable_size().
  std::size_t usable_size_fast(const void* block) const;
  std::size_t usable_size(SegmentHeader* segment, const void* block, const char* operation,
                          bool owner_thread);

  // Gives every cached block back to its run (thread exit, trim); runs and
  // segments that become empty are retired as usual.
  // `operation` names the call in a report of a corrupted cache.
  void flush_all(const char* operation = "malloc_trim()") {
    if constexpr (kQuarantine) {
      while (!hardening_.empty()) release_oldest_quarantined(operation);
    }
    for (unsigned c = 0; c < kRunClasses; ++c) flush(c, 0, operation);
  }

  // Whether `p` lies in a small segment of this heap that the table of its
  // segments holds (mem/segment_tags.h): the free fast path's test that
  // `p` is this heap's, without the registry. Then tagged_segment_of(p) is
  // its segment.
  [[gnu::always_inline]] bool in_tagged_segment(const void* p) const { return tags_.contains(p); }
  static SegmentHeader* tagged_segment_of(const void* p) {
    return SegmentTags<Config::kSegmentShift>::segment_of(p);
  }
  // Puts `segment` (a small segment of this heap) back in the table, from
  // whichever segment took its slot: called by the slow path of a free.
  void retag(const SegmentHeader* segment) { tags_.insert(segment); }

  // Calls fn(SegmentHeader*) for every segment (owner only).
  template <class Fn>
  void for_each_segment(Fn fn) {
    for (SegmentHeader* header : all_segments_) fn(header);
  }

  // Segments come from and go back to `provider` from now on (the owner
  // moved to another node's source and handed its segments over).
  void set_provider(Provider& provider) { provider_ = &provider; }

  // Gives every segment back to the provider, live blocks or not (tear-down
  // of a private heap).
  void release_all();

  // Gives back the pages of every retired run (committed again when it
  // restarts); the bytes. `holes_stay`: the caller (a thread's exit) leaves
  // the holes to decay rather than punching them all (trim).
  std::size_t decommit_retired_runs(bool holes_stay = false);
  // Gives back the free pages inside every live run (trim); the bytes.
  std::size_t punch_all_holes();

  // Decay (mem/decay.h): retired runs and holes give their pages back once
  // free for `decay_ms`; a reused cached segment counts as retired on arrival.
  void set_decay_ms(std::int64_t decay_ms) { schedule_ = DecaySchedule(decay_ms); }
  bool decay_due(std::uint64_t now_ms) const { return schedule_.due(now_ms); }
  // The pass: returns the bytes given back (owner only; bounded by the
  // segments with retired runs).
  std::size_t decay(std::uint64_t now_ms);

  // Releases the spare empty segment, if any (trim).
  void release_spare();

  // Called at the start of every refill, before the bitmaps are touched:
  // lets the owning heap drain its remote frees into the caches first.
  void set_refill_hook(void (*hook)(void* owner)) { refill_hook_ = hook; }

  std::size_t segment_count() const { return all_segments_.size(); }
  // Bytes of blocks taken out of the bitmaps: handed out or in a cache.
  std::size_t out_of_bitmaps_bytes() const { return out_of_bitmaps_bytes_; }
  // Bytes of blocks in the caches (and the quarantine).
  std::size_t cached_bytes() const {
    std::size_t bytes = 0;
    if constexpr (kQuarantine) bytes += hardening_.bytes();
    for (unsigned c = 0; c < kRunClasses; ++c) bytes += caches_[c].count() * slot_size_of(c);
    return bytes;
  }
  std::size_t cached_blocks(unsigned size_class) const { return caches_[size_class].count(); }
  // Bytes of slots handed out or cached (what the runs hold for users).
  std::size_t bytes_in_live_runs() const { return bytes_in_runs_; }

  // Test-only: is `block` free in its run's bitmap (not handed out, not cached)?
  bool is_free_in_bitmap_for_testing(const void* block) const {
    const Segment* s = segment_of(block);
    const Run& run = s->runs[run_index(s, block)];
    if (run.slot_size == 0) return true;
    return test_bit(run, slot_index(run, offset_in_segment(s, block) - run.slots_offset));
  }

  // Test-only: walks every run of every segment checking counts against
  // bitmaps, list membership and the cache counts. Returns false at the
  // first inconsistency.
  bool check_consistency_for_testing() const;

 private:
  // A class's blocks, and how many more the free fast path may push: its
  // limit less its count, one counter where two cost the fast paths an
  // instruction each (malloc adds one; free takes one and tests the sign).
  // The carrier cache's limit is 0, so its room is never positive.
  struct Cache {
    void* head = nullptr;
    std::int32_t room = 0;
    std::uint32_t limit = 0;  // cache_limit(class)
    std::uint32_t count() const { return limit - static_cast<std::uint32_t>(room); }
    void set_count(std::uint32_t count) {
      room = static_cast<std::int32_t>(limit) - static_cast<std::int32_t>(count);
    }
  };

  static_assert(kRunClasses * sizeof(Cache) <= UINT16_MAX, "a run's cache_offset fits 16 bits");

  static_assert(kFirstSlotsOffset + Config::kSmallMax + kRunGuardBytes <= kRunSize,
                "run 0 must hold a block of the largest class after the metadata");

  // The segment's layout and its arithmetic (mem/small_segment_layout.h).
  using Layout::free_in_bitmap;
  using Layout::free_in_bitmap_shared;
  using Layout::is_slot_offset;
  using Layout::is_slot_start;
  using Layout::kAllRuns;
  using Layout::kBitmapWords;
  using Layout::offset_in_segment;
  using Layout::run_index;
  using Layout::segment_of;
  using Layout::slot_index;
  using Layout::slot_run;
  using Layout::store_bits;
  using Layout::test_bit;
  using typename Layout::Run;
  using typename Layout::Segment;

  // A cached block: word 0 is the encoded link to the next cached block,
  // word 1 the check word (see the top comment; every block is at least 16
  // bytes).
  static std::uintptr_t word(const void* block, unsigned i) {
    return static_cast<const std::uintptr_t*>(block)[i];
  }
  static void set_word(void* block, unsigned i, std::uintptr_t value) {
    static_cast<std::uintptr_t*>(block)[i] = value;
  }
  void* decode(std::uintptr_t link) const { return reinterpret_cast<void*>(link ^ link_key_); }
  // Not naming the block: copying a cached block's words needs them read,
  // which gives the keys away anyway; leaving it out saves an instruction.
  std::uintptr_t check_word(std::uintptr_t link) const { return link ^ check_key_; }
  bool check_word_matches(const void* block, std::uintptr_t link) const {
    return word(block, 1) == check_word(link);
  }
  // Whether block's words are a cache's (it is, or was, cached: a double
  // free candidate). Two loads, no branch on the link.
  [[gnu::always_inline]] bool looks_cached(const void* block) const {
    return check_word_matches(block, word(block, 0));
  }
  // Or quarantined (secure flavour): a block that may be free already.
  [[gnu::always_inline]] bool looks_freed(const void* block) const {
    if constexpr (kQuarantine) {
      if (hardening_.looks_quarantined(block)) return true;
    }
    return looks_cached(block);
  }
  // Links block in front of `next` (nullptr: the end).
  [[gnu::always_inline]] void link_cached(void* block, void* next) const {
    const std::uintptr_t link = reinterpret_cast<std::uintptr_t>(next) ^ link_key_;
    set_word(block, 0, link);
    set_word(block, 1, check_word(link));
  }
  // The same with the keys given: a loop that stores into blocks copies
  // them, or the compiler loads them again after every store (which may
  // alias them, as far as it knows). Not what link_cached() calls: with
  // the members passed in, the free fast path kept the check key in a
  // register rather than xor it from memory, an instruction more a pair.
  [[gnu::always_inline]] static void link_with_keys(void* block, void* next,
                                                    std::uintptr_t link_key,
                                                    std::uintptr_t check_key) {
    const std::uintptr_t link = reinterpret_cast<std::uintptr_t>(next) ^ link_key;
    set_word(block, 0, link);
    set_word(block, 1, link ^ check_key);  // check_word(link)
  }
  // The block after a cached block, or nullptr with *ok = false when the
  // block's words are not a cache's (then it must not be followed).
  void* next_checked(const void* block, bool* ok) const {
    const std::uintptr_t link = word(block, 0);
    *ok = check_word_matches(block, link);
    return *ok ? decode(link) : nullptr;
  }
  // The link and the key: what stays addressable in a free slot.
  static constexpr std::size_t kSlotMetadataBytes = 2 * sizeof(void*);
  static void poison_free_slot(void* block, std::size_t slot_size) {
    poison_memory(static_cast<char*>(block) + kSlotMetadataBytes, slot_size - kSlotMetadataBytes);
  }

  // The run of `block` if block is the start of a slot of a live user run;
  // otherwise reports and returns nullptr.
  [[gnu::always_inline]] Run* validated_run(SegmentHeader* segment, const void* block,
                                            const char* operation) {
    Segment* s = reinterpret_cast<Segment*>(segment);
    Run* run = &s->runs[run_index(s, block)];
    if (__builtin_expect(
            !is_slot_start(*run, offset_in_segment(s, block)) || run->size_class == kCarrierClass,
            0)) {
      report_not_a_slot(*run, block, operation);
      return nullptr;
    }
    return run;
  }
  // A slot of a retired run (it keeps its slots' offset) is memory already
  // free, most often a block freed twice after its run emptied; so is a
  // carrier run's slot, which users never get.
  [[gnu::cold, gnu::noinline]] void report_not_a_slot(const Run& run, const void* block,
                                                      const char* operation);

  // Pushes a validated block of `run` onto `cache` (its run class's), and
  // flushes half of it back to the bitmaps past its limit.
  [[gnu::always_inline]] void push_to_cache(Cache& cache, const Run& run, void* block,
                                            const char* operation = "free()") {
    link_in_front(cache, run, block);
    if (__builtin_expect(cache.room < 0, 0)) flush(run.size_class, cache.limit / 2, operation);
  }
  // Links a validated block of `run` in as the head of `cache`; no flush.
  [[gnu::always_inline]] void link_in_front(Cache& cache, const Run& run, void* block) {
    link_cached(block, cache.head);
    cache.head = block;
    poison_free_slot(block, run.slot_size);
    --cache.room;
  }

  // The block must be marked allocated and not be cached (slow: a walk of
  // the class's cache, bounded by its count); a free of it is reported.
  [[gnu::cold, gnu::noinline]] bool check_allocated(const Run& run, const void* block,
                                                    const char* operation);
  // Whether block (a slot of the live run `run`) is free in its bitmap or in
  // its class's cache. A cache link that fails its check ends the walk
  // (after a report naming `operation`; the cache is abandoned).
  [[gnu::cold, gnu::noinline]] bool is_free(const Run& run, const void* block,
                                            const char* operation);
  // A cached block whose words fail their check: reported, its cache emptied
  // without following a link (those blocks leak, allocated in their bitmaps).
  [[gnu::cold, gnu::noinline]] void abandon_cache(Cache& cache, const void* corrupted,
                                                  const char* operation);
  // malloc() found its cache's head corrupted: abandon the cache, then
  // serve the request from the runs.
  [[gnu::cold, gnu::noinline]] void* refill_after_corruption(unsigned size_class,
                                                             const void* corrupted);

  // allocate() without the secure flavour's checks (and carriers).
  [[gnu::always_inline]] void* take(Cache& cache);
  // Takes `block`, the head of `cache`, whose link word `link` passed its check.
  [[gnu::always_inline]] void* pop(Cache& cache, void* block, std::uintptr_t link);

  // The cache `offset` bytes into caches_: the free fast path's, from its
  // run's cache_offset, one load where the class took three instructions.
  Cache& cache_at(std::uint16_t offset) {
    return *reinterpret_cast<Cache*>(reinterpret_cast<char*>(caches_) + offset);
  }
  // The cache of the class that fits `requested` bytes: one load, from
  // the request's granules.
  Cache& cache_for(std::size_t requested) {
    return *cache_of_granules_[(requested + kCanaryBytes + Classes::kGranule - 1) /
                               Classes::kGranule];
  }
  unsigned class_of_cache(const Cache& cache) const {
    return static_cast<unsigned>(&cache - caches_);
  }
  [[gnu::noinline]] void* refill(unsigned size_class);
  // Secure flavour (small_runs_hardened.h): checks and seals a block being
  // handed out; frees a checked block into the quarantine (or its cache);
  // moves the quarantine's oldest block to its cache; shuffles a refill.
  void hand_out(void* block, unsigned size_class, std::size_t requested);
  // `suspect`: the block's bit or words say it may be free already.
  bool free_hardened(Run& run, void* block, bool suspect, const char* operation);
  // Whether block is in its class's cache, as far as the walk can go
  // without following a link that fails its check (no report).
  bool reachable_in_cache(const Run& run, const void* block) const;
  void release_oldest_quarantined(const char* operation);
  void* shuffle_refill(unsigned size_class, void* first);
  // Guard pages of runs (guard_runs): set when a run first starts in a
  // segment, lifted (all at once) when the segment leaves the heap.
  void guard_run(Segment* s, unsigned index);
  void lift_run_guards(Segment* s);
  [[gnu::noinline]] void flush(unsigned size_class, unsigned keep,
                               const char* operation = "free()");
  Run* start_run(unsigned size_class);
  // The page-aligned part of run `index`'s slot area (run 0 shares its
  // first pages with the metadata).
  static void run_pages(Segment* s, unsigned index, char** begin, std::size_t* bytes);
  // small_runs_decay.h: a retired run's pages, or a live run's pages that
  // hold only bitmap-free slots (cached blocks count as allocated), back to
  // the OS (the bytes); the holes pass of one segment; a retirement's stamp.
  std::size_t decommit_run(Segment* s, unsigned index);
  std::size_t punch_holes(Segment* s, unsigned index);
  std::size_t decay_holes(Segment* s, std::uint64_t now_ms);
  void retired_at(Segment* s, unsigned index, std::uint64_t now_ms);
  // flush(): marks one block free in its run's bitmap (`slots`: the run's
  // slot 0; false after reporting a double free), then settles the run's
  // count and lists.
  bool mark_free(Run& run, const char* slots, void* block, const char* operation);
  void settle_run(Segment* s, Run* run, std::uint32_t marked);
  void retire_run(Segment* s, Run* run);
  void release_segment(Segment* s);

  Provider* provider_;  // changes only when the owner moves to another node
  Reporter& reporter_;
  void* owner_;
  // Keys of the cache links (see the top comment), side by side: the fast
  // paths load both.
  const std::uintptr_t link_key_;
  const std::uintptr_t check_key_;
  [[no_unique_address]] BlockHardening hardening_;
  const char* allocating_call_ = "malloc()";  // see set_allocating_call()
  void (*refill_hook_)(void* owner) = nullptr;
  std::size_t out_of_bitmaps_bytes_ = 0;
  Cache caches_[kRunClasses];
  Cache* cache_of_granules_[Classes::kGranules];           // caches_[class_of(granules * kGranule)]
  std::uint8_t refills_[kRunClasses] = {};                 // up to kSlowStartSteps (refill_batch)
  IntrusiveList<Run, &Run::link> available_[kRunClasses];  // runs with free slots, per class
  IntrusiveList<Segment, &Segment::with_free_runs_link> with_free_runs_;  // with a retired run
  IntrusiveList<SegmentHeader, &SegmentHeader::link> all_segments_;
  SegmentTags<Config::kSegmentShift> tags_;  // a subset of all_segments_
  std::size_t empty_segments_ = 0;
  std::size_t bytes_in_runs_ = 0;
  DecaySchedule schedule_{kDecayNever};
};

}  // namespace hpcalloc

#include "mem/small_runs_decay.h"
#include "mem/small_runs_fast_paths.h"
#include "mem/small_runs_hardened.h"
#include "mem/small_runs_impl.h"

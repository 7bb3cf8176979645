// MemorySource: where heaps get memory, one per NUMA node. It maps 2 MiB
// segments and huge mappings (segment-aligned, a whole number of segment
// slots, so registry slots are never shared), binds them to its node,
// registers them, and keeps freed mappings in a cache with per-block and
// total limits (the user's return-to-OS policy): a new request reuses the
// closest-fitting cached mapping; what it does not need stays cached as a
// mapping of its own while it is resident. A request larger than every
// cached mapping is assembled from the resident ones: their pages move
// into the new range with mremap (page tables move; nothing is copied or
// faulted in), and only the rest is fresh. So a program that keeps
// replacing large buffers of varying sizes reuses its pages instead of
// faulting in new ones, while decay still gives them back once it idles.
// Beyond the limits mappings are unmapped, oldest first. Huge blocks grow and shrink
// with mremap, in place when the address space after them is free, else by
// moving their pages to a new aligned range: never by copying.
//
// Thread-safe: heaps of one node share a source. The cache and statistics
// are under a SpinLock; OS calls are made outside it.
//
// Cached mappings stay registered, with a header of kind kCached (or
// decommitted, reading as zeros: no valid magic), so a stale pointer into
// one is reported as invalid rather than mistaken for a live block.
//
// Decay (mem/decay.h): a cached mapping keeps its pages for the decay delay
// (a mapping reused within it costs no page faults), then its pages go back
// to the OS and it stays cached as address space, known to read as zeros
// (the next user's calloc skips the memset). The pages are given back
// outside the lock: the expired entries leave the cache for that time, so
// no other thread can take or evict them meanwhile.
#pragma once

#include <atomic>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <new>

#include "base/bits.h"
#include "base/check.h"
#include "base/report.h"
#include "ds/region_registry.h"
#include "mem/config.h"
#include "mem/decay.h"
#include "mem/hardening.h"
#include "mem/segment.h"
#include "sync/spin_lock.h"

namespace hpcalloc {

template <HeapConfig Config>
struct SegmentRegistryGeometry {
  static constexpr unsigned kSlotShift = Config::kSegmentShift;
  static constexpr unsigned kAddressBits = Config::kAddressBits;
  static constexpr unsigned kRootBits = Config::kRegistryRootBits;
};

// The registry's memory orders: RegionRegistryOrders, unless a test's Config
// names others as RegistryOrders (tsan/region_registry_stress.cpp runs the
// memory sources over deliberately weakened orders that way, to show its
// check catches them). Production configs never name it.
template <HeapConfig Config>
struct SegmentRegistryOrders {
  using type = RegionRegistryOrders;
};
template <HeapConfig Config>
requires requires { typename Config::RegistryOrders; }
struct SegmentRegistryOrders<Config> {
  using type = typename Config::RegistryOrders;
};

template <HeapConfig Config>
using SegmentRegistry =
    RegionRegistry<SegmentHeader, typename Config::Sync, typename Config::Pal,
                   SegmentRegistryGeometry<Config>, typename SegmentRegistryOrders<Config>::type>;

// Reports the first NUMA placement failure (mbind refused) of the sources
// that share it, as one line to its sink; later failures are only counted
// (SourceStats::bind_failures, migrate_failures): the memory is still
// served, only its placement is not what was asked for.
class PlacementWarning {
 public:
  using Sink = void (*)(const ReportLine& line);
  constexpr explicit PlacementWarning(Sink sink) : sink_(sink) {}

  void failed(const char* call, unsigned node, int error) {
    // Relaxed: only "exactly one report" matters, no data is published.
    if (reported_.exchange(true, std::memory_order_relaxed)) return;
    ReportLine line;
    line.text(call).text(" to NUMA node ").dec(node).text(" failed (errno ").dec(error);
    line.text("): memory is served without that placement; later failures are only counted");
    sink_(line);
  }
  bool reported() const { return reported_.load(std::memory_order_relaxed); }

 private:
  Sink sink_;
  std::atomic<bool> reported_{false};
};

// HPCALLOC_THP: transparent huge pages for hpcalloc's mappings (segments
// are 2 MiB-aligned 2 MiB ranges, so each can be one huge page; huge
// blocks' mappings are whole numbers of them).
enum class ThpMode : std::uint8_t {
  kDefault,  // no advice: the system's setting decides
  kNever,    // MADV_NOHUGEPAGE on every mapping
  kMadvise,  // MADV_HUGEPAGE on huge blocks' mappings; segments as the system decides
  kAlways,   // MADV_HUGEPAGE on every mapping, segments included
};

// The user's return-to-OS policy for one source.
struct SourceLimits {
  std::size_t cache_max_block = std::size_t{32} << 20;  // larger mappings are unmapped at once
  std::size_t cache_max_total = std::size_t{64} << 20;  // bytes kept mapped in the cache
  // How long a cached mapping (and a heap's free memory) keeps its pages:
  // milliseconds, kDecayAtOnce (0) or kDecayNever (-1). See mem/decay.h.
  std::int64_t decay_ms = kDefaultDecayMs;
  NumaPolicy numa_policy = NumaPolicy::kOff;
  PlacementWarning* placement_warning = nullptr;  // reports the first bind failure
  ThpMode thp = ThpMode::kDefault;
  // HPCALLOC_THP_SPLIT: decay may give back part of a segment advised huge.
  bool thp_split = false;

  // Whether decay (and a thread's exit) may give back parts of segments:
  // under HPCALLOC_THP=always a segment is one huge page, which giving
  // back one run or one chunk's pages would split (the kernel then backs
  // the rest with small pages), so only whole cached mappings decay there,
  // unless the user allows the split. malloc_trim gives everything back.
  bool partial_decay() const { return thp != ThpMode::kAlways || thp_split; }
};

struct SourceStats {
  std::size_t mapped_bytes = 0;  // everything this source has mapped, cache included
  std::size_t cached_bytes = 0;
  std::size_t cached_mappings = 0;
  std::size_t cache_hits = 0;
  std::size_t cache_misses = 0;
  std::size_t os_reserves = 0;
  std::size_t os_releases = 0;
  std::size_t remaps_in_place = 0;
  std::size_t remaps_moved = 0;
  std::size_t cache_assembled_bytes = 0;  // cached pages moved into a larger mapping, ever
  std::size_t cache_grown_bytes = 0;      // cached pages a huge block grew into (realloc), ever
  std::size_t bind_failures = 0;
  std::size_t migrated_in = 0;            // mappings moved here from another node's source
  std::size_t migrate_failures = 0;       // of those, mappings whose pages could not all move
  std::size_t guard_failures = 0;         // huge blocks served without their guard page
  std::size_t cached_resident_bytes = 0;  // of cached_bytes, those whose pages are resident
  std::size_t decayed_bytes = 0;          // given back to the OS by decay (cache and heaps), ever
  std::size_t decay_events = 0;           // ranges given back by decay (count)
  std::size_t trimmed_bytes = 0;          // given back to the OS by malloc_trim, ever

  SourceStats& operator+=(const SourceStats& o) {
    mapped_bytes += o.mapped_bytes;
    cached_bytes += o.cached_bytes;
    cached_mappings += o.cached_mappings;
    cache_hits += o.cache_hits;
    cache_misses += o.cache_misses;
    os_reserves += o.os_reserves;
    os_releases += o.os_releases;
    remaps_in_place += o.remaps_in_place;
    remaps_moved += o.remaps_moved;
    cache_assembled_bytes += o.cache_assembled_bytes;
    cache_grown_bytes += o.cache_grown_bytes;
    bind_failures += o.bind_failures;
    migrated_in += o.migrated_in;
    migrate_failures += o.migrate_failures;
    guard_failures += o.guard_failures;
    cached_resident_bytes += o.cached_resident_bytes;
    decayed_bytes += o.decayed_bytes;
    decay_events += o.decay_events;
    trimmed_bytes += o.trimmed_bytes;
    return *this;
  }
};

template <HeapConfig Config>
class MemorySource {
 public:
  using Pal = typename Config::Pal;
  using Sync = typename Config::Sync;
  using Registry = SegmentRegistry<Config>;
  static constexpr std::size_t kSegmentSize = std::size_t{1} << Config::kSegmentShift;

  MemorySource(Pal& pal, Registry& registry, unsigned node, const SourceLimits& limits)
      : pal_(pal), registry_(registry), node_(node), limits_(limits), schedule_(limits.decay_ms) {}
  MemorySource(const MemorySource&) = delete;
  MemorySource& operator=(const MemorySource&) = delete;
  ~MemorySource() { trim(); }

  unsigned node() const { return node_; }
  const SourceLimits& limits() const { return limits_; }
  std::size_t page_size() const { return pal_.page_size(); }

  // One segment for `owner`, header initialised and registered; nullptr with
  // errno = ENOMEM when the OS has no memory (or the registry no table).
  SegmentHeader* acquire_segment(SegmentKind kind, void* owner) {
    SegmentHeader* header =
        acquire_mapping(kSegmentSize, kSegmentSize, kSegmentSize, 0, /*huge_block=*/false);
    if (header == nullptr) return nullptr;
    header->set_owner(kind, owner);
    header->huge_block = nullptr;
    header->huge_size = 0;
    header->align_shift = 0;
    return header;
  }

  // A huge block of at least `bytes` at an address aligned to `alignment` (a
  // power of two), in its own mapping; usable size rounded up to pages. The
  // mapping starts with the header's page; the page right below the block
  // is a guard page (inaccessible), so an underflow of the block faults
  // instead of overwriting the header. A guard that cannot be set (the
  // process is at its mapping limit: each guard splits the mapping in
  // three) is counted (SourceStats::guard_failures) and the block is
  // served without it. A cached mapping keeps its guard, so a huge block
  // reusing it at the same offset (the common case) costs no system call.
  SegmentHeader* acquire_huge(std::size_t bytes, std::size_t alignment, void* owner) {
    const std::size_t offset = huge_offset(alignment);
    std::size_t usable = 0;
    std::size_t map_size = 0;
    if (!huge_sizes(bytes, offset, &usable, &map_size)) return nullptr;
    const std::size_t guard = offset - pal_.page_size();
    SegmentHeader* header =
        acquire_mapping(map_size, alignment, offset, guard, /*huge_block=*/true);
    if (header == nullptr) return nullptr;
    header->set_owner(SegmentKind::kHuge, owner);
    header->huge_block = reinterpret_cast<char*>(header) + offset;
    header->huge_size = usable;
    header->align_shift = static_cast<std::uint8_t>(log2_floor(alignment));
    if (!header->guarded) {
      header->guarded =
          pal_.protect(reinterpret_cast<char*>(header) + guard, pal_.page_size(), false);
      if (!header->guarded) count(&SourceStats::guard_failures);
    }
    return header;
  }

  // Gives back any mapping this source handed out or was handed over
  // (segment or huge): into the cache within the limits, else unmapped. A
  // mapping whose pages are on another node (a failed hand_over) is always
  // unmapped: the cache only holds this node's memory.
  void release_segment(SegmentHeader* header);

  // A heap moving to another node (hpc_numa_rebind with migration) hands
  // each of its live mappings to `to`: the pages move to `to`'s node (mbind
  // MPOL_MF_MOVE) and the mapping is accounted to `to` from now on, which
  // it is given back to. false when the pages could not all be moved: the
  // header keeps this node, so `to` will unmap it rather than cache it.
  bool hand_over(SegmentHeader* header, MemorySource& to);

  // The node a live mapping's pages were placed on (see hand_over); any
  // thread may ask while the owner migrates.
  static unsigned node_of(SegmentHeader* header) { return header->node(); }

  // Resizes a huge block to hold `new_bytes`: in place (taking in the
  // cached mapping after it, or by mremap) or by moving its pages, into a
  // resident cached mapping when there is one (then `header` is updated to
  // the new header; the block's offset and alignment are kept). false when
  // the OS refuses, the block unchanged (its mapping may have taken in the
  // cached neighbour): the caller falls back to allocate-copy-free.
  // memory_source_resize.h.
  bool resize_huge(SegmentHeader*& header, std::size_t new_bytes);

  // Gives the pages of a range inside a live segment back to the OS, and
  // takes them again (small runs that are retired, see SmallRuns).
  bool decommit(void* p, std::size_t bytes) { return pal_.decommit(p, bytes); }
  bool commit(void* p, std::size_t bytes) { return pal_.commit(p, bytes); }
  // Makes a range inside a live segment inaccessible or accessible again
  // (the secure flavour's guard pages; the Pal's contract).
  bool protect(void* p, std::size_t bytes, bool accessible) {
    return pal_.page_size() == kGuardPageBytes && pal_.protect(p, bytes, accessible);
  }

  // Unmaps every cached mapping.
  void trim();

  // The clock decay runs on (Pal::now_ms()).
  std::uint64_t now_ms() const { return pal_.now_ms(); }
  // Gives back the pages of cached mappings whose delay has passed at
  // `now_ms`, if a pass is due (any thread; cheap when none is).
  void decay(std::uint64_t now_ms) {
    if (now_ms >= due_hint_.load(std::memory_order_relaxed)) decay_cache(now_ms);
  }
  // Counts pages a heap gave back by decay (small runs, medium chunks) or
  // by a trim, so the statistics have them next to the cache's.
  void count_decayed(std::size_t bytes) {
    LockGuard guard(lock_);
    stats_.decayed_bytes += bytes;
    ++stats_.decay_events;
  }
  void count_trimmed(std::size_t bytes) { count(&SourceStats::trimmed_bytes, bytes); }

  // malloc_trim() for the heaps of other threads: each heap of this source
  // gives back its free pages at its next decay tick after a request
  // (ThreadHeap::decay_tick). Relaxed: the count carries no data, and a
  // heap that sees it a tick late only trims a tick late.
  void request_trim() { trim_requests_.fetch_add(1, std::memory_order_relaxed); }
  unsigned trim_requests() const { return trim_requests_.load(std::memory_order_relaxed); }

  // fork() (api/fork_handlers.h): the prepare handler takes the lock so no
  // cache update is half done in the child, waiting for it, or only trying
  // when this thread already holds one of the allocator's locks
  // (held_by_caller_for_fork: a fork from a signal handler that interrupted
  // it); whoever took it releases it after.
  void lock_for_fork() { lock_.lock(); }
  bool try_lock_for_fork() { return lock_.try_lock(); }
  bool held_by_caller_for_fork() const { return lock_.held_by_caller(); }
  void unlock_after_fork() { lock_.unlock(); }
  // The child, when the prepare did not take the lock: the cache may be
  // half-updated, so forget it (its mappings leak in the child, unused) and
  // start unlocked.
  void reset_in_child_after_fork() {
    new (&lock_) SpinLock<Sync>();
    cache_count_ = 0;
    stats_.cached_bytes = 0;
    stats_.cached_mappings = 0;
    stats_.cached_resident_bytes = 0;
    schedule_.passed(0);
    due_hint_.store(kNothingDue, std::memory_order_relaxed);
  }

  SourceStats stats() const {
    LockGuard guard(lock_);
    return stats_;
  }

 private:
  struct CacheEntry {
    char* base;
    std::size_t size;
    bool zeroed;             // decommitted: every byte reads as zero
    std::size_t guard;       // offset of a guard page kept from a huge block; 0: none
    std::uint64_t freed_ms;  // when it entered the cache (decay)
    bool huge_pages;         // advised MADV_HUGEPAGE (SegmentHeader::huge_pages)
  };

  // A huge block of `bytes` at `offset` in its mapping: its usable size (in
  // pages) and the mapping's (in segments). false, errno = ENOMEM, when
  // they overflow.
  bool huge_sizes(std::size_t bytes, std::size_t offset, std::size_t* usable,
                  std::size_t* map_size) const {
    if (checked_align_up(bytes == 0 ? 1 : bytes, pal_.page_size(), usable) &&
        checked_add(*usable, offset, map_size) &&
        checked_align_up(*map_size, kSegmentSize, map_size)) {
      return true;
    }
    errno = ENOMEM;
    return false;
  }

  // Where a huge block starts in its mapping: past the header's page and
  // the guard page, at the alignment asked.
  std::size_t huge_offset(std::size_t alignment) const {
    const std::size_t least = 2 * pal_.page_size();
    if (alignment <= least) return least;
    return alignment <= kSegmentSize ? alignment : kSegmentSize;
  }

  // A mapping with its header initialised; `guard`: where the caller wants
  // a guard page (0: nowhere), for a cached mapping that already has one
  // there (header->guarded then says so; any other guard it has is lifted).
  SegmentHeader* acquire_mapping(std::size_t map_size, std::size_t alignment, std::size_t offset,
                                 std::size_t guard, bool huge_block);
  // The huge-page advice HPCALLOC_THP wants for a mapping (see ThpMode):
  // true for MADV_HUGEPAGE. `advise_new`: whether a new mapping gets a call
  // (under madvise a segment gets none; a cached huge block's mapping
  // reused as a segment gets MADV_NOHUGEPAGE, the only way to undo one).
  bool wants_huge_pages(bool huge_block, bool* advise_new) const {
    const ThpMode mode = limits_.thp;
    *advise_new = mode == ThpMode::kNever || mode == ThpMode::kAlways ||
                  (mode == ThpMode::kMadvise && huge_block);
    return mode == ThpMode::kAlways || (mode == ThpMode::kMadvise && huge_block);
  }

  char* reserve_mapping(std::size_t map_size, std::size_t alignment, std::size_t offset);
  // The closest-fitting cached mapping of at least map_size bytes, taken
  // out of the cache (resident_only: one whose pages were not given back).
  bool take_from_cache(std::size_t map_size, CacheEntry* out, bool resident_only = false);
  // For resize_huge (memory_source_resize.h).
  bool absorb_cached_neighbour(SegmentHeader* header, std::size_t new_map);
  char* cut_for_growth(CacheEntry entry, std::size_t map_size, bool huge_pages);
  // A miss that cached pages can still serve (memory_source_impl.h).
  SegmentHeader* assemble_from_cache(std::size_t map_size, bool huge_block);
  // Moves resident cached mappings, largest first, into [target + from,
  // target + map_size) (registered, reserved), over its fresh pages; the
  // bytes filled. What a piece does not give stays cached.
  std::size_t fill_from_cache(char* target, std::size_t from, std::size_t map_size);
  std::size_t resident_cached_bytes() const {
    LockGuard guard(lock_);
    return stats_.cached_resident_bytes;
  }
  // The part of a resident cached mapping that a request did not take
  // stays cached, under a header of its own (nothing else refers to it).
  void keep_cached(char* base, std::size_t size, std::uint64_t freed_ms, bool huge_pages);
  // Puts entries back (the newest), unmapping what the limits evict.
  void insert_all(const CacheEntry* entries, unsigned n);
  // Under the lock: appends an entry (the newest), evicting the oldest
  // into `evicted` while the limits need room.
  void insert_locked(const CacheEntry& entry, CacheEntry* evicted, unsigned* evicted_count);
  void remove_locked(unsigned index);
  void decay_cache(std::uint64_t now_ms);
  void unmap(char* base, std::size_t size);
  void bind(char* base, std::size_t size);
  void count(std::size_t SourceStats::*field, std::size_t delta = 1) {
    LockGuard guard(lock_);
    stats_.*field += delta;
  }

  Pal& pal_;
  Registry& registry_;
  const unsigned node_;
  const SourceLimits limits_;
  mutable SpinLock<Sync> lock_;
  CacheEntry cache_[Config::kMappingCacheEntries] = {};
  unsigned cache_count_ = 0;  // entries [0, count) are used, oldest first
  SourceStats stats_;
  DecaySchedule schedule_;  // of the cache's resident entries, under the lock
  // schedule_.due_ms(), readable without the lock: decay() returns at once
  // while it is in the future. Relaxed: a stale value only delays or
  // repeats the check, which decay_cache() makes again under the lock.
  std::atomic<std::uint64_t> due_hint_{kNothingDue};
  std::atomic<unsigned> trim_requests_{0};
};

}  // namespace hpcalloc

#include "mem/memory_source_impl.h"
#include "mem/memory_source_resize.h"

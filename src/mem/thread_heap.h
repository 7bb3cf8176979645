// ThreadHeap: everything one owning thread allocates from. It composes the
// small runs, the medium free lists and the huge blocks of its memory source,
// and implements the malloc family on them for blocks it owns:
//   malloc/calloc/realloc/free/memalign/usable_size with glibc's results
//   (errno = ENOMEM on failure, realloc(p, 0) frees and returns nullptr,
//   calloc overflow caught, 16-byte alignment for every block).
// Reallocation stays in place where it can: a small block within its class
// (down to half), a medium block by merging with its free neighbour, a huge
// block by mremap (moving pages, never copying).
// One thread uses a heap at a time. Other threads give its blocks back
// through its RemoteFrees (mem/remote_frees.h, which states the protocol):
// a heap batches the blocks it frees for another heap per owner and sends
// each batch in a carrier, one of its own small blocks listing the
// pointers; the owner drains its queue on its slow paths (a cache refill, a
// medium or huge allocation, a trim) and when it is pooled or adopted,
// freeing what each carrier lists and handing the carrier straight back to
// its sender. Figures other threads may read (stats, mallinfo) are
// published in relaxed atomics by the owner on its slow paths, so they may
// lag the owner's thread cache by one batch.
//
// ASan builds (base/sanitizer.h): small and medium memory is poisoned by
// SmallRuns and MediumFreeLists while free, and leaves the heap addressable.
// A freed huge block stays poisoned in the memory source's cache when the
// platform is the production one: LinuxPal gives memory back with munmap,
// whose ASan interceptor clears the poison, whereas SimPal recycles its arena
// without telling ASan, so poison left there would be reported at the next
// header write. Every mapping taken from the source is unpoisoned first.
#pragma once

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "base/bits.h"
#include "base/check.h"
#include "base/sanitizer.h"
#include "ds/intrusive_list.h"
#include "mem/config.h"
#include "mem/medium_cache.h"
#include "mem/medium_free_lists.h"
#include "mem/memory_source.h"
#include "mem/remote_frees.h"
#include "mem/segment.h"
#include "mem/size_classes.h"
#include "mem/small_runs.h"
#include "mem/statistics.h"
#include "pal/default_pal.h"

namespace hpcalloc {

template <HeapConfig Config>
class ThreadHeap {
 public:
  using Source = MemorySource<Config>;
  using Registry = SegmentRegistry<Config>;
  using Reporter = typename Config::Reporter;
  using Classes = SizeClasses<Config::kSmallMax>;
  static constexpr std::size_t kSegmentSize = std::size_t{1} << Config::kSegmentShift;
  static constexpr std::size_t kSmallMax = Config::kSmallMax;
  static constexpr std::size_t kMediumMax = Config::kMediumMax;
  // glibc refuses requests above PTRDIFF_MAX; so do we.
  static constexpr std::size_t kMaxRequest = PTRDIFF_MAX;
  static constexpr std::size_t kMediumRegionOffset = align_up(sizeof(SegmentHeader), 16);
  // The secure flavour's guard page at the end of a medium segment
  // (mem/hardening.h): the region stops before it.
  static constexpr std::size_t kMediumGuardBytes =
      hardening_of<Config>.guard_medium ? kGuardPageBytes : 0;
  static constexpr std::size_t kMediumRegionBytes =
      kSegmentSize - kMediumRegionOffset - kMediumGuardBytes;
  using Medium = MediumFreeLists<Reporter, kSegmentSize>;
  using MediumCacheT = MediumCache<kSmallMax>;
  static_assert(MediumCacheT::kMaxBytes <= kMediumMax, "cached classes are medium sizes");
  // The secure flavour's canary after each small block (0 by default), and
  // the largest request a small block takes.
  static constexpr std::size_t kCanaryBytes = SmallRuns<Config, Source>::kCanaryBytes;
  // Freed medium blocks wait in a quarantine of their own (secure flavour),
  // zeroed when zero_on_free; SmallBlockHardening keeps the FIFO.
  using MediumQuarantine = SmallBlockHardening<hardening_of<Config>>;
  static constexpr bool kMediumQuarantine = MediumQuarantine::kQuarantine;
  static constexpr bool kZeroOnFree = hardening_of<Config>.zero_on_free;
  static constexpr std::size_t kSmallMaxRequest = kSmallMax - kCanaryBytes;
  // See the top comment: whether a cached huge block may stay poisoned.
  static constexpr bool kPoisonCachedHuge = std::is_same_v<typename Config::Pal, DefaultPal>;
  // Blocks a batch of remote frees holds (config.h).
  static constexpr unsigned kRemoteBatch = kRemoteBatchOf<Config>;
  static_assert(RemoteFrees<typename Config::Sync, kRemoteBatch>::kMaxCarrierWords *
                        sizeof(void*) ==
                    kCarrierBytesOf<Config>,
                "a full batch's carrier fits a carrier slot");

  // What every heap of a pool is built with besides its source.
  struct Context {
    Registry& registry;
    Reporter& reporter;
  };

  ThreadHeap(const Context& context, Source& source)
      : ThreadHeap(context.registry, source, context.reporter) {}
  ThreadHeap(Registry& registry, Source& source, Reporter& reporter)
      : small_(source, reporter, this),
        remote_(this),
        registry_(registry),
        source_(&source),
        reporter_(reporter),
        medium_(reporter) {
    published_node_.store(source.node(), std::memory_order_relaxed);
    trim_requests_seen_ = source.trim_requests();
    partial_decay_ = source.limits().partial_decay();
    const std::int64_t decay_ms = partial_decay_ ? source.limits().decay_ms : kDecayNever;
    small_.set_decay_ms(decay_ms);
    medium_schedule_ = DecaySchedule(decay_ms);
    small_.set_refill_hook([](void* owner) {
      auto* heap = static_cast<ThreadHeap*>(owner);
      heap->drain_remote(Returns::kHold);
      heap->decay_tick();
    });
  }
  ThreadHeap(const ThreadHeap&) = delete;
  ThreadHeap& operator=(const ThreadHeap&) = delete;
  // Gives every segment and huge block back to the source, live blocks or
  // not (a private heap's arena semantics; the process-wide heaps are pooled
  // and never destroyed).
  ~ThreadHeap();

  // Owner only (or a pooled heap under the pool's lock).
  Source& source() { return *source_; }
  const Source& source() const { return *source_; }
  // The node of source(), readable from any thread (statistics).
  unsigned node() const {
    return static_cast<unsigned>(published_node_.load(std::memory_order_relaxed));
  }

  // Moves this heap to `target` (another node's source): every segment and
  // huge block it holds is handed over (pages migrated), and new memory
  // comes from `target`. Owner only. Returns how many mappings could not be
  // moved (they stay usable; see MemorySource::hand_over).
  std::size_t migrate_to(Source& target);

  [[gnu::always_inline]] void* malloc(std::size_t size) {
    if (__builtin_expect(size <= kSmallMaxRequest, 1)) {
      return small_.allocate_for(size);
    }
    return malloc_large(size);
  }

  // malloc() when a small request's cache has a block, else nullptr with
  // nothing done (call malloc()).
  [[gnu::always_inline]] void* malloc_from_cache(std::size_t size) {
    if (__builtin_expect(size <= kSmallMaxRequest, 1)) return small_.allocate_cached_for(size);
    return nullptr;
  }

  void* calloc(std::size_t count, std::size_t size);
  void* realloc(void* p, std::size_t size);
  // alignment: a power of two (callers validate and report EINVAL).
  // `call_name`: the aligned call the program made, named in reports.
  void* memalign(std::size_t alignment, std::size_t size, const char* call_name = "memalign()");

  // Frees a block of any heap: this heap's own locally, another heap's
  // through that heap's remote-free queue. Reports anything else, naming
  // `operation` (the call the program made).
  [[gnu::always_inline]] void free(void* p, const char* operation = "free()") {
    if (p == nullptr) return;
    SegmentHeader* segment = registry_.lookup(p);
    if (__builtin_expect(segment == nullptr, 0)) {
      reporter_.report(HeapError::kInvalidPointer, operation, p);
      return;
    }
    free_in_segment(segment, p, operation);
  }

  // The common case of free(): a small block of one of this heap's tagged
  // segments (mem/segment_tags.h) that fits in its cache. Needs neither
  // the registry nor the segment header. false: nothing done, and `p` may
  // be anything (null, foreign, another heap's): call free().
  [[gnu::always_inline]] bool try_free_fast(void* p) {
    return small_.in_tagged_segment(p) &&
           small_.try_deallocate_fast(SmallRuns<Config, Source>::tagged_segment_of(p), p);
  }

  // free() once the caller has looked up the segment (non-null).
  [[gnu::always_inline]] void free_in_segment(SegmentHeader* segment, void* p,
                                              const char* operation = "free()") {
    if (__builtin_expect(segment->small_owner() == this, 1)) {
      small_.retag(segment);  // the next free into it takes the fast path
      small_.deallocate(segment, p, operation);
      return;
    }
    free_other(segment, p, operation);
  }

  // A thread without a heap gives back one of this heap's blocks
  // (lock-free; any thread, any time, also while the heap is pooled).
  // Returns the pushed block's owner if it is pooled (the caller has it
  // drained), else nullptr.
  ThreadHeap* remote_free(void* p) {
    return static_cast<ThreadHeap*>(remote_.push_block(p).unattended_owner);
  }

  // Pushes the blocks this heap freed for another heap and still holds.
  // Without `may_allocate` they travel without a carrier (a heap being torn
  // down must not put its own blocks in flight).
  void flush_remote_batch(bool may_allocate = true) {
    if (!remote_.batch_empty()) push_remote_batch(may_allocate);
  }

  // Takes back every block other threads freed to this heap. kHold (the
  // owner's routine drains) keeps a few of other heaps' carriers to send
  // home together; kPushAll (trim, pooling, adoption, tests) sends every
  // carrier held home (remote_frees.h, "Held returns").
  void drain_remote(Returns returns = Returns::kPushAll);

  // Its pool's side (heap_pool.h): who drains this heap while it is pooled
  // (the stand-in, called when this heap sends frees to a pooled heap), and
  // the handshake that marks it pooled (true: frees already wait) or owned.
  void set_stand_in(void (*stand_in)(void* pool, ThreadHeap* heap), void* pool) {
    stand_in_ = stand_in;
    stand_in_pool_ = pool;
  }
  bool set_unattended() { return remote_.set_unattended(); }
  void set_attended() { remote_.set_attended(); }
  // The fork child abandoned this heap: frees for it are dropped by their
  // senders (remote_frees.h, "Forsaken queues").
  void forsake() { remote_.forsake(); }
  // Has the stand-in drain `owner` if a push found it pooled.
  void after_push(const typename RemoteFrees<typename Config::Sync, kRemoteBatch>::Pushed& pushed) {
    if (__builtin_expect(pushed.unattended_owner != nullptr, 0) && stand_in_ != nullptr) {
      stand_in_(stand_in_pool_, static_cast<ThreadHeap*>(pushed.unattended_owner));
    }
  }

  // Usable bytes of a live block (0 for nullptr; 0 after a report).
  std::size_t usable_size(const void* p);
  // The same for a live small block of this heap's tagged segments, without
  // the registry; 0 for anything else (call usable_size()).
  std::size_t usable_size_fast(const void* p) const { return small_.usable_size_fast(p); }

  // Returns cached small blocks to their runs and releases spare segments;
  // with `release_cached_mappings`, also empties the memory source's cache
  // (malloc_trim). `operation` names the call in a report of a corrupted
  // cache found on the way.
  void trim(bool release_cached_mappings = true, const char* operation = "malloc_trim()") {
    trim_impl(release_cached_mappings, operation, /*give_back_pages=*/true);
  }
  // The trim of a thread's exit (HeapPool::release): caches flushed, spare
  // segments and retired runs given back, then a decay pass. Up to
  // kExitGiveBackBytes of other free pages (holes, medium chunks) stay for the delay,
  // as in a running thread: the next thread adopts this heap, often at once
  // (thread pools, a thread per request), and giving them back here only
  // to fault them in again there made a churn of short-lived threads 2.6
  // times slower (larson). Later passes come from the adopter or the
  // background thread. More than that (a thread ending a phase) goes back
  // at once, where decay may split segments (SourceLimits::partial_decay).
  void trim_at_exit();
  static constexpr std::size_t kExitGiveBackBytes = std::size_t{8} << 20;

  // realloc grows a medium block of at least kReallocToHugeMin bytes (256
  // KiB in production) that cannot grow in place into a huge block, unless
  // the heap holds kMaxGrowingHuge huge blocks already (grows_into_huge).
  static constexpr std::size_t kReallocToHugeMin = kMediumMax / 4;
  static_assert(kReallocToHugeMin < kMediumMax, "a huge block never shrinks to medium above it");
  static constexpr std::size_t kMaxGrowingHuge = 256;

  // Decay (mem/decay.h): gives back what has been free for the delay, in
  // this heap and its source's cache, if a pass is due. The slow paths call
  // it (a small refill, a medium or huge request); a cheap clock read when
  // nothing is due. Owner only.
  // It also honours a malloc_trim() made by another thread since the last
  // tick (MemorySource::request_trim): only the owner may walk its runs and
  // free lists, so a trim of other threads' heaps is a request.
  void decay_tick() {
    if (const unsigned requests = source_->trim_requests(); requests != trim_requests_seen_) {
      trim_requests_seen_ = requests;
      give_back_free_pages("malloc_trim()");
    }
    const std::uint64_t now = source_->now_ms();
    source_->decay(now);
    if (small_.decay_due(now)) {
      if (const std::size_t bytes = small_.decay(now)) source_->count_decayed(bytes);
    }
    if (medium_schedule_.due(now)) decay_medium(now);
  }

  // Readable from any thread: the counters the owner last published.
  HeapStats stats() const;
  // Owner only: publishes exact figures now (they otherwise lag by a batch).
  void publish_stats() {
    publish_small();
    publish_medium();
  }

  // The segment of `p` if this heap owns it, else nullptr (no report):
  // lets the process-wide layer route a free to its owner.
  SegmentHeader* find_segment(const void* p) const { return registry_.lookup(p); }

  // Every component's own consistency walk: the small runs and caches, and
  // the medium free lists (unless a failed check stopped them, which is
  // their reported, expected state after corruption). nullptr when all
  // hold, else what broke. For tests: O(blocks).
  const char* consistency_problem_for_testing() const {
    if (!small_.check_consistency_for_testing()) return "small runs and caches";
    if (!medium_.abandoned()) return medium_.check_consistency_for_testing();
    return nullptr;
  }
  bool check_consistency_for_testing() const {
    return consistency_problem_for_testing() == nullptr;
  }

 private:
  using Counter = typename Config::Sync::template Atomic<std::size_t>;
  // The published heap counter `kField` (mem/statistics.h).
  template <std::size_t HeapStats::*kField>
  Counter& counter() {
    return counters_[heap_counter_index(kField)];
  }
  // Owner-only update of a published figure: a relaxed load and store, no
  // read-modify-write (readers only need some recent value).
  static void add(Counter& counter, std::size_t delta) {
    counter.store(counter.load(std::memory_order_relaxed) + delta, std::memory_order_relaxed);
  }
  static void sub(Counter& counter, std::size_t delta) {
    counter.store(counter.load(std::memory_order_relaxed) - delta, std::memory_order_relaxed);
  }
  void publish_small() {
    counter<&HeapStats::small_in_use>().store(small_.out_of_bitmaps_bytes() - small_.cached_bytes(),
                                              std::memory_order_relaxed);
    counter<&HeapStats::small_segments>().store(small_.segment_count(), std::memory_order_relaxed);
  }
  void publish_medium() {
    const auto m = medium_.stats();
    // Cached medium blocks count as free (with their chunk headers).
    std::size_t cached = medium_cache_.cached_usable_bytes() +
                         medium_cache_.cached_blocks() * medium::kChunkHeaderBytes;
    if constexpr (kMediumQuarantine) {
      cached +=
          medium_quarantine_.bytes() + medium_quarantine_.blocks() * medium::kChunkHeaderBytes;
    }
    counter<&HeapStats::medium_in_use>().store(
        m.region_bytes - m.free_bytes - m.regions * medium::kRegionOverheadBytes - cached,
        std::memory_order_relaxed);
    counter<&HeapStats::medium_segments>().store(medium_segments_.size(),
                                                 std::memory_order_relaxed);
  }
  [[gnu::noinline]] void free_other(SegmentHeader* segment, void* p, const char* operation);
  // false after a report naming `operation`. `kind`: the segment's, already
  // loaded.
  bool free_owned_large(SegmentHeader* segment, SegmentKind kind, void* p,
                        const char* operation = "free()");
  // To the free lists. `own_header_checked`: p's own header passed
  // usable_size_own_header() just now (a free, not a block leaving a cache).
  void free_medium(void* p, const char* operation = "free()", bool own_header_checked = false);
  // Secure flavour: a checked medium block of `usable` bytes into the
  // quarantine; the quarantine's oldest block out (to the cache or lists);
  // whether p is a quarantined block (owner only).
  void quarantine_medium(void* p, std::size_t usable, const char* operation);
  void release_oldest_medium(const char* operation);
  bool in_medium_quarantine(const void* p) const {
    if constexpr (kMediumQuarantine) {
      return medium_quarantine_.looks_quarantined(p) && medium_quarantine_.in_quarantine(p);
    }
    return false;
  }

  // The segment of a live block of any heap, or nullptr after a report
  // naming `operation`.
  SegmentHeader* live_segment(const void* p, const char* operation) {
    SegmentHeader* segment = registry_.lookup(p);
    if (__builtin_expect(segment == nullptr || !segment->is_live(), 0)) {
      report_unowned(segment, p, operation);
      return nullptr;
    }
    return segment;
  }
  [[gnu::cold, gnu::noinline]] void report_unowned(SegmentHeader* segment, const void* p,
                                                   const char* operation) {
    const bool was_ours = segment != nullptr && segment->magic() == SegmentHeader::kMagic &&
                          segment->kind() == SegmentKind::kCached;
    reporter_.report(was_ours ? freed_block_error(operation) : HeapError::kInvalidPointer,
                     operation, p);
  }

  [[gnu::noinline]] void* malloc_large(std::size_t size);
  // Names the call the allocations made now serve, for their reports
  // (allocating_call_) for its scope.
  class AllocatingCall {
   public:
    AllocatingCall(ThreadHeap& heap, const char* call) : heap_(heap) { heap_.name_call(call); }
    ~AllocatingCall() { heap_.name_call("malloc()"); }
    AllocatingCall(const AllocatingCall&) = delete;
    AllocatingCall& operator=(const AllocatingCall&) = delete;

   private:
    ThreadHeap& heap_;
  };
  void name_call(const char* call) {
    allocating_call_ = call;
    small_.set_allocating_call(call);
  }
  // Also drains: the refill hook covers small requests.
  void* medium_allocate(std::size_t size, std::size_t alignment);
  void* huge_allocate(std::size_t size, std::size_t alignment);
  bool add_medium_segment();
  // Back to the source, its guard page lifted (secure flavour).
  void release_medium_segment(SegmentHeader* s) {
    if constexpr (kMediumGuardBytes != 0) {
      source_->protect(reinterpret_cast<char*>(s) + kSegmentSize - kMediumGuardBytes,
                       kMediumGuardBytes, true);
    }
    source_->release_segment(s);
  }
  void release_medium_region(void* region);
  // Decay of the free chunks of medium segments, segment by segment: a
  // segment's free pages go back once no chunk of it has become free for
  // the delay (SegmentHeader::freed_ms); a segment in use keeps them warm.
  // No clock read here (a medium free is frequent): the segment is marked
  // unstamped, and the next pass stamps it with its own time, which is no
  // earlier than this free.
  static constexpr std::uint64_t kUnstamped = ~std::uint64_t{0};
  void medium_freed(SegmentHeader* s) {
    if (medium_schedule_.delay_ms() == kDecayNever) return;
    s->freed_ms = kUnstamped;
    medium_schedule_.pending_unstamped();
  }
  static SegmentHeader* medium_segment_of(const void* p) {
    return reinterpret_cast<SegmentHeader*>(
        align_down(reinterpret_cast<std::uintptr_t>(p), kSegmentSize));
  }
  void trim_impl(bool release_cached_mappings, const char* operation, bool give_back_pages);
  void decay_medium(std::uint64_t now);
  // Gives back the pages of every retired run, every hole and every free
  // medium interior at once (trim); blocks in caches stay. Safe wherever
  // decay_tick is (a refill's hook included).
  void give_back_free_pages(const char* operation);
  // Gives back the free pages of medium segment s; the bytes.
  std::size_t give_back_medium_pages(SegmentHeader* s, const char* operation);
  // Usable size of p in `segment` (live), or 0 after a report naming
  // `operation` (the call the program made).
  std::size_t usable_size_in(SegmentHeader* segment, const void* p, const char* operation);
  void* realloc_by_copy(void* p, std::size_t old_usable, std::size_t size);
  // realloc's growth of a medium block into a huge one (thread_heap_impl.h).
  bool grows_into_huge(std::size_t size, std::size_t old_usable);
  void* realloc_into_huge(void* p, std::size_t old_usable, std::size_t size);

  // First: the heap's address is its small runs' (`this` of their fast
  // paths), which saves malloc an instruction computing it for a refill.
  SmallRuns<Config, Source> small_;
  // The call the allocations made now serve, for their reports: malloc()
  // but inside calloc(), realloc() and memalign(), which name themselves
  // for their whole duration (a report found on the way, such as a
  // corrupted cache, names the call the program made).
  const char* allocating_call_ = "malloc()";
  // Remote frees in and out; its queue is on a cache line of its own.
  RemoteFrees<typename Config::Sync, kRemoteBatch> remote_;
  alignas(64) Registry& registry_;
  Source* source_;  // changes only in migrate_to()
  Reporter& reporter_;
  // One per heap counter, in kHeapCounters' order (through counter<>()):
  // written by the owner only, read by anyone (stats()). Atomics start at 0.
  Counter counters_[kHeapCounterCount];
  Counter published_node_{0};
  Medium medium_;
  MediumCache<kSmallMax> medium_cache_;
  [[no_unique_address]] MediumQuarantine medium_quarantine_{process_secret(), &medium_cache_};
  using SegmentList = IntrusiveList<SegmentHeader, &SegmentHeader::link>;
  SegmentList medium_segments_;
  DecaySchedule medium_schedule_{kDecayNever};
  static constexpr unsigned kMediumRequestsPerTick = 8;
  unsigned medium_ticks_left_ = 1;   // the first medium request ticks
  unsigned trim_requests_seen_ = 0;  // the source's trim_requests() at the last tick
  bool partial_decay_ = true;        // the source's limits().partial_decay()
  SegmentList huge_blocks_;          // the header of each live huge block
  void (*stand_in_)(void* pool, ThreadHeap* heap) = nullptr;
  void* stand_in_pool_ = nullptr;
  void push_remote_batch(bool may_allocate);
  // Frees a block of this heap that another thread gave back; false after
  // a report.
  bool drain_one(void* p);
  // Whether p lies past a medium segment's header and a chunk header: the
  // chunk checks read below p, which must stay inside the region (a huge
  // block freed twice after its mapping became a medium segment points at
  // the segment's first byte).
  static bool in_medium_region(const SegmentHeader* segment, const void* p) {
    return static_cast<const char*>(p) >=
           reinterpret_cast<const char*>(segment) + kMediumRegionOffset + medium::kChunkHeaderBytes;
  }
  // A carrier of this heap, home from the heap it went to.
  void free_own_carrier(void* carrier);
  // RemoteFrees' two views of this heap: the sending side may allocate a
  // carrier, the draining side can only free (see remote_frees.h).
  struct CarrierSource;
  struct DrainReceiver;
};

}  // namespace hpcalloc

#include "mem/thread_heap_impl.h"
#include "mem/thread_heap_realloc.h"

// MediumFreeLists: the medium-size allocator. It carves blocks out of regions
// its owner hands it (a medium segment's payload in production, any
// 16-byte-aligned buffer in tests) with boundary-tagged chunks (medium_chunk.h)
// kept in segregated free lists: dlmalloc's small bins, but with a bitmap of
// non-empty bins so the search for a fitting bin is a count-trailing-zeros.
//
// Allocation takes a fitting chunk and splits off the tail when it is at
// least kMinChunkBytes; free merges with free neighbours. A region whose
// chunks all merge back into one is detached and returned to the caller, who
// gives the segment back to its memory source (or re-adds it). Aligned
// blocks split their leading gap off as an ordinary free chunk, so every
// pointer handed out is a plain chunk and free() needs no alignment marker.
//
// Invariants between calls: every free chunk of an attached region is in
// exactly the bin bin_index(size) says; a bin's bit is set iff the bin is
// non-empty; stats() agrees with the chunks; an entirely free region is never
// in the lists unless it was just added. Not thread-safe: one heap owns it.
// Never allocates.
//
// Misuse (medium_chunk.h has the seals): every header is checked before its
// size or boundary tag is used, every free chunk's links (by their check
// word) before they are followed or rewritten, and an unlink checks both
// neighbours' links back to the chunk (glibc's safe unlinking) and the bin
// head; so does a bin() the head it goes in front of. A check that fails is
// reported (kCorruptedChunkHeader or kCorruptedFreeList, naming the call
// being served) and the lists are abandoned: nothing is allocated from or
// freed into them again (allocate returns nullptr and abandoned() says
// why: the caller serves medium requests elsewhere), so a forged link is
// never followed and no block is handed out twice. Live blocks stay valid.
//
// ASan builds (base/sanitizer.h): a free chunk's user bytes past its bin
// links are poisoned; headers, links, region records and sentinels never are.
// A block is unpoisoned up to its usable size when it is handed out, and a
// region is unpoisoned whole when it is added and when it goes back to the
// caller. Headers that merging absorbs end up poisoned, so reading one (a
// pointer freed twice) goes through load_unpoisoned.
#pragma once

#include <algorithm>
#include <climits>
#include <cstddef>
#include <cstdint>
#include <new>

#include "base/bits.h"
#include "base/check.h"
#include "base/report.h"
#include "base/sanitizer.h"
#include "base/secret.h"
#include "mem/heap_errors.h"
#include "mem/medium_chunk.h"

namespace hpcalloc {

// kMaxRegionBytes bounds the regions add_region accepts, so sizes fit the
// headers' 32-bit fields and the bin array is sized at compile time.
template <HeapErrorReporter Reporter, std::size_t kMaxRegionBytes>
class MediumFreeLists {
  using Chunk = medium::Chunk;
  using FreeLinks = medium::FreeLinks;
  using RegionRecord = medium::RegionRecord;

 public:
  static_assert(kMaxRegionBytes >= medium::kMinRegionBytes, "a region holds one chunk");
  static_assert(kMaxRegionBytes % medium::kChunkAlignment == 0);
  static_assert(kMaxRegionBytes <= (std::size_t{1} << 31), "sizes fit 32-bit header fields");

  // The largest chunk, and the largest request, a region can ever satisfy.
  static constexpr std::size_t kMaxChunkBytes = kMaxRegionBytes - medium::kRegionOverheadBytes;
  static constexpr std::size_t kMaxUsableBytes = kMaxChunkBytes - medium::kChunkHeaderBytes;
  static constexpr unsigned kBinCount = medium::bin_index(kMaxChunkBytes) + 1;

  struct [[nodiscard]] FreeResult {
    // Start of a region that became entirely free and is no longer known to
    // these lists (its memory is the caller's again), or nullptr.
    void* emptied_region;
  };

  struct Stats {
    std::size_t regions;       // attached regions
    std::size_t region_bytes;  // their total size, overhead included
    std::size_t free_chunks;   // chunks in the bins
    std::size_t free_bytes;    // their total size, headers included
  };

  // Headers are sealed with a key of the process (every heap's lists must
  // check every heap's live headers: a cross-thread realloc), links and
  // region records with keys of these lists.
  explicit MediumFreeLists(Reporter& reporter, std::uint64_t secret = process_secret())
      : reporter_(reporter),
        keys_(medium::ChunkKeys::derive(secret)),
        link_key_(derive_key(secret, this, 0x666c696e6b)),
        link_check_key_(derive_key(secret, this, 0x666c636865636b)) {}
  MediumFreeLists(const MediumFreeLists&) = delete;
  MediumFreeLists& operator=(const MediumFreeLists&) = delete;

  // Formats [begin, begin + bytes) as one free chunk and attaches it. begin
  // must be 16-byte aligned; bytes is rounded down to 16 and must lie in
  // [kMinRegionBytes, kMaxRegionBytes]. A bad region is a bug in the caller:
  // fatal. Not after abandonment (the caller checks abandoned()).
  void add_region(void* begin, std::size_t bytes) {
    bytes = align_down(bytes, medium::kChunkAlignment);
    if (!is_aligned(begin, medium::kChunkAlignment) || bytes < medium::kMinRegionBytes ||
        bytes > kMaxRegionBytes) {
      fatal("MediumFreeLists::add_region: misaligned region or size out of range");
    }
    HPCALLOC_ASSERT(!abandoned_);
    // Re-adding an attached region would reformat it under live blocks.
    HPCALLOC_ASSERT(!overlaps_some_region(begin, bytes));
    unpoison_memory(begin, bytes);
    if (regions_ != nullptr && !regions_->tag_ok(keys_)) {
      corrupted(HeapError::kCorruptedChunkHeader, regions_);
      return;
    }
    auto* region = new (begin) RegionRecord{regions_, nullptr, bytes, 0};
    region->seal(keys_);
    if (regions_ != nullptr) {
      regions_->prev = region;
      regions_->seal(keys_);
    }
    regions_ = region;
    ++stats_.regions;
    stats_.region_bytes += bytes;
    const std::size_t chunk_bytes = bytes - medium::kRegionOverheadBytes;
    Chunk* first =
        make_chunk(region->first_chunk(), chunk_bytes, 0, medium::kStateFree, medium::kFlagFirst);
    make_chunk(region->sentinel(), 0, chunk_bytes, medium::kStateInUse, medium::kFlagSentinel);
    poison_memory(first->at_offset(medium::kMinChunkBytes), chunk_bytes - medium::kMinChunkBytes);
    bin(first);
  }

  // Detaches a region that is entirely free (e.g. one added but never used).
  // Returns false, changing nothing, if begin is not an attached region or
  // part of it is allocated.
  bool remove_region(void* begin) {
    auto* region = static_cast<RegionRecord*>(begin);
    if (abandoned_ || region->tag == 0 || !region->tag_ok(keys_)) return false;
    Chunk* first = region->first_chunk();
    if (!first->tag_ok(keys_) || !first->is_free() || !first->next()->is_sentinel()) {
      return false;
    }
    operation_ = "malloc_trim()";
    if (!unbin(first) || !detach(region)) return false;
    unpoison_memory(region, region->bytes);
    return true;
  }

  // A block of at least n usable bytes, 16-byte aligned, or nullptr when no
  // free chunk fits (the caller adds a region and retries) or the lists are
  // abandoned.
  // `operation`: the call served, which a report names.
  void* allocate(std::size_t n, const char* operation = "malloc()") {
    const std::size_t need = chunk_bytes_for(n);
    if (need == 0 || abandoned_) return nullptr;
    operation_ = operation;
    Chunk* c =
        find_free_chunk(need, [need](const Chunk* candidate) { return candidate->size >= need; });
    if (c == nullptr || !unbin(c, /*header_checked=*/true)) return nullptr;
    return carve(c, need);
  }

  // Like allocate, aligned to a power of two (up to kMaxRegionBytes; 16 or
  // less is plain allocate, anything else nullptr). The block comes from a
  // chunk big enough for the worst leading gap (under alignment +
  // kMinChunkBytes: see aligned_gap) or from a smaller one that happens to
  // fit; the gap becomes an ordinary free chunk.
  void* allocate_aligned(std::size_t n, std::size_t alignment, const char* operation = "malloc()") {
    if (alignment <= medium::kChunkAlignment) return allocate(n, operation);
    if (!is_pow2(alignment) || alignment > kMaxRegionBytes || abandoned_) return nullptr;
    const std::size_t need = chunk_bytes_for(n);
    if (need == 0) return nullptr;
    operation_ = operation;
    const std::size_t worst = std::min(need + alignment + medium::kMinChunkBytes, kMaxChunkBytes);
    Chunk* c = find_free_chunk(worst, [need, alignment](const Chunk* candidate) {
      return candidate->size >= aligned_gap(candidate, alignment) + need;
    });
    if (c == nullptr || !unbin(c, /*header_checked=*/true)) return nullptr;
    const std::size_t gap = aligned_gap(c, alignment);
    if (gap != 0) {
      // c keeps its prev_size and flags and stays free as the gap chunk; its
      // predecessor is not free (c was), so it needs no merging.
      unpoison_memory(c->at_offset(gap), medium::kMinChunkBytes);
      Chunk* block = make_chunk(c->at_offset(gap), c->size - gap, gap, medium::kStateFree, 0);
      resize(c, gap);
      block->next()->set_prev_size(block->size, keys_);
      bin(c);
      c = block;
    }
    return carve(c, need);
  }

  // Frees a block from allocate*(). A free block reports kDoubleFree, and
  // anything else that is not a live block kInvalidPointer (a corrupted
  // neighbour header kCorruptedChunkHeader); after a report nothing
  // changes. free(nullptr) does nothing; after abandonment a free leaks.
  // `own_header_checked`: the caller has just checked p's own header
  // (usable_size_own_header() found it sealed and live), so only its
  // boundary tag and neighbours are checked here.
  FreeResult free(void* p, const char* operation = "free()", bool own_header_checked = false) {
    if (p == nullptr || abandoned_) return {nullptr};
    operation_ = operation;
    if (!accept(p, own_header_checked)) return {nullptr};
    Chunk* c = Chunk::from_user(p);
    // Sealed free once its fate is known: bin() or a merge into the chunk
    // before it (which leaves its header behind, free, for a double free to
    // find).
    c->state = medium::kStateFree;
    poison_memory(c->at_offset(medium::kMinChunkBytes), c->size - medium::kMinChunkBytes);
    Chunk* next = c->next();  // its header was checked by accept()
    if (next->is_free()) {
      if (!unbin(next, /*header_checked=*/true)) return {nullptr};  // checked by accept()
      c->size += next->size;                                        // sealed below
      poison_memory(next, medium::kMinChunkBytes);  // its header and links are inside c now
    }
    if (!c->is_first()) {
      Chunk* prev = c->prev();  // checked by accept() too
      if (prev->is_free()) {
        if (!unbin(prev, /*header_checked=*/true)) return {nullptr};  // checked by accept()
        c->seal(keys_);
        prev->size += c->size;                     // sealed below (bin() or the region's return)
        poison_memory(c, medium::kMinChunkBytes);  // inside prev now
        c = prev;
      }
    }
    Chunk* after = c->next();
    after->set_prev_size(c->size, keys_);
    if (c->is_first() && after->is_sentinel()) {
      c->seal(keys_);  // its region goes back whole; a double free then finds it free
      RegionRecord* region = RegionRecord::of_first_chunk(c);
      if (!detach(region)) return {nullptr};
      unpoison_memory(region, region->bytes);  // the caller's memory again
      return {region};
    }
    bin(c);
    return {nullptr};
  }

  // Resizes a live block in place to at least new_n usable bytes: shrinking
  // gives the tail back (merged with a free next chunk), growing absorbs a
  // free next chunk. Returns false, block unchanged, when that is impossible
  // (or after a report, as in free(), naming realloc()). Contents are
  // untouched either way.
  bool try_resize(void* p, std::size_t new_n) {
    if (p == nullptr || abandoned_) return false;
    operation_ = "realloc()";
    if (!accept(p)) return false;
    const std::size_t need = chunk_bytes_for(new_n);
    if (need == 0) return false;
    Chunk* c = Chunk::from_user(p);
    Chunk* next = c->next();
    const std::size_t old_size = c->size;
    if (need <= old_size) {
      const std::size_t rest = old_size - need;
      if (next->is_free()) {
        // Even a 16-byte rest can move the boundary of a free neighbour.
        if (rest == 0) return true;
        if (!unbin(next, /*header_checked=*/true)) return false;  // checked by accept()
        split_tail(c, need, rest + next->size);
        c->seal(keys_);
        // The tail was live, and next's header and links are inside it now.
        poison_memory(c->at_offset(need + medium::kMinChunkBytes), rest);
      } else if (rest >= medium::kMinChunkBytes) {
        split_tail(c, need, rest);
        c->seal(keys_);
        poison_memory(c->at_offset(need + medium::kMinChunkBytes), rest - medium::kMinChunkBytes);
      }
      return true;
    }
    if (!next->is_free() || old_size + next->size < need) return false;
    if (!unbin(next, /*header_checked=*/true)) return false;      // checked by accept()
    c->size = static_cast<std::uint32_t>(old_size + next->size);  // carve() seals c
    c->next()->set_prev_size(c->size, keys_);
    carve(c, need);
    return true;
  }

  // Usable bytes of a live block; reports what else p is (as free() does;
  // a freed block is kUseOfFreedBlock unless `operation` is a free) and
  // returns 0.
  std::size_t usable_size(const void* p, const char* operation = "malloc_usable_size()") {
    // Abandoned lists merge nothing, so a live block's neighbours no longer
    // matter (and may be what was corrupted): its own header decides.
    if (abandoned_) return usable_size_own_header(p, operation);
    operation_ = operation;
    if (!accept(p)) return 0;
    return Chunk::from_user(p)->size - medium::kChunkHeaderBytes;
  }

  // usable_size() for a thread that does not own these lists (a cross-thread
  // realloc or malloc_usable_size): it reads only the chunk's own size, tag,
  // state and flags, which the owner never writes while the block is live,
  // and not the neighbours' headers or the chunk's boundary tag, which it
  // may be rewriting concurrently. Reports (and returns 0) when those do not
  // describe a live chunk.
  std::size_t usable_size_of_live_block_shared(const void* p, const char* operation) const {
    const Chunk* c = is_aligned(p, medium::kChunkAlignment) ? Chunk::from_user(p) : nullptr;
    Chunk header{};
    if (c != nullptr) {
      // Field by field: never the boundary tag and its seal, which the
      // owner may be rewriting now. Unpoisoned: a header that merging
      // absorbed (a freed block) lies in poisoned bytes.
      header.size = load_unpoisoned(&c->size);
      header.tag = load_unpoisoned(&c->tag);
      header.state = load_unpoisoned(&c->state);
      header.flags = load_unpoisoned(&c->flags);
    }
    return own_header_usable(c, header, p, operation);
  }

  // usable_size() checking only p's own header, for the owner's free of a
  // block it is about to cache (mem/medium_cache.h): the neighbours are
  // checked when the block reaches the lists. The owner's twin of
  // usable_size_of_live_block_shared(): it may read a header that a merge
  // absorbed (a double free), so it loads it unpoisoned.
  std::size_t usable_size_own_header(const void* p, const char* operation) const {
    const Chunk* c = is_aligned(p, medium::kChunkAlignment) ? Chunk::from_user(p) : nullptr;
    return own_header_usable(c, c != nullptr ? load_unpoisoned(c) : Chunk{}, p, operation);
  }

  // Whether p is a live block of these lists' chunks, without reporting. p
  // must point into an attached region: the checks read the headers around it.
  bool owns_allocated(const void* p) const { return classify(p).state == PointerState::kInUse; }

  // Whether a failed check made these lists stop (see the top comment).
  bool abandoned() const { return abandoned_; }

  Stats stats() const { return stats_; }

  // Calls give_back(begin, bytes) for the whole pages inside each free chunk
  // of the region that starts at `region_begin` (an attached region): past
  // its header and links, before the next header, so the lists' own words
  // stay resident (medium_free_lists_pages.h). Decay and trim give those
  // pages back to the OS; they read as zeros when a block reuses them.
  // `operation` names the call in a report of a corrupted header met on the
  // way (the walk stops there and the lists are abandoned).
  template <class GiveBack>
  void for_each_free_page_range(void* region_begin, std::size_t page_size, GiveBack give_back,
                                const char* operation);

  // Walks every region and bin and returns a description of the first broken
  // invariant, or nullptr when all hold. O(chunks); for tests and the checked
  // build's debugging only (medium_free_lists_check.h).
  const char* check_consistency_for_testing() const;

  // The size of the largest free chunk of any region (0: none), by a walk
  // of the regions; for harnesses that check allocate() finds a fit
  // whenever there is one (medium_free_lists_check.h).
  std::size_t largest_free_chunk_for_testing() const;
  // The chunk size allocate(n) needs, 0 when no region could hold it.
  static std::size_t chunk_bytes_for_testing(std::size_t n) { return chunk_bytes_for(n); }

  // Test-only: the keys headers are sealed with, so a test can forge a
  // header that passes its own check and show the neighbour checks catch it.
  const medium::ChunkKeys& chunk_keys_for_testing() const { return keys_; }

 private:
  static constexpr unsigned kBitmapWords = (kBinCount + 63) / 64;
  // Chunks of the request's own bin tried before moving to a larger bin.
  static constexpr unsigned kFirstFitScan = 8;

  enum class PointerState { kInUse, kFree, kInvalid, kCorruptedNeighbour };
  struct Classified {
    PointerState state;
    const Chunk* corrupted;  // the neighbour whose header failed, for kCorruptedNeighbour
  };

  // Chunk size for n usable bytes, or 0 when no region could hold it.
  static std::size_t chunk_bytes_for(std::size_t n) {
    if (n > kMaxUsableBytes) return 0;
    return std::max(align_up(n + medium::kChunkHeaderBytes, medium::kChunkAlignment),
                    medium::kMinChunkBytes);
  }

  // Distance from c to the header of the aligned block placed in it: 0, or
  // at least kMinChunkBytes so the gap can stand as a chunk of its own.
  static std::size_t aligned_gap(const Chunk* c, std::size_t alignment) {
    const std::uintptr_t user = reinterpret_cast<std::uintptr_t>(c->user());
    std::size_t gap = align_up(user, alignment) - user;
    if (gap != 0 && gap < medium::kMinChunkBytes) gap += alignment;  // alignment >= 32
    return gap;
  }

  Chunk* make_chunk(void* at, std::size_t size, std::size_t prev_size, std::uint8_t state,
                    std::uint8_t flags) {
    return Chunk::make(at, size, prev_size, state, flags, keys_);
  }
  void resize(Chunk* c, std::size_t size) {
    c->size = static_cast<std::uint32_t>(size);
    c->seal(keys_);
  }

  // ---- Links (medium_chunk.h's FreeLinks) ----
  // Both links are encoded (address XOR the link key) and checked together
  // by a third word, their check: a blind write into a free chunk's first
  // words (a use after free, an overflow from the chunk before) fails it,
  // and forging links that pass needs the check key. Linear, like the small
  // caches' check word: it stops blind overwrites, which is the threat (see
  // medium_chunk.h's mum()); the rotation keeps equal junk in both links
  // from cancelling out.
  std::uintptr_t encode(const Chunk* c) const {
    return reinterpret_cast<std::uintptr_t>(c) ^ link_key_;
  }
  Chunk* decode(std::uintptr_t link) const { return reinterpret_cast<Chunk*>(link ^ link_key_); }
  std::uintptr_t link_check(std::uintptr_t next, std::uintptr_t prev) const {
    return next ^ std::rotl(prev, 29) ^ link_check_key_;
  }
  bool links_ok(const Chunk* c) const {
    const FreeLinks& links = c->links();
    return links.check == link_check(links.next, links.prev);
  }
  Chunk* next_in_bin(const Chunk* c) const { return decode(c->links().next); }
  Chunk* prev_in_bin(const Chunk* c) const { return decode(c->links().prev); }
  // Writes free chunk c's links (its header is sealed apart: relinking a
  // neighbour leaves its header alone).
  void set_links(Chunk* c, const Chunk* next, const Chunk* prev) {
    const std::uintptr_t n = encode(next);
    const std::uintptr_t p = encode(prev);
    c->links() = {n, p, link_check(n, p)};
  }
  void set_next_link(Chunk* c, const Chunk* next) {
    FreeLinks& links = c->links();
    links.next = encode(next);
    links.check = link_check(links.next, links.prev);
  }
  void set_prev_link(Chunk* c, const Chunk* prev) {
    FreeLinks& links = c->links();
    links.prev = encode(prev);
    links.check = link_check(links.next, links.prev);
  }
  // Whether c is a free chunk whose header and links pass their checks (its
  // size may be trusted and its links followed); otherwise reports it and
  // abandons the lists.
  bool checked_free_chunk(const Chunk* c) {
    if (__builtin_expect(!c->is_free() || !c->tag_ok(keys_) || !links_ok(c), 0)) {
      return corrupted(HeapError::kCorruptedFreeList, c->user());
    }
    return true;
  }
  // Whether c's links pass their check; otherwise reports c and abandons.
  bool checked_links(const Chunk* c) {
    if (__builtin_expect(!links_ok(c), 0)) {
      return corrupted(HeapError::kCorruptedFreeList, c->user());
    }
    return true;
  }

  // A failed check: one report naming the call being served, then the
  // lists are abandoned (see the top comment). Returns false for callers.
  [[gnu::cold, gnu::noinline]] bool corrupted(HeapError error, const void* where) {
    reporter_.report(error, operation_, where);
    abandoned_ = true;
    std::fill(std::begin(bins_), std::end(bins_), nullptr);
    std::fill(std::begin(nonempty_), std::end(nonempty_), 0);
    stats_.free_chunks = stats_.free_bytes = 0;  // none can be allocated now
    return false;
  }

  // Every chunk of a bin whose smallest size is >= bytes fits; `fits` decides
  // for the others. First fit among a few chunks of bytes' own bin, then the
  // head of the first larger non-empty bin, and only when there is none, a
  // full scan of the own bin (cheaper than a new segment). Every chunk is
  // checked before `fits` reads it or its link is followed.
  template <class Fits>
  Chunk* find_free_chunk(std::size_t bytes, Fits fits) {
    const unsigned bin = medium::bin_index(bytes);
    const bool all_fit = medium::bin_min_bytes(bin) >= bytes;
    if (!all_fit) {
      if (Chunk* c = scan_bin(bin, fits, kFirstFitScan)) return c;
      if (abandoned_) return nullptr;
    }
    const unsigned other = first_nonempty_bin(all_fit ? bin : bin + 1);
    if (other < kBinCount) {
      Chunk* head = bins_[other];
      if (!checked_free_chunk(head)) return nullptr;
      if (fits(head)) return head;
    }
    return all_fit ? nullptr : scan_bin(bin, fits, UINT_MAX);
  }

  template <class Fits>
  Chunk* scan_bin(unsigned bin, Fits fits, unsigned limit) {
    Chunk* c = bins_[bin];
    for (unsigned i = 0; c != nullptr && i < limit; ++i) {
      if (!checked_free_chunk(c)) return nullptr;
      if (fits(c)) return c;
      c = next_in_bin(c);
    }
    return nullptr;
  }

  unsigned first_nonempty_bin(unsigned from) const {
    for (unsigned w = from / 64; w < kBitmapWords; ++w) {
      std::uint64_t word = nonempty_[w];
      if (w == from / 64) word &= ~std::uint64_t{0} << (from % 64);
      if (word != 0) return w * 64 + lowest_set_bit(word);
    }
    return kBinCount;
  }

  // Marks c (unbinned, free or being resized) in use with size `need`, giving
  // a tail of at least kMinChunkBytes back to the bins. c's next is not free.
  void* carve(Chunk* c, std::size_t need) {
    HPCALLOC_ASSERT(c->size >= need && !c->next()->is_free());
    const std::size_t rest = c->size - need;
    if (rest >= medium::kMinChunkBytes) split_tail(c, need, rest);
    c->state = medium::kStateInUse;
    c->seal(keys_);
    unpoison_memory(c->user(), c->size - medium::kChunkHeaderBytes);
    return c->user();
  }

  // Shrinks c to `keep` bytes and makes the following `tail` bytes (up to the
  // next chunk that is not free) one free chunk. The new header and links
  // are made addressable; the caller poisons what else became free, and
  // seals c (its state changes too when carve() splits; sealing once saves
  // a multiply on every split).
  void split_tail(Chunk* c, std::size_t keep, std::size_t tail) {
    c->size = static_cast<std::uint32_t>(keep);
    unpoison_memory(c->next(), medium::kMinChunkBytes);
    // Sealed by bin(), once its links are written.
    Chunk* rest =
        new (c->next()) Chunk{static_cast<std::uint32_t>(tail), 0, 0, medium::kStateFree, 0, 0};
    rest->set_prev_size(keep, keys_);
    HPCALLOC_ASSERT(!rest->next()->is_free());
    rest->next()->set_prev_size(rest->size, keys_);
    bin(rest);
  }

  // Puts free chunk c at the head of its bin and seals its header. The old
  // head's links are checked, and its back link must be the bin's (none),
  // before that link is rewritten (a new check word over a forged link
  // would make it pass later checks).
  void bin(Chunk* c);

  // Takes free chunk c out of its bin, after checking c's header (unless
  // the caller just did: `header_checked`) and links, both neighbours' links
  // and their links back to c; false (after a report; the lists are
  // abandoned) when a check fails. The neighbours' headers are not read:
  // only their links change, and their headers are checked when used.
  [[nodiscard]] bool unbin(Chunk* c, bool header_checked = false);

  // Unlinks a region record after the same checks as unbin().
  [[nodiscard]] bool detach(RegionRecord* region);

  // True for a live block; otherwise reports what p is (naming operation_)
  // and returns false. A corrupted neighbour also abandons the lists.
  bool accept(const void* p, bool own_header_checked = false);

  // p's own header first, so garbage is rejected before any far read; then
  // its boundary tag and both neighbours, whose sealed sizes must agree
  // with it. A neighbour that fails is corruption (an overflow, or a write
  // after free into a merged chunk), not a bad p: p's own header passed.
  // `own_header_checked`: as in free(); the own header is not read again.
  Classified classify(const void* p, bool own_header_checked = false) const;

  // Whether `header`, a copy of the header at c, has the tag it calls for
  // there.
  bool sealed_copy(const Chunk* c, const Chunk& header) const;

  // The usable size a header copy describes if it is a live chunk's at c,
  // else 0 after a report.
  std::size_t own_header_usable(const Chunk* c, const Chunk& header, const void* p,
                                const char* operation) const;
  bool overlaps_some_region(const void* begin, std::size_t bytes) const {
    const auto lo = reinterpret_cast<std::uintptr_t>(begin);
    for (const RegionRecord* r = regions_; r != nullptr; r = r->next) {
      if (lo < r->address() + r->bytes && r->address() < lo + bytes) return true;
    }
    return false;
  }

  bool inside_some_region(const Chunk* c) const {
    for (const RegionRecord* r = regions_; r != nullptr; r = r->next) {
      if (c >= r->first_chunk() && c < r->sentinel()) return true;
    }
    return false;
  }

  Reporter& reporter_;
  const medium::ChunkKeys keys_;
  const std::uint64_t link_key_;
  const std::uint64_t link_check_key_;
  const char* operation_ = "malloc()";  // the call being served, for reports
  bool abandoned_ = false;
  Chunk* bins_[kBinCount] = {};
  std::uint64_t nonempty_[kBitmapWords] = {};
  RegionRecord* regions_ = nullptr;
  Stats stats_{};
};

}  // namespace hpcalloc

#include "mem/medium_free_lists_bins.h"
#include "mem/medium_free_lists_check.h"
#include "mem/medium_free_lists_pages.h"
#include "mem/medium_free_lists_pointers.h"

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

  explicit MediumFreeLists(Reporter& reporter) : reporter_(reporter) {}
  MediumFreeLists(const MediumFreeLists&) = delete;
  MediumFreeLists& operator=(const MediumFreeLists&) = delete;

  // Formats [begin, begin + bytes) as one free chunk and attaches it. begin
  // must be 16-byte aligned; bytes is rounded down to 16 and must lie in
  // [kMinRegionBytes, kMaxRegionBytes]. A bad region is a bug in the caller:
  // fatal.
  void add_region(void* begin, std::size_t bytes) {
    bytes = align_down(bytes, medium::kChunkAlignment);
    if (!is_aligned(begin, medium::kChunkAlignment) || bytes < medium::kMinRegionBytes ||
        bytes > kMaxRegionBytes) {
      fatal("MediumFreeLists::add_region: misaligned region or size out of range");
    }
    // Re-adding an attached region would reformat it under live blocks.
    HPCALLOC_ASSERT(!overlaps_some_region(begin, bytes));
    unpoison_memory(begin, bytes);
    auto* region =
        new (begin) RegionRecord{regions_, nullptr, bytes, RegionRecord::region_tag(begin)};
    if (regions_ != nullptr) regions_->prev = region;
    regions_ = region;
    ++stats_.regions;
    stats_.region_bytes += bytes;
    const std::size_t chunk_bytes = bytes - medium::kRegionOverheadBytes;
    Chunk* first =
        Chunk::make(region->first_chunk(), chunk_bytes, 0, medium::kStateFree, medium::kFlagFirst);
    Chunk::make(region->sentinel(), 0, chunk_bytes, medium::kStateInUse, medium::kFlagSentinel);
    poison_memory(first->at_offset(medium::kMinChunkBytes), chunk_bytes - medium::kMinChunkBytes);
    bin(first);
  }

  // Detaches a region that is entirely free (e.g. one added but never used).
  // Returns false, changing nothing, if begin is not an attached region or
  // part of it is allocated.
  bool remove_region(void* begin) {
    auto* region = static_cast<RegionRecord*>(begin);
    if (region->tag != RegionRecord::region_tag(begin)) return false;
    Chunk* first = region->first_chunk();
    if (!first->is_free() || !first->next()->is_sentinel()) return false;
    unbin(first);
    detach(region);
    unpoison_memory(region, region->bytes);
    return true;
  }

  // A block of at least n usable bytes, 16-byte aligned, or nullptr when no
  // free chunk fits (the caller adds a region and retries).
  void* allocate(std::size_t n) {
    const std::size_t need = chunk_bytes_for(n);
    if (need == 0) return nullptr;
    Chunk* c =
        find_free_chunk(need, [need](const Chunk* candidate) { return candidate->size >= need; });
    if (c == nullptr) return nullptr;
    unbin(c);
    return carve(c, need);
  }

  // Like allocate, aligned to a power of two (up to kMaxRegionBytes; 16 or
  // less is plain allocate, anything else nullptr). The block comes from a
  // chunk big enough for the worst leading gap (alignment + 16 bytes more
  // than allocate needs) or from a smaller one that happens to fit; the gap
  // becomes an ordinary free chunk.
  void* allocate_aligned(std::size_t n, std::size_t alignment) {
    if (alignment <= medium::kChunkAlignment) return allocate(n);
    if (!is_pow2(alignment) || alignment > kMaxRegionBytes) return nullptr;
    const std::size_t need = chunk_bytes_for(n);
    if (need == 0) return nullptr;
    const std::size_t worst = std::min(need + alignment + medium::kChunkAlignment, kMaxChunkBytes);
    Chunk* c = find_free_chunk(worst, [need, alignment](const Chunk* candidate) {
      return candidate->size >= aligned_gap(candidate, alignment) + need;
    });
    if (c == nullptr) return nullptr;
    unbin(c);
    const std::size_t gap = aligned_gap(c, alignment);
    if (gap != 0) {
      // c keeps its prev_size and flags and stays free as the gap chunk; its
      // predecessor is not free (c was), so it needs no merging.
      unpoison_memory(c->at_offset(gap), medium::kChunkHeaderBytes);
      Chunk* block = Chunk::make(c->at_offset(gap), c->size - gap, gap, medium::kStateFree, 0);
      c->size = static_cast<std::uint32_t>(gap);
      block->next()->prev_size = block->size;
      bin(c);
      c = block;
    }
    return carve(c, need);
  }

  // Frees a block from allocate*(). A free block reports kDoubleFree, and
  // anything else that is not a live block reports kInvalidPointer; after a
  // report nothing changes. free(nullptr) does nothing.
  FreeResult free(void* p) {
    if (p == nullptr || !accept(p, "free")) return {nullptr};
    return free_accepted(p);
  }

  // free() of a block the caller has just validated (usable_size() returned
  // non-zero and nothing touched the lists since).
  FreeResult free_accepted(void* p) {
    Chunk* c = Chunk::from_user(p);
    c->state = medium::kStateFree;
    poison_memory(c->at_offset(medium::kMinChunkBytes), c->size - medium::kMinChunkBytes);
    Chunk* next = c->next();
    if (next->is_free()) {
      unbin(next);
      c->size += next->size;
      poison_memory(next, medium::kMinChunkBytes);  // its header and links are inside c now
    }
    if (!c->is_first()) {
      Chunk* prev = c->prev();
      HPCALLOC_ASSERT(prev->size == c->prev_size);
      if (prev->is_free()) {
        unbin(prev);
        prev->size += c->size;
        poison_memory(c, medium::kMinChunkBytes);  // inside prev now
        c = prev;
      }
    }
    Chunk* after = c->next();
    after->prev_size = c->size;
    if (c->is_first() && after->is_sentinel()) {
      RegionRecord* region = RegionRecord::of_first_chunk(c);
      detach(region);
      unpoison_memory(region, region->bytes);  // the caller's memory again
      return {region};
    }
    bin(c);
    return {nullptr};
  }

  // Resizes a live block in place to at least new_n usable bytes: shrinking
  // gives the tail back (merged with a free next chunk), growing absorbs a
  // free next chunk. Returns false, block unchanged, when that is impossible
  // (or after a report, as in free()). Contents are untouched either way.
  bool try_resize(void* p, std::size_t new_n) {
    if (p == nullptr || !accept(p, "realloc")) return false;
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
        unbin(next);
        split_tail(c, need, rest + next->size);
        // The tail was live, and next's header and links are inside it now.
        poison_memory(c->at_offset(need + medium::kMinChunkBytes), rest);
      } else if (rest >= medium::kMinChunkBytes) {
        split_tail(c, need, rest);
        poison_memory(c->at_offset(need + medium::kMinChunkBytes), rest - medium::kMinChunkBytes);
      }
      return true;
    }
    if (!next->is_free() || old_size + next->size < need) return false;
    unbin(next);
    c->size = static_cast<std::uint32_t>(old_size + next->size);
    c->next()->prev_size = c->size;
    carve(c, need);
    return true;
  }

  // Usable bytes of a live block; reports kInvalidPointer (or kDoubleFree for
  // a freed one) and returns 0 for anything else.
  std::size_t usable_size(const void* p, const char* operation = "malloc_usable_size") const {
    if (!accept(p, operation)) return 0;
    return Chunk::from_user(p)->size - medium::kChunkHeaderBytes;
  }

  // usable_size() for a thread that does not own these lists (a cross-thread
  // realloc or malloc_usable_size): it reads only the chunk's own size, tag
  // and state, which the owner never writes while the block is live, and
  // not the neighbours' headers, which it may be rewriting concurrently.
  // Reports (and returns 0) when those three do not describe a live chunk.
  std::size_t usable_size_of_live_block_shared(const void* p) const {
    const auto address = reinterpret_cast<std::uintptr_t>(p);
    const Chunk* c = is_aligned(address, medium::kChunkAlignment)
                         ? reinterpret_cast<const Chunk*>(address - medium::kChunkHeaderBytes)
                         : nullptr;
    if (c == nullptr || c->tag != medium::address_tag(reinterpret_cast<std::uintptr_t>(c)) ||
        c->state != medium::kStateInUse || c->size < medium::kMinChunkBytes ||
        c->size > kMaxChunkBytes || (c->flags & medium::kFlagSentinel) != 0) {
      reporter_.report(c != nullptr && c->state == medium::kStateFree ? HeapError::kDoubleFree
                                                                      : HeapError::kInvalidPointer,
                       "malloc_usable_size", p);
      return 0;
    }
    return c->size - medium::kChunkHeaderBytes;
  }

  // usable_size() checking only p's own header (tag, state, size), for the
  // owner's free of a block it is about to cache (mem/medium_cache.h): the
  // neighbours are checked when the block reaches the lists. The owner's
  // twin of usable_size_of_live_block_shared(): it may read a header that a
  // merge absorbed (a double free), so it loads it unpoisoned, whole.
  std::size_t usable_size_own_header(const void* p, const char* operation) const {
    const Chunk* c = is_aligned(p, medium::kChunkAlignment) ? Chunk::from_user(p) : nullptr;
    const Chunk header = c != nullptr ? load_unpoisoned(c) : Chunk{};
    if (c == nullptr || header.tag != medium::address_tag(c->address()) ||
        header.state != medium::kStateInUse || header.size < medium::kMinChunkBytes ||
        header.size > kMaxChunkBytes || (header.flags & ~medium::kFlagFirst) != 0) {
      reporter_.report(c != nullptr && header.tag == medium::address_tag(c->address()) &&
                               header.state == medium::kStateFree
                           ? HeapError::kDoubleFree
                           : HeapError::kInvalidPointer,
                       operation, p);
      return 0;
    }
    return header.size - medium::kChunkHeaderBytes;
  }

  // Whether p is a live block of these lists' chunks, without reporting. p
  // must point into an attached region: the checks read the headers around it.
  bool owns_allocated(const void* p) const { return classify(p) == PointerState::kInUse; }

  Stats stats() const { return stats_; }

  // Walks every region and bin and returns a description of the first broken
  // invariant, or nullptr when all hold. O(chunks); for tests and the checked
  // build's debugging only.
  const char* check_consistency_for_testing() const {
    Stats seen{};
    for (const RegionRecord* r = regions_; r != nullptr; r = r->next) {
      if (r->tag != RegionRecord::region_tag(r)) return "region record tag";
      if (r->next != nullptr && r->next->prev != r) return "region list links";
      if (r->prev == nullptr && r != regions_) return "region list head";
      if (++seen.regions > stats_.regions) return "more regions than counted (cycle?)";
      seen.region_bytes += r->bytes;
      const Chunk* end = r->sentinel();
      const Chunk* c = r->first_chunk();
      std::size_t prev_size = 0;
      bool prev_free = false;
      while (c < end) {
        if (!c->tag_ok()) return "chunk tag";
        if (c->state != medium::kStateFree && c->state != medium::kStateInUse) return "chunk state";
        if (c->flags != (prev_size == 0 ? medium::kFlagFirst : 0)) return "chunk flags";
        if (c->prev_size != prev_size) return "prev_size disagrees with previous chunk";
        if (c->size < medium::kMinChunkBytes || c->size % medium::kChunkAlignment != 0 ||
            c->size > kMaxChunkBytes) {
          return "chunk size";
        }
        if (c->next() > end) return "chunk overruns its region";
        if (c->is_free()) {
          if (prev_free) return "two neighbouring free chunks";
          ++seen.free_chunks;
          seen.free_bytes += c->size;
        }
        prev_free = c->is_free();
        prev_size = c->size;
        c = c->next();
      }
      if (!end->tag_ok() || end->size != 0 || end->state != medium::kStateInUse ||
          end->flags != medium::kFlagSentinel || end->prev_size != prev_size) {
        return "region sentinel";
      }
    }
    if (seen.regions != stats_.regions || seen.region_bytes != stats_.region_bytes) {
      return "region statistics";
    }
    if (seen.free_chunks != stats_.free_chunks || seen.free_bytes != stats_.free_bytes) {
      return "free chunk statistics";
    }
    std::size_t binned = 0;
    for (unsigned b = 0; b < kBitmapWords * 64; ++b) {
      const bool bit = (nonempty_[b / 64] >> (b % 64)) & 1;
      if (b >= kBinCount) {
        if (bit) return "bitmap bit beyond the last bin";
        continue;
      }
      if (bit != (bins_[b] != nullptr)) return "bitmap disagrees with bin";
      const Chunk* prev = nullptr;
      for (const Chunk* c = bins_[b]; c != nullptr; c = FreeLinks::of(c).next) {
        if (++binned > seen.free_chunks) return "more binned chunks than free chunks";
        if (FreeLinks::of(c).prev != prev) return "bin back link";
        if (!c->tag_ok() || !c->is_free()) return "binned chunk not a free chunk";
        if (medium::bin_index(c->size) != b) return "chunk in the wrong bin";
        if (!inside_some_region(c)) return "binned chunk outside every region";
        if (!c->next()->tag_ok() || c->next()->prev_size != c->size) return "binned chunk's next";
        if (!c->is_first() && (!c->prev()->tag_ok() || c->prev()->size != c->prev_size)) {
          return "binned chunk's prev";
        }
        prev = c;
      }
    }
    if (binned != seen.free_chunks) return "free chunk missing from the bins";
    return nullptr;
  }

 private:
  static constexpr unsigned kBitmapWords = (kBinCount + 63) / 64;
  // Chunks of the request's own bin tried before moving to a larger bin.
  static constexpr unsigned kFirstFitScan = 8;

  enum class PointerState { kInUse, kFree, kInvalid };

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
    if (gap != 0 && gap < medium::kMinChunkBytes) gap += alignment;
    return gap;
  }

  // Every chunk of a bin whose smallest size is >= bytes fits; `fits` decides
  // for the others. First fit among a few chunks of bytes' own bin, then the
  // head of the first larger non-empty bin, and only when there is none, a
  // full scan of the own bin (cheaper than a new segment).
  template <class Fits>
  Chunk* find_free_chunk(std::size_t bytes, Fits fits) const {
    const unsigned bin = medium::bin_index(bytes);
    const bool all_fit = medium::bin_min_bytes(bin) >= bytes;
    if (!all_fit) {
      if (Chunk* c = scan_bin(bin, fits, kFirstFitScan)) return c;
    }
    const unsigned other = first_nonempty_bin(all_fit ? bin : bin + 1);
    if (other < kBinCount && fits(bins_[other])) return bins_[other];
    return all_fit ? nullptr : scan_bin(bin, fits, UINT_MAX);
  }

  template <class Fits>
  Chunk* scan_bin(unsigned bin, Fits fits, unsigned limit) const {
    Chunk* c = bins_[bin];
    for (unsigned i = 0; c != nullptr && i < limit; ++i, c = FreeLinks::of(c).next) {
      if (fits(c)) return c;
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
    unpoison_memory(c->user(), c->size - medium::kChunkHeaderBytes);
    return c->user();
  }

  // Shrinks c to `keep` bytes and makes the following `tail` bytes (up to the
  // next chunk that is not free) one free chunk. The new header and links
  // are made addressable; the caller poisons what else became free.
  void split_tail(Chunk* c, std::size_t keep, std::size_t tail) {
    c->size = static_cast<std::uint32_t>(keep);
    unpoison_memory(c->next(), medium::kMinChunkBytes);
    Chunk* rest = Chunk::make(c->next(), tail, keep, medium::kStateFree, 0);
    HPCALLOC_ASSERT(!rest->next()->is_free());
    rest->next()->prev_size = rest->size;
    bin(rest);
  }

  void bin(Chunk* c) {
    HPCALLOC_ASSERT(c->is_free() && c->size >= medium::kMinChunkBytes);
    const unsigned b = medium::bin_index(c->size);
    FreeLinks& links = FreeLinks::of(c);
    links.prev = nullptr;
    links.next = bins_[b];
    if (bins_[b] != nullptr) {
      FreeLinks::of(bins_[b]).prev = c;
    } else {
      nonempty_[b / 64] |= std::uint64_t{1} << (b % 64);
    }
    bins_[b] = c;
    ++stats_.free_chunks;
    stats_.free_bytes += c->size;
  }

  void unbin(Chunk* c) {
    HPCALLOC_ASSERT(c->is_free() && c->tag_ok());
    const unsigned b = medium::bin_index(c->size);
    FreeLinks& links = FreeLinks::of(c);
    if (links.prev != nullptr) {
      HPCALLOC_ASSERT(FreeLinks::of(links.prev).next == c);
      FreeLinks::of(links.prev).next = links.next;
    } else {
      HPCALLOC_ASSERT(bins_[b] == c);
      bins_[b] = links.next;
      if (links.next == nullptr) nonempty_[b / 64] &= ~(std::uint64_t{1} << (b % 64));
    }
    if (links.next != nullptr) FreeLinks::of(links.next).prev = links.prev;
    --stats_.free_chunks;
    stats_.free_bytes -= c->size;
  }

  void detach(RegionRecord* region) {
    if (region->prev != nullptr) {
      region->prev->next = region->next;
    } else {
      regions_ = region->next;
    }
    if (region->next != nullptr) region->next->prev = region->prev;
    region->tag = 0;  // a second remove_region of it fails instead of corrupting
    --stats_.regions;
    stats_.region_bytes -= region->bytes;
  }

  // True for a live block; otherwise reports what p is and returns false.
  bool accept(const void* p, const char* operation) const {
    switch (classify(p)) {
      case PointerState::kInUse: return true;
      case PointerState::kFree: reporter_.report(HeapError::kDoubleFree, operation, p); break;
      case PointerState::kInvalid:
        reporter_.report(HeapError::kInvalidPointer, operation, p);
        break;
    }
    return false;
  }

  // Cheap checks first; the neighbours are read only once p's own header has
  // a matching tag, so garbage is rejected before any far read.
  PointerState classify(const void* p) const {
    if (p == nullptr || !is_aligned(p, medium::kChunkAlignment)) return PointerState::kInvalid;
    const Chunk* c = Chunk::from_user(p);
    // A header that merging absorbed (p freed twice) lies in poisoned bytes.
    const Chunk header = load_unpoisoned(c);
    if (header.tag != medium::address_tag(c->address())) return PointerState::kInvalid;
    if (header.state == medium::kStateFree) return PointerState::kFree;
    if (header.state != medium::kStateInUse || (header.flags & ~medium::kFlagFirst) != 0) {
      return PointerState::kInvalid;
    }
    const std::size_t size = header.size;
    const std::size_t prev_size = header.prev_size;
    if (size < medium::kMinChunkBytes || size > kMaxChunkBytes ||
        size % medium::kChunkAlignment != 0 || prev_size > kMaxChunkBytes ||
        prev_size % medium::kChunkAlignment != 0 || (prev_size == 0) != c->is_first()) {
      return PointerState::kInvalid;
    }
    const Chunk* next = c->next();
    if (!next->tag_ok() || next->prev_size != size) return PointerState::kInvalid;
    if (!c->is_first()) {
      const Chunk* prev = c->prev();
      if (!prev->tag_ok() || prev->size != prev_size) return PointerState::kInvalid;
    }
    return PointerState::kInUse;
  }

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
  Chunk* bins_[kBinCount] = {};
  std::uint64_t nonempty_[kBitmapWords] = {};
  RegionRecord* regions_ = nullptr;
  Stats stats_{};
};

}  // namespace hpcalloc

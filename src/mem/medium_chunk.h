// The memory layout of MediumFreeLists (medium_free_lists.h): boundary-tagged
// chunks inside regions, and the size bins they are kept in when free.
//
// A region is a 16-byte-aligned range, laid out as
//   RegionRecord (32 B) | chunk | chunk | ... | chunk | sentinel (16 B header)
// Every chunk starts with a 16-byte Chunk header and hands out the 16 bytes
// after it, so every block is 16-byte aligned. Invariants:
//   - chunk sizes are multiples of 16 and at least kMinChunkBytes; the chunks
//     tile the region exactly; the next header is at header + size and its
//     prev_size equals size; the first chunk has prev_size 0 and kFlagFirst;
//   - the sentinel (size 0, in use, kFlagSentinel) stops forward merging and
//     kFlagFirst stops backward merging;
//   - no two neighbouring chunks are both free;
//   - a header's tag is a hash of its own address, and its state is one of two
//     magic values, so a pointer hpcalloc never returned (interior, foreign,
//     garbage) almost never passes as a chunk.
// A free chunk keeps its bin links (FreeLinks) in its first 16 user bytes,
// hence the 32-byte minimum. Headers that merging absorbs are left behind
// with state kStateFree, so freeing such a pointer again reads as a double
// free rather than as a live chunk.
#pragma once

#include <cstddef>
#include <cstdint>
#include <new>

#include "base/bits.h"

namespace hpcalloc::medium {

inline constexpr std::size_t kChunkHeaderBytes = 16;
inline constexpr std::size_t kChunkAlignment = 16;
// Header plus the two bin links of a free chunk.
inline constexpr std::size_t kMinChunkBytes = 32;
inline constexpr std::size_t kRegionRecordBytes = 32;
// Record plus end sentinel: what a region spends besides its chunks.
inline constexpr std::size_t kRegionOverheadBytes = kRegionRecordBytes + kChunkHeaderBytes;
inline constexpr std::size_t kMinRegionBytes = kRegionOverheadBytes + kMinChunkBytes;

// Unlikely bit patterns rather than 0/1, so zeroed or user memory fails.
inline constexpr std::uint16_t kStateInUse = 0xa11c;
inline constexpr std::uint16_t kStateFree = 0xf3ee;
inline constexpr std::uint16_t kFlagFirst = 1;     // first chunk of its region
inline constexpr std::uint16_t kFlagSentinel = 2;  // end-of-region marker

// Fibonacci hashing of the 16-byte granule number; the high half is the best
// mixed. Depends only on the address, so a header is valid exactly where it
// was written.
constexpr std::uint32_t address_tag(std::uintptr_t address) {
  return static_cast<std::uint32_t>(((address >> 4) * 0x9e3779b97f4a7c15ull) >> 32);
}

struct alignas(kChunkAlignment) Chunk {
  std::uint32_t size;       // bytes including this header; 0 for the sentinel
  std::uint32_t prev_size;  // size of the chunk before; 0 for the first chunk
  std::uint32_t tag;        // address_tag(this)
  std::uint16_t state;      // kStateInUse or kStateFree
  std::uint16_t flags;      // kFlagFirst, kFlagSentinel

  // Writes a header at `at`, starting its lifetime.
  static Chunk* make(void* at, std::size_t size, std::size_t prev_size, std::uint16_t state,
                     std::uint16_t flags) {
    return new (at) Chunk{static_cast<std::uint32_t>(size), static_cast<std::uint32_t>(prev_size),
                          address_tag(reinterpret_cast<std::uintptr_t>(at)), state, flags};
  }
  static Chunk* from_user(const void* p) {
    return reinterpret_cast<Chunk*>(reinterpret_cast<std::uintptr_t>(p) - kChunkHeaderBytes);
  }

  std::uintptr_t address() const { return reinterpret_cast<std::uintptr_t>(this); }
  void* user() const { return reinterpret_cast<void*>(address() + kChunkHeaderBytes); }
  Chunk* next() const { return reinterpret_cast<Chunk*>(address() + size); }
  Chunk* prev() const { return reinterpret_cast<Chunk*>(address() - prev_size); }
  Chunk* at_offset(std::size_t offset) const {
    return reinterpret_cast<Chunk*>(address() + offset);
  }

  bool tag_ok() const { return tag == address_tag(address()); }
  bool is_free() const { return state == kStateFree; }
  bool is_first() const { return (flags & kFlagFirst) != 0; }
  bool is_sentinel() const { return (flags & kFlagSentinel) != 0; }
};
static_assert(sizeof(Chunk) == kChunkHeaderBytes);

// Doubly linked bin list, in the user area of a free chunk.
struct FreeLinks {
  Chunk* next;
  Chunk* prev;

  static FreeLinks& of(Chunk* c) { return *reinterpret_cast<FreeLinks*>(c->user()); }
  static const FreeLinks& of(const Chunk* c) {
    return *reinterpret_cast<const FreeLinks*>(c->user());
  }
};
static_assert(kChunkHeaderBytes + sizeof(FreeLinks) <= kMinChunkBytes);

// At the start of every region: the list of regions (for the consistency
// checker and statistics) and the region's size.
struct alignas(kChunkAlignment) RegionRecord {
  RegionRecord* next;
  RegionRecord* prev;
  std::size_t bytes;  // whole region, record and sentinel included
  std::uint64_t tag;  // region_tag(this) while the region is attached

  static std::uint64_t region_tag(const void* at) {
    return address_tag(reinterpret_cast<std::uintptr_t>(at)) ^ 0x5245'4749'4f4e'0000ull;
  }
  std::uintptr_t address() const { return reinterpret_cast<std::uintptr_t>(this); }
  Chunk* first_chunk() const { return reinterpret_cast<Chunk*>(address() + kRegionRecordBytes); }
  Chunk* sentinel() const {
    return reinterpret_cast<Chunk*>(address() + bytes - kChunkHeaderBytes);
  }
  static RegionRecord* of_first_chunk(const Chunk* c) {
    return reinterpret_cast<RegionRecord*>(c->address() - kRegionRecordBytes);
  }
};
static_assert(sizeof(RegionRecord) == kRegionRecordBytes);

// Bins: four per power of two of the chunk size (a float with two mantissa
// bits), exact below 128 bytes. In 16-byte units u >= 2: u < 8 -> bin u - 2;
// otherwise, with e = floor(log2 u), bin 4(e - 1) + the two bits below the
// leading one - 2. A 2 MiB region needs 62 bins.
inline constexpr unsigned kBinsPerDoubling = 4;

constexpr unsigned bin_index(std::size_t chunk_bytes) {
  const std::size_t units = chunk_bytes / kChunkAlignment;
  if (units < 8) return static_cast<unsigned>(units) - 2;
  const unsigned e = log2_floor(units);
  return kBinsPerDoubling * (e - 1) + static_cast<unsigned>((units >> (e - 2)) & 3) - 2;
}

// Smallest chunk size that bin_index maps to `bin`.
constexpr std::size_t bin_min_bytes(unsigned bin) {
  const unsigned b = bin + 2;
  if (b < 8) return std::size_t{b} * kChunkAlignment;
  const unsigned e = b / kBinsPerDoubling + 1;
  return (std::size_t{kBinsPerDoubling + b % kBinsPerDoubling} << (e - 2)) * kChunkAlignment;
}

static_assert(bin_index(kMinChunkBytes) == 0);
static_assert(bin_min_bytes(bin_index(128)) == 128 && bin_index(127 & ~15) + 1 == bin_index(128));

}  // namespace hpcalloc::medium

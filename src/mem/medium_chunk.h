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
//   - a header's tag seals its address, size, state and flags with keys of
//     the process (ChunkKeys, from base/secret.h); its state is one of two
//     magic values. So a pointer hpcalloc never returned (interior,
//     foreign, garbage), a header forged inside a live block and a header
//     an overflow rewrote all fail the check (a forger would need the
//     keys), and the check is made before a size is trusted;
//   - prev_size (the boundary tag) has a seal of its own, prev_tag, with the
//     address: the owner rewrites it while the chunk is live (when the chunk
//     before splits or merges), while other threads may read the live
//     chunk's size, state and tag (a cross-thread realloc), so the two seals
//     cover disjoint fields. prev_tag is 16 bits (a header has no room for
//     more); prev_size is also checked against the size the chunk before it
//     has sealed.
// A free chunk keeps its bin links (FreeLinks) in its first 24 user bytes:
// both links encoded with its lists' link key, and a check word over the two
// with another key, checked before either link is followed (as the small
// caches' links are), hence the 48-byte minimum. The links are not in the
// tag: a neighbour in a bin is relinked by rewriting three words, with no
// multiply, and the tag is computed only when the header itself changes.
// Headers that merging absorbs are left behind with state kStateFree, so
// freeing such a pointer again reads as a double free rather than as a live
// chunk (until the header itself is written over).
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>
#include <new>

#include "base/bits.h"
#include "base/secret.h"

namespace hpcalloc::medium {

inline constexpr std::size_t kChunkHeaderBytes = 16;
inline constexpr std::size_t kChunkAlignment = 16;
// Header plus the bin links and their check word of a free chunk (40 bytes),
// rounded up to the alignment.
inline constexpr std::size_t kMinChunkBytes = 48;
inline constexpr std::size_t kRegionRecordBytes = 32;
// Record plus end sentinel: what a region spends besides its chunks.
inline constexpr std::size_t kRegionOverheadBytes = kRegionRecordBytes + kChunkHeaderBytes;
inline constexpr std::size_t kMinRegionBytes = kRegionOverheadBytes + kMinChunkBytes;

// Unlikely bit patterns rather than 0/1, so zeroed or user memory fails.
inline constexpr std::uint8_t kStateInUse = 0xa1;
inline constexpr std::uint8_t kStateFree = 0xf3;
inline constexpr std::uint8_t kFlagFirst = 1;     // first chunk of its region
inline constexpr std::uint8_t kFlagSentinel = 2;  // end-of-region marker

// The "multiply and fold" mix (wyhash's mum): the 128-bit product of two
// words, its halves XORed. One multiply; every output bit depends on every
// input bit of both words. Not a cryptographic MAC: it stops blind
// overwrites and forgeries by a program that cannot read the keys, which is
// the threat here (a program that can read freed memory can learn keys from
// any such scheme, as from glibc's and mimalloc's).
inline std::uint64_t mum(std::uint64_t a, std::uint64_t b) {
  __extension__ using Wide = unsigned __int128;  // GCC and Clang on 64-bit targets
  const Wide product = static_cast<Wide>(a) * b;
  return static_cast<std::uint64_t>(product) ^ static_cast<std::uint64_t>(product >> 64);
}

// The keys of every seal below, derived from the process secret (the same
// in every heap: a heap checks another heap's live headers).
struct ChunkKeys {
  std::uint64_t address, fields, next, prev, boundary, boundary_size;

  static ChunkKeys derive(std::uint64_t secret) {
    auto key = [secret](std::uint64_t purpose) { return mix64(secret ^ mix64(purpose)) | 1; };
    return {key(0x61646472), key(0x6669656c), key(0x6e657874),
            key(0x70726576), key(0x626f756e), key(0x626f7369)};
  }
};

// Doubly linked bin list, in the user area of a free chunk: both links
// encoded (address XOR the lists' link key), and a check word over both
// (medium_free_lists.h, link_check()).
struct FreeLinks {
  std::uintptr_t next;
  std::uintptr_t prev;
  std::uintptr_t check;
};

struct alignas(kChunkAlignment) Chunk {
  std::uint32_t size;       // bytes including this header; 0 for the sentinel
  std::uint32_t prev_size;  // size of the chunk before; 0 for the first chunk
  std::uint32_t tag;        // tag_for(): see the top comment
  std::uint8_t state;       // kStateInUse or kStateFree
  std::uint8_t flags;       // kFlagFirst, kFlagSentinel
  std::uint16_t prev_tag;   // prev_tag_for(): seals address and prev_size

  // Writes a header at `at`, starting its lifetime, sealed. A free chunk is
  // sealed again once its links are written (every write of size, state,
  // flags or a free chunk's links is followed by seal()).
  static Chunk* make(void* at, std::size_t size, std::size_t prev_size, std::uint8_t state,
                     std::uint8_t flags, const ChunkKeys& keys) {
    auto* c = new (at) Chunk{static_cast<std::uint32_t>(size), 0, 0, state, flags, 0};
    c->seal(keys);
    c->set_prev_size(prev_size, keys);
    return c;
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
  FreeLinks& links() { return *reinterpret_cast<FreeLinks*>(user()); }
  const FreeLinks& links() const { return *reinterpret_cast<const FreeLinks*>(user()); }

  // The tag this header calls for were it at `at` (a copy of a header is
  // checked against its original's address). One multiply.
  std::uint32_t tag_for(std::uintptr_t at, const ChunkKeys& keys) const {
    const std::uint64_t fields =
        std::uint64_t{size} | std::uint64_t{state} << 32 | std::uint64_t{flags} << 40;
    const std::uint64_t h = mum(at ^ keys.address, fields ^ keys.fields);
    return static_cast<std::uint32_t>(h ^ (h >> 32));
  }
  bool tag_ok(const ChunkKeys& keys) const { return tag == tag_for(address(), keys); }
  void seal(const ChunkKeys& keys) { tag = tag_for(address(), keys); }

  // The boundary tag's seal, for a header at `at`; set_prev_size() writes
  // both.
  std::uint16_t prev_tag_for(std::uintptr_t at, const ChunkKeys& keys) const {
    const std::uint64_t h = mum(at ^ keys.boundary, std::uint64_t{prev_size} ^ keys.boundary_size);
    return static_cast<std::uint16_t>(h ^ (h >> 16) ^ (h >> 32) ^ (h >> 48));
  }
  bool prev_ok(const ChunkKeys& keys) const { return prev_tag == prev_tag_for(address(), keys); }
  void set_prev_size(std::size_t bytes, const ChunkKeys& keys) {
    prev_size = static_cast<std::uint32_t>(bytes);
    prev_tag = prev_tag_for(address(), keys);
  }

  bool is_free() const { return state == kStateFree; }
  bool is_first() const { return (flags & kFlagFirst) != 0; }
  bool is_sentinel() const { return (flags & kFlagSentinel) != 0; }
};
static_assert(sizeof(Chunk) == kChunkHeaderBytes);
static_assert(kChunkHeaderBytes + sizeof(FreeLinks) <= kMinChunkBytes);

// At the start of every region: the list of regions (for the consistency
// checker and statistics) and the region's size.
struct alignas(kChunkAlignment) RegionRecord {
  RegionRecord* next;
  RegionRecord* prev;
  std::size_t bytes;  // whole region, record and sentinel included
  std::uint64_t tag;  // tag_for() while the region is attached, else 0

  // Seals the record's address, size and links: a record rewritten by an
  // underflow of the region's first block fails before its links are used.
  std::uint64_t tag_for(const ChunkKeys& keys) const {
    return mum(address() ^ keys.boundary, bytes ^ keys.fields) ^
           mum(reinterpret_cast<std::uintptr_t>(next) ^ keys.next,
               reinterpret_cast<std::uintptr_t>(prev) ^ keys.prev);
  }
  bool tag_ok(const ChunkKeys& keys) const { return tag == tag_for(keys); }
  void seal(const ChunkKeys& keys) { tag = tag_for(keys); }
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
// bits), exact below 128 bytes. In 16-byte units u >= 3 (the smallest chunk):
// u < 8 -> bin u - 3; otherwise, with e = floor(log2 u), bin 4(e - 1) + the
// two bits below the leading one - 3. A 2 MiB region needs 61 bins.
inline constexpr unsigned kBinsPerDoubling = 4;
inline constexpr unsigned kFirstBinUnits = kMinChunkBytes / kChunkAlignment;

constexpr unsigned bin_index(std::size_t chunk_bytes) {
  const std::size_t units = chunk_bytes / kChunkAlignment;
  if (units < 8) return static_cast<unsigned>(units) - kFirstBinUnits;
  const unsigned e = log2_floor(units);
  return kBinsPerDoubling * (e - 1) + static_cast<unsigned>((units >> (e - 2)) & 3) -
         kFirstBinUnits;
}

// Smallest chunk size that bin_index maps to `bin`.
constexpr std::size_t bin_min_bytes(unsigned bin) {
  const unsigned b = bin + kFirstBinUnits;
  if (b < 8) return std::size_t{b} * kChunkAlignment;
  const unsigned e = b / kBinsPerDoubling + 1;
  return (std::size_t{kBinsPerDoubling + b % kBinsPerDoubling} << (e - 2)) * kChunkAlignment;
}

static_assert(bin_index(kMinChunkBytes) == 0);
static_assert(bin_min_bytes(bin_index(128)) == 128 && bin_index(127 & ~15) + 1 == bin_index(128));

}  // namespace hpcalloc::medium

#include "mem/medium_free_lists.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <iterator>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <vector>

namespace hpcalloc {
namespace {

using medium::kChunkHeaderBytes;
using medium::kMinChunkBytes;
using medium::kRegionOverheadBytes;

// Small regions reach "region full" and "region empty" quickly; the segment
// config is production's: a 2 MiB segment's payload after its header.
struct SmallRegions {
  static constexpr std::size_t kMaxRegionBytes = 64 * 1024;
  static constexpr std::size_t kRegionBytes = 64 * 1024;
};
struct SegmentRegions {
  static constexpr std::size_t kMaxRegionBytes = 2 * 1024 * 1024;
  static constexpr std::size_t kRegionBytes = 2 * 1024 * 1024 - 128;
};

struct Report {
  HeapError error;
  const void* p;
  bool operator==(const Report&) const = default;
};

struct RecordingReporter {
  std::vector<Report> reports;
  void report(HeapError error, const char*, const void* p) { reports.push_back({error, p}); }
};

struct FreeDeleter {
  void operator()(std::byte* p) const { std::free(p); }
};
using Buffer = std::unique_ptr<std::byte, FreeDeleter>;

std::size_t chunk_bytes_for(std::size_t n) {
  return std::max(align_up(n + kChunkHeaderBytes, 16), kMinChunkBytes);
}

template <class Config>
class MediumFreeListsTest : public ::testing::Test {
 protected:
  using Lists = MediumFreeLists<RecordingReporter, Config::kMaxRegionBytes>;
  static constexpr std::size_t kRegionBytes = Config::kRegionBytes;
  static constexpr std::size_t kRegionChunkBytes = kRegionBytes - kRegionOverheadBytes;

  // A new region, 16 bytes past a page boundary so that neither the region
  // nor its first block is accidentally aligned to much.
  std::byte* add_region() {
    auto* base =
        static_cast<std::byte*>(std::aligned_alloc(4096, align_up(kRegionBytes + 16, 4096)));
    buffers_.emplace_back(base);
    std::byte* begin = base + 16;
    lists_.add_region(begin, kRegionBytes);
    return begin;
  }

  const char* problem() const { return lists_.check_consistency_for_testing(); }
  void* free_block(void* p) { return lists_.free(p).emptied_region; }

  RecordingReporter reporter_;
  Lists lists_{reporter_};
  std::vector<Buffer> buffers_;
};

using Configs = ::testing::Types<SmallRegions, SegmentRegions>;
TYPED_TEST_SUITE(MediumFreeListsTest, Configs);

#define EXPECT_CONSISTENT()                     \
  do {                                          \
    const char* problem = this->problem();      \
    EXPECT_TRUE(problem == nullptr) << problem; \
  } while (false)

TEST(MediumBins, IndexAndBoundsAgree) {
  unsigned last = 0;
  for (std::size_t size = kMinChunkBytes; size <= 2 * 1024 * 1024; size += 16) {
    const unsigned bin = medium::bin_index(size);
    EXPECT_GE(bin, last);
    EXPECT_LE(bin, last + 1);
    EXPECT_LE(medium::bin_min_bytes(bin), size);
    EXPECT_GT(medium::bin_min_bytes(bin + 1), size);
    last = bin;
  }
  EXPECT_LE((MediumFreeLists<RecordingReporter, 2 * 1024 * 1024>::kBinCount), 64u);
  EXPECT_LE((MediumFreeLists<RecordingReporter, 64 * 1024>::kBinCount), 48u);
}

TYPED_TEST(MediumFreeListsTest, EverySizeFitsAndKeepsMetadataIntact) {
  this->add_region();
  void* keeper = this->lists_.allocate(1);  // the region never empties
  ASSERT_NE(keeper, nullptr);
  const std::size_t avail = this->lists_.stats().free_bytes;
  ASSERT_EQ(avail, this->kRegionChunkBytes - kMinChunkBytes);
  const std::size_t limit =
      std::min<std::size_t>(TestFixture::Lists::kMaxUsableBytes + 64, 256 * 1024);
  for (std::size_t n = 0; n <= limit; n += n < 1024 ? 1 : n / 64 + 7) {
    const std::size_t chunk = chunk_bytes_for(n);
    void* a = this->lists_.allocate(n);
    if (chunk > avail) {
      EXPECT_EQ(a, nullptr) << n;
      continue;
    }
    ASSERT_NE(a, nullptr) << n;
    // The second fits exactly when the first left a tail big enough.
    const std::size_t left = avail - chunk < kMinChunkBytes ? 0 : avail - chunk;
    void* b = this->lists_.allocate(n);
    EXPECT_EQ(b != nullptr, chunk <= left) << n;
    for (void* p : {a, b}) {
      if (p == nullptr) continue;
      EXPECT_TRUE(is_aligned(p, 16));
      const std::size_t usable = this->lists_.usable_size(p);
      EXPECT_GE(usable, n);
      EXPECT_LT(usable, std::max<std::size_t>(n, 16) + 16 + kMinChunkBytes);
      EXPECT_TRUE(this->lists_.owns_allocated(p));
      std::memset(p, 0xa5, usable);
    }
    EXPECT_CONSISTENT();
    EXPECT_EQ(this->free_block(a), nullptr);
    EXPECT_CONSISTENT();
    if (b != nullptr) {
      EXPECT_EQ(this->free_block(b), nullptr);
    }
    EXPECT_CONSISTENT();
    ASSERT_EQ(this->lists_.stats().free_chunks, 1u);
    ASSERT_EQ(this->lists_.stats().free_bytes, avail);
  }
  EXPECT_NE(this->free_block(keeper), nullptr);
  EXPECT_TRUE(this->reporter_.reports.empty());
}

TYPED_TEST(MediumFreeListsTest, FreeingNeighboursInEveryOrderMergesThem) {
  constexpr std::size_t kChunk = 128;
  for (int count : {3, 4}) {
    std::vector<int> order(count);
    for (int i = 0; i < count; ++i) order[i] = i;
    do {
      RecordingReporter reporter;
      typename TestFixture::Lists lists(reporter);
      // Zeroed: the previous iteration's lists died with its region attached.
      Buffer buffer(static_cast<std::byte*>(std::aligned_alloc(16, this->kRegionBytes)));
      std::memset(buffer.get(), 0, this->kRegionBytes);
      lists.add_region(buffer.get(), this->kRegionBytes);
      std::vector<std::byte*> blocks;
      for (int i = 0; i <= count; ++i) {  // the last one guards the run
        blocks.push_back(static_cast<std::byte*>(lists.allocate(kChunk - kChunkHeaderBytes)));
        ASSERT_NE(blocks.back(), nullptr);
        if (i > 0) {
          ASSERT_EQ(blocks[i], blocks[i - 1] + kChunk);
        }
      }
      std::vector<bool> freed(count, false);
      for (int victim : order) {
        ASSERT_EQ(lists.free(blocks[victim]).emptied_region, nullptr);
        freed[victim] = true;
        std::size_t runs = 0;
        for (int i = 0; i < count; ++i) runs += freed[i] && (i == 0 || !freed[i - 1]);
        EXPECT_EQ(lists.stats().free_chunks, runs + 1);  // + the region's tail
        const char* problem = lists.check_consistency_for_testing();
        ASSERT_TRUE(problem == nullptr) << problem;
      }
      // The merged run comes back whole, at the first block's address.
      EXPECT_EQ(lists.allocate(count * kChunk - kChunkHeaderBytes), blocks[0]);
      EXPECT_TRUE(reporter.reports.empty());
    } while (std::next_permutation(order.begin(), order.end()));
  }
}

TYPED_TEST(MediumFreeListsTest, FirstAndLastChunksOfARegion) {
  std::byte* region = this->add_region();
  // The whole region as one block.
  void* whole = this->lists_.allocate(TestFixture::Lists::kMaxUsableBytes);
  if (this->kRegionBytes == TypeParam::kMaxRegionBytes) {
    ASSERT_NE(whole, nullptr);
  } else {
    ASSERT_EQ(whole, nullptr);
    whole = this->lists_.allocate(this->kRegionChunkBytes - kChunkHeaderBytes);
    ASSERT_NE(whole, nullptr);
  }
  EXPECT_EQ(whole, region + kRegionOverheadBytes);
  EXPECT_EQ(this->lists_.allocate(1), nullptr);
  EXPECT_EQ(this->lists_.stats().free_chunks, 0u);
  EXPECT_CONSISTENT();
  EXPECT_EQ(this->free_block(whole), region);
  EXPECT_EQ(this->lists_.stats().regions, 0u);

  // First, middle and last (which takes the rest, up to the sentinel).
  this->lists_.add_region(region, this->kRegionBytes);
  void* first = this->lists_.allocate(1000);
  void* middle = this->lists_.allocate(1000);
  // A tail of exactly kMinChunkBytes is split off; a smaller one is not.
  const std::size_t rest = this->lists_.stats().free_bytes - kChunkHeaderBytes;
  void* probe = this->lists_.allocate(rest - kMinChunkBytes);
  EXPECT_EQ(this->lists_.usable_size(probe), rest - kMinChunkBytes);
  EXPECT_EQ(this->lists_.stats().free_bytes, kMinChunkBytes);
  EXPECT_EQ(this->free_block(probe), nullptr);
  probe = this->lists_.allocate(rest - 16);
  EXPECT_EQ(this->lists_.usable_size(probe), rest);
  EXPECT_EQ(this->lists_.stats().free_chunks, 0u);
  EXPECT_EQ(this->free_block(probe), nullptr);
  EXPECT_CONSISTENT();
  void* last = this->lists_.allocate(rest);
  ASSERT_TRUE(first && middle && last);
  EXPECT_EQ(static_cast<std::byte*>(last) + rest + 16, region + this->kRegionBytes);
  EXPECT_EQ(this->lists_.allocate(1), nullptr);
  EXPECT_EQ(this->free_block(last), nullptr);
  EXPECT_CONSISTENT();
  EXPECT_EQ(this->free_block(first), nullptr);
  EXPECT_CONSISTENT();
  EXPECT_EQ(this->lists_.stats().free_chunks, 2u);
  EXPECT_EQ(this->free_block(middle), region);
  EXPECT_CONSISTENT();
  EXPECT_TRUE(this->reporter_.reports.empty());
}

// Nine free chunks of a bin that are too small for the request sit in front
// of the one that fits, and no larger bin has anything: the allocation must
// still find it rather than ask for a new region.
TYPED_TEST(MediumFreeListsTest, FitDeepInItsOwnBinIsFound) {
  this->add_region();
  constexpr std::size_t kFits = 1264, kTooSmall = 1024;  // one bin: [1024, 1280)
  ASSERT_EQ(medium::bin_index(kFits), medium::bin_index(kTooSmall));
  std::vector<void*> holes, guards;
  holes.push_back(this->lists_.allocate(kFits - kChunkHeaderBytes));
  guards.push_back(this->lists_.allocate(1));
  for (int i = 0; i < 9; ++i) {
    holes.push_back(this->lists_.allocate(kTooSmall - kChunkHeaderBytes));
    guards.push_back(this->lists_.allocate(1));
  }
  // While the region's large tail is free, a fit in the request's own bin is
  // still preferred over splitting the tail.
  EXPECT_EQ(this->free_block(holes[0]), nullptr);
  EXPECT_EQ(this->lists_.allocate(kFits - kChunkHeaderBytes), holes[0]);
  guards.push_back(this->lists_.allocate(this->lists_.stats().free_bytes - kChunkHeaderBytes));
  ASSERT_EQ(this->lists_.stats().free_chunks, 0u);
  for (void* p : holes) EXPECT_EQ(this->free_block(p), nullptr);  // the fitting one last in line
  EXPECT_CONSISTENT();
  EXPECT_EQ(this->lists_.allocate(kFits - kChunkHeaderBytes), holes[0]);
  EXPECT_EQ(this->lists_.allocate(kFits - kChunkHeaderBytes), nullptr);
  EXPECT_CONSISTENT();
}

TYPED_TEST(MediumFreeListsTest, EmptiedRegionIsReportedOnceAndDetached) {
  std::byte* regions[3] = {this->add_region(), this->add_region(), this->add_region()};
  EXPECT_EQ(this->lists_.stats().regions, 3u);
  // An untouched region can be removed; a used one cannot.
  EXPECT_TRUE(this->lists_.remove_region(regions[2]));
  EXPECT_FALSE(this->lists_.remove_region(regions[2]));
  EXPECT_EQ(this->lists_.stats().regions, 2u);
  EXPECT_CONSISTENT();

  std::vector<void*> blocks;
  const std::size_t n = this->kRegionChunkBytes / 8;
  while (void* p = this->lists_.allocate(n)) blocks.push_back(p);
  ASSERT_GE(blocks.size(), 14u);
  EXPECT_FALSE(this->lists_.remove_region(regions[0]));
  std::multiset<void*> emptied;
  std::shuffle(blocks.begin(), blocks.end(), std::mt19937(7));
  for (void* p : blocks) {
    if (void* region = this->free_block(p)) emptied.insert(region);
    EXPECT_CONSISTENT();
  }
  EXPECT_EQ(emptied, (std::multiset<void*>{regions[0], regions[1]}));
  const auto stats = this->lists_.stats();
  EXPECT_EQ(stats.regions, 0u);
  EXPECT_EQ(stats.region_bytes, 0u);
  EXPECT_EQ(stats.free_chunks, 0u);
  EXPECT_EQ(stats.free_bytes, 0u);
  EXPECT_EQ(this->lists_.allocate(1), nullptr);
  // A returned region can be added again.
  this->lists_.add_region(regions[1], this->kRegionBytes);
  EXPECT_NE(this->lists_.allocate(n), nullptr);
  EXPECT_CONSISTENT();
}

TYPED_TEST(MediumFreeListsTest, MisuseIsReportedAndChangesNothing) {
  std::byte* region = this->add_region();
  auto* a = static_cast<std::byte*>(this->lists_.allocate(200));
  auto* b = static_cast<std::byte*>(this->lists_.allocate(200));
  auto* c = static_cast<std::byte*>(this->lists_.allocate(200));
  ASSERT_TRUE(a && b && c);
  std::memset(c, 0x5a, this->lists_.usable_size(c));
  EXPECT_EQ(this->free_block(a), nullptr);
  EXPECT_EQ(this->free_block(b), nullptr);  // merged backwards into a's chunk

  // Forge, inside c, a header copied from c, and headers sealed with a key
  // other than the process's (what a program that cannot read the key can
  // do at best): a "first" chunk and one whose neighbours agree with it.
  std::memcpy(c + 16, c - 16, 16);
  medium::ChunkKeys wrong_keys = this->lists_.chunk_keys_for_testing();
  wrong_keys.address ^= 1;
  auto* forged_first =
      medium::Chunk::make(c + 64, 32, 0, medium::kStateInUse, medium::kFlagFirst, wrong_keys);
  auto* forged = medium::Chunk::make(c + 112, 32, 48, medium::kStateInUse, 0, wrong_keys);
  medium::Chunk::make(c + 144, 32, 32, medium::kStateInUse, 0, wrong_keys);
  alignas(16) std::byte zeros[64] = {};

  const auto before = this->lists_.stats();
  const std::vector<Report> expected = {
      {HeapError::kDoubleFree, a},          // freed
      {HeapError::kDoubleFree, b},          // freed and merged into a
      {HeapError::kInvalidPointer, c + 8},  // misaligned
      {HeapError::kInvalidPointer, c + 16},
      {HeapError::kInvalidPointer, c + 32},                // copied header, wrong tag
      {HeapError::kInvalidPointer, forged_first->user()},  // not sealed with the key
      {HeapError::kInvalidPointer, forged->user()},        // not sealed with the key
      {HeapError::kInvalidPointer, zeros + 32},
      {HeapError::kInvalidPointer, region + this->kRegionBytes},  // the sentinel's
  };
  for (const Report& r : expected) {
    EXPECT_EQ(this->lists_.free(const_cast<void*>(r.p)).emptied_region, nullptr);
  }
  EXPECT_EQ(this->reporter_.reports, expected);
  EXPECT_CONSISTENT();
  const auto after = this->lists_.stats();
  EXPECT_EQ(after.free_chunks, before.free_chunks);
  EXPECT_EQ(after.free_bytes, before.free_bytes);

  // The other entry points validate too.
  this->reporter_.reports.clear();
  EXPECT_FALSE(this->lists_.try_resize(c + 16, 10));
  EXPECT_FALSE(this->lists_.try_resize(a, 10));
  EXPECT_EQ(this->lists_.usable_size(c + 32), 0u);
  EXPECT_FALSE(this->lists_.owns_allocated(c + 32));
  EXPECT_FALSE(this->lists_.owns_allocated(a));
  EXPECT_EQ(this->reporter_.reports, (std::vector<Report>{{HeapError::kInvalidPointer, c + 16},
                                                          {HeapError::kUseOfFreedBlock, a},
                                                          {HeapError::kInvalidPointer, c + 32}}));
  // A chunk whose neighbours agree but whose tag is wrong (memory that
  // merely looks like a chunk) is rejected too.
  auto* header = medium::Chunk::from_user(c);
  header->tag ^= 1;
  EXPECT_FALSE(this->lists_.owns_allocated(c));
  this->reporter_.reports.clear();
  EXPECT_EQ(this->free_block(c), nullptr);
  EXPECT_EQ(this->reporter_.reports, (std::vector<Report>{{HeapError::kInvalidPointer, c}}));
  header->tag ^= 1;
  // c itself is untouched and still frees normally.
  EXPECT_TRUE(this->lists_.owns_allocated(c));
  EXPECT_EQ(this->free_block(c), region);
  EXPECT_CONSISTENT();
}

TYPED_TEST(MediumFreeListsTest, AlignedBlocksForEveryAlignment) {
  this->add_region();
  void* keeper = this->lists_.allocate(40);  // shifts the first free chunk
  ASSERT_NE(keeper, nullptr);
  const auto empty = this->lists_.stats();
  for (std::size_t alignment = 32; alignment <= 64 * 1024; alignment *= 2) {
    for (std::size_t n : {1, 100, 1000, 5000, 20000}) {
      void* p = this->lists_.allocate_aligned(n, alignment);
      const bool must_fit = chunk_bytes_for(n) + alignment + 16 <= empty.free_bytes;
      if (p == nullptr) {
        EXPECT_FALSE(must_fit) << n << " aligned to " << alignment;
        continue;
      }
      EXPECT_TRUE(is_aligned(p, alignment)) << p << " " << alignment;
      EXPECT_GE(this->lists_.usable_size(p), n);
      std::memset(p, 0x3c, this->lists_.usable_size(p));
      EXPECT_CONSISTENT();
      // A second aligned block, freed in the other order.
      void* q = this->lists_.allocate_aligned(n, alignment);
      if (q != nullptr) {
        EXPECT_TRUE(is_aligned(q, alignment));
        std::memset(q, 0x3d, this->lists_.usable_size(q));
        EXPECT_CONSISTENT();
      }
      EXPECT_EQ(this->free_block(p), nullptr);
      EXPECT_CONSISTENT();
      if (q != nullptr) {
        EXPECT_EQ(this->free_block(q), nullptr);
      }
      EXPECT_CONSISTENT();
      EXPECT_EQ(this->lists_.stats().free_chunks, empty.free_chunks);
      EXPECT_EQ(this->lists_.stats().free_bytes, empty.free_bytes);
    }
  }
  // Small alignments are plain blocks; others are rejected.
  void* p = this->lists_.allocate_aligned(10, 8);
  EXPECT_NE(p, nullptr);
  EXPECT_EQ(this->free_block(p), nullptr);
  EXPECT_EQ(this->lists_.allocate_aligned(10, 48), nullptr);
  EXPECT_EQ(this->lists_.allocate_aligned(10, TypeParam::kMaxRegionBytes * 2), nullptr);
  EXPECT_TRUE(this->reporter_.reports.empty());
}

TYPED_TEST(MediumFreeListsTest, ResizeInPlace) {
  this->add_region();
  auto* a = static_cast<unsigned char*>(this->lists_.allocate(1000));
  auto* b = static_cast<unsigned char*>(this->lists_.allocate(1000));
  auto* guard = static_cast<unsigned char*>(this->lists_.allocate(1000));
  ASSERT_TRUE(a && b && guard);
  auto fill = [](unsigned char* p, std::size_t n, unsigned seed) {
    for (std::size_t i = 0; i < n; ++i) p[i] = static_cast<unsigned char>(seed + i * 7);
  };
  auto intact = [](const unsigned char* p, std::size_t n, unsigned seed) {
    for (std::size_t i = 0; i < n; ++i) {
      if (p[i] != static_cast<unsigned char>(seed + i * 7)) return false;
    }
    return true;
  };
  fill(a, 1000, 1);
  fill(b, 1000, 2);

  // Growing a into an in-use neighbour fails; so does a size too large.
  EXPECT_FALSE(this->lists_.try_resize(a, 1100));
  EXPECT_FALSE(this->lists_.try_resize(a, TestFixture::Lists::kMaxUsableBytes + 1));
  EXPECT_EQ(this->lists_.usable_size(a), 1008u);
  // Shrinking by less than a chunk with an in-use neighbour keeps the size.
  EXPECT_TRUE(this->lists_.try_resize(a, 990));
  EXPECT_EQ(this->lists_.usable_size(a), 1008u);
  // Shrinking by more splits a free chunk off.
  const std::size_t free_chunks = this->lists_.stats().free_chunks;
  EXPECT_TRUE(this->lists_.try_resize(a, 500));
  EXPECT_EQ(this->lists_.usable_size(a), 512u);
  EXPECT_EQ(this->lists_.stats().free_chunks, free_chunks + 1);
  EXPECT_CONSISTENT();
  EXPECT_TRUE(intact(a, 500, 1));
  // Growing back absorbs exactly that chunk; a bit more still fails.
  EXPECT_FALSE(this->lists_.try_resize(a, 1009));
  EXPECT_TRUE(this->lists_.try_resize(a, 1008));
  EXPECT_EQ(this->lists_.usable_size(a), 1008u);
  EXPECT_EQ(this->lists_.stats().free_chunks, free_chunks);
  EXPECT_TRUE(intact(a, 500, 1));
  EXPECT_CONSISTENT();

  // With b free, a grows into it and leaves the remainder free; a shrink by
  // only 16 bytes moves the boundary of the free neighbour.
  EXPECT_EQ(this->free_block(b), nullptr);
  EXPECT_TRUE(this->lists_.try_resize(a, 1500));
  EXPECT_EQ(this->lists_.usable_size(a), 1504u);
  EXPECT_CONSISTENT();
  EXPECT_TRUE(this->lists_.try_resize(a, 1488));
  EXPECT_EQ(this->lists_.usable_size(a), 1488u);
  EXPECT_CONSISTENT();
  // Grow to swallow b's whole chunk, then fail one past it.
  EXPECT_FALSE(this->lists_.try_resize(a, 2033));
  EXPECT_TRUE(this->lists_.try_resize(a, 2032));
  EXPECT_EQ(this->lists_.usable_size(a), 2032u);
  EXPECT_EQ(static_cast<void*>(a + 2032 + 16), guard);
  EXPECT_TRUE(intact(a, 500, 1));
  EXPECT_CONSISTENT();
  // Shrink to the minimum; the tail merges with nothing (guard is in use).
  constexpr std::size_t kMinUsable = kMinChunkBytes - kChunkHeaderBytes;
  EXPECT_TRUE(this->lists_.try_resize(a, 0));
  EXPECT_EQ(this->lists_.usable_size(a), kMinUsable);
  EXPECT_TRUE(intact(a, kMinUsable, 1));
  EXPECT_CONSISTENT();
  // The last block can grow into the region's tail, up to the sentinel.
  const std::size_t tail = this->lists_.stats().free_bytes - (2048 - kMinChunkBytes);
  EXPECT_TRUE(this->lists_.try_resize(guard, 1008 + tail));
  EXPECT_FALSE(this->lists_.try_resize(guard, 1008 + tail + 1));
  EXPECT_CONSISTENT();
  EXPECT_TRUE(this->reporter_.reports.empty());
}

// Thousands of random operations against a reference map of live blocks:
// blocks never overlap, their contents survive everything else, and every
// invariant holds after every operation.
TYPED_TEST(MediumFreeListsTest, RandomOperationsKeepEveryInvariant) {
  struct Block {
    std::size_t n;
    unsigned char seed;
  };
  std::map<std::uintptr_t, Block> live;
  std::map<std::byte*, Buffer> region_buffers;  // region begin -> its memory
  std::mt19937_64 rng(20240611);
  auto uniform = [&](std::size_t lo, std::size_t hi) {
    return std::uniform_int_distribution<std::size_t>(lo, hi)(rng);
  };
  auto random_size = [&] {  // log-uniform up to 32 KiB
    const std::size_t bits = uniform(0, 15);
    return uniform(0, (std::size_t{1} << bits) - 1) + 1;
  };
  auto fill = [](void* p, const Block& b) {
    auto* bytes = static_cast<unsigned char*>(p);
    for (std::size_t i = 0; i < b.n; ++i) bytes[i] = static_cast<unsigned char>(b.seed + i);
  };
  auto intact = [](const void* p, std::size_t n, unsigned char seed) {
    const auto* bytes = static_cast<const unsigned char*>(p);
    for (std::size_t i = 0; i < n; ++i) {
      if (bytes[i] != static_cast<unsigned char>(seed + i)) return false;
    }
    return true;
  };
  auto new_region = [&] {
    auto* base = static_cast<std::byte*>(std::aligned_alloc(16, this->kRegionBytes));
    region_buffers.emplace(base, Buffer(base));
    this->lists_.add_region(base, this->kRegionBytes);
  };
  auto inside_a_region = [&](std::uintptr_t p, std::size_t n) {
    auto it = region_buffers.upper_bound(reinterpret_cast<std::byte*>(p));
    if (it == region_buffers.begin()) return false;
    const auto begin = reinterpret_cast<std::uintptr_t>(std::prev(it)->first);
    return p >= begin + kRegionOverheadBytes && p + n <= begin + this->kRegionBytes - 16;
  };
  auto record = [&](void* p, std::size_t n, std::size_t alignment) {
    ASSERT_TRUE(is_aligned(p, alignment));
    const auto address = reinterpret_cast<std::uintptr_t>(p);
    const std::size_t usable = this->lists_.usable_size(p);
    ASSERT_GE(usable, n);
    ASSERT_TRUE(inside_a_region(address, usable));
    auto next = live.lower_bound(address);
    if (next != live.end()) {
      ASSERT_LE(address + usable, next->first);
    }
    if (next != live.begin()) {
      auto prev = std::prev(next);
      ASSERT_LE(prev->first + this->lists_.usable_size(reinterpret_cast<void*>(prev->first)),
                address);
    }
    const Block block{n, static_cast<unsigned char>(rng())};
    fill(p, block);
    live[address] = block;
  };
  auto release = [&](std::uintptr_t address) {
    const Block block = live.at(address);
    ASSERT_TRUE(intact(reinterpret_cast<void*>(address), block.n, block.seed));
    live.erase(address);
    if (void* region = this->free_block(reinterpret_cast<void*>(address))) {
      ASSERT_EQ(region_buffers.erase(static_cast<std::byte*>(region)), 1u);
    }
  };
  auto random_live = [&] {
    auto it = live.begin();
    std::advance(it, uniform(0, live.size() - 1));
    return it->first;
  };

  constexpr int kOperations = 4000;
  for (int op = 0; op < kOperations; ++op) {
    const std::size_t dice = uniform(0, 99);
    if (dice < 45 || live.empty()) {
      const std::size_t n = random_size();
      const bool aligned = dice % 5 == 0;
      const std::size_t alignment = aligned ? std::size_t{1} << uniform(5, 12) : 16;
      auto attempt = [&] {
        return aligned ? this->lists_.allocate_aligned(n, alignment) : this->lists_.allocate(n);
      };
      void* p = attempt();
      if (p == nullptr) {
        new_region();
        p = attempt();
      }
      ASSERT_NE(p, nullptr) << "op " << op << ": " << n << " aligned to " << alignment;
      record(p, n, alignment);
    } else if (dice < 85) {
      release(random_live());
    } else {
      const std::uintptr_t address = random_live();
      Block& block = live.at(address);
      void* p = reinterpret_cast<void*>(address);
      const std::size_t new_n = dice % 2 ? block.n / 2 : block.n + random_size();
      const bool resized = this->lists_.try_resize(p, new_n);
      if (new_n <= block.n) {
        ASSERT_TRUE(resized);
      }
      const std::size_t kept = std::min(block.n, new_n);
      ASSERT_TRUE(intact(p, kept, block.seed)) << "op " << op;
      if (resized) {
        live.erase(address);
        record(p, new_n, 16);
      }
    }
    if (::testing::Test::HasFatalFailure()) return;
    const char* problem = this->problem();
    ASSERT_TRUE(problem == nullptr) << "op " << op << ": " << problem;
    ASSERT_EQ(this->lists_.stats().regions, region_buffers.size());
  }
  while (!live.empty()) release(live.begin()->first);
  EXPECT_CONSISTENT();
  EXPECT_TRUE(region_buffers.empty());
  EXPECT_EQ(this->lists_.stats().regions, 0u);
  EXPECT_TRUE(this->reporter_.reports.empty());
}

}  // namespace
}  // namespace hpcalloc

// A huge block's growth reuses cached pages (mem/memory_source_resize.h),
// on SimPal: the cached mapping right after the block is taken in with no
// platform call; a block that cannot grow in place moves into a resident
// cached mapping, or into a new range that cached mappings fill; pages
// decay gave back are not reused. Every byte of the block survives.
#include <gtest/gtest.h>

#include <cstring>
#include <memory>

#include "mem/memory_source.h"
#include "mem/test_configs.h"
#include "pal/sim_pal.h"

namespace hpcalloc {
namespace {

using Config = testing_configs::TinyConfig<SimPal>;
using Source = MemorySource<Config>;
using Registry = SegmentRegistry<Config>;
constexpr std::size_t kSegment = Source::kSegmentSize;  // 64 KiB

struct ResizeTest : testing::Test {
  explicit ResizeTest(SourceLimits limits = {}) {
    registry = std::make_unique<Registry>(pal);
    source = std::make_unique<Source>(pal, *registry, 0, limits);
    // The registry's leaf table first, so it sits below every mapping.
    first = source->acquire_segment(SegmentKind::kSmall, &owner);
  }
  ~ResizeTest() override {
    source->release_segment(first);
    source.reset();
  }
  // A huge block of `bytes`, every byte `value`.
  SegmentHeader* block(std::size_t bytes, unsigned char value) {
    SegmentHeader* h = source->acquire_huge(bytes, 16, &owner);
    EXPECT_NE(h, nullptr);
    std::memset(h->huge_block, value, bytes);
    return h;
  }
  static bool all_bytes(const SegmentHeader* h, std::size_t bytes, unsigned char value) {
    const auto* p = static_cast<const unsigned char*>(h->huge_block);
    for (std::size_t i = 0; i < bytes; ++i) {
      if (p[i] != value) return false;
    }
    return true;
  }
  std::uint64_t calls(PalCall call) const { return pal.stats(call).calls; }
  static char* at(const SegmentHeader* h, std::size_t offset) {
    return const_cast<char*>(reinterpret_cast<const char*>(h)) + offset;
  }

  SimPal pal;
  std::unique_ptr<Registry> registry;
  std::unique_ptr<Source> source;
  SegmentHeader* first = nullptr;
  int owner = 0;
};

TEST_F(ResizeTest, TheCachedMappingAfterTheBlockIsTakenInWithoutAPlatformCall) {
  // A 9-segment mapping, cached; a 2-segment block cut from its front
  // leaves the other 7 cached right after the block.
  source->release_segment(block(8 * kSegment, 0x11));
  SegmentHeader* h = block(kSegment, 0x22);
  ASSERT_EQ(h->mapping_size, 2 * kSegment);
  ASSERT_EQ(source->stats().cached_bytes, 7 * kSegment);
  const std::uint64_t remaps = calls(PalCall::kRemapInPlace) + calls(PalCall::kRemapMove);
  const std::uint64_t reserves = calls(PalCall::kReserve);
  const std::size_t mapped = source->stats().mapped_bytes;
  SegmentHeader* const before = h;
  ASSERT_TRUE(source->resize_huge(h, 4 * kSegment));
  EXPECT_EQ(h, before);
  EXPECT_EQ(h->mapping_size, 5 * kSegment);
  EXPECT_EQ(h->huge_size, 4 * kSegment);
  EXPECT_EQ(calls(PalCall::kRemapInPlace) + calls(PalCall::kRemapMove), remaps);
  EXPECT_EQ(calls(PalCall::kReserve), reserves);
  EXPECT_EQ(source->stats().mapped_bytes, mapped);
  EXPECT_EQ(source->stats().cache_grown_bytes, 3 * kSegment);
  EXPECT_EQ(source->stats().cached_bytes, 4 * kSegment);
  EXPECT_TRUE(all_bytes(h, kSegment, 0x22));
  EXPECT_TRUE(h->guarded);
  EXPECT_EQ(registry->lookup(at(h, 5 * kSegment - 1)), h);
  // The rest of the cached mapping has a header of its own.
  SegmentHeader* rest = registry->lookup(at(h, 5 * kSegment));
  ASSERT_EQ(reinterpret_cast<char*>(rest), at(h, 5 * kSegment));
  EXPECT_EQ(rest->kind(), SegmentKind::kCached);
  std::memset(h->huge_block, 0x33, 4 * kSegment);  // the whole new size is the block's
  // Beyond the cached rest: taken in whole, then mremap in place.
  ASSERT_TRUE(source->resize_huge(h, 20 * kSegment));
  EXPECT_EQ(h, before);
  EXPECT_EQ(source->stats().cache_grown_bytes, 7 * kSegment);
  EXPECT_EQ(source->stats().remaps_in_place, 1u);
  EXPECT_EQ(source->stats().cached_bytes, 0u);
  EXPECT_TRUE(all_bytes(h, 4 * kSegment, 0x33));
  source->release_segment(h);
}

TEST_F(ResizeTest, ABlockThatCannotGrowInPlaceMovesIntoAResidentCachedMapping) {
  SegmentHeader* h = block(kSegment, 0x44);
  SegmentHeader* wall = source->acquire_segment(SegmentKind::kSmall, &owner);
  ASSERT_EQ(reinterpret_cast<char*>(wall), at(h, h->mapping_size));
  SegmentHeader* cached = block(10 * kSegment, 0x55);  // 11 segments
  char* const cached_base = reinterpret_cast<char*>(cached);
  source->release_segment(cached);
  const std::uint64_t reserves = calls(PalCall::kReserve);
  const std::size_t mapped = source->stats().mapped_bytes;
  char* const old_base = reinterpret_cast<char*>(h);
  ASSERT_TRUE(source->resize_huge(h, 4 * kSegment));
  EXPECT_EQ(reinterpret_cast<char*>(h), cached_base);
  EXPECT_EQ(calls(PalCall::kReserve), reserves) << "a new range was mapped";
  EXPECT_EQ(pal.stats(PalCall::kRemapMove).bytes, 2 * kSegment) << "only the block's pages move";
  EXPECT_EQ(source->stats().mapped_bytes, mapped - 2 * kSegment);
  EXPECT_EQ(source->stats().cache_grown_bytes, 3 * kSegment);
  EXPECT_EQ(source->stats().cached_bytes, 6 * kSegment);
  EXPECT_EQ(h->mapping_size, 5 * kSegment);
  EXPECT_TRUE(all_bytes(h, kSegment, 0x44));
  EXPECT_EQ(registry->lookup(old_base), nullptr);
  EXPECT_EQ(registry->lookup(at(h, 5 * kSegment - 1)), h);
  EXPECT_TRUE(h->guarded);
  EXPECT_TRUE(pal.page_info(static_cast<char*>(h->huge_block) - pal.page_size()).guarded);
  source->release_segment(h);
  source->release_segment(wall);
}

TEST_F(ResizeTest, AMovedBlocksOldRangeIsUnregisteredBeforeItsPagesMove) {
  // Once the pages have moved, the kernel may give the old range to another
  // thread's mmap at once; a registry clear after the move would then wipe
  // that thread's registration (its live block unknown, reported foreign).
  SegmentHeader* h = block(kSegment, 0x44);
  SegmentHeader* wall = source->acquire_segment(SegmentKind::kSmall, &owner);
  ASSERT_EQ(reinterpret_cast<char*>(wall), at(h, h->mapping_size)) << "no growth in place";
  struct Seen {
    Registry* registry;
    SegmentHeader* at_freed_range;
    int moves;
  } seen{registry.get(), nullptr, 0};
  pal.set_after_remap_move(
      [](void* context, void* freed) {
        auto* s = static_cast<Seen*>(context);
        s->at_freed_range = s->registry->lookup(freed);
        ++s->moves;
      },
      &seen);
  char* const old_base = reinterpret_cast<char*>(h);
  ASSERT_TRUE(source->resize_huge(h, 4 * kSegment));
  pal.set_after_remap_move(nullptr, nullptr);
  EXPECT_NE(reinterpret_cast<char*>(h), old_base);
  EXPECT_EQ(seen.moves, 1);
  EXPECT_EQ(seen.at_freed_range, nullptr) << "the range was still registered when it was freed";
  EXPECT_TRUE(all_bytes(h, kSegment, 0x44));
  EXPECT_EQ(registry->lookup(at(h, 5 * kSegment - 1)), h);
  source->release_segment(h);
  source->release_segment(wall);
}

TEST_F(ResizeTest, ANewRangeIsFilledFromSmallerCachedMappings) {
  SegmentHeader* h = block(kSegment, 0x66);
  SegmentHeader* wall = source->acquire_segment(SegmentKind::kSmall, &owner);
  SegmentHeader* two = block(kSegment, 0x77);  // 2 segments
  SegmentHeader* gap = source->acquire_segment(SegmentKind::kSmall, &owner);
  SegmentHeader* three = block(2 * kSegment, 0x88);  // 3 segments
  source->release_segment(two);
  source->release_segment(three);
  const std::uint64_t reserves = calls(PalCall::kReserve);
  ASSERT_TRUE(source->resize_huge(h, 6 * kSegment));  // 7 segments: none fits
  EXPECT_EQ(calls(PalCall::kReserve), reserves + 1);
  EXPECT_EQ(source->stats().cache_grown_bytes, 5 * kSegment);
  EXPECT_EQ(source->stats().cached_bytes, 0u);
  EXPECT_EQ(h->mapping_size, 7 * kSegment);
  EXPECT_TRUE(all_bytes(h, kSegment, 0x66));
  for (std::size_t offset = 0; offset < 7 * kSegment; offset += kSegment) {
    EXPECT_EQ(registry->lookup(at(h, offset)), h) << offset;
  }
  std::memset(h->huge_block, 0x99, 6 * kSegment);
  EXPECT_TRUE(all_bytes(h, 6 * kSegment, 0x99));
  source->release_segment(h);
  source->release_segment(wall);
  source->release_segment(gap);
}

struct ResizeAfterDecay : ResizeTest {
  ResizeAfterDecay() : ResizeTest(SourceLimits{.decay_ms = kDecayAtOnce}) {}
};

TEST_F(ResizeAfterDecay, CachedMappingsWhosePagesWentBackAreNotReused) {
  SegmentHeader* h = block(kSegment, 0x12);
  SegmentHeader* wall = source->acquire_segment(SegmentKind::kSmall, &owner);
  source->release_segment(block(10 * kSegment, 0x34));  // decays at once
  ASSERT_EQ(source->stats().cached_resident_bytes, 0u);
  ASSERT_GT(source->stats().cached_bytes, 0u);
  ASSERT_TRUE(source->resize_huge(h, 4 * kSegment));
  EXPECT_EQ(source->stats().cache_grown_bytes, 0u);
  EXPECT_GT(source->stats().cached_bytes, 0u);
  EXPECT_TRUE(all_bytes(h, kSegment, 0x12));
  source->release_segment(h);
  source->release_segment(wall);
}

}  // namespace
}  // namespace hpcalloc

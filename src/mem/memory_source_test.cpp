// MemorySource on SimPal: mapping, registration, the cache (hits, closest
// fit, limits, eviction, decommit policy), mremap growth in place and by
// moving, NUMA binding, and every injected platform failure.
#include "mem/memory_source.h"

#include <gtest/gtest.h>

#include <cstring>
#include <memory>

#include "mem/test_configs.h"
#include "pal/sim_pal.h"

namespace hpcalloc {
namespace {

using Config = testing_configs::TinyConfig<SimPal>;
using Source = MemorySource<Config>;
using Registry = SegmentRegistry<Config>;
constexpr std::size_t kSegment = Source::kSegmentSize;  // 64 KiB

struct SourceTest : testing::Test {
  explicit SourceTest(SourceLimits limits = {}, SimPalOptions options = {}) {
    pal = std::make_unique<SimPal>(options);
    registry = std::make_unique<Registry>(*pal);
    source = std::make_unique<Source>(*pal, *registry, 0, limits);
  }
  void rebuild(SourceLimits limits, SimPalOptions options = {}, unsigned node = 0) {
    source.reset();
    registry.reset();
    pal = std::make_unique<SimPal>(options);
    registry = std::make_unique<Registry>(*pal);
    source = std::make_unique<Source>(*pal, *registry, node, limits);
  }
  // Bytes the pal has reserved besides the registry's leaf tables.
  std::size_t mapped() const {
    return pal->reserved_bytes() - registry->leaf_count() * registry->leaf_bytes();
  }
  std::unique_ptr<SimPal> pal;
  std::unique_ptr<Registry> registry;
  std::unique_ptr<Source> source;
  int owner = 0;
};

// The mapping a huge block of `usable` bytes needs at h: its offset in the
// mapping (header and guard page) plus the block, in whole segments.
std::size_t expected_mapping(const SegmentHeader* h, std::size_t usable) {
  const auto offset = static_cast<std::size_t>(static_cast<const char*>(h->huge_block) -
                                               reinterpret_cast<const char*>(h));
  return align_up(offset + usable, kSegment);
}

TEST_F(SourceTest, SegmentsAreAlignedRegisteredAndFresh) {
  SegmentHeader* s = source->acquire_segment(SegmentKind::kSmall, &owner);
  ASSERT_NE(s, nullptr);
  EXPECT_TRUE(is_aligned(s, kSegment));
  EXPECT_TRUE(s->is_valid());
  EXPECT_EQ(s->kind(), SegmentKind::kSmall);
  EXPECT_EQ(s->owner(), &owner);
  EXPECT_TRUE(s->fresh);
  EXPECT_EQ(s->mapping_size, kSegment);
  auto* bytes = reinterpret_cast<char*>(s);
  EXPECT_EQ(registry->lookup(bytes), s);
  EXPECT_EQ(registry->lookup(bytes + kSegment - 1), s);
  EXPECT_EQ(registry->lookup(bytes + kSegment), nullptr);
  EXPECT_EQ(source->stats().mapped_bytes, kSegment);
  EXPECT_EQ(mapped(), kSegment);
  source->release_segment(s);
}

TEST_F(SourceTest, ReleasedSegmentsAreCachedAndReused) {
  SegmentHeader* s = source->acquire_segment(SegmentKind::kSmall, &owner);
  std::memset(reinterpret_cast<char*>(s) + sizeof(SegmentHeader), 0x5a, 100);
  source->release_segment(s);
  EXPECT_EQ(source->stats().cached_mappings, 1u);
  EXPECT_EQ(registry->lookup(s), s);  // still registered, as cached
  EXPECT_EQ(s->kind(), SegmentKind::kCached);
  SegmentHeader* again = source->acquire_segment(SegmentKind::kMedium, &owner);
  EXPECT_EQ(again, s);
  EXPECT_FALSE(again->fresh);  // dirty: calloc must clear it
  EXPECT_EQ(again->kind(), SegmentKind::kMedium);
  const SourceStats stats = source->stats();
  EXPECT_EQ(stats.cache_hits, 1u);
  EXPECT_EQ(stats.os_reserves, 1u);
  source->release_segment(again);
  source->trim();
  EXPECT_EQ(source->stats().mapped_bytes, 0u);
  EXPECT_EQ(mapped(), 0u);
  EXPECT_EQ(registry->lookup(s), nullptr);
}

TEST_F(SourceTest, PerBlockLimitUnmapsAtOnce) {
  rebuild(SourceLimits{.cache_max_block = kSegment - 1});
  SegmentHeader* s = source->acquire_segment(SegmentKind::kSmall, &owner);
  source->release_segment(s);
  EXPECT_EQ(source->stats().cached_mappings, 0u);
  EXPECT_EQ(mapped(), 0u);
  EXPECT_EQ(registry->lookup(s), nullptr);
}

TEST_F(SourceTest, TotalLimitEvictsOldestFirst) {
  rebuild(SourceLimits{.cache_max_total = 2 * kSegment});
  SegmentHeader* s[3];
  for (auto& p : s) p = source->acquire_segment(SegmentKind::kSmall, &owner);
  for (auto* p : s) source->release_segment(p);
  EXPECT_EQ(source->stats().cached_mappings, 2u);
  EXPECT_EQ(source->stats().cached_bytes, 2 * kSegment);
  EXPECT_EQ(registry->lookup(s[0]), nullptr);  // the oldest went
  EXPECT_EQ(registry->lookup(s[2]), s[2]);
  EXPECT_EQ(mapped(), 2 * kSegment);
}

TEST_F(SourceTest, EntryLimitEvictsToo) {
  SegmentHeader* s[Config::kMappingCacheEntries + 2];
  for (auto& p : s) p = source->acquire_segment(SegmentKind::kSmall, &owner);
  for (auto* p : s) source->release_segment(p);
  EXPECT_EQ(source->stats().cached_mappings, Config::kMappingCacheEntries);
  EXPECT_EQ(mapped(), Config::kMappingCacheEntries * kSegment);
}

TEST_F(SourceTest, DecommitPolicyGivesPagesBackAndReuseReadsZero) {
  rebuild(SourceLimits{.decay_ms = kDecayAtOnce});
  SegmentHeader* s = source->acquire_segment(SegmentKind::kSmall, &owner);
  auto* bytes = reinterpret_cast<char*>(s);
  std::memset(bytes + 4096, 0x77, 8192);
  const std::size_t committed = pal->committed_bytes();
  source->release_segment(s);
  EXPECT_EQ(pal->committed_bytes(), committed - kSegment);
  SegmentHeader* again = source->acquire_segment(SegmentKind::kSmall, &owner);
  ASSERT_EQ(again, s);
  EXPECT_TRUE(again->fresh);
  for (std::size_t i = 4096; i < 4096 + 8192; ++i) ASSERT_EQ(bytes[i], 0);
  source->release_segment(again);
}

TEST_F(SourceTest, HugeBlocksUseTheClosestFitAndKeepTheRestCached) {
  SegmentHeader* big = source->acquire_huge(10 * kSegment, 16, &owner);
  SegmentHeader* mid = source->acquire_huge(4 * kSegment, 16, &owner);
  SegmentHeader* small = source->acquire_huge(2 * kSegment, 16, &owner);
  ASSERT_TRUE(big && mid && small);
  EXPECT_EQ(big->huge_size, 10 * kSegment);
  EXPECT_TRUE(is_aligned(big->huge_block, pal->page_size()));
  source->release_segment(big);
  source->release_segment(mid);
  source->release_segment(small);
  // 3 segments' worth: mid (5 slots with its header page) is the closest fit.
  SegmentHeader* h = source->acquire_huge(3 * kSegment, 16, &owner);
  EXPECT_EQ(h, mid);
  EXPECT_EQ(h->mapping_size, 4 * kSegment);  // split from 5 slots to 4
  // The fifth slot's pages are resident: a cached mapping of its own now,
  // under its own header, which a stale pointer there finds.
  char* rest = reinterpret_cast<char*>(h) + 4 * kSegment;
  SegmentHeader* rest_header = registry->lookup(rest + 100);
  ASSERT_EQ(reinterpret_cast<char*>(rest_header), rest);
  EXPECT_EQ(rest_header->kind(), SegmentKind::kCached);
  EXPECT_EQ(rest_header->mapping_size, kSegment);
  EXPECT_EQ(source->stats().cache_hits, 1u);
  EXPECT_EQ(source->stats().cached_mappings, 3u);  // big, small and the rest
  SegmentHeader* segment = source->acquire_segment(SegmentKind::kSmall, &owner);
  EXPECT_EQ(reinterpret_cast<char*>(segment), rest);  // the closest fit
  source->release_segment(segment);
  source->release_segment(h);
}

// ---- Requests larger than every cached mapping: assembled by mremap ----

TEST_F(SourceTest, ALargerRequestIsAssembledFromTheCachedPagesAndOnlyTheRestIsNew) {
  SegmentHeader* a = source->acquire_huge(4 * kSegment, 16, &owner);  // 5 slots
  SegmentHeader* b = source->acquire_huge(2 * kSegment, 16, &owner);  // 3 slots
  ASSERT_TRUE(a && b);
  std::memset(a->huge_block, 0xa1, 4 * kSegment);
  std::memset(b->huge_block, 0xb2, 2 * kSegment);
  char* const a_base = reinterpret_cast<char*>(a);
  char* const b_base = reinterpret_cast<char*>(b);
  const std::size_t a_map = a->mapping_size;
  const std::size_t b_map = b->mapping_size;
  const auto guard_offset =
      static_cast<std::size_t>(static_cast<char*>(b->huge_block) - b_base) - pal->page_size();
  source->release_segment(a);
  source->release_segment(b);
  const std::size_t before = mapped();
  SegmentHeader* h = source->acquire_huge(10 * kSegment, 16, &owner);  // 11 slots
  ASSERT_NE(h, nullptr);
  char* const base = reinterpret_cast<char*>(h);
  EXPECT_FALSE(h->fresh) << "calloc would skip the memset of moved pages";
  EXPECT_EQ(h->mapping_size, 11 * kSegment);
  EXPECT_EQ(source->stats().cache_assembled_bytes, a_map + b_map);
  EXPECT_EQ(source->stats().cached_mappings, 0u);
  // The pages moved, largest piece first: their bytes are there, and the
  // old ranges are gone (no longer mapped, no longer registered).
  EXPECT_EQ(static_cast<unsigned char*>(h->huge_block)[0], 0xa1);
  EXPECT_EQ(static_cast<unsigned char>(base[a_map + 2 * pal->page_size()]), 0xb2);
  EXPECT_EQ(static_cast<unsigned char>(base[a_map + b_map]), 0);  // the new part
  EXPECT_EQ(mapped(), before - a_map - b_map + h->mapping_size);
  EXPECT_EQ(registry->lookup(a_base), nullptr);
  EXPECT_EQ(registry->lookup(b_base + b_map - 1), nullptr);
  EXPECT_EQ(registry->lookup(base + h->mapping_size - 1), h);
  // b's guard page was lifted before it moved; the block has its own guard.
  EXPECT_FALSE(pal->page_info(base + a_map + guard_offset).guarded);
  EXPECT_TRUE(h->guarded);
  std::memset(h->huge_block, 0x5c, 10 * kSegment);
  source->release_segment(h);
  EXPECT_TRUE(source->stats().cached_mappings == 1u);
}

TEST_F(SourceTest, WhatAnAssembledRequestDoesNotTakeStaysCached) {
  SegmentHeader* a = source->acquire_huge(4 * kSegment, 16, &owner);  // 5 slots
  SegmentHeader* b = source->acquire_huge(4 * kSegment, 16, &owner);  // 5 slots
  char* const second = reinterpret_cast<char*>(b);  // the newer: taken second among equals
  source->release_segment(a);
  source->release_segment(b);
  SegmentHeader* h = source->acquire_huge(6 * kSegment, 16, &owner);  // 7 slots: 5 + 2
  ASSERT_NE(h, nullptr);
  EXPECT_EQ(source->stats().cache_assembled_bytes, 7 * kSegment);
  EXPECT_EQ(source->stats().cached_mappings, 1u);
  EXPECT_EQ(source->stats().cached_bytes, 3 * kSegment);
  // The rest is whichever piece came second, past the two slots it gave.
  char* const first_piece_rest = reinterpret_cast<char*>(a) + 2 * kSegment;
  SegmentHeader* rest = registry->lookup(second + 2 * kSegment);
  if (rest == nullptr) rest = registry->lookup(first_piece_rest);
  ASSERT_NE(rest, nullptr);
  EXPECT_EQ(rest->kind(), SegmentKind::kCached);
  EXPECT_EQ(rest->mapping_size, 3 * kSegment);
  source->release_segment(h);
}

TEST_F(SourceTest, AFailedMoveLeavesThePieceCachedAndServesTheRequestFresh) {
  SegmentHeader* a = source->acquire_huge(4 * kSegment, 16, &owner);
  char* const a_base = reinterpret_cast<char*>(a);
  const std::size_t a_map = a->mapping_size;
  std::memset(a->huge_block, 0xa1, 4 * kSegment);
  source->release_segment(a);
  const std::size_t before = mapped();
  pal->fail_always(PalCall::kRemapMove, true);
  SegmentHeader* h = source->acquire_huge(10 * kSegment, 16, &owner);
  pal->fail_always(PalCall::kRemapMove, false);
  ASSERT_NE(h, nullptr);
  EXPECT_TRUE(h->fresh);
  EXPECT_EQ(source->stats().cache_assembled_bytes, 0u);
  EXPECT_EQ(mapped(), before + h->mapping_size);
  // Back in the cache as it was (its guard lifted), still registered there.
  EXPECT_EQ(source->stats().cached_bytes, a_map);
  EXPECT_EQ(registry->lookup(a_base + a_map - 1), reinterpret_cast<SegmentHeader*>(a_base));
  EXPECT_EQ(reinterpret_cast<SegmentHeader*>(a_base)->kind(), SegmentKind::kCached);
  EXPECT_EQ(static_cast<unsigned char>(a_base[2 * pal->page_size() + 100]), 0xa1);
  source->release_segment(h);
}

struct SourceDecaysAtOnceTest : SourceTest {
  SourceDecaysAtOnceTest() : SourceTest(SourceLimits{.decay_ms = kDecayAtOnce}) {}
};

TEST_F(SourceDecaysAtOnceTest, DecayedMappingsAreNotAssembled) {
  SegmentHeader* a = source->acquire_huge(4 * kSegment, 16, &owner);
  source->release_segment(a);  // decommitted at once: no pages to move
  SegmentHeader* h = source->acquire_huge(10 * kSegment, 16, &owner);
  ASSERT_NE(h, nullptr);
  EXPECT_TRUE(h->fresh);
  EXPECT_EQ(source->stats().cache_assembled_bytes, 0u);
  source->release_segment(h);
}

TEST_F(SourceTest, HugeAlignmentBeyondTheSegmentSize) {
  for (std::size_t alignment = 2 * kSegment; alignment <= 16 * kSegment; alignment *= 2) {
    SegmentHeader* h = source->acquire_huge(3 * kSegment, alignment, &owner);
    ASSERT_NE(h, nullptr);
    EXPECT_TRUE(is_aligned(h->huge_block, alignment));
    EXPECT_EQ(registry->lookup(h->huge_block), h);
    source->release_segment(h);
  }
  source->trim();
  EXPECT_EQ(mapped(), 0u);  // the over-reservations were trimmed exactly
}

TEST_F(SourceTest, ResizeGrowsInPlaceThenByMovingAndShrinks) {
  // Map the registry's leaf table first, so it does not sit right after the
  // block in the (first-fit) arena.
  SegmentHeader* first = source->acquire_segment(SegmentKind::kSmall, &owner);
  SegmentHeader* h = source->acquire_huge(2 * kSegment, 16, &owner);
  std::memset(h->huge_block, 0x42, 2 * kSegment);
  ASSERT_TRUE(source->resize_huge(h, 6 * kSegment));  // arena after it is free
  EXPECT_EQ(source->stats().remaps_in_place, 1u);
  // Block the address space after it, forcing a move next time.
  SegmentHeader* wall = source->acquire_segment(SegmentKind::kSmall, &owner);
  ASSERT_EQ(reinterpret_cast<char*>(wall), reinterpret_cast<char*>(h) + h->mapping_size);
  SegmentHeader* before = h;
  const std::size_t mapped_before_move = mapped();
  const std::size_t old_mapping = h->mapping_size;
  EXPECT_EQ(old_mapping, expected_mapping(h, 6 * kSegment));
  ASSERT_TRUE(source->resize_huge(h, 20 * kSegment));
  EXPECT_NE(h, before);
  EXPECT_EQ(source->stats().remaps_moved, 1u);
  EXPECT_EQ(registry->lookup(before), nullptr);
  EXPECT_EQ(registry->lookup(h->huge_block), h);
  // The moved block's bookkeeping is its new size, not the old one.
  EXPECT_EQ(h->mapping_size, expected_mapping(h, 20 * kSegment));
  EXPECT_EQ(h->huge_size, 20 * kSegment);
  EXPECT_EQ(mapped(), mapped_before_move - old_mapping + h->mapping_size);
  EXPECT_EQ(registry->lookup(static_cast<char*>(h->huge_block) + 20 * kSegment - 1), h);
  auto* bytes = static_cast<unsigned char*>(h->huge_block);
  for (std::size_t i = 0; i < 2 * kSegment; ++i) ASSERT_EQ(bytes[i], 0x42);
  bytes[20 * kSegment - 1] = 0x43;                // the whole new size is the block's
  ASSERT_TRUE(source->resize_huge(h, kSegment));  // shrink in place
  EXPECT_EQ(h->mapping_size, 2 * kSegment);
  EXPECT_EQ(bytes[kSegment - 1], 0x42);
  source->release_segment(h);
  source->release_segment(wall);
  source->release_segment(first);
}

TEST_F(SourceTest, NumaBindingPlacesPagesOnTheSourcesNode) {
  rebuild(SourceLimits{.numa_policy = NumaPolicy::kBind}, SimPalOptions{.node_count = 3}, 2);
  SegmentHeader* s = source->acquire_segment(SegmentKind::kSmall, &owner);
  EXPECT_EQ(s->node(), 2);
  EXPECT_EQ(pal->page_info(s).node, 2);
  EXPECT_EQ(pal->committed_bytes_on_node(2), kSegment);
  EXPECT_EQ(pal->committed_bytes_on_node(0), registry->leaf_count() * registry->leaf_bytes());
  pal->fail_always(PalCall::kBind, true);
  SegmentHeader* t = source->acquire_segment(SegmentKind::kSmall, &owner);
  EXPECT_NE(t, nullptr);  // placement failed, memory still usable
  EXPECT_EQ(source->stats().bind_failures, 1u);
  source->release_segment(s);
  source->release_segment(t);
}

TEST_F(SourceTest, ReserveFailureGivesEnomemAndLeavesNothing) {
  pal->fail_always(PalCall::kReserve, true);
  errno = 0;
  EXPECT_EQ(source->acquire_segment(SegmentKind::kSmall, &owner), nullptr);
  EXPECT_EQ(errno, ENOMEM);
  EXPECT_EQ(source->acquire_huge(5 * kSegment, 16, &owner), nullptr);
  EXPECT_EQ(mapped(), 0u);
  EXPECT_EQ(source->stats().mapped_bytes, 0u);
}

TEST_F(SourceTest, RegistryTableFailureUnwindsTheMapping) {
  // The segment's reserve succeeds; the registry's leaf reserve fails.
  pal->fail_after(PalCall::kReserve, 1);
  errno = 0;
  EXPECT_EQ(source->acquire_segment(SegmentKind::kSmall, &owner), nullptr);
  EXPECT_EQ(errno, ENOMEM);
  EXPECT_EQ(pal->reserved_bytes(), 0u);
  EXPECT_EQ(source->stats().mapped_bytes, 0u);
}

TEST_F(SourceTest, RemapFailuresLeaveTheBlockIntact) {
  SegmentHeader* h = source->acquire_huge(2 * kSegment, 16, &owner);
  std::memset(h->huge_block, 0x33, 2 * kSegment);
  SegmentHeader* original = h;
  pal->fail_always(PalCall::kRemapInPlace, true);
  pal->fail_always(PalCall::kRemapMove, true);
  const std::size_t before = mapped();
  errno = 0;
  EXPECT_FALSE(source->resize_huge(h, 8 * kSegment));
  EXPECT_EQ(errno, ENOMEM);
  EXPECT_EQ(h, original);
  EXPECT_EQ(h->mapping_size, 3 * kSegment);
  EXPECT_EQ(mapped(), before);  // the move's target was given back
  EXPECT_EQ(registry->lookup(h->huge_block), h);
  EXPECT_EQ(static_cast<unsigned char*>(h->huge_block)[2 * kSegment - 1], 0x33);
  pal->fail_always(PalCall::kRemapMove, false);
  EXPECT_TRUE(source->resize_huge(h, 8 * kSegment));  // in place fails, move works
  EXPECT_EQ(source->stats().remaps_moved, 1u);
  // Forced by injection: the moved block has its new size everywhere.
  EXPECT_NE(h, original);
  EXPECT_EQ(h->mapping_size, expected_mapping(h, 8 * kSegment));
  EXPECT_EQ(h->huge_size, 8 * kSegment);
  EXPECT_EQ(mapped(), before - 3 * kSegment + h->mapping_size);
  EXPECT_EQ(static_cast<unsigned char*>(h->huge_block)[2 * kSegment - 1], 0x33);
  const std::size_t cached = source->stats().cached_bytes;
  const std::size_t moved_mapping = h->mapping_size;
  source->release_segment(h);
  EXPECT_EQ(source->stats().cached_bytes, cached + moved_mapping);  // all of the new size
}

TEST_F(SourceTest, CommitFailureOnReuseMapsAfresh) {
  rebuild(SourceLimits{.decay_ms = kDecayAtOnce});
  SegmentHeader* s = source->acquire_segment(SegmentKind::kSmall, &owner);
  source->release_segment(s);
  pal->fail_always(PalCall::kCommit, true);
  SegmentHeader* t = source->acquire_segment(SegmentKind::kSmall, &owner);
  ASSERT_NE(t, nullptr);
  EXPECT_TRUE(t->fresh);
  EXPECT_EQ(source->stats().cached_mappings, 0u);
  EXPECT_EQ(mapped(), kSegment);  // the uncommittable one was unmapped
  source->release_segment(t);
}

TEST_F(SourceTest, DecommitFailureStillCachesAsDirty) {
  rebuild(SourceLimits{.decay_ms = kDecayAtOnce});
  SegmentHeader* s = source->acquire_segment(SegmentKind::kSmall, &owner);
  pal->fail_always(PalCall::kDecommit, true);
  source->release_segment(s);
  EXPECT_EQ(s->kind(), SegmentKind::kCached);
  SegmentHeader* t = source->acquire_segment(SegmentKind::kSmall, &owner);
  EXPECT_EQ(t, s);
  EXPECT_FALSE(t->fresh);
  source->release_segment(t);
}

TEST_F(SourceTest, ReleaseFailureKeepsTheRangeUnreachable) {
  rebuild(SourceLimits{.cache_max_block = 0});
  SegmentHeader* s = source->acquire_segment(SegmentKind::kSmall, &owner);
  pal->fail_always(PalCall::kRelease, true);
  source->release_segment(s);
  EXPECT_EQ(registry->lookup(s), nullptr);            // never handed out again
  EXPECT_EQ(source->stats().mapped_bytes, kSegment);  // and honestly counted
  pal->fail_always(PalCall::kRelease, false);
}

// The page right below every huge block is a guard (SimPal records it),
// wherever the block goes: acquired, grown in place, moved; and none is
// left in a cached mapping (it may come back as a segment).
TEST_F(SourceTest, HugeBlocksHaveAGuardPageBelowThem) {
  const std::size_t page = pal->page_size();
  auto expect_guarded = [&](const SegmentHeader* h) {
    const auto* block = static_cast<const char*>(h->huge_block);
    EXPECT_TRUE(pal->page_info(block - page).guarded);
    EXPECT_FALSE(pal->page_info(h).guarded) << "the header's page";
    EXPECT_FALSE(pal->page_info(block).guarded);
    EXPECT_GE(block - reinterpret_cast<const char*>(h), static_cast<std::ptrdiff_t>(2 * page));
  };
  SegmentHeader* first = source->acquire_segment(SegmentKind::kSmall, &owner);
  for (std::size_t alignment : {std::size_t{16}, page, 2 * page, 4 * page, kSegment}) {
    SegmentHeader* h = source->acquire_huge(kSegment, alignment, &owner);
    ASSERT_NE(h, nullptr);
    EXPECT_TRUE(is_aligned(h->huge_block, alignment));
    expect_guarded(h);
    source->release_segment(h);
  }
  source->trim();  // so that the wall below lands right after the block
  SegmentHeader* h = source->acquire_huge(2 * kSegment, 16, &owner);
  ASSERT_TRUE(source->resize_huge(h, 6 * kSegment));  // in place
  expect_guarded(h);
  SegmentHeader* wall = source->acquire_segment(SegmentKind::kSmall, &owner);
  ASSERT_EQ(reinterpret_cast<char*>(wall), reinterpret_cast<char*>(h) + h->mapping_size);
  ASSERT_TRUE(source->resize_huge(h, 20 * kSegment));  // moved
  EXPECT_EQ(source->stats().remaps_moved, 1u);
  expect_guarded(h);
  char* guard = static_cast<char*>(h->huge_block) - page;
  char* mapping = reinterpret_cast<char*>(h);
  source->release_segment(h);  // cached, guard and all
  ASSERT_EQ(source->stats().cached_mappings, 1u);
  EXPECT_TRUE(pal->page_info(guard).guarded);
  // A huge block reusing it at the same offset needs no call; a segment
  // reusing it gets the guard lifted (every page of a segment is used).
  const std::uint64_t protects = pal->stats(PalCall::kProtect).calls;
  h = source->acquire_huge(20 * kSegment, 16, &owner);  // the whole mapping
  ASSERT_EQ(reinterpret_cast<char*>(h), mapping);
  expect_guarded(h);
  EXPECT_EQ(pal->stats(PalCall::kProtect).calls, protects);
  source->release_segment(h);  // the only cached mapping
  SegmentHeader* reused = source->acquire_segment(SegmentKind::kSmall, &owner);
  ASSERT_EQ(reinterpret_cast<char*>(reused), mapping);
  EXPECT_FALSE(pal->page_info(guard).guarded);
  EXPECT_EQ(source->stats().guard_failures, 0u);
  source->release_segment(reused);
  source->release_segment(wall);
  source->release_segment(first);
}

// A guard that cannot be set is counted and the block served without it;
// a cached mapping whose guard cannot be lifted (the program remapped the
// page) is unmapped, never handed out as a segment with a hole.
TEST_F(SourceTest, GuardFailuresServeTheBlockAndNeverReuseAHole) {
  pal->fail_after(PalCall::kProtect, 0, 1);
  SegmentHeader* h = source->acquire_huge(kSegment, 16, &owner);
  ASSERT_NE(h, nullptr);
  EXPECT_FALSE(h->guarded);
  EXPECT_EQ(source->stats().guard_failures, 1u);
  std::memset(h->huge_block, 1, kSegment);
  char* mapping = reinterpret_cast<char*>(h);
  source->release_segment(h);
  h = source->acquire_huge(kSegment, 16, &owner);  // the cached one, guarded now
  ASSERT_EQ(reinterpret_cast<char*>(h), mapping);
  EXPECT_TRUE(h->guarded);
  source->release_segment(h);
  pal->fail_after(PalCall::kProtect, 0, 1);
  SegmentHeader* segment = source->acquire_segment(SegmentKind::kSmall, &owner);
  ASSERT_NE(segment, nullptr);
  EXPECT_EQ(source->stats().cached_mappings, 0u);
  EXPECT_FALSE(pal->page_info(segment).reserved && reinterpret_cast<char*>(segment) == mapping &&
               pal->page_info(mapping + pal->page_size()).guarded);
  source->release_segment(segment);
}

}  // namespace
}  // namespace hpcalloc

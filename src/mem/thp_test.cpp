// Transparent huge pages (HPCALLOC_THP, mem/memory_source.h's ThpMode) on
// SimPal, which records each page's advice: which mappings are advised in
// each mode, that a reused mapping gets the advice its new use needs, and
// that under `always` decay and a thread's exit give back no part of a
// segment (it would split the huge page) unless HPCALLOC_THP_SPLIT allows
// it, while malloc_trim still gives everything back.
#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "mem/heap_fixture.h"
#include "mem/memory_source.h"
#include "mem/test_configs.h"
#include "pal/sim_pal.h"

namespace hpcalloc {
namespace {

using Config = testing_configs::ProductionGeometryConfig<SimPal>;
using Fixture = testing_configs::HeapFixture<Config>;
constexpr std::int64_t kDelay = 1000;

SourceLimits with_thp(ThpMode mode, bool split = false) {
  SourceLimits limits;
  limits.thp = mode;
  limits.thp_split = split;
  limits.decay_ms = kDelay;
  return limits;
}
SimPalOptions big_arena() { return SimPalOptions{.arena_size = std::size_t{512} << 20}; }

struct Advice {
  int segment;
  int huge_block;
};

Advice advice_in(ThpMode mode) {
  Fixture f(with_thp(mode), big_arena());
  int owner = 0;
  SegmentHeader* s = f.source->acquire_segment(SegmentKind::kSmall, &owner);
  SegmentHeader* h = f.source->acquire_huge(std::size_t{5} << 20, 16, &owner);
  const Advice advice{f.pal.page_info(s).huge_advice, f.pal.page_info(h->huge_block).huge_advice};
  EXPECT_EQ(s->huge_pages, advice.segment == 1);
  EXPECT_EQ(h->huge_pages, advice.huge_block == 1);
  f.source->release_segment(s);
  f.source->release_segment(h);
  return advice;
}

TEST(Thp, EachModeAdvisesTheMappingsItNames) {
  const Advice def = advice_in(ThpMode::kDefault);
  EXPECT_EQ(def.segment, 0);
  EXPECT_EQ(def.huge_block, 0);
  const Advice never = advice_in(ThpMode::kNever);
  EXPECT_EQ(never.segment, -1);
  EXPECT_EQ(never.huge_block, -1);
  const Advice madvise = advice_in(ThpMode::kMadvise);
  EXPECT_EQ(madvise.segment, 0);
  EXPECT_EQ(madvise.huge_block, 1);
  const Advice always = advice_in(ThpMode::kAlways);
  EXPECT_EQ(always.segment, 1);
  EXPECT_EQ(always.huge_block, 1);
}

TEST(Thp, UnderMadviseAHugeBlocksMappingReusedAsASegmentLosesItsAdvice) {
  Fixture f(with_thp(ThpMode::kMadvise), big_arena());
  int owner = 0;
  SegmentHeader* h = f.source->acquire_huge(std::size_t{1} << 20, 16, &owner);  // one slot
  char* const base = reinterpret_cast<char*>(h);
  ASSERT_EQ(f.pal.page_info(base).huge_advice, 1);
  f.source->release_segment(h);
  SegmentHeader* s = f.source->acquire_segment(SegmentKind::kSmall, &owner);
  ASSERT_EQ(reinterpret_cast<char*>(s), base);  // the cached mapping
  EXPECT_EQ(f.pal.page_info(base).huge_advice, -1);
  EXPECT_FALSE(s->huge_pages);
  f.source->release_segment(s);
  const std::uint64_t calls = f.pal.stats(PalCall::kAdviseHugePages).calls;
  SegmentHeader* again = f.source->acquire_segment(SegmentKind::kSmall, &owner);
  EXPECT_EQ(f.pal.stats(PalCall::kAdviseHugePages).calls, calls) << "advised already";
  f.source->release_segment(again);
}

// Fills runs of one class and frees them all but one block in 500, so
// runs retire (free pages a pass could give back).
std::vector<void*> retire_runs(Fixture::Heap& heap) {
  std::vector<void*> blocks;
  std::vector<void*> kept;
  for (int i = 0; i < 4000; ++i) blocks.push_back(heap.malloc(512));
  for (std::size_t i = 0; i < blocks.size(); ++i) {
    if (i % 500 == 0) {
      kept.push_back(blocks[i]);
    } else {
      heap.free(blocks[i]);
    }
  }
  return kept;
}

// Several delays pass, each ending in a slow path of the heap.
void let_delays_pass(Fixture& f) {
  for (int i = 0; i < 4; ++i) {
    f.pal.advance_ms(kDelay);
    f.heap->decay_tick();
  }
}

TEST(Thp, UnderAlwaysDecayAndThreadExitSplitNoHugePageButMallocTrimDoes) {
  Fixture f(with_thp(ThpMode::kAlways), big_arena());
  auto& heap = *f.heap;
  const std::vector<void*> kept = retire_runs(heap);
  const std::size_t committed = f.pal.committed_bytes();
  let_delays_pass(f);
  EXPECT_EQ(f.pal.committed_bytes(), committed) << "decay split a segment's huge page";
  EXPECT_EQ(f.source->stats().decayed_bytes, 0u);
  heap.trim_at_exit();
  EXPECT_EQ(f.source->stats().trimmed_bytes, 0u) << "a thread's exit split a huge page";
  heap.trim(/*release_cached_mappings=*/false);  // malloc_trim: the user asks
  EXPECT_GT(f.source->stats().trimmed_bytes, 0u);
  EXPECT_LT(f.pal.committed_bytes(), committed);
  for (void* p : kept) heap.free(p);
  EXPECT_TRUE(f.reporter.reports.empty());
}

TEST(Thp, UnderAlwaysWithSplitAllowedDecayGivesBackPartsOfSegments) {
  Fixture f(with_thp(ThpMode::kAlways, /*split=*/true), big_arena());
  auto& heap = *f.heap;
  const std::vector<void*> kept = retire_runs(heap);
  const std::size_t committed = f.pal.committed_bytes();
  let_delays_pass(f);
  EXPECT_GT(f.source->stats().decayed_bytes, 0u);
  EXPECT_LT(f.pal.committed_bytes(), committed);
  for (void* p : kept) heap.free(p);
}

TEST(Thp, WholeCachedMappingsDecayUnderAlways) {
  Fixture f(with_thp(ThpMode::kAlways), big_arena());
  int owner = 0;
  SegmentHeader* s = f.source->acquire_segment(SegmentKind::kSmall, &owner);
  f.source->release_segment(s);
  f.pal.advance_ms(kDelay);
  f.source->decay(f.source->now_ms());
  EXPECT_EQ(f.source->stats().decayed_bytes, std::size_t{1} << Config::kSegmentShift);
}

}  // namespace
}  // namespace hpcalloc

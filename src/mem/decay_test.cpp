// Decay (mem/decay.h) on SimPal's simulated clock: free memory keeps its
// pages until the delay has passed and gives them back then, never before
// (to the grain); nothing in use is ever given back (SimPal zeroes what it
// decommits, so a block that lost its pages loses its pattern); memory that
// decayed reads as zeros where calloc relies on it; 0 and -1 mean "at once"
// and "never".
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
constexpr std::size_t kSegment = std::size_t{1} << Config::kSegmentShift;
constexpr std::int64_t kDelay = 1000;
constexpr std::uint64_t kGrain = kDelay / 16;

SourceLimits with_decay(std::int64_t ms) {
  SourceLimits limits;
  limits.decay_ms = ms;
  return limits;
}
SimPalOptions big_arena() { return SimPalOptions{.arena_size = std::size_t{512} << 20}; }

bool all_bytes(const void* p, std::size_t n, unsigned char value) {
  const auto* bytes = static_cast<const unsigned char*>(p);
  for (std::size_t i = 0; i < n; ++i) {
    if (bytes[i] != value) return false;
  }
  return true;
}

// ---- The schedule ----

TEST(DecaySchedule, NeverBeforeTheDelayAndAtMostAGrainLate) {
  DecaySchedule schedule(kDelay);
  EXPECT_EQ(schedule.due_ms(), kNothingDue);
  schedule.pending(5000);
  EXPECT_FALSE(schedule.due(5000 + kDelay - 1));
  EXPECT_TRUE(schedule.due(5000 + kDelay));
  EXPECT_FALSE(schedule.expired(5000, 5000 + kDelay - 1));
  EXPECT_TRUE(schedule.expired(5000, 5000 + kDelay));
  // A pass just ran: the next one waits a grain even for an older range.
  schedule.passed(6000);
  schedule.pending(4000);
  EXPECT_EQ(schedule.due_ms(), 6000 + kGrain);
}

TEST(DecaySchedule, NeverAndAtOnce) {
  DecaySchedule never(kDecayNever);
  never.pending(0);
  EXPECT_EQ(never.due_ms(), kNothingDue);
  EXPECT_FALSE(never.expired(0, ~std::uint64_t{0} - 1));
  DecaySchedule at_once(kDecayAtOnce);
  EXPECT_TRUE(at_once.expired(7, 7));
}

// ---- The memory source's cache ----

struct SourceDecay : testing::Test {
  explicit SourceDecay(std::int64_t ms = kDelay) : f(with_decay(ms), big_arena()) {}
  Fixture f;
  int owner = 0;
};

TEST_F(SourceDecay, ACachedSegmentKeepsItsPagesUntilTheDelayThenDecaysAndReadsZero) {
  SegmentHeader* s = f.source->acquire_segment(SegmentKind::kSmall, &owner);
  auto* bytes = reinterpret_cast<char*>(s);
  std::memset(bytes + 4096, 0x77, 8192);
  const std::size_t committed = f.pal.committed_bytes();
  f.source->release_segment(s);
  f.pal.advance_ms(kDelay - 1);
  f.source->decay(f.pal.now_ms());
  EXPECT_EQ(f.pal.committed_bytes(), committed) << "decayed before the delay";
  EXPECT_EQ(f.source->stats().cached_resident_bytes, kSegment);
  f.pal.advance_ms(1);
  f.source->decay(f.pal.now_ms());
  EXPECT_EQ(f.pal.committed_bytes(), committed - kSegment);
  const SourceStats st = f.source->stats();
  EXPECT_EQ(st.cached_bytes, kSegment);  // still cached, as address space
  EXPECT_EQ(st.cached_resident_bytes, 0u);
  EXPECT_EQ(st.decayed_bytes, kSegment);
  EXPECT_EQ(st.decay_events, 1u);
  // Reused: known to be zero (calloc skips its memset on fresh memory).
  SegmentHeader* again = f.source->acquire_segment(SegmentKind::kSmall, &owner);
  ASSERT_EQ(again, s);
  EXPECT_TRUE(again->fresh);
  EXPECT_TRUE(all_bytes(bytes + 4096, 8192, 0));
  EXPECT_EQ(f.source->stats().cache_hits, 1u);
  f.source->release_segment(again);
}

TEST_F(SourceDecay, AMappingReusedWithinTheDelayKeepsItsPages) {
  SegmentHeader* s = f.source->acquire_segment(SegmentKind::kSmall, &owner);
  std::memset(reinterpret_cast<char*>(s) + 4096, 0x55, 4096);
  f.source->release_segment(s);
  f.pal.advance_ms(kDelay / 2);
  SegmentHeader* again = f.source->acquire_segment(SegmentKind::kSmall, &owner);
  ASSERT_EQ(again, s);
  EXPECT_FALSE(again->fresh);
  EXPECT_TRUE(all_bytes(reinterpret_cast<char*>(s) + 4096, 4096, 0x55));  // warm: no fault
  f.pal.advance_ms(10 * kDelay);
  f.source->decay(f.pal.now_ms());
  EXPECT_EQ(f.source->stats().decayed_bytes, 0u);  // in use: never given back
  EXPECT_TRUE(all_bytes(reinterpret_cast<char*>(s) + 4096, 4096, 0x55));
  f.source->release_segment(again);
}

TEST_F(SourceDecay, EachMappingDecaysOnItsOwnDeadline) {
  SegmentHeader* a = f.source->acquire_segment(SegmentKind::kSmall, &owner);
  SegmentHeader* b = f.source->acquire_segment(SegmentKind::kSmall, &owner);
  f.source->release_segment(a);
  f.pal.advance_ms(kDelay / 2);
  f.source->release_segment(b);
  f.pal.advance_ms(kDelay / 2);  // a's delay has passed, b's has not
  f.source->decay(f.pal.now_ms());
  EXPECT_EQ(f.source->stats().decayed_bytes, kSegment);
  EXPECT_EQ(f.source->stats().cached_resident_bytes, kSegment);
  f.pal.advance_ms(kDelay / 2 - 1);
  f.source->decay(f.pal.now_ms());
  EXPECT_EQ(f.source->stats().decayed_bytes, kSegment) << "b decayed early";
  f.pal.advance_ms(kGrain + 1);  // due, and a grain after the last pass
  f.source->decay(f.pal.now_ms());
  EXPECT_EQ(f.source->stats().decayed_bytes, 2 * kSegment);
  EXPECT_EQ(f.source->stats().cached_resident_bytes, 0u);
}

TEST_F(SourceDecay, APassForOneMappingLeavesAMappingOneMillisecondYoungerAlone) {
  SegmentHeader* a = f.source->acquire_segment(SegmentKind::kSmall, &owner);
  SegmentHeader* b = f.source->acquire_segment(SegmentKind::kSmall, &owner);
  f.source->release_segment(a);
  f.pal.advance_ms(1);
  f.source->release_segment(b);
  f.pal.advance_ms(kDelay - 1);  // a's deadline: the pass runs, b is 1 ms short
  f.source->decay(f.pal.now_ms());
  EXPECT_EQ(f.source->stats().decayed_bytes, kSegment);
  EXPECT_EQ(f.source->stats().cached_resident_bytes, kSegment);
}

TEST_F(SourceDecay, AFailedDecommitLeavesTheMappingResidentAndPending) {
  SegmentHeader* s = f.source->acquire_segment(SegmentKind::kSmall, &owner);
  f.source->release_segment(s);
  f.pal.fail_after(PalCall::kDecommit, 0, 1);
  f.pal.advance_ms(kDelay);
  f.source->decay(f.pal.now_ms());
  EXPECT_EQ(f.source->stats().cached_resident_bytes, kSegment);
  EXPECT_EQ(f.source->stats().decayed_bytes, 0u);
  f.pal.advance_ms(kGrain);
  f.source->decay(f.pal.now_ms());
  EXPECT_EQ(f.source->stats().decayed_bytes, kSegment);
}

struct SourceNeverDecays : SourceDecay {
  SourceNeverDecays() : SourceDecay(kDecayNever) {}
};
TEST_F(SourceNeverDecays, CachedMappingsKeepTheirPagesForever) {
  SegmentHeader* s = f.source->acquire_segment(SegmentKind::kSmall, &owner);
  const std::size_t committed = f.pal.committed_bytes();
  f.source->release_segment(s);
  f.pal.advance_ms(std::uint64_t{1} << 40);
  f.source->decay(f.pal.now_ms());
  EXPECT_EQ(f.pal.committed_bytes(), committed);
  EXPECT_EQ(f.source->stats().decayed_bytes, 0u);
}

struct SourceDecaysAtOnce : SourceDecay {
  SourceDecaysAtOnce() : SourceDecay(kDecayAtOnce) {}
};
TEST_F(SourceDecaysAtOnce, ACachedMappingGivesItsPagesBackOnRelease) {
  SegmentHeader* s = f.source->acquire_segment(SegmentKind::kSmall, &owner);
  const std::size_t committed = f.pal.committed_bytes();
  f.source->release_segment(s);
  EXPECT_EQ(f.pal.committed_bytes(), committed - kSegment);
  EXPECT_EQ(f.source->stats().decayed_bytes, kSegment);
}

// ---- A heap's small runs ----

struct HeapDecay : testing::Test {
  HeapDecay() : f(with_decay(kDelay), big_arena()) {}
  Fixture f;
  Fixture::Heap& heap = *f.heap;
};

TEST_F(HeapDecay, RetiredRunsDecayAfterTheDelayAndLiveBlocksKeepTheirBytes) {
  // Fill several runs of one class, keep one block in four runs out of
  // five, free everything else: most runs retire.
  constexpr std::size_t kSize = 512;
  std::vector<void*> blocks;
  for (int i = 0; i < 2000; ++i) {
    void* p = heap.malloc(kSize);
    ASSERT_NE(p, nullptr);
    std::memset(p, 0xab, kSize);
    blocks.push_back(p);
  }
  std::vector<void*> kept;
  for (std::size_t i = 0; i < blocks.size(); ++i) {
    if (i % 500 == 0) {
      kept.push_back(blocks[i]);
    } else {
      heap.free(blocks[i]);
    }
  }
  heap.trim(/*release_cached_mappings=*/false);  // caches back to the runs; trim decommits...
  // ...so allocate and free again to retire runs without a trim.
  blocks.clear();
  for (int i = 0; i < 2000; ++i) blocks.push_back(heap.malloc(kSize));
  for (void* p : blocks) heap.free(p);
  heap.publish_stats();
  const std::size_t decayed_before = f.source->stats().decayed_bytes;
  const std::size_t committed = f.pal.committed_bytes();
  // The first pass stamps the live runs that blocks came back to (no clock
  // is read when they do) and gives nothing back.
  f.pal.advance_ms(1);
  heap.decay_tick();
  EXPECT_EQ(f.pal.committed_bytes(), committed);
  f.pal.advance_ms(kDelay - 2);
  heap.decay_tick();
  EXPECT_EQ(f.pal.committed_bytes(), committed) << "given back before the delay";
  f.pal.advance_ms(1);  // the retired runs' delay has passed
  heap.decay_tick();
  const std::size_t retired = f.source->stats().decayed_bytes - decayed_before;
  EXPECT_GT(retired, 0u);
  EXPECT_EQ(f.pal.committed_bytes(), committed - retired);
  // The live runs' free pages were due a millisecond later: the pass after
  // comes a grain after the last one.
  f.pal.advance_ms(kGrain);
  heap.decay_tick();
  const std::size_t decayed = f.source->stats().decayed_bytes - decayed_before;
  EXPECT_GT(decayed, retired) << "no free page of a live run was given back";
  EXPECT_EQ(f.pal.committed_bytes(), committed - decayed);
  for (void* p : kept) EXPECT_TRUE(all_bytes(p, kSize, 0xab)) << "a live block lost its pages";
  EXPECT_TRUE(heap.check_consistency_for_testing());
  // The decayed runs serve again, and calloc's zeros hold there.
  for (int i = 0; i < 2000; ++i) {
    void* p = heap.calloc(1, kSize);
    ASSERT_NE(p, nullptr);
    ASSERT_TRUE(all_bytes(p, kSize, 0));
    std::memset(p, 0xcd, kSize);
    blocks[static_cast<std::size_t>(i)] = p;
  }
  for (void* p : blocks) heap.free(p);
  for (void* p : kept) heap.free(p);
  EXPECT_TRUE(f.reporter.reports.empty());
}

TEST_F(HeapDecay, NothingDecaysWithoutASlowPathAfterTheDelay) {
  // Decay runs on slow paths only: the clock alone gives nothing back.
  std::vector<void*> blocks;
  for (int i = 0; i < 1000; ++i) blocks.push_back(heap.malloc(256));
  for (void* p : blocks) heap.free(p);
  heap.trim(false);
  for (int i = 0; i < 1000; ++i) blocks[static_cast<std::size_t>(i)] = heap.malloc(256);
  for (void* p : blocks) heap.free(p);
  const std::size_t committed = f.pal.committed_bytes();
  f.pal.advance_ms(10 * kDelay);
  EXPECT_EQ(f.pal.committed_bytes(), committed);
  EXPECT_EQ(f.source->stats().decayed_bytes, 0u);
  // A medium request is a slow path: it runs the pass.
  void* m = heap.malloc(64 * 1024);
  EXPECT_GT(f.source->stats().decayed_bytes, 0u);
  heap.free(m);
}

// ---- A heap's medium chunks ----

TEST_F(HeapDecay, FreeMediumPagesDecayAfterTheSegmentsLastFreeAndLiveChunksKeepTheirBytes) {
  constexpr std::size_t kSize = 100 * 1024;  // above the medium cache: straight to the lists
  std::vector<void*> blocks;
  for (int i = 0; i < 18; ++i) {
    void* p = heap.malloc(kSize);
    ASSERT_NE(p, nullptr);
    std::memset(p, 0x3c, kSize);
    blocks.push_back(p);
  }
  std::vector<void*> kept;
  for (std::size_t i = 0; i < blocks.size(); ++i) {
    if (i % 4 == 0) {
      kept.push_back(blocks[i]);
    } else {
      heap.free(blocks[i]);
    }
  }
  const std::size_t committed = f.pal.committed_bytes();
  // A medium free reads no clock: the next pass (a slow path a grain
  // later) stamps the segment with its own time, no earlier than the free.
  f.pal.advance_ms(kGrain);
  heap.decay_tick();
  f.pal.advance_ms(kDelay / 2);
  heap.free(heap.malloc(kSize));  // a chunk became free again: the segment's clock restarts...
  f.pal.advance_ms(kGrain);
  heap.decay_tick();  // ...from this pass
  f.pal.advance_ms(kDelay - 1);
  heap.decay_tick();
  EXPECT_EQ(f.pal.committed_bytes(), committed) << "given back before the delay";
  f.pal.advance_ms(kGrain);  // the delay has passed, and a grain since the last pass
  heap.decay_tick();
  const std::size_t decayed = f.source->stats().decayed_bytes;
  // The 13 freed blocks' interiors, less the pages holding headers and links.
  EXPECT_GE(decayed, 13 * (kSize - 2 * f.pal.page_size()) - 13 * f.pal.page_size());
  EXPECT_EQ(f.pal.committed_bytes(), committed - decayed);
  for (void* p : kept) EXPECT_TRUE(all_bytes(p, kSize, 0x3c)) << "a live chunk lost its pages";
  EXPECT_TRUE(heap.check_consistency_for_testing());
  // Reused: calloc's zeros hold, malloc's blocks are usable.
  void* z = heap.calloc(3, kSize);
  ASSERT_NE(z, nullptr);
  EXPECT_TRUE(all_bytes(z, 3 * kSize, 0));
  heap.free(z);
  for (void* p : kept) heap.free(p);
  EXPECT_TRUE(heap.check_consistency_for_testing());
  EXPECT_TRUE(f.reporter.reports.empty());
}

TEST_F(HeapDecay, TrimGivesBackEveryFreeMediumPageAtOnce) {
  constexpr std::size_t kSize = 100 * 1024;
  void* a = heap.malloc(kSize);
  void* b = heap.malloc(kSize);
  void* c = heap.malloc(kSize);
  std::memset(a, 1, kSize);
  std::memset(c, 3, kSize);
  heap.free(b);
  heap.trim(/*release_cached_mappings=*/false);
  EXPECT_GT(f.source->stats().trimmed_bytes, kSize - 3 * f.pal.page_size());
  EXPECT_TRUE(all_bytes(a, kSize, 1));
  EXPECT_TRUE(all_bytes(c, kSize, 3));
  heap.free(a);
  heap.free(c);
  EXPECT_TRUE(heap.check_consistency_for_testing());
}

// A thread's exit keeps a little free memory for the next thread (adopted
// heaps reuse it at once) and gives back a phase's worth at once.
TEST_F(HeapDecay, ThreadExitGivesBackAtOnceOnlyMoreThanKExitGiveBackBytes) {
  auto churn = [&](int count, std::size_t keep_one_in) {
    std::vector<void*> blocks;
    std::vector<void*> kept;
    for (int i = 0; i < count; ++i) blocks.push_back(heap.malloc(512));
    for (std::size_t i = 0; i < blocks.size(); ++i) {
      if (i % keep_one_in == 0) {
        kept.push_back(blocks[i]);
      } else {
        heap.free(blocks[i]);
      }
    }
    return kept;
  };
  // About 1 MiB free, every run keeping a block: only holes, which stay.
  std::vector<void*> kept = churn(2000, 100);
  const std::size_t committed = f.pal.committed_bytes();
  heap.trim_at_exit();
  EXPECT_EQ(f.source->stats().trimmed_bytes, 0u) << "a thread's small leftovers went back";
  EXPECT_EQ(f.pal.committed_bytes(), committed);
  // ... and they decay on the delay (a pass by the adopter or the
  // background thread).
  f.pal.advance_ms(kDelay + kGrain);
  heap.decay_tick();
  f.pal.advance_ms(kDelay + kGrain);
  heap.decay_tick();
  EXPECT_LT(f.pal.committed_bytes(), committed) << "the holes left at exit never decay";
  std::vector<void*> more = churn(40000, 500);  // about 20 MiB free
  heap.trim_at_exit();
  EXPECT_GT(f.source->stats().trimmed_bytes, Fixture::Heap::kExitGiveBackBytes);
  for (void* p : kept) EXPECT_TRUE(heap.usable_size(p) >= 512);
  for (void* p : kept) heap.free(p);
  for (void* p : more) heap.free(p);
  EXPECT_TRUE(heap.check_consistency_for_testing());
  EXPECT_TRUE(f.reporter.reports.empty());
}

// ---- malloc_trim() of another thread's heap ----

// A request (MemorySource::request_trim) that the owner honours at its next
// slow path, with every free page, whatever the delay; not before, and once.
struct TrimRequest : testing::Test {
  TrimRequest() : f(with_decay(kDecayNever), big_arena()) {}
  Fixture f;
  Fixture::Heap& heap = *f.heap;
};

TEST_F(TrimRequest, IsHonouredAtTheOwnersNextSlowPathOnceWithEveryFreePage) {
  constexpr std::size_t kSmall = 512;
  constexpr std::size_t kMedium = 100 * 1024;
  std::vector<void*> blocks;
  std::vector<void*> kept;
  for (int i = 0; i < 2000; ++i) {
    void* p = heap.malloc(kSmall);
    std::memset(p, 0x11, kSmall);
    (i % 500 == 0 ? kept : blocks).push_back(p);
  }
  for (int i = 0; i < 6; ++i) {
    void* p = heap.malloc(kMedium);
    std::memset(p, 0x22, kMedium);
    (i % 2 == 0 ? kept : blocks).push_back(p);
  }
  for (void* p : blocks) heap.free(p);
  const std::size_t committed = f.pal.committed_bytes();
  f.source->request_trim();  // another thread's malloc_trim(0)
  f.pal.advance_ms(10 * kDelay);
  EXPECT_EQ(f.pal.committed_bytes(), committed) << "no slow path of the owner yet";
  heap.decay_tick();  // what every slow path of the owner calls
  const std::size_t trimmed = f.source->stats().trimmed_bytes;
  EXPECT_GE(trimmed, 3 * (kMedium - 3 * f.pal.page_size())) << "free medium interiors kept";
  EXPECT_GT(trimmed, 3 * kMedium) << "no small run given back";
  EXPECT_EQ(f.pal.committed_bytes(), committed - trimmed);
  for (void* p : kept) {
    const bool small = heap.usable_size(p) < kMedium;
    EXPECT_TRUE(all_bytes(p, small ? kSmall : kMedium, small ? 0x11 : 0x22)) << "a live block";
  }
  // Answered: the next tick gives nothing back (the delay is "never").
  void* again = heap.malloc(kMedium);
  heap.free(again);
  heap.decay_tick();
  EXPECT_EQ(f.source->stats().trimmed_bytes, trimmed);
  EXPECT_TRUE(heap.check_consistency_for_testing());
  for (void* p : kept) heap.free(p);
  EXPECT_TRUE(f.reporter.reports.empty());
}

}  // namespace
}  // namespace hpcalloc

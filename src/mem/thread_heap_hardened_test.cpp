// A heap built with the secure flavour's Hardening (mem/hardening.h), with a
// reporter that records instead of aborting (the "warn" configuration):
// every overflow, write into a freed block and double free is reported once;
// a written block is never handed out again; no block is handed out twice;
// the quarantine delays reuse and its bytes count as free; guard pages are
// set where the layout reserves them and lifted before their memory leaves
// the heap. The abort-mode cases, through the public API, are in
// api/secure_flavour_test.cpp.
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <set>
#include <vector>

#include "base/sanitizer.h"
#include "mem/heap_fixture.h"
#include "mem/test_configs.h"
#include "mem/thread_heap.h"
#include "pal/sim_pal.h"

namespace hpcalloc {
namespace {

struct SecureConfig : testing_configs::ProductionGeometryConfig<SimPal> {
  static constexpr Hardening kHardening = Hardening::secure();
};
using Fixture = testing_configs::HeapFixture<SecureConfig>;
using Heap = Fixture::Heap;
constexpr std::size_t kRunSize = std::size_t{1} << SecureConfig::kRunShift;
constexpr std::size_t kSegmentSize = std::size_t{1} << SecureConfig::kSegmentShift;
constexpr unsigned kQuarantine = Hardening::secure().quarantine_blocks;

std::size_t reports(const Fixture& f, HeapError error) { return f.reporter.count(error); }

// A write through a dangling pointer; ASan's poison of free memory is
// lifted first (the ASan build would stop at the write, which is its job,
// not the heap's).
void write_freed(unsigned char* at, unsigned char value) {
  unpoison_memory(at, 1);
  *at = value;
}

// Frees enough fresh blocks of `size` to push every earlier block out of
// the quarantine.
void push_out_of_quarantine(Fixture& f, std::size_t size) {
  std::vector<void*> blocks;
  for (unsigned i = 0; i < kQuarantine + 8; ++i) blocks.push_back(f.heap->malloc(size));
  for (void* b : blocks) f.heap->free(b);
}

// Allocates `count` blocks of `size`: none may be `banned` or handed out
// twice; frees them again.
void expect_never_handed_out(Fixture& f, std::size_t size, int count, const void* banned) {
  std::vector<void*> blocks;
  std::set<void*> seen;
  for (int i = 0; i < count; ++i) {
    void* p = f.heap->malloc(size);
    ASSERT_NE(p, nullptr);
    EXPECT_NE(p, banned);
    EXPECT_TRUE(seen.insert(p).second) << "handed out twice: " << p;
    blocks.push_back(p);
  }
  for (void* p : blocks) f.heap->free(p);
}

TEST(HardenedHeap, UsableSizeIsTheRequestedSizeAndTheSealHolds) {
  Fixture f;
  for (std::size_t n = 1; n + 8 <= 1024; n += 7) {
    auto* p = static_cast<unsigned char*>(f.heap->malloc(n));
    ASSERT_EQ(f.heap->usable_size(p), n);
    std::memset(p, 0xff, n);
    f.heap->free(p);
  }
  EXPECT_TRUE(f.reporter.reports.empty());
  EXPECT_TRUE(f.heap->check_consistency_for_testing());
}

TEST(HardenedHeap, AnOverflowIsReportedOnceAndTheBlockStillFreed) {
  Fixture f;
  auto* p = static_cast<unsigned char*>(f.heap->malloc(30));
  p[30] = 0;
  f.heap->free(p);
  EXPECT_EQ(reports(f, HeapError::kBlockOverflow), 1u);
  EXPECT_EQ(f.reporter.reports.size(), 1u);
  push_out_of_quarantine(f, 30);
  EXPECT_EQ(f.reporter.reports.size(), 1u);
  EXPECT_TRUE(f.heap->check_consistency_for_testing());
}

TEST(HardenedHeap, AWrittenQuarantinedBlockIsReportedAndNeverHandedOutAgain) {
  for (std::size_t size : {16, 100, 1000, 4096, 20000}) {
    Fixture f;
    auto* p = static_cast<unsigned char*>(f.heap->malloc(size));
    f.heap->free(p);
    write_freed(p + size / 2, 1);  // a use after free
    push_out_of_quarantine(f, size);
    EXPECT_EQ(reports(f, HeapError::kWriteAfterFree), 1u) << size;
    expect_never_handed_out(f, size, 2 * kQuarantine, p);
    EXPECT_EQ(f.reporter.reports.size(), 1u) << size;
  }
}

TEST(HardenedHeap, AWriteIntoACachedSmallBlockIsReportedWhenItIsHandedOut) {
  Fixture f;
  auto* p = static_cast<unsigned char*>(f.heap->malloc(64));
  f.heap->free(p);
  push_out_of_quarantine(f, 64);  // p is in its cache now, zeroed
  write_freed(p + 40, 7);
  std::vector<void*> blocks;
  while (reports(f, HeapError::kWriteAfterFree) == 0 && blocks.size() < 4096) {
    blocks.push_back(f.heap->malloc(64));
  }
  EXPECT_EQ(reports(f, HeapError::kWriteAfterFree), 1u);
  EXPECT_EQ(blocks.back(), p);  // handed out zeroed again: its data was lost, not the heap
  EXPECT_EQ(p[40], 0);
  for (void* b : blocks) f.heap->free(b);
  EXPECT_EQ(f.reporter.reports.size(), 1u);
}

TEST(HardenedHeap, DoubleFreesWhileQuarantinedAreReportedAndDropped) {
  for (std::size_t size : {32, 4096, 100000}) {
    Fixture f;
    void* p = f.heap->malloc(size);
    f.heap->free(p);
    f.heap->free(p);
    EXPECT_EQ(reports(f, HeapError::kDoubleFree), 1u) << size;
    EXPECT_EQ(f.heap->usable_size(p), 0u);
    EXPECT_EQ(reports(f, HeapError::kUseOfFreedBlock), 1u) << size;
    push_out_of_quarantine(f, size);
    expect_never_handed_out(f, size, 2 * kQuarantine, nullptr);  // p at most once
    EXPECT_EQ(f.reporter.reports.size(), 2u) << size;
  }
}

// A medium block leaving the quarantine loses its marker, even when it is
// merged into the free chunk before it (which leaves its first words as
// they are): a live block carved there later (an aligned one) must not
// look quarantined to another thread's realloc or usable size, which can
// only read its words (a false "use of freed block" in
// preload_stress_threads_secure, 1 run in 6).
TEST(HardenedHeap, AMediumBlockLeavingTheQuarantineLosesItsMarker) {
  Fixture f;
  auto* x = static_cast<unsigned char*>(f.heap->malloc(100000));
  auto* p = static_cast<unsigned char*>(f.heap->malloc(100000));
  void* keep = f.heap->malloc(100000);  // the segment stays the heap's
  f.heap->free(x);
  f.heap->free(p);  // quarantined, marked
  std::uint64_t marker[2];
  unpoison_memory(p, sizeof marker);
  std::memcpy(marker, p, sizeof marker);
  push_out_of_quarantine(f, 100000);  // x, then p (merged into x) to the lists
  std::uint64_t after[2];
  unpoison_memory(p, sizeof after);
  std::memcpy(after, p, sizeof after);
  EXPECT_FALSE(after[0] == marker[0] && after[1] == marker[1]);
  EXPECT_TRUE(f.reporter.reports.empty());
  f.heap->free(keep);
}

TEST(HardenedHeap, QuarantinedBytesCountAsFree) {
  Fixture f;
  std::vector<void*> blocks;
  for (int i = 0; i < 50; ++i) blocks.push_back(f.heap->malloc(i % 2 ? 48 : 3000));
  for (void* b : blocks) f.heap->free(b);
  f.heap->publish_stats();
  const HeapStats stats = f.heap->stats();
  EXPECT_EQ(stats.small_in_use, 0u);
  EXPECT_EQ(stats.medium_in_use, 0u);
}

TEST(HardenedHeap, SlotsOfARefillComeInRandomOrder) {
  Fixture f;
  std::vector<std::uintptr_t> blocks;
  for (int i = 0; i < 32; ++i)
    blocks.push_back(reinterpret_cast<std::uintptr_t>(f.heap->malloc(200)));
  int ascending = 0;
  for (std::size_t i = 1; i < blocks.size(); ++i) ascending += blocks[i] > blocks[i - 1];
  // In address order every step ascends; a shuffle ascends about half the time.
  EXPECT_LT(ascending, 28);
  EXPECT_GT(ascending, 3);
  for (std::uintptr_t b : blocks) f.heap->free(reinterpret_cast<void*>(b));
}

TEST(HardenedHeap, GuardPagesEndEveryStartedRunAndEveryMediumSegment) {
  Fixture f;
  auto* small = static_cast<char*>(f.heap->malloc(100));
  auto* medium = static_cast<char*>(f.heap->malloc(100000));
  const auto run_end = (reinterpret_cast<std::uintptr_t>(small) / kRunSize + 1) * kRunSize;
  EXPECT_TRUE(f.pal.page_info(reinterpret_cast<void*>(run_end - kGuardPageBytes)).guarded);
  EXPECT_FALSE(f.pal.page_info(reinterpret_cast<void*>(run_end - 2 * kGuardPageBytes)).guarded);
  const auto segment_end =
      (reinterpret_cast<std::uintptr_t>(medium) / kSegmentSize + 1) * kSegmentSize;
  EXPECT_TRUE(f.pal.page_info(reinterpret_cast<void*>(segment_end - kGuardPageBytes)).guarded);
  f.heap->free(small);
  f.heap->free(medium);
}

// A segment leaves the heap with every guard lifted: the source may hand it
// out as anything next (a huge block's pages, another heap's runs).
TEST(HardenedHeap, GuardsAreLiftedBeforeMemoryLeavesTheHeap) {
  Fixture f;
  std::vector<void*> blocks;
  // Several small segments and medium segments' worth.
  for (int i = 0; i < 3000; ++i) blocks.push_back(f.heap->malloc(1000));
  for (int i = 0; i < 30; ++i) blocks.push_back(f.heap->malloc(300000));
  std::set<std::uintptr_t> segments;
  for (void* b : blocks) segments.insert(reinterpret_cast<std::uintptr_t>(b) / kSegmentSize);
  std::size_t guarded_before = 0;
  auto count_guarded = [&] {
    std::size_t guarded = 0;
    for (std::uintptr_t s : segments) {
      for (std::size_t at = 0; at < kSegmentSize; at += kGuardPageBytes) {
        guarded += f.pal.page_info(reinterpret_cast<void*>(s * kSegmentSize + at)).guarded;
      }
    }
    return guarded;
  };
  guarded_before = count_guarded();
  EXPECT_GT(guarded_before, segments.size());  // the test's premise: guards were set
  for (void* b : blocks) f.heap->free(b);
  f.heap.reset();  // every segment back to the source
  // The test's premise: the source keeps some (an unmapped page has no
  // guard to lift).
  EXPECT_GT(f.source->stats().cached_mappings, 2u);
  EXPECT_EQ(count_guarded(), 0u);
}

}  // namespace
}  // namespace hpcalloc

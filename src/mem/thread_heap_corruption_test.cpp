// A heap whose free structures a program corrupted (a write into a freed
// block, an overflow), with a reporter that records instead of aborting
// (the "warn" configuration): each corruption is reported once, naming the
// structure; the corrupted structure is abandoned, never followed; and the
// heap keeps serving every size from memory nobody else holds. The
// abort-mode twins, through the public API, are in
// api/misuse_death_test.cpp.
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <set>
#include <vector>

#include "mem/heap_fixture.h"
#include "mem/test_configs.h"
#include "mem/thread_heap.h"
#include "pal/linux_pal.h"

namespace hpcalloc {
namespace {

using Config = testing_configs::ProductionGeometryConfig<LinuxPal>;
using Fixture = testing_configs::HeapFixture<Config>;

alignas(64) unsigned char g_target[4096];

void overwrite_word(void* at, std::uintptr_t value) { std::memcpy(at, &value, sizeof value); }

// Every block handed out after the corruption is writable, inside the heap,
// and distinct from every other live one.
void expect_fresh_blocks(Fixture& f, std::size_t size, int count) {
  std::vector<void*> blocks;
  std::set<void*> seen;
  for (int i = 0; i < count; ++i) {
    void* p = f.heap->malloc(size);
    ASSERT_NE(p, nullptr) << size;
    EXPECT_TRUE(seen.insert(p).second) << "handed out twice: " << p;
    EXPECT_FALSE(p >= static_cast<void*>(g_target) && p < static_cast<void*>(g_target + 4096));
    EXPECT_NE(f.heap->find_segment(p), nullptr);
    std::memset(p, 0x5a, size);
    blocks.push_back(p);
  }
  for (void* p : blocks) f.heap->free(p);
}

TEST(ThreadHeapCorruption, ASmallCacheLinkIsReportedAndTheCacheAbandoned) {
  Fixture f;
  void* keep = f.heap->malloc(48);
  void* p = f.heap->malloc(48);
  f.heap->free(p);
  overwrite_word(p, reinterpret_cast<std::uintptr_t>(g_target));
  expect_fresh_blocks(f, 48, 200);
  EXPECT_EQ(f.reporter.count(HeapError::kCorruptedSmallCache), 1u);
  EXPECT_EQ(f.reporter.reports.size(), 1u);
  EXPECT_EQ(f.reporter.reports[0].pointer, p);
  f.heap->free(keep);
  EXPECT_TRUE(f.heap->check_consistency_for_testing());
}

TEST(ThreadHeapCorruption, AMediumCacheWordIsReportedAndItsClassAbandoned) {
  Fixture f;
  void* p = f.heap->malloc(3000);
  f.heap->free(p);
  overwrite_word(static_cast<char*>(p) + 16, 1);  // its size word
  expect_fresh_blocks(f, 3000, 50);
  EXPECT_EQ(f.reporter.count(HeapError::kCorruptedMediumCache), 1u);
  EXPECT_EQ(f.reporter.reports.size(), 1u);
}

// The free lists stop at the first failed check: medium requests are then
// served by mappings of their own, which share nothing with the lists.
TEST(ThreadHeapCorruption, AFreeListLinkIsReportedAndMediumRequestsGoElsewhere) {
  Fixture f;
  void* before = f.heap->malloc(64 << 10);
  void* p = f.heap->malloc(64 << 10);
  void* after = f.heap->malloc(64 << 10);
  f.heap->free(p);
  overwrite_word(p, reinterpret_cast<std::uintptr_t>(g_target));
  expect_fresh_blocks(f, 64 << 10, 20);
  expect_fresh_blocks(f, 5000, 20);
  EXPECT_EQ(f.reporter.count(HeapError::kCorruptedFreeList), 1u);
  EXPECT_EQ(f.reporter.reports.size(), 1u);
  // Blocks from before the corruption stay valid: their frees are quiet.
  EXPECT_EQ(f.heap->usable_size(before), std::size_t{64} << 10);
  f.heap->free(before);
  f.heap->free(after);
  EXPECT_EQ(f.reporter.reports.size(), 1u);
}

TEST(ThreadHeapCorruption, AnOverwrittenNeighbourHeaderIsNamedAtTheFree) {
  Fixture f;
  auto* p = static_cast<unsigned char*>(f.heap->malloc(100 << 10));
  auto* q = static_cast<unsigned char*>(f.heap->malloc(100 << 10));
  const std::size_t usable = f.heap->usable_size(p);
  ASSERT_EQ(q, p + usable + 16);
  std::memset(p + usable, 0, 4);  // q's size: the first bytes an overflow reaches
  f.heap->free(p);
  ASSERT_EQ(f.reporter.reports.size(), 1u);
  EXPECT_EQ(f.reporter.reports[0].error, HeapError::kCorruptedChunkHeader);
  EXPECT_EQ(f.reporter.reports[0].pointer, p + usable);
  expect_fresh_blocks(f, 100 << 10, 10);
  EXPECT_EQ(f.reporter.reports.size(), 1u);
}

TEST(ThreadHeapCorruption, ReallocOfAFreedBlockIsReportedAndNeverServed) {
  Fixture f;
  for (std::size_t size : {32, 700, 4096, 70000}) {
    void* keep = f.heap->malloc(size);
    void* p = f.heap->malloc(size);
    f.heap->free(p);
    const std::size_t reports = f.reporter.reports.size();
    EXPECT_EQ(f.heap->realloc(p, size * 2), nullptr) << size;
    EXPECT_EQ(f.heap->usable_size(p), 0u) << size;
    EXPECT_EQ(f.reporter.count(HeapError::kUseOfFreedBlock), 2 * (reports / 2 + 1)) << size;
    // The block is still free exactly once: two requests get two blocks.
    void* a = f.heap->malloc(size);
    void* b = f.heap->malloc(size);
    EXPECT_NE(a, b);
    f.heap->free(a);
    f.heap->free(b);
    f.heap->free(keep);
  }
  EXPECT_EQ(f.reporter.reports.size(), f.reporter.count(HeapError::kUseOfFreedBlock));
}

}  // namespace
}  // namespace hpcalloc

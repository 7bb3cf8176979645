// realloc's growth of a medium block past kReallocToHugeMin into a huge one
// (ThreadHeap::grows_into_huge), on SimPal with the production geometry: a
// medium block that cannot grow in place and is asked for at least a
// quarter of kMediumMax becomes a huge block, grows from then on in its
// mapping without moving, copies back to a medium chunk only when shrunk
// below that size, and a heap holding kMaxGrowingHuge huge blocks stays
// with medium chunks (each huge block costs kernel mappings).
#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "mem/heap_fixture.h"
#include "mem/test_configs.h"
#include "pal/sim_pal.h"

namespace hpcalloc {
namespace {

using Config = testing_configs::ProductionGeometryConfig<SimPal>;
using Fixture = testing_configs::HeapFixture<Config>;
using Heap = Fixture::Heap;
constexpr std::size_t kKiB = 1024;

bool all_bytes(const void* p, std::size_t n, unsigned char value) {
  const auto* bytes = static_cast<const unsigned char*>(p);
  for (std::size_t i = 0; i < n; ++i) {
    if (bytes[i] != value) return false;
  }
  return true;
}

struct ReallocGrowth : testing::Test {
  ReallocGrowth() : f(SourceLimits{}, SimPalOptions{.arena_size = std::size_t{1} << 30}) {}
  SegmentKind kind_of(const void* p) const { return f.registry->lookup(p)->kind(); }
  // A medium block of `size` bytes of `value` with a live block right
  // after it, so it cannot grow in place.
  void* walled_medium(std::size_t size, unsigned char value) {
    void* p = heap.malloc(size);
    std::memset(p, value, size);
    walls.push_back(heap.malloc(size));
    return p;
  }
  Fixture f;
  Heap& heap = *f.heap;
  std::vector<void*> walls;
};

TEST_F(ReallocGrowth, AMediumBlockGrownPastAQuarterOfMediumMaxBecomesHugeAndGrowsInPlace) {
  static_assert(Heap::kReallocToHugeMin == 256 * kKiB);
  void* p = walled_medium(200 * kKiB, 0x5a);
  ASSERT_EQ(kind_of(p), SegmentKind::kMedium);
  void* q = heap.realloc(p, 300 * kKiB);
  ASSERT_NE(q, nullptr);
  EXPECT_EQ(kind_of(q), SegmentKind::kHuge);
  EXPECT_TRUE(all_bytes(q, 200 * kKiB, 0x5a));
  std::memset(q, 0x6b, 300 * kKiB);
  // Within its 2 MiB mapping it grows (and shrinks) where it is.
  for (std::size_t size : {600 * kKiB, 1000 * kKiB, 1500 * kKiB, 400 * kKiB}) {
    EXPECT_EQ(heap.realloc(q, size), q) << size;
  }
  EXPECT_TRUE(all_bytes(q, 300 * kKiB, 0x6b));
  // Below kReallocToHugeMin it goes back to a medium chunk.
  void* r = heap.realloc(q, 100 * kKiB);
  ASSERT_NE(r, nullptr);
  EXPECT_EQ(kind_of(r), SegmentKind::kMedium);
  EXPECT_TRUE(all_bytes(r, 100 * kKiB, 0x6b));
  heap.free(r);
  for (void* w : walls) heap.free(w);
  EXPECT_TRUE(heap.check_consistency_for_testing());
  EXPECT_TRUE(f.reporter.reports.empty());
}

TEST_F(ReallocGrowth, SmallGrowthAndShrinkingStayMedium) {
  void* p = walled_medium(100 * kKiB, 0x21);
  void* q = heap.realloc(p, 200 * kKiB);  // below the threshold: a medium copy
  EXPECT_EQ(kind_of(q), SegmentKind::kMedium);
  void* r = walled_medium(600 * kKiB, 0x22);
  void* s = heap.realloc(r, 500 * kKiB);  // shrinking: in place
  EXPECT_EQ(s, r);
  EXPECT_EQ(kind_of(s), SegmentKind::kMedium);
  EXPECT_TRUE(all_bytes(s, 500 * kKiB, 0x22));
  heap.free(q);
  heap.free(s);
  for (void* w : walls) heap.free(w);
}

TEST_F(ReallocGrowth, AHeapWithKMaxGrowingHugeBlocksKeepsGrowingMediumChunksByCopy) {
  std::vector<void*> huge;
  for (std::size_t i = 0; i < Heap::kMaxGrowingHuge; ++i) {
    huge.push_back(heap.malloc(Heap::kMediumMax + 1));
    ASSERT_NE(huge.back(), nullptr);
  }
  void* p = walled_medium(200 * kKiB, 0x3c);
  void* q = heap.realloc(p, 300 * kKiB);
  EXPECT_EQ(kind_of(q), SegmentKind::kMedium);
  EXPECT_TRUE(all_bytes(q, 200 * kKiB, 0x3c));
  heap.free(huge.back());
  huge.pop_back();
  void* r = heap.realloc(walled_medium(200 * kKiB, 0x3d), 400 * kKiB);  // one under the limit
  EXPECT_EQ(kind_of(r), SegmentKind::kHuge);
  EXPECT_TRUE(all_bytes(r, 200 * kKiB, 0x3d));
  heap.free(q);
  heap.free(r);
  for (void* h : huge) heap.free(h);
  for (void* w : walls) heap.free(w);
  EXPECT_TRUE(f.reporter.reports.empty());
}

}  // namespace
}  // namespace hpcalloc

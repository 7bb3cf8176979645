// SegmentTags: a heap's table of its own small segments (the free fast
// path's ownership test). What it must never do is name a segment it was
// not given, or keep one it was told to forget; what it may do is miss one
// (a slot collision), which the slow path then handles.
#include "mem/segment_tags.h"

#include <gtest/gtest.h>

#include <cstdint>

namespace hpcalloc {
namespace {

constexpr unsigned kShift = 21;  // production's 2 MiB segments
constexpr unsigned kSlots = 8;
using Tags = SegmentTags<kShift, kSlots>;

const SegmentHeader* segment_at(std::uintptr_t index) {
  return reinterpret_cast<const SegmentHeader*>(index << kShift);
}
const void* inside(std::uintptr_t index, std::uintptr_t offset) {
  return reinterpret_cast<const void*>((index << kShift) + offset);
}

TEST(SegmentTags, FindsEveryAddressOfAnInsertedSegmentOnly) {
  Tags tags;
  tags.insert(segment_at(100));
  constexpr std::uintptr_t kLast = (std::uintptr_t{1} << kShift) - 1;
  for (std::uintptr_t offset : {std::uintptr_t{0}, std::uintptr_t{16}, kLast}) {
    EXPECT_TRUE(tags.contains(inside(100, offset)));
    EXPECT_EQ(Tags::segment_of(inside(100, offset)), segment_at(100));
  }
  EXPECT_FALSE(tags.contains(inside(99, kLast)));
  EXPECT_FALSE(tags.contains(inside(101, 0)));
  EXPECT_FALSE(tags.contains(inside(100 + kSlots, 0)));  // same slot, other segment
}

TEST(SegmentTags, AnEmptyTableHoldsNoAddressAtAll) {
  Tags tags;
  for (std::uintptr_t p : {std::uintptr_t{0}, std::uintptr_t{16}, ~std::uintptr_t{0},
                           ~std::uintptr_t{0} << kShift, std::uintptr_t{1} << 63}) {
    EXPECT_FALSE(tags.contains(reinterpret_cast<const void*>(p))) << p;
  }
}

TEST(SegmentTags, ACollisionKeepsTheLatestAndEraseForgetsOnlyItsOwn) {
  Tags tags;
  tags.insert(segment_at(3));
  tags.insert(segment_at(3 + kSlots));  // takes the slot
  EXPECT_FALSE(tags.contains(inside(3, 0)));
  EXPECT_TRUE(tags.contains(inside(3 + kSlots, 0)));
  tags.erase(segment_at(3));  // not in the table: the other stays
  EXPECT_TRUE(tags.contains(inside(3 + kSlots, 0)));
  tags.erase(segment_at(3 + kSlots));
  EXPECT_FALSE(tags.contains(inside(3 + kSlots, 0)));
}

TEST(SegmentTags, ClearForgetsEverythingAndAllOwnedSeesEveryTag) {
  Tags tags;
  for (std::uintptr_t i = 1; i <= kSlots; ++i) tags.insert(segment_at(i));
  unsigned seen = 0;
  EXPECT_TRUE(tags.all_owned([&](const SegmentHeader*) {
    ++seen;
    return true;
  }));
  EXPECT_EQ(seen, kSlots);
  EXPECT_FALSE(tags.all_owned([](const SegmentHeader* s) { return s != segment_at(5); }));
  tags.clear();
  for (std::uintptr_t i = 1; i <= kSlots; ++i) EXPECT_FALSE(tags.contains(inside(i, 0)));
  EXPECT_TRUE(tags.all_owned([](const SegmentHeader*) { return false; }));
}

}  // namespace
}  // namespace hpcalloc

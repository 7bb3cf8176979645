#include "mem/size_classes.h"

#include <gtest/gtest.h>

namespace hpcalloc {
namespace {

template <class Classes>
class SizeClassesTest : public testing::Test {};

using Configs =
    testing::Types<SizeClasses<128>, SizeClasses<256>, SizeClasses<1024>, SizeClasses<4096>>;
TYPED_TEST_SUITE(SizeClassesTest, Configs);

TYPED_TEST(SizeClassesTest, ClassesAreIncreasingMultiplesOf16EndingAtSmallMax) {
  using C = TypeParam;
  for (unsigned c = 0; c < C::kClassCount; ++c) {
    EXPECT_EQ(C::class_size(c) % 16, 0u) << c;
    if (c > 0) {
      EXPECT_GT(C::class_size(c), C::class_size(c - 1));
    }
  }
  EXPECT_EQ(C::class_size(0), 16u);
  EXPECT_EQ(C::class_size(C::kClassCount - 1), C::kSmallMax);
}

TYPED_TEST(SizeClassesTest, EverySizeGetsTheSmallestFittingClass) {
  using C = TypeParam;
  EXPECT_EQ(C::class_of(0), 0u);
  for (std::size_t size = 1; size <= C::kSmallMax; ++size) {
    const unsigned c = C::class_of(size);
    ASSERT_LT(c, C::kClassCount);
    ASSERT_GE(C::class_size(c), size) << size;
    if (c > 0) {
      ASSERT_LT(C::class_size(c - 1), size) << size;
    }
  }
}

TYPED_TEST(SizeClassesTest, WasteIsAtMostOneEighthAbove128) {
  using C = TypeParam;
  for (std::size_t size = 129; size <= C::kSmallMax; ++size) {
    const std::size_t block = C::class_size(C::class_of(size));
    ASSERT_LE((block - size) * 8, size) << size;  // waste / size <= 12.5%
  }
}

TYPED_TEST(SizeClassesTest, PowersOfTwoAreClassesForAlignedRequests) {
  using C = TypeParam;
  for (std::size_t p = 16; p <= C::kSmallMax; p *= 2) {
    EXPECT_EQ(C::class_size(C::class_of(p)), p);
  }
  for (std::size_t alignment = 32; alignment <= C::kSmallMax; alignment *= 2) {
    for (std::size_t size = 1; size <= C::kSmallMax; size += 7) {
      const std::size_t block = C::class_size(C::class_of_aligned(size, alignment));
      EXPECT_TRUE(is_pow2(block));
      EXPECT_GE(block, size);
      EXPECT_EQ(block % alignment, 0u);
    }
  }
}

TEST(SizeClasses, ProductionClassCount) {
  EXPECT_EQ(SizeClasses<1024>::kClassCount, 32u);
  EXPECT_EQ(SizeClasses<1024>::class_size(8), 144u);
  EXPECT_EQ(SizeClasses<1024>::class_size(16), 288u);
}

}  // namespace
}  // namespace hpcalloc

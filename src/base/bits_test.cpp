#include "base/bits.h"

#include <gtest/gtest.h>

#include <cstdint>

namespace hpcalloc {
namespace {

TEST(Bits, PowersOfTwo) {
  EXPECT_FALSE(is_pow2(0));
  EXPECT_TRUE(is_pow2(1));
  EXPECT_TRUE(is_pow2(std::size_t{1} << 63));
  EXPECT_FALSE(is_pow2(3));
  EXPECT_FALSE(is_pow2(SIZE_MAX));
  for (unsigned shift = 0; shift < 64; ++shift) {
    const std::size_t p = std::size_t{1} << shift;
    EXPECT_EQ(log2_floor(p), shift);
    EXPECT_EQ(log2_ceil(p), shift);
    EXPECT_EQ(round_up_pow2(p), p);
    if (shift > 1) {
      EXPECT_EQ(log2_floor(p + 1), shift);
      EXPECT_EQ(log2_ceil(p + 1), shift + 1) << p;
      EXPECT_EQ(log2_floor(p - 1), shift - 1);
    }
  }
}

TEST(Bits, Alignment) {
  EXPECT_EQ(align_up(0, 16), 0u);
  EXPECT_EQ(align_up(1, 16), 16u);
  EXPECT_EQ(align_up(16, 16), 16u);
  EXPECT_EQ(align_up(17, 16), 32u);
  EXPECT_EQ(align_down(31, 16), 16u);
  EXPECT_TRUE(is_aligned(std::size_t{4096}, 4096));
  EXPECT_FALSE(is_aligned(std::size_t{4097}, 4096));
  alignas(64) char buffer[64];
  EXPECT_TRUE(is_aligned(static_cast<const void*>(buffer), 64));
}

TEST(Bits, LowestSetBit) {
  EXPECT_EQ(lowest_set_bit(1), 0u);
  EXPECT_EQ(lowest_set_bit(0x8000000000000000ull), 63u);
  EXPECT_EQ(lowest_set_bit(0b101000), 3u);
}

TEST(Bits, CheckedArithmeticReportsOverflow) {
  std::size_t out = 7;
  EXPECT_TRUE(checked_mul(1u << 20, 1u << 20, &out));
  EXPECT_EQ(out, std::size_t{1} << 40);
  EXPECT_FALSE(checked_mul(SIZE_MAX / 2 + 1, 2, &out));
  EXPECT_FALSE(checked_mul(std::size_t{1} << 32, std::size_t{1} << 32, &out));
  EXPECT_TRUE(checked_mul(0, SIZE_MAX, &out));
  EXPECT_EQ(out, 0u);
  EXPECT_TRUE(checked_add(SIZE_MAX - 1, 1, &out));
  EXPECT_FALSE(checked_add(SIZE_MAX, 1, &out));
  EXPECT_TRUE(checked_align_up(SIZE_MAX - 8190, 4096, &out));
  EXPECT_EQ(out, SIZE_MAX - 4095);  // 2^64 - 8191 rounds up to 2^64 - 4096
  EXPECT_FALSE(checked_align_up(SIZE_MAX - 10, 4096, &out));
}

}  // namespace
}  // namespace hpcalloc

// SlotDivisor::is_multiple_below, the free fast path's slot check: exact for
// every offset a run can have, and false for every offset past the run,
// wrapped ones (a pointer below the run's first slot) included.
#include "mem/slot_divisor.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <random>

namespace hpcalloc {
namespace {

// The largest run of any config is 1 MiB; the divisor needs d * count <= 2^32.
constexpr std::uint64_t kRunBytes = std::uint64_t{1} << 20;

bool expected(std::uint64_t n, std::uint32_t d, std::uint32_t count) {
  return n % d == 0 && n / d < count;
}

TEST(SlotDivisorRange, ExactAroundEveryMultipleAndTheRunsEnd) {
  for (std::uint32_t d = 16; d <= 32768; d += 16) {
    const SlotDivisor divisor = SlotDivisor::of(d);
    const auto count = static_cast<std::uint32_t>(kRunBytes / d);
    for (std::uint64_t m = 0; m <= kRunBytes + d; m += d) {
      for (std::uint64_t n : {m, m + 1, m + d - 1}) {
        ASSERT_EQ(divisor.is_multiple_below(n, count), expected(n, d, count)) << d << " " << n;
      }
    }
    // A run with fewer slots than fit: the last one's end is the limit.
    ASSERT_FALSE(divisor.is_multiple_below(std::uint64_t{3} * d, 3));
    ASSERT_TRUE(divisor.is_multiple_below(std::uint64_t{2} * d, 3));
    // A retired run has no slots.
    ASSERT_FALSE(divisor.is_multiple_below(0, 0));
  }
}

TEST(SlotDivisorRange, RejectsWrappedAndWideOffsets) {
  // Offsets below the first slot wrap to near 2^64; offsets of 2^32 and
  // more are where the low half alone would be wrong.
  std::mt19937_64 random(42);
  for (std::uint32_t d = 16; d <= 32768; d += 16) {
    const SlotDivisor divisor = SlotDivisor::of(d);
    const auto count = static_cast<std::uint32_t>(kRunBytes / d);
    for (std::uint64_t k = 1; k <= 4 * d; ++k) {
      ASSERT_FALSE(divisor.is_multiple_below(0 - k, count)) << d << " -" << k;
    }
    for (std::uint64_t high = 1; high < 64; ++high) {
      const std::uint64_t wide = (std::uint64_t{1} << 32) * high;  // a multiple of d
      ASSERT_FALSE(divisor.is_multiple_below(wide, count)) << d << " " << wide;
    }
    for (int i = 0; i < 1000; ++i) {
      const std::uint64_t n = random() | (std::uint64_t{1} << 32);
      ASSERT_FALSE(divisor.is_multiple_below(n, count)) << d << " " << n;
    }
  }
}

}  // namespace
}  // namespace hpcalloc

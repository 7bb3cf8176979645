#include "ds/bitmap.h"

#include <gtest/gtest.h>

#include <bitset>
#include <cstdint>
#include <cstring>
#include <random>

namespace hpcalloc {
namespace {

TEST(Bitmap, ValueInitialisedAndZeroMemoryAreEmpty) {
  Bitmap<130> b{};
  EXPECT_TRUE(b.none());
  EXPECT_FALSE(b.any());
  EXPECT_EQ(b.count(), 0u);
  EXPECT_EQ(b.find_first_set(), 130u);
  EXPECT_EQ(b.find_first_clear(), 0u);

  // Placed in zero-filled raw memory, as in segment metadata.
  alignas(Bitmap<200>) unsigned char raw[sizeof(Bitmap<200>)];
  std::memset(raw, 0, sizeof raw);
  auto* placed = reinterpret_cast<Bitmap<200>*>(raw);
  EXPECT_TRUE(placed->none());
  placed->set(199);
  EXPECT_EQ(placed->find_first_set(), 199u);
  static_assert(sizeof(Bitmap<200>) == 4 * sizeof(std::uint64_t));
}

TEST(Bitmap, SetClearTestAcrossWordBoundaries) {
  Bitmap<130> b{};
  for (std::size_t i : {0u, 1u, 63u, 64u, 65u, 127u, 128u, 129u}) {
    EXPECT_FALSE(b.test(i));
    b.set(i);
    EXPECT_TRUE(b.test(i));
  }
  EXPECT_EQ(b.count(), 8u);
  b.clear(64);
  EXPECT_FALSE(b.test(64));
  EXPECT_TRUE(b.test(63));
  EXPECT_TRUE(b.test(65));
  EXPECT_EQ(b.count(), 7u);
}

TEST(Bitmap, FindFirstSetFrom) {
  Bitmap<200> b{};
  b.set(5);
  b.set(64);
  b.set(199);
  EXPECT_EQ(b.find_first_set(), 5u);
  EXPECT_EQ(b.find_first_set_from(5), 5u);
  EXPECT_EQ(b.find_first_set_from(6), 64u);
  EXPECT_EQ(b.find_first_set_from(65), 199u);
  EXPECT_EQ(b.find_first_set_from(199), 199u);
  EXPECT_EQ(b.find_first_set_from(200), 200u);
  EXPECT_EQ(b.find_first_set_from(1000), 200u);
  b.clear(199);
  EXPECT_EQ(b.find_first_set_from(65), 200u);
}

TEST(Bitmap, FindFirstClearIgnoresPaddingBits) {
  Bitmap<70> b{};
  b.set_all();
  EXPECT_EQ(b.count(), 70u);
  EXPECT_EQ(b.find_first_clear(), 70u);  // bits 70..127 of the storage are padding
  b.clear(69);
  EXPECT_EQ(b.find_first_clear(), 69u);
  EXPECT_EQ(b.find_first_clear_from(69), 69u);
  EXPECT_EQ(b.find_first_clear_from(70), 70u);
  Bitmap<64> exact{};
  exact.set_all();
  EXPECT_EQ(exact.find_first_clear(), 64u);
  EXPECT_EQ(exact.count(), 64u);
}

TEST(Bitmap, RangesWithinAndAcrossWords) {
  Bitmap<256> b{};
  b.set_range(3, 3);  // empty
  EXPECT_TRUE(b.none());
  b.set_range(3, 10);
  EXPECT_EQ(b.count(), 7u);
  EXPECT_EQ(b.find_first_set(), 3u);
  EXPECT_EQ(b.find_first_clear_from(3), 10u);
  b.set_range(60, 200);
  EXPECT_EQ(b.count(), 7u + 140u);
  EXPECT_FALSE(b.test(59));
  EXPECT_TRUE(b.test(60));
  EXPECT_TRUE(b.test(199));
  EXPECT_FALSE(b.test(200));
  b.clear_range(64, 192);
  EXPECT_EQ(b.count(), 7u + 4u + 8u);
  EXPECT_EQ(b.find_first_set_from(64), 192u);
  b.clear_range(0, 256);
  EXPECT_TRUE(b.none());
  b.set_range(0, 256);
  EXPECT_EQ(b.count(), 256u);
}

TEST(Bitmap, TakeFirstSetAllocatesInOrder) {
  Bitmap<100> free_slots{};
  free_slots.set_range(0, 100);
  for (std::size_t i = 0; i < 100; ++i) EXPECT_EQ(free_slots.take_first_set(), i);
  EXPECT_EQ(free_slots.take_first_set(), 100u);
  EXPECT_TRUE(free_slots.none());
  free_slots.set(42);
  EXPECT_EQ(free_slots.take_first_set(), 42u);
}

TEST(BitmapView, RuntimeSizedOverForeignWords) {
  std::uint64_t words[3] = {};
  static_assert(BitmapView::words_for(130) == 3);
  BitmapView v(words, 130);
  EXPECT_EQ(v.size(), 130u);
  v.set_all();
  EXPECT_EQ(v.count(), 130u);
  EXPECT_EQ(words[2], 0x3u);  // padding stays zero
  v.clear(0);
  EXPECT_EQ(v.find_first_clear(), 0u);
  EXPECT_EQ(v.find_first_set(), 1u);
  v.clear_all();
  EXPECT_TRUE(v.none());

  Bitmap<130> b{};
  b.view().set(77);
  EXPECT_TRUE(b.test(77));
}

// Every operation against std::bitset on random sizes and operations.
TEST(Bitmap, MatchesBitsetOnRandomOperations) {
  std::mt19937_64 rng(12345);
  constexpr std::size_t kMax = 300;
  for (int trial = 0; trial < 200; ++trial) {
    const std::size_t bits = 1 + rng() % kMax;
    std::uint64_t words[BitmapView::words_for(kMax)] = {};
    BitmapView v(words, bits);
    std::bitset<kMax> ref;
    for (int op = 0; op < 100; ++op) {
      const std::size_t i = rng() % bits;
      const std::size_t j = i + rng() % (bits - i + 1);
      switch (rng() % 5) {
        case 0: v.set(i), ref.set(i); break;
        case 1: v.clear(i), ref.reset(i); break;
        case 2:
          v.set_range(i, j);
          for (std::size_t k = i; k < j; ++k) ref.set(k);
          break;
        case 3:
          v.clear_range(i, j);
          for (std::size_t k = i; k < j; ++k) ref.reset(k);
          break;
        case 4: {
          const std::size_t got = v.take_first_set();
          std::size_t want = bits;
          for (std::size_t k = 0; k < bits; ++k) {
            if (ref.test(k)) {
              want = k;
              break;
            }
          }
          ASSERT_EQ(got, want);
          if (want < bits) ref.reset(want);
          break;
        }
      }
      ASSERT_EQ(v.count(), ref.count());
      ASSERT_EQ(v.any(), ref.any());
      ASSERT_EQ(v.test(i), ref.test(i));
      std::size_t want_set = bits;
      std::size_t want_clear = bits;
      for (std::size_t k = i; k < bits; ++k) {
        if (ref.test(k) && want_set == bits) want_set = k;
        if (!ref.test(k) && want_clear == bits) want_clear = k;
      }
      ASSERT_EQ(v.find_first_set_from(i), want_set);
      ASSERT_EQ(v.find_first_clear_from(i), want_clear);
    }
  }
}

constexpr bool bitmap_works_in_constant_evaluation() {
  Bitmap<100> b{};
  b.set_range(10, 90);
  b.clear(10);
  return b.count() == 79 && b.find_first_set() == 11 && b.find_first_clear_from(11) == 90;
}
static_assert(bitmap_works_in_constant_evaluation());

}  // namespace
}  // namespace hpcalloc

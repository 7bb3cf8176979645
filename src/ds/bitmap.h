// Fixed-capacity bitmaps for allocator metadata (a small run's free slots).
// Plain, non-atomic data: a bitmap belongs to one heap, and cross-thread
// frees reach it only through that heap's remote-free queue.
//
// Bitmap<kBits> owns its words and is a trivial type, so it can live in raw
// metadata memory: zero-filled memory (what a Pal reserve returns) and a
// value-initialised `Bitmap<N> b{};` are both empty bitmaps. BitmapView
// works over words owned elsewhere, for runs whose slot count is only known
// at run time. Both keep one invariant: the bits past `size()` in the last
// word are zero, so counting and searching never see them.
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>
#include <type_traits>

#include "base/check.h"

namespace hpcalloc {

namespace bitmap_detail {

inline constexpr std::size_t kWordBits = 64;

constexpr std::size_t words_for(std::size_t bits) { return (bits + kWordBits - 1) / kWordBits; }

// Mask of bits [from, to) within one word, 0 <= from < to <= 64.
constexpr std::uint64_t word_mask(std::size_t from, std::size_t to) {
  const std::uint64_t high = to == kWordBits ? ~std::uint64_t{0} : (std::uint64_t{1} << to) - 1;
  return high & ~((std::uint64_t{1} << from) - 1);
}

// Applies op(word, mask) to the words covering [begin, end).
template <class Op>
constexpr void for_range(std::uint64_t* words, std::size_t begin, std::size_t end, Op op) {
  while (begin < end) {
    const std::size_t word = begin / kWordBits;
    const std::size_t from = begin % kWordBits;
    const std::size_t to = end - word * kWordBits < kWordBits ? end - word * kWordBits : kWordBits;
    op(words[word], word_mask(from, to));
    begin = word * kWordBits + to;
  }
}

// First set bit at or after `from`, or `bits` when there is none.
constexpr std::size_t find_set_from(const std::uint64_t* words, std::size_t bits,
                                    std::size_t from) {
  if (from >= bits) return bits;
  std::size_t word = from / kWordBits;
  std::uint64_t current = words[word] & ~((std::uint64_t{1} << (from % kWordBits)) - 1);
  const std::size_t count = words_for(bits);
  for (;;) {
    if (current != 0) return word * kWordBits + static_cast<std::size_t>(std::countr_zero(current));
    if (++word == count) return bits;
    current = words[word];
  }
}

// First clear bit at or after `from`, or `bits` when there is none.
constexpr std::size_t find_clear_from(const std::uint64_t* words, std::size_t bits,
                                      std::size_t from) {
  if (from >= bits) return bits;
  std::size_t word = from / kWordBits;
  std::uint64_t current = ~words[word] & ~((std::uint64_t{1} << (from % kWordBits)) - 1);
  const std::size_t count = words_for(bits);
  for (;;) {
    if (current != 0) {
      // The padding past `bits` reads as clear here: clamp it away.
      const std::size_t index =
          word * kWordBits + static_cast<std::size_t>(std::countr_zero(current));
      return index < bits ? index : bits;
    }
    if (++word == count) return bits;
    current = ~words[word];
  }
}

constexpr std::size_t count(const std::uint64_t* words, std::size_t bits) {
  std::size_t total = 0;
  for (std::size_t w = 0; w < words_for(bits); ++w) {
    total += static_cast<std::size_t>(std::popcount(words[w]));
  }
  return total;
}

constexpr bool any(const std::uint64_t* words, std::size_t bits) {
  for (std::size_t w = 0; w < words_for(bits); ++w) {
    if (words[w] != 0) return true;
  }
  return false;
}

}  // namespace bitmap_detail

// A bitmap over `bits` bits stored in words_for(bits) words owned by the
// caller (zero them, or clear_all(), before first use). Copying the view does
// not copy the bits.
class BitmapView {
 public:
  static constexpr std::size_t words_for(std::size_t bits) {
    return bitmap_detail::words_for(bits);
  }

  constexpr BitmapView(std::uint64_t* words, std::size_t bits) : words_(words), bits_(bits) {}

  constexpr std::size_t size() const { return bits_; }

  constexpr bool test(std::size_t i) const {
    HPCALLOC_ASSERT(i < bits_);
    return (words_[i / 64] >> (i % 64)) & 1;
  }
  constexpr void set(std::size_t i) {
    HPCALLOC_ASSERT(i < bits_);
    words_[i / 64] |= std::uint64_t{1} << (i % 64);
  }
  constexpr void clear(std::size_t i) {
    HPCALLOC_ASSERT(i < bits_);
    words_[i / 64] &= ~(std::uint64_t{1} << (i % 64));
  }

  // Bits [begin, end), begin <= end <= size().
  constexpr void set_range(std::size_t begin, std::size_t end) {
    HPCALLOC_ASSERT(begin <= end && end <= bits_);
    bitmap_detail::for_range(words_, begin, end, [](std::uint64_t& w, std::uint64_t m) { w |= m; });
  }
  constexpr void clear_range(std::size_t begin, std::size_t end) {
    HPCALLOC_ASSERT(begin <= end && end <= bits_);
    bitmap_detail::for_range(words_, begin, end,
                             [](std::uint64_t& w, std::uint64_t m) { w &= ~m; });
  }
  constexpr void set_all() { set_range(0, bits_); }
  constexpr void clear_all() {
    for (std::size_t w = 0; w < words_for(bits_); ++w) words_[w] = 0;
  }

  // Index of the first set (clear) bit at or after `from`; size() if none.
  constexpr std::size_t find_first_set() const { return find_first_set_from(0); }
  constexpr std::size_t find_first_set_from(std::size_t from) const {
    return bitmap_detail::find_set_from(words_, bits_, from);
  }
  constexpr std::size_t find_first_clear() const { return find_first_clear_from(0); }
  constexpr std::size_t find_first_clear_from(std::size_t from) const {
    return bitmap_detail::find_clear_from(words_, bits_, from);
  }

  // Clears the first set bit and returns its index; size() (and no change)
  // when none is set. The allocation step of a free-slot bitmap.
  constexpr std::size_t take_first_set() {
    const std::size_t i = find_first_set();
    if (i < bits_) clear(i);
    return i;
  }

  constexpr std::size_t count() const { return bitmap_detail::count(words_, bits_); }
  constexpr bool any() const { return bitmap_detail::any(words_, bits_); }
  constexpr bool none() const { return !any(); }

 private:
  std::uint64_t* words_;
  std::size_t bits_;
};

// A bitmap of kBits bits held inline; same operations as BitmapView.
template <std::size_t kBits>
class Bitmap {
 public:
  static_assert(kBits > 0, "an empty bitmap has no use");
  static constexpr std::size_t kWords = bitmap_detail::words_for(kBits);

  static constexpr std::size_t size() { return kBits; }

  constexpr bool test(std::size_t i) const {
    HPCALLOC_ASSERT(i < kBits);
    return (words_[i / 64] >> (i % 64)) & 1;
  }
  constexpr void set(std::size_t i) { view().set(i); }
  constexpr void clear(std::size_t i) { view().clear(i); }
  constexpr void set_range(std::size_t begin, std::size_t end) { view().set_range(begin, end); }
  constexpr void clear_range(std::size_t begin, std::size_t end) { view().clear_range(begin, end); }
  constexpr void set_all() { view().set_all(); }
  constexpr void clear_all() { view().clear_all(); }

  constexpr std::size_t find_first_set() const { return find_first_set_from(0); }
  constexpr std::size_t find_first_set_from(std::size_t from) const {
    return bitmap_detail::find_set_from(words_, kBits, from);
  }
  constexpr std::size_t find_first_clear() const { return find_first_clear_from(0); }
  constexpr std::size_t find_first_clear_from(std::size_t from) const {
    return bitmap_detail::find_clear_from(words_, kBits, from);
  }
  constexpr std::size_t take_first_set() { return view().take_first_set(); }

  constexpr std::size_t count() const { return bitmap_detail::count(words_, kBits); }
  constexpr bool any() const { return bitmap_detail::any(words_, kBits); }
  constexpr bool none() const { return !any(); }

  // A view of this bitmap's words, for code written against BitmapView.
  constexpr BitmapView view() { return BitmapView(words_, kBits); }

 private:
  // No initialiser, so the type stays trivial (see the top of the file).
  std::uint64_t words_[kWords];
};

static_assert(std::is_trivial_v<Bitmap<100>> && std::is_standard_layout_v<Bitmap<100>>);

}  // namespace hpcalloc

// Small size classes: size -> class in O(1) with one table load, no loop.
//
// Classes are 16, 32, ..., 128 (step 16), then 8 classes per doubling up to
// kSmallMax (144, 160, ..., 256, 288, ..., 512, 576, ...). Every class is a
// multiple of 16, so every block is 16-byte aligned as glibc guarantees, and
// above 128 bytes no request wastes more than 12.5% (one step over the lower
// bound of its doubling). Every power of two up to kSmallMax is a class, which
// gives naturally aligned slots for small aligned requests (small_runs.h).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>

#include "base/bits.h"

namespace hpcalloc {

template <std::size_t kSmallMaxParam>
class SizeClasses {
 public:
  static constexpr std::size_t kSmallMax = kSmallMaxParam;
  static constexpr std::size_t kGranule = 16;
  static_assert(is_pow2(kSmallMax) && kSmallMax >= 128 && kSmallMax <= 32768,
                "kSmallMax must be a power of two in [128, 32 KiB]");

  static constexpr unsigned kLinearClasses = 8;  // 16..128
  static constexpr unsigned kClassesPerDoubling = 8;
  static constexpr unsigned kClassCount =
      kLinearClasses + kClassesPerDoubling * (log2_floor(kSmallMax) - 7);

  // Class of a request of `size` bytes, 0 <= size <= kSmallMax. malloc(0)
  // gets the smallest class.
  [[gnu::always_inline]] static unsigned class_of(std::size_t size) {
    return kTables.class_of_granules[(size + kGranule - 1) / kGranule];
  }
  [[gnu::always_inline]] static std::size_t class_size(unsigned size_class) {
    return kTables.class_size[size_class];
  }
  // Smallest class whose blocks are aligned to `alignment` (a power of two,
  // <= kSmallMax) and hold `size` bytes: the power-of-two class covering both.
  static unsigned class_of_aligned(std::size_t size, std::size_t alignment) {
    const std::size_t need = size > alignment ? size : alignment;
    return class_of(round_up_pow2(need < kGranule ? kGranule : need));
  }

  // Computes class sizes from the rule above (also used to build the table).
  static constexpr std::size_t compute_class_size(unsigned size_class) {
    if (size_class < kLinearClasses) return kGranule * (size_class + 1);
    const unsigned k = size_class - kLinearClasses;
    const unsigned doubling = k / kClassesPerDoubling;  // 0: (128, 256]
    const unsigned step_index = k % kClassesPerDoubling + 1;
    const std::size_t lower = std::size_t{128} << doubling;
    return lower + step_index * (lower / kClassesPerDoubling);
  }

  // Sizes 0..kSmallMax in granules (rounded up): the index class_of uses.
  static constexpr std::size_t kGranules = kSmallMax / kGranule + 1;

 private:
  struct Tables {
    std::array<std::uint8_t, kGranules> class_of_granules{};
    std::array<std::uint32_t, kClassCount> class_size{};
  };
  static_assert(kClassCount <= 256, "class index must fit in a byte");

  static constexpr Tables build() {
    Tables t;
    for (unsigned c = 0; c < kClassCount; ++c) {
      t.class_size[c] = static_cast<std::uint32_t>(compute_class_size(c));
    }
    unsigned c = 0;
    for (std::size_t g = 0; g < kGranules; ++g) {
      const std::size_t size = g * kGranule;
      while (t.class_size[c] < size) ++c;
      t.class_of_granules[g] = static_cast<std::uint8_t>(c);
    }
    return t;
  }
  static constexpr Tables kTables = build();
  static_assert(kTables.class_size[kClassCount - 1] == kSmallMax);
};

}  // namespace hpcalloc

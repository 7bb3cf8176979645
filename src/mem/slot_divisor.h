// SlotDivisor: which slot of a run an offset falls in, and whether it
// starts one, with a multiply instead of a division (SmallRuns validates
// every freed pointer this way). Tested in small_runs_test.cpp.
#pragma once

#include <cstdint>

namespace hpcalloc {

// Division of 32-bit slot offsets by a slot size with one multiply
// (Lemire, Kaser and Kurz, "Faster remainder by direct computation", 2019):
// with magic = floor((2^64 - 1) / d) + 1, n is a multiple of d exactly when
// n * magic (mod 2^64) < magic, and n / d is the high half of the
// 128-bit product n * magic.
struct SlotDivisor {
  std::uint64_t magic = 0;

  static constexpr SlotDivisor of(std::uint32_t d) { return {UINT64_MAX / d + 1}; }
  constexpr bool divides(std::uint32_t n) const { return n * magic < magic; }
  // Whether n is a multiple of d below d * count, for any 64-bit n, given
  // d * count <= 2^32 (a run's slots): one 64 x 64 -> 128-bit multiply
  // answers both. Its low half says whether d divides n (exact for
  // n < 2^32), its high half is n / d there; a larger n's high half is at
  // least 2^32 / d >= count, so it is rejected whatever the low half says.
  // The free fast path's slot check: one instruction fewer than divides()
  // and a separate range compare.
  constexpr bool is_multiple_below(std::uint64_t n, std::uint64_t count) const {
    __extension__ using Wide = unsigned __int128;  // GCC and Clang on 64-bit targets
    const Wide product = static_cast<Wide>(n) * magic;
    return static_cast<std::uint64_t>(product) < magic &&
           static_cast<std::uint64_t>(product >> 64) < count;
  }
  constexpr std::uint32_t quotient(std::uint32_t n) const {
    __extension__ using Wide = unsigned __int128;  // GCC and Clang on 64-bit targets
    return static_cast<std::uint32_t>((static_cast<Wide>(n) * magic) >> 64);
  }
};

}  // namespace hpcalloc

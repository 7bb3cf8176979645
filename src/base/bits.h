// Bit tricks and overflow-checked arithmetic used by every layer above.
// All constexpr, all branch-light; none of them can allocate or fail silently:
// the checked_* helpers report overflow instead of wrapping.
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>

namespace hpcalloc {

constexpr bool is_pow2(std::size_t x) { return x != 0 && (x & (x - 1)) == 0; }

// align must be a power of two; the result wraps to 0 if x is within align of
// SIZE_MAX, which callers that take user sizes must rule out first.
constexpr std::size_t align_up(std::size_t x, std::size_t align) {
  return (x + align - 1) & ~(align - 1);
}
constexpr std::size_t align_down(std::size_t x, std::size_t align) { return x & ~(align - 1); }
constexpr bool is_aligned(std::size_t x, std::size_t align) { return (x & (align - 1)) == 0; }
inline bool is_aligned(const void* p, std::size_t align) {
  return is_aligned(reinterpret_cast<std::uintptr_t>(p), align);
}

// floor(log2(x)) for x > 0.
constexpr unsigned log2_floor(std::size_t x) {
  return static_cast<unsigned>(std::bit_width(x)) - 1;
}
// ceil(log2(x)) for x > 0.
constexpr unsigned log2_ceil(std::size_t x) {
  return x <= 1 ? 0 : static_cast<unsigned>(std::bit_width(x - 1));
}
// Smallest power of two >= x, for 0 < x <= 2^63.
constexpr std::size_t round_up_pow2(std::size_t x) { return std::bit_ceil(x); }

// Index of the lowest set bit of a non-zero word.
constexpr unsigned lowest_set_bit(std::uint64_t word) {
  return static_cast<unsigned>(std::countr_zero(word));
}

// a * b and a + b, or false when the exact result does not fit (calloc,
// reallocarray and pvalloc must report overflow, never wrap).
constexpr bool checked_mul(std::size_t a, std::size_t b, std::size_t* out) {
  return !__builtin_mul_overflow(a, b, out);
}
constexpr bool checked_add(std::size_t a, std::size_t b, std::size_t* out) {
  return !__builtin_add_overflow(a, b, out);
}
// align_up that reports overflow instead of wrapping to 0.
constexpr bool checked_align_up(std::size_t x, std::size_t align, std::size_t* out) {
  std::size_t sum = 0;
  if (!checked_add(x, align - 1, &sum)) return false;
  *out = sum & ~(align - 1);
  return true;
}

}  // namespace hpcalloc

// The arithmetic of bench_bignum (bignum.cpp): arithmetic modulo the prime
// 2^61 - 1, the independent method every result is checked with, and
// immutable arbitrary-precision integers whose operations each return a new
// malloc'ed number, as the integers of Python or a Lisp do. Every allocation
// is counted in allocation_count (the workload is single-threaded).
#pragma once

#include <cstdint>
#include <cstring>
#include <utility>
#include <vector>

#include "workload_common.h"

namespace hpcalloc::bench::bignum {

__extension__ typedef unsigned __int128 Wide;  // __extension__: -Wpedantic

inline std::uint64_t allocation_count = 0;

inline void* counted_allocate(std::size_t size) {
  ++allocation_count;
  return allocate(size);
}

// ---- Arithmetic modulo the Mersenne prime 2^61 - 1 (the second method) ----

inline constexpr std::uint64_t kPrime = (std::uint64_t{1} << 61) - 1;

inline std::uint64_t mod_reduce(std::uint64_t x) {  // any 64-bit x
  x = (x & kPrime) + (x >> 61);
  return x >= kPrime ? x - kPrime : x;
}
inline std::uint64_t mod_add(std::uint64_t a, std::uint64_t b) { return mod_reduce(a + b); }
inline std::uint64_t mod_sub(std::uint64_t a, std::uint64_t b) {
  return mod_reduce(a + kPrime - b);
}
inline std::uint64_t mod_mul(std::uint64_t a, std::uint64_t b) {
  const Wide x = Wide{a} * b;  // < 2^122, and 2^61 == 1 (mod p)
  return mod_reduce((static_cast<std::uint64_t>(x) & kPrime) + static_cast<std::uint64_t>(x >> 61));
}
inline std::uint64_t mod_pow(std::uint64_t base, std::uint64_t e) {
  std::uint64_t r = 1;
  for (; e != 0; e >>= 1, base = mod_mul(base, base)) {
    if (e & 1) r = mod_mul(r, base);
  }
  return r;
}

// F(k) mod p by fast doubling on machine words.
inline std::uint64_t fib_mod(std::uint64_t k) {
  std::uint64_t f = 0, g = 1;  // F(m), F(m+1)
  for (int bit = 63; bit >= 0; --bit) {
    const std::uint64_t c = mod_mul(f, mod_sub(mod_add(g, g), f));  // F(2m)
    const std::uint64_t d = mod_add(mod_mul(f, f), mod_mul(g, g));  // F(2m+1)
    if ((k >> bit) & 1) {
      f = d;
      g = mod_add(c, d);
    } else {
      f = c;
      g = d;
    }
  }
  return f;
}

// n! and 1/n! mod p for n <= limit: binomials and factorials to check against.
struct FactorialTable {
  explicit FactorialTable(std::uint64_t limit) : fact(limit + 1), inverse(limit + 1) {
    fact[0] = 1;
    for (std::uint64_t i = 1; i <= limit; ++i) fact[i] = mod_mul(fact[i - 1], i);
    inverse[limit] = mod_pow(fact[limit], kPrime - 2);
    for (std::uint64_t i = limit; i > 0; --i) inverse[i - 1] = mod_mul(inverse[i], i);
  }
  std::uint64_t binomial(std::uint64_t n, std::uint64_t k) const {
    return mod_mul(fact[n], mod_mul(inverse[k], inverse[n - k]));
  }
  std::vector<std::uint64_t> fact, inverse;
};

// ---- Immutable bignums: a malloc'ed header and little-endian 64-bit limbs ----

// `size` limbs are in use, the top one non-zero (zero has size 0, but one
// limb is always allocated, so the smallest block is 16 bytes). `guard`
// catches a header overwritten while the number was live.
struct Big {
  std::uint32_t size;
  std::uint32_t guard;
  std::uint64_t* limbs() { return reinterpret_cast<std::uint64_t*>(this + 1); }
  const std::uint64_t* limbs() const { return reinterpret_cast<const std::uint64_t*>(this + 1); }
};
inline constexpr std::uint32_t kBigGuard = 0xb16b00b5;

inline Big* big_new(std::uint32_t capacity) {
  const std::size_t bytes = sizeof(Big) + sizeof(std::uint64_t) * (capacity ? capacity : 1);
  return static_cast<Big*>(counted_allocate(bytes));
}

// Trims leading zero limbs of a result with `size` limbs written and seals it.
inline Big* big_seal(Big* b, std::uint32_t size) {
  while (size > 0 && b->limbs()[size - 1] == 0) --size;
  b->size = size;
  b->guard = kBigGuard ^ size;
  return b;
}

inline const Big* checked(const Big* b) {
  if (b->guard != (kBigGuard ^ b->size)) fail_corruption("bignum header changed while live");
  return b;
}

inline void big_free(Big* b) {
  checked(b);
  std::free(b);
}

inline Big* big_from(std::uint64_t v) {
  Big* b = big_new(1);
  b->limbs()[0] = v;
  return big_seal(b, 1);
}

inline Big* big_copy(const Big* a) {
  Big* r = big_new(checked(a)->size);
  std::memcpy(r->limbs(), a->limbs(), sizeof(std::uint64_t) * a->size);
  return big_seal(r, a->size);
}

inline Big* big_add(const Big* a, const Big* b) {
  if (checked(a)->size < checked(b)->size) std::swap(a, b);
  Big* r = big_new(a->size + 1);
  std::uint64_t carry = 0;
  for (std::uint32_t i = 0; i < a->size; ++i) {
    const Wide s = Wide{a->limbs()[i]} + (i < b->size ? b->limbs()[i] : 0) + carry;
    r->limbs()[i] = static_cast<std::uint64_t>(s);
    carry = static_cast<std::uint64_t>(s >> 64);
  }
  r->limbs()[a->size] = carry;
  return big_seal(r, a->size + 1);
}

// a - b for a >= b.
inline Big* big_sub(const Big* a, const Big* b) {
  Big* r = big_new(checked(a)->size);
  std::uint64_t borrow = 0;
  for (std::uint32_t i = 0; i < a->size; ++i) {
    const std::uint64_t x = a->limbs()[i], y = i < checked(b)->size ? b->limbs()[i] : 0;
    r->limbs()[i] = x - y - borrow;
    borrow = (x < y) || (x - y < borrow);
  }
  if (borrow != 0) fail_corruption("bignum subtraction went negative");
  return big_seal(r, a->size);
}

inline Big* big_mul(const Big* a, const Big* b) {
  const std::uint32_t n = checked(a)->size + checked(b)->size;
  Big* r = big_new(n);
  std::memset(r->limbs(), 0, sizeof(std::uint64_t) * (n ? n : 1));
  for (std::uint32_t i = 0; i < a->size; ++i) {
    std::uint64_t carry = 0;
    for (std::uint32_t j = 0; j < b->size; ++j) {
      const Wide t = Wide{a->limbs()[i]} * b->limbs()[j] + r->limbs()[i + j] + carry;
      r->limbs()[i + j] = static_cast<std::uint64_t>(t);
      carry = static_cast<std::uint64_t>(t >> 64);
    }
    r->limbs()[i + b->size] = carry;
  }
  return big_seal(r, n);
}

inline Big* big_mul_small(const Big* a, std::uint64_t m) {
  Big* r = big_new(checked(a)->size + 1);
  std::uint64_t carry = 0;
  for (std::uint32_t i = 0; i < a->size; ++i) {
    const Wide t = Wide{a->limbs()[i]} * m + carry;
    r->limbs()[i] = static_cast<std::uint64_t>(t);
    carry = static_cast<std::uint64_t>(t >> 64);
  }
  r->limbs()[a->size] = carry;
  return big_seal(r, a->size + 1);
}

// Quotient of a / d as a new number; the remainder in *remainder.
inline Big* big_div_small(const Big* a, std::uint64_t d, std::uint64_t* remainder) {
  Big* r = big_new(checked(a)->size);
  std::uint64_t rem = 0;
  for (std::uint32_t i = a->size; i-- > 0;) {
    const Wide t = (Wide{rem} << 64) | a->limbs()[i];
    r->limbs()[i] = static_cast<std::uint64_t>(t / d);
    rem = static_cast<std::uint64_t>(t % d);
  }
  *remainder = rem;
  return big_seal(r, a->size);
}

inline bool big_equal(const Big* a, const Big* b) {
  return checked(a)->size == checked(b)->size &&
         std::memcmp(a->limbs(), b->limbs(), sizeof(std::uint64_t) * a->size) == 0;
}

// The number mod p, by Horner's rule in base 2^64 == 8 (mod p).
inline std::uint64_t big_residue(const Big* a) {
  std::uint64_t r = 0;
  for (std::uint32_t i = checked(a)->size; i-- > 0;) {
    r = mod_add(mod_mul(r, 8), mod_reduce(a->limbs()[i]));
  }
  return r;
}

}  // namespace hpcalloc::bench::bignum

// What every harness in fuzz/ shares: a reader that decodes a libFuzzer input
// front to back (an exhausted input reads as zeros, so every prefix of an
// input is itself a valid input and minimisation keeps working), and the
// failure path (one line on stderr, then abort, which libFuzzer records as a
// crash with the input that caused it).
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

namespace hpcalloc::fuzz {

class Input {
 public:
  Input(const std::uint8_t* data, std::size_t size) : data_(data), size_(size) {}

  bool empty() const { return pos_ >= size_; }

  std::uint8_t byte() { return pos_ < size_ ? data_[pos_++] : 0; }
  std::uint16_t u16() { return static_cast<std::uint16_t>(byte() | byte() << 8); }
  std::uint32_t u32() { return static_cast<std::uint32_t>(u16() | std::uint32_t{u16()} << 16); }
  std::uint64_t u64() { return u32() | std::uint64_t{u32()} << 32; }

  // One of the n entries of a table, chosen by the next byte.
  template <class T, std::size_t n>
  const T& pick(const T (&table)[n]) {
    return table[byte() % n];
  }

 private:
  const std::uint8_t* data_;
  std::size_t size_;
  std::size_t pos_ = 0;
};

[[noreturn]] inline void fail(const char* harness, const std::string& what) {
  std::fprintf(stderr, "%s: %s\n", harness, what.c_str());
  std::fflush(stderr);
  std::abort();
}

// A pattern tied to a block's address and a seed, eight bytes at a time:
// a shifted or truncated copy, or one block mistaken for another, shows.
inline std::uint64_t pattern_word(std::uint64_t seed, std::size_t k) {
  std::uint64_t x = seed + k * 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  return x ^ (x >> 27);
}

inline void write_pattern(void* p, std::size_t n, std::uint64_t seed) {
  auto* bytes = static_cast<unsigned char*>(p);
  for (std::size_t i = 0; i < n; i += 8) {
    const std::uint64_t word = pattern_word(seed, i / 8);
    std::memcpy(bytes + i, &word, n - i < 8 ? n - i : 8);
  }
}

// The first byte of [p, p + n) that does not hold the pattern, or n.
inline std::size_t first_pattern_mismatch(const void* p, std::size_t n, std::uint64_t seed) {
  const auto* bytes = static_cast<const unsigned char*>(p);
  for (std::size_t i = 0; i < n; i += 8) {
    const std::uint64_t word = pattern_word(seed, i / 8);
    const std::size_t len = n - i < 8 ? n - i : 8;
    if (std::memcmp(bytes + i, &word, len) != 0) {
      for (std::size_t j = 0; j < len; ++j) {
        if (bytes[i + j] != reinterpret_cast<const unsigned char*>(&word)[j]) return i + j;
      }
    }
  }
  return n;
}

}  // namespace hpcalloc::fuzz

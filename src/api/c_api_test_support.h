// Helpers shared by the prefixed-API tests (c_api_test.cpp,
// c_api_runtime_test.cpp): glibc's own functions as the reference, outcome
// comparison, patterns. Test-only.
#pragma once

#include <dlfcn.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "api/hpcalloc.h"
#include "base/check.h"

namespace c_api_test {

// glibc's own functions, looked up in libc.so.6 itself: under ASan the plain
// names are the sanitizer's allocator, which is not the reference.
struct Glibc {
  Glibc() {
    void* libc = dlopen("libc.so.6", RTLD_NOW | RTLD_NOLOAD);
    if (libc == nullptr) std::abort();
    load(libc, "malloc", &malloc);
    load(libc, "free", &free);
    load(libc, "calloc", &calloc);
    load(libc, "realloc", &realloc);
    load(libc, "reallocarray", &reallocarray);
    load(libc, "memalign", &memalign);
    load(libc, "aligned_alloc", &aligned_alloc);
    load(libc, "posix_memalign", &posix_memalign);
    load(libc, "valloc", &valloc);
    load(libc, "pvalloc", &pvalloc);
    load(libc, "malloc_usable_size", &malloc_usable_size);
  }
  template <class F>
  static void load(void* libc, const char* name, F** out) {
    *out = reinterpret_cast<F*>(dlsym(libc, name));
    if (*out == nullptr) std::abort();
  }

  void* (*malloc)(std::size_t);
  void (*free)(void*);
  void* (*calloc)(std::size_t, std::size_t);
  void* (*realloc)(void*, std::size_t);
  void* (*reallocarray)(void*, std::size_t, std::size_t);
  void* (*memalign)(std::size_t, std::size_t);
  void* (*aligned_alloc)(std::size_t, std::size_t);
  int (*posix_memalign)(void**, std::size_t, std::size_t);
  void* (*valloc)(std::size_t);
  void* (*pvalloc)(std::size_t);
  std::size_t (*malloc_usable_size)(void*);
};
const Glibc glibc_ref;

constexpr std::size_t kSizeMax = SIZE_MAX;
constexpr std::size_t kPtrdiffMax = PTRDIFF_MAX;

// Hides a constant from the optimiser, so calls with impossible sizes are
// made for real and draw no -Walloc-size-larger-than warnings.
inline std::size_t opaque(std::size_t value) {
  asm volatile("" : "+r"(value));
  return value;
}

inline std::size_t page_size() { return static_cast<std::size_t>(sysconf(_SC_PAGESIZE)); }

inline bool aligned_to(const void* p, std::size_t alignment) {
  return reinterpret_cast<std::uintptr_t>(p) % alignment == 0;
}

// The alignment glibc's memalign gives for a requested one (callers rule out
// those above SIZE_MAX / 2 + 1): malloc's 16 up to 16, else the next power of
// two.
inline std::size_t effective_alignment(std::size_t requested) {
  return requested <= 16 ? 16 : std::bit_ceil(requested);
}

// A block and the errno its allocation left (errno is cleared first).
struct Result {
  void* p;
  int error;
};

template <class Allocate>
inline Result call(Allocate allocate) {
  errno = 0;
  void* p = allocate();
  const int error = errno;
  return {p, error};
}

// Same outcome as glibc: both succeed, or both fail with the same errno.
inline void expect_same_outcome(const Result& ours, const Result& glibc, const std::string& what) {
  EXPECT_EQ(ours.p != nullptr, glibc.p != nullptr) << what;
  if (ours.p == nullptr && glibc.p == nullptr) {
    EXPECT_EQ(ours.error, glibc.error) << what;
  }
}

inline std::string describe(const char* function, std::size_t a, std::size_t b) {
  return std::string(function) + "(" + std::to_string(a) + ", " + std::to_string(b) + ")";
}

inline std::uint8_t pattern_byte(std::size_t i) { return static_cast<std::uint8_t>(i * 131 + 7); }

inline void fill_pattern(void* p, std::size_t n) {
  auto* bytes = static_cast<std::uint8_t*>(p);
  for (std::size_t i = 0; i < n; ++i) bytes[i] = pattern_byte(i);
}

inline bool has_pattern(const void* p, std::size_t n) {
  const auto* bytes = static_cast<const std::uint8_t*>(p);
  for (std::size_t i = 0; i < n; ++i) {
    if (bytes[i] != pattern_byte(i)) return false;
  }
  return true;
}

const std::size_t kImpossibleSizes[] = {kSizeMax, kSizeMax - 4096, kPtrdiffMax + 1, kPtrdiffMax};

}  // namespace c_api_test

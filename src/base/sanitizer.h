// AddressSanitizer's manual poisoning, for memory the allocator owns but the
// program must not touch: free small slots, free medium chunks, huge blocks in
// the memory source's cache. A poisoned byte that the program reads or writes
// is reported by ASan as use-after-poison, so a use after free inside an
// hpcalloc block is caught at the faulting access instead of corrupting a
// neighbour silently. In builds without ASan every function here is an empty
// inline function and costs nothing.
//
// This is the one place that asks whether ASan is on (the #if below): the
// heap code calls these functions unconditionally.
#pragma once

#include <cstddef>

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define HPCALLOC_ADDRESS_SANITIZER 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__) && !defined(HPCALLOC_ADDRESS_SANITIZER)
#define HPCALLOC_ADDRESS_SANITIZER 1
#endif

#if defined(HPCALLOC_ADDRESS_SANITIZER)
#include <sanitizer/asan_interface.h>
#endif

namespace hpcalloc {

#if defined(HPCALLOC_ADDRESS_SANITIZER)
inline constexpr bool kAddressSanitizer = true;

// Marks [p, p + n) unaddressable. ASan tracks 8-byte granules: callers pass
// ranges that start on one (every block and chunk is 16-byte aligned).
inline void poison_memory(const void* p, std::size_t n) { ASAN_POISON_MEMORY_REGION(p, n); }
// Marks [p, p + n) addressable again.
inline void unpoison_memory(const void* p, std::size_t n) { ASAN_UNPOISON_MEMORY_REGION(p, n); }
#else
inline constexpr bool kAddressSanitizer = false;

inline void poison_memory(const void*, std::size_t) {}
inline void unpoison_memory(const void*, std::size_t) {}
#endif

// A copy of *p read past ASan's check: for the allocator's own look at
// metadata that may lie in memory it poisoned itself (the stale header that a
// pointer freed twice names, which the allocator then reports as a double
// free). A plain read in every other build.
#if defined(HPCALLOC_ADDRESS_SANITIZER)
template <class T>
[[gnu::no_sanitize_address]] inline T load_unpoisoned(const T* p) {
  return *p;
}
#else
// Without the attribute, which would keep GCC from inlining it.
template <class T>
[[gnu::always_inline]] inline T load_unpoisoned(const T* p) {
  return *p;
}
#endif

}  // namespace hpcalloc

// The replaceable global operator new/delete of libhpcalloc.so, every variant
// of [new.delete.single] and [new.delete.array]: plain, nothrow, sized and
// std::align_val_t. Success never leaves global's fast path; failure runs
// the standard's loop (call the new_handler while there is one, then throw
// std::bad_alloc or, for nothrow, return nullptr) in a cold function. The
// throw may allocate through the C++ runtime's emergency pool: that is the
// only exception-related work here and it happens on failure only.
#include <cstddef>
#include <new>

#include "api/global_allocator.h"
#include "api/hpcalloc.h"
#include "base/base.h"

namespace hpcalloc {
namespace {

// global::malloc is 16-byte aligned: an alignment up to this needs no marker.
constexpr std::size_t kMallocAlignment = 16;

// A report during an aligned allocation names operator new; a plain one
// takes malloc's fast path, whose reports name malloc().
void* allocate(std::size_t size, std::size_t alignment) {
  if (alignment <= kMallocAlignment) return global::malloc(size);
  return global::memalign(alignment, size, "operator new");
}

// The throwing versions after a failed first try.
[[gnu::cold, gnu::noinline]] void* allocate_or_throw(std::size_t size, std::size_t alignment) {
  for (;;) {
    const std::new_handler handler = std::get_new_handler();
    if (handler == nullptr) throw std::bad_alloc();
    handler();
    if (void* p = allocate(size, alignment)) return p;
  }
}

// The nothrow versions after a failed first try: as if they called the
// throwing version and caught std::bad_alloc ([new.delete.single]/7), which
// the handler may throw.
[[gnu::cold, gnu::noinline]] void* allocate_or_null(std::size_t size,
                                                    std::size_t alignment) noexcept {
  for (;;) {
    const std::new_handler handler = std::get_new_handler();
    if (handler == nullptr) return nullptr;
    try {
      handler();
    } catch (const std::bad_alloc&) {
      return nullptr;
    }
    if (void* p = allocate(size, alignment)) return p;
  }
}

inline void* new_impl(std::size_t size, std::size_t alignment) {
  HPCALLOC_ASSERT(is_pow2(alignment));
  if (void* p = allocate(size, alignment)) [[likely]]
    return p;
  return allocate_or_throw(size, alignment);
}

inline void* new_nothrow_impl(std::size_t size, std::size_t alignment) noexcept {
  HPCALLOC_ASSERT(is_pow2(alignment));
  if (void* p = allocate(size, alignment)) [[likely]]
    return p;
  return allocate_or_null(size, alignment);
}

// The sized forms may ignore the size; the checked build verifies it (and
// the alignment) through the C23 sized frees, which report a mismatch.
constexpr const char* kDelete = "operator delete";

inline void delete_sized_impl(void* p, std::size_t size) noexcept {
  if constexpr (kChecked) {
    global::free_checking_size(p, 0, size, kDelete);
  } else {
    global::free(p, kDelete);
  }
}

inline void delete_sized_aligned_impl(void* p, std::size_t size, std::size_t alignment) noexcept {
  if constexpr (kChecked) {
    global::free_checking_size(p, alignment, size, kDelete);
  } else {
    global::free(p, kDelete);
  }
}

constexpr std::size_t value(std::align_val_t alignment) {
  return static_cast<std::size_t>(alignment);
}

}  // namespace
}  // namespace hpcalloc

using hpcalloc::kMallocAlignment;
using hpcalloc::value;

// <new> declares every operator below inside `#pragma GCC visibility
// push(default)`, so they are exported although the library's default
// visibility is hidden.

void* operator new(std::size_t size) { return hpcalloc::new_impl(size, kMallocAlignment); }
void* operator new[](std::size_t size) { return hpcalloc::new_impl(size, kMallocAlignment); }
void* operator new(std::size_t size, const std::nothrow_t&) noexcept {
  return hpcalloc::new_nothrow_impl(size, kMallocAlignment);
}
void* operator new[](std::size_t size, const std::nothrow_t&) noexcept {
  return hpcalloc::new_nothrow_impl(size, kMallocAlignment);
}

void* operator new(std::size_t size, std::align_val_t alignment) {
  return hpcalloc::new_impl(size, value(alignment));
}
void* operator new[](std::size_t size, std::align_val_t alignment) {
  return hpcalloc::new_impl(size, value(alignment));
}
void* operator new(std::size_t size, std::align_val_t alignment, const std::nothrow_t&) noexcept {
  return hpcalloc::new_nothrow_impl(size, value(alignment));
}
void* operator new[](std::size_t size, std::align_val_t alignment, const std::nothrow_t&) noexcept {
  return hpcalloc::new_nothrow_impl(size, value(alignment));
}

void operator delete(void* p) noexcept { hpcalloc::global::free(p, hpcalloc::kDelete); }
void operator delete[](void* p) noexcept { hpcalloc::global::free(p, hpcalloc::kDelete); }
void operator delete(void* p, const std::nothrow_t&) noexcept {
  hpcalloc::global::free(p, hpcalloc::kDelete);
}
void operator delete[](void* p, const std::nothrow_t&) noexcept {
  hpcalloc::global::free(p, hpcalloc::kDelete);
}
void operator delete(void* p, std::size_t size) noexcept { hpcalloc::delete_sized_impl(p, size); }
void operator delete[](void* p, std::size_t size) noexcept { hpcalloc::delete_sized_impl(p, size); }

// An aligned block carries its marker, so free finds it without the
// alignment.
void operator delete(void* p, std::align_val_t) noexcept {
  hpcalloc::global::free(p, hpcalloc::kDelete);
}
void operator delete[](void* p, std::align_val_t) noexcept {
  hpcalloc::global::free(p, hpcalloc::kDelete);
}
void operator delete(void* p, std::align_val_t, const std::nothrow_t&) noexcept {
  hpcalloc::global::free(p, hpcalloc::kDelete);
}
void operator delete[](void* p, std::align_val_t, const std::nothrow_t&) noexcept {
  hpcalloc::global::free(p, hpcalloc::kDelete);
}
void operator delete(void* p, std::size_t size, std::align_val_t alignment) noexcept {
  hpcalloc::delete_sized_aligned_impl(p, size, value(alignment));
}
void operator delete[](void* p, std::size_t size, std::align_val_t alignment) noexcept {
  hpcalloc::delete_sized_aligned_impl(p, size, value(alignment));
}

// The replaceable global operator new/delete of libhpcalloc.so, every variant
// of [new.delete.single] and [new.delete.array]: plain, nothrow, sized and
// std::align_val_t. Success never leaves global's fast path.
//
// Failure is handed to the C++ runtime's own operator new, found with
// dlsym(RTLD_NEXT) on that cold path: it retries through malloc (ours),
// runs the standard's loop (call the new_handler while there is one, then
// throw std::bad_alloc; its nothrow forms catch it and return nullptr), and
// is the one place that knows how to throw. So libhpcalloc.so has no link
// dependency on libstdc++ (and libm): a C program that preloads it does not
// load them (their pages cost about 1.5 MB of RSS), while a C++ program,
// which has its runtime loaded, gets the standard behaviour, new_handler and
// exceptions included.
#include <dlfcn.h>

#include <atomic>
#include <cstddef>
#include <new>
#include <type_traits>

#include "api/fast_paths.h"
#include "api/global_allocator.h"
#include "api/hpcalloc.h"
#include "base/base.h"
#include "base/report.h"

namespace hpcalloc {
namespace {

// global::malloc is 16-byte aligned: an alignment up to this needs no marker.
constexpr std::size_t kMallocAlignment = 16;

// A report during an aligned allocation names operator new; a plain one
// takes malloc's fast path, whose reports name malloc().
void* allocate(std::size_t size, std::size_t alignment) {
  if (alignment <= kMallocAlignment) return internal::malloc_inline(size);
  return global::memalign(alignment, size, "operator new");
}

// The runtime's operators, by their Itanium C++ ABI names (std::size_t is
// unsigned long, `m`, on every Linux ABI this builds for).
static_assert(std::is_same_v<std::size_t, unsigned long>);
enum class Form { kNew, kNewArray, kNewAligned, kNewArrayAligned, kCount };
constexpr const char* kRuntimeNames[2][static_cast<int>(Form::kCount)] = {
    {"_Znwm", "_Znam", "_ZnwmSt11align_val_t", "_ZnamSt11align_val_t"},
    {"_ZnwmRKSt9nothrow_t", "_ZnamRKSt9nothrow_t", "_ZnwmSt11align_val_tRKSt9nothrow_t",
     "_ZnamSt11align_val_tRKSt9nothrow_t"}};

// The next definition of one operator: the C++ runtime's. Looked up once;
// relaxed is enough (dlsym's answer is the same for every thread, and what
// it points to is code mapped before any of these operators could run).
void* runtime_operator(Form form, bool nothrow) {
  static std::atomic<void*> cache[2][static_cast<int>(Form::kCount)];
  std::atomic<void*>& entry = cache[nothrow][static_cast<int>(form)];
  void* f = entry.load(std::memory_order_relaxed);
  if (f == nullptr) {
    f = ::dlsym(RTLD_NEXT, kRuntimeNames[nothrow][static_cast<int>(form)]);
    if (f == nullptr) {
      // Nothing after us defines it: no C++ runtime is loaded, so nobody
      // can catch std::bad_alloc either. Say so rather than return null
      // from an operator that must not.
      ReportLine line;
      line.text("operator new: out of memory, and no C++ runtime loaded to throw std::bad_alloc");
      fatal(line);
    }
    entry.store(f, std::memory_order_relaxed);
  }
  return f;
}

// After a failed first try: the runtime's operator of the same form.
[[gnu::cold, gnu::noinline]] void* allocate_or_throw(std::size_t size, Form form,
                                                     std::size_t alignment) {
  void* f = runtime_operator(form, false);
  if (form == Form::kNew || form == Form::kNewArray) {
    return reinterpret_cast<void* (*)(std::size_t)>(f)(size);
  }
  return reinterpret_cast<void* (*)(std::size_t, std::align_val_t)>(f)(
      size, static_cast<std::align_val_t>(alignment));
}

// The tag the nothrow forms take. A local one: std::nothrow is an object
// of the C++ runtime, which this library does not link.
constexpr std::nothrow_t kNothrow{};

[[gnu::cold, gnu::noinline]] void* allocate_or_null(std::size_t size, Form form,
                                                    std::size_t alignment) noexcept {
  void* f = runtime_operator(form, true);
  if (form == Form::kNew || form == Form::kNewArray) {
    return reinterpret_cast<void* (*)(std::size_t, const std::nothrow_t&) noexcept>(f)(size,
                                                                                       kNothrow);
  }
  return reinterpret_cast<void* (*)(std::size_t, std::align_val_t, const std::nothrow_t&) noexcept>(
      f)(size, static_cast<std::align_val_t>(alignment), kNothrow);
}

// Everything but a block from the thread's cache (one tail call from the
// operators, so their fast path saves no register to keep the request).
[[gnu::noinline]] void* new_slow(std::size_t size, Form form, std::size_t alignment) {
  if (void* p = allocate(size, alignment)) [[likely]]
    return p;
  return allocate_or_throw(size, form, alignment);
}

[[gnu::noinline]] void* new_nothrow_slow(std::size_t size, Form form,
                                         std::size_t alignment) noexcept {
  if (void* p = allocate(size, alignment)) [[likely]]
    return p;
  return allocate_or_null(size, form, alignment);
}

[[gnu::always_inline]] inline void* new_impl(std::size_t size, Form form, std::size_t alignment) {
  HPCALLOC_ASSERT(is_pow2(alignment));
  if (alignment <= kMallocAlignment) {
    if (void* p = internal::malloc_from_cache(size)) [[likely]]
      return p;
  }
  return new_slow(size, form, alignment);
}

[[gnu::always_inline]] inline void* new_nothrow_impl(std::size_t size, Form form,
                                                     std::size_t alignment) noexcept {
  HPCALLOC_ASSERT(is_pow2(alignment));
  if (alignment <= kMallocAlignment) {
    if (void* p = internal::malloc_from_cache(size)) [[likely]]
      return p;
  }
  return new_nothrow_slow(size, form, alignment);
}

// The sized forms may ignore the size; the checked build verifies it (and
// the alignment) through the C23 sized frees, which report a mismatch.
constexpr const char* kDelete = "operator delete";

inline void delete_sized_impl(void* p, std::size_t size) noexcept {
  if constexpr (kChecked) {
    global::free_checking_size(p, 0, size, kDelete);
  } else {
    internal::free_inline(p, kDelete);
  }
}

inline void delete_sized_aligned_impl(void* p, std::size_t size, std::size_t alignment) noexcept {
  if constexpr (kChecked) {
    global::free_checking_size(p, alignment, size, kDelete);
  } else {
    internal::free_inline(p, kDelete);
  }
}

constexpr std::size_t value(std::align_val_t alignment) {
  return static_cast<std::size_t>(alignment);
}

}  // namespace
}  // namespace hpcalloc

using hpcalloc::Form;
using hpcalloc::kMallocAlignment;
using hpcalloc::value;

// <new> declares every operator below inside `#pragma GCC visibility
// push(default)`, so they are exported although the library's default
// visibility is hidden.

void* operator new(std::size_t size) {
  return hpcalloc::new_impl(size, Form::kNew, kMallocAlignment);
}
void* operator new[](std::size_t size) {
  return hpcalloc::new_impl(size, Form::kNewArray, kMallocAlignment);
}
void* operator new(std::size_t size, const std::nothrow_t&) noexcept {
  return hpcalloc::new_nothrow_impl(size, Form::kNew, kMallocAlignment);
}
void* operator new[](std::size_t size, const std::nothrow_t&) noexcept {
  return hpcalloc::new_nothrow_impl(size, Form::kNewArray, kMallocAlignment);
}

void* operator new(std::size_t size, std::align_val_t alignment) {
  return hpcalloc::new_impl(size, Form::kNewAligned, value(alignment));
}
void* operator new[](std::size_t size, std::align_val_t alignment) {
  return hpcalloc::new_impl(size, Form::kNewArrayAligned, value(alignment));
}
void* operator new(std::size_t size, std::align_val_t alignment, const std::nothrow_t&) noexcept {
  return hpcalloc::new_nothrow_impl(size, Form::kNewAligned, value(alignment));
}
void* operator new[](std::size_t size, std::align_val_t alignment, const std::nothrow_t&) noexcept {
  return hpcalloc::new_nothrow_impl(size, Form::kNewArrayAligned, value(alignment));
}

void operator delete(void* p) noexcept { hpcalloc::internal::free_inline(p, hpcalloc::kDelete); }
void operator delete[](void* p) noexcept { hpcalloc::internal::free_inline(p, hpcalloc::kDelete); }
void operator delete(void* p, const std::nothrow_t&) noexcept {
  hpcalloc::internal::free_inline(p, hpcalloc::kDelete);
}
void operator delete[](void* p, const std::nothrow_t&) noexcept {
  hpcalloc::internal::free_inline(p, hpcalloc::kDelete);
}
void operator delete(void* p, std::size_t size) noexcept { hpcalloc::delete_sized_impl(p, size); }
void operator delete[](void* p, std::size_t size) noexcept { hpcalloc::delete_sized_impl(p, size); }

// An aligned block carries its marker, so free finds it without the
// alignment.
void operator delete(void* p, std::align_val_t) noexcept {
  hpcalloc::internal::free_inline(p, hpcalloc::kDelete);
}
void operator delete[](void* p, std::align_val_t) noexcept {
  hpcalloc::internal::free_inline(p, hpcalloc::kDelete);
}
void operator delete(void* p, std::align_val_t, const std::nothrow_t&) noexcept {
  hpcalloc::internal::free_inline(p, hpcalloc::kDelete);
}
void operator delete[](void* p, std::align_val_t, const std::nothrow_t&) noexcept {
  hpcalloc::internal::free_inline(p, hpcalloc::kDelete);
}
void operator delete(void* p, std::size_t size, std::align_val_t alignment) noexcept {
  hpcalloc::delete_sized_aligned_impl(p, size, value(alignment));
}
void operator delete[](void* p, std::size_t size, std::align_val_t alignment) noexcept {
  hpcalloc::delete_sized_aligned_impl(p, size, value(alignment));
}

// The inline fast paths of malloc() and free(), compiled into every entry
// point that allocates or frees (malloc and free, operator new and delete,
// hpc_malloc and hpc_free...): each exported function is the allocation
// itself rather than a jump to a shared one, which was two instructions of
// every malloc+free pair, and the compiler fits each inlined copy to its
// caller (operator new's null test, delete's name for reports).
//
// The common cases only: a thread with a heap allocating a small block from
// its cache, or freeing a small block of its own heap into its cache. The
// rest is one out-of-line call into global_allocator.cpp, which owns the
// thread's heap pointer and every slow path.
#pragma once

#include <cstddef>

#include "api/globals.h"

namespace hpcalloc::internal {

// The calling thread's heap: nullptr before its first allocation and after
// its exit. Defined in global_allocator.cpp. constinit (no dynamic
// initialisation) lets every file read it straight from TLS: C++ otherwise
// calls a wrapper on each use of a thread_local defined in another file.
extern constinit thread_local Heap* tls_heap;

// malloc() for a thread without a heap (it attaches one, or uses the
// fallback heap after its exit).
[[gnu::noinline]] void* malloc_without_heap(std::size_t size) noexcept;
// free() of what the fast path leaves: p == nullptr, a thread without a
// heap, a foreign pointer, another heap's block, a medium or huge block, a
// full cache, a block whose words look cached. `call` names the call the
// program made in a report.
[[gnu::noinline]] void free_slow_path(void* p, Heap* heap, const char* call) noexcept;

[[gnu::always_inline]] inline void* malloc_inline(std::size_t size) noexcept {
  Heap* heap = tls_heap;
  if (__builtin_expect(heap != nullptr, 1)) return heap->malloc(size);
  return malloc_without_heap(size);
}

// malloc()'s fast path alone: nullptr when it does not apply (no heap, not
// small, an empty cache...), with nothing done; then call malloc(). For
// callers that must act on a failure (operator new throws).
[[gnu::always_inline]] inline void* malloc_from_cache(std::size_t size) noexcept {
  Heap* heap = tls_heap;
  return __builtin_expect(heap != nullptr, 1) ? heap->malloc_from_cache(size) : nullptr;
}

// Every exit that is not the fast path is one tail call with the original
// arguments (and the heap, already loaded), so this path saves no register.
[[gnu::always_inline]] inline void free_inline(void* p, const char* call) noexcept {
  Heap* heap = tls_heap;
  if (__builtin_expect(heap != nullptr, 1) && heap->try_free_fast(p)) return;
  free_slow_path(p, heap, call);
}

}  // namespace hpcalloc::internal

// The standard allocation names of libhpcalloc.so (malloc, free, ..., the
// glibc-internal __libc_* aliases some programs call, mallinfo/mallinfo2).
// Preloaded, these interpose on glibc's. Each has the signature of its
// <stdlib.h>/<malloc.h> declaration (those headers are included so the
// compiler checks it) and the semantics of its hpc_* twin: the hot ones go
// straight to global (no PLT hop), the others through c_api.cpp.
//
// Not provided, so glibc's own stay in use on glibc's (unused) arenas:
// mallopt, malloc_stats, malloc_info.
#include <malloc.h>
#include <stdlib.h>

#include <climits>
#include <cstddef>

#include "api/fast_paths.h"
#include "api/global_allocator.h"
#include "api/globals.h"
#include "api/hpcalloc.h"

namespace global = hpcalloc::global;
namespace internal = hpcalloc::internal;

namespace {

// A pointer outside every hpcalloc segment was allocated before the preload
// took over, or by code bound to glibc's malloc directly: global forwards
// free/realloc/usable_size of such pointers to the next allocator. Priority
// 101 puts this first among this library's constructors; the loader runs the
// constructors of the libraries we depend on (libc, libstdc++) before ours,
// and theirs of libraries that depend on us after.
// The library is built with forwarding on from the first call (see
// src/CMakeLists.txt); this keeps it on should anything have turned it off.
//
// It also sets the allocator up at load time, as jemalloc and mimalloc do,
// rather than at the program's first allocation: the settings are read
// (HPCALLOC_STATS_FILE opened or warned about) and the summary printed at
// exit describe an initialised allocator even in a program that never
// allocates, or whose only malloc/free pair the compiler removed. (Before
// the library stopped linking the C++ runtime, libstdc++'s start-up
// allocation did this as a side effect.)
[[gnu::constructor(101)]] void set_up_at_load() {
  global::set_forward_foreign(true);
  (void)hpcalloc::internal::init();
}

struct mallinfo2 current_mallinfo2() {
  const global::Figures f = global::figures();
  struct mallinfo2 info {};
  // Segments of small and medium blocks. The figures are read one by one
  // while other threads allocate, so a difference may not be exact: clamp.
  info.arena = f.mapped > f.huge_mapped ? f.mapped - f.huge_mapped : 0;
  // glibc's counts of free chunks (ordblks) and fastbin chunks (smblks, with
  // their bytes in fsmblks) have no counterpart: hpcalloc keeps free space in
  // bitmaps and caches, not in countable chunks. They stay 0, as does usmblks
  // (always 0 in glibc).
  info.ordblks = 0;
  info.smblks = 0;
  info.hblks = f.huge_blocks;
  info.hblkhd = f.huge_mapped;
  info.usmblks = 0;
  info.fsmblks = 0;
  info.uordblks = f.in_use;      // usable bytes of live blocks, huge ones included
  info.fordblks = f.free_bytes;  // mapped but not in use, caches included
  info.keepcost = f.cached;      // what malloc_trim could release
  return info;
}

int clamp_to_int(std::size_t value) {
  return value > static_cast<std::size_t>(INT_MAX) ? INT_MAX : static_cast<int>(value);
}

}  // namespace

extern "C" {

// <stdlib.h>

[[gnu::visibility("default")]] void* malloc(size_t size) noexcept {
  return internal::malloc_inline(size);
}

[[gnu::visibility("default")]] void free(void* p) noexcept { internal::free_inline(p, "free()"); }

[[gnu::visibility("default")]] void* calloc(size_t count, size_t size) noexcept {
  return global::calloc(count, size);
}

[[gnu::visibility("default")]] void* realloc(void* p, size_t size) noexcept {
  return global::realloc(p, size);
}

[[gnu::visibility("default")]] void* reallocarray(void* p, size_t count, size_t size) noexcept {
  return hpc_reallocarray(p, count, size);
}

[[gnu::visibility("default")]] int posix_memalign(void** memptr, size_t alignment,
                                                  size_t size) noexcept {
  return hpc_posix_memalign(memptr, alignment, size);
}

[[gnu::visibility("default")]] void* aligned_alloc(size_t alignment, size_t size) noexcept {
  return hpc_aligned_alloc(alignment, size);
}

[[gnu::visibility("default")]] void* valloc(size_t size) noexcept { return hpc_valloc(size); }

// <malloc.h>

[[gnu::visibility("default")]] void* memalign(size_t alignment, size_t size) noexcept {
  return hpc_memalign(alignment, size);
}

[[gnu::visibility("default")]] void* pvalloc(size_t size) noexcept { return hpc_pvalloc(size); }

[[gnu::visibility("default")]] size_t malloc_usable_size(void* p) noexcept {
  return global::usable_size(p);
}

[[gnu::visibility("default")]] int malloc_trim(size_t pad) noexcept { return hpc_malloc_trim(pad); }

[[gnu::visibility("default")]] struct mallinfo2 mallinfo2() noexcept { return current_mallinfo2(); }

// The old int version, each field clamped to INT_MAX rather than wrapped.
[[gnu::visibility("default")]] struct mallinfo mallinfo() noexcept {
  const struct mallinfo2 wide = current_mallinfo2();
  struct mallinfo info {};
  info.arena = clamp_to_int(wide.arena);
  info.ordblks = clamp_to_int(wide.ordblks);
  info.smblks = clamp_to_int(wide.smblks);
  info.hblks = clamp_to_int(wide.hblks);
  info.hblkhd = clamp_to_int(wide.hblkhd);
  info.usmblks = clamp_to_int(wide.usmblks);
  info.fsmblks = clamp_to_int(wide.fsmblks);
  info.uordblks = clamp_to_int(wide.uordblks);
  info.fordblks = clamp_to_int(wide.fordblks);
  info.keepcost = clamp_to_int(wide.keepcost);
  return info;
}

// Not declared by glibc 2.36's headers, still exported by it or by C23.

// Removed from the headers in glibc 2.26, still in its ABI.
[[gnu::visibility("default")]] void cfree(void* p) noexcept { internal::free_inline(p, "free()"); }

[[gnu::visibility("default")]] void free_sized(void* p, size_t size) noexcept {
  hpc_free_sized(p, size);
}

[[gnu::visibility("default")]] void free_aligned_sized(void* p, size_t alignment,
                                                       size_t size) noexcept {
  hpc_free_aligned_sized(p, alignment, size);
}

// glibc's internal names, exported by libc.so.6 and called by some programs
// (and by libraries that wrap malloc) to reach "the real" allocator.

[[gnu::visibility("default")]] void* __libc_malloc(size_t size) noexcept {
  return internal::malloc_inline(size);
}

[[gnu::visibility("default")]] void __libc_free(void* p) noexcept {
  internal::free_inline(p, "free()");
}

[[gnu::visibility("default")]] void* __libc_calloc(size_t count, size_t size) noexcept {
  return global::calloc(count, size);
}

[[gnu::visibility("default")]] void* __libc_realloc(void* p, size_t size) noexcept {
  return global::realloc(p, size);
}

[[gnu::visibility("default")]] void* __libc_memalign(size_t alignment, size_t size) noexcept {
  return hpc_memalign(alignment, size);
}

[[gnu::visibility("default")]] void* __libc_valloc(size_t size) noexcept {
  return hpc_valloc(size);
}

[[gnu::visibility("default")]] void* __libc_pvalloc(size_t size) noexcept {
  return hpc_pvalloc(size);
}

}  // extern "C"

// The process-wide allocator behind every entry point: the C API with prefix
// (c_api.cpp), the standard names of the preload library
// (standard_names.cpp) and the C++ operators (cxx_operators.cpp) all call
// these functions and only add their own argument checks and return
// conventions. Implemented in global_allocator.cpp over ThreadHeap,
// HeapPool and MemorySource with the production configuration.
//
// Contracts (glibc's, which every caller relies on):
//   malloc(n)          16-byte-aligned block of >= n bytes (n == 0 gives a
//                      unique minimal block); nullptr + errno = ENOMEM when
//                      impossible (n > PTRDIFF_MAX) or out of memory.
//   calloc(c, n)       zeroed; c * n overflow -> nullptr + ENOMEM.
//   realloc(p, n)      p == nullptr: malloc(n); n == 0: free(p), nullptr;
//                      on failure nullptr + ENOMEM and p untouched.
//   memalign(a, n)     `a` must be a power of two (callers check, EINVAL is
//                      theirs to report); a < 16 behaves as 16.
//   free(p)            p == nullptr: nothing. Any thread may free any block.
//   usable_size(p)     >= the size asked for; 0 for nullptr.
// A pointer hpcalloc never returned: when the standard names are active
// (set_forward_foreign(true), done by the preload library) a pointer outside
// every hpcalloc segment is passed to the next allocator in the chain
// (glibc's, which owns memory allocated before hpcalloc took over); a
// pointer inside a segment that is not a live block is reported (one line on
// stderr, then abort unless HPCALLOC_ON_ERROR=warn).
#pragma once

#include <cstddef>
#include <cstdint>

namespace hpcalloc::global {

void* malloc(std::size_t size) noexcept;
void* calloc(std::size_t count, std::size_t size) noexcept;
void* realloc(void* p, std::size_t size) noexcept;
// `call`: the call the program made, which a report names (memalign(),
// posix_memalign(), aligned_alloc(), valloc(), pvalloc(), operator new for
// memalign; free(), operator delete, free_sized()... for free). Only the
// slow paths read it.
void* memalign(std::size_t alignment, std::size_t size, const char* call = "memalign()") noexcept;
void free(void* p) noexcept;  // free(): the name costs nothing on the fast path
void free(void* p, const char* call) noexcept;
// free() for the sized frees (free_sized, free_aligned_sized, sized
// operator delete): the checked build first reports a size or alignment
// the block cannot have had. Defined in c_api.cpp.
void free_checking_size(void* p, std::size_t alignment, std::size_t size,
                        const char* call) noexcept;
std::size_t usable_size(const void* p) noexcept;

// Releases cached memory back to the OS (all threads' spare segments and the
// sources' caches); returns true if any memory was released (malloc_trim).
bool trim(std::size_t pad);

// Figures for mallinfo2 (all in bytes except counts).
struct Figures {
  std::size_t mapped;       // everything hpcalloc has mapped (arena + huge)
  std::size_t huge_mapped;  // mapped by huge blocks (mallinfo2.hblkhd)
  std::size_t huge_blocks;  // live huge blocks (mallinfo2.hblks)
  std::size_t in_use;       // usable bytes of live blocks (uordblks)
  std::size_t free_bytes;   // mapped but not in use, caches included (fordblks)
  std::size_t cached;       // in the sources' caches (releasable: keepcost)
};
Figures figures();

// One statistic by its hpc_stat name (heaps_live, mapped_bytes,
// in_use_bytes, ...: every name, with what it counts, is a row of
// kStatistics in mem/statistics.h); false for an unknown name.
bool stat(const char* name, std::size_t* value);

// Writes the statistics summary (what HPCALLOC_STATS=1 prints at exit) to
// fd, without allocating.
void print_stats(int fd);
// The same figures as one JSON object on one line (what HPCALLOC_STATS=json
// prints at exit; the schema is in the README), without allocating.
void print_stats_json(int fd);

// Chooses what free/realloc/usable_size do with a pointer outside every
// hpcalloc segment: forward to the next allocator (preload) or report.
void set_forward_foreign(bool forward);

}  // namespace hpcalloc::global

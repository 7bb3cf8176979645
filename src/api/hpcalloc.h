/* hpcalloc's public C interface. Every function is also exported under the
 * standard names by libhpcalloc.so when it is preloaded; the prefixed names
 * are for programs that link hpcalloc next to another malloc, and for tests
 * under sanitizers that own malloc.
 *
 * Each function has exactly the semantics of its glibc 2.36 namesake (errno
 * values included); where glibc has no namesake (free_sized, stats) the
 * comment says what it does. "Impossible" sizes are those above PTRDIFF_MAX. */
#ifndef HPCALLOC_H
#define HPCALLOC_H

#include <stddef.h>

/* The symbols of this header stay visible when the library is built with
 * hidden visibility by default. */
#if defined(__GNUC__) || defined(__clang__)
#define HPCALLOC_EXPORT __attribute__((visibility("default")))
#else
#define HPCALLOC_EXPORT
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* The library's version, "MAJOR.MINOR.PATCH". */
HPCALLOC_EXPORT const char* hpc_version(void);
/* Which flavour this library is: "default" (libhpcalloc.so) or "secure"
 * (libhpcalloc-secure.so: guard pages, canaries, quarantine, zero-on-free;
 * see the README's "Misuse and hardening"). */
HPCALLOC_EXPORT const char* hpc_flavour(void);

/* 16-byte-aligned block of >= size bytes (size 0: a unique block); NULL and
 * errno ENOMEM when impossible or out of memory. */
HPCALLOC_EXPORT void* hpc_malloc(size_t size);
/* Releases a block from any hpcalloc function, from any thread; NULL: nothing. */
HPCALLOC_EXPORT void hpc_free(void* p);
/* Zeroed count * size bytes; NULL and ENOMEM on overflow of the product. */
HPCALLOC_EXPORT void* hpc_calloc(size_t count, size_t size);
/* p NULL: malloc(size); size 0: frees p, returns NULL; failure: NULL, ENOMEM,
 * p untouched; otherwise the contents up to min(old, new) size are kept. */
HPCALLOC_EXPORT void* hpc_realloc(void* p, size_t size);
/* realloc(p, count * size); NULL and ENOMEM (p untouched) on overflow. */
HPCALLOC_EXPORT void* hpc_reallocarray(void* p, size_t count, size_t size);
/* Block aligned to `alignment`: <= 16 behaves as malloc, a non-power of two is
 * rounded up to the next power of two, above SIZE_MAX / 2 + 1 is EINVAL. */
HPCALLOC_EXPORT void* hpc_memalign(size_t alignment, size_t size);
/* Returns EINVAL (errno untouched) unless alignment is a power of two multiple
 * of sizeof(void*), ENOMEM (errno ENOMEM too, as glibc) on failure, 0 on
 * success; *memptr is written only on success. */
HPCALLOC_EXPORT int hpc_posix_memalign(void** memptr, size_t alignment, size_t size);
/* glibc 2.36's aligned_alloc is memalign: any alignment is accepted and
 * rounded as there, and size need not be a multiple of it. */
HPCALLOC_EXPORT void* hpc_aligned_alloc(size_t alignment, size_t size);
/* memalign(page size, size). */
HPCALLOC_EXPORT void* hpc_valloc(size_t size);
/* memalign(page size, size rounded up to whole pages, at least one page);
 * ENOMEM when the rounding overflows. */
HPCALLOC_EXPORT void* hpc_pvalloc(size_t size);
/* Bytes usable in the block, >= the size asked for; 0 for NULL. */
HPCALLOC_EXPORT size_t hpc_malloc_usable_size(void* p);
/* C23: free(p) where size is the size asked for (checked build: a size larger
 * than the block's usable size is reported). */
HPCALLOC_EXPORT void hpc_free_sized(void* p, size_t size);
/* C23: free(p) for a block from aligned_alloc(alignment, size) (checked build:
 * a wrong size or a p not aligned to alignment is reported). */
HPCALLOC_EXPORT void hpc_free_aligned_sized(void* p, size_t alignment, size_t size);
/* Gives memory back to the OS: every free page of the calling thread's heap
 * and of every pooled heap (exited threads'), and every cached mapping. The
 * heaps of other live threads give back their free pages at their own next
 * slow path (a refill, a medium or huge request): only a heap's owner may
 * walk it, its fast paths take no lock. `pad` is ignored. 1 if the mapped
 * total fell, else 0. */
HPCALLOC_EXPORT int hpc_malloc_trim(size_t pad);
/* Reads one statistics counter by name (the names hpc_print_stats prints) into
 * *value: 0 on success, -1 for an unknown or NULL name. A NULL value only
 * asks whether the name exists. */
HPCALLOC_EXPORT int hpc_stat(const char* name, size_t* value);
/* Writes the statistics summary (what HPCALLOC_STATS=1 prints at exit) to fd,
 * without allocating. */
HPCALLOC_EXPORT void hpc_print_stats(int fd);
/* The same figures as one JSON object on one line, for tools (what
 * HPCALLOC_STATS=json prints at exit; the schema is in the README), without
 * allocating. */
HPCALLOC_EXPORT void hpc_print_stats_json(int fd);

/* ---- NUMA (policy from HPCALLOC_NUMA: off, first-touch (default), preferred,
 * bind; see the README) ---- */

/* hpc_numa_rebind flag: move the pages of the calling thread's heap to the new
 * node too (mbind MPOL_MF_MOVE), instead of leaving its blocks where they are. */
#define HPC_NUMA_MIGRATE 1
/* The calling thread's heap follows the thread to the node of the CPU it runs
 * on now (call it after moving the thread, e.g. with sched_setaffinity): new
 * blocks come from that node. Without HPC_NUMA_MIGRATE the old heap is set
 * aside with its blocks (they stay valid, any thread may free them); with it,
 * the heap's memory is migrated. Returns the node (>= 0), or -1 with errno:
 * EINVAL for unknown flags, ENOMEM when no heap could be had (the thread keeps
 * its heap). Under HPCALLOC_NUMA=off there is one heap per thread whatever the
 * node: nothing changes and the current node is returned. Pages that could
 * not be migrated are counted (hpc_numa_node_stats) and the first such failure
 * is reported on stderr. */
HPCALLOC_EXPORT int hpc_numa_rebind(int flags);
/* A block of size bytes whose memory is bound to node (MPOL_PREFERRED, or
 * MPOL_BIND under HPCALLOC_NUMA=bind), whatever the calling thread's node.
 * Free it with hpc_free/free from any thread. NULL with errno: EINVAL for a
 * node the machine does not have, ENOMEM. */
HPCALLOC_EXPORT void* hpc_malloc_on_node(size_t size, int node);
/* The node hpcalloc placed p's memory on (p: a block or any address inside
 * one), or -1: not an hpcalloc block, or HPCALLOC_NUMA=off for a thread's
 * heap. This is the placement hpcalloc asked the kernel for; under
 * first-touch the kernel places each page where it is first touched. */
HPCALLOC_EXPORT int hpc_numa_node_of(const void* p);
/* Number of NUMA nodes hpcalloc sees (>= 1). */
HPCALLOC_EXPORT int hpc_numa_node_count(void);

struct hpc_numa_node_stats {
  size_t mapped_bytes;     /* mapped for this node, caches included */
  size_t cached_bytes;     /* in this node's mapping caches */
  size_t in_use_bytes;     /* live blocks of heaps on this node (may lag a batch) */
  size_t heaps;            /* heaps attached to threads on this node */
  size_t bind_failures;    /* mappings mbind refused to place on this node */
  size_t migrated_in;      /* mappings moved here by hpc_numa_rebind */
  size_t migrate_failures; /* of those, mappings whose pages could not all move */
};
/* Fills *out for node: 0, or -1 with errno = EINVAL (no such node, NULL out). */
HPCALLOC_EXPORT int hpc_numa_node_stats(int node, struct hpc_numa_node_stats* out);

#ifdef __cplusplus
}
#endif

#endif /* HPCALLOC_H */

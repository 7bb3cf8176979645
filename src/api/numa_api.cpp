// The NUMA part of the prefixed C API (hpcalloc.h): rebinding the calling
// thread's heap, allocation on a chosen node, where a block lives, and
// per-node statistics. The work is NumaHeaps' (mem/numa_heaps.h); this file
// adds argument checks and the calling thread's heap.
#include <cerrno>
#include <cstddef>

#include "api/globals.h"
#include "api/hpcalloc.h"

using namespace hpcalloc;
using namespace hpcalloc::internal;

extern "C" {

int hpc_numa_rebind(int flags) {
  if ((flags & ~HPC_NUMA_MIGRATE) != 0) {
    errno = EINVAL;
    return -1;
  }
  Globals* g = init();
  const unsigned node = g->numa.current_node();
  Heap* heap = calling_threads_heap();
  if (heap == nullptr) return static_cast<int>(node);  // the next allocation attaches one there
  std::size_t failed_moves = 0;
  Heap* next = g->numa.rebind(heap, (flags & HPC_NUMA_MIGRATE) != 0, &failed_moves);
  if (next == nullptr) return -1;  // ENOMEM: the thread keeps its heap
  if (next != heap) set_calling_threads_heap(next);
  return static_cast<int>(node);
}

void* hpc_malloc_on_node(size_t size, int node) {
  Globals* g = init();
  return g->numa.malloc_on_node(size, node, calling_threads_heap());
}

int hpc_numa_node_of(const void* p) {
  Globals* g = globals();
  return g == nullptr || p == nullptr ? -1 : g->numa.node_of(p);
}

int hpc_numa_node_count(void) { return static_cast<int>(init()->numa.node_count()); }

int hpc_numa_node_stats(int node, struct hpc_numa_node_stats* out) {
  NodeStats s;
  if (out == nullptr || node < 0 || !init()->numa.node_stats(static_cast<unsigned>(node), &s)) {
    errno = EINVAL;
    return -1;
  }
  out->mapped_bytes = s.mapped_bytes;
  out->cached_bytes = s.cached_bytes;
  out->in_use_bytes = s.in_use_bytes;
  out->heaps = s.heaps;
  out->bind_failures = s.bind_failures;
  out->migrated_in = s.migrated_in;
  out->migrate_failures = s.migrate_failures;
  return 0;
}

}  // extern "C"

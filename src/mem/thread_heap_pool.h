// The pool of the allocator's own heaps: HeapPool (heap_pool.h, generic so
// the model checker can run it with a model heap) over ThreadHeap.
#pragma once

#include "mem/config.h"
#include "mem/heap_pool.h"
#include "mem/thread_heap.h"

namespace hpcalloc {

template <HeapConfig Config>
using ThreadHeapPool = HeapPool<ThreadHeap<Config>, typename Config::Sync, typename Config::Pal>;

}  // namespace hpcalloc

// Layer 5, mem: the memory engine, every part a template over one Config
// (Pal, Sync, Reporter, size constants): size classes, small runs, medium
// free lists, memory sources (segment and huge-mapping cache), thread heaps
// and the table of their statistics. Includes the layers below.
#pragma once

#include "ds/ds.h"
#include "mem/config.h"
#include "mem/heap_errors.h"
#include "mem/medium_free_lists.h"
#include "mem/memory_source.h"
#include "mem/segment.h"
#include "mem/size_classes.h"
#include "mem/small_runs.h"
#include "mem/statistics.h"
#include "mem/thread_heap.h"

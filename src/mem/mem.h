// Layer 5, mem: the memory engine, every part a template over one Config
// (Pal, Sync, size constants): size classes, small runs, medium free lists,
// memory sources, thread heaps and the heap pool. Includes the layers below.
#pragma once

#include "ds/ds.h"

// Layer 4, ds: data structures templated over a Sync policy: the remote-free
// queue, the region registry and intrusive lists. Includes base/, sync/ and
// pal/. (Run bitmaps are SmallRuns' own word loops: see mem/small_runs.h.)
#pragma once

#include "pal/pal.h"

#include "ds/intrusive_list.h"
#include "ds/region_registry.h"
#include "ds/remote_free_queue.h"

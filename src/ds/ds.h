// Layer 4, ds: data structures templated over a Sync policy: the remote-free
// queue, the region registry, bitmaps and intrusive lists. Includes base/,
// sync/ and pal/.
#pragma once

#include "pal/pal.h"

#include "ds/bitmap.h"
#include "ds/intrusive_list.h"
#include "ds/region_registry.h"
#include "ds/remote_free_queue.h"

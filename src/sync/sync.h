// Layer 2, sync: the synchronisation policy concept, the production policy
// (StdSync) and the spin lock built on any policy. Includes only base/.
#pragma once

#include "sync/spin_lock.h"
#include "sync/std_sync.h"
#include "sync/sync_policy.h"

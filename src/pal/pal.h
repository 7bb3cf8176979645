// Layer 3, pal: the platform. The Pal concept states the contract of every OS
// call the allocator makes (reserve, commit, decommit, release, remap, bind to
// a NUMA node, topology, page size); LinuxPal implements it with system calls
// and SimPal simulates it deterministically for tests. Only this layer touches
// the OS. Includes base/ and sync/.
//
// sim_pal.h is deliberately not included here: it is test-only and uses the
// standard library's allocating containers, so tests include it directly.
#pragma once

#include "base/base.h"
#include "pal/default_pal.h"
#include "pal/linux_pal.h"
#include "pal/linux_topology.h"
#include "pal/pal_concept.h"
#include "sync/sync.h"

namespace hpcalloc {

static_assert(Pal<LinuxPal>);

}  // namespace hpcalloc

// Layer 3, pal: the platform. The Pal concept states the contract of every OS
// call the allocator makes (reserve, commit, decommit, release, remap, bind to
// a NUMA node, topology, page size); LinuxPal implements it with system calls
// and SimPal simulates it deterministically for tests. Only this layer touches
// the OS. Includes base/ and sync/.
#pragma once

#include "base/base.h"
#include "sync/sync.h"

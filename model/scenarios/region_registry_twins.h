// The region registry's deliberately broken twins (ds/region_registry.h's
// Orders policy, weakened one thing each), shared by the Relacy model
// (model/region_registry_model.cpp) and the TSan stress on real threads
// (tsan/region_registry_stress.cpp), so both check the same twins.
#pragma once

#include <atomic>

#include "ds/region_registry.h"

namespace hpcalloc::scenarios {

// assign()'s entry store does not publish the header it points to.
struct RelaxedEntryStore : RegionRegistryOrders {
  static constexpr std::memory_order kPublishEntry = std::memory_order_relaxed;  // BROKEN
};
// lookup() does not synchronise with that store.
struct RelaxedLookup : RegionRegistryOrders {
  static constexpr std::memory_order kLookup = std::memory_order_relaxed;  // BROKEN
};
// A new leaf is installed by a plain store: a racing writer's leaf and the
// entries written into it are lost.
struct PlainStoreInstall : RegionRegistryOrders {
  static constexpr bool kInstallLeafWithCas = false;  // BROKEN
};

}  // namespace hpcalloc::scenarios

// The resident_bytes statistic: how much of hpcalloc's memory is in RAM
// now. Every mapping hpcalloc serves blocks from (segments, huge blocks,
// cached mappings) is registered, so the registry's ranges are exactly
// what to ask the platform about (Pal::resident_bytes: mincore on Linux).
// Pages never touched, given back by decay or trim, or guard pages do not
// count; the metadata (the heaps' slabs, the registry's leaves) is added
// whole by the caller, as it is written when made.
//
// A walk of the registry's root and a system call per 2 MiB resident
// range: cheap for a statistic, too dear for a path that allocates, so it
// is computed only when asked (hpc_stat("resident_bytes"), the summary).
// Other threads keep running: a range mapped or unmapped during the walk
// may or may not be counted.
#pragma once

#include <cstddef>

namespace hpcalloc {

template <class Registry, class Pal>
std::size_t registered_resident_bytes(const Registry& registry, const Pal& pal) {
  std::size_t bytes = 0;
  registry.for_each_range([&](void* start, std::size_t size, const auto*) {
    bytes += pal.resident_bytes(start, size);
  });
  return bytes;
}

}  // namespace hpcalloc

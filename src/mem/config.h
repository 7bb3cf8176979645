// The one template parameter of every component in mem/: a Config type names
// the platform (Pal), the synchronisation policy (Sync), the error reporter
// and the size constants. Production's is in api/; tests build tiny ones
// (test_configs.h) so edge cases (a full segment, a full cache) come quickly.
#pragma once

#include <concepts>
#include <cstddef>

#include "base/bits.h"
#include "mem/heap_errors.h"
#include "pal/pal_concept.h"
#include "sync/sync_policy.h"

namespace hpcalloc {

template <class C>
concept HeapConfig = Pal<typename C::Pal> && SyncPolicy<typename C::Sync> &&
    HeapErrorReporter<typename C::Reporter> && requires {
  // log2 of the segment size (21: 2 MiB) and of a small run (16: 64 KiB).
  { C::kSegmentShift } -> std::convertible_to<unsigned>;
  { C::kRunShift } -> std::convertible_to<unsigned>;
  // Largest small request (a power of two) and largest medium request.
  { C::kSmallMax } -> std::convertible_to<std::size_t>;
  { C::kMediumMax } -> std::convertible_to<std::size_t>;
  // Registry geometry: user address bits, bits indexed by its root table.
  { C::kAddressBits } -> std::convertible_to<unsigned>;
  { C::kRegistryRootBits } -> std::convertible_to<unsigned>;
  // Per-class front cache of a heap: most blocks kept, blocks per refill.
  { C::kSmallCacheCapacity } -> std::convertible_to<unsigned>;
  { C::kSmallRefillBatch } -> std::convertible_to<unsigned>;
  // Entries of a memory source's cache of free mappings.
  { C::kMappingCacheEntries } -> std::convertible_to<unsigned>;
};

// Remote frees (mem/remote_frees.h): blocks one batch holds, 64 or fewer
// when a carrier of 64 would not be a small block (tiny test configs), and
// the bytes of the carrier that takes a full batch to its owner (three
// header words, then the pointers). Carriers have runs of their own
// (SmallRuns::allocate_carrier).
template <HeapConfig C>
inline constexpr unsigned kRemoteBatchOf = C::kSmallMax / sizeof(void*) - 3 < 64
                                               ? C::kSmallMax / sizeof(void*) - 3
                                               : 64;
template <HeapConfig C>
inline constexpr std::size_t kCarrierBytesOf = (3 + std::size_t{kRemoteBatchOf<C>}) * sizeof(void*);

// Relations between the constants; instantiate to check a config.
template <HeapConfig C>
struct ConfigChecks {
  static constexpr std::size_t kSegmentSize = std::size_t{1} << C::kSegmentShift;
  static constexpr std::size_t kRunSize = std::size_t{1} << C::kRunShift;
  static_assert(C::kRunShift < C::kSegmentShift, "runs are smaller than segments");
  static_assert(kSegmentSize / kRunSize <= 64, "a segment's free runs fit one 64-bit mask");
  static_assert(kRunSize <= (std::size_t{1} << 20),
                "slot offsets fit 32 bits, SlotDivisor is exact");
  static_assert(is_pow2(C::kSmallMax) && C::kSmallMax * 4 <= kRunSize,
                "a run holds several blocks of the largest small class");
  static_assert(C::kMediumMax > C::kSmallMax && C::kMediumMax <= kSegmentSize / 2,
                "medium blocks fit a segment with room to spare");
  static_assert(C::kAddressBits > C::kSegmentShift + C::kRegistryRootBits,
                "the registry needs leaf bits");
  static_assert(C::kSmallRefillBatch >= 1 && C::kSmallRefillBatch <= C::kSmallCacheCapacity);
  static constexpr bool kOk = true;
};

}  // namespace hpcalloc

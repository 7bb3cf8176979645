// Small named configurations for tests (scudo's discipline): tiny segments,
// runs and caches so full runs, segment turnover and cache limits are reached
// in a few operations, and a production-sized one for realistic layouts.
// Test-only: uses the standard library freely.
#pragma once

#include <cstddef>
#include <vector>

#include "mem/config.h"
#include "mem/heap_errors.h"
#include "sync/std_sync.h"

namespace hpcalloc::testing_configs {

// Records reports instead of aborting, so tests can assert on them.
class RecordingReporter {
 public:
  struct Report {
    HeapError error;
    const void* pointer;
    bool operator==(const Report&) const = default;
  };
  void report(HeapError error, const char* /*operation*/, const void* p) {
    reports.push_back({error, p});
  }
  std::size_t count(HeapError error) const {
    std::size_t n = 0;
    for (const Report& r : reports) n += r.error == error;
    return n;
  }
  std::vector<Report> reports;
};

// 64 KiB segments of 4 KiB runs, small blocks up to 256 bytes, medium up to
// 16 KiB, caches of 8 blocks and 4 mappings.
template <class PalType>
struct TinyConfig {
  using Pal = PalType;
  using Sync = StdSync;
  using Reporter = RecordingReporter;
  static constexpr unsigned kSegmentShift = 16;
  static constexpr unsigned kRunShift = 12;
  static constexpr std::size_t kSmallMax = 256;
  static constexpr std::size_t kMediumMax = 16 * 1024;
  static constexpr unsigned kAddressBits = 48;
  static constexpr unsigned kRegistryRootBits = 18;
  static constexpr unsigned kSmallCacheCapacity = 8;
  static constexpr unsigned kSmallRefillBatch = 4;
  static constexpr unsigned kMappingCacheEntries = 4;
};

// Production geometry (2 MiB segments, 64 KiB runs, 1 KiB small, 1 MiB
// medium) with small caches.
template <class PalType>
struct ProductionGeometryConfig {
  using Pal = PalType;
  using Sync = StdSync;
  using Reporter = RecordingReporter;
  static constexpr unsigned kSegmentShift = 21;
  static constexpr unsigned kRunShift = 16;
  static constexpr std::size_t kSmallMax = 1024;
  static constexpr std::size_t kMediumMax = 1024 * 1024;
  static constexpr unsigned kAddressBits = 48;
  static constexpr unsigned kRegistryRootBits = 13;
  static constexpr unsigned kSmallCacheCapacity = 16;
  static constexpr unsigned kSmallRefillBatch = 8;
  static constexpr unsigned kMappingCacheEntries = 8;
};

}  // namespace hpcalloc::testing_configs

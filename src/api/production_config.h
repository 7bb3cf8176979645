// The configuration the process-wide allocator runs with: the Linux platform,
// std::atomic, the stderr reporter that counts its reports, and the
// production sizes. The constants
// are starting points from DESIGN.md; bench/ decides (see README "Results").
#pragma once

#include <cstddef>

#include "api/counting_reporter.h"
#include "mem/config.h"
#include "pal/default_pal.h"
#include "sync/std_sync.h"

namespace hpcalloc {

struct ProductionConfig {
  using Pal = DefaultPal;
  using Sync = StdSync;
  using Reporter = CountingStderrReporter;
  static constexpr unsigned kSegmentShift = 21;   // 2 MiB segments
  static constexpr unsigned kRunShift = 16;       // 64 KiB runs
  static constexpr std::size_t kSmallMax = 1024;  // 32 small classes
  static constexpr std::size_t kMediumMax = std::size_t{1} << 20;
  static constexpr unsigned kAddressBits = 48;
  static constexpr unsigned kRegistryRootBits = 13;  // 64 KiB static root
  static constexpr unsigned kSmallCacheCapacity =
      256;  // blocks per class per thread (at most 32 KiB)
  static constexpr unsigned kSmallRefillBatch = 64;
  static constexpr unsigned kMappingCacheEntries = 64;
};

static_assert(HeapConfig<ProductionConfig>);
static_assert(ConfigChecks<ProductionConfig>::kOk);

}  // namespace hpcalloc

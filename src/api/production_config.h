// The configuration the process-wide allocator runs with: the Linux platform,
// std::atomic, the stderr reporter that counts its reports, and the
// production sizes. The constants
// are starting points from DESIGN.md; bench/ decides (see README "Results").
#pragma once

#include <cstddef>
#include <type_traits>

#include "api/counting_reporter.h"
#include "mem/config.h"
#include "mem/hardening.h"
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
  // A 1 MiB root in static storage (constant-initialised: only the pages
  // of the roots in use are ever touched) and 8 KiB leaves, each mapping
  // 2 GiB: a small program touches 12 KiB of registry, not 192 KiB.
  static constexpr unsigned kRegistryRootBits = 17;
  static constexpr unsigned kSmallCacheCapacity =
      256;  // blocks per class per thread (at most 32 KiB)
  static constexpr unsigned kSmallRefillBatch = 64;
  static constexpr unsigned kMappingCacheEntries = 64;
};

static_assert(HeapConfig<ProductionConfig>);
static_assert(ConfigChecks<ProductionConfig>::kOk);

// The secure flavour (libhpcalloc-secure.so): the same sizes, every
// hardening feature on (mem/hardening.h).
struct SecureProductionConfig : ProductionConfig {
  static constexpr Hardening kHardening = Hardening::secure();
};

static_assert(HeapConfig<SecureProductionConfig>);
static_assert(ConfigChecks<SecureProductionConfig>::kOk);

// Which of the two a library is built as: the build sets HPCALLOC_SECURE
// to 1 for the secure targets (src/CMakeLists.txt), and this is the only
// place that reads it.
#ifndef HPCALLOC_SECURE
#define HPCALLOC_SECURE 0
#endif
inline constexpr bool kSecureFlavour = HPCALLOC_SECURE != 0;
using FlavourConfig = std::conditional_t<kSecureFlavour, SecureProductionConfig, ProductionConfig>;

}  // namespace hpcalloc

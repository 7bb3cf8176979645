// resident_bytes (mem/resident_bytes.h) on SimPal, whose page accounting
// is exact: the registry's ranges plus its leaves are everything a heap
// fixture reserves, so their resident bytes must equal SimPal's committed
// bytes after every kind of step (small, medium and huge blocks, cached
// mappings, decay, trim), and fall by exactly what decay gave back.
#include "mem/resident_bytes.h"

#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "mem/heap_fixture.h"
#include "mem/test_configs.h"
#include "pal/linux_pal.h"
#include "pal/sim_pal.h"

namespace hpcalloc {
namespace {

using SimConfig = testing_configs::ProductionGeometryConfig<SimPal>;
using SimFixture = testing_configs::HeapFixture<SimConfig>;
constexpr std::int64_t kDelay = 1000;

template <class Fixture>
std::size_t resident(const Fixture& f) {
  return registered_resident_bytes(*f.registry, f.pal) +
         f.registry->leaf_count() * f.registry->leaf_bytes();
}

TEST(ResidentBytes, AreSimPalsCommittedBytesThroughEveryKindOfStep) {
  SourceLimits limits;
  limits.decay_ms = kDelay;
  SimFixture f(limits, SimPalOptions{.arena_size = std::size_t{512} << 20});
  auto& heap = *f.heap;
  EXPECT_EQ(resident(f), f.pal.committed_bytes());
  std::vector<void*> blocks;
  for (std::size_t size : {24u, 512u, 3000u, 40000u, 700000u, 5000000u}) {
    for (int i = 0; i < 64; ++i) {
      void* p = heap.malloc(size);
      ASSERT_NE(p, nullptr);
      std::memset(p, 0x3c, size);
      blocks.push_back(p);
    }
    EXPECT_EQ(resident(f), f.pal.committed_bytes()) << size;
  }
  EXPECT_GT(resident(f), std::size_t{64} * 5000000);
  for (std::size_t i = 0; i < blocks.size(); ++i) {
    if (i % 8 != 0) heap.free(blocks[i]);  // huge blocks go to the cache
  }
  EXPECT_EQ(resident(f), f.pal.committed_bytes());
  // Decay gives back what is free: resident falls by exactly that.
  const std::size_t before = resident(f);
  const std::size_t decayed_before = f.source->stats().decayed_bytes;
  for (int step = 0; step < 4; ++step) {
    f.pal.advance_ms(kDelay);
    heap.decay_tick();
    f.source->decay(f.pal.now_ms());
  }
  const std::size_t decayed = f.source->stats().decayed_bytes - decayed_before;
  EXPECT_GT(decayed, 0u);
  EXPECT_EQ(resident(f), f.pal.committed_bytes());
  EXPECT_EQ(resident(f), before - decayed);
  heap.trim(/*release_cached_mappings=*/true);
  EXPECT_EQ(resident(f), f.pal.committed_bytes());
  for (std::size_t i = 0; i < blocks.size(); i += 8) heap.free(blocks[i]);
  heap.trim(true);
  EXPECT_EQ(resident(f), f.pal.committed_bytes());
}

// On Linux the pages must have been touched: a fresh segment counts only
// the pages its headers wrote, and a block's pages once it is filled.
TEST(ResidentBytes, OnLinuxCountTouchedPagesOnly) {
  using Config = testing_configs::ProductionGeometryConfig<LinuxPal>;
  testing_configs::HeapFixture<Config> f;
  auto& heap = *f.heap;
  const std::size_t start = resident(f);
  constexpr std::size_t kSize = std::size_t{8} << 20;
  auto* p = static_cast<char*>(heap.malloc(kSize));
  ASSERT_NE(p, nullptr);
  EXPECT_LT(resident(f), start + kSize / 4);
  std::memset(p, 1, kSize);
  EXPECT_GE(resident(f), start + kSize);
  heap.free(p);
  heap.trim(true);
  EXPECT_LT(resident(f), start + kSize / 4);
}

}  // namespace
}  // namespace hpcalloc

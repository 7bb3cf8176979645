// ThreadHeap on SimPal with every platform call failing at every point of a
// workload that touches every path (small, medium, huge, aligned, calloc,
// realloc by copy, in place and by mremap, trim). Each operation must either
// succeed with intact contents or fail with ENOMEM leaving its inputs alone;
// nothing may crash, be reported as misuse, or leak: after tear-down the
// simulated address space is empty again.
#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "mem/heap_fixture.h"
#include "mem/test_configs.h"
#include "mem/thread_heap.h"
#include "pal/sim_pal.h"

namespace hpcalloc {
namespace {

template <class Config>
struct Workload {
  using Fixture = testing_configs::HeapFixture<Config>;
  static constexpr std::size_t kSmall = Config::kSmallMax;
  static constexpr std::size_t kMedium = Config::kMediumMax;

  struct Block {
    unsigned char* p;
    std::size_t size;
    unsigned char fill;
  };

  // Runs the workload; returns how many operations failed with ENOMEM.
  static int run(Fixture& f) {
    auto& heap = *f.heap;
    std::vector<Block> live;
    int failures = 0;
    unsigned char next_fill = 1;
    auto check_all = [&] {
      for (const Block& b : live) {
        for (std::size_t i = 0; i < b.size; ++i) {
          if (b.p[i] != b.fill) ADD_FAILURE() << "block contents changed";
        }
      }
    };
    auto keep = [&](void* p, std::size_t size) {
      if (p == nullptr) {
        EXPECT_EQ(errno, ENOMEM);
        ++failures;
        return;
      }
      Block b{static_cast<unsigned char*>(p), size, next_fill++};
      std::memset(b.p, b.fill, size);
      live.push_back(b);
    };
    const std::size_t sizes[] = {8,       kSmall,      kSmall + 1,  kMedium / 2,
                                 kMedium, kMedium + 1, 3 * kMedium, 40 * kMedium};
    for (int round = 0; round < 3; ++round) {
      for (std::size_t size : sizes) {
        errno = 0;
        keep(heap.malloc(size), size);
        errno = 0;
        keep(heap.memalign(std::size_t{64} << round * 3, size), size);
      }
      errno = 0;
      void* z = heap.calloc(3, kMedium);
      if (z == nullptr) {
        EXPECT_EQ(errno, ENOMEM);
        ++failures;
      } else {
        for (std::size_t i = 0; i < 3 * kMedium; ++i) {
          if (static_cast<unsigned char*>(z)[i] != 0) ADD_FAILURE() << "calloc not zero";
        }
        heap.free(z);
      }
      // Grow and shrink every other block through every kind.
      for (std::size_t i = round % 2; i < live.size(); i += 2) {
        Block& b = live[i];
        // Huge blocks grow (mremap) in rounds 0 and 2 and shrink in round 1.
        const std::size_t new_size =
            (b.size < kMedium || round != 1) ? b.size * 3 + 100 : b.size / 3 + 5;
        errno = 0;
        void* q = heap.realloc(b.p, new_size);
        if (q == nullptr) {
          EXPECT_EQ(errno, ENOMEM);
          ++failures;
          continue;  // the old block is still ours and intact
        }
        auto* bytes = static_cast<unsigned char*>(q);
        const std::size_t kept = b.size < new_size ? b.size : new_size;
        for (std::size_t k = 0; k < kept; ++k) {
          if (bytes[k] != b.fill) {
            ADD_FAILURE() << "realloc lost contents";
            break;
          }
        }
        std::memset(bytes, b.fill, new_size);
        b.p = bytes;
        b.size = new_size;
      }
      check_all();
      for (std::size_t i = 0; i < live.size(); i += 3) heap.free(live[i].p);
      std::vector<Block> rest;
      for (std::size_t i = 0; i < live.size(); ++i) {
        if (i % 3 != 0) rest.push_back(live[i]);
      }
      live = rest;
      heap.trim();
    }
    check_all();
    for (const Block& b : live) heap.free(b.p);
    return failures;
  }
};

using Config = testing_configs::TinyConfig<SimPal>;
using Fixture = testing_configs::HeapFixture<Config>;

TEST(ThreadHeapFailures, WorkloadSucceedsWithoutInjection) {
  SimPal* pal = nullptr;
  {
    Fixture f(SourceLimits{}, SimPalOptions{.arena_size = std::size_t{64} << 20});
    pal = &f.pal;
    EXPECT_EQ(Workload<Config>::run(f), 0);
    EXPECT_TRUE(f.reporter.reports.empty());
    EXPECT_TRUE(f.heap->check_consistency_for_testing());
    f.heap.reset();
    f.source.reset();
    f.registry.reset();
    EXPECT_EQ(f.pal.reserved_bytes(), 0u);
  }
  (void)pal;
}

struct Injection {
  PalCall call;
  const char* name;
};

class ThreadHeapFailureTest : public testing::TestWithParam<Injection> {};

TEST_P(ThreadHeapFailureTest, EveryFailurePointGivesEnomemAndLeaksNothing) {
  const Injection injection = GetParam();
  int points_with_failure = 0;
  std::size_t injected = 0;
  for (unsigned successes = 0; successes < 40; ++successes) {
    for (bool decommit : {false, true}) {
      SourceLimits limits;
      limits.decay_ms = decommit ? kDecayAtOnce : kDecayNever;
      limits.numa_policy = NumaPolicy::kBind;
      Fixture f(limits, SimPalOptions{.arena_size = std::size_t{64} << 20, .node_count = 2});
      f.pal.fail_after(injection.call, successes, 3);
      const int failures = Workload<Config>::run(f);
      points_with_failure += failures > 0;
      injected += f.pal.stats(injection.call).injected;
      EXPECT_TRUE(f.reporter.reports.empty()) << injection.name << " after " << successes;
      EXPECT_TRUE(f.heap->check_consistency_for_testing());
      f.heap.reset();
      f.source.reset();
      f.registry.reset();
      if (injection.call == PalCall::kRelease) {
        // An unmap the OS refused stays mapped (and unreachable): the only
        // leak allowed, bounded by the refused calls.
        EXPECT_LE(f.pal.reserved_bytes(),
                  f.pal.stats(PalCall::kRelease).injected * (std::size_t{64} << 20));
      } else {
        EXPECT_EQ(f.pal.reserved_bytes(), 0u) << injection.name << " after " << successes;
      }
    }
  }
  // The workload reaches every call, so every injection really happened.
  EXPECT_GT(injected, 0u) << injection.name;
  if (injection.call == PalCall::kReserve) {
    // Without address space nothing can be served: some call said ENOMEM.
    // (The others are absorbed: a failed remap falls back to copying, a
    // failed decommit caches the mapping dirty, a failed bind is counted.)
    EXPECT_GT(points_with_failure, 0);
  }
}

INSTANTIATE_TEST_SUITE_P(EveryPalCall, ThreadHeapFailureTest,
                         testing::Values(Injection{PalCall::kReserve, "reserve"},
                                         Injection{PalCall::kRelease, "release"},
                                         Injection{PalCall::kDecommit, "decommit"},
                                         Injection{PalCall::kCommit, "commit"},
                                         Injection{PalCall::kRemapInPlace, "remap_in_place"},
                                         Injection{PalCall::kRemapMove, "remap_move"},
                                         Injection{PalCall::kBind, "bind"}),
                         [](const testing::TestParamInfo<Injection>& info) {
                           return std::string(info.param.name);
                         });

}  // namespace
}  // namespace hpcalloc

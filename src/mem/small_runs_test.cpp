// SmallRuns under two configs, with a provider that maps aligned segments
// from the C library, so runs are tested apart from the memory source.
#include "mem/small_runs.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <random>
#include <set>
#include <vector>

#include "mem/test_configs.h"
#include "pal/linux_pal.h"

namespace hpcalloc {
namespace {

using testing_configs::RecordingReporter;

template <class Config>
class AlignedAllocProvider {
 public:
  static constexpr std::size_t kSegmentSize = std::size_t{1} << Config::kSegmentShift;
  SegmentHeader* acquire_segment(SegmentKind kind, void* owner) {
    if (fail_next) {
      fail_next = false;
      return nullptr;
    }
    void* p = std::aligned_alloc(kSegmentSize, kSegmentSize);
    std::memset(p, 0xa5, kSegmentSize);  // dirty, as a reused segment would be
    auto* h = static_cast<SegmentHeader*>(p);
    *h = SegmentHeader{};
    h->set_magic();
    h->set_owner(kind, owner);
    h->mapping_size = kSegmentSize;
    live.insert(h);
    ++acquired;
    return h;
  }
  bool decommit(void* p, std::size_t n) {
    ++decommits;
    std::memset(p, 0, n);  // what the OS gives back: zeros
    return true;
  }
  bool commit(void*, std::size_t) {
    ++commits;
    return !fail_next_commit;
  }
  std::uint64_t now_ms() const { return clock_ms; }
  std::uint64_t clock_ms = 1000;
  std::size_t decommits = 0;
  std::size_t commits = 0;
  bool fail_next_commit = false;
  void release_segment(SegmentHeader* h) {
    ASSERT_EQ(live.erase(h), 1u);
    std::free(h);
    ++released;
  }
  ~AlignedAllocProvider() {
    for (SegmentHeader* h : live) std::free(h);
  }
  std::set<SegmentHeader*> live;
  std::size_t acquired = 0;
  std::size_t released = 0;
  bool fail_next = false;
};

template <class Config>
struct SmallRunsFixture {
  using Provider = AlignedAllocProvider<Config>;
  using Runs = SmallRuns<Config, Provider>;
  using Classes = typename Runs::Classes;
  Provider provider;
  RecordingReporter reporter;
  Runs runs{provider, reporter, this};

  static SegmentHeader* segment_of(void* p) {
    return reinterpret_cast<SegmentHeader*>(
        align_down(reinterpret_cast<std::uintptr_t>(p), Provider::kSegmentSize));
  }
  void free(void* p) { runs.deallocate(segment_of(p), p); }
};

template <class Config>
class SmallRunsTest : public testing::Test {
 protected:
  SmallRunsFixture<Config> f;
};

using Configs = testing::Types<testing_configs::TinyConfig<LinuxPal>,
                               testing_configs::ProductionGeometryConfig<LinuxPal>>;
TYPED_TEST_SUITE(SmallRunsTest, Configs);

TYPED_TEST(SmallRunsTest, EveryClassGivesDistinctAlignedBlocksAndGetsThemBack) {
  auto& f = this->f;
  using Classes = typename SmallRunsFixture<TypeParam>::Classes;
  using Runs = typename SmallRunsFixture<TypeParam>::Runs;
  for (unsigned c = 0; c < Classes::kClassCount; ++c) {
    const std::size_t size = Classes::class_size(c);
    // Enough blocks to fill several runs, so runs and segments turn over.
    const std::size_t n = 3 * Runs::kRunSize / size + 5;
    std::vector<char*> blocks;
    for (std::size_t i = 0; i < n; ++i) {
      char* p = static_cast<char*>(f.runs.allocate(c));
      ASSERT_NE(p, nullptr);
      ASSERT_TRUE(is_aligned(p, 16));
      if (is_pow2(size)) {
        ASSERT_TRUE(is_aligned(p, size)) << size;
      }
      ASSERT_EQ(f.runs.usable_size(f.segment_of(p), p, "malloc_usable_size()", true), size);
      std::memset(p, static_cast<int>(i), size);
      blocks.push_back(p);
    }
    std::vector<char*> sorted = blocks;
    std::sort(sorted.begin(), sorted.end());
    for (std::size_t i = 1; i < sorted.size(); ++i) ASSERT_GE(sorted[i] - sorted[i - 1], size);
    for (std::size_t i = 0; i < n; ++i) {
      ASSERT_EQ(static_cast<unsigned char>(blocks[i][size - 1]), static_cast<unsigned char>(i));
    }
    ASSERT_TRUE(f.runs.check_consistency_for_testing());
    for (char* p : blocks) f.free(p);
    ASSERT_TRUE(f.runs.check_consistency_for_testing());
  }
  f.runs.flush_all();
  ASSERT_TRUE(f.runs.check_consistency_for_testing());
  // Everything is free: at most the one spare segment is kept.
  EXPECT_LE(f.runs.segment_count(), 1u);
  EXPECT_EQ(f.runs.bytes_in_live_runs(), 0u);
  EXPECT_TRUE(f.reporter.reports.empty());
  f.runs.release_spare();
  EXPECT_EQ(f.runs.segment_count(), 0u);
  EXPECT_EQ(f.provider.live.size(), 0u);
}

TYPED_TEST(SmallRunsTest, CacheIsLifoAndFlushesBeyondCapacity) {
  auto& f = this->f;
  void* a = f.runs.allocate(0);
  void* b = f.runs.allocate(0);
  f.free(a);
  f.free(b);
  EXPECT_EQ(f.runs.allocate(0), b);  // most recently freed first (hot in cache)
  EXPECT_EQ(f.runs.allocate(0), a);
  std::vector<void*> blocks;
  for (unsigned i = 0; i < 4 * TypeParam::kSmallCacheCapacity; ++i) {
    blocks.push_back(f.runs.allocate(0));
  }
  for (void* p : blocks) f.free(p);
  EXPECT_LE(f.runs.cached_blocks(0), TypeParam::kSmallCacheCapacity);
  EXPECT_TRUE(f.runs.check_consistency_for_testing());
  f.free(a);
  f.free(b);
  f.runs.flush_all();
  EXPECT_EQ(f.runs.cached_blocks(0), 0u);
  EXPECT_TRUE(f.runs.is_free_in_bitmap_for_testing(a));
  EXPECT_TRUE(f.runs.check_consistency_for_testing());
}

// Slow start: a class's first refill takes kFirstRefill blocks, each next
// one twice as many, up to refill_batch(); so a program that wants two
// blocks of a class does not write (make resident) a whole batch.
TYPED_TEST(SmallRunsTest, RefillsStartSmallAndDoubleUpToTheBatch) {
  auto& f = this->f;
  using Runs = typename SmallRunsFixture<TypeParam>::Runs;
  if (Runs::refill_batch(0) <= Runs::kFirstRefill)
    GTEST_SKIP() << "batches too small to start slow";
  std::vector<void*> blocks;
  for (unsigned k = 0; k < Runs::kSlowStartSteps + 2; ++k) {
    blocks.push_back(f.runs.allocate(0));  // the cache is empty: a refill
    const unsigned slow = k < Runs::kSlowStartSteps ? Runs::kFirstRefill << k : ~0u;
    const unsigned want = std::min<unsigned>(Runs::refill_batch(0), slow);
    ASSERT_EQ(f.runs.cached_blocks(0), want - 1) << "refill " << k;
    while (f.runs.cached_blocks(0) != 0) blocks.push_back(f.runs.allocate(0));
  }
  for (void* p : blocks) f.free(p);
  EXPECT_TRUE(f.runs.check_consistency_for_testing());
}

TYPED_TEST(SmallRunsTest, InteriorAndMisalignedPointersAreReported) {
  auto& f = this->f;
  const unsigned c = SmallRunsFixture<TypeParam>::Classes::class_of(48);
  char* p = static_cast<char*>(f.runs.allocate(c));
  f.free(p + 16);  // inside the block
  f.free(p + 1);
  EXPECT_EQ(f.reporter.count(HeapError::kInvalidPointer), 2u);
  // The run metadata region of a segment is not a block either.
  auto* segment_start = reinterpret_cast<char*>(f.segment_of(p));
  f.free(segment_start + 64);
  EXPECT_EQ(f.reporter.count(HeapError::kInvalidPointer), 3u);
  // A retired run is not live.
  const std::size_t run_size = std::size_t{1} << TypeParam::kRunShift;
  f.free(segment_start + 5 * run_size);
  EXPECT_EQ(f.reporter.count(HeapError::kInvalidPointer), 4u);
  f.free(p);
  EXPECT_TRUE(f.runs.check_consistency_for_testing());
}

TYPED_TEST(SmallRunsTest, DoubleFreeIsCaughtAtOnceWhetherCachedOrInTheBitmap) {
  auto& f = this->f;
  void* p = f.runs.allocate(2);
  void* a = f.runs.allocate(2);
  void* keep = f.runs.allocate(2);  // keeps the run alive
  f.free(p);
  f.free(p);  // p is at the head of the cache
  EXPECT_EQ(f.reporter.count(HeapError::kDoubleFree), 1u);
  f.free(a);
  f.free(p);  // p is inside the cache
  EXPECT_EQ(f.reporter.count(HeapError::kDoubleFree), 2u);
  f.runs.flush_all();
  EXPECT_TRUE(f.runs.is_free_in_bitmap_for_testing(p));
  EXPECT_TRUE(f.runs.check_consistency_for_testing());
  // Neither block is handed out twice.
  void* x = f.runs.allocate(2);
  void* y = f.runs.allocate(2);
  EXPECT_NE(x, y);
  f.free(x);
  f.free(y);
  f.runs.flush_all();
  // A double free whose key was overwritten (use after free) reaches the
  // bitmap and is caught there (at once in the checked build).
  void* q = f.runs.allocate(2);
  f.free(q);
  f.runs.flush_all();
  std::memset(q, 0, 16);
  f.free(q);
  if (!kChecked) f.runs.flush_all();
  EXPECT_EQ(f.reporter.count(HeapError::kDoubleFree), 3u);
  EXPECT_TRUE(f.runs.check_consistency_for_testing());
  f.free(keep);
}

TYPED_TEST(SmallRunsTest, CarriersHaveRunsOfTheirOwnAndComeBackThroughTheirOwnPath) {
  auto& f = this->f;
  using Runs = typename SmallRunsFixture<TypeParam>::Runs;
  std::vector<void*> users;
  std::vector<void*> carriers;
  for (int i = 0; i < 40; ++i) {
    users.push_back(f.runs.allocate(Runs::kClassCount - 1));
    carriers.push_back(f.runs.allocate_carrier());
    users.push_back(f.runs.allocate(0));
  }
  for (void* c : carriers) {
    ASSERT_NE(c, nullptr);
    ASSERT_TRUE(is_aligned(c, 16));
    for (void* u : users) {
      ASSERT_NE(reinterpret_cast<std::uintptr_t>(c) >> TypeParam::kRunShift,
                reinterpret_cast<std::uintptr_t>(u) >> TypeParam::kRunShift)
          << "a carrier never shares a run with user blocks";
    }
    std::memset(c, 0xab, Runs::kCarrierSlotBytes);
  }
  ASSERT_TRUE(f.runs.check_consistency_for_testing());
  for (void* c : carriers) EXPECT_TRUE(f.runs.deallocate_carrier(f.segment_of(c), c));
  for (void* u : users) f.free(u);
  f.runs.flush_all();
  EXPECT_TRUE(f.runs.check_consistency_for_testing());
  EXPECT_EQ(f.runs.bytes_in_live_runs(), 0u);
  EXPECT_TRUE(f.reporter.reports.empty());
}

TYPED_TEST(SmallRunsTest, AUserPointerIntoACarrierRunIsReportedAndTheCarrierUntouched) {
  auto& f = this->f;
  // A block freed and its run retired; the run restarts as a carrier run,
  // so the stale pointer now names a carrier slot.
  void* p = f.runs.allocate(0);
  f.free(p);
  f.runs.flush_all();
  void* carrier = f.runs.allocate_carrier();
  ASSERT_EQ(carrier, p) << "the lowest retired run restarts, slot 0 first";
  std::memset(carrier, 0x5a, 16);
  f.free(p);  // the user's second free
  EXPECT_EQ(f.reporter.count(HeapError::kDoubleFree), 1u);
  EXPECT_EQ(f.runs.usable_size_fast(p), 0u) << "no fast answer for a carrier slot";
  EXPECT_EQ(f.runs.usable_size(f.segment_of(p), p, "malloc_usable_size()", true), 0u);
  EXPECT_EQ(f.reporter.count(HeapError::kUseOfFreedBlock), 1u);
  EXPECT_EQ(static_cast<unsigned char*>(carrier)[15], 0x5a) << "the carrier is left alone";
  // A user block given back as a carrier is corrupted metadata.
  void* user = f.runs.allocate(0);
  EXPECT_FALSE(f.runs.deallocate_carrier(f.segment_of(user), user));
  EXPECT_EQ(f.reporter.count(HeapError::kCorruptedCarrier), 1u);
  EXPECT_TRUE(f.runs.deallocate_carrier(f.segment_of(carrier), carrier));
  EXPECT_FALSE(f.runs.deallocate_carrier(f.segment_of(carrier), carrier));  // twice
  EXPECT_EQ(f.reporter.count(HeapError::kDoubleFree), 2u);
  f.free(user);
  f.runs.flush_all();
  EXPECT_TRUE(f.runs.check_consistency_for_testing());
}

TYPED_TEST(SmallRunsTest, RetiredRunsAreDecommittedAndRecommittedOnReuse) {
  auto& f = this->f;
  using Runs = typename SmallRunsFixture<TypeParam>::Runs;
  // Fill three runs of class 0, keep one block alive in the last, free the rest.
  const std::size_t per_run = Runs::kRunSize / 16;
  std::vector<void*> blocks;
  for (std::size_t i = 0; i < 3 * per_run; ++i) blocks.push_back(f.runs.allocate(0));
  void* pinned = blocks.back();
  blocks.pop_back();
  for (void* p : blocks) f.free(p);
  f.runs.flush_all();
  ASSERT_TRUE(f.runs.check_consistency_for_testing());
  f.runs.decommit_retired_runs();
  EXPECT_GT(f.provider.decommits, 0u);
  const std::size_t decommits = f.provider.decommits;
  f.runs.decommit_retired_runs();  // idempotent
  EXPECT_EQ(f.provider.decommits, decommits);
  // Reusing a decommitted run commits it first (run 0 may have no whole
  // page to give back, so allocate until a decommitted run is reached); a
  // failed commit is ENOMEM with nothing changed.
  f.provider.fail_next_commit = true;
  std::vector<void*> more;
  bool failed = false;
  for (std::size_t i = 0; i < 2 * per_run && !failed; ++i) {
    errno = 0;
    void* p = f.runs.allocate(1);
    if (p == nullptr) {
      EXPECT_EQ(errno, ENOMEM);
      failed = true;
    } else {
      more.push_back(p);
    }
  }
  EXPECT_TRUE(failed);
  EXPECT_TRUE(f.runs.check_consistency_for_testing());
  f.provider.fail_next_commit = false;
  void* p = f.runs.allocate(1);
  ASSERT_NE(p, nullptr);
  EXPECT_GT(f.provider.commits, 1u);
  std::memset(p, 1, 32);
  more.push_back(p);
  for (void* q : more) f.free(q);
  f.free(pinned);
  f.runs.flush_all();
  EXPECT_TRUE(f.runs.check_consistency_for_testing());
}

TYPED_TEST(SmallRunsTest, ProviderFailureGivesEnomemAndNoPartialState) {
  auto& f = this->f;
  f.provider.fail_next = true;
  errno = 0;
  EXPECT_EQ(f.runs.allocate(0), nullptr);
  EXPECT_EQ(errno, ENOMEM);
  EXPECT_EQ(f.runs.segment_count(), 0u);
  EXPECT_TRUE(f.runs.check_consistency_for_testing());
  EXPECT_NE(f.runs.allocate(0), nullptr);  // and it recovers
}

TYPED_TEST(SmallRunsTest, RandomisedAgainstASetOfLiveBlocks) {
  auto& f = this->f;
  using Classes = typename SmallRunsFixture<TypeParam>::Classes;
  std::mt19937_64 rng(42);
  std::vector<std::pair<unsigned char*, std::size_t>> live;
  for (int step = 0; step < 20000; ++step) {
    if (live.empty() || rng() % 100 < 55) {
      const std::size_t size = rng() % (TypeParam::kSmallMax + 1);
      auto* p = static_cast<unsigned char*>(f.runs.allocate(Classes::class_of(size)));
      ASSERT_NE(p, nullptr);
      std::memset(p, static_cast<int>(reinterpret_cast<std::uintptr_t>(p) >> 4), size);
      live.emplace_back(p, size);
    } else {
      const std::size_t i = rng() % live.size();
      auto [p, size] = live[i];
      const auto fill = static_cast<unsigned char>(reinterpret_cast<std::uintptr_t>(p) >> 4);
      for (std::size_t b = 0; b < size; ++b) ASSERT_EQ(p[b], fill);
      f.free(p);
      live[i] = live.back();
      live.pop_back();
    }
    if (step % 1000 == 0) {
      ASSERT_TRUE(f.runs.check_consistency_for_testing());
    }
  }
  for (auto [p, size] : live) f.free(p);
  f.runs.flush_all();
  EXPECT_TRUE(f.runs.check_consistency_for_testing());
  EXPECT_EQ(f.runs.bytes_in_live_runs(), 0u);
  EXPECT_TRUE(f.reporter.reports.empty());
}

TEST(SlotDivisor, ExactAroundEveryMultipleForEverySize) {
  // Every multiple of 16 up to 32 KiB as a divisor (every class of every
  // config); around each multiple up to 1 MiB (the largest run a config
  // allows), where an inexact division would show first.
  for (std::uint32_t d = 16; d <= 32768; d += 16) {
    const SlotDivisor divisor = SlotDivisor::of(d);
    for (std::uint32_t m = 0; m < (1u << 20); m += d) {
      for (std::uint32_t n : {m, m + 1, m + d - 1}) {
        ASSERT_EQ(divisor.divides(n), n % d == 0) << d << " " << n;
        ASSERT_EQ(divisor.quotient(n), n / d) << d << " " << n;
      }
    }
  }
}

TEST(SlotDivisor, ExactForEveryOffsetOfProductionClasses) {
  using Classes = SizeClasses<1024>;
  for (unsigned c = 0; c < Classes::kClassCount; c += 5) {
    const auto d = static_cast<std::uint32_t>(Classes::class_size(c));
    const SlotDivisor divisor = SlotDivisor::of(d);
    for (std::uint32_t n = 0; n < (1u << 16); ++n) {
      ASSERT_EQ(divisor.divides(n), n % d == 0) << d << " " << n;
      ASSERT_EQ(divisor.quotient(n), n / d) << d << " " << n;
    }
  }
}

}  // namespace
}  // namespace hpcalloc

#include "ds/region_registry.h"

#include <gtest/gtest.h>

#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <thread>
#include <vector>

#include "sync/std_sync.h"

namespace hpcalloc {
namespace {

// The part of a Pal the registry uses, backed by aligned_alloc, counting its
// calls and failing reserve() on demand. Thread-safe, like a real Pal.
class FakePal {
 public:
  std::size_t page_size() const { return 4096; }

  void* reserve(std::size_t size, std::size_t align) {
    if (reserves_left_.fetch_sub(1, std::memory_order_relaxed) <= 0) return nullptr;
    void* p = std::aligned_alloc(align, align_up(size, align));
    if (p == nullptr) return nullptr;
    std::memset(p, 0, size);  // the Pal contract: zero-filled
    reserves.fetch_add(1, std::memory_order_relaxed);
    return p;
  }

  bool release(void* p, std::size_t /*size*/) {
    std::free(p);
    releases.fetch_add(1, std::memory_order_relaxed);
    return true;
  }

  // Only the next n reserve() calls succeed.
  void fail_reserve_after(long n) { reserves_left_.store(n, std::memory_order_relaxed); }

  std::atomic<long> reserves{0};
  std::atomic<long> releases{0};

 private:
  std::atomic<long> reserves_left_{1L << 40};
};

// Small named geometries, so leaf boundaries are a few kilobytes apart.
struct TinyGeometry {  // 4 KiB slots, 16 roots, 256-slot (1 MiB) leaves
  static constexpr unsigned kSlotShift = 12;
  static constexpr unsigned kAddressBits = 24;
  static constexpr unsigned kRootBits = 4;
};
struct SingleRootGeometry {  // one root entry: everything in one leaf
  static constexpr unsigned kSlotShift = 12;
  static constexpr unsigned kAddressBits = 20;
  static constexpr unsigned kRootBits = 0;
};
struct OneSlotLeafGeometry {  // 1 slot per leaf: every slot its own leaf
  static constexpr unsigned kSlotShift = 16;
  static constexpr unsigned kAddressBits = 24;
  static constexpr unsigned kRootBits = 8;
};

struct Header {
  int id = 0;
};

template <class Geometry>
class RegionRegistryTest : public ::testing::Test {
 protected:
  using Registry = RegionRegistry<Header, StdSync, FakePal, Geometry>;
  static constexpr std::uintptr_t kSlot = Registry::kSlotSize;
  static constexpr std::uintptr_t kLeafSpan = Registry::kLeafSpan;
  static constexpr std::uintptr_t kLimit = Registry::kAddressLimit;

  static void* at(std::uintptr_t address) { return reinterpret_cast<void*>(address); }

  FakePal pal;
  Registry registry{pal};
  Header a{1};
  Header b{2};
};

using Geometries = ::testing::Types<TinyGeometry, SingleRootGeometry, OneSlotLeafGeometry>;
TYPED_TEST_SUITE(RegionRegistryTest, Geometries);

TYPED_TEST(RegionRegistryTest, UnknownAddressesAreNull) {
  EXPECT_EQ(this->registry.lookup(nullptr), nullptr);
  EXPECT_EQ(this->registry.lookup(this->at(this->kSlot * 3 + 5)), nullptr);
  EXPECT_EQ(this->registry.lookup(this->at(this->kLimit - 1)), nullptr);
  EXPECT_EQ(this->registry.leaf_count(), 0u);
}

TYPED_TEST(RegionRegistryTest, FirstAndLastByteOfRangeFindTheValue) {
  const std::uintptr_t start = this->kSlot * 2;
  ASSERT_TRUE(this->registry.assign(this->at(start), this->kSlot, &this->a));
  EXPECT_EQ(this->registry.lookup(this->at(start)), &this->a);
  EXPECT_EQ(this->registry.lookup(this->at(start + this->kSlot - 1)), &this->a);
  EXPECT_EQ(this->registry.lookup(this->at(start - 1)), nullptr);
  EXPECT_EQ(this->registry.lookup(this->at(start + this->kSlot)), nullptr);
}

TYPED_TEST(RegionRegistryTest, RangeSpanningLeavesCreatesEachLeaf) {
  // Three slots straddling the first leaf boundary (when there is one).
  const std::uintptr_t start = this->kLeafSpan - this->kSlot;
  const std::uintptr_t size = 3 * this->kSlot;
  if (start + size > this->kLimit) GTEST_SKIP() << "single leaf";
  ASSERT_TRUE(this->registry.assign(this->at(start), size, &this->a));
  for (std::uintptr_t p = start; p < start + size; p += this->kSlot / 2) {
    EXPECT_EQ(this->registry.lookup(this->at(p)), &this->a) << p;
  }
  EXPECT_EQ(this->registry.lookup(this->at(start + size - 1)), &this->a);
  EXPECT_EQ(this->registry.lookup(this->at(start + size)), nullptr);
  const std::size_t leaves = (start + size - 1) / this->kLeafSpan - start / this->kLeafSpan + 1;
  EXPECT_EQ(this->registry.leaf_count(), leaves);
  EXPECT_EQ(this->pal.reserves.load(), static_cast<long>(leaves));
}

// for_each_range yields each run of slots with one value, in address
// order: neighbours with different values apart, a gap apart, a range across
// a leaf boundary whole, the last slot of the address space included.
TYPED_TEST(RegionRegistryTest, ForEachRangeVisitsEveryAssignedRunInAddressOrder) {
  struct Range {
    std::uintptr_t start, size;
    const Header* value;
    bool operator==(const Range&) const = default;
  };
  const std::uintptr_t slot = this->kSlot;
  std::vector<Range> expected = {{slot, 2 * slot, &this->a}, {3 * slot, slot, &this->b}};
  ASSERT_TRUE(this->registry.assign(this->at(slot), 2 * slot, &this->a));
  ASSERT_TRUE(this->registry.assign(this->at(3 * slot), slot, &this->b));
  if (this->kLeafSpan + 2 * slot<this->kLimit&& this->kLeafSpan> 5 * slot) {
    // Two assigns of one value meet at the leaf boundary: one run.
    const std::uintptr_t boundary = this->kLeafSpan;
    ASSERT_TRUE(this->registry.assign(this->at(boundary - slot), slot, &this->a));
    ASSERT_TRUE(this->registry.assign(this->at(boundary), 2 * slot, &this->a));
    expected.push_back({boundary - slot, 3 * slot, &this->a});
  }
  ASSERT_TRUE(this->registry.assign(this->at(this->kLimit - slot), slot, &this->b));
  expected.push_back({this->kLimit - slot, slot, &this->b});
  std::vector<Range> seen;
  this->registry.for_each_range([&](void* start, std::size_t size, const Header* value) {
    seen.push_back({reinterpret_cast<std::uintptr_t>(start), size, value});
  });
  EXPECT_EQ(seen, expected);
  this->registry.clear(this->at(3 * slot), slot);
  seen.clear();
  this->registry.for_each_range([&](void* start, std::size_t size, const Header* value) {
    seen.push_back({reinterpret_cast<std::uintptr_t>(start), size, value});
  });
  expected.erase(expected.begin() + 1);
  EXPECT_EQ(seen, expected);
}

TYPED_TEST(RegionRegistryTest, ClearForgetsTheRangeButKeepsTheLeaf) {
  const std::uintptr_t start = this->kSlot * 4;
  ASSERT_TRUE(this->registry.assign(this->at(start), 2 * this->kSlot, &this->a));
  ASSERT_TRUE(this->registry.assign(this->at(start + 2 * this->kSlot), this->kSlot, &this->b));
  const std::size_t leaves = this->registry.leaf_count();
  this->registry.clear(this->at(start), 2 * this->kSlot);
  EXPECT_EQ(this->registry.lookup(this->at(start)), nullptr);
  EXPECT_EQ(this->registry.lookup(this->at(start + 2 * this->kSlot - 1)), nullptr);
  EXPECT_EQ(this->registry.lookup(this->at(start + 2 * this->kSlot)), &this->b);
  EXPECT_EQ(this->registry.leaf_count(), leaves);
  EXPECT_EQ(this->pal.releases.load(), 0);
  // The slots can be assigned again, to another owner.
  ASSERT_TRUE(this->registry.assign(this->at(start), this->kSlot, &this->b));
  EXPECT_EQ(this->registry.lookup(this->at(start)), &this->b);
}

TYPED_TEST(RegionRegistryTest, LeafIsCreatedOnceAndLookupNeverCreatesOne) {
  for (std::uintptr_t p = 0; p < this->kLimit; p += this->kSlot * 7 + 123) {
    EXPECT_EQ(this->registry.lookup(this->at(p)), nullptr);
  }
  EXPECT_EQ(this->pal.reserves.load(), 0);
  EXPECT_EQ(this->registry.leaf_count(), 0u);
  ASSERT_TRUE(this->registry.assign(this->at(0), this->kSlot, &this->a));
  EXPECT_EQ(this->registry.leaf_count(), 1u);
  // Another slot of the same leaf (if the leaf has one) reuses it.
  if (this->kLeafSpan > this->kSlot) {
    ASSERT_TRUE(this->registry.assign(this->at(this->kSlot), this->kSlot, &this->b));
  }
  ASSERT_TRUE(this->registry.assign(this->at(0), this->kSlot, &this->b));
  EXPECT_EQ(this->registry.leaf_count(), 1u);
  EXPECT_EQ(this->pal.reserves.load(), 1);
}

TYPED_TEST(RegionRegistryTest, AssignFailureChangesNoSlot) {
  // A neighbour already assigned, then a range over two fresh leaves where
  // only the first can be reserved.
  ASSERT_TRUE(this->registry.assign(this->at(0), this->kSlot, &this->b));
  const std::uintptr_t start = this->kLeafSpan > this->kSlot ? this->kSlot : this->kLeafSpan;
  const std::uintptr_t end = 3 * this->kLeafSpan;
  if (end > this->kLimit) GTEST_SKIP() << "needs three leaves";
  this->pal.fail_reserve_after(1);
  EXPECT_FALSE(this->registry.assign(this->at(start), end - start, &this->a));
  for (std::uintptr_t p = start; p < end; p += this->kSlot) {
    EXPECT_EQ(this->registry.lookup(this->at(p)), nullptr) << p;
  }
  EXPECT_EQ(this->registry.lookup(this->at(0)), &this->b);
  // Once memory is back, the same call succeeds.
  this->pal.fail_reserve_after(100);
  ASSERT_TRUE(this->registry.assign(this->at(start), end - start, &this->a));
  EXPECT_EQ(this->registry.lookup(this->at(end - 1)), &this->a);
}

TYPED_TEST(RegionRegistryTest, FirstLeafFailureLeavesNothing) {
  this->pal.fail_reserve_after(0);
  EXPECT_FALSE(this->registry.assign(this->at(this->kSlot), this->kSlot, &this->a));
  EXPECT_EQ(this->registry.lookup(this->at(this->kSlot)), nullptr);
  EXPECT_EQ(this->registry.leaf_count(), 0u);
  this->pal.fail_reserve_after(1);
  EXPECT_TRUE(this->registry.assign(this->at(this->kSlot), this->kSlot, &this->a));
  EXPECT_EQ(this->registry.lookup(this->at(this->kSlot)), &this->a);
}

TYPED_TEST(RegionRegistryTest, AddressesBeyondAddressBitsAreForeign) {
  ASSERT_TRUE(this->registry.assign(this->at(0), this->kSlot, &this->a));
  // Same low bits as slot 0, above the address space: must not alias it.
  EXPECT_EQ(this->registry.lookup(this->at(this->kLimit)), nullptr);
  EXPECT_EQ(this->registry.lookup(this->at(this->kLimit << 3)), nullptr);
  EXPECT_EQ(this->registry.lookup(this->at(~std::uintptr_t{0})), nullptr);
  EXPECT_EQ(this->registry.lookup(this->at(~std::uintptr_t{0} << TypeParam::kSlotShift)), nullptr);
  // Ranges reaching past the limit are refused without creating anything.
  const long reserves = this->pal.reserves.load();
  EXPECT_FALSE(this->registry.assign(this->at(this->kLimit), this->kSlot, &this->b));
  EXPECT_FALSE(
      this->registry.assign(this->at(this->kLimit - this->kSlot), 2 * this->kSlot, &this->b));
  EXPECT_EQ(this->pal.reserves.load(), reserves);
  EXPECT_EQ(this->registry.lookup(this->at(this->kLimit - 1)), nullptr);
}

TYPED_TEST(RegionRegistryTest, DestructorReleasesEveryLeaf) {
  FakePal pal;
  {
    typename TestFixture::Registry registry(pal);
    ASSERT_TRUE(registry.assign(this->at(0), this->kLimit, &this->a));
    EXPECT_EQ(pal.reserves.load(), static_cast<long>(registry.leaf_count()));
  }
  EXPECT_EQ(pal.releases.load(), pal.reserves.load());
}

// Four writers own disjoint ranges that share leaves (slots t, t+8, t+16...)
// and race to create them; a fifth thread looks up ranges assigned before the
// start, which must always be found, and checks what it finds is initialised.
TEST(RegionRegistryThreads, DisjointWritersAndLiveLookups) {
  using Registry = RegionRegistry<Header, StdSync, FakePal, TinyGeometry>;
  constexpr std::uintptr_t kSlot = Registry::kSlotSize;
  constexpr int kWriters = 4;
  constexpr int kRounds = 20;
  constexpr int kIterations = 480;  // writer slots cover every writer leaf
  // The permanent range lives in the last leaf; writers use the others.
  constexpr std::uintptr_t kPermanent = Registry::kAddressLimit - Registry::kLeafSpan;
  constexpr std::uintptr_t kWriterSlots = kPermanent / kSlot;
  for (int round = 0; round < kRounds; ++round) {
    FakePal pal;
    Registry registry(pal);
    Header permanent{100};
    ASSERT_TRUE(registry.assign(reinterpret_cast<void*>(kPermanent), 4 * kSlot, &permanent));
    std::atomic<int> ready{0};
    std::atomic<bool> writers_done{false};
    std::atomic<long> failures{0};
    // Outside the threads: the reader may still hold a pointer found just
    // before a writer cleared its slot and exited.
    Header own[kWriters];
    auto wait_for_all = [&] {
      ready.fetch_add(1);
      while (ready.load() < kWriters + 1) std::this_thread::yield();
    };
    std::vector<std::thread> threads;
    for (int t = 0; t < kWriters; ++t) {
      threads.emplace_back([&, t] {
        own[t].id = t;
        wait_for_all();
        for (int i = 0; i < kIterations; ++i) {
          const std::uintptr_t slot = (static_cast<std::uintptr_t>(i) * 8 + t) % kWriterSlots;
          void* start = reinterpret_cast<void*>(slot * kSlot);
          if (!registry.assign(start, kSlot, &own[t])) ++failures;
          const Header* found = registry.lookup(reinterpret_cast<void*>((slot + 1) * kSlot - 1));
          if (found != &own[t] || found->id != t) ++failures;
          registry.clear(start, kSlot);
          if (registry.lookup(start) != nullptr) ++failures;
        }
      });
    }
    threads.emplace_back([&] {
      wait_for_all();
      long lookups = 0;
      while (!writers_done.load() || lookups < 1000) {
        const std::uintptr_t offset = static_cast<std::uintptr_t>(lookups) % (4 * kSlot);
        const Header* h = registry.lookup(reinterpret_cast<void*>(kPermanent + offset));
        if (h != &permanent || h->id != 100) ++failures;
        // Any writer's slot: null or a fully initialised header.
        const std::uintptr_t slot = static_cast<std::uintptr_t>(lookups * 5) % kWriterSlots;
        const Header* w = registry.lookup(reinterpret_cast<void*>(slot * kSlot));
        if (w != nullptr && (w->id < 0 || w->id >= kWriters)) ++failures;
        ++lookups;
      }
    });
    for (int t = 0; t < kWriters; ++t) threads[t].join();
    writers_done.store(true);
    threads.back().join();
    EXPECT_EQ(failures.load(), 0) << "round " << round;
    // Racing installers: the losers gave their tables back.
    EXPECT_EQ(pal.reserves.load() - pal.releases.load(), static_cast<long>(registry.leaf_count()));
    EXPECT_EQ(registry.leaf_count(), Registry::kRootEntries);
  }
}

// Production keeps the registry in static storage: it must be constant-
// initialised (no constructor runs before the first malloc).
FakePal static_pal;
constinit RegionRegistry<Header, StdSync, FakePal> static_registry(static_pal);

TEST(RegionRegistryProduction, StaticInstanceIsConstantInitialised) {
  EXPECT_EQ(static_registry.lookup(&static_pal), nullptr);
  EXPECT_EQ(static_registry.leaf_count(), 0u);
}

// The production geometry on real addresses: 2 MiB slots over 48 bits.
TEST(RegionRegistryProduction, RealSegmentsAreFoundAndOthersAreForeign) {
  using Registry = RegionRegistry<Header, StdSync, FakePal, RegionRegistryGeometry>;
  static_assert(Registry::kSlotSize == 2u << 20 && Registry::kLeafEntries == 16384);
  constexpr std::size_t kSegment = Registry::kSlotSize;
  FakePal pal;
  Registry registry(pal);
  char* segments = static_cast<char*>(std::aligned_alloc(kSegment, 2 * kSegment));
  ASSERT_NE(segments, nullptr);
  Header first{1};
  Header second{2};
  ASSERT_TRUE(registry.assign(segments, kSegment, &first));
  ASSERT_TRUE(registry.assign(segments + kSegment, kSegment, &second));
  EXPECT_EQ(registry.lookup(segments), &first);
  EXPECT_EQ(registry.lookup(segments + kSegment - 1), &first);
  EXPECT_EQ(registry.lookup(segments + kSegment), &second);
  EXPECT_EQ(registry.lookup(segments + 2 * kSegment - 1), &second);
  const auto base = reinterpret_cast<std::uintptr_t>(segments);
  EXPECT_EQ(registry.lookup(reinterpret_cast<void*>(base - 1)), nullptr);
  EXPECT_EQ(registry.lookup(segments + 2 * kSegment), nullptr);
  int on_stack = 0;
  EXPECT_EQ(registry.lookup(&on_stack), nullptr);
  // Non-canonical and kernel-half addresses are foreign.
  EXPECT_EQ(registry.lookup(reinterpret_cast<void*>(std::uintptr_t{1} << 48)), nullptr);
  EXPECT_EQ(registry.lookup(reinterpret_cast<void*>(~std::uintptr_t{0} - 4095)), nullptr);
  EXPECT_LE(registry.leaf_count(), 2u);  // 2 only if a 32 GiB line is crossed
  EXPECT_EQ(registry.leaf_bytes(), 16384 * sizeof(void*));
  registry.clear(segments, 2 * kSegment);
  EXPECT_EQ(registry.lookup(segments), nullptr);
  std::free(segments);
}

}  // namespace
}  // namespace hpcalloc

// Cross-heap frees through real ThreadHeaps on SimPal: a block freed twice
// by another heap, inside one batch or across batches, at every batch size
// and for every size family, is reported exactly once, and no other free
// is lost (remote_frees.h states the protocol). Also: carriers come back
// to their sender and leave nothing behind.
#include <gtest/gtest.h>

#include <vector>

#include "mem/heap_fixture.h"
#include "mem/test_configs.h"
#include "mem/thread_heap.h"
#include "pal/sim_pal.h"

namespace hpcalloc {
namespace {

// Two heaps on one source and registry: the owner, and a heap that frees
// the owner's blocks (another thread's in the process-wide allocator).
template <class Config>
struct TwoHeaps : testing_configs::HeapFixture<Config> {
  using Base = testing_configs::HeapFixture<Config>;
  using Heap = typename Base::Heap;
  std::unique_ptr<Heap> freer =
      std::make_unique<Heap>(*this->registry, *this->source, this->reporter);
  Heap& owner() { return *this->heap; }

  // Both sides drain until nothing is in flight (blocks home, carriers home).
  void settle() {
    freer->flush_remote_batch();
    for (int round = 0; round < 2; ++round) {
      owner().drain_remote();
      freer->drain_remote();
    }
  }
  std::size_t owner_in_use() {
    owner().trim(false);
    owner().publish_stats();
    return owner().stats().in_use();
  }
  ~TwoHeaps() {
    settle();
    freer->trim(false);
    freer->publish_stats();
    EXPECT_EQ(freer->stats().in_use(), 0u) << "every carrier came home";
    freer.reset();
  }
};

template <class Config>
class ThreadHeapRemote : public ::testing::Test {};
using Configs = ::testing::Types<testing_configs::TinyConfig<SimPal>,
                                 testing_configs::ProductionGeometryConfig<SimPal>>;
TYPED_TEST_SUITE(ThreadHeapRemote, Configs);

template <class Config>
std::vector<std::size_t> size_families() {
  return {16, Config::kSmallMax, Config::kSmallMax * 4, Config::kMediumMax / 2,
          Config::kMediumMax + 1};
}

// The p, q, p case and its generalisation: n remote frees to one owner with
// block `dup_of` freed again at position n, for every n up to past two full
// batches (chains and carriers of every length).
TYPED_TEST(ThreadHeapRemote, DoubleFreeInsideABatchIsReportedOnceAtEverySize) {
  using Heap = typename TwoHeaps<TypeParam>::Heap;
  constexpr unsigned kMaxN = 2 * Heap::kRemoteBatch + 6;
  for (std::size_t size : size_families<TypeParam>()) {
    const unsigned max_n = size > TypeParam::kSmallMax * 4 ? 12 : kMaxN;  // big blocks: fewer
    for (unsigned n = 2; n <= max_n; ++n) {
      TwoHeaps<TypeParam> f;
      std::vector<void*> blocks;
      for (unsigned i = 0; i < n; ++i) blocks.push_back(f.owner().malloc(size));
      void* keep = f.owner().malloc(size);
      const unsigned dup_of = n / 2;
      for (unsigned i = 0; i < n; ++i) f.freer->free(blocks[i]);
      f.freer->free(blocks[dup_of]);  // p, ..., q, ..., p
      f.settle();
      // A huge block's mapping may be unmapped at its first free (the
      // source's cache is full): the second free then finds no segment and
      // is reported as a pointer hpcalloc does not know.
      if (size <= TypeParam::kMediumMax) {
        ASSERT_EQ(f.reporter.count(HeapError::kDoubleFree), 1u) << "size " << size << " n " << n;
      }
      ASSERT_EQ(f.reporter.reports.size(), 1u) << "size " << size << " n " << n;
      EXPECT_EQ(f.reporter.reports[0].pointer, blocks[dup_of]);
      // No free lost: only `keep` is in use, and freeing any of the others
      // again is a double free too.
      f.owner().free(keep);
      EXPECT_EQ(f.owner_in_use(), 0u) << "size " << size << " n " << n;
      f.owner().free(blocks[(dup_of + 1) % n]);
      EXPECT_EQ(f.reporter.reports.size(), 2u);
    }
  }
}

TYPED_TEST(ThreadHeapRemote, DoubleFreeAcrossBatchesIsReportedOnce) {
  using Heap = typename TwoHeaps<TypeParam>::Heap;
  for (std::size_t size : size_families<TypeParam>()) {
    for (unsigned first : {1u, 3u, 8u, Heap::kRemoteBatch}) {
      TwoHeaps<TypeParam> f;
      std::vector<void*> blocks;
      for (unsigned i = 0; i < first + 2; ++i) blocks.push_back(f.owner().malloc(size));
      for (unsigned i = 0; i < first; ++i) f.freer->free(blocks[i]);
      f.freer->flush_remote_batch();  // first batch in flight, not drained
      f.freer->free(blocks[first]);
      f.freer->free(blocks[0]);  // again, in the second batch
      f.freer->free(blocks[first + 1]);
      f.settle();
      EXPECT_EQ(f.reporter.reports.size(), 1u) << "size " << size;
      if (size <= TypeParam::kMediumMax) {
        EXPECT_EQ(f.reporter.count(HeapError::kDoubleFree), 1u);
      }
      EXPECT_EQ(f.owner_in_use(), 0u) << "size " << size << " first " << first;
    }
  }
}

// The owner frees a block locally that another heap also freed (the classic
// cross-thread double free), in both orders.
TYPED_TEST(ThreadHeapRemote, OwnerAndAnotherHeapFreeingOneBlockIsReportedOnce) {
  for (std::size_t size : size_families<TypeParam>()) {
    for (bool owner_first : {true, false}) {
      TwoHeaps<TypeParam> f;
      void* p = f.owner().malloc(size);
      void* q = f.owner().malloc(size);
      if (owner_first) f.owner().free(p);
      f.freer->free(q);
      f.freer->free(p);
      f.settle();
      if (!owner_first) f.owner().free(p);
      EXPECT_EQ(f.reporter.reports.size(), 1u) << "size " << size;
      if (size <= TypeParam::kMediumMax) {
        EXPECT_EQ(f.reporter.count(HeapError::kDoubleFree), 1u);
      }
      EXPECT_EQ(f.owner_in_use(), 0u);
    }
  }
}

// Out of memory (every platform call refused), a batch cannot have a
// carrier: its blocks travel alone, duplicates reported by the sender.
TYPED_TEST(ThreadHeapRemote, WithoutACarrierDuplicatesAreReportedAndNothingIsLost) {
  TwoHeaps<TypeParam> f;
  std::vector<void*> blocks;
  for (int i = 0; i < 6; ++i) blocks.push_back(f.owner().malloc(TypeParam::kSmallMax));
  // The freer has no small block of the carrier's class and cannot map one.
  f.pal.fail_always(PalCall::kReserve, true);
  for (int i : {0, 1, 0, 2, 3, 4, 5, 1}) f.freer->free(blocks[i]);
  f.freer->flush_remote_batch();
  f.pal.fail_always(PalCall::kReserve, false);
  EXPECT_EQ(f.reporter.count(HeapError::kDoubleFree), 2u);
  f.settle();
  EXPECT_EQ(f.reporter.reports.size(), 2u);
  EXPECT_EQ(f.owner_in_use(), 0u);
}

TYPED_TEST(ThreadHeapRemote, CarriersComeHomeAndTheSenderReusesThem) {
  TwoHeaps<TypeParam> f;
  for (int round = 0; round < 50; ++round) {
    std::vector<void*> blocks;
    for (int i = 0; i < 40; ++i) blocks.push_back(f.owner().malloc(32 + round % 7 * 16));
    for (void* p : blocks) f.freer->free(p);
    f.settle();
  }
  EXPECT_TRUE(f.reporter.reports.empty());
  EXPECT_EQ(f.owner_in_use(), 0u);
  EXPECT_TRUE(f.owner().check_consistency_for_testing());
  EXPECT_TRUE(f.freer->check_consistency_for_testing());
}

// A sender's own block, freed, is never reused as its carrier: a second
// free of it while the carrier flies is a double free (and the carrier and
// its frees arrive intact), at every size a carrier could have had.
TYPED_TEST(ThreadHeapRemote, ASecondFreeOfTheSendersOwnBlockNeverHitsACarrier) {
  for (std::size_t size = 16; size <= TypeParam::kSmallMax; size *= 2) {
    TwoHeaps<TypeParam> f;
    void* mine = f.freer->malloc(size);
    void* p = f.owner().malloc(32);
    void* q = f.owner().malloc(32);
    f.freer->free(mine);
    f.freer->trim(false);  // its run retires: the lowest free run next
    f.freer->free(p);
    f.freer->free(q);
    f.freer->flush_remote_batch();  // a carrier is allocated now
    f.freer->free(mine);            // the user's second free
    EXPECT_EQ(f.reporter.count(HeapError::kDoubleFree), 1u) << "size " << size;
    f.settle();
    EXPECT_EQ(f.reporter.reports.size(), 1u) << "size " << size;
    EXPECT_EQ(f.owner_in_use(), 0u) << "p and q arrived";
  }
}

}  // namespace
}  // namespace hpcalloc

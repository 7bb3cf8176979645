// HeapPool and the remote-free path between heaps: heaps are reused after
// their thread exits, remote frees reach their owner (also while it is
// pooled), and after fork the attached heaps are abandoned. Sequential tests
// on SimPal plus one real-thread test on the real platform.
#include "mem/thread_heap_pool.h"

#include <gtest/gtest.h>

#include <atomic>
#include <cstring>
#include <memory>
#include <thread>
#include <type_traits>
#include <vector>

#include "mem/test_configs.h"
#include "pal/linux_pal.h"
#include "pal/sim_pal.h"

namespace hpcalloc {
namespace {

template <class Config>
struct PoolFixture {
  using Pal = typename Config::Pal;
  using Registry = SegmentRegistry<Config>;
  using Source = MemorySource<Config>;
  using Pool = ThreadHeapPool<Config>;
  Pal pal;
  typename Config::Reporter reporter;
  std::unique_ptr<Registry> registry = std::make_unique<Registry>(pal);
  std::unique_ptr<Source> source = std::make_unique<Source>(pal, *registry, 0, SourceLimits{});
  std::unique_ptr<Pool> pool =
      std::make_unique<Pool>(pal, typename Pool::Context{*registry, reporter});
};

using SimConfig = testing_configs::TinyConfig<SimPal>;

TEST(HeapPool, ExitedThreadsHeapsAreAdoptedNotMultiplied) {
  PoolFixture<SimConfig> f;
  auto* a = f.pool->acquire(*f.source);
  auto* b = f.pool->acquire(*f.source);
  ASSERT_NE(a, b);
  EXPECT_EQ(f.pool->counts().created, 2u);
  f.pool->release(a);
  EXPECT_EQ(f.pool->counts().pooled, 1u);
  EXPECT_EQ(f.pool->counts().attached, 1u);
  EXPECT_EQ(f.pool->acquire(*f.source), a);  // adopted, not created
  // A churn of short-lived "threads" never grows the pool beyond the peak.
  for (int i = 0; i < 100; ++i) {
    auto* h = f.pool->acquire(*f.source);
    void* p = h->malloc(100);
    h->free(p);
    f.pool->release(h);
  }
  EXPECT_EQ(f.pool->counts().created, 3u);
  EXPECT_TRUE(f.reporter.reports.empty());
}

TEST(HeapPool, RemoteFreesReachTheOwnerEvenWhilePooled) {
  PoolFixture<SimConfig> f;
  auto* owner = f.pool->acquire(*f.source);
  auto* other = f.pool->acquire(*f.source);
  std::vector<void*> blocks;
  for (std::size_t size : {16, 200, 3000, 12000, 100000}) {
    for (int i = 0; i < 20; ++i) blocks.push_back(owner->malloc(size));
  }
  const std::size_t in_use = (owner->publish_stats(), owner->stats().in_use());
  EXPECT_GT(in_use, 0u);
  f.pool->release(owner);                 // the owning thread exits, blocks still live
  for (void* p : blocks) other->free(p);  // another thread frees them: batched, queued
  other->flush_remote_batch();            // (its next slow path would push the rest)
  EXPECT_EQ(other->stats().remote_pushed, blocks.size());
  auto* adopter = f.pool->acquire(*f.source);  // a new thread adopts and drains
  ASSERT_EQ(adopter, owner);
  EXPECT_EQ(adopter->stats().remote_drained, blocks.size());
  adopter->publish_stats();
  EXPECT_EQ(adopter->stats().in_use(), 0u);
  EXPECT_EQ(adopter->stats().huge_blocks, 0u);
  EXPECT_TRUE(f.reporter.reports.empty());
}

// Frees sent to a pooled heap are drained by the pool at once, on the
// sender's push: nothing waits for a thread to start or exit.
TEST(HeapPool, FreesIntoAPooledHeapAreDrainedByTheirSender) {
  PoolFixture<SimConfig> f;
  auto* owner = f.pool->acquire(*f.source);
  auto* freer = f.pool->acquire(*f.source);
  std::vector<void*> blocks;
  for (int i = 0; i < 40; ++i) blocks.push_back(owner->malloc(i % 2 == 0 ? 48 : 3000));
  f.pool->release(owner);
  for (void* p : blocks) freer->free(p);
  freer->flush_remote_batch();
  EXPECT_EQ(owner->stats().remote_drained, blocks.size()) << "no start or exit needed";
  EXPECT_EQ(owner->stats().in_use(), 0u);
  EXPECT_EQ(f.pool->counts().pooled, 1u);
  EXPECT_TRUE(f.reporter.reports.empty());
}

// Thread exit does constant work under the lock: it does not walk or drain
// the other pooled heaps (whatever waits in their queues stays there until
// their stand-in or adopter drains it), however many there are.
TEST(HeapPool, ThreadExitDoesNotDrainOtherPooledHeaps) {
  PoolFixture<SimConfig> f;
  constexpr int kPooled = 50;
  std::vector<ThreadHeap<SimConfig>*> pooled;
  std::vector<void*> blocks;
  for (int i = 0; i < kPooled; ++i) pooled.push_back(f.pool->acquire(*f.source));
  for (auto* heap : pooled) blocks.push_back(heap->malloc(64));
  for (auto* heap : pooled) f.pool->release(heap);
  // A thread without a heap frees one block of each pooled heap; this test
  // plays the stand-in itself, later.
  std::vector<ThreadHeap<SimConfig>*> told;
  for (void* p : blocks) {
    auto* owner = static_cast<ThreadHeap<SimConfig>*>(f.registry->lookup(p)->owner());
    told.push_back(owner->remote_free(p));
  }
  EXPECT_EQ(told, pooled) << "each push reports its pooled owner";
  // Threads start and exit: each adopts (and drains) at most one heap; no
  // exit drains the rest.
  auto* a = f.pool->acquire(*f.source);
  f.pool->release(a);
  auto* b = f.pool->acquire(*f.source);
  f.pool->release(b);
  std::size_t drained = 0;
  for (auto* heap : pooled) drained += heap->stats().remote_drained;
  EXPECT_LE(drained, 2u);
  for (auto* heap : pooled) f.pool->drain_pooled(heap);
  drained = 0;
  for (auto* heap : pooled) drained += heap->stats().remote_drained;
  EXPECT_EQ(drained, static_cast<std::size_t>(kPooled));
  EXPECT_TRUE(f.reporter.reports.empty());
}

// The background thread's pass (decay_pooled): pages that remote frees
// gave back to a pooled heap decay on the delay, with no thread to adopt it
// and no slow path of its own, and never before the delay.
TEST(HeapPool, DecayPooledGivesBackWhatRemoteFreesFreedInAPooledHeap) {
  PoolFixture<SimConfig> f;
  auto* owner = f.pool->acquire(*f.source);
  auto* freer = f.pool->acquire(*f.source);
  constexpr std::size_t kSize = 12000;  // medium here: three free pages a chunk
  std::vector<void*> blocks;
  std::vector<void*> kept;
  for (int i = 0; i < 40; ++i) {
    void* p = owner->malloc(kSize);
    ASSERT_NE(p, nullptr);
    std::memset(p, 0x5a, kSize);
    (i % 4 == 0 ? kept : blocks).push_back(p);
  }
  f.pool->release(owner);  // trimmed and pooled
  for (void* p : blocks) freer->free(p);
  freer->flush_remote_batch();  // drained into the pooled heap by the pool
  ASSERT_EQ(owner->stats().remote_drained, blocks.size());
  const std::size_t committed = f.pal.committed_bytes();
  f.pool->decay_pooled();  // stamps what was freed (no clock read on a free)
  f.pal.advance_ms(kDefaultDecayMs - 1);
  f.pool->decay_pooled();
  EXPECT_EQ(f.pal.committed_bytes(), committed) << "given back before the delay";
  f.pal.advance_ms(kDefaultDecayMs / 16 + 1);
  f.pool->decay_pooled();
  EXPECT_LE(f.pal.committed_bytes() + blocks.size() * 2 * f.pal.page_size(), committed)
      << "the freed chunks' interiors stayed resident";
  for (void* p : kept) {
    const auto* bytes = static_cast<const unsigned char*>(p);
    for (std::size_t i = 0; i < kSize; ++i) ASSERT_EQ(bytes[i], 0x5a) << "a live chunk lost a page";
  }
  EXPECT_EQ(f.pool->acquire(*f.source), owner);  // still adoptable
  EXPECT_TRUE(owner->check_consistency_for_testing());
  for (void* p : kept) owner->free(p);
  EXPECT_TRUE(f.reporter.reports.empty());
}

TEST(HeapPool, RemoteFreesAreBatchedPerOwner) {
  PoolFixture<SimConfig> f;
  auto* a = f.pool->acquire(*f.source);
  auto* c = f.pool->acquire(*f.source);
  auto* freer = f.pool->acquire(*f.source);
  std::vector<void*> of_a;
  for (int i = 0; i < 200; ++i) of_a.push_back(a->malloc(32));
  void* of_c = c->malloc(32);
  // Ten frees to a stay with the freeing heap...
  for (int i = 0; i < 10; ++i) freer->free(of_a[i]);
  a->drain_remote();
  EXPECT_EQ(a->stats().remote_drained, 0u);
  // ...until a free to another owner pushes them as one chain.
  freer->free(of_c);
  a->drain_remote();
  EXPECT_EQ(a->stats().remote_drained, 10u);
  // A full batch is pushed when one more block arrives (in a carrier: a
  // block of the freeing heap listing them), and the freeing heap's own slow
  // path (a medium allocation) pushes what is left.
  constexpr unsigned kBatch = std::remove_pointer_t<decltype(a)>::kRemoteBatch;
  for (int i = 10; i < 200; ++i) freer->free(of_a[i]);
  a->drain_remote();
  EXPECT_EQ(a->stats().remote_drained, 10u + (189u / kBatch) * kBatch);
  freer->free(freer->malloc(5000));
  a->drain_remote();
  EXPECT_EQ(a->stats().remote_drained, 200u);
  c->drain_remote();
  EXPECT_EQ(c->stats().remote_drained, 1u);
  EXPECT_EQ(freer->stats().remote_pushed, 201u);
  // Thread exit pushes a batch too.
  void* last = a->malloc(32);
  freer->free(last);
  f.pool->release(freer);
  a->drain_remote();
  EXPECT_EQ(a->stats().remote_drained, 201u);
  EXPECT_TRUE(f.reporter.reports.empty());
}

TEST(HeapPool, ReallocOfAnotherHeapsBlockCopiesAndFreesRemotely) {
  PoolFixture<SimConfig> f;
  auto* a = f.pool->acquire(*f.source);
  auto* b = f.pool->acquire(*f.source);
  for (std::size_t size : {40, 2000, 100000}) {
    auto* p = static_cast<unsigned char*>(a->malloc(size));
    std::memset(p, 0x5c, size);
    EXPECT_GE(b->usable_size(p), size);  // read without touching a's lists
    auto* q = static_cast<unsigned char*>(b->realloc(p, size * 2));
    ASSERT_NE(q, nullptr);
    for (std::size_t i = 0; i < size; ++i) ASSERT_EQ(q[i], 0x5c);
    b->free(q);
  }
  b->flush_remote_batch();
  a->drain_remote();
  EXPECT_EQ(a->stats().remote_drained, 3u);
  EXPECT_TRUE(f.reporter.reports.empty());
}

TEST(HeapPool, DoubleRemoteFreeIsReportedByTheOwner) {
  PoolFixture<SimConfig> f;
  auto* a = f.pool->acquire(*f.source);
  auto* b = f.pool->acquire(*f.source);
  void* p = a->malloc(64);
  void* keep = a->malloc(64);
  b->free(p);
  b->flush_remote_batch();
  a->drain_remote();
  b->free(p);  // again, after the owner took it back
  b->flush_remote_batch();
  a->drain_remote();
  EXPECT_EQ(f.reporter.count(HeapError::kDoubleFree), 1u);
  a->free(keep);
}

TEST(HeapPool, ForkChildAbandonsAttachedHeapsAndKeepsPooledOnes) {
  PoolFixture<SimConfig> f;
  auto* attached = f.pool->acquire(*f.source);
  auto* pooled = f.pool->acquire(*f.source);
  f.pool->release(pooled);
  f.pool->lock_for_fork();
  f.pool->abandon_attached_in_child();
  f.pool->unlock_after_fork();
  const PoolCounts counts = f.pool->counts();
  EXPECT_EQ(counts.abandoned, 1u);
  EXPECT_EQ(counts.attached, 0u);
  EXPECT_EQ(f.pool->acquire(*f.source), pooled);  // still adoptable
  auto* fresh = f.pool->acquire(*f.source);
  EXPECT_NE(fresh, attached);  // never handed out again
  f.pool->release(attached);   // the dead thread's key destructor: ignored
  EXPECT_EQ(f.pool->counts().pooled, 0u);
}

TEST(HeapPool, ForkChildKeepsTheAttachedHeapsItNames) {
  PoolFixture<SimConfig> f;
  auto* forking_thread = f.pool->acquire(*f.source);
  auto* other_thread = f.pool->acquire(*f.source);
  void* inherited = forking_thread->malloc(64);
  f.pool->lock_for_fork();
  f.pool->abandon_attached_in_child([&](const auto* heap) { return heap == forking_thread; });
  f.pool->unlock_after_fork();
  const PoolCounts counts = f.pool->counts();
  EXPECT_EQ(counts.attached, 1u);
  EXPECT_EQ(counts.abandoned, 1u);
  // The kept heap is the forking thread's as before: it frees what it
  // inherited and is pooled and adopted again when that thread exits.
  forking_thread->free(inherited);
  f.pool->release(forking_thread);
  EXPECT_EQ(f.pool->counts().pooled, 1u);
  EXPECT_EQ(f.pool->acquire(*f.source), forking_thread);
  f.pool->release(other_thread);  // abandoned: ignored
  EXPECT_EQ(f.pool->counts().pooled, 0u);
  EXPECT_EQ(f.pool->counts().created, 2u);
}

// Frees in the child of blocks an abandoned heap owns are dropped by their
// sender: no carrier of the kept heap is stranded in a queue nobody drains.
TEST(HeapPool, FreesForAnAbandonedHeapStrandNoCarrier) {
  PoolFixture<SimConfig> f;
  auto* forking_thread = f.pool->acquire(*f.source);
  auto* other_thread = f.pool->acquire(*f.source);
  std::vector<void*> inherited;
  for (int i = 0; i < 200; ++i) inherited.push_back(other_thread->malloc(48));
  f.pool->lock_for_fork();
  f.pool->abandon_attached_in_child([&](const auto* heap) { return heap == forking_thread; });
  f.pool->unlock_after_fork();
  for (void* p : inherited) forking_thread->free(p);
  forking_thread->trim(false);
  forking_thread->publish_stats();
  EXPECT_EQ(forking_thread->stats().in_use(), 0u) << "every carrier is home";
  EXPECT_TRUE(f.reporter.reports.empty());
  f.pool->release(forking_thread);
}

// Real threads on the real platform: producers allocate, a consumer frees
// (remote), threads come and go (adoption). Functional here; the race proofs
// are the Relacy models and the TSan stress programs.
TEST(HeapPoolThreads, CrossThreadFreesAndChurnKeepEverythingAccounted) {
  using Config = testing_configs::ProductionGeometryConfig<LinuxPal>;
  PoolFixture<Config> f;
  constexpr int kRounds = 40;
  constexpr int kBlocks = 500;
  for (int round = 0; round < kRounds; ++round) {
    std::vector<void*> blocks(kBlocks);
    std::thread producer([&] {
      auto* heap = f.pool->acquire(*f.source);
      for (int i = 0; i < kBlocks; ++i) {
        const std::size_t size = static_cast<std::size_t>(1) << (i % 18);
        blocks[i] = heap->malloc(size);
        std::memset(blocks[i], i & 0xff, size < 64 ? size : 64);
      }
      f.pool->release(heap);
    });
    producer.join();
    std::thread consumer([&] {
      auto* heap = f.pool->acquire(*f.source);
      for (int i = 0; i < kBlocks; ++i) {
        auto* p = static_cast<unsigned char*>(blocks[i]);
        ASSERT_EQ(p[0], i & 0xff);
        heap->free(p);
      }
      f.pool->release(heap);
    });
    consumer.join();
  }
  EXPECT_LE(f.pool->counts().created, 2u);
  EXPECT_TRUE(f.reporter.reports.empty());
}

}  // namespace
}  // namespace hpcalloc

// MediumCache: its classes (every medium size up to 32 x kSmallMax maps to
// the smallest class that holds it, at most 25% above), and the cache inside
// ThreadHeap: a freed block is reused by the next request of its class, a
// second free of a cached block is reported and changes nothing, statistics
// count cached blocks as free, and trim gives them back to the free lists.
#include "mem/medium_cache.h"

#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "mem/heap_fixture.h"
#include "mem/test_configs.h"
#include "mem/thread_heap.h"
#include "pal/linux_pal.h"

namespace hpcalloc {
namespace {

template <std::size_t kSmallMax>
void check_classes() {
  using Cache = MediumCache<kSmallMax>;
  for (std::size_t n = Cache::kMinBytes; n <= Cache::kMaxBytes; ++n) {
    const unsigned c = Cache::class_of(n);
    ASSERT_LT(c, Cache::kClassCount) << n;
    EXPECT_GE(Cache::class_size(c), n) << n;
    EXPECT_LE(Cache::class_size(c), n + n / 4) << n;
    if (c > 0) {
      EXPECT_LT(Cache::class_size(c - 1), n) << n;
    }
  }
  EXPECT_EQ(Cache::class_size(Cache::kClassCount - 1), Cache::kMaxBytes);
  for (unsigned c = 1; c < Cache::kClassCount; ++c) {
    EXPECT_GT(Cache::class_size(c), Cache::class_size(c - 1));
  }
}

TEST(MediumCacheClasses, EverySizeGetsTheSmallestClassHoldingIt) {
  check_classes<1024>();
  check_classes<256>();
}

using Config = testing_configs::ProductionGeometryConfig<LinuxPal>;
using Fixture = testing_configs::HeapFixture<Config>;
using Cache = MediumCache<Config::kSmallMax>;

TEST(MediumCacheInHeap, AFreedBlockServesTheNextRequestOfItsClass) {
  Fixture f;
  void* a = f.heap->malloc(4000);
  std::memset(a, 1, 4000);
  f.heap->free(a);
  void* b = f.heap->malloc(3900);  // same class (4096)
  EXPECT_EQ(a, b);
  void* c = f.heap->malloc(5000);  // another class: not that block
  EXPECT_NE(c, b);
  f.heap->free(b);
  f.heap->free(c);
  EXPECT_TRUE(f.reporter.reports.empty());
}

TEST(MediumCacheInHeap, DoubleFreeOfACachedBlockIsReportedAndHarmless) {
  Fixture f;
  void* a = f.heap->malloc(3000);
  void* other = f.heap->malloc(3000);
  f.heap->free(a);
  f.heap->free(a);
  ASSERT_EQ(f.reporter.count(HeapError::kDoubleFree), 1u);
  // The block was cached once: two requests get two different blocks.
  void* x = f.heap->malloc(3000);
  void* y = f.heap->malloc(3000);
  EXPECT_NE(x, y);
  f.heap->free(x);
  f.heap->free(y);
  f.heap->free(other);
  // After trim the cache is empty and a stale free hits the free lists' check.
  f.heap->trim(false);
  f.heap->free(x);
  EXPECT_EQ(f.reporter.count(HeapError::kDoubleFree), 2u);
}

TEST(MediumCacheInHeap, CachedBlocksCountAsFreeAndTrimReturnsThem) {
  Fixture f;
  std::vector<void*> blocks;
  for (int i = 0; i < 200; ++i) blocks.push_back(f.heap->malloc(1100 + 150 * (i % 200)));
  for (void* p : blocks) f.heap->free(p);
  f.heap->publish_stats();
  EXPECT_EQ(f.heap->stats().medium_in_use, 0u);
  f.heap->trim(false);
  f.heap->publish_stats();
  EXPECT_EQ(f.heap->stats().medium_in_use, 0u);
  EXPECT_EQ(f.heap->stats().medium_segments, 1u);  // the one kept segment
  EXPECT_TRUE(f.reporter.reports.empty());
}

TEST(MediumCacheAlone, BoundedPerClassAndInTotal) {
  Cache cache;
  std::vector<std::vector<std::uint64_t>> storage;
  std::size_t accepted = 0;
  // Blocks of every class, 12 each: at most kPerClass a class are kept, and
  // never more than kMaxTotalBytes in all.
  for (unsigned c = 0; c < Cache::kClassCount; ++c) {
    unsigned kept = 0;
    for (int i = 0; i < 12; ++i) {
      storage.emplace_back(Cache::class_size(c) / 8);
      void* block = storage.back().data();
      if (cache.push(block, Cache::class_size(c))) {
        ++kept;
        ++accepted;
        EXPECT_TRUE(cache.looks_cached(block));
        EXPECT_TRUE(cache.find(block, Cache::class_size(c)).found);
      }
      EXPECT_LE(cache.cached_usable_bytes(), Cache::kMaxTotalBytes);
    }
    EXPECT_LE(kept, Cache::kPerClass);
  }
  EXPECT_EQ(cache.cached_blocks(), accepted);
  EXPECT_GT(cache.cached_usable_bytes(), Cache::kMaxTotalBytes / 2);  // it did fill up
  std::size_t flushed = 0;
  cache.flush(
      [&](void* block) {
        EXPECT_FALSE(cache.looks_cached(block));  // popped blocks lose the check word
        ++flushed;
      },
      [](const void* corrupted) { ADD_FAILURE() << "corrupted " << corrupted; });
  EXPECT_EQ(flushed, accepted);
  EXPECT_EQ(cache.cached_usable_bytes(), 0u);
}

// A write into a cached block (its link, its check word or its size) is
// found by the next walk that reaches the block: reported once, the class
// abandoned, the forged link never followed, the other classes intact.
TEST(MediumCacheAlone, AWriteIntoACachedBlockIsCaughtBeforeItsLinkIsFollowed) {
  for (unsigned word = 0; word < 3; ++word) {
    Cache cache;
    alignas(16) static std::uint64_t forged_target[512];
    std::vector<std::vector<std::uint64_t>> storage;
    const unsigned c = 4;
    for (int i = 0; i < 3; ++i) {
      storage.emplace_back(Cache::class_size(c) / 8);
      ASSERT_TRUE(cache.push(storage.back().data(), Cache::class_size(c)));
    }
    storage.emplace_back(Cache::class_size(c + 4) / 8);
    ASSERT_TRUE(cache.push(storage.back().data(), Cache::class_size(c + 4)));
    // The head of class c (the last pushed) gets the address of a global.
    std::uint64_t* head = storage[2].data();
    head[word] = reinterpret_cast<std::uintptr_t>(forged_target);
    const void* corrupted = nullptr;
    EXPECT_EQ(cache.pop(c, &corrupted), nullptr) << "word " << word;
    EXPECT_EQ(corrupted, head);
    EXPECT_EQ(cache.cached_blocks(), 1u);  // the other class's block
    EXPECT_EQ(cache.cached_usable_bytes(), Cache::class_size(c + 4));
    corrupted = nullptr;
    EXPECT_EQ(cache.pop(c, &corrupted), nullptr);  // abandoned: empty, nothing more to report
    EXPECT_EQ(corrupted, nullptr);
    EXPECT_EQ(cache.pop(c + 4, &corrupted), storage[3].data());
  }
}

// A double-free search that meets a corrupted block stops there.
TEST(MediumCacheAlone, FindStopsAtACorruptedBlock) {
  Cache cache;
  std::vector<std::vector<std::uint64_t>> storage;
  for (int i = 0; i < 3; ++i) {
    storage.emplace_back(Cache::class_size(0) / 8);
    ASSERT_TRUE(cache.push(storage.back().data(), Cache::class_size(0)));
  }
  storage[1][0] ^= 0x40;  // the middle block's link
  const auto found = cache.find(storage[0].data(), Cache::class_size(0));
  EXPECT_FALSE(found.found);
  EXPECT_EQ(found.corrupted, storage[1].data());
  EXPECT_EQ(cache.cached_blocks(), 0u);
}

}  // namespace
}  // namespace hpcalloc

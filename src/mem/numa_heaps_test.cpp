// NumaHeaps on SimPal with 2, 4 and 8 simulated nodes (this machine has one):
// heaps get memory only from their node, rebind follows a moved thread (with
// and without migration), caches never hand one node's memory to another,
// remote frees go back to the node they came from, adoption never mixes
// nodes, hpc_malloc_on_node's placement, and placement failures (mbind
// refused) are survived and reported once. A simulated thread is a real
// std::thread that calls SimPal::set_current_node (its CPU's node).
#include "mem/numa_heaps.h"

#include <gtest/gtest.h>

#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "mem/test_configs.h"
#include "pal/sim_pal.h"

namespace hpcalloc {
namespace {

using Config = testing_configs::TinyConfig<SimPal>;
using Numa = NumaHeaps<Config>;
using Heap = Numa::Heap;
using Pool = Numa::Pool;
using Registry = Numa::Registry;

// Sizes that reach every kind of memory under TinyConfig: small (<= 256 B),
// medium (<= 16 KiB) and huge blocks.
constexpr std::size_t kSizes[] = {16, 200, 1000, 9000, 100000};

std::vector<std::string> g_warnings;  // what the placement warning printed
void record_warning(const ReportLine& line) { g_warnings.emplace_back(line.view()); }

struct NumaFixture {
  NumaFixture(unsigned nodes, NumaPolicy policy)
      : pal(SimPalOptions{.arena_size = std::size_t{512} << 20, .node_count = nodes}) {
    g_warnings.clear();
    SourceLimits limits;
    limits.numa_policy = policy;
    limits.placement_warning = &warning;
    registry = std::make_unique<Registry>(pal);
    pool = std::make_unique<Pool>(pal, typename Pool::Context{*registry, reporter});
    numa = std::make_unique<Numa>(pal, *registry, *pool, limits);
  }
  ~NumaFixture() {
    pool->destroy_heaps();  // their segments go back to the sources,
    numa.reset();           // which unmap their caches
    pool.reset();
    registry.reset();
  }

  // Runs fn on a new thread placed on `node`, and waits for it.
  template <class Fn>
  void on_node(unsigned node, Fn fn) {
    std::thread([&] {
      pal.set_current_node(static_cast<int>(node));
      fn();
    }).join();
  }

  // Every page of [p, p + bytes) is on `node` in the simulated machine.
  bool pages_on(const void* p, std::size_t bytes, unsigned node) const {
    const auto* c = static_cast<const char*>(p);
    const std::size_t page = pal.page_size();
    for (std::size_t off = 0; off < bytes; off += page) {
      if (pal.page_info(c + off).node != node) return false;
    }
    return pal.page_info(c + bytes - 1).node == node;
  }

  SimPal pal;
  testing_configs::RecordingReporter reporter;
  PlacementWarning warning{record_warning};
  std::unique_ptr<Registry> registry;
  std::unique_ptr<Pool> pool;
  std::unique_ptr<Numa> numa;
};

// ---- Parameterised over node count and per-node policy --------------------

class NumaPlacement : public ::testing::TestWithParam<std::tuple<unsigned, NumaPolicy>> {
 protected:
  unsigned nodes() const { return std::get<0>(GetParam()); }
  NumaPolicy policy() const { return std::get<1>(GetParam()); }
};

TEST_P(NumaPlacement, EveryBlockAHeapHandsOutIsOnItsThreadsNode) {
  NumaFixture f(nodes(), policy());
  ASSERT_EQ(f.numa->node_count(), nodes());
  for (unsigned node = 0; node < nodes(); ++node) {
    f.on_node(node, [&] {
      Heap* heap = f.numa->acquire_heap();
      ASSERT_NE(heap, nullptr);
      EXPECT_EQ(Numa::node_of_heap(*heap), node);
      std::vector<void*> blocks;
      for (int round = 0; round < 20; ++round) {
        for (std::size_t size : kSizes) {
          void* p = heap->malloc(size);
          ASSERT_NE(p, nullptr);
          std::memset(p, 0x5a, size);
          EXPECT_TRUE(f.pages_on(p, size, node)) << "size " << size << " node " << node;
          EXPECT_EQ(f.numa->node_of(p), static_cast<int>(node));
          blocks.push_back(p);
        }
      }
      for (void* p : blocks) heap->free(p);
      f.pool->release(heap);
    });
  }
  EXPECT_TRUE(f.reporter.reports.empty());
  EXPECT_TRUE(g_warnings.empty());
}

TEST_P(NumaPlacement, CachedMemoryIsNeverHandedToAnotherNode) {
  NumaFixture f(nodes(), policy());
  // Node 0 fills its cache: a heap allocates medium and huge blocks and
  // frees them all, and its segments go back to node 0's source.
  f.on_node(0, [&] {
    Heap* heap = f.numa->acquire_heap();
    std::vector<void*> blocks;
    for (int i = 0; i < 8; ++i) blocks.push_back(heap->malloc(9000));
    for (int i = 0; i < 2; ++i) blocks.push_back(heap->malloc(100000));
    for (void* p : blocks) heap->free(p);
    heap->trim(false);
    f.pool->release(heap);
  });
  const SourceStats cached0 = f.numa->thread_source(0).stats();
  ASSERT_GT(cached0.cached_mappings, 0u);
  // Every other node allocates the same shapes: nothing of node 0's cache.
  for (unsigned node = 1; node < nodes(); ++node) {
    f.on_node(node, [&] {
      Heap* heap = f.numa->acquire_heap();
      for (int i = 0; i < 8; ++i) {
        void* p = heap->malloc(9000);
        EXPECT_TRUE(f.pages_on(p, 9000, node));
      }
      void* huge = heap->malloc(100000);
      EXPECT_TRUE(f.pages_on(huge, 100000, node));
    });
  }
  const SourceStats after0 = f.numa->thread_source(0).stats();
  EXPECT_EQ(after0.cached_mappings, cached0.cached_mappings);
  EXPECT_EQ(after0.cache_hits, cached0.cache_hits);
}

TEST_P(NumaPlacement, RemoteFreesGoBackToTheNodeTheyCameFrom) {
  NumaFixture f(nodes(), policy());
  const unsigned last = nodes() - 1;
  Heap* owner = nullptr;
  std::vector<void*> blocks;
  f.on_node(0, [&] {
    owner = f.numa->acquire_heap();
    for (int i = 0; i < 200; ++i) {
      for (std::size_t size : kSizes) blocks.push_back(owner->malloc(size));
    }
  });
  // A thread on the last node frees them all: remote frees to node 0's heap.
  f.on_node(last, [&] {
    Heap* other = f.numa->acquire_heap();
    for (void* p : blocks) other->free(p);
    f.pool->release(other);
  });
  const SourceStats before = f.numa->thread_source(last).stats();
  f.on_node(0, [&] {
    owner->trim(false);  // drains the remote frees, gives spare segments back
  });
  const HeapStats s = owner->stats();
  EXPECT_EQ(s.in_use(), 0u);
  EXPECT_EQ(s.remote_drained, blocks.size());
  // Node 0's source got its memory back; the freeing node's got nothing.
  EXPECT_GT(f.numa->thread_source(0).stats().cached_mappings, 0u);
  const SourceStats after = f.numa->thread_source(last).stats();
  EXPECT_EQ(after.cached_mappings, before.cached_mappings);
  EXPECT_EQ(after.mapped_bytes, before.mapped_bytes);
  EXPECT_TRUE(f.reporter.reports.empty());
}

TEST_P(NumaPlacement, AdoptionNeverMixesNodes) {
  NumaFixture f(nodes(), policy());
  Heap* pooled = nullptr;
  f.on_node(0, [&] {
    pooled = f.numa->acquire_heap();
    pooled->free(pooled->malloc(64));
    f.pool->release(pooled);
  });
  for (unsigned node = 1; node < nodes(); ++node) {
    f.on_node(node, [&] {
      Heap* heap = f.numa->acquire_heap();
      EXPECT_NE(heap, pooled);
      EXPECT_EQ(Numa::node_of_heap(*heap), node);
    });
  }
  f.on_node(0, [&] { EXPECT_EQ(f.numa->acquire_heap(), pooled); });
  EXPECT_EQ(f.pool->counts().created, nodes());
}

TEST_P(NumaPlacement, RebindWithoutMigrationLeavesOldBlocksAndServesTheNewNode) {
  NumaFixture f(nodes(), policy());
  const unsigned to = nodes() - 1;
  f.on_node(0, [&] {
    Heap* heap = f.numa->acquire_heap();
    std::vector<void*> old_blocks;
    for (std::size_t size : kSizes) {
      old_blocks.push_back(heap->malloc(size));
      std::memset(old_blocks.back(), 0x11, size);
    }
    // The thread moves to the last node and follows it.
    f.pal.set_current_node(static_cast<int>(to));
    std::size_t failed = 0;
    Heap* moved = f.numa->rebind(heap, /*migrate=*/false, &failed);
    EXPECT_NE(moved, heap);
    EXPECT_EQ(failed, 0u);
    EXPECT_EQ(Numa::node_of_heap(*moved), to);
    for (std::size_t size : kSizes) {
      void* p = moved->malloc(size);
      std::memset(p, 0x22, size);
      EXPECT_TRUE(f.pages_on(p, size, to)) << size;
      EXPECT_EQ(f.numa->node_of(p), static_cast<int>(to));
      moved->free(p);
    }
    // The old blocks stay on node 0 with their contents; freeing them from
    // the new heap returns them to their pooled owner.
    for (std::size_t i = 0; i < old_blocks.size(); ++i) {
      EXPECT_TRUE(f.pages_on(old_blocks[i], kSizes[i], 0));
      EXPECT_EQ(static_cast<unsigned char*>(old_blocks[i])[kSizes[i] - 1], 0x11);
      moved->free(old_blocks[i]);
    }
    // Rebinding on the same node changes nothing.
    EXPECT_EQ(f.numa->rebind(moved, false, &failed), moved);
  });
  EXPECT_TRUE(f.reporter.reports.empty());
}

TEST_P(NumaPlacement, RebindWithMigrationMovesTheHeapsMemory) {
  NumaFixture f(nodes(), policy());
  const unsigned to = nodes() - 1;
  f.on_node(0, [&] {
    Heap* heap = f.numa->acquire_heap();
    std::vector<void*> blocks;
    for (int round = 0; round < 10; ++round) {
      for (std::size_t size : kSizes) {
        blocks.push_back(heap->malloc(size));
        std::memset(blocks.back(), round, size);
      }
    }
    f.pal.set_current_node(static_cast<int>(to));
    std::size_t failed = 0;
    EXPECT_EQ(f.numa->rebind(heap, /*migrate=*/true, &failed), heap);
    EXPECT_EQ(failed, 0u);
    EXPECT_EQ(Numa::node_of_heap(*heap), to);
    for (std::size_t i = 0; i < blocks.size(); ++i) {
      const std::size_t size = kSizes[i % std::size(kSizes)];
      EXPECT_TRUE(f.pages_on(blocks[i], size, to));
      EXPECT_EQ(f.numa->node_of(blocks[i]), static_cast<int>(to));
      EXPECT_EQ(static_cast<unsigned char*>(blocks[i])[size - 1], i / std::size(kSizes));
    }
    void* fresh = heap->malloc(9000);
    EXPECT_TRUE(f.pages_on(fresh, 9000, to));
    blocks.push_back(fresh);
    for (void* p : blocks) heap->free(p);
    heap->trim(false);
  });
  // The migrated memory is the new node's now: cached there, not on node 0.
  EXPECT_EQ(f.numa->thread_source(0).stats().mapped_bytes, 0u);
  const SourceStats moved = f.numa->thread_source(to).stats();
  EXPECT_GT(moved.migrated_in, 0u);
  EXPECT_EQ(moved.migrate_failures, 0u);
  EXPECT_GT(moved.cached_mappings, 0u);
  EXPECT_TRUE(f.reporter.reports.empty());
}

TEST_P(NumaPlacement, MallocOnNodePlacesMemoryWhateverTheCallersNode) {
  NumaFixture f(nodes(), policy());
  std::vector<std::pair<void*, unsigned>> blocks;
  f.on_node(0, [&] {
    Heap* heap = f.numa->acquire_heap();
    for (unsigned node = 0; node < nodes(); ++node) {
      for (std::size_t size : kSizes) {
        void* p = f.numa->malloc_on_node(size, static_cast<int>(node), heap);
        ASSERT_NE(p, nullptr);
        std::memset(p, 0x33, size);
        EXPECT_TRUE(f.pages_on(p, size, node)) << size << " on " << node;
        EXPECT_EQ(f.numa->node_of(p), static_cast<int>(node));
        blocks.emplace_back(p, node);
      }
    }
    errno = 0;
    EXPECT_EQ(f.numa->malloc_on_node(16, -1, heap), nullptr);
    EXPECT_EQ(errno, EINVAL);
    errno = 0;
    EXPECT_EQ(f.numa->malloc_on_node(16, static_cast<int>(nodes()), heap), nullptr);
    EXPECT_EQ(errno, EINVAL);
  });
  // Freed from a thread on another node, the blocks go back to their heaps.
  f.on_node(nodes() - 1, [&] {
    Heap* heap = f.numa->acquire_heap();
    for (auto [p, node] : blocks) heap->free(p);
  });
  EXPECT_TRUE(f.reporter.reports.empty());
  NodeStats s;
  ASSERT_TRUE(f.numa->node_stats(nodes() - 1, &s));
  EXPECT_GT(s.mapped_bytes, 0u);
  EXPECT_FALSE(f.numa->node_stats(nodes(), &s));
}

std::string placement_name(const ::testing::TestParamInfo<std::tuple<unsigned, NumaPolicy>>& info) {
  static const char* const kNames[] = {"Off", "FirstTouch", "Preferred", "Bind"};
  return std::to_string(std::get<0>(info.param)) + "Nodes" +
         kNames[static_cast<int>(std::get<1>(info.param))];
}

INSTANTIATE_TEST_SUITE_P(Nodes, NumaPlacement,
                         ::testing::Combine(::testing::Values(2u, 4u, 8u),
                                            ::testing::Values(NumaPolicy::kFirstTouch,
                                                              NumaPolicy::kPreferred,
                                                              NumaPolicy::kBind)),
                         placement_name);

// ---- Failures and the off policy -----------------------------------------

TEST(NumaFailures, RefusedBindStillServesMemoryAndIsReportedOnce) {
  NumaFixture f(4, NumaPolicy::kBind);
  f.pal.fail_always(PalCall::kBind, true);
  f.on_node(2, [&] {
    Heap* heap = f.numa->acquire_heap();
    std::vector<void*> blocks;
    for (int i = 0; i < 50; ++i) {
      for (std::size_t size : kSizes) {
        void* p = heap->malloc(size);
        ASSERT_NE(p, nullptr);
        std::memset(p, 1, size);
        blocks.push_back(p);
      }
    }
    void* placed = f.numa->malloc_on_node(100000, 3, heap);
    ASSERT_NE(placed, nullptr);
    for (void* p : blocks) heap->free(p);
    heap->free(placed);
  });
  NodeStats s;
  ASSERT_TRUE(f.numa->node_stats(2, &s));
  EXPECT_GT(s.bind_failures, 1u);
  ASSERT_EQ(g_warnings.size(), 1u);
  EXPECT_NE(g_warnings[0].find("mbind to NUMA node 2 failed"), std::string::npos) << g_warnings[0];
  EXPECT_TRUE(f.reporter.reports.empty());
}

TEST(NumaFailures, FailedMigrationKeepsMemoryUsableAndOutOfTheNewNodesCache) {
  NumaFixture f(2, NumaPolicy::kPreferred);
  f.on_node(0, [&] {
    Heap* heap = f.numa->acquire_heap();
    std::vector<void*> blocks;
    for (std::size_t size : kSizes) {
      blocks.push_back(heap->malloc(size));
      std::memset(blocks.back(), 0x44, size);
    }
    f.pal.fail_always(PalCall::kMigrate, true);
    f.pal.set_current_node(1);
    std::size_t failed = 0;
    EXPECT_EQ(f.numa->rebind(heap, /*migrate=*/true, &failed), heap);
    EXPECT_GT(failed, 0u);
    EXPECT_EQ(Numa::node_of_heap(*heap), 1u);  // new memory comes from node 1
    for (std::size_t i = 0; i < blocks.size(); ++i) {
      EXPECT_TRUE(f.pages_on(blocks[i], kSizes[i], 0));  // stayed where they were
      EXPECT_EQ(f.numa->node_of(blocks[i]), 0);
      EXPECT_EQ(static_cast<unsigned char*>(blocks[i])[kSizes[i] - 1], 0x44);
      heap->free(blocks[i]);
    }
    // The segments that did not move keep serving the heap (their free
    // space is on node 0) until they are given back.
    heap->trim(false);
  });
  // Node 1's cache holds only node-1 memory: the mappings that did not move
  // were unmapped when given back.
  const SourceStats one = f.numa->thread_source(1).stats();
  EXPECT_GT(one.migrated_in, 0u);
  EXPECT_EQ(one.migrate_failures, one.migrated_in);
  EXPECT_EQ(f.numa->thread_source(0).stats().mapped_bytes, 0u);
  f.on_node(1, [&] {
    Heap* heap = f.numa->acquire_heap();
    for (int i = 0; i < 20; ++i) {
      for (std::size_t size : kSizes) EXPECT_TRUE(f.pages_on(heap->malloc(size), size, 1));
    }
  });
  ASSERT_EQ(g_warnings.size(), 1u);
  EXPECT_NE(g_warnings[0].find("MPOL_MF_MOVE"), std::string::npos);
}

TEST(NumaOff, OneSourceForEveryThreadAndOnlyMallocOnNodePlaces) {
  NumaFixture f(4, NumaPolicy::kOff);
  EXPECT_EQ(f.numa->node_count(), 4u);
  Heap* first = nullptr;
  f.on_node(1, [&] {
    first = f.numa->acquire_heap();
    void* p = first->malloc(9000);
    EXPECT_EQ(f.numa->node_of(p), -1);  // hpcalloc chose no node
    std::size_t failed = 0;
    f.pal.set_current_node(3);
    EXPECT_EQ(f.numa->rebind(first, true, &failed), first);  // nothing to follow
    EXPECT_EQ(f.pal.stats(PalCall::kMigrate).calls, 0u);
    void* placed = f.numa->malloc_on_node(9000, 2, first);
    EXPECT_TRUE(f.pages_on(placed, 9000, 2));
    EXPECT_EQ(f.numa->node_of(placed), 2);
    first->free(placed);
    first->free(p);
    f.pool->release(first);
  });
  f.on_node(2, [&] { EXPECT_EQ(f.numa->acquire_heap(), first); });  // any node adopts
  EXPECT_EQ(f.pal.stats(PalCall::kBind).calls, f.numa->placed_source(2).stats().os_reserves);
  EXPECT_EQ(f.numa->node_of(nullptr), -1);
  int on_stack = 0;
  EXPECT_EQ(f.numa->node_of(&on_stack), -1);
}

}  // namespace
}  // namespace hpcalloc

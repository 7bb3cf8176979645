// The NUMA part of the prefixed C API (hpcalloc.h) on the process-wide
// allocator under HPCALLOC_NUMA=bind, checked against what the kernel
// reports: get_mempolicy(MPOL_F_ADDR) for the policy of a block's memory and
// move_pages(nodes = NULL) for the node its touched pages sit on. The policy
// is read once, at the first hpc_* call of the process, so it is set by a
// static initializer, before main (gtest_main's) runs; nothing in this
// program calls hpc_* earlier. Works on any node count (a block's expected
// node is the one hpc_numa_node_of reports, which must be a real node), and
// skips where the NUMA system calls are missing or forbidden (ENOSYS, EPERM).
#include <dirent.h>
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "api/hpcalloc.h"
#include "pal/numa_kernel_queries.h"

namespace {

using namespace hpcalloc::numa_queries;

const bool kBindPolicySet = [] { return ::setenv("HPCALLOC_NUMA", "bind", 1) == 0; }();

constexpr std::size_t kMiB = std::size_t{1} << 20;

// The highest nodeN of sysfs plus one (the node count on a machine whose
// node ids have no holes), 1 when sysfs has none.
int sysfs_node_count() {
  DIR* dir = ::opendir("/sys/devices/system/node");
  if (dir == nullptr) return 1;
  int count = 1;
  while (const dirent* entry = ::readdir(dir)) {
    const std::string name = entry->d_name;
    if (name.size() <= 4 || name.compare(0, 4, "node") != 0) continue;
    if (name.find_first_not_of("0123456789", 4) != std::string::npos) continue;
    count = std::max(count, std::atoi(name.c_str() + 4) + 1);
  }
  ::closedir(dir);
  return count;
}

std::size_t stat_value(const char* name) {
  std::size_t value = 0;
  EXPECT_EQ(hpc_stat(name, &value), 0) << name;
  return value;
}

void fill(void* p, std::size_t size, unsigned seed) {
  auto* bytes = static_cast<unsigned char*>(p);
  for (std::size_t i = 0; i < size; ++i) bytes[i] = static_cast<unsigned char>(i * 31 + seed);
}

bool holds(const void* p, std::size_t size, unsigned seed) {
  const auto* bytes = static_cast<const unsigned char*>(p);
  for (std::size_t i = 0; i < size; ++i) {
    if (bytes[i] != static_cast<unsigned char>(i * 31 + seed)) return false;
  }
  return true;
}

class NumaApi : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(kBindPolicySet);
    if (const char* why = numa_calls_unavailable()) GTEST_SKIP() << why;
  }

  // p's block (size bytes, touched here) is on a real node, bound there with
  // MPOL_BIND, and each of its pages is on that node; the node of any
  // address inside it is the same. Returns that node.
  int expect_bound_block(void* p, std::size_t size, const std::string& what) {
    EXPECT_NE(p, nullptr) << what;
    if (p == nullptr) return -1;
    const int node = hpc_numa_node_of(p);
    EXPECT_GE(node, 0) << what;
    EXPECT_LT(node, hpc_numa_node_count()) << what;
    EXPECT_EQ(hpc_numa_node_of(static_cast<char*>(p) + size / 2), node) << what;
    EXPECT_EQ(hpc_numa_node_of(static_cast<char*>(p) + size - 1), node) << what;
    std::memset(p, 0x5e, size);
    for (const char* at : {static_cast<char*>(p), static_cast<char*>(p) + size - 1}) {
      const RangePolicy got = policy_at(at);
      EXPECT_EQ(got.result, 0) << what << ": get_mempolicy errno " << got.error;
      EXPECT_EQ(got.mode, kMpolBind) << what << " at offset " << (at - static_cast<char*>(p));
      EXPECT_EQ(got.nodes, std::vector<int>{node}) << what;
    }
    const std::vector<int> status = page_statuses(p, size);
    EXPECT_FALSE(status.empty()) << what << ": move_pages failed, errno " << errno;
    for (std::size_t i = 0; i < status.size(); ++i) {
      if (status[i] != node) {
        ADD_FAILURE() << what << ": page " << i << " on " << status[i] << ", not " << node;
        break;
      }
    }
    return node;
  }
};

TEST_F(NumaApi, NodeCountIsTheMachines) {
  EXPECT_EQ(hpc_numa_node_count(), sysfs_node_count());
  EXPECT_EQ(stat_value("numa_nodes"), static_cast<std::size_t>(sysfs_node_count()));
}

TEST_F(NumaApi, BlocksOfEveryKindAreBoundToTheirNode) {
  for (std::size_t size : {std::size_t{16}, std::size_t{1000}, std::size_t{64} << 10,
                           std::size_t{512} << 10, 8 * kMiB}) {
    void* p = hpc_malloc(size);
    expect_bound_block(p, size, "malloc " + std::to_string(size));
    hpc_free(p);
  }
  void* zeroed = hpc_calloc(3, 3 * kMiB);
  expect_bound_block(zeroed, 9 * kMiB, "calloc 9 MiB");
  hpc_free(zeroed);
  // An alignment above the segment size maps anew, over-reserving and trimming.
  void* aligned = hpc_aligned_alloc(8 * kMiB, 3 * kMiB);
  ASSERT_NE(aligned, nullptr);
  EXPECT_EQ(reinterpret_cast<std::uintptr_t>(aligned) % (8 * kMiB), 0u);
  expect_bound_block(aligned, 3 * kMiB, "aligned_alloc(8 MiB, 3 MiB)");
  hpc_free(aligned);
}

TEST_F(NumaApi, ReusedAndGrownBlocksStayBound) {
  // A freed huge block's mapping is cached and handed out again.
  for (int round = 0; round < 3; ++round) {
    void* p = hpc_malloc(8 * kMiB);
    expect_bound_block(p, 8 * kMiB, "huge block, round " + std::to_string(round));
    hpc_free(p);
  }
  // Growth in place or by moving: the new pages must carry the binding too.
  void* p = hpc_malloc(2 * kMiB);
  ASSERT_NE(p, nullptr);
  fill(p, 2 * kMiB, 7);
  for (std::size_t size : {6 * kMiB, 20 * kMiB, 48 * kMiB}) {
    p = hpc_realloc(p, size);
    ASSERT_NE(p, nullptr) << size;
    ASSERT_TRUE(holds(p, 2 * kMiB, 7)) << size;
    const RangePolicy tail = policy_at(static_cast<char*>(p) + size - 1);
    EXPECT_EQ(tail.mode, kMpolBind) << "realloc to " << size;
    const int node = hpc_numa_node_of(p);
    EXPECT_EQ(tail.nodes, std::vector<int>{node}) << "realloc to " << size;
    EXPECT_EQ(hpc_numa_node_of(static_cast<char*>(p) + size - 1), node) << size;
  }
  hpc_free(p);
}

TEST_F(NumaApi, NodeOfIsMinusOneForMemoryHpcallocDoesNotHold) {
  int on_stack = 0;
  static int in_data = 0;
  void* mapped = ::mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  ASSERT_NE(mapped, MAP_FAILED);
  void* from_glibc = std::malloc(64);
  ASSERT_NE(from_glibc, nullptr);
  EXPECT_EQ(hpc_numa_node_of(nullptr), -1);
  EXPECT_EQ(hpc_numa_node_of(&on_stack), -1);
  EXPECT_EQ(hpc_numa_node_of(&in_data), -1);
  EXPECT_EQ(hpc_numa_node_of(from_glibc), -1);
  EXPECT_EQ(hpc_numa_node_of(mapped), -1);
  std::free(from_glibc);
  ::munmap(mapped, 4096);
}

TEST_F(NumaApi, MallocOnNodeBindsToThatNode) {
  for (int node = 0; node < hpc_numa_node_count(); ++node) {
    for (std::size_t size : {std::size_t{16}, std::size_t{4096}, std::size_t{64} << 10, 8 * kMiB}) {
      void* p = hpc_malloc_on_node(size, node);
      const std::string what =
          "malloc_on_node(" + std::to_string(size) + ", " + std::to_string(node) + ")";
      EXPECT_EQ(expect_bound_block(p, size, what), node) << what;
      hpc_free(p);
    }
  }
}

TEST_F(NumaApi, MallocOnNodeRejectsNodesTheMachineDoesNotHave) {
  for (int node : {-1, hpc_numa_node_count(), 64, INT_MAX, INT_MIN}) {
    errno = 0;
    EXPECT_EQ(hpc_malloc_on_node(16, node), nullptr) << node;
    EXPECT_EQ(errno, EINVAL) << node;
  }
}

TEST_F(NumaApi, MallocOnNodeBlocksAreFreedByAnyThread) {
  constexpr int kBlocks = 200;
  std::vector<void*> mine;
  for (int i = 0; i < kBlocks; ++i) {
    void* p = hpc_malloc_on_node(static_cast<std::size_t>(i * 97 + 1), 0);
    ASSERT_NE(p, nullptr);
    fill(p, static_cast<std::size_t>(i * 97 + 1), static_cast<unsigned>(i));
    mine.push_back(p);
  }
  // A thread without a heap of its own allocates on the node (the node's
  // shared heap), frees some of the main thread's blocks, and frees some of
  // its own; the main thread frees the rest of both.
  std::vector<void*> theirs;
  std::thread other([&] {
    for (int i = 0; i < kBlocks; ++i) {
      void* p = hpc_malloc_on_node(static_cast<std::size_t>(i * 89 + 1), 0);
      if (p == nullptr) return;
      fill(p, static_cast<std::size_t>(i * 89 + 1), static_cast<unsigned>(i + 1));
      theirs.push_back(p);
    }
    for (int i = 0; i < kBlocks; i += 2) {
      if (!holds(mine[i], static_cast<std::size_t>(i * 97 + 1), static_cast<unsigned>(i))) return;
      hpc_free(mine[i]);
      mine[i] = nullptr;
    }
    for (int i = 1; i < kBlocks; i += 2) {
      hpc_free(theirs[i]);
      theirs[i] = nullptr;
    }
  });
  other.join();
  ASSERT_EQ(theirs.size(), static_cast<std::size_t>(kBlocks));
  for (int i = 0; i < kBlocks; i += 2) {
    ASSERT_EQ(mine[i], nullptr) << "block " << i << " not checked and freed by the other thread";
  }
  for (int i = 0; i < kBlocks; ++i) {
    if (i % 2 == 1) {
      EXPECT_TRUE(holds(mine[i], static_cast<std::size_t>(i * 97 + 1), static_cast<unsigned>(i)));
      hpc_free(mine[i]);
    } else {
      EXPECT_EQ(hpc_numa_node_of(theirs[i]), 0) << i;
      EXPECT_TRUE(
          holds(theirs[i], static_cast<std::size_t>(i * 89 + 1), static_cast<unsigned>(i + 1)));
      hpc_free(theirs[i]);
    }
  }
  // Freed memory is reused: the node keeps serving.
  void* again = hpc_malloc_on_node(1000, 0);
  EXPECT_EQ(expect_bound_block(again, 1000, "after the frees"), 0);
  hpc_free(again);
}

TEST_F(NumaApi, RebindKeepsOldBlocksValidAndAllocationWorking) {
  std::vector<void*> blocks;
  const std::size_t sizes[] = {24, 800, std::size_t{64} << 10, 3 * kMiB};
  for (unsigned i = 0; i < 4; ++i) {
    blocks.push_back(hpc_malloc(sizes[i]));
    ASSERT_NE(blocks.back(), nullptr);
    fill(blocks.back(), sizes[i], i);
  }
  for (int flags : {0, HPC_NUMA_MIGRATE, 0, HPC_NUMA_MIGRATE}) {
    const int node = hpc_numa_rebind(flags);
    EXPECT_GE(node, 0) << "flags " << flags << ", errno " << errno;
    EXPECT_LT(node, hpc_numa_node_count()) << "flags " << flags;
    for (unsigned i = 0; i < 4; ++i) {
      EXPECT_TRUE(holds(blocks[i], sizes[i], i)) << "flags " << flags << ", block " << i;
    }
    void* fresh = hpc_malloc(5000);
    expect_bound_block(fresh, 5000, "malloc after rebind");
    hpc_free(fresh);
  }
  for (void* p : blocks) hpc_free(p);
  // A thread that has no heap yet: rebind only names its node.
  int thread_node = -2;
  std::thread fresh_thread([&] {
    thread_node = hpc_numa_rebind(HPC_NUMA_MIGRATE);
    void* p = hpc_malloc(100);
    hpc_free(p);
  });
  fresh_thread.join();
  EXPECT_GE(thread_node, 0);
  EXPECT_LT(thread_node, hpc_numa_node_count());
  EXPECT_EQ(stat_value("numa_migrate_failures"), 0u);
}

TEST_F(NumaApi, RebindRejectsUnknownFlags) {
  for (int flags : {2, 4, HPC_NUMA_MIGRATE | 4, -1, INT_MIN}) {
    errno = 0;
    EXPECT_EQ(hpc_numa_rebind(flags), -1) << flags;
    EXPECT_EQ(errno, EINVAL) << flags;
  }
  void* p = hpc_malloc(100);
  expect_bound_block(p, 100, "malloc after refused rebinds");
  hpc_free(p);
}

TEST_F(NumaApi, NodeStatsDescribeTheNodes) {
  void* p = hpc_malloc(100);  // the calling thread has a heap on its node
  ASSERT_NE(p, nullptr);
  const int my_node = hpc_numa_node_of(p);
  std::size_t mapped_total = 0;
  for (int node = 0; node < hpc_numa_node_count(); ++node) {
    struct hpc_numa_node_stats s {};
    ASSERT_EQ(hpc_numa_node_stats(node, &s), 0) << node;
    EXPECT_EQ(s.bind_failures, 0u) << node;
    EXPECT_EQ(s.migrate_failures, 0u) << node;
    EXPECT_LE(s.cached_bytes, s.mapped_bytes) << node;
    mapped_total += s.mapped_bytes;
    if (node == my_node) {
      EXPECT_GT(s.mapped_bytes, 0u);
      EXPECT_GE(s.heaps, 1u);
    }
  }
  EXPECT_EQ(mapped_total, stat_value("mapped_bytes"));
  EXPECT_EQ(stat_value("numa_bind_failures"), 0u);
  hpc_free(p);

  struct hpc_numa_node_stats s {};
  for (int node : {-1, hpc_numa_node_count(), INT_MAX}) {
    errno = 0;
    EXPECT_EQ(hpc_numa_node_stats(node, &s), -1) << node;
    EXPECT_EQ(errno, EINVAL) << node;
  }
  errno = 0;
  EXPECT_EQ(hpc_numa_node_stats(0, nullptr), -1);
  EXPECT_EQ(errno, EINVAL);
}

}  // namespace

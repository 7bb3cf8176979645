// LinuxPal's NUMA calls (bind, migrate) checked against what the kernel
// itself reports: get_mempolicy(MPOL_F_ADDR) for the policy a range carries,
// move_pages(nodes = NULL) and get_mempolicy(MPOL_F_NODE | MPOL_F_ADDR) for
// the node a touched page sits on. Runs on the machine's real nodes: the
// "home" node is the first node with memory that this process may use
// (node 0 on a single-node machine); an "absent" node is one outside that
// set, which the kernel must refuse. Where the NUMA system calls are missing
// or forbidden (ENOSYS: a kernel without NUMA; EPERM: a seccomp filter) the
// tests skip, since there is nothing to observe. SimPal's tests cover
// several nodes.
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "pal/linux_pal.h"
#include "pal/numa_kernel_queries.h"

namespace hpcalloc {
namespace {

using namespace numa_queries;

// A "0-3,5" node list (sysfs, /proc/self/status).
std::set<int> parse_node_list(const std::string& text) {
  std::set<int> nodes;
  std::stringstream items(text);
  std::string item;
  while (std::getline(items, item, ',')) {
    if (item.empty() || item == "\n") continue;
    int first = 0;
    int last = 0;
    if (std::sscanf(item.c_str(), "%d-%d", &first, &last) == 2) {
      for (int n = first; n <= last; ++n) nodes.insert(n);
    } else if (std::sscanf(item.c_str(), "%d", &first) == 1) {
      nodes.insert(first);
    }
  }
  return nodes;
}

// Nodes with memory that this process may bind to (its cpuset's).
std::set<int> usable_nodes() {
  std::ifstream has_memory("/sys/devices/system/node/has_memory");
  std::string line;
  std::set<int> nodes = std::getline(has_memory, line) ? parse_node_list(line) : std::set<int>{0};
  std::ifstream status("/proc/self/status");
  while (std::getline(status, line)) {
    const std::string key = "Mems_allowed_list:";
    if (line.rfind(key, 0) != 0) continue;
    const std::set<int> allowed = parse_node_list(line.substr(key.size()));
    std::set<int> both;
    for (int n : nodes) {
      if (allowed.count(n) != 0) both.insert(n);
    }
    nodes = both;
  }
  return nodes;
}

class LinuxPalNumaTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (const char* why = numa_calls_unavailable()) GTEST_SKIP() << why;
    const std::set<int> nodes = usable_nodes();
    if (nodes.empty()) GTEST_SKIP() << "no node with memory is allowed to this process";
    home_ = *nodes.begin();
    single_node_ = nodes.size() == 1;
    for (int n = 0; n < static_cast<int>(Topology::kMaxNodes); ++n) {
      if (nodes.count(n) == 0) {
        absent_ = n;
        break;
      }
    }
  }

  // Checks the first, a middle and the last page of [p, p + size).
  void expect_policy(const char* p, std::size_t size, int mode, const std::vector<int>& nodes,
                     const char* what) {
    for (const char* at : {p, p + size / 2, p + size - 1}) {
      const RangePolicy got = policy_at(at);
      ASSERT_EQ(got.result, 0) << what << ": get_mempolicy errno " << got.error;
      EXPECT_EQ(got.mode, mode) << what << " at offset " << (at - p);
      EXPECT_EQ(got.nodes, nodes) << what << " at offset " << (at - p);
    }
  }

  void expect_all_pages_on(const char* p, std::size_t size, int node, const char* what) {
    const std::vector<int> status = page_statuses(p, size);
    ASSERT_EQ(status.size(), size / page_) << what << ": move_pages failed, errno " << errno;
    for (std::size_t i = 0; i < status.size(); ++i) {
      ASSERT_EQ(status[i], node) << what << ": page " << i;
    }
  }

  LinuxPal pal_;
  const std::size_t page_ = pal_.page_size();
  const std::size_t size_ = std::size_t{4} << 20;
  int home_ = 0;
  int absent_ = -1;  // -1: every node below Topology::kMaxNodes is usable
  bool single_node_ = true;
};

TEST_F(LinuxPalNumaTest, BindSetsThePolicyOfTheWholeRangeAndFirstTouchClearsIt) {
  auto* p = static_cast<char*>(pal_.reserve(size_, std::size_t{2} << 20));
  ASSERT_NE(p, nullptr);
  expect_policy(p, size_, kMpolDefault, {}, "fresh reserve");

  ASSERT_TRUE(pal_.bind(p, size_, home_, NumaPolicy::kPreferred)) << errno;
  expect_policy(p, size_, kMpolPreferred, {home_}, "kPreferred");
  ASSERT_TRUE(pal_.bind(p, size_, home_, NumaPolicy::kBind)) << errno;
  expect_policy(p, size_, kMpolBind, {home_}, "kBind over kPreferred");
  // kOff makes no call: the earlier policy stays.
  ASSERT_TRUE(pal_.bind(p, size_, home_, NumaPolicy::kOff));
  expect_policy(p, size_, kMpolBind, {home_}, "kOff after kBind");
  // A recycled range loses what it carried.
  ASSERT_TRUE(pal_.bind(p, size_, home_, NumaPolicy::kFirstTouch)) << errno;
  expect_policy(p, size_, kMpolDefault, {}, "kFirstTouch after kBind");
  ASSERT_TRUE(pal_.bind(p, size_, home_, NumaPolicy::kPreferred)) << errno;
  ASSERT_TRUE(pal_.bind(p, size_, 12345, NumaPolicy::kFirstTouch)) << errno;
  expect_policy(p, size_, kMpolDefault, {}, "kFirstTouch after kPreferred");
  ASSERT_TRUE(pal_.release(p, size_));
}

TEST_F(LinuxPalNumaTest, BindingDoesNotTouchAndTouchedPagesLandOnTheNode) {
  for (NumaPolicy policy : {NumaPolicy::kPreferred, NumaPolicy::kBind, NumaPolicy::kFirstTouch}) {
    const std::size_t size = std::size_t{1} << 20;
    auto* p = static_cast<char*>(pal_.reserve(size, page_));
    ASSERT_NE(p, nullptr);
    ASSERT_TRUE(pal_.bind(p, size, home_, policy)) << errno;
    // Nothing is faulted in by reserve or bind.
    const std::vector<int> untouched = page_statuses(p, size);
    ASSERT_EQ(untouched.size(), size / page_);
    for (int status : untouched) ASSERT_EQ(status, -ENOENT);
    std::memset(p, 0x3c, size);
    // First touch places pages on the toucher's node, known only with one node.
    if (policy != NumaPolicy::kFirstTouch || single_node_) {
      expect_all_pages_on(p, size, home_, "touched");
      EXPECT_EQ(node_of_page(p), home_);
      EXPECT_EQ(node_of_page(p + size - 1), home_);
    }
    ASSERT_TRUE(pal_.release(p, size));
  }
}

TEST_F(LinuxPalNumaTest, DecommitKeepsThePolicyAndPagesComeBackOnTheNode) {
  auto* p = static_cast<char*>(pal_.reserve(size_, page_));
  ASSERT_NE(p, nullptr);
  ASSERT_TRUE(pal_.bind(p, size_, home_, NumaPolicy::kBind)) << errno;
  std::memset(p, 1, size_);
  ASSERT_TRUE(pal_.decommit(p, size_));
  expect_policy(p, size_, kMpolBind, {home_}, "decommitted");
  ASSERT_TRUE(pal_.commit(p, size_));
  std::memset(p, 2, size_);
  expect_all_pages_on(p, size_, home_, "touched again");
  ASSERT_TRUE(pal_.release(p, size_));
}

TEST_F(LinuxPalNumaTest, RemapsCarryThePolicyToNewAndMovedPages) {
  // In place: the block grows into its freed tail, which inherits the
  // policy; binding the new part again (as MemorySource does) keeps the
  // range one kernel mapping, so it can grow again.
  auto* p = static_cast<char*>(pal_.reserve(size_, page_));
  ASSERT_NE(p, nullptr);
  const std::size_t quarter = size_ / 4;
  ASSERT_TRUE(pal_.release(p + quarter, size_ - quarter));
  ASSERT_TRUE(pal_.bind(p, quarter, home_, NumaPolicy::kBind)) << errno;
  ASSERT_TRUE(pal_.remap_in_place(p, quarter, 2 * quarter)) << errno;
  expect_policy(p, 2 * quarter, kMpolBind, {home_}, "grown in place");
  ASSERT_TRUE(pal_.bind(p + quarter, quarter, home_, NumaPolicy::kBind)) << errno;
  ASSERT_TRUE(pal_.remap_in_place(p, 2 * quarter, size_)) << errno;
  expect_policy(p, size_, kMpolBind, {home_}, "grown in place twice");
  std::memset(p, 5, size_);
  expect_all_pages_on(p, size_, home_, "grown in place");

  // Moved: the target reservation is replaced by the source's mapping,
  // policy included, and so is the part the move grows.
  auto* target = static_cast<char*>(pal_.reserve(2 * size_, std::size_t{2} << 20));
  ASSERT_NE(target, nullptr);
  ASSERT_TRUE(pal_.remap_move(p, size_, 2 * size_, target)) << errno;
  expect_policy(target, 2 * size_, kMpolBind, {home_}, "moved and grown");
  EXPECT_EQ(target[size_ - 1], 5);
  std::memset(target + size_, 6, size_);
  expect_all_pages_on(target, 2 * size_, home_, "moved and grown");
  ASSERT_TRUE(pal_.release(target, 2 * size_));
}

TEST_F(LinuxPalNumaTest, BindingPartOfABlockSplitsItAndItStillGrowsInPlace) {
  // Different policies inside one block split its kernel mapping: mremap
  // refuses to grow it (EFAULT), so remap_in_place grows its last mapping,
  // whose policy the new pages take.
  auto* p = static_cast<char*>(pal_.reserve(size_, page_));
  ASSERT_NE(p, nullptr);
  const std::size_t half = size_ / 2;
  ASSERT_TRUE(pal_.release(p + half, half));
  ASSERT_TRUE(pal_.bind(p + half / 2, half / 2, home_, NumaPolicy::kBind)) << errno;
  expect_policy(p, half / 2, kMpolDefault, {}, "unbound half");
  expect_policy(p + half / 2, half / 2, kMpolBind, {home_}, "bound half");
  std::memset(p, 3, half);
  EXPECT_TRUE(pal_.remap_in_place(p, half, size_)) << errno;
  expect_policy(p, half / 2, kMpolDefault, {}, "unbound half, grown");
  expect_policy(p + half / 2, size_ - half / 2, kMpolBind, {home_}, "bound half and growth");
  for (std::size_t i = 0; i < half; i += page_) EXPECT_EQ(p[i], 3) << i;
  p[size_ - 1] = 4;
  ASSERT_TRUE(pal_.release(p, size_));
}

TEST_F(LinuxPalNumaTest, MigrateKeepsContentsAndBindsTheRange) {
  auto* p = static_cast<char*>(pal_.reserve(size_, page_));
  ASSERT_NE(p, nullptr);
  ASSERT_TRUE(pal_.bind(p, size_, home_, NumaPolicy::kFirstTouch)) << errno;
  for (std::size_t i = 0; i < size_; i += 64) p[i] = static_cast<char>(i / 64);

  ASSERT_TRUE(pal_.migrate(p, size_, home_, NumaPolicy::kBind)) << errno;
  expect_policy(p, size_, kMpolBind, {home_}, "migrated with kBind");
  expect_all_pages_on(p, size_, home_, "migrated with kBind");
  // Every other policy migrates with MPOL_PREFERRED.
  for (NumaPolicy policy : {NumaPolicy::kPreferred, NumaPolicy::kFirstTouch, NumaPolicy::kOff}) {
    ASSERT_TRUE(pal_.migrate(p, size_, home_, policy)) << errno;
    expect_policy(p, size_, kMpolPreferred, {home_}, "migrated");
    expect_all_pages_on(p, size_, home_, "migrated");
  }
  for (std::size_t i = 0; i < size_; i += 64) {
    ASSERT_EQ(p[i], static_cast<char>(i / 64)) << i;
  }
  EXPECT_EQ(node_of_page(p + size_ / 2), home_);
  ASSERT_TRUE(pal_.release(p, size_));
}

TEST_F(LinuxPalNumaTest, MigrateOfAnUntouchedRangeOnlyBindsIt) {
  auto* p = static_cast<char*>(pal_.reserve(size_, page_));
  ASSERT_NE(p, nullptr);
  ASSERT_TRUE(pal_.migrate(p, size_, home_, NumaPolicy::kBind)) << errno;
  expect_policy(p, size_, kMpolBind, {home_}, "migrated untouched");
  for (int status : page_statuses(p, size_)) ASSERT_EQ(status, -ENOENT);
  ASSERT_TRUE(pal_.release(p, size_));
}

TEST_F(LinuxPalNumaTest, AbsentNodesFailWithEINVALAndLeaveTheRangeAsItWas) {
  auto* p = static_cast<char*>(pal_.reserve(size_, page_));
  ASSERT_NE(p, nullptr);
  ASSERT_TRUE(pal_.bind(p, size_, home_, NumaPolicy::kBind)) << errno;
  std::memset(p, 7, size_);

  std::vector<int> absent = {-1, static_cast<int>(Topology::kMaxNodes), 1000, INT_MAX, INT_MIN};
  if (absent_ >= 0) absent.push_back(absent_);
  for (int node : absent) {
    for (NumaPolicy policy : {NumaPolicy::kPreferred, NumaPolicy::kBind}) {
      errno = 0;
      EXPECT_FALSE(pal_.bind(p, size_, node, policy)) << "bind to node " << node;
      EXPECT_EQ(errno, EINVAL) << "bind to node " << node;
    }
    for (NumaPolicy policy :
         {NumaPolicy::kOff, NumaPolicy::kFirstTouch, NumaPolicy::kPreferred, NumaPolicy::kBind}) {
      errno = 0;
      EXPECT_FALSE(pal_.migrate(p, size_, node, policy)) << "migrate to node " << node;
      EXPECT_EQ(errno, EINVAL) << "migrate to node " << node;
    }
    expect_policy(p, size_, kMpolBind, {home_}, "after a refused node");
  }
  // The range is still usable and where it was.
  for (std::size_t i = 0; i < size_; i += page_) ASSERT_EQ(p[i], 7) << i;
  std::memset(p, 8, size_);
  expect_all_pages_on(p, size_, home_, "after refused nodes");
  // First touch ignores the node, absent or not.
  if (absent_ >= 0) {
    EXPECT_TRUE(pal_.bind(p, size_, absent_, NumaPolicy::kFirstTouch)) << errno;
    expect_policy(p, size_, kMpolDefault, {}, "kFirstTouch with an absent node");
  }
  ASSERT_TRUE(pal_.release(p, size_));
}

}  // namespace
}  // namespace hpcalloc

#include "pal/linux_topology.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <fstream>
#include <string>
#include <vector>

namespace hpcalloc {
namespace {

std::vector<unsigned> members(const CpuSet& set) {
  std::vector<unsigned> out;
  for (unsigned cpu = 0; cpu < CpuSet::kCapacity; ++cpu) {
    if (set.contains(cpu)) out.push_back(cpu);
  }
  return out;
}

std::vector<unsigned> parse_ok(std::string_view text) {
  CpuSet set;
  EXPECT_TRUE(parse_cpulist(text, &set)) << '"' << text << '"';
  return members(set);
}

TEST(ParseCpulist, ReadsRangesAndSingles) {
  EXPECT_EQ(parse_ok("0-3,8,10-11\n"), (std::vector<unsigned>{0, 1, 2, 3, 8, 10, 11}));
  EXPECT_EQ(parse_ok("0-3,8,10-11"), (std::vector<unsigned>{0, 1, 2, 3, 8, 10, 11}));
  EXPECT_EQ(parse_ok("5"), (std::vector<unsigned>{5}));
  EXPECT_EQ(parse_ok("7-7\n"), (std::vector<unsigned>{7}));
  EXPECT_EQ(parse_ok("0012"), (std::vector<unsigned>{12}));
  EXPECT_EQ(parse_ok("3,1,3"), (std::vector<unsigned>{1, 3}));
}

TEST(ParseCpulist, EmptyListIsANodeWithoutCpus) {
  EXPECT_TRUE(parse_ok("").empty());
  EXPECT_TRUE(parse_ok("\n").empty());
}

TEST(ParseCpulist, RejectsMalformedInput) {
  for (const char* bad : {",",    "1,",      ",1",         "1,,2",          "1-",
                          "-1",   "3-1",     "1--2",       "1-2-3",         " 1",
                          "1 ",   "a",       "1a",         "0x1",           "1\n\n",
                          "1\n2", "0-3:2/4", "4294967296", "1-99999999999", "\n1"}) {
    CpuSet set;
    EXPECT_FALSE(parse_cpulist(bad, &set)) << '"' << bad << '"';
  }
}

TEST(ParseCpulist, DropsCpusBeyondCapacity) {
  CpuSet set;
  ASSERT_TRUE(parse_cpulist("1020-1030,5000,4294967295", &set));
  EXPECT_EQ(members(set), (std::vector<unsigned>{1020, 1021, 1022, 1023}));
  EXPECT_EQ(set.end(), CpuSet::kCapacity);
}

TEST(ParseCpulist, ChunkedInputParsesLikeWholeInput) {
  const std::string_view text = "0-15,32,40-47\n";
  CpuSet whole;
  ASSERT_TRUE(parse_cpulist(text, &whole));
  for (std::size_t split = 0; split <= text.size(); ++split) {
    CpuSet chunked;
    CpulistParser parser(&chunked);
    ASSERT_TRUE(parser.feed(text.substr(0, split)));
    ASSERT_TRUE(parser.feed(text.substr(split)));
    ASSERT_TRUE(parser.finish());
    EXPECT_EQ(members(chunked), members(whole)) << split;
  }
  CpuSet set;
  CpulistParser parser(&set);
  EXPECT_TRUE(parser.feed("1-"));
  EXPECT_FALSE(parser.finish());
}

TEST(ParseCpulist, IsConstexpr) {
  static_assert([] {
    CpuSet set;
    return parse_cpulist("0-3,9", &set) && set.count() == 5 && set.end() == 10;
  }());
}

TEST(CpuSet, CountEndAndClear) {
  CpuSet set;
  EXPECT_EQ(set.count(), 0u);
  EXPECT_EQ(set.end(), 0u);
  set.add_range(63, 64);
  EXPECT_EQ(set.count(), 2u);
  EXPECT_EQ(set.end(), 65u);
  set.clear();
  EXPECT_EQ(set.count(), 0u);
}

// A fake sysfs tree in a temporary directory, removed at the end.
class FakeSysfs : public ::testing::Test {
 protected:
  void SetUp() override {
    char pattern[] = "/tmp/hpcalloc_topology_XXXXXX";
    ASSERT_NE(mkdtemp(pattern), nullptr);
    root_ = pattern;
  }
  void TearDown() override { ASSERT_EQ(std::system(("rm -rf " + root_).c_str()), 0); }

  void add_node(unsigned node, const std::string& cpulist) {
    const std::string dir = root_ + "/node" + std::to_string(node);
    ASSERT_EQ(mkdir(dir.c_str(), 0755), 0);
    write(dir + "/cpulist", cpulist);
  }
  void write(const std::string& path, const std::string& text) { std::ofstream(path) << text; }
  std::string node_dir() const { return root_; }
  std::string possible() const { return root_ + "/possible"; }

  std::string root_;
};

TEST_F(FakeSysfs, TwoNodes) {
  add_node(0, "0-1,4-5\n");
  add_node(1, "2-3,6-7\n");
  Topology topology;
  errno = 1234;
  EXPECT_TRUE(read_topology(&topology, node_dir().c_str(), possible().c_str()));
  EXPECT_EQ(errno, 1234);
  EXPECT_EQ(topology.node_count, 2u);
  EXPECT_EQ(topology.cpu_count, 8u);
  const unsigned expected[] = {0, 0, 1, 1, 0, 0, 1, 1};
  for (unsigned cpu = 0; cpu < 8; ++cpu) EXPECT_EQ(topology.node_of_cpu(cpu), expected[cpu]);
  EXPECT_EQ(topology.node_of_cpu(8), 0u);
}

TEST_F(FakeSysfs, SparseNodesAndMemoryOnlyNodes) {
  add_node(0, "0-1\n");
  add_node(2, "2-3\n");
  add_node(3, "\n");  // memory only
  Topology topology;
  EXPECT_TRUE(read_topology(&topology, node_dir().c_str(), possible().c_str()));
  EXPECT_EQ(topology.node_count, 4u);
  EXPECT_EQ(topology.cpu_count, 4u);
  EXPECT_EQ(topology.node_of_cpu(1), 0u);
  EXPECT_EQ(topology.node_of_cpu(2), 2u);
  EXPECT_EQ(topology.node_of_cpu(3), 2u);
}

TEST_F(FakeSysfs, MalformedNodeOwnsNoCpusAndPossibleWidensCpuCount) {
  add_node(0, "0-1\n");
  add_node(1, "2-x\n");
  write(possible(), "0-11\n");
  Topology topology;
  EXPECT_TRUE(read_topology(&topology, node_dir().c_str(), possible().c_str()));
  EXPECT_EQ(topology.node_count, 2u);
  EXPECT_EQ(topology.cpu_count, 12u);
  for (unsigned cpu = 0; cpu < 12; ++cpu) EXPECT_EQ(topology.node_of_cpu(cpu), 0u);
}

TEST_F(FakeSysfs, MissingSysfsFallsBackToOneNode) {
  write(possible(), "0-5\n");
  Topology topology;
  topology.node_count = 7;
  errno = 0;
  EXPECT_FALSE(read_topology(&topology, (root_ + "/absent").c_str(), possible().c_str()));
  EXPECT_EQ(errno, 0);
  EXPECT_EQ(topology.node_count, 1u);
  EXPECT_EQ(topology.cpu_count, 6u);
  for (unsigned cpu = 0; cpu < Topology::kMaxCpus; ++cpu) EXPECT_EQ(topology.cpu_node[cpu], 0u);
}

TEST_F(FakeSysfs, NoSysfsAtAllStillGivesAtLeastOneCpu) {
  Topology topology;
  EXPECT_FALSE(read_topology(&topology, (root_ + "/absent").c_str(), (root_ + "/none").c_str()));
  EXPECT_EQ(topology.node_count, 1u);
  EXPECT_GE(topology.cpu_count, 1u);
}

TEST(ReadTopology, ThisMachine) {
  Topology topology;
  read_topology(&topology);
  EXPECT_GE(topology.node_count, 1u);
  EXPECT_LE(topology.node_count, Topology::kMaxNodes);
  EXPECT_GE(topology.cpu_count, 1u);
  for (unsigned cpu = 0; cpu < topology.cpu_count; ++cpu) {
    EXPECT_LT(topology.node_of_cpu(cpu), topology.node_count);
  }
}

}  // namespace
}  // namespace hpcalloc

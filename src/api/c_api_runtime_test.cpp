// The prefixed C API at run time: malloc_trim, the statistics (hpc_stat,
// hpc_print_stats, hpc_print_stats_json) and blocks freed by other threads.
#include <cstdio>

#include "api/c_api_test_support.h"
#include "mem/statistics.h"

namespace {

using namespace c_api_test;

TEST(CApi, MallocTrimReturnsZeroOrOne) {
  std::vector<void*> blocks;
  for (int i = 0; i < 8; ++i) blocks.push_back(hpc_malloc(std::size_t{8} << 20));
  for (void* p : blocks) hpc_free(p);
  const int first = hpc_malloc_trim(0);
  EXPECT_TRUE(first == 0 || first == 1) << first;
  const int second = hpc_malloc_trim(0);
  EXPECT_TRUE(second == 0 || second == 1) << second;
}

// The counters global_allocator.h names.
const char* const kStatNames[] = {"heaps_live",          "heaps_pooled",         "heaps_created",
                                  "remote_frees_pushed", "remote_frees_drained", "mapped_bytes",
                                  "cached_bytes",        "in_use_bytes",         "errors_reported"};

TEST(CApi, StatKnowsTheDocumentedNames) {
  for (const char* name : kStatNames) {
    std::size_t value = ~std::size_t{0};
    EXPECT_EQ(hpc_stat(name, &value), 0) << name;
    EXPECT_NE(value, ~std::size_t{0}) << name;
    EXPECT_EQ(hpc_stat(name, nullptr), 0) << name;
  }
  std::size_t value = 42;
  EXPECT_EQ(hpc_stat("no_such_counter", &value), -1);
  EXPECT_EQ(value, 42u);
  EXPECT_EQ(hpc_stat("", &value), -1);
  EXPECT_EQ(hpc_stat(nullptr, &value), -1);
}

TEST(CApi, StatKnowsEveryNameOfTheTable) {
  for (const hpcalloc::Statistic& statistic : hpcalloc::kStatistics) {
    if (statistic.name == nullptr) continue;
    std::size_t value = ~std::size_t{0};
    EXPECT_EQ(hpc_stat(statistic.name, &value), 0) << statistic.name;
    EXPECT_NE(value, ~std::size_t{0}) << statistic.name;
  }
  std::size_t value = 0;
  EXPECT_EQ(hpc_stat("small_segments", &value), -1) << "per-heap figures have no name";
}

TEST(CApi, InUseBytesFollowAllocations) {
  std::size_t before = 0;
  std::size_t during = 0;
  std::size_t after = 0;
  ASSERT_EQ(hpc_stat("in_use_bytes", &before), 0);
  void* p = hpc_malloc(std::size_t{4} << 20);
  ASSERT_EQ(hpc_stat("in_use_bytes", &during), 0);
  hpc_free(p);
  ASSERT_EQ(hpc_stat("in_use_bytes", &after), 0);
  EXPECT_GE(during, before + (std::size_t{4} << 20));
  EXPECT_LT(after, during);
}

std::size_t process_rss_bytes() {
  FILE* statm = std::fopen("/proc/self/statm", "r");
  unsigned long pages = 0;
  unsigned long resident = 0;
  EXPECT_EQ(std::fscanf(statm, "%lu %lu", &pages, &resident), 2);
  std::fclose(statm);
  return resident * static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
}

// resident_bytes is what is in RAM of hpcalloc's memory (mincore), not what
// is mapped: a touched block counts, and its pages stop counting when they
// are given back; it never exceeds the process's resident set.
TEST(CApi, ResidentBytesFollowTouchedPagesAndFallWhenGivenBack) {
  constexpr std::size_t kSize = std::size_t{48} << 20;
  hpc_malloc_trim(0);
  std::size_t before = 0;
  ASSERT_EQ(hpc_stat("resident_bytes", &before), 0);
  auto* p = static_cast<char*>(hpc_malloc(kSize));
  ASSERT_NE(p, nullptr);
  std::size_t untouched = 0;
  ASSERT_EQ(hpc_stat("resident_bytes", &untouched), 0);
  EXPECT_LT(untouched, before + kSize / 2) << "untouched pages counted as resident";
  std::memset(p, 1, kSize);
  std::size_t touched = 0;
  ASSERT_EQ(hpc_stat("resident_bytes", &touched), 0);
  EXPECT_GE(touched, before + kSize - (std::size_t{1} << 20));
  EXPECT_LE(touched, process_rss_bytes());
  std::size_t mapped = 0;
  ASSERT_EQ(hpc_stat("mapped_bytes", &mapped), 0);
  std::size_t metadata = 0;
  ASSERT_EQ(hpc_stat("metadata_bytes", &metadata), 0);
  EXPECT_GT(metadata, 0u);
  EXPECT_LE(touched, mapped + metadata);
  hpc_free(p);
  hpc_malloc_trim(0);
  std::size_t trimmed = 0;
  ASSERT_EQ(hpc_stat("resident_bytes", &trimmed), 0);
  EXPECT_LE(trimmed + kSize - (std::size_t{1} << 20), touched);
}

// What print(fd) writes, read back through a pipe.
std::string printed_by(void (*print)(int)) {
  int fds[2];
  EXPECT_EQ(pipe(fds), 0);
  print(fds[1]);
  close(fds[1]);
  std::string out;
  char buffer[4096];
  for (ssize_t n; (n = read(fds[0], buffer, sizeof buffer)) > 0;) out.append(buffer, n);
  close(fds[0]);
  return out;
}

TEST(CApi, PrintStatsWritesTheSummaryToTheDescriptor) {
  void* p = hpc_malloc(100);  // at least one live heap
  const std::string out = printed_by(hpc_print_stats);
  hpc_free(p);

  std::vector<std::string> lines;
  for (std::size_t begin = 0, end; (end = out.find('\n', begin)) != std::string::npos;
       begin = end + 1) {
    lines.push_back(out.substr(begin, end - begin));
  }
  ASSERT_FALSE(out.empty());
  EXPECT_EQ(out.back(), '\n') << out;
  for (const std::string& line : lines) EXPECT_EQ(line.rfind("hpcalloc: stats: ", 0), 0u) << line;
  // Which library, one line per group of counters, then one per heap.
  const char* const expected[] = {
      "hpcalloc: stats: hpcalloc ",     "hpcalloc: stats: heaps created ",
      "hpcalloc: stats: bytes mapped ", "hpcalloc: stats: requested (medium and huge) ",
      "hpcalloc: stats: os reserves ",  "hpcalloc: stats: decay: gave back ",
      "hpcalloc: stats: heap 0 "};
  ASSERT_GE(lines.size(), std::size(expected)) << out;
  for (std::size_t i = 0; i < std::size(expected); ++i) {
    EXPECT_EQ(lines[i].rfind(expected[i], 0), 0u) << expected[i] << "\n" << out;
  }
  EXPECT_NE(out.find("remote frees pushed "), std::string::npos) << out;
  EXPECT_NE(out.find(", in use "), std::string::npos) << out;

  // The wording, word for word, with every number as N (scripts parse it).
  auto shape = [](const std::string& line) {
    std::string result;
    for (std::size_t i = 0; i < line.size(); ++i) {
      if (line[i] >= '0' && line[i] <= '9') {
        while (i + 1 < line.size() && line[i + 1] >= '0' && line[i + 1] <= '9') ++i;
        result += 'N';
      } else {
        result += line[i];
      }
    }
    return result;
  };
  const char* const shapes[] = {
      std::string_view(hpc_flavour()) == "secure"
          ? "hpcalloc: stats: hpcalloc N.N.N, secure flavour"
          : "hpcalloc: stats: hpcalloc N.N.N, default flavour",
      "hpcalloc: stats: heaps created N, live N, pooled N, abandoned at fork N",
      "hpcalloc: stats: bytes mapped N (resident N), in use N (small N, medium N, huge N in N "
      "blocks), cached N in N mappings (resident N)",
      "hpcalloc: stats: requested (medium and huge) N bytes; remote frees pushed N, drained N",
      "hpcalloc: stats: os reserves N, releases N, cache hits N, misses N, assembled N bytes, "
      "grown into N bytes, mremap in place N, moved N, numa nodes N, errors reported N",
      "hpcalloc: stats: decay: gave back N bytes in N ranges; trims gave back N bytes; "
      "background passes N"};
  for (std::size_t i = 0; i < std::size(shapes); ++i) EXPECT_EQ(shape(lines[i]), shapes[i]);
  for (std::size_t i = std::size(shapes); i < lines.size(); ++i) {
    if (lines[i] == "hpcalloc: stats: ... and more heaps") continue;
    const std::string s = shape(lines[i]);
    EXPECT_TRUE(s == "hpcalloc: stats: heap N (live): in use N, segments small N medium N, huge "
                     "blocks N, remote frees pushed N, drained N" ||
                s == "hpcalloc: stats: heap N (pooled): in use N, segments small N medium N, "
                     "huge blocks N, remote frees pushed N, drained N")
        << lines[i];
  }
}

struct Block {
  void* p;
  std::size_t size;
};

std::vector<Block> allocate_mixed(int count) {
  std::vector<Block> blocks;
  for (int i = 0; i < count; ++i) {
    std::size_t size = 16 + static_cast<std::size_t>(i * 37) % 5000;
    if (i % 500 == 0) size = std::size_t{3} << 20;
    void* p = hpc_malloc(size);
    fill_pattern(p, size);
    blocks.push_back({p, size});
  }
  return blocks;
}

// HPCALLOC_STATS=json's object: one line, the schema's keys, every named
// statistic with hpc_stat's value (the program is idle meanwhile: the
// figures cannot move between the two reads), every heap's figures.
TEST(CApi, PrintStatsJsonWritesOneObjectWithEveryStatistic) {
  void* p = hpc_malloc(std::size_t{3} << 20);  // a huge block: huge_blocks >= 1
  const std::string out = printed_by(hpc_print_stats_json);
  ASSERT_GE(out.size(), 2u);
  EXPECT_EQ(out.find('\n'), out.size() - 1) << "one line: " << out;
  EXPECT_EQ(out.rfind("{\"schema\":1,\"hpcalloc\":\"", 0), 0u) << out;
  EXPECT_EQ(out.substr(out.size() - 2), "}\n") << out;
  const std::string flavour = std::string("\"flavour\":\"") + hpc_flavour() + "\"";
  EXPECT_NE(out.find(flavour), std::string::npos) << out;
  EXPECT_NE(out.find("\"initialized\":true"), std::string::npos) << out;
  for (const hpcalloc::Statistic& statistic : hpcalloc::kStatistics) {
    if (statistic.name == nullptr) continue;
    std::size_t value = 0;
    ASSERT_EQ(hpc_stat(statistic.name, &value), 0);
    const std::string member = "\"" + std::string(statistic.name) + "\":";
    const std::size_t at = out.find(member);
    ASSERT_NE(at, std::string::npos) << statistic.name << " missing: " << out;
    EXPECT_EQ(std::stoull(out.substr(at + member.size())), value) << statistic.name;
    if (std::string_view(statistic.name) == "huge_blocks") {
      EXPECT_GE(value, 1u);
    }
  }
  const std::size_t heaps = out.find("\"heaps\":[{\"index\":0,\"live\":");
  ASSERT_NE(heaps, std::string::npos) << out;
  for (const char* key : {"in_use_bytes", "small_segments", "medium_segments", "huge_blocks"}) {
    EXPECT_NE(out.find("\"" + std::string(key) + "\":", heaps), std::string::npos) << key;
  }
  EXPECT_NE(out.find("\"heaps_omitted\":0}"), std::string::npos) << out;
  hpc_free(p);
}

TEST(CApi, BlocksFreedByAnotherThread) {
  std::size_t pushed_before = 0;
  const bool counts_remote = hpc_stat("remote_frees_pushed", &pushed_before) == 0;
  std::vector<Block> blocks;
  std::thread([&] { blocks = allocate_mixed(5000); }).join();
  std::thread([&] {
    for (const Block& b : blocks) {
      ASSERT_NE(b.p, nullptr);
      EXPECT_TRUE(has_pattern(b.p, b.size));
      hpc_free(b.p);
    }
  }).join();

  // The owner still alive while another thread frees, then allocating again
  // (and so draining what was freed remotely).
  std::vector<Block> live = allocate_mixed(5000);
  std::thread([&] {
    for (std::size_t i = 0; i < live.size(); i += 2) {
      EXPECT_TRUE(has_pattern(live[i].p, live[i].size));
      hpc_free(live[i].p);
    }
    // realloc of a block owned by another heap moves or grows it safely.
    for (std::size_t i = 1; i < live.size(); i += 4) {
      void* q = hpc_realloc(live[i].p, live[i].size * 2);
      ASSERT_NE(q, nullptr);
      EXPECT_TRUE(has_pattern(q, live[i].size));
      live[i] = {q, live[i].size};
    }
  }).join();
  std::vector<Block> again = allocate_mixed(5000);
  for (std::size_t i = 1; i < live.size(); i += 2) {
    EXPECT_TRUE(has_pattern(live[i].p, live[i].size));
    hpc_free(live[i].p);
  }
  for (const Block& b : again) hpc_free(b.p);

  if (counts_remote) {
    std::size_t pushed_after = 0;
    ASSERT_EQ(hpc_stat("remote_frees_pushed", &pushed_after), 0);
    EXPECT_GT(pushed_after, pushed_before);
  }
}

TEST(CApi, ManyThreadsAllocateAndFreeEachOthersBlocks) {
  constexpr int kThreads = 8;
  std::vector<std::vector<Block>> made(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t)
    threads.emplace_back([&, t] { made[t] = allocate_mixed(2000); });
  for (auto& thread : threads) thread.join();
  threads.clear();
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (const Block& b : made[(t + 1) % kThreads]) {
        EXPECT_TRUE(has_pattern(b.p, b.size));
        hpc_free(b.p);
      }
    });
  }
  for (auto& thread : threads) thread.join();
}

}  // namespace

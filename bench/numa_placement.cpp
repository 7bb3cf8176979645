// NUMA placement: does memory that a thread allocates and first touches live
// on that thread's node? One thread per node by default (--threads spreads
// threads over nodes round robin), each pinned to the CPUs of its node. Every
// round a thread allocates small, 64 KiB and 4 MiB blocks, fills them, asks
// the kernel where each page is (move_pages with nodes == NULL only queries),
// reads all its blocks --passes times in a timed bandwidth phase and frees
// them. Later rounds see memory the allocator recycled, so an allocator that
// hands a thread another node's freed pages shows up as a falling
// local_fraction and, on a real multi-node machine, lower bandwidth.
//
// Nodes come from /sys/devices/system/node/node*/cpulist, restricted to the
// CPUs this process may run on; without that directory there is one node
// holding every allowed CPU. move_pages is called through syscall() so the
// program needs no libnuma.
#include <sched.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <barrier>
#include <filesystem>
#include <fstream>
#include <vector>

#include "workload_common.h"

namespace {

using hpcalloc::bench::allocate;
using hpcalloc::bench::check_block;
using hpcalloc::bench::stamp_block;
using Clock = std::chrono::steady_clock;

struct Node {
  int id;
  std::vector<int> cpus;
};

// Parses a sysfs CPU list such as "0-3,8-11".
std::vector<int> parse_cpu_list(const std::string& text) {
  std::vector<int> cpus;
  std::size_t at = 0;
  while (at < text.size()) {
    std::size_t end = text.find(',', at);
    if (end == std::string::npos) end = text.size();
    const std::string range = text.substr(at, end - at);
    const std::size_t dash = range.find('-');
    if (!range.empty() && range.find_first_not_of("0123456789-\n") == std::string::npos) {
      const int first = std::stoi(range.substr(0, dash));
      const int last = dash == std::string::npos ? first : std::stoi(range.substr(dash + 1));
      for (int cpu = first; cpu <= last; ++cpu) cpus.push_back(cpu);
    }
    at = end + 1;
  }
  return cpus;
}

std::vector<Node> discover_nodes() {
  cpu_set_t allowed;
  CPU_ZERO(&allowed);
  if (sched_getaffinity(0, sizeof allowed, &allowed) != 0) {
    for (unsigned cpu = 0; cpu < hpcalloc::bench::online_cpus(); ++cpu) CPU_SET(cpu, &allowed);
  }
  std::vector<Node> nodes;
  std::error_code error;
  for (const auto& entry : std::filesystem::directory_iterator("/sys/devices/system/node", error)) {
    const std::string name = entry.path().filename().string();
    if (name.size() <= 4 || name.compare(0, 4, "node") != 0 ||
        name.find_first_not_of("0123456789", 4) != std::string::npos) {
      continue;
    }
    std::ifstream file(entry.path() / "cpulist");
    std::string text;
    std::getline(file, text);
    Node node{std::stoi(name.substr(4)), {}};
    for (int cpu : parse_cpu_list(text)) {
      if (cpu < CPU_SETSIZE && CPU_ISSET(cpu, &allowed)) node.cpus.push_back(cpu);
    }
    if (!node.cpus.empty()) nodes.push_back(std::move(node));
  }
  if (nodes.empty()) {
    Node all{0, {}};
    for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu) {
      if (CPU_ISSET(cpu, &allowed)) all.cpus.push_back(cpu);
    }
    nodes.push_back(std::move(all));
  }
  std::sort(nodes.begin(), nodes.end(), [](const Node& a, const Node& b) { return a.id < b.id; });
  return nodes;
}

bool pin_to(const Node& node) {
  cpu_set_t set;
  CPU_ZERO(&set);
  for (int cpu : node.cpus) CPU_SET(cpu, &set);
  return sched_setaffinity(0, sizeof set, &set) == 0;  // 0: the calling thread
}

struct PageCounts {
  std::uint64_t local = 0;
  std::uint64_t remote = 0;
  std::uint64_t unknown = 0;  // not present, or the kernel could not say
};

// Asks where every page overlapping the blocks lives; nodes == NULL makes
// move_pages report each page's node in status without moving anything.
void count_pages(const std::vector<void*>& blocks, const std::vector<std::size_t>& sizes, int node,
                 PageCounts* counts) {
  const std::uintptr_t page = static_cast<std::uintptr_t>(sysconf(_SC_PAGESIZE));
  std::vector<void*> pages;
  for (std::size_t i = 0; i < blocks.size(); ++i) {
    const auto first = reinterpret_cast<std::uintptr_t>(blocks[i]) & ~(page - 1);
    const auto end = reinterpret_cast<std::uintptr_t>(blocks[i]) + sizes[i];
    for (std::uintptr_t at = first; at < end; at += page) {
      pages.push_back(reinterpret_cast<void*>(at));
    }
  }
  std::sort(pages.begin(), pages.end());
  pages.erase(std::unique(pages.begin(), pages.end()), pages.end());
  constexpr std::size_t kChunk = 4096;
  std::vector<int> status(kChunk);
  for (std::size_t at = 0; at < pages.size(); at += kChunk) {
    const std::size_t count = std::min(kChunk, pages.size() - at);
    if (syscall(SYS_move_pages, 0, count, pages.data() + at, nullptr, status.data(), 0) != 0) {
      counts->unknown += count;
      continue;
    }
    for (std::size_t i = 0; i < count; ++i) {
      if (status[i] < 0) {
        ++counts->unknown;
      } else if (status[i] == node) {
        ++counts->local;
      } else {
        ++counts->remote;
      }
    }
  }
}

// Reads every word of every block; the sum goes through escape() so the
// reads cannot be dropped.
void read_blocks(const std::vector<void*>& blocks, const std::vector<std::size_t>& sizes) {
  std::uint64_t sum = 0;
  for (std::size_t i = 0; i < blocks.size(); ++i) {
    const auto* words = static_cast<const std::uint64_t*>(blocks[i]);
    for (std::size_t w = 0; w < sizes[i] / sizeof(std::uint64_t); ++w) sum += words[w];
  }
  hpcalloc::bench::escape(&sum);
}

}  // namespace

int main(int argc, char** argv) {
  hpcalloc::bench::Options options(
      "numa_placement",
      "NUMA placement: threads pinned to their node allocate and touch small, 64 KiB and\n"
      "4 MiB blocks, report the share of pages on their own node and read them back.\n"
      "--threads defaults to one per NUMA node.");
  std::uint64_t rounds = 8;
  std::uint64_t small_size = 256, small_count = 32768;
  std::uint64_t medium_size = 64 << 10, medium_count = 128;
  std::uint64_t large_size = 4 << 20, large_count = 4;
  std::uint64_t passes = 8;
  options.add_count("rounds", &rounds, "allocate/query/read/free rounds at scale 1");
  options.add_count("small-size", &small_size, "bytes per small block (>= 16)");
  options.add_count("small-count", &small_count, "small blocks per thread per round");
  options.add_count("medium-size", &medium_size, "bytes per medium block");
  options.add_count("medium-count", &medium_count, "medium blocks per thread per round");
  options.add_count("large-size", &large_size, "bytes per large block");
  options.add_count("large-count", &large_count, "large blocks per thread per round");
  options.add_count("passes", &passes, "read passes over the blocks per round");
  options.parse(argc, argv);
  if (small_size < 16 || medium_size < 16 || large_size < 16) {
    std::fprintf(stderr, "bench_numa_placement: block sizes must be >= 16\n");
    return 2;
  }
  rounds = options.scaled(rounds);
  const std::vector<Node> nodes = discover_nodes();
  const auto threads =
      static_cast<unsigned>(options.given("threads") ? options.threads : nodes.size());

  std::vector<std::size_t> sizes;
  for (std::uint64_t i = 0; i < small_count; ++i) sizes.push_back(small_size);
  for (std::uint64_t i = 0; i < medium_count; ++i) sizes.push_back(medium_size);
  for (std::uint64_t i = 0; i < large_count; ++i) sizes.push_back(large_size);
  std::uint64_t bytes_per_round = 0;
  for (std::size_t size : sizes) bytes_per_round += size;

  // The completion functions run once per phase, while every thread waits, so
  // the plain doubles they update need no further synchronisation.
  Clock::time_point read_start;
  double read_seconds = 0;
  std::barrier before_read(threads, [&]() noexcept { read_start = Clock::now(); });
  std::barrier after_read(threads, [&]() noexcept {
    read_seconds += hpcalloc::bench::seconds_between(read_start, Clock::now());
  });
  std::vector<PageCounts> counts(threads);
  std::atomic<unsigned> pinned{0};

  const double seconds = hpcalloc::bench::run_threads(threads, [&](unsigned t) {
    const Node& node = nodes[t % nodes.size()];
    if (pin_to(node)) pinned.fetch_add(1, std::memory_order_relaxed);
    std::vector<void*> blocks(sizes.size());
    PageCounts mine;
    for (std::uint64_t r = 0; r < rounds; ++r) {
      const std::uint64_t tag = (r << 16) ^ t;
      for (std::size_t i = 0; i < sizes.size(); ++i) {
        blocks[i] = allocate(sizes[i]);
        std::memset(blocks[i], static_cast<int>(tag + i), sizes[i]);  // first touch
        stamp_block(blocks[i], sizes[i], tag + i);
      }
      count_pages(blocks, sizes, node.id, &mine);
      before_read.arrive_and_wait();
      for (std::uint64_t p = 0; p < passes; ++p) read_blocks(blocks, sizes);
      after_read.arrive_and_wait();
      for (std::size_t i = 0; i < sizes.size(); ++i) {
        check_block(blocks[i], sizes[i], tag + i);
        std::free(blocks[i]);
      }
    }
    counts[t] = mine;
  });

  PageCounts total;
  for (const PageCounts& c : counts) {
    total.local += c.local;
    total.remote += c.remote;
    total.unknown += c.unknown;
  }
  const std::uint64_t known = total.local + total.remote;
  const std::string local_fraction =
      known == 0 ? "unknown"
                 : hpcalloc::bench::fixed(
                       static_cast<double>(total.local) / static_cast<double>(known), 3);
  const double bytes_read = static_cast<double>(bytes_per_round * passes * rounds * threads);
  const double gib_per_s = read_seconds > 0 ? bytes_read / read_seconds / (1 << 30) : 0;
  const std::uint64_t ops = std::uint64_t{threads} * rounds * sizes.size();
  hpcalloc::bench::print_result("numa_placement", threads, seconds, ops,
                                {{"nodes", std::to_string(nodes.size())},
                                 {"local_fraction", local_fraction},
                                 {"pages_local", std::to_string(total.local)},
                                 {"pages_remote", std::to_string(total.remote)},
                                 {"pages_unknown", std::to_string(total.unknown)},
                                 {"pinned_threads", std::to_string(pinned.load())},
                                 {"read_seconds", hpcalloc::bench::fixed(read_seconds, 6)},
                                 {"read_gib_per_s", hpcalloc::bench::fixed(gib_per_s, 2)}});
  return 0;
}

#include "mem/statistics.h"

#include <gtest/gtest.h>

#include <string_view>

namespace hpcalloc {
namespace {

const Statistic& row(std::string_view name) {
  for (const Statistic& s : kStatistics) {
    if (s.name != nullptr && name == s.name) return s;
  }
  ADD_FAILURE() << "no row named " << name;
  return kStatistics[0];
}

// Distinct values for every heap counter: 1, 2, 3, ... times `scale`.
HeapStats numbered(std::size_t scale) {
  HeapStats h;
  for (std::size_t i = 0; i < kHeapCounterCount; ++i) h.*kHeapCounters[i] = (i + 1) * scale;
  return h;
}

TEST(Statistics, EveryRowIsDescribed) {
  for (const Statistic& s : kStatistics) {
    EXPECT_NE(std::string_view(s.description), "") << (s.name ? s.name : "(per heap)");
  }
}

TEST(Statistics, HeapStatsSumsEveryCounter) {
  HeapStats sum = numbered(1);
  sum += numbered(100);
  for (std::size_t i = 0; i < kHeapCounterCount; ++i)
    EXPECT_EQ(sum.*kHeapCounters[i], (i + 1) * 101);
}

TEST(Statistics, IndexOfACounterIsItsPlaceInTheTable) {
  constexpr std::size_t index = heap_counter_index(&HeapStats::remote_drained);
  EXPECT_EQ(kHeapCounters[index], &HeapStats::remote_drained);
}

TEST(Statistics, ProcessValuesAddTheirParts) {
  ProcessStats p;
  p.heaps = numbered(1);
  p.heaps.small_in_use = 10;
  p.heaps.medium_in_use = 200;
  p.heaps.huge_in_use = 3000;
  p.heaps.remote_pushed = 7;
  p.heapless_remote_pushed = 5;
  p.pool.created = 4;
  p.sources.mapped_bytes = 1 << 20;
  p.numa_nodes = 2;
  EXPECT_EQ(process_value(row("in_use_bytes"), p), 3210u);
  EXPECT_EQ(process_value(row("remote_frees_pushed"), p), 12u) << "heapless threads' frees count";
  EXPECT_EQ(process_value(row("heaps_created"), p), 4u);
  EXPECT_EQ(process_value(row("mapped_bytes"), p), std::size_t{1} << 20);
  EXPECT_EQ(process_value(row("numa_nodes"), p), 2u);
}

TEST(Statistics, HeapValuesLeaveOutProcessWideParts) {
  HeapStats h;
  h.small_in_use = 1;
  h.huge_in_use = 2;
  h.remote_pushed = 3;
  EXPECT_EQ(heap_value(row("in_use_bytes"), h), 3u);
  EXPECT_EQ(heap_value(row("remote_frees_pushed"), h), 3u);
  for (const Statistic& s : kStatistics) {
    if (s.heap_label == nullptr) continue;
    EXPECT_TRUE(s.heap != nullptr || s.heap_figure != nullptr) << s.heap_label;
  }
}

}  // namespace
}  // namespace hpcalloc

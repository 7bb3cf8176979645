#include "pal/sim_pal.h"

#include <gtest/gtest.h>

#include <array>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <thread>
#include <vector>

namespace hpcalloc {
namespace {

constexpr std::size_t kMiB = std::size_t{1} << 20;

bool all_bytes_are(const void* p, std::size_t size, unsigned char value) {
  const auto* bytes = static_cast<const unsigned char*>(p);
  for (std::size_t i = 0; i < size; ++i) {
    if (bytes[i] != value) return false;
  }
  return true;
}

char* at(const SimPal& pal, std::size_t offset) {
  return const_cast<char*>(static_cast<const char*>(pal.arena_base())) + offset;
}

// A fixed mix of calls; returns the offset of every block it reserves.
std::vector<std::size_t> run_script(SimPal& pal) {
  const std::size_t page = pal.page_size();
  std::vector<std::size_t> offsets;
  auto reserve = [&](std::size_t size, std::size_t align) {
    void* p = pal.reserve(size, align);
    EXPECT_NE(p, nullptr);
    offsets.push_back(pal.offset_of(p));
    return static_cast<char*>(p);
  };
  char* a = reserve(3 * page, page);
  char* b = reserve(2 * kMiB, 2 * kMiB);
  char* c = reserve(page, page);
  EXPECT_TRUE(pal.release(a, 3 * page));
  reserve(2 * page, page);
  EXPECT_TRUE(pal.remap_in_place(c, page, 4 * page));
  char* d = reserve(5 * page, 16 * page);
  EXPECT_TRUE(pal.remap_move(c, 4 * page, 2 * kMiB, b));
  reserve(page, page);
  EXPECT_TRUE(pal.release(d, 5 * page));
  reserve(6 * page, 4 * page);
  reserve(4 * kMiB, 4 * kMiB);
  return offsets;
}

TEST(SimPal, SameCallsGiveSameOffsetsFromTheArenaBase) {
  SimPal first;
  SimPal second;
  EXPECT_NE(first.arena_base(), second.arena_base());
  const std::vector<std::size_t> offsets = run_script(first);
  EXPECT_EQ(offsets, run_script(second));
  const std::size_t page = first.page_size();
  // First fit, lowest address first, honouring alignment.
  const std::vector<std::size_t> expected = {0,         2 * kMiB, 3 * page, 0,
                                             16 * page, 2 * page, 4 * page, 4 * kMiB};
  EXPECT_EQ(offsets, expected);
}

TEST(SimPal, ReserveIsAlignedZeroedAndCommitted) {
  SimPal pal({.arena_size = 64 * kMiB});
  const std::size_t page = pal.page_size();
  for (std::size_t align = page; align <= 16 * kMiB; align *= 4) {
    auto* p = static_cast<char*>(pal.reserve(page, align));
    ASSERT_NE(p, nullptr);
    EXPECT_TRUE(is_aligned(p, align));
    EXPECT_TRUE(all_bytes_are(p, page, 0));
    EXPECT_EQ(pal.page_info(p), (SimPageInfo{true, true, 0, NumaPolicy::kOff}));
    std::memset(p, 0xcd, page);
  }
  EXPECT_EQ(pal.reserved_bytes(), 7 * page);
  EXPECT_EQ(pal.committed_bytes(), 7 * page);
}

TEST(SimPal, ReleaseThenReserveReusesTheLowestAddressAndReadsZero) {
  SimPal pal({.arena_size = 4 * kMiB});
  const std::size_t page = pal.page_size();
  auto* a = static_cast<char*>(pal.reserve(4 * page, page));
  auto* b = static_cast<char*>(pal.reserve(4 * page, page));
  auto* c = static_cast<char*>(pal.reserve(4 * page, page));
  EXPECT_EQ(pal.offset_of(c), 8 * page);
  std::memset(a, 1, 4 * page);
  std::memset(b, 2, 4 * page);
  ASSERT_TRUE(pal.release(b, 4 * page));
  EXPECT_FALSE(pal.page_info(b).reserved);
  EXPECT_EQ(pal.reserve(3 * page, page), b);
  ASSERT_TRUE(pal.release(a, 4 * page));
  auto* d = static_cast<char*>(pal.reserve(2 * page, page));
  EXPECT_EQ(d, a);
  EXPECT_TRUE(all_bytes_are(d, 2 * page, 0));
  EXPECT_TRUE(all_bytes_are(b, 3 * page, 0));
  EXPECT_EQ(pal.reserved_bytes(), 9 * page);
  EXPECT_EQ(pal.stats(PalCall::kRelease), (PalCallStats{2, 0, 0, 8 * page}));
}

TEST(SimPal, ArenaExhaustionFailsWithENOMEM) {
  SimPal pal({.arena_size = kMiB});
  const std::size_t page = pal.page_size();
  void* all = pal.reserve(kMiB, page);
  ASSERT_NE(all, nullptr);
  errno = 0;
  EXPECT_EQ(pal.reserve(page, page), nullptr);
  EXPECT_EQ(errno, ENOMEM);
  EXPECT_EQ(pal.stats(PalCall::kReserve), (PalCallStats{2, 1, 0, kMiB}));
  ASSERT_TRUE(pal.release(all, kMiB));
  EXPECT_EQ(pal.reserve(2 * kMiB, page), nullptr);
  EXPECT_EQ(pal.reserve(kMiB, kMiB), all);
}

TEST(SimPal, TheClockMovesOnlyWhenTheTestAdvancesIt) {
  SimPal pal({.arena_size = 4 * kMiB, .start_ms = 5000});
  EXPECT_EQ(pal.now_ms(), 5000u);
  void* p = pal.reserve(pal.page_size(), pal.page_size());
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(pal.now_ms(), 5000u);  // no call moves it
  pal.advance_ms(7);
  EXPECT_EQ(pal.now_ms(), 5007u);
}

TEST(SimPal, DecommitZeroesAndCommitRestoresTheAccounting) {
  SimPal pal({.arena_size = 4 * kMiB});
  const std::size_t page = pal.page_size();
  auto* p = static_cast<char*>(pal.reserve(8 * page, page));
  std::memset(p, 0x5a, 8 * page);
  ASSERT_TRUE(pal.decommit(p + 2 * page, 4 * page));
  EXPECT_TRUE(all_bytes_are(p, 2 * page, 0x5a));
  EXPECT_TRUE(all_bytes_are(p + 2 * page, 4 * page, 0));
  EXPECT_TRUE(all_bytes_are(p + 6 * page, 2 * page, 0x5a));
  EXPECT_FALSE(pal.page_info(p + 3 * page).committed);
  EXPECT_EQ(pal.committed_bytes(), 4 * page);
  EXPECT_EQ(pal.reserved_bytes(), 8 * page);
  ASSERT_TRUE(pal.decommit(p, 4 * page));  // overlapping a decommitted range
  EXPECT_EQ(pal.committed_bytes(), 2 * page);
  ASSERT_TRUE(pal.commit(p, 8 * page));
  EXPECT_EQ(pal.committed_bytes(), 8 * page);
  EXPECT_EQ(pal.stats(PalCall::kDecommit).bytes, 8 * page);
}

// SimPal has no touches: resident means reserved and committed.
TEST(SimPal, ResidentBytesAreTheCommittedPagesOfTheRange) {
  SimPal pal({.arena_size = 4 * kMiB});
  const std::size_t page = pal.page_size();
  auto* p = static_cast<char*>(pal.reserve(8 * page, page));
  EXPECT_EQ(pal.resident_bytes(p, 8 * page), 8 * page);
  ASSERT_TRUE(pal.decommit(p + 2 * page, 3 * page));
  EXPECT_EQ(pal.resident_bytes(p, 8 * page), 5 * page);
  EXPECT_EQ(pal.resident_bytes(p + 2 * page, 3 * page), 0u);
  EXPECT_EQ(pal.resident_bytes(p, 16 * page), 5 * page);  // beyond: not reserved
  ASSERT_TRUE(pal.release(p, 8 * page));
  EXPECT_EQ(pal.resident_bytes(p, 8 * page), 0u);
  EXPECT_EQ(pal.resident_bytes(&pal, page), 0u);  // outside the arena
}

TEST(SimPal, RemapInPlaceGrowsOnlyIntoFreePagesAndAlwaysShrinks) {
  SimPal pal({.arena_size = std::size_t{64} * 4096, .node_count = 2});
  const std::size_t page = pal.page_size();
  const std::size_t arena = pal.arena_size();
  auto* a = static_cast<char*>(pal.reserve(2 * page, page));
  auto* b = static_cast<char*>(pal.reserve(2 * page, page));
  ASSERT_TRUE(pal.bind(b, 2 * page, 1, NumaPolicy::kBind));
  std::memset(a, 0x11, 2 * page);
  errno = 0;
  EXPECT_FALSE(pal.remap_in_place(a, 2 * page, 3 * page));  // b is in the way
  EXPECT_EQ(errno, ENOMEM);
  EXPECT_EQ(pal.reserved_bytes(), 4 * page);
  EXPECT_TRUE(all_bytes_are(a, 2 * page, 0x11));
  // b grows into free pages, which inherit its node and read zero.
  ASSERT_TRUE(pal.remap_in_place(b, 2 * page, 10 * page));
  EXPECT_EQ(pal.page_info(b + 9 * page), (SimPageInfo{true, true, 1, NumaPolicy::kBind}));
  EXPECT_EQ(pal.committed_bytes_on_node(1), 10 * page);
  EXPECT_TRUE(all_bytes_are(b, 10 * page, 0));
  // Growing past the end of the arena fails.
  EXPECT_FALSE(pal.remap_in_place(b, 10 * page, arena));
  // Shrinking frees the tail; equal size is a no-op that succeeds.
  std::memset(b, 0x22, 10 * page);
  ASSERT_TRUE(pal.remap_in_place(b, 10 * page, page));
  ASSERT_TRUE(pal.remap_in_place(b, page, page));
  EXPECT_FALSE(pal.page_info(b + page).reserved);
  EXPECT_EQ(pal.reserved_bytes(), 3 * page);
  ASSERT_TRUE(pal.release(b, page));
  ASSERT_TRUE(pal.remap_in_place(a, 2 * page, 3 * page));  // now there is room
  EXPECT_TRUE(all_bytes_are(a + 2 * page, page, 0));       // b's old bytes are gone
  EXPECT_EQ(pal.stats(PalCall::kRemapInPlace), (PalCallStats{6, 2, 0, 15 * page}));
}

TEST(SimPal, RemapMovePreservesContentsAndFreesTheSource) {
  SimPal pal({.arena_size = 16 * kMiB, .node_count = 2});
  const std::size_t page = pal.page_size();
  auto* source = static_cast<char*>(pal.reserve(4 * page, page));
  auto* target = static_cast<char*>(pal.reserve(8 * page, 2 * kMiB));
  ASSERT_TRUE(pal.bind(source, 4 * page, 1, NumaPolicy::kPreferred));
  ASSERT_TRUE(pal.decommit(source + 3 * page, page));
  for (std::size_t i = 0; i < 3 * page; ++i) source[i] = static_cast<char>(i * 13);
  std::memset(target, 0xee, 8 * page);
  ASSERT_TRUE(pal.remap_move(source, 4 * page, 8 * page, target));
  for (std::size_t i = 0; i < 3 * page; ++i) ASSERT_EQ(target[i], static_cast<char>(i * 13));
  EXPECT_TRUE(all_bytes_are(target + 3 * page, 5 * page, 0));
  EXPECT_FALSE(pal.page_info(source).reserved);
  EXPECT_EQ(pal.page_info(target), (SimPageInfo{true, true, 1, NumaPolicy::kPreferred}));
  EXPECT_FALSE(pal.page_info(target + 3 * page).committed);
  EXPECT_TRUE(pal.page_info(target + 7 * page).committed);
  EXPECT_EQ(pal.reserved_bytes(), 8 * page);
  EXPECT_EQ(pal.committed_bytes_on_node(1), 7 * page);
  EXPECT_EQ(pal.committed_bytes_on_node(0), 0u);
  // Shrinking move.
  auto* small = static_cast<char*>(pal.reserve(2 * page, page));
  ASSERT_TRUE(pal.remap_move(target, 8 * page, 2 * page, small));
  EXPECT_EQ(small[page], static_cast<char>(page * 13));
  EXPECT_EQ(pal.reserved_bytes(), 2 * page);
  EXPECT_EQ(pal.stats(PalCall::kRemapMove), (PalCallStats{2, 0, 0, 10 * page}));
}

TEST(SimPal, PerNodeAccountingWithThreeNodes) {
  SimPal pal({.arena_size = 16 * kMiB, .node_count = 3, .cpus_per_node = 2});
  const std::size_t page = pal.page_size();
  EXPECT_EQ(pal.topology().node_count, 3u);
  EXPECT_EQ(pal.topology().cpu_count, 6u);
  EXPECT_EQ(pal.topology().node_of_cpu(5), 2u);
  EXPECT_EQ(pal.current_node(), 0);
  pal.set_current_node(2);
  EXPECT_EQ(pal.current_node(), 2);

  auto* a = static_cast<char*>(pal.reserve(4 * page, page));  // first touch: node 2
  EXPECT_EQ(pal.committed_bytes_on_node(2), 4 * page);
  ASSERT_TRUE(pal.bind(a, 4 * page, 1, NumaPolicy::kBind));
  EXPECT_EQ(pal.committed_bytes_on_node(1), 4 * page);
  EXPECT_EQ(pal.committed_bytes_on_node(2), 0u);

  auto* b = static_cast<char*>(pal.reserve(2 * page, page));
  ASSERT_TRUE(pal.decommit(b, 2 * page));
  EXPECT_EQ(pal.committed_bytes_on_node(2), 0u);
  ASSERT_TRUE(pal.commit(b, page));
  EXPECT_EQ(pal.committed_bytes_on_node(2), page);
  pal.set_current_node(0);
  ASSERT_TRUE(pal.bind(b, 2 * page, 2, NumaPolicy::kFirstTouch));  // node argument ignored
  EXPECT_EQ(pal.page_info(b), (SimPageInfo{true, true, 0, NumaPolicy::kFirstTouch}));
  EXPECT_EQ(pal.committed_bytes_on_node(0), page);
  EXPECT_EQ(pal.committed_bytes_on_node(2), 0u);

  // current_node is per thread.
  void* c = nullptr;
  std::thread other([&] {
    EXPECT_EQ(pal.current_node(), 0);
    pal.set_current_node(2);
    c = pal.reserve(3 * page, page);
  });
  other.join();
  EXPECT_EQ(pal.current_node(), 0);
  EXPECT_EQ(pal.page_info(c).node, 2);
  EXPECT_EQ(pal.committed_bytes_on_node(2), 3 * page);

  errno = 0;
  EXPECT_FALSE(pal.bind(a, 4 * page, 3, NumaPolicy::kBind));
  EXPECT_EQ(errno, EINVAL);
  EXPECT_EQ(pal.stats(PalCall::kBind), (PalCallStats{3, 1, 0, 6 * page}));
  EXPECT_EQ(pal.committed_bytes_on_node(1), 4 * page);

  EXPECT_EQ(pal.committed_bytes(), 8 * page);
  EXPECT_EQ(pal.reserved_bytes(), 9 * page);
  ASSERT_TRUE(pal.release(a, 4 * page));
  ASSERT_TRUE(pal.release(b, 2 * page));
  ASSERT_TRUE(pal.release(c, 3 * page));
  for (int node = 0; node < 3; ++node) EXPECT_EQ(pal.committed_bytes_on_node(node), 0u);
  EXPECT_EQ(pal.reserved_bytes(), 0u);
}

// Every observable piece of a SimPal's state over the pages a test uses.
struct Snapshot {
  std::size_t reserved = 0;
  std::size_t committed = 0;
  std::array<std::size_t, 2> per_node = {};
  std::vector<SimPageInfo> pages;
  std::vector<char> contents;
  std::array<PalCallStats, static_cast<std::size_t>(PalCall::kCount)> stats = {};
  bool operator==(const Snapshot&) const = default;
};

constexpr std::size_t kSnapshotPages = 32;

Snapshot snapshot(const SimPal& pal) {
  Snapshot s;
  const std::size_t page = pal.page_size();
  s.reserved = pal.reserved_bytes();
  s.committed = pal.committed_bytes();
  for (int node = 0; node < 2; ++node) s.per_node[node] = pal.committed_bytes_on_node(node);
  for (std::size_t i = 0; i < kSnapshotPages; ++i) {
    s.pages.push_back(pal.page_info(at(pal, i * page)));
    if (s.pages.back().reserved) {
      s.contents.insert(s.contents.end(), at(pal, i * page), at(pal, (i + 1) * page));
    }
  }
  for (std::size_t call = 0; call < s.stats.size(); ++call) {
    s.stats[call] = pal.stats(static_cast<PalCall>(call));
  }
  return s;
}

// A block at offset 0 (4 pages, bound to node 1, last two decommitted), free
// pages after it, and an 8-page target at page 16: every call kind below can
// succeed on it.
struct Scene {
  explicit Scene(SimPal& pal) : page(pal.page_size()) {
    a = static_cast<char*>(pal.reserve(4 * page, page));
    b = static_cast<char*>(pal.reserve(8 * page, 16 * page));
    std::memset(a, 0x3c, 4 * page);
    std::memset(b, 0x4d, 8 * page);
    EXPECT_TRUE(pal.bind(a, 4 * page, 1, NumaPolicy::kBind));
    EXPECT_TRUE(pal.decommit(a + 2 * page, 2 * page));
  }
  bool invoke(SimPal& pal, PalCall call) const {
    switch (call) {
      case PalCall::kReserve: return pal.reserve(2 * page, page) != nullptr;
      case PalCall::kRelease: return pal.release(a, 4 * page);
      case PalCall::kDecommit: return pal.decommit(a, 4 * page);
      case PalCall::kCommit: return pal.commit(a, 4 * page);
      case PalCall::kRemapInPlace: return pal.remap_in_place(a, 4 * page, 8 * page);
      case PalCall::kRemapMove: return pal.remap_move(a, 4 * page, 8 * page, b);
      case PalCall::kBind: return pal.bind(a, 4 * page, 0, NumaPolicy::kPreferred);
      case PalCall::kMigrate: return pal.migrate(a, 4 * page, 0, NumaPolicy::kBind);
      case PalCall::kProtect: return pal.protect(a, page, false);
      case PalCall::kAdviseHugePages: return pal.advise_huge_pages(a, 4 * page, true);
      case PalCall::kCount: break;
    }
    return false;
  }
  std::size_t page;
  char* a = nullptr;
  char* b = nullptr;
};

constexpr PalCall kAllCalls[] = {
    PalCall::kReserve,      PalCall::kRelease,        PalCall::kDecommit, PalCall::kCommit,
    PalCall::kRemapInPlace, PalCall::kRemapMove,      PalCall::kBind,     PalCall::kMigrate,
    PalCall::kProtect,      PalCall::kAdviseHugePages};

TEST(SimPalFailureInjection, AnInjectedFailureChangesNothingButItsCounters) {
  for (PalCall call : kAllCalls) {
    SCOPED_TRACE(static_cast<int>(call));
    SimPal pal({.arena_size = 4 * kMiB, .node_count = 2});
    const Scene scene(pal);
    const Snapshot before = snapshot(pal);
    pal.fail_after(call, 0);
    errno = 0;
    EXPECT_FALSE(scene.invoke(pal, call));
    EXPECT_EQ(errno, ENOMEM);
    Snapshot expected = before;
    PalCallStats& stats = expected.stats[static_cast<std::size_t>(call)];
    ++stats.calls;
    ++stats.failures;
    ++stats.injected;
    EXPECT_EQ(snapshot(pal), expected);
    // The schedule is spent: the same call now succeeds and changes state.
    EXPECT_TRUE(scene.invoke(pal, call));
    const Snapshot after = snapshot(pal);
    EXPECT_EQ(after.stats[static_cast<std::size_t>(call)].calls, stats.calls + 1);
    EXPECT_EQ(after.stats[static_cast<std::size_t>(call)].failures, stats.failures);
    EXPECT_GT(after.stats[static_cast<std::size_t>(call)].bytes, stats.bytes);
    EXPECT_NE(after.pages, before.pages);
  }
}

TEST(SimPalFailureInjection, FailAfterCountsSuccessesThenFailures) {
  SimPal pal({.arena_size = kMiB});
  const std::size_t page = pal.page_size();
  pal.fail_after(PalCall::kReserve, 2, 3);
  std::vector<bool> results;
  for (int i = 0; i < 7; ++i) results.push_back(pal.reserve(page, page) != nullptr);
  EXPECT_EQ(results, (std::vector<bool>{true, true, false, false, false, true, true}));
  EXPECT_EQ(pal.stats(PalCall::kReserve), (PalCallStats{7, 3, 3, 4 * page}));
  EXPECT_EQ(pal.reserved_bytes(), 4 * page);
  // Offsets are unaffected by the failures in between.
  EXPECT_EQ(pal.reserve(page, page), at(pal, 4 * page));
  pal.fail_after(PalCall::kReserve, 0, 5);
  pal.fail_after(PalCall::kReserve, 0, 0);  // cancels
  EXPECT_NE(pal.reserve(page, page), nullptr);
}

TEST(SimPalFailureInjection, FailAlwaysUntilSwitchedOff) {
  SimPal pal({.arena_size = kMiB});
  const std::size_t page = pal.page_size();
  void* p = pal.reserve(page, page);
  pal.fail_always(PalCall::kDecommit, true);
  pal.fail_always(PalCall::kBind, true);
  for (int i = 0; i < 3; ++i) EXPECT_FALSE(pal.decommit(p, page));
  EXPECT_TRUE(pal.bind(p, page, 0, NumaPolicy::kOff));  // no call is made for kOff
  EXPECT_FALSE(pal.bind(p, page, 0, NumaPolicy::kBind));
  EXPECT_EQ(pal.stats(PalCall::kBind), (PalCallStats{1, 1, 1, 0}));
  EXPECT_EQ(pal.committed_bytes(), page);
  pal.fail_always(PalCall::kDecommit, false);
  EXPECT_TRUE(pal.decommit(p, page));
  EXPECT_EQ(pal.stats(PalCall::kDecommit), (PalCallStats{4, 3, 3, page}));
  EXPECT_EQ(pal.committed_bytes(), 0u);
}

TEST(SimPal, LargerSimulatedPages) {
  const std::size_t page = std::size_t{64} * 1024;
  SimPal pal({.arena_size = 10 * page + 1, .page_size = page});
  EXPECT_EQ(pal.page_size(), page);
  EXPECT_EQ(pal.arena_size(), 11 * page);
  void* a = pal.reserve(page, page);
  void* b = pal.reserve(2 * page, 4 * page);
  EXPECT_EQ(pal.offset_of(a), 0u);
  EXPECT_EQ(pal.offset_of(b), 4 * page);
  EXPECT_TRUE(pal.decommit(b, page));
  EXPECT_EQ(pal.committed_bytes(), 2 * page);
}

TEST(SimPal, ConcurrentCallsKeepTheBooksBalanced) {
  SimPal pal({.arena_size = 64 * kMiB, .node_count = 4});
  const std::size_t page = pal.page_size();
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&pal, page, t] {
      pal.set_current_node(t);
      for (int i = 0; i < 500; ++i) {
        auto* p = static_cast<char*>(pal.reserve(page * (1 + i % 4), page));
        ASSERT_NE(p, nullptr);
        p[0] = 1;
        ASSERT_TRUE(pal.bind(p, page, t, NumaPolicy::kBind));
        ASSERT_TRUE(pal.release(p, page * (1 + i % 4)));
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(pal.reserved_bytes(), 0u);
  EXPECT_EQ(pal.committed_bytes(), 0u);
  EXPECT_EQ(pal.stats(PalCall::kReserve).calls, 2000u);
}

TEST(SimPalDeathTest, ContractViolationsAreFatal) {
  SimPal pal({.arena_size = kMiB});
  const std::size_t page = pal.page_size();
  char* p = static_cast<char*>(pal.reserve(2 * page, page));
  EXPECT_DEATH(pal.release(p + 2 * page, page), "SimPal: release.*not reserved");
  EXPECT_DEATH(pal.decommit(p, page + 1), "SimPal: decommit.*multiple of page_size");
  EXPECT_DEATH(pal.commit(p + 1, page), "SimPal: commit.*unaligned");
  EXPECT_DEATH(pal.reserve(page, page / 2), "SimPal: reserve.*alignment");
  EXPECT_DEATH(pal.bind(p - page, page, 0, NumaPolicy::kBind), "SimPal: bind.*outside");
  EXPECT_DEATH(pal.remap_move(p, 2 * page, page, p + page), "SimPal: remap_move.*overlap");
}

}  // namespace
}  // namespace hpcalloc

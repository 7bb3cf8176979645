// The medium free lists' link checks (medium_free_lists.h): a free chunk's
// links carry a check word, and every unlink and every bin() checks the
// neighbours' links back to the chunk. Each test corrupts the links of free
// chunks in a way one of those checks alone catches, then shows the lists
// report it (kCorruptedFreeList, naming the chunk), stop serving, and never
// hand out a block twice or follow the corrupted link.
#include <gtest/gtest.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <vector>

#include "mem/medium_free_lists.h"
#include "mem/test_configs.h"

namespace hpcalloc {
namespace {

constexpr std::size_t kRegionBytes = 256 * 1024;
constexpr std::size_t kBlock = 4000;  // every freed block lands in one bin
constexpr std::size_t kLinkWords = sizeof(medium::FreeLinks);

using testing_configs::RecordingReporter;
using Report = RecordingReporter::Report;

class MediumFreeListLinks : public ::testing::Test {
 protected:
  using Lists = MediumFreeLists<RecordingReporter, kRegionBytes>;

  void SetUp() override {
    region_.reset(static_cast<std::byte*>(std::aligned_alloc(4096, kRegionBytes)));
    lists_.add_region(region_.get(), kRegionBytes);
    // a x b y c z d w: a, b, c and d are freed (one bin, each between live
    // blocks); the region's free remainder after w is in a larger bin.
    for (void*& p : blocks_) p = lists_.allocate(kBlock);
    for (void* p : blocks_) ASSERT_NE(p, nullptr);
  }
  void* a() const { return blocks_[0]; }
  void* b() const { return blocks_[2]; }
  void* c() const { return blocks_[4]; }
  void* d() const { return blocks_[6]; }
  void* x() const { return blocks_[1]; }
  void free_a_b_c() {
    for (void* p : {a(), b(), c()}) ASSERT_EQ(lists_.free(p).emptied_region, nullptr);
    ASSERT_EQ(lists_.check_consistency_for_testing(), nullptr);
  }
  // What a program that can read freed memory (but not the keys) can do:
  // copy one free chunk's link words over another's.
  static void copy_links(void* to, const void* from) { std::memcpy(to, from, kLinkWords); }

  // After a report the lists serve nothing, and nothing freed is returned.
  void expect_stopped() {
    EXPECT_TRUE(lists_.abandoned());
    EXPECT_EQ(lists_.allocate(kBlock), nullptr);
  }

  struct FreeDeleter {
    void operator()(std::byte* p) const { std::free(p); }
  };
  std::unique_ptr<std::byte, FreeDeleter> region_;
  RecordingReporter reporter_;
  Lists lists_{reporter_};
  void* blocks_[8] = {};
};

// The bin is c <-> b <-> a. A blind write into c's first word (its next
// link) fails c's check word before the link is followed.
TEST_F(MediumFreeListLinks, AWriteIntoALinkFailsTheCheckWord) {
  free_a_b_c();
  static_cast<std::uintptr_t*>(c())[0] ^= 0x40;
  EXPECT_EQ(lists_.allocate(kBlock), nullptr);
  EXPECT_EQ(reporter_.reports, (std::vector<Report>{{HeapError::kCorruptedFreeList, c()}}));
  expect_stopped();
}

// c's check word rewritten alone fails too (a check over the links, not a
// marker).
TEST_F(MediumFreeListLinks, AWriteIntoTheCheckWordFailsIt) {
  free_a_b_c();
  static_cast<std::uintptr_t*>(c())[2] = 0;
  EXPECT_EQ(lists_.allocate(kBlock), nullptr);
  EXPECT_EQ(reporter_.reports, (std::vector<Report>{{HeapError::kCorruptedFreeList, c()}}));
  expect_stopped();
}

// a's links (next: none, prev: b) copied over c's pass c's check word, but
// c is the bin's head and b links on to a, not back to c: the unlink that
// takes c finds it (safe unlinking) instead of unlinking b's neighbours.
TEST_F(MediumFreeListLinks, CopiedLinksFailTheUnlinkBackLinkCheck) {
  free_a_b_c();
  copy_links(c(), a());
  EXPECT_EQ(lists_.allocate(kBlock), nullptr);
  EXPECT_EQ(reporter_.reports, (std::vector<Report>{{HeapError::kCorruptedFreeList, c()}}));
  expect_stopped();
}

// b's links (next: a, prev: c) copied over a's pass a's check word, but a
// now says its prev in the bin is c. Freeing x (between a and b) merges b
// first: the unlink of b finds that b's next, a, does not link back to b.
TEST_F(MediumFreeListLinks, ANeighbourThatDoesNotLinkBackStopsTheUnlink) {
  free_a_b_c();
  copy_links(a(), b());
  EXPECT_EQ(lists_.free(x()).emptied_region, nullptr);
  EXPECT_EQ(reporter_.reports, (std::vector<Report>{{HeapError::kCorruptedFreeList, b()}}));
  expect_stopped();
}

// The links of a chunk alone in its bin (none, none), copied from the free
// remainder after w over b's, pass b's check word; b claims to be its bin's
// head, which c is: freeing x merges b, and the unlink finds the bin's head
// is not b (else it would empty c's bin under it).
TEST_F(MediumFreeListLinks, AChunkThatClaimsToBeTheHeadMustBeIt) {
  free_a_b_c();
  void* w = blocks_[7];
  const void* remainder = static_cast<char*>(w) + lists_.usable_size(w) + 16;
  copy_links(b(), remainder);
  EXPECT_EQ(lists_.free(x()).emptied_region, nullptr);
  EXPECT_EQ(reporter_.reports, (std::vector<Report>{{HeapError::kCorruptedFreeList, b()}}));
  expect_stopped();
}

// The head's back link must be none: b's links (prev: c) copied over c's,
// the head, pass c's check word; freeing d (between live blocks, the same
// bin) puts d in front of c, and finds c's back link before rewriting it.
TEST_F(MediumFreeListLinks, ABinHeadWithABackLinkIsCaughtByTheNextBin) {
  free_a_b_c();
  copy_links(c(), b());
  EXPECT_EQ(lists_.free(d()).emptied_region, nullptr);
  EXPECT_EQ(reporter_.reports, (std::vector<Report>{{HeapError::kCorruptedFreeList, c()}}));
  expect_stopped();
}

// Without corruption the same moves report nothing (the tests above fail
// for the reason they name, not for the moves they make).
TEST_F(MediumFreeListLinks, TheSameMovesWithoutCorruptionAreQuiet) {
  free_a_b_c();
  EXPECT_EQ(lists_.free(d()).emptied_region, nullptr);
  EXPECT_EQ(lists_.free(x()).emptied_region, nullptr);
  void* again = lists_.allocate(kBlock);
  EXPECT_NE(again, nullptr);
  EXPECT_EQ(reporter_.reports, std::vector<Report>{});
  EXPECT_FALSE(lists_.abandoned());
  EXPECT_EQ(lists_.check_consistency_for_testing(), nullptr);
}

}  // namespace
}  // namespace hpcalloc

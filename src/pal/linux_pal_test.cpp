#include "pal/linux_pal.h"

#include <gtest/gtest.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "pal/pal.h"

namespace hpcalloc {
namespace {

// mincore fails with ENOMEM exactly when part of the range is unmapped.
bool is_mapped(const void* p, std::size_t size) {
  unsigned char residency[64];
  const std::size_t page = static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
  for (std::size_t offset = 0; offset < size; offset += 64 * page) {
    const std::size_t chunk = size - offset < 64 * page ? size - offset : 64 * page;
    if (mincore(const_cast<char*>(static_cast<const char*>(p)) + offset, chunk, residency) != 0) {
      return false;
    }
  }
  return true;
}

bool all_bytes_are(const void* p, std::size_t size, unsigned char value) {
  const auto* bytes = static_cast<const unsigned char*>(p);
  for (std::size_t i = 0; i < size; ++i) {
    if (bytes[i] != value) return false;
  }
  return true;
}

class LinuxPalTest : public ::testing::Test {
 protected:
  LinuxPal pal_;
  const std::size_t page_ = pal_.page_size();
};

TEST_F(LinuxPalTest, PageSizeIsThePowerOfTwoTheKernelUses) {
  EXPECT_TRUE(is_pow2(page_));
  EXPECT_EQ(page_, static_cast<std::size_t>(sysconf(_SC_PAGESIZE)));
}

TEST_F(LinuxPalTest, ReserveHonoursEveryAlignmentFromAPageToOneGiB) {
  for (std::size_t align = page_; align <= (std::size_t{1} << 30); align *= 2) {
    for (std::size_t size : {page_, 3 * page_, align}) {
      void* p = pal_.reserve(size, align);
      ASSERT_NE(p, nullptr) << "align " << align << " size " << size;
      EXPECT_TRUE(is_aligned(p, align)) << p << " align " << align;
      EXPECT_TRUE(is_mapped(p, size));
      // Touch the first and last page only: a 1 GiB block must stay cheap.
      static_cast<char*>(p)[0] = 1;
      static_cast<char*>(p)[size - 1] = 2;
      ASSERT_TRUE(pal_.release(p, size));
    }
  }
}

TEST_F(LinuxPalTest, ReserveTrimsTheOverMapping) {
  const std::size_t align = std::size_t{64} << 20;
  auto* p = static_cast<char*>(pal_.reserve(page_, align));
  ASSERT_NE(p, nullptr);
  // The over-mapping added align - page bytes, split between a head and a
  // tail that were both unmapped, so at least one neighbour page is free.
  EXPECT_TRUE(!is_mapped(p - page_, page_) || !is_mapped(p + page_, page_));
  ASSERT_TRUE(pal_.release(p, page_));
}

TEST_F(LinuxPalTest, ReserveOverflowFailsWithENOMEM) {
  errno = 0;
  EXPECT_EQ(pal_.reserve(SIZE_MAX - page_ + 1, std::size_t{1} << 30), nullptr);
  EXPECT_EQ(errno, ENOMEM);
}

TEST_F(LinuxPalTest, ReservedMemoryIsZeroAndWritable) {
  const std::size_t size = 16 * page_;
  void* p = pal_.reserve(size, page_);
  ASSERT_NE(p, nullptr);
  EXPECT_TRUE(all_bytes_are(p, size, 0));
  std::memset(p, 0xab, size);
  EXPECT_TRUE(all_bytes_are(p, size, 0xab));
  ASSERT_TRUE(pal_.release(p, size));
}

TEST_F(LinuxPalTest, ReleaseUnmapsAndTrimmedSubRangesCanBeReleased) {
  auto* p = static_cast<char*>(pal_.reserve(8 * page_, page_));
  ASSERT_NE(p, nullptr);
  ASSERT_TRUE(pal_.release(p + 6 * page_, 2 * page_));
  EXPECT_TRUE(is_mapped(p, 6 * page_));
  EXPECT_FALSE(is_mapped(p + 6 * page_, 2 * page_));
  ASSERT_TRUE(pal_.release(p, 6 * page_));
  EXPECT_FALSE(is_mapped(p, page_));
}

TEST_F(LinuxPalTest, ReleaseOfAnUnalignedAddressFailsWithEINVAL) {
  auto* p = static_cast<char*>(pal_.reserve(page_, page_));
  ASSERT_NE(p, nullptr);
  errno = 0;
  EXPECT_FALSE(pal_.release(p + 1, page_));
  EXPECT_EQ(errno, EINVAL);
  EXPECT_TRUE(is_mapped(p, page_));
  ASSERT_TRUE(pal_.release(p, page_));
}

TEST_F(LinuxPalTest, DecommitZeroesAndCommitMakesUsableAgain) {
  const std::size_t size = 8 * page_;
  auto* p = static_cast<char*>(pal_.reserve(size, page_));
  ASSERT_NE(p, nullptr);
  std::memset(p, 0x5a, size);
  ASSERT_TRUE(pal_.decommit(p + 2 * page_, 4 * page_));
  EXPECT_TRUE(is_mapped(p, size));
  EXPECT_TRUE(all_bytes_are(p, 2 * page_, 0x5a));
  EXPECT_TRUE(all_bytes_are(p + 2 * page_, 4 * page_, 0));
  EXPECT_TRUE(all_bytes_are(p + 6 * page_, 2 * page_, 0x5a));
  ASSERT_TRUE(pal_.commit(p + 2 * page_, 4 * page_));
  std::memset(p + 2 * page_, 0x11, 4 * page_);
  EXPECT_TRUE(all_bytes_are(p + 2 * page_, 4 * page_, 0x11));
  ASSERT_TRUE(pal_.release(p, size));
}

// resident_bytes counts the pages touched and not given back; a range
// that is partly unmapped counts its mapped pages; more than one mincore
// chunk (kResidencyChunk pages) is summed.
TEST_F(LinuxPalTest, ResidentBytesCountsTouchedPagesOnly) {
  const std::size_t pages = 1200;  // more than two mincore chunks
  const std::size_t size = pages * page_;
  auto* p = static_cast<char*>(pal_.reserve(size, page_));
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(pal_.resident_bytes(p, size), 0u);
  for (std::size_t page = 0; page < pages; page += 3) p[page * page_] = 1;
  const std::size_t touched = (pages + 2) / 3 * page_;
  EXPECT_EQ(pal_.resident_bytes(p, size), touched);
  EXPECT_EQ(pal_.resident_bytes(p + page_, page_), 0u);
  EXPECT_EQ(pal_.resident_bytes(p + 3 * page_, page_), page_);
  ASSERT_TRUE(pal_.decommit(p, 600 * page_));
  EXPECT_EQ(pal_.resident_bytes(p, size), touched - 200 * page_);
  // Unmap a hole in the middle: the chunk around it is asked page by page.
  ASSERT_TRUE(pal_.release(p + 900 * page_, 3 * page_));
  EXPECT_EQ(pal_.resident_bytes(p, size), touched - 201 * page_);
  ASSERT_TRUE(pal_.release(p, 900 * page_));
  ASSERT_TRUE(pal_.release(p + 903 * page_, size - 903 * page_));
  EXPECT_EQ(pal_.resident_bytes(p, size), 0u);
}

TEST_F(LinuxPalTest, RemapInPlaceGrowsIntoFreedTail) {
  // Reserve 8 pages and give back the last 6: the address space after the
  // 2-page block is then known to be free, so growing must succeed.
  auto* p = static_cast<char*>(pal_.reserve(8 * page_, page_));
  ASSERT_NE(p, nullptr);
  std::memset(p, 0x77, 8 * page_);
  ASSERT_TRUE(pal_.release(p + 2 * page_, 6 * page_));
  ASSERT_TRUE(pal_.remap_in_place(p, 2 * page_, 8 * page_));
  EXPECT_TRUE(is_mapped(p, 8 * page_));
  EXPECT_TRUE(all_bytes_are(p, 2 * page_, 0x77));
  EXPECT_TRUE(all_bytes_are(p + 2 * page_, 6 * page_, 0));  // new pages are zero
  ASSERT_TRUE(pal_.release(p, 8 * page_));
}

TEST_F(LinuxPalTest, RemapInPlaceShrinksAndUnmapsTheTail) {
  auto* p = static_cast<char*>(pal_.reserve(8 * page_, page_));
  ASSERT_NE(p, nullptr);
  std::memset(p, 0x33, 8 * page_);
  ASSERT_TRUE(pal_.remap_in_place(p, 8 * page_, 3 * page_));
  EXPECT_TRUE(all_bytes_are(p, 3 * page_, 0x33));
  EXPECT_FALSE(is_mapped(p + 3 * page_, 5 * page_));
  EXPECT_TRUE(pal_.remap_in_place(p, 3 * page_, 3 * page_));
  ASSERT_TRUE(pal_.release(p, 3 * page_));
}

TEST_F(LinuxPalTest, RemapInPlaceFailsWhenTheNextPagesAreTaken) {
  // Two blocks carved from one mapping: the second stands right after the
  // first, so the first cannot grow and must be left as it was.
  auto* p = static_cast<char*>(pal_.reserve(4 * page_, page_));
  ASSERT_NE(p, nullptr);
  std::memset(p, 0x42, 4 * page_);
  errno = 0;
  EXPECT_FALSE(pal_.remap_in_place(p, 2 * page_, 3 * page_));
  EXPECT_EQ(errno, ENOMEM);
  EXPECT_TRUE(all_bytes_are(p, 4 * page_, 0x42));
  ASSERT_TRUE(pal_.release(p, 4 * page_));
}

TEST_F(LinuxPalTest, RemapMoveGrowsKeepsContentsAndUnmapsTheSource) {
  auto* source = static_cast<char*>(pal_.reserve(4 * page_, page_));
  auto* target = static_cast<char*>(pal_.reserve(8 * page_, std::size_t{2} << 20));
  ASSERT_NE(source, nullptr);
  ASSERT_NE(target, nullptr);
  for (std::size_t i = 0; i < 4 * page_; ++i) source[i] = static_cast<char>(i * 7);
  std::memset(target, 0xee, 8 * page_);  // replaced by the move
  ASSERT_TRUE(pal_.remap_move(source, 4 * page_, 8 * page_, target));
  for (std::size_t i = 0; i < 4 * page_; ++i) ASSERT_EQ(target[i], static_cast<char>(i * 7));
  EXPECT_TRUE(all_bytes_are(target + 4 * page_, 4 * page_, 0));
  EXPECT_FALSE(is_mapped(source, 4 * page_));
  ASSERT_TRUE(pal_.release(target, 8 * page_));
}

TEST_F(LinuxPalTest, RemapMoveShrinks) {
  auto* source = static_cast<char*>(pal_.reserve(6 * page_, page_));
  auto* target = static_cast<char*>(pal_.reserve(2 * page_, page_));
  ASSERT_NE(source, nullptr);
  ASSERT_NE(target, nullptr);
  std::memset(source, 0x21, 6 * page_);
  ASSERT_TRUE(pal_.remap_move(source, 6 * page_, 2 * page_, target));
  EXPECT_TRUE(all_bytes_are(target, 2 * page_, 0x21));
  EXPECT_FALSE(is_mapped(source, 6 * page_));
  ASSERT_TRUE(pal_.release(target, 2 * page_));
}

TEST_F(LinuxPalTest, FailedRemapMoveLeavesTheTargetMapped) {
  // A source whose first page is not mapped cannot be moved (whatever the
  // kernel: 6.17 and later move a range of several mappings, holes
  // included, but not one that starts in a hole); whatever the kernel
  // version, the target must still be there afterwards.
  auto* source = static_cast<char*>(pal_.reserve(4 * page_, page_));
  auto* target = static_cast<char*>(pal_.reserve(8 * page_, page_));
  ASSERT_NE(source, nullptr);
  ASSERT_NE(target, nullptr);
  std::memset(source, 0x66, 4 * page_);
  ASSERT_TRUE(pal_.release(source, page_));
  EXPECT_FALSE(pal_.remap_move(source, 4 * page_, 8 * page_, target));
  EXPECT_FALSE(pal_.remap_move(source, 4 * page_, 4 * page_, target));
  EXPECT_TRUE(is_mapped(target, 8 * page_));
  target[0] = 1;
  target[8 * page_ - 1] = 1;
  EXPECT_TRUE(all_bytes_are(source + page_, 3 * page_, 0x66));
  ASSERT_TRUE(pal_.release(source + page_, 3 * page_));
  ASSERT_TRUE(pal_.release(target, 8 * page_));
}

// A range of several kernel mappings (pages moved in from elsewhere, as
// MemorySource reuses cached pages) moves, grown or not, one mapping at a
// time where the kernel will not move it at once, and grows in place by
// growing its last mapping.
TEST_F(LinuxPalTest, ARangeOfSeveralMappingsMovesAndGrows) {
  const std::size_t size = 16 * page_;
  auto* source = static_cast<char*>(pal_.reserve(size, page_));
  auto* piece = static_cast<char*>(pal_.reserve(4 * page_, page_));
  ASSERT_NE(source, nullptr);
  ASSERT_NE(piece, nullptr);
  for (std::size_t i = 0; i < size; ++i) source[i] = static_cast<char>(i / page_ + 1);
  std::memset(piece, 0x7e, 4 * page_);
  // Pages of another mapping moved into the middle: three mappings now.
  ASSERT_TRUE(pal_.remap_move(piece, 4 * page_, 4 * page_, source + 6 * page_));
  auto expect_contents = [&](const char* at) {
    for (std::size_t page = 0; page < 16; ++page) {
      const char want = page >= 6 && page < 10 ? 0x7e : static_cast<char>(page + 1);
      EXPECT_TRUE(all_bytes_are(at + page * page_, page_, static_cast<unsigned char>(want)))
          << page;
    }
  };
  for (const std::size_t grown : {size, 24 * page_}) {
    auto* target = static_cast<char*>(pal_.reserve(grown, page_));
    ASSERT_NE(target, nullptr);
    ASSERT_TRUE(pal_.remap_move(source, size, grown, target)) << errno;
    EXPECT_FALSE(is_mapped(source, page_));
    expect_contents(target);
    EXPECT_TRUE(all_bytes_are(target + size, grown - size, 0));
    // Back where it was, for the next round (same size: pieces if need be).
    auto* back = static_cast<char*>(pal_.reserve(size, page_));
    ASSERT_NE(back, nullptr);
    ASSERT_TRUE(pal_.remap_move(target, size, size, back)) << errno;
    if (grown > size) {
      ASSERT_TRUE(pal_.release(target + size, grown - size));
    }
    source = back;
  }
  expect_contents(source);
  // In place: the last mapping grows, if the address space after it is free.
  auto* after = static_cast<char*>(pal_.reserve(2 * size, page_));
  ASSERT_NE(after, nullptr);
  ASSERT_TRUE(pal_.release(after, 2 * size));
  ASSERT_TRUE(pal_.remap_move(source, size, size, after));
  ASSERT_TRUE(pal_.remap_in_place(after, size, 2 * size)) << errno;
  expect_contents(after);
  EXPECT_TRUE(all_bytes_are(after + size, size, 0));
  ASSERT_TRUE(pal_.release(after, 2 * size));
}

// move_in_pieces as a kernel before 6.17 runs it (this machine's kernel
// may move several mappings at once): a move that crosses a mapping's end
// fails with EFAULT, so the range goes over one mapping at a time; and a
// failure half-way (ENOMEM) moves every piece back and leaves the target.
TEST_F(LinuxPalTest, MoveInPiecesGoesOneMappingAtATimeAndUndoesAFailure) {
  const std::size_t size = 16 * page_;
  auto* source = static_cast<char*>(pal_.reserve(size, page_));
  ASSERT_NE(source, nullptr);
  for (std::size_t i = 0; i < size; ++i) source[i] = static_cast<char>(i / page_ + 1);
  const std::size_t ends[] = {3 * page_, 10 * page_, 11 * page_};  // where "mappings" end
  int calls = 0;
  int fail_at_call = -1;
  auto old_kernel = [&](char* from, char* to, std::size_t n) {
    ++calls;
    if (calls == fail_at_call) {
      errno = ENOMEM;
      return false;
    }
    const std::size_t offset = static_cast<std::size_t>(from - source);
    for (std::size_t end : ends) {
      if (offset < size && offset < end && offset + n > end) {
        errno = EFAULT;
        return false;
      }
    }
    return ::mremap(from, n, n, MREMAP_MAYMOVE | MREMAP_FIXED, to) != MAP_FAILED;
  };
  auto contents_are_right = [&](const char* at) {
    for (std::size_t page = 0; page < 16; ++page) {
      if (!all_bytes_are(at + page * page_, page_, static_cast<unsigned char>(page + 1))) {
        return false;
      }
    }
    return true;
  };
  // A failure at the third successful piece's call: all undone.
  auto* target = static_cast<char*>(pal_.reserve(size, page_));
  ASSERT_NE(target, nullptr);
  fail_at_call = 8;
  errno = 0;
  EXPECT_FALSE(pal_.move_in_pieces(source, target, size, old_kernel));
  EXPECT_EQ(errno, ENOMEM);
  EXPECT_TRUE(contents_are_right(source));
  EXPECT_TRUE(is_mapped(target, size));
  EXPECT_TRUE(all_bytes_are(target, size, 0));
  // Without the failure: every byte where it belongs, in a few calls.
  calls = 0;
  fail_at_call = -1;
  ASSERT_TRUE(pal_.move_in_pieces(source, target, size, old_kernel));
  EXPECT_TRUE(contents_are_right(target));
  EXPECT_FALSE(is_mapped(source, page_));
  EXPECT_LE(calls, 32);  // 4 mappings, a few halvings each (17 here)
  ASSERT_TRUE(pal_.release(target, size));
}

TEST_F(LinuxPalTest, BindOffAndFirstTouchSucceedOnNodeZero) {
  const std::size_t size = 4 * page_;
  auto* p = static_cast<char*>(pal_.reserve(size, page_));
  ASSERT_NE(p, nullptr);
  EXPECT_TRUE(pal_.bind(p, size, 0, NumaPolicy::kOff));
  EXPECT_TRUE(pal_.bind(p, size, 0, NumaPolicy::kFirstTouch));
  // First touch ignores the node argument.
  EXPECT_TRUE(pal_.bind(p, size, 12345, NumaPolicy::kFirstTouch));
  std::memset(p, 1, size);
  EXPECT_TRUE(all_bytes_are(p, size, 1));
  ASSERT_TRUE(pal_.release(p, size));
}

TEST_F(LinuxPalTest, BindPreferredAndBindAreUsableEvenWhereRefused) {
  // A container may forbid mbind (EPERM): the contract only promises that
  // the memory stays usable, so check that, and success where allowed.
  const std::size_t size = 4 * page_;
  auto* p = static_cast<char*>(pal_.reserve(size, page_));
  ASSERT_NE(p, nullptr);
  for (NumaPolicy policy : {NumaPolicy::kPreferred, NumaPolicy::kBind}) {
    errno = 0;
    const bool bound = pal_.bind(p, size, 0, policy);
    if (!bound) {
      EXPECT_TRUE(errno == EPERM || errno == ENOSYS) << errno;
    }
  }
  std::memset(p, 2, size);
  EXPECT_TRUE(all_bytes_are(p, size, 2));
  ASSERT_TRUE(pal_.bind(p, size, 0, NumaPolicy::kFirstTouch));
  ASSERT_TRUE(pal_.release(p, size));
}

TEST_F(LinuxPalTest, BindRejectsNodesOutsideTheMaskWithEINVAL) {
  auto* p = static_cast<char*>(pal_.reserve(page_, page_));
  ASSERT_NE(p, nullptr);
  for (int node : {-1, static_cast<int>(Topology::kMaxNodes)}) {
    errno = 0;
    EXPECT_FALSE(pal_.bind(p, page_, node, NumaPolicy::kBind));
    EXPECT_EQ(errno, EINVAL);
  }
  ASSERT_TRUE(pal_.release(p, page_));
}

TEST_F(LinuxPalTest, TopologyAndCurrentNodeAreConsistent) {
  const Topology& topology = pal_.topology();
  EXPECT_GE(topology.node_count, 1u);
  EXPECT_GE(topology.cpu_count, 1u);
  for (int i = 0; i < 100; ++i) {
    const int node = pal_.current_node();
    EXPECT_GE(node, 0);
    EXPECT_LT(static_cast<unsigned>(node), topology.node_count);
  }
}

TEST(DefaultPal, IsLinuxPalOnLinux) {
  static_assert(std::is_same_v<DefaultPal, LinuxPal>);
  static_assert(Pal<DefaultPal>);
}

TEST(LinuxPalClock, IsMonotonicAndCountsMilliseconds) {
  LinuxPal pal;
  const std::uint64_t before = pal.now_ms();
  EXPECT_GT(before, 0u);
  // The coarse clock moves at each timer tick (1 to 10 ms): 50 ms of sleep
  // moves it at least 40 ms, whatever the tick, and a busy machine only
  // makes the sleep longer.
  ::usleep(50 * 1000);
  const std::uint64_t after = pal.now_ms();
  EXPECT_GE(after, before + 40);
}

}  // namespace
}  // namespace hpcalloc

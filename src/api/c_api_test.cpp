// The prefixed C API (hpcalloc.h) in a process whose malloc is glibc's: every
// argument check, return code and errno is compared with what glibc itself
// answers to the same call, so these tests check hpcalloc against the
// reference it claims to mirror (and fail loudly if that reference changes).
// The rest is functional: alignment, usable sizes, zeroing, contents kept by
// realloc, statistics, frees from another thread.
#include "api/c_api_test_support.h"

namespace {

using namespace c_api_test;

TEST(CApi, VersionIsMajorMinorPatch) {
  const std::string version = hpc_version();
  EXPECT_EQ(std::count(version.begin(), version.end(), '.'), 2) << version;
}

TEST(CApi, EverySmallSizeIs16ByteAlignedWithEnoughUsableBytes) {
  std::vector<void*> blocks;
  for (std::size_t n = 0; n <= 4096; ++n) {
    void* p = hpc_malloc(n);
    ASSERT_NE(p, nullptr) << n;
    EXPECT_TRUE(aligned_to(p, 16)) << n;
    EXPECT_GE(hpc_malloc_usable_size(p), n) << n;
    std::memset(p, 0xa5, n);
    blocks.push_back(p);
  }
  EXPECT_EQ(std::set<void*>(blocks.begin(), blocks.end()).size(), blocks.size());
  for (void* p : blocks) hpc_free(p);
}

TEST(CApi, LargeSizesAreAlignedWithEnoughUsableBytes) {
  for (std::size_t n : {std::size_t{8191}, std::size_t{65536}, std::size_t{1} << 20,
                        (std::size_t{1} << 20) + 1, std::size_t{3} << 20, std::size_t{64} << 20}) {
    void* p = hpc_malloc(n);
    ASSERT_NE(p, nullptr) << n;
    EXPECT_TRUE(aligned_to(p, 16)) << n;
    EXPECT_GE(hpc_malloc_usable_size(p), n) << n;
    static_cast<char*>(p)[0] = 1;
    static_cast<char*>(p)[n - 1] = 1;
    hpc_free(p);
  }
}

TEST(CApi, MallocZeroGivesDistinctBlocks) {
  std::vector<void*> blocks;
  for (int i = 0; i < 100; ++i) {
    blocks.push_back(hpc_malloc(0));
    ASSERT_NE(blocks.back(), nullptr);
  }
  EXPECT_EQ(std::set<void*>(blocks.begin(), blocks.end()).size(), blocks.size());
  for (void* p : blocks) hpc_free(p);
}

TEST(CApi, ImpossibleMallocFailsLikeGlibc) {
  for (std::size_t n : kImpossibleSizes) {
    const Result ours = call([&] { return hpc_malloc(opaque(n)); });
    const Result glibc = call([&] { return glibc_ref.malloc(opaque(n)); });
    expect_same_outcome(ours, glibc, describe("malloc", n, 0));
    EXPECT_EQ(ours.p, nullptr);
    EXPECT_EQ(ours.error, ENOMEM);
  }
}

TEST(CApi, CallocZeroesReusedMemory) {
  for (std::size_t n : {std::size_t{1}, std::size_t{100}, std::size_t{4000}, std::size_t{70000},
                        std::size_t{2} << 20}) {
    // Dirty blocks of the size first, so calloc is likely to get one back.
    std::vector<void*> dirty;
    for (int i = 0; i < 8; ++i) {
      dirty.push_back(hpc_malloc(n));
      ASSERT_NE(dirty.back(), nullptr);
      std::memset(dirty.back(), 0xff, n);
    }
    for (void* p : dirty) hpc_free(p);
    for (int i = 0; i < 8; ++i) {
      auto* p = static_cast<unsigned char*>(i % 2 == 0 ? hpc_calloc(1, n) : hpc_calloc(n, 1));
      ASSERT_NE(p, nullptr);
      for (std::size_t j = 0; j < n; ++j) ASSERT_EQ(p[j], 0) << n << " byte " << j;
      hpc_free(p);
    }
  }
}

TEST(CApi, CallocOverflowAndEdgeCasesMatchGlibc) {
  const std::pair<std::size_t, std::size_t> cases[] = {
      {kSizeMax, 2}, {2, kSizeMax},       {std::size_t{1} << 32, std::size_t{1} << 32},
      {1, kSizeMax}, {kPtrdiffMax, 1},    {2, kSizeMax / 2 + 1},
      {0, kSizeMax}, {kSizeMax, 0},       {0, 0},
      {3, 5},        {kPtrdiffMax / 2, 3}};
  for (auto [count, size] : cases) {
    const Result ours = call([&] { return hpc_calloc(opaque(count), opaque(size)); });
    const Result glibc = call([&] { return glibc_ref.calloc(opaque(count), opaque(size)); });
    expect_same_outcome(ours, glibc, describe("calloc", count, size));
    hpc_free(ours.p);
    glibc_ref.free(glibc.p);
  }
}

TEST(CApi, ReallocKeepsContentsThroughEverySizeRange) {
  const std::size_t sizes[] = {1,       7,       16,    100,  1000, 5000, 70000, 1 << 20,  3 << 20,
                               9 << 20, 3 << 20, 70000, 1000, 16,   1,    5000,  12 << 20, 24};
  std::size_t old_size = 0;
  void* p = hpc_realloc(nullptr, 0);
  ASSERT_NE(p, nullptr);
  for (std::size_t n : sizes) {
    void* q = hpc_realloc(p, n);
    ASSERT_NE(q, nullptr) << n;
    EXPECT_TRUE(aligned_to(q, 16)) << n;
    EXPECT_GE(hpc_malloc_usable_size(q), n);
    EXPECT_TRUE(has_pattern(q, std::min(old_size, n))) << old_size << " -> " << n;
    fill_pattern(q, n);
    p = q;
    old_size = n;
  }
  hpc_free(p);
}

TEST(CApi, ReallocEdgeCasesMatchGlibc) {
  // realloc(NULL, n) is malloc(n).
  for (std::size_t n : {std::size_t{0}, std::size_t{100}, kSizeMax}) {
    const Result ours = call([&] { return hpc_realloc(nullptr, opaque(n)); });
    const Result glibc = call([&] { return glibc_ref.realloc(nullptr, opaque(n)); });
    expect_same_outcome(ours, glibc, describe("realloc(NULL)", n, 0));
    hpc_free(ours.p);
    glibc_ref.free(glibc.p);
  }
  // realloc(p, 0) frees p and returns NULL, errno untouched.
  {
    void* ours_block = hpc_malloc(100);
    void* glibc_block = glibc_ref.malloc(100);
    const Result ours = call([&] { return hpc_realloc(ours_block, opaque(0)); });
    const Result glibc = call([&] { return glibc_ref.realloc(glibc_block, opaque(0)); });
    EXPECT_EQ(ours.p, nullptr);
    EXPECT_EQ(glibc.p, nullptr);
    EXPECT_EQ(ours.error, glibc.error);
    EXPECT_EQ(ours.error, 0);
  }
  // A failed realloc leaves the block as it was.
  for (std::size_t n : kImpossibleSizes) {
    for (std::size_t old_size : {std::size_t{100}, std::size_t{4} << 20}) {
      void* ours_block = hpc_malloc(old_size);
      void* glibc_block = glibc_ref.malloc(old_size);
      fill_pattern(ours_block, old_size);
      const Result ours = call([&] { return hpc_realloc(ours_block, opaque(n)); });
      const Result glibc = call([&] { return glibc_ref.realloc(glibc_block, opaque(n)); });
      expect_same_outcome(ours, glibc, describe("realloc", old_size, n));
      EXPECT_EQ(ours.p, nullptr);
      EXPECT_TRUE(has_pattern(ours_block, old_size));
      hpc_free(ours_block);
      glibc_ref.free(glibc_block);
    }
  }
}

TEST(CApi, ReallocarrayMatchesGlibc) {
  const std::pair<std::size_t, std::size_t> overflowing[] = {
      {kSizeMax, 2}, {std::size_t{1} << 33, std::size_t{1} << 31}, {3, kSizeMax / 2}};
  for (auto [count, size] : overflowing) {
    void* ours_block = hpc_malloc(32);
    void* glibc_block = glibc_ref.malloc(32);
    fill_pattern(ours_block, 32);
    const Result ours = call([&] { return hpc_reallocarray(ours_block, count, size); });
    const Result glibc = call([&] { return glibc_ref.reallocarray(glibc_block, count, size); });
    expect_same_outcome(ours, glibc, describe("reallocarray", count, size));
    EXPECT_EQ(ours.error, ENOMEM);
    EXPECT_TRUE(has_pattern(ours_block, 32));
    hpc_free(ours_block);
    glibc_ref.free(glibc_block);
  }
  void* p = hpc_reallocarray(nullptr, 4, 8);
  ASSERT_NE(p, nullptr);
  fill_pattern(p, 32);
  p = hpc_reallocarray(p, 1000, 8);
  ASSERT_NE(p, nullptr);
  EXPECT_GE(hpc_malloc_usable_size(p), 8000u);
  EXPECT_TRUE(has_pattern(p, 32));
  errno = 0;
  EXPECT_EQ(hpc_reallocarray(p, 0, 8), nullptr);  // realloc(p, 0): freed
  EXPECT_EQ(errno, 0);
}

// Alignments around every boundary glibc's memalign treats specially.
constexpr std::size_t kMiB = std::size_t{1} << 20;
constexpr std::size_t kLargestPow2 = kSizeMax / 2 + 1;
const std::size_t kSmallAlignments[] = {0,  1,  2,  3,  7,  8,   15,  16,   17,   24,   31,
                                        32, 33, 48, 63, 64, 100, 128, 1000, 4096, 4097, 65536};
const std::size_t kLargeAlignments[] = {
    kMiB, kMiB + 1, kLargestPow2 >> 1, kLargestPow2, kLargestPow2 + 1, kSizeMax - 1, kSizeMax};
std::vector<std::size_t> all_alignments() {
  std::vector<std::size_t> all(std::begin(kSmallAlignments), std::end(kSmallAlignments));
  all.insert(all.end(), std::begin(kLargeAlignments), std::end(kLargeAlignments));
  return all;
}
const std::size_t kAlignedSizes[] = {0, 1, 24, 100, 4096, 70000, kPtrdiffMax, kSizeMax};

template <class Ours, class Glibc>
void expect_memalign_like_glibc(const char* name, Ours ours_fn, Glibc glibc_fn) {
  for (std::size_t alignment : all_alignments()) {
    for (std::size_t size : kAlignedSizes) {
      const std::string what = describe(name, alignment, size);
      const Result ours = call([&] { return ours_fn(opaque(alignment), opaque(size)); });
      const Result glibc = call([&] { return glibc_fn(opaque(alignment), opaque(size)); });
      expect_same_outcome(ours, glibc, what);
      if (ours.p != nullptr) {
        EXPECT_TRUE(aligned_to(ours.p, effective_alignment(alignment))) << what;
        EXPECT_GE(hpc_malloc_usable_size(ours.p), size) << what;
        std::memset(ours.p, 0x5a, size);
      }
      if (glibc.p != nullptr) {  // the reference agrees with our reading of it
        EXPECT_TRUE(aligned_to(glibc.p, effective_alignment(alignment))) << what;
      }
      hpc_free(ours.p);
      glibc_ref.free(glibc.p);
    }
  }
}

TEST(CApi, MemalignMatchesGlibc) {
  expect_memalign_like_glibc(
      "memalign", [](std::size_t a, std::size_t n) { return hpc_memalign(a, n); },
      [](std::size_t a, std::size_t n) { return glibc_ref.memalign(a, n); });
}

// glibc 2.36 exports aligned_alloc as an alias of memalign.
TEST(CApi, AlignedAllocMatchesGlibc) {
  expect_memalign_like_glibc(
      "aligned_alloc", [](std::size_t a, std::size_t n) { return hpc_aligned_alloc(a, n); },
      [](std::size_t a, std::size_t n) { return glibc_ref.aligned_alloc(a, n); });
}

TEST(CApi, AlignmentsUpTo1GiB) {
  for (unsigned shift = 4; shift <= 30; ++shift) {
    const std::size_t alignment = std::size_t{1} << shift;
    for (std::size_t size : {std::size_t{1}, std::size_t{100}, std::size_t{5000}, alignment}) {
      void* p = hpc_memalign(alignment, size);
      ASSERT_NE(p, nullptr) << alignment << " " << size;
      EXPECT_TRUE(aligned_to(p, alignment)) << alignment << " " << size;
      EXPECT_GE(hpc_malloc_usable_size(p), size);
      static_cast<char*>(p)[0] = 1;
      static_cast<char*>(p)[size - 1] = 1;
      hpc_free(p);

      void* q = nullptr;
      ASSERT_EQ(hpc_posix_memalign(&q, alignment, size), 0);
      EXPECT_TRUE(aligned_to(q, alignment));
      hpc_free_aligned_sized(q, alignment, size);
    }
  }
}

TEST(CApi, PosixMemalignMatchesGlibcAndLeavesResultOnFailure) {
  const std::size_t small[] = {0, 1, 2, 4, 8, 12, 16, 24, 32, 48, 64, 4096};
  const std::size_t large[] = {kMiB, kMiB + 8, kLargestPow2, kSizeMax - 7, kSizeMax};
  std::vector<std::size_t> alignments(std::begin(small), std::end(small));
  alignments.insert(alignments.end(), std::begin(large), std::end(large));
  void* const untouched = reinterpret_cast<void*>(std::uintptr_t{0x1234});
  for (std::size_t alignment : alignments) {
    for (std::size_t size : kAlignedSizes) {
      const std::string what = describe("posix_memalign", alignment, size);
      void* ours = untouched;
      void* glibc = untouched;
      errno = 0;
      const int ours_rc = hpc_posix_memalign(&ours, opaque(alignment), opaque(size));
      const int ours_errno = errno;
      errno = 0;
      const int glibc_rc = glibc_ref.posix_memalign(&glibc, opaque(alignment), opaque(size));
      const int glibc_errno = errno;
      EXPECT_EQ(ours_rc, glibc_rc) << what;
      EXPECT_EQ(ours_errno, glibc_errno) << what;
      if (ours_rc != 0) {
        EXPECT_EQ(ours, untouched) << what;
      } else {
        EXPECT_TRUE(aligned_to(ours, alignment)) << what;
        EXPECT_GE(hpc_malloc_usable_size(ours), size) << what;
        hpc_free(ours);
      }
      if (glibc_rc == 0) glibc_ref.free(glibc);
    }
  }
}

TEST(CApi, VallocGivesPageAlignedBlocks) {
  const std::size_t page = page_size();
  for (std::size_t n :
       {std::size_t{0}, std::size_t{1}, std::size_t{100}, page, page + 1, std::size_t{3} << 20}) {
    void* p = hpc_valloc(n);
    ASSERT_NE(p, nullptr) << n;
    EXPECT_TRUE(aligned_to(p, page)) << n;
    EXPECT_GE(hpc_malloc_usable_size(p), n);
    hpc_free(p);
  }
}

TEST(CApi, PvallocRoundsUpToWholePages) {
  const std::size_t page = page_size();
  for (std::size_t n :
       {std::size_t{0}, std::size_t{1}, std::size_t{100}, page, page + 1, std::size_t{3} << 20}) {
    void* p = hpc_pvalloc(n);
    ASSERT_NE(p, nullptr) << n;
    EXPECT_TRUE(aligned_to(p, page)) << n;
    const std::size_t whole_pages = n == 0 ? page : (n + page - 1) / page * page;
    EXPECT_GE(hpc_malloc_usable_size(p), whole_pages) << n;
    std::memset(p, 1, whole_pages);
    hpc_free(p);
  }
}

TEST(CApi, VallocAndPvallocOverflowMatchGlibc) {
  const std::size_t page = page_size();
  for (std::size_t n : {kSizeMax, kSizeMax - page + 2, kSizeMax - page + 1, kSizeMax - 2 * page,
                        kPtrdiffMax, kPtrdiffMax + 1}) {
    expect_same_outcome(call([&] { return hpc_pvalloc(opaque(n)); }),
                        call([&] { return glibc_ref.pvalloc(opaque(n)); }),
                        describe("pvalloc", n, 0));
    expect_same_outcome(call([&] { return hpc_valloc(opaque(n)); }),
                        call([&] { return glibc_ref.valloc(opaque(n)); }),
                        describe("valloc", n, 0));
  }
}

TEST(CApi, FreeOfNullAndUsableSizeOfNull) {
  errno = 1234;
  hpc_free(nullptr);
  hpc_free_sized(nullptr, 10);
  hpc_free_aligned_sized(nullptr, 64, 10);
  EXPECT_EQ(errno, 1234);
  EXPECT_EQ(hpc_malloc_usable_size(nullptr), glibc_ref.malloc_usable_size(nullptr));
  EXPECT_EQ(hpc_malloc_usable_size(nullptr), 0u);
}

// glibc's free keeps errno (since 2.33, and POSIX now asks it), even when it
// unmaps.
TEST(CApi, FreeKeepsErrno) {
  for (std::size_t n : {std::size_t{16}, std::size_t{5000}, std::size_t{1} << 20,
                        std::size_t{8} << 20, std::size_t{64} << 20}) {
    void* p = hpc_malloc(n);
    ASSERT_NE(p, nullptr);
    errno = 1234;
    hpc_free(p);
    EXPECT_EQ(errno, 1234) << n;
    void* q = glibc_ref.malloc(n);
    errno = 1234;
    glibc_ref.free(q);
    EXPECT_EQ(errno, 1234) << "glibc " << n;
  }
}

TEST(CApi, SizedFreesReleaseBlocks) {
  for (std::size_t n :
       {std::size_t{0}, std::size_t{100}, std::size_t{5000}, std::size_t{4} << 20}) {
    hpc_free_sized(hpc_malloc(n), n);
    hpc_free_sized(hpc_calloc(1, n), n);
    for (std::size_t alignment : {std::size_t{8}, std::size_t{64}, std::size_t{4096}}) {
      hpc_free_aligned_sized(hpc_aligned_alloc(alignment, n), alignment, n);
    }
  }
}

TEST(CApiDeathTest, CheckedBuildReportsWrongSizedFree) {
  if (!hpcalloc::kChecked) GTEST_SKIP() << "sizes are only checked in the checked build";
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  unsetenv("HPCALLOC_ON_ERROR");  // "warn" would keep the process alive
  EXPECT_DEATH(
      {
        void* p = hpc_malloc(100);
        hpc_free_sized(p, hpc_malloc_usable_size(p) + 1);
      },
      "free_sized\\(\\)");
  EXPECT_DEATH(
      {
        // A block that is not 4096-aligned, freed as if it were.
        void* p = hpc_malloc(32);
        while (aligned_to(p, 4096)) p = hpc_malloc(32);
        hpc_free_aligned_sized(p, 4096, 32);
      },
      "free_aligned_sized\\(\\)");
}

}  // namespace

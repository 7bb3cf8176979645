// The guard page below every huge block, through the public API: an
// underflow faults at once instead of overwriting the block's header, and a
// program that maps its own page there (glibc's tst-free-errno does) can
// still free the block, errno untouched.
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdlib>

#include "api/hpcalloc.h"

namespace {

constexpr std::size_t kHuge = std::size_t{4} << 20;

TEST(HugeGuardDeathTest, AnUnderflowFaultsInsteadOfCorruptingTheHeader) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(
      {
        auto* volatile p = static_cast<char*>(hpc_malloc(kHuge));
        p[-1] = 1;  // the page below the block
        hpc_free(p);
        std::exit(0);  // not reached: the write faults
      },
      "");
}

TEST(HugeGuard, AProgramsOwnPageBelowTheBlockDoesNotBreakItsFree) {
  const auto page = static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
  for (int round = 0; round < 3; ++round) {
    auto* p = static_cast<char*>(hpc_malloc(kHuge));
    ASSERT_NE(p, nullptr);
    void* below = mmap(p - page, page, PROT_READ | PROT_WRITE,
                       MAP_FIXED | MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    ASSERT_EQ(below, static_cast<void*>(p - page));
    static_cast<char*>(below)[0] = 1;
    p[0] = 2;
    p[kHuge - 1] = 3;
    errno = 1234;
    hpc_free(p);
    EXPECT_EQ(errno, 1234);
    std::size_t errors = 0;
    ASSERT_EQ(hpc_stat("errors_reported", &errors), 0);
    EXPECT_EQ(errors, 0u);
  }
  // The heap still serves every size.
  for (std::size_t size : {std::size_t{64}, std::size_t{5000}, kHuge}) {
    void* q = hpc_malloc(size);
    ASSERT_NE(q, nullptr);
    static_cast<char*>(q)[size - 1] = 1;
    hpc_free(q);
  }
}

}  // namespace

// A double free through the public API ends the process with one line on
// stderr, in the default build (abort mode), at every size family and
// whether the second free comes from the owning thread or another one. The
// mem-layer tests call deallocate() with a recording reporter; these go
// through hpc_free's fast path and the process-wide reporter, which is what
// a program meets.
#include <gtest/gtest.h>

#include <cstddef>
#include <cstdlib>
#include <thread>

#include "api/hpcalloc.h"

namespace {

// Small (several classes), medium (cached and listed) and huge blocks.
const std::size_t kSizes[] = {16, 32, 256, 1024, 4096, 100 << 10, std::size_t{4} << 20};

// What hpcalloc prints: a huge block's mapping may be unmapped at its first
// free, so its second free can only be "not allocated by hpcalloc".
const char* message_for(std::size_t size) {
  if (size > (std::size_t{1} << 20)) {
    return "hpcalloc: fatal: free\\(\\): (double free|pointer not allocated)";
  }
  return "hpcalloc: fatal: free\\(\\): double free of";
}

// Frees p on a thread of its own, whose trim pushes the free to p's owner;
// the owner's next hpc_malloc_trim(0) takes it back.
void free_on_another_thread(void* p) {
  std::thread([p] {
    hpc_free(p);
    hpc_malloc_trim(0);
  }).join();
}

class DoubleFreeDeathTest : public testing::TestWithParam<std::size_t> {
 protected:
  void SetUp() override {
    GTEST_FLAG_SET(death_test_style, "threadsafe");
    unsetenv("HPCALLOC_ON_ERROR");  // "warn" would keep the process alive
  }
};

TEST_P(DoubleFreeDeathTest, AtOnce) {
  const std::size_t size = GetParam();
  EXPECT_DEATH(
      {
        void* p = hpc_malloc(size);
        hpc_free(p);
        hpc_free(p);
      },
      message_for(size));
}

TEST_P(DoubleFreeDeathTest, WithOtherBlocksFreedBetween) {
  const std::size_t size = GetParam();
  EXPECT_DEATH(
      {
        void* p = hpc_malloc(size);
        void* q = hpc_malloc(size);
        void* keep = hpc_malloc(size);  // keeps p's run or segment alive
        hpc_free(p);
        hpc_free(q);
        hpc_free(p);
        hpc_free(keep);
      },
      message_for(size));
}

// Another thread frees the block, then its owner frees it again.
TEST_P(DoubleFreeDeathTest, OnAnotherThreadThenHere) {
  const std::size_t size = GetParam();
  EXPECT_DEATH(
      {
        void* p = hpc_malloc(size);
        void* keep = hpc_malloc(size);
        free_on_another_thread(p);
        hpc_malloc_trim(0);  // the owner takes it back
        hpc_free(p);
        hpc_free(keep);
      },
      message_for(size));
}

// The owner frees the block, then another thread frees it again: reported
// when the owner drains the second free.
TEST_P(DoubleFreeDeathTest, HereThenOnAnotherThread) {
  const std::size_t size = GetParam();
  EXPECT_DEATH(
      {
        void* p = hpc_malloc(size);
        void* keep = hpc_malloc(size);
        hpc_free(p);
        free_on_another_thread(p);
        hpc_malloc_trim(0);  // the owner drains the second free
        hpc_free(keep);
      },
      message_for(size));
}

INSTANTIATE_TEST_SUITE_P(EverySizeFamily, DoubleFreeDeathTest, testing::ValuesIn(kSizes));

}  // namespace

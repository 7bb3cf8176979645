// could_be_glibc_block: what the preload library forwards to glibc and what
// it reports itself. In this test binary malloc is glibc's, so its blocks
// are the real thing.
#include "api/foreign_pointers.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <cstdlib>
#include <thread>

#include "base/sanitizer.h"

namespace hpcalloc {
namespace {

alignas(16) char g_global[64];
alignas(16) const char g_constant[64] = "in the image";

TEST(ForeignPointers, GlibcBlocksOfEverySizeAreForwarded) {
  for (std::size_t size : {1, 24, 1000, 200000, 4000000}) {
    void* p = std::malloc(size);
    EXPECT_TRUE(could_be_glibc_block(p)) << size;
    std::free(p);
  }
}

TEST(ForeignPointers, WhatNoMallocReturnsIsNot) {
  EXPECT_FALSE(could_be_glibc_block(reinterpret_cast<void*>(1)));
  EXPECT_FALSE(could_be_glibc_block(reinterpret_cast<void*>(4080)));  // first page
  void* p = std::malloc(100);
  EXPECT_FALSE(could_be_glibc_block(static_cast<char*>(p) + 8));  // misaligned
  std::free(p);
  EXPECT_FALSE(could_be_glibc_block(g_global));
  EXPECT_FALSE(could_be_glibc_block(g_constant));
  EXPECT_FALSE(could_be_glibc_block(reinterpret_cast<void*>(&std::free)));  // libc's text
  alignas(16) char local[32] = {};
  // ASan's stack-use-after-return mode puts locals on a fake stack of its
  // own, off the thread's stack.
  if (!kAddressSanitizer) EXPECT_FALSE(could_be_glibc_block(local));
}

TEST(ForeignPointers, AnotherThreadsStackToo) {
  std::thread([] {
    alignas(16) char local[32] = {};
    if (!kAddressSanitizer) EXPECT_FALSE(could_be_glibc_block(local));
  }).join();
}

}  // namespace
}  // namespace hpcalloc

// The secure flavour's own promises (mem/hardening.h), through the prefixed
// API of hpcalloc_secure_static: every overflow of a small block, however
// small, is reported at its free; every write into a freed small block is
// reported before the block is handed out again; a freed block is not
// reused at once, and freeing it twice while it waits is reported; slots
// come in random order; linear overflows out of a run or a medium segment
// fault at a guard page. (misuse_death_test.cpp and the other api tests run
// against this flavour too.)
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <csignal>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string_view>

#include "api/hpcalloc.h"
#include "base/sanitizer.h"

namespace {

constexpr std::size_t kRunSize = std::size_t{64} << 10;
constexpr std::size_t kSegmentSize = std::size_t{2} << 20;
constexpr std::size_t kPage = 4096;
// Frees that push a block out of the quarantine (256 blocks).
constexpr int kQuarantineFlush = 300;

// How a process that wrote into a guard page ends: killed by SIGSEGV, or
// under ASan, whose handler reports the fault, exit status 1.
bool faulted(int status) {
  if (WIFSIGNALED(status)) return WTERMSIG(status) == SIGSEGV;
  return hpcalloc::kAddressSanitizer && WIFEXITED(status) && WEXITSTATUS(status) == 1;
}

void write_bytes(void* at, int value, std::size_t n) {
  hpcalloc::unpoison_memory(at, n);
  std::memset(at, value, n);
}

// Changes the byte at `at` (whatever it holds: a marker byte may already
// equal any one value).
void flip_byte(unsigned char* at) {
  hpcalloc::unpoison_memory(at, 1);
  *at ^= 0x5a;
}

// Frees kQuarantineFlush fresh 32-byte blocks: whatever was quarantined
// before leaves the quarantine.
void push_out_of_quarantine() {
  void* blocks[kQuarantineFlush];
  for (void*& b : blocks) b = hpc_malloc(32);
  for (void* b : blocks) hpc_free(b);
}

class SecureFlavourDeathTest : public testing::Test {
 protected:
  void SetUp() override {
    GTEST_FLAG_SET(death_test_style, "threadsafe");
    unsetenv("HPCALLOC_ON_ERROR");
  }
};

TEST(SecureFlavour, IsTheSecureFlavour) { EXPECT_STREQ(hpc_flavour(), "secure"); }

// Every byte malloc_usable_size promises is the user's: it is the size
// asked for, so a program that writes up to it never touches the seal.
TEST(SecureFlavour, UsableSizeIsTheRequestedSize) {
  for (std::size_t n = 1; n <= 1016; ++n) {
    void* p = hpc_malloc(n);
    ASSERT_EQ(hpc_malloc_usable_size(p), n);
    std::memset(p, 0x5a, n);
    hpc_free(p);  // no report: the seal is intact
  }
  void* p = hpc_malloc(0);
  EXPECT_EQ(hpc_malloc_usable_size(p), 1u);
  hpc_free(p);
}

TEST(SecureFlavour, AnInPlaceReallocReseals) {
  auto* p = static_cast<unsigned char*>(hpc_malloc(40));
  std::memset(p, 1, 40);
  auto* q = static_cast<unsigned char*>(hpc_realloc(p, 24));
  ASSERT_EQ(q, p);  // shrunk in place
  EXPECT_EQ(hpc_malloc_usable_size(q), 24u);
  for (int i = 0; i < 24; ++i) ASSERT_EQ(q[i], 1);
  hpc_free(q);  // the seal is the new size's: no report
}

TEST(SecureFlavour, AFreedBlockIsNotReusedAtOnce) {
  void* p = hpc_malloc(64);
  hpc_free(p);
  for (int i = 0; i < 100; ++i) {
    void* q = hpc_malloc(64);
    EXPECT_NE(q, p);
    hpc_free(q);
  }
}

TEST(SecureFlavour, SlotsComeInRandomOrder) {
  // The default flavour hands a fresh run's slots out in address order:
  // nearly every block follows the one before.
  constexpr int kBlocks = 64;
  void* blocks[kBlocks];
  for (void*& b : blocks) b = hpc_malloc(200);
  int in_sequence = 0;
  for (int i = 1; i < kBlocks; ++i) {
    const auto gap = reinterpret_cast<std::uintptr_t>(blocks[i]) -
                     reinterpret_cast<std::uintptr_t>(blocks[i - 1]);
    in_sequence += gap == 208 || gap == 224 || gap == 256;
  }
  EXPECT_LT(in_sequence, kBlocks / 4);
  for (void* b : blocks) hpc_free(b);
}

// ---- Overflows -------------------------------------------------------------

// The case, in full: a 32 B block overflowed by any of 1 to 64
// bytes is reported when it is freed.
TEST_F(SecureFlavourDeathTest, EveryOverflowOfASmallBlockIsReportedAtItsFree) {
  for (std::size_t overflow = 1; overflow <= 64; ++overflow) {
    EXPECT_DEATH(
        {
          auto* p = static_cast<unsigned char*>(hpc_malloc(32));
          write_bytes(p + 32, 0x41, overflow);
          hpc_free(p);
        },
        "hpcalloc: fatal: free\\(\\): write past the end of block 0x")
        << overflow;
  }
}

TEST_F(SecureFlavourDeathTest, AnOverflowByOneIsReportedAtEverySmallSize) {
  for (std::size_t size : {1, 7, 8, 9, 15, 16, 24, 100, 500, 1000, 1016}) {
    EXPECT_DEATH(
        {
          auto* p = static_cast<unsigned char*>(hpc_malloc(size));
          write_bytes(p + size, 0, 1);  // even a zero byte changes the padding
          hpc_free(p);
        },
        "hpcalloc: fatal: free\\(\\): write past the end of block 0x")
        << size;
  }
}

TEST_F(SecureFlavourDeathTest, AnOverflowIsReportedByReallocAndUsableSizeToo) {
  EXPECT_DEATH(
      {
        auto* p = static_cast<unsigned char*>(hpc_malloc(50));
        write_bytes(p + 50, 0x41, 1);
        hpc_realloc(p, 500);
      },
      "hpcalloc: fatal: realloc\\(\\): write past the end of block 0x");
  EXPECT_DEATH(
      {
        auto* p = static_cast<unsigned char*>(hpc_malloc(50));
        write_bytes(p + 50, 0x41, 1);
        hpc_malloc_usable_size(p);
      },
      "hpcalloc: fatal: malloc_usable_size\\(\\): write past the end of block 0x");
}

// ---- Writes into freed blocks ------------------------------------------------

// Any byte of a freed block, written while it is quarantined, is found
// when it leaves the quarantine (the block is then never handed out).
TEST_F(SecureFlavourDeathTest, AWriteIntoAQuarantinedBlockIsFoundAtAnyOffset) {
  for (std::size_t offset : {0, 8, 16, 24, 40, 47}) {
    EXPECT_DEATH(
        {
          auto* p = static_cast<unsigned char*>(hpc_malloc(40));  // a 48-byte slot
          hpc_free(p);
          flip_byte(p + offset);
          push_out_of_quarantine();
        },
        "hpcalloc: fatal: free\\(\\): write into freed block 0x")
        << offset;
  }
}

// A block that has left the quarantine waits in its cache, zeroed: a write
// into it then is found when malloc hands it out again.
TEST_F(SecureFlavourDeathTest, AWriteIntoACachedBlockIsFoundWhenItIsHandedOut) {
  EXPECT_DEATH(
      {
        auto* p = static_cast<unsigned char*>(hpc_malloc(32));
        hpc_free(p);
        push_out_of_quarantine();
        write_bytes(p + 24, 0x41, 1);
        for (int i = 0; i < 4096; ++i) hpc_malloc(32);
      },
      "hpcalloc: fatal: malloc\\(\\): write into freed block 0x");
}

// ---- Double frees ------------------------------------------------------------

TEST_F(SecureFlavourDeathTest, ASecondFreeWhileQuarantinedIsReported) {
  EXPECT_DEATH(
      {
        void* p = hpc_malloc(32);
        hpc_free(p);
        hpc_free(p);
      },
      "hpcalloc: fatal: free\\(\\): double free of 0x");
}

TEST_F(SecureFlavourDeathTest, ASecondFreeAfterTheQuarantineIsReported) {
  EXPECT_DEATH(
      {
        void* p = hpc_malloc(32);
        hpc_free(p);
        push_out_of_quarantine();
        hpc_free(p);
      },
      "hpcalloc: fatal: free\\(\\): double free of 0x");
}

// ---- Guard pages -------------------------------------------------------------

// A linear overflow off the end of a run faults at the run's guard page
// instead of running into the next run.
TEST_F(SecureFlavourDeathTest, AnOverflowOffTheEndOfARunFaults) {
  EXPECT_EXIT(
      {
        // 1000 bytes and the canary fill a 1 KiB slot: the last slot of a
        // run ends at its guard page.
        for (int i = 0; i < 1000; ++i) {
          auto* p = static_cast<unsigned char*>(hpc_malloc(1000));
          const auto end = reinterpret_cast<std::uintptr_t>(p) + 1024;
          if (end % kRunSize == kRunSize - kPage) {
            write_bytes(p, 0x41, 1024 + 1);  // one byte past the slot
            std::_Exit(0);                   // not reached
          }
        }
        std::_Exit(3);  // no slot ended at a guard
      },
      faulted, "");
}

// A linear overflow off the end of a medium segment faults at its guard page
// instead of reaching the next segment's header.
TEST_F(SecureFlavourDeathTest, AnOverflowOffTheEndOfAMediumSegmentFaults) {
  EXPECT_EXIT(
      {
        auto* p = static_cast<unsigned char*>(hpc_malloc(200 << 10));
        const auto at = reinterpret_cast<std::uintptr_t>(p);
        const std::uintptr_t segment_end = (at / kSegmentSize + 1) * kSegmentSize;
        write_bytes(p, 0x41, segment_end - at);
        std::_Exit(0);  // not reached
      },
      faulted, "");
}

}  // namespace

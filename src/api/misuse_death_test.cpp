// Misuse other than a double free (double_free_death_test.cpp has those)
// ends the process with one line naming the call the program made, in the
// default build (abort mode), before any corrupted link is followed or any
// block is handed out twice: realloc and malloc_usable_size of a freed
// block, writes into freed blocks (use after free), overflows into a
// neighbour, and forged headers. Each case is one the hardening issue found
// silent or crashing; the line each must print is the one a user would see.
//
// Built twice, against each flavour (src/CMakeLists.txt): the secure one
// catches the same cases, some at another call (a freed small block waits in
// its quarantine, so a write into it is found when it leaves; an overflow
// is found at the overflowing block's own free, by its canary).
//
// The corrupting writes go through write_freed(), which first clears ASan's
// poison (the asan build would otherwise stop at the write itself, which is
// its job, not hpcalloc's): what is tested is hpcalloc's own check.
#include <gtest/gtest.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string_view>

#include "api/hpcalloc.h"
#include "base/sanitizer.h"

namespace {

// What a forged link points at: memory that is not the heap's.
alignas(64) unsigned char g_target[256];

bool secure_flavour() { return std::string_view(hpc_flavour()) == "secure"; }

// A write into memory the program no longer owns (or past its end).
void write_freed(void* at, const void* bytes, std::size_t n) {
  hpcalloc::unpoison_memory(at, n);
  std::memcpy(at, bytes, n);
}
void write_word(void* at, std::uintptr_t value) { write_freed(at, &value, sizeof value); }

// A plausible medium chunk header at `at` for a 3600-byte chunk: the
// fields a program can see or guess (size, neighbour size, the in-use
// state), without the key.
void forge_medium_header(void* at) {
  const std::uint32_t header[] = {3600 + 16, 1024, 0, 0xa1};
  write_freed(at, header, sizeof header);
}

class MisuseDeathTest : public testing::Test {
 protected:
  void SetUp() override {
    GTEST_FLAG_SET(death_test_style, "threadsafe");
    unsetenv("HPCALLOC_ON_ERROR");  // "warn" would keep the process alive
  }
};

// ---- realloc and malloc_usable_size of a freed block ----------------------

TEST_F(MisuseDeathTest, ReallocOfAFreedSmallBlock) {
  EXPECT_DEATH(
      {
        void* p = hpc_malloc(32);
        hpc_free(p);
        hpc_realloc(p, 64);
      },
      "hpcalloc: fatal: realloc\\(\\): use of freed block 0x");
}

// The issue's case: the block sits in the medium cache, and realloc used to
// grow it in place and hand it out while the cache still held it.
TEST_F(MisuseDeathTest, ReallocOfAFreedMediumBlock) {
  EXPECT_DEATH(
      {
        void* p = hpc_malloc(4096);
        hpc_free(p);
        hpc_realloc(p, 8192);
      },
      "hpcalloc: fatal: realloc\\(\\): use of freed block 0x");
}

TEST_F(MisuseDeathTest, UsableSizeOfAFreedSmallBlock) {
  EXPECT_DEATH(
      {
        void* p = hpc_malloc(100);
        hpc_free(p);
        hpc_malloc_usable_size(p);
      },
      "hpcalloc: fatal: malloc_usable_size\\(\\): use of freed block 0x");
}

TEST_F(MisuseDeathTest, UsableSizeOfAFreedMediumBlock) {
  EXPECT_DEATH(
      {
        void* p = hpc_malloc(64 << 10);
        void* keep = hpc_malloc(64 << 10);  // p's chunk stays a chunk of its own
        hpc_free(p);
        hpc_malloc_usable_size(p);
        hpc_free(keep);
      },
      "hpcalloc: fatal: malloc_usable_size\\(\\): use of freed block 0x");
}

// ---- Writes into freed blocks ---------------------------------------------

// The issue's case: the first word of a freed 32 B block overwritten with
// the address of a global made a later malloc return the global. The
// default flavour finds it at the malloc that would follow the link; the
// secure one when the block leaves its quarantine (after 256 frees).
TEST_F(MisuseDeathTest, ALinkOverwrittenInAFreedSmallBlockIsNeverFollowed) {
  EXPECT_DEATH(
      {
        void* p = hpc_malloc(32);
        hpc_free(p);
        write_word(p, reinterpret_cast<std::uintptr_t>(g_target));
        void* blocks[512];
        for (void*& b : blocks) {
          b = hpc_malloc(32);
          if (b == g_target) std::abort();  // would be silent corruption
        }
        for (void* b : blocks) hpc_free(b);
      },
      secure_flavour() ? "hpcalloc: fatal: free\\(\\): write into freed block 0x"
                       : "hpcalloc: fatal: malloc\\(\\): corrupted free block \\(small-block "
                         "cache link overwritten\\) at 0x");
}

TEST_F(MisuseDeathTest, ALinkOverwrittenInAFreedMediumCacheBlockIsNeverFollowed) {
  EXPECT_DEATH(
      {
        void* p = hpc_malloc(4096);
        hpc_free(p);
        write_word(p, reinterpret_cast<std::uintptr_t>(g_target));
        void* blocks[80];
        for (void*& b : blocks) {
          b = hpc_malloc(4096);
          if (b == g_target) std::abort();
        }
        for (void* b : blocks) hpc_free(b);
      },
      secure_flavour() ? "hpcalloc: fatal: free\\(\\): write into freed block 0x"
                       : "hpcalloc: fatal: malloc\\(\\): corrupted free block \\(medium-block "
                         "cache link overwritten\\) at 0x");
}

// The issue's case: forged list links made unlink write an attacker-chosen
// value to an attacker-chosen address and return one block three times.
TEST_F(MisuseDeathTest, ForgedMediumFreeListLinksAreNeverFollowed) {
  EXPECT_DEATH(
      {
        // 64 KiB is above the medium cache: p goes to the free lists, a free
        // chunk between two live ones.
        void* before = hpc_malloc(64 << 10);
        void* p = hpc_malloc(64 << 10);
        void* after = hpc_malloc(64 << 10);
        hpc_free(p);
        write_word(p, reinterpret_cast<std::uintptr_t>(g_target));
        write_word(static_cast<char*>(p) + 8, reinterpret_cast<std::uintptr_t>(g_target + 64));
        void* blocks[8];
        for (void*& b : blocks) {
          b = hpc_malloc(64 << 10);
          if (b == g_target) std::abort();
        }
        for (void* b : blocks) hpc_free(b);  // the secure flavour's quarantine lets p go
        hpc_free(before);
        hpc_free(after);
      },
      secure_flavour() ? "hpcalloc: fatal: free\\(\\): write into freed block 0x"
                       : "hpcalloc: fatal: malloc\\(\\): corrupted free block \\(medium "
                         "free-list link overwritten\\) at 0x");
}

// ---- Overflows into a neighbour -------------------------------------------

// The issue's case: overflowing a 32 B block by 1 to 64 bytes made the next
// malloc follow the clobbered link of the freed block after it (SIGSEGV,
// no message). The secure flavour (whose neighbours are in random order)
// finds any overflow at the block's own free, by its padding and canary.
class SmallOverflowDeathTest : public MisuseDeathTest,
                               public testing::WithParamInterface<std::size_t> {};

TEST_P(SmallOverflowDeathTest, IntoAFreedNeighbourIsCaughtAtTheNextMalloc) {
  const std::size_t overflow = GetParam();
  EXPECT_DEATH(
      {
        unsigned char junk[32 + 64];
        std::memset(junk, 0x41, sizeof junk);
        auto* p = static_cast<unsigned char*>(hpc_malloc(32));
        if (secure_flavour()) {
          write_freed(p, junk, 32 + overflow);
          hpc_free(p);
        } else {
          auto* q = static_cast<unsigned char*>(hpc_malloc(32));
          if (q != p + 32) std::abort();  // the test's premise: neighbours
          hpc_free(q);
          // A byte equal to the one it overwrites corrupts nothing: the
          // encoded link's low byte is random, 0x41 once in 256 processes.
          if (q[0] == junk[32]) junk[32] = 0x42;
          write_freed(p, junk, 32 + overflow);
          hpc_malloc(32);
          hpc_malloc(32);
        }
      },
      secure_flavour() ? "hpcalloc: fatal: free\\(\\): write past the end of block 0x"
                       : "hpcalloc: fatal: malloc\\(\\): corrupted free block \\(small-block "
                         "cache link overwritten\\) at 0x");
}

INSTANTIATE_TEST_SUITE_P(Bytes, SmallOverflowDeathTest, testing::Values(1, 8, 9, 16, 17, 64));

// The issue's case: a 4 KiB overflow crashed in the medium cache's pop.
TEST_F(MisuseDeathTest, AMediumOverflowIntoACachedNeighbourIsCaught) {
  EXPECT_DEATH(
      {
        auto* p = static_cast<unsigned char*>(hpc_malloc(4096));
        auto* q = static_cast<unsigned char*>(hpc_malloc(4096));
        hpc_free(q);
        unsigned char junk[4096 + 48];
        std::memset(junk, 0x41, sizeof junk);
        write_freed(p, junk, q + 32 - p);  // q's header and its first two words
        for (int i = 0; i < 80; ++i) hpc_free(hpc_malloc(4096));
      },
      secure_flavour() ? "hpcalloc: fatal: free\\(\\): write into freed block 0x"
                       : "hpcalloc: fatal: malloc\\(\\): corrupted free block \\(medium-block "
                         "cache link overwritten\\) at 0x");
}

// The issue's case: a 100 KiB overflow was reported later, blaming a valid
// block two blocks away. Now the free of the overflowing block names the
// header it overwrote.
TEST_F(MisuseDeathTest, AMediumOverflowIntoALiveNeighbourNamesTheNeighboursHeader) {
  EXPECT_DEATH(
      {
        auto* p = static_cast<unsigned char*>(hpc_malloc(100 << 10));
        auto* q = static_cast<unsigned char*>(hpc_malloc(100 << 10));
        const std::size_t usable = hpc_malloc_usable_size(p);
        if (q != p + usable + 16) std::abort();  // the test's premise: neighbours
        unsigned char junk[16];
        std::memset(junk, 0, sizeof junk);
        write_freed(p + usable, junk, sizeof junk);  // q's header
        hpc_free(p);
        hpc_malloc_trim(0);  // the secure flavour's quarantine lets p go
      },
      secure_flavour() ? "hpcalloc: fatal: malloc_trim\\(\\): corrupted medium chunk header at 0x"
                       : "hpcalloc: fatal: free\\(\\): corrupted medium chunk header at 0x");
}

// ---- Forged headers -------------------------------------------------------

// The issue's case: a header forged inside a live 64 KiB block (a copy of a
// real one, whose tag used to be an unkeyed function of the address) was
// accepted by free, and a later malloc returned memory inside the live
// block.
TEST_F(MisuseDeathTest, AHeaderForgedInsideALiveBlockIsRejected) {
  EXPECT_DEATH(
      {
        auto* p = static_cast<unsigned char*>(hpc_malloc(64 << 10));
        forge_medium_header(p + 1024 - 16);
        hpc_free(p + 1024);
      },
      "hpcalloc: fatal: free\\(\\): pointer not allocated by hpcalloc: 0x");
}

}  // namespace

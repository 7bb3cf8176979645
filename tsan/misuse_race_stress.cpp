// ThreadSanitizer stress of the misuse paths against segment turnover: one
// thread keeps freeing and asking the node of stale pointers (blocks
// another thread already freed: cross-thread double frees) while their
// segments empty, go back to the memory source's cache and are handed to
// another heap. Those paths read the segment header's kind, owner and node
// while the owner or the source rewrite them; segment.h makes every such
// field a relaxed atomic so that this is a reported misuse, never a data
// race. Runs through the prefixed API with HPCALLOC_ON_ERROR=warn (set by
// ctest): every misuse prints one line and returns. Any TSan report fails
// the test (halt_on_error=1).
//
// The twin it catches is the code before that change (plain header fields:
// git show e3ee2fb:src/mem/segment.h), where TSan reports a data race on
// the header within the first rounds.
//
// Not covered: malloc_usable_size and realloc of another heap's stale small
// or medium block read its run's or chunk's metadata, which the owner
// rewrites when it reuses the memory; that formal race on a misuse path is
// left to the hardening work on freed blocks (a freed block must never be
// sized or resized at all).
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <string_view>
#include <thread>
#include <vector>

#include "hpcalloc.h"

namespace {

constexpr unsigned kRounds = 40;
// Enough 1 KiB blocks for three 2 MiB segments: freeing them all empties at
// least two, which go back to the source's cache (one is kept as a spare).
constexpr unsigned kBlocks = 3 * 2000;
constexpr unsigned kStale = 64;

std::atomic<void*> g_stale[kStale];
std::atomic<bool> g_done{false};

// Allocates and frees a few segments' worth of blocks, publishing some of
// them as stale pointers once they are freed.
void churner(unsigned seed) {
  std::vector<void*> blocks(kBlocks);
  for (unsigned round = 0; round < kRounds; ++round) {
    for (void*& p : blocks) p = hpc_malloc(1000);
    for (unsigned i = 0; i < kBlocks; ++i) hpc_free(blocks[i]);
    for (unsigned i = 0; i < kStale; ++i) {
      // Relaxed: the misuser needs the address only, never the contents.
      g_stale[(i + seed) % kStale].store(blocks[(i * 97 + round) % kBlocks],
                                         std::memory_order_relaxed);
    }
  }
}

void misuser() {
  unsigned n = 0;
  while (!g_done.load(std::memory_order_relaxed) && n < 20000) {
    void* p = g_stale[n % kStale].load(std::memory_order_relaxed);
    if (p != nullptr) {
      if (n % 2 == 0) {
        hpc_free(p);
      } else {
        (void)hpc_numa_node_of(p);
      }
    }
    ++n;
    if (n % 64 == 0) std::this_thread::yield();
  }
}

}  // namespace

int main() {
  const char* mode = std::getenv("HPCALLOC_ON_ERROR");
  if (mode == nullptr || std::string_view(mode) != "warn") {
    std::fprintf(stderr, "misuse_race_stress: needs HPCALLOC_ON_ERROR=warn\n");
    return 2;
  }
  std::thread a(churner, 0);
  std::thread b(churner, kStale / 2);
  std::thread m(misuser);
  a.join();
  b.join();
  g_done.store(true, std::memory_order_relaxed);
  m.join();
  std::printf("misuse_race_stress: %u rounds, no race\n", kRounds);
  return 0;
}

// Shows that hpcalloc's ASan poisoning (base/sanitizer.h) works in the fuzz
// build: `poison_check small|medium|huge` frees a block of that kind and then
// writes into it, which ASan must report as use-after-poison (ctest matches
// the report); `poison_check live` writes every usable byte of live blocks of
// every kind, including the tail past the size asked for and the bytes a
// free block keeps as its links, which must not be reported. Not a libFuzzer
// harness: a plain program, run by ctest in the fuzz tree.
#include <cstdio>
#include <cstring>
#include <string_view>

#include "api/hpcalloc.h"

namespace {

// Frees a block of `size` bytes and then writes one byte `offset` bytes into
// it; ASan stops the program at that write.
int write_after_free(std::size_t size, std::size_t offset) {
  auto* p = static_cast<volatile char*>(hpc_malloc(size));
  if (p == nullptr) return 2;
  p[offset] = 1;
  hpc_free(const_cast<char*>(p));
  std::printf("poison_check: writing %zu bytes into a freed %zu-byte block\n", offset, size);
  std::fflush(stdout);
  p[offset] = 2;
  std::printf("poison_check: the write after free was NOT reported\n");
  return 1;
}

int write_live_blocks() {
  const std::size_t sizes[] = {0,    1,    16,     24,      100,           1024,
                               1025, 5000, 100000, 1 << 20, (1 << 20) + 1, 5 << 20};
  for (int round = 0; round < 3; ++round) {  // later rounds reuse freed memory
    void* blocks[sizeof sizes / sizeof sizes[0]];
    for (std::size_t i = 0; i < sizeof sizes / sizeof sizes[0]; ++i) {
      blocks[i] = round == 2 ? hpc_memalign(4096, sizes[i]) : hpc_malloc(sizes[i]);
      if (blocks[i] == nullptr) return 2;
      std::memset(blocks[i], 0x5a, hpc_malloc_usable_size(blocks[i]));
    }
    for (std::size_t i = 0; i < sizeof sizes / sizeof sizes[0]; ++i) {
      // Grow in place or move: every usable byte of the result is writable.
      void* q = hpc_realloc(blocks[i], sizes[i] * 2 + 16);
      if (q == nullptr) return 2;
      std::memset(q, 0xa5, hpc_malloc_usable_size(q));
      hpc_free(q);
    }
  }
  std::printf("poison_check: every usable byte of live blocks was writable\n");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string_view mode = argc > 1 ? argv[1] : "";
  if (mode == "small") return write_after_free(64, 40);
  if (mode == "medium") return write_after_free(5000, 4000);
  if (mode == "huge") return write_after_free(4 << 20, 3 << 20);
  if (mode == "live") return write_live_blocks();
  std::fprintf(stderr, "usage: poison_check small|medium|huge|live\n");
  return 2;
}

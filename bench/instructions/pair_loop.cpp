// The program whose instructions `bench/runner/run.py --instructions` counts
// under callgrind, once per allocator (LD_PRELOAD) at COUNT and 2 * COUNT
// pairs: the difference of the two totals divided by COUNT is the cost of one
// malloc + free pair, start-up and the allocator's first-call set-up cancelled
// out. It links no allocator, so the calls go through the PLT to whichever
// malloc is preloaded.
//
//   bench_instr_pair_loop PATTERN SIZE COUNT
//     pair   COUNT times: p = malloc(SIZE); free(p)  (the thread cache's best case)
//     batch  COUNT / 100 times: malloc 100 blocks of SIZE, then free them in
//            the same order (a cache that must hold, then take back, 100 blocks)
//
// Exits 2 with a usage line on bad arguments, 1 if malloc returns NULL.
#include <cstdio>
#include <cstdlib>
#include <string_view>

namespace {

constexpr int kBatchBlocks = 100;

// Makes p escape to unknown code, so the compiler can neither drop a
// malloc/free pair nor move the calls out of the loop.
inline void opaque(void* p) { asm volatile("" : : "r"(p) : "memory"); }

bool parse_count(const char* text, unsigned long& value) {
  char* end = nullptr;
  value = std::strtoul(text, &end, 10);
  return end != text && *end == '\0' && value > 0;
}

int usage() {
  std::fprintf(stderr, "usage: bench_instr_pair_loop pair|batch SIZE COUNT (SIZE, COUNT > 0)\n");
  return 2;
}

int pair_loop(std::size_t size, unsigned long count) {
  for (unsigned long i = 0; i < count; ++i) {
    void* p = std::malloc(size);
    if (p == nullptr) return 1;
    opaque(p);
    std::free(p);
  }
  return 0;
}

int batch_loop(std::size_t size, unsigned long count) {
  static void* blocks[kBatchBlocks];
  for (unsigned long round = 0; round < count / kBatchBlocks; ++round) {
    for (void*& block : blocks) {
      block = std::malloc(size);
      if (block == nullptr) return 1;
      opaque(block);
    }
    for (void* block : blocks) std::free(block);
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  unsigned long size = 0;
  unsigned long count = 0;
  if (argc != 4 || !parse_count(argv[2], size) || !parse_count(argv[3], count)) return usage();
  const std::string_view pattern = argv[1];
  int status = 0;
  if (pattern == "pair") {
    status = pair_loop(size, count);
  } else if (pattern == "batch") {
    if (count % kBatchBlocks != 0) {
      std::fprintf(stderr, "bench_instr_pair_loop: batch COUNT must be a multiple of %d\n",
                   kBatchBlocks);
      return 2;
    }
    status = batch_loop(size, count);
  } else {
    return usage();
  }
  if (status != 0) std::fprintf(stderr, "bench_instr_pair_loop: malloc returned NULL\n");
  return status;
}

// Larson & Krishnan's server simulation through the C interface, malloc and
// free, as the original benchmark calls it; the simulation is in
// larson_common.h.
#include "larson_common.h"

namespace {

struct MallocFree {
  static void* allocate(std::size_t size) { return hpcalloc::bench::allocate(size); }
  static void release(void* block, std::size_t) { std::free(block); }
};

}  // namespace

int main(int argc, char** argv) {
  return hpcalloc::bench::larson::run<MallocFree>(
      argc, argv, "larson",
      "Larson-Krishnan server simulation: random-size block replacement in per-thread\n"
      "slot arrays, each array handed to a new thread after every generation.");
}

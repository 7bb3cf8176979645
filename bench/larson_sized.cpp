// Larson & Krishnan's server simulation (larson_common.h) as C++14-and-later
// code runs it: blocks come from ::operator new and go back through the sized
// ::operator delete(void*, std::size_t), the call that std::allocator's
// deallocate and every `delete p` of a complete type compile to when sized
// deallocation is on (g++'s default from C++14, wherever the size is known at
// the call; delete[] of a trivially destructible array, which stores no
// element count, still calls the unsized one). Blocks are freed by threads
// other than the one that allocated them, so this measures the sized path's
// cross-thread frees, which bench_larson measures through free().
#include <new>

#include "larson_common.h"

#if !defined(__cpp_sized_deallocation)
#error "bench_larson_sized needs sized deallocation (-fsized-deallocation)"
#endif

namespace {

struct SizedNewDelete {
  static void* allocate(std::size_t size) {
    try {
      return ::operator new(size);
    } catch (const std::bad_alloc&) {
      // The workload contract says exit 1, not the abort of an uncaught throw.
      hpcalloc::bench::fail_allocation(size);
    }
  }
  static void release(void* block, std::size_t size) { ::operator delete(block, size); }
};

}  // namespace

int main(int argc, char** argv) {
  return hpcalloc::bench::larson::run<SizedNewDelete>(
      argc, argv, "larson_sized",
      "Larson-Krishnan server simulation with operator new and the sized operator\n"
      "delete: random-size block replacement in per-thread slot arrays, each array\n"
      "handed to a new thread after every generation.");
}

// Micro benchmark of a free from another thread: benchmark thread 0 mallocs
// blocks and hands them through a single-producer single-consumer ring to
// thread 1, which frees them. For hpcalloc every such free is a push onto the
// owner's remote-free queue, and the owner's malloc slow path drains it; the
// two-thread local pair beside it is the same work without the hand-over.
// Both run beside glibc (micro_api.h). Items per second count blocks that
// went malloc -> ring -> free; wall-clock time, since two threads work.
#include <benchmark/benchmark.h>

#include <array>
#include <atomic>
#include <cstddef>
#include <thread>

#include "micro_api.h"

namespace hpcalloc::bench {
namespace {

// The hand-over ring. Each run pushes and pops the same number of blocks
// (both benchmark threads run the same iteration count), so it is empty
// between runs.
class BlockRing {
 public:
  void push(void* block) {
    const std::size_t tail = tail_.load(std::memory_order_relaxed);  // only the producer writes it
    // Acquire: pairs with pop's release of head_, so the consumer is done
    // with the slot before it is overwritten.
    while (tail - head_.load(std::memory_order_acquire) == kCapacity) wait();
    slots_[tail % kCapacity] = block;
    // Release: publishes the slot's pointer to pop's acquire of tail_.
    tail_.store(tail + 1, std::memory_order_release);
  }

  void* pop() {
    const std::size_t head = head_.load(std::memory_order_relaxed);  // only the consumer writes it
    // Acquire: pairs with push's release of tail_, making the slot visible.
    while (tail_.load(std::memory_order_acquire) == head) wait();
    void* block = slots_[head % kCapacity];
    // Release: pairs with push's acquire; the slot may be reused after this.
    head_.store(head + 1, std::memory_order_release);
    return block;
  }

 private:
  static constexpr std::size_t kCapacity = 1024;

  // Two threads on a machine with perhaps two cores: give the core away
  // rather than spin against the thread being waited for.
  static void wait() { std::this_thread::yield(); }

  alignas(64) std::atomic<std::size_t> head_{0};
  alignas(64) std::atomic<std::size_t> tail_{0};
  alignas(64) std::array<void*, kCapacity> slots_{};
};

BlockRing ring;

template <MallocApi Api>
void remote_free(benchmark::State& state) {
  const auto size = static_cast<std::size_t>(state.range(0));
  if (state.thread_index() == 0) {
    for (auto _ : state) {
      void* p = Api::malloc(size);
      benchmark::DoNotOptimize(p);
      ring.push(p);
    }
  } else {
    for (auto _ : state) Api::free(ring.pop());
    state.SetItemsProcessed(state.iterations());
  }
}

BENCHMARK_TEMPLATE(remote_free, Hpcalloc)->Arg(16)->Arg(256)->Arg(4096)->Threads(2)->UseRealTime();
BENCHMARK_TEMPLATE(remote_free, Glibc)->Arg(16)->Arg(256)->Arg(4096)->Threads(2)->UseRealTime();
BENCHMARK_TEMPLATE(malloc_free, Hpcalloc)->Arg(16)->Arg(256)->Arg(4096)->Threads(2)->UseRealTime();
BENCHMARK_TEMPLATE(malloc_free, Glibc)->Arg(16)->Arg(256)->Arg(4096)->Threads(2)->UseRealTime();

}  // namespace
}  // namespace hpcalloc::bench

BENCHMARK_MAIN();

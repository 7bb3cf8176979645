// ThreadSanitizer stress of the process-wide allocator through the prefixed
// API (TSan owns malloc, so hpcalloc is used as hpc_malloc/hpc_free from the
// static library, built with -fsanitize=thread in the tsan preset):
//   1. remote-free storm: producers allocate, one consumer frees everything;
//   2. all-to-all: every thread frees blocks every other thread allocated;
//   3. thread churn: short-lived threads whose blocks are freed after they
//      exit (pooled heaps receive remote frees, new threads adopt them);
//   4. realloc of blocks owned by other threads;
//   5. fork while other threads allocate; the child allocates and exits;
//   6. malloc_trim from one thread while the others allocate and free (a
//      request each heap honours at its next slow path).
// Run with HPCALLOC_BACKGROUND_THREAD=1 HPCALLOC_DECAY_MS=1 (the ctest
// global_allocator_stress_background), the background thread's decay
// passes over the pooled heaps and the caches race all of the above; the
// run then fails unless the thread made passes.
// Every block carries a pattern checked before it is freed. Any TSan report
// fails the test (halt_on_error=1 in ctest); so does a wrong pattern.
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <thread>
#include <vector>

#include "hpcalloc.h"

namespace {

int g_failures = 0;
std::mutex g_failure_mutex;

void fail(const char* what) {
  std::lock_guard<std::mutex> lock(g_failure_mutex);
  ++g_failures;
  std::fprintf(stderr, "FAIL: %s\n", what);
}

// Block layout: first 8 bytes its size, then a byte pattern from a seed.
void* make_block(std::size_t size, unsigned seed) {
  if (size < 16) size = 16;
  auto* p = static_cast<unsigned char*>(hpc_malloc(size));
  if (p == nullptr) {
    fail("hpc_malloc returned NULL");
    return nullptr;
  }
  std::memcpy(p, &size, sizeof size);
  const std::size_t n = size - 1 < 256 ? size - 1 : 256;  // the last byte is separate
  for (std::size_t i = 8; i < n; ++i) p[i] = static_cast<unsigned char>(seed + i);
  p[size - 1] = static_cast<unsigned char>(seed);
  return p;
}

bool check_block(const void* block, unsigned seed) {
  auto* p = static_cast<const unsigned char*>(block);
  std::size_t size = 0;
  std::memcpy(&size, p, sizeof size);
  const std::size_t n = size - 1 < 256 ? size - 1 : 256;  // the last byte is separate
  for (std::size_t i = 8; i < n; ++i) {
    if (p[i] != static_cast<unsigned char>(seed + i)) return false;
  }
  return p[size - 1] == static_cast<unsigned char>(seed);
}

std::size_t size_for(unsigned i) {
  switch (i % 16) {
    case 0: return 2000 + i % 5000;              // medium
    case 1: return (1u << 20) + (i % 7) * 4096;  // huge
    default: return 16 + (i * 37) % 1000;        // small
  }
}

void remote_free_storm() {
  constexpr int kProducers = 3;
  constexpr int kPerProducer = 3000;
  std::mutex mutex;
  std::vector<std::pair<void*, unsigned>> queue;
  std::atomic<int> producers_left{kProducers};
  std::vector<std::thread> threads;
  for (int t = 0; t < kProducers; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerProducer; ++i) {
        const unsigned seed = static_cast<unsigned>(t * kPerProducer + i);
        void* p = make_block(size_for(seed), seed);
        std::lock_guard<std::mutex> lock(mutex);
        queue.emplace_back(p, seed);
      }
      producers_left.fetch_sub(1);
    });
  }
  threads.emplace_back([&] {
    int freed = 0;
    while (freed < kProducers * kPerProducer) {
      std::vector<std::pair<void*, unsigned>> batch;
      {
        std::lock_guard<std::mutex> lock(mutex);
        batch.swap(queue);
      }
      for (auto [p, seed] : batch) {
        if (!check_block(p, seed)) fail("storm: block corrupted");
        hpc_free(p);
        ++freed;
      }
      if (batch.empty()) std::this_thread::yield();
    }
  });
  for (auto& t : threads) t.join();
}

void all_to_all() {
  constexpr int kThreads = 4;
  constexpr int kSlots = 64;
  constexpr int kOps = 4000;
  struct Slot {
    std::atomic<void*> block{nullptr};
  };
  static Slot slots[kSlots];
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([t] {
      for (int i = 0; i < kOps; ++i) {
        const unsigned seed = static_cast<unsigned>(t * 100000 + i);
        void* mine = make_block(size_for(seed), seed);
        Slot& slot = slots[(t * 7 + i) % kSlots];
        // acq_rel: the block's contents travel with it to whoever frees it.
        void* previous = slot.block.exchange(mine, std::memory_order_acq_rel);
        if (previous != nullptr) hpc_free(previous);
      }
    });
  }
  for (auto& t : threads) t.join();
  for (Slot& slot : slots) hpc_free(slot.block.exchange(nullptr));
}

void thread_churn() {
  constexpr int kWaves = 40;
  constexpr int kThreadsPerWave = 3;
  std::vector<std::pair<void*, unsigned>> leftovers;
  std::mutex mutex;
  std::size_t created_before = 0;
  hpc_stat("heaps_created", &created_before);
  for (int wave = 0; wave < kWaves; ++wave) {
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreadsPerWave; ++t) {
      threads.emplace_back([&, wave, t] {
        for (int i = 0; i < 50; ++i) {
          const unsigned seed = static_cast<unsigned>(wave * 1000 + t * 100 + i);
          void* p = make_block(size_for(seed), seed);
          if (i % 2 == 0) {
            hpc_free(p);
          } else {
            std::lock_guard<std::mutex> lock(mutex);
            leftovers.emplace_back(p, seed);
          }
        }
      });
    }
    for (auto& t : threads) t.join();
    // Blocks of exited threads: freed into pooled heaps' queues.
    for (auto [p, seed] : leftovers) {
      if (!check_block(p, seed)) fail("churn: block corrupted");
      hpc_free(p);
    }
    leftovers.clear();
  }
  std::size_t created_after = 0;
  hpc_stat("heaps_created", &created_after);
  if (created_after - created_before > kThreadsPerWave + 2) fail("churn: heaps not reused");
}

void cross_thread_realloc() {
  constexpr int kBlocks = 2000;
  std::vector<void*> blocks(kBlocks);
  std::thread owner([&] {
    for (int i = 0; i < kBlocks; ++i) blocks[i] = make_block(size_for(i), i);
  });
  owner.join();
  std::thread other([&] {
    for (int i = 0; i < kBlocks; ++i) {
      if (!check_block(blocks[i], i)) fail("realloc: block corrupted before");
      std::size_t size = 0;
      std::memcpy(&size, blocks[i], sizeof size);
      void* q = hpc_realloc(blocks[i], size * 2);
      if (q == nullptr || !check_block(q, i)) fail("realloc: contents lost");
      hpc_free(q);
    }
  });
  other.join();
}

void fork_while_allocating() {
  std::atomic<bool> stop{false};
  std::vector<std::thread> threads;
  for (int t = 0; t < 2; ++t) {
    threads.emplace_back([&, t] {
      unsigned i = 0;
      while (!stop.load(std::memory_order_relaxed)) {
        void* p = make_block(size_for(i + t * 7), i);
        hpc_free(p);
        ++i;
      }
    });
  }
  for (int f = 0; f < 10; ++f) {
    const pid_t pid = fork();
    if (pid == 0) {
      int ok = 1;
      for (unsigned i = 0; i < 2000; ++i) {
        void* p = make_block(size_for(i), i);
        void* q = hpc_realloc(p, size_for(i + 1) + 8);
        if (q == nullptr) ok = 0;
        hpc_free(q);
      }
      _exit(ok ? 0 : 1);
    }
    int status = 0;
    if (pid < 0 || waitpid(pid, &status, 0) != pid || !WIFEXITED(status) ||
        WEXITSTATUS(status) != 0) {
      fail("fork: child failed");
    }
  }
  stop.store(true);
  for (auto& t : threads) t.join();
}

void trim_while_allocating() {
  std::atomic<bool> stop{false};
  std::vector<std::thread> threads;
  for (int t = 0; t < 2; ++t) {
    threads.emplace_back([&, t] {
      std::vector<void*> held;
      for (unsigned i = 0; !stop.load(std::memory_order_relaxed); ++i) {
        held.push_back(make_block(size_for(i + t * 3), i));
        if (held.size() == 64) {
          for (std::size_t k = 0; k < held.size(); ++k) {
            if (!check_block(held[k], static_cast<unsigned>(i - held.size() + 1 + k))) {
              fail("trim: a live block lost its contents");
            }
            hpc_free(held[k]);
          }
          held.clear();
        }
      }
      for (void* p : held) hpc_free(p);
    });
  }
  for (int i = 0; i < 50; ++i) {
    hpc_malloc_trim(0);
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  stop.store(true);
  for (auto& t : threads) t.join();
}

// With the background thread asked for: it must have run (the passes of a
// 10 ms interval; up to 30 s on a busy machine).
void background_thread_ran() {
  const char* wanted = std::getenv("HPCALLOC_BACKGROUND_THREAD");
  if (wanted == nullptr || std::strcmp(wanted, "1") != 0) return;
  std::size_t passes = 0;
  for (int i = 0; i < 3000 && passes < 3; ++i) {
    if (hpc_stat("background_passes", &passes) != 0) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  if (passes < 3) fail("the background thread made no decay passes");
}

}  // namespace

int main() {
  remote_free_storm();
  all_to_all();
  thread_churn();
  cross_thread_realloc();
  fork_while_allocating();
  trim_while_allocating();
  background_thread_ran();
  if (g_failures != 0) {
    std::fprintf(stderr, "%d failures\n", g_failures);
    return 1;
  }
  std::printf("global allocator stress: all scenarios passed\n");
  return 0;
}

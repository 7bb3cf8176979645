// Multi-threaded stress of whatever malloc serves the process (ctest runs it
// with libhpcalloc.so preloaded; it passes on glibc alone too). Four phases,
// each the pattern that breaks per-thread-heap allocators:
//   (a) producers hand blocks of 0 B to 2 MiB to consumers through a queue;
//       consumers realloc them and free them (cross-thread frees, huge
//       blocks, realloc of another thread's block);
//   (b) thousands of short-lived threads, a few at a time; what they leave
//       is freed (or realloc'd) after they exit, and they allocate and free
//       in their own TLS destructors (a C++ thread_local and a pthread key
//       created after the allocator's own);
//   (c) fork while three threads allocate: the child frees blocks those
//       threads owned, runs a few thousand operations and a thread, and must
//       exit 0 (twenty times);
//   (d) larson-like server: threads replace random slots of slot arrays that
//       are handed to other threads mid-epoch and to new threads each epoch.
// Every block is filled with a pattern derived from its address and a seed,
// checked before it is freed, and its kept prefix checked after realloc, so
// overlapping blocks or lost bytes are caught. With hpcalloc, hpc_stat (found
// with dlsym) must show that heaps are reused: heaps_created stays below the
// most threads ever alive at once plus a small constant.
// STRESS_SCALE (default 1) scales the work; a watchdog fails a hung run.
#include <dlfcn.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <barrier>
#include <bit>
#include <condition_variable>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <mutex>
#include <thread>
#include <vector>

namespace {

constexpr unsigned kWatchdogSeconds = 120;
constexpr std::size_t kHeapSlack = 4;  // heaps allowed beyond the most live threads

std::atomic<const char*> g_phase{"start"};
double g_scale = 1.0;

// Reports without allocating (the allocator may be what is broken), then
// aborts so that a core or gdb shows where.
[[noreturn]] void fail(const char* format, ...) {
  char line[512];
  int n =
      std::snprintf(line, sizeof line, "stress_threads: FAIL (phase %s, pid %d): ", g_phase.load(),
                    static_cast<int>(getpid()));
  va_list args;
  va_start(args, format);
  n += std::vsnprintf(line + n, sizeof line - n - 1, format, args);
  va_end(args);
  n = std::min<int>(n, sizeof line - 2);
  line[n++] = '\n';
  (void)!write(2, line, n);
  std::abort();
}

void on_watchdog(int) {
  static const char message[] = "stress_threads: FAIL: watchdog expired (deadlock or livelock?)\n";
  (void)!write(2, message, sizeof message - 1);
  std::abort();
}

std::size_t scaled(std::size_t n) {
  return std::max<std::size_t>(1, static_cast<std::size_t>(static_cast<double>(n) * g_scale));
}

struct Rng {
  std::uint64_t state;
  std::uint64_t next() {  // splitmix64
    std::uint64_t z = (state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  std::size_t below(std::size_t n) { return next() % n; }
};

// Sizes from 0 B to 2 MiB, mostly small, with a few huge ones.
std::size_t mixed_size(Rng& rng) {
  std::size_t r = rng.below(1000);
  if (r < 600) return rng.below(257);
  if (r < 900) return 257 + rng.below(4096 - 257);
  if (r < 985) return 4096 + rng.below(128 << 10);
  if (r < 997) return (128 << 10) + rng.below(896 << 10);
  return (1 << 20) + rng.below((1 << 20) + 1);
}

// Larson's sizes: small, a tail of medium.
std::size_t server_size(Rng& rng) {
  std::size_t r = rng.below(100);
  if (r < 70) return 8 + rng.below(121);
  if (r < 97) return 129 + rng.below(1920);
  return 2048 + rng.below(62 << 10);
}

// A live block and what it must contain: byte i is byte i % 8 of
// key + (i / 8) * kStep, where key mixes the seed with `origin` (the address
// the block was filled at), so any prefix of a block is a valid pattern.
struct Block {
  unsigned char* p = nullptr;
  std::size_t size = 0;
  std::uint64_t seed = 0;
};
constexpr std::uint64_t kStep = 0x9E3779B97F4A7C15ull;

std::uintptr_t address(const void* p) { return reinterpret_cast<std::uintptr_t>(p); }

std::uint64_t pattern_key(std::uintptr_t origin, std::uint64_t seed) {
  Rng mix{origin ^ (seed * 0xD6E8FEB86659FD93ull)};
  return mix.next();
}

void fill(const Block& b) {
  std::uint64_t word = pattern_key(address(b.p), b.seed);
  std::size_t i = 0;
  for (; i + 8 <= b.size; i += 8, word += kStep) std::memcpy(b.p + i, &word, 8);
  std::memcpy(b.p + i, &word, b.size - i);
}

void check(const unsigned char* p, std::size_t size, std::uintptr_t origin, std::uint64_t seed,
           const char* when) {
  std::uint64_t word = pattern_key(origin, seed);
  for (std::size_t i = 0; i < size; i += 8, word += kStep) {
    std::size_t n = std::min<std::size_t>(8, size - i);
    if (std::memcmp(p + i, &word, n) != 0)
      fail("%s: block %p of %zu bytes corrupted at offset %zu", when, static_cast<const void*>(p),
           size, i);
  }
}

void check_fresh(void* p, std::size_t size, std::size_t alignment, const char* what) {
  if (p == nullptr) fail("%s(%zu) returned null", what, size);
  // Fundamental alignment, or the largest power of two the size allows.
  std::size_t needed = std::max(alignment, std::min<std::size_t>(16, std::bit_floor(size | 1)));
  if (reinterpret_cast<std::uintptr_t>(p) % needed != 0)
    fail("%s(%zu) returned %p, not %zu-aligned", what, size, p, needed);
  if (malloc_usable_size(p) < size)
    fail("%s(%zu): malloc_usable_size(%p) is %zu", what, size, p, malloc_usable_size(p));
}

// malloc, or one time in eight calloc (checked zeroed), or one in sixteen an
// aligned allocation.
Block allocate(Rng& rng, std::size_t size) {
  Block b{nullptr, size, rng.next()};
  std::size_t how = rng.below(16);
  if (how < 2) {
    b.p = static_cast<unsigned char*>(std::calloc(1, size));
    check_fresh(b.p, size, 1, "calloc");
    for (std::size_t i = 0; i < size; ++i)
      if (b.p[i] != 0) fail("calloc(1, %zu) returned %p, not zeroed at %zu", size, b.p, i);
  } else if (how == 2) {
    // 32 B to 4 KiB, now and then up to 1 MiB.
    std::size_t alignment = std::size_t{32}
                            << (rng.below(16) == 0 ? 8 + rng.below(8) : rng.below(8));
    void* p = nullptr;
    if (posix_memalign(&p, alignment, size) != 0) fail("posix_memalign(%zu, %zu)", alignment, size);
    b.p = static_cast<unsigned char*>(p);
    check_fresh(b.p, size, alignment, "posix_memalign");
  } else {
    b.p = static_cast<unsigned char*>(std::malloc(size));
    check_fresh(b.p, size, 1, "malloc");
  }
  fill(b);
  return b;
}

void release(Block& b) {
  check(b.p, b.size, address(b.p), b.seed, "before free");
  std::free(b.p);
  b = Block{};
}

// To `size` bytes, at least 1: realloc(p, 0) is implementation-defined.
void resize(Block& b, std::size_t size) {
  size = std::max<std::size_t>(size, 1);
  std::uintptr_t origin = address(b.p);  // names the pattern of the kept prefix
  auto* q = static_cast<unsigned char*>(std::realloc(b.p, size));
  if (q == nullptr) fail("realloc(%#zx, %zu) returned null", origin, size);
  check(q, std::min(size, b.size), origin, b.seed, "after realloc");
  b.p = q;
  b.size = size;
  check_fresh(q, size, 1, "realloc");
  fill(b);
}

// Counts this process's threads so the heap check knows the most alive at once.
std::atomic<std::size_t> g_live_threads{1};
std::atomic<std::size_t> g_most_live_threads{1};
struct CountedThread {
  CountedThread() {
    std::size_t now = g_live_threads.fetch_add(1) + 1;
    std::size_t most = g_most_live_threads.load();
    while (now > most && !g_most_live_threads.compare_exchange_weak(most, now)) {
    }
  }
  ~CountedThread() { g_live_threads.fetch_sub(1); }
};

using StatFunction = int (*)(const char*, std::size_t*);
StatFunction g_stat = nullptr;  // hpcalloc's hpc_stat, null under another malloc

// ---- (a) producers and consumers ----

void producers_and_consumers() {
  g_phase = "producer/consumer";
  constexpr int kProducers = 3, kConsumers = 3;
  const std::size_t per_producer = scaled(25000);
  std::mutex mutex;
  std::condition_variable changed;
  std::deque<Block> queue;
  int producing = kProducers;
  std::atomic<int> running{kProducers + kConsumers};

  std::vector<std::thread> threads;
  for (int t = 0; t < kProducers; ++t)
    threads.emplace_back([&, t] {
      CountedThread counted;
      Rng rng{1000u + t};
      for (std::size_t i = 0; i < per_producer; ++i) {
        Block b = allocate(rng, mixed_size(rng));
        std::unique_lock lock(mutex);
        changed.wait(lock, [&] { return queue.size() < 512; });
        queue.push_back(b);
        changed.notify_all();
      }
      std::lock_guard lock(mutex);
      --producing;
      changed.notify_all();
      --running;
    });
  for (int t = 0; t < kConsumers; ++t)
    threads.emplace_back([&, t] {
      CountedThread counted;
      Rng rng{2000u + t};
      std::deque<Block> kept;  // frees come late and out of order
      for (;;) {
        Block b;
        {
          std::unique_lock lock(mutex);
          changed.wait(lock, [&] { return !queue.empty() || producing == 0; });
          if (queue.empty()) break;
          b = queue.front();
          queue.pop_front();
          changed.notify_all();
        }
        check(b.p, b.size, address(b.p), b.seed, "received");
        if (rng.below(2) == 0) resize(b, rng.below(4) == 0 ? mixed_size(rng) : 1 + b.size * 2);
        kept.push_back(b);
        if (kept.size() > 64 || rng.below(4) != 0) {
          std::size_t victim = rng.below(kept.size());
          std::swap(kept[victim], kept.back());
          release(kept.back());
          kept.pop_back();
        }
      }
      for (Block& b : kept) release(b);
      --running;
    });
  // Meanwhile the main thread trims and reads the statistics, which walk
  // every heap and cache while their owners use them.
  while (running.load() > 0) {
    malloc_trim(0);
    struct mallinfo2 info = mallinfo2();
    std::size_t value = 0;
    if (g_stat != nullptr && g_stat("in_use_bytes", &value) != 0)
      fail("hpc_stat(\"in_use_bytes\")");
    if (info.arena + info.hblkhd == 0 && value > 0) fail("mallinfo2 reports nothing mapped");
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  for (std::thread& t : threads) t.join();
}

// ---- (b) short-lived threads ----

pthread_key_t g_exit_key;
std::mutex g_orphans_mutex;
std::vector<Block> g_orphans;  // left by threads that have exited

// Runs after the allocator's own key destructor (our key was created later).
void exit_key_destructor(void* value) {
  auto* b = static_cast<Block*>(value);
  Rng rng{b->seed};
  release(*b);
  delete b;
  Block late = allocate(rng, server_size(rng));
  release(late);
}

struct ThreadExitBlocks {  // a thread_local whose destructor frees and allocates
  std::vector<Block> blocks;
  ~ThreadExitBlocks() {
    for (Block& b : blocks) release(b);
    Rng rng{blocks.size()};
    Block late = allocate(rng, 100);
    release(late);
  }
};
thread_local ThreadExitBlocks t_exit_blocks;

void short_lived_thread(std::uint64_t seed, std::vector<Block>* left_behind) {
  CountedThread counted;
  Rng rng{seed};
  std::vector<Block> mine;
  for (int i = 0; i < 24; ++i)
    mine.push_back(allocate(rng, rng.below(8) == 0 ? mixed_size(rng) : server_size(rng)));
  {  // free or resize some blocks of threads that have exited
    std::lock_guard lock(g_orphans_mutex);
    for (int i = 0; i < 6 && !g_orphans.empty(); ++i) {
      Block b = g_orphans.back();
      g_orphans.pop_back();
      if (i % 2 == 0) resize(b, server_size(rng));
      release(b);
    }
  }
  for (int i = 0; i < 8; ++i) {
    release(mine.back());
    mine.pop_back();
  }
  t_exit_blocks.blocks.assign(mine.end() - 4, mine.end());
  mine.resize(mine.size() - 4);
  pthread_setspecific(g_exit_key, new Block(allocate(rng, server_size(rng))));
  left_behind->insert(left_behind->end(), mine.begin(), mine.end());
}

void short_lived_threads() {
  g_phase = "short-lived threads";
  if (pthread_key_create(&g_exit_key, exit_key_destructor) != 0) fail("pthread_key_create");
  constexpr int kWave = 4;
  const std::size_t waves = scaled(2000);
  for (std::size_t wave = 0; wave < waves; ++wave) {
    std::vector<Block> left[kWave];
    std::thread threads[kWave];
    for (int t = 0; t < kWave; ++t)
      threads[t] = std::thread(short_lived_thread, wave * kWave + t, &left[t]);
    for (std::thread& t : threads) t.join();
    // The creators have exited: the main thread frees half of what they
    // left, the next waves the rest.
    std::lock_guard lock(g_orphans_mutex);
    for (std::vector<Block>& blocks : left)
      for (std::size_t i = 0; i < blocks.size(); ++i) {
        if (i % 2 == 0)
          release(blocks[i]);
        else
          g_orphans.push_back(blocks[i]);
      }
  }
  for (Block& b : g_orphans) release(b);
  g_orphans.clear();
}

// ---- (c) fork while other threads allocate ----

void child_after_fork(std::vector<Block>& inherited, std::mutex& inherited_mutex) {
  inherited_mutex.unlock();  // locked by this thread before fork
  g_phase = "forked child";
  alarm(30);
  Rng rng{static_cast<std::uint64_t>(getpid())};
  // Free or resize blocks owned by heaps of threads that do not exist here.
  for (std::size_t i = 0; i < inherited.size(); ++i) {
    if (i % 3 == 0) resize(inherited[i], mixed_size(rng));
    release(inherited[i]);
  }
  std::vector<Block> slots(64);
  auto churn = [&slots](Rng& r, std::size_t operations) {
    for (std::size_t i = 0; i < operations; ++i) {
      Block& b = slots[r.below(slots.size())];
      if (b.p == nullptr)
        b = allocate(r, server_size(r));
      else if (r.below(3) == 0)
        resize(b, server_size(r));
      else
        release(b);
    }
  };
  churn(rng, 3000);
  std::thread helper([&] {  // a new thread in the child frees the main thread's blocks
    Rng r{rng.next()};
    churn(r, 2000);
  });
  helper.join();
  for (Block& b : slots)
    if (b.p != nullptr) release(b);
  std::exit(0);
}

void fork_while_allocating() {
  g_phase = "fork";
  std::atomic<bool> stop{false};
  std::mutex shared_mutex;
  std::vector<Block> shared;  // blocks of the background threads, handed to each child
  std::vector<std::thread> threads;
  for (int t = 0; t < 3; ++t)
    threads.emplace_back([&, t] {
      CountedThread counted;
      Rng rng{3000u + t};
      while (!stop.load(std::memory_order_relaxed)) {
        Block b = allocate(rng, rng.below(16) == 0 ? mixed_size(rng) : server_size(rng));
        std::lock_guard lock(shared_mutex);
        shared.push_back(b);
        if (shared.size() > 300) {
          std::swap(shared[rng.below(shared.size())], shared.back());
          release(shared.back());
          shared.pop_back();
        }
      }
    });
  for (int round = 0; round < 20; ++round) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
    std::fflush(nullptr);
    shared_mutex.lock();
    pid_t child = fork();
    if (child == 0) child_after_fork(shared, shared_mutex);
    shared_mutex.unlock();
    if (child < 0) fail("fork failed");
    int status = 0;
    for (int waited_ms = 0; waitpid(child, &status, WNOHANG) == 0; waited_ms += 10) {
      if (waited_ms > 30000) {
        kill(child, SIGKILL);
        fail("forked child %d still running after 30 s (deadlocked after fork?)", child);
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
      fail("forked child (round %d) %s %d", round,
           WIFSIGNALED(status) ? "killed by signal" : "exited with",
           WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
  }
  stop = true;
  for (std::thread& t : threads) t.join();
  for (Block& b : shared) release(b);
}

// ---- (d) larson-like server ----

void larson_server() {
  g_phase = "larson server";
  constexpr int kThreads = 4;
  constexpr std::size_t kSlots = 2000;
  const std::size_t epochs = scaled(12), operations = 60000;
  std::vector<std::vector<Block>> arrays(kThreads, std::vector<Block>(kSlots));
  for (std::size_t epoch = 0; epoch < epochs; ++epoch) {
    std::barrier halfway(kThreads);
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t)
      threads.emplace_back([&, t] {
        CountedThread counted;
        Rng rng{epoch * 100 + t};
        for (int half = 0; half < 2; ++half) {
          // Each epoch's new threads inherit arrays; halfway they swap.
          std::vector<Block>& slots = arrays[(t + epoch + half) % kThreads];
          for (std::size_t i = 0; i < operations / 2; ++i) {
            Block& b = slots[rng.below(kSlots)];
            if (b.p != nullptr) release(b);
            b = allocate(rng, server_size(rng));
          }
          halfway.arrive_and_wait();
        }
      });
    for (std::thread& t : threads) t.join();
  }
  for (auto& slots : arrays)
    for (Block& b : slots)
      if (b.p != nullptr) release(b);
}

// ---- heap reuse (hpcalloc only) ----

std::size_t read_stat(const char* name) {
  std::size_t value = 0;
  if (g_stat(name, &value) != 0) fail("hpc_stat(\"%s\") failed", name);
  return value;
}

// Called between phases, when only the main thread is alive.
void check_heap_reuse(const char* after) {
  if (g_stat == nullptr) return;
  const std::size_t created = read_stat("heaps_created"), live = read_stat("heaps_live"),
                    pooled = read_stat("heaps_pooled"), most = g_most_live_threads.load();
  std::printf(
      "stress_threads: after %s: heaps created %zu, live %zu, pooled %zu; "
      "at most %zu threads at once\n",
      after, created, live, pooled, most);
  if (created > most + kHeapSlack)
    fail("%zu heaps created for at most %zu threads at once: dead threads' heaps not reused",
         created, most);
  if (live > g_live_threads.load() + kHeapSlack)
    fail("%zu heaps live with %zu threads alive: exited threads keep their heaps", live,
         g_live_threads.load());
}

}  // namespace

int main() {
  if (const char* scale = std::getenv("STRESS_SCALE")) g_scale = std::atof(scale);
  if (g_scale <= 0) g_scale = 1;
  signal(SIGALRM, on_watchdog);
  alarm(kWatchdogSeconds);
  g_stat = reinterpret_cast<StatFunction>(dlsym(RTLD_DEFAULT, "hpc_stat"));
  const char* preload = std::getenv("LD_PRELOAD");
  if (g_stat == nullptr) {
    if (preload != nullptr && std::strstr(preload, "hpcalloc") != nullptr)
      fail("LD_PRELOAD names hpcalloc (%s) but hpc_stat is not exported", preload);
    std::printf("stress_threads: hpc_stat not found (not hpcalloc): heap reuse checks skipped\n");
  }
  auto start = std::chrono::steady_clock::now();
  auto timed = [&start](const char* name, void (*phase)()) {
    phase();
    auto now = std::chrono::steady_clock::now();
    std::printf("stress_threads: %s done (%.1f s)\n", name,
                std::chrono::duration<double>(now - start).count());
    std::fflush(stdout);
    start = now;
    check_heap_reuse(name);
  };
  timed("(a) producer/consumer", producers_and_consumers);
  timed("(b) short-lived threads", short_lived_threads);
  timed("(c) fork while allocating", fork_while_allocating);
  timed("(d) larson server", larson_server);
  std::printf("stress_threads: OK (%zu threads at most alive at once)\n",
              g_most_live_threads.load());
  return 0;
}

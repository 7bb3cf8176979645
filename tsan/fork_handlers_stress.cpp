// ThreadSanitizer stress of the fork handlers (src/api/fork_handlers.h): the
// real handlers of the process-wide allocator, through the prefixed API of
// the static library (TSan owns malloc). At the same time:
//   - forkers: several threads call fork() (glibc runs our pthread_atfork
//     handlers, concurrently: it drops its atfork lock around each); every
//     child frees a block its forking thread left it, allocates, reallocates
//     and frees, and exits 0;
//   - direct callers: several threads run prepare then parent straight (a
//     fork whose child is never made), so more handlers overlap than real
//     forks alone achieve;
//   - allocators: threads allocate (node heaps too), free each other's
//     blocks and trim (the pool's and the sources' locks);
//   - churn: short-lived threads allocate and exit (their heaps pooled and
//     adopted under the pool's lock while the handlers take it).
// Then every allocator lock must be free again: the main thread trims and
// reads statistics, which take them all.
// Caught: a TSan report (halt_on_error in ctest), a child that fails, and a
// deadlock: a watchdog thread fails the test when nothing has progressed for
// kStallSeconds (it writes and exits with raw system calls, which need no
// lock a hung thread could hold).
//
// --broken shared_record: the direct callers run the same handler code with
// one record of taken locks shared by every fork and no fork lock (the old
// g_fork_locks): a prepare clears the record another fork's parent handler
// still needs, which then leaves locks held forever. It must be caught (a
// data race on the record, or the watchdog's deadlock); ctest registers
// that run as a test that passes only on one of those two messages.
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstring>
#include <thread>
#include <vector>

#include "api/fork_handlers.h"
#include "hpcalloc.h"

namespace {

using hpcalloc::internal::ForkHandlers;
using hpcalloc::internal::ForkRecord;

// BROKEN: the old design. One record for every fork, cleared by each
// prepare, and nothing serialising forks.
struct SharedForkRecord {
  static constexpr bool kSerialiseForks = false;
  static inline ForkRecord record;
  static ForkRecord& begin() {
    record = ForkRecord{};
    return record;
  }
  static ForkRecord end() { return record; }
};

struct ProductionHandlers {
  static void prepare() { hpcalloc::internal::prepare_fork(); }
  static void parent() { hpcalloc::internal::parent_after_fork(); }
};
using BrokenHandlers = ForkHandlers<SharedForkRecord>;

constexpr int kForkers = 3;
constexpr int kForksEach = 8;
constexpr int kDirectCallers = 2;
constexpr int kDirectRoundsEach = 200;
constexpr int kAllocators = 2;
constexpr int kStallSeconds = 30;

// Relaxed throughout: counters and flags that publish no data (the joins
// order everything the checks read).
std::atomic<int> g_failures{0};
std::atomic<unsigned long> g_progress{0};  // rounds done, for the watchdog
std::atomic<bool> g_done{false};

void fail(const char* what) {
  g_failures.fetch_add(1, std::memory_order_relaxed);
  std::fprintf(stderr, "FAIL: %s\n", what);
}

void raw_write(const char* text) { syscall(SYS_write, 2, text, std::strlen(text)); }

void watchdog() {
  unsigned long last = g_progress.load(std::memory_order_relaxed);
  int still = 0;
  while (!g_done.load(std::memory_order_relaxed)) {
    std::this_thread::sleep_for(std::chrono::seconds(1));
    const unsigned long now = g_progress.load(std::memory_order_relaxed);
    still = now == last ? still + 1 : 0;
    last = now;
    if (still == kStallSeconds) {
      raw_write("FAIL: no progress for 30 s: the fork handlers deadlocked\n");
      syscall(SYS_exit_group, 1);
    }
  }
}

std::size_t size_for(unsigned i) {
  switch (i % 16) {
    case 0: return 2000 + i % 5000;              // medium
    case 1: return (1u << 20) + (i % 7) * 4096;  // huge
    default: return 16 + (i * 37) % 1000;        // small
  }
}

void* filled(std::size_t size, unsigned char value) {
  auto* p = static_cast<unsigned char*>(hpc_malloc(size));
  if (p != nullptr) std::memset(p, value, size < 256 ? size : 256);
  return p;
}

bool holds(const void* block, std::size_t size, unsigned char value) {
  const auto* p = static_cast<const unsigned char*>(block);
  for (std::size_t i = 0; i < (size < 256 ? size : 256); ++i) {
    if (p[i] != value) return false;
  }
  return true;
}

[[noreturn]] void child(void* inherited, std::size_t inherited_size) {
  // A child that hangs dies (SIGALRM) rather than keep ctest waiting on the
  // output it shares.
  alarm(kStallSeconds);
  bool ok = holds(inherited, inherited_size, 0x5a);
  hpc_free(inherited);
  for (unsigned i = 0; i < 500; ++i) {
    void* p = filled(size_for(i), static_cast<unsigned char>(i));
    void* q = hpc_realloc(p, size_for(i + 1) + 8);
    if (q == nullptr || !holds(q, size_for(i) < size_for(i + 1) ? size_for(i) : size_for(i + 1),
                               static_cast<unsigned char>(i))) {
      ok = false;
    }
    hpc_free(q);
  }
  _exit(ok ? 0 : 1);
}

void forker(int index) {
  for (int f = 0; f < kForksEach; ++f) {
    const std::size_t size = size_for(static_cast<unsigned>(index * 31 + f));
    void* inherited = filled(size, 0x5a);
    const pid_t pid = fork();
    if (pid == 0) child(inherited, size);
    hpc_free(inherited);
    int status = 0;
    if (pid < 0 || waitpid(pid, &status, 0) != pid || !WIFEXITED(status) ||
        WEXITSTATUS(status) != 0) {
      fail("a child of a concurrent fork failed");
    }
    g_progress.fetch_add(1, std::memory_order_relaxed);
  }
}

template <class Handlers>
void direct_caller(int index) {
  for (int round = 0; round < kDirectRoundsEach; ++round) {
    Handlers::prepare();
    // A real fork spends a while between its handlers (copying the address
    // space): other threads get to run, and to start their own forks.
    std::this_thread::yield();
    Handlers::parent();
    // Allocating between forks: a lock a parent handler failed to release
    // stops this thread too.
    hpc_free(filled(size_for(static_cast<unsigned>(index + round)), 1));
    g_progress.fetch_add(1, std::memory_order_relaxed);
  }
}

struct Slot {
  std::atomic<void*> block{nullptr};
};
Slot g_slots[16];

// `stop` is read relaxed: a flag only, the join orders the rest.
void allocator(int index, const std::atomic<bool>& stop) {
  for (unsigned i = 0; !stop.load(std::memory_order_relaxed); ++i) {
    void* mine = (i % 64 == 0) ? hpc_malloc_on_node(size_for(i), 0) : filled(size_for(i), 2);
    // acq_rel: a block's contents travel with it to the thread that frees it.
    void* previous = g_slots[(index * 5 + i) % 16].block.exchange(mine, std::memory_order_acq_rel);
    hpc_free(previous);
    if (i % 512 == 0) hpc_malloc_trim(0);
  }
}

void churn(const std::atomic<bool>& stop) {
  while (!stop.load(std::memory_order_relaxed)) {
    void* handed[32] = {};
    std::thread([&handed] {
      for (unsigned i = 0; i < 64; ++i) {
        void* p = filled(size_for(i), 3);
        if (i % 2 == 0) {
          hpc_free(p);
        } else {
          handed[i / 2] = p;
        }
      }
    }).join();
    for (void* p : handed) hpc_free(p);  // blocks of a pooled heap
  }
}

template <class Direct>
void run() {
  std::thread dog(watchdog);
  std::atomic<bool> stop{false};
  std::vector<std::thread> background;
  for (int a = 0; a < kAllocators; ++a) background.emplace_back(allocator, a, std::cref(stop));
  background.emplace_back(churn, std::cref(stop));
  std::vector<std::thread> forkers;
  for (int f = 0; f < kForkers; ++f) forkers.emplace_back(forker, f);
  for (int d = 0; d < kDirectCallers; ++d) forkers.emplace_back(direct_caller<Direct>, d);
  for (auto& t : forkers) t.join();
  stop.store(true);
  for (auto& t : background) t.join();
  // Every lock free again: these take them all.
  hpc_malloc_trim(0);
  std::size_t heaps = 0;
  hpc_stat("heaps_created", &heaps);
  for (Slot& slot : g_slots) hpc_free(slot.block.exchange(nullptr));
  g_done.store(true);
  dog.join();
}

}  // namespace

int main(int argc, char** argv) {
  if (argc == 3 && std::strcmp(argv[1], "--broken") == 0 &&
      std::strcmp(argv[2], "shared_record") == 0) {
    run<BrokenHandlers>();
    // Reaching here means the twin went unnoticed this time.
    std::printf("fork handlers stress (broken shared_record): not caught\n");
    return 0;
  }
  if (argc != 1) {
    std::fprintf(stderr, "usage: %s [--broken shared_record]\n", argv[0]);
    return 2;
  }
  run<ProductionHandlers>();
  if (g_failures.load() != 0) {
    std::fprintf(stderr, "%d failures\n", g_failures.load());
    return 1;
  }
  std::printf("fork handlers stress: %d concurrent forks and %d direct handler runs passed\n",
              kForkers * kForksEach, kDirectCallers * kDirectRoundsEach);
  return 0;
}

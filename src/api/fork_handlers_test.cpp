// The fork handlers (fork_handlers.h) of the static library's process-wide
// allocator, in real forks: which heaps the child keeps, and a fork made
// while this thread holds one of the allocator's locks (what a signal
// handler that interrupted it there sees). Each child reports through its
// exit status: 0, or the number of the first check that failed.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <mutex>
#include <string_view>
#include <thread>

#include "api/globals.h"
#include "hpcalloc.h"

namespace {

using hpcalloc::internal::Globals;

std::size_t stat(const char* name) {
  std::size_t value = 0;
  EXPECT_EQ(hpc_stat(name, &value), 0) << name;
  return value;
}

// Runs child() in a forked child; returns its exit status (or -1, also when
// the child hangs: SIGALRM ends it after 60 s). After a child failed, later
// calls return -2 at once without forking: the failure may be a lock the
// child handler forgot, which every later child would hang on for 60 s.
bool a_child_failed = false;

template <class Child>
int in_child(Child child) {
  if (a_child_failed) return -2;
  const pid_t pid = fork();
  if (pid == 0) {
    alarm(60);
    _exit(child());
  }
  int status = 0;
  const int result =
      pid < 0 || waitpid(pid, &status, 0) != pid || !WIFEXITED(status) ? -1 : WEXITSTATUS(status);
  a_child_failed = result != 0;
  return result;
}

// Every lock the prepare handler takes is free again after the fork, in the
// child (taken afresh, here with try_lock: a lock left held would make the
// child's next allocation of that kind spin forever) and in the parent; and
// the child serves every size family. The locks are taken by other threads
// around the fork too, so the prepare really waits for and takes them.
// A planted bug (a source left locked in the child) was caught only by a
// preload test's 45 s watchdog before this test.
int every_lock_is_free(Globals* g) {
  using hpcalloc::internal::fork_lock;
  using hpcalloc::internal::init_lock;
  auto free_lock = [](auto& lock) {
    if (!lock.try_lock()) return false;
    lock.unlock();
    return true;
  };
  if (!free_lock(fork_lock())) return 1;
  if (!free_lock(init_lock())) return 2;
  if (!free_lock(g->fallback_lock)) return 3;
  for (unsigned n = 0; n < g->numa.node_count(); ++n) {
    if (!free_lock(g->numa.node_lock(n))) return 4;
  }
  if (!g->pool.try_lock_for_fork()) return 5;
  g->pool.unlock_after_fork();
  for (unsigned i = 0; i < g->numa.source_count(); ++i) {
    if (!g->numa.source_at(i).try_lock_for_fork()) return 6;
    g->numa.source_at(i).unlock_after_fork();
  }
  return 0;
}

TEST(ForkHandlers, EveryLockIsFreeInTheChildAndTheParent) {
  hpc_free(hpc_malloc(std::size_t{4} << 20));  // sources, pool and a heap exist
  Globals* g = hpcalloc::internal::globals();
  ASSERT_NE(g, nullptr);
  std::atomic<bool> stop{false};
  // Busy with every lock the fork takes: thread heaps come and go (pool),
  // huge blocks are mapped and cached (sources).
  std::thread busy([&] {
    while (!stop.load(std::memory_order_relaxed)) {
      std::thread([] { hpc_free(hpc_malloc(std::size_t{3} << 20)); }).join();
    }
  });
  for (int fork_number = 0; fork_number < 3; ++fork_number) {
    EXPECT_EQ(
        in_child([&] {
          if (int lock = every_lock_is_free(g); lock != 0) return lock;
          for (std::size_t size : {std::size_t{48}, std::size_t{20000}, std::size_t{5} << 20}) {
            void* p = hpc_malloc(size);
            if (p == nullptr) return 10;
            hpc_free(p);
          }
          return 0;
        }),
        0)
        << "fork " << fork_number;
  }
  stop.store(true, std::memory_order_relaxed);
  busy.join();
  EXPECT_EQ(every_lock_is_free(g), 0);
}

TEST(ForkHandlers, ChildKeepsTheForkingThreadsHeapAndReusesItsMemory) {
  void* inherited = hpc_malloc(100);  // this thread has a heap
  const std::size_t created = stat("heaps_created");
  const std::size_t abandoned = stat("heaps_abandoned");
  EXPECT_EQ(in_child([&] {
              if (stat("heaps_created") != created) return 1;
              if (stat("heaps_abandoned") != abandoned) return 2;
              hpc_free(inherited);  // back into the kept heap's cache...
              void* again = hpc_malloc(100);
              // ...and served from it (the secure flavour's quarantine
              // holds it back: reuse is what it delays).
              const bool quarantined = std::string_view(hpc_flavour()) == "secure";
              if (again != inherited && !quarantined) return 3;
              hpc_free(again);
              if (stat("heaps_created") != created) return 4;
              return 0;
            }),
            0);
  hpc_free(inherited);
}

TEST(ForkHandlers, ChildAbandonsTheHeapsOfOtherThreadsOnly) {
  void* mine = hpc_malloc(64);
  std::mutex mutex;
  std::condition_variable changed;
  bool attached = false;
  bool release = false;
  std::thread other([&] {
    void* p = hpc_malloc(64);  // attaches a heap
    std::unique_lock<std::mutex> lock(mutex);
    attached = true;
    changed.notify_all();
    changed.wait(lock, [&] { return release; });
    hpc_free(p);
  });
  {
    std::unique_lock<std::mutex> lock(mutex);
    changed.wait(lock, [&] { return attached; });
  }
  const std::size_t abandoned = stat("heaps_abandoned");
  const std::size_t live = stat("heaps_live");
  EXPECT_EQ(in_child([&] {
              if (stat("heaps_abandoned") != abandoned + 1) return 1;
              if (stat("heaps_live") != live - 1) return 2;
              hpc_free(mine);
              return 0;
            }),
            0);
  {
    std::lock_guard<std::mutex> lock(mutex);
    release = true;
  }
  changed.notify_all();
  other.join();
  hpc_free(mine);
}

// As if a signal handler had interrupted this thread inside the pool and
// forked: the prepare does not wait for the lock this thread holds, the
// child does not trust the pool (every heap abandoned, this thread's
// included) yet allocates, and the parent leaves the lock to its holder.
TEST(ForkHandlers, ForkWhileThisThreadHoldsThePoolsLock) {
  hpc_free(hpc_malloc(64));
  Globals* g = hpcalloc::internal::globals();
  ASSERT_NE(g, nullptr);
  const std::size_t created = stat("heaps_created");
  g->pool.lock_for_fork();
  const int child = in_child([&] {
    if (g->pool.held_by_caller_for_fork()) return 1;  // started afresh
    void* p = hpc_malloc(64);
    if (p == nullptr) return 2;
    hpc_free(p);
    std::size_t abandoned = 0;
    std::size_t now_created = 0;
    hpc_stat("heaps_abandoned", &abandoned);
    hpc_stat("heaps_created", &now_created);
    if (abandoned != created) return 3;        // every inherited heap
    if (now_created != created + 1) return 4;  // and a fresh one
    return 0;
  });
  EXPECT_TRUE(g->pool.held_by_caller_for_fork());  // not unlocked by the parent handler
  g->pool.unlock_after_fork();
  EXPECT_EQ(child, 0);
  EXPECT_EQ(stat("heaps_created"), created);
}

// The same inside a memory source: the child forgets that source's cache
// (it may be half-updated) and still allocates; the parent's cache is kept.
TEST(ForkHandlers, ForkWhileThisThreadHoldsASourcesLock) {
  hpc_free(hpc_malloc(std::size_t{4} << 20));  // a cached mapping
  Globals* g = hpcalloc::internal::globals();
  ASSERT_NE(g, nullptr);
  const std::size_t cached = stat("cached_bytes");
  ASSERT_GT(cached, 0u);
  auto& source = g->numa.source_at(0);
  source.lock_for_fork();
  const int child = in_child([&] {
    if (stat("cached_bytes") != 0) return 1;
    void* p = hpc_malloc(std::size_t{4} << 20);
    if (p == nullptr) return 2;
    hpc_free(p);
    return 0;
  });
  EXPECT_TRUE(source.held_by_caller_for_fork());
  source.unlock_after_fork();
  EXPECT_EQ(child, 0);
  EXPECT_EQ(stat("cached_bytes"), cached);
}

}  // namespace

// The fork handlers (fork_handlers.h) of the static library's process-wide
// allocator, in real forks: which heaps the child keeps, and a fork made
// while this thread holds one of the allocator's locks (what a signal
// handler that interrupted it there sees). Each child reports through its
// exit status: 0, or the number of the first check that failed.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

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

// Runs child() in a forked child; returns its exit status (or -1).
template <class Child>
int in_child(Child child) {
  const pid_t pid = fork();
  if (pid == 0) _exit(child());
  int status = 0;
  if (pid < 0 || waitpid(pid, &status, 0) != pid || !WIFEXITED(status)) return -1;
  return WEXITSTATUS(status);
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

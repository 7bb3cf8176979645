// A fork racing the process's first allocation must run the fork handlers:
// the globals (where every allocator lock lives) become visible only once
// the handlers are registered (global_allocator.cpp, init()). A program of
// its own, so that the allocation made here is the process's first.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <thread>

#include "api/globals.h"
#include "hpcalloc.h"

namespace {

using hpcalloc::internal::Globals;

TEST(ForkAtFirstAllocation, ForkAsSoonAsTheGlobalsAppearRunsTheHandlers) {
  ASSERT_EQ(hpcalloc::internal::globals(), nullptr) << "needs the process's first allocation";
  std::atomic<bool> go{false};
  std::thread first([&go] {
    // Relaxed: a start signal only.
    while (!go.load(std::memory_order_relaxed)) {
    }
    hpc_free(hpc_malloc(64));
  });
  go.store(true, std::memory_order_relaxed);
  Globals* g = nullptr;
  while ((g = hpcalloc::internal::globals()) == nullptr) {
  }
  // As if this thread were inside the pool: only the handlers can tell the
  // child that the lock's holder is gone (its child handler starts the lock
  // afresh); without them the child would find it held by this thread.
  g->pool.lock_for_fork();
  const pid_t pid = fork();
  if (pid == 0) {
    alarm(30);
    _exit(g->pool.held_by_caller_for_fork() ? 1 : 0);
  }
  g->pool.unlock_after_fork();
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0)
      << "the fork ran without the handlers (status " << status << ")";
  first.join();
}

}  // namespace

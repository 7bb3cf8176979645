// The background thread: see background_thread.h.
#include "api/background_thread.h"

#include <pthread.h>
#include <signal.h>
#include <sys/prctl.h>
#include <time.h>

#include <atomic>
#include <cstdint>
#include <cstdlib>

#include "api/globals.h"
#include "base/base.h"
#include "base/process_info.h"

namespace hpcalloc::internal {
namespace {

// kLoading: before the load-time constructor, too early for pthread_create.
// kIdle: may be started. kStarting: one caller is creating it. kOff: not
// wanted, not needed (a delay of 0 or -1) or failed to start (warned once).
enum State : int { kLoading, kIdle, kStarting, kRunning, kOff };
constinit std::atomic<int> g_state{kLoading};
constinit std::atomic<std::size_t> g_passes{0};

// Its loop needs little: the decay passes run on this stack (no recursion,
// no large frame). Sanitizer builds need more for their own bookkeeping.
constexpr std::size_t kStackBytes = 256 * 1024;

// A quarter of the delay, so memory goes back at most 1.25 delays after it
// became free; at least 10 ms (a delay of a few ms would otherwise keep a
// core busy) and at most 1 s (a long delay still sees the caches often).
std::uint64_t interval_ms(std::int64_t decay_ms) {
  const auto quarter = static_cast<std::uint64_t>(decay_ms) / 4;
  return quarter < 10 ? 10 : (quarter > 1000 ? 1000 : quarter);
}

void* run(void* arg) {
  prctl(PR_SET_NAME, "hpcalloc-decay");  // top(1) and gdb name it
  Globals* g = static_cast<Globals*>(arg);
  const std::uint64_t ms = interval_ms(g->settings.limits.decay_ms);
  const timespec interval{static_cast<time_t>(ms / 1000), static_cast<long>(ms % 1000) * 1000000};
  for (;;) {
    nanosleep(&interval, nullptr);  // every signal is blocked: no EINTR to retry
    g->pool.decay_pooled();
    // After the pooled heaps: the segments they gave back wait in a cache.
    const std::uint64_t now = g->pal.now_ms();
    for (unsigned i = 0; i < g->numa.source_count(); ++i) g->numa.source_at(i).decay(now);
    // Relaxed: a statistic, read alone.
    g_passes.fetch_add(1, std::memory_order_relaxed);
  }
  return nullptr;
}

// The load-time constructor: from here on pthread_create works. It builds
// the globals only when the variable is set (a program that does not ask
// pays nothing at load).
[[gnu::constructor]] void start_at_load() {
  int loading = kLoading;
  g_state.compare_exchange_strong(loading, kIdle, std::memory_order_acq_rel);
  if (env_value("HPCALLOC_BACKGROUND_THREAD") == nullptr) return;
  start_background_thread(init());
}

}  // namespace

void start_background_thread(Globals* g) {
  if (!g->settings.background_thread) return;
  // acq_rel: whoever wins creates the thread; the others leave at once.
  int idle = kIdle;
  if (g_state.load(std::memory_order_relaxed) != kIdle ||
      !g_state.compare_exchange_strong(idle, kStarting, std::memory_order_acq_rel)) {
    return;
  }
  if (g->settings.limits.decay_ms <= 0) {  // at once or never: nothing waits for a pass
    g_state.store(kOff, std::memory_order_release);
    return;
  }
  // The thread inherits the mask: a signal of the program never runs on it.
  sigset_t all;
  sigset_t old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  pthread_attr_setstacksize(&attr, kStackBytes);
  // pthread_create may allocate (its thread's TLS): this thread has a heap,
  // or attaches one, whose start call finds kStarting and returns.
  pthread_t thread;
  const int rc = pthread_create(&thread, &attr, run, g);
  pthread_attr_destroy(&attr);
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  if (rc != 0) {
    warn(
        "HPCALLOC_BACKGROUND_THREAD: cannot start the background thread (pthread_create failed); "
        "decay runs on the threads' slow paths only");
    g_state.store(kOff, std::memory_order_release);
    return;
  }
  g_state.store(kRunning, std::memory_order_release);
}

void background_thread_after_fork_in_child() {
  // One thread in the child, relaxed is enough. A start another thread of
  // the parent was making (kStarting) did not happen here either.
  const int state = g_state.load(std::memory_order_relaxed);
  if (state == kRunning || state == kStarting) g_state.store(kIdle, std::memory_order_relaxed);
}

std::size_t background_passes() { return g_passes.load(std::memory_order_relaxed); }

}  // namespace hpcalloc::internal

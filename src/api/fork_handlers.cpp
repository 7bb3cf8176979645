// The production fork() handlers (fork_handlers.h), registered with
// pthread_atfork on first use (globals.h): each fork's record is the forking
// thread's own, one per nesting level (a signal handler may fork while this
// thread is inside the handlers of its own fork), and forks are serialised
// by the fork lock.
#include "api/fork_handlers.h"

#include <atomic>

#include "api/background_thread.h"
#include "api/globals.h"
#include "base/base.h"

namespace hpcalloc::internal {
namespace {

constinit Lock g_fork_lock;

// Deeper nesting would need a signal handler that forks while interrupting
// the fork handlers of a signal handler that forks while ...
constexpr unsigned kMaxNestedForks = 4;
constinit thread_local ForkRecord tls_fork_records[kMaxNestedForks];
constinit thread_local unsigned tls_fork_depth = 0;

struct ThreadForkRecords {
  static constexpr bool kSerialiseForks = true;

  static ForkRecord& begin() {
    if (tls_fork_depth == kMaxNestedForks) fatal("fork() nested in signal handlers too deeply");
    ForkRecord& record = tls_fork_records[tls_fork_depth++];
    // A compiler barrier (a nested fork runs on this thread): the slot is
    // ours before it is filled, so a nested prepare takes the next one.
    std::atomic_signal_fence(std::memory_order_seq_cst);
    record = ForkRecord{};
    return record;
  }

  static ForkRecord end() {
    const ForkRecord record = tls_fork_records[tls_fork_depth - 1];
    // The same, the other way: the copy is made before the slot is freed.
    std::atomic_signal_fence(std::memory_order_seq_cst);
    --tls_fork_depth;
    return record;
  }
};

using Handlers = ForkHandlers<ThreadForkRecords>;

}  // namespace

Lock& fork_lock() { return g_fork_lock; }

void prepare_fork() { Handlers::prepare(); }
void parent_after_fork() { Handlers::parent(); }
void child_after_fork() {
  Handlers::child();
  background_thread_after_fork_in_child();
}

}  // namespace hpcalloc::internal

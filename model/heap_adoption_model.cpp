// Relacy model of heap adoption (mem/heap_pool.h): a thread exits while
// others push remote frees into its heap's queue; a new thread adopts the
// heap and drains them. ThreadHeap and HeapPool are too big for the model
// checker, so this runs the *protocol* on the production pieces it rests on
// (RemoteFreeQueue<RelacySync> and SpinLock<RelacySync>), with everything
// else of a heap reduced to the owner-only plain state (Sync::Var, so Relacy
// sees races on it) that changes hands with the heap:
//   release (thread exit): check the record is attached (outside the lock,
//     as HeapPool does), trim (drain + owner work), then under the lock
//     drain every pooled heap (their remote frees need not wait for an
//     adopter), mark this one pooled and push it on the pooled list;
//   acquire (thread start): under the lock pop a pooled heap, or make a new
//     one; mark it attached; then, outside the lock, drain it.
// Checks: every block pushed to a heap is drained exactly once (by the
// exiting thread's trim, by the exit's drain of pooled heaps, by the
// adopter, or by whoever drains it next: after()) with its contents; the
// owner state is never touched by two threads without the lock ordering
// them; a heap pooled before the new thread looks is adopted rather than a
// new one made.
// Broken twins (each must be caught):
//   relaxed pool lock: the spin lock's acquire/release weakened to relaxed,
//     so the heap's owner state crosses threads unsynchronised;
//   publish before trim: the exiting thread pools its heap first and trims
//     after, so the adopter and the exiting thread own it at once;
//   drain before ownership: the adopter peeks at the pooled list and drains
//     the heap before taking it under the lock;
//   drain pooled outside the lock: the exiting thread drains the pooled
//     heaps before taking the lock, racing with their adopter.
#include <atomic>

#include "ds/remote_free_queue.h"
#include "model/model_runner.h"
#include "sync/spin_lock.h"

namespace hpcalloc::model {
namespace {

struct RelaxedLock {
  static constexpr std::memory_order kAcquire = std::memory_order_relaxed;  // BROKEN
  static constexpr std::memory_order kRelease = std::memory_order_relaxed;  // BROKEN
};

enum class Protocol {
  kHeapPool,               // what heap_pool.h does
  kPublishBeforeTrim,      // BROKEN: release pools the heap, then trims it
  kDrainBeforeOwnership,   // BROKEN: acquire drains a pooled heap before taking it
  kDrainPooledOutsideLock  // BROKEN: release drains the pooled heaps without the lock
};

constexpr int kAttached = 1;
constexpr int kPooled = 2;
constexpr unsigned kMaxBlocks = 4;

struct Block {
  RelacySync::Var<void*> link;  // first: the queue overlays it
  RelacySync::Var<int> payload;
};

// What adoption hands over: a heap's remote-free queue (written by any
// thread) and its owner-only state, plus the pool's record fields.
struct ModelHeap {
  RemoteFreeQueue<RelacySync> remote;
  // Owner-only: the runs' bitmaps a drained block goes back to (one counter
  // per block) and the rest of the owner's state (caches, counters) that
  // every owner operation touches.
  RelacySync::Var<int> freed[kMaxBlocks];
  RelacySync::Var<int> owner_work{0};
  // HeapPool::Record.
  RelacySync::Var<ModelHeap*> next_pooled{nullptr};
  RelacySync::Var<int> state{0};

  void owner_operation() { owner_work.store(owner_work.load() + 1); }
};

// Thread 0 owns `exiting` and exits; threads 1..kPushers push kPerPusher
// blocks each; the last thread pushes kAdopterPushes blocks, then starts
// (acquires a heap), drains it and allocates from it. Blocks go to the
// exiting thread's heap, or, with kPrePooled, every other one to a heap
// that an earlier thread left pooled (which the exit drains under the lock,
// and which the new thread adopts if it comes first).
template <unsigned kPushers, unsigned kPerPusher, unsigned kAdopterPushes, bool kPrePooled,
          class LockOrders, Protocol kProtocol>
struct ExitWhileFreeing
    : rl::test_suite<
          ExitWhileFreeing<kPushers, kPerPusher, kAdopterPushes, kPrePooled, LockOrders, kProtocol>,
          kPushers + 2> {
  static constexpr unsigned kBlocks = kPushers * kPerPusher + kAdopterPushes;
  static_assert(kBlocks <= kMaxBlocks);
  static constexpr unsigned kAdopter = kPushers + 1;

  SpinLock<RelacySync, LockOrders> lock;
  RelacySync::Var<ModelHeap*> pooled{nullptr};  // under `lock`
  RelacySync::Var<int> created{0};              // under `lock`
  ModelHeap exiting;                            // thread 0's
  ModelHeap earlier;                            // pooled at the start (kPrePooled)
  ModelHeap fresh;                              // what new_record() would build
  Block blocks[kBlocks];
  ModelHeap* adopted = nullptr;  // the adopter's heap (its own variable)

  ModelHeap& target(unsigned block) { return kPrePooled && block % 2 == 1 ? earlier : exiting; }

  void before() {
    for (ModelHeap* heap : {&exiting, &earlier, &fresh}) {
      for (auto& f : heap->freed) f.store(0);
    }
    exiting.state.store(kAttached);
    created.store(1);
    if (kPrePooled) {
      earlier.state.store(kPooled);
      pooled.store(&earlier);
      created.store(2);
    }
  }

  // ThreadHeap::drain_remote on the model heap: owner only.
  void drain(ModelHeap& heap) {
    void* p = heap.remote.take_all();
    if (p == nullptr) return;
    for (; p != nullptr; p = RemoteFreeQueue<RelacySync>::next(p)) {
      Block* b = static_cast<Block*>(p);
      const unsigned index = static_cast<unsigned>(b - blocks);
      RL_ASSERT(index < kBlocks && &target(index) == &heap);
      RL_ASSERT(b->payload.load() == static_cast<int>(index) + 1);
      heap.freed[index].store(heap.freed[index].load() + 1);
    }
    heap.owner_operation();
  }

  // ThreadHeap::trim: drains, then flushes the owner's caches.
  void trim(ModelHeap& heap) {
    drain(heap);
    heap.owner_operation();
  }

  // Under the lock, pooled heaps belong to its holder: take back what other
  // threads freed into them meanwhile.
  void drain_pooled() {
    for (ModelHeap* r = pooled.load(); r != nullptr; r = r->next_pooled.load()) drain(*r);
  }

  void publish(ModelHeap& heap) {
    if constexpr (kProtocol == Protocol::kDrainPooledOutsideLock) drain_pooled();  // BROKEN
    LockGuard guard(lock);
    if constexpr (kProtocol != Protocol::kDrainPooledOutsideLock) drain_pooled();
    heap.state.store(kPooled);
    heap.next_pooled.store(pooled.load());
    pooled.store(&heap);
  }

  // HeapPool::release.
  void release(ModelHeap& heap) {
    if (heap.state.load() != kAttached) return;  // read outside the lock, as HeapPool does
    if constexpr (kProtocol == Protocol::kPublishBeforeTrim) {
      publish(heap);
      trim(heap);  // BROKEN: the heap may already be someone else's
    } else {
      trim(heap);
      publish(heap);
    }
  }

  // HeapPool::acquire.
  ModelHeap* acquire() {
    if constexpr (kProtocol == Protocol::kDrainBeforeOwnership) {
      // BROKEN: drains what it hopes to adopt, outside the lock.
      if (ModelHeap* peek = pooled.load(); peek != nullptr) drain(*peek);
    }
    ModelHeap* heap = nullptr;
    {
      LockGuard guard(lock);
      heap = pooled.load();
      if (heap != nullptr) {
        pooled.store(heap->next_pooled.load());
      } else {
        created.store(created.load() + 1);
        heap = &fresh;
      }
      heap->state.store(kAttached);
    }
    drain(*heap);
    return heap;
  }

  void push(unsigned index) {
    blocks[index].payload.store(static_cast<int>(index) + 1);
    target(index).remote.push(&blocks[index]);
  }

  void thread(unsigned index) {
    if (index == 0) {
      exiting.owner_operation();  // the thread's last malloc
      release(exiting);
    } else if (index < kAdopter) {
      for (unsigned i = 0; i < kPerPusher; ++i) push((index - 1) * kPerPusher + i);
    } else {
      for (unsigned i = 0; i < kAdopterPushes; ++i) push(kPushers * kPerPusher + i);
      adopted = acquire();
      adopted->owner_operation();  // the new thread's first malloc
    }
  }

  void after() {
    // Whoever owns each heap next drains what is left.
    drain(exiting);
    drain(earlier);
    for (unsigned i = 0; i < kBlocks; ++i) RL_ASSERT(target(i).freed[i].load() == 1);
    // A new heap only when none was pooled: adoption bounds the heap count.
    const bool made_new = adopted == &fresh;
    RL_ASSERT(created.load() == (kPrePooled ? 2 : 1) + (made_new ? 1 : 0));
    if (made_new) {
      RL_ASSERT(!kPrePooled && pooled.load() == &exiting);
    }
  }
};

template <unsigned kPushers, unsigned kPerPusher, unsigned kAdopterPushes, bool kPrePooled = false,
          class LockOrders = SpinLockOrders, Protocol kProtocol = Protocol::kHeapPool>
using Model =
    ExitWhileFreeing<kPushers, kPerPusher, kAdopterPushes, kPrePooled, LockOrders, kProtocol>;

const ModelCheck kChecks[] = {
    // Two threads: the exiting owner, and a thread that frees three of its
    // blocks and then starts (adopting the heap if it is pooled by then).
    {"exit_and_adopt_two_threads_full_search", &run_relacy<Model<0, 0, 3>>, rl::sched_full, 0,
     rl::test_result_success},
    // The same with a heap already pooled: the exit drains it under the
    // lock unless the new thread adopts it first.
    {"exit_drains_pooled_two_threads_full_search", &run_relacy<Model<0, 0, 3, true>>,
     rl::sched_full, 0, rl::test_result_success},
    // Three threads: a separate remote freer pushes while the owner exits
    // and the new thread adopts: 2 + 1 blocks under a context bound, one
    // block each under full search (~9 million interleavings, ~10 s).
    {"exit_free_adopt_three_threads_context_bound_3", &run_relacy<Model<1, 2, 1>>, rl::sched_bound,
     3, rl::test_result_success},
    {"exit_drains_pooled_three_threads_context_bound_3", &run_relacy<Model<1, 2, 1, true>>,
     rl::sched_bound, 3, rl::test_result_success},
    {"exit_free_adopt_three_threads_full_search", &run_relacy<Model<1, 1, 1>>, rl::sched_full, 0,
     rl::test_result_success},
    {"broken_relaxed_pool_lock_is_caught", &run_relacy<Model<0, 0, 1, false, RelaxedLock>>,
     rl::sched_full, 0, rl::test_result_data_race},
    {"broken_publish_before_trim_is_caught",
     &run_relacy<Model<0, 0, 1, false, SpinLockOrders, Protocol::kPublishBeforeTrim>>,
     rl::sched_full, 0, rl::test_result_data_race},
    {"broken_drain_before_ownership_is_caught",
     &run_relacy<Model<0, 0, 1, false, SpinLockOrders, Protocol::kDrainBeforeOwnership>>,
     rl::sched_full, 0, rl::test_result_data_race},
    {"broken_drain_pooled_outside_lock_is_caught",
     &run_relacy<Model<0, 0, 2, true, SpinLockOrders, Protocol::kDrainPooledOutsideLock>>,
     rl::sched_full, 0, rl::test_result_data_race},
};

}  // namespace
}  // namespace hpcalloc::model

int main(int argc, char** argv) {
  using namespace hpcalloc::model;
  return run_model_checks(kChecks, sizeof kChecks / sizeof kChecks[0], argc, argv);
}

// RemoteFreeQueue: the lock-free multi-producer, single-consumer stack
// through which other threads hand a heap the blocks they free. The link is
// stored in the freed block itself (its first word, through Sync::Var so the
// model checker sees it), so the queue needs no memory of its own.
//
// Producers push with a compare-exchange loop on the head (lock-free); the
// owner takes the whole list with one exchange. There is no pop of a single
// node, so there is no ABA window: a producer's CAS only succeeds if the head
// is still the value whose block its link names, and nothing it links to can
// be recycled before the owner takes it. Unlike a Vyukov-style intrusive
// queue, the consumer never waits for a producer that is half-way through
// linking. Order is LIFO, which the heap does not care about.
//
// Orders is a policy only so model/ can build deliberately broken twins.
#pragma once

#include <atomic>

#include "sync/sync_policy.h"

namespace hpcalloc {

struct RemoteFreeQueueOrders {
  // A successful push publishes the block's link and everything the freeing
  // thread wrote before free(): it synchronises with take_all's acquire.
  static constexpr std::memory_order kPush = std::memory_order_release;
  // take_all acquires every push it takes (the release sequence of the
  // head), so the links and the blocks' contents are visible to the owner.
  static constexpr std::memory_order kTakeAll = std::memory_order_acquire;
  // false takes the list with a load and a separate store: the broken twin
  // that loses pushes landing in between.
  static constexpr bool kTakeWithExchange = true;
};

template <SyncPolicy Sync, class Orders = RemoteFreeQueueOrders>
class RemoteFreeQueue {
 public:
  using Link = typename Sync::template Var<void*>;

  RemoteFreeQueue() : head_(nullptr) {}
  RemoteFreeQueue(const RemoteFreeQueue&) = delete;
  RemoteFreeQueue& operator=(const RemoteFreeQueue&) = delete;

  // Pushes one freed block (at least a pointer in size, suitably aligned).
  void push(void* block) { push_chain(block, block); }

  // Pushes a chain first -> ... -> last already linked through their links
  // (a batch of frees to the same owner): one successful CAS for all.
  void push_chain(void* first, void* last) {
    // Relaxed: the value only seeds the CAS; a stale one makes it retry.
    void* head = head_.load(std::memory_order_relaxed);
    do {
      link_of(last)->store(head);
      // Failure relaxed: the reloaded head is again only a CAS seed.
    } while (!head_.compare_exchange_weak(head, first, Orders::kPush, std::memory_order_relaxed));
  }

  // Takes every block pushed so far; follow next() until nullptr.
  void* take_all() {
    // Relaxed peek: on the common empty path the owner takes nothing and
    // needs no synchronisation; a push it misses is taken next time.
    if (head_.load(std::memory_order_relaxed) == nullptr) return nullptr;
    if constexpr (Orders::kTakeWithExchange) {
      return head_.exchange(nullptr, Orders::kTakeAll);
    } else {
      void* all = head_.load(Orders::kTakeAll);
      head_.store(nullptr, std::memory_order_relaxed);
      return all;
    }
  }

  // The block pushed before `block` (nullptr at the end of a taken list).
  static void* next(void* block) { return link_of(block)->load(); }
  // Links `block` to `next` to build a chain for push_chain().
  static void link(void* block, void* next) { link_of(block)->store(next); }

  // A hint only: may be stale as soon as it returns.
  bool empty_relaxed() const { return head_.load(std::memory_order_relaxed) == nullptr; }
  // The same read with an order the caller needs (a seq_cst handshake).
  bool empty(std::memory_order mo) const { return head_.load(mo) == nullptr; }

 private:
  static Link* link_of(void* block) { return static_cast<Link*>(block); }

  typename Sync::template Atomic<void*> head_;
};

}  // namespace hpcalloc

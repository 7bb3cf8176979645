// The producers/owner scenario of ds/remote_free_queue.h, written once and
// run two ways: by the Relacy model (model/remote_free_queue_model.cpp, with
// RelacySync and Relacy's threads, every interleaving of a few blocks) and by
// the ThreadSanitizer stress (tsan/remote_free_queue_stress.cpp, with
// StdSync and std::thread, many blocks and iterations on real cores).
//
// Threads 0..kProducers-1 each write the payload of kPerProducer blocks (a
// plain Sync::Var) and push them, kChain at a time with push_chain (kChain 1:
// one push() each; > 1: the batches heaps send their remote frees in, the
// blocks linked before the one CAS); the last thread is the owner, which takes
// the list kDrains times while they run; after() takes the rest and checks
// every block was taken exactly once with its payload. Races on the links
// and payloads are the runner's to find (Relacy's var, TSan).
//
// Policies:
//   Sync     the synchronisation policy the queue and the blocks use;
//   Checker  how a failed check is reported: a type with
//            static void check(bool ok, const char* what) (Relacy fails the
//            test; the stress program counts and prints);
//   Orders   the queue's memory orders (a broken twin below, or production's).
// The scenario itself is a plain class with before(), thread(index) and
// after(); runners are adapters that call them (RelacyRunner in the model,
// run_with_std_threads in the stress program).
#pragma once

#include <atomic>

#include "ds/remote_free_queue.h"

namespace hpcalloc::scenarios {

// Broken twins of the queue, each of which a runner must catch.
struct RelaxedPush : RemoteFreeQueueOrders {
  static constexpr std::memory_order kPush = std::memory_order_relaxed;  // BROKEN
};
struct RelaxedTake : RemoteFreeQueueOrders {
  static constexpr std::memory_order kTakeAll = std::memory_order_relaxed;  // BROKEN
};
struct LoadThenStoreTake : RemoteFreeQueueOrders {
  static constexpr bool kTakeWithExchange = false;  // BROKEN
};

template <class Sync, class Checker, unsigned kProducersParam, unsigned kPerProducer,
          unsigned kDrains, class Orders = RemoteFreeQueueOrders, unsigned kChain = 1>
struct RemoteFreeQueueScenario {
  static_assert(kChain >= 1 && kPerProducer % kChain == 0, "whole chains only");
  static constexpr unsigned kProducers = kProducersParam;
  static constexpr unsigned kThreads = kProducers + 1;
  static constexpr unsigned kBlocks = kProducers * kPerProducer;
  using Queue = RemoteFreeQueue<Sync, Orders>;

  struct Block {
    typename Sync::template Var<void*> link;  // first: the queue overlays it
    typename Sync::template Var<int> payload;
  };

  Queue queue;
  Block blocks[kBlocks];
  int seen[kBlocks];  // owner-only (and after()), so plain ints

  void before() {
    for (int& s : seen) s = 0;
  }

  void drain() {
    for (void* p = queue.take_all(); p != nullptr; p = Queue::next(p)) {
      Block* b = static_cast<Block*>(p);
      const unsigned index = static_cast<unsigned>(b - blocks);
      Checker::check(index < kBlocks, "a taken block is one of the pushed blocks");
      Checker::check(b->payload.load() == static_cast<int>(index) + 1,
                     "a taken block carries its producer's payload");
      ++seen[index];
    }
  }

  void thread(unsigned index) {
    if (index < kProducers) {
      for (unsigned i = 0; i < kPerProducer; i += kChain) {
        Block* first = &blocks[index * kPerProducer + i];
        for (unsigned k = 0; k < kChain; ++k) {
          Block& b = first[k];
          b.payload.store(static_cast<int>(&b - blocks) + 1);
          if (k > 0) Queue::link(&b, &first[k - 1]);  // the chain runs newest first
        }
        if constexpr (kChain == 1) {
          queue.push(first);
        } else {
          queue.push_chain(&first[kChain - 1], first);
        }
      }
    } else {
      for (unsigned i = 0; i < kDrains; ++i) drain();
    }
  }

  void after() {
    drain();
    for (unsigned i = 0; i < kBlocks; ++i) {
      Checker::check(seen[i] == 1, "every pushed block is taken exactly once");
    }
  }
};

}  // namespace hpcalloc::scenarios

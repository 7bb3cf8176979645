// The exit/free/adopt scenario of mem/heap_pool.h, run on the production
// HeapPool and the production RemoteFrees with a model heap: by the Relacy
// model (model/heap_pool_model.cpp) and by the ThreadSanitizer stress
// (tsan/heap_pool_stress.cpp).
//
// Thread 0 owns heap E: it does its last owner operation and exits
// (HeapPool::release: trim, pool, handshake). Thread 1 owns heap S and frees
// kBlocks of E's blocks through its RemoteFrees (carriers of S), having the
// pool drain E when a push finds it pooled (the stand-in), then drains its
// own queue for its carriers. With kAdopter, thread 2 starts: it acquires a
// heap (E if pooled by then, else a new one) and does an owner operation.
// With kDecayer, thread 1 then runs a background decay pass over the pooled
// heaps (HeapPool::decay_pooled), racing E's pooling and its adoption.
// Checks:
//   nothing waits for a thread to start or exit: if E is still pooled at
//   the end, every block has already been drained into it;
//   every block freed exactly once, with its payload;
//   every carrier of S home once;
//   a new heap only when none was pooled (adoption bounds the heap count).
// Races on a heap's owner state (a Sync::Var every owner operation
// touches), payloads, carrier words and the pool's lists are the runner's
// to find.
#pragma once

#include <cstddef>
#include <cstdint>

#include "mem/heap_pool.h"
#include "mem/remote_frees.h"
#include "model/scenarios/carrier_slots.h"

namespace hpcalloc::scenarios {

// Broken twins of the pool protocol.
struct PoolsBeforeTrim : HeapPoolProtocol {
  static constexpr bool kTrimBeforePooling = false;  // BROKEN: adoption before the drain
};
struct StandInWithoutLock : HeapPoolProtocol {
  static constexpr bool kStandInLocks = false;  // BROKEN
};
struct DecayWithoutLock : HeapPoolProtocol {
  static constexpr bool kDecayLocks = false;  // BROKEN
};
struct RelaxedPoolLock : HeapPoolProtocol {
  struct LockOrders {
    static constexpr std::memory_order kAcquire = std::memory_order_relaxed;  // BROKEN
    static constexpr std::memory_order kRelease = std::memory_order_relaxed;  // BROKEN
  };
};
// BROKEN: push and flag without the seq_cst handshake: a push racing the
// pooling can be missed by both sides.
struct ReleaseAcquireHandshake : RemoteFreesPolicy {
  static constexpr std::memory_order kPush = std::memory_order_release;
  static constexpr std::memory_order kHandshake = std::memory_order_acq_rel;
};

template <class Sync, class Checker, unsigned kBlocksParam, bool kAdopter,
          class PoolProtocol = HeapPoolProtocol, class FreesPolicy = RemoteFreesPolicy,
          bool kDecayer = false>
struct HeapPoolScenario {
  static constexpr unsigned kBlocks = kBlocksParam;
  static constexpr unsigned kThreads = kAdopter ? 3 : 2;
  static constexpr unsigned kCapacity = 2;
  static constexpr unsigned kCarrierSlots = kBlocks + 1;
  template <class T>
  using Var = typename Sync::template Var<T>;

  struct Heap;
  using Frees = RemoteFrees<Sync, kCapacity, FreesPolicy>;
  using Word = typename Frees::Word;

  struct alignas(16) Block {
    Word link;  // first: the queue's link overlays it
    Var<int> payload;
  };

  // What HeapPool needs of a heap (heap_pool.h), with the owner's state
  // reduced to one Var every owner operation touches.
  struct Heap {
    struct Source {};
    struct Context {
      HeapPoolScenario* scenario;
    };

    Heap(const Context& context, Source& source) : scenario(context.scenario), source_(&source) {
      carriers.reset();
    }
    Source& source() { return *source_; }
    void drain_remote() {
      frees.drain(*this);
      owner_operation();
    }
    void trim_at_exit() { trim(false, "thread exit"); }
    void trim(bool, const char*) {
      frees.push(*this);
      drain_remote();
    }
    void set_stand_in(void (*fn)(void*, Heap*), void* pool) {
      stand_in = fn;
      stand_in_pool = pool;
    }
    bool set_unattended() { return frees.set_unattended(); }
    void set_attended() { frees.set_attended(); }
    void forsake() { frees.forsake(); }
    void decay_tick() { owner_operation(); }  // a pass touches the owner's state
    void owner_operation() { owner_work.store(owner_work.load() + 1); }

    // Sending: RemoteFrees' Host.
    void send(Heap& to, void* block) {
      if (!frees.try_add(&to.frees, block)) {
        after_push(frees.push(*this));
        frees.try_add(&to.frees, block);
      }
    }
    void flush() { after_push(frees.push(*this)); }
    void after_push(const typename Frees::Pushed& pushed) {
      if (pushed.unattended_owner != nullptr) {
        stand_in(stand_in_pool, static_cast<Heap*>(pushed.unattended_owner));
      }
    }
    Word* allocate_carrier(unsigned words) {
      Checker::check(!frees.draining(), "no carrier is allocated while its heap drains");
      return carriers.take(words);
    }
    void report_double_free(void*) { Checker::check(false, "no double free"); }

    // Draining: RemoteFrees' Receiver.
    bool free_block(void* p) {
      const unsigned i = scenario->index_of(p);
      Checker::check(i < kBlocks && this == scenario->exiting, "a freed block is E's");
      if (i >= kBlocks) return false;
      Checker::check(scenario->blocks[i].payload.load() == static_cast<int>(i) + 1,
                     "a freed block carries its sender's payload");
      scenario->freed[i].store(scenario->freed[i].load() + 1);
      return true;
    }
    void free_carrier(void* carrier) { carriers.give_back(carrier); }
    void report_bad_carrier(void*) { Checker::check(false, "no carrier is clobbered"); }

    HeapPoolScenario* scenario;
    Source* source_;
    Frees frees{this};
    Var<int> owner_work{0};
    CarrierSlots<Sync, Checker, Frees, kCarrierSlots> carriers;
    void (*stand_in)(void*, Heap*) = nullptr;
    void* stand_in_pool = nullptr;
  };

  // The slabs HeapPool carves its records from.
  struct SlabPal {
    HeapPoolScenario* scenario;
    std::size_t page_size() const { return 4096; }
    void* reserve(std::size_t bytes, std::size_t) {
      Checker::check(bytes <= sizeof scenario->slab && !scenario->slab_taken,
                     "one slab holds the scenario's heaps");
      scenario->slab_taken = true;
      return scenario->slab;
    }
  };

  using Pool = HeapPool<Heap, Sync, SlabPal, PoolProtocol>;

  alignas(4096) unsigned char slab[64 * 1024];
  bool slab_taken = false;
  SlabPal pal{this};
  typename Heap::Source source;
  Pool pool{pal, typename Heap::Context{this}};
  Heap* exiting = nullptr;  // E
  Heap* sender = nullptr;   // S
  Heap* adopted = nullptr;  // the adopter's
  Block blocks[kBlocks];
  Var<int> freed[kBlocks];

  unsigned index_of(void* p) const {
    for (unsigned i = 0; i < kBlocks; ++i) {
      if (static_cast<const void*>(&blocks[i]) == p) return i;
    }
    return kBlocks;
  }

  void before() {
    exiting = pool.acquire(source);
    sender = pool.acquire(source);
    for (Var<int>& f : freed) f.store(0);
  }

  void thread(unsigned index) {
    if (index == 0) {
      exiting->owner_operation();  // the thread's last malloc
      pool.release(exiting);
    } else if (index == 1) {
      for (unsigned i = 0; i < kBlocks; ++i) {
        blocks[i].payload.store(static_cast<int>(i) + 1);
        sender->send(*exiting, &blocks[i]);
      }
      sender->flush();
      if constexpr (kDecayer) pool.decay_pooled();  // a background pass
      sender->drain_remote();                       // carriers home
    } else {
      adopted = pool.acquire(source);
      adopted->owner_operation();  // the new thread's first malloc
    }
  }

  void after() {
    const PoolCounts counts = pool.counts();
    if (counts.pooled != 0) {
      // E is still pooled: nobody was going to start or exit, so everything
      // sent to it must already be in.
      for (unsigned i = 0; i < kBlocks; ++i) {
        Checker::check(freed[i].load() == 1, "frees into a pooled heap do not wait for a thread");
      }
    }
    // Whoever owns each heap next drains what is in flight.
    for (int round = 0; round < 2; ++round) {
      exiting->drain_remote();
      sender->drain_remote();
    }
    for (unsigned i = 0; i < kBlocks; ++i) {
      Checker::check(freed[i].load() == 1, "every freed block reaches its owner exactly once");
    }
    Checker::check(sender->carriers.all_home(), "every carrier comes home");
    const bool made_new = adopted != nullptr && adopted != exiting;
    Checker::check(counts.created == 2u + (made_new ? 1u : 0u), "heaps are created only at need");
    // A new heap means E was not pooled yet when the adopter looked, so it
    // is pooled now.
    if (made_new) Checker::check(counts.pooled == 1, "a new heap only when none was pooled");
  }
};

}  // namespace hpcalloc::scenarios

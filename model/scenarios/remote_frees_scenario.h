// The senders/owner scenario of mem/remote_frees.h, written once and run two
// ways: by the Relacy model (model/remote_frees_model.cpp: RelacySync,
// every interleaving of a few blocks) and by the ThreadSanitizer stress
// (tsan/remote_frees_stress.cpp: StdSync, real threads, many blocks).
//
// Threads 0..kSenders-1 are senders: each writes the payload of its
// kPerSender blocks of the owner (plain Sync::Var) and frees them through
// its own RemoteFrees (batches of kCapacity, pushed in carriers it
// allocates from its own carrier slots, or alone when kCarriers is false),
// sender 0 freeing its first block again right after its second
// (kDuplicate),
// then flushes and drains its own queue kDrains times (its carriers come
// home). The last thread is the owner: it drains kDrains times. Those drains
// hold the carriers they send home (Returns::kHold, up to
// Policy::kHeldReturns); after() drains everyone with Returns::kPushAll
// until nothing is in flight, then checks:
//   every block freed exactly once, with its payload;
//   the duplicate reported exactly once (by the owner, or by the sender
//   when it travelled without a carrier), nothing else reported;
//   every carrier home, each exactly once; no carrier allocated while its
//   heap was draining (the drain never allocates).
// Races on payloads, carrier words and links are the runner's to find.
//
// Policies: Sync, Checker (static void check(bool ok, const char* what)),
// Policy (RemoteFreesPolicy or a broken twin below).
#pragma once

#include <cstdint>

#include "mem/remote_frees.h"
#include "model/scenarios/carrier_slots.h"

namespace hpcalloc::scenarios {

// Broken twins of the protocol, each of which a runner must catch.
struct UntaggedCarriers : RemoteFreesPolicy {
  static constexpr bool kTagCarriers = false;  // BROKEN: a carrier looks like a block
};
struct UncheckedChains : RemoteFreesPolicy {
  static constexpr bool kCheckChainDuplicates = false;  // BROKEN: p, q, p loses q
};
struct DrainFreesCarriersThroughBatch : RemoteFreesPolicy {
  static constexpr bool kReturnCarriersDirectly = false;  // BROKEN: the drain allocates
};
struct RelaxedCarrierPush : RemoteFreesPolicy {
  static constexpr std::memory_order kPush = std::memory_order_relaxed;  // BROKEN
};
struct HeldReturnsStranded : RemoteFreesPolicy {
  static constexpr bool kPushAllSendsHeld = false;  // BROKEN: held carriers never go home
};
// Not broken: carriers held two at a time, so a short run reaches the
// limit and sends them home from inside a drain.
struct TwoHeldReturns : RemoteFreesPolicy {
  static constexpr unsigned kHeldReturns = 2;
};

template <class Sync, class Checker, unsigned kSendersParam, unsigned kPerSender,
          unsigned kDrains, class Policy = RemoteFreesPolicy, bool kCarriers = true,
          bool kDuplicate = false, unsigned kCapacity = 2>
struct RemoteFreesScenario {
  static constexpr unsigned kSenders = kSendersParam;
  static constexpr unsigned kThreads = kSenders + 1;
  static constexpr unsigned kOwner = kSenders;
  static constexpr unsigned kBlocks = kSenders * kPerSender;
  // One carrier a batch at most, and a batch holds at least one block.
  static constexpr unsigned kCarrierSlots = kPerSender + 1;
  using Frees = RemoteFrees<Sync, kCapacity, Policy>;
  using Word = typename Frees::Word;
  template <class T>
  using Var = typename Sync::template Var<T>;

  struct alignas(16) Block {
    Word link;  // first: the queue's link overlays it
    Var<int> payload;
  };
  // One heap: Host (sending side) and Receiver (draining side) of its
  // RemoteFrees, with the owner's blocks or a sender's carriers.
  struct End {
    RemoteFreesScenario* scenario = nullptr;
    Frees frees{this};
    CarrierSlots<Sync, Checker, Frees, kCarrierSlots> carriers;
    Var<int> double_frees_reported{0};

    // Host.
    Word* allocate_carrier(unsigned words) {
      Checker::check(!frees.draining(), "no carrier is allocated while its heap drains");
      return kCarriers ? carriers.take(words) : nullptr;
    }
    void report_double_free(void* block) {
      Checker::check(scenario->index_of(block) < kBlocks, "a reported duplicate is a block");
      double_frees_reported.store(double_frees_reported.load() + 1);
    }

    // Receiver.
    bool free_block(void* p) {
      // Only the broken twin sends carriers home as blocks: a real heap
      // frees its own block like any other.
      if (carriers.owns(p)) {
        free_carrier(p);
        return true;
      }
      const unsigned index = scenario->index_of(p);
      Checker::check(index < kBlocks, "a freed block is one of the owner's");
      if (index >= kBlocks) return false;
      Checker::check(scenario->blocks[index].payload.load() == static_cast<int>(index) + 1,
                     "a freed block carries its sender's payload");
      Var<int>& freed = scenario->freed[index];
      if (freed.load() != 0) {
        double_frees_reported.store(double_frees_reported.load() + 1);
        return false;
      }
      freed.store(1);
      return true;
    }
    void free_carrier(void* carrier) { carriers.give_back(carrier); }
    void report_bad_carrier(void*) { Checker::check(false, "no carrier is clobbered"); }
    // Only the broken twin's drain calls this: the old protocol freed a
    // carrier like any block of another heap, through the batch.
    void free_through_batch(void* carrier) {
      End* sender = scenario->sender_of_carrier(carrier);
      if (!frees.try_add(&sender->frees, carrier)) {
        frees.push(*this);
        frees.try_add(&sender->frees, carrier);
      }
    }

    void send(End& to, void* block) {
      if (!frees.try_add(&to.frees, block)) {
        frees.push(*this);
        frees.try_add(&to.frees, block);
      }
    }
    void drain(Returns mode) { frees.drain(*this, mode); }
  };

  End ends[kThreads];  // ends[kOwner] owns the blocks
  Block blocks[kBlocks];
  Var<int> freed[kBlocks];  // the owner's only

  // The index of the element of array[0..n) that starts at p, else n
  // (addresses compared as integers: p may point anywhere).
  template <class T>
  static unsigned index_in(const T* array, unsigned n, const void* p) {
    const auto base = reinterpret_cast<std::uintptr_t>(array);
    const auto at = reinterpret_cast<std::uintptr_t>(p);
    if (at < base || (at - base) % sizeof(T) != 0 || (at - base) / sizeof(T) >= n) return n;
    return static_cast<unsigned>((at - base) / sizeof(T));
  }
  unsigned index_of(void* p) const { return index_in(blocks, kBlocks, p); }
  End* sender_of_carrier(void* carrier) {
    for (End& end : ends) {
      if (end.carriers.owns(carrier)) return &end;
    }
    return nullptr;
  }

  void before() {
    for (End& end : ends) {
      end.scenario = this;
      end.carriers.reset();
    }
    for (Var<int>& f : freed) f.store(0);
  }

  void thread(unsigned index) {
    End& self = ends[index];
    if (index == kOwner) {
      for (unsigned i = 0; i < kDrains; ++i) self.drain(Returns::kHold);
      return;
    }
    for (unsigned i = 0; i < kPerSender; ++i) {
      Block& b = blocks[index * kPerSender + i];
      b.payload.store(static_cast<int>(&b - blocks) + 1);
      self.send(ends[kOwner], &b);
      // p, q, p: in one batch when it has room for three, else across two.
      if (kDuplicate && index == 0 && i == 1) self.send(ends[kOwner], &blocks[0]);
    }
    self.frees.push(self);
    for (unsigned i = 0; i < kDrains; ++i) self.drain(Returns::kHold);
  }

  void after() {
    // Round one takes the blocks home, round two the carriers.
    for (int round = 0; round < 2; ++round) {
      for (End& end : ends) {
        end.frees.push(end);
        end.drain(Returns::kPushAll);
      }
    }
    for (unsigned i = 0; i < kBlocks; ++i) {
      Checker::check(freed[i].load() == 1, "every freed block reaches its owner exactly once");
    }
    int reported = 0;
    for (End& end : ends) reported += end.double_frees_reported.load();
    Checker::check(reported == (kDuplicate ? 1 : 0), "a duplicate is reported exactly once");
    for (End& end : ends) Checker::check(end.carriers.all_home(), "every carrier comes home");
  }
};

}  // namespace hpcalloc::scenarios

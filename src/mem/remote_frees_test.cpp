// RemoteFrees on its own (mem/remote_frees.h), with a fake heap on each end:
// every batch size, duplicates inside a batch and across batches, carriers
// coming home (at once or held a few at a time), the out-of-memory chain, a
// clobbered carrier. The heaps'
// own use of it is tested in thread_heap_remote_test.cpp; its interleavings
// in model/remote_frees_model.cpp.
#include "mem/remote_frees.h"

#include <gtest/gtest.h>

#include <cerrno>
#include <cstdint>
#include <map>
#include <set>
#include <vector>

#include "sync/std_sync.h"

namespace hpcalloc {
namespace {

constexpr unsigned kCapacity = 16;
using Frees = RemoteFrees<StdSync, kCapacity>;
using Word = Frees::Word;

// One end: its blocks, which it can tell live from free, and its carriers.
struct FakeHeap {
  Frees frees{this};
  alignas(16) unsigned char blocks[64][32];
  std::map<void*, bool> live;  // block -> handed out
  std::set<void*> carriers_out;
  std::vector<void*> reports;  // double frees and bad carriers
  std::vector<void*> freed_order;
  unsigned carriers_back = 0;
  bool out_of_memory = false;
  bool draining_when_allocating = false;
  std::vector<std::vector<Word>> carrier_store;

  FakeHeap() {
    carrier_store.reserve(256);
    for (auto& b : blocks) live[b] = true;
  }
  void* block(unsigned i) { return blocks[i]; }

  // Host (sending side).
  Word* allocate_carrier(unsigned words) {
    draining_when_allocating |= frees.draining();
    if (out_of_memory) {
      errno = ENOMEM;
      return nullptr;
    }
    carrier_store.emplace_back(words + 1);  // +1: room to be 16-byte aligned
    auto address = reinterpret_cast<std::uintptr_t>(carrier_store.back().data());
    auto* carrier = reinterpret_cast<Word*>((address + 15) & ~std::uintptr_t{15});
    carriers_out.insert(carrier);
    return carrier;
  }
  void report_double_free(void* p) { reports.push_back(p); }

  // Receiver (draining side).
  bool free_block(void* p) {
    auto it = live.find(p);
    if (it == live.end() || !it->second) {
      reports.push_back(p);
      return false;
    }
    it->second = false;
    freed_order.push_back(p);
    // A freed block's first word is reused by the heap's free structures.
    *static_cast<void**>(p) = blocks[63];
    return true;
  }
  void free_carrier(void* carrier) {
    EXPECT_EQ(carriers_out.erase(carrier), 1u) << "a carrier comes home once";
    ++carriers_back;
  }
  void report_bad_carrier(void* carrier) { reports.push_back(carrier); }

  std::size_t drain(Returns mode = Returns::kPushAll) { return frees.drain(*this, mode); }
  void send(FakeHeap& to, void* p) {
    if (!frees.try_add(&to.frees, p)) {
      frees.push(*this);
      ASSERT_TRUE(frees.try_add(&to.frees, p));
    }
  }
};

TEST(RemoteFrees, EveryBatchSizeArrivesWholeAndTheCarrierComesHome) {
  for (unsigned n = 1; n <= kCapacity; ++n) {
    FakeHeap owner;
    FakeHeap sender;
    for (unsigned i = 0; i < n; ++i) sender.send(owner, owner.block(i));
    EXPECT_EQ(owner.drain(), 0u) << "held until pushed";
    EXPECT_EQ(sender.frees.push(sender).blocks, n);
    EXPECT_TRUE(sender.frees.batch_empty());
    EXPECT_EQ(owner.drain(), n);
    EXPECT_EQ(owner.freed_order.size(), n);
    EXPECT_TRUE(owner.reports.empty());
    EXPECT_EQ(sender.carriers_out.size(), 1u);
    EXPECT_EQ(sender.drain(), 0u) << "a carrier is not a freed block";
    EXPECT_EQ(sender.carriers_back, 1u);
    EXPECT_TRUE(sender.carriers_out.empty());
  }
}

TEST(RemoteFrees, AFullBatchOrAnotherOwnerMustBePushedFirst) {
  FakeHeap a;
  FakeHeap b;
  FakeHeap sender;
  for (unsigned i = 0; i < kCapacity; ++i) EXPECT_TRUE(sender.frees.try_add(&a.frees, a.block(i)));
  EXPECT_FALSE(sender.frees.try_add(&a.frees, a.block(kCapacity)));  // full
  sender.frees.push(sender);
  EXPECT_TRUE(sender.frees.try_add(&a.frees, a.block(kCapacity)));
  EXPECT_FALSE(sender.frees.try_add(&b.frees, b.block(0)));  // another owner
  sender.send(b, b.block(0));
  sender.frees.push(sender);
  EXPECT_EQ(a.drain(), kCapacity + 1);
  EXPECT_EQ(b.drain(), 1u);
  sender.drain();
  EXPECT_EQ(sender.carriers_back, 3u);
}

// The case that used to lose a free: p, q, p to one owner in one batch.
// Every batch size, the duplicate at every position: the owner reports it
// once and frees everything else.
TEST(RemoteFrees, ADuplicateInACarrierIsReportedOnceAndNothingIsLost) {
  for (unsigned n = 2; n <= kCapacity; ++n) {
    for (unsigned dup_at = 1; dup_at < n; ++dup_at) {
      FakeHeap owner;
      FakeHeap sender;
      for (unsigned i = 0; i < n; ++i) {
        sender.send(owner, owner.block(i == dup_at ? 0 : i));
      }
      sender.frees.push(sender);
      EXPECT_EQ(owner.drain(), n - 1);
      ASSERT_EQ(owner.reports.size(), 1u) << n << " " << dup_at;
      EXPECT_EQ(owner.reports[0], owner.block(0));
      for (unsigned i = 0; i < n; ++i) {
        EXPECT_EQ(owner.live[owner.block(i)], i == dup_at) << "block " << i << " of " << n;
      }
      sender.drain();
      EXPECT_EQ(sender.carriers_back, 1u);
    }
  }
}

TEST(RemoteFrees, ADuplicateAcrossTwoBatchesIsReportedOnce) {
  FakeHeap owner;
  FakeHeap sender;
  sender.send(owner, owner.block(0));
  sender.send(owner, owner.block(1));
  sender.frees.push(sender);
  sender.send(owner, owner.block(2));
  sender.send(owner, owner.block(0));  // again, before the owner drained
  sender.frees.push(sender);
  EXPECT_EQ(owner.drain(), 3u);
  ASSERT_EQ(owner.reports.size(), 1u);
  EXPECT_EQ(owner.reports[0], owner.block(0));
  sender.drain();
  EXPECT_EQ(sender.carriers_back, 2u) << "both carriers, as one chain";
}

TEST(RemoteFrees, OutOfMemoryBlocksTravelAloneWithDuplicatesReportedBySender) {
  FakeHeap owner;
  FakeHeap sender;
  sender.out_of_memory = true;
  // p, q, p, r, q
  for (unsigned i : {0u, 1u, 0u, 2u, 1u}) sender.send(owner, owner.block(i));
  errno = 0;
  EXPECT_EQ(sender.frees.push(sender).blocks, 5u);
  EXPECT_EQ(errno, 0) << "a free does not change errno";
  EXPECT_EQ(sender.reports, (std::vector<void*>{owner.block(0), owner.block(1)}));
  EXPECT_EQ(owner.drain(), 3u);
  EXPECT_TRUE(owner.reports.empty());
  for (unsigned i = 0; i < 3; ++i) EXPECT_FALSE(owner.live[owner.block(i)]);
  EXPECT_TRUE(owner.live[owner.block(3)]);
}

// Out of memory, a block freed again in a later batch before its owner
// drained overwrites its own link: the drain stops at it (it is no longer
// live, so its first word belongs to a free structure) instead of looping.
TEST(RemoteFrees, ARelinkedLoneBlockEndsTheWalkInsteadOfLooping) {
  FakeHeap owner;
  FakeHeap sender;
  sender.out_of_memory = true;
  sender.send(owner, owner.block(0));
  sender.frees.push(sender);
  sender.send(owner, owner.block(0));
  sender.frees.push(sender);  // block 0 now links to itself
  EXPECT_EQ(owner.drain(), 1u);
  EXPECT_EQ(owner.reports, (std::vector<void*>{owner.block(0)}));
}

TEST(RemoteFrees, ALoneBlockFromAThreadWithoutAHeapIsDrained) {
  FakeHeap owner;
  owner.frees.push_block(owner.block(5));
  owner.frees.push_block(owner.block(6));
  EXPECT_FALSE(owner.frees.empty_relaxed());
  EXPECT_EQ(owner.drain(), 2u);
  EXPECT_TRUE(owner.frees.empty_relaxed());
}

TEST(RemoteFrees, AClobberedCarrierIsReportedAndNotFollowed) {
  for (unsigned word : {1u, 2u}) {
    FakeHeap owner;
    FakeHeap sender;
    for (unsigned i = 0; i < 4; ++i) sender.send(owner, owner.block(i));
    sender.frees.push(sender);
    Word* carrier = static_cast<Word*>(*sender.carriers_out.begin());
    carrier[word].store(owner.block(9));  // a stray write into the carrier
    EXPECT_EQ(owner.drain(), 0u);
    EXPECT_EQ(owner.reports, (std::vector<void*>{carrier}));
    for (unsigned i = 0; i < 4; ++i) EXPECT_TRUE(owner.live[owner.block(i)]);
  }
}

TEST(RemoteFrees, CarrierAllocationNeverHappensWhileDraining) {
  FakeHeap a;
  FakeHeap b;
  for (int round = 0; round < 4; ++round) {
    for (unsigned i = 0; i < 8; ++i) a.send(b, b.block(round * 8 + i));
    a.frees.push(a);
    b.drain();
    a.drain();
  }
  EXPECT_FALSE(a.draining_when_allocating);
  EXPECT_EQ(a.carriers_back, 4u);
}

// Sends one carrier of one block from `sender` to `owner` and has the owner
// drain it with `mode`.
void one_carrier(FakeHeap& sender, FakeHeap& owner, unsigned block, Returns mode) {
  sender.send(owner, owner.block(block));
  sender.frees.push(sender);
  EXPECT_EQ(owner.drain(mode), 1u);
}

TEST(RemoteFrees, HeldReturnsGoHomeTogetherAtTheLimit) {
  constexpr unsigned kHeld = RemoteFreesPolicy::kHeldReturns;
  FakeHeap owner;
  FakeHeap sender;
  for (unsigned i = 0; i + 1 < kHeld; ++i) {
    one_carrier(sender, owner, i, Returns::kHold);
    EXPECT_EQ(owner.frees.held_returns(), i + 1);
    sender.drain();
    EXPECT_EQ(sender.carriers_back, 0u) << "held by the owner";
  }
  one_carrier(sender, owner, kHeld - 1, Returns::kHold);  // the limit: all go
  EXPECT_EQ(owner.frees.held_returns(), 0u);
  sender.drain();
  EXPECT_EQ(sender.carriers_back, kHeld);
  EXPECT_TRUE(sender.carriers_out.empty());
}

TEST(RemoteFrees, APushAllDrainSendsHeldReturnsHomeEvenWithAnEmptyQueue) {
  FakeHeap owner;
  FakeHeap sender;
  one_carrier(sender, owner, 0, Returns::kHold);
  one_carrier(sender, owner, 1, Returns::kHold);
  EXPECT_EQ(owner.frees.held_returns(), 2u);
  EXPECT_EQ(owner.drain(Returns::kPushAll), 0u);  // nothing queued: still sends them
  EXPECT_EQ(owner.frees.held_returns(), 0u);
  sender.drain();
  EXPECT_EQ(sender.carriers_back, 2u);
}

TEST(RemoteFrees, ACarrierOfAnotherSenderSendsTheHeldOnesHome) {
  FakeHeap owner;
  FakeHeap first;
  FakeHeap second;
  one_carrier(first, owner, 0, Returns::kHold);
  one_carrier(first, owner, 1, Returns::kHold);
  one_carrier(second, owner, 2, Returns::kHold);  // held: only second's now
  EXPECT_EQ(owner.frees.held_returns(), 1u);
  first.drain();
  second.drain();
  EXPECT_EQ(first.carriers_back, 2u);
  EXPECT_EQ(second.carriers_back, 0u);
  owner.drain();
  second.drain();
  EXPECT_EQ(second.carriers_back, 1u);
}

TEST(RemoteFrees, AForsakenQueueGetsNothingAndCostsTheSenderNoCarrier) {
  FakeHeap owner;
  FakeHeap sender;
  owner.frees.forsake();
  for (unsigned i = 0; i < 5; ++i) sender.send(owner, owner.block(i));
  EXPECT_EQ(sender.frees.push(sender).blocks, 0u);
  EXPECT_TRUE(sender.frees.batch_empty());
  EXPECT_TRUE(sender.carriers_out.empty()) << "no carrier allocated";
  EXPECT_EQ(owner.frees.push_block(owner.block(9)).blocks, 0u);
  EXPECT_TRUE(owner.frees.empty_relaxed());
}

}  // namespace
}  // namespace hpcalloc

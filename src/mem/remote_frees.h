// RemoteFrees: how a heap gives blocks back to the heaps that own them, and
// takes back the blocks other heaps give it. One object per heap, templated
// over the synchronisation policy so the Relacy models and the TSan stress
// run this very code (model/scenarios/remote_frees_scenario.h).
//
// The contract.
// - Sending (owner thread of the sending heap only). A free of another
//   heap's block is added to the outgoing batch: consecutive frees to the
//   same owner are collected as pointers (nothing is written into the freed
//   blocks). The batch is pushed when a free for another owner arrives, when
//   it holds kBatchCapacity blocks, and when the sender flushes (its slow
//   paths, trim, thread exit).
// - A pushed batch travels in a carrier: a small block of the *sender*
//   (Host::allocate_carrier) holding [link, check|count, sender, p1..pn].
//   The carrier is pushed onto the owner's queue as one node, tagged
//   kCarrier in the low bits of the word that points to it. Only when no
//   carrier can be had (out of memory) do the blocks travel alone, each a
//   node tagged kBlock whose link is written into its first word; such a
//   batch is first checked for duplicates, which are reported as double
//   frees by the sender (a duplicate in a chain would overwrite its own link
//   and lose the frees between its two places).
// - Draining (owner thread of the receiving heap only, or whoever holds a
//   pooled heap). The owner takes its whole queue with one exchange and
//   walks it by tag: a kCarrier's blocks are freed one by one
//   (Receiver::free_block, which validates each like any free and reports
//   a double free), then the carrier goes straight back to its sender's
//   queue tagged kReturnedCarrier (consecutive carriers of one sender as one
//   chain: one CAS); a kReturnedCarrier is one of our own carriers coming
//   home and is freed locally (Receiver::free_carrier); a kBlock is freed
//   like a carrier's block.
// - Held returns. A drain in Returns::kHold mode (the owner's routine
//   drains, on its cache refills) keeps the carriers it is sending home
//   and sends them as one chain once Policy::kHeldReturns of one sender
//   have gathered (or a carrier of another sender arrives): one CAS per
//   kHeldReturns carriers rather than per drain. A carrier pushed back on
//   every drain cost a contended CAS on the sender's queue per 64 frees
//   and made a producer/consumer program 20% slower. So a heap holds at
//   most kHeldReturns carriers, all of one sender, until its next drain in
//   Returns::kPushAll mode (the default: trim, thread exit, pooling,
//   adoption, a stand-in's drain), which sends them all home. A heap that
//   dies holding some (a private pool's end, where every heap dies) drops
//   them: their sender may be gone. A kBlock that turns out not to be live ends the
//   walk of that chain: its link was written by a free structure, not a
//   sender, and is never followed.
// - The drain never allocates and never touches the outgoing batch: the
//   Receiver interface it is given can only free, and returning a carrier
//   is a push, not a free. So a drain run from inside a carrier allocation
//   (a cache refill drains first) cannot re-enter the batch, and a drain
//   cannot re-enter itself (checked builds assert it).
// - What the out-of-memory mode cannot promise: a lone block's link lives in
//   the block, so a block freed twice in two lone pushes (two batches sent
//   without carriers before the owner drained, or after it drained) has
//   its link, or the owner's free structure in it, overwritten: the walk
//   stops at it (its frees queued behind are lost, never handed out), and
//   a free structure may be corrupted. Only a double free while carriers
//   cannot be allocated can reach this; carriers, the normal mode, write
//   nothing into freed blocks.
// - Every node in a queue is 16-byte aligned, so a word pointing to one has
//   four free low bits; a tag is part of the word, not of the node's
//   contents, so no user data can forge one. A carrier also carries a check
//   word tying it to its address and sender; a carrier that fails the check
//   (a stray write into it) is reported and dropped, never followed.
//
// - Unattended queues. A heap whose thread exited is pooled: nobody drains
//   it as its owner. The pool marks it unattended (set_unattended) and a
//   push to an unattended queue says so to its sender (Pushed), which then
//   has the pool drain it; so frees into a pooled heap never wait for some
//   thread to start or exit. The flag and the queue form a Dekker
//   handshake: the sender pushes then reads the flag, the pool sets the
//   flag then reads the queue (both seq_cst), so a push racing the pooling
//   is seen by at least one of them. Carriers coming home to a pooled heap
//   are not reported: they are its own blocks, taken back when it is next
//   drained or adopted.
//
// - Forsaken queues. After fork() the child abandons the heaps of the
//   parent's other threads (heap_pool.h): nobody will ever drain them. The
//   child marks their queues forsaken (forsake()), and a batch or lone
//   block for a forsaken queue is dropped by its sender: the blocks stay
//   where they are, as the rest of that heap's memory does, and no carrier
//   of the sender is stranded in a queue nobody reads.
//
// Policy is a policy only so the models can build broken twins (memory
// orders, untagged carriers, chains without the duplicate check, a drain
// that frees carriers through the batch).
#pragma once

#include <cerrno>
#include <cstddef>
#include <cstdint>

#include "base/check.h"
#include "ds/remote_free_queue.h"
#include "sync/sync_policy.h"

namespace hpcalloc {

struct RemoteFreesPolicy : RemoteFreeQueueOrders {
  // A push and a pooling race (see "Unattended queues" above): the push's
  // CAS and the sender's read of the flag, and the pool's store of the flag
  // and its read of the queue, are seq_cst, so in their single total order
  // one side sees the other. On x86 the CAS is a locked instruction and the
  // loads plain, so this costs nothing over release.
  static constexpr std::memory_order kPush = std::memory_order_seq_cst;
  static constexpr std::memory_order kHandshake = std::memory_order_seq_cst;
  static constexpr bool kTagCarriers = true;
  static constexpr bool kCheckChainDuplicates = true;
  // false: the drain frees a carrier back through the batch like any other
  // block of another heap (the allocator's old protocol, which could
  // allocate a carrier while draining).
  static constexpr bool kReturnCarriersDirectly = true;
  // Carriers a Returns::kHold drain may keep before sending them home (see
  // "Held returns" above); 16 x 64 frees between CASes on a sender's queue.
  static constexpr unsigned kHeldReturns = 16;
  // false: a kPushAll drain leaves held carriers where they are (BROKEN:
  // a carrier is never home once its holder stops draining in kHold).
  static constexpr bool kPushAllSendsHeld = true;
};

// What a drain does with the carriers it sends home (see "Held returns").
enum class Returns {
  kHold,     // keep up to Policy::kHeldReturns, all of one sender
  kPushAll,  // send every carrier held home, this drain's and earlier ones
};

enum class RemoteNode : std::uintptr_t {
  kBlock = 0,            // one freed block; its first word links to the next node
  kCarrier = 1,          // a sender's block listing freed blocks
  kReturnedCarrier = 2,  // one of this heap's carriers, back from its owner
};

template <SyncPolicy Sync, unsigned kBatchCapacityParam, class Policy = RemoteFreesPolicy>
class RemoteFrees {
 public:
  static constexpr unsigned kBatchCapacity = kBatchCapacityParam;
  // A carrier: the queue's link, the check word (count in its low byte), the
  // sender, then the pointers.
  static constexpr unsigned kCarrierHeaderWords = 3;
  static constexpr unsigned kMaxCarrierWords = kCarrierHeaderWords + kBatchCapacity;
  static_assert(kBatchCapacity >= 1 && kBatchCapacity < 256, "the count fits the check's low byte");
  using Word = typename Sync::template Var<void*>;
  using Queue = RemoteFreeQueue<Sync, Policy>;

  // What push() and push_block() did: blocks sent, and the owner whose
  // queue they went to if it is unattended (nullptr otherwise): the caller
  // has it drained by its stand-in owner.
  struct Pushed {
    unsigned blocks = 0;
    void* unattended_owner = nullptr;
  };

  // `owner`: the heap this object belongs to, handed back in Pushed.
  explicit RemoteFrees(void* owner) : owner_(owner) {}
  RemoteFrees(const RemoteFrees&) = delete;
  RemoteFrees& operator=(const RemoteFrees&) = delete;

  // ---- Sending (the sender's owner only) ---------------------------------

  // Adds `block`, a block owned by the heap whose RemoteFrees is `to`.
  // false: the batch is for another owner or full; push() it first.
  bool try_add(RemoteFrees* to, void* block) {
    const unsigned n = batch_count_.load();
    if (n != 0 && (batch_to_.load() != to || n == kBatchCapacity)) return false;
    batch_to_.store(to);
    batch_[n].store(block);
    batch_count_.store(n + 1);
    return true;
  }

  bool batch_empty() const { return batch_count_.load() == 0; }

  // Sends the batch (see the top comment). Host provides
  //   Word* allocate_carrier(unsigned words)  a block of this heap with room
  //                                           for `words` words, or nullptr;
  //                                           may drain this heap;
  //   void report_double_free(void* block)    a duplicate in a chain.
  // errno is left as it was: a free must not change it.
  template <class Host>
  Pushed push(Host& host) {
    const unsigned n = batch_count_.load();
    if (n == 0) return {};
    RemoteFrees* const to = batch_to_.load();
    if (to->forsaken()) {
      batch_count_.store(0);  // dropped: see "Forsaken queues"
      return {};
    }
    const int saved_errno = errno;
    Word* carrier = host.allocate_carrier(kCarrierHeaderWords + n);
    errno = saved_errno;
    // The allocation may have drained this heap, which never touches the
    // batch: it is still ours, whole.
    HPCALLOC_ASSERT(batch_count_.load() == n && batch_to_.load() == to);
    batch_count_.store(0);
    if (carrier != nullptr) {
      carrier[1].store(as_word(check_of(carrier, this) | n));
      carrier[2].store(this);
      for (unsigned i = 0; i < n; ++i) carrier[kCarrierHeaderWords + i].store(batch_[i].load());
      constexpr RemoteNode kTag = Policy::kTagCarriers ? RemoteNode::kCarrier : RemoteNode::kBlock;
      to->queue_.push_chain(tagged(carrier, kTag), carrier);
    } else {
      push_chain_without_carrier(host, to, n);
    }
    return {n, to->unattended() ? to->owner_ : nullptr};
  }

  // ---- Receiving ------------------------------------------------------------

  // Pushes one block on its own (a thread without a heap of its own).
  Pushed push_block(void* block) {
    if (forsaken()) return {};
    queue_.push(tagged(block, RemoteNode::kBlock));
    return {1, unattended() ? owner_ : nullptr};
  }

  // The pool's side of the handshake (see the top comment). Under the
  // pool's lock. set_unattended() returns whether frees are already
  // waiting: the caller drains them.
  bool set_unattended() {
    unattended_.store(1, Policy::kHandshake);
    return !queue_.empty(Policy::kHandshake);
  }
  // Relaxed: the new owner drains right after, and a sender that still
  // sees the old flag only has the pool drain a heap that is not pooled
  // (a no-op under the lock).
  void set_attended() { unattended_.store(0, std::memory_order_relaxed); }

  // A hint only: may be stale as soon as it returns.
  bool empty_relaxed() const { return queue_.empty_relaxed(); }

  // The fork child's side (see "Forsaken queues"). Relaxed: the child is
  // single-threaded when it marks a queue, and the threads it starts later
  // see the mark through pthread_create's ordering.
  void forsake() { forsaken_.store(1, std::memory_order_relaxed); }
  bool forsaken() const { return forsaken_.load(std::memory_order_relaxed) != 0; }

  // Takes every node pushed so far and frees what they carry. Receiver
  // provides (none of which may allocate or drain):
  //   bool free_block(void* block)      frees a block of this heap given back
  //                                     by another thread; false (reported)
  //                                     when it is not a live block;
  //   void free_carrier(void* carrier)  frees one of this heap's carriers;
  //   void report_bad_carrier(void* carrier).
  // Returns the number of blocks freed (carriers not counted).
  template <class Receiver>
  std::size_t drain(Receiver& receiver, Returns mode = Returns::kPushAll) {
    void* node = queue_.take_all();
    if (node == nullptr) {
      if (mode == Returns::kPushAll) push_all_held_returns();
      return 0;
    }
    HPCALLOC_ASSERT(!draining_);
    draining_ = true;
    std::size_t freed = 0;
    while (node != nullptr) {
      void* const at = untagged(node);
      const RemoteNode kind = tag_of(node);
      // Read the link first: freeing reuses the node's first word.
      void* const next = Queue::next(at);
      if (kind == RemoteNode::kCarrier) {
        freed += drain_carrier(receiver, static_cast<Word*>(at));
      } else if (kind == RemoteNode::kReturnedCarrier) {
        receiver.free_carrier(at);
      } else if (receiver.free_block(at)) {
        ++freed;
      } else {
        break;  // not live: `next` came from a free structure, not a sender
      }
      node = next;
    }
    if (mode == Returns::kPushAll) push_all_held_returns();
    draining_ = false;
    return freed;
  }

  // Carriers of other heaps this one holds on their way home (at most
  // Policy::kHeldReturns; tests and the statistics read it).
  unsigned held_returns() const { return returns_.count.load(); }

  // Whether a drain is running (the models check nothing allocates then).
  bool draining() const { return draining_; }

 private:
  static constexpr std::uintptr_t kTagMask = 0xf;
  static constexpr std::uintptr_t kCountMask = 0xff;

  static void* tagged(void* node, RemoteNode tag) {
    return reinterpret_cast<void*>(reinterpret_cast<std::uintptr_t>(node) |
                                   static_cast<std::uintptr_t>(tag));
  }
  static void* untagged(void* word) {
    return reinterpret_cast<void*>(reinterpret_cast<std::uintptr_t>(word) & ~kTagMask);
  }
  static RemoteNode tag_of(void* word) {
    return static_cast<RemoteNode>(reinterpret_cast<std::uintptr_t>(word) & kTagMask);
  }
  static void* as_word(std::uintptr_t v) { return reinterpret_cast<void*>(v); }
  // The sender's side of the handshake, right after its push.
  bool unattended() const { return unattended_.load(Policy::kHandshake) != 0; }
  // Ties a carrier to its address and sender (count bits clear).
  static std::uintptr_t check_of(const void* carrier, const void* sender) {
    const std::uintptr_t mixed = (reinterpret_cast<std::uintptr_t>(carrier) ^
                                  (reinterpret_cast<std::uintptr_t>(sender) << 1)) *
                                 0x9e3779b97f4a7c15ull;
    return (mixed ^ 0x5a17ca4e00000000ull) & ~kCountMask;
  }

  // Carriers on their way back to one sender, linked oldest first: the
  // owner's only (Sync::Var, like the batch).
  struct ReturnChain {
    typename Sync::template Var<RemoteFrees*> sender{nullptr};
    typename Sync::template Var<Word*> first{nullptr};
    typename Sync::template Var<Word*> last{nullptr};
    typename Sync::template Var<unsigned> count{0};
  };

  void hold_return(RemoteFrees* to, Word* carrier) {
    if (returns_.sender.load() != to) {
      push_held_returns();
      returns_.sender.store(to);
      returns_.first.store(carrier);
    } else {
      Queue::link(returns_.last.load(), tagged(carrier, RemoteNode::kReturnedCarrier));
    }
    returns_.last.store(carrier);
    const unsigned held = returns_.count.load() + 1;
    returns_.count.store(held);
    if (held >= Policy::kHeldReturns) push_held_returns();
  }

  // The end of a kPushAll drain.
  void push_all_held_returns() {
    if constexpr (Policy::kPushAllSendsHeld) push_held_returns();  // else BROKEN
  }

  void push_held_returns() {
    RemoteFrees* const to = returns_.sender.load();
    if (to == nullptr) return;
    to->queue_.push_chain(tagged(returns_.first.load(), RemoteNode::kReturnedCarrier),
                          returns_.last.load());
    returns_.sender.store(nullptr);
    returns_.count.store(0);
  }

  template <class Receiver>
  std::size_t drain_carrier(Receiver& receiver, Word* carrier) {
    const auto check = reinterpret_cast<std::uintptr_t>(carrier[1].load());
    auto* sender = static_cast<RemoteFrees*>(carrier[2].load());
    const unsigned n = static_cast<unsigned>(check & kCountMask);
    if ((check & ~kCountMask) != check_of(carrier, sender) || n == 0 || n > kBatchCapacity) {
      receiver.report_bad_carrier(carrier);
      return 0;
    }
    std::size_t freed = 0;
    // The blocks' first lines were last touched by the freeing thread's core
    // (and are written by the free): ask for them, for writing, a few
    // blocks ahead, so their transfers overlap instead of queueing one by
    // one behind each free. Only an address: nothing is read early.
    constexpr unsigned kAhead = 4;
    for (unsigned i = 0; i < n && i < kAhead; ++i) {
      __builtin_prefetch(carrier[kCarrierHeaderWords + i].load(), 1);
    }
    for (unsigned i = 0; i < n; ++i) {
      if (i + kAhead < n) __builtin_prefetch(carrier[kCarrierHeaderWords + i + kAhead].load(), 1);
      freed += receiver.free_block(carrier[kCarrierHeaderWords + i].load()) ? 1 : 0;
    }
    if constexpr (Policy::kReturnCarriersDirectly) {
      hold_return(sender, carrier);
    } else {
      receiver.free_through_batch(carrier);  // BROKEN: may allocate a carrier
    }
    return freed;
  }

  // Out of memory: the blocks go one by one, linked through their first
  // words, duplicates reported and dropped (each would overwrite its own
  // link). O(n^2) on a path that only runs when no carrier can be had.
  template <class Host>
  void push_chain_without_carrier(Host& host, RemoteFrees* to, unsigned n) {
    void* first = nullptr;  // the chain, tagged words, newest first
    void* last = nullptr;
    for (unsigned i = 0; i < n; ++i) {
      void* block = batch_[i].load();
      bool duplicate = false;
      if constexpr (Policy::kCheckChainDuplicates) {
        for (unsigned j = 0; j < i && !duplicate; ++j) duplicate = batch_[j].load() == block;
      }
      if (duplicate) {
        host.report_double_free(block);
        continue;
      }
      Queue::link(block, first);
      first = tagged(block, RemoteNode::kBlock);
      if (last == nullptr) last = block;
    }
    // Only the last link is rewritten by the push: the rest stand.
    if (first != nullptr) to->queue_.push_chain(first, last);
  }

  // Written by other threads: on its own cache line.
  alignas(64) Queue queue_;
  typename Sync::template Atomic<unsigned> unattended_{0};
  typename Sync::template Atomic<unsigned> forsaken_{0};
  void* const owner_;
  // The outgoing batch and the drain flag: the owner's only (Sync::Var so
  // the models see a heap changing hands unsynchronised).
  alignas(64) typename Sync::template Var<RemoteFrees*> batch_to_{nullptr};
  typename Sync::template Var<unsigned> batch_count_{0};
  bool draining_ = false;
  ReturnChain returns_;
  Word batch_[kBatchCapacity];
};

}  // namespace hpcalloc

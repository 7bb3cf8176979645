// Remote frees in batches for the multi-heap state machine
// (multi_heap_state.h), as batch_plan.h describes them. The plain Free
// command pushes after every free, so it only ever makes chains of one;
// BatchFree frees up to 70 blocks to one owner with no push in between, so
// chains of every length, carriers, and a full batch of 64 followed by a
// second one all occur; with misuse (multi_heap_misuse_prop) one of the
// frees is a double free or an interior pointer. The owner then drains:
// exactly the expected reports, and it must take back all it was sent.
#pragma once

#include <cstdint>
#include <vector>

#include "proptests/batch_plan.h"
#include "proptests/multi_heap_state.h"

namespace hpcalloc::proptest {

// Mostly small blocks (the carrier and chain paths), some medium (some of
// them in the medium cache's sizes) and a few huge (TinyConfig: above 16 KiB).
inline rc::Gen<std::size_t> pool_batch_block_size() {
  constexpr std::size_t kSmall = PoolConfig::kSmallMax;
  constexpr std::size_t kMedium = PoolConfig::kMediumMax;
  return rc::gen::weightedOneOf<std::size_t>({
      {12, rc::gen::inRange<std::size_t>(1, kSmall + 1)},
      {4, rc::gen::inRange<std::size_t>(kSmall + 1, kMedium + 1)},
      {1, rc::gen::inRange<std::size_t>(kMedium + 1, 3 * kMedium)},
  });
}

// Thread `owner` allocates the plan's blocks, thread `sender` frees them in
// the plan's order and pushes, the owner drains, then everything settles:
// exactly the reports the model expects, and every free taken back.
template <BatchMisuse kMisuse, BatchShape kShape>
void run_batch(PoolSut& sut, unsigned sender, unsigned owner,
               const BatchPlan<kMisuse, kShape>& plan) {
  PoolHeap* from = sut.threads[sender];
  PoolHeap* to = sut.threads[owner];
  std::vector<char*> blocks;
  for (std::size_t size : plan.sizes) {
    errno = 0;
    void* p = to->malloc(size);
    sut.judge(sut.spec.malloc(size, p, errno, Memory::kPlenty));
    sut.adopt(p, to);
    blocks.push_back(static_cast<char*>(p));
  }
  // From here to the owner's drain reports may come at any point: only
  // the model's verdicts stop the run, the reports are counted at the end.
  const std::size_t pushed_before = from->stats().remote_pushed;
  for (const auto& step : plan.steps()) {
    if (step.push_before) from->flush_remote_batch();
    char* p = blocks[step.block];
    if (step.offset != 0) {
      // Inside the block whatever its size (its extent is its usable size).
      const std::size_t extent = sut.spec.live().at(reinterpret_cast<std::uintptr_t>(p)).extent;
      p += step.offset < extent ? step.offset : 1;
    }
    sut.check(sut.spec.is_misuse(p) ? sut.spec.free_misused(p) : sut.spec.free(p));
    from->free(p);
  }
  from->flush_remote_batch();
  sut.pushed_to[to] += from->stats().remote_pushed - pushed_before;
  to->drain_remote();
  if (kMisuse == BatchMisuse::kNone) {
    // Valid: the owner took everything back at once, nothing reported.
    sut.check_drained(to);
    sut.judge(sut.spec.check_all());
  }
  // Then everything settles (carriers home, caches flushed) and is judged.
  sut.settle_everywhere("the batch");
}

template <BatchMisuse kMisuse, BatchShape kShape = BatchShape::kAny>
struct BatchFree : PoolCommand {
  unsigned sender;
  unsigned owner;
  BatchPlan<kMisuse, kShape> plan{pool_batch_block_size()};

  explicit BatchFree(const PoolModel& s) : sender(0), owner(0) {
    const std::vector<unsigned> ts = attached_threads(s);
    RC_PRE(ts.size() >= 2u);
    sender = *rc::gen::elementOf(ts);
    std::vector<unsigned> others;
    for (unsigned t : ts) {
      if (t != sender) others.push_back(t);
    }
    owner = *rc::gen::elementOf(others);
  }

  void checkPreconditions(const PoolModel& s) const override {
    RC_PRE(s.attached[sender] && s.attached[owner] && sender != owner);
  }

  void run(const PoolModel&, PoolSut& sut) const override { run_batch(sut, sender, owner, plan); }

  void show(std::ostream& os) const override {
    os << "T" << sender << ": free T" << owner << "'s ";
    plan.show(os);
    os << ", push; T" << owner << ": drain_remote()";
  }
};

}  // namespace hpcalloc::proptest

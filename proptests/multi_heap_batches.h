// Remote frees in batches for the multi-heap state machine
// (multi_heap_state.h). A heap collects the blocks it frees for one owner
// and pushes them together: up to 64 held back, 8 or more as one "carrier"
// block listing them, fewer as a chain linked through the blocks. The plain
// Free command pushes after every free, so it only ever makes chains of
// one; BatchFree frees up to 70 blocks to one owner with no push in
// between, so chains of every length, carriers, and a full batch of 64
// followed by a second one all occur.
//
// With misuse (multi_heap_misuse_prop), one block of the batch is freed
// twice (p, q, p; at the end; or in a second batch pushed separately before
// the owner drains) or an interior pointer of one is freed. The report comes
// when the owner drains; it must come exactly once, and every other block
// of the batch must really be freed (the owner takes back all it was sent).
#pragma once

#include <cstdint>
#include <vector>

#include "proptests/multi_heap_state.h"

namespace hpcalloc::proptest {

enum class BatchMisuse {
  kNone,
  kRepeatAfterNext,  // b_i, b_i+1, b_i: the p, q, p pattern
  kRepeatAtEnd,      // b_i again after the batch's last block
  kRepeatNextBatch,  // b_i again in a second batch, pushed before the owner drains
  kInteriorPointer,  // b_i + 16 (or + 1 when it is smaller) just before b_i itself
};

inline const char* batch_misuse_name(BatchMisuse m) {
  static const char* const kNames[] = {"", ", p q p", ", again at the end",
                                       ", again in a second batch", ", an interior pointer"};
  return kNames[static_cast<unsigned>(m)];
}

// Mostly small blocks (the carrier and chain paths), some medium (some of
// them in the medium cache's sizes) and a few huge (TinyConfig: above 16 KiB).
inline rc::Gen<std::size_t> batch_block_size() {
  constexpr std::size_t kSmall = PoolConfig::kSmallMax;
  constexpr std::size_t kMedium = PoolConfig::kMediumMax;
  return rc::gen::weightedOneOf<std::size_t>({
      {12, rc::gen::inRange<std::size_t>(1, kSmall + 1)},
      {4, rc::gen::inRange<std::size_t>(kSmall + 1, kMedium + 1)},
      {1, rc::gen::inRange<std::size_t>(kMedium + 1, 3 * kMedium)},
  });
}

// Below, at and around the carrier threshold (8) and the batch capacity (64).
inline rc::Gen<unsigned> batch_length() {
  return rc::gen::weightedOneOf<unsigned>({
      {3, rc::gen::inRange(1u, 8u)},
      {3, rc::gen::inRange(8u, 65u)},
      {2, rc::gen::element(1u, 2u, 3u, 7u, 8u, 9u, 63u, 64u, 65u, 70u)},
      {1, rc::gen::inRange(65u, 71u)},
  });
}

// Which batches a BatchFree makes: any (every length from 1 to 70), or
// only carriers (each push holds 8 to 64 frees, the misused one included),
// so a bug in the chains does not hide how carriers fare.
enum class BatchShape { kAny, kCarriersOnly };

template <BatchMisuse kMisuse, BatchShape kShape = BatchShape::kAny>
struct BatchFree : PoolCommand {
  // One free of the plan: block `block`, or a pointer `offset` bytes into
  // it; `push_before`: the sender pushes what it holds first.
  struct Step {
    unsigned block;
    std::size_t offset = 0;
    bool push_before = false;
  };

  unsigned sender;
  unsigned owner;
  std::vector<std::size_t> sizes;
  unsigned target = 0;  // the block misused
  unsigned split = 0;   // kRepeatNextBatch: blocks [split, n) go with the second batch
  std::size_t offset = 16;

  explicit BatchFree(const PoolModel& s) {
    const std::vector<unsigned> ts = attached_threads(s);
    RC_PRE(ts.size() >= 2u);
    sender = *rc::gen::elementOf(ts);
    std::vector<unsigned> others;
    for (unsigned t : ts) {
      if (t != sender) others.push_back(t);
    }
    owner = *rc::gen::elementOf(others);
    sizes = *rc::gen::container<std::vector<std::size_t>>(length(), batch_block_size());
    if constexpr (kMisuse != BatchMisuse::kNone) {
      const unsigned n = static_cast<unsigned>(sizes.size());
      if (kMisuse == BatchMisuse::kRepeatNextBatch && kShape == BatchShape::kCarriersOnly) {
        // Blocks [0, split) and then b_target plus [split, n): 8 or more each.
        split = *rc::gen::inRange(8u, n - 6);
        target = *rc::gen::inRange(0u, split);
      } else {
        target = *rc::gen::inRange(0u, n);
        split = *rc::gen::inRange(target + 1, n + 1);
      }
      offset = *rc::gen::element<std::size_t>(16, 1);
    }
  }

  // How many blocks: with kCarriersOnly, few enough that the repeated or
  // interior free still fits the batch (64), and for a second batch enough
  // for two carriers.
  static unsigned length() {
    if constexpr (kShape == BatchShape::kAny) {
      return *batch_length();
    } else if constexpr (kMisuse == BatchMisuse::kRepeatNextBatch) {
      return *rc::gen::inRange(15u, 71u);
    } else if constexpr (kMisuse == BatchMisuse::kNone) {
      return *rc::gen::inRange(8u, 65u);
    } else {
      return *rc::gen::inRange(8u, 64u);
    }
  }

  void checkPreconditions(const PoolModel& s) const override {
    RC_PRE(s.attached[sender] && s.attached[owner] && sender != owner);
  }

  std::vector<Step> plan() const {
    const unsigned n = static_cast<unsigned>(sizes.size());
    std::vector<Step> steps;
    for (unsigned i = 0; i < n; ++i) {
      if (kMisuse == BatchMisuse::kRepeatNextBatch && i == split) break;
      if (kMisuse == BatchMisuse::kInteriorPointer && i == target) steps.push_back({i, offset});
      steps.push_back({i});
      if (kMisuse == BatchMisuse::kRepeatAfterNext && i == target + 1) steps.push_back({target});
    }
    if (kMisuse == BatchMisuse::kRepeatAfterNext && target + 1 == n) steps.push_back({target});
    if (kMisuse == BatchMisuse::kRepeatAtEnd) steps.push_back({target});
    if (kMisuse == BatchMisuse::kRepeatNextBatch) {
      steps.push_back({target, 0, true});
      for (unsigned i = split; i < n; ++i) steps.push_back({i});
    }
    return steps;
  }

  void run(const PoolModel&, PoolSut& sut) const override {
    PoolHeap* from = sut.threads[sender];
    PoolHeap* to = sut.threads[owner];
    std::vector<char*> blocks;
    for (std::size_t size : sizes) {
      errno = 0;
      void* p = to->malloc(size);
      sut.judge(sut.spec.malloc(size, p, errno, Memory::kPlenty));
      sut.adopt(p, to);
      blocks.push_back(static_cast<char*>(p));
    }
    // From here to the owner's drain reports may come at any point: only
    // the model's verdicts stop the run, the reports are counted at the end.
    const std::size_t pushed_before = from->stats().remote_pushed;
    for (const Step& step : plan()) {
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
    sut.check(sut.spec.reports(sut.take_reports()));
    sut.check_heaps("the owner's drain");
    sut.check_drained(to);
    // Settle the carriers: the owner freed each one back to its sender
    // (batched); push them and let the sender take them back, so no batch is
    // pending after the command and the bookkeeping stays exact.
    const std::size_t returned_before = to->stats().remote_pushed;
    to->flush_remote_batch();
    sut.pushed_to[from] += to->stats().remote_pushed - returned_before;
    from->drain_remote();
    sut.check_drained(from);
    sut.judge(sut.spec.check_all());
    sut.check_heaps("the batch");
  }

  void show(std::ostream& os) const override {
    os << "T" << sender << ": free " << sizes.size() << " blocks of T" << owner
       << " in one batch (";
    for (std::size_t i = 0; i < sizes.size(); ++i) os << (i == 0 ? "" : " ") << sizes[i];
    os << ")" << batch_misuse_name(kMisuse);
    if (kMisuse != BatchMisuse::kNone) os << " [b" << target;
    if (kMisuse == BatchMisuse::kRepeatNextBatch) os << ", second batch from b" << split;
    if (kMisuse == BatchMisuse::kInteriorPointer) os << " + " << offset << ", or + 1 if past it";
    if (kMisuse != BatchMisuse::kNone) {
      os << "; frees";
      for (const Step& step : plan()) {
        os << (step.push_before ? " | b" : " b") << step.block;
        if (step.offset != 0) os << "+" << offset;
      }
      os << "]";
    }
    os << ", push, T" << owner << ": drain_remote()";
  }
};

}  // namespace hpcalloc::proptest

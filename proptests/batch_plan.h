// A batch of remote frees, as the misuse harnesses make it: one thread frees
// n blocks of another thread's heap with nothing else in between, so its
// heap collects them for that owner and pushes them together (up to 64 held
// back; 8 or more travel as one "carrier" block listing them, fewer as a
// chain linked through the blocks). With misuse, one block of the batch is
// freed twice (p, q, p; at the end; or in a second batch pushed separately
// before the owner drains), or an interior pointer of one is freed just
// before the block itself. The report comes when the owner drains: it must
// come exactly once, and every other free of the batch must take effect.
//
// BatchPlan is the generated part (sizes, which block, where the second
// batch starts) and the order of the frees; multi_heap_batches.h (SimPal
// heaps) and c_api_misuse_prop.cpp (the process-wide allocator) run it.
#pragma once

#include <rapidcheck.h>

#include <cstddef>
#include <ostream>
#include <utility>
#include <vector>

namespace hpcalloc::proptest {

enum class BatchMisuse {
  kNone,
  kRepeatAfterNext,  // b_i, b_i+1, b_i: the p, q, p pattern
  kRepeatAtEnd,      // b_i again after the batch's last block
  kRepeatNextBatch,  // b_i again in a second batch, pushed before the owner drains
  kInteriorPointer,  // b_i + 16 (or + 1 when 16 is past its usable size), then b_i
};

// Which batches a plan makes: any (every length from 1 to 70), or only
// carriers (each push holds 8 to 64 frees, the misused one included), so a
// bug in the chains does not hide how carriers fare.
enum class BatchShape { kAny, kCarriersOnly };

// Below, at and around the carrier threshold (8) and the batch capacity (64).
inline rc::Gen<unsigned> batch_length() {
  return rc::gen::weightedOneOf<unsigned>({
      {3, rc::gen::inRange(1u, 8u)},
      {3, rc::gen::inRange(8u, 65u)},
      {2, rc::gen::element(1u, 2u, 3u, 7u, 8u, 9u, 63u, 64u, 65u, 70u)},
      {1, rc::gen::inRange(65u, 71u)},
  });
}

template <BatchMisuse kMisuse, BatchShape kShape>
struct BatchPlan {
  // One free: block `block`, or a pointer `offset` bytes into it (0: the
  // block itself); `push_before`: the freeing thread pushes what it holds
  // first (it calls malloc_trim, or flush_remote_batch on SimPal).
  struct Step {
    unsigned block;
    std::size_t offset = 0;
    bool push_before = false;
  };

  std::vector<std::size_t> sizes;  // of the blocks, allocated by the owner
  unsigned target = 0;             // the block misused
  unsigned split = 0;              // kRepeatNextBatch: blocks [split, n) go with the second batch
  std::size_t offset = 16;

  // A plan chosen by hand (a sweep): `split` matters for kRepeatNextBatch.
  BatchPlan(std::vector<std::size_t> block_sizes, unsigned misused, unsigned second_batch_from,
            std::size_t interior_offset)
      : sizes(std::move(block_sizes)),
        target(misused),
        split(second_batch_from),
        offset(interior_offset) {}

  explicit BatchPlan(const rc::Gen<std::size_t>& block_size) {
    sizes = *rc::gen::container<std::vector<std::size_t>>(length(), block_size);
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

  std::vector<Step> steps() const {
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

  // "3 blocks (24 4096 17)", and with misuse the order of the frees:
  // " in the order b0 b1 b0 b2" ("| " where the first batch is pushed,
  // "+16" for the interior pointer).
  void show(std::ostream& os) const {
    os << sizes.size() << " blocks (";
    for (std::size_t i = 0; i < sizes.size(); ++i) os << (i == 0 ? "" : " ") << sizes[i];
    os << ")";
    if constexpr (kMisuse != BatchMisuse::kNone) {
      os << " in the order";
      for (const Step& step : steps()) {
        os << (step.push_before ? " | b" : " b") << step.block;
        if (step.offset != 0) os << "+" << offset << (offset > 1 ? " (or +1 if past it)" : "");
      }
    }
  }
};

}  // namespace hpcalloc::proptest

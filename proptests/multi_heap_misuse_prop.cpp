// Misuse on the multi-heap state machine (proptests/multi_heap_state.h):
// the valid commands of multi_heap_prop plus one kind of misuse per
// property, so that a bug in one kind does not hide the others:
//   - a double free of a small, medium or huge block, on the thread that
//     owns it or on another one, after any calls in between (the address is
//     freed again as long as no live block starts there);
//   - a free of an interior pointer (+16, +8 or +1, inside the block) of a
//     live block, on either thread;
//   - realloc and malloc_usable_size of a freed block of each size;
//   - batches of remote frees (1 to 70 blocks to one owner: chains and
//     carriers; or only carriers) in which one block is freed twice (p, q,
//     p; at the end of the batch; in a second batch pushed before the owner
//     drains) or an interior pointer of one is freed.
// The heaps report to a RecordingReporter, which like
// HPCALLOC_ON_ERROR=warn returns after each report. The invariant, judged by
// the reference model: each misuse is reported exactly once (when the owner
// drains, for a free made on another heap), the call returns without
// serving anything (realloc NULL, usable size 0), every live block keeps its
// contents, no block is handed out twice (the model's overlap check on every
// later allocation), the heaps' runs and caches stay consistent, every
// remote free pushed is taken back, and at the end nothing is in use or
// mapped: no free was lost.
// Default: rapidcheck's 100 cases per property. A campaign:
//   RC_PARAMS="max_success=20000 max_size=400" ./multi_heap_misuse_prop
#include <gtest/gtest.h>
#include <rapidcheck.h>
#include <rapidcheck/gtest.h>
#include <rapidcheck/state.h>

#include <algorithm>
#include <cstdint>
#include <ostream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "proptests/case_on_crash.h"
#include "proptests/multi_heap_batches.h"
#include "proptests/multi_heap_state.h"

namespace hpcalloc::proptest {
namespace {

enum class MisuseCall { kDoubleFree, kInteriorFree, kReallocFreed, kUsableSizeFreed };
enum class Family { kSmall, kMedium, kHuge };  // TinyConfig: up to 256 B, 16 KiB, above
// The thread that makes the call: the one whose heap allocated the block,
// or any other.
enum class Caller { kOwner, kOther };

bool in_family(std::size_t size, Family family) {
  switch (family) {
    case Family::kSmall: return size <= PoolConfig::kSmallMax;
    case Family::kMedium: return size > PoolConfig::kSmallMax && size <= PoolConfig::kMediumMax;
    case Family::kHuge: return size > PoolConfig::kMediumMax;
  }
  return false;
}

// Every heap drains its remote frees (no trim: a freed block may wait in a
// cache to be served again, which is what realloc and usable size of a freed
// block must not do), and together they take back all that was sent.
void drain_everywhere(PoolSut& sut) {
  for (PoolHeap* heap : sut.heaps) heap->drain_remote();
  for (PoolHeap* heap : sut.heaps) sut.check_drained(heap);
}

template <MisuseCall kCall, Family kFamily, Caller kCaller = Caller::kOwner>
struct Misuse : PoolCommand {
  static constexpr bool kOfLiveBlock = kCall == MisuseCall::kInteriorFree;
  unsigned h;
  unsigned pick = *rc::gen::inRange(0u, kThreads);  // among the eligible threads
  std::size_t offset = *rc::gen::element<std::size_t>(16, 8, 1);
  std::size_t size = *pool_request_size();  // realloc's

  explicit Misuse(const PoolModel& s) {
    std::vector<unsigned> candidates;
    for (const PoolModel::Handle& handle : kOfLiveBlock ? s.handles : s.freed) {
      if (in_family(handle.size, kFamily)) candidates.push_back(handle.id);
    }
    RC_PRE(!candidates.empty());
    h = *rc::gen::elementOf(candidates);
  }

  // Still there, and still of the family (shrinking may have changed its
  // size).
  void checkPreconditions(const PoolModel& s) const override {
    const auto& list = kOfLiveBlock ? s.handles : s.freed;
    const bool fits = std::any_of(list.begin(), list.end(), [this](const PoolModel::Handle& x) {
      return x.id == h && in_family(x.size, kFamily);
    });
    RC_PRE(fits);
  }

  // The pointer to misuse, or nullptr when there is none: a failed
  // allocation, a block too small for an interior pointer, or a freed
  // address where a live block starts again.
  char* pointer(const PoolSut& sut) const {
    if constexpr (kOfLiveBlock) {
      char* p = static_cast<char*>(sut.held.at(h).p);
      if (p == nullptr) return nullptr;
      const std::size_t extent = sut.spec.live().at(reinterpret_cast<std::uintptr_t>(p)).extent;
      if (extent < 2) return nullptr;
      return p + (offset < extent ? offset : 1);
    } else {
      char* p = static_cast<char*>(sut.freed.at(h).p);
      return sut.spec.is_misuse(p) ? p : nullptr;
    }
  }

  // The calling thread's heap, or nullptr when no attached thread fits.
  PoolHeap* caller(const PoolSut& sut) const {
    const PoolHeap* owner = kOfLiveBlock ? sut.held.at(h).owner : sut.freed.at(h).owner;
    std::vector<PoolHeap*> eligible;
    for (PoolHeap* heap : sut.threads) {
      if (heap != nullptr && (heap == owner) == (kCaller == Caller::kOwner)) {
        eligible.push_back(heap);
      }
    }
    return eligible.empty() ? nullptr : eligible[pick % eligible.size()];
  }

  void run(const PoolModel&, PoolSut& sut) const override {
    char* p = pointer(sut);
    PoolHeap* heap = caller(sut);
    if (p == nullptr || heap == nullptr) return;
    // A block whose free from another thread still waits in its owner's
    // queue is live as far as the owner can know: realloc and usable size
    // are asked of blocks their owner has taken back.
    if (kCall == MisuseCall::kReallocFreed || kCall == MisuseCall::kUsableSizeFreed) {
      drain_everywhere(sut);
    }
    switch (kCall) {
      case MisuseCall::kDoubleFree:
      case MisuseCall::kInteriorFree:
        sut.check(sut.spec.free_misused(p));
        heap->free(p);
        break;
      case MisuseCall::kReallocFreed: {
        void* q = heap->realloc(p, size);
        sut.check(sut.spec.realloc_misused(p, size, q));
        break;
      }
      case MisuseCall::kUsableSizeFreed:
        sut.check(sut.spec.usable_size_misused(p, heap->usable_size(p)));
        break;
    }
    // The report may come now, when the block's owner drains its queue (a
    // free on another heap, or the block's first free still waiting there),
    // or when a cache is flushed (a small block's double free).
    sut.settle_everywhere("the misuse");
  }

  void show(std::ostream& os) const override {
    if (kCall == MisuseCall::kReallocFreed || kCall == MisuseCall::kUsableSizeFreed) {
      os << "every heap drains; ";  // see run()
    }
    os << (kCaller == Caller::kOwner ? "owner's thread: " : "another thread: ");
    switch (kCall) {
      case MisuseCall::kDoubleFree: os << "free(h" << h << ") again"; break;
      case MisuseCall::kInteriorFree:
        os << "free(h" << h << " + " << offset << ", or + 1 if past it)";
        break;
      case MisuseCall::kReallocFreed: os << "realloc(freed h" << h << ", " << size << ")"; break;
      case MisuseCall::kUsableSizeFreed: os << "usable_size(freed h" << h << ")"; break;
    }
    os << ", then every heap trims twice (skipped if a live block starts there again, or no "
          "such thread)";
  }
};

// The valid commands of multi_heap_prop plus `Extra`, twice as likely as
// each of them (a misuse command needs a freed or live block to act on).
template <class Extra>
void run_with() {
  PoolSut sut;
  const auto commands = *rc::gen::scale(
      4.0, rc::state::gen::commands(
               PoolModel{},
               rc::state::gen::execOneOfWithArgs<Allocate, Allocate, Allocate, Free, Free, Realloc,
                                                 UsableSize, Drain, Exit, Start,
                                                 BatchFree<BatchMisuse::kNone>, Extra, Extra>()));
  CaseOnCrash::running(commands);
  rc::state::runAll(commands, PoolModel{}, sut);
  free_everything_and_tear_down(sut);
}

// Every batch length from 1 to 70 (chains below 8, carriers from 8, a full
// batch of 64 and a second one above), the misused block first, in the
// middle and last, and small, medium or huge (the others small): one fresh
// pool each, thread 1 freeing thread 0's blocks. Generated cases sample the
// lengths; this walks all of them, and lists every one that fails. A plain
// test (nothing to generate or shrink): run_batch's rapidcheck assertions
// throw, and are caught here.
// "1-7, 65, 67-70".
std::string ranges(const std::vector<unsigned>& values) {
  std::string out;
  for (std::size_t i = 0; i < values.size();) {
    std::size_t j = i;
    while (j + 1 < values.size() && values[j + 1] == values[j] + 1) ++j;
    out += (out.empty() ? "" : ", ") + std::to_string(values[i]);
    if (j > i) out += "-" + std::to_string(values[j]);
    i = j + 1;
  }
  return out;
}

// The last line of a rapidcheck failure (its message; the lines before
// name the assertion).
std::string last_line(const std::string& text) {
  const std::size_t end = text.find_last_not_of('\n');
  if (end == std::string::npos) return text;
  const std::size_t start = text.rfind('\n', end);
  return text.substr(start == std::string::npos ? 0 : start + 1, end + 1 - start - 1);
}

template <BatchMisuse kMisuse>
void sweep_every_length() {
  constexpr std::size_t kSizes[] = {48, 1000, 20000};  // TinyConfig: small, medium, huge
  std::string failures;
  for (std::size_t misused_size : kSizes) {
    std::vector<unsigned> failed_lengths;
    std::string first;
    for (unsigned n = 1; n <= 70; ++n) {
      std::vector<unsigned> targets{0, n / 2, n - 1};
      targets.erase(std::unique(targets.begin(), targets.end()), targets.end());
      bool failed = false;
      for (unsigned target : targets) {
        std::vector<std::size_t> sizes(n, 48);
        sizes[target] = misused_size;
        const BatchPlan<kMisuse, BatchShape::kAny> plan(sizes, target, target + 1, 16);
        std::ostringstream what;
        what << "T1: free T0's ";
        plan.show(what);
        CaseOnCrash::running_case(what.str());
        std::string why;
        try {
          PoolSut sut;
          run_batch(sut, 1, 0, plan);
          free_everything_and_tear_down(sut);
        } catch (const rc::detail::CaseResult& result) {
          why = last_line(result.description);
        } catch (const std::exception& e) {
          why = e.what();
        }
        if (why.empty()) continue;
        failed = true;
        if (first.empty()) first = what.str() + ": " + why;
      }
      if (failed) failed_lengths.push_back(n);
    }
    if (!failed_lengths.empty()) {
      failures += "\n  misused block of " + std::to_string(misused_size) + " bytes: lengths " +
                  ranges(failed_lengths) + " fail; the first:\n    " + first;
    }
  }
  EXPECT_TRUE(failures.empty()) << "batches of 1 to 70 blocks, the misused one first, in the "
                                   "middle or last:"
                                << failures;
}

using M = MisuseCall;
using F = Family;
using B = BatchMisuse;
constexpr BatchShape kCarriers = BatchShape::kCarriersOnly;

// clang-format off
RC_GTEST_PROP(MultiHeapMisuseProp, DoubleFreeSmallOnOwner, ()) { run_with<Misuse<M::kDoubleFree, F::kSmall>>(); }
RC_GTEST_PROP(MultiHeapMisuseProp, DoubleFreeMediumOnOwner, ()) { run_with<Misuse<M::kDoubleFree, F::kMedium>>(); }
RC_GTEST_PROP(MultiHeapMisuseProp, DoubleFreeHugeOnOwner, ()) { run_with<Misuse<M::kDoubleFree, F::kHuge>>(); }
RC_GTEST_PROP(MultiHeapMisuseProp, DoubleFreeSmallOnOther, ()) { run_with<Misuse<M::kDoubleFree, F::kSmall, Caller::kOther>>(); }
RC_GTEST_PROP(MultiHeapMisuseProp, DoubleFreeMediumOnOther, ()) { run_with<Misuse<M::kDoubleFree, F::kMedium, Caller::kOther>>(); }
RC_GTEST_PROP(MultiHeapMisuseProp, DoubleFreeHugeOnOther, ()) { run_with<Misuse<M::kDoubleFree, F::kHuge, Caller::kOther>>(); }

RC_GTEST_PROP(MultiHeapMisuseProp, InteriorFreeSmallOnOwner, ()) { run_with<Misuse<M::kInteriorFree, F::kSmall>>(); }
RC_GTEST_PROP(MultiHeapMisuseProp, InteriorFreeMediumOnOwner, ()) { run_with<Misuse<M::kInteriorFree, F::kMedium>>(); }
RC_GTEST_PROP(MultiHeapMisuseProp, InteriorFreeHugeOnOwner, ()) { run_with<Misuse<M::kInteriorFree, F::kHuge>>(); }
RC_GTEST_PROP(MultiHeapMisuseProp, InteriorFreeSmallOnOther, ()) { run_with<Misuse<M::kInteriorFree, F::kSmall, Caller::kOther>>(); }
RC_GTEST_PROP(MultiHeapMisuseProp, InteriorFreeMediumOnOther, ()) { run_with<Misuse<M::kInteriorFree, F::kMedium, Caller::kOther>>(); }
RC_GTEST_PROP(MultiHeapMisuseProp, InteriorFreeHugeOnOther, ()) { run_with<Misuse<M::kInteriorFree, F::kHuge, Caller::kOther>>(); }

RC_GTEST_PROP(MultiHeapMisuseProp, ReallocOfFreedSmall, ()) { run_with<Misuse<M::kReallocFreed, F::kSmall>>(); }
RC_GTEST_PROP(MultiHeapMisuseProp, ReallocOfFreedMedium, ()) { run_with<Misuse<M::kReallocFreed, F::kMedium>>(); }
RC_GTEST_PROP(MultiHeapMisuseProp, ReallocOfFreedHuge, ()) { run_with<Misuse<M::kReallocFreed, F::kHuge>>(); }
RC_GTEST_PROP(MultiHeapMisuseProp, UsableSizeOfFreedSmall, ()) { run_with<Misuse<M::kUsableSizeFreed, F::kSmall>>(); }
RC_GTEST_PROP(MultiHeapMisuseProp, UsableSizeOfFreedMedium, ()) { run_with<Misuse<M::kUsableSizeFreed, F::kMedium>>(); }
RC_GTEST_PROP(MultiHeapMisuseProp, UsableSizeOfFreedHuge, ()) { run_with<Misuse<M::kUsableSizeFreed, F::kHuge>>(); }

RC_GTEST_PROP(MultiHeapMisuseProp, BatchRepeatAfterNext, ()) { run_with<BatchFree<B::kRepeatAfterNext>>(); }
RC_GTEST_PROP(MultiHeapMisuseProp, BatchRepeatAtEnd, ()) { run_with<BatchFree<B::kRepeatAtEnd>>(); }
RC_GTEST_PROP(MultiHeapMisuseProp, BatchRepeatInSecondBatch, ()) { run_with<BatchFree<B::kRepeatNextBatch>>(); }
RC_GTEST_PROP(MultiHeapMisuseProp, BatchInteriorPointer, ()) { run_with<BatchFree<B::kInteriorPointer>>(); }
RC_GTEST_PROP(MultiHeapMisuseProp, CarrierRepeatAfterNext, ()) { run_with<BatchFree<B::kRepeatAfterNext, kCarriers>>(); }
RC_GTEST_PROP(MultiHeapMisuseProp, CarrierRepeatAtEnd, ()) { run_with<BatchFree<B::kRepeatAtEnd, kCarriers>>(); }
RC_GTEST_PROP(MultiHeapMisuseProp, CarrierRepeatInSecondCarrier, ()) { run_with<BatchFree<B::kRepeatNextBatch, kCarriers>>(); }
RC_GTEST_PROP(MultiHeapMisuseProp, CarrierInteriorPointer, ()) { run_with<BatchFree<B::kInteriorPointer, kCarriers>>(); }
TEST(MultiHeapMisuseSweep, EveryBatchLengthValid) { sweep_every_length<B::kNone>(); }
TEST(MultiHeapMisuseSweep, EveryBatchLengthRepeatAfterNext) { sweep_every_length<B::kRepeatAfterNext>(); }
TEST(MultiHeapMisuseSweep, EveryBatchLengthRepeatAtEnd) { sweep_every_length<B::kRepeatAtEnd>(); }
TEST(MultiHeapMisuseSweep, EveryBatchLengthRepeatInSecondBatch) { sweep_every_length<B::kRepeatNextBatch>(); }
TEST(MultiHeapMisuseSweep, EveryBatchLengthInteriorPointer) { sweep_every_length<B::kInteriorPointer>(); }
// clang-format on

}  // namespace
}  // namespace hpcalloc::proptest

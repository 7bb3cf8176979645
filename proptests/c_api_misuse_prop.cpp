// Misuse through the prefixed C API of the process-wide allocator
// (proptests/c_api_state.h), run with HPCALLOC_ON_ERROR=warn: a detected
// misuse prints one line on stderr and the call returns without touching
// the allocator. The valid commands of c_api_prop, plus frees on a second
// thread (the worker), plus one kind of misuse per property:
//   - a double free of a small, medium (4 KiB, 64 KiB, ...) or huge block,
//     on this thread or on the worker, after any calls in between;
//   - a free of an interior pointer (+16, +8 or +1) of a live block;
//   - realloc and malloc_usable_size of a freed block;
//   - a batch of remote frees (1 to 70 of this thread's blocks freed on the
//     worker: chains and carriers; or only carriers) with one block freed
//     twice, or an interior pointer of one (batch_plan.h).
// The reports are counted by hpc_stat("errors_reported"). The report of a
// free made on the worker comes when this thread drains its remote-free
// queue: hpc_malloc_trim(0) flushes the calling thread's batch and drains
// its queue (global::trim: ThreadHeap::trim), so after every misuse the
// worker trims (pushes what it holds), this thread trims (drains, and
// returns the carriers), and the worker trims again (takes them back).
// The invariant, judged by the reference model: each misuse is reported
// exactly once; the call returns without serving anything (realloc NULL,
// usable size 0); every live block keeps its contents; no block is handed
// out twice (the model's overlap check on every later allocation); every
// remote free pushed is taken back; and at the end nothing is left in use:
// no free was lost.
//
// One process runs every case: a bug that corrupts the allocator may make
// later cases (and rapidcheck's shrinking) fail too, so every figure is
// compared with its value at the start of the case.
// Default: rapidcheck's 100 cases per property. A campaign:
//   HPCALLOC_ON_ERROR=warn RC_PARAMS="max_success=20000 max_size=400" ./c_api_misuse_prop
#include <gtest/gtest.h>
#include <rapidcheck.h>
#include <rapidcheck/gtest.h>
#include <rapidcheck/state.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <ostream>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "proptests/batch_plan.h"
#include "proptests/c_api_state.h"
#include "proptests/case_on_crash.h"
#include "proptests/worker_thread.h"

namespace hpcalloc::proptest {
namespace {

// Without warn mode the first misuse would abort the process: refuse to
// run (a failure, not a skip, so that a suite that lost the setting shows
// it). ctest sets the variable.
void require_warn_mode() {
  const char* mode = std::getenv("HPCALLOC_ON_ERROR");
  if (mode == nullptr || std::string_view(mode) != "warn") {
    RC_FAIL(
        "c_api_misuse_prop needs HPCALLOC_ON_ERROR=warn (ctest sets it): in the default abort "
        "mode the first misuse ends the process");
  }
}

WorkerThread& worker() {
  static WorkerThread* const thread = new WorkerThread;  // lives as long as the process
  return *thread;
}

enum class MisuseCall { kDoubleFree, kInteriorFree, kReallocFreed, kUsableSizeFreed };
enum class Family { kSmall, kMedium, kHuge };  // production: up to 1 KiB, 1 MiB, above
enum class Caller { kThisThread, kWorker };

bool in_family(std::size_t size, Family family) {
  switch (family) {
    case Family::kSmall: return size <= kSmallMax;
    case Family::kMedium: return size > kSmallMax && size <= kMediumMax;
    case Family::kHuge: return size > kMediumMax;
  }
  return false;
}

// The remote-free figures as the case found them: outstanding frees (pushed,
// not drained) left by an earlier case that lost some.
struct Baseline {
  std::size_t outstanding = 0;
};
Baseline g_baseline;

// For the watchdog's thread: no rapidcheck assertion there.
std::size_t stat_or_zero(const char* name) {
  std::size_t value = 0;
  return hpc_stat(name, &value) == 0 ? value : 0;
}

std::size_t outstanding_remote_frees() {
  return stat("remote_frees_pushed") - stat("remote_frees_drained");
}

// Every remote free made so far reaches its owner (see the top comment),
// and the reports this causes are made.
void push_and_drain_everywhere() {
  worker().run([] { hpc_malloc_trim(0); });
  hpc_malloc_trim(0);
  worker().run([] { hpc_malloc_trim(0); });
}

// push_and_drain_everywhere(), then: exactly one report per misuse since
// the last settle, every live block intact, and nothing pushed that was not
// taken back (a misused free its owner rejected may not count as taken
// back: one per misuse is allowed, and becomes the new baseline).
void settle(ApiSut& sut) {
  push_and_drain_everywhere();
  const std::size_t misused = sut.spec.expected_reports();
  const std::size_t reports = stat("errors_reported");
  sut.judge(sut.spec.reports(reports - sut.reports_seen));
  sut.reports_seen = reports;
  const std::size_t outstanding = outstanding_remote_frees();
  if (outstanding < g_baseline.outstanding || outstanding - g_baseline.outstanding > misused) {
    RC_FAIL(std::to_string(outstanding - g_baseline.outstanding) +
            " remote frees pushed but never taken back by their owner (" + std::to_string(misused) +
            " misuse)");
  }
  g_baseline.outstanding = outstanding;
}

// Valid: the worker frees a block of this thread and pushes it (its trim);
// it waits in this thread's queue until this thread's next slow path.
struct FreeOnWorker : ApiCommand {
  unsigned h;
  explicit FreeOnWorker(const ApiModel& s) : h(existing_handle(s).id) {}

  void checkPreconditions(const ApiModel& s) const override { RC_PRE(s.has(h)); }
  void apply(ApiModel& s) const override { s.free(h); }
  void run(const ApiModel&, ApiSut& sut) const override {
    void* p = sut.blocks.at(h);
    sut.freed[h] = {p, sut.asked_size(p)};
    sut.judge(sut.spec.free(p));  // reads the block: before the free
    worker().run([p] {
      hpc_free(p);
      hpc_malloc_trim(0);
    });
    sut.blocks.erase(h);
    sut.freed_on_worker.insert(p);
  }
  void show(std::ostream& os) const override { os << "worker: free(h" << h << "), trim"; }
};

template <MisuseCall kCall, Family kFamily, Caller kCaller = Caller::kThisThread>
struct Misuse : ApiCommand {
  static constexpr bool kOfLiveBlock = kCall == MisuseCall::kInteriorFree;
  unsigned h;
  std::size_t offset = *rc::gen::element<std::size_t>(16, 8, 1);
  std::size_t size = *request_size();  // realloc's

  explicit Misuse(const ApiModel& s) {
    std::vector<unsigned> candidates;
    for (const HandleList::Handle& handle : kOfLiveBlock ? s.handles : s.freed) {
      if (in_family(handle.size, kFamily)) candidates.push_back(handle.id);
    }
    RC_PRE(!candidates.empty());
    h = *rc::gen::elementOf(candidates);
  }

  // Still there, and still of the family (shrinking may have changed its
  // size).
  void checkPreconditions(const ApiModel& s) const override {
    const auto& list = kOfLiveBlock ? s.handles : s.freed;
    const bool fits = std::any_of(list.begin(), list.end(), [this](const HandleList::Handle& x) {
      return x.id == h && in_family(x.size, kFamily);
    });
    RC_PRE(fits);
  }

  // The pointer to misuse, or nullptr when there is none: a failed
  // allocation, a block of another family than the handle's size said
  // (calloc's count, a realloc that failed), a block too small for an
  // interior pointer, or a freed address where a live block starts again.
  char* pointer(const ApiSut& sut) const {
    if constexpr (kOfLiveBlock) {
      char* p = static_cast<char*>(sut.blocks.at(h));
      if (p == nullptr || !in_family(sut.asked_size(p), kFamily)) return nullptr;
      const std::size_t extent = sut.spec.live().at(reinterpret_cast<std::uintptr_t>(p)).extent;
      if (extent < 2) return nullptr;
      return p + (offset < extent ? offset : 1);
    } else {
      // A block whose free on the worker may still wait in this thread's
      // queue is live as far as the allocator can know: realloc and usable
      // size are asked only of addresses this thread alone ever freed.
      // (Settling first would not do: malloc_trim also empties the caches
      // where a freed block may wait to be served again.)
      constexpr bool kAsksContents =
          kCall == MisuseCall::kReallocFreed || kCall == MisuseCall::kUsableSizeFreed;
      const ApiSut::Freed& block = sut.freed.at(h);
      if (kAsksContents && sut.freed_on_worker.count(block.p) != 0) return nullptr;
      if (!in_family(block.size, kFamily)) return nullptr;
      char* p = static_cast<char*>(block.p);
      return sut.spec.is_misuse(p) ? p : nullptr;
    }
  }

  void run(const ApiModel&, ApiSut& sut) const override {
    char* p = pointer(sut);
    if (p == nullptr) return;
    // Only the allocator touches p (it may be freed memory, poisoned under
    // ASan); the model's judgements never read it, and are made on this
    // thread (a failure throws).
    void* reallocated = nullptr;
    std::size_t usable = 0;
    auto call = [&] {
      switch (kCall) {
        case MisuseCall::kDoubleFree:
        case MisuseCall::kInteriorFree: hpc_free(p); break;
        case MisuseCall::kReallocFreed: reallocated = hpc_realloc(p, size); break;
        case MisuseCall::kUsableSizeFreed: usable = hpc_malloc_usable_size(p); break;
      }
    };
    if constexpr (kCaller == Caller::kWorker) {
      worker().run(call);
    } else {
      call();
    }
    switch (kCall) {
      case MisuseCall::kDoubleFree:
      case MisuseCall::kInteriorFree: sut.judge(sut.spec.free_misused(p)); break;
      case MisuseCall::kReallocFreed:
        sut.judge(sut.spec.realloc_misused(p, size, reallocated));
        break;
      case MisuseCall::kUsableSizeFreed: sut.judge(sut.spec.usable_size_misused(p, usable)); break;
    }
    settle(sut);
  }

  void show(std::ostream& os) const override {
    os << (kCaller == Caller::kWorker ? "worker: " : "");
    switch (kCall) {
      case MisuseCall::kDoubleFree: os << "free(h" << h << ") again"; break;
      case MisuseCall::kInteriorFree:
        os << "free(h" << h << " + " << offset << (offset > 1 ? ", or + 1 if past it)" : ")");
        break;
      case MisuseCall::kReallocFreed: os << "realloc(freed h" << h << ", " << size << ")"; break;
      case MisuseCall::kUsableSizeFreed: os << "malloc_usable_size(freed h" << h << ")"; break;
    }
    os << "; settle (skipped if not of the family, or a live block starts there again";
    if (kCall == MisuseCall::kReallocFreed || kCall == MisuseCall::kUsableSizeFreed) {
      os << " or the worker freed it";
    }
    os << ")";
  }
};

// Mostly small blocks, some medium (the medium cache's sizes, up to 32 KiB,
// and beyond), rarely a huge one: every byte is filled and checked, and a
// batch has up to 70 blocks.
rc::Gen<std::size_t> api_batch_block_size() {
  return rc::gen::weightedOneOf<std::size_t>({
      {24, rc::gen::inRange<std::size_t>(1, kSmallMax + 1)},
      {6, rc::gen::element<std::size_t>(4096, 4097, 32768, 65536)},
      {4, rc::gen::inRange<std::size_t>(kSmallMax + 1, 65537)},
      {1, rc::gen::inRange<std::size_t>(65537, kMediumMax + 1)},
      {1, rc::gen::inRange<std::size_t>(kMediumMax + 1, 3 * kMediumMax)},
  });
}

// This thread allocates the plan's blocks; the worker frees them in the
// plan's order (malloc_trim where a batch is pushed early); then settle.
template <BatchMisuse kMisuse, BatchShape kShape = BatchShape::kAny>
struct BatchFreeOnWorker : ApiCommand {
  BatchPlan<kMisuse, kShape> plan{api_batch_block_size()};

  void run(const ApiModel&, ApiSut& sut) const override {
    std::vector<char*> blocks;
    for (std::size_t size : plan.sizes) {
      errno = 0;
      void* p = hpc_malloc(size);
      sut.judge(sut.spec.malloc(size, p, errno, kPlenty));
      sut.adopt(p);
      blocks.push_back(static_cast<char*>(p));
    }
    // Judged here first (a valid free's judgement reads the block), freed
    // there in one job; settle() then checks the other blocks are intact.
    std::vector<char*> frees;
    std::size_t push_before = SIZE_MAX;  // where the worker pushes its batch early
    for (const auto& step : plan.steps()) {
      char* p = blocks[step.block];
      if (step.offset != 0) {
        // Inside the block whatever its size (its extent is its usable size).
        const std::size_t extent = sut.spec.live().at(reinterpret_cast<std::uintptr_t>(p)).extent;
        p += step.offset < extent ? step.offset : 1;
      }
      sut.judge(sut.spec.is_misuse(p) ? sut.spec.free_misused(p) : sut.spec.free(p));
      if (step.push_before) push_before = frees.size();
      frees.push_back(p);
    }
    worker().run([&frees, push_before] {
      for (std::size_t i = 0; i < frees.size(); ++i) {
        if (i == push_before) hpc_malloc_trim(0);
        hpc_free(frees[i]);
      }
    });
    settle(sut);
  }

  void show(std::ostream& os) const override {
    os << "worker: free ";
    plan.show(os);
    os << "; settle";
  }
};

// The valid commands of c_api_prop and FreeOnWorker, plus `Extra` twice as
// likely as each of them; afterwards every block is freed and every figure
// is back where it was.
template <class Extra>
void run_with() {
  require_warn_mode();
  push_and_drain_everywhere();  // what an earlier case left pending is not this case's
  ApiSut sut;
  g_baseline.outstanding = outstanding_remote_frees();
  sut.reports_seen = stat("errors_reported");
  const std::size_t in_use_before = stat("in_use_bytes");
  const std::size_t huge_before = stat("huge_blocks");

  const auto commands = *rc::gen::scale(
      2.0, rc::state::gen::commands(
               ApiModel{},
               rc::state::gen::execOneOfWithArgs<
                   Allocate, Allocate, Allocate, Realloc, Free, Free, FreeOnWorker, UsableSize,
                   Trim, BatchFreeOnWorker<BatchMisuse::kNone>, Extra, Extra>()));
  CaseOnCrash::running(commands);
  // A case takes well under a second and makes a few dozen reports.
  CaseOnCrash::limit_each_case_to(
      30, [] { return stat_or_zero("errors_reported"); }, 20000);
  rc::state::runAll(commands, ApiModel{}, sut);

  for (const auto& [h, p] : sut.blocks) {
    sut.judge(sut.spec.free(p));
    hpc_free(p);
  }
  settle(sut);
  const std::size_t in_use = stat("in_use_bytes");
  if (in_use != in_use_before) {
    RC_FAIL("after every block was freed " + std::to_string(in_use) + " bytes are in use, " +
            std::to_string(in_use_before) + " before the case: a free was lost");
  }
  RC_ASSERT(stat("huge_blocks") == huge_before);
}

using M = MisuseCall;
using F = Family;
using B = BatchMisuse;
constexpr Caller kWorker = Caller::kWorker;
constexpr BatchShape kCarriers = BatchShape::kCarriersOnly;

// clang-format off
RC_GTEST_PROP(CApiMisuseProp, DoubleFreeSmall, ()) { run_with<Misuse<M::kDoubleFree, F::kSmall>>(); }
RC_GTEST_PROP(CApiMisuseProp, DoubleFreeMedium, ()) { run_with<Misuse<M::kDoubleFree, F::kMedium>>(); }
RC_GTEST_PROP(CApiMisuseProp, DoubleFreeHuge, ()) { run_with<Misuse<M::kDoubleFree, F::kHuge>>(); }
RC_GTEST_PROP(CApiMisuseProp, DoubleFreeSmallOnWorker, ()) { run_with<Misuse<M::kDoubleFree, F::kSmall, kWorker>>(); }
RC_GTEST_PROP(CApiMisuseProp, DoubleFreeMediumOnWorker, ()) { run_with<Misuse<M::kDoubleFree, F::kMedium, kWorker>>(); }
RC_GTEST_PROP(CApiMisuseProp, DoubleFreeHugeOnWorker, ()) { run_with<Misuse<M::kDoubleFree, F::kHuge, kWorker>>(); }

RC_GTEST_PROP(CApiMisuseProp, InteriorFreeSmall, ()) { run_with<Misuse<M::kInteriorFree, F::kSmall>>(); }
RC_GTEST_PROP(CApiMisuseProp, InteriorFreeMedium, ()) { run_with<Misuse<M::kInteriorFree, F::kMedium>>(); }
RC_GTEST_PROP(CApiMisuseProp, InteriorFreeHuge, ()) { run_with<Misuse<M::kInteriorFree, F::kHuge>>(); }
RC_GTEST_PROP(CApiMisuseProp, InteriorFreeSmallOnWorker, ()) { run_with<Misuse<M::kInteriorFree, F::kSmall, kWorker>>(); }
RC_GTEST_PROP(CApiMisuseProp, InteriorFreeMediumOnWorker, ()) { run_with<Misuse<M::kInteriorFree, F::kMedium, kWorker>>(); }
RC_GTEST_PROP(CApiMisuseProp, InteriorFreeHugeOnWorker, ()) { run_with<Misuse<M::kInteriorFree, F::kHuge, kWorker>>(); }

RC_GTEST_PROP(CApiMisuseProp, ReallocOfFreedSmall, ()) { run_with<Misuse<M::kReallocFreed, F::kSmall>>(); }
RC_GTEST_PROP(CApiMisuseProp, ReallocOfFreedMedium, ()) { run_with<Misuse<M::kReallocFreed, F::kMedium>>(); }
RC_GTEST_PROP(CApiMisuseProp, ReallocOfFreedHuge, ()) { run_with<Misuse<M::kReallocFreed, F::kHuge>>(); }
RC_GTEST_PROP(CApiMisuseProp, UsableSizeOfFreedSmall, ()) { run_with<Misuse<M::kUsableSizeFreed, F::kSmall>>(); }
RC_GTEST_PROP(CApiMisuseProp, UsableSizeOfFreedMedium, ()) { run_with<Misuse<M::kUsableSizeFreed, F::kMedium>>(); }
RC_GTEST_PROP(CApiMisuseProp, UsableSizeOfFreedHuge, ()) { run_with<Misuse<M::kUsableSizeFreed, F::kHuge>>(); }

RC_GTEST_PROP(CApiMisuseProp, BatchRepeatAfterNext, ()) { run_with<BatchFreeOnWorker<B::kRepeatAfterNext>>(); }
RC_GTEST_PROP(CApiMisuseProp, BatchRepeatAtEnd, ()) { run_with<BatchFreeOnWorker<B::kRepeatAtEnd>>(); }
RC_GTEST_PROP(CApiMisuseProp, BatchRepeatInSecondBatch, ()) { run_with<BatchFreeOnWorker<B::kRepeatNextBatch>>(); }
RC_GTEST_PROP(CApiMisuseProp, BatchInteriorPointer, ()) { run_with<BatchFreeOnWorker<B::kInteriorPointer>>(); }
RC_GTEST_PROP(CApiMisuseProp, CarrierRepeatAfterNext, ()) { run_with<BatchFreeOnWorker<B::kRepeatAfterNext, kCarriers>>(); }
RC_GTEST_PROP(CApiMisuseProp, CarrierRepeatAtEnd, ()) { run_with<BatchFreeOnWorker<B::kRepeatAtEnd, kCarriers>>(); }
RC_GTEST_PROP(CApiMisuseProp, CarrierRepeatInSecondCarrier, ()) { run_with<BatchFreeOnWorker<B::kRepeatNextBatch, kCarriers>>(); }
RC_GTEST_PROP(CApiMisuseProp, CarrierInteriorPointer, ()) { run_with<BatchFreeOnWorker<B::kInteriorPointer, kCarriers>>(); }
// clang-format on

}  // namespace
}  // namespace hpcalloc::proptest

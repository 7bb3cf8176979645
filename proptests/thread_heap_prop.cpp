// rapidcheck state machine: one ThreadHeap on SimPal, driven by random
// sequences of malloc, calloc, realloc, memalign, free, usable_size, trim and
// "the next K platform calls of kind X fail", every result judged by the
// reference model (model/reference_model.h). Every live block carries a
// pattern tied to its address, checked at free, at realloc and at trim.
// A NULL result is allowed only as ENOMEM, and only when the simulated
// platform refused a call during that very operation. At the end every block
// is freed and the heap torn down: nothing reported as misuse, nothing left
// in use, and the simulated address space empty again (a refused unmap may
// leak its own range, nothing else).
//
// Runs under TinyConfig (64 KiB segments: segment turnover, full runs and
// cache limits within a few operations) and ProductionGeometryConfig.
// Default: rapidcheck's 100 cases per property. A campaign:
//   RC_PARAMS="max_success=20000 max_size=400" ./thread_heap_prop
// A failure prints the shrunk command sequence and a `reproduce` string for
// RC_PARAMS.
#include <gtest/gtest.h>
#include <rapidcheck.h>
#include <rapidcheck/gtest.h>
#include <rapidcheck/state.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <map>
#include <ostream>
#include <string>
#include <vector>

#include "mem/heap_fixture.h"
#include "mem/test_configs.h"
#include "mem/thread_heap.h"
#include "model/reference_model.h"
#include "pal/sim_pal.h"
#include "proptests/handle_list.h"

namespace hpcalloc {
namespace {

using reference::Memory;
using reference::ReferenceModel;

using HeapModel = proptest::HandleList;

constexpr PalCall kInjectable[] = {PalCall::kReserve, PalCall::kRelease,      PalCall::kDecommit,
                                   PalCall::kCommit,  PalCall::kRemapInPlace, PalCall::kRemapMove,
                                   PalCall::kBind};
const char* call_name(PalCall call) {
  static const char* const kNames[] = {"reserve",        "release",    "decommit", "commit",
                                       "remap_in_place", "remap_move", "bind"};
  return kNames[static_cast<unsigned>(call)];
}

// The heap under test, its platform and the judge.
template <class Config>
struct HeapSut {
  using Fixture = testing_configs::HeapFixture<Config>;

  HeapSut(const SourceLimits& limits, const SimPalOptions& options) : f(limits, options) {}

  ThreadHeap<Config>& heap() { return *f.heap; }

  // Platform failures so far: injected ones, and reserves that found no room.
  struct Probe {
    std::uint64_t injected = 0;
    std::uint64_t reserve_failures = 0;
  };
  Probe probe() const {
    Probe p;
    for (PalCall call : kInjectable) p.injected += f.pal.stats(call).injected;
    p.reserve_failures = f.pal.stats(PalCall::kReserve).failures;
    return p;
  }
  // Memory may have run out during an operation iff the platform refused
  // something while it ran.
  Memory memory_since(const Probe& before) const {
    const Probe now = probe();
    return now.injected > before.injected || now.reserve_failures > before.reserve_failures
               ? Memory::kMayRunOut
               : Memory::kPlenty;
  }

  // After every call: the model's verdict, no report, and every component
  // of the heap consistent by its own walk (a merge or a bin search gone
  // wrong shows here even when the results still look right).
  void judge(const std::string& verdict) {
    if (!verdict.empty()) RC_FAIL(verdict);
    RC_ASSERT(f.reporter.reports.empty());
    if (const char* problem = heap().consistency_problem_for_testing()) {
      RC_FAIL(std::string("heap inconsistent: ") + problem);
    }
  }

  // Records what handle h now holds; a new block gets its usable size
  // judged and the pattern written over all of it.
  void hold(unsigned h, void* p) {
    blocks[h] = p;
    if (p == nullptr) return;
    judge(spec.usable_size(p, heap().usable_size(p)));
    judge(spec.addressable(p));
    spec.fill(p);
  }

  Fixture f;
  ReferenceModel spec;
  std::map<unsigned, void*> blocks;  // handle -> block (nullptr after a failure)
};

template <class Config>
using HeapCommand = rc::state::Command<HeapModel, HeapSut<Config>>;

// Request sizes around every boundary of the config, a few impossible ones.
template <class Config>
rc::Gen<std::size_t> request_size() {
  constexpr std::size_t kSmall = Config::kSmallMax;
  constexpr std::size_t kMedium = Config::kMediumMax;
  constexpr std::size_t kSegment = std::size_t{1} << Config::kSegmentShift;
  return rc::gen::weightedOneOf<std::size_t>({
      {30, rc::gen::inRange<std::size_t>(0, 65)},
      {25, rc::gen::inRange<std::size_t>(0, kSmall + 1)},
      {15, rc::gen::inRange<std::size_t>(kSmall + 1, kMedium + 1)},
      {8, rc::gen::inRange<std::size_t>(kMedium + 1, 2 * kMedium + kSegment)},
      {10, rc::gen::element<std::size_t>(16, 17, kSmall, kSmall + 1, kMedium, kMedium + 1)},
      {2, rc::gen::element<std::size_t>(PTRDIFF_MAX, std::size_t{PTRDIFF_MAX} + 1, SIZE_MAX)},
  });
}

template <class Config>
struct Malloc : HeapCommand<Config> {
  unsigned id;
  std::size_t size = *request_size<Config>();
  bool via_realloc = *rc::gen::weightedElement<bool>({{9, false}, {1, true}});
  explicit Malloc(const HeapModel& s) : id(s.next_id) {}

  void checkPreconditions(const HeapModel& s) const override { RC_PRE(!s.has(id)); }
  void apply(HeapModel& s) const override { s.add(id, size); }
  void run(const HeapModel&, HeapSut<Config>& sut) const override {
    const auto before = sut.probe();
    errno = 0;
    void* p = via_realloc ? sut.heap().realloc(nullptr, size) : sut.heap().malloc(size);
    const int error = errno;
    sut.judge(sut.spec.malloc(size, p, error, sut.memory_since(before)));
    sut.hold(id, p);
  }
  void show(std::ostream& os) const override {
    os << "h" << id << " = " << (via_realloc ? "realloc(NULL, " : "malloc(") << size << ")";
  }
};

template <class Config>
struct Calloc : HeapCommand<Config> {
  unsigned id;
  std::size_t count = *rc::gen::weightedOneOf<std::size_t>(
      {{9, rc::gen::inRange<std::size_t>(0, 9)},
       {1, rc::gen::element<std::size_t>(SIZE_MAX / 2 + 1, std::size_t{1} << 62, SIZE_MAX)}});
  std::size_t size = *request_size<Config>();
  explicit Calloc(const HeapModel& s) : id(s.next_id) {}

  void checkPreconditions(const HeapModel& s) const override { RC_PRE(!s.has(id)); }
  void apply(HeapModel& s) const override {
    std::size_t total = 0;
    s.add(id, __builtin_mul_overflow(count, size, &total) ? SIZE_MAX : total);
  }
  void run(const HeapModel&, HeapSut<Config>& sut) const override {
    const auto before = sut.probe();
    errno = 0;
    void* p = sut.heap().calloc(count, size);
    const int error = errno;
    sut.judge(sut.spec.calloc(count, size, p, error, sut.memory_since(before)));
    sut.hold(id, p);
  }
  void show(std::ostream& os) const override {
    os << "h" << id << " = calloc(" << count << ", " << size << ")";
  }
};

template <class Config>
struct Memalign : HeapCommand<Config> {
  // Powers of two (the heap's contract) up to four segments.
  static constexpr int kMaxShift = static_cast<int>(Config::kSegmentShift) + 2;
  unsigned id;
  std::size_t alignment = std::size_t{1} << *rc::gen::inRange(0, kMaxShift + 1);
  std::size_t size = *request_size<Config>();
  explicit Memalign(const HeapModel& s) : id(s.next_id) {}

  void checkPreconditions(const HeapModel& s) const override { RC_PRE(!s.has(id)); }
  void apply(HeapModel& s) const override { s.add(id, size); }
  void run(const HeapModel&, HeapSut<Config>& sut) const override {
    const auto before = sut.probe();
    errno = 0;
    void* p = sut.heap().memalign(alignment, size);
    const int error = errno;
    sut.judge(sut.spec.memalign(alignment, size, p, error, sut.memory_since(before)));
    sut.hold(id, p);
  }
  void show(std::ostream& os) const override {
    os << "h" << id << " = memalign(" << alignment << ", " << size << ")";
  }
};

// Picks an existing handle (discards the command when there is none).
inline HeapModel::Handle existing_handle(const HeapModel& s) {
  RC_PRE(!s.handles.empty());
  return *rc::gen::elementOf(s.handles);
}

// A realloc size: often near the old one (in-place growth and shrinking,
// class boundaries), else anything.
template <class Config>
rc::Gen<std::size_t> resize_to(std::size_t old) {
  if (old > (std::size_t{1} << 40)) return request_size<Config>();
  return rc::gen::weightedOneOf<std::size_t>(
      {{10, request_size<Config>()},
       {1, rc::gen::just<std::size_t>(0)},
       {8, rc::gen::element<std::size_t>(old + 1, old * 2 + 1, old / 2 + 1, old - old / 4 + 1,
                                         old + 4096, old * 3 + 100)}});
}

template <class Config>
struct Realloc : HeapCommand<Config> {
  HeapModel::Handle handle;
  unsigned h = handle.id;
  std::size_t size = *resize_to<Config>(handle.size);
  explicit Realloc(const HeapModel& s) : handle(existing_handle(s)) {}

  void checkPreconditions(const HeapModel& s) const override { RC_PRE(s.has(h)); }
  void apply(HeapModel& s) const override { s.resize(h, size); }
  void run(const HeapModel&, HeapSut<Config>& sut) const override {
    void* old = sut.blocks.at(h);
    if (old != nullptr) sut.judge(sut.spec.check(old));
    const auto before = sut.probe();
    errno = 0;
    void* p = sut.heap().realloc(old, size);
    const int error = errno;
    sut.judge(sut.spec.realloc(old, size, p, error, sut.memory_since(before)));
    // A failed realloc leaves the old block; realloc(p, 0) freed it.
    if (p != nullptr || size == 0) sut.hold(h, p);
  }
  void show(std::ostream& os) const override {
    os << "h" << h << " = realloc(h" << h << ", " << size << ")";
  }
};

template <class Config>
struct Free : HeapCommand<Config> {
  unsigned h;
  explicit Free(const HeapModel& s) : h(existing_handle(s).id) {}

  void checkPreconditions(const HeapModel& s) const override { RC_PRE(s.has(h)); }
  void apply(HeapModel& s) const override { s.remove(h); }
  void run(const HeapModel&, HeapSut<Config>& sut) const override {
    void* p = sut.blocks.at(h);
    sut.judge(sut.spec.free(p));  // reads the block: before the free
    sut.heap().free(p);
    sut.blocks.erase(h);
    sut.judge({});
  }
  void show(std::ostream& os) const override { os << "free(h" << h << ")"; }
};

template <class Config>
struct UsableSize : HeapCommand<Config> {
  unsigned h;
  explicit UsableSize(const HeapModel& s) : h(existing_handle(s).id) {}

  void checkPreconditions(const HeapModel& s) const override { RC_PRE(s.has(h)); }
  void run(const HeapModel&, HeapSut<Config>& sut) const override {
    void* p = sut.blocks.at(h);
    sut.judge(sut.spec.usable_size(p, sut.heap().usable_size(p)));
  }
  void show(std::ostream& os) const override { os << "usable_size(h" << h << ")"; }
};

template <class Config>
struct Trim : HeapCommand<Config> {
  bool release_cached_mappings = *rc::gen::arbitrary<bool>();

  void run(const HeapModel&, HeapSut<Config>& sut) const override {
    sut.heap().trim(release_cached_mappings);
    RC_ASSERT(sut.heap().check_consistency_for_testing());
    sut.judge(sut.spec.check_all());
  }
  void show(std::ostream& os) const override { os << "trim(" << release_cached_mappings << ")"; }
};

// Time passes (SimPal's clock), then a slow path runs the decay that is
// due: with decay on, free pages go back and read as zeros. Every live
// block must keep its pattern and every component its consistency.
template <class Config>
struct TimePasses : HeapCommand<Config> {
  std::uint64_t ms = *rc::gen::element<std::uint64_t>(1, 20, 49, 50, 51, 400);

  void run(const HeapModel&, HeapSut<Config>& sut) const override {
    sut.f.pal.advance_ms(ms);
    sut.heap().decay_tick();
    sut.judge(sut.spec.check_all());
  }
  void show(std::ostream& os) const override { os << "time passes: " << ms << " ms"; }
};

template <class Config>
struct InjectFailure : HeapCommand<Config> {
  PalCall call =
      *rc::gen::element(PalCall::kReserve, PalCall::kRelease, PalCall::kDecommit, PalCall::kCommit,
                        PalCall::kRemapInPlace, PalCall::kRemapMove, PalCall::kBind);
  unsigned successes = *rc::gen::inRange(0u, 4u);
  unsigned failures = *rc::gen::inRange(1u, 4u);

  void run(const HeapModel&, HeapSut<Config>& sut) const override {
    sut.f.pal.fail_after(call, successes, failures);
  }
  void show(std::ostream& os) const override {
    os << "fail " << failures << " " << call_name(call) << " after " << successes;
  }
};

// One case: a random platform setup, a random command sequence, tear-down.
// A counterexample prints the setup first: decay_ms, cache_max_total,
// two simulated NUMA nodes with kBind (else one, kOff).
template <class Config>
void check_heap() {
  SourceLimits limits;
  limits.decay_ms =
      *rc::gen::element(std::int64_t{kDecayAtOnce}, std::int64_t{kDecayNever}, std::int64_t{50});
  limits.cache_max_total = *rc::gen::element<std::size_t>(
      0, std::size_t{1} << Config::kSegmentShift, std::size_t{64} << 20);
  const bool numa = *rc::gen::arbitrary<bool>();
  limits.numa_policy = numa ? NumaPolicy::kBind : NumaPolicy::kOff;
  SimPalOptions options;
  options.arena_size = std::size_t{1} << 30;
  options.node_count = numa ? 2 : 1;

  HeapSut<Config> sut(limits, options);
  // Sequences up to 4 x max_size commands: long enough to fill segments
  // and caches, still quick to shrink.
  const auto commands = *rc::gen::scale(
      4.0,
      rc::state::gen::commands(
          HeapModel{}, rc::state::gen::execOneOfWithArgs<
                           Malloc<Config>, Malloc<Config>, Malloc<Config>, Calloc<Config>,
                           Memalign<Config>, Memalign<Config>, Realloc<Config>, Realloc<Config>,
                           Free<Config>, Free<Config>, Free<Config>, UsableSize<Config>,
                           Trim<Config>, TimePasses<Config>, InjectFailure<Config>>()));
  rc::state::runAll(commands, HeapModel{}, sut);

  for (PalCall call : kInjectable) sut.f.pal.fail_after(call, 0, 0);
  for (const auto& [h, p] : sut.blocks) {
    sut.judge(sut.spec.free(p));
    sut.heap().free(p);
  }
  sut.heap().trim();
  RC_ASSERT(sut.heap().check_consistency_for_testing());
  sut.heap().publish_stats();
  RC_ASSERT(sut.heap().stats().in_use() == 0u);
  sut.judge({});
  sut.f.heap.reset();
  sut.f.source.reset();
  sut.f.registry.reset();
  const std::uint64_t refused_unmaps = sut.f.pal.stats(PalCall::kRelease).injected;
  if (refused_unmaps == 0) {
    RC_ASSERT(sut.f.pal.reserved_bytes() == 0u);
  } else {
    // An unmap the OS refused stays mapped and unreachable: the one leak
    // allowed, bounded by the largest mapping a case makes per refusal.
    RC_ASSERT(sut.f.pal.reserved_bytes() <= refused_unmaps * (std::size_t{64} << 20));
  }
}

RC_GTEST_PROP(ThreadHeapProp, TinyConfigAgainstReferenceModel, ()) {
  check_heap<testing_configs::TinyConfig<SimPal>>();
}

RC_GTEST_PROP(ThreadHeapProp, ProductionGeometryAgainstReferenceModel, ()) {
  check_heap<testing_configs::ProductionGeometryConfig<SimPal>>();
}

}  // namespace
}  // namespace hpcalloc

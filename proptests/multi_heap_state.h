// The state machine behind multi_heap_prop and multi_heap_misuse_prop: four
// simulated threads share one HeapPool, one memory source and one registry
// on SimPal, all run sequentially in this OS thread. A thread allocates from
// its heap; any thread frees or reallocs any block (another heap's block
// goes through that heap's remote-free queue); threads drain, trim, exit
// (pool.release: the heap is pooled with its blocks still live and still
// receiving remote frees) and start (pool.acquire: a pooled heap is adopted
// and drained). Every result is judged by the reference model
// (model/reference_model.h), one model for the process, so blocks of
// different heaps may never overlap; every live block carries a pattern,
// checked at free, at realloc and whenever a heap changes hands.
//
// The remote-free bookkeeping: pushed_to[heap] counts the blocks sent to a
// heap, so that a drain can be checked to take back every one. A free
// command pushes the freeing heap's batch at once (one block, a chain of
// one); batch commands (multi_heap_batches.h) free many blocks to one owner
// before pushing, so carriers form, and account for what they push from the
// sending heap's own count. A misused free (a duplicate, an interior
// pointer) may or may not count as taken back once its owner has rejected
// it: after a misuse (settle_everywhere) each allows the drained total to
// fall short by one, and the shortfall is remembered (`rejected`) so the
// totals still add up.
#pragma once

#include <rapidcheck.h>
#include <rapidcheck/state.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <map>
#include <memory>
#include <ostream>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "mem/memory_source.h"
#include "mem/test_configs.h"
#include "mem/thread_heap.h"
#include "mem/thread_heap_pool.h"
#include "model/reference_model.h"
#include "pal/sim_pal.h"

namespace hpcalloc::proptest {

using reference::Memory;
using reference::ReferenceModel;

// Records reports like testing_configs::RecordingReporter (and, like
// HPCALLOC_ON_ERROR=warn, lets the call return), but gives up by throwing
// once a run has made an absurd number of them: a remote-free queue whose
// links loop back makes its owner's drain report the same block forever,
// and the exception turns that hang into a failure rapidcheck can shrink.
class BoundedRecordingReporter : public testing_configs::RecordingReporter {
 public:
  static constexpr std::size_t kMaxReports = 10000;
  void report(HeapError error, const char* operation, const void* p) {
    if (reports.size() >= kMaxReports) {
      throw std::runtime_error("over " + std::to_string(kMaxReports) +
                               " reports: a drain that does not end (its queue loops)?");
    }
    RecordingReporter::report(error, operation, p);
  }
};

struct PoolConfig : testing_configs::TinyConfig<SimPal> {
  using Reporter = BoundedRecordingReporter;
};
static_assert(HeapConfig<PoolConfig>);
using PoolHeap = ThreadHeap<PoolConfig>;

constexpr unsigned kThreads = 4;

// The model: which simulated threads have a heap, how many ever had one at
// once, which handles exist (with the size last asked, to aim reallocs) and
// which were freed (for the misuse commands to free again).
struct PoolModel {
  struct Handle {
    unsigned id;
    std::size_t size;
  };
  std::array<bool, kThreads> attached{true, true, false, false};
  unsigned peak = 2;
  std::vector<Handle> handles;
  std::vector<Handle> freed;
  unsigned next_id = 0;

  unsigned attached_count() const {
    return static_cast<unsigned>(std::count(attached.begin(), attached.end(), true));
  }
  auto find(unsigned id) const {
    return std::find_if(handles.begin(), handles.end(),
                        [id](const Handle& h) { return h.id == id; });
  }
  bool has(unsigned id) const { return find(id) != handles.end(); }
};

// The pool, its platform and source, the simulated threads' heaps, and the
// judge. Handles remember which heap owns their block (the one that
// allocated it) to count the remote frees each heap must drain.
struct PoolSut {
  using Heap = PoolHeap;
  using Pool = ThreadHeapPool<PoolConfig>;
  using Source = MemorySource<PoolConfig>;
  using Registry = SegmentRegistry<PoolConfig>;
  struct Held {
    void* p = nullptr;
    Heap* owner = nullptr;
  };

  PoolSut()
      : pal(SimPalOptions{.arena_size = std::size_t{256} << 20}),
        registry(std::make_unique<Registry>(pal)),
        source(pal, *registry, 0, SourceLimits{}),
        pool(pal, {*registry, reporter}) {
    start(0);
    start(1);
  }

  void start(unsigned t) {
    Heap* heap = pool.acquire(source);
    RC_ASSERT(heap != nullptr);
    threads[t] = heap;
    heaps.insert(heap);
    // Adoption drained the heap.
    check_drained(heap);
  }

  // A verdict of the model: empty, or the failure.
  void check(const std::string& verdict) {
    if (!verdict.empty()) RC_FAIL(verdict);
  }
  // ... and outside misuse commands nothing may be reported.
  void judge(const std::string& verdict) {
    check(verdict);
    RC_ASSERT(reporter.reports.empty());
  }

  // A new block from a successful call: learn its usable size, fill it.
  void adopt(void* p, Heap* owner) {
    if (p == nullptr) return;
    judge(spec.usable_size(p, owner->usable_size(p)));
    judge(spec.addressable(p));
    spec.fill(p);
  }

  void hold(unsigned h, void* p, Heap* owner) {
    held[h] = Held{p, owner};
    adopt(p, owner);
  }

  // Thread t gives back block `h` (free or the old half of a moving realloc).
  void count_release(unsigned t, const Held& block) {
    if (block.p != nullptr && block.owner != threads[t]) ++pushed_to[block.owner];
  }

  // Every heap's small runs and caches agree with each other (a misuse that
  // corrupted a cache list shows here, before a later walk of it crashes).
  void check_heaps(const char* after) {
    unsigned index = 0;
    for (Heap* heap : heaps) {
      if (const char* problem = heap->consistency_problem_for_testing()) {
        RC_FAIL("heap " + std::to_string(index) + " (of " + std::to_string(heaps.size()) +
                ") inconsistent after " + after + ": " + problem);
      }
      ++index;
    }
  }

  // After a misuse: every heap (attached or pooled: the harness runs them
  // all) trims twice. The first round pushes what each holds, takes its
  // queue back and flushes its caches (a double free of a small block is
  // found when it reaches its run's bitmap, by design: DESIGN.md), the
  // second brings carriers home. Then: exactly one report per misuse the
  // model counted, every live block intact, the heaps consistent, and every
  // remote free taken back but for misused ones their owner rejected (they
  // may or may not count as drained: see the top comment).
  void settle_everywhere(const char* after) {
    for (int round = 0; round < 2; ++round) {
      for (Heap* heap : heaps) heap->trim(false);
    }
    const std::size_t misused = spec.expected_reports();
    const std::string verdict = spec.reports(reporter.reports.size());
    if (!verdict.empty()) RC_FAIL(verdict + " (" + describe_reports() + ")");
    reporter.reports.clear();
    check_heaps(after);
    std::size_t pushed = 0;
    std::size_t drained = 0;
    for (Heap* heap : heaps) {
      pushed += heap->stats().remote_pushed;
      drained += heap->stats().remote_drained;
    }
    if (drained > pushed || pushed - drained < rejected || pushed - drained - rejected > misused) {
      RC_FAIL("the heaps took back " + std::to_string(drained) + " of the " +
              std::to_string(pushed) + " remote frees pushed to them (" + std::to_string(rejected) +
              " misused ones rejected before, " + std::to_string(misused) + " misuse now)");
    }
    rejected = pushed - drained;
    for (Heap* heap : heaps) pushed_to[heap] = heap->stats().remote_drained;
  }

  // "double free of 0x...; pointer not allocated by hpcalloc: 0x...".
  std::string describe_reports() const {
    std::string out;
    for (const auto& r : reporter.reports) {
      if (out.size() > 400) return out + "; ...";
      std::ostringstream line;
      line << heap_error_text(r.error) << r.pointer;
      out += (out.empty() ? "" : "; ") + line.str();
    }
    return out.empty() ? "no report" : out;
  }

  // Every block sent to `heap` so far has been taken back.
  void check_drained(Heap* heap) {
    const std::size_t drained = heap->stats().remote_drained;
    if (drained != pushed_to[heap]) {
      RC_FAIL("heap took back " + std::to_string(drained) + " remote frees of the " +
              std::to_string(pushed_to[heap]) + " pushed to it");
    }
  }

  SimPal pal;
  BoundedRecordingReporter reporter;
  std::unique_ptr<Registry> registry;
  Source source;
  Pool pool;
  std::array<Heap*, kThreads> threads{};
  std::set<Heap*> heaps;                   // every heap ever acquired
  std::map<Heap*, std::size_t> pushed_to;  // remote frees each heap was sent
  std::size_t rejected = 0;                // misused remote frees not counted as drained
  ReferenceModel spec;
  std::map<unsigned, Held> held;
  std::map<unsigned, Held> freed;  // by handle: the block its last free gave back
};

using PoolCommand = rc::state::Command<PoolModel, PoolSut>;

inline rc::Gen<std::size_t> pool_request_size() {
  constexpr std::size_t kSmall = PoolConfig::kSmallMax;
  constexpr std::size_t kMedium = PoolConfig::kMediumMax;
  return rc::gen::weightedOneOf<std::size_t>({
      {30, rc::gen::inRange<std::size_t>(0, 65)},
      {25, rc::gen::inRange<std::size_t>(0, kSmall + 1)},
      {15, rc::gen::inRange<std::size_t>(kSmall + 1, kMedium + 1)},
      {6, rc::gen::inRange<std::size_t>(kMedium + 1, 4 * kMedium)},
      {6, rc::gen::element(std::size_t{kSmall}, kSmall + 1, std::size_t{kMedium}, kMedium + 1)},
  });
}

inline std::vector<unsigned> attached_threads(const PoolModel& s) {
  std::vector<unsigned> ts;
  for (unsigned t = 0; t < kThreads; ++t) {
    if (s.attached[t]) ts.push_back(t);
  }
  return ts;
}

inline unsigned attached_thread(const PoolModel& s) {
  const std::vector<unsigned> ts = attached_threads(s);
  RC_PRE(!ts.empty());
  return *rc::gen::elementOf(ts);
}

inline PoolModel::Handle existing_handle(const PoolModel& s) {
  RC_PRE(!s.handles.empty());
  return *rc::gen::elementOf(s.handles);
}

struct Allocate : PoolCommand {
  enum class How { kMalloc, kCalloc, kMemalign };
  unsigned t;
  unsigned id;
  How how = *rc::gen::element(How::kMalloc, How::kMalloc, How::kCalloc, How::kMemalign);
  std::size_t size = *pool_request_size();
  std::size_t alignment = std::size_t{1} << *rc::gen::inRange(4, 18);
  explicit Allocate(const PoolModel& s) : t(attached_thread(s)), id(s.next_id) {}

  void checkPreconditions(const PoolModel& s) const override {
    RC_PRE(s.attached[t] && !s.has(id));
  }
  void apply(PoolModel& s) const override {
    s.handles.push_back({id, size});
    s.next_id = std::max(s.next_id, id + 1);
  }
  void run(const PoolModel&, PoolSut& sut) const override {
    PoolHeap* heap = sut.threads[t];
    errno = 0;
    void* p = how == How::kMalloc   ? heap->malloc(size)
              : how == How::kCalloc ? heap->calloc(1, size)
                                    : heap->memalign(alignment, size);
    const int error = errno;
    sut.judge(how == How::kMalloc ? sut.spec.malloc(size, p, error, Memory::kPlenty)
              : how == How::kCalloc
                  ? sut.spec.calloc(1, size, p, error, Memory::kPlenty)
                  : sut.spec.memalign(alignment, size, p, error, Memory::kPlenty));
    sut.hold(id, p, heap);
  }
  void show(std::ostream& os) const override {
    os << "T" << t << ": h" << id << " = ";
    if (how == How::kMalloc) os << "malloc(" << size << ")";
    if (how == How::kCalloc) os << "calloc(1, " << size << ")";
    if (how == How::kMemalign) os << "memalign(" << alignment << ", " << size << ")";
  }
};

struct Free : PoolCommand {
  unsigned t;
  unsigned h;
  explicit Free(const PoolModel& s) : t(attached_thread(s)), h(existing_handle(s).id) {}

  void checkPreconditions(const PoolModel& s) const override { RC_PRE(s.attached[t] && s.has(h)); }
  void apply(PoolModel& s) const override {
    s.freed.push_back(*s.find(h));
    s.handles.erase(s.find(h));
  }
  void run(const PoolModel&, PoolSut& sut) const override {
    const PoolSut::Held block = sut.held.at(h);
    sut.judge(sut.spec.free(block.p));  // reads the block: before the free
    sut.count_release(t, block);
    sut.threads[t]->free(block.p);
    sut.threads[t]->flush_remote_batch();  // the model sees remote frees at once
    sut.held.erase(h);
    sut.freed[h] = block;
    sut.judge({});
  }
  void show(std::ostream& os) const override { os << "T" << t << ": free(h" << h << ")"; }
};

struct Realloc : PoolCommand {
  unsigned t;
  PoolModel::Handle handle;
  std::size_t size = *rc::gen::weightedOneOf<std::size_t>(
      {{3, pool_request_size()},
       {2,
        rc::gen::element<std::size_t>(handle.size + 1, handle.size * 2 + 1, handle.size / 2 + 1)},
       {1, rc::gen::just<std::size_t>(0)}});
  explicit Realloc(const PoolModel& s) : t(attached_thread(s)), handle(existing_handle(s)) {}

  void checkPreconditions(const PoolModel& s) const override {
    RC_PRE(s.attached[t] && s.has(handle.id));
  }
  void apply(PoolModel& s) const override {
    s.handles[static_cast<std::size_t>(s.find(handle.id) - s.handles.begin())].size = size;
  }
  void run(const PoolModel&, PoolSut& sut) const override {
    const PoolSut::Held block = sut.held.at(handle.id);
    PoolHeap* heap = sut.threads[t];
    if (block.p != nullptr) sut.judge(sut.spec.check(block.p));
    errno = 0;
    void* p = heap->realloc(block.p, size);
    const int error = errno;
    heap->flush_remote_batch();  // the model sees remote frees at once
    sut.judge(sut.spec.realloc(block.p, size, p, error, Memory::kPlenty));
    if (p == block.p && p != nullptr) return;  // resized in place: same owner
    if (p == nullptr && size != 0) return;     // failed: the old block stays
    sut.count_release(t, block);
    sut.hold(handle.id, p, heap);
  }
  void show(std::ostream& os) const override {
    os << "T" << t << ": h" << handle.id << " = realloc(h" << handle.id << ", " << size << ")";
  }
};

struct UsableSize : PoolCommand {
  unsigned t;
  unsigned h;
  explicit UsableSize(const PoolModel& s) : t(attached_thread(s)), h(existing_handle(s).id) {}

  void checkPreconditions(const PoolModel& s) const override { RC_PRE(s.attached[t] && s.has(h)); }
  void run(const PoolModel&, PoolSut& sut) const override {
    void* p = sut.held.at(h).p;
    sut.judge(sut.spec.usable_size(p, sut.threads[t]->usable_size(p)));
  }
  void show(std::ostream& os) const override { os << "T" << t << ": usable_size(h" << h << ")"; }
};

struct Drain : PoolCommand {
  unsigned t;
  bool trim = *rc::gen::arbitrary<bool>();
  explicit Drain(const PoolModel& s) : t(attached_thread(s)) {}

  void checkPreconditions(const PoolModel& s) const override { RC_PRE(s.attached[t]); }
  void run(const PoolModel&, PoolSut& sut) const override {
    PoolHeap* heap = sut.threads[t];
    if (trim) {
      heap->trim(false);
      RC_ASSERT(heap->check_consistency_for_testing());
    } else {
      heap->drain_remote();
    }
    sut.check_drained(heap);
    sut.judge(sut.spec.check_all());
  }
  void show(std::ostream& os) const override {
    os << "T" << t << ": " << (trim ? "trim()" : "drain_remote()");
  }
};

struct Exit : PoolCommand {
  unsigned t;
  explicit Exit(const PoolModel& s) : t(attached_thread(s)) {}

  void checkPreconditions(const PoolModel& s) const override { RC_PRE(s.attached[t]); }
  void apply(PoolModel& s) const override { s.attached[t] = false; }
  void run(const PoolModel&, PoolSut& sut) const override {
    sut.pool.release(sut.threads[t]);
    sut.threads[t] = nullptr;
    sut.judge(sut.spec.check_all());
  }
  void show(std::ostream& os) const override { os << "T" << t << ": exit"; }
};

struct Start : PoolCommand {
  unsigned t;
  explicit Start(const PoolModel& s) {
    std::vector<unsigned> detached;
    for (unsigned i = 0; i < kThreads; ++i) {
      if (!s.attached[i]) detached.push_back(i);
    }
    RC_PRE(!detached.empty());
    t = *rc::gen::elementOf(detached);
  }

  void checkPreconditions(const PoolModel& s) const override { RC_PRE(!s.attached[t]); }
  void apply(PoolModel& s) const override {
    s.attached[t] = true;
    s.peak = std::max(s.peak, s.attached_count());
  }
  void run(const PoolModel& s, PoolSut& sut) const override {
    sut.start(t);
    // A new heap only when every existing one is attached.
    RC_ASSERT(sut.pool.counts().created == std::max(s.peak, s.attached_count() + 1));
    sut.judge(sut.spec.check_all());
  }
  void show(std::ostream& os) const override { os << "T" << t << ": start"; }
};

// After a run: every block freed from one attached thread (remote frees for
// the rest), every heap drained and trimmed (pooled heaps have no thread, so
// the harness does it), nothing in use, remote frees pushed == drained
// (but for rejected misuses),
// nothing reported; then the heaps are torn down and the source must have
// nothing mapped.
inline void free_everything_and_tear_down(PoolSut& sut) {
  unsigned t = 0;
  if (sut.threads[t] == nullptr) sut.start(t);
  for (const auto& [h, block] : sut.held) {
    sut.judge(sut.spec.free(block.p));
    sut.count_release(t, block);
    sut.threads[t]->free(block.p);
    sut.threads[t]->flush_remote_batch();  // the model sees remote frees at once
  }
  std::size_t pushed = 0;
  std::size_t drained = 0;
  // Drains (pooled heaps have no thread, so we do it): the first round takes
  // every block home, the second brings the carriers that held them back to
  // their senders (remote_frees.h).
  for (int round = 0; round < 2; ++round) {
    for (PoolHeap* heap : sut.heaps) heap->trim(false);
  }
  for (PoolHeap* heap : sut.heaps) {
    RC_ASSERT(heap->check_consistency_for_testing());
    heap->publish_stats();
    const HeapStats stats = heap->stats();
    if (stats.in_use() != 0) {
      RC_FAIL("after every block was freed a heap still has " + std::to_string(stats.in_use()) +
              " bytes in use: a free was lost");
    }
    sut.check_drained(heap);
    pushed += stats.remote_pushed;
    drained += stats.remote_drained;
  }
  RC_ASSERT(pushed == drained + sut.rejected);
  RC_ASSERT(sut.pool.counts().created == sut.heaps.size());
  sut.judge({});
  // This private pool's end: each heap gives its segments back to the
  // source, which must then have nothing mapped.
  sut.pool.destroy_heaps();
  sut.source.trim();
  RC_ASSERT(sut.source.stats().mapped_bytes == 0u);
}

}  // namespace hpcalloc::proptest

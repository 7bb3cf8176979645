// libFuzzer harness over the prefixed C API (api/hpcalloc.h) of the
// process-wide allocator, judged by the reference model of the C API
// (model/reference_model.h): every result must be one the model allows
// (errno and NULL rules, alignment, usable size, no overlap among live
// blocks, calloc zeroed), and every live block carries a pattern tied to its
// address that must survive until it is freed, and survive realloc up to
// min(old, new) size.
//
// The input is a program: each operation is one opcode byte followed by its
// operands (a slot index, sizes, alignments), decoded by the selectors below
// so that sizes land where the allocator has edges: 0, the small classes and
// their boundaries, medium, huge, page multiples, and the impossible ones
// (PTRDIFF_MAX + 1, SIZE_MAX, ...). Blocks live in a small table of slots.
// Frees may happen on a second thread (a persistent worker, or a short-lived
// thread whose heap is then pooled), and the worker may allocate blocks that
// this thread then frees or reallocates, so the remote-free and cross-heap
// paths run too. Everything runs synchronously, so an input always replays
// the same calls; every block is freed before the next input starts.
//
// Memory is capped (live bytes, single request) so -rss_limit_mb holds;
// requests above the cap are made only when they must fail anyway (beyond
// the 47-bit address space), and anything that succeeds there is freed at
// once without being touched.
//
// Misuse opcodes (fuzz/c_api_misuse_ops.h: double frees, interior pointers,
// realloc and usable size of freed blocks, remote batches with a repeated
// block) run only with HPCALLOC_ON_ERROR=warn (ctest sets it); each must be
// reported exactly once and change nothing else.
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "api/hpcalloc.h"
#include "api/production_config.h"
#include "fuzz/c_api_misuse_ops.h"
#include "fuzz/fuzz_input.h"
#include "mem/size_classes.h"
#include "model/reference_model.h"
#include "proptests/worker_thread.h"

namespace hpcalloc::fuzz {
namespace {

constexpr char kName[] = "c_api_fuzz";
constexpr std::size_t kSmallMax = ProductionConfig::kSmallMax;
constexpr std::size_t kMediumMax = ProductionConfig::kMediumMax;
constexpr std::size_t kSegment = std::size_t{1} << ProductionConfig::kSegmentShift;
constexpr std::size_t kMaxLiveBytes = std::size_t{256} << 20;
constexpr std::size_t kMaxSingle = std::size_t{64} << 20;
// No request of this size or more can be met on x86-64 (47-bit user space):
// asking is safe, whatever the answer.
constexpr std::size_t kBeyondAddressSpace = std::size_t{1} << 48;
constexpr std::size_t kSlots = 32;
using Classes = SizeClasses<kSmallMax>;

// ---- Operand selectors --------------------------------------------------

// clang-format off
const std::size_t kSizeEdges[] = {
    kSmallMax - 1, kSmallMax, kSmallMax + 1, kSmallMax + 16, 4095, 4096, 4097, 65535, 65536,
    65537, kMediumMax - 48, kMediumMax - 16, kMediumMax - 1, kMediumMax, kMediumMax + 1,
    kSegment - 4096, kSegment - 1, kSegment, kSegment + 1, 2 * kSegment + 4096};
const std::size_t kImpossibleSizes[] = {
    PTRDIFF_MAX, std::size_t{PTRDIFF_MAX} + 1, PTRDIFF_MAX - 4095, PTRDIFF_MAX - kMediumMax,
    SIZE_MAX, SIZE_MAX - 1, SIZE_MAX - 4095, SIZE_MAX / 2, kBeyondAddressSpace,
    std::size_t{1} << 62, std::size_t{1} << 63};
const std::size_t kCounts[] = {
    0, 1, 2, 3, 7, 16, 255, 4096, std::size_t{1} << 32, SIZE_MAX, SIZE_MAX / 2 + 1, PTRDIFF_MAX};
const std::size_t kOddAlignments[] = {
    0, 3, 24, 48, 100, 4095, 4097, 65535, std::size_t{3} << 20, kBeyondAddressSpace,
    std::size_t{1} << 62, SIZE_MAX / 2 + 1, SIZE_MAX / 2 + 2, SIZE_MAX};
// clang-format on

std::size_t size_from(Input& in) {
  switch (in.byte() % 16) {
    case 0: return 0;
    case 1: return 1 + in.byte() % 32;
    case 2:
    case 3:
    case 4: return 1 + in.u16() % kSmallMax;
    case 5: {  // a class boundary, or one byte either side
      const std::size_t size = Classes::class_size(in.byte() % Classes::kClassCount);
      return size + in.byte() % 3 - 1;
    }
    case 6: return in.pick(kSizeEdges);
    case 7:
    case 8: return kSmallMax + 1 + in.u32() % (kMediumMax - kSmallMax);
    case 9: return kSmallMax + 1 + in.u16();
    case 10: return kMediumMax + 1 + in.u32() % (3 * kMediumMax);
    case 11: return (std::size_t{in.byte()} + 1) * 4096 + in.byte() % 3 - 1;
    case 12: {  // rarely up to the cap (past the cache's per-block limit): filling costs
      const std::size_t limit = in.byte() % 8 == 0 ? kMaxSingle : std::size_t{4} << 20;
      return kMediumMax + in.u32() % (limit - kMediumMax);
    }
    case 13: return in.pick(kImpossibleSizes);
    default: return 1 + in.byte();
  }
}

std::size_t alignment_from(Input& in) {
  const std::uint8_t selector = in.byte();
  if (selector % 4 == 3) return in.pick(kOddAlignments);
  return std::size_t{1} << (selector / 4 % 27);  // 1 .. 64 MiB
}

// ---- A second thread that runs jobs on request ----------------------------

// Persistent (proptests/worker_thread.h): it keeps its heap between inputs,
// like a long-lived thread of a server.
proptest::WorkerThread* g_worker = nullptr;  // never destroyed: outlives every input

void on_short_lived_thread(const std::function<void()>& job) { std::thread(job).join(); }

// ---- One input ------------------------------------------------------------

enum Op : std::uint8_t {
  kMalloc,
  kCalloc,
  kRealloc,
  kReallocArray,
  kFree,
  kMemalign,
  kPosixMemalign,
  kAlignedAlloc,
  kValloc,
  kPvalloc,
  kUsableSize,
  kFreeSized,
  kFreeAlignedSized,
  kMallocTrim,
  kFreeOnWorker,
  kFreeOnShortLivedThread,
  kMallocOnWorker,
  kReallocOnWorker,
  kCheckAll,
  // Misuse (c_api_misuse_ops.h), after the valid ones so that inputs
  // written before them decode as they did.
  kDoubleFree,
  kDoubleFreeOnWorker,
  kInteriorFree,
  kInteriorFreeOnWorker,
  kReallocFreed,
  kUsableSizeFreed,
  kBatchFreeOnWorker,
  kOpCount
};

struct Slot {
  void* p = nullptr;
  std::size_t alignment = 0;  // aligned_alloc's argument, for free_aligned_sized
};

class Session {
 public:
  void run(Input& in) {
    if (misuse_enabled()) misuse_.begin();
    while (!in.empty()) step(in);
    for (Slot& slot : slots_) release(slot);
    if (model_.live_count() != 0) fail(kName, "harness bug: blocks left in the model");
    // Blocks freed by another thread wait in their owner's remote-free queue
    // until the owner's next slow path, which a later input may never reach:
    // trim on both threads so no input's memory outlives it (in warn mode
    // also checking that no remote free was lost and no report is missing).
    if (cross_thread_ && misuse_enabled()) {
      misuse_.settle();
    } else if (cross_thread_) {
      g_worker->run([] { hpc_malloc_trim(0); });
      hpc_malloc_trim(0);
    }
  }

 private:
  void judge(const std::string& verdict) {
    if (!verdict.empty()) fail(kName, verdict);
  }

  std::size_t live_bytes() const {
    std::size_t total = 0;
    for (const auto& entry : model_.live()) total += entry.second.size;
    return total;
  }
  // Whether asking for `bytes` more (replacing `replaced` live bytes) keeps
  // within the caps, or cannot succeed anyway.
  bool may_ask(std::size_t bytes, std::size_t replaced = 0) const {
    if (bytes >= kBeyondAddressSpace) return true;
    return bytes <= kMaxSingle && live_bytes() - replaced + bytes <= kMaxLiveBytes;
  }

  // A new block from a successful call: fill it, or (a request the address
  // space cannot hold that succeeded anyway) give it straight back.
  void adopt(Slot& slot, void* p, std::size_t asked, std::size_t alignment = 0) {
    if (p == nullptr) return;
    if (asked > kMaxSingle) {
      judge(model_.free(p));
      hpc_free(p);
      return;
    }
    model_.fill(p);
    slot.p = p;
    slot.alignment = alignment;
  }

  void release(Slot& slot) {
    if (slot.p == nullptr) return;
    judge(model_.free(slot.p));
    hpc_free(slot.p);
    misuse_.graves().add(slot.p);
    slot = Slot{};
  }

  Slot& empty_slot(Input& in) {
    Slot& slot = slots_[in.byte() % kSlots];
    release(slot);
    return slot;
  }
  Slot& any_slot(Input& in) { return slots_[in.byte() % kSlots]; }

  void step(Input& in) {
    const Op op = static_cast<Op>(in.byte() % kOpCount);
    switch (op) {
      case kMalloc: {
        Slot& slot = empty_slot(in);
        const std::size_t size = size_from(in);
        if (!may_ask(size)) return;
        errno = 0;
        void* p = hpc_malloc(size);
        judge(model_.malloc(size, p, errno, reference::Memory::kPlenty));
        adopt(slot, p, size);
        return;
      }
      case kCalloc: {
        Slot& slot = empty_slot(in);
        const std::size_t count = in.byte() % 2 ? in.pick(kCounts) : in.byte();
        const std::size_t size = size_from(in);
        const std::size_t total = product(count, size);
        if (!may_ask(total)) return;
        errno = 0;
        void* p = hpc_calloc(count, size);
        judge(model_.calloc(count, size, p, errno, reference::Memory::kPlenty));
        adopt(slot, p, total);
        return;
      }
      case kRealloc:
      case kReallocArray: {
        Slot& slot = any_slot(in);
        const bool array = op == kReallocArray;
        const std::size_t count = array ? in.pick(kCounts) : 1;
        const std::size_t size = size_from(in);
        const std::size_t total = product(count, size);
        const std::size_t old_size = slot.p ? model_.live().at(address(slot.p)).size : 0;
        if (!may_ask(total, old_size)) return;
        if (slot.p != nullptr) judge(model_.check(slot.p));
        errno = 0;
        void* p = array ? hpc_reallocarray(slot.p, count, size) : hpc_realloc(slot.p, size);
        const int error = errno;
        judge(array ? model_.reallocarray(slot.p, count, size, p, error, reference::Memory::kPlenty)
                    : model_.realloc(slot.p, size, p, error, reference::Memory::kPlenty));
        if (p != slot.p && (p != nullptr || total == 0)) {
          misuse_.graves().add(slot.p);
        }
        if (p != nullptr || total == 0) slot = Slot{};
        adopt(slot, p, total);
        return;
      }
      case kFree: release(any_slot(in)); return;
      case kMemalign:
      case kAlignedAlloc:
      case kValloc:
      case kPvalloc: aligned_op(in, op); return;
      case kPosixMemalign: {
        Slot& slot = empty_slot(in);
        const std::size_t alignment = alignment_from(in);
        const std::size_t size = size_from(in);
        if (!may_ask(size)) return;
        void* const kUntouched = &slot;  // any non-NULL value the call must leave alone
        void* p = kUntouched;
        errno = 0;
        const int rc = hpc_posix_memalign(&p, alignment, size);
        const int error = errno;
        judge(model_.posix_memalign(kUntouched, p, alignment, size, rc, 0, error,
                                    reference::Memory::kPlenty));
        if (rc == 0) adopt(slot, p, size);
        return;
      }
      case kUsableSize: {
        Slot& slot = any_slot(in);
        const std::size_t usable = hpc_malloc_usable_size(slot.p);
        judge(model_.usable_size(slot.p, usable));
        // The whole usable extent is the client's now: write it all (ASan
        // reports any of it the allocator still has poisoned).
        if (slot.p != nullptr) model_.fill(slot.p);
        return;
      }
      case kFreeSized: {
        Slot& slot = any_slot(in);
        if (slot.p == nullptr) return hpc_free_sized(nullptr, in.byte());
        const std::size_t size = model_.live().at(address(slot.p)).size;
        judge(model_.free_sized(slot.p, size));
        hpc_free_sized(slot.p, size);
        misuse_.graves().add(slot.p);
        slot = Slot{};
        return;
      }
      case kFreeAlignedSized: {
        Slot& slot = any_slot(in);
        if (slot.p == nullptr || slot.alignment == 0) return release(slot);
        const std::size_t size = model_.live().at(address(slot.p)).size;
        judge(model_.free_sized(slot.p, size));
        hpc_free_aligned_sized(slot.p, slot.alignment, size);
        misuse_.graves().add(slot.p);
        slot = Slot{};
        return;
      }
      case kMallocTrim: {
        const int released = hpc_malloc_trim(std::size_t{in.byte()} << 12);
        if (released != 0 && released != 1) fail(kName, "malloc_trim returned neither 0 nor 1");
        return;
      }
      case kFreeOnWorker:
      case kFreeOnShortLivedThread: {
        Slot& slot = any_slot(in);
        if (slot.p == nullptr) return;
        judge(model_.free(slot.p));
        void* p = slot.p;
        misuse_.graves().add(p);
        slot = Slot{};
        cross_thread_ = true;
        const std::function<void()> job = [p] { hpc_free(p); };
        if (in.byte() % 2 == 0) {
          g_worker->run(job);
        } else {
          on_short_lived_thread(job);
        }
        return;
      }
      case kMallocOnWorker: {
        Slot& slot = empty_slot(in);
        const std::size_t size = size_from(in);
        if (!may_ask(size)) return;
        void* p = nullptr;
        int error = 0;
        cross_thread_ = true;
        g_worker->run([&] {
          errno = 0;
          p = hpc_malloc(size);
          error = errno;
        });
        judge(model_.malloc(size, p, error, reference::Memory::kPlenty));
        adopt(slot, p, size);
        return;
      }
      case kReallocOnWorker: {
        Slot& slot = any_slot(in);
        const std::size_t size = size_from(in);
        const std::size_t old_size = slot.p ? model_.live().at(address(slot.p)).size : 0;
        if (!may_ask(size, old_size)) return;
        if (slot.p != nullptr) judge(model_.check(slot.p));
        void* p = nullptr;
        int error = 0;
        cross_thread_ = true;
        g_worker->run([&] {
          errno = 0;
          p = hpc_realloc(slot.p, size);
          error = errno;
        });
        judge(model_.realloc(slot.p, size, p, error, reference::Memory::kPlenty));
        if (p != slot.p && (p != nullptr || size == 0)) {
          misuse_.graves().add(slot.p);
        }
        if (p != nullptr || size == 0) slot = Slot{};
        adopt(slot, p, size);
        return;
      }
      case kCheckAll: judge(model_.check_all()); return;
      case kDoubleFree:
      case kDoubleFreeOnWorker:
      case kInteriorFree:
      case kInteriorFreeOnWorker:
      case kReallocFreed:
      case kUsableSizeFreed:
      case kBatchFreeOnWorker: misuse_op(in, op); return;
      case kOpCount: return;
    }
  }

  // Decoded whether or not they run, so an input means the same program
  // with and without warn mode.
  void misuse_op(Input& in, Op op) {
    static const std::size_t kOffsets[] = {1, 8, 16, 24, 4096};
    const bool enabled = misuse_enabled();
    if (enabled) cross_thread_ = true;  // they settle through the worker
    switch (op) {
      case kDoubleFree:
      case kDoubleFreeOnWorker: {
        const unsigned grave = in.byte();
        if (enabled) misuse_.double_free(grave, op == kDoubleFreeOnWorker);
        return;
      }
      case kInteriorFree:
      case kInteriorFreeOnWorker: {
        void* block = any_slot(in).p;
        const std::size_t offset = in.pick(kOffsets);
        if (enabled) misuse_.interior_free(block, offset, op == kInteriorFreeOnWorker);
        return;
      }
      case kReallocFreed: {
        const unsigned grave = in.byte();
        const std::size_t size = size_from(in);
        if (enabled && may_ask(size)) misuse_.realloc_freed(grave, size);
        return;
      }
      case kUsableSizeFreed: {
        const unsigned grave = in.byte();
        if (enabled) misuse_.usable_size_freed(grave);
        return;
      }
      case kBatchFreeOnWorker: batch_free_on_worker(in, enabled); return;
      default: return;
    }
  }

  // 1 to 70 blocks of this thread, freed on the worker in one batch (or
  // two), with a misuse pattern (see MisuseOps::batch_free).
  void batch_free_on_worker(Input& in, bool enabled) {
    const unsigned n = 1 + in.byte() % 70;
    const unsigned pattern = in.byte() % 5;
    const unsigned target = in.byte();
    const unsigned split_after = in.byte();
    const std::size_t offset = in.byte() % 2 ? 16 : 1;
    std::vector<char*> blocks;
    for (unsigned i = 0; i < n; ++i) {
      const std::size_t size = batch_block_size(in);
      if (!enabled || !may_ask(size)) continue;
      errno = 0;
      void* p = hpc_malloc(size);
      judge(model_.malloc(size, p, errno, reference::Memory::kPlenty));
      if (p == nullptr) continue;
      model_.fill(p);
      blocks.push_back(static_cast<char*>(p));
    }
    if (blocks.empty()) return;
    misuse_.batch_free(blocks, pattern, target, split_after, offset);
  }

  // Mostly small, some of the medium cache's sizes and beyond, rarely huge.
  static std::size_t batch_block_size(Input& in) {
    static const std::size_t kMediumSizes[] = {4096, 4097, 32768, 65536};
    switch (in.byte() % 8) {
      case 5: return in.pick(kMediumSizes);
      case 6: return kSmallMax + 1 + in.u16();
      case 7: return in.byte() % 4 == 0 ? kMediumMax + 1 + in.u16() : 1 + in.byte();
      default: return 1 + in.u16() % kSmallMax;
    }
  }

  void aligned_op(Input& in, Op op) {
    Slot& slot = empty_slot(in);
    const std::size_t alignment = op == kMemalign || op == kAlignedAlloc ? alignment_from(in) : 0;
    const std::size_t size = size_from(in);
    // pvalloc rounds up to whole pages: cap what it will really ask for.
    if (!may_ask(op == kPvalloc && size < kBeyondAddressSpace ? size + 4096 : size)) return;
    errno = 0;
    void* p = nullptr;
    std::string verdict;
    constexpr auto kPlenty = reference::Memory::kPlenty;
    switch (op) {
      case kMemalign:
        p = hpc_memalign(alignment, size);
        verdict = model_.memalign(alignment, size, p, errno, kPlenty);
        break;
      case kAlignedAlloc:
        p = hpc_aligned_alloc(alignment, size);
        verdict = model_.aligned_alloc(alignment, size, p, errno, kPlenty);
        break;
      case kValloc:
        p = hpc_valloc(size);
        verdict = model_.valloc(size, p, errno, kPlenty);
        break;
      default:
        p = hpc_pvalloc(size);
        verdict = model_.pvalloc(size, p, errno, kPlenty);
        break;
    }
    judge(verdict);
    adopt(slot, p, size, op == kAlignedAlloc ? alignment : 0);
  }

  static std::uintptr_t address(const void* p) { return reinterpret_cast<std::uintptr_t>(p); }
  // count * size, or SIZE_MAX (impossible) when it overflows.
  static std::size_t product(std::size_t count, std::size_t size) {
    std::size_t total = 0;
    return __builtin_mul_overflow(count, size, &total) ? SIZE_MAX : total;
  }

  reference::ReferenceModel model_{
      reference::Limits{.page_size = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE))}};
  Slot slots_[kSlots];
  bool cross_thread_ = false;  // a block changed threads during this input
  MisuseOps misuse_{kName, model_, *g_worker};
};

}  // namespace
}  // namespace hpcalloc::fuzz

extern "C" int LLVMFuzzerInitialize(int* /*argc*/, char*** /*argv*/) {
  hpcalloc::fuzz::g_worker = new hpcalloc::proptest::WorkerThread;
  if (!hpcalloc::fuzz::misuse_enabled()) {
    std::fprintf(stderr,
                 "c_api_fuzz: HPCALLOC_ON_ERROR is not \"warn\": the misuse opcodes are "
                 "decoded but skipped (in abort mode the first would end the process)\n");
  }
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  hpcalloc::fuzz::Input in(data, size);
  hpcalloc::fuzz::Session().run(in);
  return 0;
}

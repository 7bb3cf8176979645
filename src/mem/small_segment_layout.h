// The layout of a small segment (mem/small_runs.h) and the arithmetic that
// takes a pointer to its run and slot: which run, whether it starts a slot,
// which slot, that slot's bit. SmallRuns derives from it; the free and
// usable-size fast paths are made of these few lines.
//
// [Segment: header, run masks, Run metadata for every run][slots of run 0
// from kFirstSlotsOffset][run 1 at kRunSize]... Slot areas start at
// multiples of kSmallMax, so a power-of-two class gives blocks aligned to
// their size (aligned small requests use that).
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "base/bits.h"
#include "ds/intrusive_list.h"
#include "mem/config.h"
#include "mem/segment.h"
#include "mem/size_classes.h"
#include "mem/slot_divisor.h"

namespace hpcalloc {

template <HeapConfig Config>
struct SmallSegmentLayout {
  using Classes = SizeClasses<Config::kSmallMax>;
  static constexpr std::size_t kSegmentSize = std::size_t{1} << Config::kSegmentShift;
  static constexpr std::size_t kRunSize = std::size_t{1} << Config::kRunShift;
  static constexpr unsigned kRunsPerSegment = kSegmentSize / kRunSize;
  static constexpr std::size_t kMaxSlots = kRunSize / Classes::kGranule;
  static constexpr std::size_t kBitmapWords = (kMaxSlots + 63) / 64;
  static constexpr std::uint64_t kAllRuns =
      kRunsPerSegment == 64 ? ~std::uint64_t{0} : (std::uint64_t{1} << kRunsPerSegment) - 1;

  struct Run {
    IntrusiveListNode<Run> link;  // in its class's list of runs with free slots
    SlotDivisor divisor;          // by slot_size
    std::uint32_t slot_size;      // 0: the run is retired (not in use)
    std::uint32_t slots_offset;   // of slot 0, from the segment start
    // 0 when retired. 64-bit: the free fast path compares a 64-bit slot
    // index with it in one instruction (is_slot_offset).
    std::uint64_t slot_count;
    std::uint32_t free_count;  // set bits in free_bits
    std::uint8_t size_class;
    std::uint16_t cache_offset;  // its cache: see SmallRuns::cache_at()
    std::uint32_t retired_ms;    // the decay clock's low bits when retired
    // 1 = free slot. Plain words rather than a generic bitmap: refill()
    // takes a batch a word at a time from a per-word block address, which a
    // bit-index interface costs an instruction per block taken.
    std::uint64_t free_bits[kBitmapWords];
  };

  struct Segment {
    SegmentHeader header;  // its link: on the list of all segments
    IntrusiveListNode<Segment> with_free_runs_link;
    std::uint64_t free_runs;    // 1 = retired run
    std::uint64_t decommitted;  // 1 = retired run whose pages went back to the OS
    std::uint64_t guarded;      // 1 = run whose last page is PROT_NONE (guard_runs)
    // Decay of free pages inside live runs (holes), small_runs_decay.h:
    std::uint64_t holes_pending;  // 1 = blocks came back since the last punch
    std::uint64_t holes_stamped;  // 1 = its stamp (retired_ms) is set
    std::uint64_t holes;          // 1 = pages given back; the next refill commits
    Run runs[kRunsPerSegment];
  };

  static constexpr std::size_t kFirstSlotsOffset = align_up(sizeof(Segment), Config::kSmallMax);

  static Segment* segment_of(const void* p) {
    return reinterpret_cast<Segment*>(
        align_down(reinterpret_cast<std::uintptr_t>(p), kSegmentSize));
  }
  static std::size_t offset_in_segment(const Segment* s, const void* p) {
    return static_cast<std::size_t>(reinterpret_cast<const char*>(p) -
                                    reinterpret_cast<const char*>(s));
  }
  static std::size_t run_index(const Segment* s, const void* p) {
    return offset_in_segment(s, p) >> Config::kRunShift;
  }
  static std::size_t slot_index(const Run& run, std::size_t offset_in_run_slots) {
    return run.divisor.quotient(static_cast<std::uint32_t>(offset_in_run_slots));
  }
  // Whether `offset` (from the segment start) is the start of a slot of the
  // live run: inside its slots (a retired run has none) and a multiple of
  // the slot size. One multiply, no division.
  [[gnu::always_inline]] static bool is_slot_start(const Run& run, std::size_t offset) {
    return is_slot_offset(run, offset - run.slots_offset);  // wraps (rejected) if below
  }
  [[gnu::always_inline]] static bool is_slot_offset(const Run& run, std::size_t in_slots) {
    // A retired run's slot_count is 0: nothing starts a slot.
    return run.divisor.is_multiple_below(in_slots, run.slot_count);
  }

  // The run of `block` (a pointer into `s`) when block is the start of a
  // slot of it: one multiply says both whether the offset from its slot 0
  // starts a slot and whether that slot is inside the run (which a retired
  // run has none of); nullptr otherwise. The offset goes to `in_slots`. The
  // free and usable-size fast paths' lookup; a carrier run's slot passes
  // (the free path's carrier cache has no room; the usable-size path tests
  // the class).
  [[gnu::always_inline]] static Run* slot_run(Segment* s, const void* block,
                                              std::size_t* in_slots = nullptr) {
    Run* run = &s->runs[run_index(s, block)];
    const std::size_t offset = offset_in_segment(s, block) - run->slots_offset;  // may wrap
    if (!is_slot_offset(*run, offset)) return nullptr;
    if (in_slots != nullptr) *in_slots = offset;
    return run;
  }

  // Bitmap words: written by the owner only, read by other threads too (a
  // cross-thread malloc_usable_size()) with relaxed atomics on both sides
  // (a recent value is all that needs); the owner reads them plainly.
  static bool test_bit(const Run& run, std::size_t i) {
    return (run.free_bits[i / 64] >> (i % 64)) & 1;
  }
  static void store_bits(Run& run, std::size_t w, std::uint64_t bits) {
    std::atomic_ref<std::uint64_t>(run.free_bits[w]).store(bits, std::memory_order_relaxed);
  }
  static bool free_in_bitmap(const Run& run, const void* block) {
    const Segment* s = segment_of(block);
    return test_bit(run, slot_index(run, offset_in_segment(s, block) - run.slots_offset));
  }
  static bool free_in_bitmap_shared(const Run& run, const void* block) {
    const Segment* s = segment_of(block);
    const std::size_t i = slot_index(run, offset_in_segment(s, block) - run.slots_offset);
    auto& word = const_cast<std::uint64_t&>(run.free_bits[i / 64]);
    return (std::atomic_ref<std::uint64_t>(word).load(std::memory_order_relaxed) >> (i % 64)) & 1;
  }
};

}  // namespace hpcalloc

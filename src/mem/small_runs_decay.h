// The decay side of SmallRuns (small_runs.h, mem/decay.h): retired runs
// and the free pages inside live runs go back to the OS once free for the
// delay, or at once on a trim.
#pragma once

#include "mem/small_runs.h"

namespace hpcalloc {

template <HeapConfig Config, SegmentProvider Provider>
std::size_t SmallRuns<Config, Provider>::decommit_run(Segment* s, unsigned index) {
  char* pages = nullptr;
  std::size_t bytes = 0;
  run_pages(s, index, &pages, &bytes);
  if (bytes == 0) return 0;
  // Its free slots are poisoned, and a provider may zero the pages by
  // writing them. Nothing reads a retired run: poison all of it after.
  unpoison_memory(pages, bytes);
  const bool given_back = provider_->decommit(pages, bytes);
  poison_memory(pages, bytes);
  if (!given_back) return 0;
  s->decommitted |= std::uint64_t{1} << index;
  return bytes;
}

template <HeapConfig Config, SegmentProvider Provider>
std::size_t SmallRuns<Config, Provider>::decommit_retired_runs(bool holes_stay) {
  std::size_t bytes = 0;
  for (Segment* s : with_free_runs_) {
    std::uint64_t pending = s->free_runs & ~s->decommitted;
    while (pending != 0) {
      const unsigned index = lowest_set_bit(pending);
      pending &= pending - 1;
      bytes += decommit_run(s, index);
    }
  }
  schedule_.passed(0);  // no retired run is left to decay
  if (holes_stay) {
    // A thread's exit gives back retired runs only: the next pass, due at
    // once, finds the holes still pending.
    for (SegmentHeader* header : all_segments_) {
      if (reinterpret_cast<Segment*>(header)->holes_pending != 0) {
        schedule_.pending_unstamped();
        break;
      }
    }
  }
  return bytes;
}

template <HeapConfig Config, SegmentProvider Provider>
void SmallRuns<Config, Provider>::retired_at(Segment* s, unsigned index, std::uint64_t now_ms) {
  if (schedule_.delay_ms() == kDecayAtOnce) {
    decommit_run(s, index);
    return;
  }
  s->runs[index].retired_ms = static_cast<std::uint32_t>(now_ms);
  schedule_.pending(now_ms);
}

template <HeapConfig Config, SegmentProvider Provider>
std::size_t SmallRuns<Config, Provider>::decay(std::uint64_t now_ms) {
  if (!schedule_.due(now_ms)) return 0;
  schedule_.passed(now_ms);
  std::size_t bytes = 0;
  for (Segment* s : with_free_runs_) {
    std::uint64_t pending = s->free_runs & ~s->decommitted;
    while (pending != 0) {
      const unsigned index = lowest_set_bit(pending);
      pending &= pending - 1;
      // The stamp holds the clock's low 32 bits: the age is exact for 49
      // days, which no pending run reaches (a pass finds it first).
      const std::uint32_t age = static_cast<std::uint32_t>(now_ms) - s->runs[index].retired_ms;
      const std::uint64_t freed_ms = now_ms - age;
      if (schedule_.expired(freed_ms, now_ms)) {
        bytes += decommit_run(s, index);
      } else {
        schedule_.pending(freed_ms);
      }
    }
  }
  for (SegmentHeader* header : all_segments_) {
    Segment* s = reinterpret_cast<Segment*>(header);
    if (s->holes_pending != 0) bytes += decay_holes(s, now_ms);
  }
  return bytes;
}

template <HeapConfig Config, SegmentProvider Provider>
std::size_t SmallRuns<Config, Provider>::decay_holes(Segment* s, std::uint64_t now_ms) {
  std::size_t bytes = 0;
  std::uint64_t pending = s->holes_pending;
  while (pending != 0) {
    const unsigned index = lowest_set_bit(pending);
    const std::uint64_t bit = std::uint64_t{1} << index;
    pending &= pending - 1;
    Run& run = s->runs[index];
    if ((s->holes_stamped & bit) == 0) {
      // Its blocks came back before this pass: now is no earlier.
      run.retired_ms = static_cast<std::uint32_t>(now_ms);
      s->holes_stamped |= bit;
      schedule_.pending(now_ms);
      continue;
    }
    const std::uint32_t age = static_cast<std::uint32_t>(now_ms) - run.retired_ms;
    if (schedule_.expired(now_ms - age, now_ms)) {
      bytes += punch_holes(s, index);
      s->holes_pending &= ~bit;
      s->holes_stamped &= ~bit;
    } else {
      schedule_.pending(now_ms - age);
    }
  }
  return bytes;
}

template <HeapConfig Config, SegmentProvider Provider>
std::size_t SmallRuns<Config, Provider>::punch_all_holes() {
  std::size_t bytes = 0;
  for (SegmentHeader* header : all_segments_) {
    Segment* s = reinterpret_cast<Segment*>(header);
    for (unsigned index = 0; index < kRunsPerSegment; ++index) {
      const Run& run = s->runs[index];
      if (run.slot_size != 0 && run.free_count != 0) bytes += punch_holes(s, index);
    }
    s->holes_pending = 0;
    s->holes_stamped = 0;
  }
  return bytes;
}

template <HeapConfig Config, SegmentProvider Provider>
std::size_t SmallRuns<Config, Provider>::punch_holes(Segment* s, unsigned index) {
  const Run& run = s->runs[index];
  if (run.slot_size == 0 || run.free_count == 0) return 0;
  constexpr std::size_t kPage = 4096;  // as run_pages(): larger pages still align
  char* pages = nullptr;
  std::size_t span = 0;
  run_pages(s, index, &pages, &span);
  char* const slots = reinterpret_cast<char*>(s) + run.slots_offset;
  const std::size_t slots_bytes = run.slot_count * run.slot_size;
  char* const slots_end = slots + slots_bytes;
  // Whether every slot overlapping [begin, end) is free in the bitmap.
  auto all_free = [&](const char* begin, const char* end) {
    if (end <= slots || begin >= slots_end) return true;  // no slot there
    const std::size_t lo = begin <= slots ? 0 : static_cast<std::size_t>(begin - slots);
    const std::size_t hi =
        (end >= slots_end ? slots_bytes : static_cast<std::size_t>(end - slots)) - 1;
    for (std::size_t i = lo / run.slot_size; i <= hi / run.slot_size; ++i) {
      if (((run.free_bits[i / 64] >> (i % 64)) & 1) == 0) return false;
    }
    return true;
  };
  std::size_t bytes = 0;
  auto give_back = [&](char* begin, char* end) {
    if (end <= begin) return;
    const auto n = static_cast<std::size_t>(end - begin);
    // Free slots are poisoned past their first words, and a provider may
    // zero by writing: unpoison, give back, poison the free slots again.
    unpoison_memory(begin, n);
    const bool given_back = provider_->decommit(begin, n);
    if constexpr (kAddressSanitizer) {
      const std::size_t first =
          begin <= slots ? 0 : static_cast<std::size_t>(begin - slots) / run.slot_size;
      for (std::size_t i = first; i < run.slot_count && slots + i * run.slot_size < end; ++i) {
        poison_free_slot(slots + i * run.slot_size, run.slot_size);
      }
    }
    if (given_back) bytes += n;
  };
  char* stretch = nullptr;  // start of the current run of free pages
  for (char* page = pages; page < pages + span; page += kPage) {
    if (all_free(page, page + kPage)) {
      if (stretch == nullptr) stretch = page;
    } else if (stretch != nullptr) {
      give_back(stretch, page);
      stretch = nullptr;
    }
  }
  if (stretch != nullptr) give_back(stretch, pages + span);
  if (bytes != 0) s->holes |= std::uint64_t{1} << index;
  return bytes;
}

}  // namespace hpcalloc

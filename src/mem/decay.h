// Decay: when free memory goes back to the OS (HPCALLOC_DECAY_MS). Memory
// that has been free for the decay delay has its pages given back
// (MADV_DONTNEED: the range stays mapped and reads as zeros afterwards);
// memory freed and reused within the delay keeps its pages, so a program in
// a steady state pays no page faults for it. The clock (Pal::now_ms(), a
// coarse one) is read on slow paths only: a heap's refills, medium and huge
// requests, a memory source's mapping calls. Frees that are frequent (a
// medium chunk's, a small block's return to its run) read no clock: they
// mark what they freed "unstamped", and the next pass stamps it with its own
// time, which is no earlier than the free. So a delay is applied "never
// before": memory goes back at the first pass at least the delay after its
// stamp. Passes run when a slow path finds one due, and not more often than
// once a grain (a sixteenth of the delay), so a program that frees
// continuously does not pay a pass on every slow path. How late memory goes
// back depends on how often the program reaches a slow path: a thread that
// sleeps gives back nothing of its heap until it wakes, and the caches of
// mappings wait for some thread's slow path.
#pragma once

#include <cstdint>

namespace hpcalloc {

// The delay values with a meaning of their own.
inline constexpr std::int64_t kDecayAtOnce = 0;
inline constexpr std::int64_t kDecayNever = -1;
// The default delay (README, "Configuration", has the measurement behind it).
inline constexpr std::int64_t kDefaultDecayMs = 500;
// "Nothing pending": the time of a pass that never comes.
inline constexpr std::uint64_t kNothingDue = ~std::uint64_t{0};

// The schedule of one component's passes.
class DecaySchedule {
 public:
  constexpr explicit DecaySchedule(std::int64_t delay_ms) : delay_ms_(delay_ms) {}

  std::int64_t delay_ms() const { return delay_ms_; }
  bool enabled() const { return delay_ms_ > 0; }

  // Whether a range freed at `freed_ms` may be given back at `now_ms`.
  bool expired(std::uint64_t freed_ms, std::uint64_t now_ms) const {
    return delay_ms_ >= 0 && now_ms >= freed_ms &&
           now_ms - freed_ms >= static_cast<std::uint64_t>(delay_ms_);
  }
  // When a range freed at `freed_ms` expires.
  std::uint64_t deadline(std::uint64_t freed_ms) const {
    return delay_ms_ < 0 ? kNothingDue : freed_ms + static_cast<std::uint64_t>(delay_ms_);
  }

  // The time the next pass is due (kNothingDue: none pending).
  std::uint64_t due_ms() const { return due_ms_; }
  bool due(std::uint64_t now_ms) const { return now_ms >= due_ms_; }
  // A range freed at `freed_ms` now waits for a pass.
  void pending(std::uint64_t freed_ms) {
    std::uint64_t at = deadline(freed_ms);
    if (at == kNothingDue) return;
    const std::uint64_t earliest = last_pass_ms_ + grain();
    if (at < earliest) at = earliest;
    if (at < due_ms_) due_ms_ = at;
  }
  // Something became free whose time was not read (a slow path that does
  // not read the clock): the next pass, a grain after the last one, stamps
  // it with its own time, which is no earlier than the free.
  void pending_unstamped() {
    const std::uint64_t at = last_pass_ms_ + grain();
    if (at < due_ms_) due_ms_ = at;
  }
  // A pass ran at `now_ms`; ranges it did not give back are declared again
  // with pending() (the pass finds their freed times).
  void passed(std::uint64_t now_ms) {
    last_pass_ms_ = now_ms;
    due_ms_ = kNothingDue;
  }

 private:
  std::uint64_t grain() const {
    const std::uint64_t g = delay_ms_ > 0 ? static_cast<std::uint64_t>(delay_ms_) / 16 : 0;
    return g > 1 ? g : 1;
  }

  std::int64_t delay_ms_;
  std::uint64_t due_ms_ = kNothingDue;
  std::uint64_t last_pass_ms_ = 0;
};

}  // namespace hpcalloc

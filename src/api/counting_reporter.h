// The misuse reporter of the process-wide allocator: StderrReporter's one
// line (and abort, unless HPCALLOC_ON_ERROR=warn) plus a count of every
// report, read by hpc_stat("errors_reported"). In warn mode the count is how
// a program, or a test harness, sees that a misuse was reported exactly
// once: the line itself goes to stderr, which it cannot read back.
//
// It lives in api/ rather than beside StderrReporter in mem/: the count is a
// fact about the process, and mem/'s private heaps (tests, models) have
// their own reporters. Like every reporter it never allocates.
#pragma once

#include <atomic>
#include <cstddef>

#include "mem/heap_errors.h"

namespace hpcalloc {

class CountingStderrReporter {
 public:
  explicit CountingStderrReporter(bool abort_on_error = true) : line_(abort_on_error) {}

  void report(HeapError error, const char* operation, const void* p) {
    // Relaxed: a tally, ordered with nothing else. A reader on another
    // thread that must see this report synchronises with the reporting
    // thread by its own means (join, a lock) before reading.
    reported_.fetch_add(1, std::memory_order_relaxed);
    last_operation_.store(operation, std::memory_order_relaxed);
    line_.report(error, operation, p);
  }

  std::size_t reported() const { return reported_.load(std::memory_order_relaxed); }
  // The call the latest report named (nullptr before any): lets a harness
  // in warn mode check that a report names the call it made
  // (fuzz/corruption_fuzz.cpp). Relaxed, as the count.
  const char* last_operation() const { return last_operation_.load(std::memory_order_relaxed); }

 private:
  StderrReporter line_;
  std::atomic<std::size_t> reported_{0};
  std::atomic<const char*> last_operation_{nullptr};
};

static_assert(HeapErrorReporter<CountingStderrReporter>);

}  // namespace hpcalloc

// How the heap reports misuse it detects: a double free, or a pointer that
// hpcalloc never returned (foreign, interior, or already given back). The
// reporter is a policy so tests can record reports instead of dying; the
// process-wide library's reporter writes one line and aborts (or only warns,
// as configured). After a report the operation returns without touching any
// allocator state, so a "warn" configuration keeps running uncorrupted.
#pragma once

#include <concepts>

#include "base/report.h"

namespace hpcalloc {

enum class HeapError {
  kDoubleFree,      // the block is already free
  kInvalidPointer,  // not the start of a block hpcalloc handed out
  kCorruptedMetadata,  // the allocator's own bookkeeping was overwritten
};

inline const char* heap_error_text(HeapError error) {
  switch (error) {
    case HeapError::kDoubleFree: return "double free of ";
    case HeapError::kInvalidPointer: return "pointer not allocated by hpcalloc: ";
    case HeapError::kCorruptedMetadata: return "corrupted heap metadata at ";
  }
  return "heap error at ";
}

template <class R>
concept HeapErrorReporter = requires(R& reporter, HeapError error, const char* operation,
                                     const void* p) {
  reporter.report(error, operation, p);
};

// Writes "hpcalloc: free(): double free of 0x..." and aborts, or returns after
// the line when abort_on_error is false.
class StderrReporter {
 public:
  explicit StderrReporter(bool abort_on_error = true) : abort_on_error_(abort_on_error) {}

  void report(HeapError error, const char* operation, const void* p) {
    ReportLine line;
    line.text(operation).text(": ").text(heap_error_text(error)).ptr(p);
    if (abort_on_error_) fatal(line);
    ReportLine out = report_line(line.view());
    out.write_to(2);
  }

 private:
  bool abort_on_error_;
};

static_assert(HeapErrorReporter<StderrReporter>);

}  // namespace hpcalloc

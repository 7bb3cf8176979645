// How the heap reports misuse it detects: a double free, or a pointer that
// hpcalloc never returned (foreign, interior, or already given back). The
// reporter is a policy so tests can record reports instead of dying; the
// process-wide library's reporter writes one line and aborts (or only warns,
// as configured). After a report the operation returns without touching any
// allocator state, so a "warn" configuration keeps running uncorrupted.
#pragma once

#include <concepts>
#include <string_view>

#include "base/report.h"

namespace hpcalloc {

// The misuse a program made, or the structure it corrupted (the address
// reported is then the freed block or header whose words were overwritten:
// a write after free there, or an overflow from the block before it).
enum class HeapError {
  kDoubleFree,            // free() of a block that is already free
  kInvalidPointer,        // not the start of a block hpcalloc handed out
  kUseOfFreedBlock,       // realloc() or malloc_usable_size() of a freed block
  kCorruptedSmallCache,   // a freed small block's cache link or check word
  kCorruptedMediumCache,  // a freed medium block's cache link or check word
  kCorruptedFreeList,     // a free medium chunk's list links
  kCorruptedChunkHeader,  // a medium chunk's header (size, state, tag)
  kCorruptedCarrier,      // a carrier of remote frees (remote_frees.h)
  // Secure flavour only (mem/hardening.h):
  kBlockOverflow,   // a write past the bytes asked for (the block's canary or padding)
  kWriteAfterFree,  // a write into a block while it was free (it is no longer zero)
};

inline const char* heap_error_text(HeapError error) {
  switch (error) {
    case HeapError::kDoubleFree: return "double free of ";
    case HeapError::kInvalidPointer: return "pointer not allocated by hpcalloc: ";
    case HeapError::kUseOfFreedBlock: return "use of freed block ";
    case HeapError::kCorruptedSmallCache:
      return "corrupted free block (small-block cache link overwritten) at ";
    case HeapError::kCorruptedMediumCache:
      return "corrupted free block (medium-block cache link overwritten) at ";
    case HeapError::kCorruptedFreeList:
      return "corrupted free block (medium free-list link overwritten) at ";
    case HeapError::kCorruptedChunkHeader: return "corrupted medium chunk header at ";
    case HeapError::kCorruptedCarrier: return "corrupted remote-free carrier at ";
    case HeapError::kBlockOverflow: return "write past the end of block ";
    case HeapError::kWriteAfterFree: return "write into freed block ";
  }
  return "heap error at ";
}

// What reaching an already freed block is, by the call the program made:
// a free (free(), free_sized(), operator delete) frees it twice; any other
// call (realloc(), malloc_usable_size()) uses it.
inline HeapError freed_block_error(const char* operation) {
  const std::string_view call(operation);
  return call.starts_with("free") || call.starts_with("operator delete")
             ? HeapError::kDoubleFree
             : HeapError::kUseOfFreedBlock;
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

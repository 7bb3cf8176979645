// ThreadHeap: everything one owning thread allocates from. It composes the
// small runs, the medium free lists and the huge blocks of its memory source,
// and implements the malloc family on them for blocks it owns:
//   malloc/calloc/realloc/free/memalign/usable_size with glibc's results
//   (errno = ENOMEM on failure, realloc(p, 0) frees and returns nullptr,
//   calloc overflow caught, 16-byte alignment for every block).
// Reallocation stays in place where it can: a small block within its class
// (down to half), a medium block by merging with its free neighbour, a huge
// block by mremap (moving pages, never copying).
// Not thread-safe: one thread uses a heap at a time (issue 4 adds the
// remote-free queue through which other threads give blocks back).
#pragma once

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "base/bits.h"
#include "base/check.h"
#include "mem/config.h"
#include "mem/medium_free_lists.h"
#include "mem/memory_source.h"
#include "mem/segment.h"
#include "mem/size_classes.h"
#include "mem/small_runs.h"

namespace hpcalloc {

struct HeapStats {
  std::size_t small_segments = 0;
  std::size_t medium_segments = 0;
  std::size_t huge_blocks = 0;
  std::size_t huge_bytes = 0;       // usable bytes of live huge blocks
  std::size_t small_run_bytes = 0;  // slot bytes of runs in use (live + cached + free slots)
  std::size_t medium_free_bytes = 0;
};

template <HeapConfig Config>
class ThreadHeap {
 public:
  using Source = MemorySource<Config>;
  using Registry = SegmentRegistry<Config>;
  using Reporter = typename Config::Reporter;
  using Classes = SizeClasses<Config::kSmallMax>;
  static constexpr std::size_t kSegmentSize = std::size_t{1} << Config::kSegmentShift;
  static constexpr std::size_t kSmallMax = Config::kSmallMax;
  static constexpr std::size_t kMediumMax = Config::kMediumMax;
  // glibc refuses requests above PTRDIFF_MAX; so do we.
  static constexpr std::size_t kMaxRequest = PTRDIFF_MAX;
  static constexpr std::size_t kMediumRegionOffset = align_up(sizeof(SegmentHeader), 16);
  static constexpr std::size_t kMediumRegionBytes = kSegmentSize - kMediumRegionOffset;
  using Medium = MediumFreeLists<Reporter, kSegmentSize>;

  ThreadHeap(Registry& registry, Source& source, Reporter& reporter)
      : registry_(registry),
        source_(source),
        reporter_(reporter),
        small_(source, reporter, this),
        medium_(reporter) {}
  ThreadHeap(const ThreadHeap&) = delete;
  ThreadHeap& operator=(const ThreadHeap&) = delete;
  // Gives every segment and huge block back to the source, live blocks or
  // not (a private heap's arena semantics; the process-wide heaps are pooled
  // and never destroyed).
  ~ThreadHeap();

  Source& source() { return source_; }

  [[gnu::always_inline]] void* malloc(std::size_t size) {
    if (__builtin_expect(size <= kSmallMax, 1)) return small_.allocate(Classes::class_of(size));
    return malloc_large(size);
  }

  void* calloc(std::size_t count, std::size_t size);
  void* realloc(void* p, std::size_t size);
  // alignment: a power of two (callers validate and report EINVAL).
  void* memalign(std::size_t alignment, std::size_t size);

  [[gnu::always_inline]] void free(void* p) {
    if (p == nullptr) return;
    SegmentHeader* segment = owned_segment(p, "free()");
    if (segment == nullptr) return;
    if (__builtin_expect(segment->kind == SegmentKind::kSmall, 1)) {
      small_.deallocate(segment, p);
      return;
    }
    free_large(segment, p);
  }

  // Usable bytes of a live block (0 for nullptr; 0 after a report).
  std::size_t usable_size(const void* p);

  // Returns cached small blocks to their runs and releases spare segments
  // (malloc_trim, thread exit).
  void trim();

  HeapStats stats() const;

  // The segment of `p` if this heap owns it, else nullptr (no report):
  // lets the process-wide layer route a free to its owner.
  SegmentHeader* find_segment(const void* p) const { return registry_.lookup(p); }

  bool check_consistency_for_testing() const { return small_.check_consistency_for_testing(); }

 private:
  SegmentHeader* owned_segment(const void* p, const char* operation) {
    SegmentHeader* segment = registry_.lookup(p);
    if (__builtin_expect(
            segment == nullptr || segment->owner != this || segment->magic != SegmentHeader::kMagic,
            0)) {
      report_unowned(segment, p, operation);
      return nullptr;
    }
    return segment;
  }
  [[gnu::cold, gnu::noinline]] void report_unowned(SegmentHeader* segment, const void* p,
                                                   const char* operation) {
    const bool was_ours = segment != nullptr && segment->magic == SegmentHeader::kMagic &&
                          segment->kind == SegmentKind::kCached;
    reporter_.report(was_ours ? HeapError::kDoubleFree : HeapError::kInvalidPointer, operation, p);
  }

  [[gnu::noinline]] void* malloc_large(std::size_t size);
  void* medium_allocate(std::size_t size, std::size_t alignment);
  void* huge_allocate(std::size_t size, std::size_t alignment);
  bool add_medium_segment();
  [[gnu::noinline]] void free_large(SegmentHeader* segment, void* p);
  void release_medium_region(void* region);
  std::size_t usable_size_in(SegmentHeader* segment, const void* p);
  void* realloc_by_copy(void* p, std::size_t old_usable, std::size_t size);

  static void list_push(SegmentHeader*& head, SegmentHeader* s) {
    s->prev = nullptr;
    s->next = head;
    if (head != nullptr) head->prev = s;
    head = s;
  }
  static void list_remove(SegmentHeader*& head, SegmentHeader* s) {
    if (s->prev != nullptr) {
      s->prev->next = s->next;
    } else {
      head = s->next;
    }
    if (s->next != nullptr) s->next->prev = s->prev;
  }

  Registry& registry_;
  Source& source_;
  Reporter& reporter_;
  SmallRuns<Config, Source> small_;
  Medium medium_;
  SegmentHeader* medium_segments_ = nullptr;
  std::size_t medium_segment_count_ = 0;
  SegmentHeader* huge_blocks_ = nullptr;
};

}  // namespace hpcalloc

#include "mem/thread_heap_impl.h"

// libFuzzer harness of MediumFreeLists alone (mem/medium_free_lists.h), so a
// split/merge bug is found where it happens rather than through the whole
// heap. Regions are buffers from the C library (at input-chosen offsets and
// sizes); the input is a program of add_region, allocate, allocate_aligned,
// free, try_resize, remove_region, usable_size and frees of stale pointers.
// After every operation check_consistency_for_testing() must hold, and a
// model of the live blocks (std::map) checks what the lists cannot see
// themselves: blocks are aligned, at least as large as asked, inside their
// region, never overlapping, and keep their contents (a pattern tied to the
// address) until freed, and across try_resize up to the smaller size.
// Misuse (a stale pointer) must be reported exactly once and change nothing.
// An allocation may return null only when no free chunk fits it: any chunk
// of the size allocate(n) needs, or of the worst case allocate_aligned
// plans for (need + alignment + the smallest chunk).
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <iterator>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "fuzz/fuzz_input.h"
#include "mem/medium_free_lists.h"

namespace hpcalloc::fuzz {
namespace {

constexpr char kName[] = "medium_free_lists_fuzz";
constexpr std::size_t kMaxRegionBytes = 256 * 1024;
constexpr unsigned kRegions = 4;

struct CountingReporter {
  unsigned reports = 0;
  void report(HeapError, const char*, const void*) { ++reports; }
};
using Lists = MediumFreeLists<CountingReporter, kMaxRegionBytes>;

struct Region {
  std::byte* buffer = nullptr;  // from aligned_alloc; nullptr when unused
  std::byte* begin = nullptr;
  std::size_t bytes = 0;
  bool attached = false;
};

struct Block {
  std::size_t usable;
  std::uint64_t seed;
  unsigned region;
};

class Session {
 public:
  ~Session() {
    for (Region& r : regions_) std::free(r.buffer);
  }

  void run(Input& in) {
    while (!in.empty()) {
      step(in);
      if (const char* problem = lists_.check_consistency_for_testing()) fail(kName, problem);
      if (reporter_.reports != 0) fail(kName, "a valid operation was reported as misuse");
      if (lists_.stats().regions != attached_count()) fail(kName, "region count");
    }
    while (!live_.empty()) free_block(live_.begin()->first);
  }

 private:
  unsigned attached_count() const {
    unsigned n = 0;
    for (const Region& r : regions_) n += r.attached;
    return n;
  }

  std::size_t size_from(Input& in) {
    switch (in.byte() % 4) {
      case 0: return in.byte();
      case 1: return in.u16() % 4096;
      case 2: return in.u32() % (Lists::kMaxUsableBytes + 64);
      default: return Lists::kMaxUsableBytes - 64 + in.byte();
    }
  }

  void step(Input& in) {
    switch (in.byte() % 9) {
      case 0: add_region(in); return;
      case 1: {
        const std::size_t n = size_from(in);
        void* p = lists_.allocate(n);
        // Any free chunk of the size it needs will do: null then is a miss.
        if (p == nullptr) expect_no_fit(Lists::chunk_bytes_for_testing(n), "allocate");
        adopt(p, 0, in);
        return;
      }
      case 2: {
        const std::uint8_t selector = in.byte();
        const std::size_t alignment =
            selector % 8 == 7 ? std::size_t{in.u32()} : std::size_t{1} << (selector % 20);
        const std::size_t n = size_from(in);
        void* p = lists_.allocate_aligned(n, alignment);
        // A chunk big enough for the worst leading gap always fits.
        const std::size_t need = Lists::chunk_bytes_for_testing(n);
        if (p == nullptr && need != 0 && is_pow2(alignment) && alignment <= kMaxRegionBytes) {
          expect_no_fit(need + std::max<std::size_t>(alignment, 16) + medium::kMinChunkBytes,
                        "allocate_aligned");
        }
        adopt(p, alignment, in);
        return;
      }
      case 3:
        if (void* p = live_block(in)) free_block(p);
        return;
      case 4: resize(in); return;
      case 5: remove_region(in); return;
      case 6:
        if (void* p = live_block(in)) {
          if (lists_.usable_size(p) != live_.at(p).usable) fail(kName, "usable size changed");
          if (!lists_.owns_allocated(p)) fail(kName, "a live block is not owned");
        }
        return;
      case 7: free_stale(in); return;
      default:
        if (void* p = live_block(in)) check(p);
        return;
    }
  }

  // allocate*() returned null: no free chunk of `bytes` may exist (unless
  // the lists stopped after a report; this harness makes none).
  void expect_no_fit(std::size_t bytes, const char* call) {
    if (bytes == 0 || lists_.abandoned()) return;
    if (lists_.largest_free_chunk_for_testing() >= bytes) {
      fail(kName, std::string(call) + ": null although a free chunk of " + std::to_string(bytes) +
                      " bytes or more exists");
    }
  }

  void add_region(Input& in) {
    Region& r = regions_[in.byte() % kRegions];
    if (r.attached) return;
    const std::size_t offset = std::size_t{in.byte()} % 8 * 16;
    std::size_t bytes = medium::kMinRegionBytes + in.u32() % (kMaxRegionBytes + 1);
    if (bytes > kMaxRegionBytes) bytes = kMaxRegionBytes;
    if (r.buffer == nullptr) {
      r.buffer = static_cast<std::byte*>(std::aligned_alloc(4096, kMaxRegionBytes + 4096));
    }
    r.begin = r.buffer + offset;
    r.bytes = align_down(bytes, 16);
    lists_.add_region(r.begin, r.bytes);
    r.attached = true;
  }

  void adopt(void* p, std::size_t alignment, Input& in) {
    if (p == nullptr) return;
    if (alignment > 16 && is_pow2(alignment) && !is_aligned(p, alignment)) {
      fail(kName, "allocate_aligned: block not aligned");
    }
    if (!is_aligned(p, 16)) fail(kName, "block not 16-byte aligned");
    const std::size_t usable = lists_.usable_size(p);
    const unsigned region = region_of(p, usable);
    auto next = live_.lower_bound(p);
    if (next != live_.end() && static_cast<std::byte*>(p) + usable + 16 > next->first) {
      fail(kName, "new block overlaps the next live block");
    }
    if (next != live_.begin()) {
      auto prev = std::prev(next);
      if (static_cast<std::byte*>(prev->first) + prev->second.usable + 16 > p) {
        fail(kName, "new block overlaps the previous live block");
      }
    }
    const std::uint64_t seed = in.u64() ^ reinterpret_cast<std::uintptr_t>(p);
    write_pattern(p, usable, seed);
    live_[p] = Block{usable, seed, region};
  }

  unsigned region_of(void* p, std::size_t usable) const {
    auto* b = static_cast<std::byte*>(p);
    for (unsigned i = 0; i < kRegions; ++i) {
      const Region& r = regions_[i];
      if (r.attached && b - 16 >= r.begin + medium::kRegionRecordBytes &&
          b + usable <= r.begin + r.bytes - medium::kChunkHeaderBytes) {
        return i;
      }
    }
    fail(kName, "block outside every attached region");
  }

  void* live_block(Input& in) {
    if (live_.empty()) return nullptr;
    auto it = live_.begin();
    std::advance(it, in.byte() % live_.size());
    return it->first;
  }

  void check(void* p) {
    const Block& b = live_.at(p);
    if (first_pattern_mismatch(p, b.usable, b.seed) != b.usable) {
      fail(kName, "live block contents changed");
    }
  }

  void free_block(void* p) {
    check(p);
    const unsigned region = live_.at(p).region;
    live_.erase(p);
    stale_.push_back(p);
    void* emptied = lists_.free(p).emptied_region;
    bool region_empty = true;
    for (const auto& [q, b] : live_) region_empty &= b.region != region;
    if (emptied != nullptr) {
      if (emptied != regions_[region].begin || !region_empty) fail(kName, "wrong region emptied");
      detach(region);
    } else if (region_empty) {
      fail(kName, "a region with no live block was not given back");
    }
  }

  void resize(Input& in) {
    void* p = live_block(in);
    if (p == nullptr) return;
    Block& b = live_.at(p);
    const std::size_t n = size_from(in);
    const std::size_t old_usable = b.usable;
    if (!lists_.try_resize(p, n)) {
      if (lists_.usable_size(p) != old_usable) fail(kName, "failed try_resize changed the block");
      return check(p);
    }
    const std::size_t usable = lists_.usable_size(p);
    if (usable < n) fail(kName, "try_resize: usable size below the request");
    const std::size_t kept = usable < old_usable ? usable : old_usable;
    if (first_pattern_mismatch(p, kept, b.seed) != kept) fail(kName, "try_resize lost contents");
    const std::uint64_t seed = b.seed + 1;
    write_pattern(p, usable, seed);
    b.usable = usable;
    b.seed = seed;
    auto next = live_.upper_bound(p);
    if (next != live_.end() && static_cast<std::byte*>(p) + usable + 16 > next->first) {
      fail(kName, "grown block overlaps the next live block");
    }
  }

  void remove_region(Input& in) {
    const unsigned i = in.byte() % kRegions;
    Region& r = regions_[i];
    if (!r.attached) return;
    bool empty = true;
    for (const auto& [q, b] : live_) empty &= b.region != i;
    if (lists_.remove_region(r.begin) != empty) fail(kName, "remove_region answer");
    if (empty) detach(i);
  }

  // Stale pointers into a detached region are dropped: the region is the
  // caller's memory again, and a free of it would read whatever is there.
  void detach(unsigned region) {
    Region& r = regions_[region];
    r.attached = false;
    std::erase_if(stale_, [&](void* p) {
      auto* b = static_cast<std::byte*>(p);
      return b >= r.begin && b < r.begin + r.bytes;
    });
  }

  // A pointer freed earlier that is not a live block now, nor inside one:
  // free and try_resize must report it once and change nothing.
  void free_stale(Input& in) {
    if (stale_.empty()) return;
    void* p = stale_[in.byte() % stale_.size()];
    auto* b = static_cast<std::byte*>(p);
    auto next = live_.lower_bound(p);
    if (next != live_.end() && b + 16 > next->first) return;  // p's header is next's data
    if (next != live_.begin()) {
      auto prev = std::prev(next);
      if (static_cast<std::byte*>(prev->first) + prev->second.usable > b - 16) return;
    }
    const Lists::Stats before = lists_.stats();
    const bool resize = in.byte() % 2;
    if (resize) {
      if (lists_.try_resize(p, in.u16())) fail(kName, "try_resize of a stale pointer succeeded");
    } else if (lists_.free(p).emptied_region != nullptr) {
      fail(kName, "free of a stale pointer emptied a region");
    }
    if (reporter_.reports != 1) fail(kName, "a stale pointer was not reported exactly once");
    reporter_.reports = 0;
    const Lists::Stats after = lists_.stats();
    if (after.free_chunks != before.free_chunks || after.free_bytes != before.free_bytes) {
      fail(kName, "a reported misuse changed the lists");
    }
  }

  CountingReporter reporter_;
  Lists lists_{reporter_};
  Region regions_[kRegions];
  std::map<void*, Block> live_;
  std::vector<void*> stale_;
};

}  // namespace
}  // namespace hpcalloc::fuzz

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  hpcalloc::fuzz::Input in(data, size);
  hpcalloc::fuzz::Session().run(in);
  return 0;
}

// The reference model of the C allocation API: an executable specification
// that says, for each call (malloc, calloc, realloc, reallocarray, free,
// free_sized, memalign, posix_memalign, aligned_alloc, valloc, pvalloc,
// malloc_usable_size), which results are allowed, and keeps the set of live
// blocks so it can judge the next call. The harness makes the real call,
// then hands the model the arguments and what came back; the model answers
// with an empty string (allowed) or what is wrong, and on an allowed result
// updates its live set. Semantics are glibc 2.36's, which hpcalloc.h
// promises:
//   - sizes above PTRDIFF_MAX are impossible: NULL + ENOMEM, always;
//   - calloc, reallocarray and pvalloc overflow: NULL + ENOMEM;
//   - realloc(p, 0) frees p and returns NULL; a failed realloc leaves p
//     live and intact;
//   - memalign/aligned_alloc/valloc/pvalloc: an alignment up to 16 is
//     malloc's, a non-power of two is rounded up, one above SIZE_MAX / 2 + 1
//     is EINVAL;
//   - posix_memalign returns EINVAL unless the alignment is a power-of-two
//     multiple of sizeof(void*) (errno and *memptr untouched), ENOMEM on
//     failure (*memptr untouched), 0 on success;
//   - every block is aligned to 16 and to the alignment asked for; its
//     usable size is at least the request, stable while it lives, and no two
//     live blocks overlap, usable tails included;
//   - contents survive realloc up to min(old, new), calloc zeroes, and a
//     live block's contents never change behind its owner's back.
// The judgement of free and free_sized reads the block, so they are judged
// *before* the real call is made; for realloc, call check(p) before the real
// call (realloc(p, 0) frees at once) and realloc() after it.
//
// Misuse (see "Misuse" below): free or realloc of a pointer that is not the
// start of a live block (a double free, an interior pointer) and
// malloc_usable_size of one. glibc aborts on some and corrupts itself on
// others; hpcalloc promises, with HPCALLOC_ON_ERROR=warn, that each is
// reported exactly once and that the call then returns having changed
// nothing. The model states that promise: its live set is left as it was,
// and it counts the reports it now expects, for the harness to compare with
// the reports the implementation made (reports()).
// Whether a possible request may still fail is the environment's call (the
// caller passes Memory::kMayRunOut while a simulated OS failure is armed);
// requests larger than any machine (above Limits::may_fail_above) may always
// fail with ENOMEM.
//
// Independent of the allocator on purpose: it includes only the standard
// library and shares no code with src/, so a misunderstanding cannot be
// copied from the code into its own judge.
#pragma once

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <iterator>
#include <map>
#include <sstream>
#include <string>

// Under AddressSanitizer, the usable bytes of a live block must be
// addressable (an allocator that poisons its free memory must unpoison what
// it hands out).
#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#endif

namespace hpcalloc::reference {

struct Limits {
  std::size_t page_size = 4096;
  std::size_t min_alignment = 16;  // every block, whatever was asked
  // Requests (size plus alignment) above this may fail with ENOMEM even with
  // memory to spare: no machine has that much.
  std::size_t may_fail_above = std::size_t{1} << 40;
  // Bytes written in a block's usable tail (past the request, up to
  // malloc_usable_size) survive realloc like the requested ones. glibc and
  // hpcalloc keep them; C only promises the requested ones.
  bool realloc_keeps_usable_tail = true;
  // hpcalloc's pvalloc(0) is one whole page; glibc 2.36's rounding asks for
  // one byte instead (false: pvalloc(0) promises only a page-aligned block).
  bool pvalloc_zero_is_one_page = true;
};

// Whether the environment may refuse memory during this call.
enum class Memory { kPlenty, kMayRunOut };

class ReferenceModel {
 public:
  struct Block {
    std::size_t size = 0;       // bytes asked for
    std::size_t extent = 0;     // bytes the client may use: the usable size once told
    bool usable_known = false;  // extent came from malloc_usable_size
    std::size_t written = 0;    // leading bytes that carry the pattern of `seed`
    std::uint64_t seed = 0;
  };

  explicit ReferenceModel(const Limits& limits = Limits{}) : limits_(limits) {}

  const Limits& limits() const { return limits_; }
  const std::map<std::uintptr_t, Block>& live() const { return live_; }
  bool is_live(const void* p) const { return live_.count(address(p)) != 0; }
  std::size_t live_count() const { return live_.size(); }

  // ---- Allocation calls: `p` and `error` (errno after the call) are what
  // the implementation returned. ----

  std::string malloc(std::size_t size, void* p, int error, Memory memory) {
    if (size > kMaxRequest) return must_fail("malloc", size, p, error, ENOMEM);
    return allocation("malloc", size, 0, p, error, memory);
  }

  std::string calloc(std::size_t count, std::size_t size, void* p, int error, Memory memory) {
    std::size_t total = 0;
    if (__builtin_mul_overflow(count, size, &total) || total > kMaxRequest) {
      return must_fail("calloc", total, p, error, ENOMEM);
    }
    std::string verdict = allocation("calloc", total, 0, p, error, memory);
    if (!verdict.empty() || p == nullptr) return verdict;
    const std::size_t wrong = first_nonzero(p, total);
    if (wrong != total) return describe("calloc", total, p) + ": byte " + dec(wrong) + " not zero";
    return {};
  }

  std::string realloc(void* old, std::size_t size, void* p, int error, Memory memory) {
    if (old == nullptr) return malloc(size, p, error, memory);
    auto it = live_.find(address(old));
    if (it == live_.end()) return "harness bug: realloc of a block that is not live";
    if (size == 0) {
      // glibc: frees the block and returns NULL (its contents were checked
      // by check(old) before the call).
      live_.erase(it);
      if (p != nullptr)
        return describe("realloc", 0, p) + ": realloc(p, 0) must free p, return NULL";
      return {};
    }
    if (size > kMaxRequest) {
      std::string verdict = must_fail("realloc", size, p, error, ENOMEM);
      return verdict.empty() ? intact("failed realloc", it->first, it->second) : verdict;
    }
    if (p == nullptr) {
      std::string verdict = may_fail("realloc", size, 0, error, memory);
      return verdict.empty() ? intact("failed realloc", it->first, it->second) : verdict;
    }
    // Success: the old block is gone (or is p), its contents moved to p.
    const Block old_block = it->second;
    live_.erase(it);
    std::string verdict = placement("realloc", size, 0, p);
    if (!verdict.empty()) return verdict;
    const std::size_t promised = limits_.realloc_keeps_usable_tail    ? old_block.written
                                 : old_block.size < old_block.written ? old_block.size
                                                                      : old_block.written;
    const std::size_t kept = promised < size ? promised : size;
    const std::size_t wrong = first_mismatch(p, kept, old_block.seed);
    if (wrong != kept) {
      return describe("realloc", size, p) + ": byte " + dec(wrong) + " of " + dec(kept) +
             " kept bytes lost (old block " + hex(old) + ", size " + dec(old_block.size) + ")";
    }
    Block& block = live_[address(p)];
    block = Block{size, size, false, kept, old_block.seed};
    return {};
  }

  std::string reallocarray(void* old, std::size_t count, std::size_t size, void* p, int error,
                           Memory memory) {
    std::size_t total = 0;
    if (__builtin_mul_overflow(count, size, &total)) {
      std::string verdict = must_fail("reallocarray", SIZE_MAX, p, error, ENOMEM);
      if (!verdict.empty() || old == nullptr) return verdict;
      auto it = live_.find(address(old));
      if (it == live_.end()) return "harness bug: reallocarray of a block that is not live";
      return intact("failed reallocarray", it->first, it->second);
    }
    return realloc(old, total, p, error, memory);
  }

  std::string memalign(std::size_t alignment, std::size_t size, void* p, int error, Memory memory) {
    return glibc_memalign("memalign", alignment, size, p, error, memory);
  }
  // glibc 2.36 exports aligned_alloc as memalign (any alignment, rounded).
  std::string aligned_alloc(std::size_t alignment, std::size_t size, void* p, int error,
                            Memory memory) {
    return glibc_memalign("aligned_alloc", alignment, size, p, error, memory);
  }
  std::string valloc(std::size_t size, void* p, int error, Memory memory) {
    return glibc_memalign("valloc", limits_.page_size, size, p, error, memory);
  }
  std::string pvalloc(std::size_t size, void* p, int error, Memory memory) {
    const std::size_t page = limits_.page_size;
    std::size_t rounded = 0;
    if (__builtin_add_overflow(size, page - 1, &rounded)) {
      return must_fail("pvalloc", size, p, error, ENOMEM);
    }
    rounded &= ~(page - 1);
    if (rounded == 0 && limits_.pvalloc_zero_is_one_page) rounded = page;
    return glibc_memalign("pvalloc", page, rounded, p, error, memory);
  }

  // posix_memalign(&memptr, alignment, size): `before`/`after` are memptr
  // around the call, `errno_before`/`errno_after` errno around it.
  std::string posix_memalign(void* before, void* after, std::size_t alignment, std::size_t size,
                             int rc, int errno_before, int errno_after, Memory memory) {
    const bool valid =
        alignment != 0 && (alignment & (alignment - 1)) == 0 && alignment % sizeof(void*) == 0;
    const std::string call = "posix_memalign(" + dec(alignment) + ", " + dec(size) + ")";
    if (!valid || size > kMaxRequest) {
      const int want = valid ? ENOMEM : EINVAL;
      if (rc != want) return call + " returned " + dec(rc) + ", want " + dec(want);
      if (after != before) return call + " failed but wrote *memptr";
      if (!valid && errno_after != errno_before) return call + ": EINVAL must leave errno alone";
      return {};
    }
    if (rc != 0) {
      if (after != before) return call + " failed but wrote *memptr";
      if (rc != ENOMEM) return call + " returned " + dec(rc) + ", want 0 or ENOMEM";
      return may_fail("posix_memalign", size, alignment, ENOMEM, memory);
    }
    if (after == nullptr) return call + " returned 0 with a NULL block";
    return allocation("posix_memalign", size, alignment, after, 0, memory);
  }

  // ---- Other calls ----

  // Judged before the real free (see the top comment).
  std::string free(void* p) {
    if (p == nullptr) return {};
    auto it = live_.find(address(p));
    if (it == live_.end()) return "harness bug: free of a block that is not live";
    std::string verdict = intact("free", it->first, it->second);
    live_.erase(it);
    return verdict;
  }

  // C23: `size` must be the size the block was asked with.
  std::string free_sized(void* p, std::size_t size) {
    if (p == nullptr) return {};
    auto it = live_.find(address(p));
    if (it != live_.end() && it->second.size != size) {
      return "harness bug: free_sized with " + dec(size) + " for a block of " +
             dec(it->second.size);
    }
    return free(p);
  }

  // malloc_usable_size(p) answered `reported`. The first answer becomes the
  // block's extent: at least the request, clear of every other live block,
  // and the same on every later call.
  std::string usable_size(void* p, std::size_t reported) {
    if (p == nullptr) {
      return reported == 0 ? std::string{} : "malloc_usable_size(NULL) = " + dec(reported);
    }
    auto it = live_.find(address(p));
    if (it == live_.end()) return "harness bug: malloc_usable_size of a block that is not live";
    Block& block = it->second;
    const std::string call = "malloc_usable_size(" + hex(p) + ") = " + dec(reported);
    if (reported < block.size) return call + ", below the " + dec(block.size) + " asked for";
    if (block.usable_known) {
      if (reported != block.extent) return call + ", was " + dec(block.extent);
      return {};
    }
    const std::uintptr_t start = it->first;
    Block updated = block;
    live_.erase(it);  // so the overlap check does not meet the block itself
    std::string overlap = overlapping(start, reported);
    updated.extent = reported;
    updated.usable_known = true;
    live_[start] = updated;
    return overlap.empty() ? std::string{} : call + ": usable tail " + overlap;
  }

  // ---- Misuse ----
  // Calls the program must not make, which must be reported once each and
  // change nothing. The judgements never read the pointer (it may be freed
  // memory, poisoned under ASan). The report of a free made on another
  // thread may come later, when the owner takes the block back: call
  // reports() once every report the misuses may cause has been made.

  // Whether `p` passed to free, realloc or malloc_usable_size is misuse:
  // neither NULL nor the start of a live block.
  bool is_misuse(const void* p) const { return p != nullptr && !is_live(p); }

  // free(p) of a misuse pointer: one report expected. Judged before the call
  // like free(); nothing changes.
  std::string free_misused(const void* p) { return expect_report("free", p); }

  // realloc(p, size) of a misuse pointer returned `result`: NULL (a freed or
  // interior block is never served), one report expected.
  std::string realloc_misused(const void* p, std::size_t size, const void* result) {
    std::string verdict = expect_report("realloc", p);
    if (!verdict.empty() || result == nullptr) return verdict;
    return "realloc(" + hex(p) + ", " + dec(size) + ") of " + misuse_of(p) + " returned " +
           hex(result) + ", want NULL";
  }

  // malloc_usable_size(p) of a misuse pointer answered `reported`: 0, one
  // report expected.
  std::string usable_size_misused(const void* p, std::size_t reported) {
    std::string verdict = expect_report("malloc_usable_size", p);
    if (!verdict.empty() || reported == 0) return verdict;
    return "malloc_usable_size(" + hex(p) + ") of " + misuse_of(p) + " = " + dec(reported) +
           ", want 0";
  }

  // Misuse calls judged since the last reports(), each expecting one report.
  std::size_t expected_reports() const { return expected_reports_; }

  // The implementation made `made` reports since the last reports() (or
  // since the model was built): exactly one per misuse call, and every live
  // block still holds what was last written to it. Starts a new count.
  std::string reports(std::size_t made) {
    const std::size_t want = expected_reports_;
    const std::string calls = misuse_calls_;
    expected_reports_ = 0;
    misuse_calls_.clear();
    if (made != want) {
      return dec(want) + " misuse call(s) [" + calls + "] made " + dec(made) +
             " report(s), want exactly one each";
    }
    return check_all();
  }

  // ---- Contents: the client's side ----

  // Under AddressSanitizer: every byte of a live block's extent is
  // addressable. Elsewhere: nothing to check. Call before fill() (which
  // would trip the sanitizer itself, with no counterexample to shrink).
  std::string addressable(const void* p) const {
#if defined(__SANITIZE_ADDRESS__)
    const Block& block = live_.at(address(p));
    if (void* bad = __asan_region_is_poisoned(const_cast<void*>(p), block.extent)) {
      return "block " + hex(p) + " (size " + dec(block.size) + ", extent " + dec(block.extent) +
             ") is poisoned at byte " + dec(address(bad) - address(p));
    }
#else
    (void)p;
#endif
    return {};
  }

  // Writes a fresh pattern over the whole extent of a live block (what a
  // client may use), tied to its address and to when it was written.
  void fill(void* p) {
    Block& block = live_.at(address(p));
    block.seed = mix(address(p) ^ (++generation_ << 48));
    write_pattern(p, block.extent, block.seed);
    block.written = block.extent;
  }

  // A live block still holds what was last written to it.
  std::string check(const void* p) const {
    auto it = live_.find(address(p));
    if (it == live_.end()) return "harness bug: check of a block that is not live";
    return intact("check", it->first, it->second);
  }

  // Every live block still holds what was last written to it.
  std::string check_all() const {
    for (const auto& [start, block] : live_) {
      std::string verdict = intact("check", start, block);
      if (!verdict.empty()) return verdict;
    }
    return {};
  }

 private:
  static constexpr std::size_t kMaxRequest = PTRDIFF_MAX;

  static std::uintptr_t address(const void* p) { return reinterpret_cast<std::uintptr_t>(p); }
  static std::string dec(std::size_t v) { return std::to_string(v); }
  static std::string hex(const void* p) {
    std::ostringstream out;
    out << p;
    return out.str();
  }
  static std::string describe(const char* call, std::size_t size, const void* p) {
    return std::string(call) + "(" + dec(size) + ") = " + hex(p);
  }
  static std::uint64_t mix(std::uint64_t x) {  // splitmix64's finaliser
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
  }
  // The pattern, eight bytes at a time: differs between neighbouring words
  // and between blocks, so a shifted or truncated copy, or a block mistaken
  // for another, shows; words keep filling and checking megabytes cheap.
  static std::uint64_t pattern_word(std::uint64_t seed, std::size_t k) {
    return seed ^ (k * 0x9e3779b97f4a7c15ull);
  }
  static unsigned char pattern_byte(std::uint64_t seed, std::size_t i) {
    const std::uint64_t word = pattern_word(seed, i / 8);
    unsigned char bytes[8];
    std::memcpy(bytes, &word, 8);  // as the word loops store it, on any endianness
    return bytes[i % 8];
  }
  static void write_pattern(void* p, std::size_t n, std::uint64_t seed) {
    auto* bytes = static_cast<unsigned char*>(p);
    std::size_t i = 0;
    for (; i + 8 <= n; i += 8) {
      const std::uint64_t word = pattern_word(seed, i / 8);
      std::memcpy(bytes + i, &word, 8);
    }
    for (; i < n; ++i) bytes[i] = pattern_byte(seed, i);
  }
  static std::size_t first_mismatch(const void* p, std::size_t n, std::uint64_t seed) {
    const auto* bytes = static_cast<const unsigned char*>(p);
    std::size_t i = 0;
    for (; i + 8 <= n; i += 8) {
      std::uint64_t word = 0;
      std::memcpy(&word, bytes + i, 8);
      if (word != pattern_word(seed, i / 8)) break;
    }
    for (; i < n; ++i) {
      if (bytes[i] != pattern_byte(seed, i)) return i;
    }
    return n;
  }

  static std::size_t first_nonzero(const void* p, std::size_t n) {
    const auto* bytes = static_cast<const unsigned char*>(p);
    std::size_t i = 0;
    for (; i + 8 <= n; i += 8) {
      std::uint64_t word = 0;
      std::memcpy(&word, bytes + i, 8);
      if (word != 0) break;
    }
    for (; i < n; ++i) {
      if (bytes[i] != 0) return i;
    }
    return n;
  }

  std::string intact(const char* when, std::uintptr_t start, const Block& block) const {
    const void* p = reinterpret_cast<const void*>(start);
    const std::size_t wrong = first_mismatch(p, block.written, block.seed);
    if (wrong == block.written) return {};
    return std::string(when) + ": live block " + hex(p) + " (size " + dec(block.size) +
           ") changed at byte " + dec(wrong);
  }

  // A live block that [start, start + max(extent, 1)) overlaps, described;
  // empty when none (size 0 blocks still need a unique address).
  std::string overlapping(std::uintptr_t start, std::size_t extent) const {
    const std::uintptr_t end = start + (extent == 0 ? 1 : extent);
    auto next = live_.lower_bound(start);
    if (next != live_.end() && next->first < end) return "overlaps live block " + hex_at(next);
    if (next != live_.begin()) {
      auto prev = std::prev(next);
      const std::size_t prev_extent = prev->second.extent == 0 ? 1 : prev->second.extent;
      if (prev->first + prev_extent > start) return "overlaps live block " + hex_at(prev);
    }
    return {};
  }
  static std::string hex_at(std::map<std::uintptr_t, Block>::const_iterator it) {
    return hex(reinterpret_cast<const void*>(it->first)) + " (extent " + dec(it->second.extent) +
           ")";
  }

  // What a misuse pointer is, for messages: inside a live block, or not in
  // any (freed already, or never handed out).
  std::string misuse_of(const void* p) const {
    auto next = live_.upper_bound(address(p));
    if (next != live_.begin()) {
      auto block = std::prev(next);
      const std::size_t extent = block->second.extent == 0 ? 1 : block->second.extent;
      if (address(p) - block->first < extent) {
        return "interior pointer +" + dec(address(p) - block->first) + " of live block " +
               hex_at(block);
      }
    }
    return "a block that is not live";
  }

  std::string expect_report(const char* call, const void* p) {
    if (!is_misuse(p)) {
      return std::string("harness bug: ") + call + "(" + hex(p) + ") is no misuse";
    }
    ++expected_reports_;
    if (!misuse_calls_.empty()) misuse_calls_ += "; ";
    misuse_calls_ += std::string(call) + "(" + hex(p) + "): " + misuse_of(p);
    return {};
  }

  std::string must_fail(const char* call, std::size_t size, const void* p, int error, int want) {
    if (p != nullptr) return describe(call, size, p) + ": must fail";
    if (error != want) {
      return describe(call, size, p) + ": errno " + dec(static_cast<std::size_t>(error)) +
             ", want " + dec(static_cast<std::size_t>(want));
    }
    return {};
  }

  // A NULL result for a possible request: allowed only as ENOMEM when memory
  // may run out or the request is larger than any machine.
  std::string may_fail(const char* call, std::size_t size, std::size_t alignment, int error,
                       Memory memory) {
    if (error != ENOMEM) {
      return describe(call, size, nullptr) + ": errno " + dec(static_cast<std::size_t>(error)) +
             ", want ENOMEM";
    }
    std::size_t total = 0;
    const bool enormous =
        __builtin_add_overflow(size, alignment, &total) || total > limits_.may_fail_above;
    if (memory == Memory::kPlenty && !enormous) {
      return describe(call, size, nullptr) + ": failed (ENOMEM) with memory to spare";
    }
    return {};
  }

  // Where a new block landed: aligned, clear of every live block.
  std::string placement(const char* call, std::size_t size, std::size_t alignment, void* p) {
    const std::size_t align = alignment > limits_.min_alignment ? alignment : limits_.min_alignment;
    if (address(p) % align != 0) {
      return describe(call, size, p) + ": not aligned to " + dec(align);
    }
    std::string overlap = overlapping(address(p), size);
    if (!overlap.empty()) return describe(call, size, p) + ": " + overlap;
    return {};
  }

  std::string allocation(const char* call, std::size_t size, std::size_t alignment, void* p,
                         int error, Memory memory) {
    if (p == nullptr) return may_fail(call, size, alignment, error, memory);
    std::string verdict = placement(call, size, alignment, p);
    if (verdict.empty()) live_[address(p)] = Block{size, size, false, 0, 0};
    return verdict;
  }

  // glibc's _mid_memalign, the path of memalign, aligned_alloc, valloc and
  // pvalloc.
  std::string glibc_memalign(const char* call, std::size_t alignment, std::size_t size, void* p,
                             int error, Memory memory) {
    if (alignment <= limits_.min_alignment) {
      if (size > kMaxRequest) return must_fail(call, size, p, error, ENOMEM);
      return allocation(call, size, 0, p, error, memory);
    }
    if (alignment > SIZE_MAX / 2 + 1) return must_fail(call, size, p, error, EINVAL);
    std::size_t power = 1;
    while (power < alignment) power <<= 1;
    if (size > kMaxRequest) return must_fail(call, size, p, error, ENOMEM);
    return allocation(call, size, power, p, error, memory);
  }

  Limits limits_;
  std::map<std::uintptr_t, Block> live_;
  std::uint64_t generation_ = 0;
  std::size_t expected_reports_ = 0;  // misuse calls since the last reports()
  std::string misuse_calls_;          // ... described, for its verdict
};

}  // namespace hpcalloc::reference

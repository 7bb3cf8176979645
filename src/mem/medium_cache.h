// MediumCache: a heap's cache of recently freed medium blocks of the common
// sizes (above kSmallMax, up to 32 x kSmallMax: 1 KiB to 32 KiB in
// production), in front of the boundary-tagged free lists. A malloc/free
// pair of such a size then costs a list pop and push instead of a split, a
// merge and two re-binnings (about 500 instructions to under 100).
//
// Requests are rounded up to one of 4 classes per doubling (at most 25%
// more than asked for, like the free lists' own bins), so every block
// allocated for a class fits every later request of that class. A freed
// block goes into the largest class its usable size covers.
//
// A cached block stays "in use" for the free lists (so it keeps its segment
// alive; the cache is small: kPerClass blocks a class and kMaxTotalBytes in
// all). Its first three words hold the encoded link (the next block XOR the
// link key), a check word (over the link and the size, with the check key)
// and its usable size; the keys derive from the
// process secret (base/secret.h). Every walk checks a block's words before
// following its link or trusting its size: a write into a freed block, or
// an overflow into it, makes the walk report the block (through the
// caller, kCorruptedMediumCache) and abandon the class (its blocks leak,
// still in use for the lists), never follow it. A matching check word also
// marks a block that may be cached: a second free of it (or a realloc) is
// found by a walk of its class, bounded by kPerClass, and reported. ASan
// builds poison the rest. The owner flushes the cache back to the lists on
// trim and at thread exit. Owner thread only.
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>

#include "base/bits.h"
#include "base/sanitizer.h"
#include "base/secret.h"

namespace hpcalloc {

template <std::size_t kSmallMax>
class MediumCache {
 public:
  static constexpr std::size_t kMinBytes = kSmallMax + 1;
  static constexpr std::size_t kMaxBytes = 32 * kSmallMax;
  static constexpr unsigned kClassesPerDoubling = 4;
  static constexpr unsigned kClassCount = 5 * kClassesPerDoubling;  // (kSmallMax, 32 kSmallMax]
  static constexpr unsigned kPerClass = 8;
  static constexpr unsigned kSmallShift = log2_floor(kSmallMax);
  static_assert(is_pow2(kSmallMax) && kSmallMax >= 16);
  static constexpr unsigned kGranuleShift = kSmallShift - 2;
  static constexpr std::size_t kMaxTotalBytes = 16 * kMaxBytes;

  explicit MediumCache(std::uint64_t secret = process_secret())
      : link_key_(derive_key(secret, this, 0x6d6c696e6b)),
        check_key_(derive_key(secret, this, 0x6d636865636b)) {}

  // The class of a request in [kMinBytes, kMaxBytes]: one table load (class
  // steps are multiples of kSmallMax / 4, the table's granule).
  static unsigned class_of(std::size_t n) { return kTables.class_of[(n - 1) >> kGranuleShift]; }
  static constexpr std::size_t class_size(unsigned c) { return kTables.class_size[c]; }

  // What a walk found: the block looked for, or a block whose words fail
  // their check (the class is then abandoned: report it).
  struct Found {
    bool found;
    const void* corrupted;  // nullptr unless a check failed
  };

  // A cached block for a request of class c, or nullptr; *corrupted is set
  // (and the class abandoned) when the head's words fail their check.
  void* pop(unsigned c, const void** corrupted) {
    void* block = heads_[c];
    if (block == nullptr) return nullptr;
    if (!words_match(block)) {
      *corrupted = block;
      abandon(c);
      return nullptr;
    }
    const std::size_t usable = word(block, 2);
    unpoison_memory(block, usable);
    heads_[c] = decode(word(block, 0));
    set_word(block, 1, 0);
    --counts_[c];
    --total_blocks_;
    total_usable_ -= usable;
    usable_[c] -= usable;
    return block;
  }

  // Whether `block` (live, `usable` bytes) may be cached, i.e. its words say
  // it may be: the caller checks find() before push().
  bool looks_cached(const void* block) const { return words_match(block); }
  Found find(const void* block, std::size_t usable) {
    const unsigned c = floor_class(usable);
    if (c == kNoClass) return {false, nullptr};
    const void* p = heads_[c];
    for (unsigned i = 0; i < counts_[c] && p != nullptr; ++i) {
      if (p == block) return {true, nullptr};
      if (!words_match(p)) {
        abandon(c);
        return {false, p};
      }
      p = decode(word(p, 0));
    }
    return {false, nullptr};
  }

  // Caches a live block of `usable` bytes; false when it does not fit (size
  // outside the classes, class full, total reached): free it to the lists.
  bool push(void* block, std::size_t usable) {
    const unsigned c = floor_class(usable);
    if (c == kNoClass || counts_[c] == kPerClass || total_usable_ + usable > kMaxTotalBytes) {
      return false;
    }
    const std::uintptr_t link = reinterpret_cast<std::uintptr_t>(heads_[c]) ^ link_key_;
    set_word(block, 0, link);
    set_word(block, 2, usable);
    set_word(block, 1, check_word(link, usable));
    heads_[c] = block;
    ++counts_[c];
    ++total_blocks_;
    total_usable_ += usable;
    usable_[c] += usable;
    poison_memory(static_cast<char*>(block) + kMetadataBytes, usable - kMetadataBytes);
    return true;
  }

  // Empties the cache through free_block(void*) (the free lists' free);
  // a block whose words fail their check goes to report(const void*).
  template <class FreeBlock, class Report>
  void flush(FreeBlock free_block, Report report) {
    for (unsigned c = 0; c < kClassCount; ++c) {
      const void* corrupted = nullptr;
      while (void* block = pop(c, &corrupted)) free_block(block);
      if (corrupted != nullptr) report(corrupted);
    }
  }

  // Usable bytes of the cached blocks, and how many there are (the heap
  // counts them as free in its statistics).
  std::size_t cached_usable_bytes() const { return total_usable_; }
  std::size_t cached_blocks() const { return total_blocks_; }

 private:
  static constexpr unsigned kNoClass = ~0u;
  static constexpr std::size_t kGranules = kMaxBytes >> kGranuleShift;

  struct Tables {
    std::uint8_t class_of[kGranules];  // by (n - 1) >> kGranuleShift, n > kSmallMax
    std::uint32_t class_size[kClassCount];
  };
  static constexpr std::size_t computed_class_size(unsigned c) {
    const unsigned d = c / kClassesPerDoubling;
    return (kSmallMax << d) + ((c % kClassesPerDoubling + 1) << (kSmallShift + d - 2));
  }
  static constexpr Tables make_tables() {
    Tables t{};
    for (unsigned c = 0; c < kClassCount; ++c) {
      t.class_size[c] = static_cast<std::uint32_t>(computed_class_size(c));
    }
    unsigned c = 0;
    for (std::size_t g = 0; g < kGranules; ++g) {
      const std::size_t largest = (g + 1) << kGranuleShift;  // the largest n of this granule
      while (c + 1 < kClassCount && computed_class_size(c) < largest) ++c;
      t.class_of[g] = static_cast<std::uint8_t>(largest <= kSmallMax ? 0 : c);
    }
    return t;
  }
  static constexpr Tables kTables = make_tables();
  static constexpr std::size_t kMetadataBytes = 3 * sizeof(void*);

  // The largest class whose size `usable` covers, or kNoClass.
  static unsigned floor_class(std::size_t usable) {
    if (usable >= kMaxBytes)
      return usable <= kMaxBytes + kMaxBytes / 4 ? kClassCount - 1 : kNoClass;
    if (usable < class_size(0)) return kNoClass;
    const unsigned c = class_of(usable);  // class_size(c) >= usable
    return class_size(c) == usable ? c : c - 1;
  }

  static std::uintptr_t word(const void* block, unsigned i) {
    return static_cast<const std::uintptr_t*>(block)[i];
  }
  static void set_word(void* block, unsigned i, std::uintptr_t value) {
    static_cast<std::uintptr_t*>(block)[i] = value;
  }
  void* decode(std::uintptr_t link) const { return reinterpret_cast<void*>(link ^ link_key_); }
  // Over the link and the size (rotated, so that it cannot cancel the
  // link's low bits); not the address, as in the small caches (small_runs.h).
  std::uintptr_t check_word(std::uintptr_t link, std::size_t usable) const {
    return link ^ std::rotl(std::uint64_t{usable}, 32) ^ check_key_;
  }
  bool words_match(const void* block) const {
    return word(block, 1) == check_word(word(block, 0), word(block, 2));
  }
  // Forgets class c's blocks without following a link.
  void abandon(unsigned c) {
    heads_[c] = nullptr;
    total_blocks_ -= counts_[c];
    total_usable_ -= usable_[c];
    counts_[c] = 0;
    usable_[c] = 0;
  }

  const std::uintptr_t link_key_;
  const std::uintptr_t check_key_;
  void* heads_[kClassCount] = {};
  unsigned counts_[kClassCount] = {};
  std::size_t usable_[kClassCount] = {};  // per class, so an abandoned class leaves the total exact
  std::size_t total_usable_ = 0;
  std::size_t total_blocks_ = 0;
};

}  // namespace hpcalloc

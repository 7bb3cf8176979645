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
// all). Its first three words hold the link, the heap's key and its usable
// size; the key lets a second free of it be found (a walk of its class,
// bounded by kPerClass) and reported. ASan builds poison the rest. The
// owner flushes the cache back to the lists on trim and at thread exit.
// Owner thread only.
#pragma once

#include <cstddef>
#include <cstdint>

#include "base/bits.h"
#include "base/sanitizer.h"

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

  explicit MediumCache(std::uintptr_t key) : key_(key) {}

  // The class of a request in [kMinBytes, kMaxBytes]: one table load (class
  // steps are multiples of kSmallMax / 4, the table's granule).
  static unsigned class_of(std::size_t n) { return kTables.class_of[(n - 1) >> kGranuleShift]; }
  static constexpr std::size_t class_size(unsigned c) { return kTables.class_size[c]; }

  // A cached block for a request of class c, or nullptr.
  void* pop(unsigned c) {
    void* block = heads_[c];
    if (block == nullptr) return nullptr;
    const std::size_t usable = word(block, 2);
    unpoison_memory(block, usable);
    heads_[c] = next_of(block);
    set_key(block, 0);
    --counts_[c];
    --total_blocks_;
    total_usable_ -= usable;
    return block;
  }

  // Whether `block` (live, `usable` bytes) may be cached, i.e. its key shows
  // it may already be: the caller checks contains() before push().
  bool carries_key(const void* block) const { return key_of(block) == key_; }
  bool contains(const void* block, std::size_t usable) const {
    const unsigned c = floor_class(usable);
    if (c == kNoClass) return false;
    const void* p = heads_[c];
    for (unsigned i = 0; i < counts_[c] && p != nullptr; ++i, p = next_of(p)) {
      if (p == block) return true;
    }
    return false;
  }

  // Caches a live block of `usable` bytes; false when it does not fit (size
  // outside the classes, class full, total reached): free it to the lists.
  bool push(void* block, std::size_t usable) {
    const unsigned c = floor_class(usable);
    if (c == kNoClass || counts_[c] == kPerClass || total_usable_ + usable > kMaxTotalBytes) {
      return false;
    }
    set_next(block, heads_[c]);
    set_key(block, key_);
    static_cast<std::uintptr_t*>(block)[2] = usable;
    heads_[c] = block;
    ++counts_[c];
    ++total_blocks_;
    total_usable_ += usable;
    poison_memory(static_cast<char*>(block) + kMetadataBytes, usable - kMetadataBytes);
    return true;
  }

  // Empties the cache through free_block(void*) (the free lists' free).
  template <class FreeBlock>
  void flush(FreeBlock free_block) {
    for (unsigned c = 0; c < kClassCount; ++c) {
      while (void* block = pop(c)) free_block(block);
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
  static void* next_of(const void* block) { return *static_cast<void* const*>(block); }
  static void set_next(void* block, void* next) { *static_cast<void**>(block) = next; }
  static std::uintptr_t key_of(const void* block) {
    return static_cast<const std::uintptr_t*>(block)[1];
  }
  static void set_key(void* block, std::uintptr_t key) {
    static_cast<std::uintptr_t*>(block)[1] = key;
  }

  const std::uintptr_t key_;
  void* heads_[kClassCount] = {};
  unsigned counts_[kClassCount] = {};
  std::size_t total_usable_ = 0;
  std::size_t total_blocks_ = 0;
};

}  // namespace hpcalloc

// The secure flavour's per-heap state for small blocks (mem/hardening.h):
// the seal after each live block (padding and canary), the zero check of
// freed blocks, the quarantine FIFO and the random source of slot order.
// SmallRuns owns one and calls it on its slow paths; in the default flavour
// the class is empty and every call is compiled out.
//
// A live block's slot, secure flavour:
//   [0, requested)            the user's bytes
//   [requested, slot - 8)     padding: byte i is byte i % 8 of kPadWord, a
//                             fixed pattern of bytes in [0x80, 0xfe] (never
//                             0, 0xff or ASCII: what a string or an
//                             accidental overflow writes always differs)
//   [slot - 8, slot)          canary word: the requested size in its low 16
//                             bits, above them a keyed hash of the block's
//                             address and that size
// so a write even one byte past what was asked for changes the padding or
// the canary, and free() finds it. The padding needs no key: it is inside
// the block's own slot, and the keyed canary guards the slot's end. The
// size cannot be forged without the key, so malloc_usable_size() can trust it (it returns the
// requested size: every byte it promises is the user's).
//
// A freed block: its first two words are the structure's (a quarantine
// marker, later the cache link and check word), every byte after them is
// zero. Leaving the quarantine and being handed out again both check that.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "base/sanitizer.h"
#include "base/secret.h"
#include "mem/hardening.h"

namespace hpcalloc {

template <Hardening H>
class SmallBlockHardening {
 public:
  static constexpr std::size_t kCanaryBytes = H.canary_bytes;
  static_assert(kCanaryBytes == 0 || kCanaryBytes == sizeof(std::uint64_t), "a canary is one word");
  static constexpr unsigned kQuarantineBlocks = H.quarantine_blocks;
  static constexpr bool kQuarantine = kQuarantineBlocks != 0;
  // Bytes of a freed block the allocator itself writes (link and check
  // word, or the quarantine marker); the rest is zero when zero_on_free.
  static constexpr std::size_t kLinkBytes = 2 * sizeof(void*);

  SmallBlockHardening(std::uint64_t secret, const void* owner)
      : canary_key_(derive_key(secret, owner, 0x63616e617279)),
        marker_key_(derive_key(secret, owner, 0x71756172)),
        random_state_(derive_key(secret, owner, 0x72616e64)) {}

  // --- Seal (canary and padding) --------------------------------------
  // Writes the padding and canary of a block handed out for `requested`
  // bytes (requested + kCanaryBytes <= slot_size).
  void seal(void* block, std::size_t slot_size, std::size_t requested) const {
    auto* bytes = static_cast<unsigned char*>(block);
    const std::size_t end = slot_size - kCanaryBytes;  // a multiple of 8
    std::size_t i = requested;
    for (; i < end && i % 8 != 0; ++i) bytes[i] = pad_at(i);
    for (; i < end; i += 8) std::memcpy(bytes + i, &kPadWord, 8);
    const std::uint64_t canary = canary_of(block, requested);
    std::memcpy(bytes + slot_size - kCanaryBytes, &canary, sizeof(canary));
  }
  // The requested size a live block was sealed with, or SIZE_MAX when its
  // canary or padding was overwritten (a write past the end), or when the
  // block is not live after all (a freed block has no seal: its words may
  // be poisoned under ASan, hence the unpoisoned loads).
  std::size_t sealed_size(const void* block, std::size_t slot_size) const {
    const auto* bytes = static_cast<const unsigned char*>(block);
    const auto* words = static_cast<const std::uint64_t*>(block);
    const std::uint64_t canary = load_unpoisoned(words + (slot_size - kCanaryBytes) / 8);
    const std::size_t requested = canary & 0xffff;
    if (requested > slot_size - kCanaryBytes || canary != canary_of(block, requested)) {
      return SIZE_MAX;
    }
    const std::size_t end = slot_size - kCanaryBytes;
    std::size_t i = requested;
    for (; i < end && i % 8 != 0; ++i) {
      if (load_unpoisoned(bytes + i) != pad_at(i)) return SIZE_MAX;
    }
    std::uint64_t differs = 0;
    for (; i < end; i += 8) differs |= load_unpoisoned(words + i / 8) ^ kPadWord;
    return differs == 0 ? requested : SIZE_MAX;
  }

  // --- Zero on free ---------------------------------------------------
  static void zero_past_links(void* block, std::size_t slot_size) {
    if (slot_size > kLinkBytes) {
      std::memset(static_cast<char*>(block) + kLinkBytes, 0, slot_size - kLinkBytes);
    }
  }
  // Bytes [16, slot_size) all zero: the first word is, and every word
  // equals the one after it (one memcmp of the range against itself shifted
  // by a word: the C library's vectorised compare, where a loop of ours
  // would run a word at a time at -O2). The range is a multiple of 8 bytes.
  static bool is_zero_past_links(const void* block, std::size_t slot_size) {
    if (slot_size <= kLinkBytes) return true;
    const auto* bytes = static_cast<const unsigned char*>(block) + kLinkBytes;
    const std::size_t n = slot_size - kLinkBytes;
    std::uint64_t first = 0;
    std::memcpy(&first, bytes, sizeof first);
    return first == 0 && std::memcmp(bytes, bytes + 8, n - 8) == 0;
  }

  // --- Quarantine -----------------------------------------------------
  // A quarantined block's first two words: keyed with its address, so a
  // block's own words say "maybe quarantined" and the FIFO says for sure.
  void mark_quarantined(void* block) const {
    auto* words = static_cast<std::uint64_t*>(block);
    words[0] = marker(block, 0);
    words[1] = marker(block, 1);
  }
  // Wipes the marker of a block leaving the quarantine: a medium block goes
  // on to its cache or lists, which may leave its first words as they are
  // (a merge absorbs it), and a live block later carved at the same address
  // must not look quarantined to a thread that can only read its words.
  static void clear_marker(void* block) {
    auto* words = static_cast<std::uint64_t*>(block);
    words[0] = 0;
    words[1] = 0;
  }
  bool looks_quarantined(const void* block) const {
    const auto* words = static_cast<const std::uint64_t*>(block);
    return words[0] == marker(block, 0) && words[1] == marker(block, 1);
  }
  bool in_quarantine(const void* block) const {
    for (unsigned i = 0; i < count_; ++i) {
      if (ring_[(head_ + i) % kRingSize].block == block) return true;
    }
    return false;
  }
  // Whether a block of `slot_size` bytes can join without one leaving first.
  bool has_room_for(std::size_t slot_size) const {
    return count_ < kRingSize && bytes_ + slot_size <= H.quarantine_bytes;
  }
  bool empty() const { return count_ == 0; }
  std::size_t bytes() const { return bytes_; }
  unsigned blocks() const { return count_; }
  void push(void* block, std::size_t slot_size) {
    ring_[(head_ + count_) % kRingSize] = {block, static_cast<std::uint32_t>(slot_size)};
    ++count_;
    bytes_ += slot_size;
  }
  // The oldest block (the quarantine is not empty); *slot_size its slot.
  void* pop_oldest(std::size_t* slot_size) {
    const Entry entry = ring_[head_];
    head_ = (head_ + 1) % kRingSize;
    --count_;
    bytes_ -= entry.slot_size;
    *slot_size = entry.slot_size;
    return entry.block;
  }
  // Takes the oldest block out (the quarantine is not empty), its bytes
  // addressable again (ASan), *bytes its size; *intact: its marker is
  // there and, with zero_on_free, every byte past it is still zero (false:
  // it was written through a dangling pointer while quarantined).
  void* pop_checked(std::size_t* bytes, bool* intact) {
    void* block = pop_oldest(bytes);
    unpoison_memory(block, *bytes);
    *intact = looks_quarantined(block);
    if constexpr (H.zero_on_free) *intact = *intact && is_zero_past_links(block, *bytes);
    return block;
  }
  // Forgets every block (tear-down: the memory goes back wholesale).
  void forget_all() { head_ = count_ = 0, bytes_ = 0; }

  // --- Random slot order ------------------------------------------------
  // Shuffles blocks[0, n) (Fisher-Yates with xorshift64*: unpredictable
  // enough to stop placement by allocation order, not a cryptographic RNG).
  void shuffle(void** blocks, unsigned n) {
    for (unsigned i = n; i > 1; --i) {
      const unsigned j = static_cast<unsigned>(next_random() % i);
      void* t = blocks[i - 1];
      blocks[i - 1] = blocks[j];
      blocks[j] = t;
    }
  }

 private:
  static constexpr unsigned kRingSize = kQuarantine ? kQuarantineBlocks : 1;
  struct Entry {
    void* block;
    std::uint32_t slot_size;
  };

  // Little-endian: byte k of the word is the padding byte at offsets
  // congruent to k mod 8.
  static constexpr std::uint64_t kPadWord = 0xd2b4'9a8e'c6f0'a4baull;
  static constexpr unsigned char pad_at(std::size_t i) {
    return static_cast<unsigned char>(kPadWord >> (8 * (i % 8)));
  }
  static_assert(
      [] {
        for (std::size_t k = 0; k < 8; ++k) {
          if (pad_at(k) < 0x80 || pad_at(k) == 0xff) return false;
        }
        return true;
      }(),
      "padding bytes are never ASCII, 0 or 0xff");
  std::uint64_t canary_of(const void* block, std::size_t requested) const {
    const std::uint64_t hash =
        mix64(reinterpret_cast<std::uintptr_t>(block) ^ canary_key_ ^ (requested << 48));
    return (hash & ~std::uint64_t{0xffff}) | requested;
  }
  std::uint64_t marker(const void* block, unsigned word) const {
    return (reinterpret_cast<std::uintptr_t>(block) + word) * marker_key_;
  }
  std::uint64_t next_random() {
    random_state_ ^= random_state_ >> 12;
    random_state_ ^= random_state_ << 25;
    random_state_ ^= random_state_ >> 27;
    return random_state_ * 0x2545f4914f6cdd1dull;
  }

  const std::uint64_t canary_key_;
  const std::uint64_t marker_key_;  // odd (derive_key), so marker() is a bijection
  std::uint64_t random_state_;      // never 0 (derive_key sets bit 0)
  Entry ring_[kRingSize] = {};
  unsigned head_ = 0;
  unsigned count_ = 0;
  std::size_t bytes_ = 0;
};

// The default flavour: nothing to keep.
template <>
class SmallBlockHardening<kDefaultHardening> {
 public:
  static constexpr std::size_t kCanaryBytes = 0;
  static constexpr bool kQuarantine = false;
  SmallBlockHardening(std::uint64_t, const void*) {}
};

}  // namespace hpcalloc
